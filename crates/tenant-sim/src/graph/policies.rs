//! Policies: homeRealmDiscoveryPolicies (create, read, list, update, delete, `appliesTo`) and
//! their assignment to service principals (at most one per service principal), and the tenant's
//! `defaultAppManagementPolicy` (the password lifetime limit `addPassword` enforces).
//!
//! Facts from Microsoft Learn (learn.microsoft.com/graph/api/...): resources/homerealmdiscoverypolicy,
//! homerealmdiscoverypolicy-post-homerealmdiscoverypolicies, homerealmdiscoverypolicy-get,
//! homerealmdiscoverypolicy-list, homerealmdiscoverypolicy-update,
//! homerealmdiscoverypolicy-delete, homerealmdiscoverypolicy-list-appliesto,
//! serviceprincipal-list-homerealmdiscoverypolicies,
//! serviceprincipal-post-homerealmdiscoverypolicies,
//! serviceprincipal-delete-homerealmdiscoverypolicies, tenantappmanagementpolicy-get.

use std::sync::MutexGuard;

use serde_json::{Value, json};

use super::shared::{
    R, addr_text, address, bad, conflict, created, error_reply, find_visible, list, merge,
    method_not_allowed, no_segment, not_found, read_one, read_only, store, validate, visible_list,
};
use crate::exchange::{Ctx, Reply};
use crate::odata::Segment;
use crate::state::{Assignment, Sim, Tenant};
use crate::util::{lock, new_guid, now_ms};

/// `GET /policies/defaultAppManagementPolicy` (Learn tenantappmanagementpolicy-get): the
/// tenant-wide password lifetime restriction, from `--max-secret-days`.
pub(super) fn default_app_management_policy(sim: &Sim) -> R {
    let u = sim.urls().main;
    let passwords = match sim.opts.max_secret_days {
        Some(d) => {
            json!([{"restrictionType": "passwordLifetime", "state": "enabled", "maxLifetime": format!("P{d}D"),
                           "restrictForAppsCreatedAfterDateTime": "2019-01-01T00:00:00Z"}])
        }
        None => json!([]),
    };
    let policy = json!({
        "@odata.context": format!("{u}/v1.0/$metadata#policies/defaultAppManagementPolicy/$entity"),
        "id": "00000000-0000-0000-0000-000000000000",
        "displayName": "Default app management tenant policy",
        "description": "Default tenant policy that enforces app management restrictions on applications and service principals. To apply policy to targeted resources, create a new policy under appManagementPolicies collection.",
        "isEnabled": sim.opts.max_secret_days.is_some(),
        "applicationRestrictions": {"passwordCredentials": passwords, "keyCredentials": []},
        "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []}
    });
    Ok(Reply::json(200, policy))
}

