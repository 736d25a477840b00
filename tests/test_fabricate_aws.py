"""The planner's AWS account: small programs of plain pulumi_aws resources run under `PlanMocks`, read back through
the SDK. Expected forms come from AWS's own (documented id, ARN and DNS-name shapes) and from each test's inputs."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pulumi
import pulumi_aws as aws
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from clustermesh.planner.fabricate import FunctionCall, UnansweredFunctionError
from clustermesh.planner.graph import UNKNOWN, Secret
from clustermesh.planner.runner import CapturedPlan, run_function
from clustermesh.planner.stackfile import StackSettings

STACK = StackSettings("clustermesh", "test", Path("Pulumi.test.yaml"), {}, frozenset())
ACCOUNT = "123456789012"
REGION = "eu-west-1"
VPC_CIDR = "10.1.0.0/16"
SUBNET_CIDRS = ["10.1.0.0/24", "10.1.1.0/24"]
TEST_NET_3 = ipaddress.ip_network("203.0.113.0/24")


def plan(program: Callable[[], None], *, preview: bool = False, stack: StackSettings = STACK) -> CapturedPlan:
    return run_function(program, stack, preview=preview)


def ec2_id(prefix: str) -> re.Pattern[str]:
    """An EC2 id of AWS's long form: the prefix and 17 hex digits."""
    return re.compile(rf"^{re.escape(prefix)}-[0-9a-f]{{17}}$")


def _west() -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(provider=aws.Provider("west", region=REGION))


def _network(opts: pulumi.ResourceOptions) -> tuple[aws.ec2.Vpc, list[aws.ec2.Subnet]]:
    vpc = aws.ec2.Vpc("nodes", cidr_block=VPC_CIDR, opts=opts)
    subnets = [
        aws.ec2.Subnet(f"nodes-{zone}", vpc_id=vpc.id, cidr_block=cidr, availability_zone=f"{REGION}{zone}", opts=opts)
        for zone, cidr in zip("ab", SUBNET_CIDRS, strict=True)
    ]
    return vpc, subnets


def _cluster(name: str, subnets: list[aws.ec2.Subnet], opts: pulumi.ResourceOptions) -> aws.eks.Cluster:
    role = aws.iam.Role(f"{name}-cluster", name=f"{name}-cluster", assume_role_policy="{}", opts=opts)
    return aws.eks.Cluster(
        name,
        name=name,
        role_arn=role.arn,
        version="1.33",
        vpc_config=aws.eks.ClusterVpcConfigArgs(subnet_ids=[s.id for s in subnets]),
        opts=opts,
    )


