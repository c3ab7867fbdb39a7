//! Stage 1, input: what the flags and the state document say, checked before any request.
//!
//! Everything here is local. A bad value is exit 2 naming the flag or key, with nothing sent.

use std::path::{Path, PathBuf};

use s2s_core::keys::{self, DocKey};
use s2s_core::setup::SetupId;
use s2s_core::{Ctx, Error, Result};
use s2s_graph::AppRef;
use serde_json::Value;

use crate::Cli;
use crate::lifetime::{Lifetime, parse_lifetime};

/// `secret.storage` when the secret is kept outside a file (a vault): `make-secret --forget-file`.
pub(crate) const EXTERNAL: &str = "external";

/// What the state document records about the app's secret. Empty when the document has none, or
/// when it belongs to another app than the one this run was pointed at.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub key_id: Option<String>,
    pub hint: Option<String>,
    /// `secret.sha256`: the fingerprint of the saved value ([`s2s_core::fsutil::secret_sha256`]).
    pub sha256: Option<String>,
    pub previous_key_id: Option<String>,
    /// `secret.file`, made absolute (relative to the `--state` file's folder).
    pub file: Option<PathBuf>,
    /// `secret.storage: "external"`: the secret lives outside a file, on purpose.
    pub external: bool,
    /// `secret.lifetime`: the lifetime the current secret was made with, reused for the next.
    pub lifetime: Option<Lifetime>,
    /// `secret.pending`: a run that was adding a credential and did not finish.
    pub pending: Option<Pending>,
}

/// The journal of an add that has not finished (`secret.pending`), saved to the `--state` file
/// just before `addPassword` is sent. A re-run that finds it knows which credentials that run
/// may have made (its run tag) and which file it was writing, so it can finish the job instead
/// of adding yet another credential.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// The run tag of the interrupted run, `[run 3fa9c2d1]`.
    pub tag: String,
    /// The file it was saving to (absolute).
    pub file: Option<PathBuf>,
}

/// The run's inputs, all checked locally.
pub(crate) struct Input {
    pub target: AppRef,
    pub setup: Option<SetupId>,
    /// register-app adopted the app (`app.adopted`, or an earlier version's `app.unique_name:
    /// null`): a portal app, which carries no setup's tag. Only for the document's own app.
    pub adopted: bool,
    pub record: Record,
    /// The secret file when it can be named before the app is read (always, but for a document
    /// that names the app only by object id and no file: the default name needs the client id).
    pub file: Option<PathBuf>,
    /// The lifetime of a new secret: `--expires-in`, else `secret.lifetime`, else 24 months.
    pub lifetime: Lifetime,
}

/// Reads and checks everything the run needs from the flags and the document.
pub(crate) fn read(ctx: &Ctx, cli: &Cli) -> Result<Input> {
    let doc = &ctx.doc;
    let target =
        AppRef::from_flags_or_doc(cli.object_id.as_deref(), cli.client_id.as_deref(), doc)?;
    let setup = SetupId::of_doc(doc)?;
    let mut record = read_record(ctx)?;
    let mut adopted = doc
        .get_value(keys::APP_ADOPTED.path())
        .and_then(Value::as_bool)
        == Some(true)
        || doc.get_value(keys::APP_UNIQUE_NAME.path()) == Some(&Value::Null);
    if let Some(why) = flags_name_another_app(cli, doc)? {
        // The document's secret is another app's: none of it says anything about this one.
        ctx.say(&format!(
            "the state document's secret.* belongs to {why}; this run ignores it"
        ));
        record = Record::default();
        adopted = false;
    }
    let lifetime = cli
        .expires_in
        .or(record.lifetime)
        .unwrap_or(crate::lifetime::DEFAULT_LIFETIME);
    let client_id = cli
        .client_id
        .clone()
        .or_else(|| doc.get(keys::APP_CLIENT_ID).ok().flatten());
    let file = target_file(ctx, cli, &record, client_id.as_deref());
    if let Some(f) = &file {
        check_secret_path(f, what_names(cli))?;
    }
    Ok(Input {
        target,
        setup,
        adopted,
        record,
        file,
        lifetime,
    })
}

/// The flag or key that names the secret file, for messages.
pub(crate) fn what_names(cli: &Cli) -> &'static str {
    if cli.secret_file.is_some() {
        "--secret-file"
    } else {
        "state document key secret.file"
    }
}

/// The secret file of this run, absolute: `--secret-file`, else `secret.file` (unless the
/// secret is kept outside a file), else `marketo-s2s-<client id>.secret` beside the `--state`
/// file or in the current folder. `None` when only the client id (not known yet) can name it.
pub(crate) fn target_file(
    ctx: &Ctx,
    cli: &Cli,
    record: &Record,
    client_id: Option<&str>,
) -> Option<PathBuf> {
    let file = match (&cli.secret_file, &record.file) {
        (Some(f), _) => f.clone(),
        (None, Some(f)) => f.clone(),
        (None, None) => ctx
            .default_dir()
            .join(format!("marketo-s2s-{}.secret", client_id?)),
    };
    // Absolute for this run, so a re-run from another folder checks the same file; recorded by
    // name when it sits beside the --state file (`Ctx::doc_path_text`).
    Some(std::path::absolute(&file).unwrap_or(file))
}

