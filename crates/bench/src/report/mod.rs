//! The figures as `benchmarks.json` (for comparing runs) and `benchmarks.md` (for people), with
//! every target marked met or missed: [`targets`] judges the measurements,
//! [`markdown`] writes one function per section of the page.

mod markdown;
mod targets;

use std::path::Path;

use serde::Deserialize;

use crate::minimum;
use crate::results::{Results, Series, ToolRun, Variant};

pub use markdown::markdown;

/// Adds the targets (and the minimums) to the results, then writes both files.
pub fn write(out_dir: &Path, mut results: Results) -> Result<(), String> {
    carry_over_sweep(out_dir, &mut results);
    results.targets = targets::evaluate(&results);
    results.minimum = minimum::TABLE
        .iter()
        .map(|m| (m.tool.to_string(), m.entry()))
        .collect();
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let json_path = out_dir.join("benchmarks.json");
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    let md_path = out_dir.join("benchmarks.md");
    std::fs::write(&md_path, markdown(&results))
        .map_err(|e| format!("{}: {e}", md_path.display()))?;
    crate::say(&format!(
        "wrote {} and {}",
        md_path.display(),
        json_path.display()
    ));
    for t in &results.targets {
        crate::say(&format!("{:<58} {:>24}  {}", t.name, t.figure, t.result));
    }
    Ok(())
}

/// The part of an earlier `benchmarks.json` a run without `--variant` keeps.
#[derive(Deserialize)]
struct Sweep {
    #[serde(default)]
    variants: Vec<Variant>,
    variants_date: Option<String>,
}

/// A run without `--variant` keeps the last release-profile sweep (it takes a build per
/// profile, so `scripts/bench.sh` only redoes it with `--profiles`).
fn carry_over_sweep(out_dir: &Path, results: &mut Results) {
    if !results.variants.is_empty() {
        results.variants_date = Some(results.date.clone());
        return;
    }
    let old = std::fs::read(out_dir.join("benchmarks.json"))
        .ok()
        .and_then(|b| crate::results::from_json::<Sweep>(&b).ok());
    if let Some(old) = old.filter(|o| !o.variants.is_empty()) {
        results.variants = old.variants;
        results.variants_date = old.variants_date;
    }
}

// ---- what the targets and the page both read ----------------------------------------------------

fn mb(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

/// One tool's start-up over `/bin/true`, from a [`crate::results::Startup`].
struct StartupOver {
    tool: &'static str,
    help_ms: f64,
    fail_fast_ms: f64,
    fail_fast_exit: i32,
}

/// The tools' start-up rows in runbook order.
fn startup_over(startup: &crate::results::Startup) -> Vec<StartupOver> {
    crate::TOOLS
        .iter()
        .filter_map(|t| {
            let v = startup.tools.get(*t)?;
            Some(StartupOver {
                tool: t,
                help_ms: v.help.over_true_ms,
                fail_fast_ms: v.fail_fast.over_true_ms,
                fail_fast_exit: v.fail_fast.exit_code,
            })
        })
        .collect()
}

/// A tool's run in a series that may be missing (NaN and 0 then, as nothing was measured).
fn tool_run<'a>(series: Option<&'a Series>, tool: &str) -> Option<&'a ToolRun> {
    series.and_then(|s| s.tool(tool))
}

fn own_ms(run: Option<&ToolRun>) -> f64 {
    run.map_or(f64::NAN, |r| r.own_ms_median)
}

fn wall_median(series: Option<&Series>) -> f64 {
    series.map_or(f64::NAN, |s| s.wall_ms_median)
}

/// The series of this build at the longest lag.
fn lag_series(r: &Results) -> Option<&Series> {
    r.lag.as_ref().and_then(|l| l.fresh.as_ref())
}

/// The tools of a lag run whose own time grew by at least half the lag over the fresh run
/// without lag: the measured replication waits, with how long each took.
fn waited(r: &Results, series: Option<&Series>, lag_ms: f64) -> Vec<(&'static str, f64)> {
    if lag_ms <= 0.0 {
        return Vec::new();
    }
    crate::CHAIN
        .iter()
        .map(|t| {
            let wait = own_ms(tool_run(series, t)) - own_ms(tool_run(r.chain.fresh.as_ref(), t));
            (*t, wait)
        })
        .filter(|(_, w)| *w >= lag_ms / 2.0)
        .collect()
}

/// The largest peak RSS of `tool` over every chain run (fresh, re-run, lag, add-sync-filter).
fn peak_rss_kib(r: &Results, tool: &str) -> u64 {
    let asf = r.chain.add_sync_filter.as_ref();
    [
        r.chain.fresh.as_ref(),
        r.chain.rerun.as_ref(),
        lag_series(r),
        asf.map(|a| &a.fresh),
        asf.map(|a| &a.rerun),
    ]
    .into_iter()
    .filter_map(|s| tool_run(s, tool))
    .map(|t| t.maxrss_kib)
    .max()
    .unwrap_or(0)
}

#[cfg(test)]
mod tests;