def _everything() -> None:
    """One of each resource the EKS backend builds, exporting every id."""
    opts = _west()
    vpc, subnets = _network(opts)
    eip = aws.ec2.Eip("nat", domain="vpc", opts=opts)
    nat = aws.ec2.NatGateway("nat", allocation_id=eip.allocation_id, subnet_id=subnets[0].id, opts=opts)
    table = aws.ec2.RouteTable("private", vpc_id=vpc.id, opts=opts)
    route = aws.ec2.Route(
        "default", route_table_id=table.id, destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id, opts=opts
    )
    group = aws.ec2.SecurityGroup("nodes", vpc_id=vpc.id, opts=opts)
    rule = aws.vpc.SecurityGroupIngressRule(
        "apiserver",
        security_group_id=group.id,
        ip_protocol="tcp",
        from_port=32379,
        to_port=32379,
        cidr_ipv4="10.2.0.0/16",
        opts=opts,
    )
    egress = aws.vpc.SecurityGroupEgressRule(
        "all", security_group_id=group.id, ip_protocol="-1", cidr_ipv4="0.0.0.0/0", opts=opts
    )
    peer = aws.ec2.Vpc("peer", cidr_block="10.2.0.0/16", opts=opts)
    peering = aws.ec2.VpcPeeringConnection("peering", vpc_id=vpc.id, peer_vpc_id=peer.id, auto_accept=True, opts=opts)
    gateway = aws.ec2transitgateway.TransitGateway("tgw", opts=opts)
    attachment = aws.ec2transitgateway.VpcAttachment(
        "nodes", transit_gateway_id=gateway.id, vpc_id=vpc.id, subnet_ids=[s.id for s in subnets], opts=opts
    )
    tgw_table = aws.ec2transitgateway.RouteTable("mesh", transit_gateway_id=gateway.id, opts=opts)
    cluster = _cluster("alpha", subnets, opts)
    balancer = aws.lb.LoadBalancer(
        "apiserver", load_balancer_type="network", internal=True, subnets=[s.id for s in subnets], opts=opts
    )
    target = aws.lb.TargetGroup("apiserver", port=32379, protocol="TCP", vpc_id=vpc.id, opts=opts)
    listener = aws.lb.Listener(
        "apiserver",
        load_balancer_arn=balancer.arn,
        port=2379,
        protocol="TCP",
        default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target.arn)],
        opts=opts,
    )
    key = aws.kms.Key("secrets", opts=opts)
    pulumi.export(
        "ids",
        {
            "vpc": vpc.id,
            "subnet": subnets[0].id,
            "igw": aws.ec2.InternetGateway("igw", vpc_id=vpc.id, opts=opts).id,
            "eipalloc": eip.id,
            "nat": nat.id,
            "rtb": table.id,
            "rtbassoc": aws.ec2.RouteTableAssociation(
                "a", route_table_id=table.id, subnet_id=subnets[0].id, opts=opts
            ).id,
            "sg": group.id,
            "sgr": rule.id,
            "sgr-egress": egress.id,
            "pcx": peering.id,
            "tgw": gateway.id,
            "tgw-attach": attachment.id,
            "tgw-rtb": tgw_table.id,
        },
    )
    pulumi.export("route", [route.id, table.id])
    pulumi.export("rule", [rule.security_group_rule_id, rule.id])
    pulumi.export("vpc", [vpc.arn, vpc.default_security_group_id, vpc.main_route_table_id, vpc.owner_id])
    pulumi.export("cluster", [cluster.id, cluster.arn])
    pulumi.export("lb", [balancer.id, balancer.arn, balancer.arn_suffix, target.arn, listener.arn, balancer.name])
    pulumi.export("key", [key.id, key.key_id, key.arn])


ARN = {
    "vpc": re.compile(rf"^arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-[0-9a-f]{{17}}$"),
    "cluster": re.compile(rf"^arn:aws:eks:{REGION}:{ACCOUNT}:cluster/alpha$"),
    "nlb": re.compile(
        rf"^arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/net/([A-Za-z0-9-]{{1,32}})/[0-9a-f]{{16}}$"
    ),
    "tg": re.compile(
        rf"^arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/[A-Za-z0-9-]{{1,32}}/[0-9a-f]{{16}}$"
    ),
    "key": re.compile(rf"^arn:aws:kms:{REGION}:{ACCOUNT}:key/[0-9a-f-]{{36}}$"),
}


