//! `set-hrd-policy`: the runbook's "Azure AD federated with AD FS on-premises" step (Marketo S2S
//! step 2; graph.md §0, §5).
//!
//! Marketo signs in as the sync user with ROPC, which Entra ID refuses for users of a federated
//! domain unless a Home Realm Discovery policy with `AllowCloudPasswordValidation` lets Entra ID
//! check the password against the synced hash (graph.md §0, entra-docs v2-oauth-ropc.md). This
//! tool ensures such a policy — definition exactly
//! `{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true}}` (the wrapper is checked:
//! without it Entra silently ignores the policy, peers.md §9.10), `isOrganizationDefault` false —
//! exists and is assigned to the app's service principal.
//!
//! `--mode auto` (default) acts only when `GET /domains` lists a federated domain (graph.md §1.6)
//! and otherwise records `skipped-not-federated`; `--mode always` acts regardless; `--mode remove`
//! unassigns the policy (Microsoft's ROPC doc asks for that when password hash sync is turned off).
//!
//! What "already done" means (design.md, "Idempotency keys"): the policies assigned to the service
//! principal. A policy is reused by display name *and* identical definition rather than created
//! twice. Another HRD policy already assigned is refused (a service principal holds one, §5.3)
//! unless `--replace`.
//!
//! Lost answers: core retries a POST whose answer was lost, and a policy create is not unique,
//! so a retry could make a second policy. The create carries a per-run tag in its description.
//! After a failure that may have been committed, the policies with that tag are read back, one
//! is adopted and the others are deleted; after an answered create, the twin a retry may have
//! made is unassigned and goes with the sweep that follows the assignment. No duplicate remains.
//!
//! Ownership (docs/architecture.md): a policy this tool creates carries the setup's mark in its
//! description (`[marketo-s2s setup <setup.id>]`); teardown deletes only a policy with its mark
//! that no other service principal uses. Only a policy with this setup's mark is reused from the
//! unassigned ones; a policy of ours assigned to the app's service principal gets the mark when
//! an earlier version of this tool made it (its description says so) or another setup sharing
//! the app marked it; a hand-made one stays as it is, unmarked (teardown keeps it).
//!
//! `hrd_policy.status` is one of assigned, already-assigned, removed, skipped-not-federated,
//! not-assigned; `hrd_policy.replaced` lists the policies `--replace` unassigned
//! (`[{id, display_name}]`). The keys it reads and writes and its exit codes:
//! `set-hrd-policy --help` (rendered from `READS`, `WRITES` and core's exit-code table).
//!
//! Example:
//! ```text
//! register-app --name "Marketo Integration" | grant-consent | make-secret \
//!   | set-hrd-policy > state.json
//! ```

use std::time::Instant;

use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

use s2s_core::keys;
use s2s_core::retry::{Poll, REPLICATION_WINDOW, until_ready};
use s2s_core::setup::{SetupId, setups_in_description};
use s2s_core::{AnyKey, CommonArgs, Ctx, Error, Kind, Result};
use s2s_graph::{Graph, HrdPolicy, RunTag, ServicePrincipal, SpRef};

/// Placeholder in the `--dry-run` plan for the id only the create would return.
const PLANNED_POLICY: &str = "<id of the new policy>";

/// The one definition this tool ensures (graph.md §5.2; the fact lives in the graph client).
pub fn wanted_definition() -> Value {
    s2s_graph::cloud_password_validation_definition()
}

/// Ensure a Home Realm Discovery policy lets Entra ID check the Marketo sync user's password.
///
/// For tenants federated with AD FS: creates (or reuses) the policy
/// {"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true}} and assigns it to the app's
/// service principal, so Marketo's password sign-in (ROPC) is validated against the synced
/// password hash. Skipped, and said so, when the tenant has no federated domain.
#[derive(Debug, Parser)]
#[command(
    name = "set-hrd-policy",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
)]
pub struct Cli {
    /// Object id of the app's service principal [state: app.service_principal_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub service_principal_id: Option<String>,

    /// Application (client) id of the app, to look up its service principal when its id is not
    /// known [state: app.client_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub client_id: Option<String>,

    /// auto: only when the tenant has a federated domain; always: regardless; remove: unassign
    /// the policy (do this when password hash sync is turned off)
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,

