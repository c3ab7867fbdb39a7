//! The checklist: one function per check, in the order they are printed.
//!
//! A check sends the reads only it needs itself; what several checks need is a [`Shared`] read
//! — the app (`app`, `secret`), the service principals by appId (`service-principal`,
//! `consent`, `hrd-policy`), the admin's WhoAmI (`org-access`, and the gate of every Dynamics
//! check) and the application user (`application-user`, `sync-role`, `marketo-config`,
//! `sync-filter:*`, `live-login`) — done at most once per round, and only when a check of that
//! round asks for it. The checks of a round run concurrently; their rows are kept in checklist
//! order. [`Checklist::run_unsettled`] runs only the items that have not passed yet, so a
//! `--settle` round re-sends only the reads of the failing checks.

use futures_util::future::try_join_all;
use secrecy::SecretString;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use s2s_core::keys;
use s2s_core::{Ctx, Kind, Result};
use s2s_dataverse::{Dataverse, Solution, SystemUser, WhoAmI};
use s2s_graph::{
    Application, DYNAMICS_CRM_APP_ID, Graph, HrdPolicy, ServicePrincipal, USER_IMPERSONATION,
};

use crate::{Inputs, soft};
use s2s_core::checklist::Check;

mod roles;
use roles::{marketo_solution, role_holders, sync_role};

/// The words of a secret check that fails only because the secret (still valid) expires within
/// `--warn-days`: the fleet reads it to call that connection `warn`, not `crit`.
pub(crate) const EXPIRES_WITHIN_WARN_DAYS: &str = "expires in";

/// One item of the checklist (its `id` in the output).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    App,
    ServicePrincipal,
    Consent,
    Secret,
    HrdPolicy,
    OrgAccess,
    MarketoSolution,
    ApplicationUser,
    SyncRole,
    RoleHolders,
    MarketoConfig,
    SyncFilter(String),
    LiveLogin,
    Published,
}

/// The items to check for this document, in the order they are printed.
fn checklist(input: &Inputs) -> Vec<Item> {
    let mut items = vec![
        Item::App,
        Item::ServicePrincipal,
        Item::Consent,
        Item::Secret,
        Item::HrdPolicy,
        Item::OrgAccess,
        Item::MarketoSolution,
        Item::ApplicationUser,
        Item::SyncRole,
        Item::RoleHolders,
        Item::MarketoConfig,
    ];
    items.extend(input.filter_entities.iter().cloned().map(Item::SyncFilter));
    items.extend([Item::LiveLogin, Item::Published]);
    items
}

/// What one item found: usually one row; `sync-role` has one per role and `app` may add an
/// object-id row. No row: not checked, because the org or the application user it needs failed
/// its own check (those rows are left out, not failed twice).
type Rows = Vec<Check>;

/// A read's answer, or the message of a failure that is a check's finding (see [`soft`]).
type Soft<T> = std::result::Result<T, String>;

/// What every check may use: the clients, the document's inputs and the flags.
struct Env<'a> {
    ctx: &'a Ctx,
    graph: Graph<'a>,
    dv: Dataverse<'a>,
    input: &'a Inputs,
    roles: &'a [String],
    warn_days: u32,
}

impl Env<'_> {
    /// A fix that runs `tool`: the command to paste, with this run's `--state` file and target
    /// flags (core's `Ctx::command`).
    fn run(&self, tool: &str) -> String {
        self.ctx.command(tool, &[])
    }

    /// As [`Env::run`], with flags and their values (each value quoted for a shell).
    fn run_with(&self, tool: &str, flags: &[(&str, &str)]) -> String {
        let words: Vec<String> = flags
            .iter()
            .flat_map(|(flag, value)| [flag.to_string(), s2s_core::hint::shell_word(value)])
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        self.ctx.command(tool, &words)
    }

    /// The assign-role command that gives the roles this run checks: with `--role` for each
    /// when they are not assign-role's default, so the pasted fix assigns what is checked.
    fn assign_roles(&self) -> String {
        if self.roles.len() == 1 && self.roles[0] == s2s_dataverse::MARKETO_SYNC_ROLE {
            return self.run("assign-role");
        }
        let flags: Vec<(&str, &str)> = self.roles.iter().map(|r| ("--role", r.as_str())).collect();
        self.run_with("assign-role", &flags)
    }

    /// `a, then b` as pasteable commands.
    fn then(&self, first: &str, second: &str) -> String {
        format!("{}, then {}", self.run(first), self.run(second))
    }
}

