"""How the VPCs of a mesh's EKS clusters reach each other: VPC peering or Transit Gateways, and why.

Peering is a connection per pair of VPCs, so a VPC of an N-cluster mesh needs N-1 of them, and AWS allows 50
active peering connections per VPC by default (125 on request). A Transit Gateway per region takes one attachment
per VPC, and one peering attachment per pair of regions: what grows with the mesh grows linearly.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from clustermesh.model import AwsUnderlay, EksCluster, MeshConfig

PEERING_QUOTA = 49
"""The most peers a VPC takes: AWS's default quotas are 50 active peering connections per VPC and 50 routes per route
table (Amazon VPC quotas), and each private route table also holds its default route to the NAT gateway."""
DEFAULT_REGIONAL_QUOTA = 5
"""AWS's default per-region quota of VPCs, internet gateways and Elastic IPs (and of NAT gateways per zone)."""


@dataclass(frozen=True)
class Underlay:
    mode: AwsUnderlay
    """PEERING or TRANSIT_GATEWAY (never AUTO)."""
    reason: str
    clusters: tuple[EksCluster, ...]

    @property
    def pairs(self) -> list[tuple[EksCluster, EksCluster]]:
        """Every pair of clusters, each once, in config order: one peering connection each."""
        return list(combinations(self.clusters, 2))

    @property
    def regions(self) -> list[str]:
        return sorted({c.region for c in self.clusters})

    def summary(self) -> dict[str, object]:
        """What the planner prints and the stack exports: the choice, why, and the quotas to raise first."""
        return {"mode": self.mode.value, "reason": self.reason, "quotas": regional_quota_needs(self)}

    @property
    def region_pairs(self) -> list[tuple[str, str]]:
        """Every pair of regions, each once: one Transit Gateway peering attachment each."""
        return list(combinations(self.regions, 2))


def eks_clusters(mesh: MeshConfig) -> tuple[EksCluster, ...]:
    return tuple(c for c in mesh.clusters if isinstance(c, EksCluster))


def choose_underlay(mesh: MeshConfig) -> Underlay:
    """The underlay the mesh's EKS clusters get, and a sentence the planner prints to say why."""
    clusters = eks_clusters(mesh)
    peerings = max(len(clusters) - 1, 0)
    if mesh.aws_underlay is AwsUnderlay.PEERING:
        return Underlay(AwsUnderlay.PEERING, "awsUnderlay: peering", clusters)
    if mesh.aws_underlay is AwsUnderlay.TRANSIT_GATEWAY:
        return Underlay(AwsUnderlay.TRANSIT_GATEWAY, "awsUnderlay: transit-gateway", clusters)
    if peerings > PEERING_QUOTA:
        return Underlay(
            AwsUnderlay.TRANSIT_GATEWAY,
            f"auto: {len(clusters)} EKS clusters need {peerings} peering connections (and routes) per VPC, more than "
            f"AWS's default quotas allow ({PEERING_QUOTA}): a Transit Gateway per region "
            f"({len({c.region for c in clusters})}), peered across regions",
            clusters,
        )
    return Underlay(
        AwsUnderlay.PEERING,
        f"auto: {len(clusters)} EKS clusters need {peerings} peering connection(s) per VPC, within AWS's default "
        f"quotas ({PEERING_QUOTA}): VPC peering",
        clusters,
    )


def regional_quota_needs(underlay: Underlay) -> list[str]:
    """What the mesh asks of AWS's default regional quotas beyond their defaults, to raise before `pulumi up`."""
    needs = []
    for region in underlay.regions:
        clusters = [c for c in underlay.clusters if c.region == region]
        zones = max((len(c.availability_zones) for c in clusters), default=0)
        if len(clusters) > DEFAULT_REGIONAL_QUOTA:
            needs.append(
                f"{region}: {len(clusters)} VPCs and internet gateways, {len(clusters) * zones} Elastic IPs, "
                f"{len(clusters)} NAT gateways per zone (default quota {DEFAULT_REGIONAL_QUOTA} each)"
            )
    return needs
