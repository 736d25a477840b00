"""Calico for an OpenStack cluster with `cni: calico`: the Tigera operator's chart values, the Installation, and the
disabled IP pools that keep other clusters' pod ranges out of Calico's allocation and outgoing NAT.

Calico allocates pod addresses and routes them (IP-in-IP, VXLAN, or BGP without encapsulation); Cilium chains on
it in generic-veth mode (`clustermesh.render.cni`), with native routing and its own masquerading off, so Calico's
`natOutgoing` is what masquerades pods' traffic leaving the cluster's pools.

Keys are those of Calico v3.32.1: the tigera-operator chart's values.yaml, the Installation CRD
(operator.tigera.io/v1, as tigera/operator v1.42.3 ships it) and the IPPool CRD (crd.projectcalico.org/v1).
From v3.32 the chart holds no CRD: with `manageCRDs` the operator creates the operator.tigera.io and
crd.projectcalico.org CRDs when it starts (tigera/operator cmd/main.go), so the Installation and the IP pools can
only be created once the operator runs (or once the `crd.projectcalico.org.v1` chart is installed).
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Any

from clustermesh.model import (
    CalicoEncapsulation,
    CniMode,
    DistroName,
    MeshConfig,
    OpenStackCluster,
)
from clustermesh.render.firewall import native_pod_cidrs

OPERATOR_NAMESPACE = "tigera-operator"
RELEASE_NAME = "calico"
CHART = "tigera-operator"
REPOSITORY = "https://docs.tigera.io/calico/charts"
"""The chart repository the chart's README adds (`helm repo add projectcalico https://docs.tigera.io/calico/charts`);
chart versions are Calico's tags, `v3.32.1`."""
CRD_CHART = "crd.projectcalico.org.v1"
"""The same repository's chart of the CRDs (crd.projectcalico.org/v1 and operator.tigera.io/v1), for a caller that
installs them itself rather than waiting for the operator to."""
INSTALLATION_API_VERSION = "operator.tigera.io/v1"
INSTALLATION_NAME = "default"
"""The operator reconciles only the Installation named `default` (the CRD's description)."""
IPPOOL_API_VERSION = "crd.projectcalico.org/v1"
"""The IP pool API that exists without the Calico API server: see `peer_pool`."""
PEER_POOL_PREFIX = "clustermesh-"
DEFAULT_BLOCK_SIZES = {4: 26, 6: 122}
BLOCK_SIZE_RANGES = {4: (20, 32), 6: (116, 128)}
"""What the operator accepts for each family (tigera/operator pkg/controller/ippool/validation.go)."""
ENCAPSULATION = {
    CalicoEncapsulation.VXLAN: "VXLAN",
    CalicoEncapsulation.IPIP: "IPIP",
    CalicoEncapsulation.NONE: "None",
}
"""The Installation's `ipPools[].encapsulation` for each setting (the CRD's enum)."""


def _calico(cluster: OpenStackCluster) -> None:
    if cluster.cni is not CniMode.CALICO:
        raise ValueError(f"cluster {cluster.name} does not run Calico (cni: {cluster.cni})")


def _pool_name(pool: IPv4Network | IPv6Network) -> str:
    """The name the operator gives a pool it creates by default (pkg/controller/ippool/defaults.go)."""
    return f"default-ipv{pool.version}-ippool"


def _own_pool(cluster: OpenStackCluster) -> dict[str, Any]:
    """The cluster's one pool, checked as the operator checks it before it creates anything."""
    settings = cluster.calico_settings
    pool = cluster.calico_pool
    low, high = BLOCK_SIZE_RANGES[pool.version]
    if not low <= settings.block_size <= high:
        raise ValueError(f"block size {settings.block_size} is not valid for IPv{pool.version} ({low} to {high})")
    if pool.prefixlen > settings.block_size:
        raise ValueError(f"Calico pool {pool} is smaller than one block (/{settings.block_size})")
    if pool.version == 6 and settings.encapsulation is CalicoEncapsulation.IPIP:
        raise ValueError(f"IP-in-IP cannot carry the IPv6 pool {pool}")
    return {
        "name": _pool_name(pool),
        "cidr": str(pool),
        "encapsulation": ENCAPSULATION[settings.encapsulation],
        "blockSize": settings.block_size,
        "natOutgoing": "Enabled",
        "nodeSelector": "all()",
    }


