"""A cluster the program builds on OpenStack: network, VMs, RKE2 or k3s over SSH, and its apiserver's address.

Everything peers need is in the config (node addresses, the MetalLB or Octavia address), so a preview of a new
stack already knows every mesh value. Cross-field rules (addresses inside the subnet, outside DHCP, pinned
versions...) are `clustermesh.validation.openstack`'s, so one run reports them all.
"""

from __future__ import annotations

from enum import StrEnum
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    collapse_addresses,
    ip_address,
    ip_network,
    summarize_address_range,
)
from typing import Annotated, Literal, NamedTuple

from pydantic import Field, PlainValidator

from clustermesh.model.common import (
    ClusterBase,
    ClusterKind,
    Flag,
    IPAddress,
    IPNetwork,
    ServiceType,
    WholeNumber,
    _Model,
    shown,
)

APISERVER_PORT = 6443
"""The Kubernetes API, on RKE2 and k3s servers alike."""
METALLB_CHART_VERSION = "0.16.1"
CALICO_VERSION = "v3.32.1"
DEFAULT_BOOT_VOLUME_GB = 40


class AddressRange(NamedTuple):
    """A run of addresses `first`..`last` (both included), written `10.0.0.10-10.0.0.19`, or as a CIDR."""

    first: IPv4Address | IPv6Address
    last: IPv4Address | IPv6Address

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, IPv4Address | IPv6Address) or address.version != self.first.version:
            return False
        return int(self.first) <= int(address) <= int(self.last)

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def overlaps(self, other: AddressRange) -> bool:
        return (
            self.first.version == other.first.version
            and int(self.first) <= int(other.last)
            and int(other.first) <= int(self.last)
        )

    def cidrs(self) -> list[IPv4Network | IPv6Network]:
        """The smallest list of CIDRs covering exactly this range (allowed-address-pairs take CIDRs)."""
        return list(summarize_address_range(self.first, self.last))


def _address_range(value: object) -> AddressRange:
    if isinstance(value, AddressRange):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be an address range such as 10.0.0.10-10.0.0.19, or a CIDR (got {shown(value)})")
    text = value.strip()
    try:
        if "/" in text:
            network = ip_network(text)
            return AddressRange(network.network_address, network.broadcast_address)
        first_text, dash, last_text = text.partition("-")
        first = ip_address(first_text.strip())
        last = ip_address(last_text.strip()) if dash else first
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an address range such as 10.0.0.10-10.0.0.19, or a CIDR: {exc}") from None
    if first.version != last.version:
        raise ValueError(f"{value!r} mixes IPv4 and IPv6")
    if int(last) < int(first):
        raise ValueError(f"{value!r} ends before it starts")
    return AddressRange(first, last)


Range = Annotated[AddressRange, PlainValidator(_address_range, json_schema_input_type=str)]


def _node_addresses(value: object) -> AddressRange | tuple[IPv4Address | IPv6Address, ...]:
    if isinstance(value, AddressRange):
        return value
    if isinstance(value, list | tuple):
        addresses = []
        for i, item in enumerate(value):
            try:
                addresses.append(ip_address(item.strip() if isinstance(item, str) else item))
            except (ValueError, TypeError):
                raise ValueError(f"[{i}]: {shown(item)} is not an IP address") from None
        return tuple(addresses)
    return _address_range(value)


NodeAddresses = Annotated[
    AddressRange | tuple[IPv4Address | IPv6Address, ...],
    PlainValidator(_node_addresses, json_schema_input_type=str | list[str]),
]


class DistroName(StrEnum):
    RKE2 = "rke2"
    K3S = "k3s"
    KUBEADM = "kubeadm"


class NodeRole(StrEnum):
    SERVER = "server"
    """Control plane and etcd (and workloads, as RKE2 and k3s servers are schedulable)."""
    AGENT = "agent"


