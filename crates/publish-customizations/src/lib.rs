//! `publish-customizations` — Marketo step 2 ends with "Publish All Customizations"
//! (reference/dataverse.md §3, §5.1).
//!
//! Sends `PublishAllXml` and waits for it with its own long per-attempt timeout
//! (`--publish-timeout`, 20 minutes by default: the call is known to take many minutes, and pac's
//! old 4-minute client timeout failed in the field, reference §3) and a spinner with the elapsed
//! time on a terminal. `--async` starts `PublishAllXmlAsync` instead and polls its system job
//! (`asyncoperations`: statuscode 30 succeeded, 31 failed, 32 canceled). Both retry the
//! "entity customization running" lock (0x80090412) within the deadline.
//!
//! `--if-changed` sends nothing — not even a sign-in — unless an earlier step changed the
//! Dynamics org since the last publish. Publishing interrupts the org's users and is owed only
//! after Dataverse changes, so a new client secret, a renamed app or an HRD policy never trigger
//! it. It reads every entry of the document's `steps` object and counts those whose `changed`
//! and `dataverse_changed` are `true` (core records `dataverse_changed` when a tool wrote to the
//! org; for older documents without it, `assign-role` and `configure-marketo` are the steps that
//! do) and whose `at` is later than `publish.last_published_at` (in a dry run, `planned_writes`
//! count too). `add-sync-filter` and `verify-sync` never count: the first publishes exactly its
//! own entities (`PublishXml`), the second only reads. It publishes regardless when an earlier
//! publish of this document did not finish (`publish.status` still `pending`).
//!
//! `--async` waits for an earlier run's system job (`publish.async_operation_id`) only while
//! that run's publish is still owed (`pending` before this run): a job recorded with `published`
//! is a finished publish from before the latest changes, so a new publish starts a new job and
//! the old id is dropped as soon as the debt is recorded.
//!
//! `publish.status: pending` is saved to the `--state` file before the publish request is sent,
//! so a run that is interrupted (Ctrl-C, SIGTERM, a killed CI job) leaves the publish owed; with
//! `--async` the system job's id is saved there too as soon as it is known, so the re-run of a
//! run killed during the wait waits for that job instead of starting a second publish. With
//! no document at all (`< /dev/null`, `{}`) it publishes only after confirmation: asked on a
//! terminal, `--yes` off one (exit 2 without it, nothing sent).
//!
//! `publish.status` is `published`, `skipped-unchanged`, `planned`, or `pending` when a publish
//! failed and `--state` kept the document; `publish.mode` is `sync` or `async`. The keys it reads
//! and writes and its exit codes: `publish-customizations --help` (rendered from `READS`,
//! `WRITES` and core's exit-code table).
//!
//! Example:
//! ```text
//! ... | assign-role | configure-marketo | publish-customizations --if-changed
//! ```

use std::time::{Duration, Instant};

use clap::Parser;

use s2s_core::keys;
use s2s_core::retry::{Poll, until_ready};
use s2s_core::state::now_rfc3339;
use s2s_core::{AnyKey, CommonArgs, Ctx, Error, Result};
use s2s_dataverse::{AsyncOperation, Dataverse, JobState, Written};

const NAME: &str = "publish-customizations";

/// Publish all customizations of the Dynamics 365 org, as Marketo's runbook asks after
/// configuring the Marketo solution.
///
/// Reads the state document on stdin and writes it, enriched with `publish.*`, on stdout. The
/// whole run is bounded by --timeout (default 30m here): raise both for a very large org.
#[derive(Debug, Parser)]
#[command(
    name = "publish-customizations",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
)]
pub struct Cli {
    /// Start PublishAllXmlAsync and poll its system job instead of waiting on one long request
    #[arg(long = "async")]
    pub use_async: bool,

