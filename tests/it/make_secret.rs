//! make-secret: the value lands only in a 0600 file and is the real secret; re-runs (two
//! pipeline runs from nothing leave one credential), renewal, rotation, rollback when the file
//! cannot be written, tenant lifetime policy, dry run, faults.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

/// `registered`, with the setup id every new setup has.
pub(crate) fn registered_setup(sim: &Sim) -> Value {
    with_setup_id(registered(sim))
}

pub(crate) fn key_ids(sim: &Sim, doc: &Value) -> Vec<String> {
    credentials(sim, doc)
        .iter()
        .filter_map(|c| c["keyId"].as_str().map(str::to_string))
        .collect()
}

pub(crate) fn secret_file(doc: &Value) -> std::path::PathBuf {
    std::path::PathBuf::from(doc["secret"]["file"].as_str().expect("secret.file"))
}

/// The secret saved in the document's `secret.file` signs the app in (the emulator's token
/// endpoint accepts it); returns it.
#[track_caller]
pub(crate) fn assert_saved_secret_works(sim: &Sim, doc: &Value) -> String {
    let value = std::fs::read_to_string(secret_file(doc)).expect("secret file");
    let (status, token) = sim.token_for(&client_id(doc), &value, &sim.url());
    assert_eq!(status, 200, "{token}");
    value
}

#[test]
fn saves_a_working_secret_to_a_0600_file_and_nowhere_else() {
    let sim = sim();
    let doc = registered_setup(&sim);
    sim.clear();
    let r = sim.run("make-secret", &["-vv"], &doc).ok();
    assert!(r.changed("make-secret"));

    // The default file is in the current directory, named after the client id, mode 0600.
    let file = secret_file(&r.doc);
    assert_eq!(
        file,
        sim.path(&format!("marketo-s2s-{}.secret", client_id(&doc)))
    );
    assert_eq!(s2s_core::fsutil::mode_of(&file).expect("mode"), 0o600);
    let value = std::fs::read_to_string(&file).expect("secret file");
    assert!(value.len() >= 16, "a real secret");

    // The value is in no output and not in the document; the document holds its key id and hint.
    assert!(
        !r.stdout.contains(&value) && !r.stderr.contains(&value),
        "secret leaked"
    );
    assert!(
        r.stderr.contains("make-secret:"),
        "-vv traces are on stderr: {}",
        r.stderr
    );
    assert!(r.doc["secret"]["value"].is_null());
    let creds = credentials(&sim, &doc);
    assert_eq!(creds.len(), 1, "{creds:#?}");
    assert_eq!(r.doc["secret"]["key_id"], creds[0]["keyId"]);
    assert_eq!(r.doc["secret"]["hint"], json!(&value[..3]));
    assert_eq!(r.doc["secret"]["expires_at"], creds[0]["endDateTime"]);
    let name = creds[0]["displayName"].as_str().unwrap_or_default();
    // The setup's mark comes before the run tag: `… [setup 1a2b3c4d] [run 3fa9c2d1]`.
    let mark = format!("[setup {}]", &doc["setup"]["id"].as_str().unwrap()[..8]);
    assert!(
        name.starts_with("marketo-s2s make-secret 20")
            && name.contains(&format!("{mark} [run "))
            && name.ends_with(']'),
        "{name}"
    );
    // The document keeps the saved value's SHA-256, never the value.
    assert_eq!(
        r.doc["secret"]["sha256"],
        json!(s2s_core::fsutil::secret_sha256(
            &secrecy::SecretString::from(value.clone())
        ))
    );
    assert_eq!(r.doc["secret"]["lifetime"], "24mo");
    assert!(
        r.stderr
            .contains("make-secret: no secret recorded in the document: added client secret"),
        "{}",
        r.stderr
    );
    // Default lifetime: 24 months.
    let expires = creds[0]["endDateTime"].as_str().unwrap_or_default();
    let year_now: i32 = r.doc["steps"]["make-secret"]["at"]
        .as_str()
        .unwrap_or_default()[..4]
        .parse()
        .unwrap_or(0);
    assert_eq!(
        expires[..4].parse::<i32>().unwrap_or(0),
        year_now + 2,
        "{expires}"
    );

    // It is the real secret: the emulator's token endpoint accepts it for the app.
    let (status, token) = sim.token_for(&client_id(&doc), &value, &sim.url());
    assert_eq!(status, 200, "{token}");

    // The same document piped back: nothing written, nothing changed, and it says why.
    sim.clear();
    let again = sim.run("make-secret", &[], &r.doc).ok();
    sim.assert_no_writes();
    assert!(!again.changed("make-secret"));
    assert_eq!(again.doc["secret"], r.doc["secret"]);
    assert!(
        again.stderr.contains("is on the app, saved in"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).expect("file"), value);
}