/// A refusal of this sign-in (403): the check could not be read, which is not a finding about
/// the setup (it is a `skip` that says so).
fn forbidden(e: &s2s_core::Error) -> bool {
    e.service().is_some_and(|s| s.status == 403)
}

/// The checklist of one document and what its items found so far.
pub(crate) struct Checklist<'a> {
    env: Env<'a>,
    items: Vec<Item>,
    /// Per item; empty until it ran (or while the check it needs fails).
    rows: Vec<Rows>,
}

/// Every check of the document, run once (what `verify-sync --fleet` reports).
pub(crate) async fn all_checks(
    ctx: &Ctx,
    input: &Inputs,
    roles: &[String],
    warn_days: u32,
) -> Result<Vec<Check>> {
    let mut list = Checklist::new(ctx, input, roles, warn_days)?;
    list.run_unsettled().await?;
    Ok(list.checks())
}

impl<'a> Checklist<'a> {
    pub(crate) fn new(
        ctx: &'a Ctx,
        input: &'a Inputs,
        roles: &'a [String],
        warn_days: u32,
    ) -> Result<Self> {
        let org = s2s_core::urls::base(ctx.config().dynamics()?);
        let items = checklist(input);
        Ok(Checklist {
            env: Env {
                ctx,
                graph: Graph::new(&ctx.http),
                dv: Dataverse::new(&ctx.http, &org),
                input,
                roles,
                warn_days,
            },
            rows: vec![Vec::new(); items.len()],
            items,
        })
    }

    /// Runs, concurrently, every item that has not passed yet (all of them the first time),
    /// with fresh shared reads for the items that need them.
    pub(crate) async fn run_unsettled(&mut self) -> Result<()> {
        let shared = Shared {
            org_answered: self.passed(&Item::OrgAccess),
            ..Shared::default()
        };
        let (env, shared) = (&self.env, &shared);
        let todo = self
            .items
            .iter()
            .zip(&self.rows)
            .enumerate()
            .filter(|(_, (_, rows))| !settled(rows))
            .map(|(i, (item, _))| async move {
                run_item(env, shared, item).await.map(|rows| (i, rows))
            });
        for (i, rows) in try_join_all(todo).await? {
            self.rows[i] = rows;
        }
        Ok(())
    }

    /// The rows of every item, in checklist order.
    pub(crate) fn checks(&self) -> Vec<Check> {
        self.rows.iter().flatten().cloned().collect()
    }

    /// How many rows fail.
    pub(crate) fn failing(&self) -> usize {
        self.rows.iter().flatten().filter(|c| !c.ok()).count()
    }

    fn passed(&self, item: &Item) -> bool {
        self.items
            .iter()
            .zip(&self.rows)
            .any(|(i, rows)| i == item && settled(rows))
    }
}

/// An item is done when it ran and every row of it passes.
fn settled(rows: &Rows) -> bool {
    !rows.is_empty() && rows.iter().all(|c| c.ok())
}

/// The check of one item, as rows.
async fn run_item(env: &Env<'_>, shared: &Shared, item: &Item) -> Result<Rows> {
    Ok(match item {
        Item::App => app(env, shared).await?,
        Item::ServicePrincipal => vec![service_principal(env, shared).await?],
        Item::Consent => vec![consent(env, shared).await?],
        Item::Secret => vec![secret(env, shared).await?],
        Item::HrdPolicy => vec![hrd_policy(env, shared).await?],
        Item::OrgAccess => vec![org_access(env, shared).await?],
        Item::MarketoSolution => marketo_solution(env, shared).await?.into_iter().collect(),
        Item::ApplicationUser => application_user(env, shared).await?.into_iter().collect(),
        Item::SyncRole => sync_role(env, shared).await?,
        Item::RoleHolders => role_holders(env, shared).await?.into_iter().collect(),
        Item::MarketoConfig => marketo_config(env, shared).await?.into_iter().collect(),
        Item::SyncFilter(entity) => sync_filter(env, shared, entity)
            .await?
            .into_iter()
            .collect(),
        Item::LiveLogin => vec![live_login(env, shared).await?],
        Item::Published => vec![published(env.ctx)],
    })
}

