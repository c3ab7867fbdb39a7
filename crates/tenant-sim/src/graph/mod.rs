//! Microsoft Graph v1.0 subset: organization, domains, applications, servicePrincipals,
//! oauth2PermissionGrants, homeRealmDiscoveryPolicies — with Graph's error bodies, alternate keys,
//! upserts, `$filter`/`$select`/`$top` paging, CSDL body validation and replication lag.
//!
//! This module is the front door and the map: [`handle`] checks the token, the body's media
//! type and JSON, and the permission the call needs (`crate::permissions`); [`route`] sends each
//! path to the file that emulates that part of the service:
//!
//! | file | part of Graph |
//! | --- | --- |
//! | `applications.rs` | applications, `addPassword` / `removePassword` |
//! | `service_principals.rs` | servicePrincipals and their navigation properties |
//! | `grants.rs` | oauth2PermissionGrants |
//! | `policies.rs` | homeRealmDiscoveryPolicies, their assignment, defaultAppManagementPolicy |
//! | `directory.rs` | organization, domains, onPremisesSynchronization, me/memberOf, deletedItems |
//! | `shared.rs` | error envelope, addressing, list/single answers and paging, body checks |
//!
//! Facts from Microsoft Learn: "Microsoft Graph error responses and resource types"
//! (learn.microsoft.com/graph/errors) for the 401/400/415 bodies here; "Microsoft Graph
//! permissions reference" (learn.microsoft.com/graph/permissions-reference) behind
//! `crate::permissions`.

mod applications;
mod directory;
mod grants;
mod policies;
mod service_principals;
mod shared;

use serde_json::Value;

use crate::access_token::check_bearer;
use crate::exchange::{Ctx, Reply};
use crate::jwt::TokenError;
use crate::odata::{self, Segment};
use crate::permissions;
use crate::state::{GRAPH_APP_ID, Sim};

pub use shared::error_reply;
use shared::{R, method_not_allowed, no_segment};

/// Entry point for `/v1.0/...`.
pub fn handle(sim: &Sim, ctx: &Ctx) -> Reply {
    let urls = sim.urls();
    let claims = match check_bearer(sim, ctx.header("authorization"), &urls.main) {
        Ok(c) => c,
        Err(e) => {
            let msg = match e {
                TokenError::Missing => "Access token is empty.",
                TokenError::Malformed => "IDX14100: JWT is not well formed, there are no dots (.).",
                TokenError::BadSignature => "Access token validation failure. Invalid signature.",
                TokenError::Expired => "Lifetime validation failed, the token is expired.",
                TokenError::WrongAudience => "Access token validation failure. Invalid audience.",
            };
            return error_reply(401, "InvalidAuthenticationToken", msg, ctx)
                .header("www-authenticate", format!("Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"{}\"", urls.main, GRAPH_APP_ID));
        }
    };
    let has_body = !ctx.body.is_empty();
    let body: Value = if has_body {
        let ct = ctx.header("content-type").unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            // UNVERIFIED: Graph's exact wording for a missing/wrong Content-Type.
            return error_reply(
                415,
                "BadRequest",
                &format!(
                    "The request entity's media type '{ct}' is not supported for this resource."
                ),
                ctx,
            );
        }
        match serde_json::from_slice(&ctx.body) {
            Ok(v) => v,
            Err(_) => {
                return error_reply(
                    400,
                    "BadRequest",
                    "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
                    ctx,
                );
            }
        }
    } else {
        Value::Null
    };
    let raw: Vec<&str> = ctx
        .path
        .trim_start_matches("/v1.0")
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let mut segs = Vec::new();
    for r in &raw {
        match odata::parse_segment(r) {
            Ok(s) => segs.push(s),
            Err(s) => return no_segment(ctx, &s),
        }
    }
    // `.../$count` counts the collection before it (`shared::list` answers it): the call is the
    // collection's, for routing and permissions alike.
    if segs.len() > 1 && segs.last().is_some_and(|s| seg_is(s, "$count")) {
        if ctx.method != "GET" {
            return method_not_allowed(ctx);
        }
        segs.pop();
    }
    if let Err(denied) = authorize(sim, ctx, &claims, &segs) {
        return denied;
    }
    let res = route(sim, ctx, &segs, &body);
    res.unwrap_or_else(|e| e)
}

