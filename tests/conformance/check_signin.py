"""Sign-in with MSAL for Python and azure-identity, unpatched, against tenant-sim's token
endpoint: the discovery documents, a client secret, a certificate (PS256 with `x5t#S256` and
RS256 with `x5t`, both padded, fractional `exp`/`iat`), a device code with a silent refresh,
workload identity federation, and the two managed-identity protocols.

Library options used, and why (options the libraries offer, no patches):
- MSAL `instance_discovery=False` / azure-identity `disable_instance_discovery=True`: for a
  host that is not a Microsoft login host, MSAL otherwise asks
  https://login.microsoftonline.com/common/discovery/instance whether the host is a known
  Entra instance (the internet, which the suite never reaches). tenant-sim answers that
  endpoint itself; the check `instance discovery` below drives it.
- azure-identity `authority=<the emulator's URL>` (`AZURE_AUTHORITY_HOST` works alike).
"""

from __future__ import annotations

import os

import msal
import requests
from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from harness import Sim, answer_of, check, claims, expect, msal_result, record

AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


def _cert_parts(sim: Sim):
    pem = open(sim.certificate_file, "rb").read()
    cert = x509.load_pem_x509_certificate(pem)
    key = serialization.load_pem_private_key(pem, password=None)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return cert, key_pem, cert_pem


# ---------------------------------------------------------------- discovery


@check("requests", "GET /{tenant}/v2.0/.well-known/openid-configuration")
def openid_configuration(sim: Sim) -> None:
    for tenant in (sim.tenant_id, "contoso.onmicrosoft.com"):
        r = requests.get(f"{sim.url}/{tenant}/v2.0/.well-known/openid-configuration", verify=sim.ca_file)
        expect(r.status_code == 200, f"discovery of {tenant}", answer_of(r))
        doc = r.json()
        expect(doc["issuer"] == f"{sim.url}/{sim.tenant_id}/v2.0", "issuer", doc)
        expect(doc["token_endpoint"] == f"{sim.url}/{sim.tenant_id}/oauth2/v2.0/token", "token_endpoint", doc)
        expect(doc["device_authorization_endpoint"].endswith("/oauth2/v2.0/devicecode"), "devicecode", doc)
    r = requests.get(f"{sim.url}/fabrikam.onmicrosoft.com/v2.0/.well-known/openid-configuration", verify=sim.ca_file)
    expect(r.status_code == 400 and "AADSTS90002" in r.text, "unknown tenant is AADSTS90002", answer_of(r))
    keys = requests.get(doc["jwks_uri"], verify=sim.ca_file)
    expect(keys.status_code == 200 and keys.json() == {"keys": []}, "jwks_uri", answer_of(keys))
    record(
        "jwks_uri: an empty key set (tenant-sim signs tokens with a keyed SHA-256, not RS256); "
        "no client here validates a token it receives (notes #25)"
    )


@check("MSAL", "instance discovery at the emulator (instance_discovery=<its URL>)")
def instance_discovery(sim: Sim) -> None:
    r = requests.get(
        f"{sim.url}/common/discovery/instance",
        params={"authorization_endpoint": f"{sim.authority}/oauth2/v2.0/authorize", "api-version": "1.1"},
        verify=sim.ca_file,
    )
    expect(r.status_code == 200, "instance discovery", answer_of(r))
    expect(sim.host in r.json()["metadata"][0]["aliases"], "aliases name the emulator", r.json())
    r = requests.get(
        f"{sim.url}/common/discovery/instance",
        params={"authorization_endpoint": "https://login.example.com/x/oauth2/v2.0/authorize", "api-version": "1.1"},
        verify=sim.ca_file,
    )
    expect(r.status_code == 400 and r.json()["error"] == "invalid_instance", "another host", answer_of(r))
    app = msal.ConfidentialClientApplication(
        sim.admin_client_id,
        client_credential=sim.admin_secret,
        authority=sim.authority,
        instance_discovery=f"{sim.url}/common/discovery/instance",
    )
    msal_result(app.acquire_token_for_client([sim.graph_scope]), "acquire_token_for_client")
    record(
        "instance discovery: MSAL sends authorization_endpoint=https://<host>/<tenant>/... without "
        "the authority's port; tenant-sim matches the host alone (notes #24)"
    )


