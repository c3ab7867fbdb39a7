//! A Dataverse org (Web API v9.2) with the Marketo solution: WhoAmI, solutions and components,
//! entity metadata (incl. creating a Boolean column), business units, roles, system users with
//! role associations, the Marketo config entity, publishing (sync and async) and service
//! protection limits — with Dataverse's error bodies.
//!
//! This module is the front door and the map: [`handle`] finds the caller (`access.rs`), and
//! [`route`] sends each path to the file that emulates that part of the org:
//!
//! | file | part of the org |
//! | --- | --- |
//! | `access.rs` | token, service protection limits, the caller's system user and privileges |
//! | `actions.rs` | `WhoAmI`, `RetrieveVersion`, `PublishXml` / `PublishAllXml` / `PublishAllXmlAsync` |
//! | `metadata.rs` | `EntityDefinitions`, `Attributes`, `ManyToOneRelationships` |
//! | `records.rs` | rows of every table: query, read, create, update, upsert, delete |
//! | `users.rs` | system users and application users, the user–role N:N association |
//! | `shared.rs` | error envelope, base path, collection answers |
//!
//! The org's data (tables, columns, rows) and the org a fresh tenant starts with are part of the
//! tenant's state: `state/org.rs` and `state/seed.rs`.
//!
//! Facts from Microsoft Learn: "Use the Microsoft Dataverse Web API"
//! (learn.microsoft.com/power-apps/developer/data-platform/webapi/overview) and "Compose HTTP
//! requests and handle errors"
//! (learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors).

mod access;
mod actions;
mod metadata;
mod query;
mod records;
mod shared;
mod users;

use std::sync::Arc;

use serde_json::json;

use crate::exchange::{Ctx, Reply};
use crate::odata;
use crate::state::Sim;
use access::Caller;
use shared::{BASE, R, no_segment, only};

pub use shared::error_reply;
pub use users::soft_delete_application_user;

/// Entry point for the org listener.
pub async fn handle(sim: &Arc<Sim>, ctx: &Ctx) -> Reply {
    match handle_inner(sim, ctx).await {
        Ok(r) | Err(r) => r,
    }
}

async fn handle_inner(sim: &Arc<Sim>, ctx: &Ctx) -> R {
    let Some(rest) = ctx.path.strip_prefix(BASE) else {
        let first = ctx
            .path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("");
        return Err(no_segment(first));
    };
    let caller = access::caller(sim, ctx)?;
    route(sim, ctx, &caller, rest).await
}

/// The map: which handler answers which path. Functions and actions first, then metadata, then
/// the rows of a table; writes need System Administrator.
async fn route(sim: &Arc<Sim>, ctx: &Ctx, caller: &Caller, rest: &str) -> R {
    let urls = sim.urls();
    let raw: Vec<&str> = rest
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let Some(first_raw) = raw.first() else {
        return Ok(Reply::json(
            200,
            json!({"@odata.context": format!("{}{BASE}/$metadata", urls.dynamics), "value": []}),
        ));
    };
    let first_dec = odata::decode_path(first_raw);
    let fname = first_dec.strip_suffix("()").unwrap_or(&first_dec);
    let m = ctx.method.as_str();
    match fname {
        "WhoAmI" if raw.len() == 1 => {
            only(sim, ctx, "GET")?;
            actions::who_am_i(sim, caller)
        }
        n if n.starts_with("RetrieveCurrentOrganization(") && raw.len() == 1 => {
            only(sim, ctx, "GET")?;
            actions::retrieve_current_organization(sim, n)
        }
        "RetrieveVersion" if raw.len() == 1 => {
            only(sim, ctx, "GET")?;
            actions::retrieve_version(sim)
        }
        "PublishAllXml" | "PublishXml" | "PublishAllXmlAsync" if raw.len() == 1 => {
            only(sim, ctx, "POST")?;
            if !caller.admin {
                return Err(access::privilege(caller, "prvPublishCustomizations"));
            }
            actions::publish(sim, ctx, fname).await
        }
        _ => {
            if m != "GET" && !caller.admin {
                return Err(access::privilege(caller, "prvWriteUser"));
            }
            let mut segs = Vec::new();
            for r in &raw {
                segs.push(odata::parse_segment(r).map_err(|s| no_segment(&s))?);
            }
            if segs[0].name == "EntityDefinitions" {
                return metadata::metadata(sim, ctx, &segs);
            }
            records::records(sim, ctx, &segs)
        }
    }
}
