//! The credential chain (design.md, "Authentication"): the first source that is set up gives the
//! admin's tokens for Graph and for the Dynamics org. The order follows azure-identity's
//! `DefaultAzureCredential` (environment, workload identity, managed identity, then developer
//! sign-ins), so a pipeline that works with the Azure SDKs works here unchanged:
//!
//! 1. `env`: `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET` (client credentials).
//! 2. `certificate`: `AZURE_CLIENT_ID` + `AZURE_CLIENT_CERTIFICATE_PATH`, a client assertion
//!    signed with the certificate's key ([`crate::assertion`]).
//! 3. `workload-identity`: `AZURE_CLIENT_ID` + `AZURE_FEDERATED_TOKEN_FILE`, the platform's
//!    token (read at each sign-in) sent as the client assertion.
//! 4. `managed-identity`: in the chain only when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are
//!    set (App Service, Functions, Container Apps). The VM metadata endpoint (IMDS,
//!    169.254.169.254) is used only on `--auth managed-identity`: probing it on every laptop
//!    run would cost a timeout and send requests to an address the user did not name.
//! 5. `cache`: the refresh token an earlier device-code sign-in saved (0600, atomically written,
//!    keyed by authority, tenant and client id); Entra refresh tokens work across resources, so
//!    one sign-in serves Graph and Dynamics.
//! 6. `az`: `az account get-access-token --scope ... --tenant ...` when `az` is on PATH.
//! 7. `device-code`: only when stderr is a terminal; the refresh token is then cached, so in a
//!    pipeline the first tool prompts and the rest reuse it.
//!
//! One prompt per sign-in (issue 21.8): the refresh token a device-code or cached sign-in
//! returns is kept for the run, and the second audience (Dataverse after Graph) is redeemed from
//! it instead of a second device code. Refreshes are serialised per cache key across the
//! process, so `verify-sync --fleet --jobs 4` with one token cache does not race four redeems
//! of one refresh token (Entra rotates it: the losers would hold a spent one).
//!
//! `AZURE_CLIENT_ID` set with none of the secret, certificate or token file (and no managed
//! identity endpoint) is an error rather than a silent fall-through to another identity.
//!
//! Tokens are requested lazily by the HTTP layer, so a tool has read all its stdin before any
//! sign-in can prompt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::cli::AuthSource;
use crate::config::{Config, EnvCredential, base};
use crate::error::{Error, Kind, Result};
use crate::http::{Auth, Http, Method, Request, Service};
pub use crate::signin::describe;

pub struct TokenProvider {
    tokens: Mutex<HashMap<String, (SecretString, Instant)>>,
    /// The source that worked first; later resources use it too.
    chosen: Mutex<Option<AuthSource>>,
    /// Held while a token is acquired: requests sent concurrently (verify-sync's checks) share
    /// one sign-in per resource instead of each signing in, and a device-code prompt is never
    /// shown twice at once.
    acquiring: Mutex<()>,
    /// The refresh token of this run's delegated sign-in (device code or cache): a token for
    /// another resource is redeemed from it, never with a second prompt.
    refresh: Mutex<Option<SecretString>>,
    /// Who signed in, said once (the target line names the sign-in before it is known).
    announced: std::sync::atomic::AtomicBool,
}

