//! Table and column metadata: `EntityDefinitions` (list, one table by MetadataId or
//! `LogicalName`), a table's `Attributes` (list, one, create a Boolean or String column, delete a
//! custom column; a type cast such as `Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`
//! with `$expand=OptionSet`) and `ManyToOneRelationships`, with `$select` and `$filter` on metadata. Column
//! writes wait for a running publish, as Dataverse's customization lock does.
//!
//! Facts from Microsoft Learn (learn.microsoft.com/power-apps/developer/data-platform/...):
//! webapi/query-metadata-web-api, webapi/create-update-entity-definitions-using-web-api,
//! webapi/create-update-column-definitions-using-web-api, entity-attribute-metadata-messages,
//! and learn.microsoft.com/power-apps/maker/data-platform/delete-fields.

use serde_json::{Value, json};

use super::shared::{
    BASE, R, collection, error_reply, lock_error, no_property, no_resource, no_segment, only,
};
use crate::exchange::{Ctx, Reply};
use crate::odata::{self, Key, Literal, Segment};
use crate::state::Sim;
use crate::state::org::{Attr, Dv, Entity, attr};
use crate::util::{lock, new_guid, now_ms};

fn label(s: &str) -> Value {
    let l = json!({"Label": s, "LanguageCode": 1033, "IsManaged": true, "MetadataId": new_guid(), "HasChanged": null});
    json!({"LocalizedLabels": [l.clone()], "UserLocalizedLabel": l})
}

fn entity_json(e: &Entity) -> Value {
    json!({
        "MetadataId": e.id, "LogicalName": e.logical, "SchemaName": e.schema, "EntitySetName": e.set,
        "LogicalCollectionName": e.set, "DisplayName": label(&e.display), "DisplayCollectionName": label(&format!("{}s", e.display)),
        "Description": label(""), "PrimaryIdAttribute": e.primary_id, "PrimaryNameAttribute": e.primary_name,
        "IsCustomEntity": e.custom, "IsManaged": true, "ObjectTypeCode": 10000, "OwnershipType": "UserOwned", "IsActivity": false,
        // EntityMetadata.IsPrivate ("Whether the entity is private": Learn EntityMetadata
        // EntityType reference); the Dataverse client lists tables with `IsPrivate eq false`.
        "IsPrivate": false, "IsIntersect": false, "IsLogicalEntity": false, "TableType": "Standard"
    })
}

/// The options of the seeded choice (picklist) columns, from Learn's table references
/// (reference/entities/systemuser: AccessMode, DeletedState); other choice columns have none.
fn options(e: &Entity, a: &Attr) -> Vec<(i64, &'static str)> {
    match (e.logical.as_str(), a.logical.as_str()) {
        ("systemuser", "accessmode") => vec![
            (0, "Read-Write"),
            (1, "Administrative"),
            (2, "Read"),
            (3, "Support User"),
            (4, "Non-interactive"),
            (5, "Delegated Admin"),
        ],
        ("systemuser", "deletedstate") => vec![(0, "Not deleted"), (1, "Soft deleted")],
        _ => Vec::new(),
    }
}

/// The metadata type of a column's `AttributeType`, as its `@odata.type` and type casts name it.
fn metadata_type(a: &Attr) -> &'static str {
    match a.ty.as_str() {
        "Lookup" | "Owner" | "Customer" => "LookupAttributeMetadata",
        "Uniqueidentifier" => "UniqueIdentifierAttributeMetadata",
        "Boolean" => "BooleanAttributeMetadata",
        "Picklist" => "PicklistAttributeMetadata",
        "State" => "StateAttributeMetadata",
        "Status" => "StatusAttributeMetadata",
        "DateTime" => "DateTimeAttributeMetadata",
        "Integer" => "IntegerAttributeMetadata",
        "Memo" => "MemoAttributeMetadata",
        _ => "StringAttributeMetadata",
    }
}

