"""The policy pack's AWS (EKS) rules: each called directly on compliant and violating resources, values unknown in a
preview, and the VPC-connection rule as the planner shows it a captured plan.
"""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.runtime import rpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from clustermesh.planner.graph import UNKNOWN, Node
from clustermesh.planner.policy_check import check
from clustermesh.planner.runner import CapturedPlan
from policy.rules import POLICIES
from tests.policy_run import resource_rule, stack_rule

RULES = {p.name: p for p in POLICIES}
STACK_PREFIX = "urn:pulumi:dev::clustermesh::"
MESH_CLUSTER = "clustermesh:index:MeshCluster"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
ALB_LOAD_BALANCER = "aws:alb/loadBalancer:LoadBalancer"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
VPC = "aws:ec2/vpc:Vpc"
PEERING = "aws:ec2/vpcPeeringConnection:VpcPeeringConnection"
ACCEPTER = "aws:ec2/vpcPeeringConnectionAccepter:VpcPeeringConnectionAccepter"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
TGW_ATTACHMENT = "aws:ec2transitgateway/vpcAttachment:VpcAttachment"
TGW_PEERING = "aws:ec2transitgateway/peeringAttachment:PeeringAttachment"
SECURITY_GROUP_ID = "sg-0123456789abcdef0"
VPC_IDS = {"a": "vpc-0a1a1a1a1a1a1a1a1", "b": "vpc-0b2b2b2b2b2b2b2b2", "c": "vpc-0c3c3c3c3c3c3c3c3"}
VPC_CIDRS = {"a": "10.10.0.0/16", "b": "10.20.0.0/16", "c": "10.30.0.0/16"}
TGW_1, TGW_2 = "tgw-0f1f1f1f1f1f1f1f1", "tgw-0e2e2e2e2e2e2e2e2"
KEY_ARN = "arn:aws:kms:eu-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SUBNETS = ["subnet-0a0a0a0a0a0a0a0a0", "subnet-0b0b0b0b0b0b0b0b0"]


# --- resources as the engine shows them to a policy ------------------------------------------------------------


def _urn(type_: str, name: str) -> str:
    return f"{STACK_PREFIX}{type_}::{name}"


def _provider(*, default: bool = False) -> PolicyProviderResource:
    name = "default_7_51_1" if default else "a-aws"
    return PolicyProviderResource("pulumi:providers:aws", {}, _urn("pulumi:providers:aws", name), name)


def _resource(
    type_: str,
    name: str,
    props: dict[str, Any],
    *,
    provider: PolicyProviderResource | None = None,
    dependencies: list[PolicyResource] | None = None,
    property_dependencies: dict[str, list[PolicyResource]] | None = None,
) -> PolicyResource:
    """A resource as a stack policy sees it: `dependencies` are all the resources its inputs came from (all the
    planner records), `property_dependencies` the same by input (what the engine records besides)."""
    opts = PolicyResourceOptions(False, [], False, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    return PolicyResource(
        type_,
        unknown_checking_proxy(props),
        _urn(type_, name),
        name,
        opts,
        provider,
        None,
        dependencies or [],
        property_dependencies or {},
    )


def _aws(type_: str, name: str = "a", **props: Any) -> PolicyResource:
    return _resource(type_, name, props, provider=_provider())


def test_aws_rules_are_registered_and_mandatory() -> None:
    kinds = {
        "aws-no-world-ingress": ResourceValidationPolicy,
        "eks-private-endpoint": ResourceValidationPolicy,
        "eks-secrets-encrypted": ResourceValidationPolicy,
        "nlb-internal": ResourceValidationPolicy,
        "imdsv2-required": ResourceValidationPolicy,
        "mesh-vpcs-connected": StackValidationPolicy,
    }
    for name, kind in kinds.items():
        assert isinstance(RULES[name], kind), name
        assert RULES[name].enforcement_level is EnforcementLevel.MANDATORY, name


# --- aws-no-world-ingress -----------------------------------------------------------------------------------------

WORLD = "aws-no-world-ingress"


def _ingress_rule(**props: Any) -> PolicyResource:
    return _aws(INGRESS_RULE, "a-apiserver", securityGroupId=SECURITY_GROUP_ID, **props)


def _legacy_rule(**props: Any) -> PolicyResource:
    return _aws(SECURITY_GROUP_RULE, "a-legacy", securityGroupId=SECURITY_GROUP_ID, **props)


def _group(*ingress: Any, **props: Any) -> PolicyResource:
    return _aws(SECURITY_GROUP, "a-nodes", vpcId=VPC_IDS["a"], ingress=list(ingress), **props)


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            _ingress_rule(ipProtocol="tcp", fromPort=32379, toPort=32379, cidrIpv4="0.0.0.0/0"),
            ["ingress rule admits the whole internet (cidrIpv4 0.0.0.0/0) to tcp port 32379"],
        ),
        (
            _ingress_rule(ipProtocol="-1", cidrIpv6="::/0"),
            ["ingress rule admits the whole internet (cidrIpv6 ::/0) to every protocol and port"],
        ),
        (  # host bits do not narrow a /0
            _ingress_rule(ipProtocol="udp", fromPort=8472, toPort=8472, cidrIpv4="203.0.113.7/0"),
            ["ingress rule admits the whole internet (cidrIpv4 203.0.113.7/0) to udp port 8472"],
        ),
        (
            _ingress_rule(ipProtocol="icmp", fromPort=8, toPort=-1, cidrIpv4="0.0.0.0/0"),
            ["ingress rule admits the whole internet (cidrIpv4 0.0.0.0/0) to icmp type 8"],
        ),
        (  # the ports are not known yet, but the world is let in whatever they turn out to be
            _ingress_rule(ipProtocol="tcp", fromPort=rpc.UNKNOWN, toPort=rpc.UNKNOWN, cidrIpv4="0.0.0.0/0"),
            ["ingress rule admits the whole internet (cidrIpv4 0.0.0.0/0) to tcp, ports not known yet"],
        ),
        (
            _legacy_rule(
                type="ingress",
                protocol="tcp",
                fromPort=30000,
                toPort=32767,
                cidrBlocks=["10.20.0.0/16", "0.0.0.0/0"],
                ipv6CidrBlocks=["::/0"],
            ),
            [
                "ingress rule admits the whole internet (cidrBlocks 0.0.0.0/0; ipv6CidrBlocks ::/0) to tcp ports "
                "30000-32767"
            ],
        ),
        (
            _legacy_rule(type="ingress", protocol="all", fromPort=0, toPort=0, cidrBlocks=["0.0.0.0/0"]),
            ["ingress rule admits the whole internet (cidrBlocks 0.0.0.0/0) to every protocol and port"],
        ),
        (
            _group(
                {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.20.0.0/16"]},
                {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]},
                {"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]},
            ),
            [
                "inline ingress rule 1 admits the whole internet (cidrBlocks 0.0.0.0/0) to tcp port 22",
                "inline ingress rule 2 admits the whole internet (ipv6CidrBlocks ::/0) to every protocol and port",
            ],
        ),
    ],
)
def test_world_ingress_is_refused(resource: PolicyResource, expected: list[str]) -> None:
    assert resource_rule(WORLD, resource) == expected