#[test]
fn reveal_puts_the_value_in_the_document() {
    let sim = sim();
    let doc = registered(&sim);
    let r = sim
        .run(
            "make-secret",
            &["--reveal", "--secret-file", "s.secret"],
            &doc,
        )
        .ok();
    let value = std::fs::read_to_string(sim.path("s.secret")).expect("file");
    assert_eq!(r.doc["secret"]["value"], json!(value));
    assert!(!r.stderr.contains(&value));

    // A re-run with --reveal reveals the saved value again, without writing.
    let mut doc2 = r.doc.clone();
    doc2["secret"]
        .as_object_mut()
        .expect("secret")
        .remove("value");
    sim.clear();
    let again = sim.run("make-secret", &["--reveal"], &doc2).ok();
    sim.assert_no_writes();
    assert_eq!(again.doc["secret"]["value"], json!(value));
}

#[test]
fn an_unwritable_secret_file_rolls_the_credential_back() {
    let sim = sim();
    let doc = registered(&sim);
    // A name the file system takes but whose temporary sibling (`.<name>.tmp-…`) is too long:
    // every check before the add passes, and the write itself fails.
    let bad = sim.path(&"s".repeat(250));
    let r = sim
        .run(
            "make-secret",
            &["--secret-file", bad.to_str().expect("utf-8")],
            &doc,
        )
        .code_is(1);
    assert!(
        r.stderr
            .contains("make-secret: error: cannot write the secret to"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("was removed again"), "{}", r.stderr);
    assert!(
        credentials(&sim, &doc).is_empty(),
        "{:#?}",
        credentials(&sim, &doc)
    );
    let writes: Vec<String> = sim
        .writes()
        .iter()
        .map(|w| w["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        writes.iter().any(|p| p.ends_with("/addPassword"))
            && writes.iter().any(|p| p.ends_with("/removePassword")),
        "{writes:?}"
    );
    // The document goes on down the pipeline, with the error and without a secret it does not hold.
    assert_eq!(r.doc["steps"]["make-secret"]["error"]["handed_on"], true);
    assert_eq!(r.doc["app"], doc["app"]);
    assert!(r.doc["secret"]["key_id"].is_null(), "{}", r.stdout);
}

/// A `--secret-file` in a folder that does not exist is found before addPassword (which would
/// then be rolled back): exit 2, not a single request.
#[test]
fn a_secret_file_in_a_missing_folder_is_exit_2_with_no_request() {
    let sim = sim();
    let doc = registered(&sim);
    let state = sim.path("st.json");
    std::fs::write(&state, doc.to_string()).unwrap();
    let before = std::fs::read(&state).unwrap();
    for args in [
        vec!["--secret-file", "no-such-dir/s.secret"],
        vec!["--secret-file", "no-such-dir/s.secret", "--rotate"],
        vec![
            "--secret-file",
            "no-such-dir/s.secret",
            "--state",
            state.to_str().unwrap(),
        ],
    ] {
        sim.clear();
        let r = sim.run("make-secret", &args, &doc).code_is(2);
        r.assert_stderr("no-such-dir")
            .assert_stderr("does not exist")
            .assert_stderr("make-secret: hint:");
        sim.assert_no_requests();
    }
    assert!(credentials(&sim, &doc).is_empty());
    assert_eq!(std::fs::read(&state).unwrap(), before);
}

#[test]
fn a_short_lived_secret_is_renewed_and_old_ones_are_reported_then_revoked() {
    let sim = sim();
    let doc = registered_setup(&sim);
    let mark = format!("[setup {}]", &doc["setup"]["id"].as_str().unwrap()[..8]);
    let first = sim.run("make-secret", &["--expires-in", "10d"], &doc).ok();
    assert!(
        first
            .stderr
            .contains("warning: --expires-in 10d is not longer than --min-validity 30d"),
        "{}",
        first.stderr
    );
    let old_key = first.doc["secret"]["key_id"]
        .as_str()
        .expect("key")
        .to_string();

    // A secret some killed run of this setup added and never saved, and one made in the portal.
    let object_id = doc["app"]["object_id"].as_str().expect("object id");
    let killed = sim.graph_expect(
        200,
        "POST",
        &format!("applications/{object_id}/addPassword"),
        Some(
            json!({"passwordCredential": {"displayName": format!("killed {mark} [run 0badc0de]")}}),
        ),
    )["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    let portal = sim.graph_expect(
        200,
        "POST",
        &format!("applications/{object_id}/addPassword"),
        Some(json!({"passwordCredential": {"displayName": "portal"}})),
    )["keyId"]
        .as_str()
        .unwrap()
        .to_string();

    sim.clear();
    let second = sim
        .run("make-secret", &["--expires-in", "24mo"], &first.doc)
        .ok();
    assert!(second.changed("make-secret"));
    let new_key = second.doc["secret"]["key_id"]
        .as_str()
        .expect("key")
        .to_string();
    assert_ne!(new_key, old_key);
    assert!(
        second.stderr.contains("within --min-validity"),
        "{}",
        second.stderr
    );
    assert_eq!(first.doc["secret"]["lifetime"], "10d");
    assert_eq!(second.doc["secret"]["lifetime"], "24mo");
    // The expiring one may still be in Marketo: it is the previous secret now.
    assert_eq!(second.doc["secret"]["previous_key_id"], json!(old_key));
    // Nothing removed without --revoke-others, but every other is listed with the way out.
    assert_eq!(key_ids(&sim, &doc).len(), 4);
    for k in [&old_key, &killed, &portal] {
        second.assert_stderr(k);
    }
    second.assert_stderr("make-secret --retire-old --yes");
    assert!(sim.writes().iter().all(|w| {
        w["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/addPassword")
    }));
    let value = std::fs::read_to_string(secret_file(&second.doc)).expect("file");
    assert_eq!(second.doc["secret"]["hint"], json!(&value[..3]));

    // --revoke-others removes this setup's others; the portal's secret is kept and named.
    sim.clear();
    let third = sim
        .run("make-secret", &["--revoke-others", "--yes"], &second.doc)
        .ok();

    let mut left = key_ids(&sim, &doc);
    left.sort();
    let mut want = vec![new_key.clone(), portal.clone()];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(third.doc["secret"]["key_id"], json!(new_key));
    assert!(third.doc["secret"]["previous_key_id"].is_null());
    third
        .assert_stderr(&format!("revoked credential {old_key}"))
        .assert_stderr(&format!("revoked credential {killed}"))
        .assert_stderr(&format!("kept credential {portal}"))
        .assert_stderr(&format!("--retire {portal} --yes"));
    assert!(sim.writes().iter().all(|w| {
        w["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/removePassword")
    }));
    let (status, _) = sim.token_for(&client_id(&doc), &value, &sim.url());
    assert_eq!(status, 200, "the kept secret still works");

    // Named on the command line, the portal's secret goes too.
    sim.run("make-secret", &["--retire", &portal, "--yes"], &third.doc)
        .ok()
        .assert_stderr(&format!("retired credential {portal}"));
    assert_eq!(key_ids(&sim, &doc), vec![new_key]);
}

/// The refusal quotes the tenant policy's own maximum (here 100 days, so a
/// fixed "180d" would fail again) in a command that carries --state and works when pasted, and
/// the lifetime is kept in the document so --rotate uses it instead of failing on 24 months.
#[test]
fn a_tenant_lifetime_policy_refusal_quotes_the_policy_and_rotate_reuses_the_lifetime() {
    let sim = sim_with(Options {
        max_secret_days: Some(100),
        ..Default::default()
    });
    let state = sim.path("st.json");
    let s = state.to_str().unwrap();
    std::fs::write(&state, registered(&sim).to_string()).unwrap();
    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--timeout", "50s"],
            &Value::Null,
        )
        .code_is(4);
    r.assert_stderr("CredentialInvalidLifetimeAsPerAppPolicy")
        .assert_stderr("at most 100d (passwordLifetime P100D)");
    assert!(!r.stderr.contains("180d"), "{}", r.stderr);
    let doc: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert!(credentials(&sim, &doc).is_empty());
    assert!(
        doc["secret"]["pending"].is_null(),
        "a refused add leaves no journal"
    );

    // The hint's command, pasted as it is.
    let hint = r
        .stderr
        .lines()
        .find(|l| l.starts_with("make-secret: hint:"))
        .unwrap();
    let cmd = &hint[hint.find(": run ").unwrap() + 6..];
    // It carries --state and the flags of the run that printed it.
    assert_eq!(
        cmd,
        format!("make-secret --state {s} --timeout 50s --expires-in 100d")
    );
    let words: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    sim.run("make-secret", &words, &Value::Null).ok();
    let doc: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(credentials(&sim, &doc).len(), 1);
    assert_eq!(doc["secret"]["lifetime"], "100d");
    assert!(sim.path(doc["secret"]["file"].as_str().unwrap()).exists());

    // --rotate without --expires-in makes the next secret with the same lifetime.
    sim.run("make-secret", &["--state", s, "--rotate"], &Value::Null)
        .ok();
    let rotated: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_ne!(rotated["secret"]["key_id"], doc["secret"]["key_id"]);
    assert_eq!(rotated["secret"]["lifetime"], "100d");
    assert_eq!(credentials(&sim, &doc).len(), 2);
}

#[test]
fn dry_run_lists_the_plan_and_writes_nothing() {
    let sim = sim();
    let doc = registered(&sim);
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &["--dry-run", "--display-name", "Planned"],
            &doc,
        )
        .ok();
    sim.assert_no_writes();
    let plan = r.doc["plan"].as_array().expect("plan");
    assert_eq!(plan.len(), 1, "{plan:#?}");
    assert_eq!(plan[0]["method"], "POST");
    assert!(
        plan[0]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/addPassword")
    );
    let name = plan[0]["body"]["passwordCredential"]["displayName"]
        .as_str()
        .unwrap_or_default();
    // register-app gave the document its setup id: the name carries the setup's mark, then
    // the run tag.
    let setup = s2s_core::setup::SetupId::parse(doc["setup"]["id"].as_str().unwrap()).unwrap();
    assert!(
        name.starts_with(&format!("Planned {} [run ", setup.name_mark())),
        "{name}"
    );
    assert!(r.doc["secret"].is_null());
    assert!(credentials(&sim, &doc).is_empty());
    assert!(
        !sim.path(&format!("marketo-s2s-{}.secret", client_id(&doc)))
            .exists()
    );
    assert!(r.stderr.contains("would add client secret"), "{}", r.stderr);
}

