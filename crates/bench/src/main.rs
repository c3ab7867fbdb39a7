//! `bench` — the measurements behind `scripts/bench.sh`. Runs the release binaries in
//! `--bin-dir` against a `tenant-sim` child process on loopback and writes `docs/benchmarks.md`
//! and `docs/benchmarks.json`:
//!
//! - start-up of every tool (`--help`, and a run that fails fast with exit 2 on a missing value),
//!   interleaved round-robin with `/bin/true` so both see the same machine load;
//! - the chain of eight tools as a real pipeline on a fresh tenant: wall time, requests per tool
//!   (reads, writes, sign-ins) from tenant-sim's request log, against the minimum in [`minimum`];
//! - the same chain re-run on the finished setup (writes must be 0);
//! - the chain against a tenant-sim started with `--replication-lag-ms`, at several lags, against
//!   the replication-wait target ([`target::PER_WAIT_MS`]), and optionally interleaved with a
//!   baseline build (`--baseline NAME=DIR`) for a before/after comparison;
//! - `verify-sync --fleet` over many state files against one tenant-sim;
//! - `add-sync-filter` (optional step) fresh and re-run on the finished setup;
//! - peak RSS of each tool (`wait4`'s `ru_maxrss`) and the size of each release binary;
//! - optionally (`--variant NAME=DIR`), the same start-up/size/chain figures for binaries built
//!   with other release profiles; without it the last sweep is carried over from the JSON file.
//!
//! Medians everywhere; the targets are reported, never asserted (exit 0 when the measurement
//! itself worked, whether targets are met or not).
//!
//! The files, one concern each:
//!
//! | file | what |
//! |---|---|
//! | `main.rs` | the options, the tool lists, the targets, and this map |
//! | `measure.rs` | the plan: what is measured in which order, into one [`results::Results`] |
//! | `results.rs` | the measurements as typed data, field for field what `benchmarks.json` holds |
//! | `run.rs` | running tools: their bare environment, a pipeline of them against tenant-sim |
//! | `startup.rs` | start-up against `/bin/true`, and the `strace` audit of a fail-fast run |
//! | `chain.rs` | the chain fresh, re-run, add-sync-filter, and with replication lag |
//! | `fleet.rs` | `verify-sync --fleet` over many state files |
//! | `variants.rs` | release-profile variants, interleaved |
//! | `requests.rs` | tenant-sim's request log, counted per tool |
//! | `minimum.rs` | the documented minimum requests per tool, and why |
//! | `report/` | `benchmarks.json` and `benchmarks.md` (one function per section), each target met or missed |
//! | `sim.rs`, `proc.rs`, `stats.rs`, `machine.rs` | tenant-sim as a child, `wait4`, medians, the machine |

// The benchmark measures Linux processes: `wait4`'s peak RSS and CPU times, `/bin/true` as the
// start-up baseline, `strace`, SIGTERM to tenant-sim. Those parts are Unix-only; on Windows the
// binary builds (so the whole workspace builds for Windows) and says where to run it.
#![cfg_attr(not(unix), allow(dead_code))]

#[cfg(unix)]
mod chain;
#[cfg(unix)]
mod fleet;
#[cfg(unix)]
mod machine;
#[cfg(unix)]
mod measure;
#[cfg(unix)]
mod minimum;
#[cfg(unix)]
mod proc;
#[cfg(unix)]
mod report;
#[cfg(unix)]
mod requests;
#[cfg(unix)]
mod results;
#[cfg(unix)]
mod run;
#[cfg(unix)]
mod sim;
#[cfg(unix)]
mod startup;
#[cfg(unix)]
mod stats;
#[cfg(unix)]
mod variants;

use std::path::PathBuf;

use clap::Parser;
use s2s_core::tools::{self, Stage};

/// The tools measured, in runbook order: the steps of the runbook and its optional step
/// (add-sync-filter), from the one tool table; not preflight (a check before the setup) nor
/// teardown.
pub const TOOLS: [&str; tools::count_at(MEASURED)] = tools::names_at(MEASURED);
const MEASURED: &[Stage] = &[Stage::Step, Stage::OptionalStep];

