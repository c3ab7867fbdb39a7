//! stdin as PowerShell and cmd.exe hand it over: a UTF-8 byte order mark and CRLF line ends
//! are accepted; `< NUL` starts from nothing as `< /dev/null` does on Unix, while an empty pipe
//! (a failed previous step) is still refused.

use test_support::*;

use crate::support::*;

#[test]
fn a_document_with_a_bom_and_crlf_line_ends_is_read() {
    let sim = sim();
    let r = run(cmd(&sim, "register-app"), None).ok();
    // PowerShell with $OutputEncoding = [Text.Encoding]::UTF8 writes a BOM, and CRLF lines.
    let pretty = serde_json::to_string_pretty(&r.doc)
        .unwrap()
        .replace('\n', "\r\n");
    let bytes = [&b"\xEF\xBB\xBF"[..], pretty.as_bytes(), b"\r\n"].concat();
    let r2 = run(cmd(&sim, "grant-consent"), Some(&bytes)).ok();
    assert_eq!(r2.doc["app"], r.doc["app"]);
    assert!(r2.doc["consent"]["grant_id"].is_string(), "{}", r2.stdout);
}

#[test]
fn nul_is_no_document_and_an_empty_pipe_is_a_failed_step() {
    let sim = sim();
    // < NUL: the explicit "start from nothing"; grant-consent then misses its input key.
    let r = run(cmd(&sim, "grant-consent"), None).code_is(2);
    r.assert_stderr("app.service_principal_id");
    assert!(!r.stderr.contains("produced no document"), "{}", r.stderr);
    // An empty pipe: the previous step failed.
    let r = run(cmd(&sim, "grant-consent"), Some(b"")).code_is(2);
    r.assert_stderr("the previous step produced no document");
    assert_eq!(sim.api_requests(), 0);
}
