//! Service principals: create (`POST /servicePrincipals` for a replicated application of the
//! tenant or a first-party app such as Dynamics CRM), read, list, update and upsert by `appId`
//! (`PATCH /servicePrincipals(appId='x')` with `Prefer: create-if-missing`), delete (into
//! `directory/deletedItems`, its grants set aside and its policy assignments dropped), and the navigation properties a service principal has here:
//! its `oauth2PermissionGrants` (see `grants.rs`) and `homeRealmDiscoveryPolicies` (see
//! `policies.rs`).
//!
//! Facts from Microsoft Learn (learn.microsoft.com/graph/api/...): resources/serviceprincipal,
//! serviceprincipal-post-serviceprincipals, serviceprincipal-get, serviceprincipal-list,
//! serviceprincipal-upsert, serviceprincipal-delete,
//! serviceprincipal-list-oauth2permissiongrants, serviceprincipal-list-homerealmdiscoverypolicies,
//! serviceprincipal-post-homerealmdiscoverypolicies,
//! serviceprincipal-delete-homerealmdiscoverypolicies.

use serde_json::{Value, json};

use super::shared::{
    Addr, R, addr_text, address, bad, conflict, create_if_missing, created, err_with, error_reply,
    find, find_visible, list, merge, method_not_allowed, no_segment, not_found, read_one,
    read_only, store, validate, visible_list,
};
use super::{grants, policies, seg_is};
use crate::exchange::{Ctx, Reply};
use crate::odata::Segment;
use crate::state::{DYNAMICS_APP_ID, GRAPH_APP_ID, Obj, Sim, Tenant, first_party_sp};
use crate::util::{lock, new_guid, now_ms, rfc3339};

/// Deletes service principals as Entra does: each is moved to `directory/deletedItems`
/// (restorable on its own for 30 days; restoring its application does not bring it back —
/// learn.microsoft.com/graph/api/directory-deleteditems-restore), its delegated permission
/// grants are set aside and come back if it is restored ("you recover the service principal's
/// previous configurations, except its previous policies": learn.microsoft.com/entra/identity/
/// enterprise-apps/restore-application), and its policy assignments (HRD) are dropped for good.
pub(super) fn soft_delete_sps(t: &mut Tenant, sp_ids: &[String]) {
    let now = rfc3339(now_ms());
    let (gone, kept): (Vec<Obj>, Vec<Obj>) = std::mem::take(&mut t.service_principals)
        .into_iter()
        .partition(|s| sp_ids.iter().any(|x| x == s.id()));
    t.service_principals = kept;
    for mut sp in gone {
        sp.data["deletedDateTime"] = json!(now);
        t.deleted_items.push(sp);
    }
    let (parked, live): (Vec<Obj>, Vec<Obj>) = std::mem::take(&mut t.oauth2_permission_grants)
        .into_iter()
        .partition(|g| {
            sp_ids.iter().any(|x| {
                Some(x.as_str()) == g.str("clientId") || Some(x.as_str()) == g.str("resourceId")
            })
        });
    t.oauth2_permission_grants = live;
    t.deleted_grants.extend(parked);
    t.hrd_assignments.retain(|a| !sp_ids.contains(&a.sp_id));
}

fn no_backing(ctx: &Ctx, app_id: &str) -> Reply {
    let msg = format!(
        "The appId '{app_id}' of the service principal does not reference a valid application object."
    );
    err_with(
        400,
        "Request_BadRequest",
        &msg,
        Some(json!([{"code": "NoBackingApplicationObject", "message": msg, "target": "appId"}])),
        ctx,
    )
}

/// Build a new SP for `app_id` (a replicated app of the tenant, or a first-party app).
fn build_sp(sim: &Sim, t: &Tenant, ctx: &Ctx, app_id: &str) -> Result<Value, Reply> {
    if let Some(app) = t.applications.iter().find(|a| {
        a.str("appId")
            .is_some_and(|x| x.eq_ignore_ascii_case(app_id))
            && sim.visible(a.created_ms)
    }) {
        let d = &app.data;
        return Ok(json!({
            "id": new_guid(), "deletedDateTime": null, "accountEnabled": true,
            "appDisplayName": d["displayName"], "appDescription": null, "appId": d["appId"],
            "applicationTemplateId": null, "appOwnerOrganizationId": t.tenant_id, "appRoleAssignmentRequired": false,
            "description": null, "displayName": d["displayName"], "homepage": null, "loginUrl": null, "logoutUrl": null,
            "notes": null, "notificationEmailAddresses": [], "preferredSingleSignOnMode": null,
            "replyUrls": [], "servicePrincipalNames": [d["appId"]], "servicePrincipalType": "Application",
            "signInAudience": d["signInAudience"], "tags": [], "addIns": [], "appRoles": [],
            "info": {"termsOfServiceUrl": null, "supportUrl": null, "privacyStatementUrl": null, "marketingUrl": null, "logoUrl": null},
            "keyCredentials": [], "oauth2PermissionScopes": [], "passwordCredentials": []
        }));
    }
    if app_id.eq_ignore_ascii_case(DYNAMICS_APP_ID) || app_id.eq_ignore_ascii_case(GRAPH_APP_ID) {
        if let Some(sp) = first_party_sp(&app_id.to_ascii_lowercase(), &t.tenant_id) {
            return Ok(sp);
        }
    }
    Err(no_backing(ctx, app_id))
}

fn sp_dup(ctx: &Ctx, app_id: &str) -> Reply {
    conflict(
        ctx,
        &format!(
            "The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use."
        ),
    )
}