# ---------------------------------------------------------------- MSAL


@check("MSAL", "ConfidentialClientApplication(secret).acquire_token_for_client")
def msal_secret(sim: Sim) -> None:
    for authority in (sim.authority, f"{sim.url}/contoso.onmicrosoft.com"):
        app = msal.ConfidentialClientApplication(
            sim.admin_client_id, client_credential=sim.admin_secret, authority=authority, instance_discovery=False
        )
        for scope in (sim.graph_scope, sim.dataverse_scope):
            token = msal_result(app.acquire_token_for_client([scope]), f"{authority} {scope}")
            c = claims(token)
            expect(c["aud"] == scope[: -len("/.default")], "aud", c)
            expect(c["tid"] == sim.tenant_id and c["appid"] == sim.admin_client_id, "tid/appid", c)
            # Learn access-token-claims-reference: an app-only token's oid is the object id
            # of the service principal, not the app id.
            expect(c["oid"] != sim.admin_client_id, "oid is the service principal's object id", c)
            sim.made["admin_sp_oid"] = c["oid"]
    bad = msal.ConfidentialClientApplication(
        sim.admin_client_id, client_credential="wrong", authority=sim.authority, instance_discovery=False
    )
    r = bad.acquire_token_for_client([sim.graph_scope])
    expect(r.get("error") == "invalid_client" and 7000215 in r.get("error_codes", []), "a wrong secret", r)


@check("MSAL", "certificate credential, PS256 + x5t#S256 (padded), fractional exp/iat")
def msal_certificate_sha256(sim: Sim) -> None:
    _, key_pem, cert_pem = _cert_parts(sim)
    app = msal.ConfidentialClientApplication(
        sim.admin_client_id,
        client_credential={"private_key": key_pem, "public_certificate": cert_pem},
        authority=sim.authority,
        instance_discovery=False,
    )
    msal_result(app.acquire_token_for_client([sim.graph_scope]), "acquire_token_for_client")


@check("MSAL", "certificate credential, RS256 + x5t (SHA-1 thumbprint, padded)")
def msal_certificate_sha1(sim: Sim) -> None:
    cert, key_pem, _ = _cert_parts(sim)
    thumb = cert.fingerprint(hashes.SHA1()).hex()
    app = msal.ConfidentialClientApplication(
        sim.admin_client_id,
        client_credential={"private_key": key_pem, "thumbprint": thumb},
        authority=sim.authority,
        instance_discovery=False,
    )
    msal_result(app.acquire_token_for_client([sim.dataverse_scope]), "acquire_token_for_client")
    # another thumbprint is AADSTS700027
    other = msal.ConfidentialClientApplication(
        sim.admin_client_id,
        client_credential={"private_key": key_pem, "thumbprint": "00" * 20},
        authority=sim.authority,
        instance_discovery=False,
    )
    r = other.acquire_token_for_client([sim.graph_scope])
    expect(700027 in r.get("error_codes", []), "an unknown thumbprint", r)


@check("MSAL", "PublicClientApplication device code flow, account, silent refresh")
def msal_device_code(sim: Sim) -> None:
    app = msal.PublicClientApplication(AZURE_CLI, authority=sim.authority, instance_discovery=False)
    flow = app.initiate_device_flow(scopes=[sim.graph_scope])
    expect("user_code" in flow, "initiate_device_flow", flow)
    result = app.acquire_token_by_device_flow(flow)
    token = msal_result(result, "acquire_token_by_device_flow")
    expect(claims(token)["idtyp"] == "user", "a user's token", claims(token))
    expect("id_token_claims" in result, "an ID token", result)
    accounts = app.get_accounts()
    expect(len(accounts) == 1, "MSAL made an account", accounts)
    expect(accounts[0]["username"] == "admin@contoso.onmicrosoft.com", "the account's username", accounts)
    # another resource, silently: the refresh token, not a new sign-in
    silent = app.acquire_token_silent([sim.dataverse_scope], account=accounts[0])
    expect(silent is not None, "acquire_token_silent found the account's refresh token", silent)
    dv = msal_result(silent, "acquire_token_silent (refresh)")
    expect(claims(dv)["aud"] == sim.dynamics_url, "the refreshed token is for Dataverse", claims(dv))
    again = app.acquire_token_silent([sim.graph_scope], account=accounts[0], force_refresh=True)
    msal_result(again or {}, "acquire_token_silent(force_refresh=True)")