#[test]
fn throttling_and_unavailability_are_retried() {
    let sim = sim();
    let doc = registered(&sim);
    sim.server.add_fault(json!({"path_prefix": "/v1.0/applications", "method": "POST", "status": 429, "retry_after": "0.2", "count": 1}));
    sim.server.add_fault(
        json!({"path_prefix": "/v1.0/applications", "method": "POST", "status": 503, "count": 1}),
    );
    sim.clear();
    let r = sim.run("make-secret", &[], &doc).ok();
    let statuses: Vec<Value> = sim.requests().iter().map(|r| r["status"].clone()).collect();
    assert!(
        statuses.contains(&json!(429)) && statuses.contains(&json!(503)),
        "{statuses:?}"
    );
    assert_eq!(credentials(&sim, &doc).len(), 1);
    assert_saved_secret_works(&sim, &r.doc);
}

#[test]
fn a_lost_answer_on_add_password_leaves_exactly_one_working_credential() {
    let sim = sim();
    let doc = registered(&sim);
    sim.server.add_fault(
        json!({"path_prefix": "/v1.0/applications", "method": "POST", "kind": "lost_response"}),
    );
    let r = sim.run("make-secret", &[], &doc).ok();
    let creds = credentials(&sim, &doc);
    assert_eq!(creds.len(), 1, "{creds:#?}");
    assert_eq!(r.doc["secret"]["key_id"], creds[0]["keyId"]);
    assert!(r.stderr.contains("its answer was lost"), "{}", r.stderr);
    assert_saved_secret_works(&sim, &r.doc);
}

