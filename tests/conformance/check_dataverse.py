"""The Dataverse calls the tools make, against tenant-sim's org: through Microsoft's Dataverse
client for Python (PowerPlatform-Dataverse-Client, unpatched) where it has the call — reading
system users, the table metadata it resolves names with, updating the Marketo configuration
(which makes it read the table's choice columns through the
`Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata` type cast) — and raw `requests`
for what it has not: the role association (`$ref`), `PublishAllXml`, `PublishAllXmlAsync` and
polling its system job, and a token for the wrong audience.
"""

from __future__ import annotations

import time

from azure.identity import ClientSecretCredential
from PowerPlatform.Dataverse.client import DataverseClient

from harness import Sim, answer_of, check, expect, http

API = "/api/data/v9.2"


def credential(sim: Sim) -> ClientSecretCredential:
    return ClientSecretCredential(
        sim.tenant_id, sim.admin_client_id, sim.admin_secret, authority=sim.url, disable_instance_discovery=True
    )


def dataverse(sim: Sim) -> DataverseClient:
    if "dataverse" not in sim.made:
        sim.made["dataverse"] = DataverseClient(sim.dynamics_url, credential(sim))
    return sim.made["dataverse"]


def token(sim: Sim, scope: str) -> str:
    return credential(sim).get_token(scope).token


@check("Dataverse client", "records.get('systemuser', filter=applicationid eq ...)")
def system_users(sim: Sim) -> None:
    dv = dataverse(sim)
    pages = dv.records.get(
        "systemuser",
        select=["systemuserid", "applicationid", "azureactivedirectoryobjectid", "_businessunitid_value"],
        filter=f"applicationid eq {sim.admin_client_id}",
    )
    rows = [r for page in pages for r in page]
    expect(len(rows) == 1, "the admin's application user", [dict(r) for r in rows])
    me = rows[0]
    if "admin_sp_oid" in sim.made:
        # an application user's Entra object id is its service principal's (the token's oid)
        expect(me["azureactivedirectoryobjectid"] == sim.made["admin_sp_oid"], "azureactivedirectoryobjectid", dict(me))
    sim.made["admin_user"] = me["systemuserid"]
    sim.made["admin_bu"] = me["_businessunitid_value"]
    one = dv.records.get("systemuser", me["systemuserid"], select=["fullname"])
    expect(one["fullname"], "one system user by id", dict(one))


@check("Dataverse client", "tables.list() (EntityDefinitions?$filter=IsPrivate eq false)")
def tables(sim: Sim) -> None:
    dv = dataverse(sim)
    listed = dv.tables.list()
    names = {t.get("LogicalName") if isinstance(t, dict) else getattr(t, "logical_name", None) for t in listed}
    expect("systemuser" in names, "the stock tables", sorted(n for n in names if n))
    marketo = [n for n in names if n and n.endswith("_marketoconfig")]
    expect(len(marketo) == 1, "the Marketo configuration table", sorted(n for n in names if n))
    sim.made["config_table"] = marketo[0]


@check("Dataverse client", "records.update(<Marketo config>, Marketo User lookup) (picklist type cast)")
def marketo_config(sim: Sim) -> None:
    dv, table = dataverse(sim), sim.made["config_table"]
    prefix = table.split("_")[0]
    rows = [r for page in dv.records.get(table, filter=f"{prefix}_name eq 'Default'") for r in page]
    expect(len(rows) == 1, "the Default record", [dict(r) for r in rows])
    rid = rows[0][f"{table}id"]
    lookup = f"{prefix}_marketouser"
    # the lookup's navigation property, from the relationship metadata (as configure-marketo
    # finds it)
    r = http(
        sim,
        "GET",
        f"{sim.dynamics_url}{API}/EntityDefinitions(LogicalName='{table}')/ManyToOneRelationships"
        f"?$filter=ReferencingAttribute eq '{lookup}'",
        token(sim, sim.dataverse_scope),
    )
    expect(r.status_code == 200 and len(r.json()["value"]) == 1, "the lookup's relationship", answer_of(r))
    nav = r.json()["value"][0]["ReferencingEntityNavigationPropertyName"]
    # a string value makes the client look the table's choice columns up first
    dv.records.update(
        table,
        rid,
        {f"{nav}@odata.bind": f"/systemusers({sim.made['admin_user']})", f"{prefix}_name": "Default"},
    )
    after = dv.records.get(table, rid, select=[f"_{lookup}_value"])
    expect(after[f"_{lookup}_value"] == sim.made["admin_user"], "the lookup points at the user", dict(after))
    r = http(
        sim,
        "GET",
        f"{sim.dynamics_url}{API}/EntityDefinitions(LogicalName='systemuser')/Attributes/"
        "Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)",
        token(sim, sim.dataverse_scope),
    )
    expect(r.status_code == 200, "the picklist type cast", answer_of(r))
    access = [a for a in r.json()["value"] if a["LogicalName"] == "accessmode"]
    expect(access and access[0]["OptionSet"]["Options"], "accessmode's options", r.json())


