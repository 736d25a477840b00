"""The typed stack config: every rule has a case it accepts and a case it refuses, named by path."""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from clustermesh.config import ConfigError, load_stack_config, redact, secret_texts
from clustermesh.model import CniMode, RoutingMode, shown
from clustermesh.planner.stackfile import StackFileError, load_stack, project_defaults
from clustermesh.validation import Problem, kubeconfig_problems
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


def test_every_committed_stack_file_parses_and_disables_every_default_provider() -> None:
    stack_files = sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))
    assert stack_files, "no stack file committed"
    for path in stack_files:
        stack = load_stack(PROJECT_DIR, config_file=path)
        load_stack_config(stack.config, stack.secret_keys)
        document = yaml.safe_load(path.read_text())
        assert document["config"]["pulumi:disable-default-providers"] == ["*"], path.name


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


def test_ipv6_pod_cidr_overlap_across_clusters_is_reported() -> None:
    """The sweep compares IPv6 ranges too (a mutation that skipped them survived before)."""
    clusters = [
        cluster("a", 1, "10.1.0.0/16", podCidrs=["10.1.0.0/16", "fd00:1::/104"]),
        cluster("b", 2, "10.2.0.0/16", podCidrs=["10.2.0.0/16", "fd00:2::/104"]),
        cluster("c", 3, "10.3.0.0/16", podCidrs=["10.3.0.0/16", "fd00:1:0:0:0:0:ff:0/112"]),
    ]
    assert problems(raw_config(clusters)) == [
        "clusters[2].podCidrs[1]: fd00:1::ff:0/112 overlaps clusters[0].podCidrs[1] fd00:1::/104"
    ]


@pytest.mark.parametrize(
    ("pod_cidr", "refused"),
    [("fd00:1::/103", True), ("fd00:1::/104", False), ("fd00:1::/120", False), ("fd00:1::/64", True)],
)
def test_ipv6_pod_cidrs_within_16_bits_of_the_node_block(pod_cidr: str, refused: bool) -> None:
    """Cilium's operator (pkg/ipam/cidrset NewCIDRSet) refuses an IPv6 range more than 16 bits shorter than /120."""
    found = problems(raw_config([cluster("a", 1, "10.1.0.0/16", podCidrs=["10.1.0.0/16", pod_cidr])]))
    assert (
        any(p.startswith("clusters[0].podCidrs[1]: ") and "too large for cluster-pool" in p for p in found) is refused
    )
    chained = cluster("a", 1, "10.1.0.0/16", podCidrs=["10.1.0.0/16", pod_cidr], cni="calico")
    chained.update(nodeCidr="172.16.0.0/24", routing={"mode": "native"})
    assert problems(raw_config([chained], nativeRoutingCidrs=["10.0.0.0/8", "fd00::/16"])) == []


def test_ipv4_pod_cidrs_have_no_such_limit() -> None:
    """For IPv4 the operator's bitmap has no 16-bit limit: a /8 of /24 node blocks is fine, and so is a /7."""
    assert problems(raw_config([cluster("a", 1, "10.0.0.0/7", serviceCidr="192.168.0.0/16")])) == []


@st.composite
def routed_and_service_networks(draw: Any) -> tuple[list[IPv4Network], list[IPv4Network]]:
    def network() -> IPv4Network:
        prefix = draw(st.integers(min_value=8, max_value=28))
        address = draw(st.integers(min_value=0, max_value=2**32 - 1))
        return IPv4Network((address >> (32 - prefix) << (32 - prefix), prefix))

    count = draw(st.integers(min_value=1, max_value=6))
    return [network() for _ in range(count)], [network() for _ in range(count)]


@settings(max_examples=200, deadline=None)
@given(routed_and_service_networks())
def test_service_cidr_overlaps_are_reported_exactly_for_overlapping_pairs(
    nets: tuple[list[IPv4Network], list[IPv4Network]],
) -> None:
    """Each cluster's service CIDR against every cluster's node CIDR: the interval lookup agrees with all pairs."""
    nodes, services = nets
    clusters = [
        cluster(f"c{i}", i + 1, "10.0.0.0/24", nodeCidr=str(node), serviceCidr=str(service))
        for i, (node, service) in enumerate(zip(nodes, services, strict=True))
    ]
    expected = {
        f"clusters[{i}].serviceCidr: {service} overlaps clusters[{j}].nodeCidr {node}"
        for i, service in enumerate(services)
        for j, node in enumerate(nodes)
        if service.overlaps(node)
    }
    found = {p for p in problems(raw_config(clusters)) if ".serviceCidr: " in p and ".nodeCidr " in p}
    assert found == expected


