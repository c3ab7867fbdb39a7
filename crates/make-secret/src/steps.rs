//! Stage 5, the steps that add: `addPassword`, saving the value, converging after a lost
//! answer or an interrupted run, and recording the result in the document.
//!
//! `passwordCredentials` is never PATCHed (peers lose credentials that way, peers.md §9.2): only
//! `addPassword` / `removePassword`.

use std::path::Path;
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use time::OffsetDateTime;

use s2s_core::keys;
use s2s_core::retry::{Poll, REPLICATION_WINDOW, until_ready};
use s2s_core::{Ctx, Error, Kind, Result};
use s2s_graph::{Application, Graph, PasswordCredential, RunTag};

use crate::lifetime::{Lifetime, rfc3339};
use crate::secret_file::shown;

/// The one answer of `addPassword` that matters, with the value kept secret.
pub(crate) struct NewSecret {
    pub cred: PasswordCredential,
    pub value: SecretString,
}

/// Takes the fields out of the answer by hand: a serde error message could quote `secretText`.
fn new_secret_from(answer: &Value) -> Option<NewSecret> {
    let s = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_string);
    let value = s("secretText").filter(|v| !v.is_empty())?;
    Some(NewSecret {
        cred: PasswordCredential {
            key_id: s("keyId")?,
            display_name: s("displayName"),
            hint: s("hint"),
            start_date_time: s("startDateTime"),
            end_date_time: s("endDateTime"),
        },
        value: SecretString::from(value),
    })
}

/// What one add is: the credential's name (with the setup's mark and the run tag), its end,
/// the file its value goes to, and why it is added.
pub(crate) struct Add<'a> {
    pub name: String,
    pub tag: RunTag,
    pub end: OffsetDateTime,
    pub file: &'a Path,
    /// The file as the document records it.
    pub file_text: String,
    pub why: &'a str,
}

/// The display name of a new credential: `<base> [setup 1a2b3c4d] [run 3fa9c2d1]`. The setup's
/// mark comes before the run tag, so teardown and later runs can prove the credential is this
/// setup's (core's `setup` module); a document without `setup.id` gives no mark.
pub(crate) fn credential_name(
    base: &str,
    setup: Option<&s2s_core::setup::SetupId>,
    tag: &RunTag,
) -> String {
    match setup {
        Some(s) => format!("{base} {} {tag}", s.name_mark()),
        None => format!("{base} {tag}"),
    }
}

/// Records the add about to be sent in the document (`secret.pending`) and, with `--state`,
/// saves it first: if the run is killed between `addPassword`, the file write and the final
/// save, the next run finds which credentials it made and which file it was writing, and
/// finishes the job instead of adding another (see `discovery::judge`).
pub(crate) fn journal(
    doc: &mut s2s_core::StateDoc,
    state_file: Option<&Path>,
    add: &Add<'_>,
) -> Result<()> {
    let tag = add.tag.to_string();
    let hex = tag
        .strip_prefix("[run ")
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or_default()
        .to_string();
    doc.set(
        keys::SECRET_PENDING,
        json!({"run": hex, "file": add.file_text, "at": s2s_core::state::now_rfc3339()}),
    );
    if let Some(path) = state_file {
        doc.save(path)?;
    }
    Ok(())
}

/// A failed add: the error, and whether it left nothing behind on the app (then the journal
/// can go; otherwise the next run cleans up after it).
pub(crate) struct AddFailed {
    pub error: Error,
    pub clean: bool,
}

impl From<Error> for AddFailed {
    fn from(error: Error) -> Self {
        AddFailed {
            error,
            clean: false,
        }
    }
}

/// A saved new secret.
pub(crate) struct Added {
    pub new: NewSecret,
    /// The app's credentials after the clean-up.
    pub app: Application,
    /// Whether the clean-up after a lost answer ran (otherwise the journal must stay).
    pub tidy: bool,
}

