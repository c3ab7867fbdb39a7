//! Behaviour tests against an in-process `TestServer`, through test-support's blocking HTTP/1.1
//! client on `std::net` (no HTTP client crate, so dropped connections are observable as such).

use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use tenant_sim::{Options, TestServer};
use test_support::http::{self, Response};
use test_support::token;

/// How long a request here waits for an answer: the emulator answers at once, so a stalled or
/// dropped request shows in seconds.
const WAIT: Duration = Duration::from_secs(5);

/// One request through the shared client: `method base+path`, waiting [`WAIT`]; `Err` when the
/// connection closed without a complete response.
fn raw(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    http::send_within(WAIT, method, &format!("{base}{path}"), headers, body)
}

fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = extra.to_vec();
    if let Some(a) = &auth {
        h.push(("Authorization", a));
    }
    let b = body.map(|b| b.to_string().into_bytes());
    if b.is_some() {
        h.push(("Content-Type", "application/json"));
    }
    raw(base, method, path, &h, b.as_deref()).expect("complete response")
}

/// `GET path` with a bearer token, nothing else: most reads here.
fn get(base: &str, token: &str, path: &str) -> Response {
    call(base, "GET", path, Some(token), None, &[])
}

/// `POST path` with a bearer token and a JSON body: most writes here.
fn post(base: &str, token: &str, path: &str, body: Value) -> Response {
    call(base, "POST", path, Some(token), Some(body), &[])
}

/// Register an app with a secret and a service principal; returns (appId, object id, secret, sp id).
fn register(s: &TestServer, g: &str, unique: &str) -> (String, String, String, String) {
    let path = format!(
        "/v1.0/applications(uniqueName='{}')",
        unique
            .replace('\'', "''")
            .replace('%', "%25")
            .replace('#', "%23")
            .replace('/', "%2F")
            .replace(' ', "%20")
    );
    let r = call(
        &s.url(),
        "PATCH",
        &path,
        Some(g),
        Some(json!({"displayName": "Marketo Integration", "signInAudience": "AzureADMyOrg"})),
        &[("Prefer", "create-if-missing")],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let app_id = r.body["appId"].as_str().expect("appId").to_string();
    let id = r.body["id"].as_str().expect("id").to_string();
    let p = post(
        &s.url(),
        g,
        &format!("/v1.0/applications/{id}/addPassword"),
        json!({"passwordCredential": {"displayName": "t"}}),
    );
    assert_eq!(p.status, 200, "{}", p.body);
    let secret = p.body["secretText"].as_str().expect("secret").to_string();
    let sp = post(
        &s.url(),
        g,
        "/v1.0/servicePrincipals",
        json!({"appId": app_id}),
    );
    assert_eq!(sp.status, 201, "{}", sp.body);
    (
        app_id,
        id,
        secret,
        sp.body["id"].as_str().expect("sp id").to_string(),
    )
}

#[test]
fn tokens_admin_wrong_secret_unknown_app_and_audience() {
    let s = TestServer::start(Options::default());
    let g = token::admin_token(&s, &s.url());
    let r = token::client_credentials(&s, &s.admin_client_id(), "nope", &s.url());
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_client");
    assert_eq!(r.body["error_codes"][0], 7000215);
    assert!(
        r.body["error_description"]
            .as_str()
            .expect("desc")
            .contains("Trace ID:")
    );
    let r = token::client_credentials(&s, "11111111-2222-3333-4444-555555555555", "x", &s.url());
    assert_eq!(
        (
            r.status,
            r.body["error"].as_str(),
            r.body["error_codes"][0].as_u64()
        ),
        (400, Some("unauthorized_client"), Some(700016))
    );
    let r = token::client_credentials(
        &s,
        &s.admin_client_id(),
        &s.admin_client_secret(),
        "https://graph.microsoft.com",
    );
    assert_eq!(r.body["error_codes"][0], 500011);
    // a Graph token is not a Dataverse token
    let r = get(&s.dynamics_url(), &g, "/api/data/v9.2/WhoAmI");
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.contains("authorization_uri"))
    );
    let r = call(&s.url(), "GET", "/v1.0/organization", None, None, &[]);
    assert_eq!(r.body["error"]["code"], "InvalidAuthenticationToken");
    let r = call(
        &s.url(),
        "GET",
        "/v1.0/organization",
        Some(&g),
        None,
        &[("client-request-id", "abc")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("client-request-id"), Some("abc"));
    assert_eq!(r.body["value"][0]["id"], s.tenant_id());
    // the log never holds secrets
    let log = serde_json::to_string(&s.requests()).expect("json");
    assert!(!log.contains(&s.admin_client_secret()));
}

#[test]
fn app_upsert_unknown_property_and_app_token() {
    let s = TestServer::start(Options::default());
    let g = token::admin_token(&s, &s.url());
    let name = "it's 100% #1/2";
    let (app_id, _id, secret, _sp) = register(&s, &g, name);
    let path = "/v1.0/applications(uniqueName='it''s%20100%25%20%231%2F2')";
    let r = call(
        &s.url(),
        "PATCH",
        path,
        Some(&g),
        Some(json!({"displayName": "Marketo Integration"})),
        &[("Prefer", "create-if-missing")],
    );
    assert_eq!(r.status, 204);
    let r = get(&s.url(), &g, &format!("{path}?$select=id,uniqueName"));
    assert_eq!(r.body["uniqueName"], name);
    assert!(r.body.get("displayName").is_none());
    let r = call(
        &s.url(),
        "PATCH",
        "/v1.0/applications(uniqueName='missing')",
        Some(&g),
        Some(json!({"displayName": "x"})),
        &[],
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("Request_ResourceNotFound"))
    );
    let r = post(
        &s.url(),
        &g,
        "/v1.0/applications",
        json!({"displayName": "x", "displayname": "y"}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["error"]["message"],
        "Property 'displayname' does not exist as a declared property or extension property."
    );
    let r = get(
        &s.url(),
        &g,
        &format!("/v1.0/applications?$filter=appId%20eq%20'{app_id}'&$select=id,appId"),
    );
    assert_eq!(r.body["value"].as_array().map(Vec::len), Some(1));
    let r = get(&s.url(), &g, "/v1.0/nothing");
    assert_eq!(
        r.body["error"]["message"],
        "Resource not found for the segment 'nothing'."
    );
    // the app's own token: Graph refuses; Dataverse refuses until an application user exists
    let t = token::client_credentials(&s, &app_id, &secret, &s.url());
    assert_eq!(t.status, 200, "{}", t.body);
    let at = t.body["access_token"].as_str().expect("at");
    let r = get(&s.url(), at, "/v1.0/applications");
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );
    // paging
    for i in 0..3 {
        post(
            &s.url(),
            &g,
            "/v1.0/applications",
            json!({"displayName": format!("p{i}")}),
        );
    }
    let r = get(&s.url(), &g, "/v1.0/applications?$top=2");
    let next = r.body["@odata.nextLink"]
        .as_str()
        .expect("nextLink")
        .trim_start_matches(&s.url())
        .to_string();
    let r2 = get(&s.url(), &g, &next);
    assert_eq!(r2.body["value"].as_array().map(Vec::len), Some(2));
    assert!(r2.body.get("@odata.nextLink").is_none());
}

