//! The plan of one benchmark: what is measured, in which order, against which tenant-sim, and
//! the [`Results`] that [`crate::report`] turns into the two files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::chain::{chain_series, lag_series};
use crate::fleet::fleet;
use crate::machine::{git_describe, machine, now};
use crate::results::{Baseline, Lag, Results, Runs};
use crate::sim::Sim;
use crate::startup::startup;
use crate::variants::variants;
use crate::{Args, TOOLS, say};

/// The 1-minute load average now (`/proc/loadavg`), if it can be read.
fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
}

/// `NAME=DIR` into a name and a canonical directory.
fn name_dir(v: &str, flag: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = v
        .split_once('=')
        .ok_or_else(|| format!("{flag} {v:?} is not NAME=DIR"))?;
    let dir = Path::new(dir)
        .canonicalize()
        .map_err(|e| format!("{flag} {name}: {dir}: {e}"))?;
    Ok((name.to_string(), dir))
}

pub fn measure_all(args: &Args, bin_dir: &Path, work: &Path) -> Result<Results, String> {
    let started = Instant::now();
    // Before anything runs, so its load average is the load at the start.
    let machine = machine();
    // The 1-minute load average after each phase: the machine may be shared.
    let mut load = vec![load1()];
    let tools: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| bin_dir.join(t).is_file())
        .collect();
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| !tools.contains(t))
        .collect();
    if !missing.is_empty() {
        say(&format!("not built, skipped: {}", missing.join(", ")));
    }
    let baseline = args
        .baseline
        .as_deref()
        .map(|b| name_dir(b, "--baseline"))
        .transpose()?;

    say(&format!(
        "start-up: {} runs of --help and of a fail-fast run per tool, interleaved with /bin/true",
        args.startup_runs
    ));
    let startup = startup(bin_dir, &tools, work, args.startup_runs)?;
    load.push(load1());

    let sizes: BTreeMap<String, u64> = TOOLS
        .iter()
        .chain(["tenant-sim"].iter())
        .filter_map(|t| {
            std::fs::metadata(bin_dir.join(t))
                .ok()
                .map(|m| (t.to_string(), m.len()))
        })
        .collect();

    let sim_bin = bin_dir.join("tenant-sim");
    if !sim_bin.is_file() {
        return Err(format!("{} is not built", sim_bin.display()));
    }
    say(&format!(
        "chain: {} fresh runs and {} re-runs against tenant-sim; then the fleet check",
        args.chain_runs, args.chain_runs
    ));
    let sim = Sim::start(&sim_bin, &["--federated".into()], &work.join("sim.log"))?;
    let chains = chain_series(&sim, bin_dir, work, args.chain_runs);
    let fleet = match chains {
        Ok(_) if args.fleet_files > 0 => {
            say(&format!(
                "fleet: verify-sync --fleet over {} state files, {} runs",
                args.fleet_files, args.fleet_runs
            ));
            Some(fleet(
                &sim,
                bin_dir,
                work,
                args.fleet_files,
                args.fleet_runs,
            ))
        }
        _ => None,
    };
    sim.stop();
    load.push(load1());
    let chains = chains?;
    let fleet = fleet.transpose()?;

    // This build first, then the baseline, run by run, at every lag.
    let mut builds = vec![("this".to_string(), bin_dir.to_path_buf())];
    builds.extend(baseline.clone());
    let mut lags = Vec::new();
    for &lag_ms in &args.lag_ms {
        say(&format!(
            "chain with --replication-lag-ms {lag_ms}: {} runs{}",
            args.lag_runs,
            baseline
                .as_ref()
                .map(|(n, _)| format!(" each of this build and {n}, taking turns"))
                .unwrap_or_default()
        ));
        let sim = Sim::start(
            &sim_bin,
            &[
                "--federated".into(),
                "--replication-lag-ms".into(),
                lag_ms.to_string(),
            ],
            &work.join(format!("sim-lag-{lag_ms}.log")),
        )?;
        let series = lag_series(&sim, &builds, work, args.lag_runs);
        sim.stop();
        load.push(load1());
        lags.push(Lag {
            lag_ms,
            builds: series?,
        });
    }
    // The longest lag's run of this build is the one the per-tool tables show.
    let longest = lags.iter().max_by_key(|l| l.lag_ms);
    let lag = longest.and_then(|l| l.builds.get("this")).cloned();
    let longest_ms = longest.map(|l| l.lag_ms);

    let mut parsed = Vec::new();
    for v in &args.variants {
        parsed.push(name_dir(v, "--variant")?);
    }
    let variants = if parsed.is_empty() {
        Vec::new()
    } else {
        say(&format!(
            "release-profile variants, interleaved: {}",
            parsed
                .iter()
                .map(|p| p.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        variants(&parsed, bin_dir, &sim_bin, work, args)?
    };

    Ok(Results {
        machine,
        date: now(),
        git: git_describe(),
        profile: args.profile.clone().unwrap_or_default(),
        build_note: args.build_note.clone().unwrap_or_default(),
        bin_dir: bin_dir.display().to_string(),
        baseline: baseline.as_ref().map(|(n, d)| Baseline {
            name: n.clone(),
            dir: d.display().to_string(),
            note: args.baseline_note.clone().unwrap_or_default(),
        }),
        runs: Runs {
            startup: args.startup_runs,
            chain: args.chain_runs,
            lag: args.lag_runs,
            lag_ms: longest_ms,
            lags_ms: args.lag_ms.clone(),
            fleet: args.fleet_runs,
        },
        not_built: missing.iter().map(|t| t.to_string()).collect(),
        startup,
        binary_bytes: sizes,
        chain: chains,
        lag,
        lags,
        fleet,
        variants,
        bench_seconds: started.elapsed().as_secs_f64(),
        loadavg_1min_samples: load,
        load_note: args.load_note.clone().unwrap_or_default(),
        ..Results::default()
    })
}
