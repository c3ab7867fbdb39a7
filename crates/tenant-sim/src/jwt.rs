//! The format of the tokens the emulator signs, and nothing else: no tenant, no request. The
//! access tokens, the ID tokens and the federated assertion the emulator mints as an external
//! issuer are all signed and checked here.
//!
//! Tokens are `base64url(header).base64url(claims).base64url(sig)` with
//! `sig = SHA-256(per-server random key || header.claims)`: not RS256 like Entra, but they cannot
//! be forged or altered without the key, which is what the emulator needs to check.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Sign claims into a token.
pub fn sign(key: &[u8], claims: &Value) -> String {
    let header = B64.encode(br#"{"typ":"JWT","alg":"HS256-sim"}"#);
    let payload = B64.encode(claims.to_string().as_bytes());
    let signed = format!("{header}.{payload}");
    let mut h = Sha256::new();
    h.update(key);
    h.update(signed.as_bytes());
    format!("{signed}.{}", B64.encode(h.finalize()))
}

/// Why a token was rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenError {
    Missing,
    Malformed,
    BadSignature,
    Expired,
    WrongAudience,
}

/// Verify a token's signature and expiry; returns its claims.
pub fn verify(key: &[u8], token: &str, now_s: u64) -> Result<Value, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(format!("{h}.{p}").as_bytes());
    let expect = B64.encode(hasher.finalize());
    let claims: Value = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    if !ct_eq(expect.as_bytes(), s.as_bytes()) {
        return Err(TokenError::BadSignature);
    }
    if claims.get("exp").and_then(Value::as_u64).unwrap_or(0) <= now_s {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Equal without an early exit on the first differing byte (constant-time-ish).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sign_and_verify() {
        let key = [7u8; 32];
        let now = 1_000_000;
        let t = sign(&key, &json!({"aud":"http://x","exp": now + 10}));
        assert_eq!(verify(&key, &t, now).expect("valid")["aud"], "http://x");
        assert_eq!(verify(&[8u8; 32], &t, now), Err(TokenError::BadSignature));
        assert_eq!(verify(&key, &t, now + 11), Err(TokenError::Expired));
        assert_eq!(verify(&key, "abc", now), Err(TokenError::Malformed));
        // tampering with the claims breaks the signature
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = B64.encode(json!({"aud":"http://y","exp": now + 10}).to_string());
        assert_eq!(
            verify(&key, &parts.join("."), now),
            Err(TokenError::BadSignature)
        );
    }
}
