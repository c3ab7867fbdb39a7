//! A Dataverse org (Web API v9.2) with the Marketo solution: WhoAmI, solutions and components,
//! entity metadata (incl. creating a Boolean column), business units, roles, system users with
//! role associations, the Marketo config entity, publishing (sync and async) and service
//! protection limits — with Dataverse's error bodies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Options;
use crate::odata::{self, Key, Literal, Segment};
use crate::server::{Ctx, Reply};
use crate::state::{Admin, Sim, lock, new_guid, now_ms, rfc3339_secs};
use crate::token::check_bearer;

/// An attribute (column).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attr {
    pub logical: String,
    pub schema: String,
    /// AttributeType: String, Lookup, Owner, Uniqueidentifier, Boolean, Integer, DateTime, Picklist, State, Status, Memo
    pub ty: String,
    pub display: String,
    pub id: String,
    #[serde(default)]
    pub targets: Vec<String>,
    /// single-valued navigation property (lookups)
    #[serde(default)]
    pub nav: Option<String>,
    #[serde(default)]
    pub custom: bool,
}

impl Attr {
    fn is_lookup(&self) -> bool {
        matches!(self.ty.as_str(), "Lookup" | "Owner" | "Customer")
    }
    /// The Web API property name.
    fn prop(&self) -> String {
        if self.is_lookup() {
            format!("_{}_value", self.logical)
        } else {
            self.logical.clone()
        }
    }
    fn edm(&self) -> &'static str {
        match self.ty.as_str() {
            "Lookup" | "Owner" | "Customer" | "Uniqueidentifier" => "Edm.Guid",
            "Boolean" => "Edm.Boolean",
            "Integer" | "Picklist" | "State" | "Status" | "BigInt" => "Edm.Int32",
            "DateTime" => "Edm.DateTimeOffset",
            _ => "Edm.String",
        }
    }
}

/// An entity (table) and its metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entity {
    pub logical: String,
    pub schema: String,
    pub set: String,
    pub display: String,
    pub id: String,
    pub primary_id: String,
    pub primary_name: Option<String>,
    pub attrs: Vec<Attr>,
    #[serde(default)]
    pub custom: bool,
}

/// The org's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dv {
    pub org_id: String,
    pub entities: Vec<Entity>,
    /// Rows per entity logical name, stored as the Web API renders them (`_x_value` for lookups).
    pub rows: BTreeMap<String, Vec<Value>>,
    /// (systemuserid, roleid)
    pub user_roles: Vec<(String, String)>,
    pub publish_history: Vec<Value>,
}

fn attr(logical: &str, ty: &str, display: &str) -> Attr {
    Attr {
        logical: logical.into(),
        schema: logical.into(),
        ty: ty.into(),
        display: display.into(),
        id: new_guid(),
        targets: vec![],
        nav: None,
        custom: false,
    }
}
fn lookup(logical: &str, schema: &str, target: &str, display: &str, nav: &str) -> Attr {
    Attr {
        ty: "Lookup".into(),
        schema: schema.into(),
        targets: vec![target.into()],
        nav: Some(nav.into()),
        ..attr(logical, "Lookup", display)
    }
}

/// The system lookups of the seeded tables: logical name (also the navigation property, as for
/// every system lookup), schema name, target table.
const STOCK_LOOKUPS: &[(&str, &str, &str)] = &[
    ("businessunitid", "BusinessUnitId", "businessunit"),
    (
        "parentbusinessunitid",
        "ParentBusinessUnitId",
        "businessunit",
    ),
    ("parentrootroleid", "ParentRootRoleId", "role"),
    ("solutionid", "SolutionId", "solution"),
    ("publisherid", "PublisherId", "publisher"),
    ("createdby", "CreatedBy", "systemuser"),
    ("modifiedby", "ModifiedBy", "systemuser"),
    ("owninguser", "OwningUser", "systemuser"),
];

/// A system lookup from [`STOCK_LOOKUPS`].
fn stock_lookup(logical: &str, display: &str) -> Attr {
    let (_, schema, target) = STOCK_LOOKUPS
        .iter()
        .find(|(l, _, _)| *l == logical)
        .expect("a lookup listed in STOCK_LOOKUPS");
    lookup(logical, schema, target, display, logical)
}

/// The columns every record table carries: who created, changed and owns a row, and when.
fn system_lookups() -> Vec<Attr> {
    let mut owner = attr("ownerid", "Owner", "Owner");
    owner.targets = vec!["systemuser".into(), "team".into()];
    owner.nav = Some("ownerid".into());
    vec![
        stock_lookup("createdby", "Created By"),
        stock_lookup("modifiedby", "Modified By"),
        stock_lookup("owninguser", "Owning User"),
        owner,
        attr("createdon", "DateTime", "Created On"),
        attr("modifiedon", "DateTime", "Modified On"),
    ]
}

/// A table with only its primary id column, `<logical>id`; [`Entity::with`] adds the others.
fn table(logical: &str, schema: &str, set: &str, display: &str, name: Option<&str>) -> Entity {
    let primary_id = format!("{logical}id");
    Entity {
        logical: logical.into(),
        schema: schema.into(),
        set: set.into(),
        display: display.into(),
        id: new_guid(),
        attrs: vec![attr(&primary_id, "Uniqueidentifier", display)],
        primary_id,
        primary_name: name.map(str::to_string),
        custom: false,
    }
}

impl Entity {
    fn with(mut self, columns: impl IntoIterator<Item = Attr>) -> Self {
        self.attrs.extend(columns);
        self
    }
}

