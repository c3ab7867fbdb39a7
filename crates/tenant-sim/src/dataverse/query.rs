//! The row-query checks the tables and the system users share: `$select` and `$filter` checked
//! against an entity's columns, with Dataverse's own error texts (Learn:
//! power-apps/developer/data-platform/webapi/query-data-web-api).

use serde_json::Value;

use super::shared::{error_reply, no_property};
use crate::exchange::Reply;
use crate::odata::{self, Literal};
use crate::state::org::Entity;

/// Map a property name used in $select/$filter to the row key; `None` if unknown.
fn prop_key(e: &Entity, name: &str) -> Option<(String, &'static str)> {
    for a in &e.attrs {
        if a.prop() == name {
            return Some((a.prop(), a.edm()));
        }
        if a.is_lookup() && a.logical == name {
            return Some((a.prop(), a.edm()));
        }
    }
    None
}

pub(super) fn check_select(e: &Entity, list: &[String]) -> Result<Vec<String>, Reply> {
    list.iter()
        .map(|p| match e.attrs.iter().find(|a| a.prop() == *p) {
            Some(a) => Ok(a.prop()),
            None => Err(no_property(p, &e.logical)),
        })
        .collect()
}

pub(super) fn filter_rows(
    e: &Entity,
    rows: Vec<Value>,
    f: Option<&str>,
) -> Result<Vec<Value>, Reply> {
    let Some(f) = f else { return Ok(rows) };
    let mut filter = odata::parse_filter(f, odata::Syntax::DATAVERSE)
        .map_err(|m| error_reply(400, "0x0", &format!("Syntax error in $filter: {m}")))?;
    for c in filter.clauses_mut() {
        let Some((key, edm)) = prop_key(e, &c.prop) else {
            return Err(no_property(&c.prop, &e.logical));
        };
        let ok = matches!(
            (&c.value, edm),
            (Literal::Null, _)
                | (Literal::Guid(_), "Edm.Guid")
                | (Literal::Str(_), "Edm.String" | "Edm.DateTimeOffset")
                | (Literal::DateTime(_), "Edm.DateTimeOffset")
                | (Literal::Bool(_), "Edm.Boolean")
                | (Literal::Num(_), "Edm.Int32")
        );
        if !ok {
            return Err(error_reply(
                400,
                "0x0",
                &format!(
                    "A binary operator with incompatible types was detected. Found operand types '{edm}' and '{}' for operator kind 'Equal'.",
                    c.value.edm()
                ),
            ));
        }
        c.prop = key;
    }
    Ok(rows
        .into_iter()
        .filter(|r| odata::matches(r, &filter))
        .collect())
}
