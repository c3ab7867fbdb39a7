//! What the Dataverse parts of the emulator share: Dataverse's error envelope and its common
//! errors, the Web API base path, and the collection answer.
//!
//! Facts from Microsoft Learn: "Parse errors from the Web API"
//! (learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors)
//! and "Web API Error codes" (learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes).

use serde_json::{Value, json};

use crate::exchange::{Ctx, Reply};
use crate::state::Sim;

/// Dataverse's error envelope.
pub fn error_reply(status: u16, code: &str, msg: &str) -> Reply {
    Reply::json(status, json!({"error": {"code": code, "message": msg}}))
}
pub(super) fn no_segment(seg: &str) -> Reply {
    error_reply(
        404,
        "0x8006088a",
        &format!("Resource not found for the segment '{seg}'."),
    )
}
pub(super) fn no_property(name: &str, ty: &str) -> Reply {
    error_reply(
        400,
        "0x0",
        &format!("Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{ty}'."),
    )
}
pub(super) fn no_resource(sim: &Sim, ctx: &Ctx) -> Reply {
    error_reply(
        404,
        "",
        &format!(
            "No HTTP resource was found that matches the request URI '{}{}'.",
            sim.urls().dynamics,
            ctx.path
        ),
    )
}
pub(super) fn does_not_exist(entity: &str, id: &str) -> Reply {
    error_reply(
        404,
        "0x80040217",
        &format!("{entity} With Id = {id} Does Not Exist"),
    )
}
pub(super) fn lock_error() -> Reply {
    error_reply(
        400,
        "0x80090412",
        "Cannot start the requested operation because there is an entity customization running at this moment.",
    )
}

pub(super) type R = Result<Reply, Reply>;

pub(super) const BASE: &str = "/api/data/v9.2";

/// A collection answer: `{"@odata.context": ".../$metadata#<context>", "value": [...]}`.
pub(super) fn collection(sim: &Sim, context: &str, items: Vec<Value>) -> Reply {
    Reply::json(
        200,
        json!({"@odata.context": format!("{}{BASE}/$metadata#{context}", sim.urls().dynamics), "value": items}),
    )
}

/// A resource that answers one method only (a function, an action, a metadata read): any
/// other method is Dataverse's "No HTTP resource" 404.
pub(super) fn only(sim: &Sim, ctx: &Ctx, method: &str) -> Result<(), Reply> {
    if ctx.method != method {
        return Err(no_resource(sim, ctx));
    }
    Ok(())
}
