"""A plan's AWS network, IAM and EKS, replayed into moto (the AWS emulator) running on loopback.

`MotoServer` runs moto's server in a thread on 127.0.0.1 and hands out boto3 clients (dummy credentials, one per
service, region and account). `replay_plan` creates, in dependency order, every AWS resource of a captured plan
there, with the provider's (camelCase) inputs translated to the API's parameters and each value the planner
fabricated (an id such as `vpc-...`, an ARN, the account id) replaced, wherever it appears in a later input, by the
one moto returned. Each replay runs in an AWS account of its own (moto keeps one state per account), so replays
sharing a server do not see each other. A request moto refuses raises `AwsRefused`, carrying the resource's URN,
the operation, its parameters and the error code and message, as a cloud would answer them.

moto checks much less than AWS does; what it was seen to check and not is in `tests/test_moto_replay.py`. To
make up a little for that, the replay itself refuses (`DanglingReference`) an id or ARN of the replay's account
that names nothing the plan created, since moto accepts many such references (a transit gateway attachment's
VPC, a route's NAT gateway, an EKS cluster's role and subnets) without looking. Resources moto does not implement
are counted, with the reason, in `ReplaySummary.not_replayed`; an AWS type the harness does not know is an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from types import TracebackType
from typing import Any
from unittest import mock

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError  # type: ignore[import-untyped]
from botocore.parsers import ResponseParserError  # type: ignore[import-untyped]
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from clustermesh.planner.fabricate_aws import ACCOUNT_ID as PLANNED_ACCOUNT
from clustermesh.planner.fabricate_aws import (  # the planner's own names for what it fabricates
    ASG_ATTACHMENT,
    AWS_PROVIDER,
    DEFAULT_REGION,
    EGRESS_RULE,
    EIP,
    EKS_CLUSTER,
    GET_CALLER_IDENTITY,
    INGRESS_RULE,
    INTERNET_GATEWAY,
    KMS_KEY,
    LISTENER,
    LOAD_BALANCER,
    NAT_GATEWAY,
    PEERING,
    PEERING_ACCEPTER,
    ROLE,
    ROLE_POLICY_ATTACHMENT,
    ROUTE,
    ROUTE_TABLE,
    ROUTE_TABLE_ASSOCIATION,
    SECURITY_GROUP,
    SUBNET,
    TARGET_GROUP,
    TGW_PEERING,
    TGW_PEERING_ACCEPTER,
    TGW_ROUTE,
    TGW_ROUTE_TABLE,
    TGW_VPC_ATTACHMENT,
    TRANSIT_GATEWAY,
    VPC,
)
from clustermesh.planner.graph import UNKNOWN, Node, Secret
from clustermesh.planner.runner import CapturedPlan
from tests.plan_order import DependencyCycle, dependency_order

MOTO_DEFAULT_ACCOUNT = "123456789012"

TGW_ROUTE_TABLE_ASSOCIATION = "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation"
TGW_ROUTE_TABLE_PROPAGATION = "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EKS_ADDON = "aws:eks/addon:Addon"
EKS_ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
EKS_ACCESS_POLICY_ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"

NOTHING_TO_CREATE = {
    GET_CALLER_IDENTITY: "the account (its fabricated id is mapped to the replay's)",
    "aws:index/getPartition:getPartition": "the partition",
    "aws:index/getRegion:getRegion": "the region",
    "aws:index/getAvailabilityZones:getAvailabilityZones": "the region's zones, which moto has",
    "aws:iam/getPolicyDocument:getPolicyDocument": "a policy document, computed locally",
    "aws:eks/getClusterAuth:getClusterAuth": "a token for a cluster of the plan",
}
"""Provider functions a replay answers with nothing to create first, and what they read."""

NOT_REPLAYED = {
    EKS_ADDON: "moto's EKS has no add-ons (CreateAddon answers 404)",
    EKS_ACCESS_ENTRY: "moto's EKS has no access entries (CreateAccessEntry answers 404)",
    EKS_ACCESS_POLICY_ASSOCIATION: "moto's EKS has no access entries to associate policies with",
    ASG_ATTACHMENT: "moto's EKS node groups create no Auto Scaling group to attach a target group to",
}
"""AWS resources moto does not implement: counted in the summary with the reason, never silently dropped."""
if find_spec("moto.kms") is None:  # pragma: no cover - moto ships every service; only the extras' deps are optional
    NOT_REPLAYED[KMS_KEY] = "moto's KMS is not installed"

AWS_ID = re.compile(
    r"^(?:vpc|subnet|rtb|rtbassoc|igw|nat|eipalloc|eni|acl|sg|sgr|pcx|tgw|tgw-attach|tgw-rtb)-[0-9a-f]{8,17}$"
)
"""The ids of the EC2 resources the replay creates (and that a plan may reference)."""
EMBEDDED = re.compile(rf"(?<![\w-])(?:{AWS_ID.pattern.strip('^$')}|\d{{12}})(?![\w-])")
"""What every value worth replacing inside text holds, bounded as `_Replay._substrings` matches it: an id, or an
account (alone or inside an ARN). Text without one is left as it is, without building that (large) pattern."""
ACCOUNT_ID = re.compile(r"^\d{12}$")
ARN = re.compile(r"^arn:aws[\w-]*:(?P<service>[\w-]+):(?P<region>[\w-]*):(?P<account>\d{12}):")
LOAD_BALANCER_ARN_SUFFIX = re.compile(r":(?:loadbalancer|targetgroup)/(?P<suffix>.+)$")

SETTLED: dict[str, tuple[str, ...]] = {
    VPC: ("arn", "mainRouteTableId", "defaultRouteTableId", "defaultSecurityGroupId", "defaultNetworkAclId"),
    SUBNET: ("arn",),
    EIP: ("allocationId",),
    NAT_GATEWAY: ("networkInterfaceId",),
    SECURITY_GROUP: ("arn",),
    INGRESS_RULE: ("arn", "securityGroupRuleId"),
    EGRESS_RULE: ("arn", "securityGroupRuleId"),
    TRANSIT_GATEWAY: ("arn", "associationDefaultRouteTableId", "propagationDefaultRouteTableId"),
    TGW_VPC_ATTACHMENT: ("arn",),
    TGW_ROUTE_TABLE: ("arn",),
    LOAD_BALANCER: ("arn", "arnSuffix"),
    TARGET_GROUP: ("arn", "arnSuffix"),
    LISTENER: ("arn",),
    ROLE: ("arn", "name", "uniqueId"),
    KMS_KEY: ("arn", "keyId"),
    EKS_CLUSTER: ("arn", "name", "vpcConfig.clusterSecurityGroupId", "vpcConfig.vpcId"),
    EKS_NODE_GROUP: ("arn", "resources.autoscalingGroups.name"),
}
"""Outputs besides the id that later inputs may reference: fabricated by the planner, settled by moto (a dotted
path goes through objects and lists). The replay orders by them too."""
ACCOUNT_OUTPUTS = ("ownerId", "vpcOwnerId", "peerOwnerId", "peerAccountId")
"""Outputs that hold the account: their fabricated value is the replay's account."""
FREE_TEXT = frozenset({"tags", "description", "name", "namePrefix", "nodeGroupName", "labels"})
"""Inputs that only name or describe: a value there equal to another resource's id (a tag naming a cluster, whose
id is its name) is no reference to order by."""

IGNORED_INPUTS: dict[str, dict[str, str]] = {
    SECURITY_GROUP: {"revokeRulesOnDelete": "acts on delete"},
    ROLE: {"forceDetachPolicies": "acts on delete"},
    KMS_KEY: {"deletionWindowInDays": "acts on delete"},
    EKS_CLUSTER: {"forceUpdateVersion": "acts on update"},
    EKS_NODE_GROUP: {"forceUpdateVersion": "acts on update"},
    TGW_VPC_ATTACHMENT: {
        "transitGatewayDefaultRouteTableAssociation": "moto always associates an attachment with the default table",
        "transitGatewayDefaultRouteTablePropagation": "moto does not propagate to the default table",
    },
    TGW_ROUTE_TABLE_ASSOCIATION: {"replaceExistingAssociation": "moto lets an attachment be associated again"},
}
"""Inputs the replay reads and cannot act on in moto, with the reason; any other input it does not translate is an
error, so that nothing the program sets goes unreplayed unnoticed."""

