//! `register-app` — Marketo's step 2, "create the client application": ensures a single-tenant
//! Entra ID application (`signInAudience` `AzureADMyOrg`) that requests Dynamics CRM
//! `user_impersonation`, and its service principal.
//!
//! - Keys: it reads the app's keys and `setup.id` (all optional; flags override them), and
//!   writes the app's ids, `tenant.id`, and `setup.id` when the document has none (minted: the
//!   connection's identity, see "Ownership" below); `app.adopted` is true for an app adopted
//!   with `--client-id`, which teardown keeps. `register-app --help` lists every key and exit
//!   code (rendered from `READS`, `WRITES` and core's exit-code table).
//! - Ownership (docs/architecture.md): the app and the service principal it creates carry the
//!   tag `marketo-s2s:setup:<setup.id>` (other tags are kept: `tags` is always read and sent
//!   whole). An app found by its unique name that carries another setup's tag, or no tag, is not
//!   used silently (exit 4 naming it): `--name` for a separate app, `--share-app` to share it
//!   (this setup's tag is added beside the other setup's; an app with no setup's tag is adopted
//!   instead, as with `--client-id`: nothing proves it is this setup's, so it is never made its
//!   own). An earlier version's document that names its app by object id and client id gets the
//!   app marked; `--setup-id` continues a setup whose document was lost. An adopted app is not
//!   tagged; a service principal this run creates for it is.
//! - Idempotency key: the application's `uniqueName` (derived from the display name unless
//!   given), through `PATCH /applications(uniqueName='…')` with `Prefer: create-if-missing`
//!   (reference/graph.md §1.5) — never the display name alone. `--client-id` adopts an app
//!   made in the portal instead (it keeps its own display name unless `--name` or the document
//!   gives one). It reads first and writes only what differs, so a re-run on a finished setup
//!   sends no write. The app the tools sign in as (the token's client) is never used, found by
//!   either key: exit 4.
//!
//! Example: `register-app --tenant contoso.onmicrosoft.com | grant-consent | make-secret`

use clap::Parser;
use serde_json::{Value, json};

use s2s_core::keys;
use s2s_core::retry::{Poll, until_ready, until_visible};
use s2s_core::setup::SetupId;
use s2s_core::{AnyKey, CommonArgs, Ctx, Error, Result, Tool};
use s2s_graph::{
    Application, DYNAMICS_CRM_APP_ID, Graph, RequiredResourceAccess, ResourceAccess, Upserted,
    is_replication_lag, tags_with, user_impersonation_scope,
};

mod ownership;
use ownership::{Found, Setup, Verdict};

const DEFAULT_NAME: &str = "Marketo Integration";
const SINGLE_TENANT: &str = "AzureADMyOrg";

/// Register the Marketo integration app in Entra ID (single tenant, Dynamics CRM
/// user_impersonation) and its service principal.
#[derive(Debug, Parser)]
#[command(
    name = "register-app",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
)]
pub struct Cli {
    /// Display name of the application [state: app.display_name] [default: Marketo Integration]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Stable key that identifies the app on every run [state: app.unique_name] [default: derived
    /// from the name, e.g. marketo-integration]
    #[arg(long, value_name = "KEY")]
    pub unique_name: Option<String>,

    /// Adopt an existing app (e.g. created in the portal) by its Application (client) ID
    /// instead of creating one
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub client_id: Option<String>,

    /// Use an app that another connection (setup) made, or that carries no setup mark, on
    /// purpose. Another setup's app gets this setup's tag beside its own (app and service
    /// principal); a teardown then removes only this setup's tag while another setup still uses
    /// the app. An app with no setup mark is adopted (app.adopted, left untagged): teardown keeps
    /// it and its service principal
    #[arg(long)]
    pub share_app: bool,