#[test]
fn replication_lag_hides_new_app() {
    let s = TestServer::start(Options {
        replication_lag_ms: 300,
        ..Options::default()
    });
    let g = token::admin_token(&s, &s.url());
    let r = post(
        &s.url(),
        &g,
        "/v1.0/applications",
        json!({"displayName": "Lagged"}),
    );
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().expect("id").to_string();
    let app_id = r.body["appId"].as_str().expect("appId").to_string();
    assert_eq!(
        get(&s.url(), &g, &format!("/v1.0/applications/{id}")).status,
        404
    );
    let sp = post(
        &s.url(),
        &g,
        "/v1.0/servicePrincipals",
        json!({"appId": app_id}),
    );
    assert_eq!(
        sp.body["error"]["details"][0]["code"],
        "NoBackingApplicationObject"
    );
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(
        get(&s.url(), &g, &format!("/v1.0/applications/{id}")).status,
        200
    );
}

#[test]
fn duplicate_grant_and_hrd() {
    let s = TestServer::start(Options {
        federated: true,
        ..Options::default()
    });
    let g = token::admin_token(&s, &s.url());
    let (_app, _id, _secret, sp) = register(&s, &g, "grant-test");
    let crm = call(
        &s.url(),
        "GET",
        "/v1.0/servicePrincipals(appId='00000007-0000-0000-c000-000000000000')?$select=id,oauth2PermissionScopes",
        Some(&g),
        None,
        &[],
    );
    assert_eq!(
        crm.body["oauth2PermissionScopes"][0]["value"],
        "user_impersonation"
    );
    let crm_id = crm.body["id"].as_str().expect("id");
    let body = json!({"clientId": sp, "consentType": "AllPrincipals", "resourceId": crm_id, "scope": "user_impersonation"});
    assert_eq!(
        post(&s.url(), &g, "/v1.0/oauth2PermissionGrants", body.clone()).status,
        201
    );
    let r = post(&s.url(), &g, "/v1.0/oauth2PermissionGrants", body);
    assert_eq!(
        (r.status, r.body["error"]["message"].as_str()),
        (409, Some("Permission entry already exists."))
    );
    let f = format!(
        "/v1.0/oauth2PermissionGrants?$filter=clientId%20eq%20'{sp}'%20and%20consentType%20eq%20'AllPrincipals'"
    );
    assert_eq!(
        get(&s.url(), &g, &f).body["value"].as_array().map(Vec::len),
        Some(1)
    );
    let p = post(
        &s.url(),
        &g,
        "/v1.0/policies/homeRealmDiscoveryPolicies",
        json!({"displayName": "x", "definition": ["{\"HomeRealmDiscoveryPolicy\":{\"AllowCloudPasswordValidation\":true}}"]}),
    );
    assert_eq!(p.status, 201, "{}", p.body);
    let pid = p.body["id"].as_str().expect("pid");
    let r =
        json!({"@odata.id": format!("{}/v1.0/policies/homeRealmDiscoveryPolicies/{pid}", s.url())});
    let path = format!("/v1.0/servicePrincipals/{sp}/homeRealmDiscoveryPolicies/$ref");
    assert_eq!(post(&s.url(), &g, &path, r.clone()).status, 204);
    assert_eq!(post(&s.url(), &g, &path, r).status, 400);
    let bad = post(
        &s.url(),
        &g,
        "/v1.0/policies/homeRealmDiscoveryPolicies",
        json!({"displayName": "x", "definition": ["not json"]}),
    );
    assert_eq!(bad.status, 400);
    let d = get(&s.url(), &g, "/v1.0/domains");
    assert!(
        d.body["value"]
            .as_array()
            .expect("v")
            .iter()
            .any(|x| x["authenticationType"] == "Federated")
    );
}

