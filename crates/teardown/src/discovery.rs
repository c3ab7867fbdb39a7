//! Finding the setup's objects by their keys, and deciding from the live tenant whose they are
//! (docs/architecture.md, "Ownership"): the app and its service principal by the setup's tag,
//! the admin's own app and user never.

use s2s_core::setup::{SetupId, setups_in_tags};
use s2s_core::{Ctx, Error, Result};
use s2s_dataverse::Dataverse;
use s2s_graph::{Application, Graph, ServicePrincipal};

use crate::explain_graph;
use crate::input::{Input, still_replicating};

/// Who runs this teardown: never touched, whatever the document says.
#[derive(Debug, Default)]
pub(crate) struct Admin {
    /// The client the Graph token was issued to (an app-only token: the admin's own app).
    pub client_id: Option<String>,
    /// The signed-in identity's own user in the org (`WhoAmI`), when an org is named.
    pub user_id: Option<String>,
}

impl Admin {
    pub(crate) async fn read(g: &Graph<'_>, dv: Option<&Dataverse<'_>>) -> Result<Admin> {
        let client_id = g
            .caller()
            .await?
            .and_then(|c| c.app_id)
            .map(|c| c.to_ascii_lowercase());
        let user_id = match dv {
            Some(dv) => Some(dv.who_am_i().await?.user_id.to_ascii_lowercase()),
            None => None,
        };
        Ok(Admin { client_id, user_id })
    }

    pub(crate) fn is_own_app(&self, client_id: &str) -> bool {
        self.client_id
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(client_id))
    }

    pub(crate) fn is_own_user(&self, user_id: &str) -> bool {
        self.user_id
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(user_id))
    }
}

/// Whose the app found is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Owner {
    /// It carries this setup's tag and no other: removed with everything of it.
    Own,
    /// It carries this setup's tag and other setups' too: only this setup's tag and what carries
    /// its mark go; the app stays for the others.
    Shared(Vec<SetupId>),
    /// register-app adopted it (a portal app; it carries no setup's tag): it stays; only what
    /// carries the setup's mark goes.
    Adopted,
    /// Not this setup's: nothing of it is touched.
    Foreign(String),
}

/// The app of the document, as the tenant shows it.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// No app named by the document could be read.
    None,
    Live(Box<Application>, Owner),
    /// Its registration is gone. `proven`: the deleted app (`directory/deletedItems`, kept 30
    /// days) carries this setup's tag and no other, so the client id still names the setup's
    /// application user.
    Gone {
        client_id: String,
        proven: bool,
    },
}

