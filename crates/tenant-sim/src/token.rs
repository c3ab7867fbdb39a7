//! The token endpoint (`/{tenant}/oauth2/v2.0/token` and `/devicecode`): the grants it accepts
//! and the answers it gives. The access tokens it issues are made in `access_token.rs`, in the
//! format of `jwt.rs`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::access_token::{aad_error, issue};
use crate::exchange::{Ctx, Reply};
use crate::jwt::sign;
use crate::state::{AZURE_CLI_APP_ID, DeviceCode, RefreshGrant, Sim};
use crate::util::{lock, now_ms, random_secret, sha256_hex};

fn missing_param(p: &str) -> Reply {
    aad_error(
        400,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{p}'."),
    )
}

/// The resource a scope names, if it is one of ours; `.default` or a named permission.
fn resource_of(sim: &Sim, scope: &str) -> Result<String, Reply> {
    let urls = sim.urls();
    let invalid = || {
        aad_error(
            400,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    };
    let Some((res, perm)) = scope.rsplit_once('/') else {
        return Err(invalid());
    };
    let res = res.trim_end_matches('/');
    if perm.is_empty() {
        return Err(invalid());
    }
    if res == urls.main || res == urls.dynamics {
        Ok(res.to_string())
    } else {
        let t = lock(&sim.tenant).tenant_id.clone();
        Err(aad_error(
            400,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {res} was not found in the tenant named {t}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        ))
    }
}

const OIDC: [&str; 4] = ["openid", "profile", "offline_access", "email"];

fn new_refresh(sim: &Sim, client_id: &str, user_oid: &str) -> String {
    let rt = format!("1.sim.{}", random_secret(64));
    lock(&sim.refresh).insert(
        sha256_hex(&rt),
        RefreshGrant {
            client_id: client_id.into(),
            user_oid: user_oid.into(),
            offline: true,
        },
    );
    rt
}

fn basic_auth(auth: Option<&str>) -> Option<(String, String)> {
    let b = auth?.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((crate::odata::decode_query(u), crate::odata::decode_query(p)))
}

/// Handle a login request. `segs` are the raw path segments.
pub fn handle(sim: &Sim, segs: &[&str], ctx: &Ctx) -> Reply {
    let (method, auth, ctype, body) = (
        ctx.method.as_str(),
        ctx.header("authorization"),
        ctx.header("content-type"),
        &ctx.body[..],
    );
    let tenant_ok = {
        let t = lock(&sim.tenant);
        segs.first().is_some_and(|s| {
            let s = crate::odata::decode_path(s);
            s.eq_ignore_ascii_case(&t.tenant_id) || s.eq_ignore_ascii_case(&t.initial_domain)
        })
    };
    let endpoint = match segs {
        [_, "oauth2", "v2.0", e] if *e == "token" || *e == "devicecode" => *e,
        _ => {
            return Reply::json(
                404,
                json!({"error":"not_found","error_description":"The requested endpoint does not exist."}),
            );
        }
    };
    if method != "POST" {
        return aad_error(
            400,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests. Received a GET request.",
        );
    }
    if !tenant_ok {
        let name = segs
            .first()
            .map(|s| crate::odata::decode_path(s))
            .unwrap_or_default();
        return aad_error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        );
    }
    if !ctype.is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    }) {
        return missing_param("grant_type");
    }
    let form: std::collections::HashMap<String, String> =
        crate::odata::parse_query(Some(&String::from_utf8_lossy(body)))
            .into_iter()
            .collect();
    if endpoint == "devicecode" {
        return devicecode(sim, &form);
    }
    let Some(grant) = form.get("grant_type") else {
        return missing_param("grant_type");
    };
    match grant.as_str() {
        "client_credentials" => client_credentials(sim, &form, auth),
        "urn:ietf:params:oauth:grant-type:device_code" => device_poll(sim, &form),
        "refresh_token" => refresh(sim, &form),
        other => aad_error(
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        ),
    }
}

