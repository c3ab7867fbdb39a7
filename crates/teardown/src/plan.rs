//! Deciding every removal from what the live tenant shows, before any write: the Dataverse part
//! (sync-filter columns, "Marketo User", roles, the application user) and the Entra part (HRD
//! policy, consent, service principal, app, client secrets). What is not removed is kept with
//! its reason, for the plan and the summary.

use serde_json::Value;

use s2s_core::setup::{SetupId, setups_in_description, setups_in_tags};
use s2s_core::{Ctx, Error, Kind, Result};
use s2s_dataverse::{Dataverse, SYNC_FILTER_FIELD, SystemUser, marketo_config};
use s2s_graph::{Application, Graph, HrdPolicy, PasswordCredential, ServicePrincipal};

use crate::discovery::{Admin, Owner};
use crate::explain_graph;
use crate::input::{ConfigNames, Input, still_replicating};
use crate::steps::{Step, policy_label};

/// What will be removed, and what is kept and why.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    pub kept: Vec<Kept>,
    /// What the admin should know at the end (e.g. who "Marketo User" was before the setup).
    pub notes: Vec<String>,
}

/// An object teardown found and leaves as it is.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub what: String,
    pub why: String,
}

impl Plan {
    pub(crate) fn keep(&mut self, what: impl Into<String>, why: impl Into<String>) {
        self.kept.push(Kept {
            what: what.into(),
            why: why.into(),
        });
    }
}

/// The application users teardown may act on: those of `client_id`, an app the tenant shows
/// is the setup's.
#[derive(Debug, Clone)]
pub(crate) struct Proof {
    pub client_id: String,
    /// The app is the setup's alone (its own, or deleted with only its mark): every
    /// application user of it in this org was made for this connection. Otherwise (a shared
    /// app, an adopted app's service principal the setup made) only the user and roles the
    /// document records as the setup's own (`dynamics.application_user_created`,
    /// `dynamics.roles[].added`).
    pub whole: bool,
}

/// The flags that change what is planned in Dataverse.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DvFlags {
    pub remove_sync_filter: bool,
    pub restore_sync_user: bool,
}

/// One application user and what of it is the setup's.
struct UserPlan {
    user: SystemUser,
    disable: bool,
    /// Role ids to remove (`None`: by the document's roles and names, as the setup's own app).
    roles_by_record: bool,
}