/// A column as a type-cast read shows it: with `$expand=OptionSet` (or `GlobalOptionSet`), a
/// choice column's options (Learn "Query table definitions using the Web API", "Retrieving
/// attributes": `Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)`).
fn attr_with_options(ctx: &Ctx, e: &Entity, a: &Attr) -> Value {
    let mut v = attr_json(e, a);
    let expand = ctx.q("$expand").unwrap_or_default();
    if a.ty == "Picklist" && expand.starts_with("OptionSet") {
        let opts: Vec<Value> = options(e, a)
            .into_iter()
            .map(|(n, l)| json!({"Value": n, "Label": label(l), "Color": null, "IsManaged": true}))
            .collect();
        let h = crate::util::sha256_hex(&format!("optionset:{}:{}", e.logical, a.logical));
        v["OptionSet"] = json!({
            "MetadataId": format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]),
            "Name": format!("{}_{}", e.logical, a.logical), "OptionSetType": "Picklist", "IsGlobal": false,
            "Options": opts
        });
    }
    v
}

fn attr_json(e: &Entity, a: &Attr) -> Value {
    let otype = metadata_type(a);
    let mut v = json!({
        "@odata.type": format!("#Microsoft.Dynamics.CRM.{otype}"),
        "MetadataId": a.id, "LogicalName": a.logical, "SchemaName": a.schema, "AttributeType": a.ty,
        "AttributeTypeName": {"Value": format!("{}Type", a.ty)}, "DisplayName": label(&a.display),
        // A column created without a description has a Label with no localized text
        // (Learn: "Label" complex type, LocalizedLabels may be empty).
        "Description": if a.description.is_empty() {
            json!({"LocalizedLabels": [], "UserLocalizedLabel": null})
        } else {
            label(&a.description)
        },
        "EntityLogicalName": e.logical, "IsCustomAttribute": a.custom,
        "RequiredLevel": {"Value": "None", "CanBeChanged": true, "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"}
    });
    if a.is_lookup() {
        v["Targets"] = json!(a.targets);
    }
    v
}

fn rel_json(e: &Entity, a: &Attr, target: &str) -> Value {
    let schema = if a.custom {
        format!(
            "{}_{}_{}",
            e.logical.split('_').next().unwrap_or("new"),
            target,
            a.logical
        )
    } else {
        format!("lk_{}_{}", e.logical, a.logical)
    };
    let (pid, _) = match target {
        "businessunit" => ("businessunitid", ()),
        "role" => ("roleid", ()),
        "solution" => ("solutionid", ()),
        "publisher" => ("publisherid", ()),
        "owner" => ("ownerid", ()),
        _ => ("systemuserid", ()),
    };
    let h = crate::util::sha256_hex(&format!("{}:{}", e.logical, a.logical));
    let rel_id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    json!({
        "MetadataId": rel_id,
        "SchemaName": schema, "RelationshipType": "OneToManyRelationship", "IsCustomRelationship": a.custom,
        "ReferencedEntity": target, "ReferencedAttribute": pid, "ReferencingEntity": e.logical, "ReferencingAttribute": a.logical,
        "ReferencedEntityNavigationPropertyName": format!("{}_{}", schema, e.logical),
        "ReferencingEntityNavigationPropertyName": a.nav.clone().unwrap_or_else(|| a.logical.clone())
    })
}

fn many_to_one(e: &Entity) -> Vec<Value> {
    e.attrs
        .iter()
        .filter(|a| a.is_lookup())
        .map(|a| {
            // ownerid points at the 'owner' pseudo-entity, not systemuser
            let target = if a.ty == "Owner" {
                "owner".to_string()
            } else {
                a.targets.first().cloned().unwrap_or_default()
            };
            rel_json(e, a, &target)
        })
        .collect()
}

fn meta_list(sim: &Sim, ctx: &Ctx, ty: &str, ctx_path: &str, items: Vec<Value>) -> R {
    let mut items = items;
    if let Some(f) = ctx.q("$filter") {
        let filter = odata::parse_filter(f, odata::Syntax::DATAVERSE)
            .map_err(|e| error_reply(400, "0x0", &e))?;
        for c in filter.clauses() {
            if items.first().is_some_and(|o| o.get(&c.prop).is_none()) {
                return Err(no_property(&c.prop, ty));
            }
        }
        items.retain(|o| odata::matches(o, &filter));
    }
    let sel = meta_select(ctx, ty, items.first())?;
    // an expanded navigation property (`$expand=OptionSet`) stays beside the `$select`ed ones
    let items: Vec<Value> = items
        .iter()
        .map(|o| odata::select(o, sel.as_deref(), &["MetadataId", "OptionSet"]))
        .collect();
    Ok(collection(sim, ctx_path, items))
}

