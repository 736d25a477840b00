"""An EKS cluster the program builds from plain AWS resources: VPC, subnets, EKS, node groups, an internal NLB.

Every address peers need is in the config (the NLB's private address in each zone), so a preview of a new stack
already knows each cluster's clustermesh-apiserver. Cross-field rules are `clustermesh.validation.eks`'s.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Literal

from pydantic import Field, model_validator

from clustermesh.model.common import (
    ClusterBase,
    ClusterKind,
    CniMode,
    IPAddress,
    IPNetwork,
    Routing,
    RoutingMode,
    ServiceType,
    WholeNumber,
    _Model,
)

APISERVER_NLB_PORT = 2379
DEFAULT_INSTANCE_TYPE = "m6i.large"


class AvailabilityZone(_Model):
    """One zone of the cluster's VPC: its subnets, and the NLB's address there."""

    name: str
    """The zone's name, e.g. us-east-1a."""
    private_subnet: IPNetwork
    """Nodes and (with aws-cni) pods: the VPC CNI gives pods addresses of the nodes' subnets."""
    public_subnet: IPNetwork
    """The NAT gateway and internet-facing load balancers."""
    apiserver_address: IPAddress | None = None
    """The clustermesh-apiserver NLB's private address in this zone's private subnet: known now, so peers' Secrets
    are complete at preview."""


class NodeGroup(_Model):
    name: str
    instance_types: tuple[str, ...] = (DEFAULT_INSTANCE_TYPE,)
    min_size: WholeNumber = Field(default=1, ge=0)
    desired_size: WholeNumber = Field(default=2, ge=0)
    max_size: WholeNumber = Field(default=3, ge=1)


class EksCluster(ClusterBase):
    kind: Literal[ClusterKind.EKS]
    cni: CniMode = CniMode.AWS_CNI
    """aws-cni: Cilium chained on the AWS VPC CNI (tutorial 001); cilium: Cilium's overlay with cluster-pool IPAM."""
    routing: Routing = Routing(mode=RoutingMode.NATIVE)
    region: str
    vpc_cidr: IPNetwork
    availability_zones: tuple[AvailabilityZone, ...] = Field(min_length=1)
    kubernetes_version: str
    """EKS's Kubernetes minor version, e.g. 1.35."""
    node_groups: tuple[NodeGroup, ...] = Field(min_length=1)
    public_access_cidrs: tuple[IPNetwork, ...] = ()
    """Networks that may reach the API's public endpoint; none keeps the endpoint private only."""
    api_access_cidrs: tuple[IPNetwork, ...] = ()
    """Networks (a peered network, a VPN, a runner in the VPC) that may reach the private endpoint."""
    admin_principals: tuple[str, ...] = ()
    """IAM role or user ARNs given cluster-admin access entries, besides the identity that runs `pulumi up`."""

    @model_validator(mode="before")
    @classmethod
    def _pods_on_the_vpc(cls, data: Any) -> Any:
        """With aws-cni pods take the VPC's addresses: the pod CIDR is the VPC's unless given."""
        if isinstance(data, dict) and "podCidrs" not in data and "pod_cidrs" not in data:
            cni = data.get("cni", CniMode.AWS_CNI.value)
            if cni == CniMode.AWS_CNI.value and "vpcCidr" in data:
                return {**data, "podCidrs": [data["vpcCidr"]]}
        return data

    @property
    def node_cidr(self) -> IPv4Network | IPv6Network:
        return self.vpc_cidr

    @property
    def k8s_service_host(self) -> str | None:
        """The API's host is EKS's to choose: agents read it from kube-public/cluster-info (`auto`)."""
        return None

    @property
    def k8s_service_port(self) -> int | None:
        return None

    def apiserver_service_type(self, mesh_default: ServiceType) -> ServiceType:
        """The program's NLB forwards to the chart's NodePort."""
        return ServiceType.NODE_PORT

    @property
    def pinned_apiserver_ips(self) -> tuple[IPv4Address | IPv6Address, ...]:
        return tuple(z.apiserver_address for z in self.availability_zones if z.apiserver_address is not None)

    @property
    def pinned_apiserver_ip(self) -> IPv4Address | IPv6Address | None:
        addresses = self.pinned_apiserver_ips
        return addresses[0] if addresses else None

    @property
    def apiserver_node_addresses(self) -> tuple[IPAddress, ...]:
        return ()

    @property
    def apiserver_hostname(self) -> str | None:
        return None