def test_ids_have_the_forms_aws_gives_them() -> None:
    outputs = plan(_everything).outputs
    for kind, resource_id in outputs["ids"].items():
        assert ec2_id(kind.removesuffix("-egress")).match(resource_id), (kind, resource_id)
    route_id, table_id = outputs["route"]
    assert re.fullmatch(rf"r-{table_id}\d+", route_id)  # the provider's: r-, the table, a hash of the destination
    assert outputs["rule"][0] == outputs["rule"][1]
    vpc_arn, default_group, main_table, owner = outputs["vpc"]
    assert ARN["vpc"].match(vpc_arn) and vpc_arn.endswith(outputs["ids"]["vpc"])
    assert ec2_id("sg").match(default_group) and ec2_id("rtb").match(main_table) and owner == ACCOUNT
    assert outputs["cluster"][0] == "alpha" and ARN["cluster"].match(outputs["cluster"][1])
    lb_id, lb_arn, lb_suffix, tg_arn, listener_arn, lb_name = outputs["lb"]
    assert lb_id == lb_arn and (match := ARN["nlb"].match(lb_arn)) and match.group(1) == lb_name
    assert lb_arn.endswith(f":loadbalancer/{lb_suffix}")
    assert ARN["tg"].match(tg_arn)
    assert re.fullmatch(re.escape(lb_arn.replace(":loadbalancer/", ":listener/")) + r"/[0-9a-f]{16}", listener_arn)
    key_id, key_key_id, key_arn = outputs["key"]
    assert str(uuid.UUID(key_id)) == key_id == key_key_id and ARN["key"].match(key_arn) and key_arn.endswith(key_id)


def test_ids_are_stable_across_plans_and_distinct_per_name() -> None:
    def program() -> None:
        opts = _west()
        for name in ("one", "two"):
            aws.ec2.Vpc(name, cidr_block=VPC_CIDR, opts=opts)
            aws.ec2.SecurityGroup(name, opts=opts)
            aws.lb.TargetGroup(name, port=32379, protocol="TCP", opts=opts)

    first, second = plan(program), plan(program)
    ids = {(n.type, n.name): n.id for n in first.nodes if n.custom and n.type.startswith("aws:")}
    assert ids == {(n.type, n.name): n.id for n in second.nodes if n.custom and n.type.startswith("aws:")}
    assert len(ids) == 6 and len(set(ids.values())) == 6


def test_a_resource_is_in_its_own_region_else_its_providers_else_the_stacks_else_us_east_1() -> None:
    def program() -> None:
        opts = _west()
        pulumi.export("provider", aws.ec2.Vpc("west", cidr_block=VPC_CIDR, opts=opts).arn)
        pulumi.export("own", aws.ec2.Vpc("own", cidr_block=VPC_CIDR, region="ap-south-1", opts=opts).arn)
        pulumi.export("none", aws.ec2.Vpc("none", cidr_block=VPC_CIDR).region)
        zones = aws.get_availability_zones_output(opts=pulumi.InvokeOutputOptions(provider=opts.provider))
        pulumi.export("zones", zones.names)

    outputs = plan(program).outputs
    assert outputs["provider"].startswith(f"arn:aws:ec2:{REGION}:")
    assert outputs["own"].startswith("arn:aws:ec2:ap-south-1:")
    assert outputs["none"] == "us-east-1"
    assert outputs["zones"] == [f"{REGION}a", f"{REGION}b", f"{REGION}c"]

    configured = StackSettings(
        "clustermesh", "test", Path("Pulumi.test.yaml"), {"aws:region": "ca-central-1"}, frozenset()
    )
    assert plan(program, stack=configured).outputs["none"] == "ca-central-1"


def test_a_providers_default_tags_are_in_every_tags_all() -> None:
    def program() -> None:
        provider = aws.Provider(
            "tagged", region=REGION, default_tags=aws.ProviderDefaultTagsArgs(tags={"owner": "mesh", "env": "a"})
        )
        vpc = aws.ec2.Vpc(
            "nodes", cidr_block=VPC_CIDR, tags={"env": "b"}, opts=pulumi.ResourceOptions(provider=provider)
        )
        pulumi.export("tags", vpc.tags_all)

    assert plan(program).outputs["tags"] == {"owner": "mesh", "env": "b"}


