//! The runbooks. The bash runbook (scripts/setup-marketo-s2s.sh) against the in-process
//! emulator: fresh run, `--from` resume after an injected failure, re-run without writes,
//! `--dry-run` without writes. The PowerShell runbook cannot run on these machines, so it is kept
//! a thin mirror of the bash one: the two name the same steps in the same order and pass the same
//! tool flags to the same steps — and every one of those flags is one its tools accept.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_register-app"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn runbook(sim: &Sim, extra: &[&str]) -> Run {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-marketo-s2s.sh");
    let state = sim.path("state.json");
    let secret = sim.path("marketo.secret");
    let mut c = bash(sim);
    c.arg(script)
        .args([
            "--tenant",
            &sim.server.tenant_id(),
            "--dynamics-url",
            &sim.server.dynamics_url(),
            "--state",
            state.to_str().unwrap(),
            "--secret-file",
            secret.to_str().unwrap(),
        ])
        .args(extra);
    Run::from_output(c.output().unwrap())
}

/// bash with the runbook's environment (signed in as the emulator's admin).
fn bash(sim: &Sim) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new("bash");
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sim.dir())
        .env("MKTO_S2S_BIN", bin_dir())
        .env("AZURE_CLIENT_ID", sim.server.admin_client_id())
        .env("AZURE_CLIENT_SECRET", sim.server.admin_client_secret())
        .env("AZURE_AUTHORITY_HOST", sim.url())
        .env("MKTO_S2S_GRAPH_URL", sim.url())
        .env("MKTO_S2S_TIMEOUT", "60s")
        .current_dir(sim.dir())
        .timeout(std::time::Duration::from_secs(240));
    c
}

/// The command a failed run prints after "to resume once fixed:".
fn resume_command(r: &Run) -> String {
    r.stderr
        .lines()
        .find_map(|l| l.split_once("to resume once fixed: ").map(|(_, cmd)| cmd))
        .unwrap_or_else(|| panic!("no resume command:\n{}", r.stderr))
        .to_string()
}

fn state_of(sim: &Sim) -> Value {
    serde_json::from_str(&std::fs::read_to_string(sim.path("state.json")).unwrap()).unwrap()
}

#[test]
fn fresh_run_then_rerun_without_writes() {
    let sim = sim_with(Options {
        federated: true,
        ..Default::default()
    });
    let r = runbook(&sim, &["--sync-filter", "lead,contact"]).ok();
    // With --sync-filter the runbook runs every tool.
    for step in TOOLS.iter().filter(|t| t.setup_step()).map(|t| t.name) {
        assert!(
            r.stderr.contains(&format!("] {step}")),
            "step {step} not shown:\n{}",
            r.stderr
        );
    }
    r.assert_stderr("Marketo step 3");
    let doc = state_of(&sim);
    assert_eq!(doc["verify"]["ok"], true);
    let secret = std::fs::read_to_string(sim.path("marketo.secret")).unwrap();
    assert!(
        !r.all_output().contains(secret.trim()),
        "the secret reached the terminal"
    );

    sim.clear();
    let again = runbook(&sim, &["--sync-filter", "lead,contact"]).ok();
    sim.assert_no_writes();
    let doc = state_of(&sim);
    for (step, v) in doc["steps"].as_object().unwrap() {
        assert_eq!(
            v["changed"], false,
            "{step} changed on the re-run:\n{}",
            again.stderr
        );
    }
}

/// `--sync-filter "lead, contact, "` names the entities lead and contact, as the PowerShell
/// runbook reads it: each entity trimmed, an empty one (a trailing comma) dropped, the whole
/// value read (not only its first line). A list with no entity is exit 2.
#[test]
fn the_sync_filter_list_is_trimmed() {
    let sim = sim();
    let r = runbook(&sim, &["--sync-filter", " , "]).code_is(2);
    r.assert_stderr("setup-marketo-s2s: error: --sync-filter names no entity");
    sim.assert_no_requests();

    let r = runbook(
        &sim,
        &["--skip-preflight", "--sync-filter", " lead ,\n contact, "],
    )
    .ok();
    let doc = state_of(&sim);
    let entities: Vec<&str> = doc["sync_filter"]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entity"].as_str().unwrap())
        .collect();
    assert_eq!(entities, ["lead", "contact"], "{}", r.stderr);
    r.assert_stderr("add-sync-filter: published lead, contact");
}

