//! Stage 6, the steps that remove: an interrupted run's orphans, `--revoke-others`,
//! `--retire-old` / `--retire KEYID`, and `--forget-file` (which removes nothing on the tenant).
//!
//! Nothing is removed from an app the tenant does not show is this setup's
//! (`discovery::app_is_ours`: its tags carry this setup's full id, or it is an untagged adopted
//! app): `--revoke-others`, `--retire-old` and `--retire` are refused there (exit 4, before any
//! write), and an interrupted run's credentials are kept. On this setup's app a credential is
//! removed only when its display name carries this setup's mark (`discovery::owned`), or when
//! it is named with `--retire KEYID` on the command line — never because the document says so,
//! and never the credential whose secret is in use (the document's `secret.key_id`, whose value
//! the file holds). What is kept is named, with why.

use s2s_core::keys;
use s2s_core::{Ctx, Error, Result};
use s2s_graph::{Application, Graph, PasswordCredential};

use crate::discovery::{app_is_ours, owned};
use crate::input::{EXTERNAL, Input};
use crate::secret_file::{Saved, shown};
use crate::steps::{describe, print_step3, remove_credential};

/// Removes the credentials an interrupted run made whose secret nobody has (they carry its run
/// tag, and this setup's mark); lists any that lack the mark. Returns the app as it is now.
pub(crate) async fn remove_orphans(
    ctx: &Ctx,
    g: &Graph<'_>,
    mut app: Application,
    orphans: &[PasswordCredential],
    input: &Input,
) -> Result<Application> {
    if let Err(why) = app_is_ours(input, &app) {
        for c in orphans {
            ctx.warn(&format!(
                "kept credential {}, which an interrupted make-secret run added and whose secret was never saved: the \
                 app is not shown to be this setup's ({why}); remove it in the portal (App registrations > the app > \
                 Certificates & secrets) if nothing uses it",
                describe(c)
            ));
        }
        return Ok(app);
    }
    for c in orphans {
        if !owned(input.setup.as_ref(), c) {
            ctx.warn(&format!(
                "credential {} carries the tag of an interrupted make-secret run but not this setup's mark; kept (to remove it: {})",
                describe(c),
                ctx.command("make-secret", &["--retire", &c.key_id, "--yes"])
            ));
            continue;
        }
        if remove_credential(ctx, g, &app.id, &c.key_id).await? {
            ctx.say(&format!(
                "removed credential {}: an interrupted make-secret run added it and its secret was never saved",
                describe(c)
            ));
            app.password_credentials.retain(|k| k.key_id != c.key_id);
        } else if ctx.dry_run() {
            ctx.say(&format!(
                "would remove credential {}: an interrupted make-secret run added it and its secret was never saved",
                describe(c)
            ));
        }
    }
    Ok(app)
}

/// `--revoke-others`, `--retire-old` or `--retire` on an app the tenant does not show is this
/// setup's (`discovery::app_is_ours`): exit 4 before any write, naming the credentials kept.
pub(crate) fn refuse_unproven_app(
    ctx: &Ctx,
    app: &Application,
    input: &Input,
    flag: &str,
    why: &str,
) -> Error {
    let current = input.record.key_id.as_deref();
    for c in app
        .password_credentials
        .iter()
        .filter(|c| current.is_none_or(|k| !c.key_id.eq_ignore_ascii_case(k)))
    {
        ctx.say(&format!(
            "kept credential {}: the app is not shown to be this setup's",
            describe(c)
        ));
    }
    Error::refused(format!(
        "{flag}: the app \"{}\" (client id {}) is not shown to be this setup's: {why}; no credential is removed, and \
         nothing was changed",
        s2s_core::output::sanitize(app.display_name.as_deref().unwrap_or("")),
        app.app_id
    ))
    .with_hint(format!(
        "use the state document of the setup whose app this is; an earlier version's document gets its app marked by \
         {} first; a credential of an app that is not this setup's is removed in the portal (App registrations > \
         the app > Certificates & secrets)",
        ctx.command("register-app", &[])
    ))
}

