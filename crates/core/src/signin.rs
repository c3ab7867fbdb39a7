//! The sign-in a state document names for its tenant (`sign_in`, issue 22.2) and how a run's
//! sign-in is described to people before any request (the target line, issue 22.1).
//!
//! The document is the customer's context, as a kubectl context or a `pac auth` profile: it
//! names the method and non-secret references only — never a secret, which stays in
//! `AZURE_CLIENT_SECRET` or is replaced by a certificate. [`crate::config::Config::resolve`]
//! merges it: a command-line `--auth` beats it, it beats the environment.

use std::path::PathBuf;

use crate::cli::AuthSource;
use crate::config::{Config, EnvCredential};
use crate::error::{Error, Result};
use crate::state::StateDoc;

/// How to sign in to this document's tenant, as the document names it (`sign_in`): the method
/// and non-secret references only (issue 22.2). Paths are relative to the `--state` file's folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocSignIn {
    pub method: Option<AuthSource>,
    pub client_id: Option<String>,
    pub certificate_path: Option<PathBuf>,
    pub federated_token_file: Option<PathBuf>,
    pub managed_identity_client_id: Option<String>,
    pub login_client_id: Option<String>,
}

/// The keys `sign_in` may have. Anything else is refused: a secret never belongs in the
/// document (it is copied, mailed and committed with the customer's folder).
pub const SIGN_IN_KEYS: &[&str] = &[
    "method",
    "client_id",
    "certificate_path",
    "federated_token_file",
    "managed_identity_client_id",
    "login_client_id",
];

impl DocSignIn {
    /// `sign_in` of the document, checked: known keys, strings, GUIDs where ids go, a known
    /// method, and a client id only with something that proves it.
    pub fn from_doc(doc: &StateDoc, state_file: Option<&std::path::Path>) -> Result<Option<Self>> {
        let Some(obj) = doc.get_object("sign_in")? else {
            return Ok(None);
        };
        for k in obj.keys() {
            if !SIGN_IN_KEYS.contains(&k.as_str()) {
                return Err(Error::usage(format!(
                    "state document key sign_in.{} is not one of {}",
                    crate::output::sanitize(k),
                    SIGN_IN_KEYS.join(", ")
                ))
                .with_hint(
                    "the document names how to sign in, never a secret: keep a client secret in \
                     AZURE_CLIENT_SECRET, or use a certificate (sign_in.certificate_path)",
                ));
            }
        }
        let guid = |k: &str| doc.get_guid(&format!("sign_in.{k}"));
        let path = |k: &str| -> Result<Option<PathBuf>> {
            Ok(doc
                .get_str(&format!("sign_in.{k}"))?
                .map(|p| crate::statefile::resolve_doc_path(state_file, std::path::Path::new(p))))
        };
        let method = match doc.get_str("sign_in.method")? {
            None => None,
            Some(m) => Some(
                <AuthSource as clap::ValueEnum>::from_str(m, true).map_err(|_| {
                    Error::usage(format!(
                        "state document key sign_in.method is {:?}, not one of env, certificate, workload-identity, managed-identity, cache, az, device-code",
                        crate::output::sanitize(m)
                    ))
                })?,
            ),
        };
        let s = DocSignIn {
            method,
            client_id: guid("client_id")?,
            certificate_path: path("certificate_path")?,
            federated_token_file: path("federated_token_file")?,
            managed_identity_client_id: guid("managed_identity_client_id")?,
            login_client_id: guid("login_client_id")?,
        };
        let proven = s.certificate_path.is_some()
            || s.federated_token_file.is_some()
            || matches!(
                s.method,
                Some(AuthSource::Env | AuthSource::ManagedIdentity)
            );
        if s.client_id.is_some() && !proven {
            return Err(Error::usage(
                "state document key sign_in.client_id needs sign_in.certificate_path or sign_in.federated_token_file (or sign_in.method env, with the secret in AZURE_CLIENT_SECRET)",
            ));
        }
        Ok(Some(s))
    }
}

/// The service principal the document's `sign_in` names: its client id with its certificate or
/// federated token file. A client secret still comes only from the environment, and only for
/// that same client id (another app's secret would be refused anyway).
pub(crate) fn credential_from_doc(
    client_id: &str,
    ds: &DocSignIn,
    env: Option<EnvCredential>,
) -> EnvCredential {
    let same = env
        .as_ref()
        .filter(|e| e.client_id.eq_ignore_ascii_case(client_id));
    EnvCredential {
        client_id: client_id.to_string(),
        secret: same.and_then(|e| e.secret.clone()),
        certificate_path: ds
            .certificate_path
            .clone()
            .or_else(|| same.and_then(|e| e.certificate_path.clone())),
        certificate_password_set: same.is_some_and(|e| e.certificate_password_set),
        federated_token_file: ds
            .federated_token_file
            .clone()
            .or_else(|| same.and_then(|e| e.federated_token_file.clone())),
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