@pytest.mark.parametrize(
    "resource",
    [
        _ingress_rule(ipProtocol="tcp", fromPort=32379, toPort=32379, cidrIpv4="10.20.0.0/16"),
        _ingress_rule(ipProtocol="-1", referencedSecurityGroupId="sg-0fedcba9876543210"),
        _ingress_rule(ipProtocol="tcp", fromPort=443, toPort=443, prefixListId="pl-0123456789abcdef0"),
        _ingress_rule(ipProtocol="tcp", fromPort=4240, toPort=4240, cidrIpv6="fd00:10::/64"),
        _legacy_rule(type="egress", protocol="-1", fromPort=0, toPort=0, cidrBlocks=["0.0.0.0/0"]),  # egress: not ours
        _legacy_rule(type="ingress", protocol="tcp", fromPort=443, toPort=443, sourceSecurityGroupId=SECURITY_GROUP_ID),
        _group({"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}, egress=[{"cidrBlocks": ["0.0.0.0/0"]}]),
        _group(),
    ],
)
def test_ingress_from_a_range_a_group_or_a_prefix_list_passes(resource: PolicyResource) -> None:
    assert resource_rule(WORLD, resource) == []


def test_world_ingress_says_nothing_of_what_a_preview_cannot_know() -> None:
    """A CIDR computed from another resource (a peer VPC's) is not known before that resource exists."""
    assert resource_rule(WORLD, _ingress_rule(ipProtocol="tcp", fromPort=22, toPort=22, cidrIpv4=rpc.UNKNOWN)) == []
    assert resource_rule(WORLD, _legacy_rule(type=rpc.UNKNOWN, protocol="-1", cidrBlocks=["0.0.0.0/0"])) == []
    assert resource_rule(WORLD, _legacy_rule(type="ingress", protocol="-1", cidrBlocks=[rpc.UNKNOWN])) == []
    assert resource_rule(WORLD, _legacy_rule(type="ingress", protocol="-1", cidrBlocks=rpc.UNKNOWN)) == []
    assert resource_rule(WORLD, _aws(SECURITY_GROUP, "a-nodes", ingress=rpc.UNKNOWN)) == []
    assert resource_rule(WORLD, _group({"protocol": "tcp", "cidrBlocks": rpc.UNKNOWN}, rpc.UNKNOWN)) == []


# --- eks-private-endpoint -------------------------------------------------------------------------------------------

ENDPOINT = "eks-private-endpoint"


def _eks(vpc_config: Any = None, **props: Any) -> PolicyResource:
    config = {"subnetIds": SUBNETS, **(vpc_config or {})} if isinstance(vpc_config, dict | None) else vpc_config
    return _aws(EKS_CLUSTER, "a-eks", roleArn="arn:aws:iam::111122223333:role/a-eks", vpcConfig=config, **props)


@pytest.mark.parametrize(
    ("vpc_config", "expected"),
    [
        (
            {"endpointPrivateAccess": False, "endpointPublicAccess": False},
            [
                "the cluster's API server has no private endpoint (vpcConfig.endpointPrivateAccess false): nodes and "
                "peers in the VPC would reach it through the public one"
            ],
        ),
        (
            {},
            [
                "the cluster's API server has no private endpoint (vpcConfig.endpointPrivateAccess not set, and EKS "
                "defaults it to false): nodes and peers in the VPC would reach it through the public one",
                "the cluster's API server endpoint is public (vpcConfig.endpointPublicAccess not set, and EKS defaults "
                "it to true) without publicAccessCidrs, which EKS then sets to 0.0.0.0/0: the whole internet reaches it",
            ],
        ),
        (
            {"endpointPrivateAccess": True, "endpointPublicAccess": True, "publicAccessCidrs": []},
            [
                "the cluster's API server endpoint is public (vpcConfig.endpointPublicAccess true) without "
                "publicAccessCidrs, which EKS then sets to 0.0.0.0/0: the whole internet reaches it"
            ],
        ),
        (
            {"endpointPrivateAccess": True, "publicAccessCidrs": ["198.51.100.0/24", "0.0.0.0/0"]},
            ["the cluster's public API server endpoint admits the whole internet (publicAccessCidrs 0.0.0.0/0)"],
        ),
    ],
)
def test_eks_endpoint_without_private_access_or_open_to_the_world_is_refused(
    vpc_config: dict[str, Any], expected: list[str]
) -> None:
    assert resource_rule(ENDPOINT, _eks(vpc_config)) == expected


@pytest.mark.parametrize(
    "vpc_config",
    [
        {"endpointPrivateAccess": True, "endpointPublicAccess": False},
        {"endpointPrivateAccess": True, "endpointPublicAccess": False, "publicAccessCidrs": ["0.0.0.0/0"]},  # off
        {"endpointPrivateAccess": True, "endpointPublicAccess": True, "publicAccessCidrs": ["198.51.100.0/24"]},
        {"endpointPrivateAccess": True, "publicAccessCidrs": ["198.51.100.7/32", "2001:db8::/48"]},
    ],
)
def test_eks_private_endpoint_with_a_closed_or_restricted_public_one_passes(vpc_config: dict[str, Any]) -> None:
    assert resource_rule(ENDPOINT, _eks(vpc_config)) == []


def test_eks_endpoint_says_nothing_of_what_a_preview_cannot_know() -> None:
    assert resource_rule(ENDPOINT, _eks(rpc.UNKNOWN)) == []
    unknown_access = {"endpointPrivateAccess": rpc.UNKNOWN, "endpointPublicAccess": rpc.UNKNOWN}
    assert resource_rule(ENDPOINT, _eks(unknown_access)) == []
    unknown_cidrs = {"endpointPrivateAccess": True, "publicAccessCidrs": rpc.UNKNOWN}
    assert resource_rule(ENDPOINT, _eks(unknown_cidrs)) == []
    an_unknown_cidr = {"endpointPrivateAccess": True, "publicAccessCidrs": [rpc.UNKNOWN]}
    assert resource_rule(ENDPOINT, _eks(an_unknown_cidr)) == []


# --- eks-secrets-encrypted ------------------------------------------------------------------------------------------

ENCRYPTED = "eks-secrets-encrypted"
PRIVATE = {"endpointPrivateAccess": True, "endpointPublicAccess": False}


def test_eks_secrets_without_a_kms_key_are_refused() -> None:
    assert resource_rule(ENCRYPTED, _eks(PRIVATE)) == [
        "the cluster has no encryptionConfig: its Secrets are not envelope-encrypted with a KMS key of the stack's "
        '(give resources ["secrets"] and provider.keyArn)'
    ]
    elsewhere = _eks(PRIVATE, encryptionConfig={"provider": {"keyArn": KEY_ARN}, "resources": ["configmaps"]})
    assert resource_rule(ENCRYPTED, elsewhere) == [
        'encryptionConfig does not name "secrets" among its resources (it names configmaps)'
    ]
    keyless = _eks(PRIVATE, encryptionConfig={"provider": {}, "resources": ["secrets"]})
    assert resource_rule(ENCRYPTED, keyless) == [
        "encryptionConfig names no provider.keyArn: no KMS key envelope-encrypts the cluster's Secrets"
    ]


def test_eks_secrets_encrypted_with_a_kms_key_pass() -> None:
    encrypted = _eks(PRIVATE, encryptionConfig={"provider": {"keyArn": KEY_ARN}, "resources": ["secrets"]})
    assert resource_rule(ENCRYPTED, encrypted) == []


def test_eks_secrets_encryption_says_nothing_of_what_a_preview_cannot_know() -> None:
    """The key is usually made in the same update: its ARN is not known before."""
    assert resource_rule(ENCRYPTED, _eks(PRIVATE, encryptionConfig=rpc.UNKNOWN)) == []
    pending_key = {"provider": {"keyArn": rpc.UNKNOWN}, "resources": ["secrets"]}
    assert resource_rule(ENCRYPTED, _eks(PRIVATE, encryptionConfig=pending_key)) == []
    pending_resources = {"provider": {"keyArn": KEY_ARN}, "resources": rpc.UNKNOWN}
    assert resource_rule(ENCRYPTED, _eks(PRIVATE, encryptionConfig=pending_resources)) == []


# --- nlb-internal ---------------------------------------------------------------------------------------------------

NLB = "nlb-internal"


def _load_balancer(type_: str = LOAD_BALANCER, **props: Any) -> PolicyResource:
    mappings = [{"subnetId": SUBNETS[0], "privateIpv4Address": "10.10.1.10"}]
    return _aws(type_, "a-apiserver", subnetMappings=mappings, **props)


def test_an_internet_facing_network_load_balancer_is_refused() -> None:
    explicit = _load_balancer(loadBalancerType="network", internal=False)
    assert resource_rule(NLB, explicit) == [
        "the network load balancer is internet-facing (internal false): it gets public addresses, and the "
        "clustermesh-apiserver behind it serves the mesh's etcd"
    ]
    by_default = _load_balancer(ALB_LOAD_BALANCER, loadBalancerType="network")  # the alb alias is the same resource
    assert resource_rule(NLB, by_default) == [
        "the network load balancer is internet-facing (internal not set, and it defaults to false): it gets public "
        "addresses, and the clustermesh-apiserver behind it serves the mesh's etcd"
    ]


@pytest.mark.parametrize(
    "props",
    [
        {"loadBalancerType": "network", "internal": True},
        {"loadBalancerType": "application", "internal": False},  # not a network load balancer
        {},  # application, by default
        {"loadBalancerType": "network", "internal": rpc.UNKNOWN},
        {"loadBalancerType": rpc.UNKNOWN, "internal": False},
    ],
)
def test_an_internal_network_load_balancer_or_another_type_passes(props: dict[str, Any]) -> None:
    assert resource_rule(NLB, _load_balancer(**props)) == []


# --- imdsv2-required ------------------------------------------------------------------------------------------------

IMDS = "imdsv2-required"
IMDSV1 = (
    "the {} does not require IMDSv2 (metadataOptions.httpTokens {}): IMDSv1 answers any process that can reach "
    '169.254.169.254, a pod or an SSRF among them, with the node role\'s credentials; set "required"'
)
NOT_SET = "not set, so the AMI or the account default decides"
NODE_GROUP_AMI = (
    "the node group has no launch template and its AMI type ({}) does not require IMDSv2 by default; use an AL2023_* "
    'AMI type or a launch template with metadataOptions.httpTokens "required"'
)


def _node_group(**props: Any) -> PolicyResource:
    scaling = {"desiredSize": 2, "maxSize": 3, "minSize": 1}
    return _aws(
        NODE_GROUP,
        "a-nodes",
        clusterName="a",
        nodeRoleArn="arn:aws:iam::111122223333:role/a-nodes",
        subnetIds=SUBNETS,
        scalingConfig=scaling,
        **props,
    )


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (_aws(LAUNCH_TEMPLATE, "a-nodes", imageId="ami-0123456789abcdef0"), IMDSV1.format("launch template", NOT_SET)),
        (
            _aws(LAUNCH_TEMPLATE, "a-nodes", metadataOptions={"httpTokens": "optional", "httpPutResponseHopLimit": 2}),
            IMDSV1.format("launch template", "'optional'"),
        ),
        (
            _aws(LAUNCH_TEMPLATE, "a-nodes", metadataOptions={"httpEndpoint": "enabled"}),
            IMDSV1.format("launch template", NOT_SET),
        ),
        (_aws(INSTANCE, "bastion", ami="ami-0123456789abcdef0"), IMDSV1.format("instance", NOT_SET)),
        (_node_group(amiType="AL2_x86_64"), NODE_GROUP_AMI.format("AL2_x86_64")),
        (_node_group(amiType="BOTTLEROCKET_x86_64"), NODE_GROUP_AMI.format("BOTTLEROCKET_x86_64")),
        (_node_group(), NODE_GROUP_AMI.format("not set, so EKS picks one by Kubernetes version")),
    ],
)
def test_instances_that_may_answer_imdsv1_are_refused(resource: PolicyResource, expected: str) -> None:
    assert resource_rule(IMDS, resource) == [expected]