CLUSTER_SG_DESCRIPTION = (
    "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, "
    "as well as any managed workloads."
)
MANAGED_BY = "Managed by Pulumi"
"""The provider's default security group description."""


class HarnessError(RuntimeError):
    """The plan holds something the harness cannot put to moto (an unknown type or input, an unknown value)."""


class DanglingReference(HarnessError):
    """An input names an id or ARN of the replay's account that no resource of the plan has."""


class MotoFailure(HarnessError):
    """moto failed on a request (an internal error, an answer botocore cannot read): no verdict either way."""


class AwsRefused(Exception):
    """moto refused a request with an AWS error, as AWS would (or botocore did, before sending, by the API model)."""

    def __init__(
        self,
        *,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        code: str,
        message: str,
        status: int = 0,
        region: str = "",
        urn: str = "",
        name: str = "",
    ) -> None:
        self.service = service
        self.operation = operation
        self.params = dict(params)
        self.code = code
        self.message = message
        self.status = status
        self.region = region
        self.urn = urn
        self.name = name
        super().__init__(str(self))

    def __str__(self) -> str:
        who = f"{self.name} ({self.urn}): " if self.urn else ""
        return (
            f"{who}AWS (moto) refused {self.service} {self.operation} in {self.region} {self.params!r}: "
            f"{self.status} {self.code}: {self.message}"
        )


# --- the server ---------------------------------------------------------------------------------------------


CLIENT_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=120)
"""No retries: a refusal is the answer, and a moto internal error would only repeat."""


class MotoServer:
    """moto's server on 127.0.0.1 (a free port), for as long as the context lasts.

    AWS-managed IAM policies (`arn:aws:iam::aws:policy/...`) are loaded, as a real account has them, so that
    attaching `AmazonEKSClusterPolicy` works and attaching a misspelt one is refused. `timings` records, in
    seconds, `start` (until the server listens) and `ready` (until it answers a first request).
    """

    def __init__(self, *, port: int = 0) -> None:
        self.requested_port = port
        self.port = 0
        self.timings: dict[str, float] = {}
        self._server: ThreadedMotoServer | None = None
        self._session: Any = None
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._patches: contextlib.ExitStack | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        started = time.monotonic()
        patches = contextlib.ExitStack()
        patches.enter_context(mock.patch.dict(default_user_config, {"iam": {"load_aws_managed_policies": True}}))
        werkzeug = logging.getLogger("werkzeug")  # one line per request otherwise; errors still show
        patches.callback(werkzeug.setLevel, werkzeug.level)
        werkzeug.setLevel(logging.WARNING)
        self._patches = patches
        try:
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.requested_port, verbose=False)
            self._server.start()
            self.port = self._server.get_host_and_port()[1]
            self.timings["start"] = time.monotonic() - started
            self._session = boto3.session.Session()
            self.client("sts", account_id=MOTO_DEFAULT_ACCOUNT).get_caller_identity()
            self.timings["ready"] = time.monotonic() - started
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self._clients.clear()
        if self._patches is not None:
            self._patches.close()
            self._patches = None

    def client(self, service: str, region: str = DEFAULT_REGION, *, account_id: str) -> Any:
        """A boto3 client of `service` in `region`, acting in `account_id` (moto's `x-moto-account-id`)."""
        if self._server is None:
            raise RuntimeError("the moto server is not running")
        key = (service, region, account_id)
        if key not in self._clients:
            client = self._session.client(
                service,
                region_name=region,
                endpoint_url=self.url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=CLIENT_CONFIG,
            )

            def in_account(request: Any, **_: Any) -> None:
                request.headers["x-moto-account-id"] = account_id

            client.meta.events.register("before-sign.*.*", in_account)
            self._clients[key] = client
        return self._clients[key]

    @staticmethod
    def new_account() -> str:
        """A fresh 12-digit account id (never moto's default), for a replay of its own."""
        while (account := str(10**11 + secrets.randbelow(9 * 10**11))) == MOTO_DEFAULT_ACCOUNT:
            pass  # pragma: no cover
        return account


_shared: MotoServer | None = None
_shared_users = 0


def moto_server_fixture() -> Iterator[MotoServer]:
    """A session fixture's body: one server for every user in the process, stopped when the last one is done.

    Wire it with `pytest.fixture(scope="session", name="moto_server")(moto_server_fixture)`.
    """
    global _shared, _shared_users  # noqa: PLW0603 - one server per process, however many fixtures use it
    if _shared is None:
        server = MotoServer()
        server.start()
        _shared = server
    _shared_users += 1
    try:
        yield _shared
    finally:
        _shared_users -= 1
        if _shared_users == 0:
            _shared.stop()
            _shared = None


# --- the summary and the replay's state ---------------------------------------------------------------------


@dataclass
class ReplaySummary:
    account_id: str
    """The account the replay ran in (moto keeps one state per account)."""
    created: Counter[str] = field(default_factory=Counter)
    """Resources of the plan created (or, for an association or accepter, applied) in moto, by type."""
    regions: Counter[str] = field(default_factory=Counter)
    """Resources created, by region."""
    implied: Counter[str] = field(default_factory=Counter)
    """What AWS makes on its own and moto does not, made by the replay: an EKS cluster's security group."""
    not_replayed: Counter[str] = field(default_factory=Counter)
    """AWS resources of the plan moto does not implement, by type (the reason in `reasons`)."""
    ignored: Counter[str] = field(default_factory=Counter)
    """Inputs set in the plan that moto cannot act on (`IGNORED_INPUTS`), as `<Type>.<input>` (the reason in
    `reasons`)."""
    reasons: dict[str, str] = field(default_factory=dict)
    functions: Counter[str] = field(default_factory=Counter)
    """Provider function calls of the plan, which needed nothing created."""
    requests: int = 0
    """API requests made, refused ones included."""
    ids: dict[str, str] = field(default_factory=dict)
    """URN -> the id moto gave the resource."""
    real: dict[str, str] = field(default_factory=dict)
    """Each fabricated value (an id, an ARN, a name, the account) -> the real one."""

    def line(self) -> str:
        """One progress line: what was created in moto, and what was not replayed."""
        created = ", ".join(f"{n} {_short(kind)}" for kind, n in sorted(self.created.items())) or "nothing"
        text = f"moto (account {self.account_id}): created {created}"
        if self.implied:
            text += " (and " + ", ".join(f"{n} {kind}" for kind, n in sorted(self.implied.items())) + ")"
        if self.not_replayed:
            skipped = ", ".join(
                f"{n} {_short(kind)} ({self.reasons[kind]})" for kind, n in sorted(self.not_replayed.items())
            )
            text += f"; not replayed: {skipped}"
        if self.ignored:
            ignored = ", ".join(f"{n} {key} ({self.reasons[key]})" for key, n in sorted(self.ignored.items()))
            text += f"; inputs moto cannot act on: {ignored}"
        return text


def _short(kind: str) -> str:
    return kind.rsplit(":", 1)[-1]