/// Seed the org.
pub fn seed(opts: &Options, admin: &Admin) -> Dv {
    let p = opts.marketo_prefix.to_ascii_lowercase();
    let installed = opts.marketo_version.is_some();
    let mut entities = vec![
        table(
            "systemuser",
            "SystemUser",
            "systemusers",
            "User",
            Some("fullname"),
        )
        .with([
            attr("fullname", "String", "Full Name"),
            attr("firstname", "String", "First Name"),
            attr("lastname", "String", "Last Name"),
            attr("internalemailaddress", "String", "Primary Email"),
            attr("domainname", "String", "User Name"),
            attr("applicationid", "Uniqueidentifier", "Application ID"),
            attr(
                "azureactivedirectoryobjectid",
                "Uniqueidentifier",
                "Azure AD Object ID",
            ),
            attr("isdisabled", "Boolean", "Status"),
            attr("accessmode", "Picklist", "Access Mode"),
            attr("deletedstate", "Picklist", "Deleted State"),
            attr("title", "String", "Title"),
            attr("islicensed", "Boolean", "User Licensed"),
            stock_lookup("businessunitid", "Business Unit"),
            attr("createdon", "DateTime", "Created On"),
        ]),
        table(
            "businessunit",
            "BusinessUnit",
            "businessunits",
            "Business Unit",
            Some("name"),
        )
        .with([
            attr("name", "String", "Name"),
            stock_lookup("parentbusinessunitid", "Parent Business"),
            attr("isdisabled", "Boolean", "Is Disabled"),
            attr("createdon", "DateTime", "Created On"),
        ]),
        table("role", "Role", "roles", "Security Role", Some("name")).with([
            attr("name", "String", "Name"),
            stock_lookup("businessunitid", "Business Unit"),
            stock_lookup("parentrootroleid", "Parent Root Role"),
            attr("roletemplateid", "Uniqueidentifier", "Role Template"),
            attr("ismanaged", "Boolean", "State"),
        ]),
        table(
            "solution",
            "Solution",
            "solutions",
            "Solution",
            Some("friendlyname"),
        )
        .with([
            attr("uniquename", "String", "Name"),
            attr("friendlyname", "String", "Display Name"),
            attr("version", "String", "Version"),
            attr("ismanaged", "Boolean", "Package Type"),
            attr("isvisible", "Boolean", "Is Visible"),
            attr("installedon", "DateTime", "Installed On"),
            attr("description", "Memo", "Description"),
            stock_lookup("publisherid", "Publisher"),
        ]),
        table(
            "solutioncomponent",
            "SolutionComponent",
            "solutioncomponents",
            "Solution Component",
            None,
        )
        .with([
            stock_lookup("solutionid", "Solution"),
            attr("componenttype", "Picklist", "Object Type Code"),
            attr("objectid", "Uniqueidentifier", "Regarding"),
            attr(
                "rootcomponentbehavior",
                "Picklist",
                "Root Component Behavior",
            ),
            attr("ismetadata", "Boolean", "Is this component metadata"),
        ]),
        table(
            "publisher",
            "Publisher",
            "publishers",
            "Publisher",
            Some("friendlyname"),
        )
        .with([
            attr("uniquename", "String", "Name"),
            attr("friendlyname", "String", "Display Name"),
            attr("customizationprefix", "String", "Prefix"),
        ]),
        table(
            "asyncoperation",
            "AsyncOperation",
            "asyncoperations",
            "System Job",
            Some("name"),
        )
        .with([
            attr("name", "String", "System Job Name"),
            attr("operationtype", "Picklist", "System Job Type"),
            attr("statecode", "State", "Status"),
            attr("statuscode", "Status", "Status Reason"),
            attr("message", "Memo", "Message"),
            attr("createdon", "DateTime", "Created On"),
            attr("completedon", "DateTime", "Completed On"),
        ]),
    ];
    for (l, s, set, d, pname) in [
        ("lead", "Lead", "leads", "Lead", "fullname"),
        ("contact", "Contact", "contacts", "Contact", "fullname"),
        ("account", "Account", "accounts", "Account", "name"),
        (
            "opportunity",
            "Opportunity",
            "opportunities",
            "Opportunity",
            "name",
        ),
    ] {
        let name = attr(pname, "String", "Name");
        entities.push(
            table(l, s, set, d, Some(pname))
                .with([name])
                .with(system_lookups()),
        );
    }
    let cfg = format!("{p}_marketoconfig");
    let log = format!("{p}_marketolog");
    if installed {
        let user_lookup = |logical: &str, schema: &str, display: &str| {
            let schema = format!("{p}_{schema}");
            lookup(
                &format!("{p}_{logical}"),
                &schema,
                "systemuser",
                display,
                &schema,
            )
        };
        let mut a = vec![
            attr(&format!("{p}_name"), "String", "Name"),
            user_lookup("marketouser", "MarketoUser", &opts.marketo_user_label),
            user_lookup("lastsyncuser", "LastSyncUser", "Last Sync User"),
            attr("statecode", "State", "Status"),
        ];
        for x in a.iter_mut() {
            x.custom = true;
            if x.schema == x.logical {
                x.schema = format!("{p}_Name");
            }
        }
        let name = Some(format!("{p}_name"));
        let config = table(
            &cfg,
            &format!("{p}_MarketoConfig"),
            &format!("{cfg}s"),
            &opts.marketo_config_label,
            name.as_deref(),
        );
        entities.push(Entity {
            custom: true,
            ..config.with(a).with(system_lookups())
        });
        let a = [
            attr(&format!("{p}_name"), "String", "Name"),
            attr(&format!("{p}_message"), "Memo", "Message"),
        ];
        let marketo_log = table(
            &log,
            &format!("{p}_MarketoLog"),
            &format!("{log}s"),
            "Marketo Log",
            name.as_deref(),
        );
        entities.push(Entity {
            custom: true,
            ..marketo_log.with(a).with(system_lookups())
        });
    }
    for (e, l, ty) in &opts.seed_attributes {
        if let Some(ent) = entities.iter_mut().find(|x| x.logical == *e) {
            let mut a = attr(l, ty, l);
            a.custom = true;
            ent.attrs.push(a);
        }
    }

    let mut rows: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let now = rfc3339_secs(now_ms()) + "Z";
    let root_bu = new_guid();
    let sales_bu = new_guid();
    rows.insert("businessunit".into(), vec![
        json!({"businessunitid": root_bu, "name": "contoso", "_parentbusinessunitid_value": null, "isdisabled": false, "createdon": now}),
        json!({"businessunitid": sales_bu, "name": "Sales", "_parentbusinessunitid_value": root_bu, "isdisabled": false, "createdon": now}),
    ]);
    let mut roles = Vec::new();
    let mut names = vec!["System Administrator", "Basic User"];
    if installed {
        names.push("Marketo Sync User");
    }
    for n in &names {
        let tmpl = new_guid();
        let root_role = new_guid();
        roles.push(json!({"roleid": root_role, "name": n, "_businessunitid_value": root_bu, "_parentrootroleid_value": root_role, "roletemplateid": tmpl, "ismanaged": true}));
        roles.push(json!({"roleid": new_guid(), "name": n, "_businessunitid_value": sales_bu, "_parentrootroleid_value": root_role, "roletemplateid": tmpl, "ismanaged": true}));
    }
    let sysadmin_root = roles[0]["roleid"].as_str().unwrap_or_default().to_string();
    let admin_user = new_guid();
    let admin_app_user = new_guid();
    let mut users = vec![
        json!({"systemuserid": admin_user, "fullname": "Admin User", "firstname": "Admin", "lastname": "User", "internalemailaddress": admin.user_upn, "domainname": admin.user_upn, "applicationid": null, "azureactivedirectoryobjectid": admin.user_oid, "isdisabled": false, "accessmode": 0, "deletedstate": 0, "title": null, "islicensed": true, "_businessunitid_value": root_bu, "createdon": now}),
        // a soft-deleted application user: filters on applicationid must be checked client-side
        json!({"systemuserid": new_guid(), "fullname": "Old Integration", "firstname": "#", "lastname": "Old Integration", "internalemailaddress": "old-integration@contoso.onmicrosoft.com", "domainname": "old-integration@contoso.onmicrosoft.com", "applicationid": new_guid(), "azureactivedirectoryobjectid": new_guid(), "isdisabled": true, "accessmode": 4, "deletedstate": 1, "title": null, "islicensed": false, "_businessunitid_value": root_bu, "createdon": now}),
    ];
    let mut user_roles = vec![(admin_user.clone(), sysadmin_root.clone())];
    // The admin's own app is an application user only when it was added as one (Learn "Use
    // OAuth authentication with Microsoft Dataverse": register the app as an application user);
    // with `--admin-dataverse-role none` it is not, and Dataverse refuses its tokens.
    if let Some(role_name) = &opts.admin_dataverse_role {
        let role = roles
            .iter()
            .find(|r| r["name"] == json!(role_name) && r["_businessunitid_value"] == json!(root_bu))
            .and_then(|r| r["roleid"].as_str())
            .unwrap_or(&sysadmin_root)
            .to_string();
        users.push(json!({"systemuserid": admin_app_user, "fullname": "Tenant Admin Automation", "firstname": "#", "lastname": "Tenant Admin Automation", "internalemailaddress": format!("{}@contoso.onmicrosoft.com", admin.client_id), "domainname": format!("{}@contoso.onmicrosoft.com", admin.client_id), "applicationid": admin.client_id, "azureactivedirectoryobjectid": new_guid(), "isdisabled": false, "accessmode": 4, "deletedstate": 0, "title": null, "islicensed": false, "_businessunitid_value": root_bu, "createdon": now}));
        user_roles.push((admin_app_user, role));
    }
    rows.insert("systemuser".into(), users);
    rows.insert("role".into(), roles);
    let default_pub = new_guid();
    let mkto_pub = new_guid();
    rows.insert("publisher".into(), vec![
        json!({"publisherid": default_pub, "uniquename": "DefaultPublishercontoso", "friendlyname": "Default Publisher for contoso", "customizationprefix": "new"}),
        json!({"publisherid": mkto_pub, "uniquename": "Marketo", "friendlyname": "Marketo", "customizationprefix": p}),
    ]);
    let mut solutions = vec![
        json!({"solutionid": new_guid(), "uniquename": "Default", "friendlyname": "Default Solution", "version": "1.0", "ismanaged": false, "isvisible": false, "installedon": now, "description": null, "_publisherid_value": default_pub}),
    ];
    let mut comps = Vec::new();
    if let Some(v) = &opts.marketo_version {
        let sid = new_guid();
        solutions.push(json!({"solutionid": sid, "uniquename": "MarketoLeadManagement", "friendlyname": "Marketo Lead Management", "version": v, "ismanaged": true, "isvisible": true, "installedon": now, "description": "Marketo Lead Management for Microsoft Dynamics", "_publisherid_value": mkto_pub}));
        for e in entities.iter().filter(|e| e.custom) {
            comps.push(json!({"solutioncomponentid": new_guid(), "_solutionid_value": sid, "componenttype": 1, "objectid": e.id, "rootcomponentbehavior": 0, "ismetadata": true}));
            for a in e.attrs.iter().filter(|a| a.custom).take(1) {
                comps.push(json!({"solutioncomponentid": new_guid(), "_solutionid_value": sid, "componenttype": 2, "objectid": a.id, "rootcomponentbehavior": 0, "ismetadata": true}));
            }
        }
        // a stock entity the solution also touches (components are not only Marketo's own)
        if let Some(lead) = entities.iter().find(|e| e.logical == "lead") {
            comps.push(json!({"solutioncomponentid": new_guid(), "_solutionid_value": sid, "componenttype": 1, "objectid": lead.id, "rootcomponentbehavior": 2, "ismetadata": true}));
        }
        let nm = format!("{p}_name");
        let id = format!("{cfg}id");
        let mu = format!("_{p}_marketouser_value");
        let lu = format!("_{p}_lastsyncuser_value");
        let mut rows_cfg = Vec::new();
        for name in ["Default", "Backup"] {
            let mut r = Map::new();
            r.insert(id.clone(), json!(new_guid()));
            r.insert(nm.clone(), json!(name));
            r.insert(mu.clone(), Value::Null);
            r.insert(lu.clone(), json!(admin_user));
            r.insert("statecode".into(), json!(0));
            for k in [
                "_createdby_value",
                "_modifiedby_value",
                "_owninguser_value",
                "_ownerid_value",
            ] {
                r.insert(k.into(), json!(admin_user));
            }
            r.insert("createdon".into(), json!(now));
            r.insert("modifiedon".into(), json!(now));
            rows_cfg.push(Value::Object(r));
        }
        rows.insert(cfg.clone(), rows_cfg);
    }
    rows.insert("solution".into(), solutions);
    rows.insert("solutioncomponent".into(), comps);
    Dv {
        org_id: new_guid(),
        entities,
        rows,
        user_roles,
        publish_history: Vec::new(),
    }
}