#[test]
fn application_user_roles_config_and_publish() {
    let s = TestServer::start(Options {
        publish_ms: 1500,
        ..Options::default()
    });
    let g = token::admin_token(&s, &s.url());
    let d = token::admin_token(&s, &s.dynamics_url());
    let dv = |m: &str, p: &str, b: Option<Value>, h: &[(&str, &str)]| {
        call(
            &s.dynamics_url(),
            m,
            &format!("/api/data/v9.2/{p}"),
            Some(&d),
            b,
            h,
        )
    };
    let (app_id, _id, secret, _sp) = register(&s, &g, "dv-test");
    let bu = dv(
        "GET",
        "businessunits?$select=businessunitid,name&$filter=parentbusinessunitid%20eq%20null",
        None,
        &[],
    );
    let bu_id = bu.body["value"][0]["businessunitid"]
        .as_str()
        .expect("bu")
        .to_string();
    let body = json!({"applicationid": app_id, "accessmode": 4, "businessunitid@odata.bind": format!("/businessunits({bu_id})")});
    let r = dv("POST", "systemusers", Some(body.clone()), &[]);
    assert_eq!(r.status, 204, "{}", r.body);
    let user = r
        .header("OData-EntityId")
        .expect("entity id")
        .rsplit('(')
        .next()
        .expect("id")
        .trim_end_matches(')')
        .to_string();
    let r = dv("POST", "systemusers", Some(body), &[]);
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (412, Some("0x80040237"))
    );
    let r = dv(
        "POST",
        "systemusers",
        Some(json!({"applicationid": app_id, "accessmode": 4})),
        &[],
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .expect("m")
            .starts_with("Expecting business column")
    );
    // quoted GUID literal is a type error in Dataverse
    let r = dv(
        "GET",
        &format!("systemusers?$filter=applicationid%20eq%20'{app_id}'"),
        None,
        &[],
    );
    assert_eq!(r.status, 400);
    let role = dv(
        "GET",
        &format!(
            "roles?$select=roleid,name&$filter=name%20eq%20'Marketo%20Sync%20User'%20and%20_businessunitid_value%20eq%20{bu_id}"
        ),
        None,
        &[],
    );
    let role_id = role.body["value"][0]["roleid"]
        .as_str()
        .expect("role")
        .to_string();
    let reference =
        json!({"@odata.id": format!("{}/api/data/v9.2/roles({role_id})", s.dynamics_url())});
    let path = format!("systemusers({user})/systemuserroles_association/$ref");
    assert_eq!(dv("POST", &path, Some(reference.clone()), &[]).status, 204);
    let r = dv("POST", &path, Some(reference), &[]);
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (412, Some("0x80040237"))
    );
    let r = dv(
        "GET",
        &format!(
            "systemusers?$select=systemuserid,deletedstate&$filter=applicationid%20eq%20{app_id}&$expand=systemuserroles_association($select=roleid,name)"
        ),
        None,
        &[],
    );
    assert_eq!(
        r.body["value"][0]["systemuserroles_association"][0]["name"],
        "Marketo Sync User"
    );
    // the app's own Dataverse token now works
    let t = token::client_credentials(&s, &app_id, &secret, &s.dynamics_url());
    let at = t.body["access_token"].as_str().expect("at").to_string();
    let who = get(&s.dynamics_url(), &at, "/api/data/v9.2/WhoAmI()");
    assert_eq!(who.body["UserId"], user.as_str());
    // Marketo config: discover and bind with the navigation property's exact casing
    let rels = dv(
        "GET",
        "EntityDefinitions(LogicalName='mkto_marketoconfig')/ManyToOneRelationships?$select=ReferencingAttribute,ReferencingEntityNavigationPropertyName&$filter=ReferencedEntity%20eq%20'systemuser'",
        None,
        &[],
    );
    let nav = rels.body["value"]
        .as_array()
        .expect("rels")
        .iter()
        .find(|r| r["ReferencingAttribute"] == "mkto_marketouser")
        .expect("rel")["ReferencingEntityNavigationPropertyName"]
        .as_str()
        .expect("nav")
        .to_string();
    assert_eq!(nav, "mkto_MarketoUser");
    let cfg = dv(
        "GET",
        "mkto_marketoconfigs?$select=mkto_name,_mkto_marketouser_value&$filter=mkto_name%20eq%20'Default'",
        None,
        &[],
    );
    let cid = cfg.body["value"][0]["mkto_marketoconfigid"]
        .as_str()
        .expect("cfg")
        .to_string();
    let r = dv(
        "PATCH",
        &format!("mkto_marketoconfigs({cid})"),
        Some(json!({"mkto_marketouser@odata.bind": format!("/systemusers({user})")})),
        &[("If-Match", "*")],
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("0x80048d19"))
    );
    let r = dv(
        "PATCH",
        &format!("mkto_marketoconfigs({cid})"),
        Some(json!({format!("{nav}@odata.bind"): format!("/systemusers({user})")})),
        &[("If-Match", "*")],
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = dv(
        "PATCH",
        "mkto_marketoconfigs(00000000-0000-0000-0000-000000000001)",
        Some(json!({"mkto_name": "x"})),
        &[("If-Match", "*")],
    );
    assert_eq!(r.status, 404);
    // publish: of two overlapping publishes, one runs and the other hits the customization lock.
    // The publish takes 1.5 s here, so the two overlap however the threads are scheduled; which
    // one wins is not asserted.
    let s_url = s.dynamics_url();
    let d2 = d.clone();
    let h = std::thread::spawn(move || {
        let r = post(&s_url, &d2, "/api/data/v9.2/PublishAllXml", json!({}));
        (
            r.status,
            r.body["error"]["code"].as_str().map(str::to_string),
        )
    });
    std::thread::sleep(Duration::from_millis(50));
    let second = dv("POST", "PublishAllXml", Some(json!({})), &[]);
    let mut outcomes = vec![
        h.join().expect("thread"),
        (
            second.status,
            second.body["error"]["code"].as_str().map(str::to_string),
        ),
    ];
    outcomes.sort();
    assert_eq!(
        outcomes,
        vec![(204, None), (400, Some("0x80090412".to_string()))]
    );
    assert_eq!(dv("POST", "WhoAmI", Some(json!({})), &[]).status, 404);
    assert_eq!(
        s.state()["dataverse"]["publish_history"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn random_faults_are_deterministic_and_drop_connections() {
    let run = |seed: u64| {
        let s = TestServer::start(Options {
            fault_rate: 0.4,
            fault_seed: seed,
            ..Options::default()
        });
        let mut seen = Vec::new();
        for _ in 0..25 {
            let r = raw(&s.url(), "GET", "/v1.0/organization", &[], None);
            seen.push(r.map(|r| r.status).unwrap_or(0));
        }
        let faults: Vec<Value> = s.requests().iter().map(|r| r["fault"].clone()).collect();
        (seen, faults)
    };
    let (a, fa) = run(42);
    let (b, fb) = run(42);
    assert_eq!(fa, fb);
    assert_eq!(a, b);
    assert!(a.contains(&0), "some connections were dropped: {a:?}");
    assert!(a.contains(&401), "unfaulted requests are processed: {a:?}");
    // scripted 429 with Retry-After
    let s = TestServer::start(Options::default());
    s.add_fault(
        json!({"path_prefix": "/v1.0/organization", "status": 429, "retry_after": "1", "count": 1}),
    );
    let r = raw(&s.url(), "GET", "/v1.0/organization", &[], None).expect("resp");
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
    s.add_fault(json!({"path_prefix": "/v1.0/", "kind": "drop"}));
    assert!(raw(&s.url(), "GET", "/v1.0/organization", &[], None).is_err());
    assert_eq!(
        raw(&s.url(), "GET", "/v1.0/organization", &[], None).map(|r| r.status),
        Ok(401)
    );
}

#[test]
fn device_code_then_refresh_for_the_other_resource() {
    let s = TestServer::start(Options::default());
    let graph_scope = format!("{}/.default offline_access", s.url());
    // a confidential (non-public) client cannot use the device flow
    let r = token::login(
        &s,
        "devicecode",
        &[("client_id", &s.admin_client_id()), ("scope", &graph_scope)],
    );
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_client"))
    );
    let dc = token::login(
        &s,
        "devicecode",
        &[("client_id", token::AZURE_CLI), ("scope", &graph_scope)],
    );
    assert_eq!(dc.status, 200, "{}", dc.body);
    let code = dc.body["device_code"].as_str().expect("device_code");
    assert!(dc.body["user_code"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(dc.body["interval"].as_u64().is_some());
    assert!(
        dc.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("devicelogin"))
    );
    let poll = [
        ("grant_type", token::DEVICE_CODE_GRANT),
        ("client_id", token::AZURE_CLI),
        ("device_code", code),
        ("scope", &graph_scope),
    ];
    let r = token::login(&s, "token", &poll);
    assert_eq!(
        (
            r.status,
            r.body["error"].as_str(),
            r.body["error_codes"][0].as_u64()
        ),
        (400, Some("authorization_pending"), Some(70016))
    );
    let r = token::login(&s, "token", &poll);
    assert_eq!(r.status, 200, "{}", r.body);
    let at = r.body["access_token"].as_str().expect("access_token");
    let rt = r.body["refresh_token"]
        .as_str()
        .expect("refresh_token with offline_access")
        .to_string();
    let org = get(&s.url(), at, "/v1.0/organization");
    assert_eq!(org.status, 200, "{}", org.body);
    // the device code is used up
    let r = token::login(&s, "token", &poll);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // the refresh token buys a token for the Dataverse org (another resource)
    let dv_scope = format!("{}/.default offline_access", s.dynamics_url());
    let refresh = |rt: &str| {
        token::login(
            &s,
            "token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", token::AZURE_CLI),
                ("refresh_token", rt),
                ("scope", &dv_scope),
            ],
        )
    };
    let r = refresh(&rt);
    assert_eq!(r.status, 200, "{}", r.body);
    let dv_at = r.body["access_token"].as_str().expect("access_token");
    let rotated = r.body["refresh_token"].as_str().expect("new refresh token");
    assert_ne!(rotated, rt);
    let who = get(&s.dynamics_url(), dv_at, "/api/data/v9.2/WhoAmI");
    assert_eq!(who.status, 200, "{}", who.body);
    assert!(who.body["UserId"].as_str().is_some());
    // a Dataverse token is not a Graph token
    assert_eq!(get(&s.url(), dv_at, "/v1.0/organization").status, 401);
    // refresh tokens are single use
    let r = refresh(&rt);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // without offline_access there is no refresh token
    let scope = format!("{}/.default", s.url());
    let dc = token::login(
        &s,
        "devicecode",
        &[("client_id", token::AZURE_CLI), ("scope", &scope)],
    );
    let code = dc.body["device_code"].as_str().expect("device_code");
    let poll = [
        ("grant_type", token::DEVICE_CODE_GRANT),
        ("client_id", token::AZURE_CLI),
        ("device_code", code),
        ("scope", &scope),
    ];
    assert_eq!(token::login(&s, "token", &poll).status, 400);
    let r = token::login(&s, "token", &poll);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("refresh_token").is_none(), "{}", r.body);
    // nothing secret in the request log
    let log = serde_json::to_string(&s.requests()).expect("json");
    assert!(!log.contains(&rt) && !log.contains(rotated));
}

