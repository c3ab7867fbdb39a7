//! File-system targets the tools do not own: a secret file that is a symlink to a device is never
//! replaced, nor is a symlink to a regular file or to nothing (secret file, token cache), a secret path that is a FIFO, a device or holds a control character is refused before
//! any request, and the token cache never changes the mode of a folder it did not create.

use serde_json::json;

use crate::common::*;

#[test]
fn a_secret_file_that_is_a_symlink_to_a_device_is_never_replaced() {
    let sim = sim();
    let doc = registered(&sim);
    let link = sim.path("secret-link");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    let r = sim.run(
        "make-secret",
        &["--secret-file", link.to_str().unwrap()],
        &doc,
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    r.assert_stderr("not a regular file");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink was replaced by a file holding the secret"
    );
    // Whatever was added was removed again: no credential is left that nobody can use.
    let (_, app) = sim.graph(
        "GET",
        &format!("applications/{}", doc["app"]["object_id"].as_str().unwrap()),
        None,
    );
    assert_eq!(app["passwordCredentials"], json!([]), "{app}");
}

#[test]
fn a_secret_path_that_is_a_fifo_a_device_or_holds_a_control_character_is_refused_first() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let fifo = sim.path("secret.fifo");
    mkfifo(&fifo);
    for tool in ["make-secret", "verify-sync"] {
        for bad in [fifo.to_str().unwrap(), "/dev/stdout", "x\u{0}y", "x\ny"] {
            let mut d = doc.clone();
            d["secret"]["file"] = json!(bad);
            sim.clear();
            let r = sim.run(tool, &[], &d).code_is(2);
            assert!(
                r.stderr.contains("secret.file"),
                "{tool} {bad:?}: {}",
                r.stderr
            );
            sim.assert_no_requests();
        }
    }
}

#[test]
fn the_token_cache_never_chmods_a_directory_it_did_not_create() {
    use std::os::unix::fs::PermissionsExt;
    let sim = sim();
    let shared = sim.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = shared.join("tokens.json");
    seed_token_cache(&sim, &cache);
    let mut c = sim.cmd("register-app");
    c.env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env("MKTO_S2S_TOKEN_CACHE", &cache)
        .args(["--auth", "cache"]);
    Run::from_output(c.output().unwrap()).ok();
    assert_eq!(s2s_core::fsutil::mode_of(&shared).unwrap(), 0o755);
    assert_eq!(s2s_core::fsutil::mode_of(&cache).unwrap(), 0o600);
}

#[test]
fn a_secret_file_that_is_a_dangling_symlink_is_refused_before_any_request() {
    let sim = sim();
    let doc = registered(&sim);
    let link = sim.path("secret-link");
    let target = sim.path("not-yet.secret");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &["--secret-file", link.to_str().unwrap()],
            &doc,
        )
        .code_is(2);
    r.assert_stderr("symbolic link");
    sim.assert_no_requests();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink was replaced by a file holding the secret"
    );
    assert!(!target.exists());
}

#[test]
fn a_token_cache_that_is_a_symlink_is_never_replaced() {
    let sim = sim();
    let real = sim.path("real-tokens.json");
    seed_token_cache(&sim, &real);
    let before = std::fs::read(&real).unwrap();
    let link = sim.path("tokens.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut c = sim.cmd("register-app");
    c.env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env("MKTO_S2S_TOKEN_CACHE", &link)
        .args(["--auth", "cache"]);
    let r = Run::from_output(c.output().unwrap()).code_is(2);
    r.assert_stderr("symbolic link");
    sim.assert_no_writes();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the token cache link was replaced by a file"
    );
    assert_eq!(std::fs::read(&real).unwrap(), before);
}
