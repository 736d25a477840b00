"""Cilium's real charts judge every plan: each cluster's release, rendered offline by Helm's own SDK.

For each mesh variant the real program is planned under the planner's mocks; every cluster's Helm release
values are rendered with the pinned chart archive of the release's version (tests/data/charts, verbatim from
cilium/charts), and the output is held against the program's own resources for that cluster:

- every template renders (Helm fails the whole render on any template error, or on values the chart's schema
  refuses);
- every Secret and ConfigMap a rendered workload mounts or reads exists, with the keys it mounts, either in the
  chart's output for that release or among the program's resources for that cluster (a reference marked
  `optional` may be absent, but a present object must hold the keys listed);
- no object is created by both the chart and the program, and every patch the program applies targets an
  object the chart renders;
- every file an etcd configuration in a mounted Secret names (the peers' TLS files) is mounted in the container;
- `cilium-config` carries the cluster's name and ID, the mesh's max-connected-clusters and the datapath.

Expectations come from each variant's own config, never from the program's output.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import helm_python
import pytest
import yaml

from clustermesh.planner.graph import Node, reveal
from clustermesh.planner.runner import CapturedPlan
from clustermesh.planner.stackfile import load_stack
from clustermesh.render.distro import COREDNS_DEPLOYMENTS
from components.tokens import ADDRESS_PATCHES, HELM_RELEASE, MESH_CLUSTER
from tests.conftest import COMPLIANT_EXPOSURE, DATA, PROJECT_DIR, cluster, plan_raw, raw_config

CHARTS = DATA / "charts"
CHART_VERSIONS = ("1.20.0", "1.19.6")
WORKLOAD_KINDS = frozenset({"DaemonSet", "Deployment", "Job", "CronJob", "StatefulSet"})
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "ClusterRole",
        "ClusterRoleBinding",
        "Namespace",
        "CustomResourceDefinition",
        "PriorityClass",
        "IngressClass",
        "GatewayClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "APIService",
    }
)
CHAINING_MODE = {"aws-cni": "aws-cni", "calico": "generic-veth"}
"""Cilium's `cni.chainingMode` for each chained CNI, as Cilium's installation docs give it."""
REMOTE_USERS = "clustermesh-remote-users"
APISERVER_CERTIFICATES = ("clustermesh-apiserver-server-cert", "clustermesh-apiserver-admin-cert")
"""The certificates the clustermesh-apiserver cannot start without (its etcd's server and admin identities)."""
ETCD_FILES = ("trusted-ca-file", "cert-file", "key-file")
"""The files a Cilium etcd configuration (a clustermesh Secret's entry) names."""
NATIVE = {"mode": "native"}
VXLAN = {"mode": "tunnel", "tunnelProtocol": "vxlan"}
GENEVE = {"mode": "tunnel", "tunnelProtocol": "geneve"}

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name); the namespace is empty for a cluster-scoped object."""


# --- the variants -------------------------------------------------------------------------------------------


def _mesh(clusters: list[dict[str, Any]], **mesh: Any) -> tuple[dict[str, str], frozenset[str]]:
    mesh.setdefault("apiserverExposure", COMPLIANT_EXPOSURE)
    return raw_config(clusters, **mesh), frozenset()


def _dev() -> tuple[dict[str, str], frozenset[str]]:
    stack = load_stack(PROJECT_DIR, stack="dev")
    return stack.config, stack.secret_keys


def _stack(name: str) -> Callable[[], tuple[dict[str, str], frozenset[str]]]:
    def variant() -> tuple[dict[str, str], frozenset[str]]:
        stack = load_stack(PROJECT_DIR, stack=name)
        return stack.config, stack.secret_keys

    return variant


def _wireguard() -> tuple[dict[str, str], frozenset[str]]:
    stack = load_stack(PROJECT_DIR, stack="openstack-k3s")
    return {**stack.config, "clustermesh:encryption": "wireguard"}, stack.secret_keys


def _aws_cni() -> tuple[dict[str, str], frozenset[str]]:
    return _mesh(
        [
            cluster("eks1", 1, "10.1.0.0/16", cni="aws-cni", nodeCidr="10.1.0.0/16", routing=NATIVE),
            cluster("eks2", 2, "10.2.0.0/16", cni="aws-cni", nodeCidr="10.2.0.0/16", routing=NATIVE),
            cluster("eks3", 127, "10.3.0.0/16", cni="aws-cni", nodeCidr="10.3.0.0/16", routing=NATIVE),
        ],
        ciliumVersion="1.20.0",
        maxConnectedClusters=255,
        kvstoremesh=True,
    )


def _calico() -> tuple[dict[str, str], frozenset[str]]:
    return _mesh(
        [
            cluster("os1", 1, "10.1.0.0/16", cni="calico", nodeCidr="192.168.1.0/24", routing=NATIVE),
            cluster("os2", 2, "10.2.0.0/16", cni="calico", nodeCidr="192.168.2.0/24", routing=NATIVE),
        ],
        ciliumVersion="1.20.0",
        maxConnectedClusters=255,
        kvstoremesh=True,
        nativeRoutingCidrs=["10.0.0.0/8"],
    )


def _dual_stack() -> tuple[dict[str, str], frozenset[str]]:
    routing = {**NATIVE, "autoDirectNodeRoutes": True}
    return _mesh(
        [
            cluster(
                "n1",
                1,
                "10.1.0.0/16",
                podCidrs=["10.1.0.0/16", "fd00:1::/104"],
                nodeCidr="192.168.1.0/24",
                routing=routing,
            ),
            cluster(
                "n2",
                2,
                "10.2.0.0/16",
                podCidrs=["10.2.0.0/16", "fd00:2::/104"],
                nodeCidr="192.168.2.0/24",
                routing=routing,
                kubeProxyReplacement=True,
                k8sServiceHost="192.168.2.10",
                k8sServicePort=6443,
            ),
        ],
        ciliumVersion="1.20.0",
        maxConnectedClusters=511,
        kvstoremesh=True,
        nativeRoutingCidrs=["10.0.0.0/8", "fd00::/16"],
    )


def _node_port() -> tuple[dict[str, str], frozenset[str]]:
    return _mesh(
        [
            cluster("g1", 1, "10.1.0.0/16", routing=GENEVE, apiserverExposure={"nodeAddresses": ["192.0.2.1"]}),
            cluster("g2", 2, "10.2.0.0/16", routing=GENEVE, apiserverExposure={"nodeAddresses": ["192.0.2.2"]}),
            cluster(
                "g3",
                3,
                "10.3.0.0/16",
                routing=GENEVE,
                apiserverExposure={"nodeAddresses": ["192.0.2.3", "192.0.2.4"]},
            ),
        ],
        ciliumVersion="1.20.0",
        maxConnectedClusters=255,
        kvstoremesh=True,
        apiserverExposure={"type": "NodePort", "nodePort": 32001},
    )


def _kvstoremesh_off() -> tuple[dict[str, str], frozenset[str]]:
    return _mesh(
        [cluster("a", 1, "10.1.0.0/16", routing=VXLAN), cluster("b", 2, "10.2.0.0/16", routing=VXLAN)],
        ciliumVersion="1.20.0",
        maxConnectedClusters=255,
        kvstoremesh=False,
    )


def _cilium_119(*, kvstoremesh: bool) -> Callable[[], tuple[dict[str, str], frozenset[str]]]:
    def variant() -> tuple[dict[str, str], frozenset[str]]:
        return _mesh(
            [
                cluster("old1", 1, "10.1.0.0/16", routing=VXLAN),
                cluster("old2", 2, "10.2.0.0/16", routing=VXLAN, apiserverExposure={"loadBalancerIP": "10.9.0.2"}),
                cluster("old3", 3, "10.3.0.0/16", routing=VXLAN),
            ],
            ciliumVersion="1.19.6",
            maxConnectedClusters=255,
            kvstoremesh=kvstoremesh,
        )

    return variant


def _hostnames() -> tuple[dict[str, str], frozenset[str]]:
    internal = {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
    return _mesh(
        [
            cluster("h1", 1, "10.1.0.0/16", routing=VXLAN, apiserverExposure={"hostname": "h1.mesh.example.net"}),
            cluster("h2", 2, "10.2.0.0/16", routing=VXLAN, apiserverExposure={"hostname": "h2.mesh.example.net"}),
        ],
        ciliumVersion="1.20.0",
        maxConnectedClusters=255,
        kvstoremesh=True,
        apiserverExposure={**COMPLIANT_EXPOSURE, "annotations": internal},
    )


VARIANTS: dict[str, Callable[[], tuple[dict[str, str], frozenset[str]]]] = {
    "dev stack": _dev,
    "aws-cni chaining": _aws_cni,
    "calico chaining": _calico,
    "native dual-stack": _dual_stack,
    "nodeport geneve": _node_port,
    "kvstoremesh off": _kvstoremesh_off,
    "1.19 with kvstoremesh": _cilium_119(kvstoremesh=True),
    "1.19 without kvstoremesh": _cilium_119(kvstoremesh=False),
    "hostnames": _hostnames,
    "openstack rke2 with metallb (tutorial 000)": _stack("openstack-rke2"),
    "openstack k3s with octavia (tutorial 002)": _stack("openstack-k3s"),
    "openstack k3s with wireguard": _wireguard,
    "openstack kubeadm chained on calico (tutorial 004)": _stack("openstack-kubeadm"),
    "openstack calico mesh (tutorial 003's intent)": _stack("openstack-calico-mesh"),
    "eks chained on aws-cni (tutorial 001)": _stack("eks-tutorial"),
}


# --- what each variant's config says --------------------------------------------------------------------


def _config_value(raw: Mapping[str, str], key: str) -> Any:
    """A mesh-level key as the variant wrote it (the engine hands scalars and objects over as strings)."""
    value = raw[f"clustermesh:{key}"]
    return value if key == "ciliumVersion" else json.loads(value)


def _expected_config(raw: Mapping[str, str], entry: Mapping[str, Any]) -> dict[str, str]:
    """The `cilium-config` entries a cluster of this config must run with."""
    eks = entry["kind"] == "eks"  # EKS clusters default to aws-cni chaining, routed natively
    routing = entry.get("routing") or ({"mode": "native"} if eks else {"mode": "tunnel", "tunnelProtocol": "vxlan"})
    expected = {
        "cluster-name": entry["name"],
        "cluster-id": str(entry["id"]),
        "max-connected-clusters": str(
            _config_value(raw, "maxConnectedClusters") if "clustermesh:maxConnectedClusters" in raw else 255
        ),
        "routing-mode": routing["mode"],
    }
    if routing["mode"] == "tunnel":
        expected["tunnel-protocol"] = routing["tunnelProtocol"]
    if raw.get("clustermesh:encryption") == "wireguard":
        expected["enable-wireguard"] = "true"
    cni = entry.get("cni", "aws-cni" if eks else "cilium")
    if cni != "cilium":
        expected["cni-chaining-mode"] = CHAINING_MODE[cni]
        return expected
    pods = {4: [c for c in entry["podCidrs"] if ":" not in c], 6: [c for c in entry["podCidrs"] if ":" in c]}
    expected["ipam"] = "cluster-pool"
    expected["cluster-pool-ipv4-cidr"] = " ".join(pods[4])
    expected["enable-ipv6"] = "true" if pods[6] else "false"
    if pods[6]:
        expected["cluster-pool-ipv6-cidr"] = " ".join(pods[6])
    if routing["mode"] == "native":
        for cidr in _config_value(raw, "nativeRoutingCidrs"):
            expected[f"ipv{6 if ':' in cidr else 4}-native-routing-cidr"] = cidr
        expected["auto-direct-node-routes"] = "true" if routing.get("autoDirectNodeRoutes") else "false"
    return expected


# --- rendering ----------------------------------------------------------------------------------------------


@cache
def _chart(version: str) -> helm_python.Chart:
    """Each archive loaded once per test session."""
    return helm_python.Chart.load_archive((CHARTS / f"cilium-{version}.tgz").read_bytes())


@dataclass(frozen=True)
class Reference:
    """A Secret or ConfigMap a workload needs: by volume, projected volume source, env or envFrom."""

    workload: str
    kind: str
    name: str
    keys: tuple[str, ...]
    optional: bool
    """The object may be absent (`optional: true`)."""
    keys_optional: bool = False
    """Its keys may be absent too: an env reference's `optional` covers the key (a volume's listed items must be
    in the object when it exists)."""
    paths: tuple[str, ...] = ()
    """A volume's items: the file each of `keys` becomes."""


