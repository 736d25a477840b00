"""What AWS would answer (EC2, VPC, Transit Gateway, ELBv2, Auto Scaling, IAM, KMS, EKS), for the planner.

Ids have AWS's own forms and derive from the resource's type and name, so that a stack plans to the same ids every
time and two plans can be diffed: `vpc-` and its kin carry 17 hex digits (`aws_id`), load balancers, target groups
and listeners are known by their ARNs, an IAM role by its name, a KMS key by a UUID, an EKS cluster by its name and
its node groups, add-ons and access entries by the `<cluster>:<name>` ids the provider gives them. Everything
belongs to one account, `ACCOUNT_ID` (the documentation account of AWS's own examples).

A resource's region is its `region` input (pulumi-aws v7 takes one on every regional resource), else that of the
provider it was registered through (`pulumi:providers:aws`, remembered as it registers), else the stack's
`aws:region`, else `DEFAULT_REGION`. A provider's `defaultTags` are merged into every `tagsAll`, as the provider
does.

What AWS would pick is fabricated only where the plan makes it knowable, and kept consistent with what the plan
made before: a subnet's VPC answers for an EKS cluster's `vpcConfig.vpcId` and a load balancer's `vpcId`, a NAT
gateway reports its Elastic IP's address and an address inside its subnet, a peering accepter reports the VPCs of
the connection it accepts. Elastic IPs come from the same TEST-NET-3 allocator as OpenStack's floating IPs when the
planner shares it (public addresses are unique on the Internet, whatever the cloud). An EKS cluster's certificate
authority is a real self-signed CA (ECDSA P-256, where EKS uses RSA: a key derived from the stack like every
fixture key, so plans stay byte-identical), whose subject is marked as a fixture; its private key is never kept.

Provider functions (`Aws.functions`) answer the account and partition (`getCallerIdentity`, `getPartition`), the
region and its zones (`getRegion`, `getAvailabilityZones`: `<region>a`..`c`), a short-lived EKS token (secret, as
the provider declares it) and IAM policy documents, rendered from their statements as the provider renders them
(its `aws_iam_policy_document` data source: sets sorted in reverse, one value as a string, Go's JSON escaping).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockResourceArgs

from clustermesh.planner.fabricate_openstack import FLOATING_IP_RANGE, _Range, fabricated_uuid
from clustermesh.planner.fabricate_tls import FIXTURE_ORGANIZATION, Fixtures
from clustermesh.planner.graph import decode, provider_urn, reveal

State = dict[str, Any]
Fabricator = Callable[[MockResourceArgs, State], State]
ProviderFunction = Callable[[State, str], State]
"""A provider function's answer to its arguments, called through the provider reference given (`urn::id`, or empty)."""

AWS_PROVIDER = "pulumi:providers:aws"

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
EIP = "aws:ec2/eip:Eip"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
PEERING = "aws:ec2/vpcPeeringConnection:VpcPeeringConnection"
PEERING_ACCEPTER = "aws:ec2/vpcPeeringConnectionAccepter:VpcPeeringConnectionAccepter"
TRANSIT_GATEWAY = "aws:ec2transitgateway/transitGateway:TransitGateway"
TGW_VPC_ATTACHMENT = "aws:ec2transitgateway/vpcAttachment:VpcAttachment"
TGW_ROUTE_TABLE = "aws:ec2transitgateway/routeTable:RouteTable"
TGW_ROUTE = "aws:ec2transitgateway/route:Route"
TGW_ASSOCIATION = "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation"
TGW_PROPAGATION = "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation"
TGW_PEERING = "aws:ec2transitgateway/peeringAttachment:PeeringAttachment"
TGW_PEERING_ACCEPTER = "aws:ec2transitgateway/peeringAttachmentAccepter:PeeringAttachmentAccepter"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
ASG_ATTACHMENT = "aws:autoscaling/attachment:Attachment"
ROLE = "aws:iam/role:Role"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
KMS_KEY = "aws:kms/key:Key"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY_ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"

GET_CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
GET_PARTITION = "aws:index/getPartition:getPartition"
GET_REGION = "aws:index/getRegion:getRegion"
GET_AVAILABILITY_ZONES = "aws:index/getAvailabilityZones:getAvailabilityZones"
GET_CLUSTER_AUTH = "aws:eks/getClusterAuth:getClusterAuth"
GET_POLICY_DOCUMENT = "aws:iam/getPolicyDocument:getPolicyDocument"

ACCOUNT_ID = "123456789012"
"""The account everything belongs to: the one AWS's documentation uses in its examples."""
DEFAULT_REGION = "us-east-1"
"""The region of a resource that names none, through no provider that names one, in a stack without `aws:region`."""
CALLER_NAME = "clustermesh-planner"
"""The IAM user the planner answers `getCallerIdentity` as."""
ZONES_PER_REGION = 3
"""Availability zones a region reports (`<region>a`, `b`, `c`): three, as most regions offer; which ones a real
account sees (and how its zone names map to zone ids) cannot be known offline."""
EKS_PLATFORM_VERSION = "eks.1"
"""The platform version a cluster reports: which one EKS gives depends on the Kubernetes version and the day."""
CA_VALIDITY = datetime.timedelta(days=3650)
"""An EKS cluster's CA is valid for ten years (kubeadm's default for a cluster CA too)."""
ROUTE_ORIGIN = "CreateRoute"
DOCUMENTATION_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
"""The access key id AWS's documentation signs its examples with: what a fabricated EKS token was "signed" with."""
POLICY_VERSION = "2012-10-17"
_TEN = ipaddress.IPv4Network("10.0.0.0/8")

_TAGGED = frozenset(
    {
        VPC,
        SUBNET,
        INTERNET_GATEWAY,
        EIP,
        NAT_GATEWAY,
        ROUTE_TABLE,
        SECURITY_GROUP,
        INGRESS_RULE,
        EGRESS_RULE,
        PEERING,
        PEERING_ACCEPTER,
        TRANSIT_GATEWAY,
        TGW_VPC_ATTACHMENT,
        TGW_ROUTE_TABLE,
        TGW_PEERING,
        TGW_PEERING_ACCEPTER,
        LOAD_BALANCER,
        TARGET_GROUP,
        LISTENER,
        ROLE,
        KMS_KEY,
        EKS_CLUSTER,
        NODE_GROUP,
        ADDON,
        ACCESS_ENTRY,
    }
)
"""Resources with `tags` and `tagsAll`."""
_GLOBAL = frozenset({ROLE, ROLE_POLICY_ATTACHMENT})
"""IAM is global: no `region`."""

ID_PREFIXES = {
    VPC: "vpc",
    SUBNET: "subnet",
    INTERNET_GATEWAY: "igw",
    EIP: "eipalloc",
    NAT_GATEWAY: "nat",
    ROUTE_TABLE: "rtb",
    ROUTE_TABLE_ASSOCIATION: "rtbassoc",
    SECURITY_GROUP: "sg",
    INGRESS_RULE: "sgr",
    EGRESS_RULE: "sgr",
    PEERING: "pcx",
    TRANSIT_GATEWAY: "tgw",
    TGW_VPC_ATTACHMENT: "tgw-attach",
    TGW_ROUTE_TABLE: "tgw-rtb",
    TGW_PEERING: "tgw-attach",
}
"""Resources whose id is `<prefix>-` and 17 hex digits."""