    /// The setup (connection) this run works for, e.g. one whose state document was lost
    /// [state: setup.id] [default: a new one]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub setup_id: Option<String>,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Tool for Cli {
    const NAME: &'static str = "register-app";
    const STARTS_SETUP: bool = true;
    const READS: &'static [AnyKey] = &[
        keys::SETUP_ID.any(),
        keys::TENANT_ID.any(),
        keys::TENANT_CLOUD.any(),
        keys::APP_DISPLAY_NAME.any(),
        keys::APP_UNIQUE_NAME.any(),
        keys::APP_CLIENT_ID.any(),
        keys::APP_OBJECT_ID.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::SETUP_ID.any(),
        keys::TENANT_ID.any(),
        keys::TENANT_CLOUD.any(),
        keys::APP_DISPLAY_NAME.any(),
        keys::APP_UNIQUE_NAME.any(),
        keys::APP_CLIENT_ID.any(),
        keys::APP_OBJECT_ID.any(),
        keys::APP_SERVICE_PRINCIPAL_ID.any(),
        keys::APP_ADOPTED.any(),
    ];
    const EXAMPLES: &'static str = "\
register-app --tenant contoso.onmicrosoft.com > state.json
register-app --name 'Marketo Integration' | grant-consent | make-secret
register-app --client-id 0d9f3c5e-1111-2222-3333-444455556666   # adopt a portal app
register-app --name 'Marketo Integration (sandbox)'   # a second connection in this tenant";
    const HELP_NOTES: &'static str = "\
setup.id is minted once per connection. An app adopted with --client-id (app.adopted) keeps its
display name unless --name is given, and teardown keeps it. The app and service principal it
creates carry the tag marketo-s2s:setup:<setup.id>; an app with the same unique name that
another connection (or an earlier version, or a person) made is not used silently: exit 4, then
--name for a separate app or --share-app to share it (an app with no setup's tag is adopted, as
with --client-id). The app these tools sign in as is never used (exit 4). Re-running on a
finished setup sends no write.";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[(
        4,
        "also when the app with this unique name is another connection's, or the app signed in as",
    )];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    fn validate(&self) -> Result<()> {
        if let Some(n) = &self.name {
            check_text(n, "--name")?;
        }
        if let Some(u) = &self.unique_name {
            check_text(u, "--unique-name")?;
        }
        Ok(())
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

/// Names as Entra ID takes them: 1 to 120 printable characters (the shared check of the graph
/// crate, as make-secret and set-hrd-policy use).
fn check_text(s: &str, what: &str) -> Result<()> {
    s2s_graph::check_display_name(s, what, 120)
}

/// The unique name (the app's idempotency key) a display name derives, so that different names
/// never share an app:
///
/// - a name of ASCII words separated by single spaces keeps its plain slug:
///   `Marketo Integration` → `marketo-integration` (existing apps keep their key);
/// - any other name — punctuation, other separators, non-ASCII letters, extra spaces — gets its
///   slug plus the first 12 hex digits of the SHA-256 of the exact name:
///   `Marketo Integration!` → `marketo-integration-1f0c…`, `日本語` → `app-5d8b…`. The slug
///   alone lost information there, so the hash keeps `Маркето Интеграция` and `日本語` (both
///   slug-less) and `Marketo Integration!` apart from `Marketo Integration`.
///
/// Names that differ only in letter case still share a key: that is the same name to a person,
/// and register-app refuses to rename an app it did not name (see `ensure_application`).
pub fn derive_unique_name(name: &str) -> String {
    let slug = slug(name);
    let plain = !name.is_empty()
        && name
            .split(' ')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric()));
    if plain {
        return slug;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let tag: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    if slug.is_empty() {
        format!("app-{tag}")
    } else {
        // Entra ID takes up to 120 characters; keep room for the tag.
        let head: String = slug.chars().take(100).collect();
        format!("{}-{tag}", head.trim_end_matches('-'))
    }
}

/// Lower case ASCII letters and digits, runs of anything else → one `-`, trimmed.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    // A 403 names what the signed-in admin lacks and how to get it.
    register(ctx, cli).await.map_err(|e| {
        let need = if e.message.contains("organization") {
            &s2s_graph::needs::READ_ORGANIZATION
        } else {
            &s2s_graph::needs::REGISTER_APP
        };
        s2s_graph::needs::explain_forbidden(e, need)
    })
}

