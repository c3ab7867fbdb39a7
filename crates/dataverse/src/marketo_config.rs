//! Where the Marketo solution keeps its configuration: the "Marketo Config" entity, its
//! "Default" record and that record's "Marketo User" lookup to `systemuser`
//! (reference/dataverse.md §5). The solution's schema names are not public (§5.2), so they are
//! discovered at run time from its metadata (§5.3): among the solution's entities the one
//! labelled "Marketo Config" (or, when the labels differ, the one entity with a record named
//! "Default" and a custom lookup to systemuser); among its lookups to `systemuser` (system
//! lookups such as `ownerid` left out) the one labelled "Marketo User" (or the one that stands
//! out by name or label), and that lookup's navigation property (case-sensitive, used in
//! `@odata.bind`). Any name can be given instead ([`Names`]).
//!
//! Used by configure-marketo (which sets the lookup) and teardown (which clears it when the
//! document does not say where it is). Reads only; prints nothing.

use serde_json::Value;

use s2s_core::odata::quote;
use s2s_core::{Error, Result};

use crate::{
    COMPONENT_ENTITY, Dataverse, EntityDefinition, MARKETO_SOLUTION, Relationship,
    SYSTEM_USER_LOOKUPS,
};

/// UI labels from Marketo's runbook (reference §5.1); the only names that are public.
pub const CONFIG_ENTITY_LABEL: &str = "Marketo Config";
pub const USER_LOOKUP_LABEL: &str = "Marketo User";
pub const DEFAULT_RECORD: &str = "Default";

/// The names the caller already knows (configure-marketo's flags); `None` is discovered.
#[derive(Debug, Clone)]
pub struct Names {
    /// Logical name of the configuration entity.
    pub entity: Option<String>,
    /// Its entity set (Web API collection).
    pub entity_set: Option<String>,
    /// Logical name of the "Marketo User" lookup.
    pub user_lookup: Option<String>,
    /// Its navigation property (case-sensitive).
    pub user_nav_property: Option<String>,
    /// Primary name of the configuration record.
    pub record_name: String,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            entity: None,
            entity_set: None,
            user_lookup: None,
            user_nav_property: None,
            record_name: DEFAULT_RECORD.to_string(),
        }
    }
}

/// The discovered (or given) names.
#[derive(Debug, Clone)]
pub struct ConfigTarget {
    /// The entity's display label, for messages.
    pub label: String,
    pub entity: String,
    pub entity_set: String,
    /// Primary id and name columns (empty when the names came from a document: only discovery
    /// needs them, to find the record by name).
    pub primary_id: String,
    pub primary_name: String,
    /// The lookup's logical name, lower case.
    pub lookup: String,
    pub nav_property: String,
}

/// The config entity and its "Marketo User" lookup, discovered or given (reference §5.3).
/// Sends reads only.
pub async fn discover(dv: &Dataverse<'_>, cli: &Names) -> Result<ConfigTarget> {
    let entity = find_config_entity(dv, cli).await?;
    let entity_set = match (&cli.entity_set, &entity.entity_set_name) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => {
            return Err(discovery_failed(format!(
                "entity {} has no entity set name in its metadata",
                entity.logical_name
            )));
        }
    };
    let primary_id = entity
        .primary_id_attribute
        .clone()
        .unwrap_or_else(|| format!("{}id", entity.logical_name));
    let primary_name = entity.primary_name_attribute.clone().ok_or_else(|| {
        discovery_failed(format!(
            "entity {} has no primary name attribute, so its \"{}\" record cannot be found by name",
            entity.logical_name, cli.record_name
        ))
    })?;
    let (lookup, nav_property) = find_user_lookup(dv, &entity.logical_name, cli).await?;
    Ok(ConfigTarget {
        label: entity.label().to_string(),
        entity: entity.logical_name,
        entity_set,
        primary_id,
        primary_name,
        lookup,
        nav_property,
    })
}