def installation(cluster: OpenStackCluster) -> dict[str, Any]:
    """The operator.tigera.io/v1 Installation `default`: Calico CNI and IPAM over one pool, for Cilium to chain on.

    - BGP is on for IP-in-IP and unencapsulated pools, which the operator refuses without it (BIRD programs
      their routes: pkg/controller/installation/validation.go), and off for VXLAN, whose routes Felix programs.
    - The Linux dataplane is iptables: Calico's eBPF dataplane would attach its own programs to the very veths
      Cilium's generic-veth chaining attaches to.
    - Each node's address is the one in the cluster's subnet: Calico's default (`firstFound`) skips docker, cali,
      tunl, vxlan.calico... interfaces (node/pkg/lifecycle/startup/autodetection) but not Cilium's cilium_host.
    - The MTU is left to Calico's detection: the CNI plugin takes Felix's (/var/lib/calico/mtu) only when its
      configuration sets none (cni-plugin/pkg/plugin/plugin.go).
    - The CSI driver is off, as the chart's own Installation has it (`kubeletVolumePluginPath: None`).
    - On RKE2 the provider is named, so the operator's RKE2 handling (its CoreDNS Service's name, its FlexVolume
      path) does not hang on its detection, which looks for that CoreDNS Service (pkg/common/discovery).
    """
    _calico(cluster)
    settings = cluster.calico_settings
    bgp = "Disabled" if settings.encapsulation is CalicoEncapsulation.VXLAN else "Enabled"
    network: dict[str, Any] = {
        "bgp": bgp,
        "linuxDataplane": "Iptables",
        "ipPools": [_own_pool(cluster)],
    }
    if cluster.node_cidr.version == 4:
        network["nodeAddressAutodetectionV4"] = {"cidrs": [str(cluster.node_cidr)]}
    else:
        network["nodeAddressAutodetectionV6"] = {"cidrs": [str(cluster.node_cidr)]}
    spec: dict[str, Any] = {
        "variant": "Calico",
        "cni": {"type": "Calico", "ipam": {"type": "Calico"}},
        "calicoNetwork": network,
        "kubeletVolumePluginPath": "None",
    }
    if cluster.distro.name is DistroName.RKE2:
        spec["kubernetesProvider"] = "RKE2"
    return {
        "apiVersion": INSTALLATION_API_VERSION,
        "kind": "Installation",
        "metadata": {"name": INSTALLATION_NAME},
        "spec": spec,
    }


def operator_values(cluster: OpenStackCluster) -> dict[str, Any]:
    """Chart values that install the operator alone: the program creates the Installation (`installation`).

    The chart renders an Installation, an APIServer, a Goldmane and a Whisker (templates/crs/custom-resources.yaml),
    each unless its `enabled` is false. The API server, the flow aggregator and its UI are not used here: IP pools
    are written through crd.projectcalico.org/v1 (`peer_pool`). `manageCRDs` (the chart's default, written out)
    makes the operator create and upgrade the CRDs the chart no longer carries.

    Without kube-proxy nothing serves the `kubernetes` Service's address until Cilium runs, so Calico's components
    are pointed at the API server itself: the chart writes the kubernetes-services-endpoint ConfigMap, which the
    operator hands to host-networked and pod-network components alike (calico-kube-controllers runs on the pod
    network). So the address must be the first server's, reachable from a pod: not RKE2's `localhost` proxy.
    """
    _calico(cluster)
    values: dict[str, Any] = {
        "installation": {"enabled": False},
        "apiServer": {"enabled": False},
        "goldmane": {"enabled": False},
        "whisker": {"enabled": False},
        "manageCRDs": True,
    }
    if cluster.kube_proxy_replacement:
        values["kubernetesServiceEndpoint"] = {
            "host": str(cluster.first_server.address),
            "port": str(cluster.k8s_service_port),
        }
    return values


