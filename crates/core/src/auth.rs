//! The credential chain (design.md, "Authentication"): the first source that works gives the
//! admin's tokens for Graph and for the Dynamics org.
//!
//! 1. `env`: a service principal from `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET` (client
//!    credentials). `AZURE_CLIENT_CERTIFICATE_PATH` is recognised and reported as not supported
//!    yet — the slot is here so a certificate assertion can be added without touching callers.
//! 2. `cache`: the refresh token an earlier device-code sign-in saved (0600, atomically written,
//!    keyed by authority, tenant and client id); Entra refresh tokens work across resources, so
//!    one sign-in serves Graph and Dynamics.
//! 3. `az`: `az account get-access-token --scope ... --tenant ...` when `az` is on PATH.
//! 4. `device-code`: only when stderr is a terminal; the refresh token is then cached, so in a
//!    pipeline the first tool prompts and the rest reuse it.
//!
//! Tokens are requested lazily by the HTTP layer, so a tool has read all its stdin before any
//! sign-in can prompt.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::cli::AuthSource;
use crate::config::{Config, base};
use crate::error::{Error, Kind, Result};
use crate::http::{Auth, Http, Method, Request, Service};

pub struct TokenProvider {
    tokens: Mutex<HashMap<String, (SecretString, Instant)>>,
    /// The source that worked first; later resources use it too.
    chosen: Mutex<Option<AuthSource>>,
    /// Held while a token is acquired: requests sent concurrently (verify-sync's checks) share
    /// one sign-in per resource instead of each signing in, and a device-code prompt is never
    /// shown twice at once.
    acquiring: Mutex<()>,
}

impl TokenProvider {
    pub fn new(_cfg: &Config) -> Self {
        TokenProvider {
            tokens: Mutex::new(HashMap::new()),
            chosen: Mutex::new(None),
            acquiring: Mutex::new(()),
        }
    }

    /// A bearer token for `resource` (e.g. `https://graph.microsoft.com`).
    pub async fn token(&self, http: &Http, resource: &str) -> Result<SecretString> {
        let resource = resource.trim_end_matches('/').to_string();
        if let Some(t) = self.cached(&resource).await {
            return Ok(t);
        }
        let _one_at_a_time = self.acquiring.lock().await;
        // Another request may have signed in for this resource while this one waited.
        if let Some(t) = self.cached(&resource).await {
            return Ok(t);
        }
        let (token, expires_in) = self.acquire(http, &resource).await?;
        self.tokens.lock().await.insert(
            resource,
            (token.clone(), expiry(Instant::now(), expires_in)),
        );
        Ok(token)
    }

    /// A cached token for `resource` that lives for at least another minute.
    async fn cached(&self, resource: &str) -> Option<SecretString> {
        let cache = self.tokens.lock().await;
        let (t, exp) = cache.get(resource)?;
        (*exp > Instant::now() + Duration::from_secs(60)).then(|| t.clone())
    }

    async fn acquire(&self, http: &Http, resource: &str) -> Result<(SecretString, u64)> {
        let cfg = http.config();
        let order: Vec<AuthSource> = match (cfg.auth, *self.chosen.lock().await) {
            (Some(a), _) => vec![a],
            (None, Some(c)) => vec![c],
            (None, None) => vec![
                AuthSource::Env,
                AuthSource::Cache,
                AuthSource::Az,
                AuthSource::DeviceCode,
            ],
        };
        let explicit = order.len() == 1;
        let mut tried = Vec::new();
        for src in order {
            let got = match src {
                AuthSource::Env => from_env(http, resource, explicit).await?,
                AuthSource::Cache => from_cache(http, resource, explicit).await?,
                AuthSource::Az => from_az(http, resource, explicit).await?,
                AuthSource::DeviceCode => from_device_code(http, resource, explicit).await?,
            };
            match got {
                Some(t) => {
                    *self.chosen.lock().await = Some(src);
                    return Ok(t);
                }
                None => tried.push(source_name(src)),
            }
        }
        Err(Error::auth(format!(
            "no credential to sign in with (tried: {})",
            tried.join(", ")
        ))
        .with_hint(
            "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal, \
             sign in with `az login`, or run the tool on a terminal to sign in with a device code",
        ))
    }
}

