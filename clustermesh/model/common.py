"""What every cluster kind shares: value types, enums, and the fields of a cluster whatever builds it.

Field names are snake_case here and camelCase in stack files (`podCidrs`, `loadBalancerIP`).
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator
from pydantic.alias_generators import to_camel

from clustermesh.cilium import MAX_CONNECTED_CLUSTERS_CHOICES, cluster_name_problem

PROJECT = "clustermesh"
"""The Pulumi project name, and so the namespace of every config key this program reads."""

DEFAULT_CILIUM_VERSION = "1.20.0"
DEFAULT_DOMAIN = "mesh.cilium.io"
DEFAULT_NODE_PORT = 32379
MAX_HOURS = 100 * 8766
"""Any certificate lifetime beyond 100 years (in hours) is a typo, and overflows the date arithmetic."""

UNDECRYPTED_SECRET = "planner-cannot-decrypt:{key}"
"""What the offline planner hands the program for a `secure:` value it cannot decrypt: checked no further."""


def shown(value: object) -> str:
    """A value as the stack file would spell it, for messages: `null`, `true`, `'text'`, `12`.

    Lists and mappings are named, never printed: their text could be long, or part of a secret.
    """
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "a list"
    return "a mapping" if isinstance(value, dict) else "a value of another kind"


def _whole_number(value: object) -> object:
    """Integers as YAML writes them (or the engine's text of one); never a boolean, never a fraction."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    raise ValueError(f"must be a whole number (got {shown(value)})")


def _flag(value: object) -> object:
    """Booleans as YAML writes them, or the engine's text `true`/`false` (as pulumi.Config.get_bool)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip() in {"true", "false"}:
        return value.strip() == "true"
    raise ValueError(f"must be true or false (got {shown(value)})")


def _hours(value: int) -> int:
    if value > MAX_HOURS:
        raise ValueError(f"{value} hours is more than 100 years; give at most {MAX_HOURS}")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Hours = Annotated[int, BeforeValidator(_whole_number), AfterValidator(_hours)]


def _network(value: object) -> IPv4Network | IPv6Network:
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a CIDR such as 10.1.0.0/16 (got {shown(value)})")
    try:
        return ip_network(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR such as 10.1.0.0/16: {exc}") from None


def _address(value: object) -> IPv4Address | IPv6Address:
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be an IP address such as 192.0.2.10 (got {shown(value)})")
    try:
        return ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


# One validator per type rather than pydantic's union of v4 and v6, which reports each member's failure.
IPNetwork = Annotated[IPv4Network | IPv6Network, PlainValidator(_network, json_schema_input_type=str)]
IPAddress = Annotated[IPv4Address | IPv6Address, PlainValidator(_address, json_schema_input_type=str)]


class ClusterKind(StrEnum):
    """Where a cluster comes from: one model per kind (`clustermesh.model.existing`, `.openstack`)."""

    EXISTING = "existing"
    OPENSTACK = "openstack"
    EKS = "eks"


class CniMode(StrEnum):
    CILIUM = "cilium"
    AWS_CNI = "aws-cni"
    CALICO = "calico"


class RoutingMode(StrEnum):
    TUNNEL = "tunnel"
    NATIVE = "native"


class TunnelProtocol(StrEnum):
    VXLAN = "vxlan"
    GENEVE = "geneve"


class Encryption(StrEnum):
    NONE = "none"
    WIREGUARD = "wireguard"
    """Cilium's transparent WireGuard encryption of pod traffic, within and between clusters."""


class AwsUnderlay(StrEnum):
    """How the VPCs of a mesh's EKS clusters reach each other."""

    AUTO = "auto"
    """Peering while every VPC stays within AWS's default peering quota, Transit Gateways past it."""
    PEERING = "peering"
    TRANSIT_GATEWAY = "transit-gateway"


class ServiceType(StrEnum):
    LOAD_BALANCER = "LoadBalancer"
    NODE_PORT = "NodePort"


def _cluster_name(name: str) -> str:
    if (problem := cluster_name_problem(name)) is not None:
        raise ValueError(problem)
    return name


def _cluster_id(cluster_id: int) -> int:
    if cluster_id < 1:
        raise ValueError(f"{cluster_id} is reserved; cluster IDs start at 1")
    return cluster_id


def _max_connected_clusters(value: int) -> int:
    if value not in MAX_CONNECTED_CLUSTERS_CHOICES:
        raise ValueError(f"{value} is not supported; Cilium accepts 255 or 511")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, strict=False
    )