/// The Dataverse part, in the order the removals run: columns, "Marketo User", roles, users.
pub(crate) async fn plan_dataverse(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    input: &Input,
    flags: DvFlags,
    proof: Result<Proof, String>,
    admin: &Admin,
    plan: &mut Plan,
) -> Result<()> {
    // The users of the setup's app: never a person, never another app's user, never the
    // admin's own, whatever `dynamics.application_user_id` says.
    let mut users: Vec<UserPlan> = Vec::new();
    match &proof {
        Ok(p) => {
            let found = dv.application_users(&p.client_id).await?;
            if found.is_empty() {
                ctx.say(&format!(
                    "no application user for client id {} in {}",
                    p.client_id,
                    dv.org()
                ));
            }
            for u in found {
                let label = user_label(&u);
                if admin.is_own_user(&u.systemuserid) {
                    plan.keep(
                        format!("application user {label}"),
                        "it is the user this teardown signs in as (the admin's own)",
                    );
                    continue;
                }
                let recorded = input.user_created == Some(true)
                    && input
                        .user_id
                        .as_deref()
                        .is_some_and(|i| i.eq_ignore_ascii_case(&u.systemuserid));
                if !p.whole && !recorded && !records_roles_of(input, &u) {
                    plan.keep(
                        format!("application user {label}"),
                        "the setup did not create it (it was there before, or the document does not record \
                         dynamics.application_user_created), and its app is not the setup's alone",
                    );
                    continue;
                }
                users.push(UserPlan {
                    disable: p.whole || recorded,
                    roles_by_record: !p.whole,
                    user: u,
                });
            }
            if let Some(id) = &input.user_id {
                let listed = users
                    .iter()
                    .any(|u| u.user.systemuserid.eq_ignore_ascii_case(id))
                    || plan.kept.iter().any(|k| k.what.contains(id.as_str()));
                if !listed {
                    plan.keep(
                        format!("user {id} (dynamics.application_user_id)"),
                        format!(
                            "it is not the application user of client id {}; it is not touched",
                            p.client_id
                        ),
                    );
                }
            }
        }
        Err(why) => {
            if let Some(id) = &input.user_id {
                plan.keep(
                    format!("user {id} (dynamics.application_user_id)"),
                    format!("it is not touched: {why}"),
                );
            }
        }
    }
    let ours: Vec<String> = users
        .iter()
        .filter(|u| u.disable)
        .map(|u| u.user.systemuserid.to_ascii_lowercase())
        .collect();

    // Where "Marketo User" is, and whom it points at now.
    let config = match &input.config {
        Some(c) => Some(c.clone()),
        None if !ours.is_empty() || flags.remove_sync_filter => discover_config(ctx, dv).await?,
        None => None,
    };
    let current = match &config {
        Some(c) => read_marketo_user(ctx, dv, c).await?,
        None => None,
    };
    // Why the setup's sync-filter columns must stay: "Marketo User" is another connection's
    // user (the columns may be its sync filter), or nobody read it. The guard fails closed.
    let columns_blocked = match &current {
        Some(Some(u)) if !ours.contains(u) => Some(format!(
            "Marketo User in this org is another connection's user ({u}), whose sync filter it may be"
        )),
        Some(_) => None,
        None => Some(
            "\"Marketo User\" was not read (the Marketo configuration record was not found, or cannot be read), so \
             whether another connection's sync filter it is cannot be told; fix marketo_config.* in the document (or \
             check Settings > Marketo Config > Default in Dynamics) and run teardown --remove-sync-filter again"
                .to_string(),
        ),
    };

    // 1. The sync-filter columns (configure-marketo and assign-role ran before add-sync-filter).
    if flags.remove_sync_filter {
        plan_sync_filter(ctx, dv, input, columns_blocked.as_deref(), plan).await?;
    } else if input.sync_filter_in_doc {
        plan.keep(
            format!(
                "the sync-filter column {SYNC_FILTER_FIELD} on {}",
                input.sync_entities.join(", ")
            ),
            "it holds each record's sync choice (--remove-sync-filter deletes the columns this setup made)",
        );
    }

    // 2. "Marketo User" (configure-marketo ran after assign-role).
    if let (Some(config), Some(current)) = (&config, current) {
        plan_marketo_user(ctx, dv, input, flags, config, current, &ours, plan).await?;
    }

    // 3. Roles, then the users.
    for u in &users {
        plan_user(ctx, dv, input, u, plan).await?;
    }
    Ok(())
}

/// The document records roles this setup added to this very user.
fn records_roles_of(input: &Input, u: &SystemUser) -> bool {
    !input.roles_added.is_empty()
        && input
            .user_id
            .as_deref()
            .is_some_and(|i| i.eq_ignore_ascii_case(&u.systemuserid))
}