// ---------- errors ----------

/// Dataverse's error envelope.
pub fn error_reply(status: u16, code: &str, msg: &str) -> Reply {
    Reply::json(status, json!({"error": {"code": code, "message": msg}}))
}
fn no_segment(seg: &str) -> Reply {
    error_reply(
        404,
        "0x8006088a",
        &format!("Resource not found for the segment '{seg}'."),
    )
}
fn no_property(name: &str, ty: &str) -> Reply {
    error_reply(
        400,
        "0x0",
        &format!("Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{ty}'."),
    )
}
fn no_resource(sim: &Sim, ctx: &Ctx) -> Reply {
    error_reply(
        404,
        "",
        &format!(
            "No HTTP resource was found that matches the request URI '{}{}'.",
            sim.urls().dynamics,
            ctx.path
        ),
    )
}
fn does_not_exist(entity: &str, id: &str) -> Reply {
    error_reply(
        404,
        "0x80040217",
        &format!("{entity} With Id = {id} Does Not Exist"),
    )
}
fn lock_error() -> Reply {
    error_reply(
        400,
        "0x80090412",
        "Cannot start the requested operation because there is an entity customization running at this moment.",
    )
}

type R = Result<Reply, Reply>;

const BASE: &str = "/api/data/v9.2";

struct Caller {
    user_id: String,
    bu: String,
    admin: bool,
}

/// Entry point for the org listener.
pub async fn handle(sim: &Arc<Sim>, ctx: &Ctx) -> Reply {
    match handle_inner(sim, ctx).await {
        Ok(r) | Err(r) => r,
    }
}

async fn handle_inner(sim: &Arc<Sim>, ctx: &Ctx) -> R {
    let urls = sim.urls();
    let Some(rest) = ctx.path.strip_prefix(BASE) else {
        let first = ctx
            .path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("");
        return Err(no_segment(first));
    };
    let tenant_id = lock(&sim.tenant).tenant_id.clone();
    let auth = ctx.header("authorization");
    let claims = check_bearer(sim, auth, &urls.dynamics).map_err(|e| {
        error_reply(401, "0x80072561", &format!("Authentication failed: {e:?}")).header(
            "www-authenticate",
            format!(
                "Bearer authorization_uri={}/{tenant_id}/oauth2/authorize, resource_id={}/",
                urls.main, urls.dynamics
            ),
        )
    })?;
    // service protection: a per-caller budget
    {
        let key = crate::state::sha256_hex(auth.unwrap_or(""));
        let mut rate = lock(&sim.rate);
        let q = rate.entry(key).or_default();
        let now = Instant::now();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
        {
            q.pop_front();
        }
        if q.len() >= 60 {
            return Err(error_reply(
                429,
                "0x80072322",
                "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
            )
            .header("retry-after", "1"));
        }
        q.push_back(now);
    }
    let caller = {
        let t = lock(&sim.tenant);
        let users = t
            .dataverse
            .rows
            .get("systemuser")
            .cloned()
            .unwrap_or_default();
        let is_user = claims["idtyp"] == "user";
        let want = if is_user {
            claims["oid"].as_str()
        } else {
            claims["appid"].as_str()
        };
        let field = if is_user {
            "azureactivedirectoryobjectid"
        } else {
            "applicationid"
        };
        let u = users.iter().find(|u| {
            u[field]
                .as_str()
                .zip(want)
                .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
                && u["deletedstate"] != json!(1)
        });
        let Some(u) = u else {
            return Err(error_reply(
                403,
                "0x80072560",
                "The user is not a member of the organization.",
            ));
        };
        if u["isdisabled"] == json!(true) {
            // UNVERIFIED: code/wording for a disabled (application) user.
            return Err(error_reply(
                403,
                "0x80040225",
                &format!(
                    "The user with SystemUserId={} is disabled. Disabled users cannot access the system. Consider enabling this user.",
                    u["systemuserid"].as_str().unwrap_or("")
                ),
            ));
        }
        let uid = u["systemuserid"].as_str().unwrap_or("").to_string();
        let roles = t.dataverse.rows.get("role").cloned().unwrap_or_default();
        let admin = t.dataverse.user_roles.iter().any(|(us, r)| {
            *us == uid
                && roles.iter().any(|x| {
                    x["roleid"].as_str() == Some(r.as_str()) && x["name"] == "System Administrator"
                })
        });
        Caller {
            user_id: uid,
            bu: u["_businessunitid_value"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            admin,
        }
    };
    let raw: Vec<&str> = rest
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let Some(first_raw) = raw.first() else {
        return Ok(Reply::json(
            200,
            json!({"@odata.context": format!("{}{BASE}/$metadata", urls.dynamics), "value": []}),
        ));
    };
    let first_dec = odata::decode_path(first_raw);
    let fname = first_dec.strip_suffix("()").unwrap_or(&first_dec);
    let m = ctx.method.as_str();
    match fname {
        "WhoAmI" if raw.len() == 1 => {
            if m != "GET" {
                return Err(no_resource(sim, ctx));
            }
            let org = lock(&sim.tenant).dataverse.org_id.clone();
            return Ok(Reply::json(
                200,
                json!({
                    "@odata.context": format!("{}{BASE}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse", urls.dynamics),
                    "BusinessUnitId": caller.bu, "UserId": caller.user_id, "OrganizationId": org
                }),
            ));
        }
        "RetrieveVersion" if raw.len() == 1 => {
            if m != "GET" {
                return Err(no_resource(sim, ctx));
            }
            return Ok(Reply::json(
                200,
                json!({"@odata.context": format!("{}{BASE}/$metadata#Microsoft.Dynamics.CRM.RetrieveVersionResponse", urls.dynamics), "Version": "9.2.25041.00183"}),
            ));
        }
        "PublishAllXml" | "PublishXml" | "PublishAllXmlAsync" if raw.len() == 1 => {
            if m != "POST" {
                return Err(no_resource(sim, ctx));
            }
            if !caller.admin {
                return Err(privilege(&caller, "prvPublishCustomizations"));
            }
            return publish(sim, ctx, fname).await;
        }
        _ => {}
    }
    if m != "GET" && !caller.admin {
        return Err(privilege(&caller, "prvWriteUser"));
    }
    let mut segs = Vec::new();
    for r in &raw {
        segs.push(odata::parse_segment(r).map_err(|s| no_segment(&s))?);
    }
    if segs[0].name == "EntityDefinitions" {
        return metadata(sim, ctx, &segs);
    }
    records(sim, ctx, &segs)
}

fn privilege(c: &Caller, prv: &str) -> Reply {
    error_reply(
        403,
        "0x80040220",
        &format!(
            "Principal user (Id={}, type=8, roleCount=1, privilegeCount=0, accessMode='4', MetadataCachePrivilegesCount=0, BusinessUnitId={}), is missing {prv} privilege.",
            c.user_id, c.bu
        ),
    )
}

// ---------- publishing ----------

async fn publish(sim: &Arc<Sim>, ctx: &Ctx, action: &str) -> R {
    if ctx.body.is_empty() {
        return Err(Reply::json(
            411,
            json!({"error": {"code": "", "message": "Length Required"}}),
        ));
    }
    let body: Value = serde_json::from_slice(&ctx.body)
        .map_err(|_| error_reply(400, "0x0", "The request body is not valid JSON."))?;
    let Value::Object(params) = &body else {
        return Err(error_reply(
            400,
            "0x0",
            "The request body must be a JSON object.",
        ));
    };
    let allowed: &[&str] = if action == "PublishXml" {
        &["ParameterXml"]
    } else {
        &[]
    };
    if let Some(k) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(error_reply(
            400,
            "0x0",
            &format!(
                "The parameter '{k}' in the request payload is not a valid parameter for the operation '{action}'."
            ),
        ));
    }
    let mut entities = vec!["*".to_string()];
    if action == "PublishXml" {
        let Some(xml) = params.get("ParameterXml").and_then(Value::as_str) else {
            return Err(error_reply(
                400,
                "0x80040203",
                "Required parameter 'ParameterXml' is missing.",
            ));
        };
        if !xml.trim_start().starts_with("<importexportxml>") {
            return Err(error_reply(
                400,
                "0x80040203",
                "The ParameterXml is not valid: root element must be importexportxml.",
            ));
        }
        entities = xml
            .split("<entity>")
            .skip(1)
            .filter_map(|s| s.split_once("</entity>").map(|(e, _)| e.trim().to_string()))
            .collect();
        let t = lock(&sim.tenant);
        if let Some(bad) = entities
            .iter()
            .find(|e| !t.dataverse.entities.iter().any(|x| x.logical == **e))
        {
            return Err(error_reply(
                400,
                "0x80040217",
                &format!("Could not find an entity with specified entity name: {bad}"),
            ));
        }
    }
    let ms = sim.opts.publish_ms;
    {
        let mut p = lock(&sim.publish_until);
        if p.is_some_and(|u| u > now_ms()) {
            return Err(lock_error());
        }
        *p = Some(now_ms() + ms.max(1));
    }
    let record = move |sim: &Sim, kind: &str, entities: Vec<String>| {
        lock(&sim.tenant).dataverse.publish_history.push(
            json!({"action": kind, "entities": entities, "at": crate::state::rfc3339(now_ms())}),
        );
        *lock(&sim.publish_until) = None;
    };
    if action == "PublishAllXmlAsync" {
        let id = new_guid();
        lock(&sim.tenant).dataverse.rows.entry("asyncoperation".into()).or_default().push(json!({
            "asyncoperationid": id, "name": "Publish All Customizations", "operationtype": 10, "statecode": 0, "statuscode": 20,
            "message": null, "createdon": rfc3339_secs(now_ms()) + "Z", "completedon": null
        }));
        let s2 = Arc::clone(sim);
        let id2 = id.clone();
        let failure = lock(&sim.fail_next_publish).take();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            {
                let mut t = lock(&s2.tenant);
                if let Some(r) = t
                    .dataverse
                    .rows
                    .get_mut("asyncoperation")
                    .and_then(|v| v.iter_mut().find(|r| r["asyncoperationid"] == json!(id2)))
                {
                    // statecode 3 Completed; statuscode 30 Succeeded, 31 Failed (reference §3).
                    r["statecode"] = json!(3);
                    r["statuscode"] = json!(if failure.is_some() { 31 } else { 30 });
                    r["message"] = json!(failure);
                    r["completedon"] = json!(rfc3339_secs(now_ms()) + "Z");
                }
            }
            if failure.is_some() {
                *lock(&s2.publish_until) = None;
            } else {
                record(&s2, "PublishAllXmlAsync", vec!["*".into()]);
            }
            s2.save();
        });
        return Ok(Reply::json(
            200,
            json!({"@odata.context": format!("{}{BASE}/$metadata#Microsoft.Dynamics.CRM.PublishAllXmlAsyncResponse", sim.urls().dynamics), "AsyncOperationId": id}),
        ));
    }
    tokio::time::sleep(Duration::from_millis(ms)).await;
    record(sim, action, entities);
    Ok(Reply::empty(204))
}

