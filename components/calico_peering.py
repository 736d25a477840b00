"""Each Calico cluster's view of the other Calico clusters: mesh wiring, not any one cluster's.

- A disabled IPPool per peer pod range: Calico masquerades traffic leaving its pools (natOutgoing) and would hand
  out any range it is given; a disabled pool is neither its to allocate nor outside the network, so cross-cluster
  pod traffic keeps its source address, which Cilium's identities and network policy need.
- A BGPPeer per node of every other Calico cluster: each node learns the other clusters' blocks with their own
  nodes as next hops (see `clustermesh.render.calico.peer_bgp_peers`).

Adding a cluster adds objects in every Calico cluster and changes none.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from clustermesh.model import CniMode, MeshConfig, OpenStackCluster
from clustermesh.render import calico
from components.custom_resources import apply_manifest
from components.mesh_cluster import MeshCluster


def exclude_peer_pod_ranges(parent: pulumi.Resource, mesh: MeshConfig, clusters: Sequence[MeshCluster]) -> None:
    for cluster in clusters:
        spec = mesh.cluster(cluster.cluster_name)
        if not isinstance(spec, OpenStackCluster) or spec.cni is not CniMode.CALICO:
            continue
        opts = pulumi.ResourceOptions(parent=parent, provider=cluster.provider, depends_on=cluster.calico)
        for manifest in [*calico.peer_pools(mesh, spec), *calico.peer_bgp_peers(mesh, spec)]:
            apply_manifest(f"{spec.name}-{manifest['metadata']['name']}", manifest, opts)