    /// Display name of the policy, also how an existing one is found (with its definition)
    /// [default: "<app display name> - AllowCloudPasswordValidation"]
    #[arg(long, value_name = "NAME")]
    pub policy_name: Option<String>,

    /// Unassign another HRD policy already assigned to the service principal and assign ours
    #[arg(long)]
    pub replace: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Act only when GET /domains shows a federated domain
    Auto,
    /// Act whether or not a domain is federated
    Always,
    /// Unassign the policy from the service principal
    Remove,
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = "set-hrd-policy";
    const READS: &'static [AnyKey] = &[
        keys::SETUP_ID.any(),
        keys::APP_SERVICE_PRINCIPAL_ID.any(),
        keys::APP_CLIENT_ID.any(),
        keys::APP_DISPLAY_NAME.any(),
        keys::HRD_POLICY_POLICY_ID.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::HRD_POLICY_STATUS.any(),
        keys::HRD_POLICY_POLICY_ID.any(),
        keys::HRD_POLICY_DISPLAY_NAME.any(),
        keys::HRD_POLICY_REPLACED.any(),
    ];
    const EXAMPLES: &'static str = "\
register-app | grant-consent | make-secret | set-hrd-policy > state.json
set-hrd-policy --state marketo-s2s.state.json --mode remove   # password hash sync turned off";
    const HELP_NOTES: &'static str = "\
The app's service principal is app.service_principal_id, or looked up by app.client_id.
hrd_policy.replaced is written only with --replace. A policy it creates carries the setup's mark
in its description, so teardown deletes only its own. A re-run sends no write.";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[
        (0, "also skipped (no federated domain)"),
        (4, "also another HRD policy is assigned (see --replace)"),
    ];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    fn validate(&self) -> Result<()> {
        if let Some(n) = &self.policy_name {
            s2s_graph::check_display_name(n, "--policy-name", 256)?;
        }
        if self.replace && self.mode == Mode::Remove {
            return Err(Error::usage("--replace has no meaning with --mode remove"));
        }
        Ok(())
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

/// True when the definition is exactly ours ([`HrdPolicy::has_exactly_our_definition`]).
pub fn definition_is_ours(def: &[String]) -> bool {
    HrdPolicy {
        definition: def.to_vec(),
        ..Default::default()
    }
    .has_exactly_our_definition()
}

/// `AllowCloudPasswordValidation` set without the `HomeRealmDiscoveryPolicy` wrapper: Entra
/// ignores such a policy (peers.md §9.10, docs bug #103443).
fn lacks_wrapper(def: &[String]) -> bool {
    def.iter().any(|d| {
        serde_json::from_str::<Value>(d)
            .is_ok_and(|v| v.get("AllowCloudPasswordValidation").is_some())
    })
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    // All input is checked before the first request.
    let sp_ref = SpRef::from_flags_or_doc(
        cli.service_principal_id.as_deref(),
        cli.client_id.as_deref(),
        &ctx.doc,
    )?;
    let doc_name = ctx.doc.get(keys::APP_DISPLAY_NAME)?.map(str::to_string);
    let doc_policy = ctx.doc.get(keys::HRD_POLICY_POLICY_ID)?;
    let setup = SetupId::of_doc(&ctx.doc)?;
    let setup = setup.as_ref();

    let g = Graph::new(&ctx.http);
    if cli.mode == Mode::Auto {
        let federated = g
            .federated_domains()
            .await
            .map_err(|e| s2s_graph::needs::explain_forbidden(e, &s2s_graph::needs::READ_DOMAINS))?;
        if federated.is_empty() {
            ctx.say("no federated domain in this tenant: Entra ID checks passwords itself, no Home Realm Discovery policy is needed (--mode always sets it anyway)");
            set_status(&mut ctx.doc, "skipped-not-federated", None);
            return Ok(());
        }
        ctx.say(&format!(
            "federated domain(s) {}: Marketo's password sign-in needs a Home Realm Discovery policy",
            federated.join(", ")
        ));
    }

    // The service principal, waiting out replication right after `register-app` (graph.md §7.4).
    // When the document names it — the id it is keyed by and its display name, all this tool
    // would read it for — its assigned policies are read straight away: that list answers 404
    // for a service principal that does not exist, so the check is not lost.
    let (sp, assigned) = match known_service_principal(&sp_ref, &ctx.doc, doc_name.as_deref())? {
        Some(sp) => {
            let assigned = g.wait_for_hrd_policies_of(&sp.id).await.map_err(explain)?;
            (sp, assigned)
        }
        None => {
            let sp = g
                .wait_for_service_principal(&sp_ref)
                .await
                .map_err(explain)?;
            let assigned = g.hrd_policies_of(&sp.id).await.map_err(explain)?;
            (sp, assigned)
        }
    };

    if cli.mode == Mode::Remove {
        let ours = assigned
            .iter()
            .find(|p| {
                doc_policy
                    .as_deref()
                    .is_some_and(|d| p.id.eq_ignore_ascii_case(d))
            })
            .or_else(|| assigned.iter().find(|p| definition_is_ours(&p.definition)));
        let Some(p) = ours else {
            ctx.say(&format!(
                "no AllowCloudPasswordValidation policy is assigned to {}",
                name_of(&sp)
            ));
            set_status(&mut ctx.doc, "not-assigned", None);
            return Ok(());
        };
        let sent = g
            .unassign_hrd_policy(&sp.id, &p.id)
            .await
            .map_err(explain)?;
        ctx.say(&format!(
            "{} Home Realm Discovery policy {} from {}",
            if sent { "unassigned" } else { "would unassign" },
            policy_label(p),
            name_of(&sp)
        ));
        set_status(&mut ctx.doc, "removed", Some(p));
        return Ok(());
    }

    warn_if_no_password_hash_sync(ctx, &g).await;

    if let Some(p) = assigned.iter().find(|p| is_ours(p)) {
        ctx.say(&format!(
            "Home Realm Discovery policy {} is already assigned to {}",
            policy_label(p),
            name_of(&sp)
        ));
        ensure_mark(ctx, &g, p, setup).await?;
        set_status(&mut ctx.doc, "already-assigned", Some(p));
        remove_unassigned_duplicates(ctx, &g, p, &sp, setup).await?;
        return Ok(());
    }
    if let Some(other) = assigned.first() {
        if !cli.replace {
            return Err(foreign_policy_error(&sp, other));
        }
    }

    let name = cli
        .policy_name
        .as_deref()
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|| default_name(doc_name.as_deref(), &sp));
    let (policy, created) = ensure_policy(ctx, &g, &name, &sp, setup).await?;
    let policy_id = policy.as_ref().map_or(PLANNED_POLICY, |p| p.id.as_str());

    // --replace: ours exists before theirs is unassigned, so the gap without a policy is short.
    let mut replaced = Vec::new();
    for other in &assigned {
        let sent = g
            .unassign_hrd_policy(&sp.id, &other.id)
            .await
            .map_err(explain)?;
        ctx.say(&format!(
            "{} Home Realm Discovery policy {} from {} (--replace)",
            if sent { "unassigned" } else { "would unassign" },
            policy_label(other),
            name_of(&sp)
        ));
        replaced.push(json!({"policy_id": other.id, "display_name": other.display_name}));
    }

    let sent = match assign(ctx, &g, &sp, policy_id).await? {
        Assigned::Sent(sent) => sent,
        Assigned::Adopted(theirs) => {
            // A run racing this one assigned its own policy first (a service principal holds
            // one): that one is ours too, so adopt it, and delete the one this run created —
            // unassigned, it would only be a duplicate.
            ctx.say(&format!(
                "another run assigned Home Realm Discovery policy {} to {} meanwhile; using it",
                policy_label(&theirs),
                name_of(&sp)
            ));
            if let (Some(mine), true) = (&policy, created) {
                g.delete_hrd_policy(&mine.id).await.map_err(explain)?;
                ctx.say(&format!(
                    "deleted policy {}, created by this run and no longer needed",
                    policy_label(mine)
                ));
            }
            ensure_mark(ctx, &g, &theirs, setup).await?;
            set_status(&mut ctx.doc, "already-assigned", Some(&theirs));
            remove_unassigned_duplicates(ctx, &g, &theirs, &sp, setup).await?;
            return Ok(());
        }
    };
    ctx.say(&format!(
        "{} Home Realm Discovery policy \"{name}\" ({policy_id}) to {}",
        if sent { "assigned" } else { "would assign" },
        name_of(&sp)
    ));
    match &policy {
        Some(p) => set_status(&mut ctx.doc, "assigned", Some(p)),
        None => {
            ctx.doc.set(keys::HRD_POLICY_STATUS, "assigned");
            ctx.doc.set(keys::HRD_POLICY_DISPLAY_NAME, &name);
        }
    }
    if let (Some(p), true) = (&policy, sent) {
        if !created {
            ensure_mark(ctx, &g, p, setup).await?;
        }
        remove_unassigned_duplicates(ctx, &g, p, &sp, setup).await?;
    }
    if !replaced.is_empty() {
        ctx.doc.set(keys::HRD_POLICY_REPLACED, replaced);
    }
    Ok(())
}

