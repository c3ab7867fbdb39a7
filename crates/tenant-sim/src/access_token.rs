//! The access tokens the emulator issues, to an app (client credentials, managed identity) or to
//! the admin user (device code, refresh), and the check Graph and Dataverse make on a request's
//! bearer token; with the AADSTS error envelope every sign-in answer shares. The token endpoint
//! (`token.rs`), the managed-identity endpoints (`credentials.rs`) and the discovery documents
//! (`discovery.rs`) all build on it, so it imports none of them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value, json};

use crate::exchange::Reply;
use crate::jwt::{TokenError, sign, verify};
use crate::state::{AZURE_CLI_APP_ID, Sim};
use crate::util::{lock, new_guid, now_ms};

/// Extract and verify the bearer token of a request for `audience`.
pub fn check_bearer(sim: &Sim, auth: Option<&str>, audience: &str) -> Result<Value, TokenError> {
    let auth = auth.ok_or(TokenError::Missing)?;
    let tok = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .ok_or(TokenError::Malformed)?
        .trim();
    if tok.is_empty() {
        return Err(TokenError::Missing);
    }
    let claims = verify(&sim.key, tok, now_ms() / 1000)?;
    if claims.get("aud").and_then(Value::as_str) != Some(audience) {
        return Err(TokenError::WrongAudience);
    }
    Ok(claims)
}

pub(crate) fn aad_error(status: u16, error: &str, code: u32, text: &str) -> Reply {
    let trace = new_guid();
    let corr = new_guid();
    let ts = crate::util::rfc3339_secs(now_ms()).replace('T', " ") + "Z";
    Reply::json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {ts}"),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}")
        }),
    )
}

pub(crate) fn issue(sim: &Sim, aud: &str, appid: &str, oid: &str, user: bool) -> String {
    let now = now_ms() / 1000;
    let t = lock(&sim.tenant);
    let admin = appid == t.admin.client_id || user;
    let graph = aud == sim.urls().main;
    let mut c = Map::new();
    c.insert("aud".into(), json!(aud));
    c.insert(
        "iss".into(),
        json!(format!("https://sts.windows.net/{}/", t.tenant_id)),
    );
    c.insert("iat".into(), json!(now));
    c.insert("nbf".into(), json!(now));
    c.insert("exp".into(), json!(now + 3600));
    c.insert("tid".into(), json!(t.tenant_id));
    c.insert("appid".into(), json!(appid));
    c.insert("oid".into(), json!(oid));
    c.insert("idtyp".into(), json!(if user { "user" } else { "app" }));
    c.insert("ver".into(), json!("1.0"));
    // Entra's unique token id: two tokens issued in the same second still differ
    c.insert(
        "uti".into(),
        json!(B64.encode(uuid::Uuid::new_v4().as_bytes())),
    );
    if user {
        c.insert("upn".into(), json!(t.admin.user_upn));
        // Delegated scopes depend on the client the user signed in with: the Azure CLI's
        // first-party client is pre-authorized for a fixed set without Policy.* (see
        // permissions.rs), a client registered in the tenant for what it was consented.
        let scp = if !graph {
            "user_impersonation".to_string()
        } else if appid.eq_ignore_ascii_case(AZURE_CLI_APP_ID) {
            crate::permissions::AZURE_CLI_GRAPH_SCOPES.join(" ")
        } else {
            crate::permissions::REGISTERED_CLIENT_GRAPH_SCOPES.join(" ")
        };
        c.insert("scp".into(), json!(scp));
    } else if admin && graph {
        c.insert("roles".into(), json!(sim.opts.admin_permissions));
    }
    drop(t);
    sign(&sim.key, &Value::Object(c))
}

/// An app-only token for `aud` as the app `appid`; its `oid` is the object id of the app's
/// service principal in this tenant, as in Entra's app-only tokens ("Access token claims
/// reference", `oid`: <https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference#payload-claims>).
pub fn issue_app_token(sim: &Sim, aud: &str, appid: &str) -> String {
    let oid = service_principal_oid(sim, appid);
    issue(sim, aud, &appid.to_ascii_lowercase(), &oid, false)
}

/// The object id of `app_id`'s service principal in the tenant (the admin's is seeded with the
/// tenant); the app id itself for an app without one, which Entra would not sign in at all.
fn service_principal_oid(sim: &Sim, app_id: &str) -> String {
    let t = lock(&sim.tenant);
    if app_id.eq_ignore_ascii_case(&t.admin.client_id) {
        return t.admin.sp_oid.clone();
    }
    t.service_principals
        .iter()
        .find(|s| {
            s.str("appId")
                .is_some_and(|x| x.eq_ignore_ascii_case(app_id))
        })
        .map(|s| s.id().to_string())
        .unwrap_or_else(|| app_id.to_ascii_lowercase())
}