#[test]
fn bad_input_exits_2_before_any_request() {
    let sim = sim();
    std::fs::create_dir(sim.path("a-dir")).expect("mkdir");
    sim.clear();
    sim.assert_needs("make-secret", "--object-id", "app.object_id");
    let app = json!({"app": {"object_id": "11111111-1111-1111-1111-111111111111"}});
    for args in [
        vec!["--expires-in", "0d"],
        vec!["--expires-in", "forever"],
        vec!["--min-validity", "3x"],
        vec!["--display-name", " "],
        vec!["--secret-file", "a-dir"],
        vec!["--object-id", "nope"],
    ] {
        let r = sim.run("make-secret", &args, &app);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    sim.run("make-secret", &[], &json!({"app": {"object_id": 5}}))
        .code_is(2);
    sim.run("make-secret", &[], &json!({"app": {"object_id": "11111111-1111-1111-1111-111111111111"}, "secret": {"key_id": "x"}}))
        .code_is(2);
    sim.assert_no_requests();
}

/// A mistyped `--secret-file` on a finished setup: the live secret is saved in the document's
/// `secret.file`, the given file does not exist. Recording the missing path (with "nothing to
/// change") would send verify-sync and teardown to a file with no secret, so it is exit 2 before
/// any write, naming the file that holds the secret and how to move it. Following the hint
/// works, and --rotate still makes a new secret in the new file.
#[test]
fn a_mistyped_secret_file_is_refused_naming_the_file_that_holds_the_live_secret() {
    let sim = sim();
    let state = sim.path("st.json");
    let s = state.to_str().unwrap();
    for tool in ["register-app", "grant-consent", "make-secret"] {
        sim.run(tool, &["--state", s], &Value::Null).ok();
    }
    let before = std::fs::read(&state).unwrap();
    let doc: Value = serde_json::from_slice(&before).unwrap();
    let old_name = doc["secret"]["file"].as_str().unwrap().to_string();
    assert!(old_name.starts_with("marketo-s2s-"), "{old_name}");
    let old = sim.path(&old_name);
    sim.clear();

    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--secret-file", "./Marketo.secret"],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr("--secret-file ./Marketo.secret does not exist")
        .assert_stderr(&old.display().to_string())
        .assert_stderr(doc["secret"]["key_id"].as_str().unwrap())
        .assert_stderr(&format!(
            "mv {} ./Marketo.secret && make-secret --state {s} --secret-file ./Marketo.secret;",
            old.display()
        ))
        .assert_stderr(&format!(
            "make-secret --state {s} --secret-file ./Marketo.secret --rotate"
        ));
    assert!(!r.stderr.contains("nothing to change"), "{}", r.stderr);
    sim.assert_no_writes();
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "the state file is untouched"
    );
    assert!(!sim.path("Marketo.secret").exists());
    assert!(old.is_file());

    // The hint's way: move the file, then name it. The same credential, nothing added.
    std::fs::rename(&old, sim.path("Marketo.secret")).unwrap();
    sim.clear();
    sim.run(
        "make-secret",
        &["--state", s, "--secret-file", "./Marketo.secret"],
        &Value::Null,
    )
    .ok()
    .assert_stderr("nothing to change");
    sim.assert_no_writes();
    let moved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(moved["secret"]["file"], "Marketo.secret");
    assert_eq!(moved["secret"]["key_id"], doc["secret"]["key_id"]);
    assert_saved_secret_works(&sim, &{
        let mut d = moved.clone();
        d["secret"]["file"] = json!(sim.path("Marketo.secret").to_str().unwrap());
        d
    });

    // --rotate into a file that does not exist yet makes a new secret there.
    sim.clear();
    sim.run(
        "make-secret",
        &["--state", s, "--secret-file", "new.secret", "--rotate"],
        &Value::Null,
    )
    .ok();
    let rotated: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(rotated["secret"]["file"], "new.secret");
    assert_eq!(
        rotated["secret"]["previous_key_id"],
        doc["secret"]["key_id"]
    );
    assert_eq!(credentials(&sim, &rotated).len(), 2);
}