/// The setup this run works for: `--setup-id`, else the document's `setup.id`, else a new one.
/// A flag that names another setup than the document is exit 2: the document is that setup's.
fn setup_of(ctx: &Ctx, cli: &Cli) -> Result<Setup> {
    let doc = SetupId::of_doc(&ctx.doc)?;
    let flag = cli.setup_id.as_deref().and_then(SetupId::parse);
    match (flag, doc) {
        (Some(f), Some(d)) if f != d => Err(Error::usage(format!(
            "--setup-id {f} names another setup than the state document's setup.id {d}"
        ))
        .with_hint(
            "a document belongs to one connection: use that setup's own document, or a new one",
        )),
        (Some(id), _) | (None, Some(id)) => Ok(Setup { id, minted: false }),
        (None, None) => Ok(Setup {
            id: SetupId::mint(),
            minted: true,
        }),
    }
}

async fn register(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    let mut setup = setup_of(ctx, &cli)?;
    let doc_name = ctx.doc.get(keys::APP_DISPLAY_NAME)?.map(str::to_string);
    let doc_name_for_rename = doc_name.clone();
    let doc_unique = ctx.doc.get(keys::APP_UNIQUE_NAME)?.map(str::to_string);
    let doc_client = ctx.doc.get(keys::APP_CLIENT_ID)?;
    let doc_object = ctx.doc.get(keys::APP_OBJECT_ID)?;
    // The name asked for (flag or document); an adopted app without one keeps its own.
    let name_given = cli.name.clone().or(doc_name);
    let name = name_given
        .clone()
        .unwrap_or_else(|| DEFAULT_NAME.to_string());
    check_text(&name, keys::APP_DISPLAY_NAME.path())?;
    // Adopt by client id when asked, or when an earlier run adopted one (no unique name then).
    let adopt = cli
        .client_id
        .clone()
        .or_else(|| doc_unique.is_none().then_some(doc_client.clone()).flatten());
    // A derived key may meet an app someone else named (a case variant of the name, or an app
    // renamed in the portal): such an app is never renamed. A key the user gave, or the
    // document recorded, names the app on purpose, and renaming it is what --name asks for.
    let key_given = cli.unique_name.is_some() || doc_unique.is_some();
    let unique_name = match (&adopt, &cli.unique_name, &doc_unique) {
        (_, Some(u), _) => Some(u.clone()),
        (None, None, Some(u)) => Some(u.clone()),
        (None, None, None) => Some(derive_unique_name(&name)),
        (Some(_), None, _) => None,
    };
    if let Some(u) = &unique_name {
        check_text(u, keys::APP_UNIQUE_NAME.path())?;
    }
    ctx.config().tenant()?;

    let tenant_id = ensure_tenant_id(ctx).await?;
    ctx.doc.set(keys::TENANT_ID, &tenant_id);
    let cloud = ctx.config().cloud.name();
    ctx.doc.set(keys::TENANT_CLOUD, cloud);

    let graph = Graph::new(&ctx.http);
    let scope_id = dynamics_scope_id(ctx, &graph).await?;
    let wanted = Wanted {
        access: RequiredResourceAccess {
            resource_app_id: DYNAMICS_CRM_APP_ID.to_string(),
            resource_access: vec![ResourceAccess {
                id: scope_id.clone(),
                kind: "Scope".into(),
            }],
        },
        doc_object: doc_object.as_deref(),
        doc_client: doc_client.as_deref(),
        share: cli.share_app,
    };

    let mut name = name;
    // (the app, whether this run created it, whether it is adopted: not the setup's own)
    let app = match &adopt {
        Some(client_id) => {
            let adopted = adopt_application(
                ctx,
                &graph,
                client_id,
                name_given.as_deref(),
                &wanted,
                &mut setup,
            )
            .await?;
            name = adopted.name;
            Some((adopted.app, false, adopted.adopted))
        }
        None => {
            let u = unique_name.as_deref().unwrap_or_default();
            let may_rename = Rename {
                key_given,
                doc_name: doc_name_for_rename.as_deref(),
            };
            ensure_application(ctx, &graph, u, &name, may_rename, &wanted, &mut setup).await?
        }
    };
    ctx.doc.set(keys::SETUP_ID, setup.id.as_str());
    ctx.doc.set(keys::APP_DISPLAY_NAME, &name);
    match (&unique_name, &app) {
        // An unmarked app adopted with --share-app is found again by its client id, as one
        // adopted with --client-id (a re-run adopts it again without the flag).
        (Some(_), Some((_, _, true))) if adopt.is_none() => {
            ctx.doc.set(keys::APP_UNIQUE_NAME, None::<&str>)
        }
        (Some(u), _) => ctx.doc.set(keys::APP_UNIQUE_NAME, u),
        // A marked app shared by client id keeps its own unique name (teardown checks it).
        (None, Some((a, _, false))) => ctx.doc.set(keys::APP_UNIQUE_NAME, a.unique_name.as_deref()),
        (None, _) => ctx.doc.set(keys::APP_UNIQUE_NAME, None::<&str>),
    }
    let Some((app, created, adopted)) = app else {
        // Dry run of a fresh create: there is no client id to look further with.
        ctx.say(&format!(
            "dry run: would create application {name:?} and its service principal"
        ));
        return Ok(());
    };
    // An adopted app was not made by the setup: teardown keeps it (and its service principal,
    // unless this setup created that) and removes only what the setup added to it.
    if adopted {
        ctx.doc.set(keys::APP_ADOPTED, true);
    } else {
        ctx.doc.remove(keys::APP_ADOPTED);
    }
    ctx.doc.set(keys::APP_CLIENT_ID, &app.app_id);
    ctx.doc.set(keys::APP_OBJECT_ID, &app.id);

    let sp_tagging = if adopted {
        SpTags::IfSetupMade
    } else {
        SpTags::Ensure
    };
    if let Some(sp_id) =
        ensure_service_principal(ctx, &graph, &app, created, &setup.id, sp_tagging).await?
    {
        ctx.doc.set(keys::APP_SERVICE_PRINCIPAL_ID, &sp_id);
    }
    Ok(())
}

