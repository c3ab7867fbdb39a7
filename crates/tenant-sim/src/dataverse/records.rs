//! Rows of the tables (`/api/data/v9.2/<entity set>`): list with `$select`, `$filter`, `$top`,
//! `$expand` of a user's roles and `Prefer: odata.maxpagesize` paging; read one; create (with
//! `Prefer: return=representation`); update and upsert by id (`If-Match` / `If-None-Match`);
//! delete; `@odata.bind` lookups checked against their target rows. What is particular to
//! system users (application users, the two-stage delete, role association) is in `users.rs`.
//!
//! Facts from Microsoft Learn (learn.microsoft.com/power-apps/developer/data-platform/...):
//! webapi/query-data-web-api, webapi/create-entity-web-api, webapi/update-delete-entities-using-web-api,
//! webapi/associate-disassociate-entities-using-web-api, webapi/compose-http-requests-handle-errors.

use serde_json::{Map, Value, json};

use super::query::{check_select, filter_rows};
use super::shared::{BASE, R, does_not_exist, error_reply, no_property, no_resource, no_segment};
use super::users::{self, user_roles};
use crate::exchange::{Ctx, Reply};
use crate::odata::{self, Key, Literal, Segment};
use crate::state::Sim;
use crate::state::org::{Dv, Entity};
use crate::util::{lock, new_guid, now_ms, rfc3339_secs};

fn entity_by_set<'a>(dv: &'a Dv, set: &str) -> Option<&'a Entity> {
    dv.entities.iter().find(|e| e.set == set)
}

/// What a row query asks for: its `$select` (checked against the entity) and `$expand`, and the
/// `<set>(<selected>)` its answer's `@odata.context` names.
struct RowShape {
    select: Option<Vec<String>>,
    expand: Vec<odata::Expand>,
    context: String,
}

fn row_shape(ctx: &Ctx, e: &Entity, dv: &Dv) -> Result<RowShape, Reply> {
    let select = ctx
        .q("$select")
        .map(|s| check_select(e, &odata::parse_select(s)))
        .transpose()?;
    let expand = parse_expand(ctx, e, dv)?;
    let selected = select
        .as_ref()
        .map(|s| format!("({})", s.join(",")))
        .unwrap_or_default();
    Ok(RowShape {
        context: format!("{}{selected}", e.set),
        select,
        expand,
    })
}

fn render_row(dv: &Dv, e: &Entity, row: &Value, shape: &RowShape) -> Value {
    let mut out = odata::select(row, shape.select.as_deref(), &[e.primary_id.as_str()]);
    if let Value::Object(m) = &mut out {
        let etag = (crate::util::sha256_hex(&row.to_string())
            .bytes()
            .take(6)
            .fold(0u64, |a, b| a * 31 + u64::from(b)))
            % 10_000_000;
        let mut n = Map::new();
        n.insert("@odata.etag".into(), json!(format!("W/\"{etag}\"")));
        n.extend(std::mem::take(m));
        *m = n;
    }
    for x in &shape.expand {
        if x.nav == "systemuserroles_association" {
            let uid = row["systemuserid"].as_str().unwrap_or("");
            let roles = user_roles(dv, uid);
            let roles: Vec<Value> = roles
                .iter()
                .map(|r| odata::select(r, x.select.as_deref(), &["roleid"]))
                .collect();
            out["systemuserroles_association"] = Value::Array(roles);
        }
    }
    out
}

fn parse_expand(ctx: &Ctx, e: &Entity, dv: &Dv) -> Result<Vec<odata::Expand>, Reply> {
    let Some(s) = ctx.q("$expand") else {
        return Ok(Vec::new());
    };
    let ex = odata::parse_expand(s).map_err(|m| error_reply(400, "0x0", &m))?;
    for x in &ex {
        if !(e.logical == "systemuser" && x.nav == "systemuserroles_association") {
            return Err(no_property(&x.nav, &e.logical));
        }
        if let (Some(sel), Some(role)) =
            (&x.select, dv.entities.iter().find(|r| r.logical == "role"))
        {
            check_select(role, sel)?;
        }
    }
    Ok(ex)
}

fn page_size(ctx: &Ctx) -> Option<usize> {
    let p = ctx.header("prefer")?;
    p.split(',')
        .find_map(|x| x.trim().strip_prefix("odata.maxpagesize="))
        .and_then(|n| n.trim().parse().ok())
        .filter(|n| *n > 0)
}

