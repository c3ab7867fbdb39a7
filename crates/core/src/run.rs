//! The life of every tool, in one place: parse flags, read the state document, resolve the
//! configuration, run the step, record `steps.<tool>`, write the document, and map any error to
//! the design's exit code with a report such as `register-app: error: ...`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use serde_json::{Value, json};

use crate::api::Http;
use crate::cli::CommonArgs;
use crate::config::Config;
use crate::error::{Error, Kind, Result};
use crate::keys::{self, AnyKey};
use crate::output::Reporter;
use crate::state::{StateDoc, now_rfc3339};

/// What a tool's clap struct must offer to the harness.
pub trait Tool: Parser {
    const NAME: &'static str;
    /// A tool that only reads and checks (preflight, verify-sync): it does not say "nothing to
    /// change", and its `--help` lists exit code 6 (a check failed).
    const READ_ONLY: bool = false;
    /// The tool that begins a setup (register-app) may start from an empty document; every
    /// other tool continues one, so zero bytes on its stdin mean the previous step failed.
    const STARTS_SETUP: bool = false;
    /// The state-document keys the tool reads (constants of [`crate::keys`]). The harness checks
    /// every one that is present before the tool runs, so a wrong type is exit 2 naming the key
    /// with no request sent — even for a key the tool would only read late, or not at all on
    /// this path. `--help` lists them.
    const READS: &'static [AnyKey] = &[];
    /// The state-document keys the tool writes; `--help` lists them.
    const WRITES: &'static [AnyKey] = &[];
    /// The examples of `--help`, one command a line (a `# …` line says what the next one does).
    const EXAMPLES: &'static str;
    /// What `--help` says after the examples that the flags and key lists cannot (optional).
    const HELP_NOTES: &'static str = "";
    /// What an exit code means for this tool beside its common meaning, for `--help`.
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[];
    /// The deadline when `--timeout` is not given.
    const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
    fn common(&self) -> &CommonArgs;
    /// Checks flags that clap cannot (run before any request, exit 2 on failure).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Everything a step needs: the document it enriches and the HTTP layer.
pub struct Ctx {
    pub doc: StateDoc,
    pub http: Http,
    report: Arc<Reporter>,
    state_file: Option<PathBuf>,
}

impl Ctx {
    pub fn config(&self) -> &Config {
        self.http.config()
    }
    pub fn dry_run(&self) -> bool {
        self.config().dry_run
    }
    pub fn say(&self, msg: &str) {
        self.report.say(msg);
    }
    pub fn warn(&self, msg: &str) {
        self.report.warn(msg);
    }
    pub fn reporter(&self) -> &Reporter {
        &self.report
    }
    pub fn tool(&self) -> &'static str {
        self.report.tool()
    }
    /// The `--state` file, if the document lives in one.
    pub fn state_file(&self) -> Option<&Path> {
        self.state_file.as_deref()
    }
    /// A path read from the document, made absolute (relative to the `--state` file's folder).
    pub fn resolve_doc_path(&self, p: &Path) -> PathBuf {
        crate::statefile::resolve_doc_path(self.state_file(), p)
    }
    /// A path as the document records it (by name when beside the `--state` file).
    pub fn doc_path_text(&self, p: &Path) -> String {
        crate::statefile::doc_path_text(self.state_file(), p)
    }
    /// A command for people to paste: `tool` with this run's `--state` file and the flags it was
    /// given that pick the target and sign-in, then `args` (see [`crate::hint`]).
    pub fn command(&self, tool: &str, args: &[&str]) -> String {
        crate::hint::command(tool, self.state_file(), args)
    }
    /// Saves the document to the `--state` file now (not in a dry run, nor on a pipe), before a
    /// write that may not come back — a publish that runs for minutes: if the run is then killed,
    /// even with SIGKILL, the file already says what is owed.
    pub fn checkpoint(&self) -> Result<()> {
        match (&self.state_file, self.dry_run()) {
            (Some(p), false) => self.doc.save(p),
            _ => Ok(()),
        }
    }
    /// Where a file the tool makes goes by default: beside the `--state` file, or here.
    pub fn default_dir(&self) -> PathBuf {
        crate::statefile::base_dir(self.state_file())
    }
}

