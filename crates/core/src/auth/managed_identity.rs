//! A managed identity (`managed-identity` in `--auth`): the App Service protocol
//! (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`), or, only when asked for, the VM metadata endpoint.
//! Both are asked directly, never through `HTTP_PROXY` (see [`Request::no_proxy`]).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::endpoint::{Login, login_error, token_from};
use crate::error::{Error, Kind, Result};
use crate::http::{Method, Request, Service};
use crate::urls::base;

/// A managed identity's token: the App Service protocol when `IDENTITY_ENDPOINT` and
/// `IDENTITY_HEADER` are set
/// (<https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference>),
/// else, only when asked for, the VM metadata endpoint
/// (<https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>).
pub(super) async fn from_managed_identity(
    login: &Login<'_>,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let mi = &login.config().managed_identity;
    let encode =
        |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let client = mi
        .client_id
        .as_deref()
        .map(|c| format!("&client_id={}", encode(c)))
        .unwrap_or_default();
    let (req, who) = match (&mi.identity_endpoint, &mi.identity_header) {
        (Some(endpoint), Some(header)) => {
            let base = crate::urls::check_url(endpoint, "IDENTITY_ENDPOINT")?;
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
                .header("X-IDENTITY-HEADER", header.expose_secret())
                .no_proxy();
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
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .attempts(3);
            (req, "the managed identity (VM metadata endpoint)")
        }
    };
    let resp = login.send(req).await.map_err(|e| {
        if e.service().is_none() && e.kind == Kind::Timeout {
            e.with_kind(Kind::Auth)
                .context(format!("signing in with {who}"))
                .with_hint(
                    "--auth managed-identity works on Azure: on a VM or scale set with a managed \
                     identity (the metadata endpoint), or where IDENTITY_ENDPOINT and \
                     IDENTITY_HEADER are set (App Service, Functions, Container Apps)",
                )
        } else if e.service().is_none() {
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
pub(super) fn managed_identity_token(v: &Value) -> Result<(SecretString, u64)> {
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
