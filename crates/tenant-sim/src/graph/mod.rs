//! Microsoft Graph v1.0 subset: organization, domains, applications, servicePrincipals,
//! oauth2PermissionGrants, homeRealmDiscoveryPolicies — with Graph's error bodies, alternate keys,
//! upserts, `$filter`/`$select`/`$top` paging, CSDL body validation and replication lag.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::odata::{self, Key, Literal, Segment};
use crate::permissions;
use crate::schema;
use crate::server::{Ctx, Reply};
use crate::state::{
    Assignment, DYNAMICS_APP_ID, GRAPH_APP_ID, Obj, SecretRec, Sim, Tenant, first_party_sp, lock,
    new_guid, now_ms, parse_rfc3339_ms, random_secret, rfc3339, rfc3339_secs, sha256_hex,
};
use crate::token::{TokenError, check_bearer};

/// Graph's error envelope.
pub fn error_reply(status: u16, code: &str, msg: &str, ctx: &Ctx) -> Reply {
    err_with(status, code, msg, None, ctx)
}

fn err_with(status: u16, code: &str, msg: &str, details: Option<Value>, ctx: &Ctx) -> Reply {
    let mut e = json!({
        "code": code,
        "message": msg,
        "innerError": {
            "date": rfc3339_secs(now_ms()),
            "request-id": ctx.request_id,
            "client-request-id": ctx.client_request_id.clone().unwrap_or_else(|| ctx.request_id.clone())
        }
    });
    if let Some(d) = details {
        e["details"] = d;
    }
    Reply::json(status, json!({ "error": e }))
}

type R = Result<Reply, Reply>;

fn bad(ctx: &Ctx, msg: &str) -> Reply {
    error_reply(400, "Request_BadRequest", msg, ctx)
}
fn not_found(ctx: &Ctx, id: &str) -> Reply {
    error_reply(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
        ctx,
    )
}
fn no_segment(ctx: &Ctx, seg: &str) -> Reply {
    error_reply(
        400,
        "BadRequest",
        &format!("Resource not found for the segment '{seg}'."),
        ctx,
    )
}
fn method_not_allowed(ctx: &Ctx) -> Reply {
    // UNVERIFIED: wording of Graph's 405 for directory resources.
    error_reply(
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
        ctx,
    )
}
fn conflict(ctx: &Ctx, msg: &str) -> Reply {
    error_reply(409, "Request_MultipleObjectsWithSameKeyValue", msg, ctx)
}

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

