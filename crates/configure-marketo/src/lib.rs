//! `configure-marketo` — Marketo step 2, "Configure Marketo Solution": Settings > Marketo Config >
//! Default > Marketo User = the sync user (reference/dataverse.md §5.1).
//!
//! The Marketo solution's schema names are not public (reference §5.2), so they are discovered at
//! run time from the solution's metadata (§5.3): among the solution's entities the one labelled
//! "Marketo Config"; its record "Default"; among its lookups to `systemuser` (system lookups such
//! as `ownerid` excluded) the one labelled "Marketo User", and that lookup's navigation property
//! (case-sensitive, used in `@odata.bind`). Each discovered name can be given instead with a flag.
//! The lookup is set (`PATCH` with `If-Match: *`, so it can never create a record) only when it
//! does not already point at the application user.
//!
//! A re-run trusts the names an earlier run wrote to `marketo_config` when no flag contradicts
//! them: it reads the record directly (`<entity_set>(<record_id>)?$select=_<lookup>_value`) and
//! goes back to full discovery only when that answer says the names are wrong (unknown entity
//! set, unknown column, record gone).
//!
//! Input keys:  `dynamics.application_user_id` (or `--sync-user-id`), `dynamics.url`
//!              (or `--dynamics-url`); as a shortcut only, `marketo_config.entity_set`,
//!              `.entity`, `.record_id`, `.record_name`, `.user_lookup`, `.nav_property` (values
//!              that are not usable names are ignored, and discovery runs).
//! Output keys: `marketo_config.entity_set`, `.entity`, `.record_id`, `.record_name`,
//!              `.user_lookup`, `.nav_property`, `.sync_user_id`, `steps.configure-marketo`.
//! Exit codes:  0 done; 2 bad input (no request sent); 3 sign-in failed; 4 Dataverse refused or
//!              discovery failed / was ambiguous (the message lists what was found); 5 not done in
//!              time; 1 unexpected.
//!
//! Example:
//! ```text
//! assign-role --dynamics-url https://contoso.crm.dynamics.com < state.json \
//!   | configure-marketo | publish-customizations
//! ```

use clap::Parser;
use serde_json::{Value, json};

use s2s_core::odata::quote;
use s2s_core::{CommonArgs, Ctx, Error, Result, config};
use s2s_dataverse::names::{not_blank, schema_name};
use s2s_dataverse::{
    COMPONENT_ENTITY, Dataverse, EntityDefinition, MARKETO_SOLUTION, Relationship,
    SYSTEM_USER_LOOKUPS, Written,
};

/// UI labels from Marketo's runbook (reference §5.1); the only names that are public.
pub const CONFIG_ENTITY_LABEL: &str = "Marketo Config";
pub const USER_LOOKUP_LABEL: &str = "Marketo User";
pub const DEFAULT_RECORD: &str = "Default";
/// The help's closing part: examples and the keys, then the exit codes from core's one table.
fn after_help() -> String {
    format!(
        "{}\n{}",
        "\
Examples:
  ... | assign-role --dynamics-url https://contoso.crm.dynamics.com | configure-marketo
  configure-marketo --config-entity mkto_marketoconfig --user-lookup mkto_marketouser \\
    --user-nav-property mkto_MarketoUser --state s.json      # names found by hand

Reads dynamics.application_user_id and dynamics.url from the state document on stdin; writes
marketo_config.entity_set, .entity, .record_id, .record_name, .user_lookup, .nav_property,
.sync_user_id. A re-run reads the record those names point at and rediscovers only when they no
longer fit; it sends no write on a finished setup.",
        s2s_core::exit_codes::help(
            false,
            &[(
                4,
                "discovery failed or was ambiguous (the message lists what was found)"
            )]
        )
    )
}

/// Point the Marketo solution's configuration record at the Marketo sync user.
///
/// Reads the state document on stdin and writes it, enriched with `marketo_config.*`, on stdout.
/// Every name below is discovered from the Marketo solution's metadata unless given.
#[derive(Debug, Parser)]
#[command(
    name = "configure-marketo",
    version,
    after_help = after_help()
)]
pub struct Cli {
    /// System user id of the Marketo sync user [state: dynamics.application_user_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub sync_user_id: Option<String>,