/// What the app must be: the Dynamics CRM permission, and what the document and flags say about
/// which app this setup may use.
struct Wanted<'a> {
    access: RequiredResourceAccess,
    /// The document's `app.object_id` and `app.client_id` (an earlier version's document names
    /// its app by both).
    doc_object: Option<&'a str>,
    doc_client: Option<&'a str>,
    /// `--share-app`.
    share: bool,
}

impl Wanted<'_> {
    /// Whether the document names this app by both its object id and its client id.
    fn names(&self, app: &Application) -> bool {
        self.doc_object
            .is_some_and(|o| o.eq_ignore_ascii_case(&app.id))
            && self
                .doc_client
                .is_some_and(|c| c.eq_ignore_ascii_case(&app.app_id))
    }
}

/// How this setup uses an app it found (not created).
enum Claim {
    /// As its own (or shared): with these tags (`None` when it carries this setup's already).
    Tagged(Option<Vec<String>>),
    /// Adopted: untagged, recorded as `app.adopted`.
    Adopted,
}

impl Claim {
    /// The tags to send, and whether the app is adopted.
    fn split(self) -> (Option<Vec<String>>, bool) {
        match self {
            Claim::Tagged(tags) => (tags, false),
            Claim::Adopted => (None, true),
        }
    }
}

/// How this setup may use an app found (not created). A run continuing an interrupted setup
/// takes over that setup's id.
async fn claim(
    ctx: &Ctx,
    graph: &Graph<'_>,
    app: &Application,
    wanted: &Wanted<'_>,
    setup: &mut Setup,
    key: &str,
) -> Result<Claim> {
    let found = Found {
        named_by_doc: wanted.names(app),
        share: wanted.share,
        key,
    };
    match ownership::judge(ctx, graph, app, setup, found).await? {
        Verdict::Ours => Ok(Claim::Tagged(None)),
        Verdict::Continue(id) => {
            setup.id = id;
            setup.minted = false;
            Ok(Claim::Tagged(None))
        }
        Verdict::Adopt { why } => {
            ctx.say(&format!(
                "adopting application {:?} (client id {}) for setup {}: {why}",
                app.display_name.as_deref().unwrap_or(""),
                app.app_id,
                setup.id
            ));
            Ok(Claim::Adopted)
        }
        Verdict::Mark { why } => {
            ctx.say(&format!(
                "marking application {:?} (client id {}) as setup {}'s: {why}",
                app.display_name.as_deref().unwrap_or(""),
                app.app_id,
                setup.id
            ));
            Ok(Claim::Tagged(tags_with(&app.tags, &setup.id.tag())))
        }
    }
}