@dataclass
class _Replay:
    server: MotoServer
    summary: ReplaySummary
    strict_references: bool
    known: set[str] = field(default_factory=set)
    """Every real value a plan may reference."""
    _pattern: re.Pattern[str] | None = None

    def remember(self, fabricated: Any, real: Any) -> None:
        if isinstance(fabricated, str) and fabricated and isinstance(real, str) and real:
            self.summary.real[fabricated] = real
            self.known.add(real)
            self._pattern = None

    def settle(self, fabricated: Any, real: Any) -> None:
        """Remember each fabricated string of `fabricated` as the real one at the same place in `real`."""
        if isinstance(fabricated, Secret):
            self.settle(fabricated.value, real)
        elif isinstance(fabricated, dict) and isinstance(real, dict):
            for key in fabricated.keys() & real.keys():
                self.settle(fabricated[key], real[key])
        elif isinstance(fabricated, list) and isinstance(real, list):
            for fabricated_item, real_item in zip(fabricated, real, strict=False):
                self.settle(fabricated_item, real_item)
        else:
            self.remember(fabricated, real)

    def real_value(self, value: Any, where: str) -> Any:
        """`value` with each fabricated value replaced by the real one (also inside text, for ids, ARNs and the
        account); secrets unwrapped."""
        if isinstance(value, Secret):
            return self.real_value(value.value, where)
        if value is UNKNOWN:
            raise HarnessError(f"{where} is unknown in the plan (a preview, or a value the mocks did not answer)")
        if isinstance(value, str):
            if value in self.summary.real:
                return self.summary.real[value]
            # Only text holding an id or an account can hold a fabricated value: spare building `_substrings`.
            return self._substrings().sub(self._real_match, value) if EMBEDDED.search(value) else value
        if isinstance(value, list):
            return [self.real_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.real_value(v, f"{where}.{k}") for k, v in value.items()}
        return value

    def _real_match(self, match: re.Match[str]) -> str:
        return self.summary.real[match.group(0)]

    def _substrings(self) -> re.Pattern[str]:
        if self._pattern is None:
            keys = sorted((k for k in self.summary.real if _embeddable(k)), key=len, reverse=True)
            alternatives = "|".join(re.escape(k) for k in keys) or "(?!)"
            self._pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
        return self._pattern

    def check_references(self, value: Any, where: str) -> None:
        """Refuse an id or ARN of this account that names nothing the replay created or settled."""
        if isinstance(value, str):
            arn = ARN.match(value)
            ours = arn is not None and arn.group("account") == self.summary.account_id and not value.endswith(":root")
            if (AWS_ID.match(value) or ours) and value not in self.known:
                raise DanglingReference(
                    f"{where} = {value!r} is no resource of the plan (moto may not check it; AWS would)"
                )
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.check_references(item, f"{where}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                self.check_references(item, f"{where}.{key}")


def _embeddable(value: str) -> bool:
    """A fabricated value worth replacing inside text too (a policy document, an ARN the program built)."""
    return bool(AWS_ID.match(value) or ACCOUNT_ID.match(value) or ARN.match(value))


class _Args:
    """A resource's inputs (real values), each read marked; what no translator reads is an error."""

    def __init__(self, node: Node, inputs: Mapping[str, Any]) -> None:
        self.node = node
        self._inputs = {k: v for k, v in inputs.items() if v is not None and not k.startswith("__")}
        self._read: set[str] = {"region", *IGNORED_INPUTS.get(node.type, {})}

    def get(self, key: str, default: Any = None) -> Any:
        self._read.add(key)
        return self._inputs.get(key, default)

    def required(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise HarnessError(f"{self.node.name} ({self.node.type}): no {key} in the plan")
        return value

    def fields(self, names: Mapping[str, str]) -> dict[str, Any]:
        """The API parameters for the plain inputs `names` (provider name -> API name) that are set."""
        return {api: value for key, api in names.items() if (value := self.get(key)) is not None}

    def unread(self) -> list[str]:
        return sorted(set(self._inputs) - self._read)

    def ignored(self) -> dict[str, str]:
        """The inputs set that moto cannot act on, with the reason."""
        return {k: why for k, why in IGNORED_INPUTS.get(self.node.type, {}).items() if k in self._inputs}


def _object(value: Mapping[str, Any], names: Mapping[str, str], where: str) -> dict[str, Any]:
    """A nested input object as API parameters; a key the harness does not translate is an error."""
    unknown = sorted(k for k, v in value.items() if v is not None and k not in names)
    if unknown:
        raise HarnessError(f"{where}: the harness does not translate {unknown}")
    return {names[k]: v for k, v in value.items() if v is not None}


@dataclass
class _Step:
    """One resource being replayed: its node, region and inputs, and the requests made for it."""

    ctx: _Replay
    node: Node
    region: str
    args: _Args

    @property
    def account(self) -> str:
        return self.ctx.summary.account_id

    def call(self, service: str, method: str, **params: Any) -> dict[str, Any]:
        """`client.<method>(**params)` in this resource's region; a refusal carries the resource."""
        region = self.region
        client = self.ctx.server.client(service, region, account_id=self.account)
        operation = client.meta.method_to_api_mapping.get(method, method)
        refused = {"service": service, "operation": operation, "params": params, "region": region}
        refused |= {"urn": self.node.urn, "name": self.node.name}
        self.ctx.summary.requests += 1
        try:
            answer: dict[str, Any] = getattr(client, method)(**params)
        except ClientError as error:
            details = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise AwsRefused(
                **refused, code=str(details.get("Code", "")), message=str(details.get("Message", "")), status=status
            ) from None
        except ParamValidationError as error:
            raise AwsRefused(**refused, code="ParamValidationError", message=str(error)) from None
        except (BotoCoreError, ResponseParserError) as error:  # moto's internal errors are HTML pages
            raise MotoFailure(
                f"{self.node.name} ({self.node.urn}): moto failed on {service} {operation} in {region} {params!r}: "
                f"{error}"
            ) from None
        answer.pop("ResponseMetadata", None)
        return answer

    def name(
        self, *, key: str = "name", prefix_key: str = "namePrefix", id_is_name: bool = False, max_length: int = 255
    ) -> str:
        """The name to create the resource with: the plan's (its input, else the output the planner answered,
        which later inputs reference), else a prefix plus a unique suffix, else (autonaming, which mocks do not do)
        the id where that is the name, or the resource's name plus a suffix."""
        name = self.args.get(key)
        prefix = self.args.get(prefix_key)
        answered = (self.node.outputs or {}).get(key)
        if name:
            return str(name)
        if isinstance(answered, str) and answered:
            return answered
        if prefix:
            return f"{prefix}{_suffix(self.node.urn, 26)}"[:max_length]
        if id_is_name and self.node.id:
            return self.node.id
        return f"{self.node.name[: max_length - 8]}-{_suffix(self.node.urn, 7)}"

    def ec2_tags(self, resource_type: str) -> dict[str, Any]:
        tags = self.args.get("tags")
        if not tags:
            return {}
        return {"TagSpecifications": [{"ResourceType": resource_type, "Tags": _tag_list(tags)}]}

    def tag_ec2(self, resource_id: str) -> None:
        """Tags for what the API tags only after the fact (an accepted peering)."""
        if tags := self.args.get("tags"):
            self.call("ec2", "create_tags", Resources=[resource_id], Tags=_tag_list(tags))

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _suffix(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _flag(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


Translate = Callable[[_Step], dict[str, Any]]
"""Create one resource (its inputs with real values) in moto; answer its real outputs, shaped as the provider's:
`id`, and what `SETTLED` names for its type."""


# --- EC2: VPCs, subnets, gateways, routes --------------------------------------------------------------------


def _vpc(step: _Step) -> dict[str, Any]:
    a = step.args
    params = a.fields(
        {
            "cidrBlock": "CidrBlock",
            "instanceTenancy": "InstanceTenancy",
            "assignGeneratedIpv6CidrBlock": "AmazonProvidedIpv6CidrBlock",
            "ipv6CidrBlock": "Ipv6CidrBlock",
            "ipv6CidrBlockNetworkBorderGroup": "Ipv6CidrBlockNetworkBorderGroup",
        }
    )
    vpc = step.call("ec2", "create_vpc", **params, **step.ec2_tags("vpc"))["Vpc"]
    vpc_id = vpc["VpcId"]
    for key, default in (("enableDnsSupport", True), ("enableDnsHostnames", False)):
        if (value := a.get(key)) is not None and value != default:  # the provider only sets what differs
            step.call("ec2", "modify_vpc_attribute", VpcId=vpc_id, **{key[0].upper() + key[1:]: {"Value": value}})
    if a.get("enableNetworkAddressUsageMetrics"):
        step.call("ec2", "modify_vpc_attribute", VpcId=vpc_id, EnableNetworkAddressUsageMetrics={"Value": True})
    in_vpc = {"Name": "vpc-id", "Values": [vpc_id]}
    main = step.call("ec2", "describe_route_tables", Filters=[in_vpc, {"Name": "association.main", "Values": ["true"]}])
    groups = step.call(
        "ec2", "describe_security_groups", Filters=[in_vpc, {"Name": "group-name", "Values": ["default"]}]
    )
    acls = step.call("ec2", "describe_network_acls", Filters=[in_vpc, {"Name": "default", "Values": ["true"]}])
    main_id = main["RouteTables"][0]["RouteTableId"]
    return {
        "id": vpc_id,
        "arn": step.arn("ec2", f"vpc/{vpc_id}"),
        "ownerId": vpc["OwnerId"],
        "mainRouteTableId": main_id,
        "defaultRouteTableId": main_id,
        "defaultSecurityGroupId": groups["SecurityGroups"][0]["GroupId"],
        "defaultNetworkAclId": acls["NetworkAcls"][0]["NetworkAclId"],
    }


def _subnet(step: _Step) -> dict[str, Any]:
    a = step.args
    params = a.fields(
        {
            "vpcId": "VpcId",
            "cidrBlock": "CidrBlock",
            "availabilityZone": "AvailabilityZone",
            "availabilityZoneId": "AvailabilityZoneId",
            "ipv6CidrBlock": "Ipv6CidrBlock",
            "outpostArn": "OutpostArn",
        }
    )
    subnet = step.call("ec2", "create_subnet", **params, **step.ec2_tags("subnet"))["Subnet"]
    for key in ("mapPublicIpOnLaunch", "assignIpv6AddressOnCreation"):
        if a.get(key):
            attribute = key[0].upper() + key[1:]
            step.call("ec2", "modify_subnet_attribute", SubnetId=subnet["SubnetId"], **{attribute: {"Value": True}})
    return {
        "id": subnet["SubnetId"],
        "arn": subnet.get("SubnetArn") or step.arn("ec2", f"subnet/{subnet['SubnetId']}"),
        "ownerId": subnet.get("OwnerId", step.account),
    }


def _internet_gateway(step: _Step) -> dict[str, Any]:
    gateway = step.call("ec2", "create_internet_gateway", **step.ec2_tags("internet-gateway"))["InternetGateway"]
    gateway_id = gateway["InternetGatewayId"]
    if vpc_id := step.args.get("vpcId"):
        step.call("ec2", "attach_internet_gateway", InternetGatewayId=gateway_id, VpcId=vpc_id)
    return {"id": gateway_id, "arn": step.arn("ec2", f"internet-gateway/{gateway_id}"), "ownerId": step.account}


def _eip(step: _Step) -> dict[str, Any]:
    params = step.args.fields(
        {
            "domain": "Domain",
            "address": "Address",
            "networkBorderGroup": "NetworkBorderGroup",
            "publicIpv4Pool": "PublicIpv4Pool",
            "customerOwnedIpv4Pool": "CustomerOwnedIpv4Pool",
            "ipamPoolId": "IpamPoolId",
        }
    )
    address = step.call("ec2", "allocate_address", **params, **step.ec2_tags("elastic-ip"))
    allocation = address["AllocationId"]
    return {"id": allocation, "allocationId": allocation, "arn": step.arn("ec2", f"elastic-ip/{allocation}")}


def _nat_gateway(step: _Step) -> dict[str, Any]:
    params = step.args.fields(
        {
            "allocationId": "AllocationId",
            "subnetId": "SubnetId",
            "connectivityType": "ConnectivityType",
            "privateIp": "PrivateIpAddress",
            "secondaryAllocationIds": "SecondaryAllocationIds",
            "secondaryPrivateIpAddresses": "SecondaryPrivateIpAddresses",
            "secondaryPrivateIpAddressCount": "SecondaryPrivateIpAddressCount",
            "availabilityMode": "AvailabilityMode",
            "vpcId": "VpcId",
        }
    )
    nat = step.call("ec2", "create_nat_gateway", **params, **step.ec2_tags("natgateway"))["NatGateway"]
    addresses = nat.get("NatGatewayAddresses") or [{}]
    return {"id": nat["NatGatewayId"], "networkInterfaceId": addresses[0].get("NetworkInterfaceId")}


ROUTE_TARGETS = {
    "gatewayId": "GatewayId",
    "natGatewayId": "NatGatewayId",
    "vpcPeeringConnectionId": "VpcPeeringConnectionId",
    "transitGatewayId": "TransitGatewayId",
    "networkInterfaceId": "NetworkInterfaceId",
    "vpcEndpointId": "VpcEndpointId",
    "egressOnlyGatewayId": "EgressOnlyInternetGatewayId",
    "carrierGatewayId": "CarrierGatewayId",
    "localGatewayId": "LocalGatewayId",
    "coreNetworkArn": "CoreNetworkArn",
    "destinationPrefixListId": "DestinationPrefixListId",
}
ROUTE_FIELDS = {
    "routeTableId": "RouteTableId",
    "destinationCidrBlock": "DestinationCidrBlock",
    "destinationIpv6CidrBlock": "DestinationIpv6CidrBlock",
    **ROUTE_TARGETS,
}
INLINE_ROUTE_FIELDS = {
    "cidrBlock": "DestinationCidrBlock",
    "ipv6CidrBlock": "DestinationIpv6CidrBlock",
    **ROUTE_TARGETS,
}


def _create_route(step: _Step, params: dict[str, Any]) -> str:
    step.call("ec2", "create_route", **params)
    destination = params.get("DestinationCidrBlock") or params.get("DestinationIpv6CidrBlock") or ""
    return f"r-{params['RouteTableId']}{zlib.crc32(destination.encode())}"  # the provider's id


def _route_table(step: _Step) -> dict[str, Any]:
    vpc_id = step.args.required("vpcId")
    table = step.call("ec2", "create_route_table", VpcId=vpc_id, **step.ec2_tags("route-table"))["RouteTable"]
    table_id = table["RouteTableId"]
    for index, route in enumerate(step.args.get("routes") or []):
        params = _object(route, INLINE_ROUTE_FIELDS, f"{step.node.name}.routes[{index}]")
        _create_route(step, {"RouteTableId": table_id, **params})
    return {"id": table_id, "arn": step.arn("ec2", f"route-table/{table_id}"), "ownerId": step.account}


def _route(step: _Step) -> dict[str, Any]:
    return {"id": _create_route(step, step.args.fields(ROUTE_FIELDS))}


def _route_table_association(step: _Step) -> dict[str, Any]:
    params = step.args.fields({"routeTableId": "RouteTableId", "subnetId": "SubnetId", "gatewayId": "GatewayId"})
    return {"id": step.call("ec2", "associate_route_table", **params)["AssociationId"]}


# --- EC2: security groups ------------------------------------------------------------------------------------


INLINE_RULE_FIELDS = frozenset(
    {"protocol", "fromPort", "toPort", "cidrBlocks", "ipv6CidrBlocks", "prefixListIds", "securityGroups", "self"}
    | {"description"}
)


def _inline_permission(rule: Mapping[str, Any], group_id: str, where: str) -> dict[str, Any]:
    """An inline `ingress`/`egress` entry of a security group as an IpPermission."""
    unknown = sorted(k for k, v in rule.items() if v is not None and k not in INLINE_RULE_FIELDS)
    if unknown:
        raise HarnessError(f"{where}: the harness does not translate {unknown}")
    described = {"Description": rule["description"]} if rule.get("description") else {}
    groups = [*(rule.get("securityGroups") or []), *([group_id] if rule.get("self") else [])]
    permission = {
        "IpProtocol": str(rule["protocol"]),
        "FromPort": rule.get("fromPort"),
        "ToPort": rule.get("toPort"),
        "IpRanges": [{"CidrIp": c, **described} for c in rule.get("cidrBlocks") or []],
        "Ipv6Ranges": [{"CidrIpv6": c, **described} for c in rule.get("ipv6CidrBlocks") or []],
        "PrefixListIds": [{"PrefixListId": p, **described} for p in rule.get("prefixListIds") or []],
        "UserIdGroupPairs": [{"GroupId": g, **described} for g in groups],
    }
    return {k: v for k, v in permission.items() if v not in (None, [])}


def _security_group(step: _Step) -> dict[str, Any]:
    """As the provider does: the group, then the default allow-all egress rule AWS adds to a VPC's group revoked
    (the plan's egress rules say what is allowed), then any inline rules."""
    a = step.args
    params = {"GroupName": step.name(), "Description": a.get("description") or MANAGED_BY}
    params |= a.fields({"vpcId": "VpcId"})
    group_id = step.call("ec2", "create_security_group", **params, **step.ec2_tags("security-group"))["GroupId"]
    everything = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    step.call("ec2", "revoke_security_group_egress", GroupId=group_id, IpPermissions=[everything])
    for direction in ("ingress", "egress"):
        where = f"{step.node.name}.{direction}"
        permissions = [_inline_permission(r, group_id, f"{where}[{i}]") for i, r in enumerate(a.get(direction) or [])]
        if permissions:
            step.call("ec2", f"authorize_security_group_{direction}", GroupId=group_id, IpPermissions=permissions)
    return {"id": group_id, "arn": step.arn("ec2", f"security-group/{group_id}"), "ownerId": step.account}


def _rule(direction: str) -> Translate:
    def translate(step: _Step) -> dict[str, Any]:
        a = step.args
        described = {"Description": d} if (d := a.get("description")) else {}
        permission: dict[str, Any] = {"IpProtocol": str(a.required("ipProtocol"))}
        permission |= a.fields({"fromPort": "FromPort", "toPort": "ToPort"})
        if cidr := a.get("cidrIpv4"):
            permission["IpRanges"] = [{"CidrIp": cidr, **described}]
        if cidr := a.get("cidrIpv6"):
            permission["Ipv6Ranges"] = [{"CidrIpv6": cidr, **described}]
        if prefix_list := a.get("prefixListId"):
            permission["PrefixListIds"] = [{"PrefixListId": prefix_list, **described}]
        if group := a.get("referencedSecurityGroupId"):
            owner, _, group_id = str(group).rpartition("/")  # "account/sg-..." for another account's group
            permission["UserIdGroupPairs"] = [
                {"GroupId": group_id, **({"UserId": owner} if owner else {}), **described}
            ]
        answer = step.call(
            "ec2",
            f"authorize_security_group_{direction}",
            GroupId=a.required("securityGroupId"),
            IpPermissions=[permission],
            **step.ec2_tags("security-group-rule"),
        )
        rule_id = answer["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        arn = step.arn("ec2", f"security-group-rule/{rule_id}")
        return {"id": rule_id, "securityGroupRuleId": rule_id, "arn": arn}

    return translate


# --- EC2: peering and transit gateways -----------------------------------------------------------------------


def _peering_options(step: _Step, peering_id: str) -> None:
    """The `requester`/`accepter` blocks (DNS resolution of the peer's hostnames), once the peering is active."""
    options = {}
    for key in ("requester", "accepter"):
        if block := step.args.get(key):
            where = f"{step.node.name}.{key}"
            options[f"{key.capitalize()}PeeringConnectionOptions"] = _object(
                block, {"allowRemoteVpcDnsResolution": "AllowDnsResolutionFromRemoteVpc"}, where
            )
    if options:
        step.call("ec2", "modify_vpc_peering_connection_options", VpcPeeringConnectionId=peering_id, **options)


def _peering(step: _Step) -> dict[str, Any]:
    """As the provider does: the request, accepted at once (in the requester's region) with `autoAccept`."""
    params = step.args.fields(
        {"vpcId": "VpcId", "peerVpcId": "PeerVpcId", "peerOwnerId": "PeerOwnerId", "peerRegion": "PeerRegion"}
    )
    answer = step.call("ec2", "create_vpc_peering_connection", **params, **step.ec2_tags("vpc-peering-connection"))
    connection = answer["VpcPeeringConnection"]
    peering_id = connection["VpcPeeringConnectionId"]
    status = connection["Status"]["Code"]
    if step.args.get("autoAccept"):
        accepted = step.call("ec2", "accept_vpc_peering_connection", VpcPeeringConnectionId=peering_id)
        status = accepted["VpcPeeringConnection"]["Status"]["Code"]
    _peering_options(step, peering_id)
    return {"id": peering_id, "acceptStatus": status}


def _peering_accepter(step: _Step) -> dict[str, Any]:
    peering_id = step.args.required("vpcPeeringConnectionId")
    status = "pending-acceptance"
    if step.args.get("autoAccept"):
        accepted = step.call("ec2", "accept_vpc_peering_connection", VpcPeeringConnectionId=peering_id)
        status = accepted["VpcPeeringConnection"]["Status"]["Code"]
    _peering_options(step, peering_id)
    step.tag_ec2(peering_id)
    return {"id": peering_id, "acceptStatus": status}


def _transit_gateway(step: _Step) -> dict[str, Any]:
    a = step.args
    options = a.fields(
        {
            "amazonSideAsn": "AmazonSideAsn",
            "autoAcceptSharedAttachments": "AutoAcceptSharedAttachments",
            "defaultRouteTableAssociation": "DefaultRouteTableAssociation",
            "defaultRouteTablePropagation": "DefaultRouteTablePropagation",
            "dnsSupport": "DnsSupport",
            "multicastSupport": "MulticastSupport",
            "securityGroupReferencingSupport": "SecurityGroupReferencingSupport",
            "transitGatewayCidrBlocks": "TransitGatewayCidrBlocks",
            "vpnEcmpSupport": "VpnEcmpSupport",
        }
    )
    params = a.fields({"description": "Description"})
    gateway = step.call("ec2", "create_transit_gateway", Options=options, **params, **step.ec2_tags("transit-gateway"))[
        "TransitGateway"
    ]
    answered = gateway.get("Options", {})
    return {
        "id": gateway["TransitGatewayId"],
        "arn": gateway.get("TransitGatewayArn"),
        "ownerId": gateway.get("OwnerId", step.account),
        "associationDefaultRouteTableId": answered.get("AssociationDefaultRouteTableId"),
        "propagationDefaultRouteTableId": answered.get("PropagationDefaultRouteTableId"),
    }


def _tgw_vpc_attachment(step: _Step) -> dict[str, Any]:
    a = step.args
    params = a.fields({"transitGatewayId": "TransitGatewayId", "vpcId": "VpcId", "subnetIds": "SubnetIds"})
    options = a.fields(
        {
            "applianceModeSupport": "ApplianceModeSupport",
            "dnsSupport": "DnsSupport",
            "ipv6Support": "Ipv6Support",
            "securityGroupReferencingSupport": "SecurityGroupReferencingSupport",
        }
    )
    answer = step.call(
        "ec2",
        "create_transit_gateway_vpc_attachment",
        **params,
        **({"Options": options} if options else {}),
        **step.ec2_tags("transit-gateway-attachment"),
    )
    attachment = answer["TransitGatewayVpcAttachment"]
    attachment_id = attachment["TransitGatewayAttachmentId"]
    arn = step.arn("ec2", f"transit-gateway-attachment/{attachment_id}")
    return {"id": attachment_id, "arn": arn, "vpcOwnerId": attachment.get("VpcOwnerId", step.account)}


def _tgw_route_table(step: _Step) -> dict[str, Any]:
    answer = step.call(
        "ec2",
        "create_transit_gateway_route_table",
        TransitGatewayId=step.args.required("transitGatewayId"),
        **step.ec2_tags("transit-gateway-route-table"),
    )
    table_id = answer["TransitGatewayRouteTable"]["TransitGatewayRouteTableId"]
    return {"id": table_id, "arn": step.arn("ec2", f"transit-gateway-route-table/{table_id}")}


def _tgw_route(step: _Step) -> dict[str, Any]:
    params = step.args.fields(
        {
            "destinationCidrBlock": "DestinationCidrBlock",
            "transitGatewayRouteTableId": "TransitGatewayRouteTableId",
            "transitGatewayAttachmentId": "TransitGatewayAttachmentId",
            "blackhole": "Blackhole",
        }
    )
    step.call("ec2", "create_transit_gateway_route", **params)
    return {"id": f"{params['TransitGatewayRouteTableId']}_{params['DestinationCidrBlock']}"}


def _tgw_relation(method: str) -> Translate:
    def translate(step: _Step) -> dict[str, Any]:
        table = step.args.required("transitGatewayRouteTableId")
        attachment = step.args.required("transitGatewayAttachmentId")
        step.call("ec2", method, TransitGatewayRouteTableId=table, TransitGatewayAttachmentId=attachment)
        return {"id": f"{table}_{attachment}"}

    return translate


def _tgw_peering(step: _Step) -> dict[str, Any]:
    a = step.args
    params = a.fields(
        {
            "transitGatewayId": "TransitGatewayId",
            "peerTransitGatewayId": "PeerTransitGatewayId",
            "peerRegion": "PeerRegion",
        }
    )
    params["PeerAccountId"] = a.get("peerAccountId") or step.account  # the provider's default: this account
    if options := a.get("options"):
        params["Options"] = _object(options, {"dynamicRouting": "DynamicRouting"}, f"{step.node.name}.options")
    answer = step.call(
        "ec2", "create_transit_gateway_peering_attachment", **params, **step.ec2_tags("transit-gateway-attachment")
    )
    return {"id": answer["TransitGatewayPeeringAttachment"]["TransitGatewayAttachmentId"]}


def _tgw_peering_accepter(step: _Step) -> dict[str, Any]:
    attachment = step.args.required("transitGatewayAttachmentId")
    step.call("ec2", "accept_transit_gateway_peering_attachment", TransitGatewayAttachmentId=attachment)
    step.tag_ec2(attachment)
    return {"id": attachment}


# --- Elastic Load Balancing v2 -------------------------------------------------------------------------------


LOAD_BALANCER_ATTRIBUTES = {
    "enableCrossZoneLoadBalancing": "load_balancing.cross_zone.enabled",
    "enableDeletionProtection": "deletion_protection.enabled",
    "idleTimeout": "idle_timeout.timeout_seconds",
    "enableHttp2": "routing.http2.enabled",
    "dnsRecordClientRoutingPolicy": "dns_record.client_routing_policy",
}
TARGET_GROUP_ATTRIBUTES = {
    "deregistrationDelay": "deregistration_delay.timeout_seconds",
    "connectionTermination": "deregistration_delay.connection_termination.enabled",
    "preserveClientIp": "preserve_client_ip.enabled",
    "proxyProtocolV2": "proxy_protocol_v2.enabled",
    "loadBalancingCrossZoneEnabled": "load_balancing.cross_zone.enabled",
    "slowStart": "slow_start.duration_seconds",
}
HEALTH_CHECK_FIELDS = {
    "enabled": "HealthCheckEnabled",
    "healthyThreshold": "HealthyThresholdCount",
    "interval": "HealthCheckIntervalSeconds",
    "path": "HealthCheckPath",
    "port": "HealthCheckPort",
    "protocol": "HealthCheckProtocol",
    "timeout": "HealthCheckTimeoutSeconds",
    "unhealthyThreshold": "UnhealthyThresholdCount",
    "matcher": "Matcher",
}
SUBNET_MAPPING_FIELDS = {
    "subnetId": "SubnetId",
    "privateIpv4Address": "PrivateIPv4Address",
    "allocationId": "AllocationId",
    "ipv6Address": "IPv6Address",
}


def _attributes(step: _Step, names: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": _flag(v)} for arg, key in names.items() if (v := step.args.get(arg)) is not None]


def _load_balancer(step: _Step) -> dict[str, Any]:
    """As the provider does: an application load balancer and internet-facing unless the plan says otherwise."""
    a = step.args
    params: dict[str, Any] = {
        "Name": step.name(max_length=32),
        "Type": a.get("loadBalancerType") or "application",
        "Scheme": "internal" if a.get("internal") else "internet-facing",
    }
    params |= a.fields(
        {
            "subnets": "Subnets",
            "securityGroups": "SecurityGroups",
            "ipAddressType": "IpAddressType",
            "customerOwnedIpv4Pool": "CustomerOwnedIpv4Pool",
        }
    )
    where = f"{step.node.name}.subnetMappings"
    if mappings := a.get("subnetMappings"):
        params["SubnetMappings"] = [_object(m, SUBNET_MAPPING_FIELDS, f"{where}[{i}]") for i, m in enumerate(mappings)]
    if tags := a.get("tags"):
        params["Tags"] = _tag_list(tags)
    balancer = step.call("elbv2", "create_load_balancer", **params)["LoadBalancers"][0]
    arn = balancer["LoadBalancerArn"]
    if attributes := _attributes(step, LOAD_BALANCER_ATTRIBUTES):
        step.call("elbv2", "modify_load_balancer_attributes", LoadBalancerArn=arn, Attributes=attributes)
    return {"id": arn, "arn": arn, "arnSuffix": _arn_suffix(arn), "dnsName": balancer.get("DNSName")}


def _arn_suffix(arn: str) -> str:
    match = LOAD_BALANCER_ARN_SUFFIX.search(arn)
    return match.group("suffix") if match else arn


def _target_group(step: _Step) -> dict[str, Any]:
    a = step.args
    params: dict[str, Any] = {"Name": step.name(max_length=32)}
    params |= a.fields(
        {
            "port": "Port",
            "protocol": "Protocol",
            "protocolVersion": "ProtocolVersion",
            "vpcId": "VpcId",
            "targetType": "TargetType",
            "ipAddressType": "IpAddressType",
        }
    )
    if health := a.get("healthCheck"):
        checks = _object(health, HEALTH_CHECK_FIELDS, f"{step.node.name}.healthCheck")
        if "Matcher" in checks:
            checks["Matcher"] = {"HttpCode": checks["Matcher"]}
        if "HealthCheckPort" in checks:
            checks["HealthCheckPort"] = str(checks["HealthCheckPort"])
        params |= checks
    if tags := a.get("tags"):
        params["Tags"] = _tag_list(tags)
    arn = step.call("elbv2", "create_target_group", **params)["TargetGroups"][0]["TargetGroupArn"]
    attributes = _attributes(step, TARGET_GROUP_ATTRIBUTES)
    if stickiness := a.get("stickiness"):
        stuck = _object(stickiness, {"enabled": "stickiness.enabled", "type": "stickiness.type"}, "stickiness")
        attributes += [{"Key": key, "Value": _flag(value)} for key, value in stuck.items()]
    if attributes:
        step.call("elbv2", "modify_target_group_attributes", TargetGroupArn=arn, Attributes=attributes)
    return {"id": arn, "arn": arn, "arnSuffix": _arn_suffix(arn)}


def _listener_action(action: Mapping[str, Any], where: str) -> dict[str, Any]:
    plain = {k: v for k, v in action.items() if k != "forward"}
    translated = _object(plain, {"type": "Type", "targetGroupArn": "TargetGroupArn", "order": "Order"}, where)
    if forward := action.get("forward"):  # weighted forwarding to one or more groups
        config = _object(forward, {"targetGroups": "TargetGroups", "stickiness": "TargetGroupStickinessConfig"}, where)
        fields = {"arn": "TargetGroupArn", "weight": "Weight"}
        config["TargetGroups"] = [_object(g, fields, f"{where}.forward") for g in config.get("TargetGroups", [])]
        if stickiness := config.get("TargetGroupStickinessConfig"):
            fields = {"enabled": "Enabled", "duration": "DurationSeconds"}
            config["TargetGroupStickinessConfig"] = _object(stickiness, fields, f"{where}.forward.stickiness")
        translated["ForwardConfig"] = config
    return translated


def _listener(step: _Step) -> dict[str, Any]:
    a = step.args
    params = a.fields(
        {"loadBalancerArn": "LoadBalancerArn", "port": "Port", "protocol": "Protocol", "sslPolicy": "SslPolicy"}
    )
    actions = a.required("defaultActions")
    where = f"{step.node.name}.defaultActions"
    params["DefaultActions"] = [_listener_action(action, f"{where}[{i}]") for i, action in enumerate(actions)]
    if certificate := a.get("certificateArn"):
        params["Certificates"] = [{"CertificateArn": certificate}]
    if alpn := a.get("alpnPolicy"):
        params["AlpnPolicy"] = [alpn]
    if tags := a.get("tags"):
        params["Tags"] = _tag_list(tags)
    arn = step.call("elbv2", "create_listener", **params)["Listeners"][0]["ListenerArn"]
    return {"id": arn, "arn": arn}


# --- IAM and KMS ---------------------------------------------------------------------------------------------


def _role(step: _Step) -> dict[str, Any]:
    a = step.args
    name = step.name(id_is_name=True, max_length=64)
    params: dict[str, Any] = {"RoleName": name, "AssumeRolePolicyDocument": a.required("assumeRolePolicy")}
    params |= a.fields(
        {
            "path": "Path",
            "description": "Description",
            "maxSessionDuration": "MaxSessionDuration",
            "permissionsBoundary": "PermissionsBoundary",
        }
    )
    if tags := a.get("tags"):
        params["Tags"] = _tag_list(tags)
    role = step.call("iam", "create_role", **params)["Role"]
    for index, policy in enumerate(a.get("inlinePolicies") or []):
        inline = _object(policy, {"name": "PolicyName", "policy": "PolicyDocument"}, f"{name}.inlinePolicies[{index}]")
        step.call("iam", "put_role_policy", RoleName=name, **inline)
    for policy_arn in a.get("managedPolicyArns") or []:  # deprecated in v7, still an input
        step.call("iam", "attach_role_policy", RoleName=name, PolicyArn=policy_arn)
    return {"id": name, "name": name, "arn": role["Arn"], "uniqueId": role["RoleId"]}


def _role_policy_attachment(step: _Step) -> dict[str, Any]:
    role = step.args.required("role")
    policy_arn = step.args.required("policyArn")
    step.call("iam", "attach_role_policy", RoleName=role, PolicyArn=policy_arn)
    return {"id": f"{role}-{_suffix(policy_arn, 26)}"}


def _kms_key(step: _Step) -> dict[str, Any]:
    a = step.args
    params = a.fields(
        {
            "description": "Description",
            "keyUsage": "KeyUsage",
            "customerMasterKeySpec": "KeySpec",
            "policy": "Policy",
            "multiRegion": "MultiRegion",
            "bypassPolicyLockoutSafetyCheck": "BypassPolicyLockoutSafetyCheck",
        }
    )
    if tags := a.get("tags"):
        params["Tags"] = [{"TagKey": key, "TagValue": value} for key, value in tags.items()]
    metadata = step.call("kms", "create_key", **params)["KeyMetadata"]
    key_id = metadata["KeyId"]
    if a.get("enableKeyRotation"):
        period = a.fields({"rotationPeriodInDays": "RotationPeriodInDays"})
        step.call("kms", "enable_key_rotation", KeyId=key_id, **period)
    if a.get("isEnabled") is False:
        step.call("kms", "disable_key", KeyId=key_id)
    return {"id": key_id, "keyId": key_id, "arn": metadata["Arn"]}


# --- EKS -----------------------------------------------------------------------------------------------------


CLUSTER_VPC_FIELDS = {
    "subnetIds": "subnetIds",
    "securityGroupIds": "securityGroupIds",
    "endpointPrivateAccess": "endpointPrivateAccess",
    "endpointPublicAccess": "endpointPublicAccess",
    "publicAccessCidrs": "publicAccessCidrs",
}
CLUSTER_NETWORK_FIELDS = {"serviceIpv4Cidr": "serviceIpv4Cidr", "ipFamily": "ipFamily"}
CLUSTER_ACCESS_FIELDS = {
    "authenticationMode": "authenticationMode",
    "bootstrapClusterCreatorAdminPermissions": "bootstrapClusterCreatorAdminPermissions",
}


def _cluster_params(step: _Step, name: str) -> dict[str, Any]:
    a = step.args
    where = step.node.name
    params: dict[str, Any] = {"name": name, "roleArn": a.required("roleArn")}
    params |= a.fields(
        {"version": "version", "bootstrapSelfManagedAddons": "bootstrapSelfManagedAddons", "tags": "tags"}
    )
    params |= a.fields({"deletionProtection": "deletionProtection"})
    params["resourcesVpcConfig"] = _object(a.required("vpcConfig"), CLUSTER_VPC_FIELDS, f"{where}.vpcConfig")
    if network := a.get("kubernetesNetworkConfig"):
        params["kubernetesNetworkConfig"] = _object(network, CLUSTER_NETWORK_FIELDS, f"{where}.kubernetesNetworkConfig")
    if access := a.get("accessConfig"):
        params["accessConfig"] = _object(access, CLUSTER_ACCESS_FIELDS, f"{where}.accessConfig")
    if upgrade := a.get("upgradePolicy"):
        params["upgradePolicy"] = _object(upgrade, {"supportType": "supportType"}, f"{where}.upgradePolicy")
    if zonal := a.get("zonalShiftConfig"):
        params["zonalShiftConfig"] = _object(zonal, {"enabled": "enabled"}, f"{where}.zonalShiftConfig")
    if log_types := a.get("enabledClusterLogTypes"):
        params["logging"] = {"clusterLogging": [{"types": log_types, "enabled": True}]}
    if encryption := a.get("encryptionConfig"):
        translated = _object(encryption, {"provider": "provider", "resources": "resources"}, f"{where}.encryption")
        translated["provider"] = _object(translated["provider"], {"keyArn": "keyArn"}, f"{where}.encryption")
        params["encryptionConfig"] = [translated]
    return params


def _cluster(step: _Step) -> dict[str, Any]:
    """The cluster, then the security group EKS makes for it and moto does not (members allowed everything
    among themselves, egress anywhere), which node groups and rules of the plan reference."""
    name = step.name(id_is_name=True, max_length=100)
    cluster = step.call("eks", "create_cluster", **_cluster_params(step, name))["cluster"]
    subnets = cluster["resourcesVpcConfig"]["subnetIds"]
    in_subnet = [{"Name": "subnet-id", "Values": subnets[:1]}]  # a filter: moto's EKS takes subnets it lacks
    described = step.call("ec2", "describe_subnets", Filters=in_subnet)["Subnets"] if subnets else []
    vpc_id = described[0]["VpcId"] if described else None
    group_id = _cluster_security_group(step, name, vpc_id) if vpc_id else None
    return {
        "id": name,
        "name": name,
        "arn": cluster["arn"],
        "vpcConfig": {"clusterSecurityGroupId": group_id, "vpcId": vpc_id},
    }


def _cluster_security_group(step: _Step, cluster: str, vpc_id: str) -> str:
    group_name = f"eks-cluster-sg-{cluster}-{_suffix(step.node.urn, 10)}"
    tags = [{"Key": "Name", "Value": group_name}, {"Key": f"kubernetes.io/cluster/{cluster}", "Value": "owned"}]
    group_id: str = step.call(
        "ec2",
        "create_security_group",
        GroupName=group_name,
        Description=CLUSTER_SG_DESCRIPTION,
        VpcId=vpc_id,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
    )["GroupId"]
    members = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id}]}
    step.call("ec2", "authorize_security_group_ingress", GroupId=group_id, IpPermissions=[members])
    step.ctx.summary.implied["EKS cluster security group"] += 1
    step.ctx.known.add(group_id)
    return group_id


NODE_GROUP_FIELDS = {
    "clusterName": "clusterName",
    "nodeRoleArn": "nodeRole",
    "subnetIds": "subnets",
    "instanceTypes": "instanceTypes",
    "amiType": "amiType",
    "capacityType": "capacityType",
    "diskSize": "diskSize",
    "labels": "labels",
    "releaseVersion": "releaseVersion",
    "version": "version",
    "tags": "tags",
}


def _node_group(step: _Step) -> dict[str, Any]:
    a = step.args
    where = step.node.name
    name = step.name(key="nodeGroupName", prefix_key="nodeGroupNamePrefix", max_length=63)
    params: dict[str, Any] = {"nodegroupName": name, **a.fields(NODE_GROUP_FIELDS)}
    if scaling := a.get("scalingConfig"):
        fields = {"desiredSize": "desiredSize", "maxSize": "maxSize", "minSize": "minSize"}
        params["scalingConfig"] = _object(scaling, fields, f"{where}.scalingConfig")
    if taints := a.get("taints"):
        fields = {"key": "key", "value": "value", "effect": "effect"}
        params["taints"] = [_object(t, fields, f"{where}.taints[{i}]") for i, t in enumerate(taints)]
    if template := a.get("launchTemplate"):
        params["launchTemplate"] = _object(template, {"id": "id", "name": "name", "version": "version"}, where)
    if update := a.get("updateConfig"):
        fields = {"maxUnavailable": "maxUnavailable", "maxUnavailablePercentage": "maxUnavailablePercentage"}
        params["updateConfig"] = _object(update, fields | {"updateStrategy": "updateStrategy"}, where)
    if remote := a.get("remoteAccess"):
        fields = {"ec2SshKey": "ec2SshKey", "sourceSecurityGroupIds": "sourceSecurityGroups"}
        params["remoteAccess"] = _object(remote, fields, f"{where}.remoteAccess")
    group = step.call("eks", "create_nodegroup", **params)["nodegroup"]
    autoscaling = group.get("resources", {}).get("autoScalingGroups", [])
    return {
        "id": f"{group['clusterName']}:{group['nodegroupName']}",
        "arn": group["nodegroupArn"],
        "resources": [{"autoscalingGroups": [{"name": g["name"]} for g in autoscaling]}],
    }


TRANSLATORS: dict[str, Translate] = {
    VPC: _vpc,
    SUBNET: _subnet,
    INTERNET_GATEWAY: _internet_gateway,
    EIP: _eip,
    NAT_GATEWAY: _nat_gateway,
    ROUTE_TABLE: _route_table,
    ROUTE: _route,
    ROUTE_TABLE_ASSOCIATION: _route_table_association,
    SECURITY_GROUP: _security_group,
    INGRESS_RULE: _rule("ingress"),
    EGRESS_RULE: _rule("egress"),
    PEERING: _peering,
    PEERING_ACCEPTER: _peering_accepter,
    TRANSIT_GATEWAY: _transit_gateway,
    TGW_VPC_ATTACHMENT: _tgw_vpc_attachment,
    TGW_ROUTE_TABLE: _tgw_route_table,
    TGW_ROUTE: _tgw_route,
    TGW_ROUTE_TABLE_ASSOCIATION: _tgw_relation("associate_transit_gateway_route_table"),
    TGW_ROUTE_TABLE_PROPAGATION: _tgw_relation("enable_transit_gateway_route_table_propagation"),
    TGW_PEERING: _tgw_peering,
    TGW_PEERING_ACCEPTER: _tgw_peering_accepter,
    LOAD_BALANCER: _load_balancer,
    TARGET_GROUP: _target_group,
    LISTENER: _listener,
    ROLE: _role,
    ROLE_POLICY_ATTACHMENT: _role_policy_attachment,
    KMS_KEY: _kms_key,
    EKS_CLUSTER: _cluster,
    EKS_NODE_GROUP: _node_group,
}
"""The AWS resources the harness replays; any other `aws:` type not in `NOT_REPLAYED` is an error."""
for _kind in NOT_REPLAYED:
    TRANSLATORS.pop(_kind, None)


# --- order, regions and the whole plan ----------------------------------------------------------------------


def _settled_values(node: Node) -> Iterator[str]:
    """The fabricated values at `SETTLED` paths of the node's outputs."""
    for path in SETTLED.get(node.type, ()):
        yield from _at(node.outputs or {}, path.split("."))


def _at(value: Any, path: list[str]) -> Iterator[str]:
    if isinstance(value, Secret):
        yield from _at(value.value, path)
    elif isinstance(value, list):
        for item in value:
            yield from _at(item, path)
    elif not path:
        if isinstance(value, str) and value:
            yield value
    elif isinstance(value, dict):
        yield from _at(value.get(path[0]), path[1:])


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _references(value: Any) -> Iterator[str]:
    """Every string of an input, free text (`FREE_TEXT`) left out."""
    if isinstance(value, Secret):
        yield from _references(value.value)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in FREE_TEXT:
                yield from _references(item)


def _order(nodes: Sequence[Node], replayed: Sequence[Node]) -> list[Node]:
    """`replayed`, each after what it depends on (declared, through a component, or through a value of its inputs
    that another resource produced), otherwise in registration order."""
    produced: dict[str, str] = {n.id: n.urn for n in replayed if n.id}
    for node in replayed:
        for value in _settled_values(node):
            produced.setdefault(value, node.urn)
    try:
        return dependency_order(nodes, replayed, produced=produced, strings=_references)
    except DependencyCycle as cycle:
        raise HarnessError(str(cycle)) from None


def _region(node: Node, providers: Mapping[str, Node]) -> str:
    """The resource's `region` input, else its provider's, else the provider's default."""
    for inputs in (node.inputs, providers[node.provider].inputs if node.provider in providers else {}):
        region = inputs.get("region")
        if isinstance(region, Secret):
            region = region.value
        if isinstance(region, str) and region:
            return region
    return DEFAULT_REGION


def _call_parts(call: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """`token`, `args`, `result` of a recorded call (an object with those attributes, or a mapping)."""
    if isinstance(call, Mapping):
        return str(call["token"]), dict(call.get("args") or {}), dict(call.get("result") or {})
    return str(call.token), dict(call.args or {}), dict(call.result or {})


def _answer_functions(ctx: _Replay, calls: Sequence[Any]) -> None:
    for call in calls:
        token, _, result = _call_parts(call)
        if not token.startswith("aws:"):
            continue
        if token not in NOTHING_TO_CREATE:
            raise HarnessError(f"the harness does not know provider function {token}: what must exist for it?")
        ctx.summary.functions[token] += 1
        if token == GET_CALLER_IDENTITY and ACCOUNT_ID.match(str(result.get("accountId", ""))):
            ctx.remember(result["accountId"], ctx.summary.account_id)


def _classify(ctx: _Replay, nodes: Sequence[Node]) -> list[Node]:
    """The AWS resources to replay; those moto lacks counted; an unknown type or a read an error, before any
    request is made."""
    replayed = []
    for node in nodes:
        if not (node.custom and node.type.startswith("aws:")):
            continue
        if node.type in NOT_REPLAYED:
            ctx.summary.not_replayed[node.type] += 1
            ctx.summary.reasons[node.type] = NOT_REPLAYED[node.type]
        elif node.type not in TRANSLATORS:
            raise HarnessError(f"{node.name}: the harness does not know {node.type} ({node.urn})")
        elif node.read:
            raise HarnessError(f"{node.name}: a {node.type} read with .get(); the harness only creates resources")
        else:
            replayed.append(node)
    return replayed


def _replay_one(ctx: _Replay, node: Node, region: str) -> None:
    inputs = ctx.real_value(node.inputs, node.name)
    if ctx.strict_references:
        ctx.check_references(inputs, node.name)
    step = _Step(ctx, node, region, _Args(node, inputs))
    real = TRANSLATORS[node.type](step)
    if unread := step.args.unread():
        raise HarnessError(f"{node.name} ({node.type}): the harness does not translate input(s) {unread}")
    outputs = node.outputs or {}
    ctx.known.update(_strings(real))  # real, whether or not the plan holds a fabricated value for it
    ctx.remember(node.id, real["id"])
    ctx.settle({k: outputs[k] for k in SETTLED_ROOTS.get(node.type, ()) if k in outputs}, real)
    for key in ACCOUNT_OUTPUTS:
        if isinstance(outputs.get(key), str) and ACCOUNT_ID.match(outputs[key]):
            ctx.remember(outputs[key], ctx.summary.account_id)
    for key, reason in step.args.ignored().items():
        ctx.summary.ignored[f"{_short(node.type)}.{key}"] += 1
        ctx.summary.reasons[f"{_short(node.type)}.{key}"] = reason
    ctx.summary.ids[node.urn] = real["id"]
    ctx.summary.created[node.type] += 1
    ctx.summary.regions[region] += 1


SETTLED_ROOTS = {kind: tuple(dict.fromkeys(p.split(".")[0] for p in paths)) for kind, paths in SETTLED.items()}


def replay_plan(
    nodes: Sequence[Node],
    calls: Sequence[Any] = (),
    *,
    server: MotoServer,
    account_id: str | None = None,
    strict_references: bool = True,
) -> ReplaySummary:
    """Create the plan's AWS resources in moto, in dependency order, in an account of their own (`account_id`,
    else a new one); answer what was created and what was not replayed.

    `calls` are the plan's provider function calls (objects or mappings with `token`, `args`, `result`): the
    account getCallerIdentity answered is mapped to the replay's, as is the planner's (`fabricate_aws.ACCOUNT_ID`)
    and any account an owner output holds. A resource goes to its `region` input's region,
    else its provider's, else us-east-1. With `strict_references` (the default) an id or ARN of the account that
    names nothing the plan made is refused before moto sees it (`DanglingReference`); without, it goes to moto,
    which checks some (a route's peering connection) and not others (a route's NAT gateway).
    Raises `AwsRefused` (with the resource's URN) when moto refuses a request, `HarnessError` when the plan holds
    something the harness cannot translate, `MotoFailure` when moto fails.
    """
    ctx = _Replay(server, ReplaySummary(account_id or server.new_account()), strict_references)
    ctx.remember(PLANNED_ACCOUNT, ctx.summary.account_id)
    _answer_functions(ctx, calls)
    providers = {n.urn: n for n in nodes if n.type == AWS_PROVIDER}
    replayed = _classify(ctx, nodes)
    for node in _order(nodes, replayed):
        _replay_one(ctx, node, _region(node, providers))
    return ctx.summary


def replay_captured(plan: CapturedPlan, *, server: MotoServer, **options: Any) -> ReplaySummary:
    """`replay_plan` for a `CapturedPlan` (its nodes and provider function calls)."""
    return replay_plan(plan.nodes, plan.calls, server=server, **options)
