"""Deterministic, realistic outputs for what the cloud would return, so the program runs end to end offline.

Every value derives from the resource's name and inputs (key material from the stack, see `fabricate_tls`):
the same stack plans to the same bytes, and two plans can be diffed. In preview mode cloud-computed outputs
are left out, which the engine reads as unknown, exactly as in a `pulumi preview` of resources that do not
exist yet.

A Service the program reads (`Service.get`: the clustermesh-apiserver's belongs to the Cilium chart) has no
spec to go by, so its load balancer is answered from the values of the Helm release installed through the
same provider, as the cloud would answer for the Service that release creates.

OpenStack resources, remote commands and the provider functions that look up what a cloud already has are
answered by `fabricate_openstack`; AWS's (the VPCs, load balancers, IAM roles and EKS clusters of kind `eks`
clusters, and the account, region, zone, token and policy-document functions) by `fabricate_aws`, which learns
each AWS provider's region as it registers. Every function call is recorded (`PlanMocks.calls`), because what a plan
looks up is part of what it needs from a cloud. A function nobody taught the planner to answer fails the plan,
naming its token: an empty answer would pass silently and leave every field the program reads as None.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pulumi.runtime import Mocks, rpc
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from clustermesh.aws_load_balancers import asks_for_aws_load_balancer
from clustermesh.planner.fabricate_aws import AWS_PROVIDER, Aws, ProviderFunction
from clustermesh.planner.fabricate_openstack import Function, OpenStack
from clustermesh.planner.fabricate_tls import Fixtures
from clustermesh.planner.graph import Secret, decode, provider_urn
from components.tokens import HELM_RELEASE

State = dict[str, Any]
Fabricator = Callable[[MockResourceArgs, State], State]


def _without_provider(function: Function) -> ProviderFunction:
    """A function whose answer does not depend on the provider it is called through."""
    return lambda request, provider: function(request)


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


def fabricated_lb_address(cluster_resource: str) -> str:
    """A LoadBalancer address from 198.18.0.0/15 (RFC 2544 benchmarking), stable per resource."""
    digest = hashlib.sha256(cluster_resource.encode()).digest()
    return f"198.{18 + digest[0] % 2}.{digest[1]}.{digest[2] % 254 + 1}"


FABRICATED_AWS_REGION = "us-east-1"
"""The region in a fabricated AWS load balancer's hostname (nothing in the plan says which region it is)."""


def aws_load_balancer_hostname(namespace: str, name: str, resource: str) -> str:
    """An AWS load balancer's DNS name as the AWS Load Balancer Controller forms it, stable per resource."""

    def short(text: str) -> str:
        return "".join(c for c in text if c.isalnum())[:8]

    return f"k8s-{short(namespace)}-{short(name)}-{stable_id(resource)[:10]}.elb.{FABRICATED_AWS_REGION}.amazonaws.com"


def load_balancer_status(service: State, *, namespace: str, name: str, resource: str) -> State:
    """What a cloud reports for a Service described by `service` (`type`, `loadBalancerIP`, `annotations`,
    `loadBalancerClass`): nothing unless it is a LoadBalancer; for AWS a hostname and no IP, as AWS gives; else
    the pinned `loadBalancerIP`, or a stable fabricated one."""
    if service.get("type", "LoadBalancer") != "LoadBalancer":
        return {}
    annotations = service.get("annotations")
    if asks_for_aws_load_balancer(
        annotations if isinstance(annotations, dict) else (), service.get("loadBalancerClass")
    ):
        return {"loadBalancer": {"ingress": [{"hostname": aws_load_balancer_hostname(namespace, name, resource)}]}}
    ip = service.get("loadBalancerIP") or fabricated_lb_address(resource)
    return {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}


def _service_values(values: Any) -> State:
    """`clustermesh.apiserver.service` of a Cilium release's values (empty where absent or unknown)."""
    for key in ("clustermesh", "apiserver", "service"):
        values = values.get(key) if isinstance(values, dict) else None
    return values if isinstance(values, dict) else {}


WRITE_ONLY: dict[str, frozenset[str]] = {
    "kubernetes:core/v1:Secret": frozenset({"data", "stringData"}),
    "kubernetes:core/v1:ConfigMap": frozenset({"data", "binaryData"}),
}
"""Inputs that come back empty rather than echoed. A Secret's or ConfigMap's real state does carry `data`, but
nothing in the program reads it back, and echoing it (or letting the SDK copy it back, which it does for a
property the answer leaves out) sends a 511-cluster mesh's half a million Secret entries and 261,000 remote
users through the SDK's deserializer again: about 120 MB more at the peak for each. A program that reads
their `data` sees it empty here."""


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class FunctionCall:
    """A provider function the program called, with its arguments (those given) and the planner's answer, both
    decoded to plain values (secrets unwrapped)."""

    token: str
    args: dict[str, Any]
    result: dict[str, Any]