fn meta_select(ctx: &Ctx, ty: &str, sample: Option<&Value>) -> Result<Option<Vec<String>>, Reply> {
    let Some(s) = ctx.q("$select") else {
        return Ok(None);
    };
    let list = odata::parse_select(s);
    if let Some(sample) = sample {
        for p in &list {
            if sample.get(p).is_none() {
                return Err(no_property(p, ty));
            }
        }
    }
    Ok(Some(list))
}

fn meta_single(sim: &Sim, ctx: &Ctx, ty: &str, path: &str, v: Value) -> R {
    let sel = meta_select(ctx, ty, Some(&v))?;
    let mut out = odata::select(&v, sel.as_deref(), &["MetadataId"]);
    out["@odata.context"] = json!(format!("{}{BASE}/$metadata#{path}", sim.urls().dynamics));
    Ok(Reply::json(200, out))
}

fn find_entity<'a>(t: &'a Dv, seg: &Segment) -> Option<&'a Entity> {
    match &seg.key {
        Some(Key::Single(Literal::Guid(g))) => {
            t.entities.iter().find(|e| e.id.eq_ignore_ascii_case(g))
        }
        Some(Key::Named(kv)) if kv.len() == 1 && kv[0].0 == "LogicalName" => {
            let n = kv[0].1.as_text()?;
            t.entities.iter().find(|e| e.logical == n)
        }
        _ => None,
    }
}

pub(super) fn metadata(sim: &Sim, ctx: &Ctx, segs: &[Segment]) -> R {
    let m = ctx.method.as_str();
    let first = &segs[0];
    if first.key.is_none() {
        if segs.len() > 1 {
            return Err(no_segment(&segs[1].name));
        }
        only(sim, ctx, "GET")?;
        let items: Vec<Value> = lock(&sim.tenant)
            .dataverse
            .entities
            .iter()
            .map(entity_json)
            .collect();
        return meta_list(sim, ctx, "EntityMetadata", "EntityDefinitions", items);
    }
    let t = lock(&sim.tenant);
    let Some(e) = find_entity(&t.dataverse, first).cloned() else {
        let name = match &first.key {
            Some(Key::Named(kv)) => kv[0].1.as_text().unwrap_or("").to_string(),
            Some(Key::Single(l)) => format!("{l:?}"),
            None => String::new(),
        };
        return Err(error_reply(
            404,
            "0x80040217",
            &format!("Could not find an entity with specified entity name: {name}"),
        ));
    };
    drop(t);
    match segs.get(1).map(|s| s.name.as_str()) {
        None => {
            only(sim, ctx, "GET")?;
            meta_single(
                sim,
                ctx,
                "EntityMetadata",
                "EntityDefinitions/$entity",
                entity_json(&e),
            )
        }
        Some("ManyToOneRelationships") if segs.len() == 2 && segs[1].key.is_none() => {
            only(sim, ctx, "GET")?;
            meta_list(
                sim,
                ctx,
                "OneToManyRelationshipMetadata",
                &format!("EntityDefinitions('{}')/ManyToOneRelationships", e.id),
                many_to_one(&e),
            )
        }
        Some("Attributes") if segs.len() == 2 && segs[1].key.is_some() && m == "DELETE" => {
            delete_attribute(sim, &e, &segs[1])
        }
        Some("Attributes") if segs.len() == 2 && segs[1].key.is_some() => {
            only(sim, ctx, "GET")?;
            let a = attr_position(&e.attrs, &segs[1]).map(|i| &e.attrs[i]);
            let Some(a) = a else {
                let n = match &segs[1].key {
                    Some(Key::Named(kv)) => kv[0].1.as_text().unwrap_or("").to_string(),
                    _ => String::new(),
                };
                return Err(error_reply(
                    404,
                    "0x80040217",
                    &format!(
                        "Could not find attribute with name {n} on entity {}.",
                        e.logical
                    ),
                ));
            };
            meta_single(
                sim,
                ctx,
                "AttributeMetadata",
                &format!("EntityDefinitions('{}')/Attributes/$entity", e.id),
                attr_json(&e, a),
            )
        }
        // A type cast on the columns (`Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`):
        // only the columns of that metadata type, which may then expand their option sets.
        Some("Attributes") if segs.len() == 3 && segs[1].key.is_none() => {
            only(sim, ctx, "GET")?;
            let cast = &segs[2];
            let ty = cast
                .name
                .strip_prefix("Microsoft.Dynamics.CRM.")
                .filter(|t| t.ends_with("AttributeMetadata") && cast.key.is_none())
                .ok_or_else(|| no_segment(&cast.name))?;
            let items: Vec<Value> = e
                .attrs
                .iter()
                .filter(|a| ty == "AttributeMetadata" || metadata_type(a) == ty)
                .map(|a| attr_with_options(ctx, &e, a))
                .collect();
            meta_list(
                sim,
                ctx,
                ty,
                &format!(
                    "EntityDefinitions('{}')/Attributes/Microsoft.Dynamics.CRM.{ty}",
                    e.id
                ),
                items,
            )
        }
        Some("Attributes") if segs.len() == 2 => match m {
            "GET" => meta_list(
                sim,
                ctx,
                "AttributeMetadata",
                &format!("EntityDefinitions('{}')/Attributes", e.id),
                e.attrs.iter().map(|a| attr_json(&e, a)).collect(),
            ),
            "POST" => create_attribute(sim, ctx, &e),
            _ => Err(no_resource(sim, ctx)),
        },
        Some(other) => Err(no_segment(other)),
    }
}