def test_addresses_peers_dial_belong_to_one_cluster_and_to_no_pods() -> None:
    node_port = [
        cluster("a", 1, "10.1.0.0/16", apiserverExposure={"nodeAddresses": ["172.17.0.5", "172.17.0.5"]}),
        cluster("b", 2, "10.2.0.0/16", apiserverExposure={"nodeAddresses": ["172.17.0.6", "172.17.0.5"]}),
    ]
    assert problems(raw_config(node_port, apiserverExposure={"type": "NodePort"})) == [
        "clusters[0].apiserverExposure.nodeAddresses[1]: 172.17.0.5 is listed twice",
        "clusters[1].apiserverExposure.nodeAddresses[1]: 172.17.0.5 is already a node address of clusters[0]",
    ]
    pinned = [
        cluster("a", 1, "10.1.0.0/16", apiserverExposure={"loadBalancerIP": "10.2.255.255"}),
        cluster("b", 2, "10.2.0.0/16", apiserverExposure={"loadBalancerIP": "10.1.0.0"}),
        cluster("c", 3, "10.3.0.0/16", apiserverExposure={"loadBalancerIP": "10.4.0.0"}),
    ]
    assert problems(raw_config(pinned)) == [
        "clusters[0].apiserverExposure.loadBalancerIP: 10.2.255.255 is inside clusters[1].podCidrs[0] 10.2.0.0/16, a pod range",
        "clusters[1].apiserverExposure.loadBalancerIP: 10.1.0.0 is inside clusters[0].podCidrs[0] 10.1.0.0/16, a pod range",
    ]
    eks = cluster("a", 1, "10.1.0.0/16", cni="aws-cni", nodeCidr="10.1.0.0/16", routing={"mode": "native"})
    eks["apiserverExposure"] = {"loadBalancerIP": "10.1.2.3"}
    assert problems(raw_config([eks])) == [], "aws-cni: a load balancer shares the VPC subnets with pods"


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        # apimachinery's TestIsQualifiedName table, and annotations being checked lowercased
        ("simple", True),
        ("now-with-dashes", True),
        ("1-starts-with-num", True),
        ("1234", True),
        ("simple/simple", True),
        ("now-with-dashes/simple", True),
        ("now-with-dashes/now-with-dashes", True),
        ("now.with.dots/now-with-dashes", True),
        ("now-with.dashes-and.dots/now_with_underscores", True),
        ("1.2.3.4/5678", True),
        ("Uppercase_Is_OK_123", True),
        ("example.com/Uppercase_Is_OK_123", True),
        ("Example.COM/x", True),
        ("a" * 63, True),
        ("a" * 253 + "/a", False),
        ("nospecialchars%^=@", False),
        ("cantendwithadash-", False),
        ("-cantstartwithadash-", False),
        ("only/one/slash", False),
        ("Example.com/", False),
        ("/simple", False),
        ("a" * 64, False),
        ("bad key!", False),
    ],
)
def test_annotation_keys_follow_kubernetes(key: str, valid: bool) -> None:
    found = problems(raw_config([cluster("a", 1, "10.1.0.0/16")], apiserverExposure={"annotations": {key: "v"}}))
    assert (found == []) is valid, found
    if not valid:
        assert found[0].startswith(f"apiserverExposure.annotations: {key!r} is not an annotation key: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", ["not valid YAML or JSON"]),
        ("- a list", ["not a YAML or JSON mapping (kind: Config, with clusters, contexts and users)"]),
        (KUBECONFIG.replace("kind: Config", "kind: Pod"), ["kind is not Config"]),
        (KUBECONFIG.replace("apiVersion: v1", "apiVersion: v2"), ["apiVersion is not v1"]),
        (
            KUBECONFIG.replace('server: "https://a.example:6443"', "insecure: true"),
            ["clusters[0].cluster has no server"],
        ),
        (KUBECONFIG.replace("user: a-admin", "user: b-admin"), ["contexts[0].context.user names no entry of users"]),
        (
            KUBECONFIG.replace("cluster: a, user", "cluster: b, user"),
            ["contexts[0].context.cluster names no entry of clusters"],
        ),
        (
            KUBECONFIG.replace("current-context: a", "current-context: b"),
            ["current-context names no entry of contexts"],
        ),
        (KUBECONFIG.replace("current-context: a", ""), ["current-context is not set"]),
        (
            KUBECONFIG.replace("- {name: a-admin, user: {token: t}}", "- {user: {token: t}}"),
            ["users[0] has no name", "contexts[0].context.user names no entry of users"],
        ),
        (json.dumps(yaml.safe_load(KUBECONFIG)), []),
    ],
)
def test_a_secret_kubeconfig_is_checked_as_client_go_would_load_it(text: str, expected: list[str]) -> None:
    assert kubeconfig_problems(text) == expected