/// The service principal as the state document describes it, when the id in use is the
/// document's `app.service_principal_id` and the document has the app's display name (a flag
/// naming another service principal, or no name, means it is read from Graph instead).
fn known_service_principal(
    sp_ref: &SpRef,
    doc: &s2s_core::StateDoc,
    doc_name: Option<&str>,
) -> Result<Option<ServicePrincipal>> {
    let SpRef::Id(id) = sp_ref else {
        return Ok(None);
    };
    let Some(name) = doc_name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if !doc
        .get(keys::APP_SERVICE_PRINCIPAL_ID)?
        .is_some_and(|d| d.eq_ignore_ascii_case(id))
    {
        return Ok(None);
    }
    Ok(Some(ServicePrincipal {
        id: id.clone(),
        app_id: doc.get(keys::APP_CLIENT_ID)?.unwrap_or_default(),
        display_name: Some(name.to_string()),
        ..Default::default()
    }))
}

/// `AllowCloudPasswordValidation` checks the password against the synced hash, so without
/// password hash sync the policy cannot help (graph.md §0, §1.6). Advisory: a caller who may not
/// read the setting gets no warning and no failure.
async fn warn_if_no_password_hash_sync(ctx: &Ctx, g: &Graph<'_>) {
    match g.password_hash_sync_enabled().await {
        Ok(Some(false)) => ctx.warn(
            "password hash sync is off in this tenant: AllowCloudPasswordValidation needs it (turn it on in Entra Connect), otherwise Marketo's sign-in will fail",
        ),
        Ok(_) => {}
        Err(e) => ctx
            .reporter()
            .trace(1, &format!("could not read the password hash sync setting ({e})")),
    }
}

