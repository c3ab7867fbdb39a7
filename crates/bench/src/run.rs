//! Running the tools: the bare environment they get, and a pipeline of them against tenant-sim,
//! each process reaped with its own rusage.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::proc;
use crate::sim::Sim;
use crate::stats::ms;

/// An environment with nothing of the user's: no credential, no cache, nothing to find on PATH
/// but the system, and endpoints on a closed loopback port, so a tool that wrongly went on to the
/// network would fail at once instead of reaching a real service.
pub fn bare_env(cmd: &mut Command, home: &Path) {
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("AZURE_AUTHORITY_HOST", "http://127.0.0.1:9")
        .env("MKTO_S2S_GRAPH_URL", "http://127.0.0.1:9");
}

/// The environment of a tool run against `sim`: [`bare_env`] plus the admin's client
/// credentials and tenant-sim's endpoints.
pub fn sim_env(cmd: &mut Command, sim: &Sim, home: &Path) {
    bare_env(cmd, home);
    cmd.env("AZURE_TENANT_ID", &sim.tenant_id)
        .env("AZURE_CLIENT_ID", &sim.client_id)
        .env("AZURE_CLIENT_SECRET", &sim.client_secret)
        .env("AZURE_AUTHORITY_HOST", &sim.url)
        .env("MKTO_S2S_GRAPH_URL", &sim.url)
        .env("MKTO_S2S_DYNAMICS_URL", &sim.dynamics_url);
}

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
pub struct Pipeline {
    pub wall_ms: f64,
    /// Per tool: exit code, time it ended (ms after the start), peak RSS, CPU ms (user + sys).
    pub tools: Vec<(String, i32, f64, u64, f64)>,
    pub output: Vec<u8>,
}

pub fn pipeline(
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
        sim_env(&mut cmd, sim, &home);
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