/// The reads several checks share, each sent at most once per round (the first check to ask
/// sends it, the others wait for its answer).
#[derive(Default)]
struct Shared {
    /// The org answered WhoAmI in an earlier round: the Dynamics checks need not ask again.
    org_answered: bool,
    app: OnceCell<Soft<Option<Application>>>,
    sps: OnceCell<Soft<Vec<ServicePrincipal>>>,
    who: OnceCell<Soft<WhoAmI>>,
    app_users: OnceCell<Soft<Vec<SystemUser>>>,
    solution: OnceCell<Soft<Option<Solution>>>,
}

impl Shared {
    /// The app, by its client id.
    async fn app(&self, env: &Env<'_>) -> Result<&Soft<Option<Application>>> {
        self.app
            .get_or_try_init(|| async {
                soft(env.graph.application_by_app_id(&env.input.client_id).await)
            })
            .await
    }

    /// The service principal of `app_id`: the app's own or Dynamics CRM's (the grant's
    /// resource) — both come in one read.
    async fn sp_of(&self, env: &Env<'_>, app_id: &str) -> Result<Soft<Option<ServicePrincipal>>> {
        let sps = self
            .sps
            .get_or_try_init(|| async {
                soft(
                    env.graph
                        .service_principals_by_app_ids(&[&env.input.client_id, DYNAMICS_CRM_APP_ID])
                        .await,
                )
            })
            .await?;
        Ok(match sps {
            Ok(list) => Ok(list
                .iter()
                .find(|sp| sp.app_id.eq_ignore_ascii_case(app_id))
                .cloned()),
            Err(e) => Err(e.clone()),
        })
    }

    /// The app's service principal id: as Graph shows it, else as the document records it.
    async fn sp_id(&self, env: &Env<'_>) -> Result<Option<String>> {
        Ok(match self.sp_of(env, &env.input.client_id).await? {
            Ok(Some(sp)) => Some(sp.id),
            _ => env.input.sp_id.clone(),
        })
    }

    /// The admin's WhoAmI in the org.
    async fn who(&self, env: &Env<'_>) -> Result<&Soft<WhoAmI>> {
        self.who
            .get_or_try_init(|| async { soft(env.dv.who_am_i().await) })
            .await
    }

    /// The org answers the admin: the gate of every Dynamics check but `org-access` itself.
    async fn org_answers(&self, env: &Env<'_>) -> Result<bool> {
        Ok(self.org_answered || self.who(env).await?.is_ok())
    }

    /// The application users of the app's client id (read only when the org answers).
    async fn app_users(&self, env: &Env<'_>) -> Result<Option<&Soft<Vec<SystemUser>>>> {
        if !self.org_answers(env).await? {
            return Ok(None);
        }
        let users = self
            .app_users
            .get_or_try_init(|| async {
                soft(env.dv.application_users(&env.input.client_id).await)
            })
            .await?;
        Ok(Some(users))
    }

    /// The Marketo solution, when the org answers (`marketo-solution`, `role-holders`).
    async fn solution(&self, env: &Env<'_>) -> Result<Option<&Soft<Option<Solution>>>> {
        if !self.org_answers(env).await? {
            return Ok(None);
        }
        let s = self
            .solution
            .get_or_try_init(|| async { soft(env.dv.marketo_solution().await) })
            .await?;
        Ok(Some(s))
    }

    /// The application user, when the org answers and has one.
    async fn app_user(&self, env: &Env<'_>) -> Result<Option<&SystemUser>> {
        Ok(self
            .app_users(env)
            .await?
            .and_then(|u| u.as_ref().ok())
            .and_then(|u| u.first()))
    }
}

// ---------- Entra ID ----------