/// Checks the token against the permission table (`permissions.rs`), as Graph does before it
/// looks at the request. A call the table does not list is left to the router, which refuses
/// it as an unknown segment.
fn authorize(sim: &Sim, ctx: &Ctx, claims: &Value, segs: &[Segment]) -> Result<(), Reply> {
    let keyed: Vec<(String, bool)> = segs
        .iter()
        .map(|s| (s.name.clone(), s.key.is_some()))
        .collect();
    let template = permissions::template(&keyed);
    if template.starts_with("me") && claims["idtyp"] != "user" {
        return Err(error_reply(
            400,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
            ctx,
        ));
    }
    let Some(rule) = permissions::rule(&ctx.method, &template) else {
        return Ok(());
    };
    let directory_roles = sim.opts.admin_directory_roles.clone();
    let caller = if claims["idtyp"] == "user" {
        permissions::Caller::User {
            scopes: claims["scp"]
                .as_str()
                .unwrap_or("")
                .split_whitespace()
                .collect(),
            directory_roles: &directory_roles,
        }
    } else {
        permissions::Caller::App {
            roles: claims["roles"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
        }
    };
    match permissions::check(rule, &caller) {
        Ok(()) => Ok(()),
        // Policy endpoints refuse a delegated token without the scope with this body
        // (Azure/azure-cli issue 23906, az rest to /policies with an Azure CLI token).
        Err(permissions::Denied::MissingScope(_)) if template.starts_with("policies/") => {
            Err(error_reply(
                403,
                "AccessDenied",
                "You cannot perform the requested operation, required scopes are missing in the token.",
                ctx,
            ))
        }
        // Directory objects: "Authorization_RequestDenied" with this message (graph.md §7.1,
        // the directory-specific codes seen in real responses).
        Err(_) => Err(error_reply(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
            ctx,
        )),
    }
}

fn seg_is(s: &Segment, name: &str) -> bool {
    s.name == name && s.key.is_none()
}

/// The map: which handler answers which path. `get(...)` marks the read-only resources (any
/// other method is Graph's 405); the others check their methods themselves.
fn route(sim: &Sim, ctx: &Ctx, segs: &[Segment], body: &Value) -> R {
    let Some(first) = segs.first() else {
        return Err(no_segment(ctx, "v1.0"));
    };
    let second_is = |name: &str| segs.len() >= 2 && seg_is(&segs[1], name);
    match first.name.as_str() {
        "organization" if segs.len() == 1 => get(ctx, || directory::organization(sim)),
        "domains" if segs.len() == 1 => get(ctx, || directory::domains(sim)),
        "directory" if segs.len() == 2 && second_is("onPremisesSynchronization") => {
            get(ctx, || directory::on_premises_synchronization(sim))
        }
        "directory" if second_is("deletedItems") => directory::deleted_items(sim, ctx, &segs[2..]),
        "me" if segs.len() == 2 && second_is("memberOf") => {
            get(ctx, || directory::member_of(sim, ctx))
        }
        "applications" => applications::handle(sim, ctx, segs, body),
        "servicePrincipals" => service_principals::handle(sim, ctx, segs, body),
        "oauth2PermissionGrants" => grants::handle(sim, ctx, segs, body),
        "policies" if segs.len() == 2 && second_is("defaultAppManagementPolicy") => {
            get(ctx, || policies::default_app_management_policy(sim))
        }
        "policies" if second_is("homeRealmDiscoveryPolicies") => {
            policies::hrd_policies(sim, ctx, &segs[1..], body)
        }
        "policies" if segs.len() >= 2 => Err(no_segment(ctx, &segs[1].name)),
        _ => Err(no_segment(ctx, &first.name)),
    }
}

/// A read-only resource: `GET` runs `handler`, any other method is Graph's 405.
fn get(ctx: &Ctx, handler: impl FnOnce() -> R) -> R {
    if ctx.method != "GET" {
        return Err(method_not_allowed(ctx));
    }
    handler()
}