/// The entity labelled "Marketo Config" among the Marketo solution's entity components; or the
/// one named by `--config-entity` / `--config-entity-set`.
async fn find_config_entity(dv: &Dataverse<'_>, cli: &Names) -> Result<EntityDefinition> {
    if let Some(name) = &cli.entity {
        return dv.entity(name).await?.ok_or_else(|| {
            Error::refused(format!(
                "--config-entity {name}: no such entity in {}",
                dv.org()
            ))
        });
    }
    if let Some(set) = &cli.entity_set {
        let mut found = dv.entities_by_set_name(set).await?;
        return match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(Error::refused(format!(
                "--config-entity-set {set}: no entity has this entity set in {}",
                dv.org()
            ))),
            _ => Err(Error::refused(format!(
                "--config-entity-set {set}: several entities claim it ({})",
                names(&found)
            ))
            .with_hint("pass --config-entity LOGICAL_NAME")),
        };
    }

    let solution = dv.marketo_solution().await?.ok_or_else(|| {
        Error::refused(format!(
            "the Marketo solution \"{MARKETO_SOLUTION}\" is not installed in {}",
            dv.org()
        ))
        .with_hint("import the Marketo solution first (Marketo step 1), then re-run")
    })?;
    let components = dv
        .solution_components(&solution.solutionid, COMPONENT_ENTITY)
        .await?;
    // One query for all the solution's entities; a component whose metadata is gone (deleted
    // since) is absent from the answer, so no candidate. Labels cannot be filtered server-side
    // (reference §5.3 step 3), so they are matched here.
    let ids: Vec<String> = components.iter().map(|c| c.objectid.clone()).collect();
    let entities = if ids.is_empty() {
        Vec::new()
    } else {
        dv.entities_by_ids(&ids).await?
    };
    let mut matching: Vec<EntityDefinition> = entities
        .iter()
        .filter(|e| {
            e.display_name
                .as_ref()
                .is_some_and(|l| l.matches(CONFIG_ENTITY_LABEL))
        })
        .cloned()
        .collect();
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => find_config_entity_by_shape(dv, &entities, cli.record_name.trim())
            .await
            .map_err(|found| {
                discovery_failed(format!(
                    "no entity labelled \"{CONFIG_ENTITY_LABEL}\" among the {} entities of solution {}, and not \
                     exactly one with a record named {:?} and a custom lookup to systemuser: {}",
                    entities.len(),
                    solution.uniquename,
                    cli.record_name.trim(),
                    if found.is_empty() {
                        "(no entities)".to_string()
                    } else {
                        found.join("; ")
                    }
                ))
            }),
        _ => Err(discovery_failed(format!(
            "several entities of solution {} are labelled \"{CONFIG_ENTITY_LABEL}\": {}",
            solution.uniquename,
            names(&matching)
        ))),
    }
}

/// When no entity carries the "Marketo Config" label (the solution's labels are not public and
/// may differ by version or language): the one entity of the solution that has a record named
/// `record_name` and a custom lookup to systemuser — the shape of Marketo's configuration. On
/// failure, what was found for each entity, for the error message.
async fn find_config_entity_by_shape(
    dv: &Dataverse<'_>,
    entities: &[EntityDefinition],
    record_name: &str,
) -> std::result::Result<EntityDefinition, Vec<String>> {
    let mut found = Vec::new();
    let mut fits = Vec::new();
    for e in entities {
        let lookups = custom_user_lookups(dv, &e.logical_name)
            .await
            .map_err(|err| vec![format!("{}: {err}", e.logical_name)])?;
        let record = match (&e.entity_set_name, &e.primary_name_attribute) {
            (Some(set), Some(name_col)) => {
                let id = e
                    .primary_id_attribute
                    .clone()
                    .unwrap_or_else(|| format!("{}id", e.logical_name));
                let filter = format!("{name_col} eq {}", quote(record_name));
                dv.records(set, &id, Some(&filter))
                    .await
                    .map(|rows| rows.len())
                    .map_err(|err| vec![format!("{}: {err}", e.logical_name)])?
            }
            _ => 0,
        };
        found.push(format!(
            "{} \"{}\": {record} record(s) named {record_name:?}, custom lookups to systemuser: {}",
            e.logical_name,
            e.label(),
            if lookups.is_empty() {
                "none".to_string()
            } else {
                lookups.join(", ")
            }
        ));
        if record == 1 && !lookups.is_empty() {
            fits.push(e.clone());
        }
    }
    if fits.len() == 1 {
        return Ok(fits.remove(0));
    }
    Err(found)
}