/// How a step that ran to its end finished. A step returns `Result<()>` (done) or, when it can
/// end with failed checks, `Result<Outcome>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: exit 0.
    Done,
    /// A checklist ran to its end and a check failed (preflight, verify-sync): the document,
    /// with the checks, is written as after any run that finished; then `summary` and `hint` are
    /// said as the error line and its hint, and the exit code is 6.
    ChecksFailed { summary: String, hint: String },
}

impl From<()> for Outcome {
    fn from((): ()) -> Self {
        Outcome::Done
    }
}

/// A tool's step: `async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()>` (or `Result<Outcome>`).
pub trait Step<C> {
    type Output: Into<Outcome>;
    fn call(self, ctx: &mut Ctx, cli: C)
    -> impl std::future::Future<Output = Result<Self::Output>>;
}

impl<C, F, O> Step<C> for F
where
    F: AsyncFnOnce(&mut Ctx, C) -> Result<O>,
    O: Into<Outcome>,
{
    type Output = O;
    async fn call(self, ctx: &mut Ctx, cli: C) -> Result<O> {
        self(ctx, cli).await
    }
}

/// Runs a tool: `fn main() -> ExitCode { s2s_core::run::main::<Cli, _>(run) }`.
pub fn main<C: Tool, F: Step<C>>(step: F) -> ExitCode {
    match parse::<C>() {
        Ok(cli) => main_parsed(cli, step),
        Err(code) => code,
    }
}

/// The flags, or the exit of `--help`/`--version`/`--generate` or of a usage error (house
/// style, exit 2).
pub fn parse<C: Tool>() -> std::result::Result<C, ExitCode> {
    if let Some(what) = generate_asked() {
        return Err(generate::<C>(what));
    }
    let parsed = C::command()
        .try_get_matches()
        .and_then(|mut m| {
            crate::hint::remember(&m);
            C::from_arg_matches_mut(&mut m)
        })
        .map_err(|e| e.format(&mut C::command()));
    let cli = parsed.map_err(|e| clap_exit(C::NAME, e))?;
    crate::output::set_color(cli.common().color);
    Ok(cli)
}

/// `--generate WHAT` anywhere on the command line (before clap, so a tool's required flags or
/// conflicts do not stand in the way); an unknown value is left to clap's error.
fn generate_asked() -> Option<crate::cli::Generate> {
    use clap::ValueEnum;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.as_str() {
            "--generate" => args.get(i + 1).cloned(),
            _ => a.strip_prefix("--generate=").map(str::to_string),
        })?;
    crate::cli::Generate::from_str(&value, true).ok()
}

/// Writes the tool's completions or man page on stdout (the one writer of stdout, as for the
/// document).
fn generate<C: Tool>(what: crate::cli::Generate) -> ExitCode {
    let mut text = Vec::new();
    if let Err(e) = crate::cli::generate(what, &mut C::command(), &mut text) {
        crate::output::ewriteln(&format!("{}: error: {e}", C::NAME));
        return ExitCode::from(1);
    }
    let out = std::io::stdout();
    let mut lock = out.lock();
    match lock.write_all(&text).and_then(|()| lock.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            crate::output::ewriteln(&format!("{}: error: cannot write to stdout: {e}", C::NAME));
            ExitCode::from(1)
        }
    }
}

/// [`main`] for flags already parsed (a tool with a second mode picks after parsing).
pub fn main_parsed<C: Tool, F: Step<C>>(cli: C, step: F) -> ExitCode {
    let common = cli.common().clone();
    let report = Arc::new(Reporter::new(C::NAME, common.quiet, common.verbose));
    match execute::<C, F>(cli, &common, report.clone(), step) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::ChecksFailed { summary, hint }) => {
            crate::error::report_lines(
                C::NAME,
                &crate::output::sanitize(&summary),
                &[],
                Some(&hint),
            );
            crate::pipe::say_handed_on(C::NAME);
            ExitCode::from(Kind::ChecksFailed.code())
        }
        Err(e) => {
            report_error(C::NAME, &e, common.verbose);
            crate::pipe::say_handed_on(C::NAME);
            e.exit_code()
        }
    }
}

