//! The typed client. Every request carries the OData headers Dataverse expects (reference §0,
//! §7.4) and a token for the org's own audience (§8); every user-chosen value reaches a URL only
//! through `s2s_core::odata`. Writes go through `Http::write`, so `--dry-run` plans them.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use s2s_core::odata::{encode, query, quote};
use s2s_core::{Auth, Error, Http, Method, Request, Result, Service};

use crate::codes;
use crate::model::*;

/// The Web API root under the org URL (reference §0).
pub const API_PATH: &str = "/api/data/v9.2";

/// Page size asked for with `Prefer: odata.maxpagesize` (reference §7.5; the service's maximum is
/// 5,000, a smaller page keeps each answer quick).
const PAGE_SIZE: u32 = 500;

/// How many keys one metadata `$filter` joins with `or`: keeps the URL far below the service's
/// length limit however many entities a solution has.
pub(crate) const METADATA_IDS_PER_QUERY: usize = 25;

/// What a create answered: the new row (`Prefer: return=representation` honoured, 201), or only
/// its id from `OData-EntityId` (204; `None` when the header is missing).
#[derive(Debug, Clone)]
pub enum Created<T> {
    Row(T),
    Id(Option<String>),
}

/// System lookups to `systemuser` that every entity carries; never the "Marketo User" lookup
/// (reference §5.3 step 4).
pub const SYSTEM_USER_LOOKUPS: &[&str] = &[
    "createdby",
    "modifiedby",
    "createdonbehalfby",
    "modifiedonbehalfby",
    "owninguser",
    "ownerid",
];

/// The outcome of a write: `Planned` under `--dry-run`, where nothing was sent and the write is
/// in the document's `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written<T> {
    Done(T),
    Planned,
}

impl<T> Written<T> {
    pub fn is_planned(&self) -> bool {
        matches!(self, Written::Planned)
    }

    /// What was done, turned into something else; `Planned` stays `Planned`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Written<U> {
        match self {
            Written::Done(v) => Written::Done(f(v)),
            Written::Planned => Written::Planned,
        }
    }
}

/// How a role association ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Associated {
    /// The association was created by this call.
    Added,
    /// Dataverse answered DuplicateRecord (0x80040237): the pair already existed, e.g. because
    /// an earlier attempt whose answer was lost did commit it (reference §2).
    AlreadyThere,
}

/// A client for one Dataverse org. It never prints; errors carry the service's code and request
/// id (core parses `{"error":{"code","message"}}`, reference §7.1).
pub struct Dataverse<'a> {
    http: &'a Http,
    /// The org URL without a trailing slash: also the token audience (reference §8).
    org: String,
    /// `org` + [`API_PATH`].
    api: String,
    /// Normally the admin's token for `org` from the credential chain; verify-sync swaps in the
    /// Marketo app's own token with [`Dataverse::with_token`].
    auth: Auth,
}

impl<'a> Dataverse<'a> {
    /// A client for `org` (`https://contoso.crm.dynamics.com`, with or without a trailing slash).
    pub fn new(http: &'a Http, org: &str) -> Self {
        let org = org.trim_end_matches('/').to_string();
        let api = format!("{org}{API_PATH}");
        let auth = Auth::Resource(org.clone());
        Dataverse {
            http,
            org,
            api,
            auth,
        }
    }

    /// The same org, called with an explicit bearer token (verify-sync's live test of the app's
    /// own secret, as Marketo will sign in).
    pub fn with_token(mut self, token: secrecy::SecretString) -> Self {
        self.auth = Auth::Token(token);
        self
    }

    /// A client for the org of the tool's configuration (`--dynamics-url` or `dynamics.url`);
    /// exit 2 naming both when neither is given.
    pub fn from_config(http: &'a Http) -> Result<Self> {
        let url = http.config().dynamics()?;
        Ok(Self::new(http, &s2s_core::urls::base(url)))
    }

    /// The org URL without a trailing slash.
    pub fn org(&self) -> &str {
        &self.org
    }

