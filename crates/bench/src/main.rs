//! `bench` — the measurements behind `scripts/bench.sh` (issue 7). Runs the release binaries in
//! `--bin-dir` against a `tenant-sim` child process on loopback and writes `docs/benchmarks.md`
//! and `docs/benchmarks.json`:
//!
//! - start-up of every tool (`--help`, and a run that fails fast with exit 2 on a missing value),
//!   interleaved round-robin with `/bin/true` so both see the same machine load;
//! - the chain of eight tools as a real pipeline on a fresh tenant: wall time, requests per tool
//!   (reads, writes, sign-ins) from tenant-sim's request log, against the minimum in [`minimum`];
//! - the same chain re-run on the finished setup (writes must be 0);
//! - the chain against a tenant-sim started with `--replication-lag-ms`;
//! - `add-sync-filter` (optional step) fresh and re-run on the finished setup;
//! - peak RSS of each tool (`wait4`'s `ru_maxrss`) and the size of each release binary;
//! - optionally (`--variant NAME=DIR`), the same start-up/size/chain figures for binaries built
//!   with other release profiles; without it the last sweep is carried over from the JSON file.
//!
//! Medians everywhere; the targets are reported, never asserted (exit 0 when the measurement
//! itself worked, whether targets are met or not).

mod minimum;
mod proc;
mod report;
mod sim;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

use crate::sim::Sim;

/// The nine tools, in runbook order.
pub const TOOLS: [&str; 9] = [
    "register-app",
    "grant-consent",
    "make-secret",
    "set-hrd-policy",
    "assign-role",
    "configure-marketo",
    "publish-customizations",
    "add-sync-filter",
    "verify-sync",
];

/// The chain the targets are about (add-sync-filter is optional and measured on its own).
pub const CHAIN: [&str; 8] = [
    "register-app",
    "grant-consent",
    "make-secret",
    "set-hrd-policy",
    "assign-role",
    "configure-marketo",
    "publish-customizations",
    "verify-sync",
];

