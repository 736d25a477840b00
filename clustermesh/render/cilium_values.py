"""Helm values for one cluster's Cilium release, rendered from the typed config.

Only this cluster's own settings go in, never its peers': the mesh wiring lives in separate
resources, so adding or removing a cluster changes no Helm release.
"""

from __future__ import annotations

from ipaddress import ip_network
from typing import Any

from clustermesh.cilium import CLUSTER_POOL_MASK
from clustermesh.model import (
    ClusterSpec,
    CniMode,
    EksCluster,
    Encryption,
    ExistingCluster,
    MeshConfig,
    OpenStackCluster,
    RoutingMode,
    ServiceType,
)
from clustermesh.render.cni import CALICO_CHAINING_CONFIGMAP
from clustermesh.render.mesh_tls import AUTH_MODE

Values = dict[str, Any]
EXTERNAL_DNS_HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"
METALLB_ADDRESS = "metallb.io/loadBalancerIPs"
TLS_VALUES_REMOVED_MINOR = 20
"""Cilium 1.20 removed `clustermesh.apiserver.tls.{server,admin,remote,enableSecrets}` from its chart."""


def cilium_values(mesh: MeshConfig, cluster: ClusterSpec) -> Values:
    """The complete values of `cluster`'s Cilium release."""
    values: Values = {
        "cluster": {"name": cluster.name, "id": cluster.id},
        "kubeProxyReplacement": cluster.kube_proxy_replacement,
        **_routing_values(mesh, cluster),
        **_cni_values(cluster),
        "clustermesh": _clustermesh_values(mesh, cluster),
    }
    if cluster.kube_proxy_replacement:
        # Without kube-proxy the agent cannot reach the API server through its Service IP.
        values["k8sServiceHost"] = cluster.k8s_service_host or "auto"
        if cluster.k8s_service_port is not None:
            values["k8sServicePort"] = cluster.k8s_service_port
    if cluster.ipv6_pod_cidrs:
        values["ipv6"] = {"enabled": True}
    if mesh.encryption is Encryption.WIREGUARD:
        values["encryption"] = {"enabled": True, "type": "wireguard"}
    return values


def _routing_values(mesh: MeshConfig, cluster: ClusterSpec) -> Values:
    if cluster.routing.mode is RoutingMode.TUNNEL:
        return {"routingMode": "tunnel", "tunnelProtocol": cluster.routing.tunnel_protocol.value}
    values: Values = {"routingMode": "native"}
    if cluster.cni is CniMode.CILIUM:
        for cidr in mesh.native_routing_cidrs:
            values[f"ipv{cidr.version}NativeRoutingCIDR"] = str(cidr)
        values["autoDirectNodeRoutes"] = cluster.routing.auto_direct_node_routes
    return values


def _cni_values(cluster: ClusterSpec) -> Values:
    """IPAM and CNI chaining, as the Cilium docs give them for each mode."""
    if cluster.cni is CniMode.AWS_CNI:
        # docs: installation/cni-chaining-aws-cni (endpointRoutes is left to the AWS VPC CNI since 1.18)
        values: Values = {"cni": {"chainingMode": "aws-cni", "exclusive": False}, "enableIPv4Masquerade": False}
        if isinstance(cluster, EksCluster):
            values["ipam"] = {"mode": "cluster-pool", "operator": _router_pool(cluster)}
        return values
    if cluster.cni is CniMode.CALICO:
        # docs: installation/cni-chaining-calico; the conflist is the ConfigMap rendered by render.cni
        return {
            "cni": {
                "chainingMode": "generic-veth",
                "customConf": True,
                "configMap": CALICO_CHAINING_CONFIGMAP,
            },
            "enableIPv4Masquerade": False,
            "enableIdentityMark": False,
        }
    operator: Values = {
        "clusterPoolIPv4PodCIDRList": [str(c) for c in cluster.ipv4_pod_cidrs],
        "clusterPoolIPv4MaskSize": CLUSTER_POOL_MASK[4],
    }
    if cluster.ipv6_pod_cidrs:
        operator["clusterPoolIPv6PodCIDRList"] = [str(c) for c in cluster.ipv6_pod_cidrs]
        operator["clusterPoolIPv6MaskSize"] = CLUSTER_POOL_MASK[6]
    return {"ipam": {"mode": "cluster-pool", "operator": operator}}


