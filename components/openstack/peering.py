"""The security-group rules that admit each cluster's peers: mesh wiring, not any one cluster's.

Each rule belongs to one (cluster, peer) pair and names the peer's node range, so adding a cluster adds its
rules in the others' groups (and theirs in its own) and replaces none; removing one deletes only its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from clustermesh.model import MeshConfig, OpenStackCluster
from clustermesh.render.firewall import SELF, peer_rules
from components.mesh_cluster import MeshCluster
from components.openstack.infrastructure import ingress_rule


def admit_peers(parent: pulumi.Resource, mesh: MeshConfig, clusters: Sequence[MeshCluster]) -> None:
    """In every OpenStack cluster's security group, the rules that let each other cluster's nodes in."""
    for cluster in clusters:
        spec = mesh.cluster(cluster.cluster_name)
        infrastructure = cluster.infrastructure
        if not isinstance(spec, OpenStackCluster) or infrastructure is None:
            continue
        opts = pulumi.ResourceOptions(parent=parent, provider=infrastructure.provider)
        for peer in mesh.clusters:
            if peer.name == spec.name:
                continue
            for rule in peer_rules(mesh, spec, peer):
                if rule.remote == SELF:
                    raise ValueError(f"a rule admitting {peer.name} names {spec.name}'s own group: {rule}")
                ingress_rule(f"{spec.name}-from-{peer.name}-{rule.key}", rule, infrastructure.security_group_id, opts)
