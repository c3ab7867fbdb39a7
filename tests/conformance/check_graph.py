"""The Graph calls the tools make, sent by Microsoft's Graph SDK for Python (msgraph-sdk, built
on Kiota), unpatched, against tenant-sim: the application upsert by uniqueName, its service
principal upsert by appId, admin consent (oauth2PermissionGrants), addPassword, a Home Realm
Discovery policy created, assigned, listed and unassigned, `$count` with and without
`ConsistencyLevel: eventual`, and deleting and restoring both the application and its service
principal through `directory/deletedItems` (the SDK's short type casts, `graph.application`).

Options used (the SDK's own): an `AzureIdentityAuthenticationProvider` whose `allowed_hosts`
names the emulator (the SDK sends its token only to the hosts it allows; Microsoft's Graph hosts
by default), and the request adapter's `base_url` set to the emulator's `/v1.0`.
"""

from __future__ import annotations

import asyncio
import atexit
import uuid
from typing import Any, Callable, Coroutine

import httpx
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.models.application import Application
from msgraph.generated.models.home_realm_discovery_policy import HomeRealmDiscoveryPolicy
from msgraph.generated.models.o_auth2_permission_grant import OAuth2PermissionGrant
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.required_resource_access import RequiredResourceAccess
from msgraph.generated.models.resource_access import ResourceAccess
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph_core import GraphClientFactory

import msal

from harness import Failed, Sim, check, expect, msal_result, record

DYNAMICS_CRM = "00000007-0000-0000-c000-000000000000"
USER_IMPERSONATION = "78ce3f0f-a1ce-49c2-8cde-64b5c0896db4"
CLOUD_PASSWORD = '{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true}}'

_loop = asyncio.new_event_loop()


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return _loop.run_until_complete(coro)


def graph(sim: Sim) -> GraphServiceClient:
    if "graph" not in sim.made:
        cred = ClientSecretCredential(
            sim.tenant_id,
            sim.admin_client_id,
            sim.admin_secret,
            authority=sim.url,
            disable_instance_discovery=True,
            # azure-core's aiohttp transport verifies with certifi's roots, not
            # REQUESTS_CA_BUNDLE: its own option names the emulator's CA
            connection_verify=sim.ca_file,
        )
        auth = AzureIdentityAuthenticationProvider(
            cred, scopes=[sim.graph_scope], allowed_hosts=[sim.host.split(":")[0]]
        )
        http_client = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(verify=sim.ca_file, timeout=30)
        )
        adapter = GraphRequestAdapter(auth, client=http_client)
        adapter.base_url = f"{sim.url}/v1.0"
        sim.made["graph"] = GraphServiceClient(request_adapter=adapter)
        # closed when the run ends, so aiohttp does not warn about an open session
        atexit.register(lambda: run(cred.close()))
    return sim.made["graph"]


def headers(**h: str) -> RequestConfiguration:
    cfg = RequestConfiguration()
    hc = HeadersCollection()
    for k, v in h.items():
        hc.add(k.replace("_", "-"), v)
    cfg.headers = hc
    return cfg


def api_error(call: Callable[[], Coroutine[Any, Any, Any]]) -> APIError:
    """The SDK's error for a call that must fail."""
    try:
        run(call())
    except APIError as e:
        return e
    raise Failed("the call succeeded; it must not")


def code_of(e: APIError) -> str:
    err = getattr(e, "error", None)
    return getattr(err, "code", "") or ""


# ---------------------------------------------------------------- the setup's calls


@check("msgraph-sdk", "PATCH applications(uniqueName=...) with Prefer: create-if-missing")
def upsert_application(sim: Sim) -> None:
    g = graph(sim)
    unique = f"conformance-{uuid.uuid4().hex[:8]}"
    body = Application(
        display_name="Conformance Marketo Integration",
        sign_in_audience="AzureADMyOrg",
        required_resource_access=[
            RequiredResourceAccess(
                resource_app_id=DYNAMICS_CRM,
                resource_access=[ResourceAccess(id=uuid.UUID(USER_IMPERSONATION), type="Scope")],
            )
        ],
    )
    created = run(g.applications_with_unique_name(unique).patch(body, headers(Prefer="create-if-missing")))
    expect(created is not None and created.app_id, "201 with the new application", created)
    expect(created.unique_name == unique, "its uniqueName", created.unique_name)
    # again: an update, 204, no body
    again = run(g.applications_with_unique_name(unique).patch(body, headers(Prefer="create-if-missing")))
    expect(again is None, "a second upsert answers 204", again)
    read = run(g.applications_with_unique_name(unique).get())
    expect(read.id == created.id, "read back by uniqueName", read)
    sim.made["app"] = created


