//! Stage 2, the secret file: what the file named for this run holds, decided locally before any
//! request, and the only ways make-secret touches it (an atomic 0600 write, restoring 0600).
//!
//! make-secret writes a file only when it does not exist, or when it holds a secret of this app
//! that the document recorded: its SHA-256 is `secret.sha256`, or (a document written before
//! the fingerprint existed) it starts with the recorded hint of the recorded key. Anything else —
//! an `authorized_keys`, another customer's secret reached through `../`, a file that is not a
//! secret at all — is exit 2 before any request, and the file is left as it is.
//!
//! Two kinds of file are only *candidates* until the app is read (no write is sent before the
//! decision): a secret-shaped file when the document records no secret (a new pipeline run next
//! to the file of an earlier one, adopted when one of this setup's credentials has its hint),
//! and the file an interrupted run was writing (`secret.pending` names it).

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use s2s_core::output::sanitize;
use s2s_core::{Ctx, Error, Result};

use crate::input::Record;

/// What the secret file holds, as far as can be told without the service.
#[derive(Debug)]
pub(crate) enum Saved {
    /// The file does not exist.
    Absent,
    /// It holds exactly the recorded secret (`secret.sha256`).
    Recorded(SecretString),
    /// A document without `secret.sha256`: the file starts with the recorded hint; the read of
    /// the app confirms it against the recorded key's live hint.
    RecordedHint(SecretString),
    /// The document's own secret file, damaged: it keeps the recorded hint (or is empty) but is
    /// not the recorded secret. Repaired with a new credential.
    Damaged(String),
    /// A secret-shaped value the document does not record, that may still be this app's: see
    /// the module comment. Decided once the app's credentials are read.
    Unrecorded(SecretString),
}

/// Client secrets from Entra are 40 characters of `[A-Za-z0-9~._-]`; anything from 16 to 256
/// printable characters without white space is taken as secret-shaped. A file with white space
/// or several lines (an `authorized_keys`, a config file) is never one.
fn secret_shaped(v: &str) -> bool {
    (16..=256).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
}

/// What `path` holds, judged against the document's `record`; exit 2 (nothing sent) when it is
/// a file make-secret must not replace.
pub(crate) fn classify(path: &Path, record: &Record, what: &str) -> Result<Saved> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::Absent),
        Err(e) => {
            return Err(Error::usage(format!(
                "{what} {} cannot be used ({e})",
                shown(path)
            )));
        }
    };
    if !meta.is_file() {
        return Err(Error::usage(format!(
            "{what} {} is not a regular file",
            shown(path)
        )));
    }
    let value = match s2s_core::fsutil::read_secret(path) {
        Ok(v) => v,
        Err(e) => {
            return Err(not_ours(
                path,
                what,
                &format!("it cannot be read as a secret ({e})"),
            ));
        }
    };
    let at_recorded_path = record
        .file
        .as_deref()
        .is_some_and(|f| s2s_core::fsutil::same_file(f, path));
    let Some(value) = value else {
        // An empty file at the document's own path holds nothing that could be lost.
        if at_recorded_path && record.key_id.is_some() {
            return Ok(Saved::Damaged("is empty".into()));
        }
        return Err(not_ours(
            path,
            what,
            "it is empty, not a secret this document records",
        ));
    };
    let v = value.expose_secret();
    if record
        .sha256
        .as_deref()
        .is_some_and(|s| s == s2s_core::fsutil::secret_sha256(&value))
    {
        return Ok(Saved::Recorded(value));
    }
    let keeps_hint = record.key_id.is_some()
        && record
            .hint
            .as_deref()
            .is_some_and(|h| h.len() >= 3 && v.starts_with(h))
        && v.len() <= 1024
        && v.bytes().all(|b| b.is_ascii_graphic());
    if keeps_hint {
        return Ok(if record.sha256.is_some() {
            Saved::Damaged(
                "does not hold the recorded secret (it keeps the secret's hint, but its SHA-256 differs from secret.sha256)"
                    .into(),
            )
        } else {
            Saved::RecordedHint(value)
        });
    }
    let interrupted_here = record.pending.as_ref().is_some_and(|p| {
        p.file
            .as_deref()
            .is_some_and(|f| s2s_core::fsutil::same_file(f, path))
    });
    if secret_shaped(v) && (interrupted_here || record.key_id.is_none()) {
        return Ok(Saved::Unrecorded(value));
    }
    Err(not_ours(
        path,
        what,
        if secret_shaped(v) {
            "it holds a secret this document does not record (not the one its secret.sha256 and secret.hint name)"
        } else {
            "it does not hold a client secret"
        },
    ))
}

/// The refusal for a file that is not this setup's secret: exit 2, with the way on.
pub(crate) fn not_ours(path: &Path, what: &str, why: &str) -> Error {
    let p = shown(path);
    Error::usage(format!(
        "{what} {p} is not this connection's secret file: {why}; make-secret replaces a file only when it does not exist or holds the secret the state document records, so nothing was changed"
    ))
    .with_hint(format!(
        "give this connection a file of its own with --secret-file (one that does not exist yet), or, if {p} is this connection's and may be replaced, move it away first"
    ))
}