fn key_guid(seg: &Segment) -> Option<String> {
    match &seg.key {
        Some(Key::Single(Literal::Guid(g))) => Some(g.clone()),
        _ => None,
    }
}

pub(super) fn records(sim: &Sim, ctx: &Ctx, segs: &[Segment]) -> R {
    let m = ctx.method.as_str();
    let urls = sim.urls();
    let mut t = lock(&sim.tenant);
    let Some(e) = entity_by_set(&t.dataverse, &segs[0].name).cloned() else {
        return Err(no_segment(&segs[0].name));
    };
    let id = match &segs[0].key {
        None => None,
        Some(_) => Some(key_guid(&segs[0]).ok_or_else(|| {
            error_reply(
                400,
                "0x0",
                &format!(
                    "Bad Request - Error in query syntax: the key of {} must be a GUID.",
                    e.set
                ),
            )
        })?),
    };
    let rows = t
        .dataverse
        .rows
        .get(&e.logical)
        .cloned()
        .unwrap_or_default();
    let pos = id.as_ref().and_then(|id| {
        rows.iter().position(|r| {
            r[&e.primary_id]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(id))
        })
    });
    if segs.len() > 1 {
        let id = id.ok_or_else(|| no_segment(&segs[1].name))?;
        if segs[1].name != "systemuserroles_association"
            || !matches!(e.logical.as_str(), "systemuser" | "role")
        {
            return Err(no_segment(&segs[1].name));
        }
        let Some(pos) = pos else {
            return Err(does_not_exist(&e.logical, &id));
        };
        if e.logical == "role" {
            return users::role_holders(sim, ctx, &t, &id, segs);
        }
        return users::roles_association(sim, ctx, &mut t, &rows[pos], segs);
    }
    match (m, &id) {
        ("GET", None) => {
            let shape = row_shape(ctx, &e, &t.dataverse)?;
            let mut rows = filter_rows(&e, rows, ctx.q("$filter"))?;
            if let Some(top) = ctx.q("$top").and_then(|x| x.parse::<usize>().ok()) {
                rows.truncate(top);
            }
            let size = page_size(ctx);
            let skip = ctx
                .q("$skiptoken")
                .and_then(|s| s.strip_prefix("<cookie pagenumber=\""))
                .and_then(|s| s.split('"').next())
                .and_then(|n| n.parse::<usize>().ok())
                .map(|p| (p - 1) * size.unwrap_or(5000))
                .unwrap_or(0);
            let per = size.unwrap_or(5000);
            let total = rows.len();
            let page: Vec<Value> = rows
                .iter()
                .skip(skip)
                .take(per)
                .map(|r| render_row(&t.dataverse, &e, r, &shape))
                .collect();
            let mut out = json!({"@odata.context": format!("{}{BASE}/$metadata#{}", urls.dynamics, shape.context), "value": page});
            let mut reply_headers = Vec::new();
            if let Some(n) = size {
                reply_headers.push((
                    "preference-applied".to_string(),
                    format!("odata.maxpagesize={n}"),
                ));
                if skip + per < total {
                    let q = odata::query_before_skiptoken(ctx.raw_query.as_deref());
                    let page_no = skip / per + 2;
                    let cookie = format!(
                        "<cookie pagenumber=\"{page_no}\" pagingcookie=\"\" istracking=\"False\" />"
                    );
                    let enc = percent_encoding::utf8_percent_encode(
                        &cookie,
                        percent_encoding::NON_ALPHANUMERIC,
                    )
                    .to_string();
                    out["@odata.nextLink"] =
                        json!(format!("{}{}?{q}$skiptoken={enc}", urls.dynamics, ctx.path));
                }
            }
            let mut r = Reply::json(200, out);
            for (k, v) in reply_headers {
                r = r.header(&k, v);
            }
            Ok(r)
        }
        ("GET", Some(id)) => {
            let Some(pos) = pos else {
                return Err(does_not_exist(&e.logical, id));
            };
            let shape = row_shape(ctx, &e, &t.dataverse)?;
            let mut out = render_row(&t.dataverse, &e, &rows[pos], &shape);
            out["@odata.context"] = json!(format!(
                "{}{BASE}/$metadata#{}/$entity",
                urls.dynamics, shape.context
            ));
            Ok(Reply::json(200, out))
        }
        ("POST", None) => {
            let body = parse_body(ctx)?;
            // `Prefer: return=representation`: 201 with the new row ($select honoured) instead
            // of 204 + OData-EntityId (reference §7.4, fixture §9.4 "Create with data returned").
            let representation = ctx.header("prefer").is_some_and(|p| {
                p.split(',')
                    .any(|x| x.trim().eq_ignore_ascii_case("return=representation"))
            });
            let shape = if representation {
                Some(row_shape(ctx, &e, &t.dataverse)?)
            } else {
                None
            };
            let new_id = create_row(sim, &mut t, &e, &body, None)?;
            let Some(shape) = shape else {
                return Ok(Reply::empty(204).header(
                    "odata-entityid",
                    format!("{}{BASE}/{}({new_id})", urls.dynamics, e.set),
                ));
            };
            let row = t
                .dataverse
                .rows
                .get(&e.logical)
                .and_then(|rows| {
                    rows.iter().find(|r| {
                        r[&e.primary_id]
                            .as_str()
                            .is_some_and(|x| x.eq_ignore_ascii_case(&new_id))
                    })
                })
                .cloned()
                .unwrap_or(Value::Null);
            let mut out = render_row(&t.dataverse, &e, &row, &shape);
            out["@odata.context"] = json!(format!(
                "{}{BASE}/$metadata#{}/$entity",
                urls.dynamics, e.set
            ));
            Ok(Reply::json(201, out)
                .header("preference-applied", "return=representation".to_string()))
        }
        ("PATCH", Some(id)) => {
            let body = parse_body(ctx)?;
            let if_match = ctx.header("if-match");
            let if_none = ctx.header("if-none-match");
            match pos {
                None if if_match.is_some() => Err(does_not_exist(&e.logical, id)),
                None => {
                    let new_id = create_row(sim, &mut t, &e, &body, Some(id.clone()))?;
                    Ok(Reply::empty(204).header(
                        "odata-entityid",
                        format!("{}{BASE}/{}({new_id})", urls.dynamics, e.set),
                    ))
                }
                Some(_) if if_none == Some("*") => Err(error_reply(
                    412,
                    "",
                    "A record with matching key values already exists.",
                )),
                Some(p) => {
                    let updates = row_values(&t, &e, &body)?;
                    if e.logical == "systemuser" && rows[p]["applicationid"].is_string() {
                        if let Some(k) = updates.keys().find(|k| {
                            ![
                                "isdisabled",
                                "_businessunitid_value",
                                "internalemailaddress",
                                "applicationid",
                            ]
                            .contains(&k.as_str())
                        }) {
                            return Err(error_reply(
                                400,
                                "0x80041d48",
                                &format!(
                                    "The user representing an OAuth application cannot not be updated ('{k}')."
                                ),
                            ));
                        }
                    }
                    if let Some(row) = t
                        .dataverse
                        .rows
                        .get_mut(&e.logical)
                        .and_then(|v| v.get_mut(p))
                    {
                        for (k, v) in updates {
                            row[k] = v;
                        }
                        row["modifiedon"] = json!(rfc3339_secs(now_ms()) + "Z");
                        if e.logical == "systemuser" {
                            if let Some(o) = row.as_object_mut() {
                                o.remove("modifiedon");
                            }
                        }
                    }
                    Ok(Reply::empty(204))
                }
            }
        }
        ("DELETE", Some(id)) => {
            let Some(p) = pos else {
                return Err(does_not_exist(&e.logical, id));
            };
            if e.logical == "systemuser" {
                return users::delete_system_user(&mut t.dataverse, p);
            }
            if let Some(v) = t.dataverse.rows.get_mut(&e.logical) {
                v.remove(p);
            }
            Ok(Reply::empty(204))
        }
        _ => Err(no_resource(sim, ctx)),
    }
}