/// `app`: the app exists and is single-tenant (and is the object the document names).
async fn app(env: &Env<'_>, shared: &Shared) -> Result<Rows> {
    let name = "app exists and is single-tenant";
    let mut rows = vec![match shared.app(env).await? {
        Ok(Some(a)) if a.sign_in_audience.as_deref() == Some("AzureADMyOrg") => {
            Check::pass("app", name, format!("client id {}", a.app_id))
        }
        Ok(Some(a)) => Check::fail(
            "app",
            name,
            format!(
                "signInAudience is {:?}",
                a.sign_in_audience.as_deref().unwrap_or("unset")
            ),
            env.run("register-app"),
        ),
        Ok(None) => Check::fail(
            "app",
            name,
            format!("no application with client id {}", env.input.client_id),
            env.run("register-app"),
        ),
        Err(e) => Check::fail(
            "app",
            name,
            e,
            "check the admin's Graph permissions, then verify-sync again",
        ),
    }];
    if let (Ok(Some(a)), Some(o)) = (shared.app(env).await?, &env.input.object_id) {
        if !a.id.eq_ignore_ascii_case(o) {
            rows.push(Check::fail(
                "app",
                "app object id matches the document",
                format!("the document says {o}, Graph says {}", a.id),
                env.run("register-app"),
            ));
        }
    }
    Ok(rows)
}

/// `service-principal`: the app has its service principal.
async fn service_principal(env: &Env<'_>, shared: &Shared) -> Result<Check> {
    let (id, name) = ("service-principal", "service principal exists");
    Ok(match shared.sp_of(env, &env.input.client_id).await? {
        Ok(Some(sp)) => Check::pass(id, name, format!("object id {}", sp.id)),
        Ok(None) => Check::fail(
            id,
            name,
            "the app has no service principal",
            env.run("register-app"),
        ),
        Err(e) => Check::fail(id, name, e, env.run("register-app")),
    })
}

/// `consent`: a tenant-wide (AllPrincipals) grant of Dynamics CRM `user_impersonation`.
async fn consent(env: &Env<'_>, shared: &Shared) -> Result<Check> {
    let (id, name) = (
        "consent",
        "admin consent for Dynamics CRM user_impersonation",
    );
    let sp_id = shared.sp_id(env).await?;
    Ok(
        match (&sp_id, shared.sp_of(env, DYNAMICS_CRM_APP_ID).await?) {
            (Some(sp_id), Ok(Some(crm))) => {
                match soft(env.graph.grants_for(sp_id, &crm.id).await)? {
                    Ok(grants)
                        if grants
                            .iter()
                            .any(|g| g.scopes().contains(&USER_IMPERSONATION)) =>
                    {
                        Check::pass(id, name, "tenant-wide (AllPrincipals) grant present")
                    }
                    Ok(_) => Check::fail(
                        id,
                        name,
                        "no tenant-wide grant with user_impersonation",
                        env.run("grant-consent"),
                    ),
                    Err(e) => Check::fail(id, name, e, env.run("grant-consent")),
                }
            }
            (_, Ok(None)) => Check::fail(
                id,
                name,
                "the tenant has no Dynamics CRM service principal",
                env.run("grant-consent"),
            ),
            (None, _) => Check::fail(
                id,
                name,
                "no service principal to check",
                env.then("register-app", "grant-consent"),
            ),
            (_, Err(e)) => Check::fail(id, name, e, env.run("grant-consent")),
        },
    )
}

