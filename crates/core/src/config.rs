//! Configuration resolved in one place: flag (or its environment variable), then the state
//! document, then the cloud's default. Every URL is checked here, before any request: https only,
//! except loopback hosts, which may use http so the emulator can serve (design.md, "Endpoints").

use std::path::PathBuf;
use std::time::{Duration, Instant};

use url::Url;

use crate::auth::signin::credential_from_doc;
pub use crate::auth::signin::{DocSignIn, EnvCredential, SIGN_IN_KEYS};
use crate::cli::{AuthSource, Cloud, CommonArgs};
use crate::error::{Error, Result};
use crate::keys;
use crate::state::StateDoc;
use crate::urls::{base, check_url, is_loopback};

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
    /// Where `ca_file` came from, for messages: `--ca-file`, `REQUESTS_CA_BUNDLE` or
    /// `SSL_CERT_FILE`.
    pub ca_file_source: &'static str,
    pub timeout: Duration,
    pub deadline: Instant,
    pub dry_run: bool,
    pub quiet: bool,
    pub verbosity: u8,
    /// The environment service principal (azure-identity convention), read here and nowhere else.
    pub env_credential: Option<EnvCredential>,
    /// The managed-identity endpoints, read here and nowhere else.
    pub managed_identity: ManagedIdentityEnv,
    /// Where device-code refresh tokens are kept (`$XDG_CACHE_HOME` or `~/.cache`; on Windows
    /// `%LOCALAPPDATA%`).
    pub cache_file: Option<PathBuf>,
    /// What `--retarget` moves the document from and to (empty without it, or when nothing
    /// differs).
    pub retarget: Retarget,
    /// The document's tenant id when the flag or environment named the tenant by a domain: the
    /// harness resolves the domain (the `tid` of a token for it) and compares before the step
    /// runs, so a different tenant is refused before any write.
    pub tenant_to_confirm: Option<String>,
    /// Things resolving changed about what the user typed (a scheme added, a pasted browser URL
    /// trimmed to its org), said once on stderr before the tool runs.
    pub notes: Vec<String>,
    /// The tenant's domain for people: the `--tenant` domain, else the document's
    /// `tenant.domain`.
    pub tenant_domain: Option<String>,
    /// The domain `--tenant` (or AZURE_TENANT_ID) gave, which a successful run records as
    /// `tenant.domain`.
    pub tenant_domain_given: Option<String>,
    /// The sign-in the document names (`sign_in`), when it does.
    pub doc_sign_in: Option<DocSignIn>,
}

/// The targets a document is moved between with `--retarget`: `(old, new)`.
#[derive(Debug, Clone, Default)]
pub struct Retarget {
    pub tenant: Option<(String, String)>,
    pub dynamics: Option<(Url, Url)>,
    /// `--retarget` with the tenant given as a domain and the document holding an id: the
    /// harness moves the document only if the domain resolves to another tenant.
    pub tenant_if_other: bool,
}

impl Retarget {
    pub fn is_empty(&self) -> bool {
        self.tenant.is_none() && self.dynamics.is_none() && !self.tenant_if_other
    }
}

/// A managed identity's endpoints: the App Service protocol's `IDENTITY_ENDPOINT` and
/// `IDENTITY_HEADER`, and the VM metadata endpoint (IMDS), which is used only on
/// `--auth managed-identity`.
#[derive(Clone)]
pub struct ManagedIdentityEnv {
    pub identity_endpoint: Option<String>,
    pub identity_header: Option<secrecy::SecretString>,
    /// `http://169.254.169.254`, or `MKTO_S2S_IMDS_URL` (tests only: loopback hosts only).
    pub imds: Url,
    /// `AZURE_CLIENT_ID`: the user-assigned identity to ask for, when set.
    pub client_id: Option<String>,
}

impl ManagedIdentityEnv {
    /// The App Service protocol is set up (both variables).
    pub fn has_identity_endpoint(&self) -> bool {
        self.identity_endpoint.is_some() && self.identity_header.is_some()
    }
}