_NAME_LIMITS = {LOAD_BALANCER: 32, TARGET_GROUP: 32, ROLE: 64, SECURITY_GROUP: 255, EKS_CLUSTER: 100, NODE_GROUP: 63}
"""Resources Pulumi names when the program does not (`<name>-<7 hex>`), with the longest name AWS takes."""
_NAME_INPUT = {NODE_GROUP: "nodeGroupName"}

_LB_KINDS = {"application": "app", "network": "net", "gateway": "gwy"}

# Route 53 hosted zones of load balancers' DNS names, per region (AWS's "Elastic Load Balancing endpoints and quotas").
_NLB_ZONES = {
    "us-east-1": "Z26RNL4JYFTOTI",
    "us-east-2": "ZLMOA37VPKANP",
    "us-west-1": "Z24FKFUX50B4VW",
    "us-west-2": "Z18D5FSROUN65G",
    "ca-central-1": "Z2EPGBW3API2WT",
    "eu-central-1": "Z3F0SRJ5LGBH90",
    "eu-west-1": "Z2IFOLAFXWLO4F",
    "eu-west-2": "ZD4D7Y8KGAS4G",
    "eu-west-3": "Z1CMS0P5QUZ6D5",
    "eu-north-1": "Z1UDT6IFJ4EJM",
    "ap-northeast-1": "Z31USIVHYNEOWT",
    "ap-northeast-2": "ZIBE1TIR4HY56",
    "ap-south-1": "ZVDDRBQ08TROA",
    "ap-southeast-1": "ZKVM4W9LS7TM",
    "ap-southeast-2": "ZCT6FZBF4DROD",
    "sa-east-1": "ZTK26PT1VY4CU",
}
_ALB_ZONES = {
    "us-east-1": "Z35SXDOTRQ7X7K",
    "us-east-2": "Z3AADJGX6KTTL2",
    "us-west-1": "Z368ELLRRE2KJ0",
    "us-west-2": "Z1H1FL5HABSF5",
    "ca-central-1": "ZQSVJUPU6J1EY",
    "eu-central-1": "Z215JYRZR1TBD5",
    "eu-west-1": "Z32O12XQLNTSW2",
    "eu-west-2": "ZHURV8PSTC4K8",
    "eu-west-3": "Z3Q77PNBQS71R4",
    "eu-north-1": "Z23TAZ6LKFMNIO",
    "ap-northeast-1": "Z14GRHDCWA56QT",
    "ap-northeast-2": "ZWKZPGTI48KDX",
    "ap-south-1": "ZP97RAFLXTNZK",
    "ap-southeast-1": "Z1LMS91P8CMLE5",
    "ap-southeast-2": "Z1GM3OXH4ZPM65",
    "sa-east-1": "Z2P70J7HTTTPLU",
}
_REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "ca-central-1": "Canada (Central)",
    "eu-central-1": "Europe (Frankfurt)",
    "eu-west-1": "Europe (Ireland)",
    "eu-west-2": "Europe (London)",
    "eu-west-3": "Europe (Paris)",
    "eu-north-1": "Europe (Stockholm)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "sa-east-1": "South America (Sao Paulo)",
}
_DIRECTIONS = {"east": "e", "west": "w", "north": "n", "south": "s", "central": "c", "northeast": "ne"}
_DIRECTIONS |= {"southeast": "se", "northwest": "nw", "southwest": "sw", "gov": "g"}


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def _hex(length: int, *parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def aws_id(prefix: str, *parts: str) -> str:
    """An EC2 id of AWS's long form, `<prefix>-0` and 16 hex digits (17 in all), stable for the same parts.

    A resource's id is `aws_id(prefix, type_token, resource_name)`.
    """
    return f"{prefix}-0{_hex(16, prefix, *parts)}"


def arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


def region_code(region: str) -> str:
    """A region's short form in zone ids: `us-east-1` -> `use1`, `ap-southeast-2` -> `apse2`."""
    country, *rest = region.split("-")
    return country + "".join(_DIRECTIONS.get(part, part[:1]) if not part.isdigit() else part for part in rest)


def zone_names(region: str) -> list[str]:
    return [f"{region}{chr(ord('a') + i)}" for i in range(ZONES_PER_REGION)]


def zone_ids(region: str) -> list[str]:
    return [f"{region_code(region)}-az{i + 1}" for i in range(ZONES_PER_REGION)]


def _zone_id(zone: str, region: str) -> str:
    names = zone_names(region)
    return zone_ids(region)[names.index(zone)] if zone in names else ""


def _secret(value: Any) -> dict[str, Any]:
    """The wire form of a secret value: outputs the provider declares secret come back secret."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def _defaults(inputs: State, **values: Any) -> State:
    """The values AWS fills in for the properties the program left unset (and only those)."""
    return {k: v for k, v in values.items() if inputs.get(k) is None}


def _text(value: Any) -> str:
    """A known string input, else empty (an unknown or absent one)."""
    return value if isinstance(value, str) else ""


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unique_suffix(moment: datetime.datetime, *parts: str) -> str:
    """The suffix of Terraform's `id.PrefixedUniqueId`: a timestamp to 1/10000 s and an 8-hex-digit counter."""
    counter = int.from_bytes(_digest("counter", *parts)[:2], "big") + 1
    return f"{moment.astimezone(datetime.UTC):%Y%m%d%H%M%S}0000{counter:08x}"


@dataclass
class _Subnet:
    vpc_id: str
    cidr: str
    zone: str
    taken: set[str] = field(default_factory=set)


@dataclass
class _Peering:
    requester_vpc: str
    accepter_vpc: str
    requester_region: str
    accepter_region: str


@dataclass
class _TgwPeering:
    transit_gateway: str
    peer_transit_gateway: str
    region: str
    peer_region: str


class Aws:
    """One AWS account for one plan: what it made so far, so that later answers agree with earlier ones."""

    def __init__(self, fixtures: Fixtures, public: _Range | None = None) -> None:
        self.fixtures = fixtures
        self._public = public if public is not None else _Range(FLOATING_IP_RANGE)
        self._provider_regions: dict[str, str] = {}
        self._provider_tags: dict[str, dict[str, str]] = {}
        """Per provider name, its region and default tags."""
        self._vpcs: dict[str, str] = {}
        """VPC id -> its IPv4 CIDR."""
        self._subnets: dict[str, _Subnet] = {}
        self._eips: dict[str, str] = {}
        """Allocation id -> public IP."""
        self._peerings: dict[str, _Peering] = {}
        self._tgw_default_tables: dict[str, str] = {}
        self._tgw_attachments: dict[str, tuple[str, str]] = {}
        """Attachment id -> (resource type, resource id), as `DescribeTransitGatewayAttachments` gives them."""
        self._tgw_peerings: dict[str, _TgwPeering] = {}
        self._cluster_versions: dict[str, str] = {}

    # --- wiring -------------------------------------------------------------------------------------------

    def fabricators(self) -> dict[str, Fabricator]:
        common: Fabricator = self._common  # the state is the inputs, with the region and tags
        return {
            VPC: self._vpc,
            SUBNET: self._subnet,
            INTERNET_GATEWAY: lambda a, i: self._common(a, i) | self._owned(a, i, "internet-gateway"),
            EIP: self._eip,
            NAT_GATEWAY: self._nat_gateway,
            ROUTE_TABLE: lambda a, i: (
                self._common(a, i)
                | self._owned(a, i, "route-table")
                | {"propagatingVgws": []}
                | _defaults(i, routes=[])
            ),
            ROUTE: lambda a, i: (
                self._common(a, i)
                | {"state": "active", "origin": ROUTE_ORIGIN, "instanceId": "", "instanceOwnerId": ""}
                | _defaults(i, networkInterfaceId="")
            ),
            ROUTE_TABLE_ASSOCIATION: common,
            SECURITY_GROUP: self._security_group,
            INGRESS_RULE: self._security_group_rule,
            EGRESS_RULE: self._security_group_rule,
            PEERING: self._peering,
            PEERING_ACCEPTER: self._peering_accepter,
            TRANSIT_GATEWAY: self._transit_gateway,
            TGW_VPC_ATTACHMENT: self._tgw_vpc_attachment,
            TGW_ROUTE_TABLE: lambda a, i: (
                self._common(a, i)
                | {"arn": self._ec2_arn(a, i, "transit-gateway-route-table")}
                | {"defaultAssociationRouteTable": False, "defaultPropagationRouteTable": False}
            ),
            TGW_ROUTE: lambda a, i: self._common(a, i) | _defaults(i, blackhole=False),
            TGW_ASSOCIATION: self._tgw_attachment_link,
            TGW_PROPAGATION: self._tgw_attachment_link,
            TGW_PEERING: self._tgw_peering,
            TGW_PEERING_ACCEPTER: self._tgw_peering_accepter,
            LOAD_BALANCER: self._load_balancer,
            TARGET_GROUP: self._target_group,
            LISTENER: self._listener,
            ASG_ATTACHMENT: common,
            ROLE: self._role,
            ROLE_POLICY_ATTACHMENT: common,
            KMS_KEY: self._kms_key,
            EKS_CLUSTER: self._eks_cluster,
            NODE_GROUP: self._node_group,
            ADDON: self._addon,
            ACCESS_ENTRY: self._access_entry,
            ACCESS_POLICY_ASSOCIATION: lambda a, i: (
                self._common(a, i) | {"associatedAt": self._now(), "modifiedAt": self._now()}
            ),
        }

    def functions(self) -> dict[str, ProviderFunction]:
        return {
            GET_CALLER_IDENTITY: lambda args, provider: {**args, **caller_identity()},
            GET_PARTITION: lambda args, provider: {
                **args,
                "id": "aws",
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
            },
            GET_REGION: self.get_region,
            GET_AVAILABILITY_ZONES: self.get_availability_zones,
            GET_CLUSTER_AUTH: self.get_cluster_auth,
            GET_POLICY_DOCUMENT: lambda args, provider: policy_document(args),
        }

    def register_provider(self, args: MockResourceArgs) -> None:
        """Remember an AWS provider's region and default tags, for the resources registered through it."""
        inputs = reveal(decode(args.inputs), secrets=True, unknown=None)
        region = inputs.get("region")
        if isinstance(region, str) and region:
            self._provider_regions[args.name] = region
        tags = inputs.get("defaultTags")
        if isinstance(tags, str):  # a provider's non-string inputs reach it as JSON
            try:
                tags = json.loads(tags)
            except ValueError:
                tags = None
        if isinstance(tags, dict) and isinstance(tags.get("tags"), dict):
            self._provider_tags[args.name] = {str(k): str(v) for k, v in tags["tags"].items()}

    def resource_id(self, args: MockResourceArgs) -> str | None:
        """The id the provider reports for a new resource of `args`, or None for a type not fabricated here."""
        prefix = ID_PREFIXES.get(args.typ)
        if prefix is not None:
            return aws_id(prefix, args.typ, args.name)
        compose = self._composite_ids().get(args.typ)
        if compose is None:
            return None
        return compose(args, reveal(decode(args.inputs), secrets=True, unknown=None))

    def _composite_ids(self) -> dict[str, Callable[[MockResourceArgs, State], str]]:
        """Ids the provider builds from the resource's inputs, or from what AWS names it by."""
        return {
            ROUTE: _route_id,
            PEERING_ACCEPTER: lambda a, i: _text(i.get("vpcPeeringConnectionId")) or aws_id("pcx", a.typ, a.name),
            TGW_ROUTE: lambda a, i: f"{_text(i.get('transitGatewayRouteTableId'))}_{_destination(i)}",
            TGW_ASSOCIATION: _tgw_link_id,
            TGW_PROPAGATION: _tgw_link_id,
            TGW_PEERING_ACCEPTER: lambda a, i: (
                _text(i.get("transitGatewayAttachmentId")) or aws_id("tgw-attach", a.typ, a.name)
            ),
            LOAD_BALANCER: self._load_balancer_arn,
            TARGET_GROUP: self._target_group_arn,
            LISTENER: self._listener_arn,
            ASG_ATTACHMENT: lambda a, i: f"{_text(i.get('autoscalingGroupName'))}-{self._unique(a)}",
            ROLE: _name,
            ROLE_POLICY_ATTACHMENT: lambda a, i: f"{_text(i.get('role'))}-{self._unique(a)}",
            KMS_KEY: lambda a, i: fabricated_uuid(a.typ, a.name),
            EKS_CLUSTER: _name,
            NODE_GROUP: lambda a, i: f"{_text(i.get('clusterName'))}:{_name(a, i)}",
            ADDON: lambda a, i: f"{_text(i.get('clusterName'))}:{_text(i.get('addonName'))}",
            ACCESS_ENTRY: lambda a, i: f"{_text(i.get('clusterName'))}:{_text(i.get('principalArn'))}",
            ACCESS_POLICY_ASSOCIATION: lambda a, i: "#".join(
                _text(i.get(k)) for k in ("clusterName", "principalArn", "policyArn")
            ),
        }

    # --- common -------------------------------------------------------------------------------------------

    def _id(self, args: MockResourceArgs) -> str:
        """The resource's id: the one read (`Resource.get`), else the one `resource_id` gives it."""
        if args.resource_id and args.resource_id != rpc.UNKNOWN:
            return str(args.resource_id)
        return self.resource_id(args) or ""

    def _provider_name(self, reference: str) -> str:
        urn = provider_urn(reference)
        kind, _, name = urn.rpartition("::")
        return name if kind.endswith(AWS_PROVIDER) else ""

    def region_of(self, inputs: State, provider: str) -> str:
        """The region a resource (or function call) is in: its own, its provider's, the stack's, else the default."""
        own = inputs.get("region")
        if isinstance(own, str) and own:
            return own
        named = self._provider_regions.get(self._provider_name(provider))
        return named or pulumi.Config("aws").get("region") or DEFAULT_REGION

    def _region(self, args: MockResourceArgs, inputs: State) -> str:
        return self.region_of(inputs, args.provider or "")

    def _common(self, args: MockResourceArgs, inputs: State) -> State:
        state: State = {}
        if args.typ not in _GLOBAL:
            state["region"] = self._region(args, inputs)
        if args.typ in _TAGGED:
            tags = dict(self._provider_tags.get(self._provider_name(args.provider or ""), {}))
            state["tagsAll"] = tags | dict(inputs.get("tags") or {})
        return state

    def _ec2_arn(self, args: MockResourceArgs, inputs: State, kind: str) -> str:
        return arn("ec2", self._region(args, inputs), f"{kind}/{self._id(args)}")

    def _owned(self, args: MockResourceArgs, inputs: State, kind: str) -> State:
        """What every EC2 resource AWS owns reports: its ARN and the account that owns it."""
        return {"arn": self._ec2_arn(args, inputs, kind), "ownerId": ACCOUNT_ID}

    def _now(self) -> str:
        return _timestamp(self.fixtures.start)

    def _unique(self, args: MockResourceArgs) -> str:
        return _unique_suffix(self.fixtures.start, args.typ, args.name)

    # --- VPC ----------------------------------------------------------------------------------------------

    def _vpc(self, args: MockResourceArgs, inputs: State) -> State:
        vpc_id = self._id(args)
        cidr = _text(inputs.get("cidrBlock"))
        self._vpcs[vpc_id] = cidr
        main_table = aws_id("rtb", args.typ, args.name, "main")
        return (
            self._common(args, inputs)
            | self._owned(args, inputs, "vpc")
            | {
                "defaultSecurityGroupId": aws_id("sg", args.typ, args.name, "default"),
                "defaultNetworkAclId": aws_id("acl", args.typ, args.name, "default"),
                "defaultRouteTableId": main_table,
                "mainRouteTableId": main_table,
                "dhcpOptionsId": aws_id("dopt", args.typ, args.name),
                "ipv6AssociationId": "",
            }
            | _defaults(
                inputs,
                enableDnsSupport=True,
                enableDnsHostnames=False,
                enableNetworkAddressUsageMetrics=False,
                instanceTenancy="default",
                ipv6CidrBlock="",
                ipv6CidrBlockNetworkBorderGroup="",
            )
        )

    def _subnet(self, args: MockResourceArgs, inputs: State) -> State:
        region = self._region(args, inputs)
        zone = _text(inputs.get("availabilityZone"))
        if not zone:  # AWS picks one
            zone = zone_names(region)[_digest("zone", args.typ, args.name)[0] % ZONES_PER_REGION]
        self._subnets[self._id(args)] = _Subnet(_text(inputs.get("vpcId")), _text(inputs.get("cidrBlock")), zone)
        return (
            self._common(args, inputs)
            | self._owned(args, inputs, "subnet")
            | {
                "availabilityZone": zone,
                "availabilityZoneId": inputs.get("availabilityZoneId") or _zone_id(zone, region),
            }
            | {"ipv6CidrBlockAssociationId": ""}
            | _defaults(
                inputs,
                ipv6CidrBlock="",
                mapPublicIpOnLaunch=False,
                assignIpv6AddressOnCreation=False,
                privateDnsHostnameTypeOnLaunch="ip-name",
            )
        )

    def _eip(self, args: MockResourceArgs, inputs: State) -> State:
        allocation = self._id(args)
        requested = _text(inputs.get("address"))
        if requested:
            self._public.reserve(requested)
        address = requested or self._public.take(args.typ, args.name)
        self._eips[allocation] = address
        region = self._region(args, inputs)
        host = "ec2-" + address.replace(".", "-")
        dns = f"{host}.compute-1.amazonaws.com" if region == "us-east-1" else f"{host}.{region}.compute.amazonaws.com"
        return (
            self._common(args, inputs)
            | self._owned(args, inputs, "elastic-ip")
            | {"allocationId": allocation, "publicIp": address, "publicDns": dns, "ptrRecord": ""}
            | {"associationId": "", "carrierIp": "", "customerOwnedIp": "", "privateDns": "", "privateIp": ""}
            | _defaults(inputs, domain="vpc", networkBorderGroup=region, publicIpv4Pool="amazon")
            | _defaults(inputs, instance="", networkInterface="", ipamPoolId="")
        )

    def _nat_gateway(self, args: MockResourceArgs, inputs: State) -> State:
        subnet = self._subnets.get(_text(inputs.get("subnetId")))
        private = _text(inputs.get("privateIp")) or (self._pick_address(subnet, args) if subnet else "")
        public = inputs.get("connectivityType", "public") == "public"
        return (
            self._common(args, inputs)
            | {
                "privateIp": private,
                "publicIp": self._eips.get(_text(inputs.get("allocationId")), "") if public else "",
                "networkInterfaceId": aws_id("eni", args.typ, args.name),
                "associationId": aws_id("eipassoc", args.typ, args.name) if public else "",
                "vpcId": subnet.vpc_id if subnet else "",
                "regionalNatGatewayAddresses": [],
                "autoProvisionZones": "",
                "autoScalingIps": "",
                "regionalNatGatewayAutoMode": "",
                "routeTableId": "",
            }
            | _defaults(
                inputs,
                connectivityType="public",
                availabilityMode="zonal",
                secondaryAllocationIds=[],
                secondaryPrivateIpAddresses=[],
                secondaryPrivateIpAddressCount=0,
            )
        )

    @staticmethod
    def _pick_address(subnet: _Subnet, args: MockResourceArgs) -> str:
        """An address in the subnet, stable per resource, never one AWS reserves (the first four and the last)."""
        try:
            network = ipaddress.ip_network(subnet.cidr, strict=False)
        except ValueError:
            return ""
        size = network.num_addresses - 5
        if network.version != 4 or size < 1:
            return ""
        start = int.from_bytes(_digest("address", args.typ, args.name)[:4], "big") % size
        for step in range(size):
            candidate = str(network.network_address + 4 + (start + step) % size)
            if candidate not in subnet.taken:
                subnet.taken.add(candidate)
                return candidate
        return ""

    def _security_group(self, args: MockResourceArgs, inputs: State) -> State:
        return (
            self._common(args, inputs)
            | self._owned(args, inputs, "security-group")
            | {"name": _name(args, inputs)}
            | _defaults(
                inputs,
                description="Managed by Pulumi",
                ingress=[],
                egress=[],
                revokeRulesOnDelete=False,
                namePrefix="",
                vpcId="",
            )
        )

    def _security_group_rule(self, args: MockResourceArgs, inputs: State) -> State:
        rule = self._id(args)
        return (
            self._common(args, inputs)
            | {"securityGroupRuleId": rule, "arn": self._ec2_arn(args, inputs, "security-group-rule")}
            | _defaults(inputs, description="")
        )

    def _peering(self, args: MockResourceArgs, inputs: State) -> State:
        region = self._region(args, inputs)
        peer_region = _text(inputs.get("peerRegion")) or region
        self._peerings[self._id(args)] = _Peering(
            _text(inputs.get("vpcId")), _text(inputs.get("peerVpcId")), region, peer_region
        )
        options = {"allowRemoteVpcDnsResolution": False}
        return (
            self._common(args, inputs)
            | {"acceptStatus": "active" if inputs.get("autoAccept") else "pending-acceptance"}
            | _defaults(inputs, peerOwnerId=ACCOUNT_ID, peerRegion=peer_region, accepter=options, requester=options)
        )

    def _peering_accepter(self, args: MockResourceArgs, inputs: State) -> State:
        peering = self._peerings.get(_text(inputs.get("vpcPeeringConnectionId")))
        region = self._region(args, inputs)
        options = {"allowRemoteVpcDnsResolution": False}
        return (
            self._common(args, inputs)
            | {
                "acceptStatus": "active" if inputs.get("autoAccept") else "pending-acceptance",
                "vpcId": peering.accepter_vpc if peering else "",
                "peerVpcId": peering.requester_vpc if peering else "",
                "peerOwnerId": ACCOUNT_ID,
                "peerRegion": region,  # the provider's docs: the region of the accepter VPC
            }
            | _defaults(inputs, accepter=options, requester=options)
        )

    # --- Transit Gateway ----------------------------------------------------------------------------------

    def _transit_gateway(self, args: MockResourceArgs, inputs: State) -> State:
        default_table = aws_id("tgw-rtb", args.typ, args.name, "default")
        self._tgw_default_tables[self._id(args)] = default_table
        associate = inputs.get("defaultRouteTableAssociation", "enable") == "enable"
        propagate = inputs.get("defaultRouteTablePropagation", "enable") == "enable"
        return (
            self._common(args, inputs)
            | self._owned(args, inputs, "transit-gateway")
            | {
                "associationDefaultRouteTableId": default_table if associate else "",
                "propagationDefaultRouteTableId": default_table if propagate else "",
            }
            | _defaults(
                inputs,
                amazonSideAsn=64512,
                autoAcceptSharedAttachments="disable",
                defaultRouteTableAssociation="enable",
                defaultRouteTablePropagation="enable",
                description="",
                dnsSupport="enable",
                encryptionSupport="disable",
                multicastSupport="disable",
                securityGroupReferencingSupport="disable",
                vpnEcmpSupport="enable",
                transitGatewayCidrBlocks=[],
            )
        )

    def _tgw_vpc_attachment(self, args: MockResourceArgs, inputs: State) -> State:
        self._tgw_attachments[self._id(args)] = ("vpc", _text(inputs.get("vpcId")))
        return (
            self._common(args, inputs)
            | {"arn": self._ec2_arn(args, inputs, "transit-gateway-attachment"), "vpcOwnerId": ACCOUNT_ID}
            | _defaults(
                inputs,
                applianceModeSupport="disable",
                dnsSupport="enable",
                ipv6Support="disable",
                securityGroupReferencingSupport="enable",
                transitGatewayDefaultRouteTableAssociation=True,
                transitGatewayDefaultRouteTablePropagation=True,
            )
        )

    def _tgw_attachment_link(self, args: MockResourceArgs, inputs: State) -> State:
        kind, resource = self._tgw_attachments.get(_text(inputs.get("transitGatewayAttachmentId")), ("", ""))
        return self._common(args, inputs) | {"resourceType": kind, "resourceId": resource}

    def _tgw_peering(self, args: MockResourceArgs, inputs: State) -> State:
        region = self._region(args, inputs)
        peering = _TgwPeering(
            _text(inputs.get("transitGatewayId")),
            _text(inputs.get("peerTransitGatewayId")),
            region,
            _text(inputs.get("peerRegion")) or region,
        )
        self._tgw_peerings[self._id(args)] = peering
        self._tgw_attachments[self._id(args)] = ("peering", peering.peer_transit_gateway)
        return (
            self._common(args, inputs)
            | {"arn": self._ec2_arn(args, inputs, "transit-gateway-attachment"), "state": "pendingAcceptance"}
            | _defaults(inputs, peerAccountId=ACCOUNT_ID, options={"dynamicRouting": "disable"})
        )

    def _tgw_peering_accepter(self, args: MockResourceArgs, inputs: State) -> State:
        peering = self._tgw_peerings.get(_text(inputs.get("transitGatewayAttachmentId")))
        if peering is not None:  # the accepter's side reports the attachment from its own transit gateway
            self._tgw_attachments[self._id(args)] = ("peering", peering.transit_gateway)
        return self._common(args, inputs) | {
            "transitGatewayId": peering.peer_transit_gateway if peering else "",
            "peerTransitGatewayId": peering.transit_gateway if peering else "",
            "peerRegion": peering.region if peering else "",
            "peerAccountId": ACCOUNT_ID,
        }

    # --- load balancing -----------------------------------------------------------------------------------

    def _load_balancer_arn(self, args: MockResourceArgs, inputs: State) -> str:
        kind = _LB_KINDS.get(_text(inputs.get("loadBalancerType")) or "application", "app")
        suffix = f"{kind}/{_name(args, inputs)}/{_hex(16, args.typ, args.name)}"
        return arn("elasticloadbalancing", self._region(args, inputs), f"loadbalancer/{suffix}")

    def _target_group_arn(self, args: MockResourceArgs, inputs: State) -> str:
        suffix = f"targetgroup/{_name(args, inputs)}/{_hex(16, args.typ, args.name)}"
        return arn("elasticloadbalancing", self._region(args, inputs), suffix)

    def _listener_arn(self, args: MockResourceArgs, inputs: State) -> str:
        balancer = _text(inputs.get("loadBalancerArn"))
        if ":loadbalancer/" in balancer:
            return f"{balancer.replace(':loadbalancer/', ':listener/', 1)}/{_hex(16, args.typ, args.name)}"
        return arn(
            "elasticloadbalancing",
            self._region(args, inputs),
            f"listener/net/unknown/{_hex(16, args.typ, args.name, 'lb')}/{_hex(16, args.typ, args.name)}",
        )

    def _load_balancer(self, args: MockResourceArgs, inputs: State) -> State:
        region = self._region(args, inputs)
        kind = _text(inputs.get("loadBalancerType")) or "application"
        name = _name(args, inputs)
        resource_arn = self._id(args)
        mappings = [m for m in inputs.get("subnetMappings") or [] if isinstance(m, dict)]
        subnets = [s for s in inputs.get("subnets") or [m.get("subnetId") for m in mappings] if isinstance(s, str)]
        first = self._subnets.get(subnets[0]) if subnets else None
        for mapping in mappings:  # addresses the load balancer holds are no NAT gateway's to take
            subnet = self._subnets.get(_text(mapping.get("subnetId")))
            if subnet is not None and _text(mapping.get("privateIpv4Address")):
                subnet.taken.add(mapping["privateIpv4Address"])
        blank = {"allocationId": "", "ipv6Address": "", "outpostId": "", "privateIpv4Address": ""}
        return (
            self._common(args, inputs)
            | {
                "arn": resource_arn,
                "arnSuffix": resource_arn.split(":loadbalancer/", 1)[-1],
                "name": name,
                "dnsName": load_balancer_dns_name(name, kind, bool(inputs.get("internal")), region, args.name),
                "zoneId": (_NLB_ZONES if kind != "application" else _ALB_ZONES).get(region)
                or "Z" + base64.b32encode(_digest("zone", kind, region)).decode()[:13],
                "vpcId": first.vpc_id if first else "",
                "subnets": subnets,
                "subnetMappings": [blank | m for m in mappings] or [blank | {"subnetId": s} for s in subnets],
            }
            | _defaults(
                inputs,
                internal=False,
                loadBalancerType="application",
                ipAddressType="ipv4",
                securityGroups=[],
                enableCrossZoneLoadBalancing=kind == "application",
                enableDeletionProtection=False,
                namePrefix="",
            )
        )

    def _target_group(self, args: MockResourceArgs, inputs: State) -> State:
        resource_arn = self._id(args)
        protocol = _text(inputs.get("protocol"))
        http = protocol in {"HTTP", "HTTPS"}
        health = {
            "enabled": True,
            "healthyThreshold": 5 if http else 3,
            "interval": 30,
            "matcher": "200" if http else "",
            "path": "/" if http else "",
            "port": "traffic-port",
            "protocol": protocol if protocol in {"HTTP", "HTTPS", "TCP"} else "TCP",
            "timeout": 5 if http else 10,
            "unhealthyThreshold": 2 if http else 3,
        }
        return (
            self._common(args, inputs)
            | {
                "arn": resource_arn,
                "arnSuffix": resource_arn.split(":", 5)[-1],
                "name": _name(args, inputs),
                "loadBalancerArns": [],
                "healthCheck": health | dict(inputs.get("healthCheck") or {}),
            }
            | _defaults(
                inputs,
                targetType="instance",
                ipAddressType="ipv4",
                deregistrationDelay=300,
                connectionTermination=False,
                preserveClientIp="true" if inputs.get("targetType", "instance") == "instance" else "false",
                proxyProtocolV2=False,
                slowStart=0,
                protocolVersion="HTTP1" if http else "",
                loadBalancingAlgorithmType="round_robin" if http else "",
                loadBalancingAnomalyMitigation="off",
                loadBalancingCrossZoneEnabled="use_load_balancer_configuration",
                stickiness={"enabled": False, "type": "lb_cookie" if http else "source_ip", "cookieDuration": 86400},
                targetFailovers=[],
                targetHealthStates=[],
                namePrefix="",
            )
        )

    def _listener(self, args: MockResourceArgs, inputs: State) -> State:
        tcp = _text(inputs.get("protocol")) in {"TCP", "UDP", "TCP_UDP", "TLS"}
        return (
            self._common(args, inputs)
            | {"arn": self._id(args)}
            | _defaults(inputs, protocol="HTTP", sslPolicy="", tcpIdleTimeoutSeconds=350 if tcp else 0)
        )

    # --- IAM and KMS --------------------------------------------------------------------------------------

    def _role(self, args: MockResourceArgs, inputs: State) -> State:
        name = _name(args, inputs)
        path = _text(inputs.get("path")) or "/"
        unique = base64.b32encode(_digest("role", args.typ, args.name)).decode()[:17]
        return (
            self._common(args, inputs)
            | {
                "name": name,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:role{path}{name}",
                "uniqueId": f"AROA{unique}",
                "createDate": self._now(),
            }
            | _defaults(
                inputs,
                path="/",
                description="",
                maxSessionDuration=3600,
                forceDetachPolicies=False,
                inlinePolicies=[],
                managedPolicyArns=[],
                namePrefix="",
                permissionsBoundary="",
            )
        )

    def _kms_key(self, args: MockResourceArgs, inputs: State) -> State:
        key_id = self._id(args)
        rotating = bool(inputs.get("enableKeyRotation"))
        return (
            self._common(args, inputs)
            | {"arn": arn("kms", self._region(args, inputs), f"key/{key_id}"), "keyId": key_id}
            | _defaults(
                inputs,
                description="",
                keyUsage="ENCRYPT_DECRYPT",
                customerMasterKeySpec="SYMMETRIC_DEFAULT",
                isEnabled=True,
                enableKeyRotation=False,
                multiRegion=False,
                bypassPolicyLockoutSafetyCheck=False,
                rotationPeriodInDays=365 if rotating else 0,
                policy=default_key_policy(),
            )
        )

    # --- EKS ----------------------------------------------------------------------------------------------

    def _eks_cluster(self, args: MockResourceArgs, inputs: State) -> State:
        region = self._region(args, inputs)
        name = _name(args, inputs)
        endpoint_id = _hex(32, args.typ, args.name).upper()
        if isinstance(inputs.get("version"), str):
            self._cluster_versions[name] = inputs["version"]
        return (
            self._common(args, inputs)
            | {
                "name": name,
                "arn": arn("eks", region, f"cluster/{name}"),
                "endpoint": f"https://{endpoint_id}.gr7.{region}.eks.amazonaws.com",
                "certificateAuthority": {"data": self.cluster_ca(args.name)},
                "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{endpoint_id}"}]}],
                "vpcConfig": self._cluster_vpc_config(args, inputs),
                "kubernetesNetworkConfig": self._cluster_network_config(inputs),
                "accessConfig": {"authenticationMode": "CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": True}
                | dict(inputs.get("accessConfig") or {}),
                "status": "ACTIVE",
                "platformVersion": EKS_PLATFORM_VERSION,
                "createdAt": self._now(),
                "clusterId": "",
            }
            | _defaults(
                inputs,
                bootstrapSelfManagedAddons=True,
                deletionProtection=False,
                upgradePolicy={"supportType": "EXTENDED"},
                enabledClusterLogTypes=[],
            )
        )

    def _cluster_vpc_config(self, args: MockResourceArgs, inputs: State) -> State:
        given = dict(inputs.get("vpcConfig") or {})
        subnets = [s for s in given.get("subnetIds") or [] if isinstance(s, str)]
        first = self._subnets.get(subnets[0]) if subnets else None
        return {
            "clusterSecurityGroupId": aws_id("sg", args.typ, args.name, "cluster"),
            "vpcId": first.vpc_id if first else "",
            "endpointPrivateAccess": False,
            "endpointPublicAccess": True,
            "publicAccessCidrs": ["0.0.0.0/0"],
            "securityGroupIds": [],
        } | given

    def _cluster_network_config(self, inputs: State) -> State:
        """EKS's service range unless the program gives one. AWS documents only that it is 10.100.0.0/16 or
        172.20.0.0/16; EKS is seen to take 172.20.0.0/16 when the VPC is in 10.0.0.0/8, so as not to overlap it."""
        given = dict(inputs.get("kubernetesNetworkConfig") or {})
        subnets = [s for s in (inputs.get("vpcConfig") or {}).get("subnetIds") or [] if isinstance(s, str)]
        first = self._subnets.get(subnets[0]) if subnets else None
        cidr = self._vpcs.get(first.vpc_id, "") if first else ""
        try:
            network = ipaddress.ip_network(cidr, strict=False) if cidr else None
        except ValueError:
            network = None
        in_ten = isinstance(network, ipaddress.IPv4Network) and network.subnet_of(_TEN)
        defaults = {
            "ipFamily": "ipv4",
            "serviceIpv4Cidr": "172.20.0.0/16" if in_ten else "10.100.0.0/16",
            "serviceIpv6Cidr": "",
            "elasticLoadBalancing": {"enabled": False},
        }
        return defaults | {k: v for k, v in given.items() if v is not None}

    def cluster_ca(self, name: str) -> str:
        """An EKS cluster's `certificateAuthority.data`: a self-signed CA's PEM, base64-encoded as EKS gives it."""
        if self.fixtures.random:
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            seed = _digest("eks-ca", self.fixtures.seed, name)
            key = ec.derive_private_key(int.from_bytes(seed, "big") % 2**255 + 1, ec.SECP256R1())  # below the order
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, FIXTURE_ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes"),
            ]
        )
        start = self.fixtures.start
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(int.from_bytes(_digest("eks-ca-serial", self.fixtures.seed, name)[:16], "big") >> 1)
            .not_valid_before(start)
            .not_valid_after(start + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("kubernetes")]), critical=False)
            .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
        )
        return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()

    def _node_group(self, args: MockResourceArgs, inputs: State) -> State:
        region = self._region(args, inputs)
        cluster = _text(inputs.get("clusterName"))
        name = _name(args, inputs)
        group = fabricated_uuid(args.typ, args.name)
        template = inputs.get("launchTemplate")
        known = self._cluster_versions.get(cluster)
        version = {"version": known} if known and not inputs.get("version") else {}  # the cluster's, as EKS gives
        return (
            self._common(args, inputs)
            | {
                "nodeGroupName": name,
                "arn": arn("eks", region, f"nodegroup/{cluster}/{name}/{group}"),
                "status": "ACTIVE",
                "resources": [
                    {"autoscalingGroups": [{"name": f"eks-{name}-{group}"}], "remoteAccessSecurityGroupId": ""}
                ],
            }
            | _defaults(
                inputs,
                amiType="CUSTOM" if template else "AL2023_x86_64_STANDARD",
                capacityType="ON_DEMAND",
                diskSize=0 if template else 20,
                instanceTypes=[] if template else ["t3.medium"],
                updateConfig={"maxUnavailable": 1, "maxUnavailablePercentage": 0},
                nodeRepairConfig={"enabled": False},
                nodeGroupNamePrefix="",
            )
            | version
        )

    def _addon(self, args: MockResourceArgs, inputs: State) -> State:
        cluster, addon = _text(inputs.get("clusterName")), _text(inputs.get("addonName"))
        resource = f"addon/{cluster}/{addon}/{fabricated_uuid(args.typ, args.name)}"
        return (
            self._common(args, inputs)
            | {"arn": arn("eks", self._region(args, inputs), resource)}
            | {"createdAt": self._now(), "modifiedAt": self._now()}
            | _defaults(inputs, configurationValues="")
        )

    def _access_entry(self, args: MockResourceArgs, inputs: State) -> State:
        cluster, principal = _text(inputs.get("clusterName")), _text(inputs.get("principalArn"))
        kind = _text(inputs.get("type")) or "STANDARD"
        resource = principal.rsplit(":", 1)[-1]  # role/path/name, user/name
        principal_type, _, rest = resource.partition("/")
        principal_name = rest.rsplit("/", 1)[-1]
        entry = f"access-entry/{cluster}/{principal_type}/{ACCOUNT_ID}/{principal_name}/"
        entry += fabricated_uuid(args.typ, args.name)
        if kind.startswith("EC2"):
            user = "system:node:{{EC2PrivateDNSName}}"
        elif kind.startswith("FARGATE"):
            user = "system:node:{{SessionName}}"
        elif principal_type == "role":
            user = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{principal_name}/{{{{SessionName}}}}"
        else:
            user = principal
        return (
            self._common(args, inputs)
            | {"accessEntryArn": arn("eks", self._region(args, inputs), entry)}
            | {"createdAt": self._now(), "modifiedAt": self._now()}
            | _defaults(inputs, type="STANDARD", userName=user, kubernetesGroups=[])
        )

    # --- provider functions -------------------------------------------------------------------------------

    def get_region(self, args: State, provider: str) -> State:
        region = _text(args.get("region")) or _text(args.get("name")) or self.region_of({}, provider)
        return {
            **args,
            "id": region,
            "name": region,
            "region": region,
            "endpoint": f"ec2.{region}.amazonaws.com",
            "description": _REGION_NAMES.get(region, region),
        }

    def get_availability_zones(self, args: State, provider: str) -> State:
        region = self.region_of(args, provider)
        excluded_names = set(args.get("excludeNames") or [])
        excluded_ids = set(args.get("excludeZoneIds") or [])
        zones = [
            (name, zone)
            for name, zone in zip(zone_names(region), zone_ids(region), strict=True)
            if name not in excluded_names and zone not in excluded_ids
        ]
        return {
            **args,
            "id": region,
            "region": region,
            "names": [name for name, _ in zones],
            "zoneIds": [zone for _, zone in zones],
            "groupNames": [region],
        }

    def get_cluster_auth(self, args: State, provider: str) -> State:
        """A token of the form aws-iam-authenticator and `aws eks get-token` give: `k8s-aws-v1.` and a presigned
        STS GetCallerIdentity URL, base64url without padding. Stable per cluster, so plans stay byte-identical."""
        name = _text(args.get("name"))
        region = self.region_of(args, provider)
        moment = self.fixtures.start.astimezone(datetime.UTC)
        credential = f"{DOCUMENTATION_ACCESS_KEY}%2F{moment:%Y%m%d}%2F{region}%2Fsts%2Faws4_request"
        url = (
            f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
            f"&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date={moment:%Y%m%dT%H%M%SZ}"
            f"&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"
            f"&X-Amz-Signature={_hex(64, 'eks-token', self.fixtures.seed, region, name)}"
        )
        token = "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
        return {**args, "id": name, "name": name, "region": region, "token": _secret(token)}