def test_an_eks_cluster_answers_an_endpoint_a_real_ca_its_oidc_issuer_and_its_vpc() -> None:
    def program() -> None:
        opts = _west()
        vpc, subnets = _network(opts)
        cluster = _cluster("alpha", subnets, opts)
        other = _cluster("beta", subnets, opts)
        pulumi.export("vpc", vpc.id)
        pulumi.export("endpoint", cluster.endpoint)
        pulumi.export("ca", [cluster.certificate_authority.data, other.certificate_authority.data])
        pulumi.export("issuer", cluster.identities[0].oidcs[0].issuer)
        pulumi.export("config", [cluster.vpc_config.cluster_security_group_id, cluster.vpc_config.vpc_id])
        pulumi.export("service", cluster.kubernetes_network_config.service_ipv4_cidr)
        pulumi.export("state", [cluster.status, cluster.platform_version, cluster.version])

    first, second = plan(program).outputs, plan(program).outputs
    endpoint = re.fullmatch(rf"https://([0-9A-F]{{32}})\.gr7\.{REGION}\.eks\.amazonaws\.com", first["endpoint"])
    assert endpoint
    assert first["issuer"] == f"https://oidc.eks.{REGION}.amazonaws.com/id/{endpoint.group(1)}"
    group, vpc_id = first["config"]
    assert ec2_id("sg").match(group) and vpc_id == first["vpc"]
    # EKS keeps the services off a VPC in 10.0.0.0/8 (its two defaults are 10.100.0.0/16 and 172.20.0.0/16)
    assert not ipaddress.ip_network(first["service"]).overlaps(ipaddress.ip_network(VPC_CIDR))
    status, platform, version = first["state"]
    assert status == "ACTIVE" and re.fullmatch(r"eks\.\d+", platform) and version == "1.33"

    alpha, beta = first["ca"]
    assert alpha == second["ca"][0] and alpha != beta
    cert = x509.load_pem_x509_certificate(base64.b64decode(alpha))
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "kubernetes"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(cert)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_a_node_groups_autoscaling_group_is_named_as_eks_names_it_and_can_be_attached() -> None:
    def program() -> None:
        opts = _west()
        _, subnets = _network(opts)
        cluster = _cluster("alpha", subnets, opts)
        group = aws.eks.NodeGroup(
            "alpha-nodes",
            cluster_name=cluster.name,
            node_group_name="nodes",
            node_role_arn="arn:aws:iam::123456789012:role/nodes",
            subnet_ids=[s.id for s in subnets],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(desired_size=2, max_size=2, min_size=2),
            opts=opts,
        )
        asg = group.resources[0].autoscaling_groups[0].name
        target = aws.lb.TargetGroup("apiserver", port=32379, protocol="TCP", opts=opts)
        attached = aws.autoscaling.Attachment(
            "apiserver", autoscaling_group_name=asg, lb_target_group_arn=target.arn, opts=opts
        )
        pulumi.export("group", [group.id, group.arn, group.status, asg, group.version])
        pulumi.export("attached", attached.autoscaling_group_name)

    outputs = plan(program).outputs
    group_id, arn, status, asg, version = outputs["group"]
    assert group_id == "alpha:nodes" and status == "ACTIVE" and version == "1.33"
    asg_match = re.fullmatch(r"eks-nodes-([0-9a-f-]{36})", asg)
    assert asg_match and arn == f"arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/alpha/nodes/{asg_match.group(1)}"
    assert outputs["attached"] == asg