async fn plan_user(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    input: &Input,
    u: &UserPlan,
    plan: &mut Plan,
) -> Result<()> {
    let user = &u.user;
    let label = user_label(user);
    let held = match &user.systemuserroles_association {
        Some(r) => r.clone(),
        None => dv.user_roles(&user.systemuserid).await?,
    };
    let mut removing = 0;
    for role in held {
        let id = role.roleid.to_ascii_lowercase();
        let take = if u.roles_by_record {
            records_roles_of(input, user) && input.roles_added.contains(&id)
        } else {
            input.role_ids.contains(&id)
                || role
                    .name
                    .as_deref()
                    .is_some_and(|n| input.role_names.iter().any(|w| w.eq_ignore_ascii_case(n)))
        };
        if take {
            removing += 1;
            plan.steps.push(Step::RemoveRole {
                user_id: user.systemuserid.clone(),
                name: role.name.clone().unwrap_or_default(),
                role_id: role.roleid.clone(),
            });
        }
    }
    if removing == 0 {
        ctx.say(&format!(
            "application user {label} holds none of the roles {}",
            if u.roles_by_record {
                "this setup added".to_string()
            } else {
                input.role_names.join(", ")
            }
        ));
    }
    if !u.disable {
        plan.keep(
            format!("application user {label}"),
            "the setup did not create it (it was there before): only the roles this setup added go",
        );
    } else if user.is_disabled() {
        ctx.say(&format!(
            "application user {label} is already disabled (Dataverse keeps users for audit)"
        ));
    } else {
        plan.steps.push(Step::DisableUser {
            user_id: user.systemuserid.clone(),
            label,
        });
    }
    Ok(())
}

/// Where "Marketo User" is, when the document does not say (configure-marketo's output was lost,
/// e.g. a pipeline that failed after it): discovered as configure-marketo does, with the
/// default names (`s2s_dataverse::marketo_config`). Reads only. When it cannot be found — no
/// Marketo solution, other names — the user is told where to look, and the teardown goes on.
async fn discover_config(ctx: &Ctx, dv: &Dataverse<'_>) -> Result<Option<ConfigNames>> {
    let names = marketo_config::Names::default();
    let found = match marketo_config::discover(dv, &names).await {
        Ok(target) => marketo_config::find_record(dv, &target, &names.record_name)
            .await
            .map(|(record_id, _)| (target, record_id)),
        Err(e) => Err(e),
    };
    match found {
        Ok((target, record_id)) => {
            ctx.say(&format!(
                "the document has no marketo_config.* names; found the Marketo configuration record {record_id} \
                 (entity {}, lookup {})",
                target.entity, target.lookup
            ));
            Ok(Some(ConfigNames {
                entity_set: target.entity_set,
                record_id,
                lookup: target.lookup,
                nav_property: target.nav_property,
            }))
        }
        // Out of time or signed out: those end the run as everywhere else.
        Err(e) if matches!(e.kind, Kind::Timeout | Kind::Auth) => Err(e),
        Err(e) => {
            ctx.warn(&format!(
                "the document has no marketo_config.* names and the Marketo configuration was not found ({e}), so \
                 \"Marketo User\" is not checked: if it points at this application user, clear it in Dynamics \
                 (Settings > Marketo Config > Default)"
            ));
            Ok(None)
        }
    }
}

/// Whom "Marketo User" points at (`Some(None)`: empty); `None` when the record cannot be read.
async fn read_marketo_user(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    config: &ConfigNames,
) -> Result<Option<Option<String>>> {
    // What is read (`_<lookup>_value`) and what would be cleared (`<nav_property>`) must be one
    // column (a custom lookup's navigation property is its schema name); a document pairing
    // them otherwise is not followed: nothing is checked, so nothing is cleared.
    if !config.nav_property.eq_ignore_ascii_case(&config.lookup) {
        ctx.warn(&format!(
            "the document's marketo_config names the lookup {} but the navigation property {} (another column): \
             \"Marketo User\" is not checked or cleared; if it points at this application user, clear it in \
             Dynamics (Settings > Marketo Config > Default)",
            config.lookup, config.nav_property
        ));
        return Ok(None);
    }
    let column = format!("_{}_value", config.lookup);
    let row = dv
        .record_if_named(&config.entity_set, &config.record_id, &column)
        .await?;
    let Some(row) = row else {
        ctx.warn(&format!(
            "the Marketo configuration record {} ({}, column {column}) cannot be read: \"Marketo User\" is not checked; \
             if it points at this application user, clear it in Dynamics (Settings > Marketo Config > Default)",
            config.record_id, config.entity_set
        ));
        return Ok(None);
    };
    Ok(Some(
        row.get(&column)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase),
    ))
}