    /// The absolute URL of a Web API path (`systemusers(...)`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.api, path.trim_start_matches('/'))
    }

    pub(crate) fn request(&self, method: Method, url: String) -> Request {
        // `If-None-Match: null` asks for current data rather than a cached copy (reference §7.4);
        // Microsoft's own samples send it on every request, writes included.
        Request::new(method, Service::Dataverse, url)
            .auth(self.auth.clone())
            .header("Accept", "application/json")
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0")
            .header("If-None-Match", "null")
    }

    /// Sends a write through `Http::write`: `Planned` under `--dry-run` (nothing sent, the
    /// request is in the plan), otherwise the service's answer.
    pub(crate) async fn write(&self, req: Request) -> Result<Written<s2s_core::Response>> {
        let sent = self.http.write(req).await.map_err(|e| self.explain(e));
        Ok(match sent? {
            None => Written::Planned,
            Some(resp) => Written::Done(resp),
        })
    }

    /// Sends a read; a 403 to the admin's own token says what the admin lacks in the org.
    pub(crate) async fn send(&self, req: Request) -> Result<s2s_core::Response> {
        self.http.send(req).await.map_err(|e| self.explain(e))
    }

    fn explain(&self, e: Error) -> Error {
        match self.auth {
            // The admin's sign-in: name the missing application user or role.
            Auth::Resource(_) => crate::explain_forbidden(e, &self.org),
            // An explicit token (verify-sync's test of the Marketo app): the caller words it.
            _ => e,
        }
    }

    // ---------- generic reads ----------

    /// One JSON object (a function result or a single row).
    pub async fn get<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T> {
        let resp = self.send(self.request(Method::Get, self.url(path))).await?;
        resp.parse(what)
    }

    /// One row or metadata item, `None` when the service answers 404.
    pub async fn get_optional<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Option<T>> {
        let req = self.request(Method::Get, self.url(path)).accept(404);
        let resp = self.send(req).await?;
        if resp.status == 404 {
            return Ok(None);
        }
        resp.parse(what).map(Some)
    }

    /// Every row of a collection query, following `@odata.nextLink` (reference §7.5).
    pub async fn list<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<Vec<T>> {
        self.collect(path, what, Some(PAGE_SIZE)).await
    }

    /// A metadata collection: never paged (reference §7.5), so no `Prefer` header is sent.
    pub(crate) async fn list_metadata<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Vec<T>> {
        self.collect(path, what, None).await
    }

    async fn collect<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
        page_size: Option<u32>,
    ) -> Result<Vec<T>> {
        let mut url = self.url(path);
        let mut out = Vec::new();
        // The next link is followed unchanged (it holds the paging cookie), but only on this
        // org, without loops and within core's page cap: the bearer token must never go to
        // another origin (`s2s_core::http::paging`).
        let mut pager = s2s_core::http::Pager::new(&self.org, &url, what)?;
        loop {
            let mut req = self.request(Method::Get, url.clone());
            if let Some(n) = page_size {
                req = req.header("Prefer", &format!("odata.maxpagesize={n}"));
            }
            let page: Page<T> = self.send(req).await?.parse(what)?;
            out.extend(page.value);
            match page.next_link {
                None => return Ok(out),
                Some(next) => url = pager.next(&next)?,
            }
        }
    }

    // ---------- WhoAmI, solutions, business units ----------

    /// `GET WhoAmI` (reference §4).
    pub async fn who_am_i(&self) -> Result<WhoAmI> {
        self.get("WhoAmI", "WhoAmI answer").await
    }

    /// Solutions whose display name is `friendly_name` (reference §4: the Marketo solution's
    /// unique name is not public, its display name is).
    pub async fn solutions_by_friendly_name(&self, friendly_name: &str) -> Result<Vec<Solution>> {
        let q = query(&[
            (
                "$select",
                "solutionid,uniquename,friendlyname,version,ismanaged",
            ),
            (
                "$filter",
                &format!("friendlyname eq {}", quote(friendly_name)),
            ),
        ]);
        self.list(&format!("solutions?{q}"), "solutions").await
    }

    /// The installed Marketo solution (Marketo step 1), the one fact every tool asks for. Should
    /// there be several rows with its display name (an unusual manual import), the one with the
    /// newest version is the one that runs; `None` when it is not installed.
    pub async fn marketo_solution(&self) -> Result<Option<Solution>> {
        let found = self
            .solutions_by_friendly_name(crate::MARKETO_SOLUTION)
            .await?;
        Ok(newest_solution(found))
    }

    const BUSINESS_UNIT_SELECT: &'static str = "businessunitid,name,_parentbusinessunitid_value";

    /// The root business unit (`parentbusinessunitid eq null`, reference §1.5); exactly one.
    pub async fn root_business_unit(&self) -> Result<BusinessUnit> {
        let q = query(&[
            ("$select", Self::BUSINESS_UNIT_SELECT),
            ("$filter", "parentbusinessunitid eq null"),
        ]);
        let mut units: Vec<BusinessUnit> = self
            .list(&format!("businessunits?{q}"), "business units")
            .await?;
        match units.len() {
            1 => Ok(units.remove(0)),
            n => Err(Error::refused(format!(
                "expected exactly one root business unit in {}, found {n}",
                self.org
            ))
            .with_hint("name the business unit with --business-unit")),
        }
    }

    /// Business units with this exact name.
    pub async fn business_units_by_name(&self, name: &str) -> Result<Vec<BusinessUnit>> {
        let q = query(&[
            ("$select", Self::BUSINESS_UNIT_SELECT),
            ("$filter", &format!("name eq {}", quote(name))),
        ]);
        self.list(&format!("businessunits?{q}"), "business units")
            .await
    }

    /// One business unit by id.
    pub async fn business_unit(&self, id: &str) -> Result<Option<BusinessUnit>> {
        let id = guid(id, "business unit id")?;
        self.get_optional(
            &format!(
                "businessunits({id})?{}",
                query(&[("$select", Self::BUSINESS_UNIT_SELECT)])
            ),
            "business unit",
        )
        .await
    }

    // ---------- system users ----------

    const USER_SELECT: &'static str = "systemuserid,applicationid,fullname,internalemailaddress,domainname,isdisabled,deletedstate,_businessunitid_value";
    const ROLES_EXPAND: &'static str =
        "systemuserroles_association($select=roleid,name,_businessunitid_value)";

    /// The active (not soft-deleted) users bound to an application id, with their roles
    /// (reference §1.4, as Microsoft's Terraform provider looks them up).
    pub async fn application_users(&self, application_id: &str) -> Result<Vec<SystemUser>> {
        let users = self.application_users_with_deleted(application_id).await?;
        Ok(users.into_iter().filter(|u| !u.is_soft_deleted()).collect())
    }

    /// Every user bound to an application id, soft-deleted ones (`deletedstate` 1) included:
    /// such a row still blocks a new application user for the app (412 `0x80040237`,
    /// microsoft/terraform-provider-power-platform issue 623).
    pub async fn application_users_with_deleted(
        &self,
        application_id: &str,
    ) -> Result<Vec<SystemUser>> {
        let app = guid(application_id, "application id")?;
        let q = query(&[
            ("$select", Self::USER_SELECT),
            ("$expand", Self::ROLES_EXPAND),
            // A GUID literal is unquoted in OData; it was checked for shape above.
            ("$filter", &format!("applicationid eq {app}")),
        ]);
        let users: Vec<SystemUser> = self
            .list(&format!("systemusers?{q}"), "system users")
            .await?;
        // The server's filter is trusted only as far as it goes: a row bound to another
        // application (or to none: a person) is never taken for this app's user.
        Ok(users
            .into_iter()
            .filter(|u| {
                u.applicationid
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(&app))
            })
            .collect())
    }

    /// `DELETE systemusers(<id>)`: Dataverse soft-deletes a disabled user, and removes a
    /// soft-deleted one for good (Learn "Delete users from environments"; Microsoft's Terraform
    /// provider purges soft-deleted application users this way before creating one).
    pub async fn delete_system_user(&self, id: &str) -> Result<Written<()>> {
        let id = guid(id, "system user id")?;
        let req = self
            .request(Method::Delete, self.url(&format!("systemusers({id})")))
            .accept(404);
        Ok(self.write(req).await?.map(drop))
    }

    /// One user by id, with its roles.
    pub async fn system_user(&self, id: &str) -> Result<Option<SystemUser>> {
        let id = guid(id, "system user id")?;
        let q = query(&[
            ("$select", Self::USER_SELECT),
            ("$expand", Self::ROLES_EXPAND),
        ]);
        self.get_optional(&format!("systemusers({id})?{q}"), "system user")
            .await
    }

    /// Creates a non-interactive application user (`accessmode` 4) for `application_id` in a
    /// business unit, which Dataverse requires (reference §1.2, §1.3). Asks for the new row with
    /// `Prefer: return=representation` (reference §7.4, §9.4: 201 with the row), so no read-back
    /// is needed; a service that ignores the preference answers 204 and the id is read from
    /// `OData-EntityId`, as Terraform does.
    ///
    /// Errors worth classifying: [`is_app_not_yet_known`] (wait and retry) and
    /// [`codes::DUPLICATE_APPLICATION_USER`] (re-read and adopt).
    pub async fn create_application_user(
        &self,
        application_id: &str,
        business_unit_id: &str,
    ) -> Result<Written<Created<SystemUser>>> {
        let app = guid(application_id, "application id")?;
        let bu = guid(business_unit_id, "business unit id")?;
        let req = self
            .request(Method::Post, self.url("systemusers"))
            .header("Prefer", "return=representation")
            .json(json!({
                "applicationid": app,
                "accessmode": 4,
                "businessunitid@odata.bind": format!("/businessunits({bu})"),
            }));
        Ok(match self.write(req).await? {
            Written::Planned => Written::Planned,
            Written::Done(resp) if resp.status == 201 && !resp.body.is_empty() => {
                Written::Done(Created::Row(resp.parse("new system user")?))
            }
            Written::Done(resp) => Written::Done(Created::Id(entity_id(&resp))),
        })
    }

    /// Enables a user: `PATCH {"isdisabled": false}` with `If-Match: *`, so the PATCH can never
    /// turn into a create (reference §7.4).
    pub async fn enable_user(&self, id: &str) -> Result<Written<()>> {
        self.update_record("systemusers", id, json!({"isdisabled": false}))
            .await
    }

    /// Disables a user: `PATCH {"isdisabled": true}` with `If-Match: *` (reference §1.4: how
    /// Terraform deactivates an application user; Dataverse keeps the row for audit, and an
    /// application user cannot be deleted before it is disabled).
    pub async fn disable_user(&self, id: &str) -> Result<Written<()>> {
        self.update_record("systemusers", id, json!({"isdisabled": true}))
            .await
    }

    // ---------- roles ----------

    pub(crate) const ROLE_SELECT: &'static str = "roleid,name,_businessunitid_value";

    /// Roles named `name` in one business unit (roles are per business unit, reference §2).
    pub async fn roles_by_name(&self, name: &str, business_unit_id: &str) -> Result<Vec<Role>> {
        let bu = guid(business_unit_id, "business unit id")?;
        let q = query(&[
            ("$select", Self::ROLE_SELECT),
            (
                "$filter",
                &format!("name eq {} and _businessunitid_value eq {bu}", quote(name)),
            ),
        ]);
        self.list(&format!("roles?{q}"), "roles").await
    }

    /// The roles a user holds directly (reference §2, "List a user's roles").
    pub async fn user_roles(&self, user_id: &str) -> Result<Vec<Role>> {
        let id = guid(user_id, "system user id")?;
        let q = query(&[("$select", Self::ROLE_SELECT)]);
        self.list(
            &format!("systemusers({id})/systemuserroles_association?{q}"),
            "roles of the user",
        )
        .await
    }

    /// `POST systemusers(<id>)/systemuserroles_association/$ref` (reference §2, fixture §9.5).
    /// Check the user's roles first: the duplicate answer's status is not documented.
    pub async fn associate_role(
        &self,
        user_id: &str,
        role_id: &str,
    ) -> Result<Written<Associated>> {
        let user = guid(user_id, "system user id")?;
        let role = guid(role_id, "role id")?;
        let req = self
            .request(
                Method::Post,
                self.url(&format!(
                    "systemusers({user})/systemuserroles_association/$ref"
                )),
            )
            .json(json!({"@odata.id": self.url(&format!("roles({role})"))}));
        match self.write(req).await {
            Ok(written) => Ok(written.map(|_| Associated::Added)),
            Err(e) if e.has_code(codes::DUPLICATE_RECORD) => {
                Ok(Written::Done(Associated::AlreadyThere))
            }
            Err(e) => Err(e),
        }
    }

    /// `DELETE systemusers(<id>)/systemuserroles_association/$ref?$id=<role url>` (reference §2).
    pub async fn disassociate_role(&self, user_id: &str, role_id: &str) -> Result<Written<()>> {
        let user = guid(user_id, "system user id")?;
        let role = guid(role_id, "role id")?;
        let q = query(&[("$id", &self.url(&format!("roles({role})")))]);
        let req = self.request(
            Method::Delete,
            self.url(&format!(
                "systemusers({user})/systemuserroles_association/$ref?{q}"
            )),
        );
        Ok(self.write(req).await?.map(drop))
    }

    // ---------- records ----------

    /// Rows of an entity set (`accounts`, a discovered config entity's set) with a `$select`
    /// and an optional `$filter`; the filter must have been built with `odata::quote`.
    pub async fn records(
        &self,
        entity_set: &str,
        select: &str,
        filter: Option<&str>,
    ) -> Result<Vec<Value>> {
        let mut pairs = vec![("$select", select)];
        if let Some(f) = filter {
            pairs.push(("$filter", f));
        }
        self.list(
            &format!("{}?{}", encode(entity_set), query(&pairs)),
            &format!("{entity_set} rows"),
        )
        .await
    }

    /// One row by id with a `$select`; `None` when the answer says the names do not fit: the
    /// entity set is unknown (404 "Resource not found for the segment"), the row is gone (404
    /// "Does Not Exist") or a selected column does not exist (400 "Could not find a property").
    pub async fn record_if_named(
        &self,
        entity_set: &str,
        id: &str,
        select: &str,
    ) -> Result<Option<Value>> {
        let id = guid(id, "record id")?;
        let req = self
            .request(
                Method::Get,
                self.url(&format!(
                    "{}({id})?{}",
                    encode(entity_set),
                    query(&[("$select", select)])
                )),
            )
            .accept(404)
            .accept(400);
        let resp = self.send(req).await?;
        if resp.status == 404 || resp.status == 400 {
            return Ok(None);
        }
        resp.parse(&format!("{entity_set} row")).map(Some)
    }

    /// Updates a row: `PATCH <set>(<id>)` with `If-Match: *` — a plain PATCH is an upsert and
    /// could create the row; with the header a missing row is a 404 (reference §5.3 step 6).
    pub async fn update_record(
        &self,
        entity_set: &str,
        id: &str,
        body: Value,
    ) -> Result<Written<()>> {
        let id = guid(id, "record id")?;
        let req = self
            .request(
                Method::Patch,
                self.url(&format!("{}({id})", encode(entity_set))),
            )
            .header("If-Match", "*")
            .json(body);
        Ok(self.write(req).await?.map(drop))
    }

    /// Empties a single-valued lookup: `PATCH <set>(<id>)` with `{"<nav>@odata.bind": null}` and
    /// `If-Match: *` (learn.microsoft.com/power-apps/developer/data-platform/webapi/
    /// associate-disassociate-entities-using-web-api, "Disassociate with a single-valued
    /// navigation property": set it to null), so a missing row is a 404, never a create.
    pub async fn clear_lookup(
        &self,
        entity_set: &str,
        id: &str,
        nav_property: &str,
    ) -> Result<Written<()>> {
        self.update_record(
            entity_set,
            id,
            json!({ format!("{nav_property}@odata.bind"): Value::Null }),
        )
        .await
    }

    /// Points a single-valued lookup at a row: `PATCH <set>(<id>)` with
    /// `{"<nav>@odata.bind": "/<target set>(<target id>)"}` and `If-Match: *` (same Learn page as
    /// [`Dataverse::clear_lookup`], "Associate with a single-valued navigation property").
    pub async fn set_lookup(
        &self,
        entity_set: &str,
        id: &str,
        nav_property: &str,
        target_set: &str,
        target_id: &str,
    ) -> Result<Written<()>> {
        let target = guid(target_id, "lookup target id")?;
        self.update_record(
            entity_set,
            id,
            json!({ format!("{nav_property}@odata.bind"): format!("/{}({target})", encode(target_set)) }),
        )
        .await
    }

    // ---------- publishing ----------

    /// `POST PublishAllXml` with body `{}` (omitting it can give 411, reference §3). It can run
    /// for many minutes, so it gets its own per-attempt timeout; the customization lock
    /// (0x80090412) is retried within the deadline.
    pub async fn publish_all(&self, attempt_timeout: Duration) -> Result<Written<()>> {
        let req = self
            .request(Method::Post, self.url("PublishAllXml"))
            .json(json!({}))
            .timeout(attempt_timeout)
            .retry_on_code(codes::CUSTOMIZATION_LOCK);
        Ok(self.write(req).await?.map(drop))
    }

    /// `POST PublishAllXmlAsync`: starts a system job and returns its id (reference §3, §9.11).
    pub async fn publish_all_async(&self) -> Result<Written<String>> {
        let req = self
            .request(Method::Post, self.url("PublishAllXmlAsync"))
            .json(json!({}))
            .retry_on_code(codes::CUSTOMIZATION_LOCK)
            // A lost answer may have started a job: retrying would start a second one once the
            // first releases the customization lock. The caller looks for the job instead.
            .stop_once_committed();
        Ok(match self.write(req).await? {
            Written::Planned => Written::Planned,
            Written::Done(resp) => {
                let r: PublishAllXmlAsyncResponse = resp.parse("PublishAllXmlAsync answer")?;
                Written::Done(guid(&r.async_operation_id, "AsyncOperationId")?)
            }
        })
    }

    /// One system job (reference §3: poll `asyncoperations(<id>)?$select=statecode,statuscode,message`).
    pub async fn async_operation(&self, id: &str) -> Result<AsyncOperation> {
        let id = guid(id, "async operation id")?;
        let q = query(&[("$select", "asyncoperationid,statecode,statuscode,message")]);
        self.get(&format!("asyncoperations({id})?{q}"), "system job")
            .await
    }

    /// System jobs created at or after `since` (RFC 3339, UTC) whose name mentions publishing:
    /// where a `PublishAllXmlAsync` whose answer was lost left its job. UNVERIFIED: the real
    /// job's name is not documented (tenant-sim names it "Publish All Customizations"), so any
    /// name containing "publish" counts; the time window keeps other jobs out.
    pub async fn publish_jobs_since(&self, since: &str) -> Result<Vec<AsyncOperation>> {
        let q = query(&[
            (
                "$select",
                "asyncoperationid,name,statecode,statuscode,message,createdon",
            ),
            ("$filter", &format!("createdon ge {since}")),
        ]);
        let jobs: Vec<AsyncOperation> = self
            .list(&format!("asyncoperations?{q}"), "system jobs")
            .await?;
        Ok(jobs
            .into_iter()
            .filter(|j| {
                j.name
                    .as_deref()
                    .is_some_and(|n| n.to_ascii_lowercase().contains("publish"))
            })
            .collect())
    }

    /// `POST PublishXml` naming exactly these entities (reference §3, publish request schema).
    pub async fn publish_entities(&self, entities: &[String]) -> Result<Written<()>> {
        let req = self
            .request(Method::Post, self.url("PublishXml"))
            .json(json!({"ParameterXml": publish_xml(entities)}))
            .retry_on_code(codes::CUSTOMIZATION_LOCK);
        Ok(self.write(req).await?.map(drop))
    }
}