@pytest.mark.parametrize(
    "resource",
    [
        _aws(LAUNCH_TEMPLATE, "a-nodes", metadataOptions={"httpTokens": "required", "httpPutResponseHopLimit": 2}),
        _aws(LAUNCH_TEMPLATE, "a-nodes", metadataOptions={"httpEndpoint": "disabled"}),  # no metadata service at all
        _aws(INSTANCE, "bastion", metadataOptions={"httpTokens": "required"}),
        _aws(INSTANCE, "a-node-0", launchTemplate={"id": "lt-0123456789abcdef0"}),  # the template is checked itself
        _node_group(launchTemplate={"id": "lt-0123456789abcdef0", "version": "1"}),  # likewise
        _node_group(amiType="AL2023_x86_64_STANDARD"),
        _node_group(amiType="AL2023_ARM_64_STANDARD"),
    ],
)
def test_instances_that_require_imdsv2_pass(resource: PolicyResource) -> None:
    assert resource_rule(IMDS, resource) == []


def test_imdsv2_says_nothing_of_what_a_preview_cannot_know() -> None:
    assert resource_rule(IMDS, _aws(LAUNCH_TEMPLATE, "a-nodes", metadataOptions=rpc.UNKNOWN)) == []
    assert resource_rule(IMDS, _aws(LAUNCH_TEMPLATE, "a-nodes", metadataOptions={"httpTokens": rpc.UNKNOWN})) == []
    assert resource_rule(IMDS, _aws(INSTANCE, "a-node-0", launchTemplate=rpc.UNKNOWN)) == []
    assert resource_rule(IMDS, _node_group(amiType=rpc.UNKNOWN)) == []
    assert resource_rule(IMDS, _node_group(amiType="AL2_x86_64", launchTemplate=rpc.UNKNOWN)) == []


