//! Applications and their password credentials: create (`POST /applications`), read, list,
//! update and upsert by `uniqueName` (`PATCH /applications(uniqueName='x')` with
//! `Prefer: create-if-missing`), delete (into `directory/deletedItems`, its service principal
//! soft-deleted beside it), `addPassword` and `removePassword`, with the tenant's app-management
//! password lifetime limit.
//!
//! Facts from Microsoft Learn (learn.microsoft.com/graph/api/...): resources/application,
//! application-post-applications, application-get, application-list, application-update,
//! application-upsert, application-delete, application-addpassword, application-removepassword;
//! the lifetime limit from tenantappmanagementpolicy-get.

use serde_json::{Value, json};

use super::service_principals::soft_delete_sps;
use super::shared::{
    Addr, R, addr_text, address, bad, conflict, create_if_missing, created, err_with, error_reply,
    find, find_visible, list, merge, method_not_allowed, no_segment, not_found, other_key,
    read_one, read_only, store, validate, visible_list,
};
use crate::exchange::{Ctx, Reply};
use crate::odata::{self, Segment};
use crate::schema;
use crate::state::{SecretRec, Sim, Tenant};
use crate::util::{lock, new_guid, now_ms, parse_rfc3339_ms, random_secret, rfc3339, sha256_hex};

fn new_application(t: &Tenant, body: &Value) -> Value {
    let mut app = json!({
        "id": new_guid(), "deletedDateTime": null, "isFallbackPublicClient": null, "appId": new_guid(),
        "applicationTemplateId": null, "identifierUris": [], "createdDateTime": rfc3339(now_ms()),
        "displayName": null, "description": null, "isDeviceOnlyAuthSupported": null, "groupMembershipClaims": null,
        "optionalClaims": null, "addIns": [], "publisherDomain": t.initial_domain,
        "signInAudience": "AzureADandPersonalMicrosoftAccount", "tags": [], "tokenEncryptionKeyId": null,
        "notes": null, "uniqueName": null,
        "api": {"requestedAccessTokenVersion": 2, "acceptMappedClaims": null, "knownClientApplications": [], "oauth2PermissionScopes": [], "preAuthorizedApplications": []},
        "appRoles": [], "publicClient": {"redirectUris": []},
        "info": {"termsOfServiceUrl": null, "supportUrl": null, "privacyStatementUrl": null, "marketingUrl": null, "logoUrl": null},
        "keyCredentials": [], "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [], "requiredResourceAccess": [],
        "web": {"redirectUris": [], "homePageUrl": null, "logoutUrl": null, "implicitGrantSettings": {"enableIdTokenIssuance": false, "enableAccessTokenIssuance": false}}
    });
    merge(&mut app, body);
    app
}

fn check_app_body(ctx: &Ctx, body: &Value, creating: bool) -> Result<(), Reply> {
    validate(ctx, "application", body)?;
    read_only(
        ctx,
        body,
        &[
            "id",
            "appId",
            "createdDateTime",
            "publisherDomain",
            "deletedDateTime",
        ],
    )?;
    if body
        .get("passwordCredentials")
        .is_some_and(|p| p.as_array().is_none_or(|a| !a.is_empty()))
    {
        return Err(bad(
            ctx,
            if creating {
                "Adding passwordCredential when creating applications is not supported. Use the addPassword method."
            } else {
                "Using PATCH to set passwordCredential is not supported. Use the addPassword and removePassword methods."
            },
        ));
    }
    if let Some(d) = body.get("displayName") {
        if d.as_str().is_none_or(|s| s.trim().is_empty()) {
            return Err(bad(
                ctx,
                "Invalid value specified for property 'displayName' of resource 'Application'.",
            ));
        }
    } else if creating {
        return Err(bad(
            ctx,
            "Invalid value specified for property 'displayName' of resource 'Application'.",
        ));
    }
    Ok(())
}