/// `secret`: the document's key id is on the app, its file holds the recorded secret (its
/// SHA-256 is `secret.sha256`; an older document: it starts with the credential's hint) and is
/// private to its owner (0600), and it outlives `--warn-days`. A secret kept outside a file
/// (`secret.storage: "external"`, `make-secret --forget-file`) is checked on the app only.
/// Every fix is a command to paste, naming the step that repairs what is wrong.
async fn secret(env: &Env<'_>, shared: &Shared) -> Result<Check> {
    let (id, name) = (
        "secret",
        "client secret exists, is saved and is not about to expire",
    );
    let input = env.input;
    let ctx = env.ctx;
    let make_secret = |args: &[&str]| ctx.command("make-secret", args);
    let Some(key_id) = &input.key_id else {
        return Ok(Check::fail(
            id,
            name,
            "the document has no secret.key_id",
            make_secret(&[]),
        ));
    };
    let Ok(Some(app)) = shared.app(env).await? else {
        return Ok(Check::fail(
            id,
            name,
            "the app could not be read",
            format!(
                "{}, then {}",
                ctx.command("register-app", &[]),
                make_secret(&[])
            ),
        ));
    };
    let Some(cred) = app.password_credential(key_id) else {
        return Ok(Check::fail(
            id,
            name,
            format!("key {key_id} is no longer on the app"),
            make_secret(&[]),
        ));
    };
    // A file that holds no usable secret of this key: a new one (then Marketo), or, when the
    // secret now lives elsewhere, recording that.
    let elsewhere = || {
        format!(
            "{} for a new secret (then update Marketo), or {} if the secret is kept elsewhere (a vault)",
            make_secret(&["--rotate"]),
            make_secret(&["--forget-file"])
        )
    };
    let saved_in = match &input.secret_file {
        None if kept_outside_a_file(ctx) => {
            "kept outside a file (secret.storage: external)".to_string()
        }
        None => {
            return Ok(Check::fail(
                id,
                name,
                "the document has no secret.file",
                elsewhere(),
            ));
        }
        Some(file) => {
            let shown = s2s_core::output::sanitize(&file.display().to_string()).into_owned();
            if !file.exists() {
                return Ok(Check::fail(
                    id,
                    name,
                    format!("{shown} is missing"),
                    elsewhere(),
                ));
            }
            let value = match read_secret_file(file) {
                Ok(v) => v,
                Err(why) => return Ok(Check::fail(id, name, why, make_secret(&[]))),
            };
            let recorded = ctx.doc.text(keys::SECRET_SHA256);
            let text = secrecy::ExposeSecret::expose_secret(&value);
            match recorded {
                Some(sha)
                    if !sha.eq_ignore_ascii_case(&s2s_core::fsutil::secret_sha256(&value)) =>
                {
                    return Ok(Check::fail(
                        id,
                        name,
                        format!(
                            "{shown} does not hold the recorded secret (its SHA-256 differs from secret.sha256): it was changed or damaged; make-secret saves a new secret there (then update Marketo)"
                        ),
                        make_secret(&[]),
                    ));
                }
                None if !cred.hint.as_deref().is_some_and(|h| text.starts_with(h)) => {
                    return Ok(Check::fail(
                        id,
                        name,
                        format!(
                            "{shown} does not hold the secret of key {key_id} (hint {})",
                            cred.hint.as_deref().unwrap_or("?")
                        ),
                        format!(
                            "point secret.file at the file make-secret wrote, or move {shown} away and run {}",
                            make_secret(&["--rotate"])
                        ),
                    ));
                }
                _ => {}
            }
            if let Err(why) = s2s_core::fsutil::check_private(file) {
                return Ok(Check::fail(
                    id,
                    name,
                    format!("{shown} is not private to its owner ({why})"),
                    make_secret(&[]),
                ));
            }
            format!("in {shown}")
        }
    };
    let warn_days = env.warn_days;
    Ok(match cred.expires_at() {
        Some(end) => {
            let left = end - OffsetDateTime::now_utc();
            if left <= time::Duration::ZERO {
                // Expired (also within its last day, where whole days round to 0): Marketo's
                // sign-in fails now, which no "expires in" may soften.
                Check::fail(
                    id,
                    name,
                    format!("key {key_id} expired on {}", end.date()),
                    make_secret(&[]),
                )
            } else if left.whole_days() < i64::from(warn_days) {
                Check::fail(
                    id,
                    name,
                    format!(
                        "key {key_id} {EXPIRES_WITHIN_WARN_DAYS} {} day(s), within --warn-days {warn_days}; make-secret adds a fresh secret (re-enter it in Marketo, then retire the old one)",
                        left.whole_days().max(0)
                    ),
                    make_secret(&[]),
                )
            } else {
                Check::pass(
                    id,
                    name,
                    // Rounded for people: a secret made with --expires-in 90d reads "in 90
                    // days" a minute later, not 89 (the --warn-days test above counts whole days).
                    format!(
                        "key {key_id} ({}…) {saved_in}, expires {} (in {} days)",
                        cred.hint.as_deref().unwrap_or(""),
                        end.date(),
                        (left + time::Duration::hours(12)).whole_days()
                    ),
                )
            }
        }
        None => Check::fail(
            id,
            name,
            format!("key {key_id} has no readable end date"),
            make_secret(&[]),
        ),
    })
}