fn default_name(app_name: Option<&str>, sp: &ServicePrincipal) -> String {
    let app = app_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .or(sp.display_name.as_deref())
        .unwrap_or("marketo-s2s");
    format!("{app} - AllowCloudPasswordValidation")
}

/// What set-hrd-policy of an earlier version wrote in a policy's description.
const CREATED_BY: &str = "marketo-s2s set-hrd-policy";

/// Puts this setup's mark in the description of a policy of ours (by definition) assigned to the
/// app's service principal, when the tenant shows it is the setup's to own: an earlier version
/// of this tool made it (its description says so, and no setup marked it), or another setup
/// sharing the app marked it. A hand-made policy is used as it is, unmarked: teardown keeps it.
async fn ensure_mark(
    ctx: &Ctx,
    g: &Graph<'_>,
    p: &HrdPolicy,
    setup: Option<&SetupId>,
) -> Result<()> {
    let Some(setup) = setup else { return Ok(()) };
    let description = p.description.as_deref().unwrap_or("");
    let marks = setups_in_description(description);
    if marks.contains(setup) {
        return Ok(());
    }
    if marks.is_empty() && !description.contains(CREATED_BY) {
        ctx.say(&format!(
            "Home Realm Discovery policy {} was not made by set-hrd-policy: it is used as it is and carries no setup mark, so teardown keeps it",
            policy_label(p)
        ));
        return Ok(());
    }
    let text = format!("{} {}", description.trim_end(), setup.description_mark());
    let sent = g
        .update_hrd_policy(&p.id, json!({ "description": text.trim_start() }))
        .await
        .map_err(explain)?;
    ctx.say(&format!(
        "{} setup {setup}'s mark to Home Realm Discovery policy {} ({})",
        if sent { "added" } else { "would add" },
        policy_label(p),
        if marks.is_empty() {
            "made by an earlier version of set-hrd-policy"
        } else {
            "shared with another setup of this app"
        }
    ));
    Ok(())
}

