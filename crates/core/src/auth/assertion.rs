//! Client assertions: the JWTs an app presents instead of a client secret.
//!
//! - A **certificate credential** (`AZURE_CLIENT_CERTIFICATE_PATH`): a PEM file with the app's
//!   certificate and its RSA private key; the assertion is signed as the Microsoft identity
//!   platform expects (<https://learn.microsoft.com/entra/identity-platform/certificate-credentials>):
//!   header `alg` RS256, `typ` JWT, `x5t` = base64url SHA-1 thumbprint of the certificate's DER;
//!   claims `aud` = the token endpoint, `iss` = `sub` = the client id, a fresh `jti`, `nbf`/`iat`
//!   now and `exp` ten minutes later (the page asks for 5-10 minutes). The page's newer revision
//!   shows PS256 with `x5t#S256`; Entra accepts both, and RS256 with `x5t` is what MSAL sends.
//!   Signing uses ring (already built for rustls); the key never leaves it.
//!   PKCS#12 (`.pfx`) files and encrypted keys are not supported, so
//!   `AZURE_CLIENT_CERTIFICATE_PASSWORD` is not used (a run that sets it is told so): such a
//!   file is refused with the `openssl` command that converts it. Supporting them would bring a
//!   PKCS#12 and PBES2 implementation for one convenience; a PEM is what `az ad sp
//!   create-for-rbac --create-cert` writes.
//! - A **federated token** (`AZURE_FEDERATED_TOKEN_FILE`): a JWT from another identity provider
//!   (GitHub Actions, a Kubernetes service account), read fresh at each token request because the
//!   platform rotates the file (<https://learn.microsoft.com/entra/workload-id/workload-identity-federation>).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde_json::json;

use crate::error::{Error, Result};
use crate::output::sanitize;

/// `client_assertion_type` for a JWT (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion we sign is valid.
const ASSERTION_LIFETIME_S: u64 = 600;

/// A federated token is a JWT of a few KiB; anything past this is not one.
const MAX_FEDERATED_TOKEN: u64 = 64 * 1024;

/// A certificate and its private key, loaded from `AZURE_CLIENT_CERTIFICATE_PATH`.
pub struct ClientCertificate {
    der: Vec<u8>,
    key: RsaKeyPair,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t", &self.x5t())
            .field("key", &"(redacted)")
            .finish()
    }
}

fn cert_error(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::auth(format!(
        "AZURE_CLIENT_CERTIFICATE_PATH {}: {why}",
        sanitize(&path.display().to_string())
    ))
}

const PFX_HINT: &str = "give a PEM file holding the certificate and its unencrypted private key \
     (AZURE_CLIENT_CERTIFICATE_PASSWORD is not used); from a .pfx: \
     `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`, then `chmod 600 cert.pem`";

impl ClientCertificate {
    /// Reads and checks the PEM file: one certificate (the first, the leaf) and an RSA private
    /// key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`) that belongs to it.
    pub fn load(path: &Path) -> Result<ClientCertificate> {
        // A FIFO or device must not block the tool; the bytes are a secret while they live.
        let bytes: SecretSlice<u8> =
            crate::fsutil::read_regular(path, crate::fsutil::MAX_SMALL_FILE)
                .map_err(|e| cert_error(path, format!("cannot read it ({e})")))?
                .into();
        let blocks = pem::parse_many(bytes.expose_secret()).unwrap_or_default();
        if blocks.is_empty() {
            let why = if bytes.expose_secret().first() == Some(&0x30) {
                "is binary (PKCS#12 .pfx or DER), and only PEM is supported"
            } else {
                "holds no PEM block"
            };
            return Err(cert_error(path, why).with_hint(PFX_HINT));
        }
        let der = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.contents().to_vec())
            .ok_or_else(|| {
                cert_error(path, "holds no `-----BEGIN CERTIFICATE-----` block").with_hint(PFX_HINT)
            })?;
        let key = blocks
            .iter()
            .find(|b| b.tag().ends_with("PRIVATE KEY"))
            .ok_or_else(|| {
                cert_error(path, "holds the certificate but not its private key").with_hint(
                    "append the private key (`-----BEGIN PRIVATE KEY-----`) to the file: the \
                     tool signs with it",
                )
            })?;
        let key = match key.tag() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(key.contents()),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(key.contents()),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(cert_error(
                    path,
                    "holds an encrypted private key, which is not supported",
                )
                .with_hint(
                    "decrypt it into the PEM file: `openssl pkey -in key.pem -out plain.pem`, \
                     then keep the file readable only by you (chmod 600)",
                ));
            }
            other => {
                return Err(cert_error(
                    path,
                    format!("holds {} {other}, not an RSA key", article(other)),
                )
                .with_hint("Entra certificate credentials are RSA (2048 bits or more)"));
            }
        }
        .map_err(|e| {
            cert_error(
                path,
                format!("the private key is not a usable RSA key ({e})"),
            )
            .with_hint("give an RSA key of 2048 bits or more")
        })?;
        // The certificate carries the key's public half (RSAPublicKey inside its
        // SubjectPublicKeyInfo): a key from another certificate fails here, not as a rejected
        // signature at the token endpoint.
        let public = key.public().as_ref();
        if !der.windows(public.len()).any(|w| w == public) {
            return Err(cert_error(
                path,
                "the private key does not belong to the certificate in the same file",
            )
            .with_hint("put the certificate and the key of one key pair in the file"));
        }
        Ok(ClientCertificate { der, key })
    }

    /// base64url SHA-1 of the certificate's DER (`x5t`), as the portal's thumbprint in base64url.
    pub fn x5t(&self) -> String {
        B64.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.der,
        ))
    }

    /// A signed assertion for `client_id` at the token endpoint `audience`.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<SecretString> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t()});
        let claims = json!({
            "aud": audience, "iss": client_id, "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now, "iat": now, "exp": now + ASSERTION_LIFETIME_S
        });
        let signed = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signed.as_bytes(),
                &mut sig,
            )
            .map_err(|_| {
                Error::auth("signing the client assertion with the certificate's key failed")
            })?;
        Ok(SecretString::from(format!("{signed}.{}", B64.encode(sig))))
    }
}