/// When a flag points this run at another app than the one the document names, the document's
/// secret is not this app's: the app it belongs to, for the message.
fn flags_name_another_app(cli: &Cli, doc: &s2s_core::StateDoc) -> Result<Option<String>> {
    let differs = |flag: &Option<String>, key: DocKey<keys::Guid>| -> Result<Option<String>> {
        Ok(match (flag, doc.get(key)?) {
            (Some(f), Some(d)) if !f.eq_ignore_ascii_case(&d) => Some(d),
            _ => None,
        })
    };
    if let Some(o) = differs(&cli.object_id, keys::APP_OBJECT_ID)? {
        return Ok(Some(format!("the app with object id {o}")));
    }
    if let Some(c) = differs(&cli.client_id, keys::APP_CLIENT_ID)? {
        return Ok(Some(format!("the app with client id {c}")));
    }
    Ok(None)
}

fn read_record(ctx: &Ctx) -> Result<Record> {
    let doc = &ctx.doc;
    let sha256 = match doc.get(keys::SECRET_SHA256)? {
        Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(s.to_ascii_lowercase())
        }
        Some(_) => {
            return Err(Error::usage(
                "state document key secret.sha256 must be 64 hex digits (the SHA-256 make-secret writes)",
            ));
        }
        None => None,
    };
    let external = match doc.get(keys::SECRET_STORAGE)? {
        None | Some("file") => false,
        Some(EXTERNAL) => true,
        Some(_) => {
            return Err(Error::usage(
                "state document key secret.storage must be \"file\" or \"external\"",
            ));
        }
    };
    let lifetime = match doc.get(keys::SECRET_LIFETIME)? {
        Some(l) => Some(
            parse_lifetime(l)
                .map_err(|e| Error::usage(format!("state document key secret.lifetime: {e}")))?,
        ),
        None => None,
    };
    let file = match doc.get(keys::SECRET_FILE)? {
        Some(f) => {
            let p = s2s_core::fsutil::path_from_doc(f, keys::SECRET_FILE.path())?;
            Some(ctx.resolve_doc_path(&p))
        }
        None => None,
    };
    Ok(Record {
        key_id: doc.get(keys::SECRET_KEY_ID)?,
        hint: doc.get(keys::SECRET_HINT)?.map(str::to_string),
        sha256,
        previous_key_id: doc.get(keys::SECRET_PREVIOUS_KEY_ID)?,
        file: file.map(|f| std::path::absolute(&f).unwrap_or(f)),
        external,
        lifetime,
        pending: read_pending(ctx)?,
    })
}

fn read_pending(ctx: &Ctx) -> Result<Option<Pending>> {
    let Some(p) = ctx.doc.get(keys::SECRET_PENDING)? else {
        return Ok(None);
    };
    let bad = || {
        Error::usage(
            "state document key secret.pending must be {\"run\": \"<8 hex digits>\", \"file\": ...} as make-secret writes it",
        )
    };
    let tag = match p.get("run").and_then(Value::as_str) {
        Some(h) if h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("[run {}]", h.to_ascii_lowercase())
        }
        _ => return Err(bad()),
    };
    let file = match p.get("file") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) => {
            let path =
                s2s_core::fsutil::path_from_doc(f, &format!("{}.file", keys::SECRET_PENDING))?;
            let path = ctx.resolve_doc_path(&path);
            Some(std::path::absolute(&path).unwrap_or(path))
        }
        Some(_) => return Err(bad()),
    };
    Ok(Some(Pending { tag, file }))
}

/// A secret path from a flag or the document: no control character, and an existing target
/// must be a regular file (a FIFO would block the read for ever, and a device such as
/// `/dev/stdout` would be turned into a file by the rename).
pub(crate) fn check_secret_path(p: &Path, what: &str) -> Result<()> {
    s2s_core::fsutil::check_path(p, what)?;
    let bytes = p.as_os_str().as_encoded_bytes();
    if bytes.iter().any(|b| b.is_ascii_control()) {
        return Err(Error::usage(format!(
            "{what} {:?} contains a control character",
            p.to_string_lossy()
        )));
    }
    if let Ok(m) = std::fs::metadata(p) {
        if !m.is_file() && !m.is_dir() {
            return Err(Error::usage(format!(
                "{what} {} is not a regular file (a device, pipe or socket)",
                p.display()
            ))
            .with_hint("give the path of a regular file; it is created with mode 0600"));
        }
    }
    if p.is_dir() || p.file_name().is_none() {
        return Err(Error::usage(format!(
            "{what} {} is a directory; give the path of the file to create",
            p.display()
        )));
    }
    Ok(())
}