/// Every credential but the one in use: listed, or with `--revoke-others` removed when it is
/// this setup's (after confirmation).
pub(crate) async fn others(
    ctx: &mut Ctx,
    app: &Application,
    input: &Input,
    kept: &str,
    revoke: bool,
    yes: bool,
) -> Result<()> {
    let setup = input.setup.as_ref();
    let others: Vec<&PasswordCredential> = app
        .password_credentials
        .iter()
        .filter(|c| !c.key_id.eq_ignore_ascii_case(kept))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    let (ours, foreign): (Vec<&PasswordCredential>, Vec<&PasswordCredential>) =
        others.iter().copied().partition(|c| owned(setup, c));
    let previous = ctx
        .doc
        .get_str(keys::SECRET_PREVIOUS_KEY_ID.path())
        .ok()
        .flatten()
        .map(str::to_string);
    if !revoke {
        // A secret added but never saved (a killed run) shows up here, so it can be removed.
        ctx.say(&format!(
            "the app has {} other password credential(s), still valid for sign-in:",
            others.len()
        ));
        for c in &ours {
            let what = if previous.as_deref() == Some(c.key_id.as_str()) {
                "the previous secret (secret.previous_key_id)"
            } else {
                "this setup's"
            };
            ctx.say(&format!("  {} — {what}", describe(c)));
        }
        for c in &foreign {
            ctx.say(&format!("  {} — {}", describe(c), not_ours_reason(input)));
        }
        if previous
            .as_deref()
            .is_some_and(|p| ours.iter().any(|c| c.key_id == p))
        {
            ctx.say(&format!(
                "once Marketo uses the saved secret, remove the previous one: {}",
                ctx.command("make-secret", &["--retire-old", "--yes"])
            ));
        } else if !ours.is_empty() {
            ctx.say(&format!(
                "once nothing uses this setup's others (Marketo has the saved secret), remove them: {}",
                ctx.command("make-secret", &["--revoke-others", "--yes"])
            ));
        }
        if let Some(c) = foreign.first() {
            ctx.say(&format!(
                "credentials that are not this setup's are removed only when named, e.g.: {}",
                ctx.command("make-secret", &["--retire", &c.key_id, "--yes"])
            ));
        }
        return Ok(());
    }
    for c in &foreign {
        ctx.say(&format!(
            "kept credential {}: {}; to remove it anyway: {}",
            describe(c),
            not_ours_reason(input),
            ctx.command("make-secret", &["--retire", &c.key_id, "--yes"])
        ));
    }
    if ours.is_empty() {
        return Ok(());
    }
    let previous = previous.as_deref();
    remove_confirmed(ctx, &app.id, &ours, Removal::Revoke, previous, yes).await
}

/// Which removal asks: `--revoke-others` (this setup's other credentials) or `--retire-old` /
/// `--retire` (old ones). Only the words differ.
#[derive(Clone, Copy)]
enum Removal {
    Revoke,
    Retire,
}

impl Removal {
    /// What the prompt calls the credentials, and how Marketo might still depend on them.
    fn prompt(self) -> (&'static str, &'static str) {
        match self {
            Removal::Revoke => ("other credential(s) of this setup", "uses"),
            Removal::Retire => ("old credential(s)", "still uses"),
        }
    }
    /// The verb for a removal done, and for one a dry run would do.
    fn verbs(self) -> (&'static str, &'static str) {
        match self {
            Removal::Revoke => ("revoked", "would revoke"),
            Removal::Retire => ("retired", "would retire"),
        }
    }
}

