//! `add-sync-filter` — the optional "custom sync filter" before Marketo's step 3
//! (reference/dataverse.md §5.4): a Two Options (Boolean) column whose logical name is exactly
//! `new_synctomkto` on each entity to filter. Marketo syncs a record unless this field is
//! explicitly No; empty or missing syncs. Marketo cannot work with any other prefix than `new`,
//! so the schema name is `new_SyncToMkto` whatever the org's default publisher is.
//!
//! For each `--entity`: an existing Boolean `new_synctomkto` is used as it is (a hand-made one is
//! not marked, and teardown never deletes it); one of another type is an error (exit 4, nothing
//! written); an unknown entity is an error (exit 4, nothing written). All entities are checked
//! before anything is created. A column this tool creates carries the setup's mark in its
//! description (`[marketo-s2s setup <setup.id>]`): that, read from the live column, is what lets
//! `teardown --remove-sync-filter` delete it. The columns created are then published with
//! `PublishXml` naming exactly those entities, not everything.
//!
//! Without `setup.id` (register-app's) the column is created unmarked, and said so.
//! `sync_filter.entities` is `[{entity, status: created|exists|planned}]`: `created` when the
//! column carries this setup's mark, also on a re-run; `exists` for one it found. Entities an
//! earlier run recorded and this run does not name stay in the list (after this run's), so
//! teardown and verify-sync still see their columns.
//! `sync_filter.default` is written only when this run created a column (an existing column keeps
//! its own default); `sync_filter.publish_pending` lists the columns whose `PublishXml` has not
//! succeeded yet (a re-run publishes them, then removes the key). The keys it reads and writes
//! and its exit codes: `add-sync-filter --help` (rendered from `READS`, `WRITES` and core's
//! exit-code table).
//!
//! Example:
//! ```text
//! ... | configure-marketo | add-sync-filter --entity lead --entity contact --default unset \
//!     | publish-customizations --if-changed | verify-sync
//! ```

use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

use s2s_core::keys;
use s2s_core::setup::SetupId;
use s2s_core::{AnyKey, CommonArgs, Ctx, Error, Result};
use s2s_dataverse::names::{entity_logical_name, not_blank, unique};
use s2s_dataverse::{BooleanAttributeSpec, Dataverse, Written, is_duplicate_attribute};

/// The logical name Marketo looks for (reference §5.4: "Name must be exactly new_synctomkto").
pub const FIELD: &str = s2s_dataverse::SYNC_FILTER_FIELD;
/// Its schema name; the logical name is the lower-case form.
pub const SCHEMA_NAME: &str = "new_SyncToMkto";

/// Add Marketo's custom sync filter field (new_synctomkto, Two Options) to Dynamics entities.
///
/// Reads the state document on stdin and writes it, enriched with `sync_filter.*`, on stdout.
/// Marketo syncs a record unless the field is explicitly No. After this, tick the field in
/// Marketo: Admin > Microsoft Dynamics > Field Sync Details > Edit.
#[derive(Debug, Parser)]
#[command(
    name = "add-sync-filter",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
)]
pub struct Cli {
    /// Entity (logical name) to filter: lead, contact, account, opportunity or a custom one
    /// (repeatable)
    #[arg(long = "entity", value_name = "NAME", value_parser = entity_logical_name, default_values_t = [String::from("lead"), String::from("contact")])]
    pub entities: Vec<String>,

    /// Display name of the new field
    #[arg(long, value_name = "TEXT", default_value = "Sync to Marketo")]
    pub display_name: String,

    /// Default value of the field on new records
    #[arg(long = "default", value_enum, value_name = "CHOICE", default_value_t = DefaultChoice::Unset)]
    pub default_choice: DefaultChoice,

    /// Language (LCID) of the field's labels; must be a language installed in the org
    #[arg(long, value_name = "LCID", default_value_t = 1033)]
    pub language_code: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// What new records get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DefaultChoice {
    /// New records default to Yes: synced
    Yes,
    /// New records default to No: NOT synced until someone sets Yes
    No,
    /// No default is set: records stay empty, and empty syncs
    Unset,
}

