//! The tenant a fresh emulator starts with, and `/_sim/reset` returns to: its directory
//! ([`Tenant::seed`]: the admin and the first-party service principals) and its org ([`seed`]).
//!
//! The seeded org: the stock tables the tools touch (system users, business units, roles,
//! solutions and their components, publishers, system jobs, lead/contact/account/opportunity),
//! the Marketo Lead Management solution with its config and log tables under the configurable
//! prefix, and the rows a fresh tenant has (root and Sales business units, roles per business
//! unit, the admin user and the admin's application user, a soft-deleted application user).
//!
//! Facts from Microsoft Learn: "Use OAuth authentication with Microsoft Dataverse"
//! (learn.microsoft.com/power-apps/developer/data-platform/authenticate-oauth) for the admin's
//! application user; "Entity relationships" / "Lookup columns" for the system lookups every
//! record table carries (learn.microsoft.com/power-apps/developer/data-platform/entity-relationship-metadata).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::org::{Attr, Dv, Entity, attr};
use super::tenant::{Admin, DYNAMICS_APP_ID, GRAPH_APP_ID, Obj, Tenant, first_party_sp};
use crate::options::Options;
use crate::util::{new_guid, now_ms, random_secret, rfc3339_secs, sha256_hex};

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
        users.push(json!({"systemuserid": admin_app_user, "fullname": "Tenant Admin Automation", "firstname": "#", "lastname": "Tenant Admin Automation", "internalemailaddress": format!("{}@contoso.onmicrosoft.com", admin.client_id), "domainname": format!("{}@contoso.onmicrosoft.com", admin.client_id), "applicationid": admin.client_id, "azureactivedirectoryobjectid": admin.sp_oid, "isdisabled": false, "accessmode": 4, "deletedstate": 0, "title": null, "islicensed": false, "_businessunitid_value": root_bu, "createdon": now}));
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

impl Tenant {
    /// A fresh tenant; returns it with the admin's client secret (only place it exists in clear).
    pub fn seed(opts: &Options) -> (Tenant, String) {
        let tenant_id = new_guid();
        // A multi-tenant admin app (one a consultant's firm registers once and each customer
        // consents to) has the same client id and secret in every tenant.
        let (admin_client_id, admin_secret) = match &opts.shared_admin {
            Some((id, secret)) => (id.clone(), secret.clone()),
            None => (new_guid(), random_secret(40)),
        };
        let admin = Admin {
            client_id: admin_client_id,
            secret_sha256: sha256_hex(&admin_secret),
            user_oid: new_guid(),
            user_upn: "admin@contoso.onmicrosoft.com".into(),
            sp_oid: new_guid(),
        };
        let mut sps = Vec::new();
        for app in [GRAPH_APP_ID, DYNAMICS_APP_ID] {
            if app == DYNAMICS_APP_ID && opts.no_dynamics_sp {
                continue;
            }
            if let Some(data) = first_party_sp(app, &tenant_id) {
                sps.push(Obj {
                    created_ms: 0,
                    data,
                    secrets: Vec::new(),
                });
            }
        }
        let dataverse = seed(opts, &admin);
        let mut applications = Vec::new();
        if opts.admin_app_in_tenant && opts.shared_admin.is_none() {
            applications.push(Obj {
                created_ms: 0,
                data: json!({
                    "id": new_guid(), "appId": admin.client_id, "deletedDateTime": null,
                    "createdDateTime": "2024-01-01T00:00:00Z", "displayName": "Tenant Admin Automation",
                    "description": null, "notes": null, "uniqueName": null, "tags": [],
                    "signInAudience": "AzureADMyOrg", "publisherDomain": "contoso.onmicrosoft.com",
                    "identifierUris": [], "keyCredentials": [], "passwordCredentials": [],
                    "requiredResourceAccess": [{"resourceAppId": GRAPH_APP_ID, "resourceAccess": []}],
                }),
                secrets: Vec::new(),
            });
        }
        let t = Tenant {
            tenant_id,
            org_display_name: "Contoso".into(),
            initial_domain: "contoso.onmicrosoft.com".into(),
            federated_domain: opts.federated.then(|| "contoso.com".to_string()),
            admin,
            applications,
            service_principals: sps,
            oauth2_permission_grants: Vec::new(),
            home_realm_discovery_policies: Vec::new(),
            hrd_assignments: Vec::new(),
            deleted_items: Vec::new(),
            deleted_grants: Vec::new(),
            dataverse,
        };
        (t, admin_secret)
    }
}