impl std::fmt::Debug for ManagedIdentityEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentityEnv")
            .field("identity_endpoint", &self.identity_endpoint)
            .field(
                "identity_header",
                &self.identity_header.as_ref().map(|_| "(redacted)"),
            )
            .field("imds", &self.imds.as_str())
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// Where Azure VMs answer managed-identity token requests (the link-local metadata address).
pub const IMDS_URL: &str = "http://169.254.169.254";

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn read_env_credential() -> Option<EnvCredential> {
    let client_id = env_nonempty("AZURE_CLIENT_ID")?;
    Some(EnvCredential {
        client_id: client_id.trim().to_string(),
        secret: env_nonempty("AZURE_CLIENT_SECRET").map(secrecy::SecretString::from),
        certificate_path: env_nonempty("AZURE_CLIENT_CERTIFICATE_PATH").map(PathBuf::from),
        certificate_password_set: env_nonempty("AZURE_CLIENT_CERTIFICATE_PASSWORD").is_some(),
        federated_token_file: env_nonempty("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from),
    })
}

/// The managed-identity variables. `MKTO_S2S_IMDS_URL` exists so tests can point the VM
/// metadata protocol at the emulator: it must be a loopback address, so no setting can send
/// the metadata header and a token request anywhere else.
fn read_managed_identity() -> Result<ManagedIdentityEnv> {
    let imds = match env_nonempty("MKTO_S2S_IMDS_URL") {
        None => Url::parse(IMDS_URL).expect("a valid URL"),
        Some(raw) => {
            let u = check_url(&raw, "MKTO_S2S_IMDS_URL")?;
            if !is_loopback(&u) {
                return Err(Error::usage(format!(
                    "MKTO_S2S_IMDS_URL {raw:?} is not a loopback address: it exists only to point tests at a local emulator"
                ))
                .with_hint("unset MKTO_S2S_IMDS_URL; on an Azure VM the metadata endpoint is found without it"));
            }
            u
        }
    };
    Ok(ManagedIdentityEnv {
        identity_endpoint: env_nonempty("IDENTITY_ENDPOINT").map(|s| s.trim().to_string()),
        identity_header: env_nonempty("IDENTITY_HEADER").map(secrecy::SecretString::from),
        imds,
        client_id: env_nonempty("AZURE_CLIENT_ID").map(|s| s.trim().to_string()),
    })
}

/// The extra roots to trust: `--ca-file` (or `MKTO_S2S_CA_FILE`), else the variables that Azure
/// CLI and Python users already set for a TLS-inspecting proxy — `REQUESTS_CA_BUNDLE` (requests,
/// so the Azure CLI), then `SSL_CERT_FILE` (OpenSSL). Their certificates are added to the web
/// PKI roots, as `--ca-file`'s are.
fn ca_file(args: &CommonArgs) -> (Option<PathBuf>, &'static str) {
    if let Some(f) = &args.ca_file {
        return (Some(f.clone()), "--ca-file");
    }
    for var in ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"] {
        if let Some(v) = env_nonempty(var) {
            return (Some(PathBuf::from(v)), var);
        }
    }
    (None, "--ca-file")
}