/// Without the right to read the tenant's policy, the refusal still says what to do, and names
/// no made-up maximum.
#[test]
fn a_lifetime_refusal_without_the_policy_readable_says_where_the_maximum_is() {
    let sim = sim_with(Options {
        max_secret_days: Some(100),
        admin_permissions: vec!["Application.ReadWrite.All".into()],
        ..Default::default()
    });
    let doc = registered(&sim);
    let r = sim.run("make-secret", &[], &doc).code_is(4);
    r.assert_stderr("its maximum could not be read with this sign-in")
        .assert_stderr("preflight");
    assert!(!r.stderr.contains("180d"), "{}", r.stderr);
    assert!(credentials(&sim, &doc).is_empty());
}

#[test]
fn two_pipeline_runs_from_nothing_leave_one_credential() {
    let sim = sim();
    // The one-line pipeline without --state: the secret file defaults to the current folder.
    // The second run says which connection it is (`--setup-id`): a run from nothing that does
    // not is a new connection, and stops at the first one's app.
    let pipeline = |sim: &Sim, register: &[&str]| {
        let mut doc = Value::Null;
        for tool in ["register-app", "grant-consent", "make-secret"] {
            let args = if tool == "register-app" {
                register
            } else {
                &[]
            };
            doc = sim.run(tool, args, &doc).ok().doc;
        }
        doc
    };
    let first = pipeline(&sim, &[]);
    sim.clear();
    let setup = first["setup"]["id"].as_str().unwrap().to_string();
    let second = pipeline(&sim, &["--setup-id", &setup]);
    assert_eq!(credentials(&sim, &second).len(), 1);
    assert_eq!(first["secret"]["key_id"], second["secret"]["key_id"]);
    sim.assert_no_writes();
    // Deleting the file after pasting it into Marketo: a warning, no new secret, no publish.
    std::fs::remove_file(second["secret"]["file"].as_str().unwrap()).unwrap();
    sim.clear();
    let r = sim.run("make-secret", &[], &second).ok();
    r.assert_stderr("is missing").assert_stderr("--rotate");
    sim.assert_no_writes();
    assert_eq!(r.doc["secret"]["key_id"], second["secret"]["key_id"]);
}
