"""MeshCluster: one Kubernetes cluster of the mesh, its explicit provider, and Cilium on it.

This component only wires resources; every document it applies comes from a pure renderer in
`clustermesh.render`. For kind `existing` the cluster runs already; for kind `openstack` its machines
(`components.openstack.infrastructure`) and Kubernetes (`components.openstack.kubernetes`) are its children,
and so is MetalLB when it answers for the clustermesh-apiserver. The wiring between clusters is
`components.mesh.Mesh`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from clustermesh import cilium
from clustermesh.model import ClusterSpec, CniMode, EksCluster, MeshConfig, OpenStackCluster
from clustermesh.render import calico, distro, metallb
from clustermesh.render.cilium_values import cilium_values
from clustermesh.render.cni import CALICO_CHAINING_CONFIGMAP, calico_chaining_configmap_data
from components.aws.eks import EksInfrastructure, EksInfrastructureArgs
from components.custom_resources import apply_manifest
from components.openstack.infrastructure import (
    OpenStackInfrastructure,
    OpenStackInfrastructureArgs,
    pod_address_pairs,
)
from components.openstack.kubernetes import KubernetesOverSsh, KubernetesOverSshArgs
from components.tokens import MESH_CLUSTER

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod-template annotation `kubectl rollout restart` sets: changing it rolls the Deployment."""
WAIT_FOR = "pulumi.com/waitFor"
"""pulumi-kubernetes waits, on create and update, until the object meets this condition."""
RELEASE_TIMEOUT_SECONDS = 900
"""On fresh VMs Cilium pulls its images while MetalLB waits for Cilium's network and Cilium's release waits for
MetalLB's address: more than Helm's default 300 s."""


def cluster_identity(mesh: MeshConfig, spec: ClusterSpec) -> dict[str, object]:
    """The component's own inputs, as a preview shows them: the cluster's name, ID, kind, CNI and pod ranges,
    and the addresses its node ports may answer for besides their own: the MetalLB pool (as CIDRs) and, with
    Calico, the mesh's pod ranges."""
    pools = spec.load_balancer_pools if isinstance(spec, OpenStackCluster) else []
    pod_pairs = pod_address_pairs(mesh, spec) if isinstance(spec, OpenStackCluster) else []
    return {
        "clusterName": spec.name,
        "clusterId": spec.id,
        "kind": spec.kind.value,
        "cni": spec.cni.value,
        "podCidrs": [str(c) for c in spec.pod_cidrs],
        "loadBalancerPools": [str(c) for c in pools],
        "podAddressPairs": [str(c) for c in pod_pairs],
        **({"vpcCidr": str(spec.vpc_cidr)} if isinstance(spec, EksCluster) else {}),
    }


@dataclass(frozen=True, kw_only=True)
class MeshClusterArgs:
    mesh: MeshConfig
    """Mesh-wide settings (chart version, max connected clusters, apiserver exposure)."""
    cluster: ClusterSpec
    """This cluster's validated configuration."""
    kubeconfig: pulumi.Input[str] | None = None
    """Kind existing: kubeconfig contents, or the path of a kubeconfig file; treated as a secret either way."""
    kube_context: str | None = None
    """The context to use in the kubeconfig; its current context when None."""
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """The secret config values the cluster names (an SSH key, a cloud credential), by config key."""