@check("msgraph-sdk", "PATCH servicePrincipals(appId=...) with Prefer: create-if-missing")
def upsert_service_principal(sim: Sim) -> None:
    g, app = graph(sim), sim.made["app"]
    sp = run(
        g.service_principals_with_app_id(app.app_id).patch(
            ServicePrincipal(display_name=app.display_name), headers(Prefer="create-if-missing")
        )
    )
    expect(sp is not None and sp.app_id == app.app_id, "201 with the service principal", sp)
    sim.made["sp"] = sp
    dyn = run(g.service_principals_with_app_id(DYNAMICS_CRM).get())
    expect(any(s.value == "user_impersonation" for s in dyn.oauth2_permission_scopes or []), "Dynamics CRM", dyn)
    sim.made["dyn_sp"] = dyn


@check("msgraph-sdk", "POST oauth2PermissionGrants (AllPrincipals), list by clientId, PATCH scope")
def grant_consent(sim: Sim) -> None:
    g, sp, dyn = graph(sim), sim.made["sp"], sim.made["dyn_sp"]
    grant = run(
        g.oauth2_permission_grants.post(
            OAuth2PermissionGrant(
                client_id=sp.id, consent_type="AllPrincipals", resource_id=dyn.id, scope="user_impersonation"
            )
        )
    )
    expect(grant is not None and grant.id, "201 with the grant", grant)
    from msgraph.generated.oauth2_permission_grants.oauth2_permission_grants_request_builder import (
        Oauth2PermissionGrantsRequestBuilder as B,
    )

    cfg = RequestConfiguration(
        query_parameters=B.Oauth2PermissionGrantsRequestBuilderGetQueryParameters(filter=f"clientId eq '{sp.id}'")
    )
    listed = run(g.oauth2_permission_grants.get(cfg))
    expect([x.id for x in listed.value] == [grant.id], "the grant, filtered by clientId", listed.value)
    run(g.oauth2_permission_grants.by_o_auth2_permission_grant_id(grant.id).patch(
        OAuth2PermissionGrant(scope="user_impersonation")
    ))
    dup = api_error(lambda: g.oauth2_permission_grants.post(
        OAuth2PermissionGrant(client_id=sp.id, consent_type="AllPrincipals", resource_id=dyn.id, scope="x")
    ))
    expect(dup.response_status_code == 409, "a second AllPrincipals grant", dup)
    sim.made["grant"] = grant


@check("msgraph-sdk", "POST applications/{id}/addPassword, then the new secret signs in (MSAL)")
def add_password(sim: Sim) -> None:
    g, app = graph(sim), sim.made["app"]
    cred = run(
        g.applications.by_application_id(app.id).add_password.post(
            AddPasswordPostRequestBody(password_credential=PasswordCredential(display_name="conformance"))
        )
    )
    expect(cred is not None and cred.secret_text and cred.key_id, "the secret, once", cred)
    expect(cred.hint == cred.secret_text[:3], "its hint", cred.hint)
    client = msal.ConfidentialClientApplication(
        app.app_id, client_credential=cred.secret_text, authority=sim.authority, instance_discovery=False
    )
    msal_result(client.acquire_token_for_client([sim.graph_scope]), "the app's own secret")


@check("msgraph-sdk", "HRD policy: create, assign ($ref), list on the SP, unassign, delete")
def hrd_policy(sim: Sim) -> None:
    g, sp = graph(sim), sim.made["sp"]
    policy = run(
        g.policies.home_realm_discovery_policies.post(
            HomeRealmDiscoveryPolicy(
                display_name="Conformance HRD", definition=[CLOUD_PASSWORD], is_organization_default=False
            )
        )
    )
    expect(policy is not None and policy.id, "201 with the policy", policy)
    sp_policies = g.service_principals.by_service_principal_id(sp.id).home_realm_discovery_policies
    run(sp_policies.ref.post(ReferenceCreate(odata_id=f"{sim.url}/v1.0/policies/homeRealmDiscoveryPolicies/{policy.id}")))
    listed = run(sp_policies.get())
    expect([p.id for p in listed.value] == [policy.id], "assigned", listed.value)
    applies = run(g.policies.home_realm_discovery_policies.by_home_realm_discovery_policy_id(policy.id).applies_to.get())
    expect([o.id for o in applies.value] == [sp.id], "appliesTo", applies.value)
    run(sp_policies.by_home_realm_discovery_policy_id(policy.id).ref.delete())
    expect(run(sp_policies.get()).value == [], "unassigned", None)
    # assigned again: deleting the application drops it (policies are not restored)
    run(sp_policies.ref.post(ReferenceCreate(odata_id=f"{sim.url}/v1.0/policies/homeRealmDiscoveryPolicies/{policy.id}")))
    sim.made["policy"] = policy