fn execute<C: Tool, F: Step<C>>(
    cli: C,
    common: &CommonArgs,
    report: Arc<Reporter>,
    step: F,
) -> Result<Outcome> {
    // From here on Ctrl-C and SIGTERM end the run as a failure that keeps the document.
    crate::interrupt::watch(C::NAME);
    let mut common = common.clone();
    if common.state.is_none() {
        common.state = crate::statefile::default_for_terminal(&report);
    }
    let common = &common;
    if let Some(p) = &common.state {
        crate::hint::remember_state(p);
    }
    if let Err(e) = cli.validate() {
        return Err(hand_on_unread::<C>(common, e));
    }
    // The output targets are checked, and the state file locked, before anything is read or
    // sent: a run must not do real work only to find at the end that it cannot keep the result.
    let _lock = match &common.state {
        Some(path) => {
            let resolved = crate::statefile::check_target(path, "--state")?;
            let wait = common
                .timeout
                .unwrap_or(C::DEFAULT_TIMEOUT)
                .min(crate::statefile::LOCK_WAIT);
            Some(crate::statefile::StateLock::acquire(
                &resolved, wait, &report,
            )?)
        }
        None => None,
    };
    if let Some(plan) = &common.plan {
        let resolved = crate::statefile::check_target(plan, "--plan")?;
        let same_as_state = common
            .state
            .as_deref()
            .and_then(|s| crate::statefile::check_target(s, "--state").ok())
            .is_some_and(|s| s == resolved);
        if same_as_state {
            return Err(Error::usage(
                "--plan must not be the --state file: a dry run never writes the state file",
            ));
        }
    }
    // A `--state` file that does not exist is an empty document; if the step then misses a key
    // an earlier step writes, the likelier cause is a mistyped path, and the error says so.
    let missing_state = common.state.clone().filter(|p| !p.exists());
    // The whole document is read before anything else, so a sign-in prompt can never compete
    // with the previous tool of a pipeline for the terminal.
    let mut doc = StateDoc::load(common.state.as_deref(), C::STARTS_SETUP)?;
    if common.state.is_none() {
        // A failed step earlier in this pipeline: hand its document on untouched.
        if let Some(up) = crate::pipe::failed_upstream(&doc, C::NAME) {
            emit(&doc, common)?;
            return Err(crate::pipe::passed_on(&up));
        }
    }
    if crate::interrupt::signalled().is_some() {
        if crate::pipe::hands_on(common) && !doc.root().is_empty() {
            emit(&doc, common)?;
        }
        return Err(crate::interrupt::error(
            "reading its input; nothing was sent and the document is unchanged",
        ));
    }
    let cfg = match doc
        .check_keys(keys::COMMON_READS)
        .and_then(|()| doc.check_keys(C::READS))
        .and_then(|()| Config::resolve(C::NAME, common, &doc, C::DEFAULT_TIMEOUT))
    {
        Ok(cfg) => cfg,
        Err(e) => {
            if crate::pipe::hands_on(common) && !doc.root().is_empty() {
                record_failure(&mut doc, C::NAME, &e, Counts::default(), true);
                emit(&doc, common)?;
                crate::pipe::handed_on();
            } else if planned_to_file(common) {
                plan_failure(&mut doc, C::NAME, &e, Counts::default(), Vec::new(), common);
            }
            return Err(e);
        }
    };
    // The first line of every tool that writes says which customer this run acts on: it is
    // held by the reporter and said before the run's first other line or first request.
    if !C::READ_ONLY {
        report.set_preamble(target_line(&cfg, &doc, common.state.as_deref()));
    }
    for note in &cfg.notes {
        report.say(note);
    }
    report.set_deadline(cfg.deadline);
    apply_retarget(&mut doc, &cfg.retarget, &report);
    let http = Http::new(cfg, report.clone());
    let mut ctx = Ctx {
        doc,
        http,
        report,
        state_file: common.state.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    let result = rt.block_on(async {
        let work = async {
            confirm_tenant(&mut ctx).await?;
            step.call(&mut ctx, cli).await.map(Into::into)
        };
        // An interrupt abandons the work in flight at its next await (a request, a wait);
        // what it did so far is recorded below like any failure's.
        tokio::select! {
            r = work => r,
            () = crate::interrupt::arrival() => Err(crate::interrupt::error("working")),
        }
    });
    let writes = ctx.http.writes();
    match result {
        // Failed checks are an answer, not a crash: the document (with `verify.*`) is written
        // like any other before the exit code says 6.
        Ok(outcome) => {
            let mut entry = json!({
                "changed": writes > 0,
                "dataverse_changed": ctx.http.dataverse_writes() > 0,
                "at": now_rfc3339(),
            });
            if ctx.http.dataverse_writes() == 0 {
                carry_unpaid_change(&ctx.doc, C::NAME, &mut entry, ctx.dry_run());
            }
            if ctx.dry_run() {
                entry["dry_run"] = Value::Bool(true);
                let plan = ctx.http.take_plan();
                // What a real run would have changed, for later steps that key on `changed`
                // (publish-customizations --if-changed) in a dry-run pipeline.
                entry["planned_writes"] = Value::from(plan.len());
                if !plan.is_empty() {
                    ctx.say(&format!(
                        "dry run: {} write(s) planned, none sent",
                        plan.len()
                    ));
                }
                ctx.doc.set(keys::PLAN, plan);
            } else {
                ctx.doc.remove(keys::PLAN);
                if writes == 0 && outcome == Outcome::Done && !C::READ_ONLY {
                    ctx.say("nothing to change");
                }
            }
            ctx.doc.set_value(&format!("steps.{}", C::NAME), entry);
            // The domain the user named the tenant by, for every later message and target line:
            // by now it is known to be the document's tenant (confirm_tenant).
            if let Some(domain) = ctx.config().tenant_domain_given.clone() {
                ctx.doc.set(keys::TENANT_DOMAIN, domain);
            }
            // A failed gate (preflight) on a pipe stops the pipeline as a failed step does: the
            // tools after it pass the document on and write nothing.
            if let Outcome::ChecksFailed { summary, .. } = &outcome {
                let gate = crate::tools::tool(C::NAME)
                    .is_some_and(|t| t.stage == crate::tools::Stage::Check);
                if gate && crate::pipe::hands_on(common) {
                    let e = Error::new(Kind::ChecksFailed, summary.clone());
                    record_failure(&mut ctx.doc, C::NAME, &e, Counts::default(), true);
                    crate::pipe::handed_on();
                }
            }
            emit(&ctx.doc, common)?;
            Ok(outcome)
        }
        Err(e) => {
            let e = explain_missing_state(e, missing_state.as_deref());
            let counts = Counts {
                writes,
                dataverse_writes: ctx.http.dataverse_writes(),
            };
            let attempted = ctx.http.attempted_writes() > 0 && !ctx.dry_run();
            // A run that sent no write changed nothing: its --state file stays byte-identical.
            // One that did (even a write that then failed, such as a publish) records what it
            // did and the error, so a resume knows; every other key is kept.
            let mut recorded = false;
            if let Some(path) = &common.state {
                if attempted {
                    record_failure(&mut ctx.doc, C::NAME, &e, counts, false);
                    match ctx.doc.save(path) {
                        Ok(()) => recorded = true,
                        Err(save) => {
                            let rescued = write_document(&ctx.doc).is_ok();
                            crate::output::ewriteln(&format!(
                                "{}: error: {save}; {}",
                                C::NAME,
                                if rescued {
                                    "the document, with what this run did, was written to stdout instead"
                                } else {
                                    "what this run did is not recorded"
                                }
                            ))
                        }
                    }
                }
            } else if crate::pipe::hands_on(common) && !ctx.doc.root().is_empty() {
                // On a pipe the document goes on whatever happened, so no id is lost (an empty
                // one, with nothing to lose, is not: the next tool says the pipe came up empty).
                record_failure(&mut ctx.doc, C::NAME, &e, counts, true);
                emit(&ctx.doc, common)?;
                crate::pipe::handed_on();
            }
            if planned_to_file(common) {
                let plan = ctx.http.take_plan();
                plan_failure(&mut ctx.doc, C::NAME, &e, counts, plan, common);
            }
            if matches!(e.kind, Kind::Interrupted(_)) {
                return Err(interrupted(e, common, attempted, recorded));
            }
            Err(e)
        }
    }
}

/// An error found before the document was read (flags that clap cannot check): on a pipe the
/// document is still read and handed on with the error, so the steps before keep their ids.
fn hand_on_unread<C: Tool>(common: &CommonArgs, e: Error) -> Error {
    if !crate::pipe::hands_on(common) || std::io::stdin().is_terminal() {
        return e;
    }
    if let Ok(mut doc) = StateDoc::load(None, C::STARTS_SETUP) {
        if !doc.root().is_empty() {
            let upstream = crate::pipe::failed_upstream(&doc, C::NAME).is_some();
            if !upstream {
                record_failure(&mut doc, C::NAME, &e, Counts::default(), true);
            }
            if emit(&doc, common).is_ok() && !upstream {
                crate::pipe::handed_on();
            }
        }
    }
    e
}

/// A dry run with `--plan FILE`: the file stands in for stdout, so a step that fails after
/// reading its input writes its would-be document there too, with `steps.<tool>.error` saying
/// how it ended (the runbook reads it to tell a step that needs the ids of planned writes from
/// one given bad input).
fn planned_to_file(common: &CommonArgs) -> bool {
    common.dry_run && common.plan.is_some()
}

/// The would-be document of a failed dry run, with the writes it planned before it failed (not
/// the previous step's) and its error, to `--plan FILE`. A file that cannot be written is said,
/// and the step's own error stays the one reported.
fn plan_failure(
    doc: &mut StateDoc,
    tool: &str,
    e: &Error,
    counts: Counts,
    plan: Vec<Value>,
    common: &CommonArgs,
) {
    doc.set(keys::PLAN, plan);
    record_failure(doc, tool, e, counts, false);
    if let Err(w) = emit(doc, common) {
        crate::output::ewriteln(&format!("{tool}: warning: {w}"));
    }
}

/// A value the step missed, with a `--state` file that did not exist: the path is the problem.
fn explain_missing_state(e: Error, missing: Option<&Path>) -> Error {
    let Some(path) = missing.filter(|_| e.missing_key.is_some()) else {
        return e;
    };
    let shown = crate::output::sanitize(&path.display().to_string()).into_owned();
    let near = crate::statefile::state_files_near(path);
    Error::usage(format!("no such state file: {shown} ({e})")).with_hint(
        if near.is_empty() {
            "check the --state path; a new setup starts with register-app (or the runbook), which creates the file".to_string()
        } else {
            format!(
                "check the --state path; state files in that folder: {}",
                near.join(", ")
            )
        },
    )
}

/// An interrupted run's error, with what became of the document and the command that resumes.
fn interrupted(mut e: Error, common: &CommonArgs, attempted: bool, recorded: bool) -> Error {
    if e.message.ends_with("while working") {
        e.message.push_str(if attempted {
            ", after it had begun to write"
        } else {
            ", before it sent any write"
        });
    }
    let again = crate::hint::same_command();
    let hint = match (&common.state, common.dry_run) {
        (_, true) => format!("a dry run sends no write; run it again: {again}"),
        (Some(p), false) if recorded => format!(
            "what it did is recorded in {} (steps.<tool>.error); to resume, run the same command: {again}",
            crate::output::sanitize(&p.display().to_string())
        ),
        (Some(p), false) if !attempted => format!(
            "it had sent no write and {} is unchanged; to resume, run the same command: {again}",
            crate::output::sanitize(&p.display().to_string())
        ),
        (Some(_), false) => format!("to resume, run the same command: {again}"),
        (None, false) => format!(
            "the document, with what it did, went on to stdout; to resume, run the same command with that document on stdin: {again} < FILE"
        ),
    };
    e.with_hint(hint)
}

/// A read-only step over many state documents (`verify-sync --fleet`), at most `jobs` at once
/// on one thread. Each document gets its own configuration and sign-in: its own `tenant.id`,
/// `tenant.cloud`, `dynamics.url` and `sign_in` decide the target and the credential (the
/// `--tenant` / `--dynamics-url` of the command line, or the environment, name one customer and
/// are ignored here), and the credential chain runs per tenant as for a single run. Each
/// document has `--timeout` of its own, from when its check starts. Nothing is written back.
/// `done` gets each file's answer (or its error) as soon as it is there, with the file's index
/// in `files`.
pub fn many<C, F, D>(
    cli: &C,
    files: &[PathBuf],
    jobs: usize,
    report: &Arc<Reporter>,
    per_doc: F,
    mut done: D,
) -> Result<()>
where
    C: Tool,
    F: AsyncFn(&mut Ctx, &C) -> Result<Value>,
    D: FnMut(usize, &Path, Result<Value>),
{
    use futures_util::stream::{self, StreamExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    let per_doc = &per_doc;
    // Every wait is bounded by the document's deadline already; this is the backstop for
    // anything that is not (a sign-in helper), so one connection cannot hold up the report.
    let limit =
        cli.common().timeout.unwrap_or(C::DEFAULT_TIMEOUT) + std::time::Duration::from_secs(5);
    rt.block_on(
        stream::iter(files.iter().cloned().enumerate())
            .map(|(i, file)| async move {
                let check = async {
                    let mut ctx = open_document::<C>(cli.common(), &file, report)?;
                    per_doc(&mut ctx, cli).await
                };
                let outcome = match tokio::time::timeout(limit, check).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::timeout(format!(
                        "the check did not finish within --timeout ({:.0} s)",
                        limit.as_secs_f64() - 5.0
                    ))),
                };
                (i, file, outcome)
            })
            .buffer_unordered(jobs.max(1))
            .for_each(|(i, file, outcome)| {
                done(i, &file, outcome);
                std::future::ready(())
            }),
    );
    Ok(())
}