@check("requests", "POST systemusers(id)/systemuserroles_association/$ref, then disassociate")
def role_association(sim: Sim) -> None:
    t = token(sim, sim.dataverse_scope)
    base = f"{sim.dynamics_url}{API}"
    r = http(sim, "GET", f"{base}/roles?$select=roleid,name&$filter=_businessunitid_value eq {sim.made['admin_bu']}", t)
    expect(r.status_code == 200, "roles of the business unit", answer_of(r))
    role = next((x for x in r.json()["value"] if x["name"] != "System Administrator"), None)
    expect(role is not None, "a role to associate", r.json())
    user = sim.made["admin_user"]
    ref = {"@odata.id": f"{base}/roles({role['roleid']})"}
    r = http(sim, "POST", f"{base}/systemusers({user})/systemuserroles_association/$ref", t, json=ref)
    expect(r.status_code == 204, "associate", answer_of(r))
    r = http(sim, "GET", f"{base}/systemusers({user})/systemuserroles_association?$select=roleid", t)
    expect(role["roleid"] in [x["roleid"] for x in r.json()["value"]], "the role is the user's", answer_of(r))
    r = http(
        sim,
        "DELETE",
        f"{base}/systemusers({user})/systemuserroles_association/$ref?$id={base}/roles({role['roleid']})",
        t,
    )
    expect(r.status_code == 204, "disassociate", answer_of(r))


@check("requests", "POST PublishAllXml")
def publish_all(sim: Sim) -> None:
    r = http(sim, "POST", f"{sim.dynamics_url}{API}/PublishAllXml", token(sim, sim.dataverse_scope), json={})
    expect(r.status_code == 204, "PublishAllXml", answer_of(r))


@check("requests", "POST PublishAllXmlAsync, poll asyncoperations: 0/0 -> 2/20 -> 3/30")
def publish_async(sim: Sim) -> None:
    t = token(sim, sim.dataverse_scope)
    base = f"{sim.dynamics_url}{API}"
    r = http(sim, "POST", f"{base}/PublishAllXmlAsync", t, json={})
    expect(r.status_code == 200 and r.json().get("AsyncOperationId"), "the system job's id", answer_of(r))
    job = r.json()["AsyncOperationId"]
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = http(sim, "GET", f"{base}/asyncoperations({job})?$select=statecode,statuscode,message", t)
        expect(r.status_code == 200, "the job", answer_of(r))
        pair = (r.json()["statecode"], r.json()["statuscode"])
        if not seen or seen[-1] != pair:
            seen.append(pair)
        if pair[0] == 3:
            break
        time.sleep(0.02)
    # Learn asyncoperation table: statecode 0 Ready (statuscode 0 Waiting For Resources),
    # 2 Locked (20 In Progress), 3 Completed (30 Succeeded)
    allowed = {(0, 0), (1, 10), (2, 20), (3, 30)}
    expect(set(seen) <= allowed, "only documented state/status pairs", seen)
    expect(seen[0] in {(0, 0), (2, 20)} and seen[-1] == (3, 30), "from waiting to succeeded", seen)


@check("requests", "a Graph token at the org: 401, empty body, WWW-Authenticate")
def wrong_audience(sim: Sim) -> None:
    r = http(sim, "GET", f"{sim.dynamics_url}{API}/WhoAmI", token(sim, sim.graph_scope))
    expect(r.status_code == 401, "401", answer_of(r))
    expect(r.content == b"", "an empty body", answer_of(r))
    challenge = r.headers.get("WWW-Authenticate", "")
    expect(challenge.startswith("Bearer authorization_uri="), "the challenge names where to sign in", challenge)
    r = http(sim, "GET", f"{sim.dynamics_url}{API}/WhoAmI", token(sim, sim.dataverse_scope))
    expect(r.status_code == 200 and r.json()["UserId"] == sim.made.get("admin_user", r.json()["UserId"]), "WhoAmI", answer_of(r))