# --- mesh-vpcs-connected -------------------------------------------------------------------------------------------

CONNECTED = "mesh-vpcs-connected"


def _unreachable(source: str, target: str, hint: str = "") -> str:
    return (
        f"cluster {source} cannot reach cluster {target}: no route table of VPC {VPC_IDS[source]} sends "
        f"{VPC_CIDRS[target]} to a peering connection with VPC {VPC_IDS[target]} or to a transit gateway that reaches "
        f"it{hint}"
    )


def _eks_cluster(name: str, cluster_id: int, vpc_id: Any, vpc_cidr: Any, **props: Any) -> PolicyResource:
    """The MeshCluster component's registered outputs for an EKS cluster: its identity and its VPC."""
    identity = {"clusterName": name, "clusterId": cluster_id, "kind": "eks", "cni": "aws-cni", "podCidrs": [vpc_cidr]}
    return _resource(MESH_CLUSTER, name, {**identity, "vpcId": vpc_id, "vpcCidr": vpc_cidr, **props})


class _Mesh:
    """EKS clusters, each in its own VPC with one private route table, and what the test connects them with."""

    def __init__(self, *names: str) -> None:
        self.clusters = {n: _eks_cluster(n, i, VPC_IDS[n], VPC_CIDRS[n]) for i, n in enumerate(names, start=1)}
        self.tables = {n: _aws(ROUTE_TABLE, f"{n}-private", vpcId=VPC_IDS[n]) for n in names}
        self.network: list[PolicyResource] = []

    def peer(self, one: str, other: str, *, routes: tuple[str, ...] | None = None) -> PolicyResource:
        """A peering connection between the two clusters' VPCs, with a route to the peer's CIDR on each side named
        in `routes` (both by default)."""
        peering = _aws(PEERING, f"{one}-{other}", vpcId=VPC_IDS[one], peerVpcId=VPC_IDS[other], autoAccept=True)
        self.network.append(peering)
        for side in (one, other) if routes is None else routes:
            peer = other if side == one else one
            self.route(side, VPC_CIDRS[peer], peering)
        return peering

    def route(
        self, side: str, destination: str, target: PolicyResource | str, *, table: PolicyResource | None = None
    ) -> PolicyResource:
        """A route in `side`'s route table to a peering connection (or its accepter) or a transit gateway id."""
        table = table or self.tables[side]
        props: dict[str, Any] = {"routeTableId": f"rtb-{table.name}", "destinationCidrBlock": destination}
        dependencies = [table]
        if isinstance(target, str):
            props["transitGatewayId"] = target
        else:
            props["vpcPeeringConnectionId"] = f"pcx-{target.name}"
            dependencies.append(target)
        route = _resource(ROUTE, f"{side}-to-{destination}", props, provider=_provider(), dependencies=dependencies)
        self.network.append(route)
        return route

    def attach(self, name: str, gateway: str) -> None:
        self.network.append(
            _aws(TGW_ATTACHMENT, f"{name}-{gateway}", vpcId=VPC_IDS[name], transitGatewayId=gateway, subnetIds=SUBNETS)
        )

    def resources(self) -> list[PolicyResource]:
        return [*self.clusters.values(), *self.tables.values(), *self.network]


