//! Configuration resolved in one place: flag (or its environment variable), then the state
//! document, then the cloud's default. Every URL is checked here, before any request: https only,
//! except loopback hosts, which may use http so the emulator can serve (design.md, "Endpoints").

use std::path::PathBuf;
use std::time::{Duration, Instant};

use url::{Host, Url};

use crate::cli::{AuthSource, Cloud, CommonArgs};
use crate::error::{Error, Result};
use crate::state::StateDoc;

/// The Azure CLI's public client id: a first-party app that may obtain tokens for Graph and for
/// Dynamics orgs (power-platform `apps-to-allow.md`), used for device-code sign-in.
pub const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

#[derive(Debug, Clone)]
pub struct Config {
    pub tool: &'static str,
    pub tenant: Option<String>,
    pub cloud: Cloud,
    pub authority: Url,
    pub graph: Url,
    pub dynamics: Option<Url>,
    pub auth: Option<AuthSource>,
    pub login_client_id: String,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub deadline: Instant,
    pub dry_run: bool,
    pub quiet: bool,
    pub verbosity: u8,
    /// The environment service principal (azure-identity convention), read here and nowhere else.
    pub env_credential: Option<EnvCredential>,
    /// Where device-code refresh tokens are kept (`$XDG_CACHE_HOME` or `~/.cache`).
    pub cache_file: Option<PathBuf>,
}

/// `AZURE_CLIENT_ID` with `AZURE_CLIENT_SECRET` (or, later, `AZURE_CLIENT_CERTIFICATE_PATH`).
#[derive(Clone)]
pub struct EnvCredential {
    pub client_id: String,
    pub secret: Option<secrecy::SecretString>,
    pub certificate_path: Option<PathBuf>,
}

impl std::fmt::Debug for EnvCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvCredential")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "(redacted)"))
            .field("certificate_path", &self.certificate_path)
            .finish()
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn read_env_credential() -> Option<EnvCredential> {
    let client_id = env_nonempty("AZURE_CLIENT_ID")?;
    Some(EnvCredential {
        client_id: client_id.trim().to_string(),
        secret: env_nonempty("AZURE_CLIENT_SECRET").map(secrecy::SecretString::from),
        certificate_path: env_nonempty("AZURE_CLIENT_CERTIFICATE_PATH").map(PathBuf::from),
    })
}

