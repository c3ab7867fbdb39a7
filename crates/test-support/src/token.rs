//! The emulator's token endpoint, as a test calls it: client credentials, the admin's token,
//! the device-code flow a person completes in a browser.

use tenant_sim::TestServer;

use crate::http::{self, Response};

/// The Azure CLI's public client id, the tools' default for device-code sign-in.
pub const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// The device-code grant type (RFC 8628).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /<tenant>/oauth2/v2.0/<endpoint>` (`token`, `devicecode`) with a form body; panics
/// when no answer comes.
pub fn login(server: &TestServer, endpoint: &str, pairs: &[(&str, &str)]) -> Response {
    try_login(server, endpoint, pairs).expect("an answer from the token endpoint")
}

/// [`login`], with a connection that closed without an answer (a dropped or lost one, as the
/// emulator's faults make them) as an `Err`.
pub fn try_login(
    server: &TestServer,
    endpoint: &str,
    pairs: &[(&str, &str)],
) -> Result<Response, String> {
    let url = format!(
        "{}/{}/oauth2/v2.0/{endpoint}",
        server.url(),
        server.tenant_id()
    );
    http::send(
        "POST",
        &url,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(http::form(pairs).as_bytes()),
    )
}

/// A client-credentials token request for `resource` (the Graph URL or the Dynamics URL).
pub fn client_credentials(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    resource: &str,
) -> Response {
    try_client_credentials(server, client_id, secret, resource)
        .expect("an answer from the token endpoint")
}

/// [`client_credentials`], with a connection that closed without an answer as an `Err`.
pub fn try_client_credentials(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    resource: &str,
) -> Result<Response, String> {
    try_login(
        server,
        "token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", &format!("{resource}/.default")),
        ],
    )
}

/// The emulator's admin's access token for `resource`; panics when it is refused.
#[track_caller]
pub fn admin_token(server: &TestServer, resource: &str) -> String {
    let r = client_credentials(
        server,
        &server.admin_client_id(),
        &server.admin_client_secret(),
        resource,
    );
    assert_eq!(r.status, 200, "admin token: {}", r.body);
    r.body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// The device-code flow for `client` and `scope`, done as a person would (the emulator approves
/// a code on its second poll): the token endpoint's last answer, 200 with the tokens once
/// approved.
pub fn device_code(server: &TestServer, client: &str, scope: &str) -> Response {
    let dc = login(
        server,
        "devicecode",
        &[("client_id", client), ("scope", scope)],
    );
    assert_eq!(dc.status, 200, "{}", dc.body);
    let code = dc.body["device_code"]
        .as_str()
        .expect("device_code")
        .to_string();
    let poll = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("client_id", client),
        ("device_code", code.as_str()),
    ];
    let mut last = login(server, "token", &poll);
    for _ in 0..2 {
        if last.status == 200 {
            break;
        }
        last = login(server, "token", &poll);
    }
    last
}