impl DefaultChoice {
    fn value(self) -> Option<bool> {
        match self {
            DefaultChoice::Yes => Some(true),
            DefaultChoice::No => Some(false),
            DefaultChoice::Unset => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            DefaultChoice::Yes => "yes",
            DefaultChoice::No => "no",
            DefaultChoice::Unset => "unset",
        }
    }
    /// What the choice means for Marketo's sync (reference §5.4).
    fn meaning(self) -> &'static str {
        match self {
            DefaultChoice::Yes => {
                "--default yes: new records default to Yes and sync to Marketo; existing records stay empty, which also syncs"
            }
            DefaultChoice::No => {
                "--default no: new records default to No and Marketo will NOT sync them until someone sets Yes; \
                 existing records stay empty and keep syncing"
            }
            DefaultChoice::Unset => {
                "--default unset: no default; records stay empty and keep syncing (Marketo shows empty as false) — \
                 only an explicit No keeps a record out of Marketo's sync"
            }
        }
    }
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = "add-sync-filter";
    const READS: &'static [AnyKey] = &[
        keys::DYNAMICS_URL.any(),
        keys::SYNC_FILTER_PUBLISH_PENDING.any(),
        keys::SYNC_FILTER_ENTITIES.any(),
        keys::SETUP_ID.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::SYNC_FILTER_FIELD.any(),
        keys::SYNC_FILTER_ENTITIES.any(),
        keys::SYNC_FILTER_PUBLISHED.any(),
        keys::SYNC_FILTER_DEFAULT.any(),
        keys::SYNC_FILTER_PUBLISH_PENDING.any(),
    ];
    const EXAMPLES: &'static str = "\
add-sync-filter --entity lead --entity account --dynamics-url https://contoso.crm.dynamics.com
... | configure-marketo | add-sync-filter --default unset | verify-sync";
    const HELP_NOTES: &'static str = "\
A column it creates carries the setup's mark (from setup.id) in its description (teardown
--remove-sync-filter deletes only such columns; a hand-made new_synctomkto is used as it is and
kept). sync_filter.entities is [{entity, status: created|exists|planned}]: created = this
setup's column; entities of earlier runs stay listed; sync_filter.published lists the entities this run published;
sync_filter.default is written when this run created a column; sync_filter.publish_pending, while
a publish is owed: a re-run publishes those columns. Re-running a finished setup sends no write.
Then tick the field in Marketo: Admin > Microsoft Dynamics > Field Sync Details > Edit.";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[(
        4,
        "an entity is unknown or has new_synctomkto with another type",
    )];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    fn validate(&self) -> Result<()> {
        not_blank("--display-name", &self.display_name)
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

/// What the read phase found for one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// A Boolean column; `true` when it carries this setup's mark (this setup created it).
    Exists(bool),
    Missing,
}

