"""Calico's objects checked against Calico v3.32.1's own schemas, and its operator chart rendered with the values.

The Installation is validated against the operator.tigera.io/v1 CRD, the peer pools against the
crd.projectcalico.org/v1 IPPool CRD, and the chart values against the tigera-operator chart's values.yaml and
templates, all vendored verbatim from projectcalico/calico at v3.32.1 (tests/data/SOURCES.md). Expected values come
from the tests' own cluster entries and from upstream documents: the operator's pool and BGP rules
(tigera/operator pkg/controller/installation/validation.go, pkg/controller/ippool/validation.go), Calico's
"Configure outgoing NAT" page (a disabled pool, `disabled: true`, keeps a range out of NAT) and the Calico
defaults its IPPool reference gives (block size 26 for IPv4).
"""

from __future__ import annotations

from functools import cache
from ipaddress import ip_network
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml

from clustermesh.model import OpenStackCluster
from clustermesh.render.calico import (
    CHART,
    OPERATOR_NAMESPACE,
    RELEASE_NAME,
    installation,
    operator_values,
    peer_pool,
    peer_pools,
)
from clustermesh.render.cni import calico_chaining_conflist
from clustermesh.render.firewall import ANY, peer_rules
from tests.conftest import DATA
from tests.test_render_firewall_metallb import (
    LAMBDA_POOL,
    NU_PODS_V4,
    alpha,
    calico,
    calico_mesh,
    kappa,
    lambda_,
    mesh_of,
    mu,
    nu_existing,
    openstack_clusters,
    paths,
    unknown_fields,
)

CALICO = DATA / "calico-3.32.1"
CHART_DIR = CALICO / "tigera-operator"
CHART_DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

KAPPA_PODS, MU_PODS = "10.105.0.0/16", "10.107.0.0/16"
"""The pod CIDRs the shared `openstack` builder gives clusters 5 and 7 (10.{100 + id}.0.0/16)."""
CALICO_DEFAULT_BLOCK = 26
"""Calico's IPv4 block size when none is given (IPPool reference, `blockSize`)."""
OPERATOR_BGP = {"IPIP": "Enabled", "None": "Enabled", "VXLAN": "Disabled"}
"""With BIRD routing, the operator refuses IPIP or unencapsulated pools without BGP; VXLAN routes are Felix's."""


@cache
def crd(name: str) -> dict[str, Any]:
    """A vendored CRD (the Installation's is 1.4 MB: read once, with libyaml)."""
    loaded: dict[str, Any] = yaml.load((CALICO / name).read_text(), Loader=yaml.CSafeLoader)
    return loaded