/// One document of [`many`], read and checked as a single run would, with its own target.
fn open_document<C: Tool>(common: &CommonArgs, file: &Path, report: &Arc<Reporter>) -> Result<Ctx> {
    let doc = StateDoc::load_existing(file)?;
    if doc.root().is_empty() {
        return Err(Error::usage(format!(
            "{} holds an empty document",
            file.display()
        )));
    }
    doc.check_keys(keys::COMMON_READS)?;
    doc.check_keys(C::READS)?;
    let mut own = common.clone();
    own.tenant = None;
    own.dynamics_url = None;
    own.state = Some(file.to_path_buf());
    let cfg = Config::resolve(C::NAME, &own, &doc, C::DEFAULT_TIMEOUT)?;
    Ok(Ctx {
        doc,
        http: Http::new(cfg, report.clone()),
        report: report.clone(),
        state_file: Some(file.to_path_buf()),
    })
}

/// One JSON value per line on stdout (the fleet report), the same writer rules as the document.
pub fn emit_lines(values: &[Value]) -> Result<()> {
    let out = std::io::stdout();
    let tty = out.is_terminal();
    let mut lock = out.lock();
    let mut text = String::new();
    for v in values {
        let line = v.to_string();
        text.push_str(&if tty {
            crate::output::json_for_terminal(&line)
        } else {
            line.into()
        });
        text.push('\n');
    }
    match lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::internal(format!("cannot write to stdout: {e}"))),
    }
}