fn route(sim: &Sim, ctx: &Ctx, segs: &[Segment], body: &Value) -> R {
    let m = ctx.method.as_str();
    let Some(first) = segs.first() else {
        return Err(no_segment(ctx, "v1.0"));
    };
    match first.name.as_str() {
        "organization" if segs.len() == 1 => {
            if m != "GET" {
                return Err(method_not_allowed(ctx));
            }
            let t = lock(&sim.tenant);
            let org = json!({"id": t.tenant_id, "displayName": t.org_display_name, "verifiedDomains": verified_domains(&t), "onPremisesSyncEnabled": t.federated_domain.is_some()});
            let u = sim.urls().main;
            Ok(Reply::json(
                200,
                json!({"@odata.context": format!("{u}/v1.0/$metadata#organization"), "value": [org]}),
            ))
        }
        "domains" if segs.len() == 1 => {
            if m != "GET" {
                return Err(method_not_allowed(ctx));
            }
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
        "directory" if segs.len() == 2 && seg_is(&segs[1], "onPremisesSynchronization") => {
            if m != "GET" {
                return Err(method_not_allowed(ctx));
            }
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
        "directory" if segs.len() >= 2 && seg_is(&segs[1], "deletedItems") => {
            deleted_items(sim, ctx, &segs[2..])
        }
        "applications" => applications(sim, ctx, segs, body),
        "servicePrincipals" => service_principals(sim, ctx, segs, body),
        "oauth2PermissionGrants" => grants(sim, ctx, segs, body),
        "policies" if segs.len() == 2 && seg_is(&segs[1], "defaultAppManagementPolicy") => {
            if m != "GET" {
                return Err(method_not_allowed(ctx));
            }
            Ok(Reply::json(200, default_app_management_policy(sim)))
        }
        "me" if segs.len() == 2 && seg_is(&segs[1], "memberOf") => {
            if m != "GET" {
                return Err(method_not_allowed(ctx));
            }
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
        "policies" if segs.len() >= 2 && seg_is(&segs[1], "homeRealmDiscoveryPolicies") => {
            policies(sim, ctx, &segs[1..], body)
        }
        "policies" if segs.len() >= 2 => Err(no_segment(ctx, &segs[1].name)),
        _ => Err(no_segment(ctx, &first.name)),
    }
}

/// `GET /policies/defaultAppManagementPolicy` (Learn tenantappmanagementpolicy-get): the
/// tenant-wide password lifetime restriction, from `--max-secret-days`.
fn default_app_management_policy(sim: &Sim) -> Value {
    let u = sim.urls().main;
    let passwords = match sim.opts.max_secret_days {
        Some(d) => {
            json!([{"restrictionType": "passwordLifetime", "state": "enabled", "maxLifetime": format!("P{d}D"),
                           "restrictForAppsCreatedAfterDateTime": "2019-01-01T00:00:00Z"}])
        }
        None => json!([]),
    };
    json!({
        "@odata.context": format!("{u}/v1.0/$metadata#policies/defaultAppManagementPolicy/$entity"),
        "id": "00000000-0000-0000-0000-000000000000",
        "displayName": "Default app management tenant policy",
        "description": "Default tenant policy that enforces app management restrictions on applications and service principals. To apply policy to targeted resources, create a new policy under appManagementPolicies collection.",
        "isEnabled": sim.opts.max_secret_days.is_some(),
        "applicationRestrictions": {"passwordCredentials": passwords, "keyCredentials": []},
        "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []}
    })
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

// ---------- shared helpers ----------

/// How an object is addressed.
enum Addr {
    Id(String),
    Alt(String, String),
}

/// Resolve `coll`, `coll/{id}` or `coll(prop='v')` into an address and the rest of the path.
fn address<'a>(
    ctx: &Ctx,
    segs: &'a [Segment],
    alt_keys: &[&str],
) -> Result<(Option<Addr>, &'a [Segment]), Reply> {
    let first = &segs[0];
    match &first.key {
        Some(Key::Named(kv)) if kv.len() == 1 && alt_keys.contains(&kv[0].0.as_str()) => {
            match &kv[0].1 {
                Literal::Str(s) => Ok((Some(Addr::Alt(kv[0].0.clone(), s.clone())), &segs[1..])),
                _ => Err(error_reply(
                    400,
                    "BadRequest",
                    &format!("The key value for '{}' must be a string literal.", kv[0].0),
                    ctx,
                )),
            }
        }
        Some(Key::Single(Literal::Str(s))) => Ok((Some(Addr::Id(s.clone())), &segs[1..])),
        Some(Key::Single(Literal::Guid(s))) => Ok((Some(Addr::Id(s.clone())), &segs[1..])),
        Some(_) => Err(error_reply(
            400,
            "BadRequest",
            "Bad Request - Error in query syntax.",
            ctx,
        )),
        None if segs.len() > 1 => Ok((Some(Addr::Id(segs[1].name.clone())), &segs[2..])),
        None => Ok((None, &segs[1..])),
    }
}

/// The first property of a request body other than the one the operation takes.
fn other_key<'b>(body: &'b Value, allowed: &str) -> Option<&'b String> {
    body.as_object()
        .and_then(|m| m.keys().find(|k| k.as_str() != allowed))
}

/// [`find`], but only an object reads can see yet (the replication lag).
fn find_visible(sim: &Sim, list: &[Obj], a: &Addr) -> Option<usize> {
    find(list, a).filter(|i| sim.visible(list[*i].created_ms))
}

/// `Prefer: create-if-missing`: a `PATCH` by alternate key is an upsert (Graph's upsert).
fn create_if_missing(ctx: &Ctx) -> bool {
    ctx.header("prefer")
        .is_some_and(|p| p.to_ascii_lowercase().contains("create-if-missing"))
}

fn find(list: &[Obj], a: &Addr) -> Option<usize> {
    list.iter().position(|o| match a {
        Addr::Id(id) => o.id().eq_ignore_ascii_case(id),
        Addr::Alt(k, v) => {
            let x = o.str(k).unwrap_or("");
            if k == "uniqueName" {
                x == v
            } else {
                x.eq_ignore_ascii_case(v)
            }
        }
    })
}

fn addr_text(a: &Addr) -> String {
    match a {
        Addr::Id(s) | Addr::Alt(_, s) => s.clone(),
    }
}

fn select_list(ctx: &Ctx, ty: &str) -> Result<Option<Vec<String>>, Reply> {
    let Some(s) = ctx.q("$select") else {
        return Ok(None);
    };
    let list = odata::parse_select(s);
    for p in &list {
        if !schema::has_property(ty, p) {
            return Err(error_reply(
                400,
                "Request_BadRequest",
                &format!("Could not find a property named '{p}' on type 'microsoft.graph.{ty}'."),
                ctx,
            ));
        }
    }
    Ok(Some(list))
}

fn context(sim: &Sim, coll: &str, select: &Option<Vec<String>>, entity: bool) -> String {
    let u = sim.urls().main;
    let sel = select
        .as_ref()
        .map(|s| format!("({})", s.join(",")))
        .unwrap_or_default();
    format!(
        "{u}/v1.0/$metadata#{coll}{sel}{}",
        if entity { "/$entity" } else { "" }
    )
}

fn single(sim: &Sim, ctx: &Ctx, ty: &str, coll: &str, data: &Value) -> R {
    let select = select_list(ctx, ty)?;
    let mut out = odata::select(data, select.as_deref(), &[]);
    if let Value::Object(m) = &mut out {
        let mut n = Map::new();
        n.insert(
            "@odata.context".into(),
            json!(context(sim, coll, &select, true)),
        );
        n.extend(std::mem::take(m));
        *m = n;
    }
    Ok(Reply::json(200, out))
}

/// The (entity type, property) pairs whose Graph docs list the `in` operator for `$filter`
/// (serviceprincipal.md: `appId` "Supports `$filter` (`eq`, `ne`, `not`, `in`, `startsWith`)").
/// Elsewhere the emulator refuses it, rather than accept what Graph may not.
const IN_FILTERABLE: &[(&str, &str)] = &[("servicePrincipal", "appId")];

fn list(sim: &Sim, ctx: &Ctx, ty: &str, coll: &str, items: Vec<Value>) -> R {
    let select = select_list(ctx, ty)?;
    let mut items = items;
    if let Some(f) = ctx.q("$filter") {
        let filter = odata::parse_filter(f, odata::Syntax::GRAPH).map_err(|e| {
            error_reply(
                400,
                "BadRequest",
                &format!("Invalid filter clause: {e}"),
                ctx,
            )
        })?;
        for c in filter.clauses() {
            let Some(p) = schema::property(ty, &c.prop) else {
                return Err(error_reply(
                    400,
                    "Request_BadRequest",
                    &format!(
                        "Could not find a property named '{}' on type 'microsoft.graph.{ty}'.",
                        c.prop
                    ),
                    ctx,
                ));
            };
            let pty = p["type"].as_str().unwrap_or("");
            if c.op == odata::Op::In && !IN_FILTERABLE.contains(&(ty, c.prop.as_str())) {
                return Err(error_reply(
                    400,
                    "Request_UnsupportedQuery",
                    &format!(
                        "Unsupported Query. The 'in' operator is not supported on property '{}'.",
                        c.prop
                    ),
                    ctx,
                ));
            }
            let bad = c.literals().iter().find(|l| !match (l, pty) {
                (Literal::Null, _) => true,
                (Literal::Str(_), "Edm.String") => true,
                (Literal::Guid(_), "Edm.Guid") | (Literal::Str(_), "Edm.Guid") => true,
                (Literal::Bool(_), "Edm.Boolean") => true,
                (Literal::Num(_), t) => t.starts_with("Edm.Int"),
                _ => false,
            });
            if let Some(bad) = bad {
                return Err(error_reply(
                    400,
                    "Request_BadRequest",
                    &format!(
                        "A binary operator with incompatible types was detected. Found operand types '{pty}' and '{}' for operator kind 'Equal'.",
                        bad.edm()
                    ),
                    ctx,
                ));
            }
        }
        items.retain(|o| odata::matches(o, &filter));
    }
    let top = match ctx.q("$top") {
        None => 100,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return Err(error_reply(
                    400,
                    "Request_BadRequest",
                    &format!(
                        "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                    ),
                    ctx,
                ));
            }
        },
    };
    let skip = match ctx.q("$skiptoken") {
        None => 0,
        Some(tok) => decode_skiptoken(tok).ok_or_else(|| error_reply(400, "Request_BadRequest", "The specified page token value has expired and can no longer be included in your request.", ctx))?,
    };
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(skip)
        .take(top)
        .map(|o| odata::select(&o, select.as_deref(), &[]))
        .collect();
    let mut out = json!({"@odata.context": context(sim, coll, &select, false), "value": page});
    if skip + top < total {
        let q = odata::query_before_skiptoken(ctx.raw_query.as_deref());
        let u = sim.urls().main;
        out["@odata.nextLink"] = json!(format!(
            "{u}{}?{q}$skiptoken={}",
            ctx.path,
            encode_skiptoken(skip + top)
        ));
    }
    Ok(Reply::json(200, out))
}