/// Saves a new secret: a temporary file created 0600, fsynced and renamed over `path`.
pub(crate) fn save(path: &Path, value: &SecretString) -> std::io::Result<()> {
    s2s_core::fsutil::write_atomic(path, value.expose_secret().as_bytes(), 0o600)
}

/// Restores 0600 (an owner-only DACL on Windows) on the secret file when it is open to others,
/// and says so; a dry run only says it would. `rotate_hint` is the command that replaces a
/// secret others may have read.
pub(crate) fn ensure_private(ctx: &Ctx, path: &Path, rotate_hint: &str) {
    let Err(why) = s2s_core::fsutil::check_private(path) else {
        return;
    };
    let p = shown(path);
    if ctx.dry_run() {
        ctx.say(&format!("would restore mode 0600 on {p} ({why})"));
        return;
    }
    match s2s_core::fsutil::make_private(path) {
        Ok(()) => {
            // A change of this run, if only a local one: `steps.make-secret.changed` says so,
            // and the run does not end with "nothing to change".
            ctx.http.count_local_write();
            ctx.say(&format!("restored mode 0600 on {p} (it was {why})"));
            ctx.warn(&format!(
                "whoever could read {p} may have the secret; to replace it, run: {rotate_hint}"
            ));
        }
        Err(e) => ctx.warn(&format!(
            "{p} is not private ({why}) and its mode could not be changed ({e}); run chmod 600 on it"
        )),
    }
}

/// A path for a message: control characters escaped.
pub(crate) fn shown(path: &Path) -> String {
    sanitize(&path.display().to_string()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Pending;

    fn record(file: &Path, value: &str) -> Record {
        let s = SecretString::from(value.to_string());
        Record {
            key_id: Some("11111111-1111-1111-1111-111111111111".into()),
            hint: Some(value[..3].into()),
            sha256: Some(s2s_core::fsutil::secret_sha256(&s)),
            file: Some(file.to_path_buf()),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_recorded_secret_or_a_damaged_copy_of_it_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.secret");
        let secret = "abcDEF0123456789~xyz.ABCDEFGHIJKLMNOPQRS";
        let rec = record(&f, secret);
        assert!(matches!(classify(&f, &rec, "x").unwrap(), Saved::Absent));
        std::fs::write(&f, format!("{secret}\n")).unwrap();
        assert!(matches!(
            classify(&f, &rec, "x").unwrap(),
            Saved::Recorded(_)
        ));
        // Garbled, keeping the hint: damaged, repaired by the caller.
        std::fs::write(&f, "abcXXXXXXXXXXXXXXXXX").unwrap();
        assert!(matches!(
            classify(&f, &rec, "x").unwrap(),
            Saved::Damaged(_)
        ));
        std::fs::write(&f, "").unwrap();
        assert!(matches!(
            classify(&f, &rec, "x").unwrap(),
            Saved::Damaged(_)
        ));
        // Not ours: exit 2.
        for other in [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI user@host\n",
            "zzzOtherCustomersSecret0123456789abcdefg",
            "[section]\nkey = value\n",
        ] {
            std::fs::write(&f, other).unwrap();
            let e = classify(&f, &rec, "--secret-file").unwrap_err();
            assert_eq!(e.kind, s2s_core::Kind::Usage, "{other:?}");
            assert!(e.message.contains("nothing was changed"), "{e}");
        }
    }

    #[test]
    fn an_unrecorded_secret_is_a_candidate_only_without_a_record_or_where_a_run_was_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.secret");
        std::fs::write(&f, "qqqNewSecretOfAnInterruptedRun0123456789").unwrap();
        assert!(matches!(
            classify(&f, &Record::default(), "x").unwrap(),
            Saved::Unrecorded(_)
        ));
        let mut rec = record(&f, "abcDEF0123456789~xyz.ABCDEFGHIJKLMNOPQRS");
        assert!(classify(&f, &rec, "x").is_err());
        rec.pending = Some(Pending {
            tag: "[run 1234abcd]".into(),
            file: Some(f.clone()),
        });
        assert!(matches!(
            classify(&f, &rec, "x").unwrap(),
            Saved::Unrecorded(_)
        ));
        // An empty file elsewhere is not the document's to overwrite.
        let g = dir.path().join("other");
        std::fs::write(&g, "").unwrap();
        assert!(classify(&g, &rec, "x").is_err());
    }

    #[test]
    fn an_older_document_without_a_fingerprint_matches_by_hint() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.secret");
        let secret = "abcDEF0123456789~xyz.ABCDEFGHIJKLMNOPQRS";
        let mut rec = record(&f, secret);
        rec.sha256 = None;
        std::fs::write(&f, secret).unwrap();
        assert!(matches!(
            classify(&f, &rec, "x").unwrap(),
            Saved::RecordedHint(_)
        ));
    }
}