#[test]
fn stops_at_a_failure_and_resumes_with_from() {
    let sim = sim();
    // Dataverse refuses to create the application user once (a 403 cannot be retried).
    sim.server.add_fault(json!({"path_prefix": "/api/data/v9.2/systemusers", "method": "POST", "status": 403,
        "body": {"error": {"code": "0x80040220", "message": "The user does not hold the necessary privileges."}}, "count": 1}));
    let r = runbook(&sim, &[]).code_is(4);
    r.assert_stderr("assign-role failed (exit 4)");
    r.assert_stderr("--from assign-role");
    let doc = state_of(&sim);
    assert!(
        doc["app"]["client_id"].is_string(),
        "the steps before the failure are saved"
    );

    sim.clear();
    let r = runbook(&sim, &["--from", "assign-role"]).ok();
    r.assert_stderr("register-app: skipped (--from assign-role)");
    assert!(sim.requests().iter().all(|q| {
        !q["path"]
            .as_str()
            .unwrap()
            .starts_with("/v1.0/applications")
            || q["method"] == "GET"
    }));
    assert_eq!(state_of(&sim)["verify"]["ok"], true);
}

#[test]
fn dry_run_writes_nothing() {
    let sim = sim();
    let r = runbook(&sim, &["--dry-run"]).ok();
    sim.assert_no_writes();
    r.assert_stderr("dry run");
    assert!(
        !sim.path("state.json").exists(),
        "a dry run must not create the state file"
    );
    // On a finished setup the dry run goes through every step, still without writes.
    runbook(&sim, &[]).ok();
    sim.clear();
    let r = runbook(&sim, &["--dry-run"]).ok();
    sim.assert_no_writes();
    assert!(r.stderr.contains("] verify-sync"), "{}", r.stderr);
    assert!(!r.stderr.contains("stopping the dry run"), "{}", r.stderr);
}

/// A dry run stops quietly only where a step needs a value that a write planned above (and not
/// sent) would have created; bad input for a later step is still an error (exit 2), not a
/// successful dry run.
#[test]
fn a_dry_run_stops_only_for_planned_writes_and_a_bad_later_flag_is_exit_2() {
    let sim = sim();
    // A fresh setup: grant-consent needs the service principal register-app would create.
    let r = runbook(&sim, &["--dry-run"]).ok();
    r.assert_stderr(
        "==> dry run: grant-consent needs app.service_principal_id, which register-app would write (planned above, not sent); stopping the dry run here",
    );
    sim.assert_no_writes();

    // A bad value for a step the dry run would never reach is refused before the first step.
    for (flag, value, step) in [
        ("--publish-timeout", "5x", "publish-customizations"),
        ("--warn-days", "abc", "verify-sync"),
    ] {
        sim.clear();
        let r = runbook(&sim, &["--dry-run", flag, value]).code_is(2);
        r.assert_stderr(&format!("{step}: error: invalid value '{value}' for '{flag}"))
            .assert_stderr(&format!(
                "setup-marketo-s2s: error: {step} refuses the flags given for it (see above); nothing was run"
            ));
        assert!(!r.stderr.contains("stopping the dry run"), "{}", r.stderr);
        assert!(!r.stderr.contains("==> [1/"), "a step ran:\n{}", r.stderr);
        sim.assert_no_requests();
    }

    // A finished setup where make-secret plans a write (--rotate): configure-marketo's blank
    // --record-name (refused after parsing) is that step's failure, not "depends on writes".
    runbook(&sim, &["--skip-preflight"]).ok();
    sim.clear();
    let r = runbook(
        &sim,
        &[
            "--skip-preflight",
            "--dry-run",
            "--rotate",
            "--record-name",
            " ",
        ],
    )
    .code_is(2);
    r.assert_stderr("make-secret: dry run: 1 write(s) planned, none sent")
        .assert_stderr("configure-marketo failed (exit 2); this dry run wrote nothing;");
    assert!(!r.stderr.contains("stopping the dry run"), "{}", r.stderr);
    let resume = resume_command(&r);
    assert!(
        resume.contains(" --dry-run ") && resume.ends_with("--from configure-marketo"),
        "{resume}"
    );
    sim.assert_no_writes();
}

