//! The state and secret files on Windows: owner-only DACLs (the Windows form of 0600), a
//! too-open secret file, atomic replace while another program holds the file open, the
//! `--state` lock between two processes, and a `secret.file` the document recorded on Linux.

use std::fs::OpenOptions;
use std::os::windows::fs::OpenOptionsExt;
use std::time::Duration;

use test_support::*;

use crate::support::*;

/// `FILE_SHARE_READ` alone: what an editor or viewer that keeps a file open asks for, so
/// nobody may delete or replace it meanwhile.
const FILE_SHARE_READ: u32 = 1;

#[test]
fn the_state_and_secret_files_get_an_owner_only_dacl() {
    let sim = sim();
    let state = sim.path("contoso.state.json");
    let secret = sim.path("contoso.secret");
    setup_to_secret(&sim, &state, &secret);
    assert_owner_only(&state);
    assert_owner_only(&secret);
    assert_plain_file_is_not_owner_only(sim.dir());
}

#[test]
fn a_secret_file_others_can_open_is_not_private() {
    let sim = sim();
    let p = sim.path("x.secret");
    std::fs::write(&p, "s3cr3t-value-of-forty-characters-long-xx").unwrap();
    let me = s2s_core::win::current_user_sid().unwrap();
    for (who, sddl) in [
        ("Everyone", format!("D:P(A;;FA;;;{me})(A;;FR;;;WD)")),
        ("Users", format!("D:P(A;;FA;;;{me})(A;;FR;;;BU)")),
        (
            "Authenticated Users",
            format!("D:(A;;FA;;;{me})(A;;FR;;;AU)"),
        ),
    ] {
        s2s_core::win::set_dacl(&p, &sddl).unwrap();
        let why = s2s_core::fsutil::check_private(&p).unwrap_err();
        // Wine keeps only mode bits: any group it shows as Everyone.
        let shown = if under_wine() { "Everyone" } else { who };
        assert!(why.contains(shown), "{sddl}: {why}");
    }
    // SYSTEM and Administrators can read any file, as root can on Unix: still private. (Wine
    // shows any group as Everyone, so this holds on Windows only.)
    if !under_wine() {
        let sddl = format!("D:P(A;;FA;;;{me})(A;;FA;;;SY)(A;;FA;;;BA)");
        s2s_core::win::set_dacl(&p, &sddl).unwrap();
        assert_eq!(s2s_core::fsutil::check_private(&p), Ok(()));
    }
    // Made private again. Wine cannot show this: a DACL set on an existing file never takes
    // mode bits away there (Wine chmods only when the owner's bits change).
    if !under_wine() {
        s2s_core::fsutil::make_private(&p).unwrap();
        assert_owner_only(&p);
    }
}

#[test]
fn verify_sync_fails_a_secret_file_everyone_can_read() {
    let sim = sim();
    let state = sim.path("contoso.state.json");
    let secret = sim.path("contoso.secret");
    setup_to_secret(&sim, &state, &secret);
    for tool in [
        "set-hrd-policy",
        "assign-role",
        "configure-marketo",
        "publish-customizations",
    ] {
        on_state(&sim, tool, &state, &[]).ok();
    }
    on_state(&sim, "verify-sync", &state, &[]).ok();
    let me = s2s_core::win::current_user_sid().unwrap();
    s2s_core::win::set_dacl(&secret, &format!("D:P(A;;FA;;;{me})(A;;FR;;;WD)")).unwrap();
    // --settle 0: right after a setup verify-sync re-checks a failing item for a minute.
    let r = on_state(&sim, "verify-sync", &state, &["--settle", "0"]).code_is(6);
    r.assert_stderr("Everyone");
    let checks = doc(&state)["verify"]["checks"].clone();
    let failing: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(failing, ["secret"], "{checks:#}");
}