class Kubeconfig(_Model):
    """Where the provider of a cluster gets its credentials: a file (and context) or a secret config value."""

    path: str | None = None
    """A kubeconfig file, read by the Kubernetes provider when it runs (never copied into state)."""
    context: str | None = None
    """The context to use in `path`; the file's current context when absent."""
    secret: str | None = None
    """The name of a secret key in this project's config that holds the whole kubeconfig."""


class Routing(_Model):
    mode: RoutingMode = RoutingMode.TUNNEL
    tunnel_protocol: TunnelProtocol = TunnelProtocol.VXLAN
    auto_direct_node_routes: Flag = False
    """Native routing only: install routes to other nodes' pod CIDRs (nodes must share an L2 segment)."""


class ClusterExposure(_Model):
    """How other clusters reach this cluster's clustermesh-apiserver, beyond the mesh-wide service type."""

    load_balancer_ip: IPAddress | None = Field(default=None, alias="loadBalancerIP")
    """Pin the LoadBalancer address, so every mesh value is known at preview."""
    node_addresses: tuple[IPAddress, ...] = ()
    """Node addresses that serve the NodePort, with service type NodePort."""
    hostname: str | None = None
    """A DNS name peers dial instead of `<cluster>.<domain>` with its addresses carried in their configuration.

    For a load balancer that reports only a hostname (an AWS NLB): the name is known before the load
    balancer exists, so the server certificate can carry it and every peer's configuration is known at
    preview. Something must point the name at the load balancer: the record in `route53ZoneId`, or
    external-dns (the Service gets its hostname annotation), or your own DNS."""
    route53_zone_id: str | None = Field(default=None, alias="route53ZoneId")
    """With `hostname`: the Route 53 hosted zone in which the program points the name at the address."""


class MeshExposure(_Model):
    """How every cluster's clustermesh-apiserver Service is exposed."""

    type: ServiceType = ServiceType.LOAD_BALANCER
    load_balancer_source_ranges: tuple[IPNetwork, ...] = ()
    """Client networks allowed through the LoadBalancer: the other clusters' node (and pod) networks."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Service annotations, e.g. to make a cloud load balancer internal."""
    node_port: WholeNumber = Field(default=DEFAULT_NODE_PORT, ge=30000, le=32767)


class Certificates(_Model):
    """Lifetimes of the mesh CA and the clustermesh certificates the program issues."""

    ca_validity_hours: Hours = Field(default=3 * 8760, gt=0)
    validity_hours: Hours = Field(default=8760, gt=0)
    """Leaf certificates: one year, as Cilium 1.20's own certValidityDuration."""
    early_renewal_hours: Hours = Field(default=30 * 24, ge=0)
    """A `pulumi up` this close to expiry re-issues the certificate, so a scheduled up rotates in time."""


class ClusterBase(_Model):
    """The fields of every cluster, whoever builds it: its mesh identity, address plan and datapath."""

    name: Annotated[str, AfterValidator(_cluster_name)]
    id: Annotated[int, BeforeValidator(_whole_number), AfterValidator(_cluster_id)]
    pod_cidrs: tuple[IPNetwork, ...] = Field(min_length=1)
    """One IPv4 CIDR, then optionally one IPv6 CIDR."""
    service_cidr: IPNetwork
    cni: CniMode = CniMode.CILIUM
    routing: Routing = Routing()
    kube_proxy_replacement: Flag = False

    @property
    def ipv4_pod_cidrs(self) -> tuple[IPv4Network, ...]:
        return tuple(c for c in self.pod_cidrs if isinstance(c, IPv4Network))

    @property
    def ipv6_pod_cidrs(self) -> tuple[IPv6Network, ...]:
        return tuple(c for c in self.pod_cidrs if isinstance(c, IPv6Network))