#[test]
fn rejects_an_unknown_step() {
    let sim = sim();
    let r = runbook(&sim, &["--from", "nope"]).code_is(2);
    assert!(r.stderr.contains("not a step"));
    assert!(sim.requests().is_empty());
}

#[test]
fn passes_common_and_step_flags_through_and_resumes_with_them() {
    let sim = sim();
    let r = runbook(
        &sim,
        &[
            "--expires-in",
            "90d",
            "--timeout",
            "2m",
            "--auth",
            "env",
            "-v",
        ],
    )
    .ok();
    // -v reached the tools: they trace their requests.
    assert!(r.stderr.contains("register-app: → "), "{}", r.stderr);
    let end = state_of(&sim)["secret"]["expires_at"]
        .as_str()
        .unwrap()
        .to_string();
    let end =
        time::OffsetDateTime::parse(&end, &time::format_description::well_known::Rfc3339).unwrap();
    let days = (end - time::OffsetDateTime::now_utc()).whole_days();
    assert!((89..=90).contains(&days), "{days} days");

    // A failing step prints a resume command that carries the same flags.
    let sim2 = crate::common::sim();
    sim2.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/systemusers", "method": "POST", "status": 403, "count": 1
    }));
    let r = runbook(&sim2, &["--expires-in", "90d", "--auth", "env"]).code_is(4);
    let resume = r
        .stderr
        .lines()
        .find(|l| l.contains("to resume once fixed:"))
        .unwrap()
        .to_string();
    assert!(
        resume.contains("--expires-in 90d --auth env --from assign-role"),
        "{resume}"
    );
}

#[test]
fn its_own_bad_arguments_are_exit_2_with_a_clear_error() {
    let sim = sim();
    for (args, needle) in [
        (vec!["--name"], "--name needs a value"),
        (vec!["--name", "--dry-run"], "--name needs a value"),
        (vec!["--expires"], "unknown argument --expires"),
    ] {
        let r = runbook(&sim, &args).code_is(2);
        r.assert_stderr(needle).assert_stderr("--help");
        assert!(!r.stderr.contains("unbound variable"), "{}", r.stderr);
    }
    assert!(sim.requests().is_empty());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-marketo-s2s.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        help.contains("--expires-in") && !help.contains("set -euo"),
        "{help}"
    );
}

/// `--option=` with nothing after `=` is refused like `--option` with no value: passed on, the
/// tool would take its next flag as the value (or the runbook would drop the option).
#[test]
fn an_empty_value_after_equals_is_exit_2_naming_the_option() {
    let sim = sim();
    for opt in ["--name=", "--tenant=", "--state=", "--warn-days="] {
        let flag = opt.trim_end_matches('=');
        runbook(&sim, &[opt])
            .code_is(2)
            .assert_stderr(&format!("setup-marketo-s2s: error: {flag} needs a value"));
    }
    sim.assert_no_requests();
    assert!(!sim.path("state.json").exists());
}

