//! Reading what an access token says about itself: the one decoder of a JWT's payload, for a
//! single claim ([`claim`]: `tid`, `upn`) and for who holds it and may do what ([`caller`]).
//! The signature is not checked: the token came from the authority over TLS, and nothing here
//! grants anything — it names the tenant, the signed-in person, or what a 403 lacked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::error::Caller;

/// The claims of `token`, or `None` when it is not a JWT with a readable JSON payload.
pub fn claims(token: &SecretString) -> Option<Map<String, Value>> {
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// A string claim (`tid`, `upn`, …).
pub fn claim(token: &SecretString, name: &str) -> Option<String> {
    claims(token)?.get(name)?.as_str().map(str::to_string)
}

/// Who a token was issued to and what it may do (its `appid`/`azp`, `idtyp`, `roles` and `scp`
/// claims). `None` when the token is not a readable JWT.
pub fn caller(token: &SecretString) -> Option<Caller> {
    let v = claims(token)?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let scopes: Vec<String> = text("scp")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let roles = v
        .get("roles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // `idtyp` is an optional claim; a `scp` claim only appears in delegated tokens.
    let delegated = text("idtyp").map_or(!scopes.is_empty(), |t| t == "user");
    Some(Caller {
        app_id: text("appid").or_else(|| text("azp")),
        delegated,
        roles,
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> SecretString {
        format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(claims)).into()
    }

    #[test]
    fn claims_and_the_caller_come_from_one_decoding() {
        let app = token(r#"{"tid":"t1","appid":"a1","roles":["Application.ReadWrite.All"]}"#);
        assert_eq!(claim(&app, "tid").as_deref(), Some("t1"));
        assert_eq!(claim(&app, "upn"), None);
        let c = caller(&app).unwrap();
        assert!(!c.delegated);
        assert_eq!(c.app_id.as_deref(), Some("a1"));
        assert!(c.holds_any(&["application.readwrite.all"]));
        let user = token(r#"{"azp":"a2","scp":"User.Read Directory.Read.All","upn":"ann@x"}"#);
        let c = caller(&user).unwrap();
        assert!(c.delegated && c.holds_any(&["Directory.Read.All"]));
        assert_eq!(c.app_id.as_deref(), Some("a2"));
        assert_eq!(claim(&user, "upn").as_deref(), Some("ann@x"));
    }

    #[test]
    fn what_is_not_a_jwt_says_nothing() {
        for t in ["", "opaque", "a.!!!.c", "a.bnVsbA.c"] {
            let t: SecretString = t.into();
            assert!(caller(&t).is_none() && claim(&t, "tid").is_none());
        }
    }
}