class OctaviaProvider(StrEnum):
    AMPHORA = "amphora"
    OVN = "ovn"


class OpenStackCloud(_Model):
    """Where the cluster's OpenStack resources go: a clouds.yaml entry, or an application credential."""

    cloud: str | None = None
    """An entry of clouds.yaml (the provider reads the file, so no credential enters the stack)."""
    region: str | None = None
    auth_url: str | None = None
    application_credential_id: str | None = None
    application_credential_secret: str | None = None
    """The name of a secret config key of this project that holds the application credential's secret."""


class ExistingNetwork(_Model):
    """A network and subnet that exist: the program adds ports to them and changes nothing else."""

    network: str
    """The network's name."""
    subnet: str
    """The subnet's name."""
    cidr: IPNetwork
    """The subnet's CIDR: checked against the subnet the cloud has, and the node network of the mesh."""
    dhcp_pools: tuple[Range, ...] = Field(min_length=1)
    """The subnet's allocation pools: node, MetalLB and VIP addresses must stay outside them."""


class NewNetwork(_Model):
    """A network, subnet and router the program creates."""

    cidr: IPNetwork
    dhcp_pool: Range
    """The subnet's allocation pool; node, MetalLB and VIP addresses are chosen outside it."""
    gateway: IPAddress | None = None
    """The router's address on the subnet; the subnet's first address when absent."""
    external_network: str | None = None
    """The external network the router's gateway joins (for egress and floating IPs)."""
    dns_nameservers: tuple[IPAddress, ...] = ()


class NetworkChoice(_Model):
    existing: ExistingNetwork | None = None
    create: NewNetwork | None = None

    @property
    def cidr(self) -> IPv4Network | IPv6Network:
        chosen = self.existing or self.create
        assert chosen is not None  # validation requires exactly one
        return chosen.cidr

    @property
    def dhcp_pools(self) -> tuple[AddressRange, ...]:
        if self.existing is not None:
            return self.existing.dhcp_pools
        return (self.create.dhcp_pool,) if self.create is not None else ()

    @property
    def gateway(self) -> IPv4Address | IPv6Address | None:
        if self.create is None:
            return None
        return self.create.gateway or ip_address(int(self.create.cidr.network_address) + 1)


class NodePool(_Model):
    name: str
    role: NodeRole = NodeRole.SERVER
    count: WholeNumber
    addresses: NodeAddresses
    """A range whose first `count` addresses the nodes take (the rest is room to grow, and what peers'
    firewall rules admit, so adding a node changes no rule), or one address per node."""
    flavor: str | None = None
    """The Nova flavor; the cluster's `flavor` when absent."""
    boot_volume_gb: WholeNumber = Field(default=DEFAULT_BOOT_VOLUME_GB, ge=10, alias="bootVolumeGB")
    availability_zone: str | None = None

    @property
    def node_addresses(self) -> tuple[IPv4Address | IPv6Address, ...]:
        if isinstance(self.addresses, AddressRange):
            first = int(self.addresses.first)
            count = min(self.count, self.addresses.size)
            return tuple(ip_address(first + i) for i in range(max(count, 0)))
        return tuple(self.addresses[: max(self.count, 0)])

    @property
    def reserved(self) -> list[IPv4Network | IPv6Network]:
        """The addresses this pool may ever use, as CIDRs: what other clusters' firewalls admit."""
        if isinstance(self.addresses, AddressRange):
            return self.addresses.cidrs()
        return list(collapse_addresses(ip_network(a) for a in self.addresses))  # type: ignore[type-var]


class Node(NamedTuple):
    name: str
    """The VM's name, `<cluster>-<pool>-<n>`: also its Kubernetes node name."""
    pool: NodePool
    address: IPv4Address | IPv6Address