/// The document says the secret is kept outside a file on purpose (`make-secret --forget-file`).
fn kept_outside_a_file(ctx: &Ctx) -> bool {
    ctx.doc.text(keys::SECRET_STORAGE) == Some("external")
}

/// `hrd-policy`: when a domain is federated, the service principal has an
/// AllowCloudPasswordValidation Home Realm Discovery policy.
async fn hrd_policy(env: &Env<'_>, shared: &Shared) -> Result<Check> {
    let (id, name) = (
        "hrd-policy",
        "Home Realm Discovery policy (federated tenants)",
    );
    let domains = match env.graph.federated_domains().await {
        Err(e) if forbidden(&e) => {
            return Ok(Check::skip(
                id,
                name,
                format!("not readable with this sign-in: {e}"),
            ));
        }
        other => other,
    };
    let federated = match soft(domains)? {
        Err(e) => return Ok(Check::fail(id, name, e, env.run("set-hrd-policy"))),
        Ok(f) if f.is_empty() => {
            return Ok(Check::skip(id, name, "not needed: no federated domain"));
        }
        Ok(f) => f.join(", "),
    };
    let Some(sp_id) = shared.sp_id(env).await? else {
        return Ok(Check::fail(
            id,
            name,
            "no service principal to check",
            env.then("register-app", "set-hrd-policy"),
        ));
    };
    let policies = match env.graph.hrd_policies_of(&sp_id).await {
        Err(e) if forbidden(&e) => {
            return Ok(Check::skip(
                id,
                name,
                format!(
                    "federated: {federated}; the policies are not readable with this sign-in: {e}"
                ),
            ));
        }
        other => other,
    };
    Ok(match soft(policies)? {
        Ok(ps) if ps.iter().any(HrdPolicy::allows_cloud_password_validation) => Check::pass(
            id,
            name,
            format!("AllowCloudPasswordValidation assigned (federated: {federated})"),
        ),
        Ok(_) => Check::fail(
            id,
            name,
            format!(
                "federated domain(s) {federated} but no AllowCloudPasswordValidation policy on the service principal"
            ),
            env.run("set-hrd-policy"),
        ),
        Err(e) => Check::fail(id, name, e, env.run("set-hrd-policy")),
    })
}

// ---------- Dynamics 365 ----------

/// `org-access`: the org answers WhoAmI for the admin.
async fn org_access(env: &Env<'_>, shared: &Shared) -> Result<Check> {
    let (id, name) = ("org-access", "the org answers WhoAmI for the admin");
    Ok(match shared.who(env).await? {
        Ok(w) => Check::pass(id, name, format!("{} as user {}", env.dv.org(), w.user_id)),
        Err(e) => Check::fail(
            id,
            name,
            e.clone(),
            "check --dynamics-url and that the admin is a System Administrator of the org",
        ),
    })
}

/// `application-user`: the app's application user exists, is enabled, and is the one the
/// document names.
async fn application_user(env: &Env<'_>, shared: &Shared) -> Result<Option<Check>> {
    let (id, name) = ("application-user", "application user exists and is enabled");
    let input = env.input;
    let Some(users) = shared.app_users(env).await? else {
        return Ok(None);
    };
    let user = match users {
        Err(e) => {
            return Ok(Some(Check::fail(id, name, e.clone(), env.assign_roles())));
        }
        Ok(users) => match users.first() {
            Some(u) => u,
            None => {
                return Ok(Some(Check::fail(
                    id,
                    name,
                    format!("no application user for client id {}", input.client_id),
                    env.assign_roles(),
                )));
            }
        },
    };
    Ok(Some(if user.is_disabled() {
        Check::fail(
            id,
            name,
            format!("user {} is disabled", user.systemuserid),
            format!("{} (it enables the user)", env.assign_roles()),
        )
    } else if input
        .app_user_id
        .as_deref()
        .is_some_and(|d| !d.eq_ignore_ascii_case(&user.systemuserid))
    {
        Check::fail(
            id,
            name,
            format!(
                "the document names {} but the org has {}",
                input.app_user_id.as_deref().unwrap_or(""),
                user.systemuserid
            ),
            env.assign_roles(),
        )
    } else {
        Check::pass(
            id,
            name,
            format!(
                "{} ({})",
                user.internalemailaddress.as_deref().unwrap_or("no e-mail"),
                user.systemuserid
            ),
        )
    }))
}