/// The runbook's path in a hint is quoted as the shell needs it: a copy in a folder with a space
/// in its name prints a `--help` command that can be pasted as it is.
#[test]
fn hints_quote_the_runbook_path_so_it_pastes() {
    let sim = sim();
    let folder = sim.path("my scripts");
    std::fs::create_dir(&folder).unwrap();
    let copy = folder.join("setup-marketo-s2s.sh");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-marketo-s2s.sh"),
        &copy,
    )
    .unwrap();
    let quoted = copy.to_str().unwrap().replace(' ', "\\ ");
    for (args, hint) in [
        (
            vec!["--dry-run=yes"],
            format!("hint: see `{quoted} --help`"),
        ),
        (vec!["--purge-delted"], format!("(see `{quoted} --help`)")),
        (
            vec!["--from", "asign-role"],
            format!("(see `{quoted} --help`)"),
        ),
    ] {
        let mut c = bash(&sim);
        c.arg(&copy).args(&args);
        let r = Run::from_output(c.output().unwrap()).code_is(2);
        r.assert_stderr(&hint);
        // Pasted, the command in the hint prints the help.
        let command = hint.split('`').nth(1).unwrap();
        let pasted = Run::from_output(bash(&sim).args(["-c", command]).output().unwrap()).ok();
        assert!(pasted.stdout.contains("--dry-run"), "{}", pasted.stdout);
    }
    sim.assert_no_requests();
}

/// A dry run keeps each step's would-be document beside the state file: a --state in a folder
/// that does not exist is a bad argument (exit 2) with a message, not a bare exit 1.
#[test]
fn a_dry_run_with_a_state_file_in_a_missing_folder_is_exit_2_with_a_message() {
    let sim = sim();
    let state = sim.path("no-such-folder/state.json");
    let r = runbook(&sim, &["--dry-run", "--state", state.to_str().unwrap()]).code_is(2);
    r.assert_stderr("setup-marketo-s2s: error: a dry run keeps each step's would-be document beside the state file, and cannot create one in ")
        .assert_stderr("no-such-folder")
        .assert_stderr("setup-marketo-s2s: hint: check the --state path: its folder must exist and be writable");
    assert!(
        !r.stderr.contains("] preflight"),
        "a step ran:\n{}",
        r.stderr
    );
    sim.assert_no_requests();
    assert!(!sim.path("no-such-folder").exists());
}

/// A release archive holds the runbook with the tools in `bin/` beside it (scripts/dist.sh):
/// the runbook finds them there without PATH or MKTO_S2S_BIN, and when the tools are nowhere it
/// says where it looked and what to do with an archive as well as with a build.
#[test]
fn the_runbook_of_a_release_archive_finds_the_tools_in_its_bin_folder() {
    let sim = sim();
    let archive = sim.path("marketo-s2s-0.1.0-x86_64-unknown-linux-gnu");
    std::fs::create_dir_all(archive.join("bin")).unwrap();
    let script = archive.join("setup-marketo-s2s.sh");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-marketo-s2s.sh"),
        &script,
    )
    .unwrap();
    let run = |sim: &Sim| {
        let mut c = bash(sim);
        c.env_remove("MKTO_S2S_BIN").arg(&script).args([
            "--tenant",
            &sim.server.tenant_id(),
            "--dynamics-url",
            &sim.server.dynamics_url(),
            "--dry-run",
        ]);
        Run::from_output(c.output().unwrap())
    };

    // No tools anywhere: where it looked, and what to do.
    let r = run(&sim).code_is(2);
    r.assert_stderr(&format!(
        "setup-marketo-s2s: error: the marketo-s2s tools are not on PATH, nor in {}/bin",
        archive.display()
    ))
    .assert_stderr("hint: put the release archive's bin folder on PATH (or set MKTO_S2S_BIN=DIR)");
    sim.assert_no_requests();

    for step in TOOLS.iter().filter(|t| t.setup_step()).map(|t| t.name) {
        std::os::unix::fs::symlink(bin_dir().join(step), archive.join("bin").join(step)).unwrap();
    }
    let r = run(&sim).ok();
    r.assert_stderr("register-app: dry run: 1 write(s) planned, none sent");
    sim.assert_no_writes();
}