def test_peered_vpcs_routed_both_ways_pass() -> None:
    mesh = _Mesh("a", "b", "c")
    mesh.peer("a", "b")
    mesh.peer("c", "a")  # either VPC may request the peering
    mesh.peer("b", "c")
    assert stack_rule(CONNECTED, mesh.resources()) == []


def test_a_missing_peering_or_route_is_reported_by_direction() -> None:
    mesh = _Mesh("a", "b", "c")
    ab = mesh.peer("a", "b", routes=("a",))  # b has no route back
    mesh.peer("a", "c")  # b and c are not peered at all
    assert stack_rule(CONNECTED, mesh.resources()) == [
        _unreachable("b", "a", f" (peering connection {ab.name} joins them, but no such route uses it)"),
        _unreachable("b", "c"),
        _unreachable("c", "b"),
    ]


def test_a_route_must_cover_the_peers_cidr_go_to_a_peering_with_it_and_be_in_the_vpcs_own_table() -> None:
    mesh = _Mesh("a", "b", "c")
    ac = mesh.peer("a", "c")
    mesh.peer("b", "c")
    ab = mesh.peer("a", "b", routes=("b",))
    mesh.route("a", "10.20.0.0/24", ab)  # only part of b's 10.20.0.0/16
    mesh.route("a", VPC_CIDRS["b"], ac)  # to the peering with c, not with b
    mesh.route("a", VPC_CIDRS["b"], ab, table=mesh.tables["c"])  # a route table of c's VPC
    hint = f" (peering connection {ab.name} joins them, but no such route uses it)"
    assert stack_rule(CONNECTED, mesh.resources()) == [_unreachable("a", "b", hint)]
    mesh.route("a", "10.0.0.0/8", ab)  # a wider route holds b's CIDR
    assert stack_rule(CONNECTED, mesh.resources()) == []


def test_vpcs_reach_each_other_through_a_transit_gateway_both_are_attached_to() -> None:
    mesh = _Mesh("a", "b")
    mesh.attach("a", TGW_1)
    mesh.route("a", "10.0.0.0/8", TGW_1)
    mesh.route("b", VPC_CIDRS["a"], TGW_1)
    # b routes to the gateway but is not attached to it, so neither way is open
    assert stack_rule(CONNECTED, mesh.resources()) == [_unreachable("a", "b"), _unreachable("b", "a")]
    mesh.attach("b", TGW_1)
    assert stack_rule(CONNECTED, mesh.resources()) == []