fn hrd_policy_id_from_ref(sim: &Sim, v: &str) -> Option<String> {
    let _ = sim;
    let rest = v.split("/v1.0/").nth(1)?;
    let id = rest.strip_prefix("policies/homeRealmDiscoveryPolicies/")?;
    let id = id
        .strip_prefix('{')
        .and_then(|i| i.strip_suffix('}'))
        .unwrap_or(id);
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

fn check_policy_body(ctx: &Ctx, body: &Value, creating: bool) -> Result<(), Reply> {
    validate(ctx, "homeRealmDiscoveryPolicy", body)?;
    read_only(ctx, body, &["id", "deletedDateTime"])?;
    match body.get("definition") {
        Some(Value::Array(a)) if !a.is_empty() => {
            for d in a {
                if d.as_str()
                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
                    .is_none_or(|v| !v.is_object())
                {
                    return Err(bad(
                        ctx,
                        "Invalid value specified for property 'definition' of resource 'HomeRealmDiscoveryPolicy'.",
                    ));
                }
            }
        }
        None if !creating => {}
        _ => {
            return Err(bad(
                ctx,
                "Invalid value specified for property 'definition' of resource 'HomeRealmDiscoveryPolicy'.",
            ));
        }
    }
    match body.get("displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        None if !creating => {}
        _ => {
            return Err(bad(
                ctx,
                "Invalid value specified for property 'displayName' of resource 'HomeRealmDiscoveryPolicy'.",
            ));
        }
    }
    Ok(())
}

pub(super) fn hrd_policies(sim: &Sim, ctx: &Ctx, segs: &[Segment], body: &Value) -> R {
    let m = ctx.method.as_str();
    let (addr, rest) = address(ctx, segs, &[])?;
    let mut t = lock(&sim.tenant);
    let coll = "policies/homeRealmDiscoveryPolicies";
    let Some(addr) = addr else {
        return match m {
            "GET" => {
                let items = visible_list(sim, &t.home_realm_discovery_policies);
                drop(t);
                list(sim, ctx, "homeRealmDiscoveryPolicy", coll, items)
            }
            "POST" => {
                check_policy_body(ctx, body, true)?;
                let mut p = json!({"id": new_guid(), "deletedDateTime": null, "description": null, "displayName": null, "definition": [], "isOrganizationDefault": false});
                merge(&mut p, body);
                store(&mut t.home_realm_discovery_policies, &p);
                drop(t);
                created(sim, ctx, "homeRealmDiscoveryPolicy", coll, &p)
            }
            _ => Err(method_not_allowed(ctx)),
        };
    };
    let i = find_visible(sim, &t.home_realm_discovery_policies, &addr);
    if let Some(nav) = rest.first() {
        if nav.name != "appliesTo" || rest.len() > 1 {
            return Err(no_segment(ctx, &nav.name));
        }
        if m != "GET" {
            return Err(method_not_allowed(ctx));
        }
        let i = i.ok_or_else(|| not_found(ctx, &addr_text(&addr)))?;
        let pid = t.home_realm_discovery_policies[i].id().to_string();
        let items: Vec<Value> = t
            .hrd_assignments
            .iter()
            .filter(|a| a.policy_id.eq_ignore_ascii_case(&pid) && sim.visible(a.created_ms))
            .filter_map(|a| t.service_principals.iter().find(|s| s.id() == a.sp_id))
            .map(|s| {
                let mut d = s.data.clone();
                d["@odata.type"] = json!("#microsoft.graph.servicePrincipal");
                d
            })
            .collect();
        drop(t);
        return list(sim, ctx, "directoryObject", "directoryObjects", items);
    }
    match m {
        "GET" => read_one(
            sim,
            ctx,
            &t.home_realm_discovery_policies,
            i,
            &addr,
            ("homeRealmDiscoveryPolicy", coll),
        ),
        "PATCH" => {
            check_policy_body(ctx, body, false)?;
            let i = i.ok_or_else(|| not_found(ctx, &addr_text(&addr)))?;
            merge(&mut t.home_realm_discovery_policies[i].data, body);
            Ok(Reply::empty(204))
        }
        "DELETE" => {
            let i = i.ok_or_else(|| not_found(ctx, &addr_text(&addr)))?;
            let p = t.home_realm_discovery_policies.remove(i);
            let pid = p.id().to_string();
            t.hrd_assignments.retain(|a| a.policy_id != pid);
            Ok(Reply::empty(204))
        }
        _ => Err(method_not_allowed(ctx)),
    }
}

/// `GET servicePrincipals/{id}/homeRealmDiscoveryPolicies`: the policies assigned to the
/// service principal `id` (learn.microsoft.com/graph/api/serviceprincipal-list-homerealmdiscoverypolicies).
pub(super) fn of_service_principal(sim: &Sim, ctx: &Ctx, t: MutexGuard<'_, Tenant>, id: &str) -> R {
    let items: Vec<Value> = t
        .hrd_assignments
        .iter()
        .filter(|a| a.sp_id == id && sim.visible(a.created_ms))
        .filter_map(|a| {
            t.home_realm_discovery_policies
                .iter()
                .find(|p| p.id() == a.policy_id)
        })
        .map(|p| p.data.clone())
        .collect();
    drop(t);
    list(
        sim,
        ctx,
        "homeRealmDiscoveryPolicy",
        "Collection(microsoft.graph.homeRealmDiscoveryPolicy)",
        items,
    )
}

/// `POST servicePrincipals/{id}/homeRealmDiscoveryPolicies/$ref`: assigns the policy named by
/// `@odata.id` to the service principal `sp_id`; a service principal takes one HRD policy at most
/// (learn.microsoft.com/graph/api/serviceprincipal-post-homerealmdiscoverypolicies).
pub(super) fn assign(sim: &Sim, ctx: &Ctx, t: &mut Tenant, sp_id: String, body: &Value) -> R {
    let Some(r) = body.get("@odata.id").and_then(Value::as_str) else {
        return Err(error_reply(
            400,
            "BadRequest",
            "The request body must contain an '@odata.id' property.",
            ctx,
        ));
    };
    let Some(pid) = hrd_policy_id_from_ref(sim, r) else {
        return Err(error_reply(
            400,
            "BadRequest",
            &format!("Invalid object identifier '{r}'."),
            ctx,
        ));
    };
    if !t
        .home_realm_discovery_policies
        .iter()
        .any(|p| p.id().eq_ignore_ascii_case(&pid) && sim.visible(p.created_ms))
    {
        return Err(not_found(ctx, &pid));
    }
    let existing: Vec<&Assignment> = t
        .hrd_assignments
        .iter()
        .filter(|a| a.sp_id == sp_id)
        .collect();
    if existing
        .iter()
        .any(|a| a.policy_id.eq_ignore_ascii_case(&pid))
    {
        return Err(bad(
            ctx,
            "One or more added object references already exist for the following modified properties: 'policies'.",
        ));
    }
    if !existing.is_empty() {
        // UNVERIFIED: exact error for a second HRD policy on one service principal
        // (docs only say "you won't be able to add a second one").
        return Err(conflict(
            ctx,
            "Another object with the same value for property policies already exists. A service principal can have only one policy of type HomeRealmDiscoveryPolicy assigned.",
        ));
    }
    t.hrd_assignments.push(Assignment {
        sp_id,
        policy_id: pid.to_ascii_lowercase(),
        created_ms: now_ms(),
    });
    Ok(Reply::empty(204))
}

/// `DELETE servicePrincipals/{id}/homeRealmDiscoveryPolicies/{policyId}/$ref`: removes the
/// assignment (learn.microsoft.com/graph/api/serviceprincipal-delete-homerealmdiscoverypolicies).
pub(super) fn unassign(ctx: &Ctx, t: &mut Tenant, sp_id: &str, pid: &str) -> R {
    let before = t.hrd_assignments.len();
    t.hrd_assignments
        .retain(|a| !(a.sp_id == sp_id && a.policy_id.eq_ignore_ascii_case(pid)));
    if t.hrd_assignments.len() == before {
        return Err(not_found(ctx, pid));
    }
    Ok(Reply::empty(204))
}
