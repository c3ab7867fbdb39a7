//! Whose is an app register-app finds: the ownership marks (docs/architecture.md, "Ownership").
//!
//! register-app creates every app with this setup's tag (`marketo-s2s:setup:<guid>`, core's
//! `SetupId::tag`). An app it *finds* — by the unique name, or by `--client-id` — is used only
//! when the tenant shows it is this setup's, or when the user says so:
//!
//! - it carries this setup's tag: ours (maybe shared with other setups, each with its tag);
//! - it carries other setups' tags only: another connection's. Not used silently (exit 4): the
//!   user picks `--name` (a separate app) or `--share-app` (this setup's tag is added; a teardown
//!   then removes only its own tag while another setup still uses the app). One exception: an
//!   app with one setup's tag and no service principal and no credential is a register-app run
//!   that was interrupted before it finished (register-app always ends with the service
//!   principal), whose document nobody has: a run that minted a fresh setup id continues it;
//! - it carries no tag: made by an earlier version of these tools, or by hand. Marked when the
//!   document names it by object id *and* client id (an earlier version's document of this very
//!   connection), or when it is as bare as an interrupted run leaves it; otherwise exit 4, as
//!   above. `--share-app` on it *adopts* it, as `--client-id` adopts a portal app: nothing
//!   proves it is this setup's (it may be a live connection an earlier version set up), so it
//!   is not tagged, `app.adopted` is recorded, and a teardown keeps it and its service
//!   principal.

use s2s_core::setup::{SetupId, setups_in_tags};
use s2s_core::{Ctx, Error, Result};
use s2s_graph::{Application, Graph};

/// The setup this run works for.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub id: SetupId,
    /// Minted by this run: the document had no `setup.id` and no `--setup-id` was given.
    pub minted: bool,
}

/// What to do with an app that was found (not created by this run).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// It carries this setup's tag.
    Ours,
    /// It gets this setup's tag; `why` is said on stderr.
    Mark { why: String },
    /// It carries no setup's mark and `--share-app` asks to use it: used as an adopted app
    /// (untagged, `app.adopted`), never made this setup's own; `why` is said on stderr.
    Adopt { why: String },
    /// An interrupted run of another (document-less) setup: this run continues that setup.
    Continue(SetupId),
}

/// How the run came to the app.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found<'a> {
    /// The document names it by object id and client id (both agree with the app).
    pub named_by_doc: bool,
    /// `--share-app` was given.
    pub share: bool,
    /// The key it was found by, for messages (`unique name "…"`, `client id …`).
    pub key: &'a str,
}

/// Judges an app found by its key; `Err` (exit 4) when it is another connection's or unmarked
/// and nothing says this setup may use it.
pub(crate) async fn judge(
    ctx: &Ctx,
    graph: &Graph<'_>,
    app: &Application,
    setup: &Setup,
    found: Found<'_>,
) -> Result<Verdict> {
    let marks = setups_in_tags(&app.tags);
    if marks.contains(&setup.id) {
        return Ok(Verdict::Ours);
    }
    if found.share && !marks.is_empty() {
        return Ok(Verdict::Mark {
            why: format!(
                "--share-app: shared with setup(s) {}; a teardown of either leaves it to the other",
                list(&marks)
            ),
        });
    }
    // No setup's mark: nothing shows whose it is (an earlier version's live connection, a
    // portal app). Tagging it would make it this setup's alone, and its teardown would delete
    // it; so it is adopted. An earlier version's document of this very app (object id and
    // client id) is the migration below, --share-app or not.
    if found.share && !found.named_by_doc {
        return Ok(Verdict::Adopt {
            why: "--share-app on an app that carries no setup's mark (an earlier version's connection, or a portal \
                  app): used as it is, not marked as this setup's (app.adopted), so teardown keeps it and its service \
                  principal and removes only what this setup adds"
                .into(),
        });
    }
    let bare = app.password_credentials.is_empty()
        && setup.minted
        && !found.named_by_doc
        && marks.len() <= 1
        && graph
            .service_principal_by_app_id(&app.app_id)
            .await?
            .is_none();
    match (marks.as_slice(), bare) {
        ([only], true) => {
            ctx.warn(&format!(
                "application {} was left by a register-app run of setup {only} that did not finish (no service \
                 principal, no credential) and whose document this run does not have: continuing that setup. \
                 If another setup with this name is running elsewhere right now, stop and give this one --name",
                label(app)
            ));
            Ok(Verdict::Continue(only.clone()))
        }
        ([], true) => Ok(Verdict::Mark {
            why: "it carried no mark, no service principal and no credential: a run that did not finish".into(),
        }),
        ([], false) if found.named_by_doc => Ok(Verdict::Mark {
            why: "it carried no mark (made by an earlier version) and this document names it by object id and client id"
                .into(),
        }),
        _ => Err(in_use(ctx, app, setup, &marks, found)),
    }
}

/// Exit 4: the app is another connection's (or unmarked and not this document's), with what is
/// known about it and the ways on.
fn in_use(
    ctx: &Ctx,
    app: &Application,
    setup: &Setup,
    marks: &[SetupId],
    found: Found<'_>,
) -> Error {
    let whose = if marks.is_empty() {
        "carries no marketo-s2s setup mark (made by an earlier version of these tools, or by hand) and this \
         document does not name it by object id and client id"
            .to_string()
    } else {
        format!(
            "belongs to another connection (setup {}), not to this document's {}",
            list(marks),
            if setup.minted {
                "new setup".to_string()
            } else {
                format!("setup {}", setup.id)
            }
        )
    };
    let created = app
        .created_date_time
        .as_deref()
        .map(|c| format!(", created {c}"))
        .unwrap_or_default();
    let secrets = if app.password_credentials.is_empty() {
        "no client secret".to_string()
    } else {
        format!(
            "{} client secret(s): {}",
            app.password_credentials.len(),
            app.password_credentials
                .iter()
                .map(|c| {
                    format!(
                        "{:?} (hint {}…, ends {})",
                        c.display_name.as_deref().unwrap_or(""),
                        c.hint.as_deref().unwrap_or("?"),
                        c.end_date_time.as_deref().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut ways = vec![
        format!(
            "for a separate connection give this one its own app: {}",
            ctx.command("register-app", &["--name", "'<another name>'"])
        ),
        if marks.is_empty() {
            format!(
                "to use this app as it is, without making it this setup's (it is adopted: a teardown of this \
                 connection keeps it and its service principal): {}",
                ctx.command("register-app", &["--share-app"])
            )
        } else {
            format!(
                "to share this app on purpose (a teardown of either connection then leaves it to the other): {}",
                ctx.command("register-app", &["--share-app"])
            )
        },
    ];
    if let [only] = marks {
        ways.push(format!(
            "if it is this connection and its document was lost, continue its setup: {}",
            ctx.command("register-app", &["--setup-id", only.as_str()])
        ));
    }
    Error::refused(format!(
        "the application {} found by {}{created} {whose}; it has {secrets}. Which org's Marketo uses it is not \
         recorded in Entra ID (check Marketo Config > Default > Marketo User in each org). It is not used silently",
        label(app),
        found.key
    ))
    .with_hint(ways.join("; or "))
}

fn label(app: &Application) -> String {
    format!(
        "\"{}\" (client id {})",
        app.display_name.as_deref().unwrap_or(""),
        app.app_id
    )
}

fn list(ids: &[SetupId]) -> String {
    ids.iter()
        .map(SetupId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