def test_vpcs_reach_each_other_through_peered_transit_gateways() -> None:
    mesh = _Mesh("a", "b")
    mesh.attach("a", TGW_1)
    mesh.attach("b", TGW_2)
    mesh.route("a", VPC_CIDRS["b"], TGW_1)
    mesh.route("b", VPC_CIDRS["a"], TGW_2)
    assert stack_rule(CONNECTED, mesh.resources()) == [_unreachable("a", "b"), _unreachable("b", "a")]
    peering = _aws(TGW_PEERING, "tgw-1-2", transitGatewayId=TGW_2, peerTransitGatewayId=TGW_1, peerRegion="eu-west-1")
    assert stack_rule(CONNECTED, [*mesh.resources(), peering]) == []


def test_a_route_may_name_the_peering_through_its_accepter() -> None:
    """Across regions the accepter's id is the connection's, and a route may take it from either."""
    mesh = _Mesh("a", "b")
    ab = mesh.peer("a", "b", routes=("a",))
    accepter = _aws(ACCEPTER, "a-b-accept", vpcPeeringConnectionId=f"pcx-{ab.name}", autoAccept=True)
    accepter.dependencies = [ab]
    mesh.network.append(accepter)
    assert stack_rule(CONNECTED, mesh.resources()) == [
        _unreachable("b", "a", f" (peering connection {ab.name} joins them, but no such route uses it)")
    ]
    mesh.route("b", VPC_CIDRS["a"], accepter)
    assert stack_rule(CONNECTED, mesh.resources()) == []


def test_routes_are_linked_by_input_or_by_id_where_the_engine_shows_them() -> None:
    """The engine records which resource each input came from, and a created resource's state shows its id: a route
    depending on two route tables is still read right."""
    mesh = _Mesh("a", "b")
    ab = mesh.peer("a", "b", routes=("a",))
    table_b, table_a = mesh.tables["b"], mesh.tables["a"]
    by_input = _resource(
        ROUTE,
        "b-to-a",
        {"routeTableId": "rtb-0b", "destinationCidrBlock": VPC_CIDRS["a"], "vpcPeeringConnectionId": "pcx-0ab"},
        provider=_provider(),
        dependencies=[table_a, table_b, ab],
        property_dependencies={"routeTableId": [table_b], "vpcPeeringConnectionId": [ab]},
    )
    assert stack_rule(CONNECTED, [*mesh.resources(), by_input]) == []
    wrong_table = _resource(
        ROUTE,
        "b-to-a",
        {"routeTableId": "rtb-0a", "destinationCidrBlock": VPC_CIDRS["a"], "vpcPeeringConnectionId": "pcx-0ab"},
        provider=_provider(),
        dependencies=[table_a, table_b, ab],
        property_dependencies={"routeTableId": [table_a], "vpcPeeringConnectionId": [ab]},
    )
    hint = f" (peering connection {ab.name} joins them, but no such route uses it)"
    assert stack_rule(CONNECTED, [*mesh.resources(), wrong_table]) == [_unreachable("b", "a", hint)]
    # After an update: ids in the state, dependencies ambiguous (two route tables) and not recorded by input.
    created_table = _aws(ROUTE_TABLE, "b-private", vpcId=VPC_IDS["b"], id="rtb-0b")
    created_peering = _aws(PEERING, "a-b", vpcId=VPC_IDS["a"], peerVpcId=VPC_IDS["b"], id="pcx-0ab")
    by_id = _resource(
        ROUTE,
        "b-to-a",
        {"routeTableId": "rtb-0b", "destinationCidrBlock": VPC_CIDRS["a"], "vpcPeeringConnectionId": "pcx-0ab"},
        provider=_provider(),
        dependencies=[table_a, created_table],
    )
    assert stack_rule(CONNECTED, [*mesh.resources(), created_table, created_peering, by_id]) == []
    # Two route tables among the dependencies, and neither the input's own nor an id to tell which: judged by what
    # holds whichever it is. In a's table or b's, it may be b's route back; in a's or c's, it is not.
    table_c = _aws(ROUTE_TABLE, "c-private", vpcId=VPC_IDS["c"])
    for tables, expected in (([table_a, table_b], []), ([table_a, table_c], [_unreachable("b", "a", hint)])):
        ambiguous = _resource(
            ROUTE,
            "b-to-a",
            {"routeTableId": "rtb-0x", "destinationCidrBlock": VPC_CIDRS["a"], "vpcPeeringConnectionId": "pcx-0ab"},
            provider=_provider(),
            dependencies=[*tables, ab],
        )
        assert stack_rule(CONNECTED, [*mesh.resources(), table_c, ambiguous]) == expected


def test_clusters_sharing_a_vpc_need_no_connection() -> None:
    a = _eks_cluster("a", 1, VPC_IDS["a"], VPC_CIDRS["a"])
    b = _eks_cluster("b", 2, VPC_IDS["a"], VPC_CIDRS["a"])
    assert stack_rule(CONNECTED, [a, b]) == []


