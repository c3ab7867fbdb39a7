//! What a client of the Microsoft identity platform reads before it signs in
//! (docs/real-service-notes.md #15, #24, #25): the OpenID Connect discovery document of a
//! tenant, Entra's instance discovery, and the tenant's signing keys. MSAL (and so
//! azure-identity and the Azure CLI) reads the discovery document to learn the token and
//! device-code endpoints; without it, it cannot start a sign-in.
//!
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration`
//!   (<https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri>):
//!   the endpoints of this tenant, its issuer `{authority}/{tenant id}/v2.0` (the `iss` of the
//!   ID tokens issued here), a tenant named by its id or its initial domain; any other tenant is
//!   400 `invalid_tenant` AADSTS90002, as Entra answers for a tenant it does not know.
//! - `GET /common/discovery/instance?authorization_endpoint=...&api-version=1.1`: Entra's
//!   instance discovery, which MSAL calls for an authority host it does not know
//!   (<https://learn.microsoft.com/entra/identity-platform/msal-client-application-configuration#authority>;
//!   MSAL's `instance_discovery=False` / azure-identity's `disable_instance_discovery=True` skip
//!   it). It names the tenant's discovery document and this host as its own alias group; an
//!   authorization endpoint on another host is 400 `invalid_instance` (AADSTS50049). The
//!   response's shape is the one MSAL parses (`tenant_discovery_endpoint`, `metadata[].aliases`);
//!   Learn documents no sample of it, so it is UNVERIFIED beyond what MSAL reads.
//! - `GET /{tenant}/discovery/v2.0/keys` (`jwks_uri`): an empty key set. The emulator signs its
//!   tokens with a keyed SHA-256, not RS256, so it has no public key to publish; no client the
//!   conformance suite drives (MSAL, azure-identity) fetches it, since a client validates no
//!   token it receives from the token endpoint (MSAL Python issue 911).

use serde_json::{Value, json};

use crate::access_token::aad_error;
use crate::exchange::{Ctx, Reply};
use crate::state::Sim;
use crate::util::lock;

/// Answers a discovery request, or `None` when the path is not one of them.
pub fn handle(sim: &Sim, ctx: &Ctx) -> Option<Reply> {
    let segs: Vec<&str> = ctx.path.trim_start_matches('/').split('/').collect();
    let reply = match segs.as_slice() {
        [tenant, "v2.0", ".well-known", "openid-configuration"] => {
            get_only(ctx).unwrap_or_else(|| openid_configuration(sim, tenant))
        }
        ["common", "discovery", "instance"] => {
            get_only(ctx).unwrap_or_else(|| instance_discovery(sim, ctx))
        }
        [tenant, "discovery", "v2.0", "keys"] => get_only(ctx).unwrap_or_else(|| keys(sim, tenant)),
        _ => return None,
    };
    Some(reply)
}

fn get_only(ctx: &Ctx) -> Option<Reply> {
    (ctx.method != "GET").then(|| {
        Reply::json(
            405,
            json!({"error": "invalid_request", "error_description": "The endpoint only accepts GET requests."}),
        )
    })
}

/// The tenant id a path segment names (its id or its initial domain), or Entra's AADSTS90002.
fn tenant_id(sim: &Sim, segment: &str) -> Result<String, Reply> {
    let name = crate::odata::decode_path(segment);
    let t = lock(&sim.tenant);
    if name.eq_ignore_ascii_case(&t.tenant_id) || name.eq_ignore_ascii_case(&t.initial_domain) {
        return Ok(t.tenant_id.clone());
    }
    Err(aad_error(
        400,
        "invalid_tenant",
        90002,
        &format!(
            "Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    ))
}

/// The issuer of this tenant's v2.0 tokens (and so of its ID tokens).
pub fn issuer(main_url: &str, tenant_id: &str) -> String {
    format!("{main_url}/{tenant_id}/v2.0")
}

fn openid_configuration(sim: &Sim, tenant: &str) -> Reply {
    let tid = match tenant_id(sim, tenant) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let u = sim.urls();
    let main = &u.main;
    let host = main.split("://").nth(1).unwrap_or(main);
    Reply::json(
        200,
        json!({
            "token_endpoint": format!("{main}/{tid}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{main}/{tid}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer(main, &tid),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("{main}/oidc/userinfo"),
            "authorization_endpoint": format!("{main}/{tid}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{main}/{tid}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{main}/{tid}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": format!("{main}/{tid}/kerberos"),
            "tenant_region_scope": "NA",
            "cloud_instance_name": host,
            "cloud_graph_host_name": host,
            "msgraph_host": host,
            "rbac_url": main
        }),
    )
}

fn instance_discovery(sim: &Sim, ctx: &Ctx) -> Reply {
    let Some(endpoint) = ctx.q("authorization_endpoint") else {
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'authorization_endpoint'.",
        );
    };
    let main = sim.urls().main;
    let host = main.split("://").nth(1).unwrap_or(&main).to_string();
    let Ok(parsed) = url::Url::parse(endpoint) else {
        return invalid_instance();
    };
    // The host alone: MSAL names the instance by its host name and drops the port
    // (`https://{instance}{path}/oauth2/v2.0/authorize`), as Entra's instances have none.
    let ours = url::Url::parse(&main).ok();
    let same_host = ours
        .as_ref()
        .and_then(url::Url::host_str)
        .is_some_and(|h| parsed.host_str() == Some(h));
    if parsed.scheme() != "https" && parsed.scheme() != main.split("://").next().unwrap_or("")
        || !same_host
    {
        return invalid_instance();
    }
    let tenant = parsed
        .path_segments()
        .and_then(|mut s| s.next())
        .filter(|t| !t.is_empty())
        .unwrap_or("common");
    Reply::json(
        200,
        json!({
            "tenant_discovery_endpoint": format!("{main}/{tenant}/v2.0/.well-known/openid-configuration"),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]
        }),
    )
}

fn invalid_instance() -> Reply {
    aad_error(
        400,
        "invalid_instance",
        50049,
        "Unknown or invalid instance.",
    )
}

fn keys(sim: &Sim, tenant: &str) -> Reply {
    match tenant_id(sim, tenant) {
        Ok(_) => Reply::json(200, json!({"keys": Value::Array(Vec::new())})),
        Err(r) => r,
    }
}
