//! The removals: what each one says (plan, dry run, done), how it is sent, and what it changes in
//! the document. Every step was decided in `plan.rs` from the live objects; nothing is judged
//! here.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use s2s_core::keys::{self, DocKey};
use s2s_core::{Ctx, Error, Result, StateDoc};
use s2s_dataverse::{Dataverse, SYNC_FILTER_FIELD, Written};
use s2s_graph::{Application, Graph, HrdPolicy, PermissionGrant, ServicePrincipal};

use crate::explain_graph;
use crate::input::ConfigNames;

/// One removal, in the order they run.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    DeleteColumn {
        entity: String,
        metadata_id: String,
    },
    PublishEntities(Vec<String>),
    ClearMarketoUser {
        config: ConfigNames,
        user_id: String,
    },
    /// `--restore-sync-user`: "Marketo User" back to the user configure-marketo replaced.
    RestoreMarketoUser {
        config: ConfigNames,
        user_id: String,
        label: String,
    },
    RemoveRole {
        user_id: String,
        role_id: String,
        name: String,
    },
    DisableUser {
        user_id: String,
        label: String,
    },
    UnassignPolicy {
        sp_id: String,
        policy: HrdPolicy,
        /// Other service principals use it: it stays after the unassignment.
        kept_for: usize,
    },
    DeletePolicy(HrdPolicy),
    /// A shared policy loses this setup's mark (its description without it).
    UnmarkPolicy {
        policy: HrdPolicy,
        description: String,
    },
    DeleteGrant(PermissionGrant),
    DeleteServicePrincipal {
        sp: ServicePrincipal,
        restore: String,
    },
    /// A shared app's service principal loses this setup's tag (`tags` without it).
    UntagServicePrincipal {
        sp: ServicePrincipal,
        tags: Vec<String>,
    },
    DeleteApplication {
        app: Application,
        restore: String,
        /// The service principal deleted before it: restored separately, after the app
        /// (Learn: directory-deleteditems-restore — restoring an application does not restore
        /// its service principal).
        sp_restore: Option<String>,
    },
    /// A shared app loses this setup's tag (`tags` without it).
    UntagApplication {
        app: Application,
        tags: Vec<String>,
    },
    DeleteSecretFile(PathBuf),
    /// A client secret with the setup's mark, on an app that stays (adopted or shared).
    RemovePassword {
        app_object_id: String,
        key_id: String,
        hint: String,
        name: String,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Tense {
    Plan,
    DryRun,
    Done,
}

impl Step {
    /// (verb, past tense, object, note) for the plan line and the done line.
    pub(crate) fn words(&self) -> (&'static str, &'static str, String, Option<String>) {
        match self {
            Step::DeleteColumn { entity, .. } => (
                "delete",
                "deleted",
                format!("the sync-filter column {SYNC_FILTER_FIELD} on {entity} and all its values"),
                None,
            ),
            Step::PublishEntities(e) => ("publish", "published", e.join(", "), None),
            Step::ClearMarketoUser { config, user_id } => (
                "clear",
                "cleared",
                format!(
                    "\"Marketo User\" of the Marketo configuration record ({}), which pointed at the application user {user_id}",
                    config.record_id
                ),
                None,
            ),
            Step::RestoreMarketoUser {
                config,
                user_id,
                label,
            } => (
                "point",
                "pointed",
                format!(
                    "\"Marketo User\" of the Marketo configuration record ({}) back at {label} ({user_id}), the user before this setup",
                    config.record_id
                ),
                Some(format!(
                    "in Marketo (Admin > CRM > Microsoft Dynamics), enter {label}'s credentials again: the sync pauses until then"
                )),
            ),
            Step::RemoveRole { name, role_id, .. } => (
                "remove",
                "removed",
                format!("role \"{name}\" ({role_id}) from the application user"),
                None,
            ),
            Step::DisableUser { label, .. } => (
                "disable",
                "disabled",
                format!("application user {label}"),
                Some(
                    "Dataverse keeps users for audit, so it stays listed as disabled (delete it in the Power Platform admin center if your policy requires)"
                        .into(),
                ),
            ),
            Step::UnassignPolicy {
                policy, kept_for, ..
            } => (
                "unassign",
                "unassigned",
                format!(
                    "Home Realm Discovery policy {} from the app's service principal",
                    policy_label(policy)
                ),
                (*kept_for > 0).then(|| {
                    format!(
                        "the policy itself is kept: {kept_for} other service principal(s) use it"
                    )
                }),
            ),
            Step::DeletePolicy(p) => (
                "delete",
                "deleted",
                format!("Home Realm Discovery policy {}", policy_label(p)),
                None,
            ),
            Step::UnmarkPolicy { policy, .. } => (
                "remove",
                "removed",
                format!(
                    "this setup's mark from Home Realm Discovery policy {} (another setup of the app still uses it)",
                    policy_label(policy)
                ),
                None,
            ),
            Step::DeleteGrant(g) => (
                "delete",
                "deleted",
                format!(
                    "the {} consent grant {} (scope \"{}\") to resource {}",
                    match g.consent_type.as_deref() {
                        Some("AllPrincipals") => "admin",
                        _ => "user",
                    },
                    g.id,
                    g.scope.as_deref().unwrap_or("").trim(),
                    g.resource_id
                ),
                None,
            ),
            Step::DeleteServicePrincipal { sp, .. } => (
                "delete",
                "deleted",
                format!("service principal {}", sp.label()),
                None,
            ),
            Step::UntagServicePrincipal { sp, .. } => (
                "remove",
                "removed",
                format!(
                    "this setup's tag from service principal {} (another setup still uses the app)",
                    sp.label()
                ),
                None,
            ),
            Step::DeleteApplication {
                app,
                restore,
                sp_restore,
            } => (
                "delete",
                "deleted",
                format!(
                    "app registration \"{}\" (client id {}, object id {})",
                    app.display_name.as_deref().unwrap_or(""),
                    app.app_id,
                    app.id
                ),
                Some(restore_note(restore, sp_restore.as_deref())),
            ),
            Step::UntagApplication { app, .. } => (
                "remove",
                "removed",
                format!(
                    "this setup's tag from app registration \"{}\" (client id {}); another setup still uses it, so it stays",
                    app.display_name.as_deref().unwrap_or(""),
                    app.app_id
                ),
                None,
            ),
            Step::DeleteSecretFile(p) => (
                "delete",
                "deleted",
                format!("the secret file {}", p.display()),
                None,
            ),
            Step::RemovePassword {
                key_id, hint, name, ..
            } => (
                "remove",
                "removed",
                format!("client secret {key_id} ({name:?}, hint {hint}…) that this setup added"),
                None,
            ),
        }
    }

    pub(crate) fn line(&self, tense: Tense) -> String {
        let (verb, past, object, note) = self.words();
        let head = match tense {
            Tense::Plan => format!("will {verb} {object}"),
            Tense::DryRun => format!("dry run: would {verb} {object}"),
            Tense::Done => format!("{past} {object}"),
        };
        match note {
            Some(n) => format!("{head}; {n}"),
            None => head,
        }
    }

    /// Whether the step counts as a removal in the summary (a publish or a re-pointed lookup is
    /// part of one, not an object removed).
    pub(crate) fn is_removal(&self) -> bool {
        !matches!(
            self,
            Step::PublishEntities(_) | Step::RestoreMarketoUser { .. }
        )
    }

    /// Whether, after it, Marketo's stored credentials no longer work.
    pub(crate) fn ends_the_connection(&self) -> bool {
        matches!(
            self,
            Step::DeleteApplication { .. }
                | Step::UntagApplication { .. }
                | Step::RemovePassword { .. }
                | Step::DisableUser { .. }
                | Step::DeleteServicePrincipal { .. }
        )
    }
}

/// Both restores, in the order Entra needs them (Learn: directory-deleteditems-restore).
pub(crate) fn restore_note(app: &str, sp: Option<&str>) -> String {
    match sp {
        Some(sp) => format!(
            "Entra keeps both restorable for 30 days; restore the app first, then its service principal (restoring the app \
             does not bring the service principal back): {}",
            restore_command(app, Some(sp))
        ),
        None => format!(
            "Entra keeps deleted apps restorable for 30 days: {}",
            restore_command(app, None)
        ),
    }
}

/// `az rest --method POST --url <app restore>` then the same for the service principal.
pub(crate) fn restore_command(app: &str, sp: Option<&str>) -> String {
    let one = |url: &str| format!("az rest --method POST --url {url}");
    match sp {
        Some(sp) => format!("{} && {}", one(app), one(sp)),
        None => one(app),
    }
}

/// Sends one removal; `Ok(true)` when it was done (not planned), including "was already gone".
pub(crate) async fn execute(
    ctx: &Ctx,
    g: &Graph<'_>,
    dv: Option<&Dataverse<'_>>,
    step: &Step,
) -> Result<bool> {
    let resume = "re-run teardown: what is gone stays gone, and it continues from there";
    let need_dv =
        || dv.ok_or_else(|| Error::internal("a Dataverse step was planned without an org"));
    let r = match step {
        Step::DeleteColumn {
            entity,
            metadata_id,
        } => need_dv()?
            .delete_attribute(entity, metadata_id)
            .await
            .map(|w| !w.is_planned()),
        Step::PublishEntities(e) => need_dv()?
            .publish_entities(e)
            .await
            .map(|w| !w.is_planned()),
        Step::ClearMarketoUser { config, .. } => need_dv()?
            .clear_lookup(&config.entity_set, &config.record_id, &config.nav_property)
            .await
            .map(|w| !w.is_planned()),
        Step::RestoreMarketoUser {
            config, user_id, ..
        } => need_dv()?
            .set_lookup(
                &config.entity_set,
                &config.record_id,
                &config.nav_property,
                "systemusers",
                user_id,
            )
            .await
            .map(|w| !w.is_planned()),
        Step::RemoveRole {
            user_id, role_id, ..
        } => need_dv()?
            .disassociate_role(user_id, role_id)
            .await
            .map(|w| !w.is_planned()),
        Step::DisableUser { user_id, .. } => need_dv()?
            .disable_user(user_id)
            .await
            .map(|w| matches!(w, Written::Done(()))),
        Step::UnassignPolicy { sp_id, policy, .. } => g
            .unassign_hrd_policy(sp_id, &policy.id)
            .await
            .map_err(explain_graph),
        Step::DeletePolicy(p) => g.delete_hrd_policy(&p.id).await.map_err(explain_graph),
        Step::UnmarkPolicy {
            policy,
            description,
        } => g
            .update_hrd_policy(&policy.id, json!({ "description": description }))
            .await
            .map_err(explain_graph),
        Step::DeleteGrant(gr) => g.delete_grant(&gr.id).await.map_err(explain_graph),
        Step::DeleteServicePrincipal { sp, .. } => g
            .delete_service_principal(&sp.id)
            .await
            .map_err(explain_graph),
        Step::UntagServicePrincipal { sp, tags } => g
            .update_service_principal(&sp.id, json!({ "tags": tags }))
            .await
            .map_err(explain_graph),
        Step::DeleteApplication { app, .. } => {
            g.delete_application(&app.id).await.map_err(explain_graph)
        }
        Step::UntagApplication { app, tags } => g
            .update_application(&app.id, json!({ "tags": tags }))
            .await
            .map_err(explain_graph),
        Step::DeleteSecretFile(path) => delete_secret_file(ctx, path),
        Step::RemovePassword {
            app_object_id,
            key_id,
            ..
        } => g
            .remove_password(app_object_id, key_id)
            .await
            .map_err(explain_graph),
    };
    r.map_err(|e| {
        let (verb, _, object, _) = step.words();
        let e = e.context(format!("trying to {verb} {object}"));
        if e.hint.is_none() {
            e.with_hint(resume)
        } else {
            e
        }
    })
}

fn delete_secret_file(ctx: &Ctx, path: &Path) -> Result<bool> {
    if ctx.dry_run() {
        return Ok(false);
    }
    match std::fs::remove_file(path) {
        Ok(()) => {
            ctx.http.count_local_write();
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::internal(format!(
            "cannot delete {}: {e}",
            path.display()
        ))),
    }
}

/// Removes the entries of `key` (an array of objects) whose `field` equals `id`; the key goes
/// when nothing is left.
fn drop_entry(doc: &mut StateDoc, key: DocKey<keys::Array>, field: &str, id: &str) {
    let left: Vec<Value> = doc
        .get(key)
        .ok()
        .flatten()
        .map(|a| {
            a.iter()
                .filter(|e| {
                    !e[field]
                        .as_str()
                        .is_some_and(|v| v.eq_ignore_ascii_case(id))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if left.is_empty() {
        doc.remove(key);
    } else {
        doc.set(key, left);
    }
}

/// The document after a removal: the keys of what is gone go, and `teardown.removed` says what.
pub(crate) fn record(doc: &mut StateDoc, step: &Step, client_id: Option<&str>) {
    let (kind, id, name): (&str, String, Option<String>) = match step {
        Step::DeleteColumn { entity, .. } => {
            drop_entry(doc, keys::SYNC_FILTER_ENTITIES, "entity", entity);
            if doc.get_value(keys::SYNC_FILTER_ENTITIES.path()).is_none() {
                doc.remove(keys::SYNC_FILTER);
            }
            (
                "sync_filter_column",
                format!("{entity}.{SYNC_FILTER_FIELD}"),
                None,
            )
        }
        Step::PublishEntities(_) => return,
        Step::ClearMarketoUser { config, .. } => {
            doc.remove(keys::MARKETO_CONFIG_SYNC_USER_ID);
            ("marketo_user_lookup", config.record_id.clone(), None)
        }
        Step::RestoreMarketoUser {
            config,
            user_id,
            label,
        } => {
            doc.set(keys::MARKETO_CONFIG_SYNC_USER_ID, user_id);
            doc.remove(keys::MARKETO_CONFIG_PREVIOUS_USER_ID);
            doc.remove(keys::MARKETO_CONFIG_PREVIOUS_USER);
            (
                "marketo_user_restored",
                config.record_id.clone(),
                Some(label.clone()),
            )
        }
        Step::RemoveRole { role_id, name, .. } => {
            drop_entry(doc, keys::DYNAMICS_ROLES, "id", role_id);
            ("role_assignment", role_id.clone(), Some(name.clone()))
        }
        Step::DisableUser { user_id, .. } => {
            doc.set(keys::DYNAMICS_APPLICATION_USER_DISABLED, true);
            ("application_user_disabled", user_id.clone(), None)
        }
        Step::UnassignPolicy {
            policy, kept_for, ..
        } => {
            if *kept_for > 0 {
                doc.set(keys::HRD_POLICY_STATUS, "unassigned");
                doc.set(keys::HRD_POLICY_POLICY_ID, &policy.id);
            }
            (
                "hrd_policy_assignment",
                policy.id.clone(),
                policy.display_name.clone(),
            )
        }
        Step::DeletePolicy(p) => {
            doc.remove(keys::HRD_POLICY);
            ("hrd_policy", p.id.clone(), p.display_name.clone())
        }
        Step::UnmarkPolicy { policy, .. } => {
            doc.remove(keys::HRD_POLICY);
            (
                "hrd_policy_mark",
                policy.id.clone(),
                policy.display_name.clone(),
            )
        }
        Step::DeleteGrant(g) => {
            doc.remove(keys::CONSENT);
            ("oauth2_permission_grant", g.id.clone(), g.scope.clone())
        }
        Step::DeleteServicePrincipal { sp, restore } => {
            doc.remove(keys::APP_SERVICE_PRINCIPAL_ID);
            doc.set(keys::TEARDOWN_SERVICE_PRINCIPAL_ID, &sp.id);
            doc.set(
                keys::TEARDOWN_RESTORE_COMMAND,
                restore_command(restore, None),
            );
            ("service_principal", sp.id.clone(), sp.display_name.clone())
        }
        Step::UntagServicePrincipal { sp, .. } => {
            doc.remove(keys::APP_SERVICE_PRINCIPAL_ID);
            (
                "service_principal_tag",
                sp.id.clone(),
                sp.display_name.clone(),
            )
        }
        Step::DeleteApplication {
            app,
            restore,
            sp_restore,
        } => {
            forget_app(doc, app);
            doc.set(
                keys::TEARDOWN_RESTORE_COMMAND,
                restore_command(restore, sp_restore.as_deref()),
            );
            ("application", app.id.clone(), app.display_name.clone())
        }
        Step::UntagApplication { app, .. } => {
            forget_app(doc, app);
            ("application_tag", app.id.clone(), app.display_name.clone())
        }
        Step::DeleteSecretFile(p) => {
            doc.remove(keys::SECRET);
            ("secret_file", p.display().to_string(), None)
        }
        Step::RemovePassword { key_id, .. } => {
            for k in [keys::SECRET_KEY_ID, keys::SECRET_PREVIOUS_KEY_ID] {
                if doc.text(k).is_some_and(|v| v.eq_ignore_ascii_case(key_id)) {
                    doc.remove(k);
                }
            }
            ("password_credential", key_id.clone(), None)
        }
    };
    if let Some(c) = client_id {
        doc.set(keys::TEARDOWN_CLIENT_ID, c);
    }
    let mut removed = doc
        .get(keys::TEARDOWN_REMOVED)
        .ok()
        .flatten()
        .cloned()
        .unwrap_or_default();
    removed
        .push(json!({"kind": kind, "id": id, "name": name, "at": s2s_core::state::now_rfc3339()}));
    doc.set(keys::TEARDOWN_REMOVED, removed);
}

/// The app is no longer this setup's: its ids go (the credential went with it, or with the
/// setup's tag); only the local file may be left.
fn forget_app(doc: &mut StateDoc, app: &Application) {
    doc.remove(keys::APP_OBJECT_ID);
    doc.remove(keys::APP_CLIENT_ID);
    for k in [
        keys::SECRET_KEY_ID.any(),
        keys::SECRET_HINT.any(),
        keys::SECRET_EXPIRES_AT.any(),
        keys::SECRET_VALUE.any(),
    ] {
        doc.remove(k);
    }
    doc.set(keys::TEARDOWN_CLIENT_ID, &app.app_id);
    doc.set(keys::TEARDOWN_APPLICATION_OBJECT_ID, &app.id);
}

pub(crate) fn policy_label(p: &HrdPolicy) -> String {
    format!("\"{}\" ({})", p.display_name.as_deref().unwrap_or(""), p.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_keys_of_removed_objects_go_and_both_restores_are_named() {
        let mut doc = StateDoc::parse(
            r#"{"app":{"client_id":"c","object_id":"o","unique_name":"u","service_principal_id":"s"},
                "secret":{"key_id":"k","hint":"h","file":"f"},"consent":{"grant_id":"g"}}"#,
            "t",
        )
        .unwrap();
        let app = Application {
            id: "o".into(),
            app_id: "c".into(),
            display_name: Some("M".into()),
            ..Default::default()
        };
        let sp = ServicePrincipal {
            id: "s".into(),
            ..Default::default()
        };
        let sp_restore = "https://graph/v1.0/directory/deletedItems/s/restore".to_string();
        record(
            &mut doc,
            &Step::DeleteServicePrincipal {
                sp,
                restore: sp_restore.clone(),
            },
            Some("c"),
        );
        record(
            &mut doc,
            &Step::DeleteApplication {
                app,
                restore: "https://graph/v1.0/directory/deletedItems/o/restore".into(),
                sp_restore: Some(sp_restore),
            },
            Some("c"),
        );
        let v = doc.as_value();
        assert_eq!(v["app"], json!({"unique_name": "u"}));
        assert_eq!(v["secret"], json!({"file": "f"}));
        assert_eq!(v["teardown"]["client_id"], "c");
        assert_eq!(
            v["teardown"]["restore_command"],
            "az rest --method POST --url https://graph/v1.0/directory/deletedItems/o/restore \
             && az rest --method POST --url https://graph/v1.0/directory/deletedItems/s/restore"
        );
        assert_eq!(v["teardown"]["removed"][1]["kind"], "application");
    }
}
