"""The rules of an OpenStack cluster's config: what Neutron, Nova, RKE2/k3s and MetalLB would refuse or break on.

Caught here, every one at once with its path, rather than by a `pulumi up` that stops half way: an address
outside the subnet (Neutron's InvalidIpForSubnet), inside the DHCP pool (taken by the next VM that boots),
two nodes on one address (409), a MetalLB address a node holds (ARP fights), an unpinned installer version
(a new node would join with another Kubernetes), an SSH key in plain text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from clustermesh.model import (
    PROJECT,
    AddressRange,
    CalicoEncapsulation,
    CniMode,
    DistroName,
    MetalLB,
    NodePool,
    NodeRole,
    OpenStackCluster,
    RoutingMode,
)
from clustermesh.validation.problem import Problem

PINNED_DISTRO_VERSION = {
    DistroName.RKE2: (re.compile(r"v1\.\d+\.\d+\+rke2r\d+"), "v1.36.3+rke2r1"),
    DistroName.K3S: (re.compile(r"v1\.\d+\.\d+\+k3s\d+"), "v1.36.3+k3s1"),
    DistroName.KUBEADM: (re.compile(r"v1\.\d+\.\d+"), "v1.36.3"),
}
PINNED_CALICO_VERSION = re.compile(r"v3\.\d+\.\d+")
"""The installers take an exact release (INSTALL_RKE2_VERSION, INSTALL_K3S_VERSION); a channel would let a node
added later join with a newer Kubernetes than its servers."""
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
NODE_NAME_MAX_LENGTH = 63
WORLD_PREFIX_LENGTH = 0
MAX_ADDRESS_PAIRS = 10
"""Neutron's default `max_allowed_address_pair`."""

Address = IPv4Address | IPv6Address


def openstack_cluster_rules(
    at: str, cluster: OpenStackCluster, raw: Mapping[str, Any], secret_keys: frozenset[str]
) -> Iterator[Problem]:
    yield from _datapath_rules(at, cluster)
    yield from _credential_rules(at, cluster, raw, secret_keys)
    yield from _network_rules(at, cluster)
    yield from _pool_rules(at, cluster)
    yield from _load_balancer_rules(at, cluster)
    yield from _access_rules(at, cluster, raw, secret_keys)
    pattern, example = PINNED_DISTRO_VERSION[cluster.distro.name]
    if not pattern.fullmatch(cluster.distro.version):
        yield Problem(
            f"{at}.distro.version",
            f"{cluster.distro.version!r} is not a pinned {cluster.distro.name} release such as {example}",
        )


def _datapath_rules(at: str, cluster: OpenStackCluster) -> Iterator[Problem]:
    if cluster.cni not in (CniMode.CILIUM, CniMode.CALICO):
        yield Problem(f"{at}.cni", f"{cluster.cni} is not available on kind openstack; use cilium or calico")
    if cluster.routing.mode is RoutingMode.NATIVE and cluster.cni is CniMode.CILIUM:
        # Neutron drops packets from addresses a port does not own: Cilium's own native routing would need every
        # cluster's pod ranges on every port and routes per node. With Calico chained, Calico routes the pods and
        # the program adds the pod ranges and a route per cluster (see the README).
        yield Problem(
            f"{at}.routing.mode",
            "native routing on OpenStack needs cni: calico (Calico routes the pods); use tunnel (vxlan/geneve)",
        )
    if cluster.calico is not None and cluster.cni is not CniMode.CALICO:
        yield Problem(f"{at}.calico", "only applies with cni: calico")
    if cluster.cni is CniMode.CALICO:
        yield from _calico_rules(at, cluster)
    # kubeadm's pod-subnet-vs-node-mask limit (tutorial 004's /24) does not apply: the program turns off the
    # controller-manager's node CIDR allocation, which neither Calico nor Cilium's cluster-pool IPAM uses, and
    # kubeadm checks the limit only with it on (ValidateNetworking).
    if cluster.distro.name is not DistroName.KUBEADM and not cluster.distro.control_plane_taint:
        yield Problem(f"{at}.distro.controlPlaneTaint", "only applies to kubeadm (RKE2 and k3s servers take workloads)")