class Distro(_Model):
    name: DistroName
    version: str
    """Pinned, as the installer takes it: v1.36.3+rke2r1, v1.36.3+k3s1; for kubeadm the Kubernetes release, v1.36.3."""
    control_plane_taint: Flag = True
    """kubeadm only: keep the control-plane taint (false lets workloads run on servers, as tutorial 004 untaints its
    single master). RKE2 and k3s servers take workloads already."""


class CalicoEncapsulation(StrEnum):
    """How Calico carries pod traffic between the nodes of its cluster (Installation.calicoNetwork.ipPools)."""

    VXLAN = "VXLAN"
    IPIP = "IPIP"
    NONE = "None"
    """No encapsulation: routed by BGP between nodes, pod addresses on the wire."""


class Calico(_Model):
    """Calico, installed by its Tigera operator, doing the cluster's IPAM and routing; Cilium chains on it."""

    version: str = CALICO_VERSION
    """The tigera-operator chart's version, pinned."""
    encapsulation: CalicoEncapsulation = CalicoEncapsulation.VXLAN
    block_size: WholeNumber = Field(default=26, ge=20, le=32)
    """Each node takes addresses in blocks of this size."""
    ip_pool: IPNetwork | None = None
    """The IP pool; the cluster's IPv4 pod CIDR when absent."""
    mtu: WholeNumber = Field(default=1350, ge=1280, le=9000)
    """The pods' MTU. The chained configuration replaces Calico's own, so Calico's detection does not apply. Tenant
    networks are 1450 (ML2/OVS with VXLAN) or 1442 (ML2/OVN with Geneve); VXLAN between nodes costs 50 more, IPIP
    20: 1350 fits them all."""


class Bastion(_Model):
    host: str
    user: str = "ubuntu"
    port: WholeNumber = Field(default=22, ge=1, le=65535)


class SshAccess(_Model):
    user: str = "ubuntu"
    private_key_secret: str | None = None
    """The name of a secret config key holding the private key; the program generates one when absent."""
    public_key: str | None = None
    """The public half of `privateKeySecret` (OpenSSH format), for the key pair the VMs get."""
    bastion: Bastion | None = None
    """A jump host the program's SSH sessions go through."""


class FloatingIps(_Model):
    enabled: Flag = False
    pool: str | None = None
    """The external network floating IPs come from."""
    api_address: IPAddress | None = Field(default=None, alias="apiAddress")
    """A floating IP allocated beforehand (its address), given to the first server: where `pulumi up` reaches the
    API from outside. Known now, unlike one Neutron picks, so the kubeconfig and certificate carry it at preview."""


class MetalLB(_Model):
    addresses: tuple[Range, ...] = Field(min_length=1)
    """The L2 pool MetalLB answers ARP for: in the subnet, outside its DHCP pools."""
    apiserver_address: IPAddress
    """The clustermesh-apiserver's address, in `addresses`: pinned, so peers know it at preview."""
    chart_version: str = METALLB_CHART_VERSION

    @property
    def cidrs(self) -> list[IPv4Network | IPv6Network]:
        return [cidr for r in self.addresses for cidr in r.cidrs()]


class Octavia(_Model):
    vip_address: IPAddress
    """The load balancer's address on the cluster's subnet, in front of every node's NodePort."""
    provider: OctaviaProvider = OctaviaProvider.AMPHORA


class ApiserverLoadBalancer(_Model):
    """How peers reach the clustermesh-apiserver: MetalLB, Octavia, or (neither) the nodes' NodePort."""

    metallb: MetalLB | None = None
    octavia: Octavia | None = None


