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

use s2s_core::{CommonArgs, Ctx, Result, config};
use s2s_dataverse::marketo_config::{self, ConfigTarget, Names};
use s2s_dataverse::names::{not_blank, schema_name};
use s2s_dataverse::{Dataverse, Written};

pub use s2s_dataverse::marketo_config::{CONFIG_ENTITY_LABEL, DEFAULT_RECORD, USER_LOOKUP_LABEL};
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

impl Cli {
    /// The names the flags give; the rest is discovered.
    fn names(&self) -> Names {
        Names {
            entity: self.config_entity.clone(),
            entity_set: self.config_entity_set.clone(),
            user_lookup: self.user_lookup.clone(),
            user_nav_property: self.user_nav_property.clone(),
            record_name: self.record_name.trim().to_string(),
        }
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
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
            let target = marketo_config::discover(&dv, &cli.names()).await?;
            ctx.say(&format!(
                "found \"{}\" entity {} (set {}) with lookup {} (navigation property {})",
                target.label, target.entity, target.entity_set, target.lookup, target.nav_property
            ));
            let (record_id, current) =
                marketo_config::find_record(&dv, &target, record_name).await?;
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
                label: String::new(),
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
