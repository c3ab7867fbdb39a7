//! The life of every tool, in one place: parse flags, read the state document, resolve the
//! configuration, run the step, record `steps.<tool>`, write the document, and map any error to
//! the design's exit code with a report such as `register-app: error: ...`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use serde_json::{Value, json};

use crate::cli::CommonArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::output::Reporter;
use crate::state::StateDoc;

/// What a tool's clap struct must offer to the harness.
pub trait Tool: Parser {
    const NAME: &'static str;
    /// A tool that only reads (verify-sync) does not say "nothing to change".
    const READ_ONLY: bool = false;
    /// The state-document keys the tool reads and their types. The harness checks every one
    /// that is present before the tool runs, so a wrong type is exit 2 naming the key with no
    /// request sent — even for a key the tool would only read late, or not at all on this path.
    const READS: &'static [(&'static str, Key)] = &[];
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
}

/// Runs a tool: `fn main() -> ExitCode { s2s_core::run::main::<Cli, _>(run) }`.
pub fn main<C, F>(step: F) -> ExitCode
where
    C: Tool,
    F: AsyncFnOnce(&mut Ctx, C) -> Result<()>,
{
    let cli = match C::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_exit(C::NAME, e),
    };
    let common = cli.common().clone();
    let report = Arc::new(Reporter::new(C::NAME, common.quiet, common.verbose));
    match execute::<C, F>(cli, &common, report.clone(), step) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report_error(C::NAME, &e);
            e.exit_code()
        }
    }
}

fn execute<C, F>(cli: C, common: &CommonArgs, report: Arc<Reporter>, step: F) -> Result<()>
where
    C: Tool,
    F: AsyncFnOnce(&mut Ctx, C) -> Result<()>,
{
    cli.validate()?;
    // The whole document is read before anything else, so a sign-in prompt can never compete
    // with the previous tool of a pipeline for the terminal.
    let doc = StateDoc::load(common.state.as_deref())?;
    check_reads(&doc, COMMON_READS)?;
    check_reads(&doc, C::READS)?;
    let cfg = Config::resolve(C::NAME, common, &doc, C::DEFAULT_TIMEOUT)?;
    let http = Http::new(cfg, report.clone());
    let mut ctx = Ctx { doc, http, report };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    let result = rt.block_on(step(&mut ctx, cli));
    let writes = ctx.http.writes();
    // A failed verification is an answer, not a crash: its document (with `verify.*`) is
    // written like any other before the exit code says 6.
    let (result, failed_check) = match result {
        Err(e) if e.kind == crate::error::Kind::VerifyFailed => (Ok(()), Some(e)),
        other => (other, None),
    };
    match result {
        Ok(()) => {
            let mut entry = json!({
                "changed": writes > 0,
                "at": now_rfc3339(),
            });
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
                ctx.doc.set("plan", Value::Array(plan));
            } else {
                ctx.doc.remove("plan");
                if writes == 0 && failed_check.is_none() && !C::READ_ONLY {
                    ctx.say("nothing to change");
                }
            }
            ctx.doc.set(&format!("steps.{}", C::NAME), entry);
            emit(&ctx.doc, common)?;
            match failed_check {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
        Err(e) => {
            // With --state, what was done before the failure is kept, so a re-run resumes.
            if let Some(path) = &common.state {
                if !ctx.dry_run() {
                    let _ = ctx.doc.save(path);
                }
            }
            Err(e)
        }
    }
}

/// The type of a state-document key a tool reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Str,
    Guid,
    /// An https URL (http on loopback), checked as `--dynamics-url` is.
    Url,
    Bool,
    Object,
    Array,
}

/// The keys core's configuration reads for every tool (when no flag or environment variable
/// overrides them), checked even when a flag makes them unused: a document with a wrong type
/// there is broken for the next tool too.
const COMMON_READS: &[(&str, Key)] = &[
    ("tenant.id", Key::Str),
    ("tenant.cloud", Key::Str),
    ("dynamics.url", Key::Url),
];

fn check_reads(doc: &StateDoc, reads: &[(&str, Key)]) -> Result<()> {
    for (path, key) in reads {
        match key {
            Key::Str => drop(doc.get_str(path)?),
            Key::Guid => drop(doc.get_guid(path)?),
            Key::Bool => drop(doc.get_bool(path)?),
            Key::Object => drop(doc.get_object(path)?),
            Key::Array => drop(doc.get_array(path)?),
            Key::Url => {
                if let Some(u) = doc.get_str(path)? {
                    crate::config::check_url(u, &format!("state document key {path}"))?;
                }
            }
        }
    }
    Ok(())
}

/// The only writer of stdout.
fn emit(doc: &StateDoc, common: &CommonArgs) -> Result<()> {
    if let Some(path) = &common.state {
        return doc.save(path);
    }
    let out = std::io::stdout();
    let text = doc.to_text(out.is_terminal());
    let mut lock = out.lock();
    match lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe (`| head`) is the reader's choice, not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::internal(format!("cannot write to stdout: {e}"))),
    }
}

pub fn report_error(tool: &str, e: &Error) {
    eprintln!("{tool}: error: {e}");
    if let Some(h) = &e.hint {
        eprintln!("{tool}: hint: {h}");
    }
}

/// clap's own messages, reduced to the house style: one error line and a pointer to --help.
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
            eprintln!("{tool}: error: {first}");
            eprintln!("{tool}: hint: see `{tool} --help`");
            ExitCode::from(2)
        }
    }
}

/// Now, as RFC 3339 UTC with milliseconds: `steps.<tool>.at` values are compared with each
/// other (publish-customizations --if-changed), and a whole chain fits in one second.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