def test_secret_redaction_keeps_paths_and_the_configs_own_words() -> None:
    """A secret may be `1` or `native`: path indexes and key names stay readable, only values are redacted."""
    texts = secret_texts(
        {"clustermesh:x": json.dumps({"id": 1, "mode": "native", "host": "db.internal"})}, frozenset({"clustermesh:x"})
    )
    assert texts >= {"1", "db.internal"} and "native" not in texts and "mode" not in texts
    found = redact([Problem("clusters[1].id", "1 is out of range; see db.internal, [1, 2], x1")], texts)
    assert found == [Problem("clusters[1].id", "[secret] is out of range; see [secret], [[secret], 2], x1")]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("7", 7), (7, 7), ("-3", -3), (True, None), ("true", None), (7.0, None), ("7.5", None), ([7], None), (None, 0)],
)
def test_whole_numbers_are_integers_as_written_never_booleans(value: object, parsed: int | None) -> None:
    entry = cluster("a", 1, "10.1.0.0/16", k8sServiceHost="auto", k8sServicePort=value)
    found = problems(raw_config([entry]))
    if value is None or (parsed is not None and parsed > 0):  # null: the optional port left out
        assert found == []
    elif parsed is None:
        assert found == [f"clusters[0].k8sServicePort: must be a whole number (got {shown(value)})"]
    else:
        assert found == [f"clusters[0].k8sServicePort: must be at least 1 (got {shown(value)})"]


def _stack_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(text)
    return load_stack(PROJECT_DIR, config_file=path).config


def test_stack_file_scalars_keep_their_text_as_the_engine_does(tmp_path: Path) -> None:
    """Pulumi reads a config scalar as a string: `1.20` is the text 1.20, `0x1F` stays 0x1F, yes stays yes."""
    config = _stack_file(
        tmp_path,
        "config:\n  clustermesh:ciliumVersion: 1.20\n  clustermesh:domain: 0x1F\n  clustermesh:kvstoremesh: yes\n"
        "  clustermesh:maxConnectedClusters: 511\n  clustermesh:certificates: {when: 2024-01-02, n: 1.50}\n",
    )
    assert config["clustermesh:ciliumVersion"] == "1.20"
    assert config["clustermesh:domain"] == "0x1F"
    assert config["clustermesh:kvstoremesh"] == "yes"
    assert config["clustermesh:maxConnectedClusters"] == "511"
    assert json.loads(config["clustermesh:certificates"]) == {"when": "2024-01-02", "n": 1.5}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("config:\n  1: x\n", "config: key 1 is not a string; quote it"),
        ("config:\n  clustermesh:domain: ~\n", "clustermesh:domain: null is not a value"),
        ("config:\n  clustermesh:domain: a\n  clustermesh:domain: b\n", "clustermesh:domain: given twice"),
        ("config:\n  clustermesh:clusters: [{name: a, name: b}]\n", "clustermesh:clusters[0].name: given twice"),
        ("config:\n  clustermesh:certificates: {[1]: x}\n", "not valid YAML"),
    ],
)
def test_stack_file_keys_the_engine_refuses(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(StackFileError) as failure:
        _stack_file(tmp_path, text)
    assert any(expected in p for p in failure.value.problems), failure.value.problems


def test_stack_file_that_cannot_be_read_names_itself(tmp_path: Path) -> None:
    binary = tmp_path / "Pulumi.bin.yaml"
    binary.write_bytes(b"config:\n  clustermesh:domain: \xff\xfe\n")
    for path, expected in [
        (binary, "not UTF-8 text (byte 0xff at offset 30)"),
        (tmp_path, "is a directory, not a stack file"),
    ]:
        with pytest.raises(StackFileError) as failure:
            load_stack(PROJECT_DIR, config_file=path)
        assert failure.value.problems == [f"{path}: {expected}"]


@pytest.mark.parametrize(
    "key",
    [
        "domain",
        "kvstoremesh",
        "maxConnectedClusters",
        "ciliumVersion",
        "certificates",
        "apiserverExposure",
        "nativeRoutingCidrs",
    ],
)
def test_an_empty_value_as_the_engine_passes_a_yaml_null_is_refused_at_its_key(key: str) -> None:
    """`pulumi up` hands a stack file's `null` to the program as empty text: no key may take it as a value."""
    raw = raw_config(three_clusters())
    raw[f"clustermesh:{key}"] = ""
    with pytest.raises(ConfigError) as error:
        load_stack_config(raw)
    assert [p.path for p in error.value.problems] == [key]