def test_load_balancer_dns_names_follow_elb_internal_nlbs_without_the_prefix_internal_albs_with_it() -> None:
    def program() -> None:
        opts = _west()
        _, subnets = _network(opts)
        ids = [s.id for s in subnets]
        nlb = aws.lb.LoadBalancer(
            "nlb", name="apiserver", load_balancer_type="network", internal=True, subnets=ids, opts=opts
        )
        alb = aws.lb.LoadBalancer(
            "alb", name="web", load_balancer_type="application", internal=True, subnets=ids, opts=opts
        )
        public = aws.lb.LoadBalancer("public", name="edge", load_balancer_type="application", subnets=ids, opts=opts)
        pulumi.export("dns", [nlb.dns_name, alb.dns_name, public.dns_name])
        pulumi.export("zones", [nlb.zone_id, alb.zone_id])
        pulumi.export("vpc", [nlb.vpc_id, subnets[0].vpc_id])

    outputs = plan(program).outputs
    nlb, alb, public = outputs["dns"]
    assert re.fullmatch(rf"apiserver-[0-9a-f]{{16}}\.elb\.{REGION}\.amazonaws\.com", nlb)
    assert re.fullmatch(rf"internal-web-\d{{10}}\.{REGION}\.elb\.amazonaws\.com", alb)
    assert re.fullmatch(rf"edge-\d{{10}}\.{REGION}\.elb\.amazonaws\.com", public)
    # ELB's canonical hosted zones in eu-west-1, as AWS publishes them (Elastic Load Balancing endpoints and quotas)
    assert outputs["zones"] == ["Z2IFOLAFXWLO4F", "Z32O12XQLNTSW2"]
    assert outputs["vpc"][0] == outputs["vpc"][1]


def test_elastic_ips_are_distinct_test_net_3_addresses_and_a_nat_gateway_reports_its_own() -> None:
    names = [f"eip-{i}" for i in range(30)]

    def program() -> None:
        opts = _west()
        _, subnets = _network(opts)
        addresses = [aws.ec2.Eip(name, domain="vpc", opts=opts) for name in names]
        nat = aws.ec2.NatGateway("nat", allocation_id=addresses[0].allocation_id, subnet_id=subnets[1].id, opts=opts)
        pulumi.export("addresses", [a.public_ip for a in addresses])
        pulumi.export("nat", [nat.public_ip, nat.private_ip, nat.vpc_id, subnets[1].vpc_id])

    first, second = plan(program).outputs, plan(program).outputs
    assert first == second
    assert len(set(first["addresses"])) == len(names)
    assert all(ipaddress.ip_address(a) in TEST_NET_3 for a in first["addresses"])
    public, private, vpc_id, subnet_vpc = first["nat"]
    assert public == first["addresses"][0] and vpc_id == subnet_vpc
    subnet = ipaddress.ip_network(SUBNET_CIDRS[1])
    reserved = {subnet.network_address + i for i in range(4)} | {subnet.broadcast_address}  # AWS keeps these
    assert ipaddress.ip_address(private) in subnet and ipaddress.ip_address(private) not in reserved


def test_peering_is_active_when_auto_accepted_and_an_accepter_reports_both_vpcs() -> None:
    def program() -> None:
        opts = _west()
        requester = aws.ec2.Vpc("requester", cidr_block="10.1.0.0/16", opts=opts)
        accepter = aws.ec2.Vpc("accepter", cidr_block="10.2.0.0/16", region="eu-central-1", opts=opts)
        same = aws.ec2.VpcPeeringConnection(
            "same", vpc_id=requester.id, peer_vpc_id=requester.id, auto_accept=True, opts=opts
        )
        cross = aws.ec2.VpcPeeringConnection(
            "cross", vpc_id=requester.id, peer_vpc_id=accepter.id, peer_region="eu-central-1", opts=opts
        )
        accepted = aws.ec2.VpcPeeringConnectionAccepter(
            "cross", vpc_peering_connection_id=cross.id, auto_accept=True, region="eu-central-1", opts=opts
        )
        pulumi.export("status", [same.accept_status, cross.accept_status, accepted.accept_status])
        pulumi.export(
            "accepter", [accepted.id, cross.id, accepted.vpc_id, accepter.id, accepted.peer_vpc_id, requester.id]
        )

    outputs = plan(program).outputs
    assert outputs["status"] == ["active", "pending-acceptance", "active"]
    accepted_id, cross_id, accepter_vpc, accepter_id, peer_vpc, requester_id = outputs["accepter"]
    assert (accepted_id, accepter_vpc, peer_vpc) == (cross_id, accepter_id, requester_id)