/// Adds the credential, saves it, and converges after a lost answer. Returns the new credential
/// and the app's credentials after the clean-up, or `None` in `--dry-run`.
///
/// The caller checks the file's target and writes the journal first (`journal`).
pub(crate) async fn add_secret(
    ctx: &Ctx,
    g: &Graph<'_>,
    app: &Application,
    add: &Add<'_>,
    lifetime: Lifetime,
    retry: &[String],
) -> std::result::Result<Option<Added>, AddFailed> {
    let answer = match g.add_password(&app.id, &add.name, &rfc3339(add.end)).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            ctx.say(&format!(
                "{}: would add client secret \"{}\" valid until {} and save it to {}",
                add.why,
                add.name,
                rfc3339(add.end),
                shown(add.file)
            ));
            return Ok(None);
        }
        Err(e) => {
            let mut clean = !e.ambiguous;
            if e.ambiguous {
                // The add may have been committed although no answer came: its secret is
                // unknown, so a credential with this run's tag is useless. Best effort only,
                // the original error is what the user must see.
                clean = remove_tagged(ctx, g, &app.id, &add.tag, None).await.is_ok();
            }
            return Err(AddFailed {
                error: explain_add_error(ctx, g, e, lifetime, retry).await,
                clean,
            });
        }
    };
    let Some(new) = new_secret_from(&answer) else {
        drop(answer);
        let clean = remove_tagged(ctx, g, &app.id, &add.tag, None).await.is_ok();
        return Err(AddFailed {
            error: Error::internal(
                "addPassword answered without a keyId or secretText; the credential was removed again",
            ),
            clean,
        });
    };
    drop(answer);
    let key = new.cred.key_id.clone();

    // The value exists only in this process now: save it before anything else can fail.
    if let Err(io) = crate::secret_file::save(add.file, &new.value) {
        let rolled_back = remove_credential(ctx, g, &app.id, &key).await;
        let _ = remove_tagged(ctx, g, &app.id, &add.tag, None).await;
        let e = Error::internal(format!(
            "cannot write the secret to {}: {io}",
            shown(add.file)
        ));
        return Err(match rolled_back {
            Ok(_) => AddFailed {
                error: e.with_hint(format!(
                    "the new credential {key} was removed again; choose a writable --secret-file and re-run"
                )),
                clean: true,
            },
            Err(r) => AddFailed {
                error: e.with_hint(format!(
                    "removing the new credential {key} failed too ({r}); choose a writable --secret-file and re-run: the next run removes it ({})",
                    ctx.command("make-secret", &[])
                )),
                clean: false,
            },
        });
    }
    ctx.say(&format!(
        "{}: added client secret {key} \"{}\" (hint {}), valid until {}, saved to {} (mode 0600)",
        add.why,
        add.name,
        new.cred.hint.as_deref().unwrap_or("?"),
        new.cred.end_date_time.as_deref().unwrap_or("?"),
        shown(add.file)
    ));
    // The secret is saved: from here on nothing may fail the run, or the next run would find no
    // key id in the document and add yet another credential.
    let (app_now, tidy) = match remove_tagged(ctx, g, &app.id, &add.tag, Some(&key)).await {
        Ok(a) => (a, true),
        Err(e) => {
            // The journal stays, so the next run finds this run's leftovers by its tag.
            ctx.warn(&format!(
                "the new secret is saved, but looking for leftover credentials of this run failed ({e}); the next run removes them: {}",
                ctx.command("make-secret", &[])
            ));
            (app.clone(), false)
        }
    };
    Ok(Some(Added {
        new,
        app: app_now,
        tidy,
    }))
}

