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
//! Whom it replaces is read from the org first. A Marketo User that is another app's
//! application user (another live connection) or a person (the legacy basic-auth sync user of a
//! customer moving to server-to-server) is replaced only with `--replace-sync-user`: without it
//! the run stops before any write (exit 4), naming who it is (name, app and client id, or
//! e-mail) with the command to run. With it, the tool prints Marketo's warning for that move
//! (Marketo's step-2 page, AdobeDocs/marketo.en `.../microsoft-dynamics-365-with-s2s-connection/
//! step-2-of-3-set-up.md`, the "IMPORTANT" box: the sync pauses until the new credentials are
//! entered in Marketo and the sync is enabled again, and Marketo Support must update additional
//! parameters) and records the user it replaced as `marketo_config.previous_user_id` and
//! `marketo_config.previous_user` (a label), so teardown can put it back when asked. A Marketo
//! User of the same app (an earlier application user of this connection) or one the org no
//! longer has is replaced without the flag.
//!
//! A re-run trusts the names an earlier run wrote to `marketo_config` when no flag contradicts
//! them: it reads the record directly (`<entity_set>(<record_id>)?$select=_<lookup>_value`) and
//! goes back to full discovery only when that answer says the names are wrong (unknown entity
//! set, unknown column, record gone).
//!
//! The `marketo_config` names an earlier run wrote are read as a shortcut only: values that are
//! not usable names are ignored, and discovery runs (so they are not among the keys the harness
//! type-checks). `.previous_user_id` and `.previous_user` are written only after
//! `--replace-sync-user` replaced another connection's user or a person. The keys it reads and
//! writes and its exit codes: `configure-marketo --help` (rendered from `READS`, `WRITES` and
//! core's exit-code table).
//!
//! Example:
//! ```text
//! assign-role --dynamics-url https://contoso.crm.dynamics.com < state.json \
//!   | configure-marketo | publish-customizations
//! ```

use clap::Parser;
use serde_json::{Value, json};

use s2s_core::keys::{self, DocKey};
use s2s_core::{AnyKey, CommonArgs, Ctx, Error, Result, config};
use s2s_dataverse::marketo_config::{self, ConfigTarget, Names};
use s2s_dataverse::names::{not_blank, schema_name};
use s2s_dataverse::{Dataverse, SystemUser, Written};

pub use s2s_dataverse::marketo_config::{CONFIG_ENTITY_LABEL, DEFAULT_RECORD, USER_LOOKUP_LABEL};

/// Point the Marketo solution's configuration record at the Marketo sync user.
///
/// Reads the state document on stdin and writes it, enriched with `marketo_config.*`, on stdout.
/// Every name below is discovered from the Marketo solution's metadata unless given.
#[derive(Debug, Parser)]
#[command(
    name = "configure-marketo",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
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

    /// Replace a Marketo User that is another app's application user (another connection) or
    /// a person (e.g. the basic-auth sync user of a customer moving to server-to-server); the
    /// replaced user is recorded in marketo_config.previous_user_id
    #[arg(long)]
    pub replace_sync_user: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = "configure-marketo";
    const READS: &'static [AnyKey] = &[
        keys::DYNAMICS_APPLICATION_USER_ID.any(),
        keys::DYNAMICS_URL.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::MARKETO_CONFIG_ENTITY_SET.any(),
        keys::MARKETO_CONFIG_ENTITY.any(),
        keys::MARKETO_CONFIG_RECORD_ID.any(),
        keys::MARKETO_CONFIG_RECORD_NAME.any(),
        keys::MARKETO_CONFIG_USER_LOOKUP.any(),
        keys::MARKETO_CONFIG_NAV_PROPERTY.any(),
        keys::MARKETO_CONFIG_SYNC_USER_ID.any(),
        keys::MARKETO_CONFIG_PREVIOUS_USER_ID.any(),
        keys::MARKETO_CONFIG_PREVIOUS_USER.any(),
    ];
    const EXAMPLES: &'static str = "\
... | assign-role --dynamics-url https://contoso.crm.dynamics.com | configure-marketo
configure-marketo --config-entity mkto_marketoconfig --user-lookup mkto_marketouser \\
  --user-nav-property mkto_MarketoUser --state s.json      # names found by hand";
    const HELP_NOTES: &'static str = "\
marketo_config.previous_user_id and .previous_user are written when --replace-sync-user replaced
someone. A re-run reads the record the names it wrote point at and rediscovers only when they no
longer fit; it sends no write on a finished setup. A Marketo User that is another app's
application user or a person is replaced only with --replace-sync-user.";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[(
        4,
        "discovery failed or was ambiguous (the message lists what was found), or the Marketo User is another connection's user or a person and --replace-sync-user was not given",
    )];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    fn validate(&self) -> Result<()> {
        not_blank("--record-name", &self.record_name)
    }
}

