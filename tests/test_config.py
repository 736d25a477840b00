"""The typed stack config: every rule has a case it accepts and a case it refuses, named by path."""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from clustermesh.config import ConfigError, load_stack_config
from clustermesh.model import CniMode, RoutingMode
from clustermesh.planner.stackfile import load_stack, project_defaults
from tests.conftest import PROJECT_DIR, cluster, raw_config, three_clusters

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://a.example:6443"}}
users:
- {name: a-admin, user: {token: t}}
contexts:
- {name: a, context: {cluster: a, user: a-admin}}
current-context: a
"""


def problems(raw: dict[str, str], secret_keys: frozenset[str] = frozenset()) -> list[str]:
    try:
        load_stack_config(raw, secret_keys)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_valid_three_cluster_mesh_parses_into_typed_models() -> None:
    """The happy path yields typed values, not strings, so renderers never parse again."""
    mesh = load_stack_config(raw_config(three_clusters(), maxConnectedClusters="511", kvstoremesh="false"))
    assert mesh.max_connected_clusters == 511
    assert mesh.kvstoremesh is False
    assert [c.name for c in mesh.clusters] == ["alpha", "beta", "gamma"]
    assert mesh.clusters[0].pod_cidrs == (IPv4Network("10.11.0.0/16"),)
    assert mesh.clusters[0].cni is CniMode.CILIUM
    assert mesh.clusters[0].routing.mode is RoutingMode.TUNNEL
    assert mesh.cilium_version == "1.20.0"
    assert mesh.domain == "mesh.cilium.io"


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        # Cilium's TestClusterNameValidate table (pkg/clustermesh/types/types_test.go)
        ("a", True),
        ("abcdefghijklmnopqrstuvwxyz-01234", True),
        ("abcdefghijklmnopqrstuvwxyz-012345", False),
        ("az", True),
        ("09", True),
        ("-a", False),
        ("0-", False),
        ("aBYz", False),
        ("a^x", False),
        ("", False),
        ("default", False),
        ("a\n", False),
    ],
)
def test_cluster_name_rules_match_cilium(name: str, valid: bool) -> None:
    """A name Cilium's agent would refuse must be refused here, and one it accepts must pass."""
    found = problems(raw_config([cluster(name, 1, "10.1.0.0/16")]))
    assert (found == []) is valid, found
    if not valid:
        assert found[0].startswith("clusters[0].name: ")


def test_duplicate_names_and_ids_are_reported_on_the_later_cluster() -> None:
    clusters = [cluster("a", 1, "10.1.0.0/16"), cluster("b", 2, "10.2.0.0/16"), cluster("a", 2, "10.3.0.0/16")]
    assert problems(raw_config(clusters)) == [
        "clusters[2].id: 2 is already used by clusters[1]",
        "clusters[2].name: 'a' is already used by clusters[0]",
    ]


@pytest.mark.parametrize(
    ("max_connected", "cluster_id", "message"),
    [
        (255, 255, None),
        (255, 256, "clusters[0].id: 256 is out of range 1..255 (maxConnectedClusters)"),
        (511, 511, None),
        (511, 512, "clusters[0].id: 512 is out of range 1..511 (maxConnectedClusters)"),
        (255, 0, "clusters[0].id: 0 is reserved; cluster IDs start at 1"),
        (255, -3, "clusters[0].id: -3 is reserved; cluster IDs start at 1"),
    ],
)
def test_cluster_id_range_follows_max_connected_clusters(
    max_connected: int, cluster_id: int, message: str | None
) -> None:
    found = problems(raw_config([cluster("a", cluster_id, "10.1.0.0/16")], maxConnectedClusters=str(max_connected)))
    assert found == ([message] if message else [])


def test_max_connected_clusters_accepts_only_what_cilium_accepts() -> None:
    assert problems(raw_config([cluster("a", 1, "10.1.0.0/16")], maxConnectedClusters="512")) == [
        "maxConnectedClusters: 512 is not supported; Cilium accepts 255 or 511"
    ]


@pytest.mark.parametrize(
    ("cluster_id", "refused"),
    [(127, False), (128, True), (255, True), (256, False), (383, False), (384, True), (511, True)],
)
def test_aws_cni_chaining_refuses_ids_with_bit_7_set(cluster_id: int, refused: bool) -> None:
    """Cilium's TestClusterInfoValidateBuggyClusterID rows for aws-cni (cilium#21330)."""
    entry = cluster("a", cluster_id, "10.1.0.0/16", cni="aws-cni", nodeCidr="172.16.0.0/16", routing={"mode": "native"})
    found = problems(raw_config([entry], maxConnectedClusters="511"))
    assert any("cannot be used with aws-cni chaining" in p and p.startswith("clusters[0].id") for p in found) is refused
    other = cluster("a", cluster_id, "10.1.0.0/16")
    assert problems(raw_config([other], maxConnectedClusters="511")) == []