def peer_pool(cluster: OpenStackCluster, peer_name: str, peer_cidr: IPv4Network | IPv6Network) -> dict[str, Any]:
    """A disabled IP pool over another cluster's pod range: Calico neither allocates from it nor masquerades to it.

    Calico's documented way ("Use additional IP pools to specify addresses that can be reached without NAT",
    networking/configuring/workloads-outside-cluster): Felix masquerades a pod's traffic only to addresses outside
    every pool, disabled ones included (felix/dataplane/linux/masq_mgr.go), and IPAM never allocates from a disabled
    pool. Encapsulation is off (the peer's pods are reached natively, not through this cluster's tunnels), and the
    range is not exported over BGP: it is not this cluster's to advertise.

    crd.projectcalico.org/v1 rather than projectcalico.org/v3: without the Calico API server (`operator_values`
    turns it off) the v3 group is not served unless the cluster runs Calico's native v3 CRDs, a v3.32 tech preview
    chosen at install. The v1 CRD is what the operator installs, and what it writes its own first pools through
    before any API server runs (pkg/controller/ippool/pool_controller.go). What the API server would default,
    Calico's readers default (libcalico-go clientv3/ippool.go, convertIpPoolFromStorage), and the overlap check it
    would make is this function's.
    """
    _calico(cluster)
    own = cluster.calico_pool
    if peer_cidr.prefixlen == 0:
        raise ValueError(f"{peer_cidr} would take every address out of NAT")
    if peer_cidr.version == own.version and peer_cidr.overlaps(own):
        raise ValueError(f"cluster {peer_name}'s pods ({peer_cidr}) overlap cluster {cluster.name}'s pool {own}")
    return {
        "apiVersion": IPPOOL_API_VERSION,
        "kind": "IPPool",
        "metadata": {"name": f"{PEER_POOL_PREFIX}{peer_name}"},
        "spec": {
            "cidr": str(peer_cidr),
            "disabled": True,
            "natOutgoing": False,
            "ipipMode": "Never",
            "vxlanMode": "Never",
            "disableBGPExport": True,
        },
    }


def peer_pools(mesh: MeshConfig, cluster: OpenStackCluster) -> list[dict[str, Any]]:
    """A disabled pool for each peer whose pods reach `cluster` from their own addresses (`native_pod_cidrs`)."""
    _calico(cluster)
    peers = [c for c in mesh.clusters if c.name != cluster.name]
    pools = [peer_pool(cluster, peer.name, cidr) for peer in peers for cidr in native_pod_cidrs(peer)]
    names = [pool["metadata"]["name"] for pool in pools]
    if len(set(names)) != len(names):
        raise ValueError(f"a peer of cluster {cluster.name} has more than one pod range to keep out of NAT")
    return pools


CALICO_AS_NUMBER = 64512
"""Calico's default AS (BGPConfiguration asNumber): every cluster keeps it, so the clusters' nodes form one iBGP
full mesh, in which a route keeps its originating node as next hop (no hairpin through a peer's node)."""


def peer_bgp_peers(mesh: MeshConfig, cluster: OpenStackCluster) -> list[dict[str, Any]]:
    """A BGPPeer in `cluster` for each node of every other Calico cluster: its nodes learn the other clusters' blocks
    with the owning node as next hop, and the owner learns theirs, so a flow between pods of two clusters goes
    node to node both ways on the shared subnet. That symmetry is what Neutron's per-port connection tracking
    needs, and what a route per pool through one node (tutorial 003's per-node CIDR route problem) cannot give.

    `peerSelector` matches only the cluster's own nodes, so each foreign node is a peer of its own (`peerIP`).
    """
    _calico(cluster)
    peers = []
    for peer in mesh.clusters:
        if peer.name == cluster.name or not isinstance(peer, OpenStackCluster) or peer.cni is not CniMode.CALICO:
            continue
        for node in peer.nodes:
            peers.append(
                {
                    "apiVersion": IPPOOL_API_VERSION,
                    "kind": "BGPPeer",
                    "metadata": {"name": f"clustermesh-{node.name}"},
                    "spec": {"peerIP": str(node.address), "asNumber": CALICO_AS_NUMBER},
                }
            )
    return peers