/// `marketo-config`: the Marketo Config "Default" record's Marketo User is the application user.
async fn marketo_config(env: &Env<'_>, shared: &Shared) -> Result<Option<Check>> {
    let Some(user) = shared.app_user(env).await? else {
        return Ok(None);
    };
    let (id, name) = (
        "marketo-config",
        "Marketo Config \"Default\" points Marketo User at the application user",
    );
    let input = env.input;
    let (Some(set), Some(rec), Some(lookup)) = (
        &input.config_set,
        &input.config_record,
        &input.config_lookup,
    ) else {
        return Ok(Some(Check::fail(
            id,
            name,
            "the document has no marketo_config (configure-marketo has not run)",
            env.run("configure-marketo"),
        )));
    };
    let select = format!("_{lookup}_value");
    let row = soft(env.dv.record_if_named(set, rec, &select).await)?;
    Ok(Some(match row {
        Ok(None) => Check::fail(
            id,
            name,
            format!("{set}({rec}) with column {select} is not in the org"),
            env.run("configure-marketo"),
        ),
        Ok(Some(row)) => {
            let current = row[&select].as_str().unwrap_or("");
            if current.eq_ignore_ascii_case(&user.systemuserid) {
                Check::pass(id, name, format!("{set}({rec})"))
            } else if current.is_empty() {
                Check::fail(
                    id,
                    name,
                    "Marketo User is empty",
                    env.run("configure-marketo"),
                )
            } else {
                Check::fail(
                    id,
                    name,
                    format!("Marketo User is {current}, not {}", user.systemuserid),
                    env.run("configure-marketo"),
                )
            }
        }
        Err(e) => Check::fail(id, name, e, env.run("configure-marketo")),
    }))
}

/// `sync-filter:<entity>`: the Two Options field `new_synctomkto` add-sync-filter creates.
async fn sync_filter(env: &Env<'_>, shared: &Shared, entity: &str) -> Result<Option<Check>> {
    // Checked once the application user is (as when the checks ran in sequence).
    if shared.app_user(env).await?.is_none() {
        return Ok(None);
    }
    let id = format!("sync-filter:{entity}");
    let name = format!("sync filter field new_synctomkto on {entity}");
    // The fix names the entity: add-sync-filter alone does lead and contact.
    let add = env.run_with("add-sync-filter", &[("--entity", entity)]);
    Ok(Some(
        match soft(env.dv.attribute(entity, "new_synctomkto").await)? {
            Ok(Some(a)) if a.is_boolean() => Check::pass(&id, &name, "Two Options field present"),
            Ok(Some(a)) => Check::fail(
                &id,
                &name,
                format!("exists but is {}", a.type_name()),
                format!("delete the field in Dynamics, then {add}"),
            ),
            Ok(None) => Check::fail(&id, &name, "missing", add),
            Err(e) => Check::fail(&id, &name, e, add),
        },
    ))
}