def test_a_transit_gateway_reports_its_default_route_table_and_associations_their_vpc() -> None:
    def program() -> None:
        opts = _west()
        vpc, subnets = _network(opts)
        gateway = aws.ec2transitgateway.TransitGateway("tgw", opts=opts)
        isolated = aws.ec2transitgateway.TransitGateway(
            "isolated", default_route_table_association="disable", default_route_table_propagation="disable", opts=opts
        )
        attachment = aws.ec2transitgateway.VpcAttachment(
            "nodes", transit_gateway_id=gateway.id, vpc_id=vpc.id, subnet_ids=[s.id for s in subnets], opts=opts
        )
        table = aws.ec2transitgateway.RouteTable("mesh", transit_gateway_id=gateway.id, opts=opts)
        association = aws.ec2transitgateway.RouteTableAssociation(
            "nodes", transit_gateway_attachment_id=attachment.id, transit_gateway_route_table_id=table.id, opts=opts
        )
        pulumi.export(
            "defaults", [gateway.association_default_route_table_id, gateway.propagation_default_route_table_id]
        )
        pulumi.export(
            "isolated", [isolated.association_default_route_table_id, isolated.propagation_default_route_table_id]
        )
        pulumi.export(
            "association",
            [association.id, table.id, attachment.id, association.resource_type, association.resource_id, vpc.id],
        )

    outputs = plan(program).outputs
    associated, propagated = outputs["defaults"]
    assert ec2_id("tgw-rtb").match(associated) and associated == propagated
    assert outputs["isolated"] == ["", ""]
    association_id, table_id, attachment_id, kind, resource, vpc_id = outputs["association"]
    assert association_id == f"{table_id}_{attachment_id}"
    assert (kind, resource) == ("vpc", vpc_id)


def test_caller_identity_partition_and_zones_are_answered_and_recorded() -> None:
    def program() -> None:
        identity = aws.get_caller_identity_output()
        partition = aws.get_partition_output()
        zones = aws.get_availability_zones_output(region="ap-southeast-2", exclude_names=["ap-southeast-2b"])
        region = aws.get_region_output(region="eu-central-1")
        pulumi.export("identity", [identity.account_id, identity.arn, identity.user_id])
        pulumi.export("partition", [partition.partition, partition.dns_suffix, partition.reverse_dns_prefix])
        pulumi.export("zones", [zones.names, zones.zone_ids])
        pulumi.export("region", [region.region, region.endpoint])

    captured = plan(program)
    account, caller_arn, user_id = captured.outputs["identity"]
    assert account == ACCOUNT and caller_arn.startswith(f"arn:aws:iam::{ACCOUNT}:") and user_id
    assert captured.outputs["partition"] == ["aws", "amazonaws.com", "com.amazonaws"]
    names, zone_ids = captured.outputs["zones"]
    assert names == ["ap-southeast-2a", "ap-southeast-2c"]
    assert len(zone_ids) == 2 and all(z.startswith("apse2-az") for z in zone_ids) and len(set(zone_ids)) == 2
    assert captured.outputs["region"] == ["eu-central-1", "ec2.eu-central-1.amazonaws.com"]
    assert [c.token for c in captured.calls] == [
        "aws:index/getCallerIdentity:getCallerIdentity",
        "aws:index/getPartition:getPartition",
        "aws:index/getAvailabilityZones:getAvailabilityZones",
        "aws:index/getRegion:getRegion",
    ]
    assert all(isinstance(c, FunctionCall) for c in captured.calls)
    assert captured.calls[2].args == {"region": "ap-southeast-2", "excludeNames": ["ap-southeast-2b"]}


