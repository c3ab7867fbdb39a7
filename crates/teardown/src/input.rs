//! What the state document and the flags say, read and checked before the first request. The
//! document only says where to look: what is removed is decided by the live objects
//! (`discovery.rs`), never by these values alone.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use s2s_core::keys::{self, DocKey};
use s2s_core::retry::{REPLICATION_WINDOW, visible_within};
use s2s_core::setup::SetupId;
use s2s_core::{Ctx, Result, StateDoc};
use s2s_dataverse::names::{entity_logical_name, unique};

use crate::Cli;

/// What the document says, read before the first request.
#[derive(Debug, Default)]
pub(crate) struct Input {
    /// The setup (connection) being removed: `--setup-id`, else `setup.id`. `None` for a
    /// document of an earlier version (or one written by hand): then nothing carries its mark.
    pub setup: Option<SetupId>,
    pub object_id: Option<String>,
    pub client_id: Option<String>,
    pub unique_name: Option<String>,
    /// The app's object id as an earlier teardown recorded it (`teardown.application_object_id`):
    /// where the deleted app, with its tags, is found in `directory/deletedItems`.
    pub deleted_object_id: Option<String>,
    /// register-app adopted the app (`--client-id`): the setup did not create it, so it stays;
    /// only what carries the setup's mark goes.
    pub adopted: bool,
    /// make-secret's credentials (`secret.key_id`, `secret.previous_key_id`).
    pub key_ids: Vec<String>,
    /// `secret.sha256`: the hex SHA-256 of the saved secret (make-secret writes it).
    pub secret_sha256: Option<String>,
    pub sp_id: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub policy_id: Option<String>,
    pub user_id: Option<String>,
    /// `dynamics.application_user_created`: assign-role created the user (`None`: not recorded).
    pub user_created: Option<bool>,
    pub role_ids: Vec<String>,
    /// Ids of the roles assign-role recorded as added by this setup (`dynamics.roles[].added`).
    pub roles_added: Vec<String>,
    pub role_names: Vec<String>,
    /// `consent.created`: grant-consent made the grant (a grant carries no mark).
    pub consent_created: bool,
    pub config: Option<ConfigNames>,
    /// The Marketo User configure-marketo replaced (`marketo_config.previous_user_id`,
    /// `.previous_user`): put back only with `--restore-sync-user`.
    pub previous_user: Option<(String, String)>,
    pub sync_entities: Vec<String>,
    /// The entities came from `sync_filter.entities` (add-sync-filter ran), not the default.
    pub sync_filter_in_doc: bool,
    /// A setup step wrote within [`RECENT`], after any earlier teardown: a 404 for an object
    /// the document names may be replication (graph.md §7.4), so such reads wait.
    pub fresh_setup: bool,
    /// `(kind, id)` of what a teardown removed within [`RECENT`]: Entra may still list them
    /// while the deletion replicates, and a re-run must not send their removal again.
    pub recently_removed: Vec<(String, String)>,
}

/// Where configure-marketo set the "Marketo User" lookup.
#[derive(Debug, Clone)]
pub(crate) struct ConfigNames {
    pub entity_set: String,
    pub record_id: String,
    pub lookup: String,
    pub nav_property: String,
}

/// "Right after": how long a write may take to reach every replica, as verify-sync's `--settle`
/// assumes (10 minutes).
pub(crate) const RECENT: Duration = Duration::from_secs(10 * 60);

/// Seconds since an RFC 3339 time; `None` when it does not parse.
fn age_secs(at: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()?;
    Some((time::OffsetDateTime::now_utc() - t).whole_seconds())
}

fn is_recent(at: &str) -> bool {
    age_secs(at).is_some_and(|s| s < RECENT.as_secs() as i64)
}

/// Whether a setup step (not teardown) changed something recently, later than the last teardown.
fn setup_was_recent(doc: &StateDoc) -> bool {
    let Ok(Some(steps)) = doc.get(keys::STEPS) else {
        return false;
    };
    let last_teardown = steps
        .get("teardown")
        .and_then(|t| t["at"].as_str())
        .and_then(age_secs);
    steps.iter().any(|(tool, s)| {
        tool != "teardown"
            && s["changed"] == Value::Bool(true)
            && s["at"].as_str().and_then(age_secs).is_some_and(|age| {
                age < RECENT.as_secs() as i64 && last_teardown.is_none_or(|t| age < t)
            })
    })
}

