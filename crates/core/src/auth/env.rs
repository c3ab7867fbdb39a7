//! The environment's service principal (`env` in `--auth`): `AZURE_CLIENT_ID` with
//! `AZURE_CLIENT_SECRET`, the azure-identity convention; and the checks the certificate and
//! workload-identity sources share (which file the environment names, and a client id that
//! nothing proves).

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::endpoint::{Login, client_credentials};
use super::signin::EnvCredential;
use crate::config::Config;
use crate::error::{Error, Result};

pub(super) async fn from_env(
    login: &Login<'_>,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let cfg = login.config();
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
    client_credentials(login, &cred.client_id, secret, resource, &who)
        .await
        .map(Some)
}

/// `AZURE_CLIENT_ID` set with nothing that proves it and no managed identity to use it for:
/// an error, not a silent fall-through to the cache or az (which would act as someone else).
pub(super) fn incomplete_env_credential(cfg: &Config) -> Result<()> {
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
pub(super) fn env_credential_file<'a>(
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