/// A string claim from a JWT's payload, without checking the signature (the token came from the
/// authority over TLS; this only reads what it says about itself).
pub fn jwt_claim(token: &SecretString, claim: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get(claim)?.as_str().map(str::to_string)
}

/// The longest lifetime believed from a token answer: Entra tokens live 60–90 minutes (up to
/// 24 h with a lifetime policy), and `expires_in` comes from the wire, so a huge value must not
/// overflow `Instant` (a panic, an abort in release builds) or keep a token for ever.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// When a token answered at `now` with `expires_in` seconds expires, clamped.
fn expiry(now: Instant, expires_in: u64) -> Instant {
    let life = Duration::from_secs(expires_in).min(MAX_TOKEN_LIFETIME);
    now.checked_add(life).unwrap_or(now)
}

/// How long a token cache or `--ca-file` may be: far more than any real one, and a bound on
/// what a wrong path can make the tool read.
pub(crate) const MAX_SMALL_FILE: u64 = 4 * 1024 * 1024;

/// Who a token was issued to and what it may do, from its claims (unchecked, as [`jwt_claim`]).
/// `None` when the token is not a readable JWT.
pub fn token_caller(token: &SecretString) -> Option<crate::error::Caller> {
    use base64::Engine;
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
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
    Some(crate::error::Caller {
        app_id: text("appid").or_else(|| text("azp")),
        delegated,
        roles,
        scopes,
    })
}

fn source_name(s: AuthSource) -> &'static str {
    match s {
        AuthSource::Env => "environment service principal (AZURE_CLIENT_ID/AZURE_CLIENT_SECRET)",
        AuthSource::Cache => "token cache",
        AuthSource::Az => "Azure CLI",
        AuthSource::DeviceCode => "device-code sign-in",
    }
}

fn token_url(cfg: &Config) -> Result<String> {
    Ok(format!(
        "{}/{}/oauth2/v2.0/token",
        base(&cfg.authority),
        crate::odata::encode(cfg.tenant()?)
    ))
}

/// Client credentials for any app: the admin's service principal, or verify-sync's test of the
/// Marketo app's own secret. Errors carry the AADSTS code and name `who`.
pub async fn client_credentials(
    http: &Http,
    client_id: &str,
    secret: &SecretString,
    resource: &str,
    who: &str,
) -> Result<(SecretString, u64)> {
    let cfg = http.config();
    let req = Request::new(Method::Post, Service::Login, token_url(cfg)?)
        .auth(Auth::None)
        .form(vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), client_id.to_string()),
            ("client_secret".into(), secret.expose_secret().to_string()),
            (
                "scope".into(),
                format!("{}/.default", resource.trim_end_matches('/')),
            ),
        ]);
    let resp = http.send(req).await.map_err(|e| login_error(e, who))?;
    token_from(&resp.json()?)
}

fn token_from(v: &Value) -> Result<(SecretString, u64)> {
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
fn login_error(e: Error, who: &str) -> Error {
    if e.kind == Kind::Timeout || e.service.is_none() {
        return e.context(format!("signing in with {who}"));
    }
    let codes = e
        .service
        .as_ref()
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
    } else {
        "check the credential and the tenant"
    };
    Error {
        kind: Kind::Auth,
        ..e
    }
    .context(format!("signing in with {who}"))
    .with_hint(hint)
}

async fn from_env(
    http: &Http,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let cfg = http.config();
    let Some(cred) = &cfg.env_credential else {
        if explicit {
            return Err(Error::auth("--auth env: AZURE_CLIENT_ID is not set")
                .with_hint("set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"));
        }
        return Ok(None);
    };
    let Some(secret) = &cred.secret else {
        if cred.certificate_path.is_some() {
            return Err(Error::auth(
                "AZURE_CLIENT_CERTIFICATE_PATH is set, but certificate credentials are not supported yet",
            )
            .with_hint("use AZURE_CLIENT_SECRET for the service principal, or unset AZURE_CLIENT_ID to use az or device-code sign-in"));
        }
        return Err(Error::auth("AZURE_CLIENT_ID is set but AZURE_CLIENT_SECRET is not")
            .with_hint("set AZURE_CLIENT_SECRET, or unset AZURE_CLIENT_ID to use az or device-code sign-in"));
    };
    let who = format!(
        "the environment service principal {} (AZURE_CLIENT_ID/AZURE_CLIENT_SECRET)",
        cred.client_id
    );
    client_credentials(http, &cred.client_id, secret, resource, &who)
        .await
        .map(Some)
}