fn token_cache_file() -> Option<PathBuf> {
    if let Some(p) = env_nonempty("MKTO_S2S_TOKEN_CACHE") {
        return Some(PathBuf::from(p));
    }
    // Windows has no HOME: per-user, per-machine data lives in %LOCALAPPDATA% (the profile's
    // AppData\Local, not roamed to other machines), private to the user by its DACL.
    #[cfg(windows)]
    let dir = env_nonempty("LOCALAPPDATA").map(PathBuf::from)?;
    #[cfg(not(windows))]
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
            None => match doc.get(keys::TENANT_CLOUD)? {
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
        let mut notes = Vec::new();
        let flag_dynamics = args
            .dynamics_url
            .as_deref()
            .map(|u| dynamics_url_from_user(u, &mut notes))
            .transpose()?;
        let doc_dynamics = doc
            .get(keys::DYNAMICS_URL)?
            .map(|u| check_url(u, &format!("state document key {}", keys::DYNAMICS_URL)))
            .transpose()?;
        let flag_tenant = args
            .tenant
            .as_deref()
            .map(|t| check_tenant(t, "--tenant"))
            .transpose()?;
        let doc_tenant = doc
            .get(keys::TENANT_ID)?
            .map(|t| check_tenant(t, &format!("state document key {}", keys::TENANT_ID)))
            .transpose()?;
        let doc_domain = doc
            .get(keys::TENANT_DOMAIN)?
            .map(|t| check_tenant(t, &format!("state document key {}", keys::TENANT_DOMAIN)))
            .transpose()?;
        let (retarget, tenant_to_confirm) = guard_targets(
            (
                flag_tenant.as_deref(),
                doc_tenant.as_deref(),
                doc_domain.as_deref(),
            ),
            (
                flag_dynamics.as_ref(),
                doc_dynamics.as_ref(),
                doc.get(keys::DYNAMICS_ORG_NAME)?,
            ),
            args.retarget,
        )?;
        let is_domain = |t: &str| crate::guid::parse(t).is_err();
        let tenant_domain_given = flag_tenant.clone().filter(|t| is_domain(t));
        let tenant_domain = tenant_domain_given
            .clone()
            .or_else(|| doc_domain.clone().filter(|_| retarget.tenant.is_none()));
        let dynamics = flag_dynamics.or(doc_dynamics);
        let tenant = flag_tenant.or(doc_tenant);
        let (ca_file, ca_file_source) = ca_file(args);
        if let Some(ca) = &ca_file {
            if !ca.is_file() {
                return Err(Error::usage(format!(
                    "{ca_file_source} {} is not a readable file",
                    crate::output::sanitize(&ca.display().to_string())
                ))
                .with_hint(if ca_file_source == "--ca-file" {
                    "give the PEM file of the root certificate to trust".to_string()
                } else {
                    format!(
                        "point {ca_file_source} at a PEM bundle, unset it, or pass --ca-file (which takes precedence)"
                    )
                }));
            }
        }
        let doc_sign_in = DocSignIn::from_doc(doc, args.state.as_deref())?;
        // The command line beats the document, which beats the environment: the document is
        // the customer's own context (as a kubectl context or a pac auth profile), the
        // environment may be left over from the previous customer.
        let on_line = |id: &str, v: bool| v && !crate::hint::came_from_env(id);
        let auth_on_line = on_line("auth", args.auth.is_some());
        let ds = doc_sign_in.clone().unwrap_or_default();
        let auth = if auth_on_line {
            args.auth
        } else {
            ds.method.or(args.auth)
        };
        let login_client_id = match (&args.login_client_id, &ds.login_client_id) {
            (Some(f), _) if on_line("login_client_id", true) => f.clone(),
            (_, Some(d)) => d.clone(),
            (Some(f), None) => f.clone(),
            (None, None) => AZURE_CLI_CLIENT_ID.to_string(),
        };
        let mut env_credential = read_env_credential();
        let mut managed_identity = read_managed_identity()?;
        if !auth_on_line {
            if let Some(id) = &ds.client_id {
                env_credential = Some(credential_from_doc(id, &ds, env_credential));
            }
            if let Some(mi) = ds.managed_identity_client_id.clone().or_else(|| {
                ds.client_id
                    .clone()
                    .filter(|_| auth == Some(AuthSource::ManagedIdentity))
            }) {
                managed_identity.client_id = Some(mi);
            }
        }
        Ok(Config {
            tool,
            tenant,
            cloud,
            authority,
            graph,
            dynamics,
            auth,
            login_client_id,
            ca_file,
            ca_file_source,
            timeout,
            deadline: start + timeout,
            dry_run: args.dry_run,
            quiet: args.quiet,
            verbosity: args.verbose,
            env_credential,
            managed_identity,
            cache_file: token_cache_file(),
            retarget,
            tenant_to_confirm,
            notes,
            tenant_domain,
            tenant_domain_given,
            doc_sign_in,
        })
    }

    /// The tenant for people: `contoso.onmicrosoft.com (84841066-…)`, the id alone, or the domain
    /// alone while its id is not known.
    pub fn tenant_for_humans(&self, id: Option<&str>) -> String {
        let id = id.map(str::to_string).or_else(|| {
            self.tenant
                .clone()
                .filter(|t| crate::guid::parse(t).is_ok())
        });
        match (&self.tenant_domain, id) {
            (Some(d), Some(i)) => format!("{d} ({i})"),
            (Some(d), None) => d.clone(),
            (None, Some(i)) => i,
            (None, None) => "(none yet)".into(),
        }
    }

    /// The tenant, or exit 2 naming where it can come from.
    pub fn tenant(&self) -> Result<&str> {
        self.tenant.as_deref().ok_or_else(|| {
            missing(
                "the tenant",
                "--tenant (or AZURE_TENANT_ID)",
                keys::TENANT_ID.path(),
            )
        })
    }

    /// The Dynamics org URL, or exit 2 naming where it can come from.
    pub fn dynamics(&self) -> Result<&Url> {
        self.dynamics.as_ref().ok_or_else(|| {
            missing(
                "the Dynamics 365 org URL",
                "--dynamics-url (or MKTO_S2S_DYNAMICS_URL)",
                keys::DYNAMICS_URL.path(),
            )
        })
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// The target guard (design.md, "Additions"): a tenant or Dynamics org named by a flag or the
/// environment must be the one the document was made for, or the run would change customer B's
/// tenant and write the result into customer A's file. `--retarget` is the explicit way to move a
/// document. Two tenant ids are compared here; a domain against an id is left to the harness, which resolves the domain before any write
/// (`tenant_to_confirm`) — with `--retarget` too, so the tenant's own domain moves nothing.
fn guard_targets(
    (flag_tenant, doc_tenant, doc_domain): (Option<&str>, Option<&str>, Option<&str>),
    (flag_dynamics, doc_dynamics, doc_org_name): (Option<&Url>, Option<&Url>, Option<&str>),
    retarget: bool,
) -> Result<(Retarget, Option<String>)> {
    let mut moves = Retarget::default();
    let mut to_confirm = None;
    if let (Some(f), Some(d)) = (flag_tenant, doc_tenant) {
        let is_guid = |t: &str| crate::guid::parse(t).is_ok();
        // A domain is always resolved, even the document's own tenant.domain: the pair in the
        // document could have been edited apart, and the live sign-in is the proof.
        if !f.eq_ignore_ascii_case(d) {
            if !is_guid(f) && is_guid(d) {
                to_confirm = Some(d.to_string());
                moves.tenant_if_other = retarget;
            } else if retarget {
                moves.tenant = Some((d.to_string(), f.to_string()));
            } else if is_guid(f) && is_guid(d) {
                return Err(tenant_mismatch(f, &doc_tenant_text(d, doc_domain)));
            } else {
                return Err(Error::usage(format!(
                    "{} is {f:?} and the document's tenant.id is {d:?}: they cannot be compared without the tenant id",
                    tenant_origin()
                ))
                .with_hint(
                    "put the tenant id (GUID) in the document's tenant.id, or pass --retarget to move the document to the tenant of --tenant",
                ));
            }
        }
    }
    if let (Some(f), Some(d)) = (flag_dynamics, doc_dynamics) {
        if !same_org(f, d) {
            if !retarget {
                let named = doc_org_name.map_or(String::new(), |n| {
                    format!(" ({})", crate::output::sanitize(n))
                });
                return Err(Error::usage(format!(
                    "{} is {} but this document belongs to the org {}{named} (dynamics.url)",
                    crate::hint::origin("dynamics_url", "--dynamics-url", "MKTO_S2S_DYNAMICS_URL"),
                    base(f),
                    base(d)
                ))
                .with_hint(format!(
                    "check that this is the right customer's state document; to set up {} use its own document (or start from nothing), or pass --retarget to move this document to it",
                    base(f)
                )));
            }
            moves.dynamics = Some((d.clone(), f.clone()));
        }
    }
    Ok((moves, to_confirm))
}

/// Where `--tenant`'s value came from: the flag, or `AZURE_TENANT_ID in the environment`.
fn tenant_origin() -> String {
    crate::hint::origin("tenant", "--tenant", "AZURE_TENANT_ID")
}

/// The document's tenant for a message: `contoso.onmicrosoft.com (<id>)` when its domain is known.
pub fn doc_tenant_text(id: &str, domain: Option<&str>) -> String {
    match domain {
        Some(d) => format!("{d} ({id})"),
        None => id.to_string(),
    }
}

/// The refusal of a tenant that differs from the document's (exit 2, nothing sent). `doc` is
/// the document's tenant as people read it ([`doc_tenant_text`]).
pub fn tenant_mismatch(flag: &str, doc: &str) -> Error {
    let origin = tenant_origin();
    let leftover = if origin.contains("environment") {
        "AZURE_TENANT_ID is probably left over from another customer: unset it or set it to this customer's tenant"
    } else {
        "check that AZURE_TENANT_ID is not left over from another customer"
    };
    Error::usage(format!(
        "{origin} names tenant {flag} but this document belongs to tenant {doc} (tenant.id)"
    ))
    .with_hint(format!(
        "check that this is the right customer's state document; {leftover}; to set up tenant {flag} use its own document (or start from nothing), or pass --retarget to move this document to it"
    ))
}

/// One org: same scheme, host (case-insensitive) and port; the path is ignored (the API root is
/// the origin).
fn same_org(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The error for a value found neither in a flag nor in the document (exit 2). The hint names
/// the step that writes the key, as a command to paste (with this run's `--state` file).
pub fn missing(what: &str, flag: &str, key: &str) -> Error {
    let hint = match written_by(key) {
        Some(step) => format!(
            "{key} is written by {step}: run it first (`{}`), or pipe its output into this tool, or pass {flag}",
            crate::hint::command_here(step, &[])
        ),
        None => format!("pass {flag}, or pipe the output of the previous step into this tool"),
    };
    let mut e = Error::usage(format!(
        "{what} is needed: pass {flag} or provide {key} in the state document"
    ))
    .with_hint(hint);
    e.missing_key = Some(key.to_string());
    e
}

/// The step of the runbook that records a state-document key: the tool that owns its section.
pub fn written_by(key: &str) -> Option<&'static str> {
    // The target (tenant.id, dynamics.url) comes from the flags before any step records it.
    if key == keys::DYNAMICS_URL.path() || key.starts_with("tenant.") {
        return None;
    }
    let section = key.split('.').next()?;
    crate::tools::TOOLS
        .iter()
        .find(|t| t.section == section)
        .map(|t| t.name)
}

/// `--dynamics-url` as people type it: `contoso.crm.dynamics.com` (no scheme) means https, and
/// an address pasted from the browser (`https://contoso.crm.dynamics.com/main.aspx?appid=...`)
/// means its org, the origin. Both are said in `notes`. User info is still refused, and the
/// result passes [`check_url`] like any URL.
pub fn dynamics_url_from_user(raw: &str, notes: &mut Vec<String>) -> Result<Url> {
    let t = raw.trim();
    let with_scheme = if t.contains("://") {
        t.to_string()
    } else {
        format!("https://{t}")
    };
    let Ok(parsed) = Url::parse(&with_scheme) else {
        return check_url(t, "--dynamics-url");
    };
    // Without a scheme only something that reads as an org's address is taken: a dotted host
    // (contoso.crm.dynamics.com) or a loopback one. A bare word is more likely a mistake.
    let dotted = parsed
        .host_str()
        .is_some_and(|h| h.contains('.') || h.contains(':'));
    if !(t.contains("://") || dotted || is_loopback(&parsed)) {
        return check_url(t, "--dynamics-url");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.host().is_none() {
        return check_url(&with_scheme, "--dynamics-url");
    }
    let trimmed = parsed.path().trim_matches('/').is_empty()
        && parsed.query().is_none()
        && parsed.fragment().is_none();
    let origin = parsed.origin().ascii_serialization();
    let url = check_url(&origin, "--dynamics-url")?;
    if !t.contains("://") {
        notes.push(format!(
            "--dynamics-url has no scheme: using {}",
            base(&url)
        ));
    } else if !trimmed {
        notes.push(format!(
            "--dynamics-url looks like a browser address: using its org {} (the page and query are ignored)",
            base(&url)
        ));
    }
    Ok(url)
}

fn check_tenant(t: &str, what: &str) -> Result<String> {
    let t = t.trim();
    if let Ok(g) = crate::guid::parse(t) {
        return Ok(g);
    }
    // A DNS name of two or more labels: each 1-63 letters, digits or inner hyphens, the last
    // one not all digits. `..` or `.` would otherwise become a path segment of the token URL.
    let labels: Vec<&str> = t.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let ok = t.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|l| l.bytes().any(|b| b.is_ascii_alphabetic()));
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
    fn dynamics_urls_as_people_type_them() {
        let mut notes = Vec::new();
        let u = dynamics_url_from_user("contoso.crm.dynamics.com", &mut notes).unwrap();
        assert_eq!(base(&u), "https://contoso.crm.dynamics.com");
        assert!(notes[0].contains("no scheme"));
        let u = dynamics_url_from_user(
            "https://contoso.crm.dynamics.com/main.aspx?appid=1&pagetype=entitylist#x",
            &mut notes,
        )
        .unwrap();
        assert_eq!(base(&u), "https://contoso.crm.dynamics.com");
        assert!(notes[1].contains("browser address"));
        assert!(dynamics_url_from_user("http://contoso.crm.dynamics.com", &mut notes).is_err());
        assert!(
            dynamics_url_from_user("https://u:p@contoso.crm.dynamics.com", &mut notes).is_err()
        );
        let u = dynamics_url_from_user("http://127.0.0.1:8080/", &mut notes).unwrap();
        assert_eq!(base(&u), "http://127.0.0.1:8080");
        assert_eq!(notes.len(), 2);
        assert!(dynamics_url_from_user("contoso", &mut notes).is_err());
    }

    #[test]
    fn tenants() {
        assert!(check_tenant("contoso.onmicrosoft.com", "x").is_ok());
        assert!(check_tenant("ab'c", "x").is_err());
        for bad in [
            "..",
            ".",
            "a..b",
            ".contoso.com",
            "contoso.com.",
            "-a.com",
            "1.2.3.4",
            "a",
        ] {
            assert!(check_tenant(bad, "x").is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn target_guard() {
        let a = "11111111-1111-1111-1111-111111111111";
        let b = "22222222-2222-2222-2222-222222222222";
        let u = |s: &str| check_url(s, "x").unwrap();
        let e = guard_targets((Some(b), Some(a), None), (None, None, None), false).unwrap_err();
        assert_eq!(e.kind.code(), 2);
        assert!(e.message.contains(a) && e.message.contains(b), "{e}");
        let (m, c) = guard_targets((Some(b), Some(a), None), (None, None, None), true).unwrap();
        assert_eq!(m.tenant, Some((a.to_string(), b.to_string())));
        assert!(c.is_none());
        let (m, c) = guard_targets(
            (Some("contoso.com"), Some(a), None),
            (None, None, None),
            false,
        )
        .unwrap();
        assert!(m.is_empty());
        assert_eq!(c.as_deref(), Some(a));
        // --retarget with a domain: resolved first, moved only if it is another tenant.
        let (m, c) = guard_targets(
            (Some("contoso.com"), Some(a), None),
            (None, None, None),
            true,
        )
        .unwrap();
        assert!(m.tenant.is_none() && m.tenant_if_other);
        assert_eq!(c.as_deref(), Some(a));
        // Even the document's own tenant.domain is resolved: the pair may have been edited.
        let (_, c) = guard_targets(
            (Some("contoso.com"), Some(a), Some("contoso.com")),
            (None, None, None),
            false,
        )
        .unwrap();
        assert_eq!(c.as_deref(), Some(a));
        assert!(guard_targets((Some(a), Some(a), None), (None, None, None), false).is_ok());
        let (x, y) = (
            u("https://a.crm.dynamics.com"),
            u("https://b.crm.dynamics.com"),
        );
        assert!(guard_targets((None, None, None), (Some(&x), Some(&y), None), false).is_err());
        let same = u("https://A.crm.dynamics.com/");
        assert!(guard_targets((None, None, None), (Some(&x), Some(&same), None), false).is_ok());
        let (m, _) = guard_targets((None, None, None), (Some(&x), Some(&y), None), true).unwrap();
        assert!(m.dynamics.is_some());
    }
}