    /// Logical name of the "Marketo Config" entity [default: discovered]
    #[arg(long, value_name = "NAME", value_parser = schema_name)]
    pub config_entity: Option<String>,

    /// Entity set (Web API collection) of the "Marketo Config" entity [default: discovered]
    #[arg(long, value_name = "NAME", value_parser = schema_name)]
    pub config_entity_set: Option<String>,

    /// Logical name of the "Marketo User" lookup attribute [default: discovered]
    #[arg(long, value_name = "NAME", value_parser = schema_name)]
    pub user_lookup: Option<String>,

    /// Navigation property of the "Marketo User" lookup, case-sensitive [default: discovered]
    #[arg(long, value_name = "NAME", value_parser = schema_name)]
    pub user_nav_property: Option<String>,

    /// Primary name of the configuration record to set
    #[arg(long, value_name = "NAME", default_value = DEFAULT_RECORD)]
    pub record_name: String,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = "configure-marketo";
    const READS: &'static [(&'static str, s2s_core::Key)] =
        &[("dynamics.application_user_id", s2s_core::Key::Guid)];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    fn validate(&self) -> Result<()> {
        not_blank("--record-name", &self.record_name)
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

/// The discovered (or given) names.
#[derive(Debug)]
struct ConfigTarget {
    entity: String,
    entity_set: String,
    primary_id: String,
    primary_name: String,
    lookup: String,
    nav_property: String,
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    let sync_user = match &cli.sync_user_id {
        Some(id) => id.clone(),
        None => ctx
            .doc
            .get_guid("dynamics.application_user_id")?
            .ok_or_else(|| {
                config::missing(
                    "the Marketo sync user's id",
                    "--sync-user-id",
                    "dynamics.application_user_id",
                )
            })?,
    };
    let dv = Dataverse::from_config(&ctx.http)?;
    let record_name = cli.record_name.trim();

    let known = match known_target(&ctx.doc, &cli) {
        Some((target, record_id)) => {
            let value_col = format!("_{}_value", target.lookup);
            match dv
                .record_if_named(&target.entity_set, &record_id, &value_col)
                .await?
            {
                Some(row) if row.get(&value_col).is_some() => {
                    ctx.say(&format!(
                        "using the names of the state document: entity {} (set {}), lookup {} (navigation property {})",
                        target.entity, target.entity_set, target.lookup, target.nav_property
                    ));
                    let current = row
                        .get(&value_col)
                        .and_then(Value::as_str)
                        .map(str::to_ascii_lowercase);
                    Some((target, record_id, current))
                }
                _ => {
                    ctx.reporter().trace(
                        1,
                        "the state document's marketo_config names no longer fit; discovering them again",
                    );
                    None
                }
            }
        }
        None => None,
    };
    let (target, record_id, current) = match known {
        Some(k) => k,
        None => {
            let target = find_marketo_config(ctx, &dv, &cli).await?;
            let (record_id, current) = find_config_record(&dv, &target, record_name).await?;
            (target, record_id, current)
        }
    };
    ensure_marketo_user(
        ctx,
        &dv,
        &target,
        &record_id,
        current.as_deref(),
        &sync_user,
    )
    .await?;

    ctx.doc
        .set("marketo_config.entity_set", json!(target.entity_set));
    ctx.doc.set("marketo_config.entity", json!(target.entity));
    ctx.doc.set("marketo_config.record_id", json!(record_id));
    ctx.doc
        .set("marketo_config.record_name", json!(record_name));
    ctx.doc
        .set("marketo_config.user_lookup", json!(target.lookup));
    ctx.doc
        .set("marketo_config.nav_property", json!(target.nav_property));
    ctx.doc.set("marketo_config.sync_user_id", json!(sync_user));
    Ok(())
}

/// The names an earlier run wrote to `marketo_config`, when all are there, are usable names, and
/// no flag names something else; with the record's id. The record name must be the one asked
/// for (`--record-name`), so a document made for another record never redirects this run.
fn known_target(doc: &s2s_core::StateDoc, cli: &Cli) -> Option<(ConfigTarget, String)> {
    let name = |key: &str| -> Option<String> {
        let v = doc.get(&format!("marketo_config.{key}"))?.as_str()?;
        schema_name(v).ok()
    };
    let entity = name("entity")?;
    let entity_set = name("entity_set")?;
    let lookup = name("user_lookup")?.to_ascii_lowercase();
    let nav_property = name("nav_property")?;
    let record_id = doc
        .get("marketo_config.record_id")?
        .as_str()
        .and_then(|r| s2s_core::guid::parse(r).ok())?;
    let record_name = doc.get("marketo_config.record_name")?.as_str()?;
    let agrees = |flag: &Option<String>, known: &str, case_sensitive: bool| {
        flag.as_deref().is_none_or(|f| {
            if case_sensitive {
                f == known
            } else {
                f.eq_ignore_ascii_case(known)
            }
        })
    };
    let fits = record_name == cli.record_name.trim()
        && agrees(&cli.config_entity, &entity, false)
        && agrees(&cli.config_entity_set, &entity_set, true)
        && agrees(&cli.user_lookup, &lookup, false)
        && agrees(&cli.user_nav_property, &nav_property, true);
    fits.then(|| {
        (
            ConfigTarget {
                entity,
                entity_set,
                // Only discovery needs these (to find the record by name).
                primary_id: String::new(),
                primary_name: String::new(),
                lookup,
                nav_property,
            },
            record_id,
        )
    })
}

/// The config entity and its "Marketo User" lookup, discovered or given (reference §5.3).
async fn find_marketo_config(ctx: &Ctx, dv: &Dataverse<'_>, cli: &Cli) -> Result<ConfigTarget> {
    let entity = find_config_entity(dv, cli).await?;
    let entity_set = match (&cli.config_entity_set, &entity.entity_set_name) {
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
    ctx.say(&format!(
        "found \"{}\" entity {} (set {entity_set}) with lookup {lookup} (navigation property {nav_property})",
        entity.label(),
        entity.logical_name
    ));
    Ok(ConfigTarget {
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
async fn find_config_entity(dv: &Dataverse<'_>, cli: &Cli) -> Result<EntityDefinition> {
    if let Some(name) = &cli.config_entity {
        return dv.entity(name).await?.ok_or_else(|| {
            Error::refused(format!(
                "--config-entity {name}: no such entity in {}",
                dv.org()
            ))
        });
    }
    if let Some(set) = &cli.config_entity_set {
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
async fn find_user_lookup(dv: &Dataverse<'_>, entity: &str, cli: &Cli) -> Result<(String, String)> {
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

/// The record named `name` and its lookup's current value (reference §5.3 step 5).
async fn find_config_record(
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

/// Sets the lookup unless it already points at the user (reference §5.3 step 6).
async fn ensure_marketo_user(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    t: &ConfigTarget,
    record_id: &str,
    current: Option<&str>,
    sync_user: &str,
) -> Result<()> {
    if current == Some(sync_user) {
        ctx.say(&format!(
            "\"{USER_LOOKUP_LABEL}\" of the Marketo configuration record ({record_id}) already is user {sync_user}"
        ));
        return Ok(());
    }
    let body =
        json!({ format!("{}@odata.bind", t.nav_property): format!("/systemusers({sync_user})") });
    match dv.update_record(&t.entity_set, record_id, body).await? {
        Written::Done(()) => ctx.say(&format!(
            "set \"{USER_LOOKUP_LABEL}\" of the Marketo configuration record ({record_id}) to user {sync_user}{}",
            current.map(|c| format!(" (was {c})")).unwrap_or_default()
        )),
        Written::Planned => ctx.say(&format!(
            "dry run: would set \"{USER_LOOKUP_LABEL}\" of the Marketo configuration record ({record_id}) to user {sync_user}"
        )),
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn names_are_checked_before_any_request() {
        assert!(Cli::try_parse_from(["configure-marketo", "--user-nav-property", "a/b"]).is_err());
        assert!(Cli::try_parse_from(["configure-marketo", "--config-entity-set", "x?y"]).is_err());
    }
}
