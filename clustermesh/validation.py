"""The rules a Cluster Mesh configuration must obey beyond its shape, each reported with its path.

They follow Cilium's own checks (pkg/clustermesh/types, the chart's validate.yaml) and its networking
requirements for a mesh, so a mistake is caught before anything is created rather than by an agent
that refuses to start or a mesh that silently drops traffic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any, NamedTuple

from clustermesh.cilium import CLUSTER_POOL_MASK, SUPPORTED_CILIUM_MINORS, buggy_cluster_id
from clustermesh.model import (
    PROJECT,
    ClusterSpec,
    CniMode,
    IPNetwork,
    MeshConfig,
    RoutingMode,
    ServiceType,
)
from clustermesh.render.mesh_config import peer_hostname

CILIUM_VERSION_PATTERN = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

Indexed = Sequence[tuple[int, ClusterSpec]]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the configuration, at a path such as `clusters[2].podCidrs[0]`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def validate_mesh(
    mesh: MeshConfig | None,
    clusters: Indexed,
    *,
    n_clusters: int,
    raw: Mapping[str, Any],
    secret_keys: frozenset[str],
) -> list[Problem]:
    """Every rule violation in the mesh; `clusters` holds the clusters that parsed, by config index.

    `mesh` is None when mesh-wide keys failed to parse; rules that need them are then skipped, so a
    bad `maxConnectedClusters` is reported once rather than once more per cluster ID.
    """
    problems: list[Problem] = []
    if n_clusters == 0 and f"{PROJECT}:clusters" in raw:
        problems.append(Problem("clusters", "a mesh needs at least one cluster"))
    for index, cluster in clusters:
        problems += _cluster_rules(index, cluster, raw, secret_keys)
    problems += _unique("name", clusters)
    problems += _unique("id", clusters)
    problems += _overlaps(clusters)
    problems += _same_datapath(clusters)
    if mesh is not None:
        problems += _mesh_rules(mesh, clusters)
    return problems


def _cluster_rules(
    index: int, cluster: ClusterSpec, raw: Mapping[str, Any], secret_keys: frozenset[str]
) -> Iterator[Problem]:
    at = f"clusters[{index}]"
    if cluster.cni is CniMode.AWS_CNI and buggy_cluster_id(cluster.id):
        yield Problem(
            f"{at}.id",
            f"{cluster.id} cannot be used with aws-cni chaining: IDs 128-255 and 384-511 make Cilium drop "
            "policy-matched traffic (cilium/cilium#21330)",
        )
    yield from _pod_cidr_rules(at, cluster)
    yield from _routing_rules(at, cluster)
    yield from _kubeconfig_rules(at, cluster, raw, secret_keys)


def _pod_cidr_rules(at: str, cluster: ClusterSpec) -> Iterator[Problem]:
    v4, v6 = cluster.ipv4_pod_cidrs, cluster.ipv6_pod_cidrs
    if len(v4) != 1 or len(v6) > 1 or cluster.pod_cidrs[0].version != 4:
        yield Problem(f"{at}.podCidrs", "give one IPv4 CIDR, then optionally one IPv6 CIDR")
    if cluster.cni is CniMode.CILIUM:
        for i, cidr in enumerate(cluster.pod_cidrs):
            mask = CLUSTER_POOL_MASK[cidr.version]
            if cidr.prefixlen > mask:
                yield Problem(
                    f"{at}.podCidrs[{i}]",
                    f"{cidr} is smaller than the /{mask} block cluster-pool IPAM gives each node",
                )


def _routing_rules(at: str, cluster: ClusterSpec) -> Iterator[Problem]:
    native = cluster.routing.mode is RoutingMode.NATIVE
    if cluster.cni is not CniMode.CILIUM and not native:
        yield Problem(
            f"{at}.routing.mode", f"{cluster.cni} chaining needs native routing (the chained CNI routes pods)"
        )
    if native and cluster.node_cidr is None:
        yield Problem(f"{at}.nodeCidr", "required with native routing")
    if cluster.routing.auto_direct_node_routes and not native:
        yield Problem(f"{at}.routing.autoDirectNodeRoutes", "only applies to native routing")
    if cluster.k8s_service_port is not None and cluster.k8s_service_host is None:
        yield Problem(f"{at}.k8sServicePort", "needs k8sServiceHost")


def _kubeconfig_rules(
    at: str, cluster: ClusterSpec, raw: Mapping[str, Any], secret_keys: frozenset[str]
) -> Iterator[Problem]:
    source = cluster.kubeconfig
    if (source.path is None) == (source.secret is None):
        yield Problem(f"{at}.kubeconfig", "give either path (and optionally context) or secret")
    elif source.secret is not None:
        key = f"{PROJECT}:{source.secret}"
        if source.context is not None:
            yield Problem(f"{at}.kubeconfig.context", "only applies to a kubeconfig path")
        if key not in raw:
            yield Problem(f"{at}.kubeconfig.secret", f"config key {key} is not set (pulumi config set --secret ...)")
        elif key not in secret_keys:
            yield Problem(f"{at}.kubeconfig.secret", f"config key {key} is stored in plain text; set it with --secret")


def _unique(field: str, clusters: Indexed) -> Iterator[Problem]:
    first: dict[object, int] = {}
    for index, cluster in clusters:
        value = getattr(cluster, field)
        if value in first:
            owner = first[value]
            yield Problem(f"clusters[{index}].{field}", f"{value!r} is already used by clusters[{owner}]")
        else:
            first[value] = index


class _Net(NamedTuple):
    order: int
    """Position in config order: an overlap is reported on the later network."""
    path: str
    cluster: int
    cidr: IPNetwork
    pods_share_node_network: bool
    """With aws-cni chaining pods take addresses from the nodes' VPC subnets, so the two may coincide."""