/// The tenant id: the `--tenant` value when it already is one, else `GET /organization`.
async fn ensure_tenant_id(ctx: &Ctx) -> Result<String> {
    let t = ctx.config().tenant()?;
    if s2s_core::guid::parse(t).is_ok() {
        return Ok(t.to_string());
    }
    let org = Graph::new(&ctx.http).organization().await?;
    Ok(org.id)
}

/// The Dynamics CRM `user_impersonation` scope id, from the resource's service principal. A
/// tenant without Dynamics CRM's service principal gets it (graph.md §1.2), as the portal does
/// when an admin first adds the permission.
async fn dynamics_scope_id(ctx: &Ctx, graph: &Graph<'_>) -> Result<String> {
    match graph
        .ensure_dynamics_crm_service_principal(false, ctx.reporter())
        .await?
    {
        Some(found) => {
            if found.created {
                ctx.say("this tenant had no Dynamics CRM service principal yet: created it");
            }
            user_impersonation_scope(&found.sp)
        }
        None => Err(Error::refused(
            "dry run: the Dynamics CRM service principal does not exist yet, so the plan stops here",
        )
        .with_kind(s2s_core::Kind::Refused)
        .with_hint("run without --dry-run, or run grant-consent first")),
    }
}

/// The body that makes an application what Marketo needs, from what it is now (`None` = new).
/// Other resource permissions the admin added stay.
fn desired_changes(
    current: Option<&Application>,
    name: &str,
    wanted: &RequiredResourceAccess,
) -> Value {
    let mut body = serde_json::Map::new();
    if current.and_then(|a| a.display_name.as_deref()) != Some(name) {
        body.insert("displayName".into(), json!(name));
    }
    if current.and_then(|a| a.sign_in_audience.as_deref()) != Some(SINGLE_TENANT) {
        body.insert("signInAudience".into(), json!(SINGLE_TENANT));
    }
    let mut rra: Vec<RequiredResourceAccess> = current
        .map(|a| a.required_resource_access.clone())
        .unwrap_or_default();
    let scope = &wanted.resource_access[0];
    let has = rra.iter().any(|r| {
        r.resource_app_id
            .eq_ignore_ascii_case(&wanted.resource_app_id)
            && r.resource_access
                .iter()
                .any(|a| a.id.eq_ignore_ascii_case(&scope.id) && a.kind == scope.kind)
    });
    if !has {
        match rra.iter_mut().find(|r| {
            r.resource_app_id
                .eq_ignore_ascii_case(&wanted.resource_app_id)
        }) {
            Some(r) => r.resource_access.push(scope.clone()),
            None => rra.push(wanted.clone()),
        }
        body.insert("requiredResourceAccess".into(), json!(rra));
    }
    Value::Object(body)
}

fn describe(body: &Value) -> String {
    body.as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// When an existing app found by unique name may get another display name.
#[derive(Debug, Clone, Copy)]
struct Rename<'a> {
    /// The unique name came from `--unique-name` or `app.unique_name`, not from the name.
    key_given: bool,
    /// `app.display_name` of the document: an app still carrying it is the document's own.
    doc_name: Option<&'a str>,
}

impl Rename<'_> {
    fn allowed(&self, current: Option<&str>) -> bool {
        self.key_given || (current.is_some() && current == self.doc_name)
    }
}