/// The column a key names: `Attributes(<MetadataId>)` or `Attributes(LogicalName='x')`.
fn attr_position(attrs: &[Attr], key: &Segment) -> Option<usize> {
    match &key.key {
        Some(Key::Single(Literal::Guid(g))) => {
            attrs.iter().position(|a| a.id.eq_ignore_ascii_case(g))
        }
        Some(Key::Named(kv)) if kv.len() == 1 && kv[0].0 == "LogicalName" => attrs
            .iter()
            .position(|a| Some(a.logical.as_str()) == kv[0].1.as_text()),
        _ => None,
    }
}

fn create_attribute(sim: &Sim, ctx: &Ctx, e: &Entity) -> R {
    let body: Value = serde_json::from_slice(&ctx.body)
        .map_err(|_| error_reply(400, "0x0", "The request body is not valid JSON."))?;
    let otype = body
        .get("@odata.type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('#')
        .to_string();
    let ty = match otype.as_str() {
        "Microsoft.Dynamics.CRM.BooleanAttributeMetadata" => "Boolean",
        "Microsoft.Dynamics.CRM.StringAttributeMetadata" => "String",
        "" => {
            return Err(error_reply(
                400,
                "0x0",
                "An attribute type must be specified with @odata.type.",
            ));
        }
        other => {
            return Err(error_reply(
                400,
                "0x0",
                &format!("Attribute type '{other}' is not supported by this emulator."),
            ));
        }
    };
    let Some(schema) = body
        .get("SchemaName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Err(error_reply(400, "0x80040203", "SchemaName is required."));
    };
    let prefix = schema.split_once('_').map(|(p, _)| p.to_ascii_lowercase());
    let display = body
        .pointer("/DisplayName/LocalizedLabels/0/Label")
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(display) = display else {
        return Err(error_reply(
            400,
            "0x80040203",
            "DisplayName must have at least one localized label.",
        ));
    };
    if ty == "Boolean"
        && (body.pointer("/OptionSet/TrueOption").is_none()
            || body.pointer("/OptionSet/FalseOption").is_none())
    {
        return Err(error_reply(
            400,
            "0x80040203",
            "A BooleanAttributeMetadata requires an OptionSet with TrueOption and FalseOption.",
        ));
    }
    if lock(&sim.publish_until).is_some_and(|u| u > now_ms()) {
        return Err(lock_error());
    }
    let mut t = lock(&sim.tenant);
    let publishers = t
        .dataverse
        .rows
        .get("publisher")
        .cloned()
        .unwrap_or_default();
    let prefixes: Vec<String> = publishers
        .iter()
        .filter_map(|p| p["customizationprefix"].as_str().map(str::to_string))
        .collect();
    let Some(prefix) = prefix.filter(|p| prefixes.contains(p)) else {
        // UNVERIFIED: wording for a schema name without a publisher prefix.
        return Err(error_reply(
            400,
            "0x80040203",
            &format!(
                "Invalid schema name '{schema}': a custom attribute's SchemaName must start with a publisher customization prefix followed by '_' (one of: {}).",
                prefixes.join(", ")
            ),
        ));
    };
    if let Some(sol) = ctx.header("mscrm.solutionuniquename") {
        let sols = t
            .dataverse
            .rows
            .get("solution")
            .cloned()
            .unwrap_or_default();
        let Some(s) = sols.iter().find(|s| {
            s["uniquename"]
                .as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(sol))
        }) else {
            return Err(error_reply(
                404,
                "0x8004a101",
                &format!("The solution '{sol}' was not found."),
            ));
        };
        let pp = publishers
            .iter()
            .find(|p| p["publisherid"] == s["_publisherid_value"])
            .and_then(|p| p["customizationprefix"].as_str())
            .unwrap_or("");
        if pp != prefix {
            return Err(error_reply(
                400,
                "0x80040203",
                &format!(
                    "The customization prefix '{prefix}' does not match the prefix '{pp}' of the publisher of solution '{sol}'."
                ),
            ));
        }
    }
    let logical = schema.to_ascii_lowercase();
    let ent = table_mut(&mut t.dataverse, &e.logical)?;
    if ent.attrs.iter().any(|a| a.logical == logical) {
        // UNVERIFIED: HTTP status for a duplicate schema name (code from the error table).
        return Err(error_reply(
            400,
            "0x80047013",
            &format!(
                "An attribute with the specified name {logical} already exists. Please specify a unique name."
            ),
        ));
    }
    let mut a = attr(&logical, ty, &display);
    a.schema = schema.to_string();
    a.custom = true;
    // Stored and returned as given (create-update-column-definitions-using-web-api: the
    // `Description` label of the definition), so a mark in it can be read back.
    a.description = body
        .pointer("/Description/LocalizedLabels/0/Label")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let id = a.id.clone();
    ent.attrs.push(a);
    Ok(Reply::empty(204).header(
        "odata-entityid",
        format!(
            "{}{BASE}/EntityDefinitions(LogicalName='{}')/Attributes({id})",
            sim.urls().dynamics,
            e.logical
        ),
    ))
}