def test_an_eks_token_comes_back_secret_and_signed_for_the_clusters_region() -> None:
    def program() -> None:
        auth = aws.eks.get_cluster_auth_output(name="alpha", opts=pulumi.InvokeOutputOptions(provider=_west().provider))
        pulumi.export("token", auth.token)

    captured = plan(program)
    token = captured.outputs["token"]
    assert isinstance(token, Secret)
    assert token.value.startswith("k8s-aws-v1.")
    encoded = token.value.removeprefix("k8s-aws-v1.")
    url = urlparse(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode())
    assert url.hostname == f"sts.{REGION}.amazonaws.com"
    assert parse_qs(url.query)["Action"] == ["GetCallerIdentity"]
    assert captured.calls[0].result["token"] == token.value  # recorded plain


def _document(**args: Any) -> str:
    """The JSON `getPolicyDocument` renders for `args`, checked against its minified form and its id."""

    def program() -> None:
        document = aws.iam.get_policy_document_output(**args)
        pulumi.export("document", [document.json, document.minified_json, document.id])

    rendered, minified, document_id = plan(program).outputs["document"]
    assert minified == json.dumps(json.loads(rendered), separators=(",", ":"))
    assert document_id.isdigit()
    return str(rendered)


def test_a_policy_document_is_rendered_from_its_statements_as_the_provider_renders_it() -> None:
    rendered = _document(
        statements=[
            {
                "actions": ["sts:AssumeRole", "sts:TagSession"],
                "principals": [{"type": "Service", "identifiers": ["eks.amazonaws.com"]}],
            },
            {
                "sid": "Read",
                "effect": "Deny",
                "actions": ["s3:GetObject"],
                "resources": ["arn:aws:s3:::bucket/&{aws:username}/*", "arn:aws:s3:::bucket"],
                "conditions": [{"test": "StringEquals", "variable": "aws:SourceVpc", "values": ["vpc-1"]}],
            },
        ]
    )
    # One value is a string, several are a list in reverse order; &{ becomes ${; the Version defaults; two-space indent.
    expected = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sts:TagSession", "sts:AssumeRole"],
                "Principal": {"Service": "eks.amazonaws.com"},
            },
            {
                "Sid": "Read",
                "Effect": "Deny",
                "Action": "s3:GetObject",
                "Resource": ["arn:aws:s3:::bucket/${aws:username}/*", "arn:aws:s3:::bucket"],
                "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}},
            },
        ],
    }
    assert rendered == json.dumps(expected, indent=2)


def test_an_override_document_replaces_the_statement_with_its_sid() -> None:
    override = json.dumps(
        {"Statement": [{"Sid": "Read", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}
    )
    rendered = _document(
        statements=[
            {"sid": "Read", "actions": ["s3:GetObject"], "resources": ["*"]},
            {"actions": ["ec2:Describe*"], "resources": ["*"]},
        ],
        override_policy_documents=[override],
    )
    statements = json.loads(rendered)["Statement"]
    assert statements == [
        {"Sid": "Read", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
    ]


def test_a_preview_leaves_what_aws_computes_unknown_but_answers_lookups() -> None:
    def program() -> None:
        opts = _west()
        vpc, subnets = _network(opts)
        cluster = _cluster("alpha", subnets, opts)
        eip = aws.ec2.Eip("nat", domain="vpc", opts=opts)
        identity = aws.get_caller_identity_output()
        pulumi.export("unknown", [vpc.id, vpc.arn, eip.public_ip, cluster.endpoint, cluster.certificate_authority])
        pulumi.export("known", [vpc.cidr_block, identity.account_id])

    captured = plan(program, preview=True)
    assert captured.outputs["unknown"] == [UNKNOWN] * 5
    assert captured.outputs["known"] == [VPC_CIDR, ACCOUNT]
    assert all(n.id is None for n in captured.nodes if n.custom and n.type.startswith("aws:ec2"))


def test_an_aws_function_the_planner_cannot_answer_fails_the_plan_naming_it() -> None:
    def program() -> None:
        pulumi.export("vpc", aws.ec2.get_vpc_output(default=True).id)

    with pytest.raises(UnansweredFunctionError, match="aws:ec2/getVpc:getVpc"):
        plan(program)