    /// Per-attempt timeout of the PublishAllXml request (e.g. 20m, 1h)
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = s2s_core::cli::parse_duration)]
    pub publish_timeout: Duration,

    /// Send nothing unless an earlier step changed the Dynamics org since the last publish
    /// (steps.*.dataverse_changed; Entra-only steps, add-sync-filter and verify-sync do not count)
    #[arg(long)]
    pub if_changed: bool,

    /// Publish even with no state document (`< /dev/null`, `{}`): asked on a terminal, needed
    /// off one, since publishing interrupts the org's users
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = NAME;
    const READS: &'static [AnyKey] = &[
        keys::DYNAMICS_URL.any(),
        keys::STEPS.any(),
        keys::PUBLISH_STATUS.any(),
        keys::PUBLISH_ASYNC_OPERATION_ID.any(),
        keys::PUBLISH_LAST_PUBLISHED_AT.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::PUBLISH_STATUS.any(),
        keys::PUBLISH_AT.any(),
        keys::PUBLISH_MODE.any(),
        keys::PUBLISH_ASYNC_OPERATION_ID.any(),
        keys::PUBLISH_LAST_PUBLISHED_AT.any(),
    ];
    const EXAMPLES: &'static str = "\
... | assign-role | configure-marketo | publish-customizations --if-changed
publish-customizations --async --timeout 60m --state s.json   # a large org
publish-customizations --dynamics-url https://contoso.crm.dynamics.com --yes < /dev/null";
    const HELP_NOTES: &'static str = "\
publish.status is published, skipped-unchanged, planned, or pending when a publish failed.
--if-changed publishes only when a step changed the Dynamics org after the last publish
(steps.*.changed, .dataverse_changed and .at against publish.last_published_at; a new secret or
an Entra change never does), or an earlier publish is still pending, so a re-run on a finished
setup sends no write. --async waits for the job of a publish still pending
(publish.async_operation_id) instead of starting another; a finished publish's job is never
taken for a new one. With no document (< /dev/null) it publishes only when confirmed: on a
terminal, or with --yes.";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[
        (0, "published, or skipped with --if-changed"),
        (4, "also a publish job that failed (its message is shown)"),
    ];
    /// Longer than the 20-minute publish itself, so one slow publish plus a lock retry fits.
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    let mode = if cli.use_async { "async" } else { "sync" };
    let dv = Dataverse::from_config(&ctx.http)?;
    // With no document there is no setup to finish: publishing then is the surprise of a
    // mistyped pipeline (`publish-customizations < /dev/null`), so it is confirmed like other
    // writes that interrupt people. --if-changed never publishes without a document anyway.
    if ctx.doc.root().is_empty() && !cli.if_changed {
        let question = format!(
            "publishing all customizations of {} with no state document (it interrupts the org's users)?",
            s2s_core::output::url_for_humans(dv.org())
        );
        if !s2s_core::confirm::confirm(NAME, &question, cli.yes, ctx.dry_run())? {
            return Err(Error::usage("not confirmed: nothing was published"));
        }
    }
    let last_published = ctx
        .doc
        .get(keys::PUBLISH_LAST_PUBLISHED_AT)?
        .map(str::to_string);

    if cli.if_changed {
        let changed = changed_steps(ctx)?;
        let unfinished = ctx.doc.get(keys::PUBLISH_STATUS)? == Some("pending");
        if changed.is_empty() && !unfinished {
            ctx.say("no earlier step changed Dataverse since the last publish: not publishing (--if-changed)");
            set_publish(
                ctx,
                "skipped-unchanged",
                mode,
                None,
                &now_rfc3339(),
                last_published,
            );
            return Ok(());
        }
        if unfinished {
            ctx.say("an earlier publish did not finish: publishing again");
        } else {
            ctx.say(&format!(
                "publishing because {} changed",
                changed.join(", ")
            ));
        }
    }

    // The debt is recorded before the publish request: should this run be interrupted or
    // killed, the --state file already says a publish is owed (`pending`), and the next
    // --if-changed run publishes although the earlier steps then report no change. The sign-in
    // comes first, so a run that cannot sign in leaves the file as it was.
    if !ctx.dry_run() {
        ctx.http.token(dv.org()).await?;
    }
    // Read before the debt is marked below, which would make any recorded job look owed: only
    // the job of a publish still `pending` may be resumed. A job recorded with `published` is a
    // finished publish from before the latest changes, so it is dropped here (also from the
    // checkpoint: a run killed before its own job starts must not leave the old one to resume).
    let owed_job = owed_job(ctx)?;
    ctx.doc.set(keys::PUBLISH_STATUS, "pending");
    ctx.doc
        .set(keys::PUBLISH_ASYNC_OPERATION_ID, owed_job.clone());
    ctx.checkpoint()?;

    let started = Instant::now();
    let outcome = if cli.use_async {
        match start_or_resume(ctx, &dv, owed_job).await? {
            Job::Planned => Written::Planned,
            Job::Finished(id) => Written::Done(Some(id)),
            Job::Running(id) => {
                // Recorded and saved at once: a wait that fails, is interrupted or is killed
                // (even with SIGKILL) still leaves the --state file naming the job to resume,
                // so the re-run waits for it rather than publishing a second time.
                ctx.doc.set(keys::PUBLISH_ASYNC_OPERATION_ID, &id);
                ctx.checkpoint()?;
                wait_for_job(ctx, &dv, id).await?
            }
        }
    } else {
        publish_sync(ctx, &dv, cli.publish_timeout).await?
    };
    match outcome {
        Written::Planned => {
            ctx.say("dry run: would publish all customizations");
            set_publish(ctx, "planned", mode, None, &now_rfc3339(), last_published);
        }
        Written::Done(job) => {
            ctx.say(&format!(
                "published all customizations in {:.1} s{}",
                started.elapsed().as_secs_f64(),
                job.as_ref()
                    .map(|j| format!(" (system job {j})"))
                    .unwrap_or_default()
            ));
            // One clock read: `at` and `last_published_at` name the same moment.
            let now = now_rfc3339();
            set_publish(ctx, "published", mode, job, &now, Some(now.clone()));
        }
    }
    Ok(())
}