#[test]
fn publish_all_xml_async_job_completes() {
    let s = TestServer::start(Options {
        publish_ms: 300,
        ..Options::default()
    });
    let d = token::admin_token(&s, &s.dynamics_url());
    let dv = |m: &str, p: &str, b: Option<Value>| {
        call(
            &s.dynamics_url(),
            m,
            &format!("/api/data/v9.2/{p}"),
            Some(&d),
            b,
            &[],
        )
    };
    let r = dv("POST", "PublishAllXmlAsync", Some(json!({})));
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["AsyncOperationId"]
        .as_str()
        .expect("AsyncOperationId")
        .to_string();
    let job = |id: &str| {
        dv(
            "GET",
            &format!("asyncoperations({id})?$select=statuscode,statecode"),
            None,
        )
    };
    // Learn's asyncoperation table: a new job is Ready / Waiting For Resources (0, 0), then
    // Locked / In Progress (2, 20), then Completed / Succeeded (3, 30).
    let first = job(&id);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        (&first.body["statecode"], &first.body["statuscode"]),
        (&json!(0), &json!(0)),
        "waiting for resources: {}",
        first.body
    );
    // while the job runs, a synchronous publish hits the customization lock
    let r = dv("POST", "PublishAllXml", Some(json!({})));
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("0x80090412"))
    );
    let started = std::time::Instant::now();
    let mut seen_in_progress = false;
    let done = loop {
        let r = job(&id);
        if r.body["statuscode"] == 20 {
            assert_eq!(r.body["statecode"], 2, "in progress is Locked: {}", r.body);
            seen_in_progress = true;
        }
        if r.body["statuscode"] == 30 {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "job never completed: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(done.body["statecode"], 3);
    assert!(seen_in_progress, "the job was never seen in progress");
    assert_eq!(
        s.state()["dataverse"]["publish_history"][0]["action"],
        "PublishAllXmlAsync"
    );
    // the same job is found by a filter, and an unknown one is a 404
    let r = dv(
        "GET",
        &format!("asyncoperations?$select=statuscode&$filter=asyncoperationid%20eq%20{id}"),
        None,
    );
    assert_eq!(r.body["value"][0]["statuscode"], 30, "{}", r.body);
    assert_eq!(job("00000000-0000-0000-0000-0000000000aa").status, 404);
}

#[test]
fn stall_at_holds_only_that_request() {
    let s = TestServer::start(Options {
        stall_at: Some(2),
        ..Options::default()
    });
    let org_url = format!("{}/v1.0/organization", s.url());
    let org = |timeout| http::send_within(timeout, "GET", &org_url, &[], None);
    assert_eq!(org(Duration::from_secs(5)).map(|r| r.status), Ok(401));
    let url = s.url();
    let stalled = std::thread::spawn(move || {
        let t = std::time::Instant::now();
        let r = http::send_within(
            Duration::from_secs(1),
            "GET",
            &format!("{url}/v1.0/organization"),
            &[],
            None,
        );
        (r.map(|r| r.status), t.elapsed())
    });
    // wait until the stalled request is in the log, so the next one is request 3
    let t = std::time::Instant::now();
    while s.requests().len() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "request 2 never arrived"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(org(Duration::from_secs(5)).map(|r| r.status), Ok(401));
    assert_eq!(org(Duration::from_secs(5)).map(|r| r.status), Ok(401));
    let (r, took) = stalled.join().expect("thread");
    assert!(r.is_err(), "the stalled request got an answer: {r:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let log = s.requests();
    assert_eq!(log[1]["seq"], 2);
    assert_eq!(log[1]["fault"], "stall");
    assert_eq!(log[1]["status"], Value::Null);
    assert!(log.iter().filter(|e| e["status"] == 401).count() >= 3);
}

#[test]
fn dataverse_rate_limit_per_token() {
    let s = TestServer::start(Options::default());
    let d = token::admin_token(&s, &s.dynamics_url());
    let who = |t: &str| get(&s.dynamics_url(), t, "/api/data/v9.2/WhoAmI");
    let mut ok = 0;
    let limited = loop {
        let r = who(&d);
        if r.status == 429 {
            break r;
        }
        assert_eq!(r.status, 200, "{}", r.body);
        ok += 1;
        // the budget is 60 a second; a loaded machine may need a few windows to reach it
        assert!(ok < 3000, "never throttled");
    };
    assert!(ok >= 60, "throttled after only {ok} requests");
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.body["error"]["code"], "0x80072322");
    // the budget is per token: another caller is not throttled
    let other = token::admin_token(&s, &s.dynamics_url());
    assert_ne!(other, d);
    assert_eq!(who(&other).status, 200);
    // after Retry-After the same token is served again
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(who(&d).status, 200);
}

#[test]
fn random_faults_same_seed_same_faults_across_servers() {
    let opts = |seed| Options {
        fault_rate: 0.5,
        fault_seed: seed,
        retry_after_secs: 0.25,
        ..Options::default()
    };
    let (a, b, c) = (
        TestServer::start(opts(9)),
        TestServer::start(opts(9)),
        TestServer::start(opts(10)),
    );
    let outcome = |s: &TestServer, i: usize| {
        let (base, path) = match i % 3 {
            0 => (s.url(), "/v1.0/applications".to_string()),
            1 => (s.dynamics_url(), "/api/data/v9.2/WhoAmI".to_string()),
            _ => (s.url(), format!("/{}/oauth2/v2.0/token", s.tenant_id())),
        };
        let method = if i % 3 == 2 { "POST" } else { "GET" };
        match raw(&base, method, &path, &[], None) {
            Ok(r) => (r.status, r.header("retry-after").map(str::to_string)),
            Err(_) => (0, None),
        }
    };
    let mut seen = (Vec::new(), Vec::new(), Vec::new());
    // interleaved, so the servers see different timing but the same sequence numbers
    for i in 0..40 {
        seen.0.push(outcome(&a, i));
        seen.1.push(outcome(&b, i));
        seen.2.push(outcome(&c, i));
    }
    let faults = |s: &TestServer| {
        s.requests()
            .iter()
            .map(|r| r["fault"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(seen.0, seen.1);
    assert_eq!(faults(&a), faults(&b));
    assert_ne!(faults(&a), faults(&c), "another seed, other faults");
    let labels: std::collections::BTreeSet<String> = faults(&a)
        .iter()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    assert!(labels.len() >= 4, "several fault kinds occur: {labels:?}");
    for (i, f) in faults(&a).iter().enumerate() {
        match f.as_str() {
            Some("429") => assert_eq!(seen.0[i], (429, Some("0.25".to_string()))),
            Some("503") => assert_eq!(seen.0[i].0, 503),
            Some("504") => assert_eq!(seen.0[i].0, 504),
            Some("drop" | "lost_response") => assert_eq!(seen.0[i].0, 0),
            _ => assert!(matches!(seen.0[i].0, 400 | 401), "{:?}", seen.0[i]),
        }
    }
}

#[test]
fn lost_response_commits_the_write() {
    let s = TestServer::start(Options::default());
    let g = token::admin_token(&s, &s.url());
    s.add_fault(
        json!({"path_prefix": "/v1.0/applications", "method": "POST", "kind": "lost_response"}),
    );
    let body = json!({"displayName": "Lost"}).to_string();
    let auth = format!("Bearer {g}");
    let r = raw(
        &s.url(),
        "POST",
        "/v1.0/applications",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    );
    assert!(r.is_err(), "the response was lost: {r:?}");
    let apps = get(
        &s.url(),
        &g,
        "/v1.0/applications?$filter=displayName%20eq%20'Lost'&$select=id",
    );
    assert_eq!(
        apps.body["value"].as_array().map(Vec::len),
        Some(1),
        "{}",
        apps.body
    );
}

// ---------- TLS ----------

mod tls {
    use super::*;
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    use std::path::Path;
    use std::sync::Arc;

    fn client_config(ca: Option<&Path>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = ca {
            for c in CertificateDer::pem_file_iter(ca).expect("CA file") {
                roots.add(c.expect("CA PEM")).expect("CA certificate");
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

    /// Connect and complete the handshake, or say why it failed.
    fn connect(
        base: &str,
        name: &str,
        ca: Option<&Path>,
        timeout: Duration,
    ) -> Result<Tls, String> {
        let addr = base.trim_start_matches("https://");
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        let conn =
            rustls::ClientConnection::new(client_config(ca), name).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(tls)
    }

    fn https(
        s: &TestServer,
        base: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, String> {
        https_within(s, base, Duration::from_secs(5), method, path, headers, body)
    }

    fn https_within(
        s: &TestServer,
        base: &str,
        timeout: Duration,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, String> {
        let ca = s.ca_file().expect("ca file");
        let mut tls = connect(base, "127.0.0.1", Some(&ca), timeout)?;
        let addr = base.trim_start_matches("https://").to_string();
        http::exchange(&mut tls, &addr, method, path, headers, body)
    }

    #[test]
    fn handshake_only_with_the_ca_and_no_plain_http() {
        let s = TestServer::start(Options {
            tls: true,
            ..Options::default()
        });
        assert!(s.url().starts_with("https://127.0.0.1:"), "{}", s.url());
        assert!(s.dynamics_url().starts_with("https://127.0.0.1:"));
        let ca = s.ca_file().expect("ca file");
        let pem = std::fs::read_to_string(&ca).expect("read CA");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        let t = Duration::from_secs(5);
        for base in [s.url(), s.dynamics_url()] {
            for name in ["127.0.0.1", "localhost"] {
                connect(&base, name, Some(&ca), t).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            // no trusted root, another server's CA, a name the certificate does not cover
            let e = connect(&base, "127.0.0.1", None, t).expect_err("untrusted");
            assert!(e.contains("UnknownIssuer"), "{e}");
            let e = connect(&base, "example.com", Some(&ca), t).expect_err("wrong name");
            assert!(e.contains("not valid for name"), "{e}");
            // plain http to the TLS port gets no HTTP response
            let plain = base.replace("https://", "http://");
            let r = raw(&plain, "GET", "/v1.0/organization", &[], None);
            assert!(r.is_err(), "plain http answered: {r:?}");
        }
        let other = TestServer::start(Options {
            tls: true,
            ..Options::default()
        });
        let other_ca = other.ca_file().expect("other ca");
        let e = connect(&s.url(), "127.0.0.1", Some(&other_ca), t).expect_err("foreign CA");
        assert!(
            e.contains("BadSignature") || e.contains("UnknownIssuer"),
            "{e}"
        );
        drop(other);
        assert!(!other_ca.exists(), "the CA file goes with the server");
        // the plain server has no CA
        assert!(TestServer::start(Options::default()).ca_file().is_none());
    }

    #[test]
    fn api_and_faults_over_tls() {
        let s = TestServer::start(Options {
            tls: true,
            latency_ms: 150,
            ..Options::default()
        });
        // a token for each resource over https, used on both listeners
        let token = |resource: &str| {
            let body = http::form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &s.admin_client_id()),
                ("client_secret", &s.admin_client_secret()),
                ("scope", &format!("{resource}/.default")),
            ]);
            let r = https(
                &s,
                &s.url(),
                "POST",
                &format!("/{}/oauth2/v2.0/token", s.tenant_id()),
                &[("Content-Type", "application/x-www-form-urlencoded")],
                Some(body.as_bytes()),
            )
            .expect("token over https");
            assert_eq!(r.status, 200, "{}", r.body);
            format!("Bearer {}", r.body["access_token"].as_str().expect("token"))
        };
        let g = token(&s.url());
        let d = token(&s.dynamics_url());
        let tls_get = |base: &str, path: &str, auth: &str| {
            https(&s, base, "GET", path, &[("Authorization", auth)], None)
        };
        let started = std::time::Instant::now();
        let r = tls_get(&s.url(), "/v1.0/organization", &g).expect("graph over https");
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "latency applies"
        );
        let r =
            tls_get(&s.dynamics_url(), "/api/data/v9.2/WhoAmI", &d).expect("dataverse over https");
        assert_eq!(r.status, 200, "{}", r.body);
        // drop: the TLS stream is cut before the request is processed
        s.add_fault(json!({"path_prefix": "/v1.0/organization", "kind": "drop"}));
        let r = tls_get(&s.url(), "/v1.0/organization", &g);
        assert!(r.is_err(), "dropped: {r:?}");
        // lost response: committed, but the client sees the stream cut
        s.add_fault(
            json!({"path_prefix": "/v1.0/applications", "method": "POST", "kind": "lost_response"}),
        );
        let body = json!({"displayName": "Over TLS"}).to_string();
        let r = https(
            &s,
            &s.url(),
            "POST",
            "/v1.0/applications",
            &[("Authorization", &g), ("Content-Type", "application/json")],
            Some(body.as_bytes()),
        );
        assert!(r.is_err(), "lost: {r:?}");
        let apps = s.state()["applications"].clone();
        let n = apps.as_array().map(|a| {
            a.iter()
                .filter(|x| x["data"]["displayName"] == "Over TLS")
                .count()
        });
        assert_eq!(n, Some(1), "{apps}");
        // stall: no answer in time, while the next request is served
        s.add_fault(json!({"path_prefix": "/api/data/v9.2/WhoAmI", "kind": "stall"}));
        let r = https_within(
            &s,
            &s.dynamics_url(),
            Duration::from_millis(800),
            "GET",
            "/api/data/v9.2/WhoAmI",
            &[("Authorization", &d)],
            None,
        );
        assert!(r.is_err(), "stalled: {r:?}");
        let r = tls_get(&s.dynamics_url(), "/api/data/v9.2/WhoAmI", &d)
            .expect("served after the stall");
        assert_eq!(r.status, 200);
        let faults: Vec<Value> = s
            .requests()
            .iter()
            .filter_map(|r| r["fault"].as_str().map(|f| json!(f)))
            .collect();
        assert_eq!(
            faults,
            vec![json!("drop"), json!("lost_response"), json!("stall")]
        );
    }
}

/// A delegated Graph token for `client` through the device-code flow (the emulator approves
/// every code on the second poll).
fn device_token(s: &TestServer, client: &str) -> String {
    let scope = format!("{}/.default offline_access", s.url());
    let dc = token::login(s, "devicecode", &[("client_id", client), ("scope", &scope)]);
    assert_eq!(dc.status, 200, "{}", dc.body);
    let code = dc.body["device_code"].as_str().expect("code").to_string();
    let poll = || {
        token::login(
            s,
            "token",
            &[
                ("grant_type", token::DEVICE_CODE_GRANT),
                ("client_id", client),
                ("device_code", &code),
                ("scope", &scope),
            ],
        )
    };
    assert_eq!(poll().status, 400);
    let r = poll();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["access_token"].as_str().expect("token").to_string()
}

#[test]
fn permissions_follow_the_token() {
    let s = TestServer::start(Options {
        admin_permissions: vec!["Application.ReadWrite.All".into()],
        ..Options::default()
    });
    let g = token::admin_token(&s, &s.url());
    assert_eq!(get(&s.url(), &g, "/v1.0/applications").status, 200);
    let hrd = json!({"definition": ["{\"HomeRealmDiscoveryPolicy\":{\"AllowCloudPasswordValidation\":true}}"], "displayName": "x"});
    let r = post(
        &s.url(),
        &g,
        "/v1.0/policies/homeRealmDiscoveryPolicies",
        hrd.clone(),
    );
    assert_eq!(
        (
            r.status,
            r.body["error"]["code"].as_str(),
            r.body["error"]["message"].as_str()
        ),
        (
            403,
            Some("Authorization_RequestDenied"),
            Some("Insufficient privileges to complete the operation.")
        )
    );
    // Organization.Read.All is not in this token either
    assert_eq!(get(&s.url(), &g, "/v1.0/organization").status, 403);
    assert!(
        s.state()["home_realm_discovery_policies"]
            .as_array()
            .expect("list")
            .is_empty()
    );

    // the default admin may do what the tools need, but never read on-premises sync app-only
    let s = TestServer::start(Options::default());
    let g = token::admin_token(&s, &s.url());
    let r = post(
        &s.url(),
        &g,
        "/v1.0/policies/homeRealmDiscoveryPolicies",
        hrd.clone(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        get(&s.url(), &g, "/v1.0/directory/onPremisesSynchronization").status,
        403
    );
    let r = get(&s.url(), &g, "/v1.0/policies/defaultAppManagementPolicy");
    assert_eq!((r.status, &r.body["isEnabled"]), (200, &json!(false)));
    // app-only has no /me
    assert_eq!(get(&s.url(), &g, "/v1.0/me/memberOf").status, 400);

    // the Azure CLI's client has no Policy.* scope; a Global Administrator reads on-prem sync
    let cli = device_token(&s, token::AZURE_CLI);
    let r = post(
        &s.url(),
        &cli,
        "/v1.0/policies/homeRealmDiscoveryPolicies",
        hrd,
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("AccessDenied"))
    );
    assert_eq!(get(&s.url(), &cli, "/v1.0/applications").status, 200);
    let r = get(&s.url(), &cli, "/v1.0/me/memberOf");
    assert_eq!(r.body["value"][0]["displayName"], "Global Administrator");
}

#[test]
fn delegated_calls_need_a_directory_role() {
    let s = TestServer::start(Options {
        admin_directory_roles: vec![],
        ..Options::default()
    });
    let cli = device_token(&s, token::AZURE_CLI);
    assert_eq!(get(&s.url(), &cli, "/v1.0/applications").status, 200);
    let r = call(
        &s.url(),
        "PATCH",
        "/v1.0/applications(uniqueName='x')",
        Some(&cli),
        Some(json!({"displayName": "x"})),
        &[("Prefer", "create-if-missing")],
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );
}

#[test]
fn admin_without_application_user_is_refused_by_dataverse() {
    let s = TestServer::start(Options {
        admin_dataverse_role: None,
        ..Options::default()
    });
    let d = token::admin_token(&s, &s.dynamics_url());
    let r = get(&s.dynamics_url(), &d, "/api/data/v9.2/WhoAmI");
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("0x80072560"))
    );
}

#[test]
fn soft_deleted_application_user_blocks_a_new_one_until_purged() {
    let s = TestServer::start(Options::default());
    let g = token::admin_token(&s, &s.url());
    let d = token::admin_token(&s, &s.dynamics_url());
    let dv = |m: &str, p: &str, b: Option<Value>| {
        call(
            &s.dynamics_url(),
            m,
            &format!("/api/data/v9.2/{p}"),
            Some(&d),
            b,
            &[],
        )
    };
    let (app_id, _, _, _) = register(&s, &g, "soft-delete");
    let bu = dv(
        "GET",
        "businessunits?$select=businessunitid&$filter=parentbusinessunitid%20eq%20null",
        None,
    );
    let bu = bu.body["value"][0]["businessunitid"]
        .as_str()
        .expect("bu")
        .to_string();
    let body = json!({"applicationid": app_id, "accessmode": 4, "businessunitid@odata.bind": format!("/businessunits({bu})")});
    assert_eq!(dv("POST", "systemusers", Some(body.clone())).status, 204);
    // the control route, as deleting the user in the admin center
    let r = raw(
        &s.url(),
        "POST",
        "/_sim/soft-delete-user",
        &[("Content-Type", "application/json")],
        Some(json!({"applicationid": app_id}).to_string().as_bytes()),
    )
    .expect("answer");
    assert_eq!(r.status, 204);
    let r = dv("POST", "systemusers", Some(body.clone()));
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (412, Some("0x80040237"))
    );
    let rows = dv(
        "GET",
        &format!(
            "systemusers?$select=systemuserid,deletedstate&$filter=applicationid%20eq%20{app_id}"
        ),
        None,
    );
    let row = &rows.body["value"][0];
    assert_eq!(row["deletedstate"], 1);
    let id = row["systemuserid"].as_str().expect("id").to_string();
    // one DELETE of a soft-deleted row purges it; then a new user can be created
    assert_eq!(
        dv("DELETE", &format!("systemusers({id})"), None).status,
        204
    );
    assert_eq!(dv("POST", "systemusers", Some(body)).status, 204);
    assert!(!s.soft_delete_user("00000000-0000-0000-0000-000000000001"));
}

#[test]
fn marketo_labels_are_configurable() {
    let s = TestServer::start(Options {
        marketo_config_label: "Marketo Settings".into(),
        marketo_user_label: "Sync User".into(),
        ..Options::default()
    });
    let d = token::admin_token(&s, &s.dynamics_url());
    let r = get(
        &s.dynamics_url(),
        &d,
        "/api/data/v9.2/EntityDefinitions(LogicalName='mkto_marketoconfig')?$select=DisplayName",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.to_string().contains("Marketo Settings"),
        "{}",
        r.body
    );
}

// ---------------------------------------------------------------------------------------------
// What Microsoft's own clients need (docs/real-service-notes.md #15–#28; tests/conformance drives
// the same with the real libraries, these keep each point in `cargo test`).

fn b64url_json(part: &str) -> Value {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .expect("base64url");
    serde_json::from_slice(&raw).expect("json")
}

fn claims_of(token: &str) -> Value {
    b64url_json(token.split('.').nth(1).expect("a JWT"))
}

#[test]
fn the_tenants_openid_configuration_and_instance_discovery_are_served() {
    let s = TestServer::start(Options::default());
    let tid = s.tenant_id();
    for tenant in [tid.as_str(), "contoso.onmicrosoft.com"] {
        let r = raw(
            &s.url(),
            "GET",
            &format!("/{tenant}/v2.0/.well-known/openid-configuration"),
            &[],
            None,
        )
        .expect("answer");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["issuer"], format!("{}/{tid}/v2.0", s.url()));
        assert_eq!(
            r.body["token_endpoint"],
            format!("{}/{tid}/oauth2/v2.0/token", s.url())
        );
        assert_eq!(
            r.body["device_authorization_endpoint"],
            format!("{}/{tid}/oauth2/v2.0/devicecode", s.url())
        );
        let keys = raw(
            &s.url(),
            "GET",
            &format!("/{tenant}/discovery/v2.0/keys"),
            &[],
            None,
        )
        .expect("answer");
        assert_eq!((keys.status, &keys.body["keys"]), (200, &json!([])));
    }
    let r = raw(
        &s.url(),
        "GET",
        "/fabrikam.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        &[],
        None,
    )
    .expect("answer");
    assert_eq!(
        (r.status, r.body["error_codes"][0].as_u64()),
        (400, Some(90002))
    );
    // MSAL names the instance by host only (no port) in its authorization endpoint
    let host = s
        .url()
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let r = raw(
        &s.url(),
        "GET",
        &format!(
            "/common/discovery/instance?api-version=1.1&authorization_endpoint=https%3A%2F%2F{host}%2F{tid}%2Foauth2%2Fv2.0%2Fauthorize"
        ),
        &[],
        None,
    )
    .expect("answer");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["tenant_discovery_endpoint"],
        format!("{}/{tid}/v2.0/.well-known/openid-configuration", s.url())
    );
    let r = raw(
        &s.url(),
        "GET",
        "/common/discovery/instance?api-version=1.1&authorization_endpoint=https%3A%2F%2Flogin.example.com%2Fx%2Foauth2%2Fv2.0%2Fauthorize",
        &[],
        None,
    )
    .expect("answer");
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_instance"))
    );
}