def _calico_rules(at: str, cluster: OpenStackCluster) -> Iterator[Problem]:
    """Calico's own limits: its pool inside the cluster's pod range, a block per node at least."""
    settings = cluster.calico_settings
    pool = cluster.calico_pool
    path = f"{at}.calico.ipPool" if settings.ip_pool is not None else f"{at}.podCidrs[0]"
    if not PINNED_CALICO_VERSION.fullmatch(settings.version):
        yield Problem(f"{at}.calico.version", f"{settings.version!r} is not a pinned Calico release such as v3.32.1")
    if not any(pool.version == c.version and pool.subnet_of(c) for c in cluster.pod_cidrs):  # type: ignore[arg-type]
        yield Problem(path, f"{pool} is not inside the cluster's pod CIDRs")
        return
    if pool.version == 4 and pool.prefixlen > settings.block_size:
        yield Problem(path, f"{pool} is smaller than one Calico block (/{settings.block_size}, calico.blockSize)")
        return
    blocks = 2 ** max(settings.block_size - pool.prefixlen, 0)
    nodes = len(cluster.nodes)
    if blocks < nodes:
        yield Problem(
            path,
            f"{pool} holds {blocks} Calico block(s) of /{settings.block_size} and the cluster has {nodes} nodes, "
            "each of which takes a block: widen the pool or narrow calico.blockSize",
        )


def _secret_reference(
    path: str, name: str, raw: Mapping[str, Any], secret_keys: frozenset[str], what: str
) -> Iterator[Problem]:
    key = f"{PROJECT}:{name}"
    if key not in raw:
        yield Problem(path, f"config key {key} is not set (pulumi config set --secret {name} ...)")
    elif key not in secret_keys:
        yield Problem(path, f"config key {key} holds {what} in plain text; set it with --secret")


def _credential_rules(
    at: str, cluster: OpenStackCluster, raw: Mapping[str, Any], secret_keys: frozenset[str]
) -> Iterator[Problem]:
    cloud = cluster.openstack
    application = (cloud.auth_url, cloud.application_credential_id, cloud.application_credential_secret)
    if cloud.cloud is not None and any(application):
        yield Problem(f"{at}.openstack", "give either cloud (a clouds.yaml entry) or an application credential")
    elif cloud.cloud is None and not all(application):
        yield Problem(
            f"{at}.openstack",
            "give cloud (a clouds.yaml entry), or authUrl, applicationCredentialId and applicationCredentialSecret",
        )
    if cloud.application_credential_secret is not None:
        yield from _secret_reference(
            f"{at}.openstack.applicationCredentialSecret",
            cloud.application_credential_secret,
            raw,
            secret_keys,
            "a credential",
        )


def _network_rules(at: str, cluster: OpenStackCluster) -> Iterator[Problem]:
    network = cluster.network
    if (network.existing is None) == (network.create is None):
        yield Problem(f"{at}.network", "give either existing (a network and subnet) or create")
        return
    cidr = network.cidr
    for i, pool in enumerate(network.dhcp_pools):
        path = f"{at}.network.existing.dhcpPools[{i}]" if network.existing else f"{at}.network.create.dhcpPool"
        if not _range_in(pool, cluster):
            yield Problem(path, f"{pool} is not inside the subnet {cidr}")
    create = network.create
    if create is not None:
        gateway = network.gateway
        if create.gateway is not None and create.gateway not in cidr:
            yield Problem(f"{at}.network.create.gateway", f"{create.gateway} is not inside the subnet {cidr}")
        elif gateway is not None and gateway in create.dhcp_pool:
            yield Problem(f"{at}.network.create.dhcpPool", f"{create.dhcp_pool} holds the gateway {gateway}")
        if cluster.floating_ips.enabled and create.external_network is None:
            yield Problem(
                f"{at}.network.create.externalNetwork",
                "required with floatingIps: a floating IP reaches a subnet through a router with an external gateway",
            )


def _range_in(pool: AddressRange, cluster: OpenStackCluster) -> bool:
    cidr = cluster.network.cidr
    return pool.first.version == cidr.version and pool.first in cidr and pool.last in cidr