/// Our policy: reused when one has this display name, exactly our definition and this setup's
/// mark (one an interrupted run of this setup left unassigned), else created; the flag says it
/// was created by this run. `None` only in `--dry-run` when it would be created.
async fn ensure_policy(
    ctx: &Ctx,
    g: &Graph<'_>,
    name: &str,
    sp: &ServicePrincipal,
    setup: Option<&SetupId>,
) -> Result<(Option<HrdPolicy>, bool)> {
    let all = g.hrd_policies().await.map_err(explain)?;
    let named: Vec<&HrdPolicy> = all
        .iter()
        .filter(|p| p.display_name.as_deref().is_some_and(|n| n == name))
        .collect();
    let reusable: Vec<&&HrdPolicy> = named
        .iter()
        .filter(|p| is_ours(p) && setup.is_none_or(|s| marked(p, s)))
        .collect();
    if let Some(p) = reusable.first() {
        if reusable.len() > 1 {
            ctx.warn(&format!(
                "{} policies named \"{name}\" with the same definition exist; using {}",
                reusable.len(),
                p.id
            ));
        }
        ctx.say(&format!(
            "reusing Home Realm Discovery policy {}",
            policy_label(p)
        ));
        return Ok((Some((**p).clone()), false));
    }
    for p in &named {
        if lacks_wrapper(&p.definition) {
            ctx.warn(&format!(
                "policy {} sets AllowCloudPasswordValidation without the HomeRealmDiscoveryPolicy wrapper, so Entra ignores it; not reused",
                policy_label(p)
            ));
        } else {
            ctx.warn(&format!(
                "policy {} has another definition or is an organization default; not reused",
                policy_label(p)
            ));
        }
    }

    let tag = RunTag::fresh();
    let body = json!({
        "definition": [wanted_definition().to_string()],
        "displayName": name,
        // The setup's mark, then the run tag, which must come last (`RunTag::marks`).
        "description": format!(
            "Lets Entra ID validate passwords of federated users signing in to {} (Marketo S2S). Created by {CREATED_BY} {}{}",
            sp.display_name.as_deref().unwrap_or(&sp.app_id),
            setup.map(|s| format!("{} ", s.description_mark())).unwrap_or_default(),
            tag
        ),
        // true would make it the default for every app of the tenant (graph.md §5.2).
        "isOrganizationDefault": false,
    });
    match g.create_hrd_policy(body).await {
        Ok(Some(p)) => {
            ctx.say(&format!(
                "created Home Realm Discovery policy {}",
                policy_label(&p)
            ));
            // A retried create whose first answer was lost leaves a tagged twin: it is
            // unassigned, so the sweep after the assignment (`remove_unassigned_duplicates`)
            // deletes it — no read here, and the assignment waits out the new policy's
            // replication itself.
            Ok((Some(p), true))
        }
        Ok(None) => {
            ctx.say(&format!(
                "would create Home Realm Discovery policy \"{name}\""
            ));
            Ok((None, false))
        }
        Err(e) if e.ambiguous => {
            // The create may have been committed although no answer came: adopt it if so.
            match adopt_lost_create(ctx, g, sp, &tag).await {
                Ok(Some(p)) => {
                    ctx.say(&format!(
                        "adopted Home Realm Discovery policy {} created by a request whose answer was lost",
                        policy_label(&p)
                    ));
                    Ok((Some(p), true))
                }
                _ => Err(explain(
                    e.context("creating the Home Realm Discovery policy"),
                )),
            }
        }
        Err(e) => Err(explain(
            e.context("creating the Home Realm Discovery policy"),
        )),
    }
}