def schema(name: str) -> dict[str, Any]:
    (version,) = crd(name)["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


INSTALLATIONS = "operator.tigera.io_installations.yaml"
IPPOOLS = "crd.projectcalico.org_ippools.yaml"


def errors(obj: dict[str, Any], name: str) -> list[str]:
    return [error.message for error in jsonschema.Draft7Validator(schema(name)).iter_errors(obj)]


def check_against(obj: dict[str, Any], name: str) -> None:
    """What the API server would do with `obj`: refuse it (schema) or silently drop fields (pruning)."""
    definition = crd(name)
    (version,) = definition["spec"]["versions"]
    assert obj["apiVersion"] == f"{definition['spec']['group']}/{version['name']}"
    assert obj["kind"] == definition["spec"]["names"]["kind"]
    assert definition["spec"]["scope"] == "Cluster" and "namespace" not in obj["metadata"]
    assert errors(obj, name) == []
    assert unknown_fields(obj, schema(name)) == []


def cluster_of(entry: dict[str, Any]) -> OpenStackCluster:
    return OpenStackCluster.model_validate(entry)


# --- the Installation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("encapsulation", ["IPIP", "VXLAN", "None"])
@pytest.mark.parametrize("distro", ["rke2", "k3s"])
def test_the_installation_validates_against_the_crd(encapsulation: str, distro: str) -> None:
    """A field the CRD refuses fails at `pulumi up`; one it does not declare is dropped without a word."""
    version = "v1.36.3+rke2r1" if distro == "rke2" else "v1.36.3+k3s1"
    entry = {**kappa(encapsulation), "distro": {"name": distro, "version": version}}
    obj = installation(cluster_of(entry))
    check_against(obj, INSTALLATIONS)
    # The CRD's description: "At most one instance of this resource is supported. It must be named "default"."
    assert obj["metadata"]["name"] == "default"


def test_the_installation_checks_can_fail() -> None:
    """The checks above are only worth something if a wrong Installation fails them."""
    good = installation(cluster_of(kappa()))
    pool = good["spec"]["calicoNetwork"]["ipPools"][0]

    def with_pool(**changes: Any) -> dict[str, Any]:
        network = {**good["spec"]["calicoNetwork"], "ipPools": [{**pool, **changes}]}
        return {**good, "spec": {**good["spec"], "calicoNetwork": network}}

    assert errors(with_pool(encapsulation="Vxlan"), INSTALLATIONS)
    assert errors(with_pool(natOutgoing=True), INSTALLATIONS)
    assert errors({**good, "spec": {**good["spec"], "kubernetesProvider": "K3s"}}, INSTALLATIONS)
    assert unknown_fields(with_pool(natOutgoin="Enabled"), schema(INSTALLATIONS)) == [
        ".spec.calicoNetwork.ipPools[0].natOutgoin"
    ]


@pytest.mark.parametrize(
    ("entry", "cidr", "block"),
    [
        (kappa(), KAPPA_PODS, CALICO_DEFAULT_BLOCK),
        (lambda_(), LAMBDA_POOL, CALICO_DEFAULT_BLOCK),
        (calico("kappa", 5, "10.50.0.0/24", "10.50.0.10-10.50.0.17", "IPIP", blockSize=24), KAPPA_PODS, 24),
    ],
)
def test_the_pool_is_the_clusters_with_nat_to_the_outside(entry: dict[str, Any], cidr: str, block: int) -> None:
    """Calico allocates from this pool and masquerades what leaves it (Cilium's masquerading is off when chained)."""
    (pool,) = installation(cluster_of(entry))["spec"]["calicoNetwork"]["ipPools"]
    assert pool["cidr"] == cidr
    assert pool["blockSize"] == block
    assert pool["natOutgoing"] == "Enabled"
    assert pool["nodeSelector"] == "all()"


@pytest.mark.parametrize("encapsulation", ["IPIP", "VXLAN", "None"])
def test_bgp_and_encapsulation_are_what_the_operator_accepts(encapsulation: str) -> None:
    """IP-in-IP or no encapsulation without BGP is refused by the operator; VXLAN needs no BGP daemon."""
    network = installation(cluster_of(kappa(encapsulation)))["spec"]["calicoNetwork"]
    assert network["ipPools"][0]["encapsulation"] == encapsulation
    assert network["bgp"] == OPERATOR_BGP[encapsulation]


def test_calico_runs_the_cni_and_ipam_cilium_chains_on() -> None:
    """Cilium's chained conflist calls the calico plugin with calico-ipam: the Installation must install both, on
    iptables (Calico's eBPF dataplane would attach to the veths Cilium's generic-veth mode attaches to)."""
    spec = installation(cluster_of(kappa()))["spec"]
    assert spec["cni"] == {"type": "Calico", "ipam": {"type": "Calico"}}
    assert spec["calicoNetwork"]["linuxDataplane"] == "Iptables"
    first = calico_chaining_conflist()["plugins"][0]
    assert (first["type"], first["ipam"]["type"]) == ("calico", "calico-ipam")


def test_node_addresses_are_detected_in_the_clusters_subnet() -> None:
    """Calico's default detection skips cali*, tunl*, vxlan.calico* but not Cilium's cilium_host: the subnet decides."""
    network = installation(cluster_of(kappa()))["spec"]["calicoNetwork"]
    assert network["nodeAddressAutodetectionV4"] == {"cidrs": ["10.50.0.0/24"]}


def test_rke2_is_named_as_the_provider_and_k3s_left_to_detection() -> None:
    """The CRD knows RKE2 and no k3s; a provider that disagreed with the operator's detection would be an error."""
    provider_enum = schema(INSTALLATIONS)["properties"]["spec"]["properties"]["kubernetesProvider"]["enum"]
    rke2 = installation(cluster_of(kappa()))["spec"]
    assert rke2["kubernetesProvider"] == "RKE2" and "RKE2" in provider_enum
    k3s = installation(cluster_of({**kappa(), "distro": {"name": "k3s", "version": "v1.36.3+k3s1"}}))["spec"]
    assert "kubernetesProvider" not in k3s


def test_a_pool_the_operator_would_refuse_is_refused_here() -> None:
    """The operator refuses a pool smaller than one block, and IP-in-IP on IPv6, after `pulumi up` has finished."""
    small = calico("kappa", 5, "10.50.0.0/24", "10.50.0.10-10.50.0.17", "VXLAN", ipPool="10.105.0.0/27")
    with pytest.raises(ValueError, match="smaller than one block"):
        installation(cluster_of(small))
    ipv6 = calico("kappa", 5, "10.50.0.0/24", "10.50.0.10-10.50.0.17", "VXLAN", ipPool="fd00:105::/64")
    with pytest.raises(ValueError, match="not valid for IPv6"):
        installation(cluster_of(ipv6))


def test_calico_objects_need_a_calico_cluster() -> None:
    """Rendering Calico for a cluster that runs Cilium alone is a caller's mistake."""
    cilium_only = cluster_of(alpha())
    with pytest.raises(ValueError, match="does not run Calico"):
        installation(cilium_only)
    with pytest.raises(ValueError, match="does not run Calico"):
        operator_values(cilium_only)
    with pytest.raises(ValueError, match="does not run Calico"):
        peer_pool(cilium_only, "beta", ip_network("10.102.0.0/16"))


# --- peer pools -------------------------------------------------------------------------------------------------


def test_a_peer_pool_validates_against_the_ippool_crd() -> None:
    obj = peer_pool(cluster_of(kappa()), "lambda", ip_network(LAMBDA_POOL))
    check_against(obj, IPPOOLS)
    assert obj["metadata"]["name"] == "clustermesh-lambda"


def test_the_ippool_checks_can_fail() -> None:
    good = peer_pool(cluster_of(kappa()), "lambda", ip_network(LAMBDA_POOL))
    assert errors({**good, "spec": {**good["spec"], "disabled": "yes"}}, IPPOOLS)
    assert errors({**good, "spec": {**good["spec"], "ipipMode": "Sometimes"}}, IPPOOLS)
    assert errors({**good, "spec": {k: v for k, v in good["spec"].items() if k != "cidr"}}, IPPOOLS)
    assert unknown_fields({**good, "spec": {**good["spec"], "natOutgoin": False}}, schema(IPPOOLS)) == [
        ".spec.natOutgoin"
    ]


def test_a_peer_pool_is_calicos_documented_no_nat_pool() -> None:
    """Calico's "Configure outgoing NAT": a pool with `disabled: true` over a range is never allocated from, and
    traffic to it is not masqueraded; no encapsulation, as the peer's pods are reached natively."""
    spec = peer_pool(cluster_of(kappa()), "lambda", ip_network(LAMBDA_POOL))["spec"]
    assert spec["cidr"] == LAMBDA_POOL
    assert spec["disabled"] is True
    assert spec["natOutgoing"] is False
    assert (spec["ipipMode"], spec["vxlanMode"]) == ("Never", "Never")
    # A LoadBalancer-only pool would be left out of Felix's set of pool addresses, so masqueraded to after all.
    assert "LoadBalancer" not in spec.get("allowedUses", [])


def test_a_peer_pool_never_covers_the_clusters_own_pool_or_everything() -> None:
    kappa_cluster = cluster_of(kappa())
    with pytest.raises(ValueError, match="overlap"):
        peer_pool(kappa_cluster, "lambda", ip_network("10.105.64.0/18"))
    with pytest.raises(ValueError, match="every address"):
        peer_pool(kappa_cluster, "lambda", ip_network("0.0.0.0/0"))


def test_peer_pools_are_the_pod_ranges_the_firewall_admits() -> None:
    """What Calico keeps out of NAT and what the security group admits on every port are the same ranges."""
    mesh = calico_mesh()
    kappa_cluster = openstack_clusters(mesh)[0]
    pools = {p["metadata"]["name"]: p["spec"]["cidr"] for p in peer_pools(mesh, kappa_cluster)}
    assert pools == {"clustermesh-lambda": LAMBDA_POOL, "clustermesh-mu": MU_PODS, "clustermesh-nu": NU_PODS_V4}
    for peer in mesh.clusters[1:]:
        admitted = {r.remote for r in peer_rules(mesh, kappa_cluster, peer) if r.protocol == ANY}
        assert admitted == {pools[f"clustermesh-{peer.name}"]}


def test_adding_a_peer_adds_a_pool_and_changes_none() -> None:
    before = mesh_of(kappa(), nu_existing())
    after = mesh_of(kappa(), nu_existing(), mu())
    old = peer_pools(before, openstack_clusters(before)[0])
    new = peer_pools(after, openstack_clusters(after)[0])
    assert [p for p in new if p not in old] == [peer_pool(cluster_of(kappa()), "mu", ip_network(MU_PODS))]
    assert all(p in new for p in old)


# --- the operator's chart -------------------------------------------------------------------------------------


def default_at(path: str) -> Any:
    node: Any = CHART_DEFAULTS
    for part in path.split("."):
        node = node[part]
    return node


@cache
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART_DIR)