def test_pod_cidr_overlap_names_both_paths() -> None:
    clusters = [cluster("a", 1, "10.11.0.0/17"), cluster("b", 2, "10.12.0.0/16"), cluster("c", 3, "10.11.0.0/16")]
    assert problems(raw_config(clusters)) == [
        "clusters[2].podCidrs[0]: 10.11.0.0/16 overlaps clusters[0].podCidrs[0] 10.11.0.0/17"
    ]


def test_node_cidr_overlap_across_clusters_and_with_pods() -> None:
    clusters = [
        cluster("a", 1, "10.11.0.0/16", nodeCidr="172.17.0.0/24"),
        cluster("b", 2, "10.12.0.0/16", nodeCidr="172.17.0.128/25"),
        cluster("c", 3, "10.13.0.0/16", nodeCidr="10.11.5.0/24"),
    ]
    assert problems(raw_config(clusters)) == [
        "clusters[1].nodeCidr: 172.17.0.128/25 overlaps clusters[0].nodeCidr 172.17.0.0/24",
        "clusters[2].nodeCidr: 10.11.5.0/24 overlaps clusters[0].podCidrs[0] 10.11.0.0/16",
    ]


def test_service_cidrs_may_repeat_across_clusters_but_not_overlap_own_pods() -> None:
    """Every k3s cluster uses 10.43.0.0/16 for services, which a mesh allows; its own pods may not sit inside."""
    same_services = [
        cluster("a", 1, "10.1.0.0/16", serviceCidr="10.43.0.0/16"),
        cluster("b", 2, "10.2.0.0/16", serviceCidr="10.43.0.0/16"),
    ]
    assert problems(raw_config(same_services)) == []
    inside = [cluster("a", 1, "10.43.0.0/17", serviceCidr="10.43.0.0/16")]
    assert problems(raw_config(inside)) == [
        "clusters[0].serviceCidr: 10.43.0.0/16 overlaps clusters[0].podCidrs[0] 10.43.0.0/17"
    ]


@st.composite
def pod_networks(draw: Any) -> list[IPv4Network]:
    count = draw(st.integers(min_value=2, max_value=8))
    nets = []
    for _ in range(count):
        prefix = draw(st.integers(min_value=8, max_value=24))
        address = draw(st.integers(min_value=0, max_value=2**32 - 1))
        nets.append(IPv4Network((address >> (32 - prefix) << (32 - prefix), prefix)))
    return nets


@settings(max_examples=200, deadline=None)
@given(pod_networks())
def test_overlap_is_reported_exactly_for_overlapping_pairs(nets: list[IPv4Network]) -> None:
    """The sweep must agree with the pairwise definition: one problem per overlapping pair, none otherwise."""
    clusters = [cluster(f"c{i}", i + 1, str(net)) for i, net in enumerate(nets)]
    expected = {
        f"clusters[{j}].podCidrs[0]: {nets[j]} overlaps clusters[{i}].podCidrs[0] {nets[i]}"
        for i in range(len(nets))
        for j in range(i + 1, len(nets))
        if nets[i].overlaps(nets[j])
    }
    found = {p for p in problems(raw_config(clusters)) if p.split(": ")[0].endswith(".podCidrs[0]") and "overlaps" in p}
    assert found == expected


def test_native_routing_needs_node_cidr_and_a_covering_routing_range() -> None:
    native = cluster("a", 1, "10.1.0.0/16", routing={"mode": "native"})
    assert problems(raw_config([native])) == [
        "clusters[0].nodeCidr: required with native routing",
        "nativeRoutingCidrs: needs an IPv4 range covering every cluster's pod CIDRs (clusters[0] uses native routing)",
    ]
    fixed = {**native, "nodeCidr": "192.168.0.0/24"}
    assert problems(raw_config([fixed], nativeRoutingCidrs=["10.0.0.0/8"])) == []
    assert problems(raw_config([fixed], nativeRoutingCidrs=["10.2.0.0/16"])) == [
        "clusters[0].podCidrs[0]: 10.1.0.0/16 is outside nativeRoutingCidrs 10.2.0.0/16"
    ]


def test_chaining_requires_native_routing() -> None:
    entry = cluster("a", 1, "10.1.0.0/16", cni="calico")
    assert problems(raw_config([entry])) == [
        "clusters[0].routing.mode: calico chaining needs native routing (the chained CNI routes pods)"
    ]


