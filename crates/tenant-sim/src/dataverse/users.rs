//! System users and their security roles: the application user Dataverse creates from an
//! Entra application (only once it and its service principal have replicated; one per
//! application, soft-deleted ones included), the two-stage delete (soft-delete, then purge),
//! and the user–role N:N association `systemuserroles_association` (list, `$ref` associate and
//! disassociate, roles of the user's own business unit only).
//!
//! Facts from Microsoft Learn: "Manage application users in the Power Platform admin center"
//! (learn.microsoft.com/power-platform/admin/manage-application-users), "Delete users from
//! environments" (learn.microsoft.com/power-platform/admin/delete-users), "Associate and
//! disassociate table rows using the Web API"
//! (learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api),
//! "Security roles and privileges" (learn.microsoft.com/power-platform/admin/security-roles-privileges).

use serde_json::{Map, Value, json};

use super::query::{check_select, filter_rows};
use super::shared::{R, collection, does_not_exist, error_reply, no_resource};
use crate::exchange::{Ctx, Reply};
use crate::odata::{self, Segment};
use crate::state::org::Dv;
use crate::state::{Sim, Tenant};

/// The role rows associated with the system user `uid`.
pub(super) fn user_roles(dv: &Dv, uid: &str) -> Vec<Value> {
    let roles = dv.rows.get("role").cloned().unwrap_or_default();
    dv.user_roles
        .iter()
        .filter(|(u, _)| u == uid)
        .filter_map(|(_, r)| {
            roles
                .iter()
                .find(|x| x["roleid"].as_str() == Some(r.as_str()))
                .cloned()
        })
        .collect()
}

/// `roles(id)/systemuserroles_association` (`GET` only): the users who hold the role, the same
/// N:N association read from the role's side (Learn: "Associate and disassociate table rows
/// using the Web API"; the association's name is the same on both tables, see the `role` entity
/// reference, learn.microsoft.com/power-apps/developer/data-platform/reference/entities/role).
/// Associating from this side is not emulated: the tools associate from the user's side.
pub(super) fn role_holders(sim: &Sim, ctx: &Ctx, t: &Tenant, rid: &str, segs: &[Segment]) -> R {
    if ctx.method != "GET" || segs.len() != 2 {
        return Err(no_resource(sim, ctx));
    }
    let users_ent = t
        .dataverse
        .entities
        .iter()
        .find(|x| x.logical == "systemuser")
        .cloned();
    let sel = match (ctx.q("$select"), &users_ent) {
        (Some(s), Some(u)) => Some(check_select(u, &odata::parse_select(s))?),
        _ => None,
    };
    let holders: Vec<&str> = t
        .dataverse
        .user_roles
        .iter()
        .filter(|(_, r)| r.eq_ignore_ascii_case(rid))
        .map(|(u, _)| u.as_str())
        .collect();
    let v: Vec<Value> = t
        .dataverse
        .rows
        .get("systemuser")
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|u| {
            u["systemuserid"]
                .as_str()
                .is_some_and(|id| holders.contains(&id))
        })
        .map(|u| odata::select(u, sel.as_deref(), &["systemuserid"]))
        .collect();
    Ok(collection(sim, "systemusers", v))
}