impl Cli {
    /// The flags of this run a pasted command must repeat (beside those `Ctx::command`
    /// carries), each as one shell word.
    fn own_flags(&self) -> Vec<String> {
        let mut v = Vec::new();
        let mut push = |flag: &str, value: Option<&str>| {
            if let Some(x) = value {
                v.push(flag.to_string());
                v.push(s2s_core::hint::shell_word(x));
            }
        };
        push("--sync-user-id", self.sync_user_id.as_deref());
        push("--config-entity", self.config_entity.as_deref());
        push("--config-entity-set", self.config_entity_set.as_deref());
        push("--user-lookup", self.user_lookup.as_deref());
        push("--user-nav-property", self.user_nav_property.as_deref());
        if self.record_name.trim() != DEFAULT_RECORD {
            push("--record-name", Some(self.record_name.trim()));
        }
        v
    }

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
            .get(keys::DYNAMICS_APPLICATION_USER_ID)?
            .ok_or_else(|| {
                config::missing(
                    "the Marketo sync user's id",
                    "--sync-user-id",
                    keys::DYNAMICS_APPLICATION_USER_ID.path(),
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
    let replaced = ensure_marketo_user(
        ctx,
        &dv,
        &target,
        &record_id,
        current.as_deref(),
        &sync_user,
        &cli,
    )
    .await?;
    if let Some(previous) = replaced {
        ctx.doc.set(
            keys::MARKETO_CONFIG_PREVIOUS_USER_ID,
            &previous.systemuserid,
        );
        ctx.doc
            .set(keys::MARKETO_CONFIG_PREVIOUS_USER, previous.label());
    }

    ctx.doc
        .set(keys::MARKETO_CONFIG_ENTITY_SET, &target.entity_set);
    ctx.doc.set(keys::MARKETO_CONFIG_ENTITY, &target.entity);
    ctx.doc.set(keys::MARKETO_CONFIG_RECORD_ID, &record_id);
    ctx.doc.set(keys::MARKETO_CONFIG_RECORD_NAME, record_name);
    ctx.doc
        .set(keys::MARKETO_CONFIG_USER_LOOKUP, &target.lookup);
    ctx.doc
        .set(keys::MARKETO_CONFIG_NAV_PROPERTY, &target.nav_property);
    ctx.doc.set(keys::MARKETO_CONFIG_SYNC_USER_ID, &sync_user);
    Ok(())
}

/// The names an earlier run wrote to `marketo_config`, when all are there, are usable names, and
/// no flag names something else; with the record's id. The record name must be the one asked
/// for (`--record-name`), so a document made for another record never redirects this run.
fn known_target(doc: &s2s_core::StateDoc, cli: &Cli) -> Option<(ConfigTarget, String)> {
    // Read leniently: a value of the wrong type is no shortcut, and discovery runs.
    let name = |key: DocKey<keys::Str>| -> Option<String> {
        let v = doc.get(key).ok()??;
        schema_name(v).ok()
    };
    let entity = name(keys::MARKETO_CONFIG_ENTITY)?;
    let entity_set = name(keys::MARKETO_CONFIG_ENTITY_SET)?;
    let lookup = name(keys::MARKETO_CONFIG_USER_LOOKUP)?.to_ascii_lowercase();
    let nav_property = name(keys::MARKETO_CONFIG_NAV_PROPERTY)?;
    let record_id = doc.get(keys::MARKETO_CONFIG_RECORD_ID).ok()??;
    let record_name = doc.get(keys::MARKETO_CONFIG_RECORD_NAME).ok()??;
    let agrees = |flag: &Option<String>, known: &str, case_sensitive: bool| {
        flag.as_deref().is_none_or(|f| {
            if case_sensitive {
                f == known
            } else {
                f.eq_ignore_ascii_case(known)
            }
        })
    };
    // The lookup read and the navigation property written must be one column (a custom
    // lookup's navigation property is its schema name): a document pairing a lookup with another
    // column's navigation property would check one and write the other, so it gets discovery.
    let fits = record_name == cli.record_name.trim()
        && nav_property.eq_ignore_ascii_case(&lookup)
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

/// Sets the lookup unless it already points at the user (reference §5.3 step 6). Returns the
/// user it replaced when that needed `--replace-sync-user` (to be recorded for teardown).
async fn ensure_marketo_user(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    t: &ConfigTarget,
    record_id: &str,
    current: Option<&str>,
    sync_user: &str,
    cli: &Cli,
) -> Result<Option<SystemUser>> {
    if current == Some(sync_user) {
        ctx.say(&format!(
            "\"{USER_LOOKUP_LABEL}\" of the Marketo configuration record ({record_id}) already is user {sync_user}"
        ));
        return Ok(None);
    }
    let (was, replaced) = match current {
        None => (String::new(), None),
        Some(c) => match who_is_replaced(ctx, dv, c, sync_user, cli).await? {
            Replacing::Gone => (format!(" (was {c}, a user the org no longer has)"), None),
            Replacing::SameApp(u) => (format!(" (was {}, of the same app)", u.label()), None),
            Replacing::Another(u) => (format!(" (was {})", u.label()), Some(u)),
        },
    };
    let body =
        json!({ format!("{}@odata.bind", t.nav_property): format!("/systemusers({sync_user})") });
    match dv.update_record(&t.entity_set, record_id, body).await? {
        Written::Done(()) => ctx.say(&format!(
            "set \"{USER_LOOKUP_LABEL}\" of the Marketo configuration record ({record_id}) to user {sync_user}{was}"
        )),
        Written::Planned => ctx.say(&format!(
            "dry run: would set \"{USER_LOOKUP_LABEL}\" of the Marketo configuration record ({record_id}) to user {sync_user}{was}"
        )),
    }
    Ok(replaced)
}

/// Whom a new Marketo User would replace.
enum Replacing {
    /// The lookup names a user the org no longer has: nothing live depends on it.
    Gone,
    /// An application user of the same app as the new one: this connection's own.
    SameApp(SystemUser),
    /// Another app's application user (another connection) or a person, replaced with
    /// `--replace-sync-user` only.
    Another(SystemUser),
}

/// Reads who the current Marketo User is (and the new one's app) and, for another connection's
/// user or a person, stops unless `--replace-sync-user` was given — before any write, naming
/// who it is and the command to run. With the flag, Marketo's warning for the move is printed.
async fn who_is_replaced(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    current: &str,
    sync_user: &str,
    cli: &Cli,
) -> Result<Replacing> {
    let Some(old) = dv.system_user(current).await? else {
        return Ok(Replacing::Gone);
    };
    let Some(new) = dv.system_user(sync_user).await? else {
        return Err(Error::refused(format!(
            "the Marketo sync user {sync_user} is not a user of this org; \"{USER_LOOKUP_LABEL}\" stays {}",
            old.label()
        ))
        .with_hint(format!(
            "create the application user first: {}",
            ctx.command("assign-role", &[])
        )));
    };
    if old.same_app_as(&new) {
        return Ok(Replacing::SameApp(old));
    }
    let whose = if old.is_application_user() {
        "another app's application user: another connection may sync through it"
    } else {
        "a person: the sync user of a basic-auth (user name and password) connection"
    };
    if !cli.replace_sync_user {
        let mut args: Vec<String> = cli.own_flags();
        args.push("--replace-sync-user".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        return Err(Error::refused(format!(
            "\"{USER_LOOKUP_LABEL}\" of the Marketo configuration record is {}, {whose}; nothing was changed",
            old.label()
        ))
        .with_hint(format!(
            "if this connection is to replace it (Marketo's sync then pauses until step 3 is done with the new credentials), run {}",
            ctx.command("configure-marketo", &args)
        )));
    }
    ctx.warn(&format!(
        "replacing \"{USER_LOOKUP_LABEL}\" {}, {whose} (recorded as marketo_config.previous_user_id)",
        old.label()
    ));
    ctx.warn(
        "Marketo's step-2 page: moving the sync to this server-to-server connection pauses Marketo's sync until the new credentials are entered in Marketo (step 3) and the sync is enabled again, and Marketo Support must update additional parameters: contact Marketo Support before you switch",
    );
    Ok(Replacing::Another(old))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_request() {
        assert!(Cli::try_parse_from(["configure-marketo", "--user-nav-property", "a/b"]).is_err());
        assert!(Cli::try_parse_from(["configure-marketo", "--config-entity-set", "x?y"]).is_err());
    }
}