def test_all_clusters_share_one_datapath_mode() -> None:
    clusters = [
        cluster("a", 1, "10.1.0.0/16"),
        cluster("b", 2, "10.2.0.0/16", routing={"mode": "tunnel", "tunnelProtocol": "geneve"}),
    ]
    assert problems(raw_config(clusters)) == [
        "clusters[1].routing: tunnel/geneve differs from clusters[0] (tunnel/vxlan); every cluster of a mesh needs the same datapath mode"
    ]


def test_unknown_keys_are_errors_with_a_suggestion() -> None:
    """A typo must fail loudly: a silently ignored key is a setting that never took effect."""
    clusters = [{**cluster("a", 1, "10.1.0.0/16"), "podCidr": ["10.9.0.0/16"]}]
    raw = {**raw_config(clusters), "clustermesh:maxConectedClusters": "511", "aws:region": "eu-west-1"}
    assert problems(raw) == [
        "clusters[0].podCidr: unknown key (did you mean podCidrs?)",
        "maxConectedClusters: unknown configuration key (did you mean maxConnectedClusters?)",
    ]


def test_missing_required_fields_are_named() -> None:
    entry = cluster("a", 1, "10.1.0.0/16")
    del entry["kubeconfig"], entry["serviceCidr"]
    assert problems(raw_config([entry])) == ["clusters[0].kubeconfig: required", "clusters[0].serviceCidr: required"]
    assert problems({}) == ["clusters: required: the list of clusters in the mesh"]


def test_kubeconfig_secret_must_be_set_and_secret() -> None:
    entry = cluster("a", 1, "10.1.0.0/16", kubeconfig={"secret": "aKubeconfig"})
    assert problems(raw_config([entry])) == [
        "clusters[0].kubeconfig.secret: config key clustermesh:aKubeconfig is not set (pulumi config set --secret ...)"
    ]
    raw = {**raw_config([entry]), "clustermesh:aKubeconfig": "apiVersion: v1"}
    assert problems(raw) == [
        "clusters[0].kubeconfig.secret: config key clustermesh:aKubeconfig is stored in plain text; set it with --secret"
    ]
    assert problems(raw, frozenset({"clustermesh:aKubeconfig"})) == [
        "clusters[0].kubeconfig.secret: config key clustermesh:aKubeconfig is not a usable kubeconfig: "
        "clusters must list at least one cluster; users must list at least one user; "
        "contexts must list at least one context; current-context is not set"
    ]
    usable = {**raw, "clustermesh:aKubeconfig": KUBECONFIG}
    assert problems(usable, frozenset({"clustermesh:aKubeconfig"})) == []
    undecrypted = {**raw, "clustermesh:aKubeconfig": "planner-cannot-decrypt:clustermesh:aKubeconfig"}
    assert problems(undecrypted, frozenset({"clustermesh:aKubeconfig"})) == []
    both = cluster("a", 1, "10.1.0.0/16", kubeconfig={"secret": "k", "path": "/x"})
    assert problems(raw_config([both])) == [
        "clusters[0].kubeconfig: give either path (and optionally context) or secret"
    ]


def test_exposure_rules() -> None:
    pinned = [
        cluster("a", 1, "10.1.0.0/16", apiserverExposure={"loadBalancerIP": "192.0.2.10"}),
        cluster("b", 2, "10.2.0.0/16", apiserverExposure={"loadBalancerIP": "192.0.2.10"}),
    ]
    assert problems(raw_config(pinned)) == [
        "clusters[1].apiserverExposure.loadBalancerIP: 192.0.2.10 is already pinned by clusters[0]"
    ]
    node_port = [cluster("a", 1, "10.1.0.0/16")]
    assert problems(raw_config(node_port, apiserverExposure={"type": "NodePort"})) == [
        "clusters[0].apiserverExposure.nodeAddresses: required when apiserverExposure.type is NodePort"
    ]
    node_port[0]["apiserverExposure"] = {"nodeAddresses": ["172.17.0.5"]}
    assert problems(raw_config(node_port, apiserverExposure={"type": "NodePort"})) == []