pub(super) fn handle(sim: &Sim, ctx: &Ctx, segs: &[Segment], body: &Value) -> R {
    let m = ctx.method.as_str();
    let (addr, rest) = address(ctx, segs, &["appId", "uniqueName"])?;
    let Some(addr) = addr else {
        return match m {
            "GET" => {
                let items = visible_list(sim, &lock(&sim.tenant).applications);
                list(sim, ctx, "application", "applications", items)
            }
            "POST" => {
                check_app_body(ctx, body, true)?;
                let mut t = lock(&sim.tenant);
                if let Some(u) = body.get("uniqueName").and_then(Value::as_str) {
                    if t.applications
                        .iter()
                        .any(|a| a.str("uniqueName") == Some(u))
                    {
                        return Err(conflict(
                            ctx,
                            &format!(
                                "Another object with the same value for property uniqueName already exists. Value: '{u}'."
                            ),
                        ));
                    }
                }
                let app = new_application(&t, body);
                store(&mut t.applications, &app);
                drop(t);
                let r = created(sim, ctx, "application", "applications", &app)?;
                Ok(r.header(
                    "location",
                    format!(
                        "{}/v1.0/directoryObjects/{}/Microsoft.DirectoryServices.Application",
                        sim.urls().main,
                        app["id"].as_str().unwrap_or("")
                    ),
                ))
            }
            _ => Err(method_not_allowed(ctx)),
        };
    };
    let upsert_key = matches!(&addr, Addr::Alt(k, _) if k == "uniqueName");
    if let Some(action) = rest.first() {
        if rest.len() > 1 {
            return Err(no_segment(ctx, &rest[1].name));
        }
        return match action.name.as_str() {
            "addPassword" | "removePassword" if m != "POST" => Err(method_not_allowed(ctx)),
            "addPassword" => add_password(sim, ctx, &addr, body),
            "removePassword" => remove_password(sim, ctx, &addr, body),
            other => Err(no_segment(ctx, other)),
        };
    }
    let mut t = lock(&sim.tenant);
    let idx = find(&t.applications, &addr);
    let vis = idx.filter(|i| sim.visible(t.applications[*i].created_ms));
    match m {
        "GET" => read_one(
            sim,
            ctx,
            &t.applications,
            vis,
            &addr,
            ("application", "applications"),
        ),
        "PATCH" => {
            let create = create_if_missing(ctx);
            // the upsert (uniqueName + Prefer) works on the authoritative copy, so it converges
            let target = if upsert_key && create { idx } else { vis };
            match target {
                Some(i) => {
                    check_app_body(ctx, body, false)?;
                    if let Some(u) = body.get("uniqueName") {
                        if u.as_str() != t.applications[i].str("uniqueName") {
                            return Err(bad(
                                ctx,
                                "Property 'uniqueName' is read-only and cannot be set.",
                            ));
                        }
                    }
                    merge(&mut t.applications[i].data, body);
                    Ok(Reply::empty(204))
                }
                None if upsert_key && create => {
                    check_app_body(ctx, body, true)?;
                    let Addr::Alt(_, u) = &addr else {
                        return Err(not_found(ctx, ""));
                    };
                    if body
                        .get("uniqueName")
                        .is_some_and(|b| b.as_str() != Some(u.as_str()))
                    {
                        return Err(bad(
                            ctx,
                            "Property 'uniqueName' is read-only and cannot be set.",
                        ));
                    }
                    let mut b = body.clone();
                    b["uniqueName"] = json!(u);
                    let app = new_application(&t, &b);
                    store(&mut t.applications, &app);
                    drop(t);
                    created(sim, ctx, "application", "applications", &app)
                }
                None => Err(not_found(ctx, &addr_text(&addr))),
            }
        }
        "DELETE" => {
            // learn.microsoft.com/graph/api/application-delete: "When deleted, apps are moved to
            // a temporary container and can be restored within 30 days." Its service principal
            // in this tenant is deleted with it (soft-deleted too, listed under
            // deletedItems/microsoft.graph.servicePrincipal, and restorable only on its own), so
            // servicePrincipals(appId=...) answers 404, and its secrets no longer sign in (the
            // token endpoint knows only live applications).
            let i = vis.ok_or_else(|| not_found(ctx, &addr_text(&addr)))?;
            let mut app = t.applications.remove(i);
            let app_id = app.str("appId").unwrap_or("").to_string();
            let sp_ids: Vec<String> = t
                .service_principals
                .iter()
                .filter(|s| s.str("appId") == Some(app_id.as_str()))
                .map(|s| s.id().to_string())
                .collect();
            soft_delete_sps(&mut t, &sp_ids);
            app.data["deletedDateTime"] = json!(rfc3339(now_ms()));
            t.deleted_items.push(app);
            Ok(Reply::empty(204))
        }
        _ => Err(method_not_allowed(ctx)),
    }
}

