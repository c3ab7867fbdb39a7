//! The README's first command, `scripts/demo.sh`, must keep working: it is run here as a user
//! would run it — starting tenant-sim, running the runbook twice, stopping it — on the binaries
//! this test run built (`MKTO_S2S_DEMO_BIN`), because a `cargo build` inside `cargo test` would
//! rebuild and replace them while other tests run them.

use std::path::Path;

use crate::common::Run;

#[test]
fn the_demo_script_passes_and_prints_the_step_3_block() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = assert_cmd::Command::new("bash");
    c.arg(root.join("scripts/demo.sh"))
        .current_dir(root)
        .env(
            "MKTO_S2S_DEMO_BIN",
            Path::new(env!("CARGO_BIN_EXE_register-app"))
                .parent()
                .unwrap(),
        )
        // The developer's own Azure settings must not leak into the demo.
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env_remove("AZURE_AUTHORITY_HOST")
        .env_remove("MKTO_S2S_GRAPH_URL")
        .env_remove("MKTO_S2S_DYNAMICS_URL")
        .timeout(std::time::Duration::from_secs(600));
    let r = Run::from_output(c.output().unwrap()).ok();
    assert!(r.stderr.contains("Marketo step 3"), "{}", r.stderr);
    assert!(
        r.stderr.contains("the second run wrote nothing"),
        "{}",
        r.stderr
    );
    let client_line = r
        .stderr
        .lines()
        .find(|l| l.contains("Client ID    :"))
        .expect("client id line");
    let id = client_line.rsplit(' ').next().unwrap();
    assert!(
        s2s_core::guid::parse(id).is_ok(),
        "not a GUID: {client_line}"
    );
}