ROUTER_POOL = ip_network("100.64.0.0/10")
ROUTER_POOL_PREFIX = 20
ROUTER_MASK = 28


def _router_pool(cluster: EksCluster) -> Values:
    """Chained on aws-cni, Cilium's cluster-pool only hands out each node's `cilium_host` address. Left at the chart's
    10.0.0.0/8 it would be the same in every cluster, and inside VPCs of 10/8: a /20 per cluster ID out of
    100.64.0.0/10 instead (shared address space, which VPCs rarely hold), a /28 per node."""
    network = ip_network(
        f"{ROUTER_POOL.network_address + cluster.id * 2 ** (32 - ROUTER_POOL_PREFIX)}/{ROUTER_POOL_PREFIX}"
    )
    return {"clusterPoolIPv4PodCIDRList": [str(network)], "clusterPoolIPv4MaskSize": ROUTER_MASK}


def _clustermesh_values(mesh: MeshConfig, cluster: ClusterSpec) -> Values:
    return {
        "useAPIServer": True,
        "maxConnectedClusters": mesh.max_connected_clusters,
        # The chart's own peer list stays off: a peer listed in Helm values makes every release depend
        # on the other clusters, and the next `helm upgrade` without them would drop the mesh.
        "config": {"enabled": False, "domain": mesh.domain},
        "apiserver": {
            "kvstoremesh": {"enabled": mesh.kvstoremesh},
            "service": _service_values(mesh, cluster),
            "tls": _tls_values(mesh),
        },
    }


def _tls_values(mesh: MeshConfig) -> Values:
    # The program issues every clustermesh certificate from one mesh CA (components.mesh); certificates the
    # chart generated would each come from a CA of its own cluster.
    tls: Values = {"auto": {"enabled": False}, "authMode": AUTH_MODE}
    if mesh.cilium_minor < TLS_VALUES_REMOVED_MINOR:
        # 1.19 would otherwise render the certificate Secrets from (empty) values and fail; the program's own
        # Secrets stand in their place.
        tls["enableSecrets"] = False
    return tls


def _service_values(mesh: MeshConfig, cluster: ClusterSpec) -> Values:
    exposure = mesh.apiserver_exposure
    service_type = cluster.apiserver_service_type(exposure.type)
    service: Values = {"type": service_type.value}
    annotations = dict(exposure.annotations)
    if isinstance(cluster, ExistingCluster):
        own = cluster.apiserver_exposure
        if own.hostname is not None and own.route53_zone_id is None:
            # Points the name at the load balancer where external-dns runs; inert where it does not.
            annotations.setdefault(EXTERNAL_DNS_HOSTNAME, own.hostname)
    elif isinstance(cluster, OpenStackCluster) and cluster.apiserver_load_balancer.metallb is not None:
        # MetalLB's own way to pin an address (Service.spec.loadBalancerIP is deprecated since Kubernetes 1.24).
        annotations[METALLB_ADDRESS] = str(cluster.apiserver_load_balancer.metallb.apiserver_address)
    if annotations:
        service["annotations"] = annotations
    if service_type is ServiceType.NODE_PORT:
        service["nodePort"] = exposure.node_port
        return service
    if exposure.load_balancer_source_ranges:
        service["loadBalancerSourceRanges"] = [str(r) for r in exposure.load_balancer_source_ranges]
    if isinstance(cluster, ExistingCluster) and cluster.apiserver_exposure.load_balancer_ip is not None:
        service["loadBalancerIP"] = str(cluster.apiserver_exposure.load_balancer_ip)
    return service
