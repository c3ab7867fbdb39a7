//! What the tenant trusts for the admin's sign-in besides its client secret: certificates for
//! client assertions, and the admin's federated identity credential, whose external issuer the
//! emulator also plays. The running emulator keeps them (`Sim::trusted_certs`,
//! `Sim::federation`); `credentials.rs` makes the certificates and checks assertions against
//! both.

use rsa::RsaPublicKey;
use serde_json::json;

use crate::jwt::sign;
use crate::util::now_ms;

/// The audience Entra expects in a federated assertion.
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The subject of the admin's federated identity credential.
pub const FEDERATED_SUBJECT: &str = "repo:contoso/marketo-s2s:environment:production";

/// A certificate the emulator trusts for a client id.
#[derive(Debug, Clone)]
pub struct TrustedCert {
    pub client_id: String,
    pub sha1: Vec<u8>,
    pub sha256: Vec<u8>,
    pub key: RsaPublicKey,
}

/// The admin's federated identity credential: who may present assertions for it.
#[derive(Debug, Clone)]
pub struct Federation {
    pub issuer: String,
    pub subject: String,
    /// The external issuer's signing key (the emulator plays that issuer too).
    pub key: [u8; 32],
}

impl Federation {
    pub fn new(main_url: &str) -> Federation {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Federation {
            issuer: format!("{main_url}/_sim/oidc"),
            subject: FEDERATED_SUBJECT.into(),
            key,
        }
    }

    /// An assertion from the external issuer, valid from now for `ttl_s` seconds (negative: an
    /// expired one, for tests).
    pub fn assertion(&self, ttl_s: i64) -> String {
        let now = (now_ms() / 1000) as i64;
        let claims = json!({
            "iss": self.issuer, "sub": self.subject, "aud": EXCHANGE_AUDIENCE,
            "iat": now, "nbf": now.min(now + ttl_s) - 1, "exp": now + ttl_s,
            "jti": uuid::Uuid::new_v4().to_string()
        });
        sign(&self.key, &claims)
    }
}