/// Text on stdout as it is (`verify-sync --fleet --format table|nagios|prometheus`), the same
/// writer rules as the document.
pub fn emit_text(text: &str) -> Result<()> {
    let out = std::io::stdout();
    let mut lock = out.lock();
    match lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::internal(format!("cannot write to stdout: {e}"))),
    }
}

/// What a run sent that succeeded.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    writes: usize,
    dataverse_writes: usize,
}

/// `steps.<tool>` after a failure: the earlier success's `changed`/`at` stay unless this run
/// changed something itself, and `error` says what went wrong (nothing secret: the message is
/// the one printed on stderr). `handed_on`: the document goes on through a pipe (see
/// [`crate::pipe`]).
fn record_failure(doc: &mut StateDoc, tool: &str, e: &Error, counts: Counts, handed_on: bool) {
    // A `steps` (or `steps.<tool>`) of the wrong type is the document's own error: it is kept as
    // it is, not replaced by an object.
    if doc.get(keys::STEPS).is_err() {
        return;
    }
    let key = format!("steps.{tool}");
    let mut entry = match doc.get_value(&key) {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => json!({"changed": false}),
    };
    let unpaid = crate::owed::unpaid_change(doc, tool, false);
    if counts.writes > 0 {
        entry["changed"] = Value::Bool(true);
        entry["at"] = Value::from(now_rfc3339());
        if counts.dataverse_writes > 0 {
            entry["dataverse_changed"] = Value::Bool(true);
            if let Some(m) = entry.as_object_mut() {
                m.shift_remove("dataverse_changed_at");
            }
        } else if let Some(since) = unpaid {
            entry["dataverse_changed"] = Value::Bool(true);
            entry["dataverse_changed_at"] = Value::from(since);
        }
    }
    let mut error = json!({
        "exit_code": e.kind.code(),
        "kind": e.kind.name(),
        "message": e.to_string(),
        "at": now_rfc3339(),
    });
    if handed_on {
        error["handed_on"] = Value::Bool(true);
    }
    // A value the step could not find, and the step that writes it: what lets a dry-run
    // pipeline tell "needs what a planned (unsent) write would create" from bad input.
    if let Some(key) = &e.missing_key {
        error["missing_key"] = Value::from(key.as_str());
        if let Some(step) = crate::config::written_by(key) {
            error["written_by"] = Value::from(step);
        }
    }
    entry["error"] = error;
    doc.set_value(&key, entry);
}