def _networks(clusters: Indexed) -> list[_Net]:
    """Every network that must be routable across the mesh, with its path and cluster index."""
    nets: list[tuple[str, int, IPNetwork, bool]] = []
    for index, cluster in clusters:
        shared = cluster.cni is CniMode.AWS_CNI
        nets += [(f"clusters[{index}].podCidrs[{i}]", index, c, shared) for i, c in enumerate(cluster.pod_cidrs)]
        if cluster.node_cidr is not None:
            nets.append((f"clusters[{index}].nodeCidr", index, cluster.node_cidr, shared))
    return [_Net(order, *net) for order, net in enumerate(nets)]


def _overlaps(clusters: Indexed) -> Iterator[Problem]:
    """Pod and node networks must be disjoint across the mesh, and a service CIDR from its own pods.

    A sweep over the networks sorted by first address finds every overlapping pair in
    O(n log n + pairs), which keeps a 511-cluster mesh instant.
    """
    for index, cluster in clusters:
        for i, cidr in enumerate(cluster.pod_cidrs):
            if cluster.service_cidr.overlaps(cidr):
                yield Problem(
                    f"clusters[{index}].serviceCidr",
                    f"{cluster.service_cidr} overlaps clusters[{index}].podCidrs[{i}] {cidr}",
                )
    ordered = sorted(_networks(clusters), key=lambda n: (n.cidr.version, int(n.cidr.network_address)))
    active: list[_Net] = []
    for net in ordered:
        active = [
            a
            for a in active
            if a.cidr.version == net.cidr.version and int(a.cidr.broadcast_address) >= int(net.cidr.network_address)
        ]
        for other in active:
            if other.cluster == net.cluster and net.pods_share_node_network:
                continue
            later, earlier = (net, other) if net.order > other.order else (other, net)
            yield Problem(later.path, f"{later.cidr} overlaps {earlier.path} {earlier.cidr}")
        active.append(net)


def _same_datapath(clusters: Indexed) -> Iterator[Problem]:
    """Cilium requires one datapath mode across the mesh (routing mode and tunnel protocol)."""
    if not clusters:
        return
    first_index, first = clusters[0]
    reference = _datapath(first)
    for index, cluster in clusters[1:]:
        if _datapath(cluster) != reference:
            yield Problem(
                f"clusters[{index}].routing",
                f"{_datapath(cluster)} differs from clusters[{first_index}] ({reference}); "
                "every cluster of a mesh needs the same datapath mode",
            )


def _datapath(cluster: ClusterSpec) -> str:
    routing = cluster.routing
    return "native" if routing.mode is RoutingMode.NATIVE else f"tunnel/{routing.tunnel_protocol}"


def _mesh_rules(mesh: MeshConfig, clusters: Indexed) -> Iterator[Problem]:
    yield from _version_rules(mesh)
    for index, cluster in clusters:
        if cluster.id > mesh.max_connected_clusters:
            yield Problem(
                f"clusters[{index}].id",
                f"{cluster.id} is out of range 1..{mesh.max_connected_clusters} (maxConnectedClusters)",
            )
    certificates = mesh.certificates
    if certificates.early_renewal_hours >= certificates.validity_hours:
        yield Problem("certificates.earlyRenewalHours", "must be shorter than validityHours")
    if certificates.validity_hours > certificates.ca_validity_hours:
        yield Problem("certificates.validityHours", "must not outlive the CA (caValidityHours)")
    yield from _native_routing_rules(mesh, clusters)
    yield from _exposure_rules(mesh, clusters)