fn cache_key(cfg: &Config) -> Result<String> {
    Ok(format!(
        "{}|{}|{}",
        base(&cfg.authority),
        cfg.tenant()?,
        cfg.login_client_id
    ))
}

fn read_cache(path: &Path) -> serde_json::Map<String, Value> {
    // A FIFO or device named by MKTO_S2S_TOKEN_CACHE must not block the tool: read regular
    // files only.
    crate::fsutil::read_regular(path, MAX_SMALL_FILE)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

fn save_refresh_token(cfg: &Config, refresh: &str) -> Result<()> {
    let Some(path) = &cfg.cache_file else {
        return Ok(());
    };
    let mut all = read_cache(path);
    all.insert(cache_key(cfg)?, json!({"refresh_token": refresh}));
    if let Some(dir) = path.parent() {
        // Only directories created here are made private; an existing one (the user's cache
        // directory, or `/tmp` for `MKTO_S2S_TOKEN_CACHE=/tmp/x`) is not ours to chmod. The
        // file itself is 0600 either way.
        crate::fsutil::create_private_dir_all(dir).map_err(|e| {
            Error::internal(format!(
                "cannot create the token cache directory {}: {e}",
                crate::output::sanitize(&dir.display().to_string())
            ))
        })?;
    }
    let text = serde_json::to_vec(&Value::Object(all)).expect("JSON serialises");
    crate::fsutil::write_file(path, &text, 0o600, "the token cache (MKTO_S2S_TOKEN_CACHE)")
}

async fn from_cache(
    http: &Http,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let cfg = http.config();
    let refresh = cfg.cache_file.as_deref().map(read_cache).and_then(|m| {
        m.get(&cache_key(cfg).ok()?)?["refresh_token"]
            .as_str()
            .map(str::to_string)
    });
    let Some(refresh) = refresh else {
        if explicit {
            return Err(
                Error::auth("--auth cache: no cached sign-in for this tenant")
                    .with_hint("sign in once with --auth device-code on a terminal"),
            );
        }
        return Ok(None);
    };
    let req = Request::new(Method::Post, Service::Login, token_url(cfg)?).form(vec![
        ("grant_type".into(), "refresh_token".into()),
        ("client_id".into(), cfg.login_client_id.clone()),
        ("refresh_token".into(), refresh),
        (
            "scope".into(),
            format!("{resource}/.default offline_access"),
        ),
    ]);
    match http.send(req).await {
        Ok(resp) => {
            let v = resp.json()?;
            if let Some(r) = v["refresh_token"].as_str() {
                save_refresh_token(cfg, r)?;
            }
            token_from(&v).map(Some)
        }
        // An expired or revoked refresh token: fall through to the next source.
        Err(e) if !explicit && e.kind != Kind::Timeout => {
            http.reporter()
                .trace(1, &format!("cached sign-in no longer works ({e})"));
            Ok(None)
        }
        Err(e) => Err(login_error(e, "the cached sign-in")),
    }
}

async fn from_az(
    http: &Http,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let cfg = http.config();
    let mut cmd = tokio::process::Command::new("az");
    cmd.args([
        "account",
        "get-access-token",
        "--output",
        "json",
        "--scope",
        &format!("{resource}/.default"),
        "--tenant",
        cfg.tenant()?,
    ])
    .stdin(std::process::Stdio::null())
    // Dropped on timeout (below) or when the tool stops: the child is killed, not orphaned.
    .kill_on_drop(true);
    // `az` can hang (a proxy, a prompt, a broken install): it gets what is left of --timeout,
    // like every other wait.
    let remaining = cfg.remaining();
    let out = match tokio::time::timeout(remaining, cmd.output()).await {
        Err(_) => {
            return Err(Error::timeout(format!(
                "the Azure CLI (az account get-access-token) did not answer within --timeout \
                 ({:.0} s left); it was stopped",
                remaining.as_secs_f64()
            ))
            .with_hint(
                "run `az account get-access-token` by hand to see what it waits for, or pass \
                 --auth env / --auth device-code",
            ));
        }
        Ok(Ok(o)) => o,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            if explicit {
                return Err(Error::auth("--auth az: the Azure CLI (az) is not on PATH"));
            }
            return Ok(None);
        }
        Ok(Err(e)) => return Err(Error::auth(format!("cannot run az: {e}"))),
    };
    if !out.status.success() {
        if explicit {
            let msg = String::from_utf8_lossy(&out.stderr);
            let first = msg
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            return Err(
                Error::auth(format!("the Azure CLI could not get a token: {first}"))
                    .with_hint("run `az login --tenant <tenant>` first"),
            );
        }
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| Error::auth("the Azure CLI printed something that is not JSON"))?;
    let t = v["accessToken"]
        .as_str()
        .ok_or_else(|| Error::auth("the Azure CLI answered without accessToken"))?;
    Ok(Some((SecretString::from(t.to_string()), 3000)))
}