def _usable(address: Address, cluster: OpenStackCluster) -> str | None:
    """Why `address` cannot be fixed on this cluster's subnet, or None."""
    cidr = cluster.network.cidr
    if address.version != cidr.version or address not in cidr:
        return f"{address} is not inside the subnet {cidr}"
    if cidr.num_addresses > 2 and address in (cidr.network_address, cidr.broadcast_address):
        return f"{address} is the subnet's {'network' if address == cidr.network_address else 'broadcast'} address"
    if address == cluster.network.gateway:
        return f"{address} is the subnet's gateway"
    for pool in cluster.network.dhcp_pools:
        if address in pool:
            return f"{address} is inside the DHCP pool {pool}, which hands it to the next VM that boots"
    return None


def _pool_rules(at: str, cluster: OpenStackCluster) -> Iterator[Problem]:
    seen: dict[Address, str] = {}
    names: set[str] = set()
    if not any(pool.role is NodeRole.SERVER for pool in cluster.node_pools):
        yield Problem(f"{at}.nodePools", "needs a pool with role server (the control plane)")
    for p, pool in enumerate(cluster.node_pools):
        here = f"{at}.nodePools[{p}]"
        if not DNS_LABEL.fullmatch(pool.name):
            yield Problem(f"{here}.name", f"{pool.name!r} is not a lowercase DNS label")
        elif pool.name in names:
            yield Problem(f"{here}.name", f"{pool.name} is already a pool of this cluster")
        names.add(pool.name)
        if len(f"{cluster.name}-{pool.name}-{pool.count}") > NODE_NAME_MAX_LENGTH:
            yield Problem(f"{here}.name", f"node names <cluster>-{pool.name}-<n> would exceed 63 characters")
        yield from _pool_address_rules(here, pool, cluster, seen)


def _pool_address_rules(
    here: str, pool: NodePool, cluster: OpenStackCluster, seen: dict[Address, str]
) -> Iterator[Problem]:
    if pool.count < 1:
        yield Problem(f"{here}.count", f"{pool.count}: a pool needs at least one node")
    addresses = pool.addresses
    available = addresses.size if isinstance(addresses, AddressRange) else len(addresses)
    if pool.count > available:
        yield Problem(f"{here}.addresses", f"{available} addresses for {pool.count} nodes")
    if isinstance(addresses, AddressRange) and not _range_in(addresses, cluster):
        yield Problem(f"{here}.addresses", f"{addresses} is not inside the subnet {cluster.network.cidr}")
    for i, address in enumerate(pool.node_addresses):
        path = f"{here}.addresses" + ("" if isinstance(addresses, AddressRange) else f"[{i}]")
        reason = _usable(address, cluster)
        if reason is not None:
            yield Problem(path, reason)
        elif address in seen:
            yield Problem(path, f"{address} is already the address of {seen[address]}")
        seen[address] = f"{here} node {i}"


def _load_balancer_rules(at: str, cluster: OpenStackCluster) -> Iterator[Problem]:
    balancer = cluster.apiserver_load_balancer
    here = f"{at}.apiserverLoadBalancer"
    if balancer.metallb is not None and balancer.octavia is not None:
        yield Problem(here, "give metallb or octavia, not both")
    if balancer.metallb is not None:
        yield from _metallb_rules(f"{here}.metallb", balancer.metallb, cluster)
    if balancer.octavia is not None:
        vip = balancer.octavia.vip_address
        nodes = {node.address: node.name for node in cluster.nodes}
        reason = _usable(vip, cluster)
        if reason is None and vip in nodes:
            reason = f"{vip} is the address of node {nodes[vip]}"
        if reason is not None:
            yield Problem(f"{here}.octavia.vipAddress", reason)


def _metallb_rules(here: str, metallb: MetalLB, cluster: OpenStackCluster) -> Iterator[Problem]:
    for i, pool in enumerate(metallb.addresses):
        yield from _metallb_pool_rules(f"{here}.addresses[{i}]", pool, cluster)
    pairs = len(metallb.cidrs) + 1  # the pool's CIDRs, and the pinned address on its own
    if pairs > MAX_ADDRESS_PAIRS:
        yield Problem(
            f"{here}.addresses",
            f"needs {pairs} address pairs on every node port (the pool's CIDRs and the pinned address); Neutron "
            f"allows {MAX_ADDRESS_PAIRS} per port: give ranges aligned on powers of two",
        )
    if not any(metallb.apiserver_address in pool for pool in metallb.addresses):
        yield Problem(f"{here}.apiserverAddress", f"{metallb.apiserver_address} is not in metallb.addresses")
    elif (reason := _usable(metallb.apiserver_address, cluster)) is not None:
        yield Problem(f"{here}.apiserverAddress", reason)