fn check_sp_body(ctx: &Ctx, body: &Value) -> Result<(), Reply> {
    validate(ctx, "servicePrincipal", body)?;
    read_only(
        ctx,
        body,
        &["id", "appOwnerOrganizationId", "deletedDateTime"],
    )
}

pub(super) fn handle(sim: &Sim, ctx: &Ctx, segs: &[Segment], body: &Value) -> R {
    let m = ctx.method.as_str();
    let (addr, rest) = address(ctx, segs, &["appId"])?;
    let Some(addr) = addr else {
        return match m {
            "GET" => {
                let items = visible_list(sim, &lock(&sim.tenant).service_principals);
                list(sim, ctx, "servicePrincipal", "servicePrincipals", items)
            }
            "POST" => {
                check_sp_body(ctx, body)?;
                let Some(app_id) = body.get("appId").and_then(Value::as_str) else {
                    return Err(bad(ctx, "The request must contain the 'appId' property."));
                };
                let mut t = lock(&sim.tenant);
                if t.service_principals.iter().any(|s| {
                    s.str("appId")
                        .is_some_and(|x| x.eq_ignore_ascii_case(app_id))
                }) {
                    return Err(sp_dup(ctx, app_id));
                }
                let mut sp = build_sp(sim, &t, ctx, app_id)?;
                merge(&mut sp, body);
                store(&mut t.service_principals, &sp);
                drop(t);
                created(sim, ctx, "servicePrincipal", "servicePrincipals", &sp)
            }
            _ => Err(method_not_allowed(ctx)),
        };
    };
    if !rest.is_empty() {
        return sp_nav(sim, ctx, &addr, rest, body);
    }
    let mut t = lock(&sim.tenant);
    let idx = find(&t.service_principals, &addr);
    let vis = idx.filter(|i| sim.visible(t.service_principals[*i].created_ms));
    match m {
        "GET" => read_one(
            sim,
            ctx,
            &t.service_principals,
            vis,
            &addr,
            ("servicePrincipal", "servicePrincipals"),
        ),
        "PATCH" => {
            let create = create_if_missing(ctx);
            let by_app = matches!(addr, Addr::Alt(..));
            check_sp_body(ctx, body)?;
            if body.get("appId").is_some_and(|a| {
                Some(a.as_str().unwrap_or(""))
                    != t.service_principals
                        .get(idx.unwrap_or(usize::MAX))
                        .and_then(|s| s.str("appId"))
                    && idx.is_some()
            }) {
                return Err(bad(ctx, "Property 'appId' is read-only and cannot be set."));
            }
            let target = if by_app && create { idx } else { vis };
            match target {
                Some(i) => {
                    merge(&mut t.service_principals[i].data, body);
                    Ok(Reply::empty(204))
                }
                None if by_app && create => {
                    let app_id = addr_text(&addr);
                    let mut sp = build_sp(sim, &t, ctx, &app_id)?;
                    merge(&mut sp, body);
                    store(&mut t.service_principals, &sp);
                    drop(t);
                    created(sim, ctx, "servicePrincipal", "servicePrincipals", &sp)
                }
                None => Err(not_found(ctx, &addr_text(&addr))),
            }
        }
        "DELETE" => {
            let i = vis.ok_or_else(|| not_found(ctx, &addr_text(&addr)))?;
            let id = t.service_principals[i].id().to_string();
            soft_delete_sps(&mut t, &[id]);
            Ok(Reply::empty(204))
        }
        _ => Err(method_not_allowed(ctx)),
    }
}

fn sp_nav(sim: &Sim, ctx: &Ctx, addr: &Addr, rest: &[Segment], body: &Value) -> R {
    let m = ctx.method.as_str();
    let mut t = lock(&sim.tenant);
    let sp_idx = find_visible(sim, &t.service_principals, addr);
    let nav = &rest[0];
    match (nav.name.as_str(), rest.len()) {
        ("oauth2PermissionGrants", 1) => {
            if m != "GET" {
                return Err(method_not_allowed(ctx));
            }
            let i = sp_idx.ok_or_else(|| not_found(ctx, &addr_text(addr)))?;
            let id = t.service_principals[i].id().to_string();
            grants::of_client(sim, ctx, t, &id)
        }
        ("homeRealmDiscoveryPolicies", 1) => {
            if m != "GET" {
                return Err(method_not_allowed(ctx));
            }
            let i = sp_idx.ok_or_else(|| not_found(ctx, &addr_text(addr)))?;
            let id = t.service_principals[i].id().to_string();
            policies::of_service_principal(sim, ctx, t, &id)
        }
        ("homeRealmDiscoveryPolicies", 2) if seg_is(&rest[1], "$ref") => {
            if m != "POST" {
                return Err(method_not_allowed(ctx));
            }
            let i = sp_idx.ok_or_else(|| not_found(ctx, &addr_text(addr)))?;
            let sp_id = t.service_principals[i].id().to_string();
            policies::assign(sim, ctx, &mut t, sp_id, body)
        }
        ("homeRealmDiscoveryPolicies", 3) if seg_is(&rest[2], "$ref") => {
            if m != "DELETE" {
                return Err(method_not_allowed(ctx));
            }
            let i = sp_idx.ok_or_else(|| not_found(ctx, &addr_text(addr)))?;
            let sp_id = t.service_principals[i].id().to_string();
            policies::unassign(ctx, &mut t, &sp_id, &rest[1].name)
        }
        ("addPassword" | "removePassword", _) => Err(error_reply(
            400,
            "BadRequest",
            "This operation is not supported by the emulator for service principals.",
            ctx,
        )),
        _ => Err(no_segment(ctx, &nav.name)),
    }
}