async fn ensure_application(
    ctx: &Ctx,
    graph: &Graph<'_>,
    unique_name: &str,
    name: &str,
    rename: Rename<'_>,
    wanted: &Wanted<'_>,
    setup: &mut Setup,
) -> Result<Option<(Application, bool, bool)>> {
    let key = format!("unique name {unique_name:?}");
    if let Some(app) = graph.application_by_unique_name(unique_name).await? {
        refuse_signed_in_app(graph, &app).await?;
        let (tags, adopted) = claim(ctx, graph, &app, wanted, setup, &key).await?.split();
        let current = app.display_name.as_deref();
        if current != Some(name) && !rename.allowed(current) {
            let shown = current.unwrap_or("(no name)");
            return Err(Error::refused(format!(
                "the unique name {unique_name:?} derived from {name:?} belongs to the application \
                 {shown:?} (client id {}), which this document did not name; it is not renamed",
                app.app_id
            ))
            .with_hint(format!(
                "to use that app, pass --name {shown:?}; for a separate app, pass \
                 --unique-name with a key of your own"
            )));
        }
        update_if_needed(ctx, graph, &app, name, &wanted.access, tags).await?;
        return Ok(Some((app, false, adopted)));
    }
    // Not there (or not replicated yet: the upsert is keyed, so it cannot make a second one).
    // The new app carries this setup's tag from its first moment, so no run ever sees it
    // unmarked. An upsert that meets an existing app replaces its tags with ours; that needs an
    // app created in the last seconds that no read here could see yet (docs/reliability.md).
    let mut body = desired_changes(None, name, &wanted.access);
    body["displayName"] = json!(name);
    body["tags"] = json!([setup.id.tag()]);
    match graph.upsert_application(unique_name, body).await? {
        None => Ok(None),
        Some(Upserted::Created(app)) => {
            ctx.say(&format!(
                "created application {name:?} (client id {}, unique name {unique_name:?}, setup {})",
                app.app_id, setup.id
            ));
            Ok(Some((app, true, false)))
        }
        Some(Upserted::Updated) => {
            // It existed after all (a replica lagged, a concurrent run made it, or our own
            // create's answer was lost): read it back, and judge it as any app found.
            let app = read_back(ctx, graph, unique_name).await?;
            refuse_signed_in_app(graph, &app).await?;
            let (tags, adopted) = claim(ctx, graph, &app, wanted, setup, &key).await?.split();
            ctx.say(&format!(
                "application {name:?} already existed (client id {}); made it match",
                app.app_id
            ));
            update_if_needed(ctx, graph, &app, name, &wanted.access, tags).await?;
            Ok(Some((app, false, adopted)))
        }
    }
}

async fn read_back(ctx: &Ctx, graph: &Graph<'_>, unique_name: &str) -> Result<Application> {
    until_visible(
        ctx.http.deadline(),
        "waiting for the application to replicate",
        ctx.reporter(),
        || graph.application_by_unique_name(unique_name),
    )
    .await
}

/// An app register-app was pointed at by `--client-id`.
struct Adopted {
    app: Application,
    /// Its display name after this run.
    name: String,
    /// Not the setup's own: a portal app. `false` for an app that carries this setup's tag (it
    /// created it), or another setup's with `--share-app`.
    adopted: bool,
}

/// The app with this client id, brought to the wanted permissions; renamed only when a name was
/// asked for (`--name` or the document's), else it keeps its own. An app made by another setup
/// (it carries a setup tag) is that connection's: it is used only as ours or shared
/// (`--share-app`), never adopted, so no teardown mistakes it for a portal app.
async fn adopt_application(
    ctx: &Ctx,
    graph: &Graph<'_>,
    client_id: &str,
    name: Option<&str>,
    wanted: &Wanted<'_>,
    setup: &mut Setup,
) -> Result<Adopted> {
    let app = graph.application_by_app_id(client_id).await?.ok_or_else(|| {
        Error::refused(format!(
            "no application with client id {client_id} exists in this tenant"
        ))
        .with_hint("check the Application (client) ID in the portal and --tenant; a just-created app may need a minute to replicate")
    })?;
    refuse_signed_in_app(graph, &app).await?;
    let marked = !s2s_core::setup::setups_in_tags(&app.tags).is_empty();
    let (tags, adopted) = if marked {
        let key = format!("client id {client_id}");
        claim(ctx, graph, &app, wanted, setup, &key).await?.split()
    } else {
        (None, true)
    };
    let name = match (name, app.display_name.as_deref()) {
        (Some(n), _) => n.to_string(),
        (None, Some(own)) if check_text(own, "the app's display name").is_ok() => own.to_string(),
        (None, _) => DEFAULT_NAME.to_string(),
    };
    update_if_needed(ctx, graph, &app, &name, &wanted.access, tags).await?;
    Ok(Adopted { app, name, adopted })
}