@check("msgraph-sdk", "$count: applications/$count and $count=true need ConsistencyLevel: eventual")
def count(sim: Sim) -> None:
    g = graph(sim)
    n = run(g.applications.count.get(headers(ConsistencyLevel="eventual")))
    expect(isinstance(n, int) and n >= 1, "a number", n)
    e = api_error(lambda: g.applications.count.get())
    expect(e.response_status_code == 400, "without the header: 400", e)
    from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder as B

    q = B.ApplicationsRequestBuilderGetQueryParameters(count=True)
    cfg = headers(ConsistencyLevel="eventual")
    cfg.query_parameters = q
    page = run(g.applications.get(cfg))
    expect(page.odata_count == n, "@odata.count", page.odata_count)
    page = run(g.applications.get(RequestConfiguration(query_parameters=q)))
    expect(page.odata_count is None, "$count=true without the header is ignored", page.odata_count)


@check("msgraph-sdk", "DELETE application: it and its SP in deletedItems (graph.application, graph.servicePrincipal)")
def delete_application(sim: Sim) -> None:
    g, app, sp = graph(sim), sim.made["app"], sim.made["sp"]
    run(g.applications.by_application_id(app.id).delete())
    gone = api_error(lambda: g.service_principals_with_app_id(app.app_id).get())
    expect(gone.response_status_code == 404, "the service principal is deleted too", gone)
    apps = run(g.directory.deleted_items.graph_application.get())
    expect(app.id in [a.id for a in apps.value], "the app is a deleted item", [a.id for a in apps.value])
    sps = run(g.directory.deleted_items.graph_service_principal.get())
    expect(sp.id in [s.id for s in sps.value], "the SP is a deleted item", [s.id for s in sps.value])
    n = run(g.directory.deleted_items.graph_service_principal.count.get(headers(ConsistencyLevel="eventual")))
    expect(n == len(sps.value), "deletedItems/graph.servicePrincipal/$count", n)
    one = run(g.directory.deleted_items.by_directory_object_id(sp.id).graph_service_principal.get())
    expect(one.app_id == app.app_id and one.deleted_date_time is not None, "one deleted SP, cast", one)


@check("msgraph-sdk", "restore: the application first, then its service principal (with its grant)")
def restore(sim: Sim) -> None:
    g, app, sp, grant = graph(sim), sim.made["app"], sim.made["sp"], sim.made["grant"]
    early = api_error(lambda: g.directory.deleted_items.by_directory_object_id(sp.id).restore.post())
    expect(early.response_status_code == 400, "the SP cannot come back before its app", early)
    record(
        "restoring a service principal whose application is still deleted: Learn gives no error; "
        "tenant-sim answers 400 NoBackingApplicationObject, as for creating one (notes #20)"
    )
    back = run(g.directory.deleted_items.by_directory_object_id(app.id).restore.post())
    expect(back is not None and back.id == app.id, "the application restored", back)
    still = api_error(lambda: g.service_principals_with_app_id(app.app_id).get())
    expect(still.response_status_code == 404, "restoring the app does not restore its SP", still)
    run(g.directory.deleted_items.by_directory_object_id(sp.id).restore.post())
    live = run(g.service_principals_with_app_id(app.app_id).get())
    expect(live.id == sp.id, "the service principal restored, same object id", live)
    grants = run(g.service_principals.by_service_principal_id(sp.id).oauth2_permission_grants.get())
    expect([x.id for x in grants.value] == [grant.id], "its grant came back", grants.value)
    pols = run(g.service_principals.by_service_principal_id(sp.id).home_realm_discovery_policies.get())
    expect(pols.value == [], "its HRD policy assignment did not (policies are not restored)", pols.value)


@check("msgraph-sdk", "DELETE directory/deletedItems/{id}: deleted for good")
def permanent_delete(sim: Sim) -> None:
    g, app, sp, policy = graph(sim), sim.made["app"], sim.made["sp"], sim.made["policy"]
    run(g.service_principals.by_service_principal_id(sp.id).delete())
    run(g.applications.by_application_id(app.id).delete())
    for oid in (sp.id, app.id):
        run(g.directory.deleted_items.by_directory_object_id(oid).delete())
        e = api_error(lambda: g.directory.deleted_items.by_directory_object_id(oid).get())
        expect(e.response_status_code == 404, "gone for good", e)
    run(g.policies.home_realm_discovery_policies.by_home_realm_discovery_policy_id(policy.id).delete())