# ---------------------------------------------------------------- azure-identity


def _kw(sim: Sim):
    return {"authority": sim.url, "disable_instance_discovery": True}


@check("azure-identity", "ClientSecretCredential.get_token")
def identity_secret(sim: Sim) -> None:
    cred = ClientSecretCredential(sim.tenant_id, sim.admin_client_id, sim.admin_secret, **_kw(sim))
    for scope in (sim.graph_scope, sim.dataverse_scope):
        tok = cred.get_token(scope)
        expect(claims(tok.token)["aud"] == scope[: -len("/.default")], "aud", claims(tok.token))
        expect(tok.expires_on > 0, "expires_on", tok)


@check("azure-identity", "CertificateCredential.get_token (PEM with the key)")
def identity_certificate(sim: Sim) -> None:
    cred = CertificateCredential(sim.tenant_id, sim.admin_client_id, certificate_path=sim.certificate_file, **_kw(sim))
    tok = cred.get_token(sim.graph_scope)
    expect(claims(tok.token)["appid"] == sim.admin_client_id, "appid", claims(tok.token))
    chain = CertificateCredential(
        sim.tenant_id, sim.admin_client_id, certificate_path=sim.certificate_file, send_certificate_chain=True, **_kw(sim)
    )
    chain.get_token(sim.dataverse_scope)


@check("azure-identity", "WorkloadIdentityCredential.get_token (federated token file)")
def identity_workload(sim: Sim) -> None:
    cred = WorkloadIdentityCredential(
        tenant_id=sim.tenant_id, client_id=sim.admin_client_id, token_file_path=sim.federated_token_file, **_kw(sim)
    )
    tok = cred.get_token(sim.graph_scope)
    expect(claims(tok.token)["appid"] == sim.admin_client_id, "appid", claims(tok.token))


@check("azure-identity", "ManagedIdentityCredential.get_token (App Service: IDENTITY_ENDPOINT)")
def identity_app_service(sim: Sim) -> None:
    saved = dict(os.environ)
    try:
        os.environ["IDENTITY_ENDPOINT"] = sim.identity_endpoint
        os.environ["IDENTITY_HEADER"] = sim.identity_header
        cred = ManagedIdentityCredential()
        tok = cred.get_token(sim.dataverse_scope)
        c = claims(tok.token)
        expect(c["aud"] == sim.dynamics_url and c["appid"] == sim.admin_client_id, "claims", c)
        expect(c["oid"] == sim.made.get("admin_sp_oid", c["oid"]), "oid is the service principal's", c)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@check("azure-identity", "ManagedIdentityCredential.get_token (VM: IMDS, api-version 2018-02-01)")
def identity_imds(sim: Sim) -> None:
    saved = dict(os.environ)
    try:
        for k in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"):
            os.environ.pop(k, None)
        # azure-identity's (and MSAL's) own setting for a pod-identity IMDS host
        os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = sim.imds_url
        cred = ManagedIdentityCredential()
        tok = cred.get_token(sim.graph_scope)
        expect(claims(tok.token)["appid"] == sim.admin_client_id, "appid", claims(tok.token))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    # IMDS itself: a version it does not document is refused, none at all names the newest
    base = f"{sim.imds_url}/metadata/identity/oauth2/token"
    for version, word in (("2099-01-01", "invalid"), (None, "not specified")):
        params = {"resource": sim.url}
        if version:
            params["api-version"] = version
        r = requests.get(base, params=params, headers={"Metadata": "true"}, verify=sim.ca_file)
        expect(r.status_code == 400 and word in r.json().get("error", ""), f"api-version {version}", answer_of(r))
        expect(r.json().get("newest-versions"), "newest-versions", r.json())
    record("IMDS: the answer to an api-version it does not know is undocumented; tenant-sim answers "
           "400 in the documented shape of a missing one (notes #21)")
    r = requests.get(base, params={"resource": sim.url, "api-version": "2018-02-01"}, verify=sim.ca_file)
    expect(r.status_code == 400 and r.json().get("error") == "bad_request_102", "no Metadata header", answer_of(r))