/// The table `logical` as the org holds it, to change its columns (`metadata` works on a copy).
fn table_mut<'a>(dv: &'a mut Dv, logical: &str) -> Result<&'a mut Entity, Reply> {
    dv.entities
        .iter_mut()
        .find(|x| x.logical == logical)
        .ok_or_else(|| no_segment(logical))
}

/// `DELETE EntityDefinitions(...)/Attributes(<MetadataId> or LogicalName='x')`: "DeleteAttribute:
/// DELETE to the URL of the column"
/// (learn.microsoft.com/power-apps/developer/data-platform/entity-attribute-metadata-messages).
/// The column and every value in it are gone (rows lose the property). Standard (system) columns
/// cannot be deleted, only custom ones (learn.microsoft.com/power-apps/maker/data-platform/
/// delete-fields); a lookup goes with its relationship, and the primary name column with its
/// table, so both are refused here. Like a create, it waits for a running publish (the customization lock).
fn delete_attribute(sim: &Sim, e: &Entity, key: &Segment) -> R {
    if lock(&sim.publish_until).is_some_and(|u| u > now_ms()) {
        return Err(lock_error());
    }
    let mut t = lock(&sim.tenant);
    let ent = table_mut(&mut t.dataverse, &e.logical)?;
    let pos = attr_position(&ent.attrs, key);
    let Some(pos) = pos else {
        return Err(error_reply(
            404,
            "0x80040217",
            &format!("Could not find the attribute on entity {}.", e.logical),
        ));
    };
    let a = &ent.attrs[pos];
    // UNVERIFIED: the exact codes and wording of these three refusals.
    if !a.custom {
        return Err(error_reply(
            400,
            "0x80047006",
            &format!(
                "The attribute {} is not a custom attribute and cannot be deleted.",
                a.logical
            ),
        ));
    }
    if a.is_lookup() {
        return Err(error_reply(
            400,
            "0x80047006",
            &format!(
                "The lookup attribute {} cannot be deleted directly; delete its relationship instead.",
                a.logical
            ),
        ));
    }
    if ent.primary_name.as_deref() == Some(a.logical.as_str()) {
        return Err(error_reply(
            400,
            "0x80047006",
            &format!(
                "The primary name attribute {} cannot be deleted.",
                a.logical
            ),
        ));
    }
    let removed = ent.attrs.remove(pos);
    let prop = removed.prop();
    let logical = ent.logical.clone();
    if let Some(rows) = t.dataverse.rows.get_mut(&logical) {
        for r in rows.iter_mut() {
            if let Some(o) = r.as_object_mut() {
                o.remove(&prop);
            }
        }
    }
    Ok(Reply::empty(204))
}
