//! The consultant's daily driver (issue 22, and 21.4 and 21.8): the target named before anything
//! happens, a tenant domain that stays the same tenant under `--retarget`, one device-code
//! prompt per sign-in, colour only where asked for, and completions from the binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// A finished setup kept in `dir/state.json`, every step run with `--state`.
pub fn finished_state(sim: &Sim) -> PathBuf {
    let state = sim.path("state.json");
    for (tool, args) in chain_steps("marketo.secret") {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend_from_slice(&["--state", state.to_str().unwrap()]);
        let r = sim.run(tool, &a, &Value::Null);
        assert_eq!(r.code, 0, "{tool} failed\nstderr:\n{}", r.stderr);
    }
    state
}

pub fn read_doc(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The emulated tenant's first domain (what a consultant types as `--tenant`).
pub fn tenant_domain(sim: &Sim) -> String {
    let domains = sim.graph_expect(200, "GET", "domains", None);
    domains["value"][0]["id"].as_str().unwrap().to_string()
}

/// Runs `command` (a shell line) on a pseudo-terminal with `env` only, as an admin's shell
/// would (script(1)); returns the exit status and the screen.
pub fn on_terminal(dir: &Path, command: &str, env: &[(&str, String)]) -> (bool, String) {
    let out = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .output()
        .expect("script(1)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_writing_tool_names_tenant_domain_and_id_org_sign_in_and_state_first() {
    let sim = sim();
    let domain = tenant_domain(&sim);
    let state = sim.path("contoso.state.json");
    let s = state.to_str().unwrap();
    // The tenant given by its domain: register-app resolves it, core keeps the domain.
    let r = sim
        .run(
            "register-app",
            &["--state", s, "--tenant", &domain],
            &Value::Null,
        )
        .ok();
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("register-app: target: tenant {domain}")),
        "{}",
        r.stderr
    );
    let doc = read_doc(&state);
    assert_eq!(doc["tenant"]["domain"], domain.as_str());
    assert_eq!(doc["tenant"]["id"], sim.server.tenant_id().as_str());

    // The next tool names both from the document, the org, who signs in and the file.
    let r = sim.run("assign-role", &["--state", s], &Value::Null).ok();
    let first = r.stderr.lines().next().unwrap_or_default();
    let want = format!(
        "assign-role: target: tenant {domain} ({}); org {}; sign-in: service principal {} with its client secret; state: {s}",
        sim.server.tenant_id(),
        sim.server.dynamics_url().trim_end_matches('/'),
        sim.server.admin_client_id(),
    );
    assert_eq!(first, want, "{}", r.stderr);

    // A read-only tool and a bad input do not: the error stays the first line.
    let r = sim
        .run("grant-consent", &[], &serde_json::json!({}))
        .code_is(2);
    assert!(
        r.stderr.starts_with("grant-consent: error:"),
        "{}",
        r.stderr
    );
    // -q keeps it quiet.
    let r = sim
        .run("assign-role", &["--state", s, "-q"], &Value::Null)
        .ok();
    assert!(!r.stderr.contains("target:"), "{}", r.stderr);
}