/// `systemusers(id)/systemuserroles_association` (`GET`) and `.../$ref` (`POST` to associate a
/// role, `DELETE ...?$id=<role url>` to disassociate) for the user `row`.
pub(super) fn roles_association(
    sim: &Sim,
    ctx: &Ctx,
    t: &mut Tenant,
    row: &Value,
    segs: &[Segment],
) -> R {
    let uid = row["systemuserid"].as_str().unwrap_or("").to_string();
    let ubu = row["_businessunitid_value"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let is_ref = segs.last().is_some_and(|s| s.name == "$ref");
    let role_ent = t
        .dataverse
        .entities
        .iter()
        .find(|x| x.logical == "role")
        .cloned();
    match (ctx.method.as_str(), is_ref, segs.len()) {
        ("GET", false, 2) => {
            let roles = user_roles(&t.dataverse, &uid);
            let sel = match (ctx.q("$select"), &role_ent) {
                (Some(s), Some(r)) => Some(check_select(r, &odata::parse_select(s))?),
                _ => None,
            };
            let roles = match &role_ent {
                Some(r) => filter_rows(r, roles, ctx.q("$filter"))?,
                None => roles,
            };
            let v: Vec<Value> = roles
                .iter()
                .map(|r| odata::select(r, sel.as_deref(), &["roleid"]))
                .collect();
            Ok(collection(sim, "roles", v))
        }
        ("POST", true, 3) => {
            let body: Value = serde_json::from_slice(&ctx.body).unwrap_or(Value::Null);
            let Some(r) = body.get("@odata.id").and_then(Value::as_str) else {
                return Err(error_reply(
                    400,
                    "0x0",
                    "The request body must contain an '@odata.id' annotation.",
                ));
            };
            let rid = role_id_from_url(r).ok_or_else(|| {
                error_reply(
                    400,
                    "0x0",
                    &format!("The URI '{r}' is not a valid entity reference."),
                )
            })?;
            let roles = t.dataverse.rows.get("role").cloned().unwrap_or_default();
            let Some(role) = roles
                .iter()
                .find(|x| x["roleid"].as_str() == Some(rid.as_str()))
            else {
                return Err(does_not_exist("role", &rid));
            };
            if role["_businessunitid_value"].as_str() != Some(ubu.as_str()) {
                // UNVERIFIED: Dataverse's exact error for a role of another business unit.
                return Err(error_reply(
                    400,
                    "0x80040203",
                    &format!(
                        "The role (Id={rid}) belongs to business unit {}, but the user belongs to business unit {ubu}. A user can only be assigned roles of their own business unit.",
                        role["_businessunitid_value"].as_str().unwrap_or("")
                    ),
                ));
            }
            if t.dataverse
                .user_roles
                .iter()
                .any(|(u, x)| *u == uid && *x == rid)
            {
                // UNVERIFIED: status of a duplicate N:N $ref (DuplicateRecord maps to 412).
                return Err(error_reply(
                    412,
                    "0x80040237",
                    "Cannot insert duplicate key.",
                ));
            }
            t.dataverse.user_roles.push((uid, rid));
            Ok(Reply::empty(204))
        }
        ("DELETE", true, 3) => {
            let target = ctx.q("$id").map(str::to_string).ok_or_else(|| error_reply(400, "0x0", "The $id query option is required to delete a reference of a collection-valued navigation property."))?;
            let rid = role_id_from_url(&target).ok_or_else(|| {
                error_reply(
                    400,
                    "0x0",
                    &format!("The URI '{target}' is not a valid entity reference."),
                )
            })?;
            t.dataverse
                .user_roles
                .retain(|(u, x)| !(*u == uid && *x == rid));
            Ok(Reply::empty(204))
        }
        _ => Err(no_resource(sim, ctx)),
    }
}

/// The values Dataverse adds to a new system user's `vals`: for an application user
/// (`applicationid` set) its names, e-mail and Entra object id from the replicated application
/// and service principal; for every user the enabled, not deleted, unlicensed defaults.
pub(super) fn new_system_user(
    sim: &Sim,
    t: &Tenant,
    vals: &mut Map<String, Value>,
) -> Result<(), Reply> {
    if vals.get("_businessunitid_value").is_none_or(Value::is_null) {
        return Err(error_reply(
            400,
            "0x80040203",
            "Expecting business column to be set for Creating business owned entities, business column is null",
        ));
    }
    if let Some(app_id) = vals
        .get("applicationid")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        // Dataverse learns about the app from Entra ID, so it sees only what has replicated.
        let replicated = |objects: &[crate::state::Obj]| {
            objects
                .iter()
                .find(|o| {
                    o.str("appId")
                        .is_some_and(|x| x.eq_ignore_ascii_case(&app_id))
                        && sim.visible(o.created_ms)
                })
                .cloned()
        };
        let app = replicated(&t.applications);
        let sp = replicated(&t.service_principals);
        let (Some(app), Some(sp)) = (app, sp) else {
            // UNVERIFIED: the real code/wording when the app id is unknown to Entra (or not replicated yet).
            return Err(error_reply(
                400,
                "0x80041d2a",
                &format!(
                    "The object does not exist in active directory. No service principal for application id {app_id} was found in tenant {}.",
                    t.tenant_id
                ),
            ));
        };
        // Real Dataverse answers 412 DuplicateRecord when any row has this applicationid,
        // soft-deleted rows included (microsoft/terraform-provider-power-platform issue
        // 623; the provider purges soft-deleted application users before creating).
        let dup = t.dataverse.rows.get("systemuser").is_some_and(|rows| {
            rows.iter().any(|r| {
                r["applicationid"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(&app_id))
            })
        });
        if dup {
            return Err(error_reply(
                412,
                "0x80040237",
                "A record with matching key values already exists.",
            ));
        }
        let name = app.str("displayName").unwrap_or("Application").to_string();
        let email = format!("{}@{}", app_id.to_ascii_lowercase(), t.initial_domain);
        vals.insert("applicationid".into(), json!(app_id.to_ascii_lowercase()));
        vals.entry("fullname").or_insert(json!(name));
        vals.entry("firstname").or_insert(json!("#"));
        vals.entry("lastname").or_insert(json!(name));
        vals.entry("internalemailaddress").or_insert(json!(email));
        vals.entry("domainname").or_insert(json!(email));
        vals.entry("accessmode").or_insert(json!(4));
        vals.insert("azureactivedirectoryobjectid".into(), json!(sp.id()));
    }
    vals.entry("isdisabled").or_insert(json!(false));
    vals.insert("deletedstate".into(), json!(0));
    vals.entry("islicensed").or_insert(json!(false));
    Ok(())
}