@dataclass(frozen=True)
class ClusterRender:
    name: str
    entry: Mapping[str, Any]
    """The cluster's entry in the variant's config."""
    chart_version: str
    chart: dict[ObjectKey, dict[str, Any]]
    """The chart's objects for this release."""
    program: dict[ObjectKey, dict[str, Any]]
    """The program's Kubernetes objects for this cluster (created, not read or patched), inputs revealed."""
    patches: tuple[ObjectKey, ...]
    """Objects the program patches in this cluster."""

    namespace: str
    """The release's namespace."""

    def workload(self, kind: str, name: str) -> dict[str, Any]:
        return self.chart[(kind, self.namespace, name)]


@dataclass(frozen=True)
class VariantRender:
    raw: Mapping[str, str]
    clusters: tuple[ClusterRender, ...]


def _key(kind: str, manifest: Mapping[str, Any], default_namespace: str) -> ObjectKey:
    metadata = manifest.get("metadata") or {}
    namespace = "" if kind in CLUSTER_SCOPED_KINDS else (metadata.get("namespace") or default_namespace)
    return (kind, namespace, metadata["name"])


def _chart_objects(manifests: Mapping[str, str], namespace: str) -> dict[ObjectKey, dict[str, Any]]:
    objects: dict[ObjectKey, dict[str, Any]] = {}
    for path, text in manifests.items():
        if not path.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        for document in yaml.safe_load_all(text):
            if not document:
                continue
            key = _key(document["kind"], document, namespace)
            assert key not in objects, f"the chart renders {key} twice"
            objects[key] = document
    return objects


