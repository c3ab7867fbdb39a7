//! Directory reads: the organization, its domains, `directory/onPremisesSynchronization`, the
//! signed-in admin's directory roles (`me/memberOf`), and `directory/deletedItems` for
//! applications (list, get, restore).
//!
//! Facts from Microsoft Learn (learn.microsoft.com/graph/api/...): organization-list,
//! domain-list, onpremisesdirectorysynchronization-get, user-list-memberof,
//! directory-deleteditems-list, directory-deleteditems-get, directory-deleteditems-restore; role
//! template ids from "Microsoft Entra built-in roles"
//! (learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).

use serde_json::{Value, json};

use super::seg_is;
use super::shared::{
    Addr, R, error_reply, find, list, method_not_allowed, no_segment, not_found, single,
};
use crate::odata::Segment;
use crate::server::{Ctx, Reply};
use crate::state::{Sim, Tenant, lock, new_guid};

/// `GET /organization`: the one organization of the tenant.
pub(super) fn organization(sim: &Sim) -> R {
    let t = lock(&sim.tenant);
    let org = json!({"id": t.tenant_id, "displayName": t.org_display_name, "verifiedDomains": verified_domains(&t), "onPremisesSyncEnabled": t.federated_domain.is_some()});
    let u = sim.urls().main;
    Ok(Reply::json(
        200,
        json!({"@odata.context": format!("{u}/v1.0/$metadata#organization"), "value": [org]}),
    ))
}

/// `GET /domains`: the managed initial domain, and the federated one when there is one.
pub(super) fn domains(sim: &Sim) -> R {
    let t = lock(&sim.tenant);
    let mut v = vec![
        json!({"id": t.initial_domain, "authenticationType": "Managed", "isAdminManaged": true, "isDefault": t.federated_domain.is_none(), "isInitial": true, "isRoot": true, "isVerified": true, "supportedServices": ["Email", "OfficeCommunicationsOnline"]}),
    ];
    if let Some(f) = &t.federated_domain {
        v.push(json!({"id": f, "authenticationType": "Federated", "isAdminManaged": true, "isDefault": true, "isInitial": false, "isRoot": true, "isVerified": true, "supportedServices": ["Email"]}));
    }
    let u = sim.urls().main;
    Ok(Reply::json(
        200,
        json!({"@odata.context": format!("{u}/v1.0/$metadata#domains"), "value": v}),
    ))
}

/// `GET /directory/onPremisesSynchronization`: the tenant's sync configuration and features.
pub(super) fn on_premises_synchronization(sim: &Sim) -> R {
    let t = lock(&sim.tenant);
    let u = sim.urls().main;
    Ok(Reply::json(
        200,
        json!({"@odata.context": format!("{u}/v1.0/$metadata#directory/onPremisesSynchronization"), "value": [{
            "id": t.tenant_id,
            "configuration": {"accidentalDeletionPrevention": null, "synchronizationInterval": "PT30M"},
            "features": {"passwordSyncEnabled": true, "directoryExtensionsEnabled": false, "passwordWritebackEnabled": false}
        }]}),
    ))
}

/// `GET /me/memberOf`: the signed-in admin's directory roles (`--admin-directory-roles`).
pub(super) fn member_of(sim: &Sim, ctx: &Ctx) -> R {
    let items: Vec<Value> = sim
        .opts
        .admin_directory_roles
        .iter()
        .map(|r| {
            json!({"@odata.type": "#microsoft.graph.directoryRole", "id": new_guid(), "deletedDateTime": null,
                   "displayName": r, "description": null, "roleTemplateId": role_template_id(r)})
        })
        .collect();
    list(sim, ctx, "directoryObject", "directoryObjects", items)
}

/// Template ids of the built-in directory roles (Learn "Microsoft Entra built-in roles").
fn role_template_id(name: &str) -> Value {
    let id = match name {
        "Global Administrator" => "62e90394-69f5-4237-9190-012177145e10",
        "Application Administrator" => "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Cloud Application Administrator" => "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Privileged Role Administrator" => "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Global Reader" => "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
        _ => return Value::Null,
    };
    json!(id)
}

fn verified_domains(t: &Tenant) -> Value {
    let mut v = vec![
        json!({"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": t.federated_domain.is_none(), "isInitial": true, "name": t.initial_domain, "type": "Managed"}),
    ];
    if let Some(f) = &t.federated_domain {
        v.push(json!({"capabilities": "Email", "isDefault": true, "isInitial": false, "name": f, "type": "Federated"}));
    }
    Value::Array(v)
}

/// `directory/deletedItems` for applications: `GET .../microsoft.graph.application` (list),
/// `GET .../{id}` and `POST .../{id}/restore`
/// (learn.microsoft.com/graph/api/directory-deleteditems-list,
/// directory-deleteditems-get, directory-deleteditems-restore). Deleted items older than 30
/// days are not purged: the emulator's tenants live minutes.
pub(super) fn deleted_items(sim: &Sim, ctx: &Ctx, rest: &[Segment]) -> R {
    let m = ctx.method.as_str();
    let mut t = lock(&sim.tenant);
    match rest {
        [] => Err(error_reply(
            400,
            "Request_BadRequest",
            "A type cast to a derived type of directoryObject is required, e.g. deletedItems/microsoft.graph.application.",
            ctx,
        )),
        [cast] if cast.key.is_none() && cast.name == "microsoft.graph.application" => {
            if m != "GET" {
                return Err(method_not_allowed(ctx));
            }
            let items: Vec<Value> = t.deleted_items.iter().map(|o| o.data.clone()).collect();
            drop(t);
            list(
                sim,
                ctx,
                "application",
                "directory/deletedItems/microsoft.graph.application",
                items,
            )
        }
        [id] if id.key.is_none() => {
            if m != "GET" {
                return Err(method_not_allowed(ctx));
            }
            let addr = Addr::Id(id.name.clone());
            let i = find(&t.deleted_items, &addr).ok_or_else(|| not_found(ctx, &id.name))?;
            let mut data = t.deleted_items[i].data.clone();
            data["@odata.type"] = json!("#microsoft.graph.application");
            drop(t);
            single(sim, ctx, "application", "directory/deletedItems", &data)
        }
        [id, action] if id.key.is_none() && seg_is(action, "restore") => {
            if m != "POST" {
                return Err(method_not_allowed(ctx));
            }
            let addr = Addr::Id(id.name.clone());
            let i = find(&t.deleted_items, &addr).ok_or_else(|| not_found(ctx, &id.name))?;
            let mut app = t.deleted_items.remove(i);
            app.data["deletedDateTime"] = Value::Null;
            let mut data = app.data.clone();
            t.applications.push(app);
            drop(t);
            data["@odata.type"] = json!("#microsoft.graph.application");
            single(sim, ctx, "application", "directoryObjects", &data)
        }
        [_, other, ..] => Err(no_segment(ctx, &other.name)),
        [other] => Err(no_segment(ctx, &other.name)),
    }
}
