//! The org's data as the emulator keeps it: tables (`Entity`) with their columns (`Attr`), rows
//! stored as the Web API renders them, system users' role associations and the publish history.
//!
//! Facts from Microsoft Learn: "Web API types and operations"
//! (learn.microsoft.com/power-apps/developer/data-platform/webapi/web-api-types-operations) for
//! the Edm types of columns, and "Lookup properties"
//! (learn.microsoft.com/power-apps/developer/data-platform/webapi/web-api-properties) for the
//! `_<name>_value` property of a lookup column.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::util::new_guid;

/// An attribute (column).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attr {
    pub logical: String,
    pub schema: String,
    /// AttributeType: String, Lookup, Owner, Uniqueidentifier, Boolean, Integer, DateTime, Picklist, State, Status, Memo
    pub ty: String,
    pub display: String,
    pub id: String,
    #[serde(default)]
    pub targets: Vec<String>,
    /// single-valued navigation property (lookups)
    #[serde(default)]
    pub nav: Option<String>,
    #[serde(default)]
    pub custom: bool,
    /// The column's `Description` label (one language), as created; empty when none was given.
    #[serde(default)]
    pub description: String,
}

impl Attr {
    pub fn is_lookup(&self) -> bool {
        matches!(self.ty.as_str(), "Lookup" | "Owner" | "Customer")
    }
    /// The Web API property name.
    pub fn prop(&self) -> String {
        if self.is_lookup() {
            format!("_{}_value", self.logical)
        } else {
            self.logical.clone()
        }
    }
    pub fn edm(&self) -> &'static str {
        match self.ty.as_str() {
            "Lookup" | "Owner" | "Customer" | "Uniqueidentifier" => "Edm.Guid",
            "Boolean" => "Edm.Boolean",
            "Integer" | "Picklist" | "State" | "Status" | "BigInt" => "Edm.Int32",
            "DateTime" => "Edm.DateTimeOffset",
            _ => "Edm.String",
        }
    }
}

/// An entity (table) and its metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entity {
    pub logical: String,
    pub schema: String,
    pub set: String,
    pub display: String,
    pub id: String,
    pub primary_id: String,
    pub primary_name: Option<String>,
    pub attrs: Vec<Attr>,
    #[serde(default)]
    pub custom: bool,
}

/// The org's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dv {
    pub org_id: String,
    pub entities: Vec<Entity>,
    /// Rows per entity logical name, stored as the Web API renders them (`_x_value` for lookups).
    pub rows: BTreeMap<String, Vec<Value>>,
    /// (systemuserid, roleid)
    pub user_roles: Vec<(String, String)>,
    pub publish_history: Vec<Value>,
}

/// A column of type `ty` whose schema name is its logical name (a system column).
pub fn attr(logical: &str, ty: &str, display: &str) -> Attr {
    Attr {
        logical: logical.into(),
        schema: logical.into(),
        ty: ty.into(),
        display: display.into(),
        id: new_guid(),
        targets: vec![],
        nav: None,
        custom: false,
        description: String::new(),
    }
}