class MeshCluster(pulumi.ComponentResource):
    provider: k8s.Provider
    """The explicit provider every Kubernetes resource of this cluster goes through."""
    kubeconfig: pulumi.Output[str]
    """The credentials of the provider, always secret."""
    cilium_release: k8s.helm.v3.Release
    """The Cilium Helm release."""
    calico: list[pulumi.Resource]
    """Calico's operator release and Installation, when the program installs Calico (empty otherwise): what the
    Mesh's Calico objects in this cluster wait for."""
    eks: EksInfrastructure | None
    """The cluster's VPC, EKS cluster and node groups when the program builds it on AWS (the Mesh connects the VPCs);
    None otherwise."""
    infrastructure: OpenStackInfrastructure | None
    """The cluster's machines and network when the program builds them on OpenStack (the Mesh adds its peers'
    firewall rules to their security group); None for a cluster that already runs."""
    cluster_name: str
    cluster_id: int

    def __init__(self, name: str, args: MeshClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        spec = args.cluster
        # What the mesh needs to know of every cluster whatever installs its pods' addresses (Cilium's
        # cluster-pool, the AWS VPC CNI, Calico): the policy pack checks these across clusters.
        super().__init__(MESH_CLUSTER, name, cluster_identity(args.mesh, spec), opts)
        self.cluster_name = spec.name
        self.cluster_id = spec.id
        self.infrastructure = None
        self.eks = None
        ready: list[pulumi.Resource] = []
        context = args.kube_context
        if isinstance(spec, OpenStackCluster):
            self.infrastructure, kubernetes = self._build_on_openstack(name, args, spec)
            kubeconfig: pulumi.Input[str] = kubernetes.kubeconfig
            ready = kubernetes.installed
        elif isinstance(spec, EksCluster):
            self.eks = EksInfrastructure(
                name, EksInfrastructureArgs(mesh=args.mesh, cluster=spec), opts=pulumi.ResourceOptions(parent=self)
            )
            kubeconfig = self.eks.kubeconfig
            ready = list(self.eks.node_groups)
        else:
            assert args.kubeconfig is not None  # validation requires a kubeconfig for kind existing
            kubeconfig = args.kubeconfig
        self.kubeconfig = pulumi.Output.secret(kubeconfig)

        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            context=context,
            # A stable identity: rotating credentials or moving the kubeconfig must update the provider,
            # never replace it (and with it every resource of this cluster).
            cluster_identifier=spec.name,
            # A built cluster's API answers once its servers are installed: the provider, which checks the
            # cluster when it is configured, must not be configured before (its inputs are known at preview).
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )
        on_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)

        chaining_config: list[pulumi.Resource] = []
        self.calico: list[pulumi.Resource] = []
        if isinstance(spec, OpenStackCluster) and spec.cni is CniMode.CALICO:
            # Cilium chains on Calico's CNI configuration: Calico comes first.
            self.calico = self._calico(name, spec, on_cluster, ready)
            chaining_config += self.calico
        if spec.cni is CniMode.CALICO:
            chaining_config.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-cni-configuration",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=CALICO_CHAINING_CONFIGMAP, namespace=cilium.NAMESPACE),
                    data=calico_chaining_configmap_data(spec.calico_settings.mtu)
                    if isinstance(spec, OpenStackCluster)
                    else calico_chaining_configmap_data(),
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
                timeout=RELEASE_TIMEOUT_SECONDS if isinstance(spec, OpenStackCluster) else None,
            ),
            opts=pulumi.ResourceOptions.merge(
                on_cluster, pulumi.ResourceOptions(depends_on=[*chaining_config, *ready])
            ),
        )
        if isinstance(spec, OpenStackCluster) and spec.apiserver_load_balancer.metallb is not None:
            self._metallb(name, spec, on_cluster, ready)
        if isinstance(spec, OpenStackCluster) and spec.cni is CniMode.CALICO:
            self._restart_dns(name, spec, on_cluster)

        # A component's registered outputs replace its inputs in the engine's state, and stack policies read
        # that state: the identity goes in both, or a policy would see it in a preview and lose it after `up`.
        self.register_outputs(
            {
                **cluster_identity(args.mesh, spec),
                "kubeconfig": self.kubeconfig,
                "ciliumStatus": self.cilium_release.status,
                **({"vpcId": self.eks.vpc_id} if self.eks is not None else {}),
            }
        )

    def _build_on_openstack(
        self, name: str, args: MeshClusterArgs, spec: OpenStackCluster
    ) -> tuple[OpenStackInfrastructure, KubernetesOverSsh]:
        secret_of = args.secrets.get
        infrastructure = OpenStackInfrastructure(
            name,
            OpenStackInfrastructureArgs(
                mesh=args.mesh,
                cluster=spec,
                application_credential_secret=secret_of(spec.openstack.application_credential_secret or ""),
                ssh_private_key=secret_of(spec.ssh.private_key_secret or ""),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        kubernetes = KubernetesOverSsh(
            name,
            KubernetesOverSshArgs(
                cluster=spec,
                ssh_hosts=infrastructure.ssh_hosts,
                ssh_private_key=infrastructure.ssh_private_key,
                machines=infrastructure.instances,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return infrastructure, kubernetes

    def _calico(
        self, name: str, spec: OpenStackCluster, on_cluster: pulumi.ResourceOptions, ready: list[pulumi.Resource]
    ) -> list[pulumi.Resource]:
        """Calico by its Tigera operator (chart), and the Installation that sets its pool: the program's own copy,
        so a preview shows the pool, encapsulation and block size as they will be."""
        release = k8s.helm.v3.Release(
            f"{name}-calico",
            k8s.helm.v3.ReleaseArgs(
                name=calico.RELEASE_NAME,
                chart=calico.CHART,
                version=spec.calico_settings.version,
                namespace=calico.OPERATOR_NAMESPACE,
                create_namespace=True,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=calico.REPOSITORY),
                values=calico.operator_values(spec),
                timeout=RELEASE_TIMEOUT_SECONDS,
            ),
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=ready)),
        )
        manifest = calico.installation(spec)
        metadata = manifest["metadata"]
        # Ready once the operator has made Calico's own pool: the peers' pools (and Cilium) wait for it, since
        # without Calico's API server the operator creates its pool only where none exists yet.
        waited = {**metadata.get("annotations", {}), WAIT_FOR: "condition=Ready"}
        installation = apply_manifest(
            f"{name}-calico-installation",
            {**manifest, "metadata": {**metadata, "annotations": waited}},
            pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[release])),
        )
        return [release, installation]

    def _restart_dns(self, name: str, spec: OpenStackCluster, on_cluster: pulumi.ResourceOptions) -> None:
        """Restart the cluster DNS once Cilium chains on Calico: pods started before Cilium keep running without it
        (no policy, no service load balancing from them), and CoreDNS starts before Cilium here, since Calico is
        ready first (Cilium's Calico chaining guide: "You must restart these pods"). A fixed annotation value, so
        it restarts once, when this patch is created, and never on a later `pulumi up`."""
        k8s.apps.v1.DeploymentPatch(
            f"{name}-dns-restart",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=distro.coredns_deployment(spec), namespace="kube-system"),
            spec=k8s.apps.v1.DeploymentSpecPatchArgs(
                template=k8s.core.v1.PodTemplateSpecPatchArgs(
                    metadata=k8s.meta.v1.ObjectMetaPatchArgs(annotations={RESTARTED_AT: "after-cilium-chaining"})
                )
            ),
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[self.cilium_release])),
        )

    def _metallb(
        self, name: str, spec: OpenStackCluster, on_cluster: pulumi.ResourceOptions, ready: list[pulumi.Resource]
    ) -> None:
        """MetalLB in L2 mode with the cluster's pool, so the clustermesh-apiserver gets its pinned address.

        Not ordered after Cilium: Cilium's release waits for its LoadBalancer to get an address, which MetalLB
        gives, while MetalLB's pods wait for Cilium's network; installed side by side, both finish.
        """
        settings = spec.apiserver_load_balancer.metallb
        assert settings is not None
        namespace_manifest = metallb.namespace_manifest()
        namespace = k8s.core.v1.Namespace(
            f"{name}-metallb-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(**namespace_manifest["metadata"]),
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=ready)),
        )
        release = k8s.helm.v3.Release(
            f"{name}-metallb",
            k8s.helm.v3.ReleaseArgs(
                name=metallb.RELEASE_NAME,
                chart=metallb.CHART,
                version=settings.chart_version,
                namespace=metallb.NAMESPACE,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=metallb.REPOSITORY),
                values=metallb.metallb_values(spec),
                timeout=RELEASE_TIMEOUT_SECONDS,
            ),
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[namespace])),
        )
        after_release = pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[release]))
        for suffix, manifest in (("pool", metallb.address_pool(spec)), ("l2", metallb.l2_advertisement(spec))):
            apply_manifest(f"{name}-metallb-{suffix}", manifest, after_release)