/// The federated token in `path`, read now (the platform rotates it: never cache it).
pub fn read_federated_token(path: &Path) -> Result<SecretString> {
    let shown = sanitize(&path.display().to_string()).into_owned();
    let bytes = crate::fsutil::read_regular(path, MAX_FEDERATED_TOKEN).map_err(|e| {
        Error::auth(format!(
            "cannot read AZURE_FEDERATED_TOKEN_FILE {shown} ({e})"
        ))
        .with_hint(
            "the platform (GitHub Actions' azure/login, the AKS workload identity webhook) \
             writes this file; check the variable names the file it projected",
        )
    })?;
    let token: SecretString = String::from_utf8(bytes).unwrap_or_default().trim().into();
    let t = token.expose_secret();
    let jwt_shaped = t.split('.').count() == 3
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='));
    if !jwt_shaped {
        return Err(Error::auth(format!(
            "AZURE_FEDERATED_TOKEN_FILE {shown} does not hold a token (a JWT: three base64url parts)"
        ))
        .with_hint("point AZURE_FEDERATED_TOKEN_FILE at the file the platform writes the token to"));
    }
    Ok(token)
}

/// "a" or "an" before `phrase`, by the sound of its first word: a vowel, or for a short
/// all-capitals word read letter by letter (a PEM label such as `EC`, `SSH2`), a letter whose
/// name starts with one (F, H, L, M, N, R, S, X): "an EC PRIVATE KEY", "a DSA PRIVATE KEY".
fn article(phrase: &str) -> &'static str {
    let word = phrase.split_whitespace().next().unwrap_or_default();
    let Some(first) = word.chars().next() else {
        return "a";
    };
    let spelled = word.len() <= 4
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let vowel_sound = "AEIOUaeiou".contains(first) || (spelled && "FHLMNRSX".contains(first));
    if vowel_sound { "an" } else { "a" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_article_follows_the_sound_of_the_next_word() {
        for (phrase, want) in [
            ("EC PRIVATE KEY", "an"),
            ("DSA PRIVATE KEY", "a"),
            ("OPENSSH PRIVATE KEY", "an"),
            ("SSH2 ENCRYPTED PRIVATE KEY", "an"),
            ("ENCRYPTED PRIVATE KEY", "an"),
            ("PRIVATE KEY", "a"),
            ("X448 PRIVATE KEY", "an"),
            ("", "a"),
        ] {
            assert_eq!(article(phrase), want, "{phrase:?}");
        }
    }

    #[test]
    fn a_federated_token_is_read_fresh_each_time_and_must_look_like_a_jwt() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "eyJh.eyJi.c2ln\n").unwrap();
        assert_eq!(
            read_federated_token(&f).unwrap().expose_secret(),
            "eyJh.eyJi.c2ln"
        );
        std::fs::write(&f, "eyJh.eyJj.c2ln").unwrap();
        assert_eq!(
            read_federated_token(&f).unwrap().expose_secret(),
            "eyJh.eyJj.c2ln"
        );
        std::fs::write(&f, "not a token").unwrap();
        let e = read_federated_token(&f).unwrap_err();
        assert_eq!(e.kind.code(), 3);
        assert!(!e.to_string().contains("not a token"), "{e}");
    }

    #[test]
    fn a_file_without_pem_or_key_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.pfx");
        std::fs::write(&f, [0x30, 0x82, 0x01]).unwrap();
        let e = ClientCertificate::load(&f).unwrap_err();
        assert!(e.to_string().contains("PKCS#12"), "{e}");
        assert!(e.hint.as_deref().unwrap_or("").contains("openssl pkcs12"));
    }
}