#[test]
fn a_device_code_sign_in_with_openid_answers_with_an_id_token_and_client_info() {
    let s = TestServer::start(Options::default());
    // the scope is the device-code request's; the poll carries none (MSAL's does not)
    let scope = format!("{}/.default openid profile offline_access", s.url());
    let dc = token::login(
        &s,
        "devicecode",
        &[("client_id", token::AZURE_CLI), ("scope", &scope)],
    );
    assert_eq!(dc.status, 200, "{}", dc.body);
    let code = dc.body["device_code"].as_str().expect("device_code");
    let poll = [
        ("grant_type", token::DEVICE_CODE_GRANT),
        ("client_id", token::AZURE_CLI),
        ("device_code", code),
        ("client_info", "1"),
    ];
    assert_eq!(token::login(&s, "token", &poll).status, 400);
    let r = token::login(&s, "token", &poll);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        claims_of(r.body["access_token"].as_str().unwrap())["aud"],
        json!(s.url())
    );
    let id = claims_of(r.body["id_token"].as_str().expect("an id_token for openid"));
    assert_eq!(id["aud"], token::AZURE_CLI);
    assert_eq!(id["iss"], format!("{}/{}/v2.0", s.url(), s.tenant_id()));
    assert_eq!(id["preferred_username"], "admin@contoso.onmicrosoft.com");
    assert_eq!(id["ver"], "2.0");
    let info = b64url_json(r.body["client_info"].as_str().expect("client_info"));
    assert_eq!(
        (&info["uid"], &info["utid"]),
        (&id["oid"], &json!(s.tenant_id()))
    );
    // the refresh answers the same way
    let rt = r.body["refresh_token"].as_str().unwrap();
    let r = token::login(
        &s,
        "token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", token::AZURE_CLI),
            ("refresh_token", rt),
            ("client_info", "1"),
            (
                "scope",
                &format!("{}/.default openid offline_access", s.dynamics_url()),
            ),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["id_token"].is_string() && r.body["client_info"].is_string(),
        "{}",
        r.body
    );
    // without openid and client_info=1 there is neither
    let dc = token::login(
        &s,
        "devicecode",
        &[
            ("client_id", token::AZURE_CLI),
            ("scope", &format!("{}/.default", s.url())),
        ],
    );
    let code = dc.body["device_code"].as_str().unwrap();
    let poll = [
        ("grant_type", token::DEVICE_CODE_GRANT),
        ("client_id", token::AZURE_CLI),
        ("device_code", code),
    ];
    token::login(&s, "token", &poll);
    let r = token::login(&s, "token", &poll);
    assert!(
        r.body.get("id_token").is_none() && r.body.get("client_info").is_none(),
        "{}",
        r.body
    );
}

