//! A typed subset of Microsoft Graph v1.0: exactly what the Entra ID steps need, nothing else.
//! Each function builds one request through core's HTTP layer (retries, tokens, redaction,
//! dry-run) and returns a typed answer; nothing here prints.
//!
//! Sources: reference/graph.md §1–7 (application upsert by `uniqueName`, service principals,
//! oauth2PermissionGrants, addPassword/removePassword, HRD policies, paging, error codes).

use serde::Deserialize;
use serde_json::{Value, json};

use s2s_core::odata::{encode, key_segment, quote};
use s2s_core::{Auth, Error, Http, Kind, Method, Request, Response, Result, Service};

mod model;
pub mod needs;
mod run_tag;
mod target;
pub use model::*;
pub use run_tag::RunTag;
pub use target::{AppRef, SpRef};

/// Graph's answers that mean "written, but not replicated to the replica you asked yet"
/// (graph.md §7.4, §2; the Entra eventual-consistency guidance): retry with backoff.
pub fn is_replication_lag(e: &Error) -> bool {
    let Some(se) = e.service() else { return false };
    match se.status {
        404 => se.has_code("Request_ResourceNotFound") || se.code.is_empty(),
        400 => {
            se.has_code("NoBackingApplicationObject")
                || se
                    .message
                    .contains("does not reference a valid application object")
        }
        409 => se.has_code("Directory_ConcurrencyViolation"),
        _ => false,
    }
}

/// A display name the user gives for a Graph object (`what` names the flag): not blank, no
/// control characters, at most `max` characters once trimmed; exit 2 otherwise, before any request.
pub fn check_display_name(name: &str, what: &str, max: usize) -> Result<()> {
    let t = name.trim();
    if t.is_empty() {
        return Err(Error::usage(format!("{what} must not be empty")));
    }
    if t.chars().any(char::is_control) {
        return Err(Error::usage(format!(
            "{what} must not contain control characters"
        )));
    }
    if t.chars().count() > max {
        return Err(Error::usage(format!(
            "{what} is longer than {max} characters"
        )));
    }
    Ok(())
}

/// Graph's 403 (`Authorization_RequestDenied`) says only "insufficient privileges"; `hint`
/// names the roles or permissions the step needs. Other errors pass through unchanged.
pub fn explain_forbidden(e: Error, hint: &str) -> Error {
    if e.status() != Some(403) {
        return e;
    }
    e.with_kind(Kind::Refused).with_hint(hint)
}

/// A uniqueness conflict: the object already exists (e.g. after a committed request whose
/// answer was lost and which the transport then retried).
pub fn is_conflict(e: &Error) -> bool {
    e.service().is_some_and(|s| {
        s.status == 409 && !s.has_code("Directory_ConcurrencyViolation")
            || s.has_code("Request_MultipleObjectsWithSameKeyValue")
    })
}

/// The Dynamics CRM service principal, and whether this run created it.
#[derive(Debug, Clone)]
pub struct DynamicsCrmSp {
    pub sp: ServicePrincipal,
    pub created: bool,
}

pub struct Graph<'a> {
    http: &'a Http,
    /// `https://graph.microsoft.com` (no trailing slash); also the token audience.
    root: String,
}

#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
}

impl<'a> Graph<'a> {
    pub fn new(http: &'a Http) -> Self {
        Graph {
            http,
            root: s2s_core::urls::base(&http.config().graph),
        }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1.0/{path}", self.root)
    }

    fn req(&self, method: Method, path: &str) -> Request {
        self.req_url(method, self.url(path))
    }

    fn req_url(&self, method: Method, url: String) -> Request {
        Request::new(method, Service::Graph, url)
            .auth(Auth::Resource(self.root.clone()))
            .header("Accept", "application/json")
    }

    async fn get_json(&self, path: &str) -> Result<Response> {
        self.http.send(self.req(Method::Get, path)).await
    }

    /// GET that answers `None` on 404.
    async fn get_opt<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Option<T>> {
        let resp = self
            .http
            .send(self.req(Method::Get, path).accept(404))
            .await?;
        if resp.status == 404 {
            return Ok(None);
        }
        resp.parse(what).map(Some)
    }