def rendered(values: dict[str, Any]) -> list[dict[str, Any]]:
    manifests = chart().render(values, name=RELEASE_NAME, namespace=OPERATOR_NAMESPACE)
    return [obj for text in manifests.values() for obj in yaml.safe_load_all(text) if obj]


def kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {obj["kind"] for obj in objects}


def kpr(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "kubeProxyReplacement": True}


@pytest.mark.parametrize(
    "entry", [kappa(), kpr(kappa()), kpr({**mu(), "distro": {"name": "k3s", "version": "v1.36.3+k3s1"}})]
)
def test_operator_values_only_set_keys_the_chart_has(entry: dict[str, Any]) -> None:
    """A misspelt key (`apiserver`) would change nothing: the chart has no values schema to refuse it."""
    for path in paths(operator_values(cluster_of(entry))):
        default_at(path)  # a KeyError names the key the chart does not have


def test_the_chart_installs_the_operator_and_none_of_its_custom_resources() -> None:
    """By default the chart creates an Installation (and an API server, Goldmane, Whisker) the program also owns."""
    assert chart().name == CHART
    defaults = kinds(rendered({}))
    assert {"Installation", "APIServer", "Goldmane", "Whisker"} <= defaults
    ours = rendered(operator_values(cluster_of(kappa())))
    assert kinds(ours).isdisjoint({"Installation", "APIServer", "Goldmane", "Whisker"})
    assert "Deployment" in kinds(ours)


