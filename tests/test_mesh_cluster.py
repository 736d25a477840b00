"""MeshCluster wiring under mocks: the real program, every resource checked for provider, name and secrecy."""

from __future__ import annotations

from collections import Counter

from clustermesh.config import load_stack_config
from clustermesh.planner.graph import UNKNOWN, Node, Secret
from clustermesh.planner.runner import CapturedPlan
from clustermesh.render.cilium_values import cilium_values
from components.tokens import HELM_RELEASE, KUBERNETES_PROVIDER, MESH_CLUSTER
from tests.conftest import cluster, plan_raw, raw_config, three_clusters


def _by_type(plan: CapturedPlan, type_: str) -> list[Node]:
    return [n for n in plan.nodes if n.type == type_]


def test_every_kubernetes_resource_uses_its_own_clusters_explicit_provider() -> None:
    """A resource on the wrong (or a default) provider lands in another cluster: the worst silent failure."""
    native = {"mode": "native"}
    clusters = [{**c, "routing": native} for c in three_clusters()]
    clusters.append(cluster("delta", 4, "10.14.0.0/16", cni="calico", nodeCidr="172.17.4.0/24", routing=native))
    plan = plan_raw(raw_config(clusters, nativeRoutingCidrs=["10.0.0.0/8"]))
    components = {n.urn: n for n in _by_type(plan, MESH_CLUSTER)}
    providers = {n.urn: n for n in _by_type(plan, KUBERNETES_PROVIDER)}
    assert len(components) == 4 and len(providers) == 4
    kubernetes_resources = [n for n in plan.nodes if n.type.startswith("kubernetes:")]
    assert kubernetes_resources
    for node in kubernetes_resources:
        assert node.provider in providers, f"{node.name} is not on an explicit provider"
        # Every resource is named after the cluster it belongs to; its provider must be that cluster's.
        owner = components[providers[node.provider].parent].name
        assert owner == node.name.split("-")[0], f"{node.name} uses {owner}'s provider"


def test_resource_names_and_urns_are_unique() -> None:
    """Mocks accept duplicates that the engine would refuse, so uniqueness is checked here."""
    plan = plan_raw(raw_config(three_clusters()))
    assert [u for u, c in Counter(n.urn for n in plan.nodes).items() if c > 1] == []
    assert [k for k, c in Counter((n.type, n.name) for n in plan.nodes).items() if c > 1] == []


BETA_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: beta, cluster: {server: "https://beta.example:6443"}}]
users: [{name: beta-admin, user: {token: beta-token}}]
contexts: [{name: beta, context: {cluster: beta, user: beta-admin}}]
current-context: beta
"""


def test_kubeconfigs_are_secret_in_provider_inputs_and_stack_outputs() -> None:
    secret_cluster = cluster("beta", 2, "10.12.0.0/16", kubeconfig={"secret": "betaKubeconfig"})
    raw = {**raw_config([three_clusters()[0], secret_cluster]), "clustermesh:betaKubeconfig": BETA_KUBECONFIG}
    plan = plan_raw(raw, frozenset({"clustermesh:betaKubeconfig"}))
    providers = {n.name: n for n in _by_type(plan, KUBERNETES_PROVIDER)}
    assert providers["beta-k8s"].inputs["kubeconfig"] == Secret(BETA_KUBECONFIG)
    assert providers["alpha-k8s"].inputs["kubeconfig"] == Secret("~/.kube/config")
    assert providers["alpha-k8s"].inputs["context"] == "alpha"
    assert isinstance(plan.outputs["kubeconfigs"]["alpha"], Secret)
    assert isinstance(plan.outputs["kubeconfigs"]["beta"], Secret)


def test_provider_identity_is_the_cluster_name_so_credential_rotation_does_not_replace() -> None:
    plan = plan_raw(raw_config(three_clusters()))
    identifiers = {n.name: n.inputs.get("clusterIdentifier") for n in _by_type(plan, KUBERNETES_PROVIDER)}
    assert identifiers == {"alpha-k8s": "alpha", "beta-k8s": "beta", "gamma-k8s": "gamma"}


def test_each_release_gets_its_clusters_rendered_values_and_a_pinned_chart() -> None:
    raw = raw_config(three_clusters())
    mesh = load_stack_config(raw)
    plan = plan_raw(raw)
    releases = {n.name: n for n in _by_type(plan, HELM_RELEASE)}
    assert sorted(releases) == ["alpha-cilium", "beta-cilium", "gamma-cilium"]
    for spec in mesh.clusters:
        release = releases[f"{spec.name}-cilium"]
        assert release.inputs["values"] == cilium_values(mesh, spec)
        assert release.inputs["chart"] == "cilium"
        assert release.inputs["version"] == "1.20.0"
        assert release.inputs["namespace"] == "kube-system"
        assert release.inputs["repositoryOpts"] == {"repo": "https://helm.cilium.io/"}


def test_calico_chaining_configmap_is_applied_before_cilium() -> None:
    """Cilium's agent reads the conflist at start; installing it first avoids a crash-looping first rollout."""
    entry = cluster("os1", 1, "10.1.0.0/16", cni="calico", nodeCidr="192.168.1.0/24", routing={"mode": "native"})
    plan = plan_raw(raw_config([entry], nativeRoutingCidrs=["10.0.0.0/8"]))
    (configmap,) = [n for n in _by_type(plan, "kubernetes:core/v1:ConfigMap") if n.name == "os1-cni-configuration"]
    assert configmap.inputs["metadata"] == {"name": "cni-configuration", "namespace": "kube-system"}
    assert "cni-config" in configmap.inputs["data"]
    (release,) = _by_type(plan, HELM_RELEASE)
    assert configmap.urn in release.dependencies
    others = _by_type(plan_raw(raw_config(three_clusters())), "kubernetes:core/v1:ConfigMap")
    assert [n for n in others if n.inputs["metadata"]["name"] == "cni-configuration"] == []


def test_release_status_is_exported_per_cluster() -> None:
    plan = plan_raw(raw_config(three_clusters()))
    assert plan.outputs["clusters"]["beta"]["id"] == 2
    assert plan.outputs["clusters"]["beta"]["cilium"]["status"] == "deployed"


def test_preview_plans_without_errors_and_leaves_cloud_values_unknown() -> None:
    plan = plan_raw(raw_config(three_clusters()), preview=True)
    assert len(_by_type(plan, HELM_RELEASE)) == 3
    assert plan.outputs["clusters"]["alpha"]["cilium"] is UNKNOWN