/// Whose `app` is, from its tags, the document's setup id and adoption record, and the admin.
pub(crate) fn judge(ctx: &Ctx, input: &Input, admin: &Admin, app: &Application) -> Owner {
    if admin.is_own_app(&app.app_id) {
        return Owner::Foreign(
            "it is the app this teardown signs in with (the admin's own); it is never touched"
                .into(),
        );
    }
    let marks = setups_in_tags(&app.tags);
    let list = |ids: &[SetupId]| {
        ids.iter()
            .map(SetupId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &input.setup {
        Some(s) if marks.contains(s) => {
            let others: Vec<SetupId> = marks.into_iter().filter(|m| m != s).collect();
            if others.is_empty() {
                Owner::Own
            } else {
                Owner::Shared(others)
            }
        }
        // Adopted means a portal app, which no setup tags: `app.adopted` on an app that carries
        // a setup's tag (another connection's) is the document's word against the tenant's.
        _ if input.adopted && marks.is_empty() => Owner::Adopted,
        Some(s) if !marks.is_empty() => Owner::Foreign(format!(
            "it carries the mark of setup {}, not this document's setup {s}: it is another connection's (one set up after this \
             document's, if it reused the name); nothing of it is touched",
            list(&marks)
        )),
        None if !marks.is_empty() => Owner::Foreign(format!(
            "it carries the mark of setup {} and this document names no setup (setup.id), so nothing proves it is this \
             connection's; if it is the one to remove (its document was lost), run: {}",
            list(&marks),
            ctx.command("teardown", &["--setup-id", marks[0].as_str(), "--dry-run"])
        )),
        _ => Owner::Foreign(format!(
            "it carries no setup mark (made by an earlier version of these tools, or in the portal); nothing of it is \
             touched. If it is this connection's app, mark it first — register-app marks the app an earlier version's \
             document names by object id and client id: {} — then run {}",
            ctx.command("register-app", &[]),
            ctx.command("teardown", &["--dry-run"])
        )),
    }
}

/// The app registration: by object id, else client id, else unique name (design.md's keys) —
/// the next key is tried when one finds nothing (after a teardown and a new setup the old ids
/// name a deleted app, the unique name the new one). Every key the document holds must then
/// agree with the app found, except those whose own lookup found nothing: teardown never
/// deletes another app because a document mixes two.
/// The admin's own client id is never looked up (nor waited for): it is never the setup's.
pub(crate) async fn find_application(
    ctx: &Ctx,
    g: &Graph<'_>,
    input: &Input,
    admin: &Admin,
) -> Result<Option<Application>> {
    let what = "reading the app registration";
    let mut missed: Vec<String> = Vec::new();
    let mut found = None;
    let client_id = input.client_id.as_ref().filter(|c| !admin.is_own_app(c));
    if let Some(id) = &input.object_id {
        match input
            .read_named(ctx, what, || g.application(id))
            .await
            .map_err(explain_graph)?
        {
            Some(a) => found = Some((a, format!("object id {id}"))),
            None => missed.push(format!("object id {id}")),
        }
    }
    if let (None, Some(c)) = (&found, client_id) {
        match input
            .read_named(ctx, what, || g.application_by_app_id(c))
            .await
            .map_err(explain_graph)?
        {
            Some(a) => found = Some((a, format!("client id {c}"))),
            None => missed.push(format!("client id {c}")),
        }
    }
    if let (None, Some(u)) = (&found, &input.unique_name) {
        // Read once: a unique name not seen yet is not waited for (the ids above were).
        match g
            .application_by_unique_name(u)
            .await
            .map_err(explain_graph)?
        {
            Some(a) => found = Some((a, format!("unique name {u:?}"))),
            None => missed.push(format!("unique name {u:?}")),
        }
    }
    let Some((app, key)) = found else {
        if !missed.is_empty() {
            ctx.say(&format!(
                "no app registration with {} in this tenant: already deleted",
                missed.join(" or ")
            ));
        }
        return Ok(None);
    };
    if input.was_removed("application", &app.id) {
        still_replicating(ctx, &format!("app registration {}", app.id));
        return Ok(None);
    }
    let looked_up = |k: &str| key.starts_with(k) || missed.iter().any(|m| m.starts_with(k));
    let mut disagree = Vec::new();
    if let Some(c) = &input.client_id {
        if admin.is_own_app(c) {
            return Err(Error::refused(format!(
                "the document (or --client-id) names client id {c}, the app this teardown signs in with, beside the app \
                 registration found by {key}"
            ))
            .with_hint("the state document mixes two apps: fix app.client_id (or --client-id) and re-run; nothing was removed"));
        }
        if !app.app_id.eq_ignore_ascii_case(c) && !looked_up("client id") {
            disagree.push(format!("client id {c} (the app's is {})", app.app_id));
        }
    }
    if let Some(o) = &input.object_id {
        if !app.id.eq_ignore_ascii_case(o) && !looked_up("object id") {
            disagree.push(format!("object id {o} (the app's is {})", app.id));
        }
    }
    if let Some(u) = &input.unique_name {
        let same = app
            .unique_name
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(u));
        if !same && !looked_up("unique name") {
            disagree.push(format!(
                "unique name {u:?} (the app's is {})",
                app.unique_name
                    .as_deref()
                    .map_or("none".to_string(), |a| format!("{a:?}"))
            ));
        }
    }
    if !disagree.is_empty() {
        return Err(Error::refused(format!(
            "the app registration found by {key} (\"{}\") does not match the document's {}",
            app.display_name.as_deref().unwrap_or(""),
            disagree.join(", ")
        ))
        .with_hint("the state document mixes two apps: fix app.object_id / app.client_id / app.unique_name (or pass --client-id) and re-run; nothing was removed"));
    }
    Ok(Some(app))
}

/// Whether the app the document names, now gone, was this setup's alone: its deleted item in
/// `directory/deletedItems` (Learn: directory-deleteditems-get; kept 30 days) carries this
/// setup's tag and no other, and its client id is the document's.
pub(crate) async fn gone_app_was_ours(g: &Graph<'_>, input: &Input) -> Result<Option<String>> {
    let Some(setup) = &input.setup else {
        return Ok(None);
    };
    for id in [&input.object_id, &input.deleted_object_id]
        .into_iter()
        .flatten()
    {
        if let Some(app) = g.deleted_application(id).await.map_err(explain_graph)? {
            let marks = setups_in_tags(&app.tags);
            let client_agrees = input
                .client_id
                .as_deref()
                .is_none_or(|c| c.eq_ignore_ascii_case(&app.app_id));
            if marks == [setup.clone()] && client_agrees {
                return Ok(Some(app.app_id.to_ascii_lowercase()));
            }
            return Ok(None);
        }
    }
    Ok(None)
}

/// The app's service principal: by the document's id (checked to belong to the app), else by
/// `appId`. Only the found app's: its `appId` must be the app's client id.
pub(crate) async fn find_service_principal(
    ctx: &Ctx,
    g: &Graph<'_>,
    input: &Input,
    app: &Application,
) -> Result<Option<ServicePrincipal>> {
    let what = "reading the app's service principal";
    let client = app.app_id.to_ascii_lowercase();
    let sp = match &input.sp_id {
        Some(id) => {
            input
                .read_named(ctx, what, || g.service_principal(id))
                .await
        }
        None => {
            input
                .read_named(ctx, what, || g.service_principal_by_app_id(&client))
                .await
        }
    }
    .map_err(explain_graph)?;
    if let Some(s) = &sp {
        if input.was_removed("service_principal", &s.id) {
            still_replicating(ctx, &format!("service principal {}", s.id));
            return Ok(None);
        }
    }
    match &sp {
        None => {
            ctx.say(&match &input.sp_id {
                Some(id) => format!("no service principal {id} in this tenant: already deleted"),
                None => format!(
                    "no service principal for client id {client} in this tenant: already deleted"
                ),
            });
            Ok(None)
        }
        Some(s) if !s.app_id.eq_ignore_ascii_case(&client) => Err(Error::refused(format!(
            "service principal {} belongs to client id {}, not to the app's {client}",
            s.id, s.app_id
        ))
        .with_hint("the state document mixes two apps: fix app.service_principal_id and re-run; nothing was removed")),
        Some(_) => Ok(sp),
    }
}