/// The secret in `file`, or why it is not usable — for the `secret` and `live-login` checks
/// (core's bounded, non-blocking read: the path comes from the document).
fn read_secret_file(file: &std::path::Path) -> std::result::Result<SecretString, String> {
    match s2s_core::fsutil::read_secret(file) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(format!("{} is empty", file.display())),
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// `live-login`: Marketo's own test — the app's secret obtains a token for the org, and WhoAmI
/// answers as the application user (design.md, verify-sync). A secret kept outside a file
/// (`secret.storage: "external"`) cannot be tested from here unless `--secret-file` names a copy:
/// `skip`, not a failure whose fix could change nothing.
async fn live_login(env: &Env<'_>, shared: &Shared) -> Result<Check> {
    let (id, name) = (
        "live-login",
        "the app's own secret signs in to the org as the application user",
    );
    let input = env.input;
    let ctx = env.ctx;
    let rotate = || {
        format!(
            "{} for a new secret (then update Marketo), or {} if the secret is kept elsewhere (a vault)",
            ctx.command("make-secret", &["--rotate"]),
            ctx.command("make-secret", &["--forget-file"])
        )
    };
    let Some(file) = &input.secret_file else {
        if kept_outside_a_file(ctx) {
            return Ok(Check::skip(
                id,
                name,
                "the secret is kept outside a file (secret.storage: external); to test it, pass --secret-file with a copy, or run Marketo's Validate Sync",
            ));
        }
        return Ok(Check::fail(
            id,
            name,
            "no secret file to test with",
            rotate(),
        ));
    };
    let secret = match read_secret_file(file) {
        Ok(s) => s,
        Err(_) if !file.exists() => {
            return Ok(Check::fail(
                id,
                name,
                format!(
                    "{} is missing",
                    s2s_core::output::sanitize(&file.display().to_string())
                ),
                rotate(),
            ));
        }
        Err(why) => return Ok(Check::fail(id, name, why, ctx.command("make-secret", &[]))),
    };
    let who = format!(
        "the Marketo app {} and its secret in {}",
        input.client_id,
        file.display()
    );
    let http = &ctx.http;
    let org = env.dv.org();
    let token = match http
        .client_credentials(&input.client_id, &secret, org, &who)
        .await
    {
        Ok((t, _)) => t,
        Err(e) if e.kind == Kind::Timeout => return Err(e),
        Err(e) => {
            return Ok(Check::fail(
                id,
                name,
                format!(
                    "{e}; the saved secret is not accepted: make-secret --rotate saves a new one (then update Marketo)"
                ),
                ctx.command("make-secret", &["--rotate"]),
            ));
        }
    };
    let assign_role = || ctx.command("assign-role", &[]);
    let as_app = Dataverse::new(http, org).with_token(token);
    Ok(match as_app.who_am_i().await {
        Ok(w)
            if shared
                .app_user(env)
                .await?
                .is_some_and(|u| u.systemuserid.eq_ignore_ascii_case(&w.user_id)) =>
        {
            Check::pass(id, name, format!("WhoAmI answered user {}", w.user_id))
        }
        Ok(w) => Check::fail(
            id,
            name,
            format!(
                "WhoAmI answered user {}, not the application user",
                w.user_id
            ),
            assign_role(),
        ),
        Err(e) if e.kind == Kind::Timeout => return Err(e),
        Err(e) => Check::fail(
            id,
            name,
            format!("{e}; an enabled application user is needed"),
            assign_role(),
        ),
    })
}

// ---------- the document ----------

/// `published`: "Publish All Customizations" ran after the last Dataverse change the document
/// records (core's `owed` module, the rule publish-customizations --if-changed follows). Read
/// from the document alone: Dataverse keeps no "unpublished changes" flag to ask.
fn published(ctx: &Ctx) -> Check {
    let doc = &ctx.doc;
    let publish = || ctx.command("publish-customizations", &["--if-changed"]);
    let id = "published";
    let name = "customizations published after the last Dataverse change";
    if doc.text(keys::PUBLISH_STATUS) == Some("pending") {
        return Check::fail(id, name, "an earlier publish did not finish", publish());
    }
    match s2s_core::owed::changes_since_publish(doc, false) {
        Ok(changed) if changed.is_empty() => Check::pass(
            id,
            name,
            match doc.text(keys::PUBLISH_LAST_PUBLISHED_AT) {
                Some(at) => format!("last published at {}", s2s_core::output::sanitize(at)),
                None => "no Dataverse change recorded in the document".to_string(),
            },
        ),
        Ok(changed) => Check::fail(
            id,
            name,
            format!(
                "{} changed Dataverse after the last publish",
                changed.join(", ")
            ),
            publish(),
        ),
        Err(e) => Check::fail(id, name, e.to_string(), publish()),
    }
}
