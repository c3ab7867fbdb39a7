//! Sign-in on Windows: the Azure CLI is `az.cmd` (Rust's `Command` applies no `PATHEXT`), and
//! the token cache lives under `%LOCALAPPDATA%\marketo-s2s` (there is no `HOME`), owner-only.

use test_support::*;

use crate::support::*;

/// A folder with a fake `az.cmd` that records its arguments and prints `answer` (stdout) or
/// fails with `error` (stderr, exit 1), as the Azure CLI does.
fn fake_az(sim: &Sim, answer: Option<&str>, error: Option<&str>) -> std::path::PathBuf {
    let bin = sim.path("az-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let args = sim.path("az-args.txt");
    let mut script = format!("@echo off\r\necho %* > \"{}\"\r\n", args.display());
    if let Some(a) = answer {
        let file = sim.path("az-answer.json");
        std::fs::write(&file, a).unwrap();
        script.push_str(&format!("type \"{}\"\r\n", file.display()));
    }
    if let Some(e) = error {
        script.push_str(&format!("echo {e} 1>&2\r\nexit /b 1\r\n"));
    }
    std::fs::write(bin.join("az.cmd"), script).unwrap();
    bin
}

fn az_cmd(sim: &Sim, tool: &str, bin: Option<&std::path::Path>) -> std::process::Command {
    let mut c = cmd(sim, tool);
    c.env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .args(["--auth", "az"]);
    if let Some(bin) = bin {
        c.env("PATH", format!("{};{}", bin.display(), system_path()));
    }
    c
}

#[test]
fn az_is_found_as_az_cmd_and_its_token_is_used() {
    let sim = sim();
    let token = sim.admin_token(&sim.url());
    let answer = format!(
        "{{\r\n  \"accessToken\": \"{token}\",\r\n  \"expiresOn\": \"2099-01-01 00:00:00.000000\",\r\n  \"tokenType\": \"Bearer\"\r\n}}\r\n"
    );
    let bin = fake_az(&sim, Some(&answer), None);
    let r = run(az_cmd(&sim, "register-app", Some(&bin)), None).ok();
    assert!(r.doc["app"]["client_id"].is_string(), "{}", r.stdout);
    let args = std::fs::read_to_string(sim.path("az-args.txt")).unwrap();
    assert!(
        args.contains("account get-access-token --output json --scope")
            && args.contains(&format!("--tenant {}", sim.server.tenant_id())),
        "{args}"
    );
    assert!(!r.all_output().contains(&token), "the token was printed");
}

#[test]
fn an_az_cmd_error_reads_as_on_unix() {
    let sim = sim();
    let bin = fake_az(
        &sim,
        None,
        Some("ERROR: Please run 'az login' to setup account."),
    );
    let r = run(az_cmd(&sim, "register-app", Some(&bin)), None).code_is(3);
    r.assert_stderr(
        "the Azure CLI could not get a token: ERROR: Please run 'az login' to setup account.\n",
    );
    r.assert_stderr("az login --tenant");
    assert!(
        !r.stderr.contains("\\r"),
        "a CR of cmd.exe's line end is shown: {}",
        r.stderr
    );
    assert_eq!(sim.api_requests(), 0);
}

#[test]
fn no_az_anywhere_on_path_is_said_so() {
    let sim = sim();
    let r = run(az_cmd(&sim, "register-app", None), None).code_is(3);
    r.assert_stderr("the Azure CLI (az) is not on PATH");
}

#[test]
fn the_token_cache_lives_under_localappdata_and_is_owner_only() {
    let sim = sim();
    let dir = sim.path("AppData").join("Local").join("marketo-s2s");
    std::fs::create_dir_all(&dir).unwrap();
    let cache = dir.join("tokens.json");
    let (refresh, _) = seed_token_cache(&sim, &cache);
    let mut c = cmd(&sim, "register-app");
    c.env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env("HOME", sim.path("not-here"))
        .args(["--auth", "cache"]);
    let r = run(c, None).ok();
    assert!(r.doc["app"]["client_id"].is_string());
    // The refresh rotated the cached token: the file was rewritten, owner-only.
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(
        text.contains("refresh_token") && !text.contains(&refresh),
        "{text}"
    );
    assert_owner_only(&cache);
    assert_plain_file_is_not_owner_only(&dir);
    assert!(!sim.path("not-here").exists());
}