/// Targets of issue 7.
pub mod target {
    pub const STARTUP_OVER_TRUE_MS: f64 = 5.0;
    pub const FRESH_CHAIN_MS: f64 = 400.0;
    pub const RERUN_CHAIN_MS: f64 = 250.0;
    pub const LAG_OVERHEAD_MS: f64 = 800.0;
    pub const EXTRA_REQUESTS_PER_TOOL: i64 = 2;
    pub const RSS_MB: f64 = 20.0;
    pub const BINARY_MB: f64 = 8.0;
}

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Benchmark the marketo-s2s tools against tenant-sim (issue 7)"
)]
struct Args {
    /// Directory of the release binaries (the nine tools and tenant-sim)
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Where benchmarks.md and benchmarks.json go
    #[arg(long, default_value = "docs")]
    out_dir: PathBuf,
    /// Start-up runs per command (after 3 warm-up rounds)
    #[arg(long, default_value_t = 31)]
    startup_runs: usize,
    /// Runs of the fresh chain and of the re-run
    #[arg(long, default_value_t = 7)]
    chain_runs: usize,
    /// Runs of the chain with replication lag
    #[arg(long, default_value_t = 3)]
    lag_runs: usize,
    /// Replication lag of the lag runs, ms
    #[arg(long, default_value_t = 2000)]
    lag_ms: u64,
    /// Another build of the tools to compare (release-profile sweep): NAME=DIR; DIR/profile.txt
    /// may describe the profile
    #[arg(long = "variant", value_name = "NAME=DIR")]
    variants: Vec<String>,
    /// The release profile of --bin-dir, as text for the report
    #[arg(long, value_name = "TEXT")]
    profile: Option<String>,
    /// How the binaries were built, for the report (e.g. the build's wall time)
    #[arg(long, value_name = "TEXT")]
    build_note: Option<String>,
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

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn real_main(args: &Args) -> Result<(), String> {
    let bin_dir = args
        .bin_dir
        .canonicalize()
        .map_err(|e| format!("--bin-dir {}: {e}", args.bin_dir.display()))?;
    let work = std::env::temp_dir().join(format!("marketo-s2s-bench.{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = measure_all(args, &bin_dir, &work);
    let _ = std::fs::remove_dir_all(&work);
    let results = result?;
    report::write(&args.out_dir, &results)
}

fn measure_all(args: &Args, bin_dir: &Path, work: &Path) -> Result<Value, String> {
    let started = Instant::now();
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

    say(&format!(
        "start-up: {} runs of --help and of a fail-fast run per tool, interleaved with /bin/true",
        args.startup_runs
    ));
    let startup = startup(bin_dir, &tools, work, args.startup_runs)?;

    let sizes: BTreeMap<String, Value> = TOOLS
        .iter()
        .chain(["tenant-sim"].iter())
        .filter_map(|t| {
            std::fs::metadata(bin_dir.join(t))
                .ok()
                .map(|m| (t.to_string(), json!(m.len())))
        })
        .collect();

    let sim_bin = bin_dir.join("tenant-sim");
    if !sim_bin.is_file() {
        return Err(format!("{} is not built", sim_bin.display()));
    }
    say(&format!(
        "chain: {} fresh runs and {} re-runs against tenant-sim",
        args.chain_runs, args.chain_runs
    ));
    let sim = Sim::start(&sim_bin, &["--federated".into()], &work.join("sim.log"))?;
    let chains = chain_series(&sim, bin_dir, work, args.chain_runs, true);
    sim.stop();
    let chains = chains?;

    say(&format!(
        "chain with --replication-lag-ms {}: {} runs",
        args.lag_ms, args.lag_runs
    ));
    let sim = Sim::start(
        &sim_bin,
        &[
            "--federated".into(),
            "--replication-lag-ms".into(),
            args.lag_ms.to_string(),
        ],
        &work.join("sim-lag.log"),
    )?;
    let lag = chain_series(&sim, bin_dir, work, args.lag_runs, false);
    sim.stop();
    let lag = lag?;

    let mut parsed = Vec::new();
    for v in &args.variants {
        let (name, dir) = v
            .split_once('=')
            .ok_or_else(|| format!("--variant {v:?} is not NAME=DIR"))?;
        let dir = Path::new(dir)
            .canonicalize()
            .map_err(|e| format!("variant {name}: {dir}: {e}"))?;
        parsed.push((name.to_string(), dir));
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

    Ok(json!({
        "machine": machine(),
        "date": now(),
        "git": git_describe(),
        "profile": args.profile.clone().unwrap_or_default(),
        "build_note": args.build_note.clone().unwrap_or_default(),
        "bin_dir": bin_dir.display().to_string(),
        "runs": {"startup": args.startup_runs, "chain": args.chain_runs, "lag": args.lag_runs, "lag_ms": args.lag_ms},
        "not_built": missing,
        "startup": startup,
        "binary_bytes": sizes,
        "chain": chains,
        "lag": lag,
        "variants": variants,
        "bench_seconds": started.elapsed().as_secs_f64(),
    }))
}

// ---- start-up ------------------------------------------------------------------------------

/// An environment with nothing of the user's: no credential, no cache, nothing to find on PATH
/// but the system, and endpoints on a closed loopback port, so a tool that wrongly went on to the
/// network would fail at once instead of reaching a real service.
fn bare_env(cmd: &mut Command, home: &Path) {
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("AZURE_AUTHORITY_HOST", "http://127.0.0.1:9")
        .env("MKTO_S2S_GRAPH_URL", "http://127.0.0.1:9");
}

struct StartupCmd {
    name: String,
    tool: Option<String>,
    mode: &'static str,
    program: PathBuf,
    args: Vec<String>,
    /// Which directory of [`startup_sets`] (usize::MAX for /bin/true).
    set: usize,
}

fn startup(bin_dir: &Path, tools: &[&str], work: &Path, runs: usize) -> Result<Value, String> {
    let mut v = startup_sets(&[bin_dir.to_path_buf()], tools, work, runs)?;
    let home = work.join("home");
    let audit: BTreeMap<String, Value> = tools
        .iter()
        .filter_map(|t| startup_audit(&bin_dir.join(t), work, &home).map(|a| (t.to_string(), a)))
        .collect();
    let mut out = v.remove(0);
    out["audit"] = json!(audit);
    Ok(out)
}

/// Start-up of the same tools from several directories (builds), all interleaved round-robin
/// with one `/bin/true`, so every build sees the same load; one result per directory.
fn startup_sets(
    dirs: &[PathBuf],
    tools: &[&str],
    work: &Path,
    runs: usize,
) -> Result<Vec<Value>, String> {
    let home = work.join("home");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let mut cmds = vec![StartupCmd {
        name: "/bin/true".into(),
        tool: None,
        mode: "floor",
        program: PathBuf::from("/bin/true"),
        args: vec![],
        set: usize::MAX,
    }];
    for (set, dir) in dirs.iter().enumerate() {
        for t in tools.iter().filter(|t| dir.join(t).is_file()) {
            cmds.push(StartupCmd {
                name: format!("{t} --help"),
                tool: Some(t.to_string()),
                mode: "help",
                program: dir.join(t),
                args: vec!["--help".into()],
                set,
            });
            cmds.push(StartupCmd {
                name: format!("{t} </dev/null (missing value)"),
                tool: Some(t.to_string()),
                mode: "fail_fast",
                program: dir.join(t),
                args: vec![],
                set,
            });
        }
    }
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); cmds.len()];
    let mut codes: Vec<BTreeMap<i32, usize>> = vec![BTreeMap::new(); cmds.len()];
    let mut rss: Vec<u64> = vec![0; cmds.len()];
    let warmup = 3;
    for round in 0..(runs + warmup) {
        for (i, c) in cmds.iter().enumerate() {
            let mut cmd = Command::new(&c.program);
            cmd.args(&c.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .current_dir(work);
            bare_env(&mut cmd, &home);
            let r = proc::run(&mut cmd).map_err(|e| format!("{}: {e}", c.name))?;
            if round >= warmup {
                walls[i].push(ms(r.wall));
                *codes[i].entry(r.code).or_default() += 1;
                rss[i] = rss[i].max(r.maxrss_kib);
            }
        }
    }
    let floor = median(&walls[0]);
    let mut results = Vec::new();
    for set in 0..dirs.len() {
        let mut per_tool: BTreeMap<String, Value> = BTreeMap::new();
        let mut rows = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            if c.set != set && c.set != usize::MAX {
                continue;
            }
            let med = median(&walls[i]);
            let code = codes[i]
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(c, _)| *c)
                .unwrap_or(-1);
            let row = json!({
                "command": c.name,
                "mode": c.mode,
                "median_ms": med,
                "min_ms": walls[i].iter().copied().fold(f64::INFINITY, f64::min),
                "over_true_ms": med - floor,
                "exit_code": code,
                "exit_codes": codes[i].iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "maxrss_kib": rss[i],
            });
            if let Some(t) = &c.tool {
                let e = per_tool.entry(t.clone()).or_insert_with(|| json!({}));
                e[c.mode] = row.clone();
            }
            rows.push(row);
        }
        results.push(json!({"true_median_ms": floor, "commands": rows, "tools": per_tool}));
    }
    Ok(results)
}

/// What a fail-fast run does besides failing, seen by `strace` (skipped when it is not
/// installed): files it opens beyond the dynamic loader's, sockets, threads.
fn startup_audit(program: &Path, work: &Path, home: &Path) -> Option<Value> {
    let out = work.join("strace.txt");
    let mut cmd = Command::new("strace");
    cmd.args([
        "-f",
        "-qq",
        "-e",
        "trace=open,openat,socket,connect,clone,clone3",
        "-o",
    ])
    .arg(&out)
    .arg(program)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .current_dir(work);
    bare_env(&mut cmd, home);
    let status = cmd.status().ok()?;
    let text = std::fs::read_to_string(&out).ok()?;
    let _ = std::fs::remove_file(&out);
    let mut files = Vec::new();
    let (mut sockets, mut threads) = (0, 0);
    for line in text.lines() {
        let call = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .split('(')
            .next()
            .unwrap_or("");
        match call {
            "open" | "openat" => {
                let path = line.split('"').nth(1).unwrap_or("").to_string();
                let loader = path.starts_with("/etc/ld.so")
                    || path.contains("/lib/")
                    || path.contains("/lib64/")
                    || path == "/proc/self/maps";
                if !loader {
                    files.push(path);
                }
            }
            "socket" | "connect" => sockets += 1,
            "clone" | "clone3" => threads += 1,
            _ => {}
        }
    }
    Some(json!({"exit": status.code(), "files": files, "sockets": sockets, "threads": threads}))
}

// ---- the chain -----------------------------------------------------------------------------

fn tool_args(tool: &str, work: &Path) -> Vec<String> {
    match tool {
        "make-secret" => vec![
            "--secret-file".into(),
            work.join("marketo.secret").display().to_string(),
        ],
        "publish-customizations" => vec!["--if-changed".into()],
        _ => vec![],
    }
}

/// One pipeline run: `tools[0] < input | tools[1] | … > output`, all started at once like a
/// shell does; each is reaped with its own rusage.
struct Pipeline {
    wall_ms: f64,
    /// Per tool: exit code, time it ended (ms after the start), peak RSS, CPU ms (user + sys).
    tools: Vec<(String, i32, f64, u64, f64)>,
    output: Vec<u8>,
}

fn pipeline(
    sim: &Sim,
    bin_dir: &Path,
    tools: &[&str],
    input: &[u8],
    work: &Path,
    tag: &str,
) -> Result<Pipeline, String> {
    let io = |e: std::io::Error| e.to_string();
    let in_path = work.join(format!("{tag}.in.json"));
    let out_path = work.join(format!("{tag}.out.json"));
    std::fs::write(&in_path, input).map_err(io)?;
    let home = work.join("home");
    std::fs::create_dir_all(&home).map_err(io)?;
    let mut pids: Vec<i32> = Vec::new();
    let mut prev: Option<std::process::ChildStdout> = None;
    let t0 = Instant::now();
    for (i, tool) in tools.iter().enumerate() {
        let last = i + 1 == tools.len();
        let mut cmd = Command::new(bin_dir.join(tool));
        cmd.args(tool_args(tool, work)).current_dir(work);
        bare_env(&mut cmd, &home);
        cmd.env("AZURE_TENANT_ID", &sim.tenant_id)
            .env("AZURE_CLIENT_ID", &sim.client_id)
            .env("AZURE_CLIENT_SECRET", &sim.client_secret)
            .env("AZURE_AUTHORITY_HOST", &sim.url)
            .env("MKTO_S2S_GRAPH_URL", &sim.url)
            .env("MKTO_S2S_DYNAMICS_URL", &sim.dynamics_url);
        match prev.take() {
            Some(p) => cmd.stdin(Stdio::from(p)),
            None => cmd.stdin(Stdio::from(File::open(&in_path).map_err(io)?)),
        };
        if last {
            cmd.stdout(Stdio::from(File::create(&out_path).map_err(io)?));
        } else {
            cmd.stdout(Stdio::piped());
        }
        cmd.stderr(Stdio::from(
            File::create(work.join(format!("{tag}.{tool}.stderr"))).map_err(io)?,
        ));
        let mut child = cmd.spawn().map_err(|e| format!("{tool}: {e}"))?;
        prev = child.stdout.take();
        pids.push(child.id() as i32);
        // `cmd` (holding this end of the previous pipe) drops here, so EOF flows on.
    }
    let mut ended: BTreeMap<i32, proc::Reaped> = BTreeMap::new();
    while ended.len() < pids.len() {
        let r = proc::wait4(-1).map_err(|e| format!("wait4: {e}"))?;
        let pid = r.pid as i32;
        if pid == sim.pid() as i32 {
            return Err("tenant-sim exited during the chain".into());
        }
        ended.insert(pid, r);
    }
    let end = ended.values().map(|r| r.at).max().unwrap_or(t0);
    let mut rows = Vec::new();
    for (tool, pid) in tools.iter().zip(&pids) {
        let r = ended[pid];
        rows.push((
            tool.to_string(),
            r.code,
            ms(r.at.duration_since(t0)),
            r.maxrss_kib,
            ms(r.user + r.sys),
        ));
    }
    let output = std::fs::read(&out_path).map_err(io)?;
    Ok(Pipeline {
        wall_ms: ms(end.duration_since(t0)),
        tools: rows,
        output,
    })
}

/// The tool named in `marketo-s2s/<version> <tool>`.
fn tool_of(entry: &Value) -> String {
    entry["user_agent"]
        .as_str()
        .and_then(|ua| {
            let mut it = ua.split_whitespace();
            let first = it.next()?;
            if !first.starts_with("marketo-s2s/") {
                return None;
            }
            it.next().map(str::to_string)
        })
        .unwrap_or_else(|| "(other)".into())
}

/// Requests per tool: reads (GET/HEAD), writes (any other method), sign-ins (token endpoint),
/// error answers, and the method + path list for the report's evidence.
fn count_requests(log: &[Value]) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for e in log {
        let tool = tool_of(e);
        let slot = out.entry(tool).or_insert_with(
            || json!({"reads": 0, "writes": 0, "login": 0, "errors": 0, "requests": []}),
        );
        let method = e["method"].as_str().unwrap_or("?");
        let service = e["service"].as_str().unwrap_or("?");
        let status = e["status"].as_u64().unwrap_or(0);
        let key = if service == "login" {
            "login"
        } else if method == "GET" || method == "HEAD" {
            "reads"
        } else {
            "writes"
        };
        slot[key] = json!(slot[key].as_i64().unwrap_or(0) + 1);
        if status >= 400 || status == 0 {
            slot["errors"] = json!(slot["errors"].as_i64().unwrap_or(0) + 1);
        }
        let path = e["path"].as_str().unwrap_or("");
        let line = format!(
            "{method} {service} {}{} → {}",
            shorten(path),
            e["query"]
                .as_str()
                .map(|q| format!("?{}", shorten_query(q)))
                .unwrap_or_default(),
            if status == 0 {
                "-".into()
            } else {
                status.to_string()
            }
        );
        if let Some(a) = slot["requests"].as_array_mut() {
            a.push(json!(line));
        }
    }
    out
}

