"""MeshCluster: one Kubernetes cluster of the mesh, its explicit provider, and Cilium on it.

This component only wires resources; every document it applies comes from a pure renderer in
`clustermesh.render`. It does not manage the cluster's machines for kind `existing`, nor the mesh
wiring between clusters (that is `components.mesh.Mesh`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from clustermesh import cilium
from clustermesh.model import ClusterSpec, CniMode, MeshConfig
from clustermesh.render.cilium_values import cilium_values
from clustermesh.render.cni import CALICO_CHAINING_CONFIGMAP, calico_chaining_configmap_data
from components.tokens import MESH_CLUSTER


def cluster_identity(spec: ClusterSpec) -> dict[str, object]:
    """The component's own inputs: the cluster's name, ID, CNI and pod ranges, as a preview shows them."""
    return {
        "clusterName": spec.name,
        "clusterId": spec.id,
        "cni": spec.cni.value,
        "podCidrs": [str(c) for c in spec.pod_cidrs],
    }


@dataclass(frozen=True, kw_only=True)
class MeshClusterArgs:
    mesh: MeshConfig
    """Mesh-wide settings (chart version, max connected clusters, apiserver exposure)."""
    cluster: ClusterSpec
    """This cluster's validated configuration."""
    kubeconfig: pulumi.Input[str]
    """Kubeconfig contents, or the path of a kubeconfig file; treated as a secret either way."""
    kube_context: str | None = None
    """The context to use in the kubeconfig; its current context when None."""


class MeshCluster(pulumi.ComponentResource):
    provider: k8s.Provider
    """The explicit provider every Kubernetes resource of this cluster goes through."""
    kubeconfig: pulumi.Output[str]
    """The credentials of the provider, always secret."""
    cilium_release: k8s.helm.v3.Release
    """The Cilium Helm release."""
    cluster_name: str
    cluster_id: int

    def __init__(self, name: str, args: MeshClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        spec = args.cluster
        # What the mesh needs to know of every cluster whatever installs its pods' addresses (Cilium's
        # cluster-pool, the AWS VPC CNI, Calico): the policy pack checks these across clusters.
        super().__init__(MESH_CLUSTER, name, cluster_identity(spec), opts)
        self.cluster_name = spec.name
        self.cluster_id = spec.id
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig)

        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            context=args.kube_context,
            # A stable identity: rotating credentials or moving the kubeconfig must update the provider,
            # never replace it (and with it every resource of this cluster).
            cluster_identifier=spec.name,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)

        chaining_config: list[pulumi.Resource] = []
        if spec.cni is CniMode.CALICO:
            chaining_config.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-cni-configuration",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=CALICO_CHAINING_CONFIGMAP, namespace=cilium.NAMESPACE),
                    data=calico_chaining_configmap_data(),
                    opts=on_cluster,
                )
            )

        # helm.v3.Release rather than helm.v4.Chart: Cilium's chart reads existing objects with `lookup`
        # (the cilium-ca secret) and generates certificates at render time, which a client-side render
        # (v4.Chart) would redo on every preview as a spurious diff; and the cilium CLI and `helm upgrade`
        # expect a real release to exist. The preview still shows the change, as a diff of the values.
        self.cilium_release = k8s.helm.v3.Release(
            f"{name}-cilium",
            k8s.helm.v3.ReleaseArgs(
                name=cilium.RELEASE_NAME,
                chart=cilium.CHART_NAME,
                version=args.mesh.cilium_version,
                namespace=cilium.NAMESPACE,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=cilium.CHART_REPOSITORY),
                values=cilium_values(args.mesh, spec),
            ),
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=chaining_config)),
        )

        # A component's registered outputs replace its inputs in the engine's state, and stack policies read
        # that state: the identity goes in both, or a policy would see it in a preview and lose it after `up`.
        self.register_outputs(
            {
                **cluster_identity(spec),
                "kubeconfig": self.kubeconfig,
                "ciliumStatus": self.cilium_release.status,
            }
        )