/// After a create whose answer was lost: the policies carrying this run's tag are read back
/// (waiting out replication until one is listed); the first is kept and every other one, made
/// by a retried request, is deleted. `Ok(None)` when nothing tagged showed up in time.
///
/// A racing run may have assigned its own policy and deleted this run's as a duplicate, which
/// then never shows up: once the service principal holds a policy of ours, the wait ends with
/// what is listed (the assignment that follows adopts that policy).
async fn adopt_lost_create(
    ctx: &Ctx,
    g: &Graph<'_>,
    sp: &ServicePrincipal,
    tag: &RunTag,
) -> Result<Option<HrdPolicy>> {
    let window = ctx.http.deadline().min(Instant::now() + REPLICATION_WINDOW);
    let read = until_ready(
        window,
        "reading the new policy back",
        ctx.reporter(),
        || async {
            let tagged: Vec<HrdPolicy> = g
                .hrd_policies()
                .await?
                .into_iter()
                .filter(|p| p.description.as_deref().is_some_and(|d| tag.marks(d)))
                .collect();
            let ready = !tagged.is_empty() || g.hrd_policies_of(&sp.id).await?.iter().any(is_ours);
            Ok(if ready {
                Poll::Ready(tagged)
            } else {
                Poll::Pending("not listed yet".into())
            })
        },
    )
    .await;
    let tagged = match read {
        Ok(t) => t,
        // Out of the whole run's time: exit 5, as every wait does, rather than "not there".
        Err(e) if e.kind == Kind::Timeout && Instant::now() >= ctx.http.deadline() => {
            return Err(e);
        }
        Err(e) if e.service().is_none() && e.kind == Kind::Timeout => return Ok(None),
        Err(e) => return Err(explain(e)),
    };
    let mut tagged = tagged.into_iter();
    let Some(kept) = tagged.next() else {
        return Ok(None);
    };
    for p in tagged {
        g.delete_hrd_policy(&p.id).await.map_err(explain)?;
        ctx.say(&format!(
            "deleted duplicate policy {}: a retried request created it after its answer was lost",
            p.id
        ));
    }
    Ok(Some(kept))
}

/// A policy this tool would have made: exactly our definition, not an organization default.
fn is_ours(p: &HrdPolicy) -> bool {
    definition_is_ours(&p.definition) && p.is_organization_default != Some(true)
}

/// Whether the policy's description carries this setup's mark.
fn marked(p: &HrdPolicy, setup: &SetupId) -> bool {
    p.description
        .as_deref()
        .is_some_and(|d| setup.marks_description(d))
}

/// What [`assign`] ended with.
enum Assigned {
    /// Our policy is assigned (`false`: only planned, `--dry-run`).
    Sent(bool),
    /// Another run assigned its own policy of ours first: that one is kept.
    Adopted(HrdPolicy),
}

/// Assigns the policy (graph.md §5.3), waiting out replication of a new policy (404) and
/// accepting "already exists" — what a retry meets after a lost answer.
///
/// Two runs racing on one service principal each create a policy and try to assign it; a
/// service principal holds one, so the second assignment is refused (409), or
/// meets a 404 when the first run already deleted the second run's unassigned policy as a
/// duplicate. Either way the service principal's policies are read: when one of ours is there,
/// it is adopted, so both runs end with the same single policy; a foreign one is an error;
/// nothing visible yet means replication, waited out.
async fn assign(
    ctx: &Ctx,
    g: &Graph<'_>,
    sp: &ServicePrincipal,
    policy_id: &str,
) -> Result<Assigned> {
    let what_won = || async {
        let now = g.hrd_policies_of(&sp.id).await.map_err(explain)?;
        Ok::<_, Error>(
            if now.iter().any(|p| p.id.eq_ignore_ascii_case(policy_id)) {
                OnSp::Ours(None)
            } else if let Some(p) = now.iter().find(|p| is_ours(p)) {
                OnSp::Ours(Some(p.clone()))
            } else if now.is_empty() {
                OnSp::Nothing
            } else {
                OnSp::Foreign
            },
        )
    };
    until_ready(ctx.http.deadline(), "assigning the policy", ctx.reporter(), || async {
        let e = match g.assign_hrd_policy(&sp.id, policy_id).await {
            Ok(sent) => return Ok(Poll::Ready(Assigned::Sent(sent))),
            Err(e) if already_assigned(&e) => return Ok(Poll::Ready(Assigned::Sent(true))),
            Err(e) => e,
        };
        let lag = s2s_graph::is_replication_lag(&e);
        if !lag && !s2s_graph::is_conflict(&e) {
            return Err(explain(e.context("assigning the Home Realm Discovery policy")));
        }
        match what_won().await? {
            // Ours is there after all (an earlier attempt's answer was lost).
            OnSp::Ours(None) => Ok(Poll::Ready(Assigned::Sent(true))),
            OnSp::Ours(Some(theirs)) => Ok(Poll::Ready(Assigned::Adopted(theirs))),
            OnSp::Foreign if !lag => Err(e
                .context("assigning the Home Realm Discovery policy")
                .with_kind(Kind::Refused)
                .with_hint("another HRD policy was assigned to the service principal meanwhile; re-run, with --replace to swap it")),
            OnSp::Foreign | OnSp::Nothing if lag => Ok(Poll::Pending(e.to_string())),
            // A conflict, and the policy that won is not visible to this reader yet.
            _ => Ok(Poll::Pending(
                "another policy was assigned meanwhile; waiting to see which".into(),
            )),
        }
    })
    .await
}

