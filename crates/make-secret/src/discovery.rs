//! Stage 3, discovery: the app as Graph shows it, and who owns its live credentials.
//!
//! Ownership is proven on the live objects, never by the document. The app first
//! ([`app_is_ours`]): nothing is removed from an app that does not carry this setup's full tag
//! (`marketo-s2s:setup:<guid>`), unless it carries no setup's tag and the document records it
//! as adopted (a portal app). Then the credential: it is this setup's when its display name
//! carries the setup's mark (`[setup 1a2b3c4d]`, [`SetupId::name_mark`]). That mark holds only
//! the first 8 hex digits of the setup id (the portal's description has little room), which
//! another setup's tags show to anyone: alone it proves nothing, so the app's tag is the gate.
//! Only such credentials are ever removed without being named on the command line. A credential
//! made by make-secret before setups were marked carries only a run tag; it may be *adopted*
//! (recorded, which changes nothing on the tenant), never removed unasked.

use s2s_core::keys;
use s2s_core::setup::{SetupId, setups_in_tags};
use s2s_core::{Ctx, Error, Result};
use s2s_graph::{Application, Graph, PasswordCredential};

use crate::input::Input;

/// Reads the app (waiting out replication right after register-app, graph.md §7.4) and checks
/// that it is the app the flags and the document name.
pub(crate) async fn read_app(
    ctx: &Ctx,
    g: &Graph<'_>,
    input: &Input,
    client_id_flag: Option<&str>,
) -> Result<Application> {
    let app = g.wait_for_application(&input.target).await?;
    // The document's client id is checked only when the app was found by the document's own
    // object id (a flag naming another app overrides the document, see `input::read`).
    let doc_object = ctx.doc.get(keys::APP_OBJECT_ID)?;
    let found_by_doc_object = match &input.target {
        s2s_graph::AppRef::ObjectId(o) => doc_object.is_some_and(|d| d.eq_ignore_ascii_case(o)),
        s2s_graph::AppRef::ClientId(_) => false,
    };
    let expected = match client_id_flag {
        Some(c) => Some(c.to_string()),
        None if found_by_doc_object => ctx.doc.get(keys::APP_CLIENT_ID)?,
        None => None,
    };
    if let Some(c) = expected {
        if !app.app_id.eq_ignore_ascii_case(&c) {
            // Found out only from Graph's answer, so not "bad input with no request sent".
            let named = if client_id_flag.is_some() {
                "--client-id"
            } else {
                "the state document's app.client_id"
            };
            return Err(Error::refused(format!(
                "{named} {c} does not match the app with object id {} (client id {})",
                app.id, app.app_id
            ))
            .with_hint(
                "pass only one of --object-id and --client-id, or fix the one that is wrong",
            ));
        }
    }
    Ok(app)
}

/// Whether credentials may be removed from `app` at all: it carries this setup's full tag
/// (maybe beside other setups': a shared app), or it carries no setup's tag and the document
/// records it as adopted. `Err` says why not.
pub(crate) fn app_is_ours(input: &Input, app: &Application) -> std::result::Result<(), String> {
    let marks = setups_in_tags(&app.tags);
    match &input.setup {
        None => Err(
            "the document names no setup (setup.id, which register-app writes), so nothing proves the app is this \
             setup's"
                .into(),
        ),
        Some(s) if marks.contains(s) => Ok(()),
        Some(_) if marks.is_empty() && input.adopted => Ok(()),
        Some(s) if marks.is_empty() => Err(format!(
            "it carries no setup's tag and the document does not record it as adopted (app.adopted), so nothing \
             proves it is setup {s}'s"
        )),
        Some(s) => Err(format!(
            "it carries the tag of setup {}, not this document's setup {s}",
            marks
                .iter()
                .map(SetupId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Whether the secret's value starts with the credential's hint (graph.md §4.1: the hint is
/// the secret's first three characters).
pub(crate) fn hint_starts(c: &PasswordCredential, value: &str) -> bool {
    c.hint
        .as_deref()
        .is_some_and(|h| !h.is_empty() && value.starts_with(h))
}

pub(crate) fn carries_tag(c: &PasswordCredential, tag: &str) -> bool {
    c.display_name.as_deref().is_some_and(|n| n.ends_with(tag))
}

/// Whether a credential is this setup's: its display name carries the setup's mark.
pub(crate) fn owned(setup: Option<&SetupId>, c: &PasswordCredential) -> bool {
    match (setup, c.display_name.as_deref()) {
        (Some(s), Some(n)) => s.marks_name(n),
        _ => false,
    }
}

/// Whether the credential behind a file may be adopted: this setup's, or made by make-secret
/// before setups were marked (a run tag and no setup's mark at all). Another setup's never.
pub(crate) fn adoptable_name(setup: Option<&SetupId>, c: &PasswordCredential) -> bool {
    if owned(setup, c) {
        return true;
    }
    c.display_name
        .as_deref()
        .is_some_and(|n| made_by_this_tool(n) && !carries_any_setup_mark(n))
}

/// Whether a credential's display name ends with a run tag (`… [run 3fa9c2d1]`), as every
/// credential this tool adds does.
pub(crate) fn made_by_this_tool(name: &str) -> bool {
    let Some(rest) = name.strip_suffix(']') else {
        return false;
    };
    let Some(i) = rest.rfind("[run ") else {
        return false;
    };
    let hex = &rest[i + 5..];
    hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a display name carries any setup's mark (`[setup 1a2b3c4d]`).
fn carries_any_setup_mark(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.match_indices("[setup ").any(|(i, m)| {
        let rest = &lower[i + m.len()..];
        rest.len() > 8
            && rest.as_bytes()[8] == b']'
            && rest[..8].bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_made_by_the_tool_and_marks() {
        assert!(made_by_this_tool(
            "marketo-s2s make-secret 2026-12-03 [run 3fa9c2d1]"
        ));
        assert!(!made_by_this_tool("portal secret"));
        assert!(!made_by_this_tool("x [run 3fa9c2d]"));
        let s = SetupId::mint();
        assert!(carries_any_setup_mark(&format!(
            "x {} [run 3fa9c2d1]",
            s.name_mark()
        )));
        assert!(!carries_any_setup_mark("x [setup nothex!] [run 3fa9c2d1]"));
    }
}