async fn from_device_code(
    http: &Http,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let cfg = http.config();
    let rep = http.reporter();
    if !rep.is_terminal() {
        if explicit {
            return Err(Error::auth(
                "--auth device-code needs stderr on a terminal to show the sign-in code",
            ));
        }
        return Ok(None);
    }
    let url = format!(
        "{}/{}/oauth2/v2.0/devicecode",
        base(&cfg.authority),
        crate::odata::encode(cfg.tenant()?)
    );
    let resp = http
        .send(Request::new(Method::Post, Service::Login, url).form(vec![
            ("client_id".into(), cfg.login_client_id.clone()),
            (
                "scope".into(),
                format!("{resource}/.default offline_access"),
            ),
        ]))
        .await
        .map_err(|e| login_error(e, "device-code sign-in"))?;
    let v = resp.json()?;
    let device_code = v["device_code"]
        .as_str()
        .ok_or_else(|| Error::auth("the device-code endpoint answered without a device_code"))?
        .to_string();
    let message = v["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "To sign in, open {} and enter the code {}",
                v["verification_uri"].as_str().unwrap_or("the sign-in page"),
                v["user_code"].as_str().unwrap_or("?")
            )
        });
    rep.warn(&message);
    // Both numbers come from the wire: clamp them (an interval of 2^64-1 s or an expiry past
    // `Instant`'s range would panic on the additions below).
    let mut interval = Duration::from_secs(v["interval"].as_u64().unwrap_or(5).clamp(1, 60));
    let expires = expiry(Instant::now(), v["expires_in"].as_u64().unwrap_or(900));
    let start = Instant::now();
    loop {
        let req = Request::new(Method::Post, Service::Login, token_url(cfg)?)
            .form(vec![
                (
                    "grant_type".into(),
                    "urn:ietf:params:oauth:grant-type:device_code".into(),
                ),
                ("client_id".into(), cfg.login_client_id.clone()),
                ("device_code".into(), device_code.clone()),
            ])
            .accept(400);
        let resp = http.send(req).await?;
        let v = resp.json()?;
        if resp.status == 200 {
            rep.clear_progress();
            if let Some(r) = v["refresh_token"].as_str() {
                save_refresh_token(cfg, r)?;
            }
            return token_from(&v).map(Some);
        }
        match v["error"].as_str().unwrap_or_default() {
            "authorization_pending" => {}
            "slow_down" => {
                interval = (interval + Duration::from_secs(5)).min(Duration::from_secs(60))
            }
            other => {
                let se = crate::http::parse_service_error(Service::Login, &resp);
                return Err(login_error(
                    Error::from_service(format!("device-code sign-in ({other})"), se),
                    "device-code sign-in",
                ));
            }
        }
        if Instant::now()
            .checked_add(interval)
            .is_none_or(|t| t > expires.min(cfg.deadline))
        {
            return Err(Error::auth("device-code sign-in was not completed in time")
                .with_hint("run the tool again and complete the sign-in in the browser"));
        }
        rep.progress("waiting for the device-code sign-in", start.elapsed());
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_expires_in_is_clamped_not_an_overflow() {
        let now = Instant::now();
        assert_eq!(expiry(now, u64::MAX), now + MAX_TOKEN_LIFETIME);
        assert_eq!(expiry(now, 3599), now + Duration::from_secs(3599));
        let (_, exp) = token_from(&json!({"access_token": "x", "expires_in": u64::MAX})).unwrap();
        assert_eq!(expiry(now, exp), now + MAX_TOKEN_LIFETIME);
    }
}