#[test]
fn a_state_file_another_program_holds_open_is_left_whole_with_a_clear_error() {
    let sim = sim();
    let state = sim.path("contoso.state.json");
    std::fs::write(&state, "{}\r\n").unwrap();
    let held = OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ)
        .open(&state)
        .unwrap();
    let r = on_state(&sim, "register-app", &state, &[]).code_is(1);
    r.assert_stderr("another program has it open");
    r.assert_stderr("contoso.state.json");
    // What the run created is not forgotten: the document went to stdout instead.
    r.assert_stderr("written to stdout instead");
    let setup_id = r.doc["setup"]["id"]
        .as_str()
        .expect("setup.id on stdout")
        .to_string();
    assert!(r.doc["app"]["client_id"].is_string(), "{}", r.stdout);
    drop(held);
    assert_eq!(std::fs::read(&state).unwrap(), b"{}\r\n");
    let mut left: Vec<String> = std::fs::read_dir(sim.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    left.sort();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    // Closed in the other program, a re-run with the rescued setup id finishes the job: one
    // application, not two.
    on_state(&sim, "register-app", &state, &["--setup-id", &setup_id]).ok();
    assert_eq!(doc(&state)["steps"]["register-app"]["changed"], false);
    assert_eq!(sim.applications().len(), 1);
}

#[test]
fn a_secret_file_another_program_holds_open_keeps_the_old_secret_and_no_new_credential() {
    let sim = sim();
    let state = sim.path("contoso.state.json");
    let secret = sim.path("contoso.secret");
    setup_to_secret(&sim, &state, &secret);
    let before = std::fs::read(&secret).unwrap();
    let object_id = doc(&state)["app"]["object_id"]
        .as_str()
        .unwrap()
        .to_string();
    let held = OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ)
        .open(&secret)
        .unwrap();
    let r = on_state(&sim, "make-secret", &state, &["--rotate"]).code_is(1);
    r.assert_stderr("another program has it open");
    drop(held);
    assert_eq!(std::fs::read(&secret).unwrap(), before);
    assert!(
        !r.all_output()
            .contains(String::from_utf8_lossy(&before).trim())
    );
    let (_, app) = sim.graph("GET", &format!("applications/{object_id}"), None);
    let creds = app["passwordCredentials"].as_array().unwrap();
    assert_eq!(
        creds.len(),
        1,
        "the new credential was not removed again: {app}"
    );
    assert_eq!(
        creds[0]["keyId"],
        doc(&state)["secret"]["key_id"],
        "the document no longer names the live secret"
    );
}

#[test]
fn a_second_process_on_a_locked_state_file_waits_then_exits_5() {
    let sim = sim();
    let state = sim.path("contoso.state.json");
    on_state(&sim, "register-app", &state, &[]).ok();
    let before = std::fs::read(&state).unwrap();
    let quiet = s2s_core::output::Reporter::new("test", true, 0);
    let lock = s2s_core::statefile::StateLock::acquire(&state, Duration::ZERO, &quiet).unwrap();
    sim.clear();
    let t0 = std::time::Instant::now();
    let r = on_state(&sim, "grant-consent", &state, &["--timeout", "2s"]).code_is(5);
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
    r.assert_stderr("another marketo-s2s tool is still working");
    assert_eq!(sim.api_requests(), 0, "{:#?}", sim.requests());
    assert_eq!(std::fs::read(&state).unwrap(), before);
    drop(lock);
    on_state(&sim, "grant-consent", &state, &[]).ok();
}

#[test]
fn a_secret_file_recorded_on_linux_beside_the_state_file_is_found_here() {
    let sim = sim();
    let state = sim.path("contoso.state.json");
    let secret = sim.path("contoso.secret");
    setup_to_secret(&sim, &state, &secret);
    // The folder was set up on Linux and copied here: the document names the Linux path.
    let mut d = doc(&state);
    d["secret"]["file"] = "/home/admin/customers/contoso/contoso.secret".into();
    std::fs::write(&state, d.to_string()).unwrap();
    sim.clear();
    on_state(&sim, "make-secret", &state, &[]).ok();
    sim.assert_no_writes();
    assert_eq!(doc(&state)["secret"]["file"], "contoso.secret");
    assert_eq!(doc(&state)["steps"]["make-secret"]["changed"], false);
}