/// Graph's refusals of `addPassword`, with what to do about them. A lifetime the tenant's app
/// management policy does not allow is answered with the policy's own maximum, read from
/// `policies/defaultAppManagementPolicy` (Learn "tenantAppManagementPolicy"), as the example
/// in a command to paste; when that cannot be read, the error says where the maximum is set.
async fn explain_add_error(
    ctx: &Ctx,
    g: &Graph<'_>,
    e: Error,
    lifetime: Lifetime,
    retry: &[String],
) -> Error {
    let e = e.context("adding a client secret");
    if e.has_code("CredentialInvalidLifetimeAsPerAppPolicy") || e.has_code("InvalidKeyEndDate") {
        let e = e.with_kind(Kind::Refused);
        let max = match g.secret_lifetime_limit().await {
            Ok(Some(Some(iso))) => Some(iso),
            _ => None,
        };
        let hint = match max
            .as_deref()
            .and_then(|iso| Some((iso, Lifetime::from_iso8601(iso)?)))
        {
            Some((iso, allowed)) => {
                let mut args: Vec<&str> = retry.iter().map(String::as_str).collect();
                let allowed = allowed.to_string();
                args.extend(["--expires-in", allowed.as_str()]);
                format!(
                    "the tenant's app management policy allows client secrets of at most {allowed} (passwordLifetime {}), and --expires-in {lifetime} is longer: run {}",
                    s2s_core::output::sanitize(iso),
                    ctx.command("make-secret", &args)
                )
            }
            None => format!(
                "the tenant's app management policy limits client secret lifetimes, and --expires-in {lifetime} is longer; its maximum could not be read with this sign-in (it needs Policy.Read.All): preflight reports it, or see Entra admin center > Enterprise apps > App management policies; then pass a shorter --expires-in"
            ),
        };
        return e.with_hint(hint);
    }
    s2s_graph::needs::explain_forbidden(e, &s2s_graph::needs::MAKE_SECRET)
}

/// Removes every credential carrying this run's tag except `keep`: they were created by a
/// request whose answer was lost (and then retried), so their secrets are unknown.
///
/// With `keep`, the read waits until it is visible, so the earlier, committed add is visible
/// too; without (a roll-back, or an add that may not have been committed), one read is taken.
/// Returns the app with the credentials that remain.
pub(crate) async fn remove_tagged(
    ctx: &Ctx,
    g: &Graph<'_>,
    object_id: &str,
    tag: &RunTag,
    keep: Option<&str>,
) -> Result<Application> {
    let window = ctx.http.deadline().min(Instant::now() + REPLICATION_WINDOW);
    let app = until_ready(
        window,
        "reading the app's credentials",
        ctx.reporter(),
        || async {
            let app = g.application(object_id).await?;
            Ok(match app {
                Some(a) if keep.is_none_or(|k| a.password_credential(k).is_some()) => {
                    Poll::Ready(a)
                }
                _ => Poll::Pending("the new credential is not visible yet".into()),
            })
        },
    )
    .await?;
    let mut app = app;
    let (lost, remaining): (Vec<_>, Vec<_>) = std::mem::take(&mut app.password_credentials)
        .into_iter()
        .partition(|c| {
            let tagged = c.display_name.as_deref().is_some_and(|n| tag.marks(n));
            tagged && !keep.is_some_and(|k| c.key_id.eq_ignore_ascii_case(k))
        });
    app.password_credentials = remaining;
    for c in &lost {
        remove_credential(ctx, g, object_id, &c.key_id).await?;
        ctx.say(&format!(
            "removed credential {} (hint {}): a retried request created it and its answer was lost, so its secret is unknown",
            c.key_id,
            c.hint.as_deref().unwrap_or("?")
        ));
    }
    Ok(app)
}

/// `removePassword`, waiting out `Directory_ConcurrencyViolation` (graph.md §4.2: it can follow
/// an `addPassword` on the same app) and replication. `false` in `--dry-run`.
pub(crate) async fn remove_credential(
    ctx: &Ctx,
    g: &Graph<'_>,
    object_id: &str,
    key_id: &str,
) -> Result<bool> {
    until_ready(
        ctx.http.deadline(),
        "removing a password credential",
        ctx.reporter(),
        || async {
            match g.remove_password(object_id, key_id).await {
                Ok(sent) => Ok(Poll::Ready(sent)),
                Err(e) if s2s_graph::is_replication_lag(&e) => Ok(Poll::Pending(e.to_string())),
                Err(e) => Err(e.context(format!("removing credential {key_id}"))),
            }
        },
    )
    .await
}