def _metallb_pool_rules(path: str, pool: AddressRange, cluster: OpenStackCluster) -> Iterator[Problem]:
    if not _range_in(pool, cluster):
        yield Problem(path, f"{pool} is not inside the subnet {cluster.network.cidr}")
    gateway = cluster.network.gateway
    if gateway is not None and gateway in pool:
        yield Problem(path, f"{pool} holds the subnet's gateway {gateway}")
    for dhcp in cluster.network.dhcp_pools:
        if pool.overlaps(dhcp):
            yield Problem(path, f"{pool} overlaps the DHCP pool {dhcp}")
    for p, node_pool in enumerate(cluster.node_pools):
        if isinstance(node_pool.addresses, AddressRange) and pool.overlaps(node_pool.addresses):
            yield Problem(path, f"{pool} overlaps nodePools[{p}].addresses {node_pool.addresses}")
        elif isinstance(node_pool.addresses, tuple):
            for address in node_pool.node_addresses:
                if address in pool:
                    yield Problem(path, f"{pool} holds {address}, a node address of nodePools[{p}]")


def _access_rules(
    at: str, cluster: OpenStackCluster, raw: Mapping[str, Any], secret_keys: frozenset[str]
) -> Iterator[Problem]:
    ssh = cluster.ssh
    if (ssh.private_key_secret is None) != (ssh.public_key is None):
        yield Problem(
            f"{at}.ssh",
            "give privateKeySecret and publicKey together, or neither (the program then generates a key)",
        )
    if ssh.private_key_secret is not None:
        yield from _secret_reference(
            f"{at}.ssh.privateKeySecret", ssh.private_key_secret, raw, secret_keys, "a private key"
        )
    if ssh.public_key is not None and not re.fullmatch(
        r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) \S+( .*)?", ssh.public_key
    ):
        yield Problem(f"{at}.ssh.publicKey", "is not an OpenSSH public key (ssh-ed25519 AAAA...)")
    if cluster.floating_ips.api_address is not None and not cluster.floating_ips.enabled:
        yield Problem(f"{at}.floatingIps.apiAddress", "only applies when floating IPs are enabled")
    if cluster.floating_ips.enabled and cluster.floating_ips.pool is None:
        yield Problem(f"{at}.floatingIps.pool", "required when floating IPs are enabled: the external network")
    for i, cidr in enumerate(cluster.admin_ranges):
        if cidr.prefixlen == WORLD_PREFIX_LENGTH:
            yield Problem(
                f"{at}.adminRanges[{i}]",
                f"{cidr} opens the Kubernetes API and SSH to the world; give the networks `pulumi up` runs from",
            )


def openstack_mesh_rules(clusters: Sequence[tuple[int, OpenStackCluster]]) -> Iterator[Problem]:
    """Clusters sharing a subnet share its addresses: no node, VIP or MetalLB address, and no node range, may belong
    to two of them. Node names are VM names and resource names: two clusters may not make the same one."""
    owners: dict[Address, tuple[int, str]] = {}
    names: dict[str, int] = {}
    yield from calico_mesh_rules(clusters)
    for index, cluster in clusters:
        for node in cluster.nodes:
            if names.setdefault(node.name, index) != index:
                yield Problem(
                    f"clusters[{index}].nodePools",
                    f"node name {node.name} (<cluster>-<pool>-<n>) is also a node of clusters[{names[node.name]}]",
                )
        for what, address, path in _claims(cluster):
            owner = owners.setdefault(address, (index, what))
            if owner[0] != index:
                yield Problem(
                    f"clusters[{index}].{path}",
                    f"{address} ({what}) is already the address of clusters[{owner[0]}] {owner[1]}",
                )
        for other_index, other in clusters:
            if other_index != index and other.network.cidr == cluster.network.cidr:
                yield from _shared_subnet_rules(index, cluster, other_index, other)


