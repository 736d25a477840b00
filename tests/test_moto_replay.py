"""The moto replay accepts a valid AWS network, IAM and EKS, and really checks: what moto refuses, a test sees
refused; what moto lets through that AWS would refuse is pinned here too, so that the gaps are known.

Plans here are synthetic (nodes as the planner records them, with fabricated AWS-shaped ids and ARNs), so that
the harness is proven before the program builds EKS clusters; one is captured by the planner from a small
pulumi_aws program, for the wire names. One moto server (in a thread, on loopback) serves the whole session; each
replay runs in an account of its own.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from clustermesh.planner.fabricate_aws import (
    ASG_ATTACHMENT,
    AWS_PROVIDER,
    EGRESS_RULE,
    EIP,
    EKS_CLUSTER,
    GET_CALLER_IDENTITY,
    ID_PREFIXES,
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
from clustermesh.planner.runner import run_program
from clustermesh.planner.stackfile import StackSettings
from tests.moto_replay import (
    EKS_ACCESS_ENTRY,
    EKS_ACCESS_POLICY_ASSOCIATION,
    EKS_ADDON,
    EKS_NODE_GROUP,
    NOT_REPLAYED,
    TGW_ROUTE_TABLE_ASSOCIATION,
    TGW_ROUTE_TABLE_PROPAGATION,
    AwsRefused,
    DanglingReference,
    HarnessError,
    MotoFailure,
    MotoServer,
    ReplaySummary,
    moto_server_fixture,
    replay_captured,
    replay_plan,
)

moto_server = pytest.fixture(scope="session", name="moto_server")(moto_server_fixture)
"""One moto server for every test that needs it (a conftest may wire the same body: it still starts one)."""

FABRICATED_ACCOUNT = "111122223333"
"""The account the synthetic plans' ARNs name, not the planner's (which the replay maps unasked): learnt from the
VPCs' `ownerId` or from getCallerIdentity, and mapped to the replay's own."""
EAST, WEST = "us-east-1", "us-west-2"
EKS_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
)
EC2_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")


def _hex(seed: str, length: int = 17) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


@dataclass
class Plan:
    """Nodes as the planner records them: AWS-shaped fabricated ids and ARNs in the fabricated account, outputs
    echoing the inputs, each input that holds another resource's id or ARN depending on it."""

    stack: str = "moto"
    nodes: list[Node] = field(default_factory=list)

    def provider(self, name: str, region: str) -> Node:
        urn = f"urn:pulumi:{self.stack}::clustermesh::{AWS_PROVIDER}::{name}"
        node = Node(urn, AWS_PROVIDER, name, self._stack(), "", True, [], {"region": region}, id=_hex(urn, 36))
        self.nodes.append(node)
        return node

    def _stack(self) -> str:
        return f"urn:pulumi:{self.stack}::clustermesh::pulumi:pulumi:Stack::clustermesh-{self.stack}"

    def add(
        self,
        type_: str,
        name: str,
        inputs: dict[str, Any],
        *,
        provider: Node | None = None,
        depends_on: Sequence[Node] = (),
        id_: str | None = None,
        **outputs: Any,
    ) -> Node:
        urn = f"urn:pulumi:{self.stack}::clustermesh::{type_}::{name}"
        values = {v: n.urn for n in self.nodes for v in _produced(n)}
        referenced = {values[s] for s in _strings(inputs) if s in values}
        node = Node(
            urn=urn,
            type=type_,
            name=name,
            parent=self._stack(),
            provider=provider.urn if provider else "",
            custom=True,
            dependencies=sorted(referenced | {n.urn for n in depends_on}),
            inputs=inputs,
            id=id_ or _fabricated_id(type_, name, urn, inputs),
        )
        node.outputs = {**inputs, "id": node.id, **_fabricated_outputs(type_, urn, node.id or ""), **outputs}
        self.nodes.append(node)
        return node


LB_ARN = f"arn:aws:elasticloadbalancing:{EAST}:{FABRICATED_ACCOUNT}"
IdOf = Callable[[str, str, dict[str, Any]], str]
COMPOSITE_IDS: dict[str, IdOf] = {
    ROLE: lambda name, urn, inputs: str(inputs.get("name") or name),
    EKS_CLUSTER: lambda name, urn, inputs: str(inputs.get("name") or name),
    EKS_NODE_GROUP: lambda name, urn, inputs: f"{inputs['clusterName']}:{inputs.get('nodeGroupName') or name}",
    LOAD_BALANCER: lambda name, urn, inputs: f"{LB_ARN}:loadbalancer/net/{inputs.get('name') or name}/{_hex(urn, 16)}",
    TARGET_GROUP: lambda name, urn, inputs: f"{LB_ARN}:targetgroup/{inputs.get('name') or name}/{_hex(urn, 16)}",
    LISTENER: lambda name, urn, inputs: f"{LB_ARN}:listener/net/{name}/{_hex(urn, 16)}/{_hex(urn + '/', 16)}",
    KMS_KEY: lambda name, urn, inputs: f"{_hex(urn, 8)}-{_hex(urn, 4)}-4{_hex(urn, 3)}-8{_hex(urn, 3)}-{_hex(urn, 12)}",
}


def _fabricated_id(type_: str, name: str, urn: str, inputs: dict[str, Any]) -> str:
    if type_ in ID_PREFIXES:
        return f"{ID_PREFIXES[type_]}-0{_hex(urn, 16)}"
    if type_ in COMPOSITE_IDS:
        return COMPOSITE_IDS[type_](name, urn, inputs)
    return f"{name}-{_hex(urn, 7)}"


OutputsOf = Callable[[str, str], dict[str, Any]]
FABRICATED_OUTPUTS: dict[str, OutputsOf] = {
    LOAD_BALANCER: lambda urn, id_: {"arn": id_},
    TARGET_GROUP: lambda urn, id_: {"arn": id_},
    LISTENER: lambda urn, id_: {"arn": id_},
    ROLE: lambda urn, id_: {"arn": f"arn:aws:iam::{FABRICATED_ACCOUNT}:role/{id_}", "name": id_},
    KMS_KEY: lambda urn, id_: {"arn": f"arn:aws:kms:{EAST}:{FABRICATED_ACCOUNT}:key/{id_}", "keyId": id_},
    VPC: lambda urn, id_: {"ownerId": FABRICATED_ACCOUNT},
    SUBNET: lambda urn, id_: {"ownerId": FABRICATED_ACCOUNT},
    SECURITY_GROUP: lambda urn, id_: {"ownerId": FABRICATED_ACCOUNT},
    TRANSIT_GATEWAY: lambda urn, id_: {"associationDefaultRouteTableId": f"tgw-rtb-0{_hex(urn + '/default', 16)}"},
    EKS_CLUSTER: lambda urn, id_: {
        "arn": f"arn:aws:eks:{EAST}:{FABRICATED_ACCOUNT}:cluster/{id_}",
        "vpcConfig": {"clusterSecurityGroupId": f"sg-0{_hex(urn + '/cluster-sg', 16)}"},
    },
}
"""What the planner answers beyond the inputs, for the outputs later resources reference."""


def _fabricated_outputs(type_: str, urn: str, id_: str) -> dict[str, Any]:
    return FABRICATED_OUTPUTS[type_](urn, id_) if type_ in FABRICATED_OUTPUTS else {}


def _produced(node: Node) -> list[str]:
    outputs = node.outputs or {}
    produced = [node.id or "", *(v for k, v in outputs.items() if k in ("arn", "name") and isinstance(v, str))]
    produced.append(str((outputs.get("vpcConfig") or {}).get("clusterSecurityGroupId", "")))
    return [p for p in produced if p and p != FABRICATED_ACCOUNT]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Secret):
        return _strings(value.value)
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def node_id(node: Node) -> str:
    assert node.id is not None
    return node.id


def output(node: Node, key: str) -> Any:
    return (node.outputs or {})[key]


@dataclass
class Network:
    """A cluster's VPC as the program will build it: two private subnets in two zones, a public one, a private
    route table for them, and a node security group."""

    name: str
    cidr: str
    vpc: Node
    private: list[Node]
    public: Node
    routes: Node
    nodes: Node