fn token_reply(access: String, scope: Option<String>, refresh: Option<String>) -> Reply {
    let mut v = json!({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":access});
    if let Some(s) = scope {
        v["scope"] = json!(s);
    }
    if let Some(r) = refresh {
        v["refresh_token"] = json!(r);
    }
    Reply::json(200, v)
}

/// What a user's token answer carries besides the access token: an ID token when the scope
/// asked for `openid` (Learn "ID token claims reference":
/// <https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference>), and
/// `client_info` (base64url of `{"uid": <user oid>, "utid": <tenant id>}`) when the request
/// said `client_info=1`, as MSAL does; MSAL makes its account (and so refreshes silently)
/// from these two.
fn with_user_info(
    mut reply: Reply,
    sim: &Sim,
    form: &std::collections::HashMap<String, String>,
    scope: &str,
    client_id: &str,
) -> Reply {
    let Ok(mut v) = serde_json::from_slice::<Value>(&reply.body) else {
        return reply;
    };
    let (tid, oid, upn) = {
        let t = lock(&sim.tenant);
        (
            t.tenant_id.clone(),
            t.admin.user_oid.clone(),
            t.admin.user_upn.clone(),
        )
    };
    if scope.split_whitespace().any(|s| s == "openid") {
        let now = now_ms() / 1000;
        let claims = json!({
            "aud": client_id, "iss": crate::discovery::issuer(&sim.urls().main, &tid),
            "iat": now, "nbf": now, "exp": now + 3600,
            "name": "Admin User", "oid": oid, "preferred_username": upn,
            "sub": B64.encode(Sha256::digest(format!("{oid}:{client_id}").as_bytes())),
            "tid": tid, "ver": "2.0",
            "uti": B64.encode(uuid::Uuid::new_v4().as_bytes())
        });
        v["id_token"] = json!(sign(&sim.key, &claims));
    }
    if form.get("client_info").is_some_and(|c| c == "1") {
        v["client_info"] = json!(B64.encode(json!({"uid": oid, "utid": tid}).to_string()));
    }
    reply.body = v.to_string().into_bytes();
    reply
}

fn client_credentials(
    sim: &Sim,
    form: &std::collections::HashMap<String, String>,
    auth: Option<&str>,
) -> Reply {
    let basic = basic_auth(auth);
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.0.clone()));
    let secret = form
        .get("client_secret")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.1.clone()));
    let Some(client_id) = client_id else {
        return missing_param("client_id");
    };
    // A certificate or federated assertion instead of a secret (credentials.rs).
    let assertion = form.get("client_assertion");
    if secret.is_none() && assertion.is_none() {
        return no_client_credential(401);
    }
    let Some(scope) = form.get("scope") else {
        return missing_param("scope");
    };
    if let Some(a) = assertion {
        let kind = form.get("client_assertion_type").map(String::as_str);
        if let Err(r) = crate::credentials::check_client_assertion(sim, &client_id, kind, a) {
            return r;
        }
    }
    let hash = secret.as_deref().map(sha256_hex).unwrap_or_default();
    let (tenant_id, oid) = {
        let t = lock(&sim.tenant);
        let tid = t.tenant_id.clone();
        if client_id.eq_ignore_ascii_case(&t.admin.client_id) {
            if assertion.is_none() && hash != t.admin.secret_sha256 {
                return bad_secret(&client_id);
            }
            (tid, t.admin.sp_oid.clone())
        } else {
            let app = t.applications.iter().find(|a| {
                a.str("appId")
                    .is_some_and(|x| x.eq_ignore_ascii_case(&client_id))
                    && sim.visible(a.created_ms)
            });
            let Some(app) = app else {
                return aad_error(
                    400,
                    "unauthorized_client",
                    700016,
                    &format!(
                        "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                        t.org_display_name
                    ),
                );
            };
            // Only the admin has certificates or federated credentials here; an assertion for
            // another app already failed above (no key registered).
            let Some(rec) = app.secrets.iter().find(|s| s.sha256 == hash) else {
                return bad_secret(&client_id);
            };
            if rec.end_ms <= now_ms() {
                return aad_error(
                    401,
                    "invalid_client",
                    7000222,
                    &format!(
                        "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
                    ),
                );
            }
            let sp = t.service_principals.iter().find(|s| {
                s.str("appId")
                    .is_some_and(|x| x.eq_ignore_ascii_case(&client_id))
            });
            (
                tid,
                sp.map(|s| s.id().to_string())
                    .unwrap_or_else(|| client_id.clone()),
            )
        }
    };
    let _ = tenant_id;
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if scopes.len() != 1 || !scopes[0].ends_with("/.default") {
        return aad_error(
            400,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }
    let aud = match resource_of(sim, scopes[0]) {
        Ok(a) => a,
        Err(r) => return r,
    };
    token_reply(
        issue(sim, &aud, &client_id.to_ascii_lowercase(), &oid, false),
        None,
        None,
    )
}

fn bad_secret(client_id: &str) -> Reply {
    aad_error(
        401,
        "invalid_client",
        7000215,
        &format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
        ),
    )
}

fn public_client_ok(sim: &Sim, client_id: &str) -> bool {
    if client_id.eq_ignore_ascii_case(AZURE_CLI_APP_ID) {
        return true;
    }
    let t = lock(&sim.tenant);
    t.applications.iter().any(|a| {
        a.str("appId")
            .is_some_and(|x| x.eq_ignore_ascii_case(client_id))
            && sim.visible(a.created_ms)
            && a.data.get("isFallbackPublicClient") == Some(&Value::Bool(true))
    })
}