def test_an_eks_cluster_that_registers_no_vpc_is_reported_and_other_kinds_are_not_held_to_one() -> None:
    mesh = _Mesh("a", "b")
    mesh.peer("a", "b")
    silent = _resource(MESH_CLUSTER, "c", {"clusterName": "c", "clusterId": 3, "kind": "eks", "podCidrs": []})
    no_cidr = _eks_cluster("d", 4, VPC_IDS["c"], None)
    existing = _resource(MESH_CLUSTER, "e", {"clusterName": "e", "clusterId": 5, "kind": "existing", "podCidrs": []})
    assert stack_rule(CONNECTED, [*mesh.resources(), silent, no_cidr, existing]) == [
        "cluster c registers no vpcId or vpcCidr: which VPC its nodes are in, and so whether it reaches its peers, "
        "cannot be told",
        "cluster d registers no vpcCidr: which VPC its nodes are in, and so whether it reaches its peers, cannot be told",
    ]


def test_vpc_connections_say_nothing_of_what_a_preview_cannot_know() -> None:
    """Each case would be a violation with the value known; not known, it says nothing."""
    # A cluster's VPC not created yet.
    pending = _Mesh("a", "b")
    pending.clusters["b"] = _eks_cluster("b", 2, rpc.UNKNOWN, VPC_CIDRS["b"])
    assert stack_rule(CONNECTED, pending.resources()) == []
    pending.clusters["b"] = _eks_cluster("b", 2, VPC_IDS["b"], rpc.UNKNOWN)
    # b's CIDR not known: a's routes to it cannot be judged; a's CIDR is, and nothing in b routes to it.
    assert stack_rule(CONNECTED, pending.resources()) == [_unreachable("b", "a")]
    # A peering connection whose peer VPC is not known yet.
    peering = _Mesh("a", "b")
    half_known = _aws(PEERING, "a-b", vpcId=VPC_IDS["a"], peerVpcId=rpc.UNKNOWN)
    peering.network.append(half_known)
    peering.route("a", VPC_CIDRS["b"], half_known)
    peering.route("b", VPC_CIDRS["a"], half_known)
    assert stack_rule(CONNECTED, peering.resources()) == []
    # Routes whose destination, table id or transit gateway is not known, a table whose VPC is not known yet.
    for route_props, table_vpc in (
        ({"destinationCidrBlock": rpc.UNKNOWN}, VPC_IDS["b"]),
        ({"destinationPrefixListId": rpc.UNKNOWN}, VPC_IDS["b"]),
        ({"destinationCidrBlock": VPC_CIDRS["a"]}, rpc.UNKNOWN),
        ({"destinationCidrBlock": VPC_CIDRS["a"], "transitGatewayId": rpc.UNKNOWN}, VPC_IDS["b"]),
    ):
        mesh = _Mesh("a", "b")
        mesh.peer("a", "b", routes=("a",))
        mesh.tables["b"] = _aws(ROUTE_TABLE, "b-private", vpcId=table_vpc)
        props = {"routeTableId": "rtb-b", "vpcPeeringConnectionId": "pcx-0ab", **route_props}
        if "transitGatewayId" in route_props:
            del props["vpcPeeringConnectionId"]
        dependencies = [mesh.tables["b"]] + ([mesh.network[0]] if "vpcPeeringConnectionId" in props else [])
        route = _resource(ROUTE, "b-to-a", props, provider=_provider(), dependencies=dependencies)
        assert stack_rule(CONNECTED, [*mesh.resources(), route]) == [], route_props
    unlinked = _Mesh("a", "b")
    unlinked.peer("a", "b", routes=("a",))
    unknown_table = {
        "routeTableId": rpc.UNKNOWN,
        "destinationCidrBlock": VPC_CIDRS["a"],
        "vpcPeeringConnectionId": "pcx-0ab",
    }
    route = _resource(ROUTE, "b-to-a", unknown_table, provider=_provider(), dependencies=[unlinked.network[0]])
    assert stack_rule(CONNECTED, [*unlinked.resources(), route]) == []
    # Whichever table it turns out to be in, a route to part of a's CIDR does not reach all of it.
    narrow = {**unknown_table, "destinationCidrBlock": "10.10.0.0/24"}
    route = _resource(ROUTE, "b-to-a", narrow, provider=_provider(), dependencies=[unlinked.network[0]])
    hint = " (peering connection a-b joins them, but no such route uses it)"
    assert stack_rule(CONNECTED, [*unlinked.resources(), route]) == [_unreachable("b", "a", hint)]


def _node(urn: str, type_: str, parent: str, inputs: dict[str, Any], **kwargs: Any) -> Node:
    return Node(
        urn,
        type_,
        urn.rsplit("::", 1)[1],
        parent,
        kwargs.pop("provider", ""),
        True,
        kwargs.pop("dependencies", []),
        inputs,
        **kwargs,
    )