def _kind(node: Node) -> str:
    """`kubernetes:core/v1:Secret` -> `Secret`; a patch's kind is the kind it patches."""
    kind = node.type.rsplit(":", 1)[1]
    return kind.removesuffix("Patch") if node.type in ADDRESS_PATCHES else kind


def _program_objects(
    nodes: list[Node], provider: str, namespace: str
) -> tuple[dict[ObjectKey, dict[str, Any]], tuple[ObjectKey, ...]]:
    created: dict[ObjectKey, dict[str, Any]] = {}
    patches: list[ObjectKey] = []
    for node in nodes:
        if node.provider != provider or node.read or node.type == HELM_RELEASE:
            continue
        assert node.type.startswith("kubernetes:"), node.type
        inputs = reveal(node.inputs, secrets=True)
        key = _key(_kind(node), inputs, namespace)
        if node.type in ADDRESS_PATCHES:
            patches.append(key)
            continue
        assert key not in created, f"the program creates {key} twice"
        created[key] = inputs
    return created, tuple(patches)


@cache
def _render(variant: str) -> VariantRender:
    """Plan the variant with the real program, then render every cluster's release with the real chart."""
    raw, secret_keys = VARIANTS[variant]()
    plan = plan_raw(raw, secret_keys)
    entries = {entry["name"]: entry for entry in json.loads(raw["clustermesh:clusters"])}
    return VariantRender(raw, tuple(_render_release(plan, release, entries) for release in _releases(plan)))