/// Guids in paths make the evidence unreadable and differ per run: `{id}`.
fn shorten(path: &str) -> String {
    let mut out = String::new();
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if i + 36 <= b.len() && is_guid(&path[i..i + 36]) {
            out.push_str("{id}");
            i += 36;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn shorten_query(q: &str) -> String {
    let decoded = q
        .replace("%20", " ")
        .replace("%27", "'")
        .replace("%24", "$")
        .replace("%2C", ",");
    let s = shorten(&decoded);
    if s.len() > 90 {
        let cut = (0..=90).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        format!("{}…", &s[..cut])
    } else {
        s
    }
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A run of the chain (and, for the main series, the re-run and add-sync-filter) per iteration
/// on a freshly reset tenant.
fn chain_series(
    sim: &Sim,
    bin_dir: &Path,
    work: &Path,
    runs: usize,
    with_rerun: bool,
) -> Result<Value, String> {
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
        if !with_rerun {
            continue;
        }
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
    let mut out = json!({
        "tools": chain,
        "fresh": summarise(&fresh),
    });
    if with_rerun {
        out["rerun"] = summarise(&rerun);
        if !asf.is_empty() {
            let (a, b): (Vec<_>, Vec<_>) = asf.into_iter().unzip();
            out["add_sync_filter"] = json!({"fresh": summarise(&a), "rerun": summarise(&b)});
        }
    }
    Ok(out)
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
/// and any run-to-run difference is reported as `requests_vary`).
fn summarise(runs: &[(Pipeline, Vec<Value>, BTreeMap<String, String>)]) -> Value {
    if runs.is_empty() {
        return json!(null);
    }
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
        .unwrap_or((0, &runs[0]));
    let tools: Vec<String> = runs[0].0.tools.iter().map(|t| t.0.clone()).collect();
    let counts: Vec<BTreeMap<String, Value>> = runs.iter().map(|r| count_requests(&r.1)).collect();
    let mut per_tool = serde_json::Map::new();
    let mut prev_end: Vec<f64> = vec![0.0; runs.len()];
    for (ti, tool) in tools.iter().enumerate() {
        let ends: Vec<f64> = runs.iter().map(|r| r.0.tools[ti].2).collect();
        let own: Vec<f64> = ends.iter().zip(&prev_end).map(|(e, p)| e - p).collect();
        prev_end = ends.clone();
        let codes: Vec<i32> = runs.iter().map(|r| r.0.tools[ti].1).collect();
        let rss = runs.iter().map(|r| r.0.tools[ti].3).max().unwrap_or(0);
        let cpu: Vec<f64> = runs.iter().map(|r| r.0.tools[ti].4).collect();
        let c = counts[mi].get(tool).cloned().unwrap_or_else(
            || json!({"reads": 0, "writes": 0, "login": 0, "errors": 0, "requests": []}),
        );
        let totals = |c: &Value| {
            (
                c["reads"].as_i64().unwrap_or(0),
                c["writes"].as_i64().unwrap_or(0),
                c["login"].as_i64().unwrap_or(0),
            )
        };
        let vary = counts
            .iter()
            .any(|m| totals(m.get(tool).unwrap_or(&json!({}))) != totals(&c));
        let mut row = c.clone();
        row["exit_codes"] = json!(codes);
        row["end_ms_median"] = json!(median(&ends));
        row["own_ms_median"] = json!(median(&own));
        row["maxrss_kib"] = json!(rss);
        row["cpu_ms_median"] = json!(median(&cpu));
        row["requests_vary"] = json!(vary);
        if let Some(err) = runs[mi].2.get(tool) {
            row["stderr"] = json!(err.lines().take(12).collect::<Vec<_>>());
        }
        per_tool.insert(tool.clone(), row);
    }
    let other: Vec<&Value> = counts[mi]
        .iter()
        .filter(|(k, _)| !tools.contains(k))
        .map(|(_, v)| v)
        .collect();
    let ok = runs.iter().all(|r| r.0.tools.iter().all(|t| t.1 == 0));
    json!({
        "wall_ms": walls,
        "wall_ms_median": med,
        "all_exit_0": ok,
        "tools": per_tool,
        "unattributed_requests": other,
    })
}

// ---- release-profile variants ----------------------------------------------------------------

/// Size, start-up and a re-check of a finished setup for each build, measured round-robin
/// across the builds so none is favoured by the machine's load at the time.
fn variants(
    sets: &[(String, PathBuf)],
    main_bin: &Path,
    sim_bin: &Path,
    work: &Path,
    args: &Args,
) -> Result<Vec<Value>, String> {
    let dirs: Vec<PathBuf> = sets.iter().map(|s| s.1.clone()).collect();
    let st = startup_sets(&dirs, &TOOLS, work, args.startup_runs)?;
    let sim = Sim::start(
        sim_bin,
        &["--federated".into()],
        &work.join("sim-variants.log"),
    )?;
    let recheck = variant_recheck(&sim, main_bin, &dirs, work, args.chain_runs.max(11));
    sim.stop();
    let recheck = recheck?;
    let mut out = Vec::new();
    for (i, (name, dir)) in sets.iter().enumerate() {
        let desc = std::fs::read_to_string(dir.join("profile.txt")).unwrap_or_default();
        let sizes: BTreeMap<String, u64> = TOOLS
            .iter()
            .filter_map(|t| {
                std::fs::metadata(dir.join(t))
                    .ok()
                    .map(|m| (t.to_string(), m.len()))
            })
            .collect();
        out.push(json!({
            "name": name,
            "profile": desc.trim(),
            "binary_bytes": sizes,
            "startup": st[i],
            "recheck": recheck[i],
        }));
    }
    Ok(out)
}

fn variant_recheck(
    sim: &Sim,
    main_bin: &Path,
    dirs: &[PathBuf],
    work: &Path,
    runs: usize,
) -> Result<Vec<Value>, String> {
    let setup_dir = work.join("variant-setup");
    let _ = std::fs::remove_dir_all(&setup_dir);
    std::fs::create_dir_all(&setup_dir).map_err(|e| e.to_string())?;
    sim.reset()?;
    let setup = pipeline(sim, main_bin, &CHAIN, b"", &setup_dir, "setup")?;
    if setup.tools.iter().any(|t| t.1 != 0) {
        return Err("the main build's chain failed, so the variants cannot be compared".into());
    }
    // [dir][tool] -> (walls, cpus, codes)
    type Samples = (Vec<f64>, Vec<f64>, Vec<i32>);
    let mut samples: Vec<BTreeMap<&str, Samples>> = vec![BTreeMap::new(); dirs.len()];
    for _ in 0..runs {
        for (d, dir) in dirs.iter().enumerate() {
            for t in TOOLS.iter().filter(|t| dir.join(t).is_file()) {
                // Each run starts from the same finished document, in the setup's directory
                // (where make-secret wrote the secret file).
                let p = pipeline(sim, dir, &[t], &setup.output, &setup_dir, "recheck")?;
                let e = samples[d].entry(t).or_default();
                e.0.push(p.wall_ms);
                e.1.push(p.tools[0].4);
                e.2.push(p.tools[0].1);
            }
        }
    }
    Ok(samples
        .into_iter()
        .map(|m| {
            Value::Object(
                m.into_iter()
                    .map(|(t, (w, c, codes))| {
                        (
                            t.to_string(),
                            json!({"wall_ms_median": median(&w), "cpu_ms_median": median(&c), "exit_codes": codes}),
                        )
                    })
                    .collect(),
            )
        })
        .collect())
}

// ---- the machine -----------------------------------------------------------------------------

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    json!({"nproc": nproc, "cpu": cpu, "rustc": rustc, "kernel": kernel, "loadavg_at_start": load})
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn git_describe() -> String {
    let out = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match out(&["rev-parse", "--short", "HEAD"]) {
        Some(h) => {
            let dirty = out(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{h} (with uncommitted changes)")
            } else {
                h
            }
        }
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn guids_are_shortened() {
        assert_eq!(
            shorten("/v1.0/applications/0d9f3c5e-1111-2222-3333-444455556666/addPassword"),
            "/v1.0/applications/{id}/addPassword"
        );
        assert_eq!(shorten("/v1.0/domains"), "/v1.0/domains");
    }

    #[test]
    fn requests_are_attributed_and_split() {
        let log = vec![
            json!({"method": "POST", "service": "login", "path": "/t/oauth2/v2.0/token", "status": 200, "user_agent": "marketo-s2s/0.1.0 register-app"}),
            json!({"method": "GET", "service": "graph", "path": "/v1.0/x", "status": 404, "user_agent": "marketo-s2s/0.1.0 register-app"}),
            json!({"method": "PATCH", "service": "graph", "path": "/v1.0/x", "status": 201, "user_agent": "marketo-s2s/0.1.0 register-app"}),
            json!({"method": "GET", "service": "graph", "path": "/v1.0/y", "status": 200, "user_agent": "curl/8"}),
        ];
        let c = count_requests(&log);
        let r = &c["register-app"];
        assert_eq!(
            (
                r["reads"].as_i64(),
                r["writes"].as_i64(),
                r["login"].as_i64()
            ),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(r["errors"].as_i64(), Some(1));
        assert!(c.contains_key("(other)"));
    }
}