/// The description of a column this tool creates: what it is for, and the setup's mark.
const DESCRIPTION: &str =
    "Marketo syncs this record unless the value is No (Marketo custom sync filter)";

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    let entities = unique(&cli.entities);
    // Columns an earlier run created but could not publish (its PublishXml failed): still owed.
    let mut owed = Vec::new();
    for v in ctx
        .doc
        .get(keys::SYNC_FILTER_PUBLISH_PENDING)?
        .into_iter()
        .flatten()
    {
        match v.as_str().map(entity_logical_name) {
            Some(Ok(e)) => owed.push(e),
            _ => {
                return Err(Error::usage(format!(
                    "state document key {} must list entity logical names",
                    keys::SYNC_FILTER_PUBLISH_PENDING
                )));
            }
        }
    }
    // Entities an earlier run recorded and this run does not name: kept in the record, so
    // teardown still finds (and judges) their columns and verify-sync still checks them.
    let mut earlier = Vec::new();
    for v in ctx
        .doc
        .get(keys::SYNC_FILTER_ENTITIES)?
        .into_iter()
        .flatten()
    {
        match v
            .get("entity")
            .and_then(Value::as_str)
            .map(entity_logical_name)
        {
            Some(Ok(e)) if !entities.contains(&e) => earlier.push(v.clone()),
            Some(Ok(_)) => {}
            _ => {
                return Err(Error::usage(format!(
                    "state document key {} must list {{\"entity\": <logical name>, \"status\": …}} entries",
                    keys::SYNC_FILTER_ENTITIES
                )));
            }
        }
    }
    let setup = SetupId::of_doc(&ctx.doc)?;
    let dv = Dataverse::from_config(&ctx.http)?;
    ctx.say(cli.default_choice.meaning());

    // Every entity is checked before anything is created, so one bad name leaves the org as it was.
    let mut found = Vec::new();
    for e in &entities {
        found.push(check_entity(&dv, e, setup.as_ref()).await?);
    }

    let description = match &setup {
        Some(s) => format!("{DESCRIPTION} {}", s.description_mark()),
        None => {
            if found.contains(&Found::Missing) {
                ctx.warn(
                    "the document has no setup.id (register-app writes it): the new column carries no setup mark, \
                     so teardown --remove-sync-filter will keep it",
                );
            }
            DESCRIPTION.to_string()
        }
    };
    let spec = BooleanAttributeSpec {
        schema_name: SCHEMA_NAME,
        display_name: cli.display_name.trim(),
        description: &description,
        true_label: "Yes",
        false_label: "No",
        default_value: cli.default_choice.value(),
        language_code: i64::from(cli.language_code),
    };
    let mut statuses = Vec::new();
    let mut to_publish = Vec::new();
    for (entity, f) in entities.iter().zip(found) {
        let status = match f {
            Found::Exists(true) => {
                ctx.say(&format!(
                    "{entity} already has the Boolean field {FIELD} this setup created"
                ));
                "created"
            }
            Found::Exists(false) => {
                ctx.say(&format!(
                    "{entity} already has the Boolean field {FIELD} (not made by this setup: used as it is, and teardown keeps it)"
                ));
                "exists"
            }
            Found::Missing => match ensure_field(&dv, entity, &spec, setup.as_ref()).await? {
                Written::Planned => {
                    ctx.say(&format!(
                        "dry run: would create the Boolean field {FIELD} on {entity}"
                    ));
                    "planned"
                }
                Written::Done(created) => {
                    // A duplicate answer may be our own lost create: publish it either way.
                    to_publish.push(entity.clone());
                    if created {
                        ctx.say(&format!(
                            "created the Boolean field {FIELD} (\"{}\") on {entity}",
                            spec.display_name
                        ));
                        "created"
                    } else {
                        ctx.say(&format!("{entity} already has the Boolean field {FIELD}"));
                        "exists"
                    }
                }
            },
        };
        statuses.push(json!({"entity": entity, "status": status}));
    }

    let planned: Vec<String> = statuses
        .iter()
        .filter(|s| s["status"] == "planned")
        .filter_map(|s| s["entity"].as_str().map(str::to_string))
        .collect();
    let created_any = to_publish.iter().any(|e| {
        statuses
            .iter()
            .any(|s| s["entity"] == json!(e) && s["status"] == "created")
    });
    let mut publish_list = if ctx.dry_run() { planned } else { to_publish };
    if !owed.is_empty() {
        ctx.say(&format!(
            "an earlier run created {} without publishing: publishing now",
            owed.join(", ")
        ));
        publish_list = unique(&[owed, publish_list].concat());
    }
    if !publish_list.is_empty() {
        // Marks the document first: should the publish fail, the columns exist and the next
        // run sees them as "exists", so this list is what tells it a publish is still owed.
        ctx.doc
            .set(keys::SYNC_FILTER_PUBLISH_PENDING, json!(publish_list));
        match dv.publish_entities(&publish_list).await? {
            Written::Done(()) => {
                ctx.say(&format!("published {}", publish_list.join(", ")));
                ctx.doc.remove(keys::SYNC_FILTER_PUBLISH_PENDING);
            }
            Written::Planned => ctx.say(&format!(
                "dry run: would publish {}",
                publish_list.join(", ")
            )),
        }
    }

    ctx.doc.set(keys::SYNC_FILTER_FIELD, FIELD);
    statuses.extend(earlier);
    ctx.doc.set(keys::SYNC_FILTER_ENTITIES, statuses);
    ctx.doc.set(
        keys::SYNC_FILTER_PUBLISHED,
        json!(if ctx.dry_run() {
            Vec::new()
        } else {
            publish_list
        }),
    );
    // The default belongs to the columns this tool created; an existing column keeps its own.
    if created_any {
        ctx.doc
            .set(keys::SYNC_FILTER_DEFAULT, cli.default_choice.name());
    }
    Ok(())
}

