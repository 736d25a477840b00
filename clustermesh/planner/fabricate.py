"""Deterministic, realistic outputs for what the cloud would return, so the program runs end to end offline.

Every value derives from the resource's name and inputs: the same stack plans to the same bytes, and
two plans can be diffed. In preview mode cloud-computed outputs are left out, which the engine reads as
unknown, exactly as in a `pulumi preview` of resources that do not exist yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from pulumi.runtime import Mocks, rpc
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from clustermesh.planner import fabricate_tls
from clustermesh.planner.graph import Secret, decode

State = dict[str, Any]
Fabricator = Callable[[MockResourceArgs, State], State]


def stable_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


def _helm_release(args: MockResourceArgs, inputs: State) -> State:
    return {
        "status": {
            "name": inputs.get("name", args.name),
            "namespace": inputs.get("namespace", "default"),
            "chart": inputs.get("chart"),
            "version": inputs.get("version"),
            "appVersion": inputs.get("version"),
            "revision": 1,
            "status": "deployed",
        }
    }


def _secret(value: Any) -> dict[str, Any]:
    """The wire form of a secret value: outputs the provider declares secret come back secret."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def _private_key(args: MockResourceArgs, inputs: State) -> State:
    state = fabricate_tls.private_key(args.name, inputs)
    return {k: _secret(v) if k.startswith("privateKey") else v for k, v in state.items()}


def fabricated_lb_address(cluster_resource: str) -> str:
    """A LoadBalancer address from 198.18.0.0/15 (RFC 2544 benchmarking), stable per resource."""
    digest = hashlib.sha256(cluster_resource.encode()).digest()
    return f"198.{18 + digest[0] % 2}.{digest[1]}.{digest[2] % 254 + 1}"


def _service(args: MockResourceArgs, inputs: State) -> State:
    spec = inputs.get("spec") or {}
    if spec.get("type", "LoadBalancer") != "LoadBalancer":
        return {}
    ip = spec.get("loadBalancerIP") or fabricated_lb_address(args.name)
    return {"status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}}


FABRICATORS: dict[str, Fabricator] = {
    "kubernetes:helm.sh/v3:Release": _helm_release,
    "kubernetes:core/v1:Service": _service,
    "tls:index/privateKey:PrivateKey": _private_key,
    "tls:index/selfSignedCert:SelfSignedCert": lambda a, i: fabricate_tls.self_signed_cert(a.name, i),
    "tls:index/certRequest:CertRequest": lambda a, i: fabricate_tls.cert_request(a.name, i),
    "tls:index/locallySignedCert:LocallySignedCert": lambda a, i: fabricate_tls.locally_signed_cert(a.name, i),
}
"""Cloud-computed outputs by resource type; other resources echo their inputs, as a provider's state does."""


WRITE_ONLY: dict[str, frozenset[str]] = {"kubernetes:core/v1:Secret": frozenset({"data", "stringData"})}
"""Inputs that come back empty rather than echoed. A Secret's real state does carry `data`, but nothing in
the program reads it back, and echoing it (or letting the SDK copy it back, which it does for a property
the answer leaves out) sends a 511-cluster mesh's half a million entries through the SDK's deserializer
again: about 120 MB more at the peak. A program that reads a Secret's `data` sees it empty here."""


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class PlanMocks(Mocks):
    def __init__(self, *, preview: bool = False) -> None:
        self.preview = preview

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, State]:
        state = dict(args.inputs)
        if args.typ in WRITE_ONLY:
            # Present but empty: for a property missing from a provider's answer (or None) the SDK copies
            # the input back, entry by entry.
            state = {k: {} if k in WRITE_ONLY[args.typ] else v for k, v in state.items()}
        fabricate = FABRICATORS.get(args.typ)
        if args.resource_id and args.resource_id != rpc.UNKNOWN:  # a read the engine can do, even in preview
            return args.resource_id, state | self._fabricated(fabricate, args)
        if self.preview:
            return None, state
        return f"{args.name}-{stable_id(args.typ, args.name)}", state | self._fabricated(fabricate, args)

    @staticmethod
    def _fabricated(fabricate: Fabricator | None, args: MockResourceArgs) -> State:
        return fabricate(args, _plain(decode(args.inputs))) if fabricate else {}

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None