    /// `PATCH <alternate key>` with `Prefer: create-if-missing` (graph.md §1.5, §2): 201 and the
    /// new object, or 204 when it existed; `None` in `--dry-run`.
    async fn upsert<T: serde::de::DeserializeOwned>(
        &self,
        key_path: &str,
        body: Value,
        what: &str,
    ) -> Result<Option<Upserted<T>>> {
        let req = self
            .req(Method::Patch, key_path)
            .header("Prefer", "create-if-missing")
            .json(body);
        let Some(resp) = self.http.write(req).await? else {
            return Ok(None);
        };
        Ok(Some(if resp.status == 201 {
            Upserted::Created(resp.parse(what)?)
        } else {
            Upserted::Updated
        }))
    }

    /// A create whose answer is the new object; `None` in `--dry-run`.
    async fn create<T: serde::de::DeserializeOwned>(
        &self,
        req: Request,
        what: &str,
    ) -> Result<Option<T>> {
        match self.http.write(req).await? {
            Some(r) => r.parse(what).map(Some),
            None => Ok(None),
        }
    }

    /// All pages of a collection (graph.md §7.3: follow `@odata.nextLink` as-is until absent),
    /// but only on Graph's own origin, without loops and within core's page cap: the link comes
    /// from the answer and following it sends the Graph token (`s2s_core::http::paging`).
    async fn list<T: serde::de::DeserializeOwned>(&self, path: &str, what: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut url = self.url(path);
        let mut pager = s2s_core::http::Pager::new(&self.root, &url, what)?;
        loop {
            let page: Page<T> = self
                .http
                .send(self.req_url(Method::Get, url))
                .await?
                .parse(what)?;
            out.extend(page.value);
            match page.next {
                Some(n) => url = pager.next(&n)?,
                None => return Ok(out),
            }
        }
    }

    // ---- organization and domains -------------------------------------------------------

    pub async fn organization(&self) -> Result<Organization> {
        let mut orgs: Vec<Organization> = self
            .list("organization?$select=id,displayName", "organization")
            .await?;
        orgs.pop()
            .ok_or_else(|| Error::refused("Graph listed no organization for this tenant"))
    }

    pub async fn domains(&self) -> Result<Vec<Domain>> {
        self.list(
            "domains?$select=id,authenticationType,isVerified",
            "domains",
        )
        .await
    }

    /// Names of the tenant's federated domains (empty for a cloud-only tenant).
    pub async fn federated_domains(&self) -> Result<Vec<String>> {
        Ok(self
            .domains()
            .await?
            .into_iter()
            .filter(Domain::is_federated)
            .map(|d| d.id)
            .collect())
    }

    /// A read that the caller may not be allowed: `None` on 403 (or 400/404, e.g. `/me` with an
    /// app-only token), the JSON otherwise. For preflight, which reports what it cannot read.
    pub async fn get_if_permitted(&self, path: &str) -> Result<Option<Value>> {
        let resp = self
            .http
            .send(
                self.req(Method::Get, path)
                    .accept(400)
                    .accept(403)
                    .accept(404),
            )
            .await?;
        if resp.status != 200 {
            return Ok(None);
        }
        resp.json().map(Some)
    }

    /// Who the Graph token belongs to (its claims: `appid` of the signing-in client, app-only or
    /// delegated). teardown never touches the admin's own app.
    pub async fn caller(&self) -> Result<Option<s2s_core::Caller>> {
        let token = self.http.token(self.root()).await?;
        Ok(s2s_core::auth::jwt::caller(&token))
    }

