//! What every Graph resource of the emulator shares: Graph's error envelope and its common
//! errors, how an object is addressed (`coll/{id}`, `coll(altKey='v')`), the replication lag on
//! reads, and the collection and single-object answers with `$select`, `$filter`, `$top` and
//! `$skiptoken` paging, validated against the CSDL (`crate::schema`).
//!
//! Facts from Microsoft Learn: "Microsoft Graph error responses and resource types"
//! (learn.microsoft.com/graph/errors), "Use query parameters to customize responses"
//! (learn.microsoft.com/graph/query-parameters), "Paging Microsoft Graph data in your app"
//! (learn.microsoft.com/graph/paging), "Upsert" in application-upsert and serviceprincipal-upsert
//! (learn.microsoft.com/graph/api/application-upsert) for `Prefer: create-if-missing`.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::exchange::{Ctx, Reply};
use crate::odata::{self, Key, Literal, Segment};
use crate::schema;
use crate::state::{Obj, Sim};
use crate::util::{now_ms, rfc3339_secs};

/// Graph's error envelope.
pub fn error_reply(status: u16, code: &str, msg: &str, ctx: &Ctx) -> Reply {
    err_with(status, code, msg, None, ctx)
}

pub(super) fn err_with(
    status: u16,
    code: &str,
    msg: &str,
    details: Option<Value>,
    ctx: &Ctx,
) -> Reply {
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

pub(super) type R = Result<Reply, Reply>;

pub(super) fn bad(ctx: &Ctx, msg: &str) -> Reply {
    error_reply(400, "Request_BadRequest", msg, ctx)
}
pub(super) fn not_found(ctx: &Ctx, id: &str) -> Reply {
    error_reply(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
        ctx,
    )
}
pub(super) fn no_segment(ctx: &Ctx, seg: &str) -> Reply {
    error_reply(
        400,
        "BadRequest",
        &format!("Resource not found for the segment '{seg}'."),
        ctx,
    )
}
pub(super) fn method_not_allowed(ctx: &Ctx) -> Reply {
    // UNVERIFIED: wording of Graph's 405 for directory resources.
    error_reply(
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
        ctx,
    )
}
pub(super) fn conflict(ctx: &Ctx, msg: &str) -> Reply {
    error_reply(409, "Request_MultipleObjectsWithSameKeyValue", msg, ctx)
}

/// How an object is addressed.
pub(super) enum Addr {
    Id(String),
    Alt(String, String),
}

/// Resolve `coll`, `coll/{id}` or `coll(prop='v')` into an address and the rest of the path.
pub(super) fn address<'a>(
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
pub(super) fn other_key<'b>(body: &'b Value, allowed: &str) -> Option<&'b String> {
    body.as_object()
        .and_then(|m| m.keys().find(|k| k.as_str() != allowed))
}

/// [`find`], but only an object reads can see yet (the replication lag).
pub(super) fn find_visible(sim: &Sim, list: &[Obj], a: &Addr) -> Option<usize> {
    find(list, a).filter(|i| sim.visible(list[*i].created_ms))
}

/// `Prefer: create-if-missing`: a `PATCH` by alternate key is an upsert (Graph's upsert).
pub(super) fn create_if_missing(ctx: &Ctx) -> bool {
    ctx.header("prefer")
        .is_some_and(|p| p.to_ascii_lowercase().contains("create-if-missing"))
}

pub(super) fn find(list: &[Obj], a: &Addr) -> Option<usize> {
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

pub(super) fn addr_text(a: &Addr) -> String {
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

pub(super) fn single(sim: &Sim, ctx: &Ctx, ty: &str, coll: &str, data: &Value) -> R {
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

pub(super) fn list(sim: &Sim, ctx: &Ctx, ty: &str, coll: &str, items: Vec<Value>) -> R {
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
    if let Some(reply) = count(ctx, total)? {
        return Ok(reply);
    }
    let page: Vec<Value> = items
        .into_iter()
        .skip(skip)
        .take(top)
        .map(|o| odata::select(&o, select.as_deref(), &[]))
        .collect();
    let mut out = json!({"@odata.context": context(sim, coll, &select, false), "value": page});
    if eventual(ctx)
        && ctx
            .q("$count")
            .is_some_and(|c| c.eq_ignore_ascii_case("true"))
    {
        out["@odata.count"] = json!(total);
    }
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

/// Did the request ask for an advanced query (`ConsistencyLevel: eventual`)?
fn eventual(ctx: &Ctx) -> bool {
    ctx.header("consistencylevel")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"))
}

/// Counting directory objects (learn.microsoft.com/graph/aad-advanced-queries): "Counting
/// directory objects is only supported using the advanced queries parameters. If the
/// ConsistencyLevel=eventual header is not specified, the request returns an error when the
/// $count URL segment is used or silently ignores the $count query parameter (?$count=true)".
/// With the header, `.../$count` answers the number as `text/plain` (`list` adds
/// `@odata.count` for `$count=true`). `Ok(None)`: not a `$count` segment request.
fn count(ctx: &Ctx, total: usize) -> Result<Option<Reply>, Reply> {
    if !(ctx.path.ends_with("/$count") || ctx.path.ends_with("/%24count")) {
        return Ok(None);
    }
    if !eventual(ctx) {
        return Err(error_reply(
            400,
            "Request_BadRequest",
            "$count is not currently supported.",
            ctx,
        ));
    }
    Ok(Some(Reply {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: total.to_string().into_bytes(),
    }))
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

pub(super) fn validate(ctx: &Ctx, ty: &str, body: &Value) -> Result<(), Reply> {
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

pub(super) fn read_only(ctx: &Ctx, body: &Value, props: &[&str]) -> Result<(), Reply> {
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

pub(super) fn merge(target: &mut Value, body: &Value) {
    if let (Value::Object(t), Value::Object(b)) = (target, body) {
        for (k, v) in b {
            if !k.starts_with('@') {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

pub(super) fn visible_list(sim: &Sim, list: &[Obj]) -> Vec<Value> {
    list.iter()
        .filter(|o| sim.visible(o.created_ms))
        .map(|o| o.data.clone())
        .collect()
}

/// Stores a new directory object, created now: reads see it only after the replication lag.
pub(super) fn store(objects: &mut Vec<Obj>, data: &Value) {
    objects.push(Obj {
        created_ms: now_ms(),
        data: data.clone(),
        secrets: Vec::new(),
    });
}

/// `GET` of one object: the visible one found at the address, or Graph's 404 naming it.
/// `(ty, coll)` are the object's type and collection, as [`single`] takes them.
pub(super) fn read_one(
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
pub(super) fn created(sim: &Sim, ctx: &Ctx, ty: &str, coll: &str, data: &Value) -> R {
    let mut r = single(sim, ctx, ty, coll, data)?;
    r.status = 201;
    Ok(r)
}
