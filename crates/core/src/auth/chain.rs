//! The credential chain (design.md, "Authentication"): the first source that is set up gives the
//! admin's tokens for Graph and for the Dynamics org. The order follows azure-identity's
//! `DefaultAzureCredential` (environment, workload identity, managed identity, then developer
//! sign-ins), so a pipeline that works with the Azure SDKs works here unchanged:
//!
//! 1. `env`: `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET` (client credentials).
//! 2. `certificate`: `AZURE_CLIENT_ID` + `AZURE_CLIENT_CERTIFICATE_PATH`, a client assertion
//!    signed with the certificate's key ([`super::assertion`]).
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
//! One prompt per sign-in: the refresh token a device-code or cached sign-in
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
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::endpoint::{Login, expiry};
use super::{az, cache, certificate, device_code, env, jwt, managed_identity, workload_identity};
use crate::cli::AuthSource;
use crate::config::{Config, EnvCredential};
use crate::error::{Error, Kind, Result};

#[derive(Default)]
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
    /// A bearer token for `resource` (e.g. `https://graph.microsoft.com`).
    pub async fn token(&self, login: &Login<'_>, resource: &str) -> Result<SecretString> {
        let resource = resource.trim_end_matches('/').to_string();
        if let Some(t) = self.cached(&resource).await {
            return Ok(t);
        }
        let _one_at_a_time = self.acquiring.lock().await;
        // Another request may have signed in for this resource while this one waited.
        if let Some(t) = self.cached(&resource).await {
            return Ok(t);
        }
        let (token, expires_in) = match self.redeem_run_refresh(login, &resource).await? {
            Some(t) => t,
            None => self.acquire(login, &resource).await?,
        };
        self.announce(login, &token);
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
    /// The target line, printed before any sign-in, can only say how they would sign in.
    fn announce(&self, login: &Login<'_>, token: &SecretString) {
        use std::sync::atomic::Ordering;
        if self.announced.swap(true, Ordering::Relaxed) {
            return;
        }
        // A service principal was named by the target line already; a person is known now.
        if let Some(user) = ["upn", "unique_name", "preferred_username"]
            .iter()
            .find_map(|c| jwt::claim(token, c))
        {
            login.reporter().say(&format!("signed in as {user}"));
        }
    }

    /// A token for `resource` from this run's refresh token, when a delegated sign-in gave one.
    async fn redeem_run_refresh(
        &self,
        login: &Login<'_>,
        resource: &str,
    ) -> Result<Option<(SecretString, u64)>> {
        let Some(refresh) = self.refresh.lock().await.clone() else {
            return Ok(None);
        };
        let cfg = login.config();
        let _one = cache::refresh_lock(cfg).await;
        match cache::redeem_refresh(login, resource, refresh.expose_secret()).await {
            Ok((token, expires, next)) => {
                if let Some(next) = next {
                    cache::save_refresh_token(cfg, next.expose_secret())?;
                    *self.refresh.lock().await = Some(next);
                }
                Ok(Some((token, expires)))
            }
            Err(e) if e.kind == Kind::Timeout => Err(e),
            // Spent or revoked: the credential chain decides what comes next.
            Err(e) => {
                login.reporter().trace(
                    1,
                    &format!("the run's sign-in could not be refreshed ({e})"),
                );
                *self.refresh.lock().await = None;
                Ok(None)
            }
        }
    }

    async fn acquire(&self, login: &Login<'_>, resource: &str) -> Result<(SecretString, u64)> {
        let cfg = login.config();
        let order: Vec<AuthSource> = match (cfg.auth, *self.chosen.lock().await) {
            (Some(a), _) => vec![a],
            (None, Some(c)) => vec![c],
            (None, None) => {
                env::incomplete_env_credential(cfg)?;
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
                AuthSource::Env => env::from_env(login, resource, explicit).await?,
                AuthSource::Certificate => {
                    certificate::from_certificate(login, resource, explicit).await?
                }
                AuthSource::WorkloadIdentity => {
                    workload_identity::from_workload_identity(login, resource, explicit).await?
                }
                AuthSource::ManagedIdentity => {
                    managed_identity::from_managed_identity(login, resource, explicit).await?
                }
                AuthSource::Cache => {
                    cache::from_cache(login, resource, explicit, &self.refresh).await?
                }
                AuthSource::Az => az::from_az(login, resource, explicit).await?,
                AuthSource::DeviceCode => {
                    device_code::from_device_code(login, resource, explicit, &self.refresh).await?
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

/// Who this run signs in as, as far as the configuration tells before any request (the target
/// line): the service principal and what proves it, the managed identity, or a person's sign-in
/// that is named once its token arrives.
pub fn describe(cfg: &Config) -> String {
    let from_doc = if cfg.doc_sign_in.is_some() {
        " (the document's sign_in)"
    } else {
        ""
    };
    let cred = cfg.env_credential.as_ref();
    let sp =
        |c: &EnvCredential, how: &str| format!("service principal {} {how}{from_doc}", c.client_id);
    let with_cert = |c: &EnvCredential| {
        let p = c
            .certificate_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        sp(c, &format!("with the certificate {p}"))
    };
    let person = |how: &str| format!("{how} (named once signed in){from_doc}");
    let mi = || match &cfg.managed_identity.client_id {
        Some(id) => format!("managed identity {id}{from_doc}"),
        None => format!("the managed identity{from_doc}"),
    };
    match (cfg.auth, cred) {
        (Some(AuthSource::Env), Some(c)) => sp(c, "with its client secret"),
        (Some(AuthSource::Certificate), Some(c)) => with_cert(c),
        (Some(AuthSource::WorkloadIdentity), Some(c)) => sp(c, "with its federated token file"),
        (Some(AuthSource::ManagedIdentity), _) => mi(),
        (Some(AuthSource::Cache), _) => person("the cached sign-in"),
        (Some(AuthSource::Az), _) => person("the Azure CLI's login"),
        (Some(AuthSource::DeviceCode), _) => person("a device-code sign-in"),
        (Some(_), None) => "the environment service principal (AZURE_CLIENT_ID is not set)".into(),
        (None, Some(c)) if c.secret.is_some() => sp(c, "with its client secret"),
        (None, Some(c)) if c.certificate_path.is_some() => with_cert(c),
        (None, Some(c)) if c.federated_token_file.is_some() => {
            sp(c, "with its federated token file")
        }
        (None, _) if cfg.managed_identity.has_identity_endpoint() => mi(),
        (None, _) => person("your sign-in: token cache, az or device code"),
    }
}
