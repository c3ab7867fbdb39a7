//! The local secret file: deleted only when it is make-secret's file of a credential that goes
//! (or went) with this teardown, and only when it looks exactly like what make-secret writes, so
//! a document naming another file — a typo, or a hostile document — cannot get it deleted.
//! make-secret's default name for the client id ties a file to the app only when the whole app
//! goes (or went); on a shared or adopted app, which stays, its content must match.

use std::path::Path;

use secrecy::ExposeSecret;

use s2s_core::Ctx;
use s2s_graph::PasswordCredential;

use crate::input::Input;
use crate::plan::Plan;
use crate::steps::Step;

/// Why a secret file may be this setup's, from the live tenant.
pub(crate) struct FileScope<'a> {
    /// The app's client id (make-secret names its file `marketo-s2s-<client id>.secret`).
    pub client_id: Option<&'a str>,
    /// The credentials this teardown removes (or that go with the app): a file holding one of
    /// them (its hint, Graph's first three characters of the secret) is the setup's.
    pub dying: &'a [PasswordCredential],
    /// `false` when nothing shows the app is this setup's (another connection's, the admin's,
    /// or gone without a deleted item that carries the setup's mark): its secrets may stay
    /// valid, so the file that holds one is kept.
    pub allowed: bool,
    /// The app is this setup's alone and goes (or went): every secret of it dies, so make-secret's
    /// default name for its client id is enough. A shared or adopted app stays, and a file of
    /// that name may hold another setup's secret or a portal credential that stays valid.
    pub whole: bool,
}

/// Plans the deletion of the document's secret file (or make-secret's default one for the
/// client id), or says why it stays.
pub(crate) fn plan_secret_file(ctx: &Ctx, input: &Input, scope: FileScope<'_>, plan: &mut Plan) {
    let default_name = scope.client_id.map(|c| format!("marketo-s2s-{c}.secret"));
    let (path, named) = match (&input.secret_file, &default_name) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(n)) => (ctx.default_dir().join(n), false),
        (None, None) => return,
    };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(_) if named => {
            ctx.say(&format!(
                "the secret file {} is already gone",
                path.display()
            ));
            return;
        }
        Err(_) => return,
    };
    let what = format!("the secret file {}", path.display());
    if !scope.allowed {
        return plan.keep(
            what,
            "nothing in the tenant shows that the app whose secret it holds is this setup's and gone; delete it \
             yourself once no connection uses it",
        );
    }
    if !looks_like_a_secret_file(&path, &meta) {
        return plan.keep(
            what,
            format!(
                "it does not look like a file make-secret wrote (a regular file of mode 0600 and at most \
                 {MAX_SECRET_FILE_BYTES} bytes); delete it yourself if it holds this app's secret"
            ),
        );
    }
    let value = match s2s_core::fsutil::read_secret(&path) {
        Ok(Some(v)) if is_secret_shaped(v.expose_secret()) => v,
        Ok(_) => {
            return plan.keep(
                what,
                "it does not hold a client secret (one line of 16 to 256 printable characters)",
            );
        }
        Err(e) => return plan.keep(what, format!("it cannot be read ({e})")),
    };
    // The setup's: make-secret's name for this app, the fingerprint make-secret recorded
    // (`secret.sha256`), or the secret of a credential that goes (Graph shows the first three
    // characters of each as its hint, graph.md §4.1).
    let named_by_default = default_name.as_deref().is_some_and(|n| {
        path.file_name()
            .is_some_and(|f| f.to_string_lossy().eq_ignore_ascii_case(n))
    });
    let by_name = named_by_default && scope.whole;
    let by_hash = input
        .secret_sha256
        .as_deref()
        .is_some_and(|h| s2s_core::fsutil::secret_sha256(&value) == h);
    let by_hint = scope.dying.iter().any(|c| {
        c.hint
            .as_deref()
            .is_some_and(|h| !h.is_empty() && value.expose_secret().starts_with(h))
    });
    if by_name || by_hash || by_hint {
        plan.steps.push(Step::DeleteSecretFile(path));
    } else if named_by_default {
        plan.keep(
            what,
            "it has make-secret's default name for the app, but the app stays (shared with another setup, or \
             adopted), so it may hold another connection's secret or a portal credential, and neither the fingerprint \
             the document records (secret.sha256) nor a secret that goes matches its content; delete it yourself if it \
             holds this setup's secret",
        );
    } else {
        plan.keep(
            what,
            "neither its name, nor the fingerprint the document records, nor its content ties it to a secret that goes; \
             delete it yourself if it holds this app's secret",
        );
    }
}

/// One line of printable ASCII without spaces, as Entra's client secrets are (40 characters).
fn is_secret_shaped(v: &str) -> bool {
    (16..=256).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
}

/// make-secret's files are a few dozen bytes.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Only what make-secret writes is deleted — a regular file (not a link), private to its owner
/// (`fsutil::check_private`: mode 0600 on Unix, an owner-only DACL on Windows), small.
fn looks_like_a_secret_file(path: &Path, m: &std::fs::Metadata) -> bool {
    m.is_file() && m.len() <= MAX_SECRET_FILE_BYTES && s2s_core::fsutil::check_private(path).is_ok()
}