/// What a service principal holds, read after an assignment was refused.
enum OnSp {
    /// A policy of ours: this run's (`None`) or another run's.
    Ours(Option<HrdPolicy>),
    /// Someone else's policy.
    Foreign,
    /// Nothing visible (yet).
    Nothing,
}

/// Deletes our unassigned duplicates of `kept`: policies with its display
/// name and exactly our definition, whose description says this tool created them for this
/// app, assigned to nothing (`appliesTo` is empty). Racing runs, or an older version that only
/// warned, leave such policies; they do nothing but confuse an admin. A policy in use anywhere
/// is never touched.
async fn remove_unassigned_duplicates(
    ctx: &Ctx,
    g: &Graph<'_>,
    kept: &HrdPolicy,
    sp: &ServicePrincipal,
    setup: Option<&SetupId>,
) -> Result<()> {
    let Some(name) = kept.display_name.as_deref() else {
        return Ok(());
    };
    let app = sp.display_name.as_deref().unwrap_or(&sp.app_id);
    // Made by this setup (its mark), or by an earlier version for this app (no mark at all).
    let ours_for_this_app = |d: &str| {
        let marks = setups_in_description(d);
        match setup {
            Some(s) if !marks.is_empty() => marks.contains(s),
            _ => {
                marks.is_empty()
                    && d.contains(CREATED_BY)
                    && (app.is_empty() || d.contains(&format!("signing in to {app} (Marketo S2S)")))
            }
        }
    };
    let all = g.hrd_policies().await.map_err(explain)?;
    for p in all.iter().filter(|p| {
        !p.id.eq_ignore_ascii_case(&kept.id)
            && p.display_name.as_deref() == Some(name)
            && is_ours(p)
            && p.description.as_deref().is_some_and(ours_for_this_app)
    }) {
        if !g
            .hrd_policy_applies_to(&p.id)
            .await
            .map_err(explain)?
            .is_empty()
        {
            continue;
        }
        if g.delete_hrd_policy(&p.id).await.map_err(explain)? {
            ctx.say(&format!(
                "deleted unassigned duplicate Home Realm Discovery policy {} (left by a concurrent or earlier run)",
                policy_label(p)
            ));
        } else {
            ctx.say(&format!(
                "would delete unassigned duplicate Home Realm Discovery policy {}",
                policy_label(p)
            ));
        }
    }
    Ok(())
}

/// Graph's answer to a `$ref` POST for a reference that exists: 400 "One or more added object
/// references already exist for the following modified properties: 'policies'."
fn already_assigned(e: &Error) -> bool {
    e.service()
        .is_some_and(|s| s.status == 400 && s.message.contains("already exist"))
}

fn foreign_policy_error(sp: &ServicePrincipal, other: &HrdPolicy) -> Error {
    let mut hint = String::from(
        "a service principal holds one Home Realm Discovery policy; pass --replace to unassign it and assign ours",
    );
    if other.allows_cloud_password_validation() {
        hint.push_str(
            " (it already sets AllowCloudPasswordValidation, so it may serve Marketo as it is)",
        );
    }
    Error::refused(format!(
        "{} already has Home Realm Discovery policy {} with definition {}",
        name_of(sp),
        policy_label(other),
        other.definition.join(" ")
    ))
    .with_hint(hint)
}