#[test]
fn an_app_only_tokens_oid_is_its_service_principals_object_id() {
    let s = TestServer::start(Options::default());
    let g = token::admin_token(&s, &s.url());
    let oid = claims_of(&g)["oid"].as_str().unwrap().to_string();
    assert_ne!(oid, s.admin_client_id());
    // the admin's application user in the org carries the same object id
    let d = token::admin_token(&s, &s.dynamics_url());
    let users = get(
        &s.dynamics_url(),
        &d,
        &format!(
            "/api/data/v9.2/systemusers?$select=azureactivedirectoryobjectid&$filter=applicationid%20eq%20{}",
            s.admin_client_id()
        ),
    );
    assert_eq!(
        users.body["value"][0]["azureactivedirectoryobjectid"],
        json!(oid)
    );
    let (app_id, _, secret, sp) = register(&s, &g, "oid-check");
    let t = token::client_credentials(&s, &app_id, &secret, &s.url());
    assert_eq!(
        claims_of(t.body["access_token"].as_str().unwrap())["oid"],
        json!(sp)
    );
}

#[test]
fn a_deleted_app_takes_its_service_principal_to_the_deleted_items_restorable_on_its_own() {
    let s = TestServer::start(Options::default());
    let g = token::admin_token(&s, &s.url());
    let (app_id, id, _, sp) = register(&s, &g, "soft-delete");
    let dyn_sp = get(
        &s.url(),
        &g,
        "/v1.0/servicePrincipals(appId='00000007-0000-0000-c000-000000000000')",
    );
    let grant = post(
        &s.url(),
        &g,
        "/v1.0/oauth2PermissionGrants",
        json!({"clientId": sp, "consentType": "AllPrincipals", "resourceId": dyn_sp.body["id"], "scope": "user_impersonation"}),
    );
    assert_eq!(grant.status, 201, "{}", grant.body);
    let del = call(
        &s.url(),
        "DELETE",
        &format!("/v1.0/applications/{id}"),
        Some(&g),
        None,
        &[],
    );
    assert_eq!(del.status, 204);
    let sp_path = format!("/v1.0/servicePrincipals(appId='{app_id}')");
    assert_eq!(get(&s.url(), &g, &sp_path).status, 404);
    // listed under both forms of the type cast; the grant is gone with it
    for cast in ["microsoft.graph.servicePrincipal", "graph.servicePrincipal"] {
        let l = get(
            &s.url(),
            &g,
            &format!("/v1.0/directory/deletedItems/{cast}"),
        );
        assert_eq!(l.status, 200, "{}", l.body);
        let ids: Vec<&str> = l.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![sp.as_str()], "{}", l.body);
    }
    let apps = get(
        &s.url(),
        &g,
        "/v1.0/directory/deletedItems/graph.application",
    );
    assert_eq!(apps.body["value"][0]["id"], json!(id));
    let grants = get(
        &s.url(),
        &g,
        &format!("/v1.0/oauth2PermissionGrants?$filter=clientId%20eq%20'{sp}'"),
    );
    assert_eq!(grants.body["value"], json!([]));
    let one = get(
        &s.url(),
        &g,
        &format!("/v1.0/directory/deletedItems/{sp}/graph.servicePrincipal"),
    );
    assert_eq!((one.status, &one.body["appId"]), (200, &json!(app_id)));
    // the service principal only after its application; restoring the app does not bring it
    let restore = |oid: &str| {
        post(
            &s.url(),
            &g,
            &format!("/v1.0/directory/deletedItems/{oid}/restore"),
            json!({}),
        )
    };
    let early = restore(&sp);
    assert_eq!(early.status, 400, "{}", early.body);
    assert_eq!(restore(&id).status, 200);
    assert_eq!(get(&s.url(), &g, &sp_path).status, 404);
    assert_eq!(restore(&sp).status, 200);
    let back = get(&s.url(), &g, &sp_path);
    assert_eq!((back.status, &back.body["id"]), (200, &json!(sp)));
    let grants = get(
        &s.url(),
        &g,
        &format!("/v1.0/servicePrincipals/{sp}/oauth2PermissionGrants"),
    );
    assert_eq!(
        grants.body["value"][0]["id"], grant.body["id"],
        "its grant came back"
    );
    // deleting a service principal on its own soft-deletes it too; then for good
    let del = call(
        &s.url(),
        "DELETE",
        &format!("/v1.0/servicePrincipals/{sp}"),
        Some(&g),
        None,
        &[],
    );
    assert_eq!(del.status, 204);
    let gone = call(
        &s.url(),
        "DELETE",
        &format!("/v1.0/directory/deletedItems/{sp}"),
        Some(&g),
        None,
        &[],
    );
    assert_eq!(gone.status, 204);
    assert_eq!(
        get(&s.url(), &g, &format!("/v1.0/directory/deletedItems/{sp}")).status,
        404
    );
    assert_eq!(restore(&sp).status, 404);
}