# --- helpers ------------------------------------------------------------------------------------------------


def _name(args: MockResourceArgs, inputs: State) -> str:
    """The resource's AWS name: the program's, else Pulumi's autoname (`<name>-<7 hex>`, within AWS's limit)."""
    key = _NAME_INPUT.get(args.typ, "name")
    given = inputs.get(key)
    if isinstance(given, str) and given:
        return given
    prefix = inputs.get(f"{key}Prefix")
    if isinstance(prefix, str) and prefix:
        return prefix + _hex(26, "prefix", args.typ, args.name)
    limit = _NAME_LIMITS.get(args.typ, 255)
    return f"{args.name[: limit - 8]}-{_hex(7, 'autoname', args.typ, args.name)}"


def _destination(inputs: State) -> str:
    return next(
        (
            inputs[k]
            for k in ("destinationCidrBlock", "destinationIpv6CidrBlock", "destinationPrefixListId")
            if isinstance(inputs.get(k), str) and inputs[k]
        ),
        "",
    )


def _route_id(args: MockResourceArgs, inputs: State) -> str:
    """The provider's route id: `r-`, the route table's id, and the CRC-32 of the destination."""
    table = _text(inputs.get("routeTableId")) or aws_id("rtb", args.typ, args.name)
    return f"r-{table}{zlib.crc32(_destination(inputs).encode())}"


