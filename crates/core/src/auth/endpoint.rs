//! The token endpoint (`{authority}/{tenant}/oauth2/v2.0/token`) and what every credential
//! source shares: the [`Login`] it signs in through (the transport, with no token of its own,
//! and the configuration), client credentials proven by a secret or an assertion, the token
//! answer and its lifetime, and the refusal explained by its AADSTS code (exit 3).

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::assertion::JWT_BEARER;
use crate::config::Config;
use crate::error::{Error, Kind, Result};
use crate::http::{Auth, Method, NoTokens, Request, Response, Service, Transport};
use crate::output::Reporter;
use crate::urls::base;

/// What a credential source signs in through: the transport (its sign-in requests carry no
/// token) and the run's configuration.
#[derive(Clone, Copy)]
pub struct Login<'a> {
    transport: &'a Transport,
    cfg: &'a Config,
}

impl<'a> Login<'a> {
    pub fn new(transport: &'a Transport, cfg: &'a Config) -> Self {
        Login { transport, cfg }
    }
    pub fn config(&self) -> &'a Config {
        self.cfg
    }
    pub fn reporter(&self) -> &'a Reporter {
        self.transport.reporter()
    }
    /// Sends a sign-in request (with retries, within the deadline).
    pub async fn send(&self, req: Request) -> Result<Response> {
        self.transport.send(req, &NoTokens).await
    }
}

/// The longest lifetime believed from a token answer: Entra tokens live 60–90 minutes (up to
/// 24 h with a lifetime policy), and `expires_in` comes from the wire, so a huge value must not
/// overflow `Instant` (a panic, an abort in release builds) or keep a token for ever.
pub(super) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// When a token answered at `now` with `expires_in` seconds expires, clamped.
pub(super) fn expiry(now: Instant, expires_in: u64) -> Instant {
    let life = Duration::from_secs(expires_in).min(MAX_TOKEN_LIFETIME);
    now.checked_add(life).unwrap_or(now)
}

pub(super) fn token_url(cfg: &Config) -> Result<String> {
    Ok(format!(
        "{}/{}/oauth2/v2.0/token",
        base(&cfg.authority),
        crate::odata::encode(cfg.tenant()?)
    ))
}

/// Client credentials for any app: the admin's service principal, or verify-sync's test of the
/// Marketo app's own secret. Errors carry the AADSTS code and name `who`.
pub async fn client_credentials(
    login: &Login<'_>,
    client_id: &str,
    secret: &SecretString,
    resource: &str,
    who: &str,
) -> Result<(SecretString, u64)> {
    let proof = ("client_secret".into(), secret.expose_secret().to_string());
    client_credentials_with(login, client_id, vec![proof], resource, who).await
}

/// Client credentials proven by a client assertion (a certificate's, or a federated token):
/// `client_assertion_type` jwt-bearer, the assertion redacted in every trace.
pub async fn client_assertion_credentials(
    login: &Login<'_>,
    client_id: &str,
    assertion: &SecretString,
    resource: &str,
    who: &str,
) -> Result<(SecretString, u64)> {
    let proof = vec![
        ("client_assertion_type".into(), JWT_BEARER.into()),
        (
            "client_assertion".into(),
            assertion.expose_secret().to_string(),
        ),
    ];
    client_credentials_with(login, client_id, proof, resource, who).await
}

pub(super) async fn client_credentials_with(
    login: &Login<'_>,
    client_id: &str,
    proof: Vec<(String, String)>,
    resource: &str,
    who: &str,
) -> Result<(SecretString, u64)> {
    let cfg = login.config();
    let mut form = vec![
        ("grant_type".into(), "client_credentials".into()),
        ("client_id".into(), client_id.to_string()),
    ];
    form.extend(proof);
    form.push((
        "scope".into(),
        format!("{}/.default", resource.trim_end_matches('/')),
    ));
    let req = Request::new(Method::Post, Service::Login, token_url(cfg)?)
        .auth(Auth::None)
        .form(form);
    let resp = login.send(req).await.map_err(|e| login_error(e, who))?;
    token_from(&resp.json()?)
}

pub(super) fn token_from(v: &Value) -> Result<(SecretString, u64)> {
    let t = v["access_token"]
        .as_str()
        .ok_or_else(|| Error::auth("the token endpoint answered without an access_token"))?;
    let exp = v["expires_in"]
        .as_u64()
        .or_else(|| v["expires_in"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(3600);
    Ok((SecretString::from(t.to_string()), exp))
}

/// Turns a token-endpoint refusal into exit 3 with the credential source named and the AADSTS
/// code explained where we know what to do about it.
pub(super) fn login_error(e: Error, who: &str) -> Error {
    if e.kind == Kind::Timeout || e.service().is_none() {
        return e.context(format!("signing in with {who}"));
    }
    let codes = e
        .service()
        .map(|s| s.error_codes.clone())
        .unwrap_or_default();
    let hint = if codes.contains(&7000215) {
        "the client secret is wrong: use the secret's value, not its id"
    } else if codes.contains(&7000222) {
        "the client secret has expired: create a new one"
    } else if codes.contains(&700016) {
        "the client id is not an application of this tenant: check --tenant and the client id"
    } else if codes.contains(&90002) {
        "the tenant was not found: check --tenant and --cloud"
    } else if codes.contains(&500011) {
        "the resource is not known in this tenant: check --dynamics-url"
    } else if codes.contains(&65001) {
        "admin consent is missing: run grant-consent"
    } else if codes.contains(&700027) {
        "the certificate is not registered on the app, or the assertion's signature does not \
         verify: upload this certificate's public part to the app registration (Certificates & \
         secrets), or point AZURE_CLIENT_CERTIFICATE_PATH at the certificate the app has"
    } else if codes.contains(&70021) {
        "the app has no federated credential for this token: add one whose issuer, subject and \
         audience (api://AzureADTokenExchange) match it, or check AZURE_CLIENT_ID"
    } else if codes.contains(&700024) {
        "the assertion is expired or not yet valid: check this machine's clock; a federated \
         token file is rotated by the platform, so re-run the job if it had expired"
    } else if codes.contains(&700023) {
        "the assertion was made for another token endpoint: check --tenant, --cloud and \
         --authority-host"
    } else if codes.contains(&50027) || codes.contains(&700021) {
        "the assertion is malformed or names another app: check AZURE_CLIENT_ID and the token file"
    } else {
        "check the credential and the tenant"
    };
    e.with_kind(Kind::Auth)
        .context(format!("signing in with {who}"))
        .with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_huge_expires_in_is_clamped_not_an_overflow() {
        let now = Instant::now();
        assert_eq!(expiry(now, u64::MAX), now + MAX_TOKEN_LIFETIME);
        assert_eq!(expiry(now, 3599), now + Duration::from_secs(3599));
        let (_, exp) = token_from(&json!({"access_token": "x", "expires_in": u64::MAX})).unwrap();
        assert_eq!(expiry(now, exp), now + MAX_TOKEN_LIFETIME);
    }
}