#[test]
fn counting_directory_objects_needs_consistency_level_eventual() {
    let s = TestServer::start(Options::default());
    let g = token::admin_token(&s, &s.url());
    register(&s, &g, "count-one");
    register(&s, &g, "count-two");
    let e = get(&s.url(), &g, "/v1.0/applications/$count");
    assert_eq!(
        (e.status, e.body["error"]["message"].as_str()),
        (400, Some("$count is not currently supported."))
    );
    let eventual = [("ConsistencyLevel", "eventual")];
    let n = call(
        &s.url(),
        "GET",
        "/v1.0/applications/$count",
        Some(&g),
        None,
        &eventual,
    );
    assert_eq!(
        (n.status, n.header("content-type")),
        (200, Some("text/plain"))
    );
    assert_eq!(n.body, json!(2));
    let l = get(&s.url(), &g, "/v1.0/applications?$count=true");
    assert!(
        l.body.get("@odata.count").is_none(),
        "ignored without the header"
    );
    let l = call(
        &s.url(),
        "GET",
        "/v1.0/applications?$count=true&$top=1",
        Some(&g),
        None,
        &eventual,
    );
    assert_eq!(
        (
            l.body["@odata.count"].as_u64(),
            l.body["value"].as_array().map(Vec::len)
        ),
        (Some(2), Some(1))
    );
    let d = call(
        &s.url(),
        "GET",
        "/v1.0/directory/deletedItems/graph.application/$count",
        Some(&g),
        None,
        &eventual,
    );
    assert_eq!((d.status, &d.body), (200, &json!(0)));
}