class OpenStackCluster(ClusterBase):
    kind: Literal[ClusterKind.OPENSTACK]
    openstack: OpenStackCloud
    network: NetworkChoice
    image: str
    """The image's name (Ubuntu 22.04 or later: Cilium needs Linux 5.10)."""
    flavor: str
    node_pools: tuple[NodePool, ...] = Field(min_length=1)
    distro: Distro
    ssh: SshAccess = SshAccess()
    floating_ips: FloatingIps = FloatingIps()
    apiserver_load_balancer: ApiserverLoadBalancer = ApiserverLoadBalancer()
    calico: Calico | None = None
    """With `cni: calico`: how Calico runs (defaults when absent)."""
    admin_ranges: tuple[IPNetwork, ...] = ()
    """Networks from which the Kubernetes API and SSH are reachable (where `pulumi up` runs)."""
    api_address: IPAddress | None = None
    """Where `pulumi up` reaches the Kubernetes API; the first server's address when absent."""

    @property
    def node_cidr(self) -> IPv4Network | IPv6Network:
        return self.network.cidr

    @property
    def nodes(self) -> list[Node]:
        """Every node, servers' pools first in config order: the first is the one that initialises the cluster."""
        ordered = sorted(self.node_pools, key=lambda p: p.role is not NodeRole.SERVER)
        return [
            Node(f"{self.name}-{pool.name}-{i}", pool, address)
            for pool in ordered
            for i, address in enumerate(pool.node_addresses)
        ]

    @property
    def first_server(self) -> Node:
        return self.nodes[0]

    @property
    def api_host(self) -> IPv4Address | IPv6Address:
        """Where `pulumi up` reaches the API: `apiAddress`, else the first server's pinned floating IP, else its
        fixed address (for a runner inside the network, or behind a VPN)."""
        return self.api_address or self.floating_ips.api_address or self.first_server.address

    @property
    def api_endpoint(self) -> str:
        return f"https://{self.api_host}:{APISERVER_PORT}"

    @property
    def k8s_service_host(self) -> str:
        """Where Cilium's agents reach the API without kube-proxy. RKE2 runs an API proxy on localhost:6443 on
        every node; k3s agents' proxy listens on 6444, so k3s agents use the first server."""
        if self.distro.name is DistroName.RKE2:
            return "localhost"
        return str(self.first_server.address)

    @property
    def calico_settings(self) -> Calico:
        return self.calico or Calico()

    @property
    def calico_pool(self) -> IPv4Network | IPv6Network:
        """Calico's IP pool: the configured one, or the cluster's IPv4 pod CIDR."""
        return self.calico_settings.ip_pool or self.pod_cidrs[0]

    @property
    def k8s_service_port(self) -> int:
        return APISERVER_PORT

    def apiserver_service_type(self, mesh_default: ServiceType) -> ServiceType:
        """MetalLB answers for a LoadBalancer Service; Octavia (or peers dialling nodes) needs the NodePort."""
        if self.apiserver_load_balancer.metallb is not None:
            return ServiceType.LOAD_BALANCER
        return ServiceType.NODE_PORT

    @property
    def pinned_apiserver_ips(self) -> tuple[IPv4Address | IPv6Address, ...]:
        """Every address peers dial, pinned in the config (one here)."""
        return (self.pinned_apiserver_ip,) if self.pinned_apiserver_ip is not None else ()

    @property
    def pinned_apiserver_ip(self) -> IPv4Address | IPv6Address | None:
        balancer = self.apiserver_load_balancer
        if balancer.metallb is not None:
            return balancer.metallb.apiserver_address
        if balancer.octavia is not None:
            return balancer.octavia.vip_address
        return None

    @property
    def apiserver_node_addresses(self) -> tuple[IPAddress, ...]:
        """Without a load balancer peers dial every node's NodePort."""
        if self.pinned_apiserver_ip is not None:
            return ()
        return tuple(node.address for node in self.nodes)

    @property
    def apiserver_hostname(self) -> str | None:
        """Peers dial the pinned address under the mesh name; no hostname of its own."""
        return None

    @property
    def load_balancer_pools(self) -> list[IPv4Network | IPv6Network]:
        """The MetalLB pool as CIDRs: the addresses node ports may answer for besides their own."""
        metallb = self.apiserver_load_balancer.metallb
        return metallb.cidrs if metallb is not None else []