#[test]
fn a_guard_message_names_the_domain_and_where_the_other_tenant_came_from() {
    let sim = sim();
    let domain = tenant_domain(&sim);
    let state = sim.path("state.json");
    let s = state.to_str().unwrap();
    sim.run(
        "register-app",
        &["--state", s, "--tenant", &domain],
        &Value::Null,
    )
    .ok();
    let other = "0b5e8d4e-7c4a-4c39-9b7e-8e3f1f6f2a10";
    sim.clear();
    let mut c = sim.cmd("grant-consent");
    c.args(["--state", s]).env("AZURE_TENANT_ID", other);
    let r = Run::from_output(c.output().unwrap()).code_is(2);
    r.assert_stderr(&format!(
        "AZURE_TENANT_ID in the environment names tenant {other} but this document belongs to tenant {domain} ({})",
        sim.server.tenant_id()
    ));
    sim.assert_no_requests();
    // The same value on the command line is named as the flag.
    let r = sim
        .run(
            "grant-consent",
            &["--state", s, "--tenant", other],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr(&format!("--tenant names tenant {other}"));
}

#[test]
fn retarget_with_the_tenants_own_domain_keeps_every_id() {
    let sim = sim();
    let state = finished_state(&sim);
    let s = state.to_str().unwrap();
    let domain = tenant_domain(&sim);
    let before = read_doc(&state);
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--tenant", &domain, "--retarget"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("nothing to move");
    sim.assert_no_writes();
    let after = read_doc(&state);
    for key in [
        "app",
        "consent",
        "secret",
        "hrd_policy",
        "dynamics",
        "marketo_config",
        "publish",
    ] {
        assert_eq!(after[key], before[key], "{key} changed:\n{}", r.stderr);
    }
    assert_eq!(after["tenant"]["id"], before["tenant"]["id"]);
    assert_eq!(after["tenant"]["domain"], domain.as_str());
    for step in before["steps"].as_object().unwrap().keys() {
        assert!(after["steps"][step].is_object(), "steps.{step} was dropped");
    }
}

#[test]
fn device_code_first_run_shows_one_prompt_and_reaches_both_graph_and_the_org() {
    let sim = sim();
    let state = finished_state(&sim);
    let cache = sim.path("cache/tokens.json");
    let env = [
        ("PATH", "/usr/bin:/bin".to_string()),
        ("HOME", sim.dir().display().to_string()),
        ("AZURE_TENANT_ID", sim.server.tenant_id()),
        ("AZURE_AUTHORITY_HOST", sim.url()),
        ("MKTO_S2S_GRAPH_URL", sim.url()),
        ("MKTO_S2S_TOKEN_CACHE", cache.display().to_string()),
        ("MKTO_S2S_TIMEOUT", "60s".to_string()),
        ("NO_COLOR", "1".to_string()),
        ("TERM", "xterm".to_string()),
    ];
    sim.clear();
    let verify = assert_cmd::cargo::cargo_bin("verify-sync");
    let (ok, screen) = on_terminal(
        sim.dir(),
        &format!("{} --state {}", verify.display(), state.display()),
        &env,
    );
    assert!(ok, "the first run works:\n{screen}");
    assert_eq!(
        screen.matches("enter the code").count(),
        1,
        "one prompt per sign-in:\n{screen}"
    );
    let devicecodes = sim
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").ends_with("/devicecode"))
        .count();
    assert_eq!(devicecodes, 1);
    assert!(!screen.contains("0x80072561"), "{screen}");
    assert!(
        screen.contains("[ok  ] the org answers WhoAmI for the admin"),
        "{screen}"
    );
    assert!(screen.contains("signed in as "), "{screen}");
    // NO_COLOR on a terminal: not one escape byte (the spinner included).
    assert!(!screen.contains('\u{1b}'), "{screen:?}");
    assert!(!screen.contains("eyJ"), "a token reached the terminal");
}

#[test]
fn colour_only_on_a_terminal_or_when_asked_and_never_with_no_color() {
    let sim = sim();
    let doc = registered(&sim);
    // Off a terminal: no escape byte by default.
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).code_is(6);
    assert!(!r.stderr.contains('\u{1b}'), "{:?}", r.stderr);
    assert!(r.stderr.contains("[FAIL]"), "{}", r.stderr);
    // --color always: failures red, the error label too.
    let r = sim
        .run("verify-sync", &["--settle", "0", "--color", "always"], &doc)
        .code_is(6);
    assert!(
        r.stderr.contains("\u{1b}[1;31m[FAIL]\u{1b}[0m"),
        "{:?}",
        r.stderr
    );
    assert!(
        r.stderr.contains("\u{1b}[32m[ok  ]\u{1b}[0m"),
        "{:?}",
        r.stderr
    );
    // --color never beats a terminal.
    let verify = assert_cmd::cargo::cargo_bin("verify-sync");
    let file = sim.path("doc.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let mut env: Vec<(&str, String)> = sim.env();
    env.extend([
        ("PATH", "/usr/bin:/bin".to_string()),
        ("HOME", sim.dir().display().to_string()),
        ("TERM", "xterm".to_string()),
    ]);
    let line = format!("{} --settle 0 --state {}", verify.display(), file.display());
    let (_, screen) = on_terminal(sim.dir(), &format!("{line} --color never"), &env);
    assert!(screen.contains("[FAIL]"), "{screen}");
    assert!(!screen.contains('\u{1b}'), "{screen:?}");
    // On a terminal by default: coloured.
    let (_, screen) = on_terminal(sim.dir(), &line, &env);
    assert!(screen.contains("\u{1b}[1;31m"), "{screen:?}");
}

#[test]
fn completions_and_man_pages_come_from_the_binaries() {
    let dir = tempfile::tempdir().unwrap();
    for tool in TOOLS.iter().chain(["teardown"].iter()) {
        let r = run_bare(
            tool,
            dir.path(),
            &["--generate", "completions-bash"],
            "",
            &[],
        )
        .ok();
        assert!(
            r.stdout
                .contains(&format!("complete -F _{}", tool.replace('-', "__")))
                || r.stdout.contains("complete -F"),
            "{tool}: {}",
            r.stdout
        );
        assert!(r.stdout.contains("--state"), "{tool}");
        assert!(r.stderr.is_empty(), "{tool}: {}", r.stderr);
    }
    let r = run_bare("verify-sync", dir.path(), &["--generate", "man"], "", &[]).ok();
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH verify-sync"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("fleet"));
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let r = run_bare(
            "make-secret",
            dir.path(),
            &[&format!("--generate=completions-{shell}")],
            "",
            &[],
        )
        .ok();
        assert!(r.stdout.contains("rotate"), "{shell}: {}", r.stdout);
    }
    // Not a flag people need in --help; an unknown value is a usage error.
    let r = run_bare("make-secret", dir.path(), &["--help"], "", &[]).ok();
    assert!(!r.stdout.contains("--generate"));
    run_bare(
        "make-secret",
        dir.path(),
        &["--generate", "nonsense"],
        "",
        &[],
    )
    .code_is(2);
}