/// A GUID from the caller or the service, checked before it reaches a URL or a filter.
pub(crate) fn guid(s: &str, what: &str) -> Result<String> {
    s2s_core::guid::parse(s).map_err(|_| Error::internal(format!("{what} {s:?} is not a GUID")))
}

/// The id in `OData-EntityId` (reference §1.2: the last GUID in the header).
pub(crate) fn entity_id(resp: &s2s_core::Response) -> Option<String> {
    resp.header("OData-EntityId")
        .and_then(s2s_core::guid::last_in)
}

/// The `ParameterXml` of `PublishXml` (reference §3): `<importexportxml><entities>...`.
pub fn publish_xml(entities: &[String]) -> String {
    let mut s = String::from("<importexportxml><entities>");
    for e in entities {
        s.push_str("<entity>");
        s.push_str(&xml_escape(e));
        s.push_str("</entity>");
    }
    s.push_str("</entities></importexportxml>");
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The row with the highest version (unreadable versions sort lowest).
fn newest_solution(found: Vec<Solution>) -> Option<Solution> {
    found.into_iter().max_by(|a, b| {
        crate::compare_versions(
            a.version.as_deref().unwrap_or("0"),
            b.version.as_deref().unwrap_or("0"),
        )
        .unwrap_or(std::cmp::Ordering::Equal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_marketo_solution_wins() {
        let sol = |v: &str| Solution {
            version: Some(v.into()),
            ..Default::default()
        };
        let newest = newest_solution(vec![sol("5.0.2.1"), sol("10.0.0.1"), sol("4.0.0.14")]);
        assert_eq!(newest.and_then(|s| s.version).as_deref(), Some("10.0.0.1"));
        assert!(newest_solution(Vec::new()).is_none());
    }

    #[test]
    fn publish_xml_names_each_entity_escaped() {
        assert_eq!(
            publish_xml(&["lead".into(), "a<b".into()]),
            "<importexportxml><entities><entity>lead</entity><entity>a&lt;b</entity></entities></importexportxml>"
        );
    }
}