/// A dry run that fails prints a resume command that is still a dry run (pasting it sends no
/// real write), and does not name a state file it never wrote.
#[test]
fn a_failed_dry_run_resumes_as_a_dry_run_and_names_no_state_file_it_did_not_write() {
    // No Policy.ReadWrite.ApplicationConfiguration: preflight fails (exit 6), and so does
    // set-hrd-policy on the federated tenant (exit 4).
    let sim = sim_with(Options {
        federated: true,
        admin_permissions: [
            "Application.ReadWrite.All",
            "DelegatedPermissionGrant.ReadWrite.All",
            "Domain.Read.All",
            "Organization.Read.All",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    });

    // preflight fails in a dry run of a new setup: there is no state file to point at.
    let r = runbook(&sim, &["--dry-run"]).code_is(6);
    r.assert_stderr("preflight failed (exit 6); this dry run wrote nothing.");
    assert!(!r.stderr.contains("state so far"), "{}", r.stderr);
    assert!(!sim.path("state.json").exists());
    let resume = resume_command(&r);
    assert!(resume.contains(" --dry-run"), "{resume}");
    assert!(resume.ends_with("--from preflight"), "{resume}");

    // Real steps up to make-secret, then a dry run that fails at set-hrd-policy.
    let r = runbook(&sim, &["--skip-preflight"]).code_is(4);
    r.assert_stderr("set-hrd-policy failed (exit 4); the state so far is in");
    let before = std::fs::read(sim.path("state.json")).unwrap();
    sim.clear();
    let r = runbook(&sim, &["--skip-preflight", "--dry-run"]).code_is(4);
    sim.assert_no_writes();
    r.assert_stderr("set-hrd-policy failed (exit 4); this dry run wrote nothing;")
        .assert_stderr("state.json is unchanged");
    let resume = resume_command(&r);
    assert!(
        resume.contains("--skip-preflight --dry-run") && resume.ends_with("--from set-hrd-policy"),
        "{resume}"
    );
    // Pasting it is a dry run again: no write, the state file byte-identical.
    sim.clear();
    let pasted = Run::from_output(bash(&sim).args(["-c", &resume]).output().unwrap()).code_is(4);
    pasted
        .assert_stderr("make-secret: skipped (--from set-hrd-policy)")
        .assert_stderr("this dry run wrote nothing");
    sim.assert_no_writes();
    assert_eq!(std::fs::read(sim.path("state.json")).unwrap(), before);

    // Without --dry-run the resume command stays a real run.
    let r = runbook(&sim, &["--skip-preflight"]).code_is(4);
    assert!(!resume_command(&r).contains("--dry-run"), "{}", r.stderr);
}

/// The runbook with `args` only (no --tenant, --dynamics-url, --state or --secret-file added),
/// and `env` on top of [`bash`]'s.
fn runbook_bare(sim: &Sim, args: &[&str], env: &[(&str, String)]) -> Run {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-marketo-s2s.sh");
    let mut c = bash(sim);
    c.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg(script)
        .args(args);
    Run::from_output(c.output().unwrap())
}

/// The dry run reads the real state file, so a secret file recorded by name beside it is found
/// (a copy in $TMPDIR would make it "missing": exit 6 and advice to rotate).
#[test]
fn a_dry_run_on_a_healthy_setup_with_a_relative_state_file_exits_0_and_writes_nothing() {
    let sim = sim();
    let target = [
        "--tenant".to_string(),
        sim.server.tenant_id(),
        "--dynamics-url".into(),
        sim.server.dynamics_url(),
    ];
    let mut args: Vec<&str> = target.iter().map(String::as_str).collect();
    args.extend(["--state", "contoso.state.json"]);
    runbook_bare(&sim, &args, &[]).ok();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(sim.path("contoso.state.json")).unwrap())
            .unwrap();
    let secret_file = doc["secret"]["file"].as_str().unwrap().to_string();
    assert!(
        !secret_file.contains('/'),
        "recorded by name beside the state file: {secret_file}"
    );
    let before = std::fs::read(sim.path("contoso.state.json")).unwrap();
    sim.clear();
    args.push("--dry-run");
    let r = runbook_bare(&sim, &args, &[]).ok();
    sim.assert_no_writes();
    assert!(r.stderr.contains("] verify-sync"), "{}", r.stderr);
    assert!(!r.stderr.contains("stopping the dry run"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(sim.path("contoso.state.json")).unwrap(),
        before
    );
    // Its would-be documents beside the state file are gone again, and so are the locks.
    let left: Vec<String> = std::fs::read_dir(sim.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains("state.json"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_from_that_would_skip_every_step_is_exit_2() {
    let sim = sim();
    for (args, needle) in [
        (
            vec!["--from", "add-sync-filter"],
            "--from add-sync-filter needs --sync-filter",
        ),
        (
            vec!["--from", "preflight", "--skip-preflight"],
            "--from preflight and --skip-preflight contradict each other",
        ),
    ] {
        runbook(&sim, &args).code_is(2).assert_stderr(needle);
    }
    sim.assert_no_requests();
    assert!(!sim.path("state.json").exists());
}

#[test]
fn a_mistyped_option_or_step_gets_the_nearest_one_suggested() {
    let sim = sim();
    for (args, needle) in [
        (vec!["--purge-delted"], "did you mean `--purge-deleted`?"),
        (
            vec!["--expires-in=90d", "--warn-dyas", "10"],
            "did you mean `--warn-days`?",
        ),
        (
            vec!["--from", "asign-role"],
            "did you mean `--from assign-role`?",
        ),
    ] {
        runbook(&sim, &args).code_is(2).assert_stderr(needle);
    }
    sim.assert_no_requests();
}

/// A flag that a step's hint names (here assign-role's --purge-deleted) passes through the
/// runbook to that step, and its resume command carries it.
#[test]
fn a_flag_a_step_hint_names_passes_through_to_that_step() {
    let sim = sim();
    runbook(&sim, &[]).ok();
    let doc = state_of(&sim);
    let cid = doc["app"]["client_id"].as_str().unwrap().to_string();
    assert!(sim.server.soft_delete_user(&cid));
    let r = runbook(&sim, &["--skip-preflight"]).code_is(4);
    r.assert_stderr("--purge-deleted");
    let r = runbook(
        &sim,
        &[
            "--skip-preflight",
            "--purge-deleted",
            "--from",
            "assign-role",
        ],
    )
    .ok();
    r.assert_stderr("purged soft-deleted application user");
    assert_eq!(state_of(&sim)["verify"]["ok"], true);
}

/// The first line names the target and where each part came from; a new state
/// file with the target only in the environment is refused off a terminal.
#[test]
fn the_first_line_names_the_target_and_an_environment_only_target_for_a_new_setup_is_refused() {
    let sim = sim();
    let env = [
        ("AZURE_TENANT_ID", sim.server.tenant_id()),
        ("MKTO_S2S_DYNAMICS_URL", sim.server.dynamics_url()),
    ];
    let r = runbook_bare(&sim, &["--state", "b.state.json"], &env).code_is(2);
    let first = r.stderr.lines().next().unwrap();
    assert!(
        first.starts_with("setup-marketo-s2s: target: tenant ")
            && first.contains(&format!(
                "{} (from AZURE_TENANT_ID in the environment)",
                sim.server.tenant_id()
            ))
            && first.contains("(from MKTO_S2S_DYNAMICS_URL in the environment)")
            && first.contains("state file b.state.json (new)")
            && first.contains(&format!(
                "sign-in: service principal {}",
                sim.server.admin_client_id()
            )),
        "{first}"
    );
    r.assert_stderr("comes from the environment")
        .assert_stderr(&format!("--tenant {}", sim.server.tenant_id()));
    sim.assert_no_requests();
    assert!(!sim.path("b.state.json").exists());

    // Named on the command line, the same target runs.
    let r = runbook(&sim, &["--skip-preflight"]).ok();
    assert!(
        r.stderr.lines().next().unwrap().contains("(from --tenant)"),
        "{}",
        r.stderr
    );
    // A state file that names its target needs no flags: the tools guard it.
    let r = runbook_bare(
        &sim,
        &[
            "--state",
            sim.path("state.json").to_str().unwrap(),
            "--skip-preflight",
        ],
        &env,
    )
    .ok();
    assert!(
        r.stderr
            .lines()
            .next()
            .unwrap()
            .contains("(from the state file)"),
        "{}",
        r.stderr
    );
}

/// Ctrl-C during a step: the runbook says so and prints the command that resumes from it.
#[test]
fn ctrl_c_during_a_step_prints_the_resume_command() {
    use std::os::unix::process::CommandExt;
    let sim = sim();
    sim.server.add_fault(
        json!({"path_prefix": "/api/data/v9.2/PublishAllXml", "method": "POST",
        "kind": "stall", "count": 1}),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-marketo-s2s.sh");
    let err = sim.path("runbook.err");
    let mut c = std::process::Command::new("bash");
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sim.dir())
        .env("MKTO_S2S_BIN", bin_dir())
        .env("AZURE_CLIENT_ID", sim.server.admin_client_id())
        .env("AZURE_CLIENT_SECRET", sim.server.admin_client_secret())
        .env("AZURE_AUTHORITY_HOST", sim.url())
        .env("MKTO_S2S_GRAPH_URL", sim.url())
        .current_dir(sim.dir())
        .arg(script)
        .args([
            "--tenant",
            &sim.server.tenant_id(),
            "--dynamics-url",
            &sim.server.dynamics_url(),
            "--state",
            "state.json",
            "--skip-preflight",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .process_group(0);
    let mut child = c.spawn().unwrap();
    let started = std::time::Instant::now();
    while !sim
        .requests()
        .iter()
        .any(|r| r["path"].as_str().unwrap().ends_with("/PublishAllXml"))
    {
        assert!(started.elapsed().as_secs() < 120, "no publish");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Ctrl-C reaches the terminal's whole foreground job: the runbook and its step.
    let group = format!("-{}", child.id());
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("publish-customizations: error: interrupted (Ctrl-C)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "setup-marketo-s2s: interrupted (SIGINT) during publish-customizations; the state so far is in state.json."
        ),
        "{stderr}"
    );
    let resume = stderr
        .lines()
        .find_map(|l| l.split_once("to resume once fixed: ").map(|(_, c)| c))
        .unwrap_or_else(|| panic!("no resume command:\n{stderr}"));
    assert!(
        resume.contains("--state state.json") && resume.ends_with("--from publish-customizations"),
        "{resume}"
    );
    // The owed publish is in the state file; resuming publishes it.
    assert_eq!(state_of(&sim)["publish"]["status"], "pending");
    let pasted = Run::from_output(bash(&sim).args(["-c", resume]).output().unwrap()).ok();
    pasted.assert_stderr("register-app: skipped (--from publish-customizations)");
    assert_eq!(state_of(&sim)["verify"]["ok"], true, "{}", pasted.stderr);
}

fn script(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(name),
    )
    .unwrap()
}

/// `--dynamics-url` → `DynamicsUrl`: the PowerShell spelling of a bash option.
fn pascal(option: &str) -> String {
    option
        .trim_start_matches('-')
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The words of a `NAME=(a b c)` bash array or a `$name = @("a","b")` PowerShell array.
fn array_words(text: &str, start: &str) -> Vec<String> {
    let rest = &text[text.find(start).unwrap_or_else(|| panic!("no {start}")) + start.len()..];
    let body = &rest[..rest.find(')').unwrap()];
    body.split([' ', ','])
        .map(|w| w.trim().trim_matches('"'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// One row of a pass-through table: (steps, tool flag, takes a value).
type Row = (String, String, bool);

/// The bash table: option → row.
fn bash_table(text: &str) -> Vec<(String, Row)> {
    let start = text.find("PASS_TABLE='").unwrap() + "PASS_TABLE='".len();
    let body = &text[start..start + text[start..].find('\'').unwrap()];
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.len(), 4, "{l}");
            (w[0].to_string(), (w[2].into(), w[3].into(), w[1] == "1"))
        })
        .collect()
}

/// The PowerShell table: parameter → row (a value unless the parameter is a [switch] or one of
/// PowerShell's own switches).
fn powershell_table(text: &str) -> Vec<(String, Row)> {
    let start = text.find("$PassTable = @(").unwrap();
    let body = &text[start..start + text[start..].find("\n)").unwrap()];
    body.lines()
        .filter(|l| l.trim().starts_with("@(\""))
        .map(|l| {
            // The quoted cells: "Param", "steps", "--flag".
            let w: Vec<String> = l
                .split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            assert_eq!(w.len(), 3, "{l}");
            let switch = matches!(w[0].as_str(), "Verbose" | "Debug")
                || text.contains(&format!("[switch]${}\n", w[0]))
                || text.contains(&format!("[switch]${},", w[0]));
            let declared = switch
                || text.contains(&format!("[string]${}", w[0]))
                || text.contains(&format!("[string[]]${}", w[0]));
            assert!(
                declared,
                "the PowerShell runbook does not declare -{}",
                w[0]
            );
            (w[0].clone(), (w[1].clone(), w[2].clone(), !switch))
        })
        .collect()
}

#[test]
fn the_bash_and_powershell_runbooks_name_the_same_steps_and_pass_the_same_flags() {
    let bash = script("setup-marketo-s2s.sh");
    let ps = script("Setup-MarketoS2S.ps1");

    let steps = array_words(&bash, "STEPS=(");
    assert_eq!(steps, array_words(&ps, "$steps = @("), "the steps differ");
    assert_eq!(steps.len(), 10);

    let b = bash_table(&bash);
    let p = powershell_table(&ps);
    let rows = |t: &[(String, Row)]| t.iter().map(|(_, r)| r.clone()).collect::<BTreeSet<Row>>();
    assert_eq!(rows(&b), rows(&p), "the tables pass different flags");
    // Every long bash option is the PowerShell parameter of the same name, with the same row.
    for (option, row) in &b {
        if !option.starts_with("--") {
            continue;
        }
        let name = pascal(option);
        let found = p.iter().find(|(n, _)| *n == name);
        assert_eq!(
            found.map(|(_, r)| r),
            Some(row),
            "{option} is -{name} in PowerShell, with the same steps and flag"
        );
    }
    // The runbooks' own options, too.
    for option in array_words(&bash, "OWN_OPTIONS=(") {
        if option == "--help" {
            continue;
        }
        assert!(
            ps.contains(&format!("${} ", pascal(&option)))
                || ps.contains(&format!("${}\n", pascal(&option)))
                || ps.contains(&format!("${},", pascal(&option))),
            "{option} has no PowerShell parameter"
        );
    }
    // What each runbook adds by itself to a step.
    for text in [&bash, &ps] {
        assert!(text.contains("--if-changed") && text.contains("--entity"));
    }
    // Both look for the tools in the same places: a release archive's bin/, then a build.
    for place in [
        "/bin/register-app",
        "/../target/release/register-app",
        "/../target/debug/register-app",
    ] {
        assert!(bash.contains(&format!("$here{place}")), "bash: {place}");
        assert!(
            ps.contains(&format!("$PSScriptRoot{place}")),
            "PowerShell: {place}"
        );
    }

    // Every flag is one its steps accept.
    let dir = tempfile::tempdir().unwrap();
    let mut helps = std::collections::BTreeMap::new();
    for step in &steps {
        let mut c = bare_cmd(step, dir.path());
        c.arg("--help").env("COLUMNS", "200");
        helps.insert(
            step.clone(),
            Run::from_output(c.output().unwrap()).ok().stdout,
        );
    }
    for (steps_of, flag, takes) in rows(&b) {
        let targets: Vec<&String> = if steps_of == "*" {
            steps.iter().collect()
        } else {
            steps_of
                .split(',')
                .map(|s| steps.iter().find(|t| *t == s).expect("a step"))
                .collect()
        };
        for step in targets {
            let help = &helps[step];
            // -v and -q are "-v, --verbose" and "-q, --quiet"; -vv is -v given twice.
            let found = match flag.as_str() {
                "-vv" => help.contains("-v, --verbose"),
                short if short.len() == 2 => help.contains(&format!("{short}, --")),
                long => help.contains(&format!("{long} ")) || help.contains(&format!("{long}\n")),
            };
            assert!(found, "{step} --help has no {flag}");
            assert_eq!(
                help.contains(&format!("{flag} <")),
                takes,
                "{step}'s {flag}: the table says it takes a value: {takes}"
            );
        }
    }
}
