"""The ingress rules of an OpenStack cluster's security group: what its own nodes, its admins and its peers need.

Ports follow Cilium's firewall requirements (system_requirements.rst, "Firewall Rules") and RKE2's port table
(docs/install/requirements.md). Rules are plain values, one per Neutron security group rule, each with a key
stable enough to name the Pulumi resource: a rule never changes because another rule appeared, so adding a
peer or a node creates rules and replaces none (Neutron rules cannot be updated, only replaced).

Peers are admitted by their nodes' addresses, never by their security group: a peer may live in another
project or cloud, or not on OpenStack at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from clustermesh.model import (
    DistroName,
    Encryption,
    ExistingCluster,
    MeshConfig,
    OpenStackCluster,
    ServiceType,
    TunnelProtocol,
)
from clustermesh.model.openstack import APISERVER_PORT
from clustermesh.render.mesh_config import APISERVER_PORT as CLUSTERMESH_APISERVER_PORT
from clustermesh.render.metallb import MEMBERLIST_PORT

SELF = "self"
"""A rule's `remote` that admits the cluster's own security group (Neutron's remote_group_id)."""
PROTOCOLS = frozenset({"tcp", "udp", "icmp"})
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


@dataclass(frozen=True, order=True)
class IngressRule:
    """One ingress rule of a security group: a protocol and port range, from a CIDR or from the group itself."""

    protocol: str
    """tcp, udp or icmp."""
    port_min: int | None
    """None for icmp, which then admits every ICMP type (echo, and path-MTU messages the tunnels rely on)."""
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
        if (self.protocol == "icmp") != (self.port_min is None) or (self.port_min is None) != (self.port_max is None):
            raise ValueError(f"{self.protocol} rule with ports {self.port_min}-{self.port_max}")

    @property
    def key(self) -> str:
        """Unique within one security group, and usable in a Pulumi resource name: `tcp-6443-10.0.0.0-24`."""
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
    yield _tunnel(cluster, SELF, "the cluster's nodes")
    if cluster.apiserver_load_balancer.metallb is not None:
        # Speakers elect the node that answers ARP for each address over memberlist; without it failover
        # waits for Kubernetes to notice a node is gone.
        for protocol in ("tcp", "udp"):
            yield IngressRule(
                protocol, MEMBERLIST_PORT, MEMBERLIST_PORT, SELF, "MetalLB speakers' memberlist (L2 failover)"
            )


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


def _peer_cidrs(peer: OpenStackCluster | ExistingCluster) -> set[IPv4Network | IPv6Network]:
    """Every address the peer's nodes may ever have, so a node added in range needs no new rule.

    Each pool's CIDRs as the pool gives them, never merged across pools: a merge would turn two rules into
    one when a pool is added, replacing rules instead of adding one.
    """
    if isinstance(peer, ExistingCluster):
        return {peer.node_cidr} if peer.node_cidr is not None else set()
    return {cidr for pool in peer.node_pools for cidr in pool.reserved}


def peer_rules(
    mesh: MeshConfig, cluster: OpenStackCluster, peer: OpenStackCluster | ExistingCluster
) -> list[IngressRule]:
    """What admits `peer`'s nodes into `cluster`'s security group: tunnel, health, clustermesh-apiserver.

    Keys hold the CIDR, and peers' node addresses are distinct, so the rules of two peers never share a key.
    Pod traffic needs nothing more: it crosses in the tunnel, between node addresses.
    """
    who = f"cluster {peer.name}'s nodes"
    rules: list[IngressRule] = []
    for cidr in _peer_cidrs(peer):
        remote, ethertype = _remote(cidr)
        rules += [
            _tunnel(cluster, remote, who, ethertype),
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
    return _ordered(rules)
