//! oauth2PermissionGrants (delegated permission grants, "admin consent" when `consentType` is
//! `AllPrincipals`): create, read, list, update of `scope`, delete, and the grants a service
//! principal holds as client. The id is Graph's: base64url of the client, resource (and
//! principal) object ids as little-endian GUID bytes.
//!
//! Facts from Microsoft Learn (learn.microsoft.com/graph/api/...): resources/oauth2permissiongrant,
//! oauth2permissiongrant-post, oauth2permissiongrant-get, oauth2permissiongrant-list,
//! oauth2permissiongrant-update, oauth2permissiongrant-delete,
//! serviceprincipal-list-oauth2permissiongrants.

use std::sync::MutexGuard;

use base64::Engine;
use serde_json::{Value, json};

use super::shared::{
    R, addr_text, address, bad, conflict, created, find_visible, list, merge, method_not_allowed,
    no_segment, not_found, other_key, read_one, read_only, store, validate, visible_list,
};
use crate::exchange::{Ctx, Reply};
use crate::odata::Segment;
use crate::state::{Sim, Tenant};
use crate::util::lock;

/// The entity type and collection of every answer here, as `list`, `single` and `created` take them.
const TY: &str = "oAuth2PermissionGrant";
const COLL: &str = "oauth2PermissionGrants";

fn guid_le(s: &str) -> Vec<u8> {
    uuid::Uuid::parse_str(s)
        .map(|u| u.to_bytes_le().to_vec())
        .unwrap_or_default()
}

pub(super) fn handle(sim: &Sim, ctx: &Ctx, segs: &[Segment], body: &Value) -> R {
    let m = ctx.method.as_str();
    let (addr, rest) = address(ctx, segs, &[])?;
    if let Some(r) = rest.first() {
        return Err(no_segment(ctx, &r.name));
    }
    let mut t = lock(&sim.tenant);
    let Some(addr) = addr else {
        return match m {
            "GET" => {
                let items = visible_list(sim, &t.oauth2_permission_grants);
                drop(t);
                list(sim, ctx, TY, COLL, items)
            }
            "POST" => {
                validate(ctx, TY, body)?;
                read_only(ctx, body, &["id"])?;
                let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
                let (Some(client), Some(resource), Some(ctype)) =
                    (s("clientId"), s("resourceId"), s("consentType"))
                else {
                    return Err(bad(
                        ctx,
                        "The properties 'clientId', 'consentType' and 'resourceId' are required.",
                    ));
                };
                let principal = s("principalId");
                match (ctype.as_str(), &principal) {
                    ("AllPrincipals", None) | ("Principal", Some(_)) => {}
                    _ => {
                        return Err(bad(
                            ctx,
                            "Invalid value specified for property 'principalId' of resource 'OAuth2PermissionGrant'.",
                        ));
                    }
                }
                for (k, v) in [("clientId", &client), ("resourceId", &resource)] {
                    // UNVERIFIED: wording when clientId/resourceId is not a (replicated) SP.
                    if !t
                        .service_principals
                        .iter()
                        .any(|sp| sp.id().eq_ignore_ascii_case(v) && sim.visible(sp.created_ms))
                    {
                        return Err(bad(
                            ctx,
                            &format!(
                                "Invalid value specified for property '{k}' of resource 'OAuth2PermissionGrant'."
                            ),
                        ));
                    }
                }
                let dup = t.oauth2_permission_grants.iter().any(|g| {
                    g.str("clientId")
                        .is_some_and(|x| x.eq_ignore_ascii_case(&client))
                        && g.str("resourceId")
                            .is_some_and(|x| x.eq_ignore_ascii_case(&resource))
                        && g.str("consentType") == Some(ctype.as_str())
                        && g.str("principalId").map(str::to_ascii_lowercase)
                            == principal.as_ref().map(|p| p.to_ascii_lowercase())
                });
                if dup {
                    return Err(conflict(ctx, "Permission entry already exists."));
                }
                let mut bytes = guid_le(&client);
                bytes.extend(guid_le(&resource));
                if let Some(p) = &principal {
                    bytes.extend(guid_le(p));
                }
                let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
                let g = json!({"clientId": client, "consentType": ctype, "id": id, "principalId": principal, "resourceId": resource, "scope": body.get("scope").cloned().unwrap_or(json!(""))});
                store(&mut t.oauth2_permission_grants, &g);
                drop(t);
                created(sim, ctx, TY, COLL, &g)
            }
            _ => Err(method_not_allowed(ctx)),
        };
    };
    let i = find_visible(sim, &t.oauth2_permission_grants, &addr);
    match m {
        "GET" => read_one(sim, ctx, &t.oauth2_permission_grants, i, &addr, (TY, COLL)),
        "PATCH" => {
            validate(ctx, TY, body)?;
            let i = i.ok_or_else(|| not_found(ctx, &addr_text(&addr)))?;
            if let Some(k) = other_key(body, "scope") {
                return Err(bad(
                    ctx,
                    &format!("Property '{k}' is read-only and cannot be set."),
                ));
            }
            merge(&mut t.oauth2_permission_grants[i].data, body);
            Ok(Reply::empty(204))
        }
        "DELETE" => {
            let i = i.ok_or_else(|| not_found(ctx, &addr_text(&addr)))?;
            t.oauth2_permission_grants.remove(i);
            Ok(Reply::empty(204))
        }
        _ => Err(method_not_allowed(ctx)),
    }
}

/// `GET servicePrincipals/{id}/oauth2PermissionGrants`: the grants the service principal
/// `sp_id` holds as client (learn.microsoft.com/graph/api/serviceprincipal-list-oauth2permissiongrants).
pub(super) fn of_client(sim: &Sim, ctx: &Ctx, t: MutexGuard<'_, Tenant>, id: &str) -> R {
    let items: Vec<Value> = t
        .oauth2_permission_grants
        .iter()
        .filter(|g| sim.visible(g.created_ms) && g.str("clientId") == Some(id))
        .map(|g| g.data.clone())
        .collect();
    drop(t);
    list(sim, ctx, TY, COLL, items)
}