/// Empties "Marketo User" only when it points at one of the setup's users; with
/// `--restore-sync-user` points it back at the user configure-marketo recorded as replaced.
#[allow(clippy::too_many_arguments)]
async fn plan_marketo_user(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    input: &Input,
    flags: DvFlags,
    config: &ConfigNames,
    current: Option<String>,
    ours: &[String],
    plan: &mut Plan,
) -> Result<()> {
    let field = format!(
        "\"Marketo User\" of the Marketo configuration record ({})",
        config.record_id
    );
    let ours_now = current.as_ref().is_some_and(|c| ours.contains(c));
    if let Some((prev_id, label)) = &input.previous_user {
        if flags.restore_sync_user && (ours_now || current.is_none()) {
            match dv.system_user(prev_id).await? {
                Some(u) if !u.is_disabled() && !u.is_soft_deleted() => {
                    plan.steps.push(Step::RestoreMarketoUser {
                        config: config.clone(),
                        user_id: prev_id.to_ascii_lowercase(),
                        label: label.clone(),
                    });
                    return Ok(());
                }
                _ => plan.keep(
                    format!("{label} ({prev_id}), the Marketo User before this setup"),
                    "--restore-sync-user: that user no longer exists or is disabled in this org, so Marketo User is not pointed back at it",
                ),
            }
        } else if !flags.restore_sync_user && (ours_now || current.is_none()) {
            plan.notes.push(format!(
                "before this setup, Marketo User was {label} ({prev_id}); to point it back (Marketo then needs that \
                 user's credentials again), run: {}",
                ctx.command("teardown", &["--restore-sync-user", "--yes"])
            ));
        }
    } else if flags.restore_sync_user {
        ctx.warn("--restore-sync-user: the document records no earlier Marketo User (marketo_config.previous_user_id)");
    }
    match current {
        None => ctx.say(&format!("{field} is empty")),
        Some(c) if ours.contains(&c) => plan.steps.push(Step::ClearMarketoUser {
            config: config.clone(),
            user_id: c,
        }),
        Some(other) => plan.keep(
            field,
            format!("it points at user {other}, not at this setup's application user"),
        ),
    }
    Ok(())
}

/// With `--remove-sync-filter`: each entity's Boolean `new_synctomkto` that carries this
/// setup's mark (add-sync-filter puts it in the description), then one publish. A column
/// without the mark — hand-made, another setup's, an earlier version's — is kept with its
/// values; so is every column while "Marketo User" is another connection's user (that
/// connection's sync filter may be these columns) or could not be read (`blocked` says why).
async fn plan_sync_filter(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    input: &Input,
    blocked: Option<&str>,
    plan: &mut Plan,
) -> Result<()> {
    let mut doomed = Vec::new();
    for entity in &input.sync_entities {
        let what = format!("the sync-filter column {SYNC_FILTER_FIELD} on {entity} and its values");
        match dv.attribute(entity, SYNC_FILTER_FIELD).await? {
            None => ctx.say(&format!(
                "{entity} has no sync-filter column {SYNC_FILTER_FIELD}: already deleted"
            )),
            Some(a) if !a.is_boolean() => plan.keep(
                what,
                format!("it is a {} column, not add-sync-filter's Two Options", a.type_name()),
            ),
            Some(a) if !input.marks_description(&a.description_text()) => plan.keep(
                what,
                "it carries no mark of this setup (made by hand, by another setup, or by an earlier add-sync-filter); \
                 if you want it and its values gone, delete it in Dynamics: Settings > Customizations > Customize the \
                 System > Entities > the entity > Fields, then publish",
            ),
            Some(_) if blocked.is_some() => plan.keep(what, blocked.unwrap_or_default()),
            Some(a) => match a.metadata_id {
                Some(id) => {
                    doomed.push(entity.clone());
                    plan.steps.push(Step::DeleteColumn {
                        entity: entity.clone(),
                        metadata_id: id,
                    });
                }
                None => {
                    return Err(Error::internal(format!(
                        "Dataverse answered the column {SYNC_FILTER_FIELD} on {entity} without its MetadataId"
                    )));
                }
            },
        }
    }
    if !doomed.is_empty() {
        ctx.warn(&format!(
            "--remove-sync-filter deletes {SYNC_FILTER_FIELD} on {} with every record's value: which records Marketo skips is lost for good",
            doomed.join(", ")
        ));
        plan.steps.push(Step::PublishEntities(doomed));
    }
    Ok(())
}