fn parse_body(ctx: &Ctx) -> Result<Value, Reply> {
    if !ctx
        .header("content-type")
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"))
    {
        return Err(error_reply(
            415,
            "0x80048d19",
            "The request must have Content-Type: application/json.",
        ));
    }
    match serde_json::from_slice::<Value>(&ctx.body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(error_reply(
            400,
            "0x80048d19",
            "Error identified in Payload provided by the user: the request body must be a JSON object.",
        )),
    }
}

/// Convert a write body to row values (`_x_value` for binds), validating names, types and binds.
fn row_values(
    t: &crate::state::Tenant,
    e: &Entity,
    body: &Value,
) -> Result<Map<String, Value>, Reply> {
    let mut out = Map::new();
    let Some(obj) = body.as_object() else {
        return Ok(out);
    };
    for (k, v) in obj {
        if let Some(nav) = k.strip_suffix("@odata.bind") {
            let Some(a) = e.attrs.iter().find(|a| a.nav.as_deref() == Some(nav)) else {
                return Err(error_reply(
                    400,
                    "0x80048d19",
                    &format!(
                        "Error identified in Payload provided by the user for Entity :'{}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ----> InnerException : Microsoft.OData.ODataException: An undeclared property '{nav}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values.",
                        e.set
                    ),
                ));
            };
            if v.is_null() {
                out.insert(a.prop(), Value::Null);
                continue;
            }
            let s = v.as_str().unwrap_or("");
            let tail = s.rsplit('/').next().unwrap_or("");
            let (set, id) = tail
                .split_once('(')
                .map(|(a, b)| (a, b.trim_end_matches(')')))
                .unwrap_or(("", ""));
            let target_set: Vec<String> = a
                .targets
                .iter()
                .filter_map(|x| {
                    t.dataverse
                        .entities
                        .iter()
                        .find(|en| en.logical == *x)
                        .map(|en| en.set.clone())
                })
                .collect();
            if !target_set.iter().any(|x| x == set) || !odata::is_guid(id) {
                return Err(error_reply(
                    400,
                    "0x80048d19",
                    &format!(
                        "Error identified in Payload provided by the user for Entity :'{}': the value '{s}' of '{k}' is not a valid reference to {}.",
                        e.set,
                        a.targets.join("/")
                    ),
                ));
            }
            let target_logical = t
                .dataverse
                .entities
                .iter()
                .find(|en| en.set == set)
                .map(|en| (en.logical.clone(), en.primary_id.clone()));
            if let Some((tl, tp)) = target_logical {
                let exists = t.dataverse.rows.get(&tl).is_some_and(|rows| {
                    rows.iter()
                        .any(|r| r[&tp].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
                });
                if !exists {
                    return Err(does_not_exist(&tl, id));
                }
            }
            out.insert(a.prop(), json!(id.to_ascii_lowercase()));
            continue;
        }
        if k.starts_with('@') {
            continue;
        }
        let Some(a) = e.attrs.iter().find(|a| a.logical == *k && !a.is_lookup()) else {
            return Err(error_reply(
                400,
                "0x80060888",
                &format!(
                    "The property '{k}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use property names that are defined by the type.",
                    e.logical
                ),
            ));
        };
        let ok = v.is_null()
            || match a.edm() {
                "Edm.Guid" => v.as_str().is_some_and(odata::is_guid),
                "Edm.Boolean" => v.is_boolean(),
                "Edm.Int32" => v.is_i64(),
                _ => v.is_string(),
            };
        if !ok {
            return Err(error_reply(
                400,
                "0x80048d19",
                &format!(
                    "Error identified in Payload provided by the user for Entity :'{}': cannot convert the value of '{k}' to {}.",
                    e.set,
                    a.edm()
                ),
            ));
        }
        out.insert(a.prop(), v.clone());
    }
    Ok(out)
}

fn create_row(
    sim: &Sim,
    t: &mut crate::state::Tenant,
    e: &Entity,
    body: &Value,
    id: Option<String>,
) -> Result<String, Reply> {
    let mut vals = row_values(t, e, body)?;
    let id = id.unwrap_or_else(new_guid);
    if e.logical == "systemuser" {
        users::new_system_user(sim, t, &mut vals)?;
    }
    let mut row = Map::new();
    for a in &e.attrs {
        row.insert(a.prop(), Value::Null);
    }
    row.insert(e.primary_id.clone(), json!(id));
    row.insert("createdon".into(), json!(rfc3339_secs(now_ms()) + "Z"));
    row.extend(vals);
    row.retain(|k, _| e.attrs.iter().any(|a| a.prop() == *k));
    t.dataverse
        .rows
        .entry(e.logical.clone())
        .or_default()
        .push(Value::Object(row));
    Ok(id)
}
