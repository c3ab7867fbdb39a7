"""The conformance suite's small harness: the emulator it talks to, one check per call, and a
failure message that names the client, the call and the answer.

A check is a function decorated with ``@check(client, call)``; ``run_all`` runs them in order
(later checks use what earlier ones made, as a setup does) and prints one line each, then the
"N passed, M failed" total. A case where tenant-sim and a real client disagree and Microsoft's
documentation is silent is not a failure: ``record(...)`` prints it as "recorded", and
docs/real-service-notes.md says which side the emulator took.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import requests


@dataclass
class Sim:
    """The running ``tenant-sim --tls`` (its start-up JSON line)."""

    url: str
    tenant_id: str
    dynamics_url: str
    admin_client_id: str
    admin_secret: str
    certificate_file: str
    federated_token_file: str
    ca_file: str
    identity_endpoint: str
    identity_header: str
    imds_url: str
    # what the checks made, for the later ones
    made: Dict[str, Any] = field(default_factory=dict)

    @property
    def graph_scope(self) -> str:
        return f"{self.url}/.default"

    @property
    def dataverse_scope(self) -> str:
        return f"{self.dynamics_url}/.default"

    @property
    def authority(self) -> str:
        return f"{self.url}/{self.tenant_id}"

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    @staticmethod
    def from_file(path: str) -> "Sim":
        with open(path, encoding="utf-8") as f:
            line = json.loads(f.readline())
        mi = line.get("managed_identity") or {}
        return Sim(
            url=line["url"],
            tenant_id=line["tenant_id"],
            dynamics_url=line["dynamics_url"],
            admin_client_id=line["admin"]["client_id"],
            admin_secret=line["admin"]["client_secret"],
            certificate_file=line["admin"]["certificate_file"],
            federated_token_file=line["admin"]["federated_token_file"],
            ca_file=line["ca_file"],
            identity_endpoint=mi.get("identity_endpoint", ""),
            identity_header=mi.get("identity_header", ""),
            imds_url=mi.get("imds_url", ""),
        )


class Failed(Exception):
    """A check's expectation did not hold; the message says what was answered."""


def expect(cond: bool, what: str, answer: Any = None) -> None:
    if not cond:
        shown = answer if isinstance(answer, str) else json.dumps(answer, default=str)[:600]
        raise Failed(f"{what}; answer: {shown}" if answer is not None else what)


def claims(token: str) -> Dict[str, Any]:
    """The claims of a JWT-shaped token (no signature check: the caller got it from the token
    endpoint over TLS)."""
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def msal_result(result: Dict[str, Any], what: str) -> str:
    """The access token of an MSAL answer, or a failure naming Entra's error."""
    if "access_token" not in result:
        raise Failed(
            f"{what}: no token; answer: {result.get('error')}: "
            f"{(result.get('error_description') or '').splitlines()[0] if result.get('error_description') else ''}"
        )
    return result["access_token"]


def http(sim: Sim, method: str, url: str, token: Optional[str] = None, **kw) -> requests.Response:
    """A raw request (for the calls no client library makes), verified against the sim's CA."""
    headers = dict(kw.pop("headers", {}) or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, url, headers=headers, verify=sim.ca_file, timeout=30, **kw)


def answer_of(r: requests.Response) -> str:
    return f"HTTP {r.status_code} {r.text[:400]}"


@dataclass
class Check:
    client: str
    call: str
    fn: Callable[[Sim], None]


CHECKS: List[Check] = []
RECORDED: List[str] = []


def check(client: str, call: str):
    def deco(fn: Callable[[Sim], None]):
        CHECKS.append(Check(client, call, fn))
        return fn

    return deco


def record(case: str) -> None:
    """A disagreement the docs do not settle (see docs/real-service-notes.md)."""
    RECORDED.append(case)


def run_all(sim: Sim, only: Optional[str] = None) -> int:
    passed = failed = 0
    for c in CHECKS:
        if only and only not in f"{c.client} {c.call}":
            continue
        started = time.monotonic()
        try:
            c.fn(sim)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            failed += 1
            detail = str(e) if isinstance(e, Failed) else f"{type(e).__name__}: {e}"
            print(f"conformance: FAIL {c.client}: {c.call}: {detail}", flush=True)
            if os.environ.get("CONFORMANCE_TRACEBACK") and not isinstance(e, Failed):
                traceback.print_exc()
            continue
        passed += 1
        ms = int((time.monotonic() - started) * 1000)
        print(f"conformance: ok   {c.client}: {c.call} ({ms} ms)", flush=True)
    for r in RECORDED:
        print(f"conformance: recorded: {r}", flush=True)
    print(f"conformance: {passed} passed, {failed} failed", flush=True)
    sys.stdout.flush()
    return 1 if failed or not passed else 0
