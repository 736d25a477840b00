"""The ingress rules of an OpenStack cluster's security group: what its own nodes, its admins and its peers need.

Ports follow Cilium's firewall requirements (system_requirements.rst, "Firewall Rules") and RKE2's port table
(docs/install/requirements.md). Rules are plain values, one per Neutron security group rule, each with a key
stable enough to name the Pulumi resource: a rule never changes because another rule appeared, so adding a
peer or a node creates rules and replaces none (Neutron rules cannot be updated, only replaced).

Peers are admitted by their nodes' addresses, never by their security group: a peer may live in another
project or cloud, or not on OpenStack at all.

A cluster with `cni: calico` runs Calico (Tigera operator) with Cilium chained on it: Calico's own ports follow
Calico's network requirements (docs: getting-started/kubernetes/requirements, "Network requirements": BGP
179/tcp, IP-in-IP protocol 4, VXLAN 4789/udp, Typha 5473/tcp), and as Cilium routes natively there, pods'
addresses are on the wire: its own pool, and each natively routed peer's pod range, are admitted on every
protocol (Cilium's native routing: "firewalls must allow pod-to-pod traffic on all ports").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from clustermesh.model import (
    CalicoEncapsulation,
    ClusterSpec,
    CniMode,
    DistroName,
    Encryption,
    MeshConfig,
    OpenStackCluster,
    RoutingMode,
    ServiceType,
    TunnelProtocol,
)
from clustermesh.model.openstack import APISERVER_PORT
from clustermesh.render.mesh_config import APISERVER_PORT as CLUSTERMESH_APISERVER_PORT
from clustermesh.render.metallb import MEMBERLIST_PORT

SELF = "self"
"""A rule's `remote` that admits the cluster's own security group (Neutron's remote_group_id)."""
ANY = "any"
"""Every IP protocol: a Neutron rule with no protocol. Components pass `IngressRule.neutron_protocol`, which is
None for it, never the word itself (Neutron would refuse `any`)."""
IPIP = "ipip"
"""IP-in-IP, IP protocol 4, by the name Neutron accepts (neutron-lib constants: PROTO_NAME_IPIP = 'ipip')."""
PROTOCOLS = frozenset({"tcp", "udp", "icmp", IPIP, ANY})
PORTLESS = frozenset({"icmp", IPIP, ANY})
"""Protocols whose rules have no port range (Neutron takes ports for tcp, udp and the like only)."""
ETHERTYPES = frozenset({"IPv4", "IPv6"})

SSH_PORT = 22
RKE2_SUPERVISOR_PORT = 9345
"""Where RKE2 nodes register and join; k3s serves the same on the API port, 6443."""
KUBELET_PORT = 10250
ETCD_PORTS = (2379, 2381)
"""Embedded etcd on the servers: client 2379, peer 2380, metrics 2381 (RKE2's port table)."""
HEALTH_PORT = 4240
WIREGUARD_PORT = 51871
TUNNEL_PORTS = {TunnelProtocol.VXLAN: 8472, TunnelProtocol.GENEVE: 6081}
"""Cilium's defaults (the chart's `tunnelPort: 0`), which the program does not change."""
CALICO_BGP_PORT = 179
CALICO_VXLAN_PORT = 4789
"""Calico's VXLAN port (FelixConfiguration vxlanPort's default), not Cilium's 8472."""
CALICO_TYPHA_PORT = 5473
"""Where Felix on every node dials Typha (the operator always runs Typha)."""


@dataclass(frozen=True, order=True)
class IngressRule:
    """One ingress rule of a security group: a protocol and port range, from a CIDR or from the group itself."""

    protocol: str
    """tcp, udp, icmp, IPIP or ANY."""
    port_min: int | None
    """None for icmp (every ICMP type: echo, and path-MTU messages the tunnels rely on), IPIP and ANY."""
    port_max: int | None
    remote: str
    """A CIDR, or SELF for the cluster's own security group."""
    description: str
    """Why the port is open, as Neutron shows it."""
    ethertype: str = "IPv4"

    def __post_init__(self) -> None:
        # The ordering compares port_min across rules of one protocol only, so None and numbers never meet.
        if self.protocol not in PROTOCOLS or self.ethertype not in ETHERTYPES:
            raise ValueError(f"unsupported rule {self.protocol}/{self.ethertype}")
        portless = self.protocol in PORTLESS
        if portless != (self.port_min is None) or (self.port_min is None) != (self.port_max is None):
            raise ValueError(f"{self.protocol} rule with ports {self.port_min}-{self.port_max}")

    @property
    def neutron_protocol(self) -> str | None:
        """The rule's protocol as Neutron takes it: None (no protocol: all of them) for ANY."""
        return None if self.protocol == ANY else self.protocol

    @property
    def key(self) -> str:
        """Unique within one security group, and usable in a Pulumi resource name: `tcp-6443-10.0.0.0-24`,
        `any-10.101.0.0-16`, `ipip-self`."""
        ports = ""
        if self.port_min is not None:
            ports = f"-{self.port_min}" if self.port_min == self.port_max else f"-{self.port_min}-{self.port_max}"
        # '::' separates the parts of a URN, so an IPv6 CIDR's colons become underscores.
        remote = self.remote.replace("/", "-").replace(":", "_")
        return f"{self.protocol}{ports}-{remote}"


def _remote(cidr: IPv4Network | IPv6Network) -> tuple[str, str]:
    """A CIDR as a rule's remote and ethertype; the world is refused, whatever asked for it."""
    if cidr.prefixlen == 0:
        raise ValueError(f"{cidr} would open the port to the whole Internet")
    return str(cidr), "IPv4" if cidr.version == 4 else "IPv6"


def _tcp(port: int, remote: str, description: str, ethertype: str = "IPv4") -> IngressRule:
    return IngressRule("tcp", port, port, remote, description, ethertype)


def _wireguard(mesh: MeshConfig, remote: str, who: str, ethertype: str = "IPv4") -> list[IngressRule]:
    """Cilium's WireGuard tunnels, between every pair of nodes of the mesh, when the mesh encrypts."""
    if mesh.encryption is not Encryption.WIREGUARD:
        return []
    return [IngressRule("udp", WIREGUARD_PORT, WIREGUARD_PORT, remote, f"WireGuard from {who}", ethertype)]


def _tunnel(cluster: OpenStackCluster, remote: str, who: str, ethertype: str = "IPv4") -> IngressRule:
    # One datapath across the mesh (validation), so this cluster's tunnel protocol is also its peers'.
    protocol = cluster.routing.tunnel_protocol
    port = TUNNEL_PORTS[protocol]
    return IngressRule("udp", port, port, remote, f"Cilium {protocol.value} tunnel from {who}", ethertype)


def _node_port_service(mesh: MeshConfig, cluster: OpenStackCluster) -> bool:
    return cluster.apiserver_service_type(mesh.apiserver_exposure.type) is ServiceType.NODE_PORT


def _own_node_rules(cluster: OpenStackCluster) -> Iterator[IngressRule]:
    """What the cluster's nodes need from each other, admitted by the group itself so new nodes need no rule."""
    yield _tcp(APISERVER_PORT, SELF, "Kubernetes API: kubelets, agents and Cilium reach the servers")
    if cluster.distro.name is DistroName.RKE2:
        yield _tcp(RKE2_SUPERVISOR_PORT, SELF, "RKE2 supervisor: nodes register and join through the servers")
    yield _tcp(KUBELET_PORT, SELF, "kubelet API: logs, exec and metrics from the servers")
    yield IngressRule("tcp", *ETCD_PORTS, SELF, "embedded etcd between servers: client, peer and metrics")
    yield _tcp(HEALTH_PORT, SELF, "cilium-health probes between nodes")
    yield IngressRule("icmp", None, None, SELF, "cilium-health echo between nodes, and path-MTU messages")
    if cluster.routing.mode is RoutingMode.TUNNEL:
        yield _tunnel(cluster, SELF, "the cluster's nodes")
    yield from _calico_rules(cluster)
    if cluster.apiserver_load_balancer.metallb is not None:
        # Speakers elect the node that answers ARP for each address over memberlist; without it failover
        # waits for Kubernetes to notice a node is gone.
        for protocol in ("tcp", "udp"):
            yield IngressRule(
                protocol, MEMBERLIST_PORT, MEMBERLIST_PORT, SELF, "MetalLB speakers' memberlist (L2 failover)"
            )


def calico_chained(cluster: ClusterSpec) -> bool:
    """Whether the program runs Calico on `cluster` (an OpenStack cluster with `cni: calico`)."""
    return isinstance(cluster, OpenStackCluster) and cluster.cni is CniMode.CALICO


def _calico_rules(cluster: OpenStackCluster) -> Iterator[IngressRule]:
    """What Calico needs between the cluster's own nodes, and the pod traffic of its own pool.

    Calico's network requirements: Typha 5473/tcp (Felix on every node dials it), BGP 179/tcp where BIRD
    routes (the operator requires BGP for IPIP and unencapsulated pools), IP protocol 4 for IP-in-IP, 4789/udp
    for VXLAN. Its pool is admitted on every protocol: Cilium routes natively, so pod-sourced packets that Calico
    does not encapsulate (all of them without encapsulation, and replies between nodes) carry pod addresses.
    Without encapsulation the nodes also reach each other's pods from their own addresses (the API server
    calling a webhook, a NodePort's SNATed traffic), on any port: the group admits itself on every protocol.
    """
    if not calico_chained(cluster):
        return
    encapsulation = cluster.calico_settings.encapsulation
    yield _tcp(CALICO_TYPHA_PORT, SELF, "Calico Typha: Felix on every node")
    if encapsulation in (CalicoEncapsulation.IPIP, CalicoEncapsulation.NONE):
        yield _tcp(CALICO_BGP_PORT, SELF, "Calico BGP (BIRD) between the cluster's nodes")
    if encapsulation is CalicoEncapsulation.IPIP:
        yield IngressRule(IPIP, None, None, SELF, "Calico IP-in-IP between the cluster's nodes")
    if encapsulation is CalicoEncapsulation.VXLAN:
        yield IngressRule("udp", CALICO_VXLAN_PORT, CALICO_VXLAN_PORT, SELF, "Calico VXLAN between the cluster's nodes")
    if encapsulation is CalicoEncapsulation.NONE:
        yield IngressRule(ANY, None, None, SELF, "unencapsulated Calico: nodes reach each other's pods")
    remote, ethertype = _remote(cluster.calico_pool)
    yield IngressRule(ANY, None, None, remote, "pod traffic of the cluster's Calico pool", ethertype)


def _admin_rules(cluster: OpenStackCluster) -> Iterator[IngressRule]:
    """Where `pulumi up` runs: it installs the nodes over SSH and then drives the Kubernetes API."""
    for cidr in cluster.admin_ranges:
        remote, ethertype = _remote(cidr)
        yield _tcp(APISERVER_PORT, remote, "Kubernetes API from the admin ranges (pulumi up)", ethertype)
        yield _tcp(SSH_PORT, remote, "SSH from the admin ranges: install and join the nodes", ethertype)


def _subnet_rules(mesh: MeshConfig, cluster: OpenStackCluster) -> Iterator[IngressRule]:
    """Octavia's amphorae (and OVN's health-check port) sit on the cluster's subnet and dial the NodePort.

    Port 2379 is not opened to the subnet: no load balancer on it dials the nodes there (Octavia's members are
    NodePorts), and on servers 2379 is also embedded etcd's client port, which an existing subnet may share
    with other tenants' VMs.
    """
    if _node_port_service(mesh, cluster):
        remote, ethertype = _remote(cluster.network.cidr)
        port = mesh.apiserver_exposure.node_port
        yield _tcp(port, remote, "clustermesh-apiserver NodePort: the load balancer and its checks", ethertype)


def _ordered(rules: Iterable[IngressRule]) -> list[IngressRule]:
    """Sorted, one rule per key: Neutron refuses a second rule that differs only in its description."""
    unique: dict[str, IngressRule] = {}
    for rule in sorted(set(rules)):
        unique.setdefault(rule.key, rule)
    return sorted(unique.values())


def cluster_rules(mesh: MeshConfig, cluster: OpenStackCluster) -> list[IngressRule]:
    """The rules `cluster` needs whatever its peers: its own nodes, its admin ranges, its subnet.

    The NodePort range is not opened: the only NodePort peers or load balancers use is the mesh's.
    """
    own = [*_own_node_rules(cluster), *_wireguard(mesh, SELF, "the cluster's nodes")]
    return _ordered([*own, *_admin_rules(cluster), *_subnet_rules(mesh, cluster)])


def _peer_cidrs(peer: ClusterSpec) -> set[IPv4Network | IPv6Network]:
    """Every address the peer's nodes may ever have, so a node added in range needs no new rule.

    Each pool's CIDRs as the pool gives them, never merged across pools: a merge would turn two rules into
    one when a pool is added, replacing rules instead of adding one.
    """
    if isinstance(peer, OpenStackCluster):
        return {cidr for pool in peer.node_pools for cidr in pool.reserved}
    return {peer.node_cidr} if peer.node_cidr is not None else set()


def native_pod_cidrs(cluster: ClusterSpec) -> list[IPv4Network | IPv6Network]:
    """The pod addresses `cluster` puts on the wire towards its peers: none in tunnel mode; its Calico pool
    when the program runs Calico there; an existing natively routed cluster's IPv4 pod CIDRs.

    What a Calico cluster admits from a peer (`peer_rules`), and what it keeps out of its own allocation and
    NAT with a disabled IP pool (`clustermesh.render.calico.peer_pool`).
    """
    if cluster.routing.mode is not RoutingMode.NATIVE:
        return []
    if isinstance(cluster, OpenStackCluster):
        return [cluster.calico_pool] if calico_chained(cluster) else []
    return list(cluster.ipv4_pod_cidrs)


def peer_rules(mesh: MeshConfig, cluster: OpenStackCluster, peer: ClusterSpec) -> list[IngressRule]:
    """What admits `peer`'s nodes into `cluster`'s security group: tunnel, health, clustermesh-apiserver.

    Keys hold the CIDR, and peers' node addresses are distinct, so the rules of two peers never share a key.
    In tunnel mode pod traffic needs nothing more: it crosses in the tunnel, between node addresses. A cluster
    running Calico routes natively (no Cilium tunnel): the peer's pods reach it from their own addresses, so
    the peer's pod range (`native_pod_cidrs`) is admitted on every protocol.
    """
    who = f"cluster {peer.name}'s nodes"
    rules: list[IngressRule] = []
    for cidr in _peer_cidrs(peer):
        remote, ethertype = _remote(cidr)
        if cluster.routing.mode is RoutingMode.TUNNEL:
            rules.append(_tunnel(cluster, remote, who, ethertype))
        rules += [
            _tcp(HEALTH_PORT, remote, f"cilium-health probes from {who}", ethertype),
            IngressRule("icmp", None, None, remote, f"cilium-health echo from {who}", ethertype),
            *_wireguard(mesh, remote, who, ethertype),
        ]
        if cluster.pinned_apiserver_ip is not None:
            # The MetalLB address answers on the node that holds it, and a security group cannot tell that
            # address from the node's own: 2379 opens on every node, to peers only. With Octavia it is for
            # the VIP's port, should it share this group. Without either, peers dial the NodePort alone.
            rules.append(_tcp(CLUSTERMESH_APISERVER_PORT, remote, f"clustermesh-apiserver from {who}", ethertype))
        if _node_port_service(mesh, cluster):
            port = mesh.apiserver_exposure.node_port
            rules.append(_tcp(port, remote, f"clustermesh-apiserver NodePort from {who}", ethertype))
        if calico_chained(cluster) and calico_chained(peer):
            # Every node peers with every node of the other Calico clusters (both sides dial), so each learns
            # the other cluster's blocks with that cluster's own nodes as next hops.
            rules.append(_tcp(CALICO_BGP_PORT, remote, f"Calico BGP from {who}", ethertype))
    if calico_chained(cluster):
        for cidr in native_pod_cidrs(peer):
            remote, ethertype = _remote(cidr)
            rules.append(IngressRule(ANY, None, None, remote, f"pod traffic of cluster {peer.name}", ethertype))
    return _ordered(rules)