/// The app these tools are signed in through (the admin's automation app, or the client a
/// user signs in with) is never Marketo's: adopting it would change its name, audience and
/// permissions, and teardown would then act on the admin's own access.
async fn refuse_signed_in_app(graph: &Graph<'_>, app: &Application) -> Result<()> {
    let caller = graph.caller().await?;
    if caller
        .and_then(|c| c.app_id)
        .is_some_and(|id| id.eq_ignore_ascii_case(&app.app_id))
    {
        return Err(Error::refused(format!(
            "application {:?} (client id {}) is the app these tools are signed in as; it is not used for Marketo",
            app.display_name.as_deref().unwrap_or(""),
            app.app_id
        ))
        .with_hint(
            "give Marketo an app of its own: run register-app without --client-id (or with --name for a new one)",
        ));
    }
    Ok(())
}

/// Brings the app to the wanted name and permissions, adding `tags` (the setup's mark, merged
/// with the app's own) in the same PATCH when given.
async fn update_if_needed(
    ctx: &Ctx,
    graph: &Graph<'_>,
    app: &Application,
    name: &str,
    wanted: &RequiredResourceAccess,
    tags: Option<Vec<String>>,
) -> Result<()> {
    let mut body = desired_changes(Some(app), name, wanted);
    if let Some(tags) = tags {
        body["tags"] = json!(tags);
    }
    if body.as_object().is_none_or(|m| m.is_empty()) {
        ctx.say(&format!(
            "application {name:?} is up to date (client id {})",
            app.app_id
        ));
        return Ok(());
    }
    let mut what = describe(&body);
    if body.get("displayName").is_some() {
        if let Some(old) = app.display_name.as_deref() {
            what.push_str(&format!(" (was named {old:?})"));
        }
    }
    if graph.update_application(&app.id, body).await? {
        ctx.say(&format!(
            "updated application {name:?} (client id {}): {what}",
            app.app_id
        ));
    } else {
        ctx.say(&format!(
            "dry run: would update application {name:?}: {what}"
        ));
    }
    Ok(())
}

/// Whether the service principal carries the setup's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpTags {
    /// The setup's own (or shared) app: its service principal carries the tag, added when
    /// missing (an earlier version's, or a shared app's).
    Ensure,
    /// An adopted app: only a service principal a setup created carries setup tags. One this
    /// run creates gets this setup's; one another setup created (several setups adopted the
    /// app) gets this setup's beside it, so a teardown of either leaves it to the other; one
    /// that was there before any setup is the app owner's and is left as it is.
    IfSetupMade,
}