/// The chain the targets are about: the runbook's steps, every time (add-sync-filter is
/// optional and measured on its own).
pub const CHAIN: [&str; tools::count_at(&[Stage::Step])] = tools::names_at(&[Stage::Step]);

/// The targets the report judges: start-up, chain time, requests, footprint, and the
/// replication-wait target.
pub mod target {
    pub const STARTUP_OVER_TRUE_MS: f64 = 5.0;
    pub const FRESH_CHAIN_MS: f64 = 400.0;
    pub const RERUN_CHAIN_MS: f64 = 250.0;
    /// With replication lag L the chain finishes within `DEPENDENT_WAITS` × L plus this per wait.
    pub const PER_WAIT_MS: f64 = 150.0;
    /// The chain's dependent replication waits, each needing the previous step's object to be
    /// visible: app → service principal (register-app), service principal → grant
    /// (grant-consent), policy → assignment (set-hrd-policy), assignment → verify-sync's read.
    pub const DEPENDENT_WAITS: usize = 4;
    pub const EXTRA_REQUESTS_PER_TOOL: i64 = 2;
    pub const RSS_MB: f64 = 20.0;
    pub const BINARY_MB: f64 = 8.0;
}

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Benchmark the marketo-s2s tools against tenant-sim and judge their targets"
)]
pub struct Args {
    /// Directory of the release binaries (the nine tools and tenant-sim)
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Where benchmarks.md and benchmarks.json go
    #[arg(long, default_value = "docs")]
    pub out_dir: PathBuf,
    /// Start-up runs per command (after 3 warm-up rounds)
    #[arg(long, default_value_t = 31)]
    pub startup_runs: usize,
    /// Runs of the fresh chain and of the re-run
    #[arg(long, default_value_t = 7)]
    pub chain_runs: usize,
    /// Runs of the chain at each replication lag (per build, with --baseline)
    #[arg(long, default_value_t = 5)]
    pub lag_runs: usize,
    /// Replication lags of the lag runs, ms, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 500, 1000, 2000])]
    pub lag_ms: Vec<u64>,
    /// Another build of the tools whose lag runs take turns with --bin-dir's (before/after a
    /// change): NAME=DIR
    #[arg(long, value_name = "NAME=DIR")]
    pub baseline: Option<String>,
    /// What the baseline build is, for the report (e.g. its commit)
    #[arg(long, value_name = "TEXT")]
    pub baseline_note: Option<String>,
    /// State files of the fleet check (copies of one finished setup); 0 skips it
    #[arg(long, default_value_t = 20)]
    pub fleet_files: usize,
    /// Runs of the fleet check
    #[arg(long, default_value_t = 5)]
    pub fleet_runs: usize,
    /// Another build of the tools to compare (release-profile sweep): NAME=DIR; DIR/profile.txt
    /// may describe the profile
    #[arg(long = "variant", value_name = "NAME=DIR")]
    pub variants: Vec<String>,
    /// The release profile of --bin-dir, as text for the report
    #[arg(long, value_name = "TEXT")]
    pub profile: Option<String>,
    /// What else was seen of the machine's load, for the report (e.g. `uptime` around the run)
    #[arg(long, value_name = "TEXT")]
    pub load_note: Option<String>,
    /// How the binaries were built, for the report (e.g. the build's wall time)
    #[arg(long, value_name = "TEXT")]
    pub build_note: Option<String>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match real_main(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn say(msg: &str) {
    eprintln!("bench: {msg}");
}

#[cfg(not(unix))]
fn real_main(_: &Args) -> Result<(), String> {
    Err("the benchmark measures Linux processes (wait4, /bin/true, strace); run scripts/bench.sh on Linux".into())
}

#[cfg(unix)]
fn real_main(args: &Args) -> Result<(), String> {
    let bin_dir = args
        .bin_dir
        .canonicalize()
        .map_err(|e| format!("--bin-dir {}: {e}", args.bin_dir.display()))?;
    let work = std::env::temp_dir().join(format!("marketo-s2s-bench.{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = measure::measure_all(args, &bin_dir, &work);
    let _ = std::fs::remove_dir_all(&work);
    let results = result?;
    report::write(&args.out_dir, results)
}