// ---------- metadata ----------

fn label(s: &str) -> Value {
    let l = json!({"Label": s, "LanguageCode": 1033, "IsManaged": true, "MetadataId": new_guid(), "HasChanged": null});
    json!({"LocalizedLabels": [l.clone()], "UserLocalizedLabel": l})
}

fn entity_json(e: &Entity) -> Value {
    json!({
        "MetadataId": e.id, "LogicalName": e.logical, "SchemaName": e.schema, "EntitySetName": e.set,
        "LogicalCollectionName": e.set, "DisplayName": label(&e.display), "DisplayCollectionName": label(&format!("{}s", e.display)),
        "Description": label(""), "PrimaryIdAttribute": e.primary_id, "PrimaryNameAttribute": e.primary_name,
        "IsCustomEntity": e.custom, "IsManaged": true, "ObjectTypeCode": 10000, "OwnershipType": "UserOwned", "IsActivity": false
    })
}

fn attr_json(e: &Entity, a: &Attr) -> Value {
    let otype = match a.ty.as_str() {
        "Lookup" | "Owner" | "Customer" => "LookupAttributeMetadata",
        "Uniqueidentifier" => "UniqueIdentifierAttributeMetadata",
        "Boolean" => "BooleanAttributeMetadata",
        "Picklist" => "PicklistAttributeMetadata",
        "State" => "StateAttributeMetadata",
        "Status" => "StatusAttributeMetadata",
        "DateTime" => "DateTimeAttributeMetadata",
        "Integer" => "IntegerAttributeMetadata",
        "Memo" => "MemoAttributeMetadata",
        _ => "StringAttributeMetadata",
    };
    let mut v = json!({
        "@odata.type": format!("#Microsoft.Dynamics.CRM.{otype}"),
        "MetadataId": a.id, "LogicalName": a.logical, "SchemaName": a.schema, "AttributeType": a.ty,
        "AttributeTypeName": {"Value": format!("{}Type", a.ty)}, "DisplayName": label(&a.display),
        "EntityLogicalName": e.logical, "IsCustomAttribute": a.custom,
        "RequiredLevel": {"Value": "None", "CanBeChanged": true, "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"}
    });
    if a.is_lookup() {
        v["Targets"] = json!(a.targets);
    }
    v
}

fn rel_json(e: &Entity, a: &Attr, target: &str) -> Value {
    let schema = if a.custom {
        format!(
            "{}_{}_{}",
            e.logical.split('_').next().unwrap_or("new"),
            target,
            a.logical
        )
    } else {
        format!("lk_{}_{}", e.logical, a.logical)
    };
    let (pid, _) = match target {
        "businessunit" => ("businessunitid", ()),
        "role" => ("roleid", ()),
        "solution" => ("solutionid", ()),
        "publisher" => ("publisherid", ()),
        "owner" => ("ownerid", ()),
        _ => ("systemuserid", ()),
    };
    let h = crate::state::sha256_hex(&format!("{}:{}", e.logical, a.logical));
    let rel_id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    json!({
        "MetadataId": rel_id,
        "SchemaName": schema, "RelationshipType": "OneToManyRelationship", "IsCustomRelationship": a.custom,
        "ReferencedEntity": target, "ReferencedAttribute": pid, "ReferencingEntity": e.logical, "ReferencingAttribute": a.logical,
        "ReferencedEntityNavigationPropertyName": format!("{}_{}", schema, e.logical),
        "ReferencingEntityNavigationPropertyName": a.nav.clone().unwrap_or_else(|| a.logical.clone())
    })
}

fn many_to_one(e: &Entity) -> Vec<Value> {
    e.attrs
        .iter()
        .filter(|a| a.is_lookup())
        .map(|a| {
            // ownerid points at the 'owner' pseudo-entity, not systemuser
            let target = if a.ty == "Owner" {
                "owner".to_string()
            } else {
                a.targets.first().cloned().unwrap_or_default()
            };
            rel_json(e, a, &target)
        })
        .collect()
}

fn meta_list(sim: &Sim, ctx: &Ctx, ty: &str, ctx_path: &str, items: Vec<Value>) -> R {
    let mut items = items;
    if let Some(f) = ctx.q("$filter") {
        let filter = odata::parse_filter(f, odata::Syntax::DATAVERSE)
            .map_err(|e| error_reply(400, "0x0", &e))?;
        for c in filter.clauses() {
            if items.first().is_some_and(|o| o.get(&c.prop).is_none()) {
                return Err(no_property(&c.prop, ty));
            }
        }
        items.retain(|o| odata::matches(o, &filter));
    }
    let sel = meta_select(ctx, ty, items.first())?;
    let items: Vec<Value> = items
        .iter()
        .map(|o| odata::select(o, sel.as_deref(), &["MetadataId"]))
        .collect();
    Ok(collection(sim, ctx_path, items))
}

/// A collection answer: `{"@odata.context": ".../$metadata#<context>", "value": [...]}`.
fn collection(sim: &Sim, context: &str, items: Vec<Value>) -> Reply {
    Reply::json(
        200,
        json!({"@odata.context": format!("{}{BASE}/$metadata#{context}", sim.urls().dynamics), "value": items}),
    )
}

fn meta_select(ctx: &Ctx, ty: &str, sample: Option<&Value>) -> Result<Option<Vec<String>>, Reply> {
    let Some(s) = ctx.q("$select") else {
        return Ok(None);
    };
    let list = odata::parse_select(s);
    if let Some(sample) = sample {
        for p in &list {
            if sample.get(p).is_none() {
                return Err(no_property(p, ty));
            }
        }
    }
    Ok(Some(list))
}

fn meta_single(sim: &Sim, ctx: &Ctx, ty: &str, path: &str, v: Value) -> R {
    let sel = meta_select(ctx, ty, Some(&v))?;
    let mut out = odata::select(&v, sel.as_deref(), &["MetadataId"]);
    out["@odata.context"] = json!(format!("{}{BASE}/$metadata#{path}", sim.urls().dynamics));
    Ok(Reply::json(200, out))
}

fn find_entity<'a>(t: &'a Dv, seg: &Segment) -> Option<&'a Entity> {
    match &seg.key {
        Some(Key::Single(Literal::Guid(g))) => {
            t.entities.iter().find(|e| e.id.eq_ignore_ascii_case(g))
        }
        Some(Key::Named(kv)) if kv.len() == 1 && kv[0].0 == "LogicalName" => {
            let n = kv[0].1.as_text()?;
            t.entities.iter().find(|e| e.logical == n)
        }
        _ => None,
    }
}

