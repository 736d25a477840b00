"""The rules every Cluster Mesh configuration must obey beyond its shape, each reported with its path.

They follow Cilium's own checks (pkg/clustermesh/types, the chart's validate.yaml) and its networking
requirements for a mesh, so a mistake is caught before anything is created rather than by an agent
that refuses to start or a mesh that silently drops traffic.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Generic, NamedTuple, TypeVar

import yaml

from clustermesh.aws_load_balancers import asks_for_aws_load_balancer
from clustermesh.cilium import CLUSTER_POOL_MASK, SUPPORTED_CILIUM_MINORS, buggy_cluster_id
from clustermesh.model import (
    PROJECT,
    UNDECRYPTED_SECRET,
    ClusterSpec,
    CniMode,
    EksCluster,
    ExistingCluster,
    IPAddress,
    IPNetwork,
    MeshConfig,
    OpenStackCluster,
    RoutingMode,
    ServiceType,
)
from clustermesh.render.mesh_config import peer_hostname
from clustermesh.validation.eks import eks_cluster_rules, eks_mesh_rules
from clustermesh.validation.openstack import openstack_cluster_rules, openstack_mesh_rules
from clustermesh.validation.problem import Problem

CILIUM_VERSION_PATTERN = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
QUALIFIED_NAME_MAX_LENGTH = 63
CLUSTER_SUBNET_MAX_DIFF = 16
"""Cilium's operator refuses an IPv6 pod CIDR whose per-node mask is more than 16 bits longer (its
allocation bitmap is uncompressed): pkg/ipam/cidrset NewCIDRSet, clusterSubnetMaxDiff, IPv6 only."""

Indexed = Sequence[tuple[int, ClusterSpec]]


def validate_mesh(
    mesh: MeshConfig | None,
    clusters: Indexed,
    *,
    raw: Mapping[str, Any],
    secret_keys: frozenset[str],
    unchecked: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Every rule violation in the mesh; `clusters` holds the clusters that parsed, by config index.

    `unchecked` names the mesh-wide keys that failed to parse (`mesh` then holds their defaults); the
    rules that read them are skipped, so a bad `maxConnectedClusters` is reported once rather than
    once more per cluster ID. `mesh` is None when even that could not be built.
    """
    problems: list[Problem] = []
    for index, cluster in clusters:
        problems += _cluster_rules(index, cluster, raw, secret_keys)
    problems += _unique("name", clusters)
    problems += _unique("id", clusters)
    problems += _overlaps(clusters)
    problems += _same_datapath(clusters)
    problems += _address_rules(clusters)
    problems += openstack_mesh_rules([(i, c) for i, c in clusters if isinstance(c, OpenStackCluster)])
    if mesh is not None:
        problems += eks_mesh_rules(mesh, [(i, c) for i, c in clusters if isinstance(c, EksCluster)])
    if mesh is not None:
        problems += _mesh_rules(mesh, clusters, unchecked)
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
    if isinstance(cluster, ExistingCluster):
        yield from _kubeconfig_rules(at, cluster, raw, secret_keys)
    elif isinstance(cluster, OpenStackCluster):
        yield from openstack_cluster_rules(at, cluster, raw, secret_keys)
    else:
        yield from eks_cluster_rules(at, cluster)


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
            elif cidr.version == 6 and mask - cidr.prefixlen > CLUSTER_SUBNET_MAX_DIFF:
                yield Problem(
                    f"{at}.podCidrs[{i}]",
                    f"{cidr} is too large for cluster-pool IPAM: Cilium's operator refuses an IPv6 range more than "
                    f"{CLUSTER_SUBNET_MAX_DIFF} bits shorter than its /{mask} node blocks; give a prefix from "
                    f"/{mask - CLUSTER_SUBNET_MAX_DIFF} to /{mask}",
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
    if (
        isinstance(cluster, ExistingCluster)
        and cluster.k8s_service_port is not None
        and cluster.k8s_service_host is None
    ):
        yield Problem(f"{at}.k8sServicePort", "needs k8sServiceHost")


def _kubeconfig_rules(
    at: str, cluster: ExistingCluster, raw: Mapping[str, Any], secret_keys: frozenset[str]
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
        elif raw[key] != UNDECRYPTED_SECRET.format(key=key):  # the offline planner cannot check it
            found = kubeconfig_problems(raw[key])
            if found:
                # Only the kubeconfig's structure is named, never a word of its text: it holds credentials.
                yield Problem(
                    f"{at}.kubeconfig.secret", f"config key {key} is not a usable kubeconfig: {'; '.join(found)}"
                )


def kubeconfig_problems(text: object) -> list[str]:
    """Why the Kubernetes provider could not use `text` as a kubeconfig (as client-go's clientcmd checks it).

    It must be a YAML or JSON mapping with at least one cluster (with a server), user and context, each
    context naming a listed cluster and user, and a current-context naming a listed context (the
    provider is given no context for a kubeconfig held in a secret).
    """
    try:
        document = yaml.safe_load(text) if isinstance(text, str) else None
    except (yaml.YAMLError, ValueError, RecursionError):
        return ["not valid YAML or JSON"]
    if not isinstance(document, dict):
        return ["not a YAML or JSON mapping (kind: Config, with clusters, contexts and users)"]
    problems = []
    if document.get("kind", "Config") != "Config":
        problems.append("kind is not Config")
    if document.get("apiVersion", "v1") != "v1":
        problems.append("apiVersion is not v1")
    names: dict[str, set[object]] = {}
    for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
        names[section] = set()
        problems += _kubeconfig_section(document.get(section), section, inner, names[section])
    return problems + _kubeconfig_references(document, names)


def _kubeconfig_references(document: dict[Any, Any], names: dict[str, set[object]]) -> list[str]:
    """Every cluster has a server; every context, and the current one, names entries that exist."""
    problems = []
    for i, entry in enumerate(_list(document.get("clusters"))):
        if isinstance(entry, dict) and isinstance(entry.get("cluster"), dict) and not entry["cluster"].get("server"):
            problems.append(f"clusters[{i}].cluster has no server")
    for i, entry in enumerate(_list(document.get("contexts"))):
        context = entry.get("context") if isinstance(entry, dict) else None
        for field, section in (("cluster", "clusters"), ("user", "users")):
            if isinstance(context, dict) and _hashable(context.get(field)) not in names[section]:
                problems.append(f"contexts[{i}].context.{field} names no entry of {section}")
    current = document.get("current-context")
    if not current:
        problems.append("current-context is not set")
    elif names["contexts"] and _hashable(current) not in names["contexts"]:
        problems.append("current-context names no entry of contexts")
    return problems


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _hashable(value: object) -> object:
    return value if isinstance(value, str | int | float | bool) or value is None else repr(value)


def _kubeconfig_section(entries: object, section: str, inner: str, names: set[object]) -> list[str]:
    """A list of `{name, <inner>: {...}}` entries, at least one; their names collected into `names`."""
    if not isinstance(entries, list) or not entries:
        return [f"{section} must list at least one {inner}"]
    problems = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"{section}[{i}] must be a mapping with name and {inner}")
            continue
        if not isinstance(entry.get("name"), str) or not entry["name"]:
            problems.append(f"{section}[{i}] has no name")
        else:
            names.add(entry["name"])
        if not isinstance(entry.get(inner), dict):
            problems.append(f"{section}[{i}].{inner} must be a mapping")
    return problems


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
    shared_network: object = None
    """A network several clusters may share (an OpenStack subnet): the same key, the same CIDR, no overlap."""


def _networks(clusters: Indexed) -> list[_Net]:
    """Every network that must be routable across the mesh, with its path and cluster index."""
    nets: list[tuple[str, int, IPNetwork, bool, object]] = []
    for index, cluster in clusters:
        shared = cluster.cni is CniMode.AWS_CNI
        nets += [(f"clusters[{index}].podCidrs[{i}]", index, c, shared, None) for i, c in enumerate(cluster.pod_cidrs)]
        if isinstance(cluster, OpenStackCluster):
            nets.append((f"clusters[{index}].network", index, cluster.node_cidr, False, _subnet_key(cluster)))
        elif cluster.node_cidr is not None:
            nets.append((f"clusters[{index}].nodeCidr", index, cluster.node_cidr, shared, None))
    return [_Net(order, *net) for order, net in enumerate(nets)]


def _subnet_key(cluster: OpenStackCluster) -> object:
    """Clusters whose nodes share one existing subnet (tutorial 000's two clusters on one network)."""
    existing = cluster.network.existing
    if existing is None:
        return None
    return (cluster.openstack.cloud, cluster.openstack.auth_url, existing.network, existing.subnet, existing.cidr)


def _overlaps(clusters: Indexed) -> Iterator[Problem]:
    """Pod and node networks must be disjoint across the mesh, and no service CIDR may overlap any of them.

    A sweep over the networks sorted by first address finds every overlapping pair in
    O(n log n + pairs), which keeps a 511-cluster mesh instant.
    """
    nets = _networks(clusters)
    ordered = sorted(nets, key=lambda n: (n.cidr.version, int(n.cidr.network_address)))
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
            if net.shared_network is not None and net.shared_network == other.shared_network:
                continue
            later, earlier = (net, other) if net.order > other.order else (other, net)
            yield Problem(later.path, f"{later.cidr} overlaps {earlier.path} {earlier.cidr}")
        active.append(net)
    yield from _service_overlaps(clusters, _Intervals((n.cidr, n) for n in nets))


def _service_overlaps(clusters: Indexed, routed: _Intervals[_Net]) -> Iterator[Problem]:
    """A service CIDR is each cluster's own virtual range: clusters may share one (every k3s cluster uses
    10.43.0.0/16), but a pod or node address inside it would be taken for a service in that cluster."""
    users: dict[IPNetwork, list[int]] = {}
    for index, cluster in clusters:
        users.setdefault(cluster.service_cidr, []).append(index)
    for service_cidr, indexes in users.items():
        for net in routed.overlapping(service_cidr):
            for index in indexes:
                yield Problem(f"clusters[{index}].serviceCidr", f"{service_cidr} overlaps {net.path} {net.cidr}")


T = TypeVar("T")


class _Intervals(Generic[T]):
    """Networks with a payload each, to find those overlapping a range without comparing every pair."""

    def __init__(self, items: Iterable[tuple[IPNetwork | IPAddress, T]]) -> None:
        spans = sorted((*_span(net), n, payload) for n, (net, payload) in enumerate(items))
        self._starts = [start for start, _, _, _ in spans]
        self._spans = spans
        self._reach: list[int] = []  # the furthest end among the spans up to each position
        for _, end, _, _ in spans:
            self._reach.append(max(end, self._reach[-1]) if self._reach else end)

    def overlapping(self, target: IPNetwork | IPAddress) -> Iterator[T]:
        low, high = _span(target)
        found = []
        position = bisect_right(self._starts, high) - 1
        while position >= 0 and self._reach[position] >= low:
            _, end, n, payload = self._spans[position]
            if end >= low:
                found.append((n, payload))
            position -= 1
        yield from (payload for _, payload in sorted(found, key=lambda item: item[0]))


def _span(target: IPNetwork | IPAddress) -> tuple[int, int]:
    """First and last address as integers, IPv6 above every IPv4 address so the families never meet."""
    offset = 1 << 129 if target.version == 6 else 0
    if isinstance(target, IPv4Network | IPv6Network):
        return offset + int(target.network_address), offset + int(target.broadcast_address)
    return offset + int(target), offset + int(target)


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


def _mesh_rules(mesh: MeshConfig, clusters: Indexed, unchecked: frozenset[str]) -> Iterator[Problem]:
    yield from _version_rules(mesh)
    if "maxConnectedClusters" not in unchecked:
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
    if "nativeRoutingCidrs" not in unchecked:
        yield from _native_routing_rules(mesh, clusters)
    if "apiserverExposure" not in unchecked:
        yield from _exposure_rules(mesh, clusters)
    yield from _hostname_rules(mesh, clusters)


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
    # Cilium's own native routing, and OpenStack clusters where Calico routes: their node ports carry these ranges
    # as address pairs, so each cluster's pods must lie inside them.
    native = [
        (i, c)
        for i, c in clusters
        if c.routing.mode is RoutingMode.NATIVE and (c.cni is CniMode.CILIUM or isinstance(c, OpenStackCluster))
    ]
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
    for index, cluster in _existing(clusters):
        exposure = cluster.apiserver_exposure
        at = f"clusters[{index}].apiserverExposure"
        if exposure.load_balancer_ip is not None and service_type is not ServiceType.LOAD_BALANCER:
            yield Problem(f"{at}.loadBalancerIP", "only applies when apiserverExposure.type is LoadBalancer")
        if service_type is ServiceType.NODE_PORT and not exposure.node_addresses:
            yield Problem(f"{at}.nodeAddresses", "required when apiserverExposure.type is NodePort")
        if exposure.node_addresses and service_type is not ServiceType.NODE_PORT:
            yield Problem(f"{at}.nodeAddresses", "only applies when apiserverExposure.type is NodePort")
    yield from _aws_hostname_rules(mesh, clusters)
    yield from _annotation_rules(mesh)


def _aws_hostname_rules(mesh: MeshConfig, clusters: Indexed) -> Iterator[Problem]:
    """An AWS load balancer reports a DNS name and no IP, and ignores a pinned IP: peers can only dial a name.

    Caught here rather than by `pulumi up`, which would stop only once Cilium runs and the Service answers.
    """
    exposure = mesh.apiserver_exposure
    if exposure.type is not ServiceType.LOAD_BALANCER or not asks_for_aws_load_balancer(exposure.annotations):
        return
    for index, cluster in _existing(clusters):
        if cluster.apiserver_exposure.hostname is None:
            yield Problem(
                f"clusters[{index}].apiserverExposure.hostname",
                "required: apiserverExposure.annotations ask for an AWS load balancer, which reports a DNS name "
                "and no IP (and ignores loadBalancerIP); give the cluster a DNS name of its own for peers to dial",
            )


def _address_rules(clusters: Indexed) -> Iterator[Problem]:
    """Each address peers dial belongs to one cluster, and to no cluster's pods."""
    node_owner: dict[IPAddress, int] = {}
    yield from _node_address_rules(clusters, node_owner)
    pods = _Intervals(
        (cidr, (index, i, cluster.cni is CniMode.AWS_CNI))
        for index, cluster in clusters
        for i, cidr in enumerate(cluster.pod_cidrs)
    )
    pinned: dict[IPAddress, int] = {}
    for index, cluster in clusters:
        ip = cluster.pinned_apiserver_ip
        if ip is None:
            continue
        path = f"clusters[{index}].{_pinned_path(cluster)}"
        if ip in pinned:
            yield Problem(path, f"{ip} is already pinned by clusters[{pinned[ip]}]")
        pinned.setdefault(ip, index)
        if ip in node_owner:
            yield Problem(path, f"{ip} is a node address of clusters[{node_owner[ip]}]")
        for owner, i, shared in pods.overlapping(ip):
            if not (shared and owner == index):  # aws-cni: pods and load balancers share the VPC's subnets
                cidr = _pod_cidr(clusters, owner, i)
                yield Problem(path, f"{ip} is inside clusters[{owner}].podCidrs[{i}] {cidr}, a pod range")


def _node_address_rules(clusters: Indexed, node_owner: dict[IPAddress, int]) -> Iterator[Problem]:
    """A node address serves one cluster's NodePort: listed once, by one cluster (collected in `node_owner`)."""
    for index, cluster in _existing(clusters):
        for i, address in enumerate(cluster.apiserver_exposure.node_addresses):
            path = f"clusters[{index}].apiserverExposure.nodeAddresses[{i}]"
            if address not in node_owner:
                node_owner[address] = index
            elif node_owner[address] == index:
                yield Problem(path, f"{address} is listed twice")
            else:
                yield Problem(path, f"{address} is already a node address of clusters[{node_owner[address]}]")


def _existing(clusters: Indexed) -> Iterator[tuple[int, ExistingCluster]]:
    return ((i, c) for i, c in clusters if isinstance(c, ExistingCluster))


def _pinned_path(cluster: ClusterSpec) -> str:
    if isinstance(cluster, ExistingCluster):
        return "apiserverExposure.loadBalancerIP"
    if isinstance(cluster, EksCluster):
        return "availabilityZones[0].apiserverAddress"
    if cluster.apiserver_load_balancer.metallb is not None:
        return "apiserverLoadBalancer.metallb.apiserverAddress"
    return "apiserverLoadBalancer.octavia.vipAddress"


def _pod_cidr(clusters: Indexed, owner: int, i: int) -> IPNetwork:
    return next(c for index, c in clusters if index == owner).pod_cidrs[i]


def _annotation_rules(mesh: MeshConfig) -> Iterator[Problem]:
    for key in mesh.apiserver_exposure.annotations:
        reason = annotation_key_problem(key)
        if reason is not None:
            yield Problem("apiserverExposure.annotations", f"{key!r} is not an annotation key: {reason}")


def annotation_key_problem(key: str) -> str | None:
    """Why Kubernetes would refuse `key` as an annotation key (apimachinery ValidateAnnotations).

    A qualified name, checked lowercased: an optional DNS subdomain prefix and '/', then a name of at
    most 63 characters, alphanumeric at both ends with '-', '_' and '.' between.
    """
    prefix, slash, name = key.lower().rpartition("/")
    if slash and (not prefix or not _dns_name(prefix) or "/" in prefix):
        return "the part before '/' must be a DNS subdomain such as example.com"
    if not name:
        return "the name (after any 'prefix/') must not be empty"
    if len(name) > QUALIFIED_NAME_MAX_LENGTH:
        return f"the name (after any 'prefix/') is longer than {QUALIFIED_NAME_MAX_LENGTH} characters"
    if not QUALIFIED_NAME.fullmatch(name):
        return "the name must be alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric"
    return None


def _hostname_rules(mesh: MeshConfig, clusters: Indexed) -> Iterator[Problem]:
    """A cluster's own DNS name goes into its server certificate: it must be a name, and nobody else's."""
    mesh_names = {peer_hostname(mesh, cluster.name): index for index, cluster in clusters}
    taken: dict[str, int] = {}
    for index, cluster in _existing(clusters):
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