#[test]
fn the_bench_binary_is_not_installed_beside_the_tools() {
    // `cargo install --path .` installs the root package's binaries: bench is not one.
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let bins: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|b| b.lines().find(|l| l.starts_with("name")))
        .collect();
    assert!(!bins.is_empty());
    assert!(bins.iter().all(|l| !l.contains("bench")), "{bins:?}");
}

#[test]
fn the_offline_status_prints_the_step3_block_with_the_network_unreachable() {
    let sim = sim();
    let state = finished_state(&sim);
    let s = state.to_str().unwrap();
    sim.run(
        "verify-sync",
        &["--state", s, "--settle", "0"],
        &Value::Null,
    )
    .ok();
    let doc = read_doc(&state);
    let before = std::fs::read(&state).unwrap();
    sim.clear();
    // Every endpoint points at a closed loopback port, and a proxy that is not there.
    let dead = "http://127.0.0.1:9";
    let tenant = sim.server.tenant_id();
    let env = [
        ("AZURE_TENANT_ID", tenant.as_str()),
        ("AZURE_AUTHORITY_HOST", dead),
        ("MKTO_S2S_GRAPH_URL", dead),
        ("MKTO_S2S_DYNAMICS_URL", dead),
        ("HTTPS_PROXY", dead),
        ("HTTP_PROXY", dead),
    ];
    let r = run_bare(
        "verify-sync",
        sim.dir(),
        &["--offline", "--state", s, "-q"],
        "",
        &env,
    )
    .ok();
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    sim.assert_no_requests();
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "status wrote the file"
    );
    let text = |k: &str| doc.pointer(k).and_then(Value::as_str).unwrap().to_string();
    for want in [
        "verify-sync: Marketo step 3 (Admin > CRM > Microsoft Dynamics > Enter Credentials):"
            .to_string(),
        format!("verify-sync:   Tenant ID    : {}", sim.server.tenant_id()),
        format!("verify-sync:   Client ID    : {}", text("/app/client_id")),
        format!(
            "verify-sync:   Username     : {}",
            text("/dynamics/username")
        ),
        format!("key {}", text("/secret/key_id")),
        format!("expires {}", text("/secret/expires_at")),
        "last verify : passed (".to_string(),
        "publish     : nothing owed (last published".to_string(),
        "  register-app ".to_string(),
        "  publish-customizations ".to_string(),
    ] {
        r.assert_stderr(&want);
    }
    assert!(
        r.stderr
            .contains(&sim.path("marketo.secret").display().to_string()),
        "{}",
        r.stderr
    );

    // A Dataverse change after the last publish: owed, with the command that pays it.
    let mut owed = doc.clone();
    owed["steps"]["configure-marketo"]["changed"] = Value::Bool(true);
    owed["steps"]["configure-marketo"]["dataverse_changed"] = Value::Bool(true);
    owed["steps"]["configure-marketo"]["at"] = Value::from("2999-01-01T00:00:00.000Z");
    std::fs::write(&state, owed.to_string()).unwrap();
    let r = run_bare(
        "verify-sync",
        sim.dir(),
        &["--offline", "--state", s],
        "",
        &env,
    )
    .ok();
    r.assert_stderr(&format!(
        "publish     : owed: configure-marketo changed Dataverse after the last publish; run publish-customizations --state {s} --if-changed"
    ));
    // A missing file is exit 2 naming it.
    let r = run_bare(
        "verify-sync",
        sim.dir(),
        &["--offline", "--state", "nope.json"],
        "",
        &env,
    )
    .code_is(2);
    r.assert_stderr("nope.json does not exist");
    sim.assert_no_requests();
}

