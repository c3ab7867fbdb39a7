//! The consultant's morning check: `verify-sync --fleet FILE...` over many state
//! files against one tenant-sim. The files are copies of one finished setup's document, each in
//! its own directory with the secret file beside it (one tenant and one org can hold only one
//! working Marketo connection, so distinct setups would fail each other's "Marketo User"
//! check); what is measured is the fleet mode itself: its concurrency, its sign-ins and its
//! requests per file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::requests::count_requests;
use crate::results::Fleet;
use crate::run::{pipeline, sim_env};
use crate::sim::Sim;
use crate::stats::{median, ms};
use crate::{CHAIN, proc};

/// `files` state files, `runs` runs of `verify-sync --fleet` over all of them (default `--jobs`).
pub fn fleet(
    sim: &Sim,
    bin_dir: &Path,
    work: &Path,
    files: usize,
    runs: usize,
) -> Result<Fleet, String> {
    let io = |e: std::io::Error| e.to_string();
    let dir = work.join("fleet");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io)?;
    sim.reset()?;
    let setup = pipeline(sim, bin_dir, &CHAIN, b"", &dir, "setup")?;
    if setup.tools.iter().any(|t| t.1 != 0) {
        return Err("the chain that sets up the fleet's connection failed".into());
    }
    let secret = dir.join("marketo.secret");
    let mut paths: Vec<PathBuf> = Vec::new();
    for n in 0..files {
        let customer = dir.join(format!("customer-{n:02}"));
        std::fs::create_dir_all(&customer).map_err(io)?;
        std::fs::copy(&secret, customer.join("marketo.secret")).map_err(io)?;
        let path = customer.join("state.json");
        std::fs::write(&path, &setup.output).map_err(io)?;
        paths.push(path);
    }
    let home = work.join("home");
    let (mut walls, mut codes, mut rss, mut lines_ok) = (Vec::new(), Vec::new(), 0u64, Vec::new());
    let mut counts = Vec::new();
    for run in 0..runs {
        sim.clear_requests()?;
        let out = dir.join(format!("fleet-{run}.jsonl"));
        let mut cmd = Command::new(bin_dir.join("verify-sync"));
        cmd.arg("--fleet").args(&paths).current_dir(&dir);
        sim_env(&mut cmd, sim, &home);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(File::create(&out).map_err(io)?))
            .stderr(Stdio::from(
                File::create(dir.join(format!("fleet-{run}.stderr"))).map_err(io)?,
            ));
        let r = proc::run(&mut cmd).map_err(|e| format!("verify-sync --fleet: {e}"))?;
        walls.push(ms(r.wall));
        codes.push(r.code);
        rss = rss.max(r.maxrss_kib);
        let text = std::fs::read_to_string(&out).map_err(io)?;
        let ok = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["ok"] == json!(true))
            .count();
        lines_ok.push(ok);
        let c = count_requests(&sim.requests()?);
        counts.push(c.values().fold((0, 0, 0), |a, v| {
            (a.0 + v.reads, a.1 + v.writes, a.2 + v.login)
        }));
    }
    let med = median(&walls);
    let mi = walls
        .iter()
        .enumerate()
        .min_by(|a, b| (a.1 - med).abs().total_cmp(&(b.1 - med).abs()))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let (reads, writes, login) = counts.get(mi).copied().unwrap_or_default();
    let stderr =
        std::fs::read_to_string(dir.join(format!("fleet-{mi}.stderr"))).unwrap_or_default();
    Ok(Fleet {
        files,
        jobs: "default (4)".into(),
        wall_ms: walls,
        wall_ms_median: med,
        exit_codes: codes,
        ok_lines: lines_ok,
        maxrss_kib: rss,
        reads,
        writes,
        login,
        requests_vary: counts.iter().any(|c| *c != (reads, writes, login)),
        stderr: stderr
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(str::to_string)
            .collect(),
    })
}
