"""The network between the mesh's EKS clusters: VPC peering for a small mesh, Transit Gateways past the peering quota.

Mesh wiring, not any one cluster's: what a cluster's joining adds here involves that cluster (its peering
connections, routes and rules, or its attachment, routes and rule), and nothing of the others changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from clustermesh.model import AwsUnderlay, EksCluster, MeshConfig
from clustermesh.render.aws_underlay import Underlay, choose_underlay
from components.aws.eks import EksInfrastructure
from components.mesh_cluster import MeshCluster

ALL_TRAFFIC = "-1"
"""Pods of every cluster reach each other on any port (Cilium's native-routing requirement); Cilium's policy, not the
security group, decides what passes."""


def connect_vpcs(parent: pulumi.Resource, mesh: MeshConfig, clusters: Sequence[MeshCluster]) -> Underlay:
    underlay = choose_underlay(mesh)
    built = {c.cluster_name: c.eks for c in clusters if c.eks is not None}
    if len(underlay.clusters) < 2:
        return underlay
    if underlay.mode is AwsUnderlay.PEERING:
        for a, b in underlay.pairs:
            _peer(parent, a, built[a.name], b, built[b.name])
    else:
        _transit_gateways(parent, mesh, underlay, built)
    return underlay


def _peer(parent: pulumi.Resource, a: EksCluster, ia: EksInfrastructure, b: EksCluster, ib: EksInfrastructure) -> None:
    """One peering connection, a route to the peer in every route table of both VPCs, and each admitting the other."""
    on_a = pulumi.ResourceOptions(parent=parent, provider=ia.provider)
    on_b = pulumi.ResourceOptions(parent=parent, provider=ib.provider)
    same_region = a.region == b.region
    connection = aws.ec2.VpcPeeringConnection(
        f"{a.name}-{b.name}-peering",
        vpc_id=ia.vpc_id,
        peer_vpc_id=ib.vpc_id,
        # Accepting in the same call only works within one account and region; across regions the peer accepts.
        auto_accept=same_region,
        peer_region=None if same_region else b.region,
        tags={"clustermesh/peering": f"{a.name}-{b.name}"},
        opts=on_a,
    )
    accepted: list[pulumi.Resource] = [connection]
    if not same_region:
        accepted.append(
            aws.ec2.VpcPeeringConnectionAccepter(
                f"{a.name}-{b.name}-peering", vpc_peering_connection_id=connection.id, auto_accept=True, opts=on_b
            )
        )
    for here, there, infra, opts in ((a, b, ia, on_a), (b, a, ib, on_b)):
        after = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=accepted))
        for i, table in enumerate(infra.route_table_ids):
            aws.ec2.Route(
                f"{here.name}-to-{there.name}-{i}",
                route_table_id=table,
                destination_cidr_block=str(there.vpc_cidr),
                vpc_peering_connection_id=connection.id,
                opts=after,
            )
        aws.vpc.SecurityGroupIngressRule(
            f"{here.name}-from-{there.name}",
            security_group_id=infra.node_security_group_id,
            ip_protocol=ALL_TRAFFIC,
            cidr_ipv4=str(there.vpc_cidr),
            description=f"nodes and pods of cluster {there.name}",
            opts=opts,
        )


def _transit_gateways(
    parent: pulumi.Resource, mesh: MeshConfig, underlay: Underlay, built: dict[str, EksInfrastructure]
) -> None:
    """A Transit Gateway per region, each VPC attached to its region's, the regions' gateways peered, and in each VPC
    one route and one rule for the mesh's range (`nativeRoutingCidrs`): linear in the clusters."""
    # The mesh's own provider per region: borrowing a cluster's would replace the region's gateway, and everything
    # attached to it, the day that cluster leaves the mesh.
    providers = {
        region: aws.Provider(f"mesh-aws-{region}", region=region, opts=pulumi.ResourceOptions(parent=parent))
        for region in underlay.regions
    }
    on_region = {r: pulumi.ResourceOptions(parent=parent, provider=p) for r, p in providers.items()}
    gateways = {
        region: aws.ec2transitgateway.TransitGateway(
            f"mesh-{region}",
            description=f"clustermesh: the mesh's VPCs in {region}",
            auto_accept_shared_attachments="disable",
            default_route_table_association="enable",
            default_route_table_propagation="enable",
            opts=on_region[region],
        )
        for region in underlay.regions
    }
    mesh_ranges = [str(r) for r in mesh.native_routing_cidrs if r.version == 4]
    attachments: dict[str, aws.ec2transitgateway.VpcAttachment] = {}
    for cluster in underlay.clusters:
        infra = built[cluster.name]
        opts = pulumi.ResourceOptions(parent=parent, provider=infra.provider)
        attachments[cluster.name] = aws.ec2transitgateway.VpcAttachment(
            f"{cluster.name}-tgw",
            transit_gateway_id=gateways[cluster.region].id,
            vpc_id=infra.vpc_id,
            subnet_ids=infra.private_subnet_ids,
            opts=opts,
        )
        after = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[attachments[cluster.name]]))
        for i, table in enumerate(infra.route_table_ids):
            for j, cidr in enumerate(mesh_ranges):
                aws.ec2.Route(
                    f"{cluster.name}-to-mesh-{i}-{j}",
                    route_table_id=table,
                    destination_cidr_block=cidr,
                    transit_gateway_id=gateways[cluster.region].id,
                    opts=after,
                )
        for j, cidr in enumerate(mesh_ranges):
            aws.vpc.SecurityGroupIngressRule(
                f"{cluster.name}-from-mesh-{j}",
                security_group_id=infra.node_security_group_id,
                ip_protocol=ALL_TRAFFIC,
                cidr_ipv4=cidr,
                description="nodes and pods of the mesh's clusters",
                opts=opts,
            )
    for here, there in underlay.region_pairs:
        peering = aws.ec2transitgateway.PeeringAttachment(
            f"mesh-{here}-{there}",
            transit_gateway_id=gateways[here].id,
            peer_transit_gateway_id=gateways[there].id,
            peer_region=there,
            opts=on_region[here],
        )
        accepter = aws.ec2transitgateway.PeeringAttachmentAccepter(
            f"mesh-{here}-{there}", transit_gateway_attachment_id=peering.id, opts=on_region[there]
        )
        # Peering attachments propagate no routes: each VPC gets a static route in the other region's gateway.
        for cluster in underlay.clusters:
            if cluster.region not in (here, there):
                continue
            other = there if cluster.region == here else here
            aws.ec2transitgateway.Route(
                f"{cluster.name}-via-{other}",
                destination_cidr_block=str(cluster.vpc_cidr),
                transit_gateway_attachment_id=peering.id,
                transit_gateway_route_table_id=gateways[other].association_default_route_table_id,
                opts=pulumi.ResourceOptions.merge(on_region[other], pulumi.ResourceOptions(depends_on=[accepter])),
            )