/// Replication waits say what they wait for, not a service's refusal with its URL: a normal
/// wait must not read like a failure (nor repeat "waiting").
#[test]
fn replication_wait_lines_read_as_waits_not_failures() {
    let sim = sim_with(tenant_sim::Options {
        federated: true,
        replication_lag_ms: 1500,
        ..Default::default()
    });
    let mut doc = Value::Null;
    let mut stderr = String::new();
    for (tool, args) in chain_steps("marketo.secret").into_iter().take(4) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sim.run(tool, &a, &doc).ok();
        stderr.push_str(&r.stderr);
        doc = r.doc;
    }
    let waits: Vec<&str> = stderr.lines().filter(|l| l.contains("waiting")).collect();
    assert!(!waits.is_empty(), "no wait with 1.5 s of lag:\n{stderr}");
    for w in &waits {
        assert!(!w.contains("answered"), "{w}");
        assert!(!w.contains("[request id"), "{w}");
        assert!(!w.contains("waiting: waiting"), "{w}");
        assert!(!w.contains("%20") && !w.contains("%27"), "{w}");
    }
}

/// A message split over source lines without a `\` kept the next line's indentation ("accepts
/// <18 spaces> app-only tokens"): no string literal of the tools may hold such a run of spaces.
#[test]
fn no_message_keeps_the_indentation_of_a_broken_string_continuation() {
    fn scan(dir: &Path, bad: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                scan(&p, bad);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (n, line) in text.lines().enumerate() {
                    if line.trim_start().starts_with("//") {
                        continue;
                    }
                    // The odd-numbered pieces between quotes are inside string literals.
                    for lit in line.split('"').skip(1).step_by(2) {
                        // A letter or digit, five or more spaces, a letter.
                        let b = lit.as_bytes();
                        let run = (0..b.len()).any(|i| {
                            let spaces = b[i + 1..].iter().take_while(|c| **c == b' ').count();
                            b[i].is_ascii_alphanumeric()
                                && spaces >= 5
                                && b.get(i + 1 + spaces).is_some_and(u8::is_ascii_alphabetic)
                        });
                        if run {
                            bad.push(format!("{}:{}: {lit}", p.display(), n + 1));
                        }
                    }
                }
            }
        }
    }
    let mut bad = Vec::new();
    scan(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("crates"),
        &mut bad,
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The org's friendly name, once verify-sync has read it, is kept in the document and named by
/// every later target line and by the offline status.
#[test]
fn the_org_is_named_in_words_once_known() {
    let sim = sim();
    let state = finished_state(&sim);
    let s = state.to_str().unwrap();
    sim.run(
        "verify-sync",
        &["--state", s, "--settle", "0"],
        &Value::Null,
    )
    .ok();
    assert_eq!(read_doc(&state)["dynamics"]["org_name"], "Contoso");
    let r = sim.run("make-secret", &["--state", s], &Value::Null).ok();
    let org = sim.server.dynamics_url();
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(&format!("; org {} (Contoso);", org.trim_end_matches('/'))),
        "{first}"
    );
    let r = sim
        .run("verify-sync", &["--offline", "--state", s], &Value::Null)
        .ok();
    r.assert_stderr("(Contoso)");
    // Asked once: a later verify does not ask again.
    sim.clear();
    sim.run(
        "verify-sync",
        &["--state", s, "--settle", "0"],
        &Value::Null,
    )
    .ok();
    assert!(sim.requests().iter().all(|q| {
        !q["path"]
            .as_str()
            .unwrap()
            .contains("RetrieveCurrentOrganization")
    }));
}

/// preflight, the runbook's first step, learns the target in words (the tenant's default domain
/// and the org's friendly name) for a tenant given by its id, so the very next step's first line
/// already names both.
#[test]
fn preflight_learns_the_tenant_domain_and_org_name_for_the_next_steps() {
    let sim = sim();
    let state = sim.path("contoso.state.json");
    let s = state.to_str().unwrap();
    sim.run("preflight", &["--state", s], &Value::Null).ok();
    let doc = read_doc(&state);
    let domains = sim.graph_expect(200, "GET", "domains", None);
    let default = domains["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["isDefault"] == true)
        .expect("a default domain")["id"]
        .clone();
    assert_eq!(doc["tenant"]["domain"], default);
    assert_eq!(doc["dynamics"]["org_name"], "Contoso");
    let r = sim.run("register-app", &["--state", s], &Value::Null).ok();
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "register-app: target: tenant {} ({});",
            default.as_str().unwrap(),
            sim.server.tenant_id()
        )) && first.contains("(Contoso);"),
        "{}",
        r.stderr
    );
}

/// The target line is the first line even when the step says something before its first
/// request (add-sync-filter explains --default; publish-customizations says why it publishes).
#[test]
fn the_target_line_comes_before_anything_the_step_says() {
    let sim = sim();
    let state = finished_state(&sim);
    let s = state.to_str().unwrap();
    let r = sim
        .run(
            "add-sync-filter",
            &["--state", s, "--entity", "lead"],
            &Value::Null,
        )
        .ok();
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("add-sync-filter: target: "),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("target: ").count(), 1, "{}", r.stderr);
}