def _releases(plan: CapturedPlan) -> list[Node]:
    """The Cilium releases (an OpenStack cluster with MetalLB has a second release, MetalLB's)."""
    return [node for node in plan.nodes if node.type == HELM_RELEASE and node.inputs.get("chart") == "cilium"]


def _render_release(plan: CapturedPlan, release: Node, entries: Mapping[str, Mapping[str, Any]]) -> ClusterRender:
    by_urn = {node.urn: node for node in plan.nodes}
    parent = by_urn[release.parent]
    assert parent.type == MESH_CLUSTER, f"release {release.name} is not a cluster's"
    provider = by_urn[release.provider]
    assert provider.parent == parent.urn, f"release {release.name} goes through another cluster's provider"
    inputs = reveal(release.inputs, secrets=True)
    assert (inputs["chart"], inputs["name"]) == ("cilium", "cilium"), inputs
    version, namespace = inputs["version"], inputs["namespace"]
    assert version in CHART_VERSIONS, f"no vendored chart for Cilium {version}"
    manifests = _chart(version).render(inputs["values"], name=inputs["name"], namespace=namespace)
    program, patches = _program_objects(plan.nodes, provider.urn, namespace)
    return ClusterRender(
        name=parent.name,
        entry=entries[parent.name],
        chart_version=version,
        chart=_chart_objects(manifests, namespace),
        program=program,
        patches=patches,
        namespace=namespace,
    )


# --- what workloads mount -----------------------------------------------------------------------------------