/// The logical names of an entity's lookups to systemuser, system ones (owner, created by…)
/// left out.
async fn custom_user_lookups(dv: &Dataverse<'_>, entity: &str) -> Result<Vec<String>> {
    Ok(lookups_to_systemuser(dv, entity)
        .await?
        .into_iter()
        .filter(|r| {
            !SYSTEM_USER_LOOKUPS
                .iter()
                .any(|s| r.referencing_attribute.eq_ignore_ascii_case(s))
        })
        .map(|r| r.referencing_attribute)
        .collect())
}

/// The entity's many-to-one relationships to systemuser. The server's filter is trusted only as
/// far as it goes: a row naming another target is dropped.
async fn lookups_to_systemuser(dv: &Dataverse<'_>, entity: &str) -> Result<Vec<Relationship>> {
    Ok(dv
        .many_to_one_relationships(entity, "systemuser")
        .await?
        .into_iter()
        .filter(|r| {
            r.referenced_entity
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case("systemuser"))
        })
        .collect())
}

/// Which custom lookup to systemuser is "Marketo User" when none has that label: the only one
/// whose logical name ends in `marketouser` or whose label mentions Marketo, else the only
/// custom lookup there is. `None` when that does not single one out.
fn pick_user_lookup_by_shape(candidates: &[(String, String)]) -> Option<usize> {
    let marketo: Vec<usize> = candidates
        .iter()
        .enumerate()
        .filter(|(_, (logical, label))| {
            logical.to_ascii_lowercase().ends_with("marketouser")
                || label.to_ascii_lowercase().contains("marketo")
        })
        .map(|(i, _)| i)
        .collect();
    match (marketo.as_slice(), candidates.len()) {
        ([one], _) => Some(*one),
        ([], 1) => Some(0),
        _ => None,
    }
}