fn metadata(sim: &Sim, ctx: &Ctx, segs: &[Segment]) -> R {
    let m = ctx.method.as_str();
    let first = &segs[0];
    if first.key.is_none() {
        if segs.len() > 1 {
            return Err(no_segment(&segs[1].name));
        }
        if m != "GET" {
            return Err(no_resource(sim, ctx));
        }
        let items: Vec<Value> = lock(&sim.tenant)
            .dataverse
            .entities
            .iter()
            .map(entity_json)
            .collect();
        return meta_list(sim, ctx, "EntityMetadata", "EntityDefinitions", items);
    }
    let t = lock(&sim.tenant);
    let Some(e) = find_entity(&t.dataverse, first).cloned() else {
        let name = match &first.key {
            Some(Key::Named(kv)) => kv[0].1.as_text().unwrap_or("").to_string(),
            Some(Key::Single(l)) => format!("{l:?}"),
            None => String::new(),
        };
        return Err(error_reply(
            404,
            "0x80040217",
            &format!("Could not find an entity with specified entity name: {name}"),
        ));
    };
    drop(t);
    match segs.get(1).map(|s| s.name.as_str()) {
        None => {
            if m != "GET" {
                return Err(no_resource(sim, ctx));
            }
            meta_single(
                sim,
                ctx,
                "EntityMetadata",
                "EntityDefinitions/$entity",
                entity_json(&e),
            )
        }
        Some("ManyToOneRelationships") if segs.len() == 2 && segs[1].key.is_none() => {
            if m != "GET" {
                return Err(no_resource(sim, ctx));
            }
            meta_list(
                sim,
                ctx,
                "OneToManyRelationshipMetadata",
                &format!("EntityDefinitions('{}')/ManyToOneRelationships", e.id),
                many_to_one(&e),
            )
        }
        Some("Attributes") if segs.len() == 2 && segs[1].key.is_some() && m == "DELETE" => {
            delete_attribute(sim, &e, &segs[1])
        }
        Some("Attributes") if segs.len() == 2 && segs[1].key.is_some() => {
            if m != "GET" {
                return Err(no_resource(sim, ctx));
            }
            let a = match &segs[1].key {
                Some(Key::Single(Literal::Guid(g))) => {
                    e.attrs.iter().find(|a| a.id.eq_ignore_ascii_case(g))
                }
                Some(Key::Named(kv)) if kv.len() == 1 && kv[0].0 == "LogicalName" => e
                    .attrs
                    .iter()
                    .find(|a| Some(a.logical.as_str()) == kv[0].1.as_text()),
                _ => None,
            };
            let Some(a) = a else {
                let n = match &segs[1].key {
                    Some(Key::Named(kv)) => kv[0].1.as_text().unwrap_or("").to_string(),
                    _ => String::new(),
                };
                return Err(error_reply(
                    404,
                    "0x80040217",
                    &format!(
                        "Could not find attribute with name {n} on entity {}.",
                        e.logical
                    ),
                ));
            };
            meta_single(
                sim,
                ctx,
                "AttributeMetadata",
                &format!("EntityDefinitions('{}')/Attributes/$entity", e.id),
                attr_json(&e, a),
            )
        }
        Some("Attributes") if segs.len() == 2 => match m {
            "GET" => meta_list(
                sim,
                ctx,
                "AttributeMetadata",
                &format!("EntityDefinitions('{}')/Attributes", e.id),
                e.attrs.iter().map(|a| attr_json(&e, a)).collect(),
            ),
            "POST" => create_attribute(sim, ctx, &e),
            _ => Err(no_resource(sim, ctx)),
        },
        Some(other) => Err(no_segment(other)),
    }
}

fn create_attribute(sim: &Sim, ctx: &Ctx, e: &Entity) -> R {
    let body: Value = serde_json::from_slice(&ctx.body)
        .map_err(|_| error_reply(400, "0x0", "The request body is not valid JSON."))?;
    let otype = body
        .get("@odata.type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('#')
        .to_string();
    let ty = match otype.as_str() {
        "Microsoft.Dynamics.CRM.BooleanAttributeMetadata" => "Boolean",
        "Microsoft.Dynamics.CRM.StringAttributeMetadata" => "String",
        "" => {
            return Err(error_reply(
                400,
                "0x0",
                "An attribute type must be specified with @odata.type.",
            ));
        }
        other => {
            return Err(error_reply(
                400,
                "0x0",
                &format!("Attribute type '{other}' is not supported by this emulator."),
            ));
        }
    };
    let Some(schema) = body
        .get("SchemaName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Err(error_reply(400, "0x80040203", "SchemaName is required."));
    };
    let prefix = schema.split_once('_').map(|(p, _)| p.to_ascii_lowercase());
    let display = body
        .pointer("/DisplayName/LocalizedLabels/0/Label")
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(display) = display else {
        return Err(error_reply(
            400,
            "0x80040203",
            "DisplayName must have at least one localized label.",
        ));
    };
    if ty == "Boolean"
        && (body.pointer("/OptionSet/TrueOption").is_none()
            || body.pointer("/OptionSet/FalseOption").is_none())
    {
        return Err(error_reply(
            400,
            "0x80040203",
            "A BooleanAttributeMetadata requires an OptionSet with TrueOption and FalseOption.",
        ));
    }
    if lock(&sim.publish_until).is_some_and(|u| u > now_ms()) {
        return Err(lock_error());
    }
    let mut t = lock(&sim.tenant);
    let publishers = t
        .dataverse
        .rows
        .get("publisher")
        .cloned()
        .unwrap_or_default();
    let prefixes: Vec<String> = publishers
        .iter()
        .filter_map(|p| p["customizationprefix"].as_str().map(str::to_string))
        .collect();
    let Some(prefix) = prefix.filter(|p| prefixes.contains(p)) else {
        // UNVERIFIED: wording for a schema name without a publisher prefix.
        return Err(error_reply(
            400,
            "0x80040203",
            &format!(
                "Invalid schema name '{schema}': a custom attribute's SchemaName must start with a publisher customization prefix followed by '_' (one of: {}).",
                prefixes.join(", ")
            ),
        ));
    };
    if let Some(sol) = ctx.header("mscrm.solutionuniquename") {
        let sols = t
            .dataverse
            .rows
            .get("solution")
            .cloned()
            .unwrap_or_default();
        let Some(s) = sols.iter().find(|s| {
            s["uniquename"]
                .as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(sol))
        }) else {
            return Err(error_reply(
                404,
                "0x8004a101",
                &format!("The solution '{sol}' was not found."),
            ));
        };
        let pp = publishers
            .iter()
            .find(|p| p["publisherid"] == s["_publisherid_value"])
            .and_then(|p| p["customizationprefix"].as_str())
            .unwrap_or("");
        if pp != prefix {
            return Err(error_reply(
                400,
                "0x80040203",
                &format!(
                    "The customization prefix '{prefix}' does not match the prefix '{pp}' of the publisher of solution '{sol}'."
                ),
            ));
        }
    }
    let logical = schema.to_ascii_lowercase();
    let Some(ent) = t
        .dataverse
        .entities
        .iter_mut()
        .find(|x| x.logical == e.logical)
    else {
        return Err(no_segment(&e.logical));
    };
    if ent.attrs.iter().any(|a| a.logical == logical) {
        // UNVERIFIED: HTTP status for a duplicate schema name (code from the error table).
        return Err(error_reply(
            400,
            "0x80047013",
            &format!(
                "An attribute with the specified name {logical} already exists. Please specify a unique name."
            ),
        ));
    }
    let mut a = attr(&logical, ty, &display);
    a.schema = schema.to_string();
    a.custom = true;
    let id = a.id.clone();
    ent.attrs.push(a);
    Ok(Reply::empty(204).header(
        "odata-entityid",
        format!(
            "{}{BASE}/EntityDefinitions(LogicalName='{}')/Attributes({id})",
            sim.urls().dynamics,
            e.logical
        ),
    ))
}

/// `DELETE EntityDefinitions(...)/Attributes(<MetadataId> or LogicalName='x')`: "DeleteAttribute:
/// DELETE to the URL of the column"
/// (learn.microsoft.com/power-apps/developer/data-platform/entity-attribute-metadata-messages).
/// The column and every value in it are gone (rows lose the property). Standard (system) columns
/// cannot be deleted, only custom ones (learn.microsoft.com/power-apps/maker/data-platform/
/// delete-fields); a lookup goes with its relationship, and the primary name column with its
/// table, so both are refused here. Like a create, it waits for a running publish (the customization lock).
fn delete_attribute(sim: &Sim, e: &Entity, key: &Segment) -> R {
    if lock(&sim.publish_until).is_some_and(|u| u > now_ms()) {
        return Err(lock_error());
    }
    let mut t = lock(&sim.tenant);
    let Some(ent) = t
        .dataverse
        .entities
        .iter_mut()
        .find(|x| x.logical == e.logical)
    else {
        return Err(no_segment(&e.logical));
    };
    let pos = match &key.key {
        Some(Key::Single(Literal::Guid(g))) => {
            ent.attrs.iter().position(|a| a.id.eq_ignore_ascii_case(g))
        }
        Some(Key::Named(kv)) if kv.len() == 1 && kv[0].0 == "LogicalName" => ent
            .attrs
            .iter()
            .position(|a| Some(a.logical.as_str()) == kv[0].1.as_text()),
        _ => None,
    };
    let Some(pos) = pos else {
        return Err(error_reply(
            404,
            "0x80040217",
            &format!("Could not find the attribute on entity {}.", e.logical),
        ));
    };
    let a = &ent.attrs[pos];
    // UNVERIFIED: the exact codes and wording of these three refusals.
    if !a.custom {
        return Err(error_reply(
            400,
            "0x80047006",
            &format!(
                "The attribute {} is not a custom attribute and cannot be deleted.",
                a.logical
            ),
        ));
    }
    if a.is_lookup() {
        return Err(error_reply(
            400,
            "0x80047006",
            &format!(
                "The lookup attribute {} cannot be deleted directly; delete its relationship instead.",
                a.logical
            ),
        ));
    }
    if ent.primary_name.as_deref() == Some(a.logical.as_str()) {
        return Err(error_reply(
            400,
            "0x80047006",
            &format!(
                "The primary name attribute {} cannot be deleted.",
                a.logical
            ),
        ));
    }
    let removed = ent.attrs.remove(pos);
    let prop = removed.prop();
    let logical = ent.logical.clone();
    if let Some(rows) = t.dataverse.rows.get_mut(&logical) {
        for r in rows.iter_mut() {
            if let Some(o) = r.as_object_mut() {
                o.remove(&prop);
            }
        }
    }
    Ok(Reply::empty(204))
}