fn encode_skiptoken(n: usize) -> String {
    format!(
        "RFNwdAIAAQAAA{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("skip:{n}"))
    )
}
fn decode_skiptoken(t: &str) -> Option<usize> {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t.strip_prefix("RFNwdAIAAQAAA")?)
        .ok()?;
    String::from_utf8(b)
        .ok()?
        .strip_prefix("skip:")?
        .parse()
        .ok()
}

fn validate(ctx: &Ctx, ty: &str, body: &Value) -> Result<(), Reply> {
    if !body.is_object() {
        return Err(error_reply(
            400,
            "BadRequest",
            "Empty Payload. JSON content expected.",
            ctx,
        ));
    }
    schema::validate(ty, body).map_err(|e| bad(ctx, &e.message(ty)))
}

fn read_only(ctx: &Ctx, body: &Value, props: &[&str]) -> Result<(), Reply> {
    for p in props {
        if body.get(*p).is_some() {
            // UNVERIFIED: wording for writing a read-only property.
            return Err(bad(
                ctx,
                &format!("Property '{p}' is read-only and cannot be set."),
            ));
        }
    }
    Ok(())
}

fn merge(target: &mut Value, body: &Value) {
    if let (Value::Object(t), Value::Object(b)) = (target, body) {
        for (k, v) in b {
            if !k.starts_with('@') {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn visible_list(sim: &Sim, list: &[Obj]) -> Vec<Value> {
    list.iter()
        .filter(|o| sim.visible(o.created_ms))
        .map(|o| o.data.clone())
        .collect()
}

// ---------- applications ----------

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

fn applications(sim: &Sim, ctx: &Ctx, segs: &[Segment], body: &Value) -> R {
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
            // in this tenant goes with it, so servicePrincipals(appId=...) answers 404, and its
            // secrets no longer sign in (the token endpoint knows only live applications).
            let i = vis.ok_or_else(|| not_found(ctx, &addr_text(&addr)))?;
            let mut app = t.applications.remove(i);
            let app_id = app.str("appId").unwrap_or("").to_string();
            let sp_ids: Vec<String> = t
                .service_principals
                .iter()
                .filter(|s| s.str("appId") == Some(app_id.as_str()))
                .map(|s| s.id().to_string())
                .collect();
            remove_sps(&mut t, &sp_ids);
            app.data["deletedDateTime"] = json!(rfc3339(now_ms()));
            t.deleted_items.push(app);
            Ok(Reply::empty(204))
        }
        _ => Err(method_not_allowed(ctx)),
    }
}

/// Stores a new directory object, created now: reads see it only after the replication lag.
fn store(objects: &mut Vec<Obj>, data: &Value) {
    objects.push(Obj {
        created_ms: now_ms(),
        data: data.clone(),
        secrets: Vec::new(),
    });
}

/// `GET` of one object: the visible one found at the address, or Graph's 404 naming it.
/// `(ty, coll)` are the object's type and collection, as [`single`] takes them.
fn read_one(
    sim: &Sim,
    ctx: &Ctx,
    objects: &[Obj],
    found: Option<usize>,
    addr: &Addr,
    (ty, coll): (&str, &str),
) -> R {
    let i = found.ok_or_else(|| not_found(ctx, &addr_text(addr)))?;
    single(sim, ctx, ty, coll, &objects[i].data)
}

/// Graph's answer to a create: 201 with the new object, `$select` applied.
fn created(sim: &Sim, ctx: &Ctx, ty: &str, coll: &str, data: &Value) -> R {
    let mut r = single(sim, ctx, ty, coll, data)?;
    r.status = 201;
    Ok(r)
}

fn remove_sps(t: &mut Tenant, sp_ids: &[String]) {
    t.service_principals
        .retain(|s| !sp_ids.iter().any(|x| x == s.id()));
    t.oauth2_permission_grants.retain(|g| {
        !sp_ids.iter().any(|x| {
            Some(x.as_str()) == g.str("clientId") || Some(x.as_str()) == g.str("resourceId")
        })
    });
    t.hrd_assignments.retain(|a| !sp_ids.contains(&a.sp_id));
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

// ---------- service principals ----------

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

fn service_principals(sim: &Sim, ctx: &Ctx, segs: &[Segment], body: &Value) -> R {
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
            remove_sps(&mut t, &[id]);
            Ok(Reply::empty(204))
        }
        _ => Err(method_not_allowed(ctx)),
    }
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
            let items: Vec<Value> = t
                .oauth2_permission_grants
                .iter()
                .filter(|g| sim.visible(g.created_ms) && g.str("clientId") == Some(id.as_str()))
                .map(|g| g.data.clone())
                .collect();
            drop(t);
            list(
                sim,
                ctx,
                "oAuth2PermissionGrant",
                "oauth2PermissionGrants",
                items,
            )
        }
        ("homeRealmDiscoveryPolicies", 1) => {
            if m != "GET" {
                return Err(method_not_allowed(ctx));
            }
            let i = sp_idx.ok_or_else(|| not_found(ctx, &addr_text(addr)))?;
            let id = t.service_principals[i].id().to_string();
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
        ("homeRealmDiscoveryPolicies", 2) if seg_is(&rest[1], "$ref") => {
            if m != "POST" {
                return Err(method_not_allowed(ctx));
            }
            let i = sp_idx.ok_or_else(|| not_found(ctx, &addr_text(addr)))?;
            let sp_id = t.service_principals[i].id().to_string();
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
        ("homeRealmDiscoveryPolicies", 3) if seg_is(&rest[2], "$ref") => {
            if m != "DELETE" {
                return Err(method_not_allowed(ctx));
            }
            let i = sp_idx.ok_or_else(|| not_found(ctx, &addr_text(addr)))?;
            let sp_id = t.service_principals[i].id().to_string();
            let pid = rest[1].name.clone();
            let before = t.hrd_assignments.len();
            t.hrd_assignments
                .retain(|a| !(a.sp_id == sp_id && a.policy_id.eq_ignore_ascii_case(&pid)));
            if t.hrd_assignments.len() == before {
                return Err(not_found(ctx, &pid));
            }
            Ok(Reply::empty(204))
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

// ---------- directory/deletedItems ----------

/// `directory/deletedItems` for applications: `GET .../microsoft.graph.application` (list),
/// `GET .../{id}` and `POST .../{id}/restore`
/// (learn.microsoft.com/graph/api/directory-deleteditems-list,
/// directory-deleteditems-get, directory-deleteditems-restore). Deleted items older than 30
/// days are not purged: the emulator's tenants live minutes.
fn deleted_items(sim: &Sim, ctx: &Ctx, rest: &[Segment]) -> R {
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

// ---------- oauth2PermissionGrants ----------

fn guid_le(s: &str) -> Vec<u8> {
    uuid::Uuid::parse_str(s)
        .map(|u| u.to_bytes_le().to_vec())
        .unwrap_or_default()
}

fn grants(sim: &Sim, ctx: &Ctx, segs: &[Segment], body: &Value) -> R {
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
                list(
                    sim,
                    ctx,
                    "oAuth2PermissionGrant",
                    "oauth2PermissionGrants",
                    items,
                )
            }
            "POST" => {
                validate(ctx, "oAuth2PermissionGrant", body)?;
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
                created(
                    sim,
                    ctx,
                    "oAuth2PermissionGrant",
                    "oauth2PermissionGrants",
                    &g,
                )
            }
            _ => Err(method_not_allowed(ctx)),
        };
    };
    let i = find_visible(sim, &t.oauth2_permission_grants, &addr);
    match m {
        "GET" => read_one(
            sim,
            ctx,
            &t.oauth2_permission_grants,
            i,
            &addr,
            ("oAuth2PermissionGrant", "oauth2PermissionGrants"),
        ),
        "PATCH" => {
            validate(ctx, "oAuth2PermissionGrant", body)?;
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

// ---------- homeRealmDiscoveryPolicies ----------

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

fn policies(sim: &Sim, ctx: &Ctx, segs: &[Segment], body: &Value) -> R {
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