/// The system job of an earlier run's publish that did not finish (`publish.status: pending`
/// with `publish.async_operation_id`), the one a re-run may wait for instead of publishing again.
fn owed_job(ctx: &Ctx) -> Result<Option<String>> {
    Ok(
        match (
            ctx.doc.get(keys::PUBLISH_STATUS)?,
            ctx.doc.get(keys::PUBLISH_ASYNC_OPERATION_ID)?,
        ) {
            (Some("pending"), Some(id)) => Some(id),
            _ => None,
        },
    )
}

/// The earlier steps that changed Dataverse since the last publish (core's `owed` module, shared
/// with verify-sync's "published" check).
fn changed_steps(ctx: &Ctx) -> Result<Vec<String>> {
    s2s_core::owed::changes_since_publish(&ctx.doc, ctx.dry_run())
}

fn set_publish(
    ctx: &mut Ctx,
    status: &str,
    mode: &str,
    job: Option<String>,
    at: &str,
    last_published: Option<String>,
) {
    ctx.doc.set(keys::PUBLISH_STATUS, status);
    ctx.doc.set(keys::PUBLISH_AT, at);
    ctx.doc.set(keys::PUBLISH_MODE, mode);
    ctx.doc.set(keys::PUBLISH_ASYNC_OPERATION_ID, job);
    ctx.doc.set(keys::PUBLISH_LAST_PUBLISHED_AT, last_published);
}