/// The app's service principal, created by a keyed upsert with the setup's tag; right after
/// the app was created Graph answers `NoBackingApplicationObject` until the app replicates
/// (graph.md §2), which is waited out.
async fn ensure_service_principal(
    ctx: &Ctx,
    graph: &Graph<'_>,
    app: &Application,
    app_just_created: bool,
    setup: &SetupId,
    tagging: SpTags,
) -> Result<Option<String>> {
    let tag = setup.tag();
    // An application this run created cannot have a service principal yet: no read first (the
    // keyed upsert below is idempotent anyway, should a concurrent run have made one).
    if !app_just_created {
        if let Some(sp) = graph.service_principal_by_app_id(&app.app_id).await? {
            let setup_made = !s2s_core::setup::setups_in_tags(&sp.tags).is_empty();
            match tags_with(&sp.tags, &tag) {
                Some(tags) if tagging == SpTags::Ensure || setup_made => {
                    let sent = graph
                        .update_service_principal(&sp.id, json!({ "tags": tags }))
                        .await?;
                    ctx.say(&format!(
                        "{} setup {setup}'s tag to service principal (object id {})",
                        if sent { "added" } else { "dry run: would add" },
                        sp.id
                    ));
                }
                _ => ctx.say(&format!("service principal exists (object id {})", sp.id)),
            }
            return Ok(Some(sp.id));
        }
    }
    let tags = [tag];
    let created = until_ready(
        ctx.http.deadline(),
        "waiting for the new application to replicate before creating its service principal",
        ctx.reporter(),
        || async {
            match graph.ensure_service_principal(&app.app_id, &tags).await {
                Ok(r) => Ok(Poll::Ready(r)),
                Err(e) if is_replication_lag(&e) => Ok(Poll::Pending(
                    "Graph does not see the application yet".into(),
                )),
                Err(e) => Err(e),
            }
        },
    )
    .await?;
    let sp = match created {
        None => {
            ctx.say("dry run: would create the service principal");
            return Ok(None);
        }
        Some(Upserted::Created(sp)) => {
            ctx.say(&format!("created service principal (object id {})", sp.id));
            sp
        }
        Some(Upserted::Updated) => {
            let sp = until_visible(
                ctx.http.deadline(),
                "waiting for the service principal to replicate",
                ctx.reporter(),
                || graph.service_principal_by_app_id(&app.app_id),
            )
            .await?;
            ctx.say(&format!("service principal exists (object id {})", sp.id));
            sp
        }
    };
    Ok(Some(sp.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names() {
        assert_eq!(
            derive_unique_name("Marketo Integration"),
            "marketo-integration"
        );
        assert_eq!(derive_unique_name("From Flag"), "from-flag");
        assert_eq!(
            derive_unique_name("Marketo Integration 2"),
            "marketo-integration-2"
        );
        // Anything the plain slug would lose is kept apart by a hash of the exact name.
        let names = [
            "Marketo Integration",
            "Marketo Integration!",
            "Marketo-Integration",
            "Marketo  Integration",
            " Marketo Integration",
            "Маркето Интеграция",
            "日本語",
            "!!!",
            "  O'Brien & Co / #1 ",
        ];
        let keys: std::collections::HashSet<String> =
            names.iter().map(|n| derive_unique_name(n)).collect();
        assert_eq!(keys.len(), names.len(), "{keys:?}");
        let k = derive_unique_name("Marketo Integration!");
        assert!(
            k.starts_with("marketo-integration-") && k.len() == 32,
            "{k}"
        );
        assert!(derive_unique_name("日本語").starts_with("app-"));
        // Stable across runs and versions: the key of an existing app must not move.
        assert_eq!(derive_unique_name("日本語"), derive_unique_name("日本語"));
        assert_eq!(derive_unique_name("日本語"), "app-77710aedc74e");
        for n in names {
            let k = derive_unique_name(n);
            assert!(k.chars().count() <= 120 && !k.is_empty(), "{k}");
        }
        let long = "é".repeat(120);
        assert!(derive_unique_name(&long).chars().count() <= 120);
    }

    #[test]
    fn changes_only_what_differs() {
        let wanted = RequiredResourceAccess {
            resource_app_id: DYNAMICS_CRM_APP_ID.into(),
            resource_access: vec![ResourceAccess {
                id: "s".into(),
                kind: "Scope".into(),
            }],
        };
        let mut app = Application {
            display_name: Some("X".into()),
            sign_in_audience: Some(SINGLE_TENANT.into()),
            required_resource_access: vec![wanted.clone()],
            ..Default::default()
        };
        assert_eq!(desired_changes(Some(&app), "X", &wanted), json!({}));
        app.required_resource_access = vec![RequiredResourceAccess {
            resource_app_id: "other".into(),
            resource_access: vec![],
        }];
        let b = desired_changes(Some(&app), "X", &wanted);
        assert_eq!(
            b["requiredResourceAccess"].as_array().map(Vec::len),
            Some(2)
        );
    }
}