/// The Entra part for an app the tenant shows (`owner`): HRD policy, consent, service
/// principal, app (or this setup's tags on a shared one), and client secrets with the setup's
/// mark on an app that stays. Returns the credentials that go (for the secret file check).
pub(crate) async fn plan_entra(
    ctx: &Ctx,
    g: &Graph<'_>,
    input: &Input,
    app: &Application,
    owner: &Owner,
    sp: Option<&ServicePrincipal>,
    plan: &mut Plan,
) -> Result<Vec<PasswordCredential>> {
    let setup_tag = input.setup.as_ref().map(|s| s.tag()).unwrap_or_default();
    let (sp_ours, sp_others) = sp.map(|s| sp_marks(input, s)).unwrap_or_default();
    // An adopted app's service principal that this setup made goes; one several setups use
    // (each adopted the app) only loses this setup's tag, like a shared app's.
    let sp_goes = match owner {
        Owner::Own => sp.is_some(),
        Owner::Adopted => sp_ours && sp_others.is_empty(),
        Owner::Shared(_) | Owner::Foreign(_) => false,
    };
    let shared = matches!(owner, Owner::Shared(_))
        || (matches!(owner, Owner::Adopted) && sp_ours && !sp_others.is_empty());
    plan_hrd_policy(ctx, g, input, sp, sp_goes, shared, plan).await?;

    if let Some(sp) = sp {
        if sp_goes {
            // Filtered again here: only grants whose client is this service principal go.
            let grants = g
                .grants_of_client(&sp.id)
                .await
                .map_err(explain_graph)?
                .into_iter()
                .filter(|gr| gr.client_id.eq_ignore_ascii_case(&sp.id))
                .filter(|gr| {
                    let gone = input.was_removed("oauth2_permission_grant", &gr.id);
                    if gone {
                        still_replicating(ctx, &format!("consent grant {}", gr.id));
                    }
                    !gone
                })
                .collect::<Vec<_>>();
            if grants.is_empty() {
                ctx.say(&format!(
                    "service principal {} holds no consent grant",
                    sp.label()
                ));
            }
            plan.steps.extend(grants.into_iter().map(Step::DeleteGrant));
            plan.steps.push(Step::DeleteServicePrincipal {
                sp: sp.clone(),
                restore: g.restore_url(&sp.id),
            });
        } else if shared {
            plan.keep(
                format!("the consent grant(s) of service principal {}", sp.label()),
                "another setup of the shared app still uses them",
            );
            if let Some(tags) = s2s_graph::tags_without(&sp.tags, &setup_tag) {
                plan.steps.push(Step::UntagServicePrincipal {
                    sp: sp.clone(),
                    tags,
                });
            }
        } else if matches!(owner, Owner::Adopted) {
            let grant = if input.consent_created {
                " and its consent grant (consent.created says this setup made it, but a grant carries no mark: revoke it \
                 in Enterprise applications > the app > Permissions if nothing else needs it)"
            } else {
                " and its consent grant"
            };
            plan.keep(
                format!("service principal {}{grant}", sp.label()),
                "it does not carry this setup's mark: it was there before the setup adopted the app",
            );
        }
    }

    let app_label = format!(
        "app registration \"{}\" (client id {})",
        app.display_name.as_deref().unwrap_or(""),
        app.app_id
    );
    let mut dying: Vec<PasswordCredential> = Vec::new();
    match owner {
        Owner::Own => {
            // Its credentials go with it.
            dying.extend(app.password_credentials.iter().cloned());
            plan.steps.push(Step::DeleteApplication {
                app: app.clone(),
                restore: g.restore_url(&app.id),
                sp_restore: sp.filter(|_| sp_goes).map(|s| g.restore_url(&s.id)),
            });
        }
        Owner::Shared(others) => {
            dying.extend(plan_marked_secrets(input, app, plan));
            if let Some(tags) = s2s_graph::tags_without(&app.tags, &setup_tag) {
                plan.steps.push(Step::UntagApplication {
                    app: app.clone(),
                    tags,
                });
            }
            plan.keep(
                app_label,
                format!(
                    "setup(s) {} use it too: only this setup's tag and secrets go",
                    others
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        Owner::Adopted => {
            dying.extend(plan_marked_secrets(input, app, plan));
            plan.keep(
                app_label,
                "register-app adopted it (--client-id): the setup did not create it, so only what carries this setup's mark goes",
            );
        }
        Owner::Foreign(why) => plan.keep(app_label, why.clone()),
    }
    Ok(dying)
}

/// Whether a service principal carries this setup's tag, and the other setups whose tags it
/// carries.
pub(crate) fn sp_marks(input: &Input, sp: &ServicePrincipal) -> (bool, Vec<SetupId>) {
    let marks = setups_in_tags(&sp.tags);
    let ours = input.setup.as_ref().is_some_and(|s| marks.contains(s));
    let others = marks
        .into_iter()
        .filter(|m| input.setup.as_ref() != Some(m))
        .collect();
    (ours, others)
}

/// The Entra part when the app registration is gone: only the document's HRD policy may be left
/// (its service principal went with the app).
pub(crate) async fn plan_entra_without_app(
    ctx: &Ctx,
    g: &Graph<'_>,
    input: &Input,
    plan: &mut Plan,
) -> Result<()> {
    plan_hrd_policy(ctx, g, input, None, false, false, plan).await
}

/// The client secrets of an app that stays whose display name carries the setup's mark
/// (make-secret puts `[setup xxxxxxxx]` in it); the document's other key ids are kept, named.
fn plan_marked_secrets(
    input: &Input,
    app: &Application,
    plan: &mut Plan,
) -> Vec<PasswordCredential> {
    let mut going = Vec::new();
    for c in &app.password_credentials {
        let name = c.display_name.as_deref().unwrap_or("");
        if input.marks_name(name) {
            plan.steps.push(Step::RemovePassword {
                app_object_id: app.id.clone(),
                key_id: c.key_id.to_ascii_lowercase(),
                hint: c.hint.clone().unwrap_or_default(),
                name: name.to_string(),
            });
            going.push(c.clone());
        } else if input
            .key_ids
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&c.key_id))
        {
            plan.keep(
                format!("client secret {} ({name:?}) of the app", c.key_id),
                format!(
                    "its name carries no mark of this setup (made in the portal, or by an earlier make-secret); if Marketo \
                     used it, remove it in the portal (App registrations > the app > Certificates & secrets) or with: \
                     az ad app credential delete --id {} --key-id {}",
                    app.app_id, c.key_id
                ),
            );
        }
    }
    going
}

/// The HRD policies of the app's service principal, and the one the document names: only one
/// carrying this setup's mark is unassigned and deleted — when no other service principal uses
/// it. On a shared app's service principal (which stays) a policy only loses this setup's mark.
async fn plan_hrd_policy(
    ctx: &Ctx,
    g: &Graph<'_>,
    input: &Input,
    sp: Option<&ServicePrincipal>,
    sp_goes: bool,
    shared: bool,
    plan: &mut Plan,
) -> Result<()> {
    let mut candidates: Vec<(HrdPolicy, bool)> = Vec::new();
    if let Some(sp) = sp {
        for p in g.hrd_policies_of(&sp.id).await.map_err(explain_graph)? {
            candidates.push((p, true));
        }
    }
    if let Some(id) = &input.policy_id {
        if !candidates
            .iter()
            .any(|(p, _)| p.id.eq_ignore_ascii_case(id))
        {
            let found = input
                .read_named(ctx, "reading the Home Realm Discovery policy", || {
                    g.hrd_policy(id)
                })
                .await
                .map_err(explain_graph)?;
            match found {
                Some(p) => candidates.push((p, false)),
                None => ctx.say(&format!(
                    "Home Realm Discovery policy {id} no longer exists: already deleted"
                )),
            }
        }
    }
    for (policy, assigned_to_ours) in candidates {
        let label = format!("Home Realm Discovery policy {}", policy_label(&policy));
        if input.was_removed("hrd_policy", &policy.id) {
            still_replicating(ctx, &label);
            continue;
        }
        let description = policy.description.as_deref().unwrap_or("");
        if !input.marks_description(description) || policy.is_organization_default == Some(true) {
            plan.keep(
                label,
                format!(
                    "it carries no mark of this setup (another team's, made by hand, or by an earlier set-hrd-policy, \
                     which marks it on its next run){}",
                    if assigned_to_ours && sp_goes {
                        "; its assignment goes with the service principal"
                    } else {
                        ""
                    }
                ),
            );
            continue;
        }
        if shared && assigned_to_ours {
            let others = setups_in_description(description).len() > 1;
            match (others, &input.setup) {
                (true, Some(s)) => plan.steps.push(Step::UnmarkPolicy {
                    description: without_mark(description, &s.description_mark()),
                    policy,
                }),
                _ => plan.keep(
                    label,
                    "the shared app's service principal, which stays, still uses it",
                ),
            }
            continue;
        }
        let users = g
            .hrd_policy_applies_to(&policy.id)
            .await
            .map_err(explain_graph)?;
        let others = users
            .iter()
            .filter(|u| sp.is_none_or(|s| !u.eq_ignore_ascii_case(&s.id)))
            .count();
        match (assigned_to_ours, sp) {
            (true, Some(sp)) => plan.steps.push(Step::UnassignPolicy {
                sp_id: sp.id.clone(),
                policy: policy.clone(),
                kept_for: others,
            }),
            _ if others > 0 => {
                plan.keep(label, format!("{others} other service principal(s) use it"));
            }
            _ => {}
        }
        if others == 0 {
            plan.steps.push(Step::DeletePolicy(policy));
        }
    }
    Ok(())
}

/// `text` without one occurrence of `mark` (and the space before it).
fn without_mark(text: &str, mark: &str) -> String {
    let lower = text.to_ascii_lowercase();
    match lower.find(mark) {
        Some(i) => format!("{}{}", text[..i].trim_end(), &text[i + mark.len()..])
            .trim()
            .to_string(),
        None => text.to_string(),
    }
}

pub(crate) fn user_label(u: &SystemUser) -> String {
    let name = match (u.fullname.as_deref(), u.internalemailaddress.as_deref()) {
        (Some(f), Some(m)) if !m.is_empty() => format!("\"{f}\" <{m}>"),
        (Some(f), _) => format!("\"{f}\""),
        (None, Some(m)) => format!("<{m}>"),
        (None, None) => String::from("(unnamed)"),
    };
    format!("{name} (systemuserid {})", u.systemuserid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_taken_out_of_a_description_and_nothing_else() {
        let a = "[marketo-s2s setup 11111111-1111-1111-1111-111111111111]";
        let b = "[marketo-s2s setup 22222222-2222-2222-2222-222222222222]";
        assert_eq!(
            without_mark(&format!("Created by x {a} [run 1] {b}"), a),
            format!("Created by x [run 1] {b}")
        );
        assert_eq!(without_mark("nothing", a), "nothing");
    }
}