/// Asks once for all of `creds` (the prompt names their key ids), then removes them one by one
/// and says each. Removing the credential `previous` names drops `secret.previous_key_id`.
async fn remove_confirmed(
    ctx: &mut Ctx,
    object_id: &str,
    creds: &[&PasswordCredential],
    kind: Removal,
    previous: Option<&str>,
    yes: bool,
) -> Result<()> {
    let (what, uses) = kind.prompt();
    let (done, would) = kind.verbs();
    let go_ahead = s2s_core::confirm::confirm(
        ctx.tool(),
        &format!(
            "remove {} {what} ({}); Marketo stops working if it {uses} one of them",
            creds.len(),
            creds
                .iter()
                .map(|c| c.key_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        yes,
        ctx.dry_run(),
    )?;
    if !go_ahead {
        ctx.say("not removing any credential (not confirmed)");
        return Ok(());
    }
    let g = Graph::new(&ctx.http);
    for c in creds {
        if remove_credential(ctx, &g, object_id, &c.key_id).await? {
            ctx.say(&format!("{done} credential {}", describe(c)));
            if previous == Some(c.key_id.as_str()) {
                ctx.doc.remove(keys::SECRET_PREVIOUS_KEY_ID);
            }
        } else if ctx.dry_run() {
            ctx.say(&format!("{would} credential {}", describe(c)));
        }
    }
    Ok(())
}

/// Why a credential without this setup's mark is kept.
fn not_ours_reason(input: &Input) -> String {
    match &input.setup {
        Some(s) => format!(
            "not this setup's (its name lacks {}: made in the portal, by another setup, or before setups were marked)",
            s.name_mark()
        ),
        None => "this document has no setup.id (register-app writes it), so no credential can be proven this setup's".to_string(),
    }
}

/// The checks `--retire-old` / `--retire` make before any request: a current secret is
/// recorded, the file holds it, and no named key is it. Returns the key ids to retire (empty:
/// nothing to do, and nothing is sent).
pub(crate) fn retire_targets(
    ctx: &Ctx,
    input: &Input,
    saved: Option<&Saved>,
    file_shown: &str,
    retire_old: bool,
    named: &[String],
) -> Result<Vec<String>> {
    let rec = &input.record;
    let Some(current) = rec.key_id.as_deref() else {
        return Err(Error::usage(
            "no current secret is recorded (secret.key_id), so nothing can be retired safely",
        )
        .with_hint(format!("run {} first", ctx.command("make-secret", &[]))));
    };
    if let Some(k) = named.iter().find(|k| k.eq_ignore_ascii_case(current)) {
        return Err(Error::usage(format!(
            "--retire {k} names the secret in use (secret.key_id); it is never retired"
        ))
        .with_hint(format!(
            "to replace it, run {} first, update Marketo, then retire the old one",
            ctx.command("make-secret", &["--rotate"])
        )));
    }
    let first = || ctx.command("make-secret", &[]);
    match saved {
        // Kept outside a file: there is no file to check.
        None => {}
        Some(Saved::Recorded(_) | Saved::RecordedHint(_)) => {}
        Some(Saved::Absent) => {
            return Err(Error::usage(format!(
                "the current secret's file {file_shown} is missing, so it cannot be checked that the secret in use is saved before an old one goes"
            ))
            .with_hint(format!(
                "if the secret now lives elsewhere (a vault), run {} first; otherwise make a new one with {}",
                ctx.command("make-secret", &["--forget-file"]),
                ctx.command("make-secret", &["--rotate"])
            )));
        }
        Some(Saved::Damaged(why)) => {
            return Err(Error::usage(format!(
                "{file_shown} {why}, so the secret in use is not saved; no credential is retired"
            ))
            .with_hint(format!(
                "run {} first: it repairs the file with a new secret",
                first()
            )));
        }
        Some(Saved::Unrecorded(_)) => {
            return Err(Error::usage(format!(
                "{file_shown} holds a secret the document does not record yet (an interrupted make-secret run); no credential is retired"
            ))
            .with_hint(format!("run {} first: it finishes that run", first())));
        }
    }
    let mut targets: Vec<String> = Vec::new();
    if retire_old {
        match &rec.previous_key_id {
            Some(p) => targets.push(p.clone()),
            None if named.is_empty() => {
                ctx.say(&format!(
                    "nothing to retire: no secret.previous_key_id is recorded (make-secret --rotate records it); to remove another credential, name it: {}",
                    ctx.command("make-secret", &["--retire", "KEYID", "--yes"])
                ));
            }
            None => {}
        }
    }
    for k in named {
        if !targets.iter().any(|t| t.eq_ignore_ascii_case(k)) {
            targets.push(k.to_ascii_lowercase());
        }
    }
    Ok(targets)
}

/// `--retire-old` / `--retire KEYID`: never adds a credential. It refuses unless the secret in
/// use is on the app and valid for `--min-validity`, prints the step-3 values Marketo must be
/// using first, then removes `secret.previous_key_id` (when it is this setup's) and the keys
/// named on the command line.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn retire(
    ctx: &mut Ctx,
    app: &Application,
    input: &Input,
    saved: Option<&Saved>,
    targets: &[String],
    renew_before: time::OffsetDateTime,
    secret_at: &str,
    named: &[String],
    yes: bool,
) -> Result<()> {
    let rec = &input.record;
    let current = rec.key_id.clone().unwrap_or_default();
    let Some(cred) = app.password_credential(&current) else {
        return Err(Error::refused(format!(
            "the secret in use ({current}, secret.key_id) is no longer on the app; no credential is retired"
        ))
        .with_hint(format!(
            "run {} for a new secret, update Marketo, then retire the old one",
            ctx.command("make-secret", &[])
        )));
    };
    if cred.expires_at().is_none_or(|end| end <= renew_before) {
        return Err(Error::refused(format!(
            "the secret in use ({current}) expires on {}, within --min-validity; no credential is retired",
            cred.end_date_time.as_deref().unwrap_or("?")
        ))
        .with_hint(format!(
            "renew it first with {}, update Marketo, then retire the old one",
            ctx.command("make-secret", &[])
        )));
    }
    // The file must hold the secret of the credential in use (not only the recorded value).
    if let Some(Saved::Recorded(v) | Saved::RecordedHint(v)) = saved {
        if !crate::discovery::hint_starts(cred, secrecy::ExposeSecret::expose_secret(v)) {
            return Err(Error::refused(format!(
                "the secret file does not hold the secret in use ({current}, hint {}); no credential is retired",
                cred.hint.as_deref().unwrap_or("?")
            ))
            .with_hint(format!(
                "run {} first: it saves a new secret for the file",
                ctx.command("make-secret", &[])
            )));
        }
    }
    // Marketo must hold this before anything else goes.
    print_step3(
        ctx,
        &app.app_id,
        secret_at,
        "Marketo step 3 must be using this secret before the old one is removed",
    );
    let mut go = Vec::new();
    for k in targets {
        let is_previous = rec.previous_key_id.as_deref() == Some(k.as_str());
        let is_named = named.iter().any(|n| n.eq_ignore_ascii_case(k));
        match app.password_credential(k) {
            None => {
                ctx.say(&format!(
                    "credential {k} is not on the app (already removed)"
                ));
                if is_previous {
                    ctx.doc.remove(keys::SECRET_PREVIOUS_KEY_ID);
                }
            }
            Some(c) if is_named || owned(input.setup.as_ref(), c) => go.push(c.clone()),
            Some(c) => ctx.say(&format!(
                "kept credential {} (secret.previous_key_id): {}; to remove it anyway: {}",
                describe(c),
                not_ours_reason(input),
                ctx.command("make-secret", &["--retire", &c.key_id, "--yes"])
            )),
        }
    }
    if go.is_empty() {
        return Ok(());
    }
    let go: Vec<&PasswordCredential> = go.iter().collect();
    remove_confirmed(
        ctx,
        &app.id,
        &go,
        Removal::Retire,
        rec.previous_key_id.as_deref(),
        yes,
    )
    .await
}

/// `--forget-file`: the secret now lives outside a file (a vault). The document records
/// `secret.storage: "external"` and drops `secret.file`; verify-sync then skips its live sign-in
/// test instead of failing it, and a renewal needs `--secret-file`. Nothing on the tenant or the
/// disk changes.
pub(crate) fn forget_file(
    ctx: &mut Ctx,
    app: &Application,
    input: &Input,
    saved: Option<&Saved>,
    file_shown: Option<&str>,
) -> Result<()> {
    let current = input.record.key_id.clone().unwrap_or_default();
    let Some(cred) = app.password_credential(&current) else {
        return Err(Error::refused(format!(
            "the recorded secret {current} is no longer on the app: forgetting its file would leave no usable secret"
        ))
        .with_hint(format!(
            "make a new secret with {}",
            ctx.command("make-secret", &["--secret-file", "FILE"])
        )));
    };
    if input.record.external {
        ctx.say(&format!(
            "client secret {} is already recorded as kept outside a file (secret.storage: {EXTERNAL})",
            cred.key_id
        ));
        return Ok(());
    }
    ctx.doc.set(keys::SECRET_STORAGE, EXTERNAL);
    ctx.doc.remove(keys::SECRET_FILE);
    ctx.say(&format!(
        "client secret {} is now recorded as kept outside a file (secret.storage: {EXTERNAL}); verify-sync skips its live sign-in test, and make-secret renews it into a file given with --secret-file when it is due",
        describe(cred)
    ));
    if let (Some(Saved::Recorded(_) | Saved::RecordedHint(_)), Some(f)) = (saved, file_shown) {
        ctx.warn(&format!(
            "{f} still holds the secret: delete it once your vault has it"
        ));
    }
    Ok(())
}

/// The secret's place, for the step-3 block.
pub(crate) fn secret_at(file: Option<&std::path::Path>) -> String {
    match file {
        Some(f) => format!("the content of {} (shown nowhere else)", shown(f)),
        None => "the secret kept outside a file (secret.storage: external)".to_string(),
    }
}