/// A run that wrote nothing to the org must not wipe out an earlier run's change that is still
/// unpublished: its entry keeps `dataverse_changed: true` with the time of that change
/// (`dataverse_changed_at`), so `publish-customizations --if-changed` and verify-sync still see
/// the publish as owed (an interrupted publish, then re-runs that found "nothing to change").
fn carry_unpaid_change(doc: &StateDoc, tool: &str, entry: &mut Value, dry_run: bool) {
    if let Some(since) = crate::owed::unpaid_change(doc, tool, dry_run) {
        entry["dataverse_changed"] = Value::Bool(true);
        entry["dataverse_changed_at"] = Value::from(since);
    }
}

/// `target: tenant contoso.onmicrosoft.com (<id>); org https://contoso.crm.dynamics.com
/// (Contoso); sign-in …; state contoso.state.json` — what this run acts on, as far as it is known
/// before any request. Who signs in is named here when the configuration says it (a service
/// principal, a certificate, a managed identity); a person's sign-in (cache, az, device code) is
/// named by the line the first token brings ("signed in as admin@contoso.com").
fn target_line(cfg: &Config, doc: &StateDoc, state: Option<&Path>) -> String {
    let doc_id = doc
        .get(keys::TENANT_ID)
        .ok()
        .flatten()
        .filter(|t| crate::guid::parse(t).is_ok())
        .filter(|_| cfg.retarget.tenant.is_none());
    let tenant = cfg.tenant_for_humans(doc_id);
    let org = match &cfg.dynamics {
        None => "(none yet)".to_string(),
        Some(u) => {
            let name = doc
                .get(keys::DYNAMICS_ORG_NAME)
                .ok()
                .flatten()
                .filter(|_| cfg.retarget.dynamics.is_none());
            match name {
                Some(n) => format!("{} ({n})", crate::urls::base(u)),
                None => crate::urls::base(u),
            }
        }
    };
    let state = match state {
        Some(p) => p.display().to_string(),
        None => "stdin to stdout".to_string(),
    };
    format!(
        "target: tenant {tenant}; org {org}; sign-in: {}; state: {state}",
        crate::auth::describe(cfg)
    )
}

