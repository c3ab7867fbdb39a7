//! What the configuration knows about signing in, as data: the sign-in a state document names
//! for its tenant (`sign_in`) and the environment's service principal ([`EnvCredential`]).
//!
//! The document is the customer's context, as a kubectl context or a `pac auth` profile: it
//! names the method and non-secret references only — never a secret, which stays in
//! `AZURE_CLIENT_SECRET` or is replaced by a certificate. [`crate::config::Config::resolve`]
//! reads both and merges them: a command-line `--auth` beats the document, which beats the
//! environment. How the run's sign-in is told to people is [`super::describe`].

use std::path::PathBuf;

use crate::cli::AuthSource;
use crate::error::{Error, Result};
use crate::state::StateDoc;

/// How to sign in to this document's tenant, as the document names it (`sign_in`): the method
/// and non-secret references only. Paths are relative to the `--state` file's folder.
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

/// `AZURE_CLIENT_ID` with what proves it: `AZURE_CLIENT_SECRET`, `AZURE_CLIENT_CERTIFICATE_PATH`
/// or `AZURE_FEDERATED_TOKEN_FILE` (the azure-identity variables).
#[derive(Clone)]
pub struct EnvCredential {
    pub client_id: String,
    pub secret: Option<secrecy::SecretString>,
    pub certificate_path: Option<PathBuf>,
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD` is set: only told to the user, as PKCS#12 and
    /// encrypted keys are not supported (its value is never read).
    pub certificate_password_set: bool,
    pub federated_token_file: Option<PathBuf>,
}

impl std::fmt::Debug for EnvCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvCredential")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "(redacted)"))
            .field("certificate_path", &self.certificate_path)
            .field("federated_token_file", &self.federated_token_file)
            .finish()
    }
}
