//! Who is calling the org, and may they: the bearer token (audience the org URL), the service
//! protection limit per caller, the caller's system user (an enabled, not soft-deleted user or
//! application user), whether it holds System Administrator, and the privilege error.
//!
//! Facts from Microsoft Learn: "Use OAuth authentication with Microsoft Dataverse"
//! (learn.microsoft.com/power-apps/developer/data-platform/authenticate-oauth), "Service
//! protection API limits" (learn.microsoft.com/power-apps/developer/data-platform/api-limits),
//! "Web API Error codes" (learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes).

use std::time::{Duration, Instant};

use serde_json::json;

use super::shared::error_reply;
use crate::access_token::check_bearer;
use crate::exchange::{Ctx, Reply};
use crate::state::Sim;
use crate::util::lock;

pub(super) struct Caller {
    pub(super) user_id: String,
    pub(super) bu: String,
    pub(super) admin: bool,
}

/// The caller of a request: its token checked, its budget charged, its system user found.
pub(super) fn caller(sim: &Sim, ctx: &Ctx) -> Result<Caller, Reply> {
    let urls = sim.urls();
    let tenant_id = lock(&sim.tenant).tenant_id.clone();
    let auth = ctx.header("authorization");
    // A missing, expired, forged or wrong-audience token: 401 with an empty body and the
    // challenge that names where to sign in for this org (Learn "Use OAuth authentication with
    // Microsoft Dataverse", "Discover the authority at run time":
    // learn.microsoft.com/power-apps/developer/data-platform/authenticate-oauth#discover-the-authority-at-run-time
    // — "a 401 Unauthorized response [...] with a WWW-Authenticate header").
    let claims = check_bearer(sim, auth, &urls.dynamics).map_err(|_| {
        Reply::empty(401).header(
            "www-authenticate",
            format!(
                "Bearer authorization_uri={}/{tenant_id}/oauth2/authorize, resource_id={}/",
                urls.main, urls.dynamics
            ),
        )
    })?;
    service_protection(sim, auth)?;
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
    Ok(caller)
}

fn service_protection(sim: &Sim, auth: Option<&str>) -> Result<(), Reply> {
    // service protection: a per-caller budget
    let key = crate::util::sha256_hex(auth.unwrap_or(""));
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
    Ok(())
}

pub(super) fn privilege(c: &Caller, prv: &str) -> Reply {
    error_reply(
        403,
        "0x80040220",
        &format!(
            "Principal user (Id={}, type=8, roleCount=1, privilegeCount=0, accessMode='4', MetadataCachePrivilegesCount=0, BusinessUnitId={}), is missing {prv} privilege.",
            c.user_id, c.bu
        ),
    )
}