/// The "Marketo User" lookup and its navigation property (reference §5.3 step 4).
async fn find_user_lookup(
    dv: &Dataverse<'_>,
    entity: &str,
    cli: &Names,
) -> Result<(String, String)> {
    if let (Some(l), Some(n)) = (&cli.user_lookup, &cli.user_nav_property) {
        return Ok((l.to_ascii_lowercase(), n.clone()));
    }
    let relationships = lookups_to_systemuser(dv, entity).await?;

    let chosen = if let Some(lookup) = &cli.user_lookup {
        relationships
            .into_iter()
            .find(|r| r.referencing_attribute.eq_ignore_ascii_case(lookup))
            .ok_or_else(|| {
                discovery_failed(format!(
                    "--user-lookup {lookup}: entity {entity} has no lookup of that name to systemuser"
                ))
            })?
    } else {
        let candidates: Vec<Relationship> = relationships
            .into_iter()
            .filter(|r| {
                !SYSTEM_USER_LOOKUPS
                    .iter()
                    .any(|s| r.referencing_attribute.eq_ignore_ascii_case(s))
            })
            .collect();
        // The candidates' labels in one query rather than one request per lookup.
        let names: Vec<String> = candidates
            .iter()
            .map(|r| r.referencing_attribute.clone())
            .collect();
        let attrs = if names.is_empty() {
            Vec::new()
        } else {
            dv.attributes_named(entity, &names).await?
        };
        let mut labelled = Vec::new();
        let mut seen = Vec::new();
        let mut shapes = Vec::new();
        for r in &candidates {
            let attr = attrs.iter().find(|a| {
                a.logical_name
                    .eq_ignore_ascii_case(&r.referencing_attribute)
            });
            shapes.push((
                r.referencing_attribute.clone(),
                attr.and_then(|a| a.label()).unwrap_or("").to_string(),
            ));
        }
        let mut candidates = candidates;
        for r in candidates.clone() {
            let attr = attrs.iter().find(|a| {
                a.logical_name
                    .eq_ignore_ascii_case(&r.referencing_attribute)
            });
            let label = attr.and_then(|a| a.label()).unwrap_or("(no label)");
            seen.push(format!("{} \"{label}\"", r.referencing_attribute));
            if attr
                .and_then(|a| a.display_name.as_ref())
                .is_some_and(|l| l.matches(USER_LOOKUP_LABEL))
            {
                labelled.push(r);
            }
        }
        match labelled.len() {
            1 => labelled.remove(0),
            0 if pick_user_lookup_by_shape(&shapes).is_some() => {
                let i = pick_user_lookup_by_shape(&shapes).unwrap_or(0);
                candidates.swap_remove(i)
            }
            0 => {
                return Err(discovery_failed(format!(
                    "entity {entity} has no lookup to systemuser labelled \"{USER_LOOKUP_LABEL}\", and none stands out \
                     (one named *marketouser or labelled with \"Marketo\", or a single custom one); its lookups to systemuser: {}",
                    if seen.is_empty() {
                        "(none besides the system ones)".to_string()
                    } else {
                        seen.join(", ")
                    }
                )));
            }
            _ => {
                return Err(discovery_failed(format!(
                    "several lookups of entity {entity} are labelled \"{USER_LOOKUP_LABEL}\": {}",
                    labelled
                        .iter()
                        .map(|r| r.referencing_attribute.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    };
    let nav = match &cli.user_nav_property {
        Some(n) => n.clone(),
        None => chosen
            .referencing_entity_navigation_property_name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                discovery_failed(format!(
                    "relationship {} names no navigation property for lookup {}",
                    chosen.schema_name.as_deref().unwrap_or("(unnamed)"),
                    chosen.referencing_attribute
                ))
            })?,
    };
    Ok((chosen.referencing_attribute.to_ascii_lowercase(), nav))
}

/// The record named `name`: its id and its lookup's current value, lower case (reference §5.3
/// step 5).
pub async fn find_record(
    dv: &Dataverse<'_>,
    t: &ConfigTarget,
    name: &str,
) -> Result<(String, Option<String>)> {
    let value_col = format!("_{}_value", t.lookup);
    let select = format!("{},{},{value_col}", t.primary_id, t.primary_name);
    let filter = format!("{} eq {}", t.primary_name, quote(name));
    let rows = dv.records(&t.entity_set, &select, Some(&filter)).await?;
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get(&t.primary_id).and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    match (rows.len(), ids.len()) {
        (1, 1) => {
            let current = rows[0]
                .get(&value_col)
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            Ok((ids[0].to_ascii_lowercase(), current))
        }
        (0, _) => Err(Error::refused(format!(
            "no {} record named {name:?} in {}",
            t.entity, t.entity_set
        ))
        .with_hint("the Marketo solution creates the \"Default\" record on import; check step 1 completed, or name the record with --record-name")),
        (1, _) => Err(Error::internal(format!(
            "the {} record has no {} in Dataverse's answer",
            t.entity, t.primary_id
        ))),
        (n, _) => Err(Error::refused(format!(
            "{n} {} records are named {name:?}: {}",
            t.entity,
            ids.join(", ")
        ))),
    }
}

fn names(entities: &[EntityDefinition]) -> String {
    entities
        .iter()
        .map(|e| format!("{} \"{}\"", e.logical_name, e.label()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn discovery_failed(what: String) -> Error {
    Error::refused(format!("cannot find the Marketo configuration: {what}")).with_hint(
        "name it yourself with --config-entity, --config-entity-set, --user-lookup and --user-nav-property \
         (see Settings > Customizations > Marketo Config in Dynamics)",
    )
}
