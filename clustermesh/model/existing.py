"""A cluster that already runs: the program installs Cilium on it and meshes it, nothing more."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Literal

from pydantic import Field

from clustermesh.model.common import (
    ClusterBase,
    ClusterExposure,
    ClusterKind,
    IPAddress,
    IPNetwork,
    Kubeconfig,
    ServiceType,
    WholeNumber,
)


class ExistingCluster(ClusterBase):
    kind: Literal[ClusterKind.EXISTING]
    node_cidr: IPNetwork | None = None
    kubeconfig: Kubeconfig
    k8s_service_host: str | None = Field(default=None, alias="k8sServiceHost")
    """API server address for agents when kube-proxy is replaced; `auto` reads kube-public/cluster-info."""
    k8s_service_port: WholeNumber | None = Field(default=None, ge=1, le=65535, alias="k8sServicePort")
    apiserver_exposure: ClusterExposure = ClusterExposure()

    def apiserver_service_type(self, mesh_default: ServiceType) -> ServiceType:
        """The clustermesh-apiserver Service type: the mesh-wide one, for a cluster the program did not build."""
        return mesh_default

    @property
    def pinned_apiserver_ips(self) -> tuple[IPv4Address | IPv6Address, ...]:
        """Every address peers dial, pinned in the config (one here)."""
        return (self.pinned_apiserver_ip,) if self.pinned_apiserver_ip is not None else ()

    @property
    def pinned_apiserver_ip(self) -> IPv4Address | IPv6Address | None:
        return self.apiserver_exposure.load_balancer_ip

    @property
    def apiserver_hostname(self) -> str | None:
        return self.apiserver_exposure.hostname

    @property
    def apiserver_node_addresses(self) -> tuple[IPAddress, ...]:
        """Node addresses that serve the NodePort, as configured."""
        return self.apiserver_exposure.node_addresses