const POLICY_ID: &str = "8b1c4f4e-3a7d-4c1a-9f31-5e0d2f6b7a11";

fn add_password(sim: &Sim, ctx: &Ctx, addr: &Addr, body: &Value) -> R {
    let cred = match body {
        Value::Null => json!({}),
        Value::Object(m) => {
            if let Some(k) = m.keys().find(|k| *k != "passwordCredential") {
                return Err(bad(
                    ctx,
                    &format!(
                        "Property '{k}' does not exist as a declared property or extension property."
                    ),
                ));
            }
            m.get("passwordCredential").cloned().unwrap_or(json!({}))
        }
        _ => {
            return Err(error_reply(
                400,
                "BadRequest",
                "Empty Payload. JSON content expected.",
                ctx,
            ));
        }
    };
    if !cred.is_null() {
        schema::validate("passwordCredential", &cred)
            .map_err(|e| bad(ctx, &e.message("passwordCredential")))?;
    }
    let now = now_ms();
    let start = cred
        .get("startDateTime")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339_ms)
        .unwrap_or(now);
    let end = cred
        .get("endDateTime")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339_ms)
        .unwrap_or(start + 730 * 86_400_000);
    if end <= start {
        return Err(bad(ctx, "Key credential end date is invalid."));
    }
    if let Some(days) = sim.opts.max_secret_days {
        if end - start > u64::from(days) * 86_400_000 {
            let msg = format!(
                "Credential lifetime exceeds the max value allowed as per assigned policy '{POLICY_ID}'."
            );
            return Err(err_with(
                400,
                "CredentialInvalidLifetimeAsPerAppPolicy",
                &msg,
                Some(json!([{"code": "InvalidKeyEndDate", "message": msg, "target": "EndDate"}])),
                ctx,
            ));
        }
    }
    let mut t = lock(&sim.tenant);
    let i =
        find_visible(sim, &t.applications, addr).ok_or_else(|| not_found(ctx, &addr_text(addr)))?;
    let secret = random_secret(40);
    let key_id = new_guid();
    let meta = json!({
        "customKeyIdentifier": null,
        "displayName": cred.get("displayName").cloned().unwrap_or(Value::Null),
        "endDateTime": rfc3339(end),
        "hint": &secret[..3],
        "keyId": key_id,
        "secretText": null,
        "startDateTime": rfc3339(start)
    });
    let app = &mut t.applications[i];
    if let Some(a) = app
        .data
        .get_mut("passwordCredentials")
        .and_then(Value::as_array_mut)
    {
        a.push(meta.clone());
    }
    app.secrets.push(SecretRec {
        key_id,
        sha256: sha256_hex(&secret),
        end_ms: end,
    });
    let mut out = meta;
    out["secretText"] = json!(secret);
    let u = sim.urls().main;
    out.as_object_mut().map(|m| {
        m.insert(
            "@odata.context".into(),
            json!(format!(
                "{u}/v1.0/$metadata#microsoft.graph.passwordCredential"
            )),
        )
    });
    Ok(Reply::json(200, out))
}

fn remove_password(sim: &Sim, ctx: &Ctx, addr: &Addr, body: &Value) -> R {
    let Some(key) = body
        .get("keyId")
        .and_then(Value::as_str)
        .filter(|k| odata::is_guid(k))
    else {
        return Err(bad(
            ctx,
            "Invalid value specified for property 'keyId' of resource 'removePassword'.",
        ));
    };
    if let Some(k) = other_key(body, "keyId") {
        return Err(bad(
            ctx,
            &format!("Property '{k}' does not exist as a declared property or extension property."),
        ));
    }
    let mut t = lock(&sim.tenant);
    let i =
        find_visible(sim, &t.applications, addr).ok_or_else(|| not_found(ctx, &addr_text(addr)))?;
    let app = &mut t.applications[i];
    let before = app.secrets.len();
    app.secrets.retain(|s| !s.key_id.eq_ignore_ascii_case(key));
    if app.secrets.len() == before {
        // UNVERIFIED: status/code for an unknown keyId.
        return Err(not_found(ctx, key));
    }
    if let Some(a) = app
        .data
        .get_mut("passwordCredentials")
        .and_then(Value::as_array_mut)
    {
        a.retain(|c| {
            !c["keyId"]
                .as_str()
                .is_some_and(|k| k.eq_ignore_ascii_case(key))
        });
    }
    Ok(Reply::empty(204))
}