def network(plan: Plan, name: str, second_octet: int, *, provider: Node | None = None, region: str = EAST) -> Network:
    cidr = f"10.{second_octet}.0.0/16"
    vpc = plan.add(
        VPC,
        f"{name}-vpc",
        {"cidrBlock": cidr, "enableDnsHostnames": True, "enableDnsSupport": True, "tags": {"Name": name}},
        provider=provider,
    )
    private = [
        plan.add(
            SUBNET,
            f"{name}-private-{zone}",
            {
                "vpcId": vpc.id,
                "cidrBlock": f"10.{second_octet}.{16 * index}.0/20",
                "availabilityZone": f"{region}{zone}",
                "tags": {"kubernetes.io/role/internal-elb": "1"},
            },
            provider=provider,
        )
        for index, zone in enumerate("ab")
    ]
    public = plan.add(
        SUBNET,
        f"{name}-public-a",
        {
            "vpcId": vpc.id,
            "cidrBlock": f"10.{second_octet}.255.0/24",
            "availabilityZone": f"{region}a",
            "mapPublicIpOnLaunch": True,
        },
        provider=provider,
    )
    routes = plan.add(
        ROUTE_TABLE, f"{name}-private", {"vpcId": vpc.id, "tags": {"Name": f"{name}-private"}}, provider=provider
    )
    for subnet in private:
        plan.add(
            ROUTE_TABLE_ASSOCIATION, subnet.name, {"routeTableId": routes.id, "subnetId": subnet.id}, provider=provider
        )
    group = plan.add(
        SECURITY_GROUP,
        f"{name}-nodes",
        {"name": f"{name}-nodes", "description": f"{name} nodes", "vpcId": vpc.id},
        provider=provider,
    )
    plan.add(
        INGRESS_RULE,
        f"{name}-members",
        {"securityGroupId": group.id, "ipProtocol": "-1", "referencedSecurityGroupId": group.id},
        provider=provider,
    )
    plan.add(
        EGRESS_RULE,
        f"{name}-egress",
        {"securityGroupId": group.id, "ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"},
        provider=provider,
    )
    return Network(name, cidr, vpc, private, public, routes, group)


def peer_rules(plan: Plan, local: Network, remote: Network, *, provider: Node | None = None) -> None:
    """What clustermesh needs from a peer VPC: its etcd NodePort and Cilium's health checks and VXLAN."""
    for port, protocol in ((32379, "tcp"), (4240, "tcp"), (8472, "udp")):
        plan.add(
            INGRESS_RULE,
            f"{local.name}-from-{remote.name}-{port}",
            {
                "securityGroupId": local.nodes.id,
                "ipProtocol": protocol,
                "fromPort": port,
                "toPort": port,
                "cidrIpv4": remote.cidr,
                "description": f"{remote.name} {port}/{protocol}",
            },
            provider=provider,
        )


def route(plan: Plan, table: Node, name: str, destination: str, **target: Any) -> Node:
    return plan.add(ROUTE, name, {"routeTableId": table.id, "destinationCidrBlock": destination, **target})


def ec2(server: MotoServer, summary: ReplaySummary, region: str = EAST) -> Any:
    return server.client("ec2", region, account_id=summary.account_id)


def client(server: MotoServer, summary: ReplaySummary, service: str, region: str = EAST) -> Any:
    return server.client(service, region, account_id=summary.account_id)


def rule_set(server: MotoServer, summary: ReplaySummary, group: str, region: str = EAST) -> set[tuple[Any, ...]]:
    rules = ec2(server, summary, region).describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group]}]
    )
    return {
        (
            r["IsEgress"],
            r["IpProtocol"],
            r.get("FromPort"),
            r.get("ToPort"),
            r.get("CidrIpv4") or r.get("ReferencedGroupInfo", {}).get("GroupId"),
        )
        for r in rules["SecurityGroupRules"]
    }


def _edge(plan: Plan, alpha: Network) -> tuple[Node, Node, Node, Node]:
    """alpha's way out: an internet gateway, a NAT gateway with an elastic IP in the public subnet, routes."""
    gateway = plan.add(INTERNET_GATEWAY, "alpha-igw", {"vpcId": alpha.vpc.id})
    address = plan.add(EIP, "alpha-nat", {"domain": "vpc", "tags": {"Name": "alpha-nat"}}, depends_on=[gateway])
    nat = plan.add(
        NAT_GATEWAY,
        "alpha-nat",
        {"allocationId": address.id, "subnetId": alpha.public.id, "connectivityType": "public"},
        depends_on=[gateway],
    )
    public = plan.add(ROUTE_TABLE, "alpha-public", {"vpcId": alpha.vpc.id})
    plan.add(ROUTE_TABLE_ASSOCIATION, "alpha-public", {"routeTableId": public.id, "subnetId": alpha.public.id})
    route(plan, public, "alpha-public-default", "0.0.0.0/0", gatewayId=gateway.id)
    route(plan, alpha.routes, "alpha-private-default", "0.0.0.0/0", natGatewayId=nat.id)
    return gateway, address, nat, public


def peered_pair(plan: Plan) -> tuple[Network, Network, Node]:
    alpha, beta = network(plan, "alpha", 1), network(plan, "beta", 2)
    peering = plan.add(
        PEERING,
        "alpha-beta",
        {
            "vpcId": alpha.vpc.id,
            "peerVpcId": beta.vpc.id,
            "autoAccept": True,
            "requester": {"allowRemoteVpcDnsResolution": True},
            "tags": {"Name": "alpha-beta"},
        },
    )
    route(plan, alpha.routes, "alpha-to-beta", beta.cidr, vpcPeeringConnectionId=peering.id)
    route(plan, beta.routes, "beta-to-alpha", alpha.cidr, vpcPeeringConnectionId=peering.id)
    peer_rules(plan, alpha, beta)
    peer_rules(plan, beta, alpha)
    return alpha, beta, peering