#[test]
fn listing_a_service_principals_hrd_policies_needs_an_application_permission_too() {
    let path = format!(
        "/v1.0/servicePrincipals/{}/homeRealmDiscoveryPolicies",
        uuid::Uuid::new_v4()
    );
    for (perms, want) in [
        (vec!["Policy.Read.All"], 403),
        (vec!["Policy.Read.All", "Application.Read.All"], 404),
    ] {
        let s = TestServer::start(Options {
            admin_permissions: perms.iter().map(|p| p.to_string()).collect(),
            ..Options::default()
        });
        let g = token::admin_token(&s, &s.url());
        assert_eq!(get(&s.url(), &g, &path).status, want, "{perms:?}");
    }
}

#[test]
fn dataverse_answers_a_wrong_audience_token_with_an_empty_401_and_a_challenge() {
    let s = TestServer::start(Options::default());
    let graph_token = token::admin_token(&s, &s.url());
    let r = get(&s.dynamics_url(), &graph_token, "/api/data/v9.2/WhoAmI");
    assert_eq!((r.status, &r.body), (401, &Value::Null));
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(
        challenge.starts_with(&format!(
            "Bearer authorization_uri={}/{}/oauth2/authorize",
            s.url(),
            s.tenant_id()
        )),
        "{challenge}"
    );
}

#[test]
fn choice_columns_are_listed_by_type_cast_with_their_options_and_tables_say_if_private() {
    let s = TestServer::start(Options::default());
    let d = token::admin_token(&s, &s.dynamics_url());
    let r = get(
        &s.dynamics_url(),
        &d,
        "/api/data/v9.2/EntityDefinitions(LogicalName='systemuser')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let cols = r.body["value"].as_array().unwrap();
    assert!(cols.iter().all(|c| c["@odata.type"].is_null()
        || c["@odata.type"] == "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata"));
    let access = cols
        .iter()
        .find(|c| c["LogicalName"] == "accessmode")
        .expect("accessmode");
    assert_eq!(access["OptionSet"]["Options"][4]["Value"], 4);
    assert_eq!(
        access["OptionSet"]["Options"][4]["Label"]["LocalizedLabels"][0]["Label"],
        "Non-interactive"
    );
    assert!(
        cols.iter().all(|c| c["LogicalName"] != "fullname"),
        "only choice columns"
    );
    let t = get(
        &s.dynamics_url(),
        &d,
        "/api/data/v9.2/EntityDefinitions?$select=LogicalName&$filter=IsPrivate%20eq%20false%20and%20(LogicalName%20eq%20'systemuser')",
    );
    assert_eq!(
        t.body["value"].as_array().map(Vec::len),
        Some(1),
        "{}",
        t.body
    );
}

#[test]
fn a_certificate_assertion_as_msal_python_signs_it_is_accepted() {
    use base64::Engine;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use sha1::Digest;
    let s = TestServer::start(Options::default());
    let text = std::fs::read_to_string(s.admin_certificate_file()).expect("cert file");
    let blocks = pem::parse_many(&text).expect("pem");
    let cert = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .expect("certificate");
    let key = blocks
        .iter()
        .find(|b| b.tag() == "PRIVATE KEY")
        .expect("key");
    let key = rsa::RsaPrivateKey::from_pkcs8_der(key.contents()).expect("pkcs8");
    // MSAL Python: base64.urlsafe_b64encode (padded) thumbprints, time.time() floats
    let padded = base64::engine::general_purpose::URL_SAFE;
    let x5t = padded.encode(sha1::Sha1::digest(cert.contents()));
    assert!(x5t.ends_with('='));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let endpoint = format!("{}/{}/oauth2/v2.0/token", s.url(), s.tenant_id());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(json!({"alg": "RS256", "typ": "JWT", "x5t": x5t}).to_string());
    let claims = b64.encode(
        json!({"aud": endpoint, "iss": s.admin_client_id(), "sub": s.admin_client_id(),
               "exp": now + 600.25, "iat": now + 0.5, "jti": uuid::Uuid::new_v4().to_string()})
        .to_string(),
    );
    let signing = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    let sig = signing.sign(format!("{header}.{claims}").as_bytes());
    let assertion = format!("{header}.{claims}.{}", b64.encode(sig.to_bytes()));
    let r = token::login(
        &s,
        "token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &s.admin_client_id()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
            ("scope", &format!("{}/.default", s.url())),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}