/// The entity exists, and `new_synctomkto` on it is either missing or a Boolean (marked with
/// `setup`'s mark, or not).
async fn check_entity(dv: &Dataverse<'_>, entity: &str, setup: Option<&SetupId>) -> Result<Found> {
    if dv.entity(entity).await?.is_none() {
        return Err(Error::refused(format!(
            "entity {entity:?} does not exist in {}",
            dv.org()
        ))
        .with_hint("use the entity's logical name (lead, contact, account, opportunity, or a custom entity's name)"));
    }
    match dv.attribute(entity, FIELD).await? {
        None => Ok(Found::Missing),
        Some(a) if a.is_boolean() => Ok(Found::Exists(marked_by(&a, setup))),
        Some(a) => Err(Error::refused(format!(
            "entity {entity} already has a field {FIELD} of type {}, but Marketo's sync filter must be Two Options (Boolean)",
            a.type_name()
        ))
        .with_hint(format!(
            "delete or rename that field in Dynamics (Settings > Customizations > {entity} > Fields), then re-run"
        ))),
    }
}

/// Whether the column's description carries this setup's mark.
fn marked_by(a: &s2s_dataverse::Attribute, setup: Option<&SetupId>) -> bool {
    setup.is_some_and(|s| s.marks_description(&a.description_text()))
}

/// Creates the field; `Done(false)` when it turned out to exist already (a concurrent run, or an
/// earlier attempt whose answer was lost but which was committed: then it carries our mark and
/// counts as created).
async fn ensure_field(
    dv: &Dataverse<'_>,
    entity: &str,
    spec: &BooleanAttributeSpec<'_>,
    setup: Option<&SetupId>,
) -> Result<Written<bool>> {
    match dv.create_boolean_attribute(entity, spec).await {
        Ok(Written::Planned) => Ok(Written::Planned),
        Ok(Written::Done(_)) => Ok(Written::Done(true)),
        Err(e) if is_duplicate_attribute(&e) || e.ambiguous => {
            match dv.attribute(entity, FIELD).await? {
                Some(a) if a.is_boolean() => Ok(Written::Done(
                    !is_duplicate_attribute(&e) || marked_by(&a, setup),
                )),
                Some(a) => Err(Error::refused(format!(
                    "entity {entity} has a field {FIELD} of type {}, but Marketo's sync filter must be Boolean",
                    a.type_name()
                ))),
                None => Err(e.context(format!("creating {FIELD} on {entity}"))),
            }
        }
        Err(e) => Err(e.context(format!("creating {FIELD} on {entity}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_entity_names() {
        let c = Cli::try_parse_from(["add-sync-filter"]).unwrap();
        assert_eq!(c.entities, vec!["lead".to_string(), "contact".to_string()]);
        assert_eq!(c.default_choice, DefaultChoice::Unset);
        let c = Cli::try_parse_from(["add-sync-filter", "--entity", "Account", "--default", "no"])
            .unwrap();
        assert_eq!(c.entities, vec!["account".to_string()]);
        assert_eq!(c.default_choice.value(), Some(false));
        assert!(Cli::try_parse_from(["add-sync-filter", "--entity", "lead'"]).is_err());
        assert!(Cli::try_parse_from(["add-sync-filter", "--entity", "a/b"]).is_err());
        assert!(Cli::try_parse_from(["add-sync-filter", "--default", "maybe"]).is_err());
    }
}