def test_two_peered_vpcs_with_gateways_replay_entirely_and_every_id_maps(moto_server: MotoServer) -> None:
    plan = Plan()
    alpha, beta, peering = peered_pair(plan)
    gateway, address, nat, public = _edge(plan, alpha)
    started = time.monotonic()

    summary = replay_plan(plan.nodes, server=moto_server)

    elapsed = time.monotonic() - started
    assert summary.created == Counter(
        {
            VPC: 2,
            SUBNET: 6,
            ROUTE_TABLE: 3,
            ROUTE_TABLE_ASSOCIATION: 5,
            SECURITY_GROUP: 2,
            INGRESS_RULE: 8,
            EGRESS_RULE: 2,
            PEERING: 1,
            ROUTE: 4,
            INTERNET_GATEWAY: 1,
            EIP: 1,
            NAT_GATEWAY: 1,
        }
    )
    assert summary.regions == Counter({EAST: 36}) and not summary.not_replayed
    assert elapsed < 30, elapsed
    assert summary.line() == (
        f"moto (account {summary.account_id}): created 1 Eip, 1 InternetGateway, 1 NatGateway, 4 Route, 3 RouteTable, "
        "5 RouteTableAssociation, 2 SecurityGroup, 6 Subnet, 2 Vpc, 1 VpcPeeringConnection, "
        "2 SecurityGroupEgressRule, 8 SecurityGroupIngressRule"
    )
    for node in plan.nodes:  # every fabricated id maps to the one moto gave, of the same kind
        real = summary.real[node_id(node)]
        assert real == summary.ids[node.urn] and real != node.id
        if node.type in (VPC, SUBNET, SECURITY_GROUP, PEERING, NAT_GATEWAY, EIP):
            assert real.startswith(node_id(node).split("-")[0] + "-")
    assert summary.real[FABRICATED_ACCOUNT] == summary.account_id  # the VPCs' owner

    client_ = ec2(moto_server, summary)
    (connection,) = client_.describe_vpc_peering_connections(VpcPeeringConnectionIds=[summary.real[node_id(peering)]])[
        "VpcPeeringConnections"
    ]
    assert connection["Status"]["Code"] == "active"
    assert connection["RequesterVpcInfo"]["VpcId"] == summary.real[node_id(alpha.vpc)]
    assert connection["AccepterVpcInfo"]["VpcId"] == summary.real[node_id(beta.vpc)]
    assert connection["RequesterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is True
    assert {"Key": "Name", "Value": "alpha-beta"} in connection["Tags"]

    (table,) = client_.describe_route_tables(RouteTableIds=[summary.real[node_id(alpha.routes)]])["RouteTables"]
    targets = {
        r["DestinationCidrBlock"]: r.get("VpcPeeringConnectionId") or r.get("NatGatewayId") for r in table["Routes"]
    }
    assert targets == {
        alpha.cidr: None,  # local
        beta.cidr: summary.real[node_id(peering)],
        "0.0.0.0/0": summary.real[node_id(nat)],
    }
    assert {a["SubnetId"] for a in table["Associations"]} == {summary.real[node_id(s)] for s in alpha.private}
    (public_table,) = client_.describe_route_tables(RouteTableIds=[summary.real[node_id(public)]])["RouteTables"]
    assert {r.get("GatewayId") for r in public_table["Routes"]} == {"local", summary.real[node_id(gateway)]}

    (gateway,) = client_.describe_nat_gateways(NatGatewayIds=[summary.real[node_id(nat)]])["NatGateways"]
    assert gateway["SubnetId"] == summary.real[node_id(alpha.public)]
    assert gateway["NatGatewayAddresses"][0]["AllocationId"] == summary.real[node_id(address)]
    (subnet,) = client_.describe_subnets(SubnetIds=[summary.real[node_id(alpha.public)]])["Subnets"]
    assert subnet["MapPublicIpOnLaunch"] is True

    group = summary.real[node_id(alpha.nodes)]
    assert rule_set(moto_server, summary, group) == {
        (False, "-1", -1, -1, group),  # members; moto reports the ports of an all-protocol rule as -1
        (False, "tcp", 32379, 32379, beta.cidr),
        (False, "tcp", 4240, 4240, beta.cidr),
        (False, "udp", 8472, 8472, beta.cidr),
        (True, "-1", -1, -1, "0.0.0.0/0"),  # the plan's; the default one was revoked, as the provider does
    }


def test_a_transit_gateway_with_two_vpcs_its_route_table_and_routes_replays(moto_server: MotoServer) -> None:
    plan = Plan()
    gamma, delta = network(plan, "gamma", 3), network(plan, "delta", 4)
    gateway = plan.add(
        TRANSIT_GATEWAY,
        "mesh",
        {
            "description": "clustermesh",
            "amazonSideAsn": 64512,
            "defaultRouteTableAssociation": "disable",
            "defaultRouteTablePropagation": "disable",
            "tags": {"Name": "mesh"},
        },
    )
    table = plan.add(TGW_ROUTE_TABLE, "mesh", {"transitGatewayId": gateway.id})
    attachments = {}
    for net in (gamma, delta):
        attachment = plan.add(
            TGW_VPC_ATTACHMENT,
            net.name,
            {
                "transitGatewayId": gateway.id,
                "vpcId": net.vpc.id,
                "subnetIds": [s.id for s in net.private],
                "dnsSupport": "enable",
                "transitGatewayDefaultRouteTableAssociation": False,
                "transitGatewayDefaultRouteTablePropagation": False,
            },
        )
        attachments[net.name] = attachment
        relation = {"transitGatewayRouteTableId": table.id, "transitGatewayAttachmentId": attachment.id}
        plan.add(TGW_ROUTE_TABLE_ASSOCIATION, net.name, dict(relation))
        plan.add(TGW_ROUTE_TABLE_PROPAGATION, net.name, dict(relation))
        plan.add(TGW_ROUTE, f"to-{net.name}", {"destinationCidrBlock": net.cidr, **relation})
    plan.add(
        TGW_ROUTE,
        "sink",
        {"destinationCidrBlock": "10.99.0.0/16", "transitGatewayRouteTableId": table.id, "blackhole": True},
    )
    route(plan, gamma.routes, "gamma-to-delta", delta.cidr, transitGatewayId=gateway.id)
    route(plan, delta.routes, "delta-to-gamma", gamma.cidr, transitGatewayId=gateway.id)

    summary = replay_plan(plan.nodes, server=moto_server)

    assert summary.created[TRANSIT_GATEWAY] == 1 and summary.created[TGW_VPC_ATTACHMENT] == 2
    assert summary.created[TGW_ROUTE] == 3 and summary.created[ROUTE] == 2
    assert summary.created[TGW_ROUTE_TABLE_ASSOCIATION] == summary.created[TGW_ROUTE_TABLE_PROPAGATION] == 2
    assert summary.ignored == Counter(
        {
            "VpcAttachment.transitGatewayDefaultRouteTableAssociation": 2,
            "VpcAttachment.transitGatewayDefaultRouteTablePropagation": 2,
        }
    )
    assert summary.line().endswith(
        "; inputs moto cannot act on: 2 VpcAttachment.transitGatewayDefaultRouteTableAssociation (moto always "
        "associates an attachment with the default table), 2 VpcAttachment.transitGatewayDefaultRouteTablePropagation "
        "(moto does not propagate to the default table)"
    ), summary.line()
    client_ = ec2(moto_server, summary)
    real_table = summary.real[node_id(table)]
    found = client_.search_transit_gateway_routes(
        TransitGatewayRouteTableId=real_table, Filters=[{"Name": "type", "Values": ["static"]}]
    )["Routes"]
    assert {r["DestinationCidrBlock"]: r["State"] for r in found} == {
        gamma.cidr: "active",
        delta.cidr: "active",
        "10.99.0.0/16": "blackhole",
    }
    associations = client_.get_transit_gateway_route_table_associations(TransitGatewayRouteTableId=real_table)
    assert {a["TransitGatewayAttachmentId"] for a in associations["Associations"]} == {
        summary.real[node_id(a)] for a in attachments.values()
    }
    attachment = client_.describe_transit_gateway_vpc_attachments(
        TransitGatewayAttachmentIds=[summary.real[node_id(attachments["gamma"])]]
    )["TransitGatewayVpcAttachments"][0]
    assert attachment["VpcId"] == summary.real[node_id(gamma.vpc)]
    assert attachment["SubnetIds"] == [summary.real[node_id(s)] for s in gamma.private]
    (vpc_table,) = client_.describe_route_tables(RouteTableIds=[summary.real[node_id(gamma.routes)]])["RouteTables"]
    assert {r.get("TransitGatewayId") for r in vpc_table["Routes"]} == {None, summary.real[node_id(gateway)]}


def two_regions(plan: Plan) -> dict[str, Any]:
    """An east and a west VPC, each behind its region's transit gateway, the gateways peered (and the VPCs peered
    too, across regions, with an accepter in the west)."""
    east, west = plan.provider("east", EAST), plan.provider("west", WEST)
    parts: dict[str, Any] = {"east": east, "west": west}
    for label, provider, octet in (("east", east, 5), ("west", west, 6)):
        net = network(plan, label, octet, provider=provider, region=provider.inputs["region"])
        gateway = plan.add(TRANSIT_GATEWAY, label, {"defaultRouteTableAssociation": "disable"}, provider=provider)
        table = plan.add(TGW_ROUTE_TABLE, label, {"transitGatewayId": gateway.id}, provider=provider)
        attachment = plan.add(
            TGW_VPC_ATTACHMENT,
            label,
            {"transitGatewayId": gateway.id, "vpcId": net.vpc.id, "subnetIds": [s.id for s in net.private]},
            provider=provider,
        )
        relation = {"transitGatewayRouteTableId": table.id, "transitGatewayAttachmentId": attachment.id}
        plan.add(TGW_ROUTE_TABLE_ASSOCIATION, label, relation, provider=provider)
        parts[label] = (net, gateway, table)
    (east_net, east_gw, east_table), (west_net, west_gw, west_table) = parts["east"], parts["west"]
    peering = plan.add(
        TGW_PEERING,
        "east-west",
        {
            "transitGatewayId": east_gw.id,
            "peerTransitGatewayId": west_gw.id,
            "peerRegion": WEST,
            "peerAccountId": FABRICATED_ACCOUNT,
        },
        provider=east,
    )
    accepter = plan.add(
        TGW_PEERING_ACCEPTER,
        "east-west",
        {"transitGatewayAttachmentId": peering.id, "region": WEST},  # the east provider, in the west
        provider=east,
        id_=node_id(peering),
    )
    for label, table, remote, provider in (("east", east_table, west_net, east), ("west", west_table, east_net, west)):
        relation = {"transitGatewayRouteTableId": table.id, "transitGatewayAttachmentId": peering.id}
        plan.add(
            TGW_ROUTE,
            f"{label}-to-peer",
            {"destinationCidrBlock": remote.cidr, **relation},
            provider=provider,
            depends_on=[accepter],
        )
    vpc_peering = plan.add(
        PEERING,
        "east-west-vpcs",
        {"vpcId": east_net.vpc.id, "peerVpcId": west_net.vpc.id, "peerRegion": WEST, "peerOwnerId": FABRICATED_ACCOUNT},
        provider=east,
    )
    plan.add(
        PEERING_ACCEPTER,
        "east-west-vpcs",
        {"vpcPeeringConnectionId": vpc_peering.id, "autoAccept": True, "tags": {"Side": "accepter"}},
        provider=west,
        id_=node_id(vpc_peering),
    )
    parts |= {"peering": peering, "vpc_peering": vpc_peering}
    return parts


def test_two_regions_with_peered_transit_gateways_and_vpcs_replay(moto_server: MotoServer) -> None:
    plan = Plan()
    parts = two_regions(plan)
    identity = {"token": GET_CALLER_IDENTITY, "args": {}, "result": {"accountId": FABRICATED_ACCOUNT}}

    summary = replay_plan(plan.nodes, [identity], server=moto_server)

    assert summary.created[TGW_PEERING] == summary.created[TGW_PEERING_ACCEPTER] == 1
    assert summary.created[PEERING] == summary.created[PEERING_ACCEPTER] == 1
    # Each side: 10 network resources, a gateway, its table, attachment and association, a route to the peer; the
    # peerings in the east, their accepters (one by its `region` input, on the east provider) in the west.
    assert summary.regions == Counter({EAST: 17, WEST: 17})
    assert summary.functions == Counter({GET_CALLER_IDENTITY: 1})
    west_net = parts["west"][0]
    assert ec2(moto_server, summary, WEST).describe_vpcs(VpcIds=[summary.real[node_id(west_net.vpc)]])["Vpcs"]

    attachment = summary.real[node_id(parts["peering"])]
    for region in (EAST, WEST):
        (found,) = ec2(moto_server, summary, region).describe_transit_gateway_peering_attachments(
            TransitGatewayAttachmentIds=[attachment]
        )["TransitGatewayPeeringAttachments"]
        assert found["State"] == "available"
        assert found["AccepterTgwInfo"]["Region"] == WEST
        assert found["AccepterTgwInfo"]["OwnerId"] == summary.account_id  # the fabricated account, mapped
    west_table = summary.real[node_id(parts["west"][2])]
    routes = ec2(moto_server, summary, WEST).search_transit_gateway_routes(
        TransitGatewayRouteTableId=west_table, Filters=[{"Name": "type", "Values": ["static"]}]
    )["Routes"]
    assert [r["DestinationCidrBlock"] for r in routes] == ["10.5.0.0/16"]
    (connection,) = ec2(moto_server, summary).describe_vpc_peering_connections(
        VpcPeeringConnectionIds=[summary.real[node_id(parts["vpc_peering"])]]
    )["VpcPeeringConnections"]
    assert connection["Status"]["Code"] == "active"
    assert connection["AccepterVpcInfo"]["Region"] == WEST


def load_balancer(plan: Plan, net: Network, addresses: Sequence[str], *, protocol: str = "TCP") -> dict[str, Node]:
    """The clustermesh-apiserver's internal NLB: fixed private addresses, TCP 2379 to NodePort 32379."""
    balancer = plan.add(
        LOAD_BALANCER,
        f"{net.name}-apiserver",
        {
            "name": f"{net.name}-apiserver",
            "loadBalancerType": "network",
            "internal": True,
            "subnetMappings": [
                {"subnetId": s.id, "privateIpv4Address": a} for s, a in zip(net.private, addresses, strict=True)
            ],
            "securityGroups": [net.nodes.id],
            "enableCrossZoneLoadBalancing": True,
            "tags": {"Name": f"{net.name}-apiserver"},
        },
    )
    group = plan.add(
        TARGET_GROUP,
        f"{net.name}-apiserver",
        {
            "name": f"{net.name}-apiserver",
            "port": 32379,
            "protocol": "TCP",
            "targetType": "instance",
            "vpcId": net.vpc.id,
            "healthCheck": {"protocol": "TCP", "port": "32379", "interval": 10},
            "preserveClientIp": "true",
        },
    )
    listener = plan.add(
        LISTENER,
        f"{net.name}-apiserver",
        {
            "loadBalancerArn": output(balancer, "arn"),
            "port": 2379,
            "protocol": protocol,
            "defaultActions": [{"type": "forward", "targetGroupArn": output(group, "arn")}],
        },
    )
    return {"balancer": balancer, "group": group, "listener": listener}


def test_an_internal_nlb_with_fixed_addresses_forwarding_2379_to_32379_replays(moto_server: MotoServer) -> None:
    plan = Plan()
    net = network(plan, "alpha", 1)
    parts = load_balancer(plan, net, ["10.1.0.10", "10.1.16.10"])

    summary = replay_plan(plan.nodes, server=moto_server)

    assert summary.created[LOAD_BALANCER] == summary.created[TARGET_GROUP] == summary.created[LISTENER] == 1
    elb = client(moto_server, summary, "elbv2")
    balancer_arn = summary.real[node_id(parts["balancer"])]
    assert balancer_arn.startswith(f"arn:aws:elasticloadbalancing:{EAST}:{summary.account_id}:loadbalancer/")
    (balancer,) = elb.describe_load_balancers(LoadBalancerArns=[balancer_arn])["LoadBalancers"]
    assert (balancer["Type"], balancer["Scheme"]) == ("network", "internal")
    assert balancer["VpcId"] == summary.real[node_id(net.vpc)]
    assert balancer["SecurityGroups"] == [summary.real[node_id(net.nodes)]]
    assert [(z["ZoneName"], z["SubnetId"]) for z in balancer["AvailabilityZones"]] == [
        (f"{EAST}a", summary.real[node_id(net.private[0])]),
        (f"{EAST}b", summary.real[node_id(net.private[1])]),
    ]
    attributes = elb.describe_load_balancer_attributes(LoadBalancerArn=balancer_arn)["Attributes"]
    assert {"Key": "load_balancing.cross_zone.enabled", "Value": "true"} in attributes
    group_arn = summary.real[node_id(parts["group"])]
    (group,) = elb.describe_target_groups(TargetGroupArns=[group_arn])["TargetGroups"]
    assert (group["Protocol"], group["Port"], group["TargetType"]) == ("TCP", 32379, "instance")
    assert (group["HealthCheckProtocol"], group["HealthCheckPort"], group["HealthCheckIntervalSeconds"]) == (
        "TCP",
        "32379",
        10,
    )
    group_attributes = elb.describe_target_group_attributes(TargetGroupArn=group_arn)["Attributes"]
    assert {"Key": "preserve_client_ip.enabled", "Value": "true"} in group_attributes
    (listener,) = elb.describe_listeners(LoadBalancerArn=balancer_arn)["Listeners"]
    assert (listener["Protocol"], listener["Port"]) == ("TCP", 2379)
    assert listener["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": group_arn}]
    assert summary.real[node_id(parts["listener"])] == listener["ListenerArn"]