class UnansweredFunctionError(Exception):
    """The program called a provider function the planner has no answer for."""

    def __init__(self, token: str, args: dict[str, Any]) -> None:
        super().__init__(
            f"the planner cannot answer provider function {token} (called with {sorted(args)}): "
            "teach PlanMocks (clustermesh/planner/fabricate.py) what a cloud would return for it"
        )
        self.token = token


class PlanMocks(Mocks):
    """The clouds of a plan: each resource's state as its provider would answer (see the module's docstring)."""

    def __init__(self, *, fixtures: Fixtures, preview: bool = False) -> None:
        self.preview = preview
        self.fixtures = fixtures
        self._service_by_provider: dict[str, State] = {}
        """Per provider URN, the clustermesh-apiserver Service its Cilium release asks for."""
        tls = self.fixtures
        self.openstack = OpenStack(fixtures)
        # One allocator for both clouds' public addresses: no address is public twice on the Internet.
        self.aws = Aws(fixtures, public=self.openstack._public)
        self.calls: list[FunctionCall] = []
        """Every provider function call answered, in the order the program made them."""
        self._functions: dict[str, ProviderFunction] = {
            **{token: _without_provider(f) for token, f in self.openstack.functions().items()},
            **self.aws.functions(),
        }
        self._fabricators: dict[str, Fabricator] = {
            HELM_RELEASE: _helm_release,
            "kubernetes:core/v1:Service": self._service,
            "tls:index/privateKey:PrivateKey": lambda a, i: {
                k: _secret(v) if k.startswith("privateKey") else v for k, v in tls.private_key(a.name, i).items()
            },
            "tls:index/selfSignedCert:SelfSignedCert": lambda a, i: tls.self_signed_cert(a.name, i),
            "tls:index/certRequest:CertRequest": lambda a, i: tls.cert_request(a.name, i),
            "tls:index/locallySignedCert:LocallySignedCert": lambda a, i: tls.locally_signed_cert(a.name, i),
            **self.openstack.fabricators(),
            **self.aws.fabricators(),
        }
        """Cloud-computed outputs by resource type; other resources echo their inputs, as a provider's state does."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, State]:
        state = dict(args.inputs)
        if args.typ in WRITE_ONLY:
            # Present but empty: for a property missing from a provider's answer (or None) the SDK copies
            # the input back, entry by entry.
            state = {k: {} if k in WRITE_ONLY[args.typ] else v for k, v in state.items()}
        if args.typ == HELM_RELEASE and args.provider:
            values = _plain(decode(args.inputs.get("values")))
            self._service_by_provider[provider_urn(args.provider)] = _service_values(values)
        if args.typ == AWS_PROVIDER:  # in a preview too: its resources' regions are known before they exist
            self.aws.register_provider(args)
        fabricate = self._fabricators.get(args.typ)
        if args.resource_id and args.resource_id != rpc.UNKNOWN:  # a read the engine can do, even in preview
            return args.resource_id, state | self._fabricated(fabricate, args)
        if self.preview:
            return None, state
        new_id = (
            self.openstack.resource_id(args)
            or self.aws.resource_id(args)
            or f"{args.name}-{stable_id(args.typ, args.name)}"
        )
        return new_id, state | self._fabricated(fabricate, args)

    @staticmethod
    def _fabricated(fabricate: Fabricator | None, args: MockResourceArgs) -> State:
        return fabricate(args, _plain(decode(args.inputs))) if fabricate else {}

    def _service(self, args: MockResourceArgs, inputs: State) -> State:
        metadata = inputs.get("metadata") or {}
        namespace, _, name = (args.resource_id or "").rpartition("/")
        namespace, name = metadata.get("namespace") or namespace or "default", metadata.get("name") or name
        spec = inputs.get("spec")
        if spec is not None:  # a Service the program manages: its own spec and annotations
            service = {**spec, "annotations": metadata.get("annotations") or {}}
        else:  # a read: the Service of the release installed through the same provider, if any
            service = self._service_by_provider.get(provider_urn(args.provider or ""), {})
        status = load_balancer_status(service, namespace=namespace, name=name, resource=args.name)
        return {"status": status} if status else {}

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """A provider function's answer. Lookups are reads, so they are answered in a preview too."""
        request = {k: v for k, v in _plain(decode(args.args)).items() if v is not None}
        answer = self._functions.get(args.token)
        if answer is None:
            raise UnansweredFunctionError(args.token, request)
        result = answer(request, args.provider or "")
        self.calls.append(FunctionCall(args.token, request, _plain(decode(result))))
        return result, []  # the mock monitor iterates the failures: None would fail every call