// ---------- records ----------

fn entity_by_set<'a>(dv: &'a Dv, set: &str) -> Option<&'a Entity> {
    dv.entities.iter().find(|e| e.set == set)
}

/// Map a property name used in $select/$filter to the row key; `None` if unknown.
fn prop_key(e: &Entity, name: &str) -> Option<(String, &'static str)> {
    for a in &e.attrs {
        if a.prop() == name {
            return Some((a.prop(), a.edm()));
        }
        if a.is_lookup() && a.logical == name {
            return Some((a.prop(), a.edm()));
        }
    }
    None
}

fn check_select(e: &Entity, list: &[String]) -> Result<Vec<String>, Reply> {
    list.iter()
        .map(|p| match e.attrs.iter().find(|a| a.prop() == *p) {
            Some(a) => Ok(a.prop()),
            None => Err(no_property(p, &e.logical)),
        })
        .collect()
}

fn filter_rows(e: &Entity, rows: Vec<Value>, f: Option<&str>) -> Result<Vec<Value>, Reply> {
    let Some(f) = f else { return Ok(rows) };
    let mut filter = odata::parse_filter(f, odata::Syntax::DATAVERSE)
        .map_err(|m| error_reply(400, "0x0", &format!("Syntax error in $filter: {m}")))?;
    for c in filter.clauses_mut() {
        let Some((key, edm)) = prop_key(e, &c.prop) else {
            return Err(no_property(&c.prop, &e.logical));
        };
        let ok = matches!(
            (&c.value, edm),
            (Literal::Null, _)
                | (Literal::Guid(_), "Edm.Guid")
                | (Literal::Str(_), "Edm.String" | "Edm.DateTimeOffset")
                | (Literal::DateTime(_), "Edm.DateTimeOffset")
                | (Literal::Bool(_), "Edm.Boolean")
                | (Literal::Num(_), "Edm.Int32")
        );
        if !ok {
            return Err(error_reply(
                400,
                "0x0",
                &format!(
                    "A binary operator with incompatible types was detected. Found operand types '{edm}' and '{}' for operator kind 'Equal'.",
                    c.value.edm()
                ),
            ));
        }
        c.prop = key;
    }
    Ok(rows
        .into_iter()
        .filter(|r| odata::matches(r, &filter))
        .collect())
}

/// What a row query asks for: its `$select` (checked against the entity) and `$expand`, and the
/// `<set>(<selected>)` its answer's `@odata.context` names.
struct RowShape {
    select: Option<Vec<String>>,
    expand: Vec<odata::Expand>,
    context: String,
}

fn row_shape(ctx: &Ctx, e: &Entity, dv: &Dv) -> Result<RowShape, Reply> {
    let select = ctx
        .q("$select")
        .map(|s| check_select(e, &odata::parse_select(s)))
        .transpose()?;
    let expand = parse_expand(ctx, e, dv)?;
    let selected = select
        .as_ref()
        .map(|s| format!("({})", s.join(",")))
        .unwrap_or_default();
    Ok(RowShape {
        context: format!("{}{selected}", e.set),
        select,
        expand,
    })
}

fn render_row(dv: &Dv, e: &Entity, row: &Value, shape: &RowShape) -> Value {
    let mut out = odata::select(row, shape.select.as_deref(), &[e.primary_id.as_str()]);
    if let Value::Object(m) = &mut out {
        let etag = (crate::state::sha256_hex(&row.to_string())
            .bytes()
            .take(6)
            .fold(0u64, |a, b| a * 31 + u64::from(b)))
            % 10_000_000;
        let mut n = Map::new();
        n.insert("@odata.etag".into(), json!(format!("W/\"{etag}\"")));
        n.extend(std::mem::take(m));
        *m = n;
    }
    for x in &shape.expand {
        if x.nav == "systemuserroles_association" {
            let uid = row["systemuserid"].as_str().unwrap_or("");
            let roles = user_roles(dv, uid);
            let roles: Vec<Value> = roles
                .iter()
                .map(|r| odata::select(r, x.select.as_deref(), &["roleid"]))
                .collect();
            out["systemuserroles_association"] = Value::Array(roles);
        }
    }
    out
}

fn user_roles(dv: &Dv, uid: &str) -> Vec<Value> {
    let roles = dv.rows.get("role").cloned().unwrap_or_default();
    dv.user_roles
        .iter()
        .filter(|(u, _)| u == uid)
        .filter_map(|(_, r)| {
            roles
                .iter()
                .find(|x| x["roleid"].as_str() == Some(r.as_str()))
                .cloned()
        })
        .collect()
}

fn parse_expand(ctx: &Ctx, e: &Entity, dv: &Dv) -> Result<Vec<odata::Expand>, Reply> {
    let Some(s) = ctx.q("$expand") else {
        return Ok(Vec::new());
    };
    let ex = odata::parse_expand(s).map_err(|m| error_reply(400, "0x0", &m))?;
    for x in &ex {
        if !(e.logical == "systemuser" && x.nav == "systemuserroles_association") {
            return Err(no_property(&x.nav, &e.logical));
        }
        if let (Some(sel), Some(role)) =
            (&x.select, dv.entities.iter().find(|r| r.logical == "role"))
        {
            check_select(role, sel)?;
        }
    }
    Ok(ex)
}

fn page_size(ctx: &Ctx) -> Option<usize> {
    let p = ctx.header("prefer")?;
    p.split(',')
        .find_map(|x| x.trim().strip_prefix("odata.maxpagesize="))
        .and_then(|n| n.trim().parse().ok())
        .filter(|n| *n > 0)
}

fn key_guid(seg: &Segment) -> Option<String> {
    match &seg.key {
        Some(Key::Single(Literal::Guid(g))) => Some(g.clone()),
        _ => None,
    }
}