def calico_mesh_rules(clusters: Sequence[tuple[int, OpenStackCluster]]) -> Iterator[Problem]:
    """Calico clusters of one mesh route to each other's pods by BGP, node to node: they must share a subnet (a
    next hop is a node's address on it), and run BIRD, which the program's Installation turns off with VXLAN."""
    calico = [(i, c) for i, c in clusters if c.cni is CniMode.CALICO]
    if len(calico) < 2:
        return
    first_index, first = calico[0]
    for index, cluster in calico:
        if index != first_index and _subnet_of(cluster) != _subnet_of(first):
            yield Problem(
                f"clusters[{index}].network",
                "Calico clusters reach each other's pods node to node: put it on the subnet of "
                f"clusters[{first_index}] ({first.network.cidr})",
            )
        if cluster.calico_settings.encapsulation is CalicoEncapsulation.VXLAN:
            yield Problem(
                f"clusters[{index}].calico.encapsulation",
                "VXLAN turns Calico's BGP off, and meshed Calico clusters learn each other's pods by BGP: "
                "use IPIP or None",
            )


def _subnet_of(cluster: OpenStackCluster) -> object:
    existing = cluster.network.existing
    if existing is None:
        return ("created", cluster.name)
    return (cluster.openstack.cloud, cluster.openstack.auth_url, existing.network, existing.subnet, existing.cidr)


def _claims(cluster: OpenStackCluster) -> Iterator[tuple[str, Address, str]]:
    """Every address the cluster holds on its subnet: what, which address, and where the config says it."""
    for node in cluster.nodes:
        yield f"node {node.name}", node.address, "nodePools"
    balancer = cluster.apiserver_load_balancer
    if balancer.metallb is not None:
        yield (
            "clustermesh-apiserver",
            balancer.metallb.apiserver_address,
            "apiserverLoadBalancer.metallb.apiserverAddress",
        )
    if balancer.octavia is not None:
        yield "Octavia VIP", balancer.octavia.vip_address, "apiserverLoadBalancer.octavia.vipAddress"


def _pool_span(pool: NodePool) -> AddressRange:
    """The addresses a pool may ever take: what other clusters' firewalls admit as its nodes."""
    if isinstance(pool.addresses, AddressRange):
        return pool.addresses
    ordered = sorted(pool.addresses, key=int)
    return AddressRange(ordered[0], ordered[-1])


def _shared_node_range_rules(
    index: int, cluster: OpenStackCluster, other_index: int, other: OpenStackCluster
) -> Iterator[Problem]:
    for p, pool in enumerate(cluster.node_pools):
        for q, theirs in enumerate(other.node_pools):
            if pool.addresses and theirs.addresses and _pool_span(pool).overlaps(_pool_span(theirs)):
                yield Problem(
                    f"clusters[{index}].nodePools[{p}].addresses",
                    f"{_pool_span(pool)} overlaps clusters[{other_index}].nodePools[{q}].addresses "
                    f"{_pool_span(theirs)} on the same subnet (each cluster's firewall admits the other's range)",
                )


def _shared_subnet_rules(
    index: int, cluster: OpenStackCluster, other_index: int, other: OpenStackCluster
) -> Iterator[Problem]:
    if other_index < index:
        yield from _shared_node_range_rules(index, cluster, other_index, other)
    metallb = cluster.apiserver_load_balancer.metallb
    if metallb is None:
        return
    other_metallb = other.apiserver_load_balancer.metallb
    for i, pool_range in enumerate(metallb.addresses):
        path = f"clusters[{index}].apiserverLoadBalancer.metallb.addresses[{i}]"
        for theirs_range in other_metallb.addresses if other_metallb is not None and other_index < index else ():
            if pool_range.overlaps(theirs_range):
                yield Problem(
                    path,
                    f"{pool_range} overlaps clusters[{other_index}]'s MetalLB pool {theirs_range} on the same subnet",
                )
        for node in other.nodes:
            if node.address in pool_range:
                yield Problem(
                    path,
                    f"{pool_range} holds {node.address}, the address of clusters[{other_index}] node {node.name}",
                )