fn token_cache_file() -> Option<PathBuf> {
    if let Some(p) = env_nonempty("MKTO_S2S_TOKEN_CACHE") {
        return Some(PathBuf::from(p));
    }
    let dir = env_nonempty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env_nonempty("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(dir.join("marketo-s2s").join("tokens.json"))
}

/// Per-cloud hosts (reference/graph.md §8).
pub struct CloudHosts {
    pub authority: &'static str,
    pub graph: &'static str,
    /// Host suffix of Dynamics orgs, for the warning on an unexpected `--dynamics-url`.
    pub dynamics_suffix: &'static str,
}

pub fn hosts(cloud: Cloud) -> CloudHosts {
    match cloud {
        Cloud::Public => CloudHosts {
            authority: "https://login.microsoftonline.com",
            graph: "https://graph.microsoft.com",
            dynamics_suffix: ".dynamics.com",
        },
        Cloud::Usgov => CloudHosts {
            authority: "https://login.microsoftonline.com",
            graph: "https://graph.microsoft.com",
            dynamics_suffix: ".crm9.dynamics.com",
        },
        Cloud::Usgovhigh => CloudHosts {
            authority: "https://login.microsoftonline.us",
            graph: "https://graph.microsoft.us",
            dynamics_suffix: ".microsoftdynamics.us",
        },
        Cloud::Usgovdod => CloudHosts {
            authority: "https://login.microsoftonline.us",
            graph: "https://dod-graph.microsoft.us",
            dynamics_suffix: ".appsplatform.us",
        },
        Cloud::China => CloudHosts {
            authority: "https://login.chinacloudapi.cn",
            graph: "https://microsoftgraph.chinacloudapi.cn",
            dynamics_suffix: ".dynamics.cn",
        },
    }
}

impl Config {
    /// `default_timeout` is the tool's own (publishing takes longer than anything else).
    pub fn resolve(
        tool: &'static str,
        args: &CommonArgs,
        doc: &StateDoc,
        default_timeout: Duration,
    ) -> Result<Config> {
        let start = Instant::now();
        let timeout = args.timeout.unwrap_or(default_timeout);
        let cloud = match args.cloud {
            Some(c) => c,
            None => match doc.get_str("tenant.cloud")? {
                None => Cloud::Public,
                Some(name) => Cloud::from_name(name).ok_or_else(|| {
                    Error::usage(format!(
                        "state document key tenant.cloud is {name:?}, not one of public, usgov, usgovhigh, usgovdod, china"
                    ))
                })?,
            },
        };
        let h = hosts(cloud);
        let authority = check_url(
            args.authority_host.as_deref().unwrap_or(h.authority),
            "--authority-host",
        )?;
        let graph = check_url(args.graph_url.as_deref().unwrap_or(h.graph), "--graph-url")?;
        let dynamics = match &args.dynamics_url {
            Some(u) => Some(check_url(u, "--dynamics-url")?),
            None => match doc.get_str("dynamics.url")? {
                Some(u) => Some(check_url(u, "state document key dynamics.url")?),
                None => None,
            },
        };
        let tenant = match &args.tenant {
            Some(t) => Some(check_tenant(t, "--tenant")?),
            None => doc
                .get_str("tenant.id")?
                .map(|t| check_tenant(t, "state document key tenant.id"))
                .transpose()?,
        };
        if let Some(ca) = &args.ca_file {
            if !ca.is_file() {
                return Err(Error::usage(format!(
                    "--ca-file {} is not a readable file",
                    ca.display()
                )));
            }
        }
        Ok(Config {
            tool,
            tenant,
            cloud,
            authority,
            graph,
            dynamics,
            auth: args.auth,
            login_client_id: args
                .login_client_id
                .clone()
                .unwrap_or_else(|| AZURE_CLI_CLIENT_ID.to_string()),
            ca_file: args.ca_file.clone(),
            timeout,
            deadline: start + timeout,
            dry_run: args.dry_run,
            quiet: args.quiet,
            verbosity: args.verbose,
            env_credential: read_env_credential(),
            cache_file: token_cache_file(),
        })
    }

    /// The tenant, or exit 2 naming where it can come from.
    pub fn tenant(&self) -> Result<&str> {
        self.tenant
            .as_deref()
            .ok_or_else(|| missing("the tenant", "--tenant (or AZURE_TENANT_ID)", "tenant.id"))
    }

    /// The Dynamics org URL, or exit 2 naming where it can come from.
    pub fn dynamics(&self) -> Result<&Url> {
        self.dynamics.as_ref().ok_or_else(|| {
            missing(
                "the Dynamics 365 org URL",
                "--dynamics-url (or MKTO_S2S_DYNAMICS_URL)",
                "dynamics.url",
            )
        })
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// The error for a value found neither in a flag nor in the document (exit 2).
pub fn missing(what: &str, flag: &str, key: &str) -> Error {
    Error::usage(format!(
        "{what} is needed: pass {flag} or provide {key} in the state document"
    ))
    .with_hint("pipe the output of the previous step into this tool, or pass the flag")
}

/// Accepts `https://host[:port][/path]`, or `http://` on a loopback host; refuses user info,
/// queries and fragments (they would leak into logs or change the meaning of every call).
pub fn check_url(raw: &str, what: &str) -> Result<Url> {
    let bad = |why: &str| Error::usage(format!("{what} {raw:?} {why}"));
    let mut url = Url::parse(raw.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(bad("is not an absolute URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not contain a query or fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(bad(
                "uses http: only https is allowed, except on loopback hosts (127.0.0.1, ::1, localhost)",
            ));
        }
        other => return Err(bad(&format!("has scheme {other:?}; use https"))),
    }
    // One canonical form without a trailing slash, so `{base}/v1.0/...` joins cleanly.
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    Ok(url)
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The URL as a string without a trailing slash (`Url` always prints one on an empty path).
pub fn base(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

fn check_tenant(t: &str, what: &str) -> Result<String> {
    let t = t.trim();
    if let Ok(g) = crate::guid::parse(t) {
        return Ok(g);
    }
    let ok = !t.is_empty()
        && t.len() <= 253
        && t.contains('.')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(Error::usage(format!(
            "{what} {t:?} is neither a tenant id (GUID) nor a domain name such as contoso.onmicrosoft.com"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn urls() {
        assert!(check_url("https://contoso.crm.dynamics.com/", "x").is_ok());
        assert_eq!(
            base(&check_url("https://contoso.crm.dynamics.com/", "x").unwrap()),
            "https://contoso.crm.dynamics.com"
        );
        assert!(check_url("http://127.0.0.1:8080", "x").is_ok());
        assert!(check_url("http://[::1]:8080", "x").is_ok());
        assert!(check_url("http://localhost:1", "x").is_ok());
        assert!(check_url("http://contoso.crm.dynamics.com", "x").is_err());
        assert!(check_url("https://u:p@contoso.crm.dynamics.com", "x").is_err());
        assert!(check_url("ftp://contoso", "x").is_err());
        assert!(check_url("contoso", "x").is_err());
        assert!(check_url("https://x/?a=1", "x").is_err());
    }
    #[test]
    fn tenants() {
        assert!(check_tenant("contoso.onmicrosoft.com", "x").is_ok());
        assert!(check_tenant("ab'c", "x").is_err());
    }
}