fn records(sim: &Sim, ctx: &Ctx, segs: &[Segment]) -> R {
    let m = ctx.method.as_str();
    let urls = sim.urls();
    let mut t = lock(&sim.tenant);
    let Some(e) = entity_by_set(&t.dataverse, &segs[0].name).cloned() else {
        return Err(no_segment(&segs[0].name));
    };
    let id = match &segs[0].key {
        None => None,
        Some(_) => Some(key_guid(&segs[0]).ok_or_else(|| {
            error_reply(
                400,
                "0x0",
                &format!(
                    "Bad Request - Error in query syntax: the key of {} must be a GUID.",
                    e.set
                ),
            )
        })?),
    };
    let rows = t
        .dataverse
        .rows
        .get(&e.logical)
        .cloned()
        .unwrap_or_default();
    let pos = id.as_ref().and_then(|id| {
        rows.iter().position(|r| {
            r[&e.primary_id]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(id))
        })
    });
    if segs.len() > 1 {
        let id = id.ok_or_else(|| no_segment(&segs[1].name))?;
        if e.logical != "systemuser" || segs[1].name != "systemuserroles_association" {
            return Err(no_segment(&segs[1].name));
        }
        let Some(pos) = pos else {
            return Err(does_not_exist(&e.logical, &id));
        };
        let uid = rows[pos]["systemuserid"].as_str().unwrap_or("").to_string();
        let ubu = rows[pos]["_businessunitid_value"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let is_ref = segs.last().is_some_and(|s| s.name == "$ref");
        let role_ent = t
            .dataverse
            .entities
            .iter()
            .find(|x| x.logical == "role")
            .cloned();
        return match (m, is_ref, segs.len()) {
            ("GET", false, 2) => {
                let roles = user_roles(&t.dataverse, &uid);
                let sel = match (ctx.q("$select"), &role_ent) {
                    (Some(s), Some(r)) => Some(check_select(r, &odata::parse_select(s))?),
                    _ => None,
                };
                let roles = match &role_ent {
                    Some(r) => filter_rows(r, roles, ctx.q("$filter"))?,
                    None => roles,
                };
                let v: Vec<Value> = roles
                    .iter()
                    .map(|r| odata::select(r, sel.as_deref(), &["roleid"]))
                    .collect();
                Ok(collection(sim, "roles", v))
            }
            ("POST", true, 3) => {
                let body: Value = serde_json::from_slice(&ctx.body).unwrap_or(Value::Null);
                let Some(r) = body.get("@odata.id").and_then(Value::as_str) else {
                    return Err(error_reply(
                        400,
                        "0x0",
                        "The request body must contain an '@odata.id' annotation.",
                    ));
                };
                let rid = role_id_from_url(r).ok_or_else(|| {
                    error_reply(
                        400,
                        "0x0",
                        &format!("The URI '{r}' is not a valid entity reference."),
                    )
                })?;
                let roles = t.dataverse.rows.get("role").cloned().unwrap_or_default();
                let Some(role) = roles
                    .iter()
                    .find(|x| x["roleid"].as_str() == Some(rid.as_str()))
                else {
                    return Err(does_not_exist("role", &rid));
                };
                if role["_businessunitid_value"].as_str() != Some(ubu.as_str()) {
                    // UNVERIFIED: Dataverse's exact error for a role of another business unit.
                    return Err(error_reply(
                        400,
                        "0x80040203",
                        &format!(
                            "The role (Id={rid}) belongs to business unit {}, but the user belongs to business unit {ubu}. A user can only be assigned roles of their own business unit.",
                            role["_businessunitid_value"].as_str().unwrap_or("")
                        ),
                    ));
                }
                if t.dataverse
                    .user_roles
                    .iter()
                    .any(|(u, x)| *u == uid && *x == rid)
                {
                    // UNVERIFIED: status of a duplicate N:N $ref (DuplicateRecord maps to 412).
                    return Err(error_reply(
                        412,
                        "0x80040237",
                        "Cannot insert duplicate key.",
                    ));
                }
                t.dataverse.user_roles.push((uid, rid));
                Ok(Reply::empty(204))
            }
            ("DELETE", true, 3) => {
                let target = ctx.q("$id").map(str::to_string).ok_or_else(|| error_reply(400, "0x0", "The $id query option is required to delete a reference of a collection-valued navigation property."))?;
                let rid = role_id_from_url(&target).ok_or_else(|| {
                    error_reply(
                        400,
                        "0x0",
                        &format!("The URI '{target}' is not a valid entity reference."),
                    )
                })?;
                t.dataverse
                    .user_roles
                    .retain(|(u, x)| !(*u == uid && *x == rid));
                Ok(Reply::empty(204))
            }
            _ => Err(no_resource(sim, ctx)),
        };
    }
    match (m, &id) {
        ("GET", None) => {
            let shape = row_shape(ctx, &e, &t.dataverse)?;
            let mut rows = filter_rows(&e, rows, ctx.q("$filter"))?;
            if let Some(top) = ctx.q("$top").and_then(|x| x.parse::<usize>().ok()) {
                rows.truncate(top);
            }
            let size = page_size(ctx);
            let skip = ctx
                .q("$skiptoken")
                .and_then(|s| s.strip_prefix("<cookie pagenumber=\""))
                .and_then(|s| s.split('"').next())
                .and_then(|n| n.parse::<usize>().ok())
                .map(|p| (p - 1) * size.unwrap_or(5000))
                .unwrap_or(0);
            let per = size.unwrap_or(5000);
            let total = rows.len();
            let page: Vec<Value> = rows
                .iter()
                .skip(skip)
                .take(per)
                .map(|r| render_row(&t.dataverse, &e, r, &shape))
                .collect();
            let mut out = json!({"@odata.context": format!("{}{BASE}/$metadata#{}", urls.dynamics, shape.context), "value": page});
            let mut reply_headers = Vec::new();
            if let Some(n) = size {
                reply_headers.push((
                    "preference-applied".to_string(),
                    format!("odata.maxpagesize={n}"),
                ));
                if skip + per < total {
                    let q = odata::query_before_skiptoken(ctx.raw_query.as_deref());
                    let page_no = skip / per + 2;
                    let cookie = format!(
                        "<cookie pagenumber=\"{page_no}\" pagingcookie=\"\" istracking=\"False\" />"
                    );
                    let enc = percent_encoding::utf8_percent_encode(
                        &cookie,
                        percent_encoding::NON_ALPHANUMERIC,
                    )
                    .to_string();
                    out["@odata.nextLink"] =
                        json!(format!("{}{}?{q}$skiptoken={enc}", urls.dynamics, ctx.path));
                }
            }
            let mut r = Reply::json(200, out);
            for (k, v) in reply_headers {
                r = r.header(&k, v);
            }
            Ok(r)
        }
        ("GET", Some(id)) => {
            let Some(pos) = pos else {
                return Err(does_not_exist(&e.logical, id));
            };
            let shape = row_shape(ctx, &e, &t.dataverse)?;
            let mut out = render_row(&t.dataverse, &e, &rows[pos], &shape);
            out["@odata.context"] = json!(format!(
                "{}{BASE}/$metadata#{}/$entity",
                urls.dynamics, shape.context
            ));
            Ok(Reply::json(200, out))
        }
        ("POST", None) => {
            let body = parse_body(ctx)?;
            // `Prefer: return=representation`: 201 with the new row ($select honoured) instead
            // of 204 + OData-EntityId (reference §7.4, fixture §9.4 "Create with data returned").
            let representation = ctx.header("prefer").is_some_and(|p| {
                p.split(',')
                    .any(|x| x.trim().eq_ignore_ascii_case("return=representation"))
            });
            let shape = if representation {
                Some(row_shape(ctx, &e, &t.dataverse)?)
            } else {
                None
            };
            let new_id = create_row(sim, &mut t, &e, &body, None)?;
            let Some(shape) = shape else {
                return Ok(Reply::empty(204).header(
                    "odata-entityid",
                    format!("{}{BASE}/{}({new_id})", urls.dynamics, e.set),
                ));
            };
            let row = t
                .dataverse
                .rows
                .get(&e.logical)
                .and_then(|rows| {
                    rows.iter().find(|r| {
                        r[&e.primary_id]
                            .as_str()
                            .is_some_and(|x| x.eq_ignore_ascii_case(&new_id))
                    })
                })
                .cloned()
                .unwrap_or(Value::Null);
            let mut out = render_row(&t.dataverse, &e, &row, &shape);
            out["@odata.context"] = json!(format!(
                "{}{BASE}/$metadata#{}/$entity",
                urls.dynamics, e.set
            ));
            Ok(Reply::json(201, out)
                .header("preference-applied", "return=representation".to_string()))
        }
        ("PATCH", Some(id)) => {
            let body = parse_body(ctx)?;
            let if_match = ctx.header("if-match");
            let if_none = ctx.header("if-none-match");
            match pos {
                None if if_match.is_some() => Err(does_not_exist(&e.logical, id)),
                None => {
                    let new_id = create_row(sim, &mut t, &e, &body, Some(id.clone()))?;
                    Ok(Reply::empty(204).header(
                        "odata-entityid",
                        format!("{}{BASE}/{}({new_id})", urls.dynamics, e.set),
                    ))
                }
                Some(_) if if_none == Some("*") => Err(error_reply(
                    412,
                    "",
                    "A record with matching key values already exists.",
                )),
                Some(p) => {
                    let updates = row_values(&t, &e, &body)?;
                    if e.logical == "systemuser" && rows[p]["applicationid"].is_string() {
                        if let Some(k) = updates.keys().find(|k| {
                            ![
                                "isdisabled",
                                "_businessunitid_value",
                                "internalemailaddress",
                                "applicationid",
                            ]
                            .contains(&k.as_str())
                        }) {
                            return Err(error_reply(
                                400,
                                "0x80041d48",
                                &format!(
                                    "The user representing an OAuth application cannot not be updated ('{k}')."
                                ),
                            ));
                        }
                    }
                    if let Some(row) = t
                        .dataverse
                        .rows
                        .get_mut(&e.logical)
                        .and_then(|v| v.get_mut(p))
                    {
                        for (k, v) in updates {
                            row[k] = v;
                        }
                        row["modifiedon"] = json!(rfc3339_secs(now_ms()) + "Z");
                        if e.logical == "systemuser" {
                            if let Some(o) = row.as_object_mut() {
                                o.remove("modifiedon");
                            }
                        }
                    }
                    Ok(Reply::empty(204))
                }
            }
        }
        ("DELETE", Some(id)) => {
            let Some(p) = pos else {
                return Err(does_not_exist(&e.logical, id));
            };
            if e.logical == "systemuser" {
                return delete_system_user(&mut t.dataverse, p);
            }
            if let Some(v) = t.dataverse.rows.get_mut(&e.logical) {
                v.remove(p);
            }
            Ok(Reply::empty(204))
        }
        _ => Err(no_resource(sim, ctx)),
    }
}

fn role_id_from_url(u: &str) -> Option<String> {
    let i = u.rfind("roles(")?;
    let rest = &u[i + 6..];
    let id = rest.strip_suffix(')')?;
    odata::is_guid(id).then(|| id.to_ascii_lowercase())
}