def eks(plan: Plan, net: Network, name: str = "alpha", *, version: str = "1.35") -> dict[str, Node]:
    """Roles, a KMS key for secrets, a cluster and a node group with Cilium's taint, what moto lacks, and a rule on
    the security group EKS makes for the cluster."""
    cluster_role = plan.add(ROLE, f"{name}-cluster", {"name": f"{name}-cluster", "assumeRolePolicy": EKS_TRUST})
    node_role = plan.add(ROLE, f"{name}-nodes", {"name": f"{name}-nodes", "assumeRolePolicy": EC2_TRUST})
    policy = "arn:aws:iam::aws:policy/"
    attached = [
        plan.add(
            ROLE_POLICY_ATTACHMENT,
            f"{name}-cluster-policy",
            {"role": cluster_role.id, "policyArn": f"{policy}AmazonEKSClusterPolicy"},
        )
    ]
    for node_policy in NODE_POLICIES:
        attached.append(
            plan.add(
                ROLE_POLICY_ATTACHMENT,
                f"{name}-{node_policy}",
                {"role": node_role.id, "policyArn": f"{policy}{node_policy}"},
            )
        )
    key = plan.add(KMS_KEY, f"{name}-secrets", {"description": f"{name} secrets", "enableKeyRotation": True})
    cluster = plan.add(
        EKS_CLUSTER,
        name,
        {
            "name": name,
            "roleArn": output(cluster_role, "arn"),
            "version": version,
            "vpcConfig": {
                "subnetIds": [s.id for s in net.private],
                "securityGroupIds": [net.nodes.id],
                "endpointPrivateAccess": True,
                "endpointPublicAccess": False,
            },
            "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True},
            "kubernetesNetworkConfig": {"serviceIpv4Cidr": "172.20.0.0/16"},
            "encryptionConfig": {"provider": {"keyArn": output(key, "arn")}, "resources": ["secrets"]},
            "enabledClusterLogTypes": ["api", "audit"],
            "bootstrapSelfManagedAddons": True,
        },
        depends_on=attached[:1],
    )
    group = plan.add(
        EKS_NODE_GROUP,
        f"{name}-nodes",
        {
            "clusterName": name,
            "nodeGroupName": f"{name}-nodes",
            "nodeRoleArn": output(node_role, "arn"),
            "subnetIds": [s.id for s in net.private],
            "scalingConfig": {"desiredSize": 2, "maxSize": 3, "minSize": 1},
            "instanceTypes": ["m6i.large"],
            "amiType": "AL2023_x86_64_STANDARD",
            "taints": [{"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}],
            "labels": {"clustermesh": name},
        },
        depends_on=[cluster, *attached[1:]],
    )
    cluster_group = output(cluster, "vpcConfig")["clusterSecurityGroupId"]
    plan.add(
        INGRESS_RULE,
        f"{name}-cluster-etcd",
        {
            "securityGroupId": cluster_group,
            "ipProtocol": "tcp",
            "fromPort": 32379,
            "toPort": 32379,
            "cidrIpv4": "10.2.0.0/16",
        },
        depends_on=[cluster],
    )
    for kind, extra in (
        (EKS_ADDON, {"addonName": "vpc-cni"}),
        (EKS_ACCESS_ENTRY, {"principalArn": output(node_role, "arn"), "type": "EC2_LINUX"}),
        (EKS_ACCESS_POLICY_ASSOCIATION, {"principalArn": output(node_role, "arn"), "policyArn": "arn:aws:eks::aws:x"}),
        (ASG_ATTACHMENT, {"autoscalingGroupName": f"eks-{name}-nodes", "lbTargetGroupArn": "unknown-here"}),
    ):
        plan.add(kind, f"{name}-{kind.rsplit(':', 1)[-1]}", {"clusterName": name, **extra}, depends_on=[group])
    return {"cluster": cluster, "group": group, "cluster_role": cluster_role, "node_role": node_role}


def test_iam_roles_a_kms_key_an_eks_cluster_and_node_group_replay(moto_server: MotoServer) -> None:
    plan = Plan()
    net = network(plan, "alpha", 1)
    parts = eks(plan, net)

    summary = replay_plan(plan.nodes, server=moto_server)

    assert summary.created[ROLE] == 2 and summary.created[ROLE_POLICY_ATTACHMENT] == 4
    assert summary.created[KMS_KEY] == summary.created[EKS_CLUSTER] == summary.created[EKS_NODE_GROUP] == 1
    assert summary.not_replayed == Counter(
        {EKS_ADDON: 1, EKS_ACCESS_ENTRY: 1, EKS_ACCESS_POLICY_ASSOCIATION: 1, ASG_ATTACHMENT: 1}
    )
    assert summary.reasons == {kind: NOT_REPLAYED[kind] for kind in summary.not_replayed}
    assert summary.implied == Counter({"EKS cluster security group": 1})
    assert summary.line().endswith(
        "; not replayed: 1 Attachment (moto's EKS node groups create no Auto Scaling group to attach a target group to), "
        "1 AccessEntry (moto's EKS has no access entries (CreateAccessEntry answers 404)), "
        "1 AccessPolicyAssociation (moto's EKS has no access entries to associate policies with), "
        "1 Addon (moto's EKS has no add-ons (CreateAddon answers 404))"
    ), summary.line()

    role_arn = f"arn:aws:iam::{summary.account_id}:role/alpha-cluster"
    assert summary.real[output(parts["cluster_role"], "arn")] == role_arn
    cluster = client(moto_server, summary, "eks").describe_cluster(name="alpha")["cluster"]
    assert cluster["roleArn"] == role_arn and cluster["version"] == "1.35"
    assert cluster["resourcesVpcConfig"]["subnetIds"] == [summary.real[node_id(s)] for s in net.private]
    assert cluster["resourcesVpcConfig"]["securityGroupIds"] == [summary.real[node_id(net.nodes)]]
    assert cluster["kubernetesNetworkConfig"]["serviceIpv4Cidr"] == "172.20.0.0/16"
    key_arn = cluster["encryptionConfig"][0]["provider"]["keyArn"]
    assert key_arn.startswith(f"arn:aws:kms:{EAST}:{summary.account_id}:key/")
    assert client(moto_server, summary, "kms").get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True

    group = client(moto_server, summary, "eks").describe_nodegroup(clusterName="alpha", nodegroupName="alpha-nodes")
    assert group["nodegroup"]["nodeRole"] == f"arn:aws:iam::{summary.account_id}:role/alpha-nodes"
    assert group["nodegroup"]["taints"] == [
        {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}
    ]
    assert group["nodegroup"]["scalingConfig"] == {"desiredSize": 2, "maxSize": 3, "minSize": 1}
    iam = client(moto_server, summary, "iam")
    attached = iam.list_attached_role_policies(RoleName="alpha-nodes")["AttachedPolicies"]
    assert sorted(p["PolicyName"] for p in attached) == sorted(NODE_POLICIES)

    cluster_group = summary.real[output(parts["cluster"], "vpcConfig")["clusterSecurityGroupId"]]
    (found,) = ec2(moto_server, summary).describe_security_groups(GroupIds=[cluster_group])["SecurityGroups"]
    assert found["GroupName"].startswith("eks-cluster-sg-alpha-")
    assert found["VpcId"] == summary.real[node_id(net.vpc)]
    assert rule_set(moto_server, summary, cluster_group) == {
        (False, "-1", -1, -1, cluster_group),  # EKS's own: members allow each other everything
        (True, "-1", -1, -1, "0.0.0.0/0"),
        (False, "tcp", 32379, 32379, "10.2.0.0/16"),  # the plan's
    }


def test_each_replay_has_an_account_of_its_own(moto_server: MotoServer) -> None:
    """The same named roles and cluster twice on one server: no collision, since moto keeps a state per account."""
    plan = Plan()
    eks(plan, network(plan, "alpha", 1))

    first = replay_plan(plan.nodes, server=moto_server)
    second = replay_plan(plan.nodes, server=moto_server)

    assert first.account_id != second.account_id
    assert first.created == second.created
    assert first.real[node_id(plan.nodes[0])] != second.real[node_id(plan.nodes[0])]


PROGRAM = """\
import json

import pulumi
import pulumi_aws as aws

west = aws.Provider("west", region="eu-west-1")
on = pulumi.ResourceOptions(provider=west)
identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(provider=west))
vpcs, subnets, tables = {}, {}, {}
for name, octet in (("alpha", 8), ("beta", 9)):
    vpcs[name] = aws.ec2.Vpc(name, cidr_block=f"10.{octet}.0.0/16", enable_dns_hostnames=True, tags={"Name": name}, opts=on)
    subnets[name] = [
        aws.ec2.Subnet(
            f"{name}-{zone}", vpc_id=vpcs[name].id, cidr_block=f"10.{octet}.{index}.0/24",
            availability_zone=f"eu-west-1{zone}", opts=on,
        )
        for index, zone in enumerate("ab")
    ]
    tables[name] = aws.ec2.RouteTable(name, vpc_id=vpcs[name].id, opts=on)
    for subnet in subnets[name]:
        aws.ec2.RouteTableAssociation(subnet._name, route_table_id=tables[name].id, subnet_id=subnet.id, opts=on)
peering = aws.ec2.VpcPeeringConnection(
    "alpha-beta", vpc_id=vpcs["alpha"].id, peer_vpc_id=vpcs["beta"].id, peer_owner_id=identity.account_id,
    auto_accept=True, opts=on,
)
aws.ec2.Route("alpha-to-beta", route_table_id=tables["alpha"].id, destination_cidr_block="10.9.0.0/16",
              vpc_peering_connection_id=peering.id, opts=on)
aws.ec2.Route("beta-to-alpha", route_table_id=tables["beta"].id, destination_cidr_block="10.8.0.0/16",
              vpc_peering_connection_id=peering.id, opts=on)
group = aws.ec2.SecurityGroup("nodes", vpc_id=vpcs["alpha"].id, description="nodes", opts=on)
aws.vpc.SecurityGroupIngressRule(
    "etcd", security_group_id=group.id, ip_protocol="tcp", from_port=32379, to_port=32379, cidr_ipv4="10.9.0.0/16",
    opts=on,
)
trust = lambda service: json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
})
cluster_role = aws.iam.Role("cluster", assume_role_policy=trust("eks.amazonaws.com"), opts=on)
node_role = aws.iam.Role("nodes", assume_role_policy=trust("ec2.amazonaws.com"), opts=on)
policy = aws.iam.RolePolicyAttachment(
    "cluster", role=cluster_role.name, policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy", opts=on
)
key = aws.kms.Key("secrets", description="alpha secrets", enable_key_rotation=True, opts=on)
cluster = aws.eks.Cluster(
    "alpha", role_arn=cluster_role.arn, version="1.35",
    vpc_config={"subnet_ids": [s.id for s in subnets["alpha"]], "endpoint_private_access": True},
    access_config={"authentication_mode": "API"},
    encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
    opts=pulumi.ResourceOptions(provider=west, depends_on=[policy]),
)
aws.eks.NodeGroup(
    "alpha", cluster_name=cluster.name, node_role_arn=node_role.arn, subnet_ids=[s.id for s in subnets["alpha"]],
    scaling_config={"desired_size": 2, "max_size": 3, "min_size": 1},
    taints=[{"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}], opts=on,
)
aws.vpc.SecurityGroupIngressRule(
    "cluster-etcd", security_group_id=cluster.vpc_config.cluster_security_group_id, ip_protocol="tcp",
    from_port=32379, to_port=32379, cidr_ipv4="10.9.0.0/16", opts=on,
)
balancer = aws.lb.LoadBalancer(
    "apiserver", load_balancer_type="network", internal=True,
    subnet_mappings=[
        {"subnet_id": s.id, "private_ipv4_address": f"10.8.{i}.10"} for i, s in enumerate(subnets["alpha"])
    ],
    opts=on,
)
target = aws.lb.TargetGroup(
    "apiserver", port=32379, protocol="TCP", vpc_id=vpcs["alpha"].id, health_check={"protocol": "TCP"}, opts=on
)
aws.lb.Listener(
    "apiserver", load_balancer_arn=balancer.arn, port=2379, protocol="TCP",
    default_actions=[{"type": "forward", "target_group_arn": target.arn}], opts=on,
)
"""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pulumi_aws's import warns of its own renames
def test_a_plan_as_the_planner_captures_it_replays(moto_server: MotoServer, tmp_path: Path) -> None:
    """Inputs (their wire names), ids, autonames, dependencies, the provider's region and the planner's account
    exactly as the planner records them, not as a test writes them."""
    (tmp_path / "__main__.py").write_text(PROGRAM)
    plan = run_program(tmp_path, StackSettings("harness", "test", tmp_path / "Pulumi.test.yaml", {}, frozenset()))

    summary = replay_captured(plan, server=moto_server)

    kinds = Counter(n.type for n in plan.nodes if n.custom and n.type.startswith("aws:"))
    assert summary.created == kinds, summary.line()
    assert summary.regions == Counter({"eu-west-1": kinds.total()})
    assert summary.functions == Counter({GET_CALLER_IDENTITY: 1})
    assert summary.implied == Counter({"EKS cluster security group": 1})
    by_type = {n.type: n for n in plan.nodes}  # the last of each type
    west = ec2(moto_server, summary, "eu-west-1")
    (found,) = west.describe_vpc_peering_connections(VpcPeeringConnectionIds=[summary.ids[by_type[PEERING].urn]])[
        "VpcPeeringConnections"
    ]
    assert found["Status"]["Code"] == "active"
    cluster = by_type[EKS_CLUSTER]
    assert node_id(cluster).startswith("alpha-")  # autonamed by the planner, created under that name
    described = client(moto_server, summary, "eks", "eu-west-1").describe_cluster(name=node_id(cluster))["cluster"]
    cluster_role = next(n for n in plan.nodes if (n.type, n.name) == (ROLE, "cluster"))
    assert described["roleArn"] == f"arn:aws:iam::{summary.account_id}:role/{node_id(cluster_role)}"  # autonamed too
    assert described["encryptionConfig"][0]["provider"]["keyArn"] == summary.ids[by_type[KMS_KEY].urn].join(
        (f"arn:aws:kms:eu-west-1:{summary.account_id}:key/", "")
    )
    cluster_group = summary.real[output(cluster, "vpcConfig")["clusterSecurityGroupId"]]
    assert (False, "tcp", 32379, 32379, "10.9.0.0/16") in rule_set(moto_server, summary, cluster_group, "eu-west-1")
    elb = client(moto_server, summary, "elbv2", "eu-west-1")
    (listener,) = elb.describe_listeners(LoadBalancerArn=summary.ids[by_type[LOAD_BALANCER].urn])["Listeners"]
    assert listener["DefaultActions"][0]["TargetGroupArn"] == summary.ids[by_type[TARGET_GROUP].urn]


# --- what moto refuses ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    build: Callable[[Plan], None]
    code: str
    operation: str
    resource: str
    kind: str


def _subnet_outside(plan: Plan) -> None:
    vpc = plan.add(VPC, "vpc", {"cidrBlock": "10.1.0.0/16"})
    plan.add(SUBNET, "stray", {"vpcId": vpc.id, "cidrBlock": "10.9.0.0/24", "availabilityZone": "us-east-1a"})


def _subnets_overlapping(plan: Plan) -> None:
    vpc = plan.add(VPC, "vpc", {"cidrBlock": "10.1.0.0/16"})
    plan.add(SUBNET, "first", {"vpcId": vpc.id, "cidrBlock": "10.1.0.0/20"})
    plan.add(SUBNET, "second", {"vpcId": vpc.id, "cidrBlock": "10.1.8.0/24"})


def _duplicate_rule(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    rule = {
        "securityGroupId": net.nodes.id,
        "ipProtocol": "tcp",
        "fromPort": 2379,
        "toPort": 2379,
        "cidrIpv4": "10.2.0.0/16",
    }
    plan.add(INGRESS_RULE, "etcd", rule)
    plan.add(INGRESS_RULE, "etcd-again", dict(rule, description="the same rule, described"))


def _duplicate_route(plan: Plan) -> None:
    alpha, beta, peering = peered_pair(plan)
    route(plan, alpha.routes, "alpha-to-beta-again", beta.cidr, vpcPeeringConnectionId=peering.id)


def _misspelt_managed_policy(plan: Plan) -> None:
    role = plan.add(ROLE, "nodes", {"name": "nodes", "assumeRolePolicy": EC2_TRUST})
    plan.add(
        ROLE_POLICY_ATTACHMENT, "cni", {"role": role.id, "policyArn": "arn:aws:iam::aws:policy/AmazonEKSCNIPolicyy"}
    )


def _node_group_without_cluster(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    role = plan.add(ROLE, "nodes", {"name": "nodes", "assumeRolePolicy": EC2_TRUST})
    plan.add(
        EKS_NODE_GROUP,
        "orphans",
        {"clusterName": "nowhere", "nodeRoleArn": output(role, "arn"), "subnetIds": [s.id for s in net.private]},
    )


def _two_clusters_one_name(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    eks(plan, net)
    first = next(n for n in plan.nodes if n.type == EKS_CLUSTER)
    plan.add(EKS_CLUSTER, "alpha-again", dict(first.inputs))


def _http_listener_on_nlb(plan: Plan) -> None:
    load_balancer(plan, network(plan, "alpha", 1), ["10.1.0.10", "10.1.16.10"], protocol="HTTP")


def _cross_region_auto_accept(plan: Plan) -> None:
    east, west = plan.provider("east", EAST), plan.provider("west", WEST)
    here = plan.add(VPC, "here", {"cidrBlock": "10.1.0.0/16"}, provider=east)
    there = plan.add(VPC, "there", {"cidrBlock": "10.2.0.0/16"}, provider=west)
    plan.add(
        PEERING,
        "across",
        {"vpcId": here.id, "peerVpcId": there.id, "peerRegion": WEST, "autoAccept": True},
        provider=east,
    )


def _peer_in_another_region_unnamed(plan: Plan) -> None:
    east, west = plan.provider("east", EAST), plan.provider("west", WEST)
    here = plan.add(VPC, "here", {"cidrBlock": "10.1.0.0/16"}, provider=east)
    there = plan.add(VPC, "there", {"cidrBlock": "10.2.0.0/16"}, provider=west)
    plan.add(PEERING, "across", {"vpcId": here.id, "peerVpcId": there.id}, provider=east)  # no peerRegion


def _node_group_without_subnets(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    parts = eks(plan, net)
    del parts["group"].inputs["subnetIds"]


REFUSALS = {
    "subnet-outside-its-vpc": Refusal(_subnet_outside, "InvalidSubnet.Range", "CreateSubnet", "stray", SUBNET),
    "overlapping-subnets": Refusal(_subnets_overlapping, "InvalidSubnet.Conflict", "CreateSubnet", "second", SUBNET),
    "duplicate-security-group-rule": Refusal(
        _duplicate_rule, "InvalidPermission.Duplicate", "AuthorizeSecurityGroupIngress", "etcd-again", INGRESS_RULE
    ),
    "duplicate-route": Refusal(_duplicate_route, "RouteAlreadyExists", "CreateRoute", "alpha-to-beta-again", ROUTE),
    "misspelt-aws-managed-policy": Refusal(
        _misspelt_managed_policy, "NoSuchEntity", "AttachRolePolicy", "cni", ROLE_POLICY_ATTACHMENT
    ),
    "node-group-of-no-cluster": Refusal(
        _node_group_without_cluster, "ResourceNotFoundException", "CreateNodegroup", "orphans", EKS_NODE_GROUP
    ),
    "two-clusters-one-name": Refusal(
        _two_clusters_one_name, "ResourceInUseException", "CreateCluster", "alpha-again", EKS_CLUSTER
    ),
    "http-listener-on-an-nlb": Refusal(
        _http_listener_on_nlb, "ValidationError", "CreateListener", "alpha-apiserver", LISTENER
    ),
    "auto-accept-across-regions": Refusal(
        _cross_region_auto_accept, "OperationNotPermitted", "AcceptVpcPeeringConnection", "across", PEERING
    ),
    "peer-vpc-in-another-region-without-peer-region": Refusal(
        _peer_in_another_region_unnamed, "InvalidVpcID.NotFound", "CreateVpcPeeringConnection", "across", PEERING
    ),
    "node-group-without-subnets": Refusal(  # botocore's own check, by the API model, before sending
        _node_group_without_subnets, "ParamValidationError", "CreateNodegroup", "alpha-nodes", EKS_NODE_GROUP
    ),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_what_aws_refuses_moto_refuses_and_the_replay_says_which_resource(
    moto_server: MotoServer, case: Refusal
) -> None:
    plan = Plan()
    case.build(plan)

    with pytest.raises(AwsRefused) as caught:
        replay_plan(plan.nodes, server=moto_server)

    refused = caught.value
    (culprit,) = [n for n in plan.nodes if (n.name, n.type) == (case.resource, case.kind)]
    assert (refused.code, refused.operation, refused.name, refused.urn) == (
        case.code,
        case.operation,
        case.resource,
        culprit.urn,
    ), str(refused)
    assert case.code in str(refused) and culprit.urn in str(refused)


def test_a_refusal_carries_the_real_parameters(moto_server: MotoServer) -> None:
    plan = Plan()
    _subnet_outside(plan)

    with pytest.raises(AwsRefused) as caught:
        replay_plan(plan.nodes, server=moto_server)

    refused = caught.value
    assert (refused.service, refused.region, refused.status) == ("ec2", EAST, 400)
    assert refused.params["CidrBlock"] == "10.9.0.0/24"
    assert refused.params["VpcId"].startswith("vpc-") and refused.params["VpcId"] != plan.nodes[0].id  # the real one
    assert refused.message == "The CIDR '10.9.0.0/24' is invalid."


def _route_to_missing_peering(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    route(plan, net.routes, "to-nowhere", "10.2.0.0/16", vpcPeeringConnectionId="pcx-0123456789abcdef0")


def test_a_reference_to_nothing_of_the_plan_is_refused_by_the_replay_or_by_moto(moto_server: MotoServer) -> None:
    plan = Plan()
    _route_to_missing_peering(plan)
    with pytest.raises(DanglingReference, match=r"to-nowhere.vpcPeeringConnectionId = 'pcx-0123456789abcdef0'"):
        replay_plan(plan.nodes, server=moto_server)

    with pytest.raises(AwsRefused) as caught:
        replay_plan(plan.nodes, server=moto_server, strict_references=False)
    assert (caught.value.code, caught.value.name) == ("InvalidVpcPeeringConnectionId.NotFound", "to-nowhere")


def test_an_arn_of_the_account_naming_no_resource_of_the_plan_is_refused(moto_server: MotoServer) -> None:
    """moto's EKS takes any well-formed role ARN; the replay does not."""
    plan = Plan()
    net = network(plan, "alpha", 1)
    role_arn = f"arn:aws:iam::{FABRICATED_ACCOUNT}:role/not-in-the-plan"
    plan.add(
        EKS_CLUSTER,
        "alpha",
        {"name": "alpha", "roleArn": role_arn, "vpcConfig": {"subnetIds": [s.id for s in net.private]}},
    )
    identity = {"token": GET_CALLER_IDENTITY, "args": {}, "result": {"accountId": FABRICATED_ACCOUNT}}

    with pytest.raises(DanglingReference, match=r"alpha.roleArn = 'arn:aws:iam::\d{12}:role/not-in-the-plan'"):
        replay_plan(plan.nodes, [identity], server=moto_server)


def test_a_request_moto_fails_on_is_a_moto_failure_not_a_refusal(moto_server: MotoServer) -> None:
    plan = Plan()
    plan.add(
        TGW_ROUTE,
        "lost",
        {"destinationCidrBlock": "10.9.0.0/16", "transitGatewayRouteTableId": "tgw-rtb-0123456789abcdef0"},
    )

    with pytest.raises(MotoFailure, match=r"lost \(urn:.*\): moto failed on ec2 CreateTransitGatewayRoute"):
        replay_plan(plan.nodes, server=moto_server, strict_references=False)


# --- what moto does not check --------------------------------------------------------------------------------


def _peering_overlap(plan: Plan) -> None:
    here = plan.add(VPC, "here", {"cidrBlock": "10.1.0.0/16"})
    there = plan.add(VPC, "there", {"cidrBlock": "10.1.128.0/17"})
    plan.add(PEERING, "overlapping", {"vpcId": here.id, "peerVpcId": there.id, "autoAccept": True})


def _nlb_address_outside_subnet(plan: Plan) -> None:
    load_balancer(plan, network(plan, "alpha", 1), ["10.9.0.10", "10.1.16.0"])  # another VPC's; a network address


def _nlb_two_subnets_one_zone(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    net.private[1].inputs["availabilityZone"] = f"{EAST}a"
    load_balancer(plan, net, ["10.1.0.10", "10.1.16.10"])


def _eks_with_nothing_real(plan: Plan) -> None:
    plan.add(
        EKS_CLUSTER,
        "alpha",
        {
            "name": "alpha",
            "roleArn": "arn:aws:iam::123456789012:role/nobody",
            "version": "0.1",
            "vpcConfig": {"subnetIds": ["subnet-0123456789abcdef0"]},  # one subnet, one zone, none of them real
            "kubernetesNetworkConfig": {"serviceIpv4Cidr": "10.1.0.0/16"},
        },
    )


def _eks_service_range_on_the_vpc(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    role = plan.add(ROLE, "cluster", {"name": "cluster", "assumeRolePolicy": EKS_TRUST})
    vpc_config = {"subnetIds": [s.id for s in net.private]}
    plan.add(
        EKS_CLUSTER,
        "alpha",
        {
            "name": "alpha",
            "roleArn": output(role, "arn"),
            "vpcConfig": vpc_config,
            "kubernetesNetworkConfig": {"serviceIpv4Cidr": net.cidr},
        },
    )


def _node_group_inverted_scaling(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    parts = eks(plan, net)
    parts["group"].inputs["scalingConfig"] = {"desiredSize": 2, "maxSize": 1, "minSize": 3}
    parts["group"].inputs["taints"] = [{"key": "k", "value": "v", "effect": "NoExecute"}]  # Kubernetes' spelling


def _subnet_in_another_region(plan: Plan) -> None:
    vpc = plan.add(VPC, "vpc", {"cidrBlock": "10.1.0.0/16"})
    plan.add(SUBNET, "far", {"vpcId": vpc.id, "cidrBlock": "10.1.0.0/24", "availabilityZone": "eu-west-1a"})


def _route_to_missing_nat(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    route(plan, net.routes, "default", "0.0.0.0/0", natGatewayId="nat-0123456789abcdef0")


def _attachment_of_missing_vpc(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    gateway = plan.add(TRANSIT_GATEWAY, "mesh", {})
    subnets = [s.id for s in net.private]
    plan.add(
        TGW_VPC_ATTACHMENT,
        "ghost",
        {"transitGatewayId": gateway.id, "vpcId": "vpc-0123456789abcdef0", "subnetIds": subnets},
    )


def _route_via_someone_elses_peering(plan: Plan) -> None:
    _, beta, peering = peered_pair(plan)
    gamma = network(plan, "gamma", 3)
    route(plan, gamma.routes, "gamma-via-alpha-beta", beta.cidr, vpcPeeringConnectionId=peering.id)


def _association_across_vpcs(plan: Plan) -> None:
    alpha, beta = network(plan, "alpha", 1), network(plan, "beta", 2)
    plan.add(ROUTE_TABLE_ASSOCIATION, "crossed", {"routeTableId": alpha.routes.id, "subnetId": beta.public.id})


def _nonsense_rule(plan: Plan) -> None:
    net = network(plan, "alpha", 1)
    rule = {
        "securityGroupId": net.nodes.id,
        "ipProtocol": "tcpx",
        "fromPort": 2380,
        "toPort": 2379,
        "cidrIpv4": "10.2.0.0/16",
    }
    plan.add(INGRESS_RULE, "nonsense", rule)


def _duplicate_tgw_route(plan: Plan) -> None:
    gateway = plan.add(TRANSIT_GATEWAY, "mesh", {})
    table = plan.add(TGW_ROUTE_TABLE, "mesh", {"transitGatewayId": gateway.id})
    for name in ("sink", "sink-again"):
        plan.add(
            TGW_ROUTE,
            name,
            {"destinationCidrBlock": "10.9.0.0/16", "transitGatewayRouteTableId": table.id, "blackhole": True},
        )


def _association_on_top_of_the_default_one(plan: Plan) -> None:
    """The transit gateway associates attachments with its default table (its default), and the attachment does
    not opt out: AWS refuses a second association (Resource.AlreadyAssociated); moto moves it."""
    net = network(plan, "alpha", 1)
    gateway = plan.add(TRANSIT_GATEWAY, "mesh", {})
    table = plan.add(TGW_ROUTE_TABLE, "mesh", {"transitGatewayId": gateway.id})
    subnets = [s.id for s in net.private]
    attachment = plan.add(
        TGW_VPC_ATTACHMENT, "alpha", {"transitGatewayId": gateway.id, "vpcId": net.vpc.id, "subnetIds": subnets}
    )
    link = {"transitGatewayRouteTableId": table.id, "transitGatewayAttachmentId": attachment.id}
    plan.add(TGW_ROUTE_TABLE_ASSOCIATION, "alpha", link)


GAPS: dict[str, tuple[Callable[[Plan], None], bool]] = {
    "peering-of-overlapping-cidrs": (_peering_overlap, True),
    "nlb-address-outside-its-subnet": (_nlb_address_outside_subnet, True),
    "nlb-two-subnets-in-one-zone": (_nlb_two_subnets_one_zone, True),
    "eks-role-subnets-version-not-checked": (_eks_with_nothing_real, False),
    "eks-service-range-overlapping-the-vpc": (_eks_service_range_on_the_vpc, True),
    "node-group-min-above-max-and-bad-taint-effect": (_node_group_inverted_scaling, True),
    "subnet-zone-of-another-region": (_subnet_in_another_region, True),
    "route-to-a-missing-nat-gateway": (_route_to_missing_nat, False),
    "tgw-attachment-of-a-missing-vpc": (_attachment_of_missing_vpc, False),
    "route-via-a-peering-of-other-vpcs": (_route_via_someone_elses_peering, True),
    "route-table-associated-across-vpcs": (_association_across_vpcs, True),
    "rule-with-unknown-protocol-and-reversed-ports": (_nonsense_rule, True),
    "duplicate-tgw-route": (_duplicate_tgw_route, True),
    "tgw-association-on-top-of-the-default-one": (_association_on_top_of_the_default_one, True),
}
"""Plans AWS would refuse (or, for the overlapping peering, fail) that moto accepts: (the plan, whether the replay's
own reference check is on; off where it would catch the case first)."""


@pytest.mark.parametrize(("build", "strict"), GAPS.values(), ids=GAPS.keys())
def test_what_moto_does_not_check(moto_server: MotoServer, build: Callable[[Plan], None], strict: bool) -> None:
    """Pinned, so that a moto that starts checking shows up here (and the replay's guarantees can be widened)."""
    plan = Plan()
    build(plan)

    summary = replay_plan(plan.nodes, server=moto_server, strict_references=strict)

    assert sum(summary.created.values()) == len([n for n in plan.nodes if n.type not in NOT_REPLAYED]), summary.line()


def test_moto_neither_checks_nor_keeps_an_nlbs_private_addresses(moto_server: MotoServer) -> None:
    plan = Plan()
    parts = load_balancer(plan, network(plan, "alpha", 1), ["10.9.0.10", "10.1.16.10"])

    summary = replay_plan(plan.nodes, server=moto_server)

    elb = client(moto_server, summary, "elbv2")
    (balancer,) = elb.describe_load_balancers(LoadBalancerArns=[summary.real[node_id(parts["balancer"])]])[
        "LoadBalancers"
    ]
    assert [z.get("LoadBalancerAddresses") for z in balancer["AvailabilityZones"]] == [None, None]
    assert ":loadbalancer/app/" in balancer["LoadBalancerArn"]  # AWS's is .../net/... for a network load balancer


def test_an_overlapping_peering_is_even_active_in_moto(moto_server: MotoServer) -> None:
    plan = Plan()
    _peering_overlap(plan)

    summary = replay_plan(plan.nodes, server=moto_server)

    peering = summary.ids[plan.nodes[-1].urn]
    (connection,) = ec2(moto_server, summary).describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering])[
        "VpcPeeringConnections"
    ]
    assert connection["Status"]["Code"] == "active"  # AWS: failed, "overlapping CIDRs"


# --- what the harness cannot translate -----------------------------------------------------------------------


def test_what_the_harness_cannot_translate_is_an_error_not_a_silent_drop(moto_server: MotoServer) -> None:
    plan = Plan()
    plan.add(VPC, "vpc", {"cidrBlock": "10.1.0.0/16", "someFutureProperty": True})
    with pytest.raises(
        HarnessError,
        match=r"vpc \(aws:ec2/vpc:Vpc\): the harness does not translate input\(s\) \['someFutureProperty'\]",
    ):
        replay_plan(plan.nodes, server=moto_server)

    plan = Plan()
    plan.add(VPC, "vpc", {"cidrBlock": "10.1.0.0/16"})
    plan.add(LOAD_BALANCER, "lb", {"subnetMappings": [{"subnetId": "x", "outpostId": "op-1"}], "internal": True})
    with pytest.raises(HarnessError, match=r"lb.subnetMappings\[0\]: the harness does not translate \['outpostId'\]"):
        replay_plan(plan.nodes, server=moto_server, strict_references=False)

    plan = Plan()
    account = MotoServer.new_account()
    plan.add(VPC, "vpc", {"cidrBlock": "10.1.0.0/16"})
    plan.add("aws:ec2/vpcEndpoint:VpcEndpoint", "endpoint", {"vpcId": plan.nodes[0].id})
    with pytest.raises(HarnessError, match=r"endpoint: the harness does not know aws:ec2/vpcEndpoint:VpcEndpoint"):
        replay_plan(plan.nodes, server=moto_server, account_id=account)
    vpcs = moto_server.client("ec2", EAST, account_id=account).describe_vpcs()["Vpcs"]
    assert [v["IsDefault"] for v in vpcs] == [True]  # refused before any request: only moto's default VPC

    plan = Plan()
    plan.add(VPC, "vpc", {"cidrBlock": UNKNOWN})
    with pytest.raises(HarnessError, match=r"vpc.cidrBlock is unknown in the plan"):
        replay_plan(plan.nodes, server=moto_server)

    lookup = {"token": "aws:ec2/getVpc:getVpc", "args": {"default": True}, "result": {"id": "vpc-0123456789abcdef0"}}
    with pytest.raises(HarnessError, match=r"does not know provider function aws:ec2/getVpc:getVpc"):
        replay_plan([], [lookup], server=moto_server)


def test_secrets_are_unwrapped_and_ids_inside_text_are_mapped(moto_server: MotoServer) -> None:
    """A role's trust policy naming another role by ARN and the account, as a program builds it from getCallerIdentity."""
    plan = Plan()
    first = plan.add(ROLE, "first", {"name": "first", "assumeRolePolicy": EKS_TRUST})
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": output(first, "arn")}, "Action": "sts:AssumeRole"},
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{FABRICATED_ACCOUNT}:root"},
                    "Action": "sts:AssumeRole",
                },
            ],
        }
    )
    plan.add(ROLE, "second", {"name": "second", "assumeRolePolicy": Secret(policy)}, depends_on=[first])
    identity = {"token": GET_CALLER_IDENTITY, "args": {}, "result": {"accountId": FABRICATED_ACCOUNT}}

    summary = replay_plan(plan.nodes, [identity], server=moto_server)

    role = client(moto_server, summary, "iam").get_role(RoleName="second")["Role"]
    principals = [s["Principal"]["AWS"] for s in role["AssumeRolePolicyDocument"]["Statement"]]
    assert principals == [f"arn:aws:iam::{summary.account_id}:role/first", f"arn:aws:iam::{summary.account_id}:root"]


def test_the_server_starts_fast_and_stops(moto_server: MotoServer) -> None:
    assert moto_server.timings["ready"] < 10, moto_server.timings
    with MotoServer() as server:
        assert server.port not in (0, moto_server.port)
        assert server.timings["start"] <= server.timings["ready"] < 10
        account = server.new_account()
        assert server.client("sts", account_id=account).get_caller_identity()["Account"] == account
    with pytest.raises(RuntimeError, match="not running"):
        server.client("sts", account_id=account)