fn recently_removed(doc: &StateDoc) -> Vec<(String, String)> {
    doc.get_value(keys::TEARDOWN_REMOVED.path())
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r["at"].as_str().is_some_and(is_recent))
        .filter_map(|r| {
            Some((
                r["kind"].as_str()?.to_string(),
                r["id"].as_str()?.to_ascii_lowercase(),
            ))
        })
        .collect()
}

impl Input {
    pub(crate) fn read(ctx: &Ctx, cli: &Cli) -> Result<Input> {
        let doc = &ctx.doc;
        let str_of = |k: DocKey<keys::Str>| -> Result<Option<String>> {
            Ok(doc
                .get(k)?
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string))
        };
        let doc_setup = SetupId::of_doc(doc)?;
        let setup = match (cli.setup_id.as_deref().and_then(SetupId::parse), doc_setup) {
            (Some(f), Some(d)) if f != d => {
                return Err(s2s_core::Error::usage(format!(
                    "--setup-id {f} names another setup than the state document's setup.id {d}"
                ))
                .with_hint("a document belongs to one connection: pass the document of the setup to remove"));
            }
            (Some(s), _) | (None, Some(s)) => Some(s),
            (None, None) => None,
        };
        let mut role_ids = Vec::new();
        let mut roles_added = Vec::new();
        let mut role_names = cli.roles.clone();
        for r in doc.get(keys::DYNAMICS_ROLES)?.into_iter().flatten() {
            let Some(id) = r["id"].as_str().map(str::to_ascii_lowercase) else {
                continue;
            };
            if r["added"] == Value::Bool(true) {
                roles_added.push(id.clone());
            }
            if cli.roles.is_empty() {
                role_ids.push(id);
                if let Some(n) = r["name"].as_str() {
                    role_names.push(n.to_string());
                }
            }
        }
        if cli.roles.is_empty() {
            role_names.push(s2s_dataverse::MARKETO_SYNC_ROLE.to_string());
        }
        let config = match (
            str_of(keys::MARKETO_CONFIG_ENTITY_SET)?,
            doc.get(keys::MARKETO_CONFIG_RECORD_ID)?,
            str_of(keys::MARKETO_CONFIG_USER_LOOKUP)?,
            str_of(keys::MARKETO_CONFIG_NAV_PROPERTY)?,
        ) {
            (Some(entity_set), Some(record_id), Some(lookup), Some(nav_property)) => {
                Some(ConfigNames {
                    entity_set,
                    record_id,
                    lookup: lookup.to_ascii_lowercase(),
                    nav_property,
                })
            }
            _ => None,
        };
        let previous_user = doc
            .get(keys::MARKETO_CONFIG_PREVIOUS_USER_ID)?
            .map(|id| -> Result<(String, String)> {
                let label =
                    str_of(keys::MARKETO_CONFIG_PREVIOUS_USER)?.unwrap_or_else(|| id.clone());
                Ok((id, label))
            })
            .transpose()?;
        let mut sync_filter_in_doc = false;
        let sync_entities = if !cli.entities.is_empty() {
            unique(&cli.entities)
        } else {
            let from_doc: Vec<String> = doc
                .get(keys::SYNC_FILTER_ENTITIES)?
                .into_iter()
                .flatten()
                .filter_map(|e| e["entity"].as_str())
                .filter_map(|e| entity_logical_name(e).ok())
                .collect();
            if from_doc.is_empty() {
                vec!["lead".to_string(), "contact".to_string()]
            } else {
                sync_filter_in_doc = true;
                unique(&from_doc)
            }
        };
        let input = Input {
            setup,
            object_id: doc.get(keys::APP_OBJECT_ID)?,
            client_id: match &cli.client_id {
                Some(c) => Some(c.clone()),
                None => match doc.get(keys::APP_CLIENT_ID)? {
                    Some(c) => Some(c),
                    None => doc.get(keys::TEARDOWN_CLIENT_ID)?,
                },
            },
            unique_name: str_of(keys::APP_UNIQUE_NAME)?,
            deleted_object_id: doc.get(keys::TEARDOWN_APPLICATION_OBJECT_ID)?,
            // register-app marks adoption with app.adopted; earlier versions only recorded
            // app.unique_name as null (an adopted app has no key of ours).
            adopted: doc
                .get_value(keys::APP_ADOPTED.path())
                .and_then(Value::as_bool)
                == Some(true)
                || doc.get_value(keys::APP_UNIQUE_NAME.path()) == Some(&Value::Null),
            key_ids: [
                doc.get(keys::SECRET_KEY_ID)?,
                doc.get(keys::SECRET_PREVIOUS_KEY_ID)?,
            ]
            .into_iter()
            .flatten()
            .map(|k| k.to_ascii_lowercase())
            .collect(),
            secret_sha256: str_of(keys::SECRET_SHA256)?.map(|s| s.to_ascii_lowercase()),
            sp_id: doc.get(keys::APP_SERVICE_PRINCIPAL_ID)?,
            secret_file: match &cli.secret_file {
                Some(f) => Some(f.clone()),
                // Relative to the --state file's folder, as make-secret records it.
                None => str_of(keys::SECRET_FILE)?.map(|f| ctx.resolve_doc_path(Path::new(&f))),
            },
            policy_id: doc.get(keys::HRD_POLICY_POLICY_ID)?,
            user_id: doc.get(keys::DYNAMICS_APPLICATION_USER_ID)?,
            user_created: doc.get(keys::DYNAMICS_APPLICATION_USER_CREATED)?,
            role_ids,
            roles_added,
            role_names: unique(&role_names),
            consent_created: doc.get(keys::CONSENT_CREATED)? == Some(true),
            config,
            previous_user,
            sync_entities,
            sync_filter_in_doc,
            fresh_setup: setup_was_recent(doc),
            recently_removed: recently_removed(doc),
        };
        if input.object_id.is_none()
            && input.client_id.is_none()
            && input.unique_name.is_none()
            && input.sp_id.is_none()
            && input.user_id.is_none()
        {
            return Err(s2s_core::config::missing(
                "something that names the app to remove",
                "--client-id",
                &format!(
                    "{} (or {}, {})",
                    keys::APP_CLIENT_ID,
                    keys::APP_OBJECT_ID,
                    keys::APP_UNIQUE_NAME
                ),
            ));
        }
        Ok(input)
    }

    /// Reads an object the document names: once, or — right after the setup wrote — until it
    /// shows up or [`REPLICATION_WINDOW`] passes (graph.md §7.4: a new object can answer 404 on
    /// another replica), so a teardown run straight after the setup does not leave it behind.
    pub(crate) async fn read_named<T, F, Fut>(
        &self,
        ctx: &Ctx,
        what: &str,
        mut read: F,
    ) -> Result<Option<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        if self.fresh_setup {
            visible_within(
                ctx.http.deadline(),
                REPLICATION_WINDOW,
                what,
                ctx.reporter(),
                read,
            )
            .await
        } else {
            read().await
        }
    }

    /// Removed by a teardown a moment ago: gone, even if a replica still lists it.
    pub(crate) fn was_removed(&self, kind: &str, id: &str) -> bool {
        self.recently_removed
            .iter()
            .any(|(k, i)| k == kind && i.eq_ignore_ascii_case(id))
    }

    /// Whether this setup's mark is in a description.
    pub(crate) fn marks_description(&self, text: &str) -> bool {
        self.setup
            .as_ref()
            .is_some_and(|s| s.marks_description(text))
    }

    /// Whether this setup's mark is in a client secret's display name.
    pub(crate) fn marks_name(&self, name: &str) -> bool {
        self.setup.as_ref().is_some_and(|s| s.marks_name(name))
    }
}

/// Says that a just-removed object is still listed, and that nothing is sent for it.
pub(crate) fn still_replicating(ctx: &Ctx, what: &str) {
    ctx.say(&format!(
        "{what} was removed by the last teardown; Entra still lists it while the deletion replicates, so nothing is sent"
    ));
}