fn parse_body(ctx: &Ctx) -> Result<Value, Reply> {
    if !ctx
        .header("content-type")
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"))
    {
        return Err(error_reply(
            415,
            "0x80048d19",
            "The request must have Content-Type: application/json.",
        ));
    }
    match serde_json::from_slice::<Value>(&ctx.body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(error_reply(
            400,
            "0x80048d19",
            "Error identified in Payload provided by the user: the request body must be a JSON object.",
        )),
    }
}

/// Convert a write body to row values (`_x_value` for binds), validating names, types and binds.
fn row_values(
    t: &crate::state::Tenant,
    e: &Entity,
    body: &Value,
) -> Result<Map<String, Value>, Reply> {
    let mut out = Map::new();
    let Some(obj) = body.as_object() else {
        return Ok(out);
    };
    for (k, v) in obj {
        if let Some(nav) = k.strip_suffix("@odata.bind") {
            let Some(a) = e.attrs.iter().find(|a| a.nav.as_deref() == Some(nav)) else {
                return Err(error_reply(
                    400,
                    "0x80048d19",
                    &format!(
                        "Error identified in Payload provided by the user for Entity :'{}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ----> InnerException : Microsoft.OData.ODataException: An undeclared property '{nav}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values.",
                        e.set
                    ),
                ));
            };
            if v.is_null() {
                out.insert(a.prop(), Value::Null);
                continue;
            }
            let s = v.as_str().unwrap_or("");
            let tail = s.rsplit('/').next().unwrap_or("");
            let (set, id) = tail
                .split_once('(')
                .map(|(a, b)| (a, b.trim_end_matches(')')))
                .unwrap_or(("", ""));
            let target_set: Vec<String> = a
                .targets
                .iter()
                .filter_map(|x| {
                    t.dataverse
                        .entities
                        .iter()
                        .find(|en| en.logical == *x)
                        .map(|en| en.set.clone())
                })
                .collect();
            if !target_set.iter().any(|x| x == set) || !odata::is_guid(id) {
                return Err(error_reply(
                    400,
                    "0x80048d19",
                    &format!(
                        "Error identified in Payload provided by the user for Entity :'{}': the value '{s}' of '{k}' is not a valid reference to {}.",
                        e.set,
                        a.targets.join("/")
                    ),
                ));
            }
            let target_logical = t
                .dataverse
                .entities
                .iter()
                .find(|en| en.set == set)
                .map(|en| (en.logical.clone(), en.primary_id.clone()));
            if let Some((tl, tp)) = target_logical {
                let exists = t.dataverse.rows.get(&tl).is_some_and(|rows| {
                    rows.iter()
                        .any(|r| r[&tp].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
                });
                if !exists {
                    return Err(does_not_exist(&tl, id));
                }
            }
            out.insert(a.prop(), json!(id.to_ascii_lowercase()));
            continue;
        }
        if k.starts_with('@') {
            continue;
        }
        let Some(a) = e.attrs.iter().find(|a| a.logical == *k && !a.is_lookup()) else {
            return Err(error_reply(
                400,
                "0x80060888",
                &format!(
                    "The property '{k}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use property names that are defined by the type.",
                    e.logical
                ),
            ));
        };
        let ok = v.is_null()
            || match a.edm() {
                "Edm.Guid" => v.as_str().is_some_and(odata::is_guid),
                "Edm.Boolean" => v.is_boolean(),
                "Edm.Int32" => v.is_i64(),
                _ => v.is_string(),
            };
        if !ok {
            return Err(error_reply(
                400,
                "0x80048d19",
                &format!(
                    "Error identified in Payload provided by the user for Entity :'{}': cannot convert the value of '{k}' to {}.",
                    e.set,
                    a.edm()
                ),
            ));
        }
        out.insert(a.prop(), v.clone());
    }
    Ok(out)
}

/// `DELETE systemusers(id)`: Dataverse deletes users in two stages (Learn "Delete users from
/// environments"): a disabled user is soft-deleted (`deletedstate` 1), a soft-deleted user is
/// removed for good. Microsoft's Terraform provider purges with two DELETEs
/// (`PermanentlyDeleteSystemUser`). An enabled user cannot be deleted.
fn delete_system_user(dv: &mut Dv, pos: usize) -> R {
    let Some(rows) = dv.rows.get_mut("systemuser") else {
        return Err(does_not_exist("systemuser", ""));
    };
    let row = &mut rows[pos];
    let id = row["systemuserid"].as_str().unwrap_or("").to_string();
    if row["deletedstate"] == json!(1) {
        rows.remove(pos);
        dv.user_roles.retain(|(u, _)| *u != id);
        return Ok(Reply::empty(204));
    }
    if row["isdisabled"] != json!(true) {
        // UNVERIFIED: code and wording for deleting an enabled user.
        return Err(error_reply(
            400,
            "0x80040203",
            &format!(
                "The user with SystemUserId={id} is enabled. Disable the user before deleting it."
            ),
        ));
    }
    row["deletedstate"] = json!(1);
    Ok(Reply::empty(204))
}

/// `POST /_sim/soft-delete-user`: soft-deletes the active application user for an application
/// id, as deleting it in the Power Platform admin center does. `false` when there is none.
pub fn soft_delete_application_user(dv: &mut Dv, application_id: &str) -> bool {
    let Some(rows) = dv.rows.get_mut("systemuser") else {
        return false;
    };
    let Some(row) = rows.iter_mut().find(|r| {
        r["applicationid"]
            .as_str()
            .is_some_and(|x| x.eq_ignore_ascii_case(application_id))
            && r["deletedstate"] != json!(1)
    }) else {
        return false;
    };
    row["isdisabled"] = json!(true);
    row["deletedstate"] = json!(1);
    true
}

fn create_row(
    sim: &Sim,
    t: &mut crate::state::Tenant,
    e: &Entity,
    body: &Value,
    id: Option<String>,
) -> Result<String, Reply> {
    let mut vals = row_values(t, e, body)?;
    let id = id.unwrap_or_else(new_guid);
    if e.logical == "systemuser" {
        if vals.get("_businessunitid_value").is_none_or(Value::is_null) {
            return Err(error_reply(
                400,
                "0x80040203",
                "Expecting business column to be set for Creating business owned entities, business column is null",
            ));
        }
        if let Some(app_id) = vals
            .get("applicationid")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            // Dataverse learns about the app from Entra ID, so it sees only what has replicated.
            let replicated = |objects: &[crate::state::Obj]| {
                objects
                    .iter()
                    .find(|o| {
                        o.str("appId")
                            .is_some_and(|x| x.eq_ignore_ascii_case(&app_id))
                            && sim.visible(o.created_ms)
                    })
                    .cloned()
            };
            let app = replicated(&t.applications);
            let sp = replicated(&t.service_principals);
            let (Some(app), Some(sp)) = (app, sp) else {
                // UNVERIFIED: the real code/wording when the app id is unknown to Entra (or not replicated yet).
                return Err(error_reply(
                    400,
                    "0x80041d2a",
                    &format!(
                        "The object does not exist in active directory. No service principal for application id {app_id} was found in tenant {}.",
                        t.tenant_id
                    ),
                ));
            };
            // Real Dataverse answers 412 DuplicateRecord when any row has this applicationid,
            // soft-deleted rows included (microsoft/terraform-provider-power-platform issue
            // 623; the provider purges soft-deleted application users before creating).
            let dup = t.dataverse.rows.get("systemuser").is_some_and(|rows| {
                rows.iter().any(|r| {
                    r["applicationid"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(&app_id))
                })
            });
            if dup {
                return Err(error_reply(
                    412,
                    "0x80040237",
                    "A record with matching key values already exists.",
                ));
            }
            let name = app.str("displayName").unwrap_or("Application").to_string();
            let email = format!("{}@{}", app_id.to_ascii_lowercase(), t.initial_domain);
            vals.insert("applicationid".into(), json!(app_id.to_ascii_lowercase()));
            vals.entry("fullname").or_insert(json!(name));
            vals.entry("firstname").or_insert(json!("#"));
            vals.entry("lastname").or_insert(json!(name));
            vals.entry("internalemailaddress").or_insert(json!(email));
            vals.entry("domainname").or_insert(json!(email));
            vals.entry("accessmode").or_insert(json!(4));
            vals.insert("azureactivedirectoryobjectid".into(), json!(sp.id()));
        }
        vals.entry("isdisabled").or_insert(json!(false));
        vals.insert("deletedstate".into(), json!(0));
        vals.entry("islicensed").or_insert(json!(false));
    }
    let mut row = Map::new();
    for a in &e.attrs {
        row.insert(a.prop(), Value::Null);
    }
    row.insert(e.primary_id.clone(), json!(id));
    row.insert("createdon".into(), json!(rfc3339_secs(now_ms()) + "Z"));
    row.extend(vals);
    row.retain(|k, _| e.attrs.iter().any(|a| a.prop() == *k));
    t.dataverse
        .rows
        .entry(e.logical.clone())
        .or_default()
        .push(Value::Object(row));
    Ok(id)
}