impl TokenProvider {
    pub fn new(_cfg: &Config) -> Self {
        TokenProvider {
            tokens: Mutex::new(HashMap::new()),
            chosen: Mutex::new(None),
            acquiring: Mutex::new(()),
            refresh: Mutex::new(None),
            announced: std::sync::atomic::AtomicBool::new(false),
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
        let (token, expires_in) = match self.redeem_run_refresh(http, &resource).await? {
            Some(t) => t,
            None => self.acquire(http, &resource).await?,
        };
        self.announce(http, &token);
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

    /// The first token of a person's sign-in names them, once: `signed in as admin@contoso.com`.
    /// The target line printed before could only say how they would sign in (issue 22.1).
    fn announce(&self, http: &Http, token: &SecretString) {
        use std::sync::atomic::Ordering;
        if self.announced.swap(true, Ordering::Relaxed) {
            return;
        }
        // A service principal was named by the target line already; a person is known now.
        if let Some(user) = ["upn", "unique_name", "preferred_username"]
            .iter()
            .find_map(|c| jwt_claim(token, c))
        {
            http.reporter().say(&format!("signed in as {user}"));
        }
    }

    /// A token for `resource` from this run's refresh token, when a delegated sign-in gave one.
    async fn redeem_run_refresh(
        &self,
        http: &Http,
        resource: &str,
    ) -> Result<Option<(SecretString, u64)>> {
        let Some(refresh) = self.refresh.lock().await.clone() else {
            return Ok(None);
        };
        let cfg = http.config();
        let _one = refresh_lock(cfg).await;
        match redeem_refresh(http, resource, refresh.expose_secret()).await {
            Ok((token, expires, next)) => {
                if let Some(next) = next {
                    save_refresh_token(cfg, next.expose_secret())?;
                    *self.refresh.lock().await = Some(next);
                }
                Ok(Some((token, expires)))
            }
            Err(e) if e.kind == Kind::Timeout => Err(e),
            // Spent or revoked: the credential chain decides what comes next.
            Err(e) => {
                http.reporter().trace(
                    1,
                    &format!("the run's sign-in could not be refreshed ({e})"),
                );
                *self.refresh.lock().await = None;
                Ok(None)
            }
        }
    }

    async fn acquire(&self, http: &Http, resource: &str) -> Result<(SecretString, u64)> {
        let cfg = http.config();
        let order: Vec<AuthSource> = match (cfg.auth, *self.chosen.lock().await) {
            (Some(a), _) => vec![a],
            (None, Some(c)) => vec![c],
            (None, None) => {
                incomplete_env_credential(cfg)?;
                vec![
                    AuthSource::Env,
                    AuthSource::Certificate,
                    AuthSource::WorkloadIdentity,
                    AuthSource::ManagedIdentity,
                    AuthSource::Cache,
                    AuthSource::Az,
                    AuthSource::DeviceCode,
                ]
            }
        };
        let explicit = order.len() == 1;
        let mut tried = Vec::new();
        for src in order {
            let got = match src {
                AuthSource::Env => from_env(http, resource, explicit).await?,
                AuthSource::Certificate => from_certificate(http, resource, explicit).await?,
                AuthSource::WorkloadIdentity => {
                    from_workload_identity(http, resource, explicit).await?
                }
                AuthSource::ManagedIdentity => {
                    from_managed_identity(http, resource, explicit).await?
                }
                AuthSource::Cache => from_cache(http, resource, explicit, &self.refresh).await?,
                AuthSource::Az => from_az(http, resource, explicit).await?,
                AuthSource::DeviceCode => {
                    from_device_code(http, resource, explicit, &self.refresh).await?
                }
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
            "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or \
             AZURE_CLIENT_CERTIFICATE_PATH, or AZURE_FEDERATED_TOKEN_FILE) for a service principal, \
             pass --auth managed-identity on an Azure VM, sign in with `az login`, or run the tool \
             on a terminal to sign in with a device code",
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
        AuthSource::Certificate => "certificate (AZURE_CLIENT_CERTIFICATE_PATH)",
        AuthSource::WorkloadIdentity => "workload identity (AZURE_FEDERATED_TOKEN_FILE)",
        AuthSource::ManagedIdentity => "managed identity (IDENTITY_ENDPOINT)",
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
    let proof = ("client_secret".into(), secret.expose_secret().to_string());
    client_credentials_with(http, client_id, vec![proof], resource, who).await
}

/// Client credentials proven by a client assertion (a certificate's, or a federated token):
/// `client_assertion_type` jwt-bearer, the assertion redacted in every trace.
pub async fn client_assertion_credentials(
    http: &Http,
    client_id: &str,
    assertion: &SecretString,
    resource: &str,
    who: &str,
) -> Result<(SecretString, u64)> {
    let proof = vec![
        (
            "client_assertion_type".into(),
            crate::assertion::JWT_BEARER.into(),
        ),
        (
            "client_assertion".into(),
            assertion.expose_secret().to_string(),
        ),
    ];
    client_credentials_with(http, client_id, proof, resource, who).await
}

async fn client_credentials_with(
    http: &Http,
    client_id: &str,
    proof: Vec<(String, String)>,
    resource: &str,
    who: &str,
) -> Result<(SecretString, u64)> {
    let cfg = http.config();
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
        if explicit {
            return Err(Error::auth(
                "--auth env: AZURE_CLIENT_ID is set but AZURE_CLIENT_SECRET is not",
            )
            .with_hint(
                "set AZURE_CLIENT_SECRET, or pass --auth certificate / --auth \
                         workload-identity for the other environment credentials",
            ));
        }
        return Ok(None);
    };
    let who = format!(
        "the environment service principal {} (AZURE_CLIENT_ID/AZURE_CLIENT_SECRET)",
        cred.client_id
    );
    client_credentials(http, &cred.client_id, secret, resource, &who)
        .await
        .map(Some)
}

/// `AZURE_CLIENT_ID` set with nothing that proves it and no managed identity to use it for:
/// an error, not a silent fall-through to the cache or az (which would act as someone else).
fn incomplete_env_credential(cfg: &Config) -> Result<()> {
    let Some(cred) = &cfg.env_credential else {
        return Ok(());
    };
    if cred.secret.is_some()
        || cred.certificate_path.is_some()
        || cred.federated_token_file.is_some()
        || cfg.managed_identity.has_identity_endpoint()
    {
        return Ok(());
    }
    Err(Error::auth(
        "AZURE_CLIENT_ID is set but none of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH \
         or AZURE_FEDERATED_TOKEN_FILE is",
    )
    .with_hint(
        "set one of them for the service principal, pass --auth managed-identity for a \
         user-assigned managed identity, or unset AZURE_CLIENT_ID to use az or device-code sign-in",
    ))
}

/// The file `var` names (`file` picks it from the environment credential) and the service
/// principal it belongs to. `None` when it is not set and the source was only tried as a link of
/// the chain; when it was asked for with `--auth flag`, the error says what to set (`hint`).
fn env_credential_file<'a>(
    cfg: &'a Config,
    flag: &str,
    var: &str,
    explicit: bool,
    hint: &str,
    file: fn(&EnvCredential) -> Option<&PathBuf>,
) -> Result<Option<(&'a EnvCredential, &'a Path)>> {
    let Some(cred) = cfg.env_credential.as_ref() else {
        if !explicit {
            return Ok(None);
        }
        return Err(
            Error::auth(format!("--auth {flag}: AZURE_CLIENT_ID is not set"))
                .with_hint(format!("set AZURE_TENANT_ID, AZURE_CLIENT_ID and {var}")),
        );
    };
    match file(cred) {
        Some(path) => Ok(Some((cred, path.as_path()))),
        None if !explicit => Ok(None),
        None => Err(Error::auth(format!("--auth {flag}: {var} is not set")).with_hint(hint)),
    }
}

async fn from_certificate(
    http: &Http,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let Some((cred, path)) = env_credential_file(
        http.config(),
        "certificate",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        explicit,
        "set it to a PEM file with the app's certificate and private key",
        |c| c.certificate_path.as_ref(),
    )?
    else {
        return Ok(None);
    };
    if cred.certificate_password_set {
        http.reporter().trace(
            1,
            "AZURE_CLIENT_CERTIFICATE_PASSWORD is set but not used: only PEM files with an \
             unencrypted key are supported",
        );
    }
    // Read at each sign-in, like the token file: a renewed certificate is picked up.
    let cert = crate::assertion::ClientCertificate::load(path)?;
    let assertion = cert.assertion(&cred.client_id, &token_url(http.config())?)?;
    let who = format!(
        "the certificate of {} (AZURE_CLIENT_CERTIFICATE_PATH, thumbprint x5t {})",
        cred.client_id,
        cert.x5t()
    );
    client_assertion_credentials(http, &cred.client_id, &assertion, resource, &who)
        .await
        .map(Some)
}

async fn from_workload_identity(
    http: &Http,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let Some((cred, path)) = env_credential_file(
        http.config(),
        "workload-identity",
        "AZURE_FEDERATED_TOKEN_FILE",
        explicit,
        "in GitHub Actions use azure/login with OIDC or write the job's ID token to a file; on \
         AKS label the pod for workload identity, which sets it",
        |c| c.federated_token_file.as_ref(),
    )?
    else {
        return Ok(None);
    };
    // Read fresh at every token request: the platform rotates the file, and a token read at
    // start could expire during a long publish.
    let assertion = crate::assertion::read_federated_token(path)?;
    let who = format!(
        "the workload identity of {} (AZURE_FEDERATED_TOKEN_FILE)",
        cred.client_id
    );
    client_assertion_credentials(http, &cred.client_id, &assertion, resource, &who)
        .await
        .map(Some)
}

/// A managed identity's token: the App Service protocol when `IDENTITY_ENDPOINT` and
/// `IDENTITY_HEADER` are set
/// (<https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference>),
/// else, only when asked for, the VM metadata endpoint
/// (<https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>).
async fn from_managed_identity(
    http: &Http,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let mi = &http.config().managed_identity;
    let encode =
        |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let client = mi
        .client_id
        .as_deref()
        .map(|c| format!("&client_id={}", encode(c)))
        .unwrap_or_default();
    let (req, who) = match (&mi.identity_endpoint, &mi.identity_header) {
        (Some(endpoint), Some(header)) => {
            let base = crate::config::check_url(endpoint, "IDENTITY_ENDPOINT")?;
            // A value that cannot be an HTTP header (a pasted line break) is bad input, not a
            // network fault: said at once, never retried until --timeout.
            if header
                .expose_secret()
                .chars()
                .any(|c| c.is_control() && c != '\t')
            {
                return Err(Error::usage(
                    "IDENTITY_HEADER holds a line break or another control character, so it cannot be sent as the X-IDENTITY-HEADER header",
                )
                .with_hint(
                    "set IDENTITY_HEADER to the value the platform gives (App Service, Functions and Container Apps set it themselves), without a CR or LF",
                ));
            }
            let url = format!(
                "{}?api-version=2019-08-01&resource={}{client}",
                base.as_str(),
                encode(resource)
            );
            let req = Request::new(Method::Get, Service::Login, url)
                .header("X-IDENTITY-HEADER", header.expose_secret());
            (req, "the managed identity (IDENTITY_ENDPOINT)")
        }
        _ if !explicit => return Ok(None),
        _ => {
            let url = format!(
                "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}{client}",
                base(&mi.imds),
                encode(resource)
            );
            // Off Azure nothing answers at 169.254.169.254: a few short attempts, then a clear
            // error, not retries until --timeout.
            let req = Request::new(Method::Get, Service::Login, url)
                .header("Metadata", "true")
                .timeout(Duration::from_secs(5))
                .attempts(3);
            (req, "the managed identity (VM metadata endpoint)")
        }
    };
    let resp = http.send(req).await.map_err(|e| {
        if e.service.is_none() && e.kind == Kind::Timeout {
            e.with_kind(Kind::Auth)
                .context(format!("signing in with {who}"))
                .with_hint(
                    "--auth managed-identity works on Azure: on a VM or scale set with a managed \
                     identity (the metadata endpoint), or where IDENTITY_ENDPOINT and \
                     IDENTITY_HEADER are set (App Service, Functions, Container Apps)",
                )
        } else if e.service.is_none() {
            // Refused before any answer could be read (a redirect): its own hint says why.
            e.context(format!("signing in with {who}"))
        } else {
            login_error(e, who).with_hint(
                "check that the resource has a managed identity, that AZURE_CLIENT_ID (if set) \
                 names one of its user-assigned identities, and that the identity has the \
                 permissions the tool needs",
            )
        }
    })?;
    let v = resp.json()?;
    managed_identity_token(&v).map(Some)
}

/// Both protocols answer `access_token` with `expires_on` (seconds since the epoch, as a
/// string); IMDS adds `expires_in`.
fn managed_identity_token(v: &Value) -> Result<(SecretString, u64)> {
    let num = |k: &str| {
        v[k].as_u64()
            .or_else(|| v[k].as_str().and_then(|s| s.trim().parse().ok()))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let expires_in = num("expires_in")
        .or_else(|| num("expires_on").map(|on| on.saturating_sub(now)))
        .unwrap_or(3600);
    let (token, _) = token_from(v)?;
    Ok((token, expires_in))
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

/// One refresh at a time per cache key in this process (a fleet run's documents share the
/// user's cache): the holder reads the cache after the previous holder saved its rotated token.
async fn refresh_lock(cfg: &Config) -> tokio::sync::OwnedMutexGuard<()> {
    static LOCKS: std::sync::OnceLock<
        std::sync::Mutex<HashMap<String, std::sync::Arc<Mutex<()>>>>,
    > = std::sync::OnceLock::new();
    let key = cache_key(cfg).unwrap_or_default();
    let lock = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default()
        .clone();
    lock.lock_owned().await
}

/// Redeems `refresh` for a token for `resource` with the login client: the access token, its
/// lifetime and the rotated refresh token, if one came back.
async fn redeem_refresh(
    http: &Http,
    resource: &str,
    refresh: &str,
) -> Result<(SecretString, u64, Option<SecretString>)> {
    let cfg = http.config();
    let req = Request::new(Method::Post, Service::Login, token_url(cfg)?).form(vec![
        ("grant_type".into(), "refresh_token".into()),
        ("client_id".into(), cfg.login_client_id.clone()),
        ("refresh_token".into(), refresh.to_string()),
        (
            "scope".into(),
            format!("{resource}/.default offline_access"),
        ),
    ]);
    let v = http.send(req).await?.json()?;
    let next = v["refresh_token"]
        .as_str()
        .map(|r| SecretString::from(r.to_string()));
    let (token, expires) = token_from(&v)?;
    Ok((token, expires, next))
}

async fn from_cache(
    http: &Http,
    resource: &str,
    explicit: bool,
    keep: &Mutex<Option<SecretString>>,
) -> Result<Option<(SecretString, u64)>> {
    let cfg = http.config();
    // Read under the lock: another document of a fleet run may have just rotated it.
    let _one = refresh_lock(cfg).await;
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
    match redeem_refresh(http, resource, &refresh).await {
        Ok((token, expires, next)) => {
            if let Some(next) = next {
                save_refresh_token(cfg, next.expose_secret())?;
                *keep.lock().await = Some(next);
            }
            Ok(Some((token, expires)))
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
    keep: &Mutex<Option<SecretString>>,
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
                *keep.lock().await = Some(SecretString::from(r.to_string()));
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
