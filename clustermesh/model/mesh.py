"""The whole validated stack configuration: mesh-wide settings and one model per cluster kind."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from clustermesh.model.common import (
    DEFAULT_CILIUM_VERSION,
    DEFAULT_DOMAIN,
    AwsUnderlay,
    Certificates,
    Encryption,
    Flag,
    IPNetwork,
    MeshExposure,
    _max_connected_clusters,
    _Model,
    _whole_number,
)
from clustermesh.model.eks import EksCluster
from clustermesh.model.existing import ExistingCluster
from clustermesh.model.openstack import OpenStackCluster

ClusterSpec = ExistingCluster | OpenStackCluster | EksCluster
"""A cluster of any kind; `kind` says which (config.py picks the model by it)."""

CLUSTER_MODELS: dict[str, type[ExistingCluster] | type[OpenStackCluster] | type[EksCluster]] = {
    "existing": ExistingCluster,
    "openstack": OpenStackCluster,
    "eks": EksCluster,
}


class MeshConfig(_Model):
    """The whole validated stack configuration."""

    cilium_version: str = DEFAULT_CILIUM_VERSION
    """The Cilium Helm chart version, pinned (x.y.z)."""
    max_connected_clusters: Annotated[int, BeforeValidator(_whole_number), AfterValidator(_max_connected_clusters)] = (
        255
    )
    domain: str = DEFAULT_DOMAIN
    """Clusters reach each other's clustermesh-apiserver as `<cluster>.<domain>`."""
    kvstoremesh: Flag = True
    encryption: Encryption = Encryption.NONE
    """Every cluster alike: a peer that does not encrypt cannot take a WireGuard peer's traffic."""
    apiserver_exposure: MeshExposure = MeshExposure()
    native_routing_cidrs: tuple[IPNetwork, ...] = ()
    """With native routing: the ranges (one per family) that hold every cluster's pod CIDRs."""
    certificates: Certificates = Certificates()
    aws_underlay: AwsUnderlay = AwsUnderlay.AUTO
    """How EKS clusters' VPCs are connected: peering, Transit Gateways, or the one that fits (auto)."""
    clusters: tuple[ClusterSpec, ...]

    @property
    def cilium_minor(self) -> int:
        return int(self.cilium_version.split(".")[1])

    def cluster(self, name: str) -> ClusterSpec:
        return next(c for c in self.clusters if c.name == name)