/// A tenant named by a domain is resolved (the `tid` of the token this run signs in with) and
/// compared with the document's tenant id before the step sends anything. With `--retarget`,
/// the document moves only when the domain is another tenant's: the tenant's own
/// domain keeps every id.
async fn confirm_tenant(ctx: &mut Ctx) -> Result<()> {
    let Some(doc_tenant) = ctx.config().tenant_to_confirm.clone() else {
        return Ok(());
    };
    let flag = ctx.config().tenant()?.to_string();
    let retarget = ctx.config().retarget.tenant_if_other;
    match ctx.http.signed_in_tenant_id().await? {
        Some(tid) if tid.eq_ignore_ascii_case(&doc_tenant) => {
            if retarget {
                ctx.say(&format!(
                    "--retarget: {flag} is this document's tenant {doc_tenant}: nothing to move"
                ));
            }
            Ok(())
        }
        Some(tid) if retarget => {
            let moves = crate::config::Retarget {
                tenant: Some((doc_tenant, tid)),
                ..Default::default()
            };
            apply_retarget(&mut ctx.doc, &moves, &ctx.report);
            Ok(())
        }
        Some(tid) => {
            let domain = ctx.doc.get(keys::TENANT_DOMAIN).ok().flatten();
            Err(crate::config::tenant_mismatch(
                &format!("{tid} ({flag})"),
                &crate::config::doc_tenant_text(&doc_tenant, domain),
            ))
        }
        None => Err(Error::usage(format!(
            "cannot tell whether {flag} is the document's tenant {doc_tenant}: the sign-in token does not name its tenant"
        ))
        .with_hint("pass the tenant id (GUID) as --tenant, or --retarget to move the document")),
    }
}

/// With `--retarget`, the document moves to the new tenant or org: the ids that belong to the
/// old one are dropped (names and settings stay), so every later step finds or creates its
/// objects in the new target instead of acting on ids that mean nothing there.
fn apply_retarget(doc: &mut StateDoc, moves: &crate::config::Retarget, report: &Reporter) {
    if let Some((old, new)) = &moves.tenant {
        for key in keys::TENANT_SCOPED {
            doc.remove(*key);
        }
        doc.set(keys::TENANT_ID, new);
        report.say(&format!(
            "--retarget: moving this document from tenant {old} to {new}; the ids of the old tenant's objects were dropped (they stay in that tenant)"
        ));
    }
    if let Some((old, new)) = &moves.dynamics {
        for key in keys::ORG_SCOPED {
            doc.remove(*key);
        }
        for tool in crate::tools::TOOLS.iter().filter(|t| t.org_scoped) {
            doc.remove(format!("steps.{}", tool.name));
        }
        doc.set(keys::DYNAMICS_URL, crate::urls::base(new));
        report.say(&format!(
            "--retarget: moving this document from the org {} to {}; the old org's ids were dropped",
            crate::urls::base(old),
            crate::urls::base(new)
        ));
    }
}