def test_the_operator_manages_the_crds() -> None:
    """From v3.32 the chart carries no CRD: the operator must create them (`-manage-crds`)."""
    assert chart().crds == []
    (deployment,) = [o for o in rendered(operator_values(cluster_of(kappa()))) if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "-manage-crds=true" in container["args"]


@pytest.mark.parametrize(
    ("entry", "host"),
    [
        # Not RKE2's localhost proxy: calico-kube-controllers runs on the pod network, where localhost is the pod's
        # own (kappa's first server is 10.50.0.10).
        (kpr(kappa()), "10.50.0.10"),
        # k3s agents have no proxy on 6443: the first server (mu's range starts at 10.70.0.8).
        (kpr({**mu(), "distro": {"name": "k3s", "version": "v1.36.3+k3s1"}}), "10.70.0.8"),
    ],
)
def test_without_kube_proxy_calico_dials_the_api_server_itself(entry: dict[str, Any], host: str) -> None:
    """No kube-proxy: the `kubernetes` Service's address answers only once Cilium runs, which Calico must not wait for."""
    (config_map,) = [o for o in rendered(operator_values(cluster_of(entry))) if o["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == "kubernetes-services-endpoint"
    assert config_map["data"] == {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": "6443"}


def test_with_kube_proxy_calico_uses_the_kubernetes_service() -> None:
    """kube-proxy serves the Service on every node; a fixed server would be a single point of failure."""
    assert "ConfigMap" not in kinds(rendered(operator_values(cluster_of(kappa()))))


def test_a_lone_calico_cluster_has_no_peer_pool() -> None:
    mesh = mesh_of(kappa())
    assert peer_pools(mesh, openstack_clusters(mesh)[0]) == []
