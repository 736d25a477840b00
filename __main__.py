"""clustermesh: a Cilium Cluster Mesh across the clusters of this stack's configuration."""

import pulumi

from components.mesh import Mesh, MeshArgs
from components.mesh_cluster import MeshCluster, MeshClusterArgs
from components.stack_config import cluster_secrets, kube_context, kubeconfig_input, read_mesh_config

mesh = read_mesh_config()

clusters = [
    MeshCluster(
        spec.name,
        MeshClusterArgs(
            mesh=mesh,
            cluster=spec,
            kubeconfig=kubeconfig_input(spec),
            kube_context=kube_context(spec),
            secrets=cluster_secrets(spec),
        ),
    )
    for spec in mesh.clusters
]

wiring = Mesh("mesh", MeshArgs(mesh=mesh, clusters=clusters))

pulumi.export("ciliumVersion", mesh.cilium_version)
pulumi.export("caCertificate", wiring.ca_cert_pem)
pulumi.export("apiserverAddresses", wiring.addresses)
pulumi.export("clusters", {c.cluster_name: {"id": c.cluster_id, "cilium": c.cilium_release.status} for c in clusters})
pulumi.export("kubeconfigs", {c.cluster_name: c.kubeconfig for c in clusters})
if wiring.underlay.clusters:
    pulumi.export("awsUnderlay", wiring.underlay.summary())