/// What the document records about the current secret.
pub(crate) struct Recording<'a> {
    pub cred: &'a PasswordCredential,
    /// The file as the document records it; `None` keeps the document's `secret.file` as it is
    /// (a secret kept outside a file has none).
    pub file_text: Option<&'a str>,
    /// The saved value, for `secret.sha256` (and `secret.value` with `--reveal`).
    pub value: Option<&'a SecretString>,
    pub lifetime: Option<Lifetime>,
    pub reveal: bool,
}

pub(crate) fn record(doc: &mut s2s_core::StateDoc, r: &Recording<'_>) {
    doc.set(keys::SECRET_KEY_ID, &r.cred.key_id);
    doc.set(keys::SECRET_HINT, r.cred.hint.as_deref());
    doc.set(keys::SECRET_EXPIRES_AT, r.cred.end_date_time.as_deref());
    if let Some(f) = r.file_text {
        doc.set(keys::SECRET_FILE, f);
        doc.remove(keys::SECRET_STORAGE);
    }
    if let Some(n) = &r.cred.display_name {
        doc.set(keys::SECRET_DISPLAY_NAME, n);
    }
    if let Some(v) = r.value {
        doc.set(keys::SECRET_SHA256, s2s_core::fsutil::secret_sha256(v));
        if r.reveal {
            // Asked for explicitly (--reveal): the one place the value leaves the file.
            doc.set(keys::SECRET_VALUE, v.expose_secret());
        }
    }
    if let Some(l) = r.lifetime {
        doc.set(keys::SECRET_LIFETIME, l.to_string());
    }
}

/// What to change in Marketo's step 3, printed even with `-q` (it is what the user came for).
/// `secret_at` says where the value is.
pub(crate) fn print_step3(ctx: &Ctx, client_id: &str, secret_at: &str, heading: &str) {
    // The run's own target (flag, environment or document), as verify-sync's block shows it.
    let url = ctx
        .config()
        .dynamics()
        .map(|u| s2s_core::output::url_for_humans(u.as_str()))
        .unwrap_or_else(|_| "(unknown)".into());
    let tenant = ctx
        .config()
        .tenant
        .as_deref()
        .map(|t| s2s_core::output::sanitize(t).into_owned())
        .unwrap_or_else(|| "(unknown)".into());
    let lines = [
        format!("{heading} (Marketo: Admin > CRM > Microsoft Dynamics > Enter Credentials):"),
        format!("  Dynamics URL : {url}"),
        format!("  Tenant ID    : {tenant}"),
        format!("  Client ID    : {client_id}"),
        format!("  Client secret: {secret_at}"),
    ];
    for l in lines {
        ctx.reporter().result(&l);
    }
}

/// `<key> "<name>" (hint abc, expires …)` for people.
pub(crate) fn describe(c: &PasswordCredential) -> String {
    format!(
        "{} \"{}\" (hint {}, expires {})",
        c.key_id,
        s2s_core::output::sanitize(c.display_name.as_deref().unwrap_or("")),
        c.hint.as_deref().unwrap_or("?"),
        c.end_date_time.as_deref().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_read_without_serde_messages() {
        let v = json!({"keyId": "k", "hint": "abc", "secretText": "abcdef", "endDateTime": "2028-11-26T00:00:00Z"});
        let s = new_secret_from(&v).unwrap();
        assert_eq!(s.cred.key_id, "k");
        assert_eq!(s.value.expose_secret(), "abcdef");
        assert!(new_secret_from(&json!({"keyId": "k"})).is_none());
        assert!(new_secret_from(&json!({"keyId": "k", "secretText": ""})).is_none());
    }

    #[test]
    fn a_new_credential_carries_the_setup_mark_before_the_run_tag() {
        let s = s2s_core::setup::SetupId::mint();
        let t = RunTag::fresh();
        let n = credential_name("base", Some(&s), &t);
        assert!(s.marks_name(&n) && t.marks(&n), "{n}");
        assert!(n.starts_with("base [setup "), "{n}");
        assert_eq!(credential_name("base", None, &t), format!("base {t}"));
    }
}