def _tgw_link_id(args: MockResourceArgs, inputs: State) -> str:
    return f"{_text(inputs.get('transitGatewayRouteTableId'))}_{_text(inputs.get('transitGatewayAttachmentId'))}"


def load_balancer_dns_name(name: str, kind: str, internal: bool, region: str, resource: str) -> str:
    """A load balancer's DNS name as ELB forms it. A Network (or Gateway) Load Balancer's is
    `<name>-<16 hex>.elb.<region>.amazonaws.com`, internal or not; an Application Load Balancer's is
    `<name>-<10 digits>.<region>.elb.amazonaws.com`, with `internal-` in front for an internal one (as a Classic
    Load Balancer's; an internal NLB's name has no such prefix)."""
    if kind != "application":
        return f"{name}-{_hex(16, 'dns', resource)}.elb.{region}.amazonaws.com".lower()
    digits = int.from_bytes(_digest("dns", resource)[:8], "big") % 9_000_000_000 + 1_000_000_000
    return f"{'internal-' if internal else ''}{name}-{digits}.{region}.elb.amazonaws.com".lower()


def caller_identity() -> State:
    unique = base64.b32encode(_digest("caller", CALLER_NAME)).decode()[:17]
    return {
        "id": ACCOUNT_ID,
        "accountId": ACCOUNT_ID,
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{CALLER_NAME}",
        "userId": f"AIDA{unique}",
    }


