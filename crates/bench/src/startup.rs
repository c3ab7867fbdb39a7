//! Start-up of every tool (`--help`, and a run that fails fast with exit 2 on a missing value),
//! interleaved round-robin with `/bin/true` so both see the same machine load, and what a
//! fail-fast run does besides failing (`strace`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::proc;
use crate::results::{Audit, Startup, StartupRow, ToolStartup};
use crate::run::bare_env;
use crate::stats::{median, ms};

struct StartupCmd {
    name: String,
    tool: Option<String>,
    mode: &'static str,
    program: PathBuf,
    args: Vec<String>,
    /// Which directory of [`startup_sets`] (usize::MAX for /bin/true).
    set: usize,
}

pub fn startup(
    bin_dir: &Path,
    tools: &[&str],
    work: &Path,
    runs: usize,
) -> Result<Startup, String> {
    let mut v = startup_sets(&[bin_dir.to_path_buf()], tools, work, runs)?;
    let home = work.join("home");
    let audit: BTreeMap<String, Audit> = tools
        .iter()
        .filter_map(|t| startup_audit(&bin_dir.join(t), work, &home).map(|a| (t.to_string(), a)))
        .collect();
    let mut out = v.remove(0);
    out.audit = Some(audit);
    Ok(out)
}

/// Start-up of the same tools from several directories (builds), all interleaved round-robin
/// with one `/bin/true`, so every build sees the same load; one result per directory.
pub fn startup_sets(
    dirs: &[PathBuf],
    tools: &[&str],
    work: &Path,
    runs: usize,
) -> Result<Vec<Startup>, String> {
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
        let mut per_tool: BTreeMap<String, ToolStartup> = BTreeMap::new();
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
            let row = StartupRow {
                command: c.name.clone(),
                mode: c.mode.into(),
                median_ms: med,
                min_ms: walls[i].iter().copied().fold(f64::INFINITY, f64::min),
                over_true_ms: med - floor,
                exit_code: code,
                exit_codes: codes[i].clone(),
                maxrss_kib: rss[i],
            };
            if let Some(t) = &c.tool {
                let e = per_tool.entry(t.clone()).or_default();
                match c.mode {
                    "help" => e.help = row.clone(),
                    "fail_fast" => e.fail_fast = row.clone(),
                    _ => {}
                }
            }
            rows.push(row);
        }
        results.push(Startup {
            true_median_ms: floor,
            commands: rows,
            tools: per_tool,
            audit: None,
        });
    }
    Ok(results)
}

/// What a fail-fast run does besides failing, seen by `strace` (skipped when it is not
/// installed): files it opens beyond the dynamic loader's, sockets, threads.
fn startup_audit(program: &Path, work: &Path, home: &Path) -> Option<Audit> {
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
    Some(Audit {
        exit: status.code(),
        files,
        sockets,
        threads,
    })
}
