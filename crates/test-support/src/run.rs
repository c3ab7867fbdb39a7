//! The tools run as real processes, with nothing of the developer's environment (no HOME, no
//! token cache, no credentials: xh's rule), signed in as the emulator's admin through the
//! environment service principal; [`Run`] is what one run produced.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

use crate::sim::Sim;

/// What one tool run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// stdout parsed as JSON (Null when empty or not JSON).
    pub doc: Value,
}

impl Run {
    pub fn from_output(o: Output) -> Run {
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let doc = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            doc,
        }
    }
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
        self
    }
    #[track_caller]
    pub fn code_is(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
        self
    }
    pub fn changed(&self, tool: &str) -> bool {
        self.doc["steps"][tool]["changed"]
            .as_bool()
            .expect("steps.<tool>.changed")
    }
    /// Every byte the tool printed.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    /// Asserts that stderr contains `needle`, showing stderr when it does not.
    #[track_caller]
    pub fn assert_stderr(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "expected {needle:?} on stderr:\n{}",
            self.stderr
        );
        self
    }
}

/// The binary of `tool` (or tenant-sim) that cargo built for this test run.
pub fn bin(tool: &str) -> PathBuf {
    assert_cmd::cargo::cargo_bin(tool)
}

/// A command for `tool` with nothing from the developer's environment.
pub fn bare_cmd(tool: &str, cwd: &Path) -> Command {
    let mut c = Command::cargo_bin(tool).expect("tool binary");
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", cwd)
        .env("XDG_CACHE_HOME", cwd.join(".cache"))
        .current_dir(cwd)
        .timeout(std::time::Duration::from_secs(120));
    c
}

/// Runs `tool` with nothing but the given environment (for bad-input tests).
pub fn run_bare(tool: &str, cwd: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut c = bare_cmd(tool, cwd);
    c.args(args)
        .envs(env.iter().copied())
        .write_stdin(stdin.to_string());
    Run::from_output(c.output().expect("run tool"))
}

impl Sim {
    /// A command signed in as the emulator's admin through the environment service principal.
    pub fn cmd(&self, tool: &str) -> Command {
        let mut c = bare_cmd(tool, self.dir());
        c.envs(self.env());
        c
    }

    /// The environment of a tool signed in as the emulator's admin (on top of [`bare_cmd`]'s).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_TENANT_ID", self.server.tenant_id()),
            ("AZURE_CLIENT_ID", self.server.admin_client_id()),
            ("AZURE_CLIENT_SECRET", self.server.admin_client_secret()),
            ("AZURE_AUTHORITY_HOST", self.server.url()),
            ("MKTO_S2S_GRAPH_URL", self.server.url()),
            ("MKTO_S2S_DYNAMICS_URL", self.server.dynamics_url()),
            ("MKTO_S2S_TIMEOUT", "60s".to_string()),
        ]
    }

    /// Runs `tool args` with `stdin` (a document, or Null for no input: `< /dev/null`, the
    /// explicit "start from nothing"; an empty pipe means a failed previous step).
    pub fn run(&self, tool: &str, args: &[&str], stdin: &Value) -> Run {
        if stdin.is_null() {
            // assert_cmd always pipes stdin; `< /dev/null` needs a plain Command.
            let mut c = self.null_stdin_cmd(tool);
            c.args(args);
            return Run::from_output(c.output().expect("run tool"));
        }
        let mut c = self.cmd(tool);
        c.args(args).write_stdin(stdin.to_string());
        Run::from_output(c.output().expect("run tool"))
    }

    /// As [`Sim::cmd`], a plain std command (so a test can give it any stdin, stdout or stderr,
    /// or spawn it), with stdin from `/dev/null` (the tool is bounded by MKTO_S2S_TIMEOUT).
    pub fn null_stdin_cmd(&self, tool: &str) -> std::process::Command {
        let mut c = std::process::Command::new(bin(tool));
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir())
            .env("XDG_CACHE_HOME", self.dir().join(".cache"))
            .current_dir(self.dir())
            .envs(self.env())
            .stdin(std::process::Stdio::null());
        c
    }

    /// `tool` on a document that names no app exits 2, naming the flag and the state key that
    /// would have given it.
    #[track_caller]
    pub fn assert_needs(&self, tool: &str, flag: &str, key: &str) {
        let doc = serde_json::json!({"tenant": {"id": self.server.tenant_id()}});
        let r = self.run(tool, &[], &doc).code_is(2);
        assert!(
            r.stderr.contains(flag) && r.stderr.contains(key),
            "{}",
            r.stderr
        );
    }

    /// Each `(args, stdin, needle)` run of `tool` exits 2 with `needle` on stderr, having sent
    /// no request: bad input is refused before anything reaches the tenant. Returns the runs.
    #[track_caller]
    pub fn assert_usage_errors(&self, tool: &str, cases: &[(Vec<&str>, Value, &str)]) -> Vec<Run> {
        let mut runs = Vec::new();
        for (args, stdin, needle) in cases {
            self.clear();
            let r = self.run(tool, args, stdin).code_is(2);
            assert!(
                r.stderr.contains(needle),
                "{args:?}: expected {needle:?} in\n{}",
                r.stderr
            );
            let sent = self.requests();
            assert!(sent.is_empty(), "{args:?} sent {sent:#?}");
            runs.push(r);
        }
        runs
    }
}

/// A failed run on a pipe: stdout is empty, or the document it read with nothing but its own
/// `steps.<tool>.error` (marked `handed_on`) added.
#[track_caller]
pub fn assert_handed_on_unchanged(r: &Run, tool: &str, input: &Value) {
    if r.stdout.is_empty() {
        return;
    }
    let mut out: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|_| panic!("{tool} printed something that is not a document"));
    if let Some(steps) = out["steps"].as_object_mut() {
        assert_eq!(
            steps[tool]["error"]["handed_on"], true,
            "{tool}: {}",
            r.stdout
        );
        assert_eq!(
            steps[tool]["error"]["exit_code"], r.code,
            "{tool}: {}",
            r.stdout
        );
        steps.remove(tool);
        if steps.is_empty() {
            out.as_object_mut().expect("an object").remove("steps");
        }
    }
    let mut input = input.clone();
    if input["steps"].as_object().is_some_and(|s| s.is_empty()) {
        input.as_object_mut().expect("an object").remove("steps");
    }
    assert_eq!(&out, &input, "{tool} changed the document it handed on");
}