def default_key_policy() -> str:
    """The key policy KMS gives a key created without one: the account's IAM policies decide."""
    return json.dumps(
        {
            "Version": POLICY_VERSION,
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )


# --- IAM policy documents -----------------------------------------------------------------------------------
# As the provider's `aws_iam_policy_document` data source renders them (Terraform AWS provider,
# internal/service/iam/policy_document_data_source.go and policy_model.go): a set of strings is one string when it
# has one member, else its members sorted in reverse; `&{` becomes `${` in resources, principals and condition
# values; statements keep the order given; source documents merge first, override documents last, a statement with
# the Sid of an earlier one replacing it; Go's encoding/json writes the result (map keys sorted, <, > and & escaped).

_STATEMENT_KEYS = ("Sid", "Effect", "Action", "NotAction", "Resource", "NotResource")


def _string_set(values: Iterable[Any]) -> str | list[str]:
    members = sorted({str(v) for v in values}, reverse=True)
    return members[0] if len(members) == 1 else members


def _variables(value: str | list[str]) -> str | list[str]:
    if isinstance(value, str):
        return value.replace("&{", "${")
    return [v.replace("&{", "${") for v in value]


def _principals(blocks: list[tuple[str, str | list[str]]]) -> Any:
    """Principal blocks as the provider writes them: `"*"` for `{"*": "*"}` alone, else identifiers per type."""
    if len(blocks) == 1 and blocks[0][0] == "*" and blocks[0][1] in ("*", ["*"]):
        return "*"
    merged: dict[str, str | list[str]] = {}
    for kind, identifiers in blocks:
        before = merged.get(kind)
        if isinstance(identifiers, list):
            ordered = sorted(identifiers, reverse=True)
            merged[kind] = ([before] if isinstance(before, str) else list(before or [])) + ordered
        elif before is None:
            merged[kind] = identifiers
        else:
            merged[kind] = [*([before] if isinstance(before, str) else before), identifiers]
    return dict(sorted(merged.items()))


def _conditions(entries: list[tuple[str, str, list[str]]]) -> dict[str, dict[str, str | list[str]]]:
    merged: dict[str, dict[str, list[str]]] = {}
    for test, variable, values in entries:
        merged.setdefault(test, {}).setdefault(variable, []).extend(values)
    return {
        test: {k: v[0] if len(v) == 1 else v for k, v in sorted(variables.items())}
        for test, variables in sorted(merged.items())
    }


def _configured_statement(statement: State) -> State:
    """A statement of the function's `statements` argument, as the document carries it."""
    out: State = {}
    if statement.get("sid"):
        out["Sid"] = statement["sid"]
    out["Effect"] = statement.get("effect") or "Allow"
    for key, name, variables in (
        ("actions", "Action", False),
        ("notActions", "NotAction", False),
        ("resources", "Resource", True),
        ("notResources", "NotResource", True),
    ):
        if statement.get(key):
            value = _string_set(statement[key])
            out[name] = _variables(value) if variables else value
    for key, name in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
        blocks = [
            (str(b.get("type")), _variables(_string_set(b.get("identifiers") or [])))
            for b in statement.get(key) or []
            if isinstance(b, dict)
        ]
        if blocks:
            out[name] = _principals(blocks)
    conditions = [
        (str(c.get("test")), str(c.get("variable")), [v.replace("&{", "${") for v in map(str, c.get("values") or [])])
        for c in statement.get("conditions") or []
        if isinstance(c, dict)
    ]
    if conditions:
        out["Condition"] = _conditions(conditions)
    return out


def _parsed_statement(statement: State) -> State:
    """A statement of a source or override document, as the provider reads it back and writes it again."""
    out: State = {}
    for key in _STATEMENT_KEYS:
        value = statement.get(key)
        if value is not None and value != "":
            out[key] = value
    for key in ("Principal", "NotPrincipal"):
        value = statement.get(key)
        if isinstance(value, str):
            out[key] = "*"
        elif isinstance(value, dict) and value:
            out[key] = _principals([(k, v if isinstance(v, str) else [str(i) for i in v]) for k, v in value.items()])
    condition = statement.get("Condition")
    if isinstance(condition, dict) and condition:
        out["Condition"] = _conditions(list(_parsed_conditions(condition)))
    return out


def _parsed_conditions(condition: State) -> Iterable[tuple[str, str, list[str]]]:
    """A document's conditions as the provider reads them: a string or a boolean is one value, a list its values."""
    for test, variables in condition.items():
        for variable, values in (variables or {}).items():
            if isinstance(values, bool):
                yield test, variable, ["true" if values else "false"]
            elif isinstance(values, str):
                yield test, variable, [values]
            elif isinstance(values, list):
                yield test, variable, [str(v) for v in values]


@dataclass
class _PolicyDocument:
    version: str = ""
    id: str = ""
    statements: list[State] = field(default_factory=list)

    def merge(self, other: _PolicyDocument) -> None:
        """The provider's merge: the other's Id and a later Version win, a statement with a known Sid replaces it."""
        if other.id:
            self.id = other.id
        self.version = max(self.version, other.version)
        for statement in other.statements:
            sid = statement.get("Sid")
            at = next((i for i, s in enumerate(self.statements) if sid and s.get("Sid") == sid), None)
            if at is None:
                self.statements.append(statement)
            else:
                self.statements[at] = statement

    @classmethod
    def parse(cls, text: str) -> _PolicyDocument:
        document = json.loads(text)
        statements = document.get("Statement") or []
        if isinstance(statements, dict):
            statements = [statements]
        return cls(
            str(document.get("Version") or ""),
            str(document.get("Id") or ""),
            [_parsed_statement(s) for s in statements if isinstance(s, dict)],
        )

    def as_json(self) -> State:
        document: State = {}
        if self.version:
            document["Version"] = self.version
        if self.id:
            document["Id"] = self.id
        if self.statements:
            document["Statement"] = self.statements
        return document


def _go_json(value: Any, *, indent: bool) -> str:
    """JSON as Go's encoding/json writes it (`MarshalIndent` with two spaces, or `Marshal`)."""
    text = json.dumps(
        value, ensure_ascii=False, indent=2 if indent else None, separators=(",", ": " if indent else ":")
    )
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        text = text.replace(char, escape)
    return text.replace("\u2029", "\\u2029")


def policy_document(args: State) -> State:
    """`aws:iam/getPolicyDocument`: the document its statements (and source and override documents) make."""
    merged = _PolicyDocument()
    for source in args.get("sourcePolicyDocuments") or []:
        if isinstance(source, str):
            merged.merge(_PolicyDocument.parse(source))
    version = _text(args.get("version")) or POLICY_VERSION
    own = _PolicyDocument(version, _text(args.get("policyId")))
    own.statements = [_configured_statement(s) for s in args.get("statements") or [] if isinstance(s, dict)]
    merged.merge(own)
    for override in args.get("overridePolicyDocuments") or []:
        if isinstance(override, str):
            merged.merge(_PolicyDocument.parse(override))
    rendered = _go_json(merged.as_json(), indent=True)
    return {
        **args,
        "id": str(zlib.crc32(rendered.encode())),
        "json": rendered,
        "minifiedJson": _go_json(merged.as_json(), indent=False),
        "version": version,
    }