/// Split requested scopes into the resource and whether offline_access was asked for.
fn delegated_scope(sim: &Sim, scope: &str) -> Result<(String, bool, String), Reply> {
    let mut offline = false;
    let mut res: Option<String> = None;
    let mut granted = Vec::new();
    for s in scope.split_whitespace() {
        if OIDC.contains(&s) {
            offline |= s == "offline_access";
            continue;
        }
        let r = resource_of(sim, s)?;
        if res.as_ref().is_some_and(|x| *x != r) {
            return Err(aad_error(
                400,
                "invalid_scope",
                28000,
                "Provided value for the input parameter scope is not valid because it contains more than one resource.",
            ));
        }
        res = Some(r);
        granted.push(s.to_string());
    }
    match res {
        Some(r) => Ok((r, offline, granted.join(" "))),
        None => Err(aad_error(
            400,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )),
    }
}

/// AADSTS7000218: a confidential client sent neither a secret nor an assertion (a public client
/// that is not allowed the flow gets the same answer, with 400).
fn no_client_credential(status: u16) -> Reply {
    aad_error(
        status,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )
}

fn devicecode(sim: &Sim, form: &std::collections::HashMap<String, String>) -> Reply {
    let Some(client_id) = form.get("client_id") else {
        return missing_param("client_id");
    };
    if !public_client_ok(sim, client_id) {
        return no_client_credential(400);
    }
    let Some(scope) = form.get("scope") else {
        return missing_param("scope");
    };
    if let Err(r) = delegated_scope(sim, scope) {
        return r;
    }
    let code = format!("DAQABIQEAAAB{}", random_secret(48));
    lock(&sim.device_codes).insert(
        sha256_hex(&code),
        DeviceCode {
            client_id: client_id.clone(),
            scope: scope.clone(),
            polled: false,
        },
    );
    let user_code = random_secret(9)
        .to_ascii_uppercase()
        .replace(['~', '.', '_', '-'], "X");
    Reply::json(
        200,
        json!({
            "user_code": user_code,
            "device_code": code,
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": 900,
            "interval": 1,
            "message": format!("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code {user_code} to authenticate.")
        }),
    )
}

fn device_poll(sim: &Sim, form: &std::collections::HashMap<String, String>) -> Reply {
    let Some(client_id) = form.get("client_id") else {
        return missing_param("client_id");
    };
    let Some(code) = form.get("device_code") else {
        return missing_param("device_code");
    };
    let h = sha256_hex(code);
    // The user "signs in" between the first poll and the second: the first is told to keep
    // polling (authorization_pending), as a client sees while the user types the code.
    let pending = {
        let mut dc = lock(&sim.device_codes);
        match dc.get_mut(&h) {
            Some(p) if !p.client_id.eq_ignore_ascii_case(client_id) => None,
            Some(p) if !p.polled => {
                p.polled = true;
                return aad_error(
                    400,
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                );
            }
            Some(_) => dc.remove(&h),
            None => None,
        }
    };
    let Some(pending) = pending else {
        return aad_error(
            400,
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed.",
        );
    };
    // The token is for the scope of the /devicecode request (the poll carries none: RFC 8628
    // §3.4; Learn v2-oauth2-device-code "Authenticating the user").
    let scope = pending.scope;
    let (aud, offline, granted) = match delegated_scope(sim, &scope) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let oid = lock(&sim.tenant).admin.user_oid.clone();
    let at = issue(sim, &aud, &client_id.to_ascii_lowercase(), &oid, true);
    let rt = offline.then(|| new_refresh(sim, client_id, &oid));
    with_user_info(
        token_reply(at, Some(granted), rt),
        sim,
        form,
        &scope,
        client_id,
    )
}

fn refresh(sim: &Sim, form: &std::collections::HashMap<String, String>) -> Reply {
    let Some(client_id) = form.get("client_id") else {
        return missing_param("client_id");
    };
    let Some(rt) = form.get("refresh_token") else {
        return missing_param("refresh_token");
    };
    let Some(scope) = form.get("scope") else {
        return missing_param("scope");
    };
    let h = sha256_hex(rt);
    let grant = lock(&sim.refresh).get(&h).cloned();
    let Some(grant) = grant.filter(|g| g.client_id.eq_ignore_ascii_case(client_id) && g.offline)
    else {
        return aad_error(
            400,
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        );
    };
    let (aud, _offline, granted) = match delegated_scope(sim, scope) {
        Ok(x) => x,
        Err(r) => return r,
    };
    lock(&sim.refresh).remove(&h);
    let at = issue(
        sim,
        &aud,
        &client_id.to_ascii_lowercase(),
        &grant.user_oid,
        true,
    );
    let new_rt = new_refresh(sim, client_id, &grant.user_oid);
    with_user_info(
        token_reply(at, Some(granted), Some(new_rt)),
        sim,
        form,
        scope,
        client_id,
    )
}