def test_the_planner_holds_routes_against_the_vpcs_the_clusters_registered() -> None:
    """The planner shows a component's registered outputs and records each resource's dependencies (not by input):
    the rule finds route tables and peerings through them."""
    provider_urn = f"{STACK_PREFIX}pulumi:providers:aws::a-aws"
    provider = Node(provider_urn, "pulumi:providers:aws", "a-aws", "", "", True, [], {"region": "eu-west-2"})

    def cluster(name: str, cluster_id: int, vpc_id: Any) -> Node:
        identity = {"clusterName": name, "clusterId": cluster_id, "kind": "eks", "cni": "aws-cni", "podCidrs": []}
        urn = f"{STACK_PREFIX}{MESH_CLUSTER}::{name}"
        outputs = {**identity, "vpcId": vpc_id, "vpcCidr": VPC_CIDRS[name]}
        return Node(urn, MESH_CLUSTER, name, "", "", False, [], identity, outputs=outputs)

    def aws(type_: str, name: str, parent: Node, inputs: dict[str, Any], *dependencies: Node) -> Node:
        urn = f"{STACK_PREFIX}{MESH_CLUSTER}${type_}::{name}"
        return _node(urn, type_, parent.urn, inputs, provider=provider_urn, dependencies=[d.urn for d in dependencies])

    def plan(vpc_b: Any, *, route_back: bool) -> CapturedPlan:
        a, b = cluster("a", 1, VPC_IDS["a"]), cluster("b", 2, vpc_b)
        table_a = aws(ROUTE_TABLE, "a-private", a, {"vpcId": VPC_IDS["a"]})
        table_b = aws(ROUTE_TABLE, "b-private", b, {"vpcId": vpc_b})
        peering = aws(PEERING, "a-b", a, {"vpcId": VPC_IDS["a"], "peerVpcId": vpc_b, "autoAccept": True})
        pcx = UNKNOWN if vpc_b is UNKNOWN else "pcx-0a1b2c3d4e5f60718"
        a_to_b = {"routeTableId": "rtb-0a", "destinationCidrBlock": VPC_CIDRS["b"], "vpcPeeringConnectionId": pcx}
        b_to_a = {"routeTableId": "rtb-0b", "destinationCidrBlock": VPC_CIDRS["a"], "vpcPeeringConnectionId": pcx}
        nodes = [provider, a, b, table_a, table_b, peering, aws(ROUTE, "a-to-b", a, a_to_b, table_a, peering)]
        if route_back:
            nodes.append(aws(ROUTE, "b-to-a", b, b_to_a, table_b, peering))
        return CapturedPlan("clustermesh", "dev", nodes, {})

    def found(captured: CapturedPlan) -> list[tuple[str | None, str]]:
        return [(v.urn, v.message) for v in check(captured) if v.policy == CONNECTED]

    assert found(plan(VPC_IDS["b"], route_back=True)) == []
    hint = " (peering connection a-b joins them, but no such route uses it)"
    assert found(plan(VPC_IDS["b"], route_back=False)) == [
        (f"{STACK_PREFIX}{MESH_CLUSTER}::b", _unreachable("b", "a", hint))
    ]
    assert found(plan(UNKNOWN, route_back=False)) == []  # a preview before b's VPC exists


# --- explicit-providers, for the aws package --------------------------------------------------------------------------


def test_explicit_providers_covers_aws() -> None:
    mesh = _Mesh("a")  # the component has no provider of its own; its route table goes through an explicit one
    stray = _resource(VPC, "b-vpc", {"cidrBlock": VPC_CIDRS["b"]}, provider=_provider(default=True))
    orphan = _resource(EKS_CLUSTER, "b-eks", {"vpcConfig": {"subnetIds": SUBNETS}})
    found = stack_rule("explicit-providers", [*mesh.resources(), stray, orphan])
    assert found == [
        f"b-vpc ({VPC}) goes through the default aws provider (default_7_51_1), configured by whatever the ambient "
        "environment holds (a kubeconfig, cloud credentials and region) rather than by the stack",
        f"b-eks ({EKS_CLUSTER}) names no provider",
    ]


# --- every new rule, on values a preview does not know -------------------------------------------------------------


def test_no_aws_rule_reports_on_values_unknown_in_preview() -> None:
    """A stack being created: every id, ARN and computed CIDR is unknown."""
    cluster = _eks_cluster("a", 1, rpc.UNKNOWN, VPC_CIDRS["a"])
    other = _eks_cluster("b", 2, rpc.UNKNOWN, VPC_CIDRS["b"])
    table = _aws(ROUTE_TABLE, "a-private", vpcId=rpc.UNKNOWN)
    peering = _aws(PEERING, "a-b", vpcId=rpc.UNKNOWN, peerVpcId=rpc.UNKNOWN)
    route = _resource(
        ROUTE,
        "a-to-b",
        {"routeTableId": rpc.UNKNOWN, "destinationCidrBlock": VPC_CIDRS["b"], "vpcPeeringConnectionId": rpc.UNKNOWN},
        provider=_provider(),
        dependencies=[table, peering],
    )
    resources = [
        cluster,
        other,
        table,
        peering,
        route,
        _ingress_rule(ipProtocol="tcp", fromPort=32379, toPort=32379, cidrIpv4=rpc.UNKNOWN),
        _legacy_rule(type="ingress", protocol="-1", fromPort=0, toPort=0, cidrBlocks=rpc.UNKNOWN),
        _group({"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": [rpc.UNKNOWN]}),
        _eks(
            {"endpointPrivateAccess": True, "publicAccessCidrs": rpc.UNKNOWN},
            encryptionConfig={"provider": {"keyArn": rpc.UNKNOWN}, "resources": ["secrets"]},
        ),
        _load_balancer(loadBalancerType="network", internal=rpc.UNKNOWN),
        _aws(LAUNCH_TEMPLATE, "a-nodes", metadataOptions=rpc.UNKNOWN),
        _node_group(amiType=rpc.UNKNOWN),
    ]
    for name in ("aws-no-world-ingress", "eks-private-endpoint", "eks-secrets-encrypted", "nlb-internal", IMDS):
        for resource in resources:
            assert resource_rule(name, resource) == [], (name, resource.name)
    assert stack_rule(CONNECTED, resources) == []