def test_hostname_rules() -> None:
    """A hostname lands in the cluster's server certificate, so it must be a name and belong to that cluster."""
    clusters = [
        cluster("a", 1, "10.1.0.0/16", apiserverExposure={"hostname": "a.apiserver.example.net"}),
        cluster("b", 2, "10.2.0.0/16", apiserverExposure={"hostname": "a.apiserver.example.net"}),
        cluster("c", 3, "10.3.0.0/16", apiserverExposure={"hostname": "a.mesh.cilium.io"}),
        cluster("d", 4, "10.4.0.0/16", apiserverExposure={"hostname": "Not_A_Name.example"}),
        cluster("e", 5, "10.5.0.0/16", apiserverExposure={"route53ZoneId": "Z0123456789"}),
        cluster("f", 6, "10.6.0.0/16", apiserverExposure={"hostname": "f.mesh.cilium.io", "route53ZoneId": "Z1"}),
    ]
    assert problems(raw_config(clusters)) == [
        "clusters[1].apiserverExposure.hostname: a.apiserver.example.net is already the hostname of clusters[0]",
        "clusters[2].apiserverExposure.hostname: a.mesh.cilium.io is the mesh name of clusters[0]",
        "clusters[3].apiserverExposure.hostname: 'Not_A_Name.example' is not a lowercase DNS name",
        "clusters[4].apiserverExposure.route53ZoneId: needs apiserverExposure.hostname, the name to point",
    ]


def test_values_of_the_wrong_type_are_reported_with_the_value() -> None:
    entry = cluster("a", 1, "10.1.0.1/16", serviceCidr="not-a-cidr")
    found = problems(raw_config([entry], ciliumVersion="1.20"))
    assert found == [
        "ciliumVersion: '1.20' is not a pinned chart version like 1.20.0",
        "clusters[0].podCidrs[0]: '10.1.0.1/16' is not a CIDR such as 10.1.0.0/16: 10.1.0.1/16 has host bits set",
        "clusters[0].serviceCidr: 'not-a-cidr' is not a CIDR such as 10.1.0.0/16: "
        "'not-a-cidr' does not appear to be an IPv4 or IPv6 network",
    ]


def test_every_problem_is_reported_at_once() -> None:
    """One run must list every mistake, across clusters and kinds of rule, not stop at the first."""
    clusters = [
        cluster("ok", 1, "10.1.0.0/16"),
        cluster("Bad", 1, "10.1.0.0/16", extra=1),
        cluster("ok", 300, "10.1.0.0/24"),
    ]
    found = problems(raw_config(clusters))
    assert found == [
        "clusters[1].extra: unknown key",
        "clusters[1].name: 'Bad' must consist of lower case alphanumeric characters and '-', and start and end with an alphanumeric character",
        "clusters[2].id: 300 is out of range 1..255 (maxConnectedClusters)",
        "clusters[2].name: 'ok' is already used by clusters[0]",
        "clusters[2].podCidrs[0]: 10.1.0.0/24 overlaps clusters[0].podCidrs[0] 10.1.0.0/16",
    ]


def test_every_committed_stack_file_parses_and_disables_default_kubernetes_providers() -> None:
    stack_files = sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))
    assert stack_files, "no stack file committed"
    for path in stack_files:
        stack = load_stack(PROJECT_DIR, config_file=path)
        load_stack_config(stack.config, stack.secret_keys)
        document = yaml.safe_load(path.read_text())
        assert "kubernetes" in document["config"]["pulumi:disable-default-providers"], path.name


def test_project_file_defaults_agree_with_the_model() -> None:
    """Pulumi.yaml declares defaults the CLI injects; they must be the model's own, or `up` and plan differ."""
    defaults = project_defaults(yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text()))
    mesh = load_stack_config(raw_config([cluster("a", 1, "10.1.0.0/16")]))
    model = json.loads(mesh.model_dump_json(by_alias=True))
    for key, value in defaults.items():
        assert model[key.removeprefix("clustermesh:")] == value, key


def test_aws_cni_pods_may_share_the_node_network_of_their_own_cluster_only() -> None:
    """With the AWS VPC CNI, pods get VPC addresses: pod CIDR and node CIDR are the same VPC range."""
    native = {"mode": "native"}
    eks = cluster("a", 1, "10.1.0.0/16", cni="aws-cni", nodeCidr="10.1.0.0/16", routing=native)
    assert problems(raw_config([eks])) == []
    other = cluster("b", 2, "10.2.0.0/16", nodeCidr="10.1.128.0/24", routing=native)
    assert problems(raw_config([eks, other], nativeRoutingCidrs=["10.0.0.0/8"])) == [
        "clusters[1].nodeCidr: 10.1.128.0/24 overlaps clusters[0].nodeCidr 10.1.0.0/16",
        "clusters[1].nodeCidr: 10.1.128.0/24 overlaps clusters[0].podCidrs[0] 10.1.0.0/16",
    ]
    calico = cluster("c", 1, "10.1.0.0/16", cni="calico", nodeCidr="10.1.0.0/16", routing=native)
    assert problems(raw_config([calico])) == [
        "clusters[0].nodeCidr: 10.1.0.0/16 overlaps clusters[0].podCidrs[0] 10.1.0.0/16"
    ]
