//! The chain of eight tools as a real pipeline on a freshly reset tenant: fresh, re-run on the
//! finished setup, add-sync-filter alone, and with replication lag (interleaved with a baseline
//! build, when there is one, so both see the same load). Medians over the runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::CHAIN;
use crate::requests::count_requests;
use crate::results::{AddSyncFilter, BuildRuns, Chain, Ordered, Series, ToolRun};
use crate::run::{Pipeline, pipeline};
use crate::sim::Sim;
use crate::stats::median;

/// One pipeline run with tenant-sim's request log and each tool's stderr.
type Measured = (Pipeline, Vec<Value>, BTreeMap<String, String>);

/// A run of the chain, its re-run and add-sync-filter per iteration on a freshly reset tenant.
pub fn chain_series(sim: &Sim, bin_dir: &Path, work: &Path, runs: usize) -> Result<Chain, String> {
    let chain: Vec<&str> = CHAIN
        .iter()
        .copied()
        .filter(|t| bin_dir.join(t).is_file())
        .collect();
    let asf_built = bin_dir.join("add-sync-filter").is_file();
    let mut fresh = Vec::new();
    let mut rerun = Vec::new();
    let mut asf = Vec::new();
    for run in 0..runs {
        let dir = work.join(format!("run{run}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        sim.reset()?;
        sim.clear_requests()?;
        let f = pipeline(sim, bin_dir, &chain, b"", &dir, "fresh")?;
        let f_log = sim.requests()?;
        let f_stderr = stderr_of(&dir, "fresh", &f);
        let fresh_doc = f.output.clone();
        fresh.push((f, f_log, f_stderr));
        sim.clear_requests()?;
        let r = pipeline(sim, bin_dir, &chain, &fresh_doc, &dir, "rerun")?;
        let r_log = sim.requests()?;
        let r_stderr = stderr_of(&dir, "rerun", &r);
        rerun.push((r, r_log, r_stderr));
        if asf_built {
            sim.clear_requests()?;
            let a1 = pipeline(sim, bin_dir, &["add-sync-filter"], &fresh_doc, &dir, "asf")?;
            let a1_log = sim.requests()?;
            let a1_err = stderr_of(&dir, "asf", &a1);
            let doc = a1.output.clone();
            sim.clear_requests()?;
            let a2 = pipeline(sim, bin_dir, &["add-sync-filter"], &doc, &dir, "asf2")?;
            let a2_log = sim.requests()?;
            let a2_err = stderr_of(&dir, "asf2", &a2);
            asf.push(((a1, a1_log, a1_err), (a2, a2_log, a2_err)));
        }
    }
    let (asf_fresh, asf_rerun): (Vec<_>, Vec<_>) = asf.into_iter().unzip();
    let add_sync_filter = match (summarise(&asf_fresh), summarise(&asf_rerun)) {
        (Some(fresh), Some(rerun)) => Some(AddSyncFilter { fresh, rerun }),
        _ => None,
    };
    Ok(Chain {
        tools: chain.iter().map(|t| t.to_string()).collect(),
        fresh: summarise(&fresh),
        rerun: summarise(&rerun),
        add_sync_filter,
    })
}

fn stderr_of(dir: &Path, tag: &str, p: &Pipeline) -> BTreeMap<String, String> {
    p.tools
        .iter()
        .map(|(tool, ..)| {
            let text = std::fs::read_to_string(dir.join(format!("{tag}.{tool}.stderr")))
                .unwrap_or_default();
            (tool.clone(), text)
        })
        .collect()
}

/// Medians over the runs; requests from the median run (they are deterministic without faults,
/// and any run-to-run difference is reported as `requests_vary`). `None` without runs.
fn summarise(runs: &[Measured]) -> Option<Series> {
    let first = runs.first()?;
    let walls: Vec<f64> = runs.iter().map(|r| r.0.wall_ms).collect();
    let med = median(&walls);
    // The run whose wall time is nearest the median gives the per-request evidence.
    let (mi, _) = runs
        .iter()
        .enumerate()
        .min_by(|a, b| {
            (a.1.0.wall_ms - med)
                .abs()
                .total_cmp(&(b.1.0.wall_ms - med).abs())
        })
        .unwrap_or((0, first));
    let tools: Vec<String> = first.0.tools.iter().map(|t| t.0.clone()).collect();
    let counts: Vec<_> = runs.iter().map(|r| count_requests(&r.1)).collect();
    let mut per_tool = Vec::new();
    let mut prev_end: Vec<f64> = vec![0.0; runs.len()];
    for (ti, tool) in tools.iter().enumerate() {
        let ends: Vec<f64> = runs.iter().map(|r| r.0.tools[ti].2).collect();
        let own: Vec<f64> = ends.iter().zip(&prev_end).map(|(e, p)| e - p).collect();
        prev_end = ends.clone();
        let c = counts[mi].get(tool).cloned().unwrap_or_default();
        let vary = counts
            .iter()
            .any(|m| m.get(tool).map(|c| c.totals()).unwrap_or_default() != c.totals());
        let row = ToolRun {
            reads: c.reads,
            writes: c.writes,
            login: c.login,
            errors: c.errors,
            requests: c.requests,
            exit_codes: runs.iter().map(|r| r.0.tools[ti].1).collect(),
            end_ms_median: median(&ends),
            own_ms_median: median(&own),
            maxrss_kib: runs.iter().map(|r| r.0.tools[ti].3).max().unwrap_or(0),
            cpu_ms_median: median(&runs.iter().map(|r| r.0.tools[ti].4).collect::<Vec<_>>()),
            requests_vary: vary,
            stderr: runs[mi]
                .2
                .get(tool)
                .map(|err| err.lines().take(12).map(str::to_string).collect()),
        };
        per_tool.push((tool.clone(), row));
    }
    let unattributed_requests = counts[mi]
        .iter()
        .filter(|(k, _)| !tools.contains(k))
        .map(|(_, v)| v.clone())
        .collect();
    Some(Series {
        wall_ms: walls,
        wall_ms_median: med,
        all_exit_0: runs.iter().all(|r| r.0.tools.iter().all(|t| t.1 == 0)),
        tools: Ordered(per_tool),
        unattributed_requests,
    })
}

// ---- release-profile variants ----------------------------------------------------------------

/// The fresh chain against a tenant-sim with replication lag, once per build per run: the
/// builds (`dirs`: name and directory) take turns run by run, so a change of the machine's load
/// hits them alike. One summary per build, by name.
pub fn lag_series(
    sim: &Sim,
    dirs: &[(String, PathBuf)],
    work: &Path,
    runs: usize,
) -> Result<Ordered<BuildRuns>, String> {
    let mut per_build: Vec<Vec<Measured>> = dirs.iter().map(|_| Vec::new()).collect();
    for run in 0..runs {
        for (b, (name, bin_dir)) in dirs.iter().enumerate() {
            let chain: Vec<&str> = CHAIN
                .iter()
                .copied()
                .filter(|t| bin_dir.join(t).is_file())
                .collect();
            let dir = work.join(format!("lag-{name}-{run}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            sim.reset()?;
            sim.clear_requests()?;
            let p = pipeline(sim, bin_dir, &chain, b"", &dir, "lag")?;
            let log = sim.requests()?;
            let err = stderr_of(&dir, "lag", &p);
            per_build[b].push((p, log, err));
        }
    }
    Ok(dirs
        .iter()
        .zip(per_build)
        .map(|((name, _), runs)| {
            let fresh = summarise(&runs);
            (name.clone(), BuildRuns { fresh })
        })
        .collect())
}