fn role_id_from_url(u: &str) -> Option<String> {
    let i = u.rfind("roles(")?;
    let rest = &u[i + 6..];
    let id = rest.strip_suffix(')')?;
    odata::is_guid(id).then(|| id.to_ascii_lowercase())
}

/// `DELETE systemusers(id)`: Dataverse deletes users in two stages (Learn "Delete users from
/// environments"): a disabled user is soft-deleted (`deletedstate` 1), a soft-deleted user is
/// removed for good. Microsoft's Terraform provider purges with two DELETEs
/// (`PermanentlyDeleteSystemUser`). An enabled user cannot be deleted.
pub(super) fn delete_system_user(dv: &mut Dv, pos: usize) -> R {
    let Some(rows) = dv.rows.get_mut("systemuser") else {
        return Err(does_not_exist("systemuser", ""));
    };
    let row = &mut rows[pos];
    let id = row["systemuserid"].as_str().unwrap_or("").to_string();
    if row["deletedstate"] == json!(1) {
        rows.remove(pos);
        dv.user_roles.retain(|(u, _)| *u != id);
        return Ok(Reply::empty(204));
    }
    if row["isdisabled"] != json!(true) {
        // UNVERIFIED: code and wording for deleting an enabled user.
        return Err(error_reply(
            400,
            "0x80040203",
            &format!(
                "The user with SystemUserId={id} is enabled. Disable the user before deleting it."
            ),
        ));
    }
    row["deletedstate"] = json!(1);
    Ok(Reply::empty(204))
}

/// `POST /_sim/soft-delete-user`: soft-deletes the active application user for an application
/// id, as deleting it in the Power Platform admin center does. `false` when there is none.
pub fn soft_delete_application_user(dv: &mut Dv, application_id: &str) -> bool {
    let Some(rows) = dv.rows.get_mut("systemuser") else {
        return false;
    };
    let Some(row) = rows.iter_mut().find(|r| {
        r["applicationid"]
            .as_str()
            .is_some_and(|x| x.eq_ignore_ascii_case(application_id))
            && r["deletedstate"] != json!(1)
    }) else {
        return false;
    };
    row["isdisabled"] = json!(true);
    row["deletedstate"] = json!(1);
    true
}