fn set_status(doc: &mut s2s_core::StateDoc, status: &str, policy: Option<&HrdPolicy>) {
    doc.set(keys::HRD_POLICY_STATUS, status);
    match policy {
        Some(p) => {
            doc.set(keys::HRD_POLICY_POLICY_ID, &p.id);
            doc.set(keys::HRD_POLICY_DISPLAY_NAME, p.display_name.as_deref());
        }
        None => {
            doc.remove(keys::HRD_POLICY_POLICY_ID);
            doc.remove(keys::HRD_POLICY_DISPLAY_NAME);
        }
    }
    doc.remove(keys::HRD_POLICY_REPLACED);
}

fn policy_label(p: &HrdPolicy) -> String {
    format!("\"{}\" ({})", p.display_name.as_deref().unwrap_or(""), p.id)
}

fn name_of(sp: &ServicePrincipal) -> String {
    format!("service principal {}", sp.label())
}

/// A 403 names the missing permission or role and the fix (graph.md §5.2, §5.3).
fn explain(e: Error) -> Error {
    s2s_graph::needs::explain_forbidden(e, &s2s_graph::needs::HRD_POLICY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_compared_parsed_and_with_its_wrapper() {
        let ours = |s: &str| definition_is_ours(&[s.to_string()]);
        assert!(ours(
            r#"{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true}}"#
        ));
        assert!(ours(
            "{ \"HomeRealmDiscoveryPolicy\" : { \"AllowCloudPasswordValidation\" : true } }"
        ));
        assert!(!ours(r#"{"AllowCloudPasswordValidation":true}"#));
        assert!(!ours(
            r#"{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":false}}"#
        ));
        assert!(!ours(
            r#"{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true,"AccelerateToFederatedDomain":true}}"#
        ));
        assert!(!ours("not json"));
        assert!(!definition_is_ours(&[]));
        assert!(lacks_wrapper(&[
            r#"{"AllowCloudPasswordValidation":true}"#.to_string()
        ]));
        // What the tool sends is what it recognises.
        assert!(ours(&wanted_definition().to_string()));
    }

    #[test]
    fn flags_are_checked_before_any_request() {
        use s2s_core::Tool;
        let cli = Cli::try_parse_from(["set-hrd-policy", "--mode", "remove", "--replace"]).unwrap();
        assert_eq!(cli.validate().unwrap_err().kind, Kind::Usage);
        let cli = Cli::try_parse_from(["set-hrd-policy", "--policy-name", " "]).unwrap();
        assert_eq!(cli.validate().unwrap_err().kind, Kind::Usage);
        assert!(Cli::try_parse_from(["set-hrd-policy", "--mode", "sometimes"]).is_err());
        let cli = Cli::try_parse_from(["set-hrd-policy"]).unwrap();
        assert_eq!(cli.mode, Mode::Auto);
    }

    #[test]
    fn default_names_follow_the_app() {
        let sp = ServicePrincipal {
            id: "s".into(),
            app_id: "a".into(),
            display_name: Some("From SP".into()),
            ..Default::default()
        };
        assert_eq!(
            default_name(Some("Marketo Integration"), &sp),
            "Marketo Integration - AllowCloudPasswordValidation"
        );
        assert_eq!(
            default_name(None, &sp),
            "From SP - AllowCloudPasswordValidation"
        );
    }

    #[test]
    fn a_foreign_policy_is_named_in_the_refusal() {
        let sp = ServicePrincipal {
            id: "s".into(),
            ..Default::default()
        };
        let other = HrdPolicy {
            id: "p1".into(),
            display_name: Some("Contoso default HRD Policy".into()),
            definition: vec![
                r#"{"HomeRealmDiscoveryPolicy":{"AccelerateToFederatedDomain":true}}"#.into(),
            ],
            ..Default::default()
        };
        let e = foreign_policy_error(&sp, &other);
        assert_eq!(e.kind.code(), 4);
        assert!(e.message.contains("Contoso default HRD Policy") && e.message.contains("p1"));
        assert!(e.hint.unwrap_or_default().contains("--replace"));
    }
}