/// The only writer of stdout. A dry run never writes the `--state` file: its would-be document
/// goes to `--plan FILE` or stdout, so a later real run still sees what is owed.
pub(crate) fn emit(doc: &StateDoc, common: &CommonArgs) -> Result<()> {
    if common.dry_run {
        if let Some(plan) = &common.plan {
            return crate::fsutil::write_atomic(plan, doc.to_text(true).as_bytes(), 0o600).map_err(
                |e| Error::internal(format!("cannot write --plan {}: {e}", plan.display())),
            );
        }
    } else if let Some(path) = &common.state {
        return doc.save(path).map_err(|e| rescue(doc, path, e));
    }
    write_document(doc)
}

/// When the `--state` file cannot be written (another program holds it open, a full disk), the
/// document — with the ids of what this run created — must not be lost: it goes to stdout
/// instead, and the error says so and how to go on.
fn rescue(doc: &StateDoc, path: &Path, e: Error) -> Error {
    let rescued = write_document(doc).is_ok();
    if !rescued {
        return e;
    }
    let file = crate::hint::shell_word(&path.to_string_lossy());
    let then = match &e.hint {
        Some(h) => format!("{h}; then "),
        None => String::new(),
    };
    let hint = format!(
        "the document, with what this run did, was written to stdout instead: {then}put it in {file} (or run the next step with it on stdin) so nothing this run created is forgotten"
    );
    e.with_hint(hint)
}

/// The document on stdout: pretty on a terminal, compact otherwise. On a terminal every
/// character that would drive it (C1 controls, DEL, bidi overrides, which JSON leaves raw) is
/// written as a `\uXXXX` escape: the same JSON value, nothing for the terminal to obey.
fn write_document(doc: &StateDoc) -> Result<()> {
    let out = std::io::stdout();
    let tty = out.is_terminal();
    let text = doc.to_text(tty);
    let text = if tty {
        crate::output::json_for_terminal(&text)
    } else {
        text.into()
    };
    let mut lock = out.lock();
    match lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe (`| head`) is the reader's choice, not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::internal(format!("cannot write to stdout: {e}"))),
    }
}

/// `tool: error: <the one-line report>`, with `-v` each cause as cargo prints them (`Caused
/// by:`), then `tool: hint: …`.
pub fn report_error(tool: &str, e: &Error, verbosity: u8) {
    e.report(tool, verbosity);
}

/// clap's own messages, reduced to the house style: one error line, then a hint that keeps
/// what clap knows — the flag you probably meant, the values a flag accepts — and points to
/// `--help`.
fn clap_exit(tool: &str, e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim()
                .trim_start_matches("error: ");
            crate::output::ewriteln(&format!(
                "{tool}: error: {}",
                crate::output::sanitize(first)
            ));
            crate::output::ewriteln(&format!(
                "{tool}: hint: {}",
                crate::output::sanitize(&clap_hint(tool, &e))
            ));
            ExitCode::from(2)
        }
    }
}

/// What clap suggests (`did you mean`), or the values it accepts, then the pointer to --help.
fn clap_hint(tool: &str, e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = |v: &ContextValue| match v {
        ContextValue::String(s) => vec![s.clone()],
        ContextValue::Strings(v) => v.clone(),
        _ => Vec::new(),
    };
    let mut parts = Vec::new();
    for (kind, value) in e.context() {
        match kind {
            ContextKind::SuggestedArg | ContextKind::SuggestedValue => {
                let s = text(value);
                if !s.is_empty() {
                    parts.push(format!("did you mean `{}`?", s.join("` or `")));
                }
            }
            ContextKind::ValidValue => {
                let s = text(value);
                if !s.is_empty() {
                    parts.push(format!("possible values: {}", s.join(", ")));
                }
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        format!("see `{tool} --help`")
    } else {
        format!("{} (see `{tool} --help`)", parts.join("; "))
    }
}