def _version_rules(mesh: MeshConfig) -> Iterator[Problem]:
    match = CILIUM_VERSION_PATTERN.fullmatch(mesh.cilium_version)
    if match is None:
        yield Problem("ciliumVersion", f"{mesh.cilium_version!r} is not a pinned chart version like 1.20.0")
    elif (int(match[1]), int(match[2])) not in {(1, minor) for minor in SUPPORTED_CILIUM_MINORS}:
        supported = ", ".join(f"1.{m}.x" for m in SUPPORTED_CILIUM_MINORS)
        yield Problem("ciliumVersion", f"{mesh.cilium_version} is not supported (supported: {supported})")
    if not _dns_name(mesh.domain):
        yield Problem("domain", f"{mesh.domain!r} is not a DNS domain name")


def _dns_name(name: str) -> bool:
    return len(name) <= 253 and all(DNS_LABEL.fullmatch(label) for label in name.split("."))


def _native_routing_rules(mesh: MeshConfig, clusters: Indexed) -> Iterator[Problem]:
    """Native routing needs ranges that cover every cluster's pods, so no cross-cluster flow is masqueraded.

    The ranges are given once for the mesh rather than derived from the clusters, so adding a cluster
    inside them changes no existing cluster's Cilium values.
    """
    native = [(i, c) for i, c in clusters if c.routing.mode is RoutingMode.NATIVE and c.cni is CniMode.CILIUM]
    versions = [c.version for c in mesh.native_routing_cidrs]
    if len(set(versions)) != len(versions):
        yield Problem("nativeRoutingCidrs", "give at most one CIDR per IP family")
    if not native:
        return
    by_family = {c.version: c for c in mesh.native_routing_cidrs}
    for index, cluster in native:
        for i, cidr in enumerate(cluster.pod_cidrs):
            routing_cidr = by_family.get(cidr.version)
            if routing_cidr is None:
                yield Problem(
                    "nativeRoutingCidrs",
                    f"needs an IPv{cidr.version} range covering every cluster's pod CIDRs "
                    f"(clusters[{index}] uses native routing)",
                )
            elif not _within(cidr, routing_cidr):
                yield Problem(
                    f"clusters[{index}].podCidrs[{i}]", f"{cidr} is outside nativeRoutingCidrs {routing_cidr}"
                )


def _within(inner: IPNetwork, outer: IPNetwork) -> bool:
    if isinstance(inner, IPv4Network) and isinstance(outer, IPv4Network):
        return inner.subnet_of(outer)
    if not isinstance(inner, IPv4Network) and not isinstance(outer, IPv4Network):
        return inner.subnet_of(outer)
    return False


def _exposure_rules(mesh: MeshConfig, clusters: Indexed) -> Iterator[Problem]:
    service_type = mesh.apiserver_exposure.type
    pinned: dict[object, int] = {}
    for index, cluster in clusters:
        exposure = cluster.apiserver_exposure
        at = f"clusters[{index}].apiserverExposure"
        ip = exposure.load_balancer_ip
        if ip is not None:
            if service_type is not ServiceType.LOAD_BALANCER:
                yield Problem(f"{at}.loadBalancerIP", "only applies when apiserverExposure.type is LoadBalancer")
            elif ip in pinned:
                yield Problem(f"{at}.loadBalancerIP", f"{ip} is already pinned by clusters[{pinned[ip]}]")
            else:
                pinned[ip] = index
        if service_type is ServiceType.NODE_PORT and not exposure.node_addresses:
            yield Problem(f"{at}.nodeAddresses", "required when apiserverExposure.type is NodePort")
        if exposure.node_addresses and service_type is not ServiceType.NODE_PORT:
            yield Problem(f"{at}.nodeAddresses", "only applies when apiserverExposure.type is NodePort")
    yield from _hostname_rules(mesh, clusters)


def _hostname_rules(mesh: MeshConfig, clusters: Indexed) -> Iterator[Problem]:
    """A cluster's own DNS name goes into its server certificate: it must be a name, and nobody else's."""
    mesh_names = {peer_hostname(mesh, cluster.name): index for index, cluster in clusters}
    taken: dict[str, int] = {}
    for index, cluster in clusters:
        exposure = cluster.apiserver_exposure
        at = f"clusters[{index}].apiserverExposure"
        hostname = exposure.hostname
        if hostname is None:
            if exposure.route53_zone_id is not None:
                yield Problem(f"{at}.route53ZoneId", "needs apiserverExposure.hostname, the name to point")
            continue
        if not _dns_name(hostname):
            yield Problem(f"{at}.hostname", f"{hostname!r} is not a lowercase DNS name")
        elif hostname in taken:
            yield Problem(f"{at}.hostname", f"{hostname} is already the hostname of clusters[{taken[hostname]}]")
        elif mesh_names.get(hostname, index) != index:
            yield Problem(f"{at}.hostname", f"{hostname} is the mesh name of clusters[{mesh_names[hostname]}]")
        else:
            taken[hostname] = index
