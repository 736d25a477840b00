"""The rules of an EKS cluster's config: what AWS, EKS and the VPC CNI would refuse, or break on, found before
anything is created, every problem at once with its path."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_network

from clustermesh.model import AvailabilityZone, AwsUnderlay, CniMode, EksCluster, MeshConfig
from clustermesh.render.aws_underlay import PEERING_QUOTA, choose_underlay
from clustermesh.validation.problem import Problem

REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
KUBERNETES_MINOR = re.compile(r"1\.\d+")
IAM_PRINCIPAL = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+")
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}")
VPC_PREFIXES = (16, 28)
"""A VPC's IPv4 CIDR block is /16 to /28 (Amazon VPC user guide, "VPC CIDR blocks"); so is a subnet's."""
SERVICE_RANGES = tuple(ip_network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
SERVICE_PREFIXES = (12, 24)
"""EKS's `serviceIpv4Cidr`: within 10/8, 172.16/12 or 192.168/16, /12 to /24 (EKS API,
KubernetesNetworkConfigRequest)."""
SUBNET_RESERVED_FIRST = 4
"""AWS reserves the first four addresses and the last of every subnet."""


def eks_cluster_rules(at: str, cluster: EksCluster) -> Iterator[Problem]:
    if not REGION.fullmatch(cluster.region):
        yield Problem(f"{at}.region", f"{cluster.region!r} is not an AWS region such as us-east-1")
    if not KUBERNETES_MINOR.fullmatch(cluster.kubernetes_version):
        yield Problem(f"{at}.kubernetesVersion", f"{cluster.kubernetes_version!r} is not an EKS version such as 1.35")
    if cluster.cni is not CniMode.AWS_CNI:
        # Cilium in place of the VPC CNI needs aws-node evicted and its iptables chains flushed: not built yet.
        yield Problem(f"{at}.cni", f"{cluster.cni} is not available on kind eks yet; Cilium chains on aws-cni")
    if cluster.kube_proxy_replacement:
        yield Problem(
            f"{at}.kubeProxyReplacement",
            "not on kind eks: EKS keeps kube-proxy, and chained on aws-cni Cilium does not replace it",
        )
    if not cluster.public_access_cidrs and not cluster.api_access_cidrs:
        yield Problem(
            at,
            "give publicAccessCidrs (the API's public endpoint) or apiAccessCidrs (its private one): `pulumi up` "
            "must reach the API to install Cilium",
        )
    yield from _vpc_rules(at, cluster)
    yield from _zone_rules(at, cluster)
    yield from _service_rules(at, cluster)
    yield from _node_group_rules(at, cluster)
    yield from _access_rules(at, cluster)


def _node_group_rules(at: str, cluster: EksCluster) -> Iterator[Problem]:
    names: set[str] = set()
    for i, group in enumerate(cluster.node_groups):
        here = f"{at}.nodeGroups[{i}]"
        if not NAME.fullmatch(group.name) or group.name in names:
            yield Problem(f"{here}.name", f"{group.name!r} is not a unique node group name (letters, digits, - and _)")
        names.add(group.name)
        if not group.min_size <= group.desired_size <= group.max_size:
            yield Problem(
                here,
                f"needs minSize <= desiredSize <= maxSize (got {group.min_size}, {group.desired_size}, "
                f"{group.max_size})",
            )
        if not group.instance_types:
            yield Problem(f"{here}.instanceTypes", "needs at least one instance type")


def _access_rules(at: str, cluster: EksCluster) -> Iterator[Problem]:
    for i, principal in enumerate(cluster.admin_principals):
        if not IAM_PRINCIPAL.fullmatch(principal):
            yield Problem(f"{at}.adminPrincipals[{i}]", f"{principal!r} is not an IAM role or user ARN")
    for key, cidrs in (
        ("publicAccessCidrs", cluster.public_access_cidrs),
        ("apiAccessCidrs", cluster.api_access_cidrs),
    ):
        yield from _world_rules(f"{at}.{key}", cidrs)


def _world_rules(path: str, cidrs: tuple[IPv4Network | IPv6Network, ...]) -> Iterator[Problem]:
    for i, cidr in enumerate(cidrs):
        if cidr.prefixlen == 0:
            yield Problem(
                f"{path}[{i}]",
                f"{cidr} opens the Kubernetes API to the world; give the networks `pulumi up` runs from",
            )


def _vpc_rules(at: str, cluster: EksCluster) -> Iterator[Problem]:
    vpc = cluster.vpc_cidr
    low, high = VPC_PREFIXES
    if not isinstance(vpc, IPv4Network) or not low <= vpc.prefixlen <= high:
        yield Problem(f"{at}.vpcCidr", f"{vpc} is not an IPv4 CIDR of /{low} to /{high}, as AWS takes for a VPC")
        return
    if cluster.cni is CniMode.AWS_CNI:
        for i, cidr in enumerate(cluster.pod_cidrs):
            if not (isinstance(cidr, IPv4Network) and cidr.subnet_of(vpc)):
                yield Problem(
                    f"{at}.podCidrs[{i}]",
                    f"{cidr} is outside the VPC {vpc}: with aws-cni, pods take the nodes' subnets' addresses",
                )


def _zone_rules(at: str, cluster: EksCluster) -> Iterator[Problem]:
    zones = cluster.availability_zones
    if len({z.name for z in zones}) < 2:
        yield Problem(f"{at}.availabilityZones", "EKS needs subnets in at least two availability zones")
    subnets: list[tuple[str, IPv4Network]] = []
    for i, zone in enumerate(zones):
        here = f"{at}.availabilityZones[{i}]"
        if not zone.name.startswith(cluster.region):
            yield Problem(f"{here}.name", f"{zone.name!r} is not a zone of {cluster.region}")
        for key, subnet in (("privateSubnet", zone.private_subnet), ("publicSubnet", zone.public_subnet)):
            yield from _subnet_rules(f"{here}.{key}", subnet, cluster, subnets)
        yield from _apiserver_address_rules(here, zone)
    for i, zone in enumerate(zones):
        if zone.apiserver_address is None:
            yield Problem(
                f"{at}.availabilityZones[{i}].apiserverAddress",
                "required: the clustermesh-apiserver's NLB takes an address in every zone, and peers dial them",
            )


def _subnet_rules(
    path: str, subnet: object, cluster: EksCluster, seen: list[tuple[str, IPv4Network]]
) -> Iterator[Problem]:
    if not isinstance(subnet, IPv4Network) or not VPC_PREFIXES[0] <= subnet.prefixlen <= VPC_PREFIXES[1]:
        yield Problem(path, f"{subnet} is not an IPv4 CIDR of /16 to /28")
        return
    if isinstance(cluster.vpc_cidr, IPv4Network) and not subnet.subnet_of(cluster.vpc_cidr):
        yield Problem(path, f"{subnet} is outside the VPC {cluster.vpc_cidr}")
    for other_path, other in seen:
        if subnet.overlaps(other):
            yield Problem(path, f"{subnet} overlaps {other_path} {other}")
    seen.append((path, subnet))


def _apiserver_address_rules(here: str, zone: AvailabilityZone) -> Iterator[Problem]:
    address = zone.apiserver_address
    if address is None:
        return
    private = zone.private_subnet
    hosts = range(int(private.network_address) + SUBNET_RESERVED_FIRST, int(private.broadcast_address))
    if address.version != private.version or int(address) not in hosts:
        yield Problem(
            f"{here}.apiserverAddress",
            f"{address} is not an address AWS lets a load balancer take in {private} (the first four and the "
            "last are reserved)",
        )


def _service_rules(at: str, cluster: EksCluster) -> Iterator[Problem]:
    cidr = cluster.service_cidr
    low, high = SERVICE_PREFIXES
    inside = isinstance(cidr, IPv4Network) and any(cidr.subnet_of(r) for r in SERVICE_RANGES)  # type: ignore[arg-type]
    if not inside or not low <= cidr.prefixlen <= high:
        yield Problem(
            f"{at}.serviceCidr",
            f"{cidr} is not what EKS takes: an IPv4 /{low} to /{high} within 10.0.0.0/8, 172.16.0.0/12 or "
            "192.168.0.0/16",
        )


def eks_mesh_rules(mesh: MeshConfig, clusters: Sequence[tuple[int, EksCluster]]) -> Iterator[Problem]:
    if len(clusters) < 2:
        return
    underlay = choose_underlay(mesh)
    peerings = len(clusters) - 1
    if mesh.aws_underlay is AwsUnderlay.PEERING and peerings > PEERING_QUOTA:
        yield Problem(
            "awsUnderlay",
            f"peering {len(clusters)} EKS clusters takes {peerings} peering connections and routes per VPC, more "
            f"than AWS's default quotas allow ({PEERING_QUOTA}): use transit-gateway or auto",
        )
    if underlay.mode is AwsUnderlay.TRANSIT_GATEWAY:
        ranges = [c for c in mesh.native_routing_cidrs if isinstance(c, IPv4Network)]
        for index, cluster in clusters:
            if not any(cluster.vpc_cidr.subnet_of(r) for r in ranges):  # type: ignore[arg-type]
                yield Problem(
                    f"clusters[{index}].vpcCidr",
                    f"{cluster.vpc_cidr} is outside nativeRoutingCidrs: with Transit Gateways, every VPC routes and "
                    "admits the mesh's range as one (one route and one rule per VPC, however large the mesh)",
                )
