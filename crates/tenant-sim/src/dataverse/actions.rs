//! Functions and actions: `WhoAmI`, `RetrieveVersion`, and publishing customizations —
//! `PublishXml` and `PublishAllXml` (synchronous) and `PublishAllXmlAsync` (a system job in
//! `asyncoperations`, completed after the publish time, failed when a failure is scripted); one
//! publish at a time, as Dataverse's customization lock allows.
//!
//! Facts from Microsoft Learn (learn.microsoft.com/power-apps/developer/data-platform/...):
//! webapi/reference/whoami, webapi/reference/retrieveversion, webapi/reference/publishxml,
//! webapi/reference/publishallxml, webapi/reference/publishallxmlasync, and the asyncoperation
//! table reference (reference/entities/asyncoperation) for the system job's statecode and
//! statuscode: 0/0 Ready, Waiting For Resources → 2/20 Locked, In Progress → 3/30 Completed,
//! Succeeded (3/31 Failed).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::access::Caller;
use super::shared::{BASE, R, error_reply, lock_error};
use crate::exchange::{Ctx, Reply};
use crate::state::Sim;
use crate::util::{lock, new_guid, now_ms, rfc3339_secs};

/// `GET WhoAmI()`: the caller's system user, business unit and the org.
pub(super) fn who_am_i(sim: &Sim, caller: &Caller) -> R {
    let urls = sim.urls();
    let org = lock(&sim.tenant).dataverse.org_id.clone();
    Ok(Reply::json(
        200,
        json!({
            "@odata.context": format!("{}{BASE}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse", urls.dynamics),
            "BusinessUnitId": caller.bu, "UserId": caller.user_id, "OrganizationId": org
        }),
    ))
}

/// `GET RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')`:
/// the org's `OrganizationDetail` (Learn, Web API reference "RetrieveCurrentOrganization
/// Function" and the `OrganizationDetail` complex type). `AccessType` is required (not
/// nullable); its values are Default, Internet and Intranet (`EndpointAccessType`).
pub(super) fn retrieve_current_organization(sim: &Sim, call: &str) -> R {
    let urls = sim.urls();
    let access = call
        .strip_prefix("RetrieveCurrentOrganization(AccessType=")
        .and_then(|a| a.strip_suffix(')'))
        .map(|a| a.trim_start_matches("Microsoft.Dynamics.CRM.EndpointAccessType"));
    if !matches!(access, Some("'Default'" | "'Internet'" | "'Intranet'")) {
        // UNVERIFIED: the exact code and wording for a missing or bad AccessType.
        return Err(super::shared::error_reply(
            400,
            "0x80060888",
            "The parameter 'AccessType' of RetrieveCurrentOrganization must be an EndpointAccessType: Default, Internet or Intranet.",
        ));
    }
    let org = lock(&sim.tenant).dataverse.org_id.clone();
    Ok(Reply::json(
        200,
        json!({
            "@odata.context": format!("{}{BASE}/$metadata#Microsoft.Dynamics.CRM.RetrieveCurrentOrganizationResponse", urls.dynamics),
            "Detail": {
                "OrganizationId": org,
                "FriendlyName": "Contoso",
                "OrganizationVersion": "9.2.25041.00183",
                "UniqueName": "contoso",
                "UrlName": "contoso",
                "State": "Enabled",
                "Endpoints": {"Count": 1, "IsReadOnly": false, "Keys": ["WebApplication"], "Values": [urls.dynamics]}
            }
        }),
    ))
}

/// `GET RetrieveVersion()`: the org's version.
pub(super) fn retrieve_version(sim: &Sim) -> R {
    let urls = sim.urls();
    Ok(Reply::json(
        200,
        json!({"@odata.context": format!("{}{BASE}/$metadata#Microsoft.Dynamics.CRM.RetrieveVersionResponse", urls.dynamics), "Version": "9.2.25041.00183"}),
    ))
}

pub(super) async fn publish(sim: &Arc<Sim>, ctx: &Ctx, action: &str) -> R {
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
            json!({"action": kind, "entities": entities, "at": crate::util::rfc3339(now_ms())}),
        );
        *lock(&sim.publish_until) = None;
    };
    if action == "PublishAllXmlAsync" {
        let id = new_guid();
        lock(&sim.tenant).dataverse.rows.entry("asyncoperation".into()).or_default().push(json!({
            "asyncoperationid": id, "name": "Publish All Customizations", "operationtype": 10, "statecode": 0, "statuscode": 0,
            "message": null, "createdon": rfc3339_secs(now_ms()) + "Z", "completedon": null
        }));
        let s2 = Arc::clone(sim);
        let id2 = id.clone();
        let failure = lock(&sim.fail_next_publish).take();
        tokio::spawn(async move {
            // The asyncoperation table's states (Learn, "asyncoperation table/entity reference":
            // learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation):
            // a new job is Ready / Waiting For Resources (statecode 0, statuscode 0); running,
            // Locked / In Progress (2, 20); done, Completed / Succeeded or Failed (3, 30 or 31).
            tokio::time::sleep(Duration::from_millis(ms / 3)).await;
            if let Some(r) = lock(&s2.tenant)
                .dataverse
                .rows
                .get_mut("asyncoperation")
                .and_then(|v| v.iter_mut().find(|r| r["asyncoperationid"] == json!(id2)))
            {
                r["statecode"] = json!(2);
                r["statuscode"] = json!(20);
            }
            tokio::time::sleep(Duration::from_millis(ms - ms / 3)).await;
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
