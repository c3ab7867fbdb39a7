//! Workload identity federation (`workload-identity` in `--auth`): `AZURE_CLIENT_ID` with
//! `AZURE_FEDERATED_TOKEN_FILE`, the platform's token (GitHub Actions, a Kubernetes service
//! account) sent as the client assertion, read at each sign-in.

use secrecy::SecretString;

use super::assertion::read_federated_token;
use super::endpoint::{Login, client_assertion_credentials};
use super::env::env_credential_file;
use crate::error::Result;

pub(super) async fn from_workload_identity(
    login: &Login<'_>,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let Some((cred, path)) = env_credential_file(
        login.config(),
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
    let assertion = read_federated_token(path)?;
    let who = format!(
        "the workload identity of {} (AZURE_FEDERATED_TOKEN_FILE)",
        cred.client_id
    );
    client_assertion_credentials(login, &cred.client_id, &assertion, resource, &who)
        .await
        .map(Some)
}