/// One long `PublishAllXml` request, with a spinner while it runs (only drawn on a terminal).
async fn publish_sync(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    attempt_timeout: Duration,
) -> Result<Written<Option<String>>> {
    if !ctx.dry_run() {
        ctx.say("publishing all customizations (this can take several minutes)");
    }
    let started = Instant::now();
    let report = ctx.reporter();
    let ticker = async {
        loop {
            report.progress("publishing all customizations", started.elapsed());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let result = tokio::select! {
        r = dv.publish_all(attempt_timeout) => r,
        () = ticker => Err(Error::internal("the progress ticker stopped")),
    };
    report.clear_progress();
    Ok(match result? {
        Written::Planned => Written::Planned,
        Written::Done(()) => Written::Done(None),
    })
}

/// Polls the system job `PublishAllXmlAsync` started until it ends (reference §3).
/// `PublishAllXmlAsync`, resumable: a re-run given the job of an earlier run's unfinished
/// publish (`earlier`, see [`owed_job`]) polls that job rather than starting another
/// (publishing twice interrupts the org's users twice), and a request whose answer was lost
/// looks for the job it may have started — one that was not there before it was sent — before
/// it would send a second one.
async fn start_or_resume(ctx: &Ctx, dv: &Dataverse<'_>, earlier: Option<String>) -> Result<Job> {
    if let Some(id) = earlier {
        match dv.async_operation(&id).await {
            Ok(op) => match op.state() {
                JobState::Running => {
                    ctx.say(&format!(
                        "an earlier run's publish (system job {id}) is still running: waiting for it"
                    ));
                    return Ok(Job::Running(id));
                }
                JobState::Succeeded => {
                    ctx.say(&format!(
                        "an earlier run's publish (system job {id}) has succeeded"
                    ));
                    return Ok(Job::Finished(id));
                }
                _ => ctx.say(&format!(
                    "an earlier run's publish (system job {id}) {}: publishing again",
                    failure_text(&op)
                )),
            },
            // A job that is gone (system jobs are cleaned up) cannot be resumed.
            Err(e) if e.status() == Some(404) => {
                ctx.say(&format!(
                    "the earlier run's system job {id} no longer exists: publishing again"
                ));
            }
            Err(e) => return Err(e),
        }
    }
    // Dataverse's clock decides `createdon`; a minute of slack covers a skewed local clock.
    let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let since = since
        .replace_nanosecond(0)
        .unwrap_or(since)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    // The jobs already there cannot be the one this request starts: without this list, the
    // window above would take an earlier publish that finished a moment ago (another run's, or
    // one started in the portal) for ours after a lost answer, and nothing would be published.
    let before: Vec<String> = dv
        .publish_jobs_since(&since)
        .await?
        .into_iter()
        .filter_map(|j| j.asyncoperationid)
        .collect();
    let id = match dv.publish_all_async().await {
        Ok(Written::Planned) => return Ok(Job::Planned),
        Ok(Written::Done(id)) => {
            ctx.say(&format!(
                "started publishing all customizations (system job {id})"
            ));
            id
        }
        Err(e) if e.ambiguous => {
            let jobs = dv.publish_jobs_since(&since).await?;
            let newest = jobs
                .iter()
                .filter(|j| {
                    j.asyncoperationid
                        .as_deref()
                        .is_some_and(|id| !before.iter().any(|b| b.eq_ignore_ascii_case(id)))
                })
                .max_by(|a, b| a.createdon.cmp(&b.createdon));
            match newest.and_then(|j| j.asyncoperationid.clone()) {
                Some(id) => {
                    ctx.say(&format!(
                        "the answer to PublishAllXmlAsync was lost; found the system job it started ({id})"
                    ));
                    id
                }
                None => {
                    let again = ctx.command(NAME, &["--async"]);
                    return Err(e.with_hint(format!(
                        "no publish job was found after the lost answer: re-run {again}"
                    )));
                }
            }
        }
        Err(e) => return Err(e),
    };
    Ok(Job::Running(id))
}

/// Where an async publish stands before the wait.
enum Job {
    /// `--dry-run`: the start is in the plan.
    Planned,
    /// An earlier run's job that has succeeded since.
    Finished(String),
    /// A job to wait for: just started, or an earlier run's still running.
    Running(String),
}

fn failure_text(op: &AsyncOperation) -> String {
    let what = if op.state() == JobState::Canceled {
        "was canceled"
    } else {
        "failed"
    };
    match op.explanation() {
        Some(m) => format!("{what} ({})", s2s_core::output::sanitize(m)),
        None => what.to_string(),
    }
}

async fn wait_for_job(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    id: String,
) -> Result<Written<Option<String>>> {
    let job: AsyncOperation = until_ready(
        ctx.http.deadline(),
        &format!("waiting for system job {id}"),
        ctx.reporter(),
        || async {
            let op = dv.async_operation(&id).await?;
            Ok(match op.state() {
                JobState::Running => Poll::Pending(op.status_name().to_string()),
                _ => Poll::Ready(op),
            })
        },
    )
    .await?;
    match job.state() {
        JobState::Succeeded => Ok(Written::Done(Some(id))),
        _ => Err(Error::refused(format!(
            "the publish system job {id} {}",
            failure_text(&job)
        ))
        .with_hint(format!(
            "see Settings > System Jobs in Dynamics for details, then re-run: {}",
            s2s_core::hint::same_command()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Cli::try_parse_from(["publish-customizations"]).unwrap();
        assert_eq!(c.publish_timeout, Duration::from_secs(20 * 60));
        assert!(!c.use_async && !c.if_changed);
        let c = Cli::try_parse_from([
            "publish-customizations",
            "--async",
            "--publish-timeout",
            "5m",
        ])
        .unwrap();
        assert!(c.use_async);
        assert_eq!(c.publish_timeout, Duration::from_secs(300));
    }
}
