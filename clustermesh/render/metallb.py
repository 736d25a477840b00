"""MetalLB in L2 mode for an OpenStack cluster: its namespace, chart values, address pool and advertisement.

MetalLB answers ARP for the clustermesh-apiserver's pinned address from one node at a time; Neutron lets that
node's port answer because the program lists the pool in every node port's allowed-address-pairs. Keys are
those of chart 0.16.1's values.yaml and of the metallb.io/v1beta1 CRDs.
"""

from __future__ import annotations

from typing import Any

from clustermesh.model import AddressRange, MetalLB, OpenStackCluster

NAMESPACE = "metallb-system"
RELEASE_NAME = "metallb"
CHART = "metallb"
REPOSITORY = "https://metallb.github.io/metallb"
POOL_NAME = "clustermesh"
L2_NAME = "clustermesh"
API_VERSION = "metallb.io/v1beta1"
MEMBERLIST_PORT = 7946
"""The speakers' memberlist port (the chart's default `speaker.memberlist.mlBindPort`), set explicitly so the
security group opens the port the speakers bind."""
POD_SECURITY_MODES = ("enforce", "audit", "warn")


def _metallb(cluster: OpenStackCluster) -> MetalLB:
    metallb = cluster.apiserver_load_balancer.metallb
    if metallb is None:
        raise ValueError(f"cluster {cluster.name} has no apiserverLoadBalancer.metallb")
    return metallb


def namespace_manifest() -> dict[str, Any]:
    """The namespace, labelled as MetalLB's install docs require: the speaker runs on the host network."""
    labels = {f"pod-security.kubernetes.io/{mode}": "privileged" for mode in POD_SECURITY_MODES}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": labels}}


def metallb_values(cluster: OpenStackCluster) -> dict[str, Any]:
    """Chart values for L2 only: chart 0.16 installs FRR-K8s as its BGP backend by default, which L2 never uses.

    With both FRR-K8s and the speaker's (deprecated) FRR container off, the speaker runs MetalLB's native
    implementation (the install docs' "native BGP implementation" values): no BGP daemon on any node.
    """
    _metallb(cluster)
    return {
        "frrk8s": {"enabled": False},
        "speaker": {
            "frr": {"enabled": False},
            "memberlist": {"enabled": True, "mlBindPort": MEMBERLIST_PORT},
        },
    }


def _address(pool: AddressRange) -> str:
    """A range as MetalLB parses it: a CIDR when the range is exactly one, else `first-last`."""
    cidrs = pool.cidrs()
    return str(cidrs[0]) if len(cidrs) == 1 else f"{pool.first}-{pool.last}"


def address_pool(cluster: OpenStackCluster) -> dict[str, Any]:
    """The IPAddressPool of the cluster's MetalLB addresses.

    `autoAssign` is off: MetalLB hands an unpinned LoadBalancer Service the lowest free address of a pool,
    which would be the clustermesh-apiserver's pinned address whenever that Service is (re)created after
    another. Services that want an address from the pool ask for it (`metallb.io/loadBalancerIPs` or
    `metallb.io/address-pool`), as the clustermesh-apiserver does.
    """
    metallb = _metallb(cluster)
    return {
        "apiVersion": API_VERSION,
        "kind": "IPAddressPool",
        "metadata": {"name": POOL_NAME, "namespace": NAMESPACE},
        "spec": {"addresses": [_address(pool) for pool in metallb.addresses], "autoAssign": False},
    }


def l2_advertisement(cluster: OpenStackCluster) -> dict[str, Any]:
    """The L2Advertisement of the pool: ARP (or NDP) answers from one node, on every node's interfaces."""
    _metallb(cluster)
    return {
        "apiVersion": API_VERSION,
        "kind": "L2Advertisement",
        "metadata": {"name": L2_NAME, "namespace": NAMESPACE},
        "spec": {"ipAddressPools": [POOL_NAME]},
    }
