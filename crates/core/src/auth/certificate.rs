//! A certificate credential (`certificate` in `--auth`): `AZURE_CLIENT_ID` with
//! `AZURE_CLIENT_CERTIFICATE_PATH`, proven by an assertion signed with the certificate's key
//! ([`super::assertion`]).

use secrecy::SecretString;

use super::assertion::ClientCertificate;
use super::endpoint::{Login, client_assertion_credentials, token_url};
use super::env::env_credential_file;
use crate::error::Result;

pub(super) async fn from_certificate(
    login: &Login<'_>,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let Some((cred, path)) = env_credential_file(
        login.config(),
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
        login.reporter().trace(
            1,
            "AZURE_CLIENT_CERTIFICATE_PASSWORD is set but not used: only PEM files with an \
             unencrypted key are supported",
        );
    }
    // Read at each sign-in, like the token file: a renewed certificate is picked up.
    let cert = ClientCertificate::load(path)?;
    let assertion = cert.assertion(&cred.client_id, &token_url(login.config())?)?;
    let who = format!(
        "the certificate of {} (AZURE_CLIENT_CERTIFICATE_PATH, thumbprint x5t {})",
        cred.client_id,
        cert.x5t()
    );
    client_assertion_credentials(login, &cred.client_id, &assertion, resource, &who)
        .await
        .map(Some)
}