    /// The tenant's default domain (`organization` → `verifiedDomains[isDefault]`), for
    /// messages; `None` when the caller may not read it (it needs Organization.Read.All).
    pub async fn default_domain(&self) -> Result<Option<String>> {
        let Some(v) = self
            .get_if_permitted("organization?$select=id,verifiedDomains")
            .await?
        else {
            return Ok(None);
        };
        Ok(v["value"][0]["verifiedDomains"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["isDefault"] == json!(true)))
            .and_then(|d| d["name"].as_str())
            .map(str::to_string))
    }

    /// The display names of the signed-in user's directory roles (`GET /me/memberOf`, the
    /// `directoryRole` members); `None` for an app-only token or when not readable.
    pub async fn my_directory_roles(&self) -> Result<Option<Vec<String>>> {
        let Some(v) = self.get_if_permitted("me/memberOf").await? else {
            return Ok(None);
        };
        Ok(Some(
            v["value"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|o| o["@odata.type"] == "#microsoft.graph.directoryRole")
                        .filter_map(|o| o["displayName"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        ))
    }

    /// The tenant's longest allowed client-secret lifetime from `policies/defaultAppManagementPolicy`
    /// (`passwordLifetime` restriction, ISO 8601 duration such as `P90D`): `Ok(None)` when the
    /// policy is not readable, `Ok(Some(None))` when it sets no such limit.
    pub async fn secret_lifetime_limit(&self) -> Result<Option<Option<String>>> {
        let Some(v) = self
            .get_if_permitted("policies/defaultAppManagementPolicy")
            .await?
        else {
            return Ok(None);
        };
        if v["isEnabled"] == Value::Bool(false) {
            return Ok(Some(None));
        }
        Ok(Some(
            v["applicationRestrictions"]["passwordCredentials"]
                .as_array()
                .and_then(|a| {
                    a.iter().find(|r| {
                        r["restrictionType"] == "passwordLifetime" && r["state"] != "disabled"
                    })
                })
                .and_then(|r| r["maxLifetime"].as_str().map(str::to_string)),
        ))
    }

    /// `directory/onPremisesSynchronization` → `features.passwordSyncEnabled`; `None` when the
    /// caller may not read it (graph.md §1.6). The endpoint supports no application permission
    /// ("Application: Not supported", only a signed-in administrator:
    /// <https://learn.microsoft.com/graph/api/onpremisesdirectorysynchronization-get#permissions>),
    /// so an app-only token does not ask: that would be a 403 on every run.
    pub async fn password_hash_sync_enabled(&self) -> Result<Option<bool>> {
        let token = self.http.token(self.root()).await?;
        if s2s_core::auth::jwt::caller(&token).is_some_and(|c| !c.delegated) {
            return Ok(None);
        }
        let resp = self
            .http
            .send(
                self.req(Method::Get, "directory/onPremisesSynchronization")
                    .accept(403)
                    .accept(404),
            )
            .await?;
        if resp.status != 200 {
            return Ok(None);
        }
        let v = resp.json()?;
        Ok(v["value"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|s| s["features"]["passwordSyncEnabled"].as_bool()))
    }

    // ---- applications -------------------------------------------------------------------

    pub async fn application_by_unique_name(
        &self,
        unique_name: &str,
    ) -> Result<Option<Application>> {
        let path = format!(
            "{}?$select={APPLICATION_SELECT}",
            key_segment("applications", "uniqueName", unique_name)
        );
        self.get_opt(&path, "application").await
    }

    pub async fn application_by_app_id(&self, app_id: &str) -> Result<Option<Application>> {
        let path = format!(
            "{}?$select={APPLICATION_SELECT}",
            key_segment("applications", "appId", app_id)
        );
        self.get_opt(&path, "application").await
    }

    /// `GET /applications/{id}` with its password credentials (graph.md §4.3: `secretText` is
    /// never returned here, only key ids, hints and dates); `None` on 404.
    pub async fn application(&self, object_id: &str) -> Result<Option<Application>> {
        let path = format!(
            "applications/{}?$select={APPLICATION_SELECT}",
            encode(object_id)
        );
        self.get_opt(&path, "application").await
    }

    /// Lists applications whose display name is exactly `name` (for messages, never as a key).
    pub async fn applications_named(&self, name: &str) -> Result<Vec<Application>> {
        let filter = format!("displayName eq {}", quote(name));
        self.list(
            &format!(
                "applications?$filter={}&$select=id,appId,displayName,uniqueName",
                encode(&filter)
            ),
            "applications",
        )
        .await
    }

    /// `PATCH /applications(uniqueName='..')` with `Prefer: create-if-missing` (graph.md §1.5):
    /// 201 + the new application, or 204 when it existed (and was updated with `body`).
    /// Idempotent, so the transport may retry it safely after a lost answer.
    pub async fn upsert_application(
        &self,
        unique_name: &str,
        body: Value,
    ) -> Result<Option<Upserted<Application>>> {
        self.upsert(
            &key_segment("applications", "uniqueName", unique_name),
            body,
            "application",
        )
        .await
    }

    /// `PATCH /applications/{id}` with only the properties that differ.
    pub async fn update_application(&self, object_id: &str, body: Value) -> Result<bool> {
        let req = self
            .req(
                Method::Patch,
                &format!("applications/{}", encode(object_id)),
            )
            .json(body);
        Ok(self.http.write(req).await?.is_some())
    }

    /// `POST /applications/{id}/addPassword` (graph.md §4.1). The answer holds `secretText`, the
    /// only time it exists; callers keep it in a `SecretString`.
    pub async fn add_password(
        &self,
        object_id: &str,
        display_name: &str,
        end: &str,
    ) -> Result<Option<Value>> {
        let req = self
            .req(
                Method::Post,
                &format!("applications/{}/addPassword", encode(object_id)),
            )
            .json(json!({"passwordCredential": {"displayName": display_name, "endDateTime": end}}));
        match self.http.write(req).await? {
            Some(resp) => resp.json().map(Some),
            None => Ok(None),
        }
    }

    /// `POST /applications/{id}/removePassword` (graph.md §4.2); 404 means already gone.
    pub async fn remove_password(&self, object_id: &str, key_id: &str) -> Result<bool> {
        let req = self
            .req(
                Method::Post,
                &format!("applications/{}/removePassword", encode(object_id)),
            )
            .json(json!({"keyId": key_id}))
            .accept(404);
        Ok(self.http.write(req).await?.is_some())
    }

    /// `DELETE /applications/{id}` (learn.microsoft.com/graph/api/application-delete): the app
    /// and its credentials go; Entra keeps it in `directory/deletedItems` for 30 days, restorable
    /// with `POST /directory/deletedItems/{id}/restore` (directory-deleteditems-restore). 404
    /// (already gone) is an answer, not an error.
    pub async fn delete_application(&self, object_id: &str) -> Result<bool> {
        let req = self
            .req(
                Method::Delete,
                &format!("applications/{}", encode(object_id)),
            )
            .accept(404);
        Ok(self.http.write(req).await?.is_some())
    }

    /// A deleted app registration in `directory/deletedItems` (restorable for 30 days, Learn:
    /// directory-deleteditems-get), with its `tags` and `appId`: after a teardown the proof that
    /// an app was this setup's. `None` when not there or not an application.
    pub async fn deleted_application(&self, object_id: &str) -> Result<Option<Application>> {
        let path = format!("directory/deletedItems/{}", encode(object_id));
        let Some(v) = self.get_opt::<Value>(&path, "deleted item").await? else {
            return Ok(None);
        };
        Ok(serde_json::from_value::<Application>(v)
            .ok()
            .filter(|a| !a.app_id.is_empty()))
    }

    /// The URL that restores a deleted directory object (an app within 30 days of its deletion),
    /// for messages: `{graph}/v1.0/directory/deletedItems/{id}/restore`.
    pub fn restore_url(&self, object_id: &str) -> String {
        self.url(&format!(
            "directory/deletedItems/{}/restore",
            encode(object_id)
        ))
    }

    // ---- service principals -------------------------------------------------------------

    pub async fn service_principal_by_app_id(
        &self,
        app_id: &str,
    ) -> Result<Option<ServicePrincipal>> {
        let path = format!(
            "{}?$select={SERVICE_PRINCIPAL_SELECT}",
            key_segment("servicePrincipals", "appId", app_id)
        );
        self.get_opt(&path, "service principal").await
    }

    /// The service principals of several apps in one request:
    /// `GET /servicePrincipals?$filter=appId in ('…','…')` (servicePrincipal's `appId` supports
    /// `$filter` with `in`, graph-docs resources/serviceprincipal.md). An app without one is
    /// simply absent from the answer.
    pub async fn service_principals_by_app_ids(
        &self,
        app_ids: &[&str],
    ) -> Result<Vec<ServicePrincipal>> {
        let list = app_ids
            .iter()
            .map(|a| quote(a))
            .collect::<Vec<_>>()
            .join(",");
        let filter = format!("appId in ({list})");
        self.list(
            &format!(
                "servicePrincipals?$filter={}&$select={SERVICE_PRINCIPAL_SELECT}",
                encode(&filter)
            ),
            "service principals",
        )
        .await
    }

    /// `GET /servicePrincipals/{id}` (graph.md §2); `None` on 404, which right after a create can
    /// also mean "not replicated yet" (§7.4), so callers wait with
    /// [`Graph::wait_for_service_principal`].
    pub async fn service_principal(&self, id: &str) -> Result<Option<ServicePrincipal>> {
        let path = format!(
            "servicePrincipals/{}?$select={SERVICE_PRINCIPAL_SELECT}",
            encode(id)
        );
        self.get_opt(&path, "service principal").await
    }

    /// `PATCH /servicePrincipals(appId='..')` + `Prefer: create-if-missing` (graph.md §2): an
    /// idempotent create, so a retry after a lost answer cannot make a second one. `tags` (the
    /// setup's mark) go into the body when given; callers send them only when a read found no
    /// service principal, since an upsert that meets one replaces its whole `tags` collection.
    pub async fn ensure_service_principal(
        &self,
        app_id: &str,
        tags: &[String],
    ) -> Result<Option<Upserted<ServicePrincipal>>> {
        let body = if tags.is_empty() {
            json!({})
        } else {
            json!({ "tags": tags })
        };
        self.upsert(
            &key_segment("servicePrincipals", "appId", app_id),
            body,
            "service principal",
        )
        .await
    }

    /// `PATCH /servicePrincipals/{id}` with only the properties that change
    /// (learn.microsoft.com/graph/api/serviceprincipal-update); `false` in `--dry-run`.
    pub async fn update_service_principal(&self, id: &str, body: Value) -> Result<bool> {
        let req = self
            .req(Method::Patch, &format!("servicePrincipals/{}", encode(id)))
            .json(body);
        Ok(self.http.write(req).await?.is_some())
    }

    /// The tenant's Dynamics CRM service principal, created when missing (graph.md §1.2, §2: a
    /// tenant without a Dynamics org may lack it; the portal creates it when an admin first
    /// adds the permission). The one place register-app and grant-consent get it from.
    ///
    /// A service principal just created may not read back on another replica yet (graph.md
    /// §7.4); with `readable` the call waits until it does (a grant naming it would otherwise be
    /// refused), without only when its answer lacks what the caller needs. `Ok(None)` in
    /// `--dry-run` when it would be created.
    pub async fn ensure_dynamics_crm_service_principal(
        &self,
        readable: bool,
        report: &s2s_core::output::Reporter,
    ) -> Result<Option<DynamicsCrmSp>> {
        if let Some(sp) = self
            .service_principal_by_app_id(DYNAMICS_CRM_APP_ID)
            .await?
        {
            return Ok(Some(DynamicsCrmSp { sp, created: false }));
        }
        let created = match self
            .ensure_service_principal(DYNAMICS_CRM_APP_ID, &[])
            .await?
        {
            None => return Ok(None),
            Some(Upserted::Created(sp)) if !readable && !sp.oauth2_permission_scopes.is_empty() => {
                return Ok(Some(DynamicsCrmSp { sp, created: true }));
            }
            Some(Upserted::Created(_)) => true,
            // 204: it existed; the first read met a replica that did not know it yet.
            Some(Upserted::Updated) => false,
        };
        let sp = s2s_core::retry::until_visible(
            self.http.deadline(),
            "waiting for the Dynamics CRM service principal to replicate",
            report,
            || self.service_principal_by_app_id(DYNAMICS_CRM_APP_ID),
        )
        .await?;
        Ok(Some(DynamicsCrmSp { sp, created }))
    }

    /// `DELETE /servicePrincipals/{id}` (learn.microsoft.com/graph/api/serviceprincipal-delete);
    /// 404 (already gone) is an answer, not an error.
    pub async fn delete_service_principal(&self, id: &str) -> Result<bool> {
        let req = self
            .req(Method::Delete, &format!("servicePrincipals/{}", encode(id)))
            .accept(404);
        Ok(self.http.write(req).await?.is_some())
    }

    // ---- oauth2PermissionGrants ---------------------------------------------------------

    pub async fn grants_for(
        &self,
        client_sp: &str,
        resource_sp: &str,
    ) -> Result<Vec<PermissionGrant>> {
        let filter = format!(
            "clientId eq {} and consentType eq 'AllPrincipals' and resourceId eq {}",
            quote(client_sp),
            quote(resource_sp)
        );
        self.list(
            &format!("oauth2PermissionGrants?$filter={}", encode(&filter)),
            "oauth2PermissionGrants",
        )
        .await
    }

    /// Every delegated grant whose client is this service principal, whatever the resource or
    /// consent type: `GET /oauth2PermissionGrants?$filter=clientId eq '{id}'` (graph.md §3.1).
    pub async fn grants_of_client(&self, client_sp: &str) -> Result<Vec<PermissionGrant>> {
        let filter = format!("clientId eq {}", quote(client_sp));
        self.list(
            &format!("oauth2PermissionGrants?$filter={}", encode(&filter)),
            "oauth2PermissionGrants",
        )
        .await
    }

    pub async fn create_grant(
        &self,
        client_sp: &str,
        resource_sp: &str,
        scope: &str,
    ) -> Result<Option<PermissionGrant>> {
        let req = self
            .req(Method::Post, "oauth2PermissionGrants")
            .json(json!({
                "clientId": client_sp,
                "consentType": "AllPrincipals",
                "resourceId": resource_sp,
                "scope": scope,
            }));
        self.create(req, "oauth2PermissionGrant").await
    }

    pub async fn update_grant_scope(&self, grant_id: &str, scope: &str) -> Result<bool> {
        let req = self
            .req(
                Method::Patch,
                &format!("oauth2PermissionGrants/{}", encode(grant_id)),
            )
            .json(json!({"scope": scope}));
        Ok(self.http.write(req).await?.is_some())
    }

    pub async fn delete_grant(&self, grant_id: &str) -> Result<bool> {
        let req = self
            .req(
                Method::Delete,
                &format!("oauth2PermissionGrants/{}", encode(grant_id)),
            )
            .accept(404);
        Ok(self.http.write(req).await?.is_some())
    }

    // ---- Home Realm Discovery policies --------------------------------------------------

    pub async fn hrd_policies(&self) -> Result<Vec<HrdPolicy>> {
        self.list(
            "policies/homeRealmDiscoveryPolicies",
            "homeRealmDiscoveryPolicies",
        )
        .await
    }

    pub async fn hrd_policies_of(&self, sp_id: &str) -> Result<Vec<HrdPolicy>> {
        self.list(
            &format!(
                "servicePrincipals/{}/homeRealmDiscoveryPolicies",
                encode(sp_id)
            ),
            "homeRealmDiscoveryPolicies",
        )
        .await
    }

    /// `GET /policies/homeRealmDiscoveryPolicies/{id}` (graph.md §5.2); `None` on 404.
    pub async fn hrd_policy(&self, id: &str) -> Result<Option<HrdPolicy>> {
        self.get_opt(
            &format!("policies/homeRealmDiscoveryPolicies/{}", encode(id)),
            "homeRealmDiscoveryPolicy",
        )
        .await
    }

    /// The objects a policy is assigned to: `GET /policies/homeRealmDiscoveryPolicies/{id}/appliesTo`
    /// (Graph v1.0 "List appliesTo" of homeRealmDiscoveryPolicy); ids only. A policy that is not
    /// there (404) applies to nothing.
    pub async fn hrd_policy_applies_to(&self, policy_id: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Obj {
            id: String,
        }
        let path = format!(
            "policies/homeRealmDiscoveryPolicies/{}/appliesTo",
            encode(policy_id)
        );
        let mut url = self.url(&path);
        let mut pager = s2s_core::http::Pager::new(&self.root, &url, "appliesTo")?;
        let mut out = Vec::new();
        loop {
            let resp = self
                .http
                .send(self.req_url(Method::Get, url).accept(404))
                .await?;
            if resp.status == 404 {
                return Ok(out);
            }
            let page: Page<Obj> = resp.parse("appliesTo")?;
            out.extend(page.value.into_iter().map(|o| o.id));
            match page.next {
                Some(n) => url = pager.next(&n)?,
                None => return Ok(out),
            }
        }
    }

    pub async fn create_hrd_policy(&self, body: Value) -> Result<Option<HrdPolicy>> {
        let req = self
            .req(Method::Post, "policies/homeRealmDiscoveryPolicies")
            .json(body);
        self.create(req, "homeRealmDiscoveryPolicy").await
    }

    /// `PATCH /policies/homeRealmDiscoveryPolicies/{id}` (Learn: homerealmdiscoverypolicy-update),
    /// e.g. its description with the setup's mark; `false` in `--dry-run`.
    pub async fn update_hrd_policy(&self, id: &str, body: Value) -> Result<bool> {
        let req = self
            .req(
                Method::Patch,
                &format!("policies/homeRealmDiscoveryPolicies/{}", encode(id)),
            )
            .json(body);
        Ok(self.http.write(req).await?.is_some())
    }

    pub async fn delete_hrd_policy(&self, id: &str) -> Result<bool> {
        let req = self
            .req(
                Method::Delete,
                &format!("policies/homeRealmDiscoveryPolicies/{}", encode(id)),
            )
            .accept(404);
        Ok(self.http.write(req).await?.is_some())
    }

    /// `POST /servicePrincipals/{id}/homeRealmDiscoveryPolicies/$ref` (graph.md §5.3); the
    /// `@odata.id` uses this cloud's own Graph host.
    pub async fn assign_hrd_policy(&self, sp_id: &str, policy_id: &str) -> Result<bool> {
        let req = self
            .req(Method::Post, &format!("servicePrincipals/{}/homeRealmDiscoveryPolicies/$ref", encode(sp_id)))
            .json(json!({"@odata.id": self.url(&format!("policies/homeRealmDiscoveryPolicies/{policy_id}"))}));
        Ok(self.http.write(req).await?.is_some())
    }

    pub async fn unassign_hrd_policy(&self, sp_id: &str, policy_id: &str) -> Result<bool> {
        let req = self
            .req(
                Method::Delete,
                &format!(
                    "servicePrincipals/{}/homeRealmDiscoveryPolicies/{}/$ref",
                    encode(sp_id),
                    encode(policy_id)
                ),
            )
            .accept(404);
        Ok(self.http.write(req).await?.is_some())
    }

    /// Raw GET for callers that need a property this subset does not type.
    pub async fn get_value(&self, path: &str) -> Result<Value> {
        self.get_json(path).await?.json()
    }
}

/// The outcome of an upsert.
#[derive(Debug)]
pub enum Upserted<T> {
    Created(T),
    Updated,
}

/// The `user_impersonation` scope id of the Dynamics CRM service principal, read from its
/// `oauth2PermissionScopes` (graph.md §1.2: never hard-coded; sovereign clouds differ).
pub fn user_impersonation_scope(sp: &ServicePrincipal) -> Result<String> {
    sp.oauth2_permission_scopes
        .iter()
        .find(|s| s.value.as_deref() == Some(USER_IMPERSONATION))
        .map(|s| s.id.clone())
        .ok_or_else(|| {
            Error::refused(format!(
                "the Dynamics CRM service principal {} has no {USER_IMPERSONATION} scope",
                sp.id
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_checked() {
        assert!(check_display_name(" Marketo ", "--name", 7).is_ok());
        for (bad, why) in [
            (" ", "must not be empty"),
            ("a\u{7}b", "control characters"),
            ("Marketo!", "is longer than 7 characters"),
        ] {
            let e = check_display_name(bad, "--name", 7).unwrap_err();
            assert_eq!(e.kind, Kind::Usage);
            assert!(
                e.message.starts_with("--name ") && e.message.contains(why),
                "{e}"
            );
        }
    }

    #[test]
    fn only_a_403_gets_the_hint() {
        let err = |status| {
            Error::from_service(
                "POST /v1.0/x",
                s2s_core::ServiceError {
                    service: "graph",
                    status,
                    ..Default::default()
                },
            )
        };
        let e = explain_forbidden(err(403), "needs the role");
        assert_eq!(e.kind, Kind::Refused);
        assert_eq!(e.hint.as_deref(), Some("needs the role"));
        assert!(explain_forbidden(err(404), "x").hint.is_none());
        assert!(explain_forbidden(Error::usage("u"), "x").hint.is_none());
    }
}