def _pod_spec(workload: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: Mapping[str, Any] = spec["template"]["spec"]
    return pod


def _volume_source(where: str, kind: str, name: str, source: Mapping[str, Any]) -> Reference:
    items = source.get("items") or ()
    keys, paths = tuple(i["key"] for i in items), tuple(i["path"] for i in items)
    return Reference(where, kind, name, keys, bool(source.get("optional")), paths=paths)


def _volume_references(where: str, volume: Mapping[str, Any]) -> Iterator[Reference]:
    if (secret := volume.get("secret")) is not None:
        yield _volume_source(where, "Secret", secret["secretName"], secret)
    if (config_map := volume.get("configMap")) is not None:
        yield _volume_source(where, "ConfigMap", config_map["name"], config_map)
    for source in (volume.get("projected") or {}).get("sources") or ():
        for field, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
            if (ref := source.get(field)) is not None:
                yield _volume_source(where, kind, ref["name"], ref)


def _container_references(where: str, container: Mapping[str, Any]) -> Iterator[Reference]:
    for env in container.get("env") or ():
        value_from = env.get("valueFrom") or {}
        for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if (ref := value_from.get(field)) is not None:
                optional = bool(ref.get("optional"))
                yield Reference(where, kind, ref["name"], (ref["key"],), optional, keys_optional=optional)
    for env_from in container.get("envFrom") or ():
        for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            if (ref := env_from.get(field)) is not None:
                yield Reference(where, kind, ref["name"], (), bool(ref.get("optional")))


def references(workload: Mapping[str, Any]) -> Iterator[Reference]:
    """Every Secret and ConfigMap a workload's pods mount or read."""
    pod = _pod_spec(workload)
    name = f"{workload['kind']} {workload['metadata']['name']}"
    for volume in pod.get("volumes") or ():
        yield from _volume_references(f"{name} volume {volume['name']}", volume)
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in pod.get(field) or ():
            yield from _container_references(f"{name} container {container['name']}", container)


def _keys(manifest: Mapping[str, Any]) -> set[str]:
    keys: set[str] = set()
    for field in ("data", "stringData", "binaryData"):
        value = manifest.get(field)
        assert value is None or isinstance(value, dict), f"{field} is not known: {value!r}"
        keys |= set(value or {})
    return keys


def _workloads(render: ClusterRender) -> Iterator[tuple[ObjectKey, dict[str, Any]]]:
    yield from ((k, o) for k, o in render.chart.items() if k[0] in WORKLOAD_KINDS)


def _provider_of(render: ClusterRender, key: ObjectKey) -> str | None:
    if key in render.chart:
        return "chart"
    if key in render.program:
        return "program"
    return None


def _lookup(render: ClusterRender, key: ObjectKey) -> dict[str, Any] | None:
    return render.chart.get(key) or render.program.get(key)


def _contents(kind: str, manifest: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's or ConfigMap's entries as the pod reads them (`stringData` over base64 `data`)."""
    contents = {k: str(v) for k, v in (manifest.get("stringData") or {}).items()}
    for key, value in (manifest.get("data") or {}).items():
        contents.setdefault(key, base64.b64decode(value).decode() if kind == "Secret" else str(value))
    return contents


def _volume_files(
    render: ClusterRender, namespace: str, volume: Mapping[str, Any]
) -> tuple[set[str], list[dict[str, str]]]:
    """The files a volume holds (relative paths), and the contents of its sources mounted whole."""
    files: set[str] = set()
    whole: list[dict[str, str]] = []
    for ref in _volume_references("", volume):
        found = _lookup(render, (ref.kind, namespace, ref.name))
        if found is None:
            continue
        contents = _contents(ref.kind, found)
        if ref.keys:
            files |= {path for key, path in zip(ref.keys, ref.paths, strict=True) if key in contents}
        else:
            files |= set(contents)
            whole.append(contents)
    return files, whole


def _container_view(
    render: ClusterRender, namespace: str, pod: Mapping[str, Any], container: Mapping[str, Any]
) -> tuple[set[str], list[dict[str, str]]]:
    """Every file a container sees through its Secret and ConfigMap mounts, and the whole-mounted objects."""
    volumes = {v["name"]: v for v in pod.get("volumes") or ()}
    seen: set[str] = set()
    whole: list[dict[str, str]] = []
    for mount in container.get("volumeMounts") or ():
        files, contents = _volume_files(render, namespace, volumes[mount["name"]])
        root = mount["mountPath"].rstrip("/")
        if sub_path := mount.get("subPath"):
            seen |= {root} if sub_path in files else set()
        else:
            seen |= {f"{root}/{file}" for file in files}
            whole += contents
    return seen, whole


def _etcd_config(text: str) -> dict[str, Any] | None:
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return config if isinstance(config, dict) and "endpoints" in config else None


def unreadable_etcd_files(render: ClusterRender) -> tuple[list[str], int]:
    """Files named by the etcd configurations a container mounts that none of its mounts provides.

    Also the number of etcd configurations checked, so a check of nothing shows.
    """
    problems: list[str] = []
    checked = 0
    for (kind, namespace, name), workload in _workloads(render):
        pod = _pod_spec(workload)
        for container in [*(pod.get("initContainers") or ()), *pod["containers"]]:
            seen, whole = _container_view(render, namespace, pod, container)
            for contents in whole:
                for entry, text in contents.items():
                    if (config := _etcd_config(text)) is None:
                        continue
                    checked += 1
                    problems += [
                        f"{kind} {name} container {container['name']}: {entry} names {config[f]}, which it cannot read"
                        for f in ETCD_FILES
                        if config.get(f) and config[f] not in seen
                    ]
    return problems, checked


def missing_mounts(render: ClusterRender) -> list[str]:
    """What the cluster's workloads mount or read that neither the chart nor the program provides."""
    problems = []
    for (_, namespace, _), workload in _workloads(render):
        for ref in references(workload):
            key = (ref.kind, namespace, ref.name)
            found = render.chart.get(key) or render.program.get(key)
            if found is None:
                if not ref.optional:
                    problems.append(f"{ref.workload}: {ref.kind} {namespace}/{ref.name} exists nowhere")
                continue
            if not ref.keys_optional and (absent := sorted(set(ref.keys) - _keys(found))):
                by = _provider_of(render, key)
                problems.append(f"{ref.workload}: {ref.kind} {namespace}/{ref.name} ({by}'s) lacks {absent}")
    return problems


# --- the tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_cluster_of_the_config_gets_a_release_of_its_version(variant: str) -> None:
    """The rendered set is the config's clusters, each with the chart version the config pins."""
    rendered = _render(variant)
    entries = json.loads(rendered.raw["clustermesh:clusters"])
    assert sorted(c.name for c in rendered.clusters) == sorted(e["name"] for e in entries)
    version = _config_value(rendered.raw, "ciliumVersion")
    assert {c.chart_version for c in rendered.clusters} == {version}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_mounted_secret_and_configmap_exists_with_its_keys(variant: str) -> None:
    problems = {c.name: p for c in _render(variant).clusters if (p := missing_mounts(c))}
    assert not problems, json.dumps(problems, indent=2)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_file_an_etcd_configuration_names_is_mounted_beside_it(variant: str) -> None:
    """The agents and KVStoreMesh read each peer's TLS files from paths the program writes in its Secrets."""
    rendered = _render(variant)
    # Each peer's configuration is read by the agents, and with KVStoreMesh once more by KVStoreMesh.
    readers = 2 if _config_value(rendered.raw, "kvstoremesh") else 1
    for render in rendered.clusters:
        problems, checked = unreadable_etcd_files(render)
        assert not problems, json.dumps(problems, indent=2)
        assert checked == readers * (len(rendered.clusters) - 1), f"{render.name}: {checked} etcd configurations read"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_object_is_created_by_both_chart_and_program(variant: str) -> None:
    """Helm would refuse to adopt the program's object, or the program would fight Helm over it."""
    both = {c.name: sorted(map(str, c.chart.keys() & c.program.keys())) for c in _render(variant).clusters}
    assert not any(both.values()), both


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_patch_targets_an_object_the_chart_renders(variant: str) -> None:
    """Besides the chart's objects, only the cluster DNS the distribution installs (restarted once Cilium chains on
    Calico) is patched."""
    distribution = {("Deployment", "kube-system", name) for name in COREDNS_DEPLOYMENTS.values()}
    strays = {
        c.name: [str(k) for k in c.patches if k not in c.chart and k not in distribution]
        for c in _render(variant).clusters
    }
    assert not any(strays.values()), strays


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cilium_config_carries_the_clusters_identity_and_datapath(variant: str) -> None:
    rendered = _render(variant)
    for render in rendered.clusters:
        config = render.chart[("ConfigMap", render.namespace, "cilium-config")]["data"]
        expected = _expected_config(rendered.raw, render.entry)
        assert {k: config.get(k) for k in expected} == expected, render.name


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_apiserver_service_is_exposed_as_configured(variant: str) -> None:
    rendered = _render(variant)
    exposure = _config_value(rendered.raw, "apiserverExposure")
    for render in rendered.clusters:
        service = render.chart[("Service", render.namespace, "clustermesh-apiserver")]
        spec, own = service["spec"], render.entry.get("apiserverExposure", {})
        assert spec["type"] == exposure["type"], render.name
        annotations = service["metadata"].get("annotations") or {}
        assert exposure.get("annotations", {}).items() <= annotations.items(), render.name
        if spec["type"] == "NodePort":
            assert [p.get("nodePort") for p in spec["ports"]] == [exposure["nodePort"]], render.name
            continue
        assert spec.get("loadBalancerSourceRanges") == exposure["loadBalancerSourceRanges"], render.name
        assert spec.get("loadBalancerIP") == own.get("loadBalancerIP"), render.name


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kvstoremesh_runs_exactly_when_configured(variant: str) -> None:
    rendered = _render(variant)
    wanted = _config_value(rendered.raw, "kvstoremesh")
    for render in rendered.clusters:
        pod = _pod_spec(render.workload("Deployment", "clustermesh-apiserver"))
        assert ("kvstoremesh" in {c["name"] for c in pod["containers"]}) is wanted, render.name


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_apiserver_mounts_the_programs_remote_users_and_certificates(variant: str) -> None:
    """Not vacuous: the clustermesh-apiserver needs what only the program provides, and finds it.

    With the chart's own clustermesh config off, `clustermesh-remote-users` and the certificate Secrets
    (automatic TLS is off) come from the program alone; the agents' `cilium-clustermesh` too.
    """
    rendered = _render(variant)
    for render in rendered.clusters:
        apiserver = {(r.kind, r.name) for r in references(render.workload("Deployment", "clustermesh-apiserver"))}
        agent = {(r.kind, r.name) for r in references(render.workload("DaemonSet", "cilium"))}
        needed = {("ConfigMap", REMOTE_USERS), *(("Secret", name) for name in APISERVER_CERTIFICATES)}
        assert needed <= apiserver, render.name
        assert ("Secret", "cilium-clustermesh") in agent, render.name
        for kind, name in [*needed, ("Secret", "cilium-clustermesh")]:
            assert _provider_of(render, (kind, render.namespace, name)) == "program", (render.name, kind, name)
        users = yaml.safe_load(render.program[("ConfigMap", render.namespace, REMOTE_USERS)]["data"]["users.yaml"])
        peers = sorted(c.name for c in rendered.clusters if c.name != render.name)
        listed = sorted(users["users"], key=lambda user: str(user["name"]))
        assert listed == [{"name": f"remote-{peer}", "role": "remote"} for peer in peers], render.name


def test_the_checks_catch_what_nothing_provides() -> None:
    """The checks themselves: a missing ConfigMap, a Secret without its keys, a TLS file nothing mounts."""
    render = _render("dev stack").clusters[0]
    program = {k: v for k, v in render.program.items() if k[2] != REMOTE_USERS}
    broken = replace(render, program=program)
    assert missing_mounts(broken) == [
        f"Deployment clustermesh-apiserver volume etcd-users-config: ConfigMap kube-system/{REMOTE_USERS} exists nowhere"
    ]
    server = ("Secret", "kube-system", APISERVER_CERTIFICATES[0])
    keyless = {**render.program, server: {**render.program[server], "stringData": {"tls.crt": "x"}}}
    broken = replace(render, program=keyless)
    assert any("lacks ['ca.crt', 'tls.key']" in p for p in missing_mounts(broken)), missing_mounts(broken)
    local = ("Secret", "kube-system", "clustermesh-apiserver-local-cert")
    without_local = {k: v for k, v in render.program.items() if k != local}
    broken = replace(render, program=without_local)
    problems, _ = unreadable_etcd_files(broken)
    assert any("cilium-agent: k3scl2 names /var/lib/cilium/clustermesh/local-etcd-client.key," in p for p in problems)


def test_both_chart_versions_are_rendered() -> None:
    versions = {c.chart_version for variant in VARIANTS for c in _render(variant).clusters}
    assert versions == set(CHART_VERSIONS)
