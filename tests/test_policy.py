"""The policy pack: every rule called directly on a compliant and a violating stack, unknowns in preview,
and the planner enforcing the pack (exit 3 naming the rule; no violation on any committed stack).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime import rpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import unknown_checking_proxy

from clustermesh.planner.graph import UNKNOWN, UNKNOWN_PLACEHOLDER, Secret, reveal
from clustermesh.planner.policy_check import PolicyConfigError, check, load_levels
from clustermesh.planner.runner import CapturedPlan, run_program
from clustermesh.planner.stackfile import StackSettings
from clustermesh.render.mesh_tls import remote_users
from policy.rules import POLICIES
from tests.conftest import COMPLIANT_EXPOSURE, PROJECT_DIR, cluster, raw_config, three_clusters, write_stack_file

RULES = {p.name: p for p in POLICIES}
EC_KEY = "-----BEGIN EC PRIVATE KEY-----\nMHc...\n-----END EC PRIVATE KEY-----\n"
OPTS = PolicyResourceOptions(False, [], False, [], PolicyCustomTimeouts(0, 0, 0), [])


def _provider(cluster_name: str, *, default: bool = False, package: str = "kubernetes") -> PolicyProviderResource:
    name = "default_4_30_0" if default else f"{cluster_name}-k8s"
    return PolicyProviderResource(f"pulumi:providers:{package}", {}, f"urn:p::providers:{package}::{name}", name)


def _resource(type_: str, name: str, props: dict[str, Any], provider: PolicyProviderResource | None) -> PolicyResource:
    return PolicyResource(
        type_, unknown_checking_proxy(props), f"urn:p::{type_}::{name}", name, OPTS, provider, None, [], {}
    )


def _release(name: str, cluster_id: Any, pods: Any, *, version: str = "1.20.0", **values: Any) -> PolicyResource:
    merged: dict[str, Any] = {
        "cluster": {"name": name, "id": cluster_id},
        "clustermesh": {
            "useAPIServer": True,
            "maxConnectedClusters": 255,
            "config": {"enabled": False},
            "apiserver": {
                "kvstoremesh": {"enabled": False},
                "tls": {"auto": {"enabled": False}, "authMode": "cluster"},
            },
        },
        "routingMode": "tunnel",
        "tunnelProtocol": "vxlan",
    }
    if pods is not None:  # None: a chained cluster, whose pods get addresses from the AWS VPC CNI or Calico
        listed = pods if isinstance(pods, list) else [pods]
        merged["ipam"] = {"mode": "cluster-pool", "operator": {"clusterPoolIPv4PodCIDRList": listed}}
    for key, value in values.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) and key in merged else value
    props = {"chart": "cilium", "version": version, "name": "cilium", "namespace": "kube-system", "values": merged}
    return _resource("kubernetes:helm.sh/v3:Release", f"{name}-cilium", props, _provider(name))


def _secret(
    cluster_name: str, secret_name: str, data: Any, type_: str = "Opaque", namespace: str = "kube-system"
) -> PolicyResource:
    props = {"metadata": {"name": secret_name, "namespace": namespace}, "type": type_, "data": data}
    return _resource("kubernetes:core/v1:Secret", f"{cluster_name}-{secret_name}", props, _provider(cluster_name))


def _configmap(cluster_name: str, configmap_name: str, data: Any, namespace: str = "kube-system") -> PolicyResource:
    props = {"metadata": {"name": configmap_name, "namespace": namespace}, "data": data}
    return _resource("kubernetes:core/v1:ConfigMap", f"{cluster_name}-{configmap_name}", props, _provider(cluster_name))


def _remote_users(cluster_name: str, peers: list[str]) -> PolicyResource:
    """The program's own users ConfigMap (clustermesh.render.mesh_tls), for `peers`."""
    document = remote_users(cluster_name, peers)
    return _configmap(cluster_name, document["metadata"]["name"], document["data"])


def _users(cluster_name: str, users: list[dict[str, str]]) -> PolicyResource:
    return _configmap(cluster_name, "clustermesh-remote-users", {"users.yaml": yaml.safe_dump({"users": users})})


def _mesh_cluster(name: str, cluster_id: Any, pods: Any, cni: str = "cilium") -> PolicyResource:
    """The MeshCluster component: what the program knows of the cluster whatever its CNI."""
    props = {"clusterName": name, "clusterId": cluster_id, "cni": cni, "podCidrs": pods}
    return _resource("clustermesh:index:MeshCluster", name, props, None)


def _cluster(name: str, cluster_id: Any, pods: Any, peers: list[str], **values: Any) -> list[PolicyResource]:
    """A cluster as the program builds it: its component, its release, its certificate Secrets, its clustermesh
    Secret and its users ConfigMap."""
    return [
        _mesh_cluster(name, cluster_id, [pods] if isinstance(pods, str) else pods),
        _release(name, cluster_id, pods, **values),
        *(
            _secret(name, f"clustermesh-apiserver-{role}-cert", {"tls.crt": "x"}, "kubernetes.io/tls")
            for role in ("server", "admin", "remote")
        ),
        _secret(name, "cilium-clustermesh", dict.fromkeys(peers, "eA==")),
        _remote_users(name, peers),
    ]


def _mesh(**overrides: Any) -> list[PolicyResource]:
    return [*_cluster("a", 1, "10.1.0.0/16", ["b"], **overrides), *_cluster("b", 2, "10.2.0.0/16", ["a"])]


def _stack_rule(name: str, resources: list[PolicyResource], config: dict[str, Any] | None = None) -> list[str]:
    policy = RULES[name]
    assert isinstance(policy, StackValidationPolicy)
    found: list[str] = []
    try:
        policy.validate(StackValidationArgs(resources, config or {}), lambda m, u=None: found.append(m))  # type: ignore[misc]
    except _NotApplicableError:
        return ["not applicable"]
    return found


def _resource_rule(name: str, resource: PolicyResource) -> list[str]:
    policy = RULES[name]
    assert isinstance(policy, ResourceValidationPolicy)
    found: list[str] = []
    args = ResourceValidationArgs(resource.resource_type, resource.props, resource.urn, resource.name, OPTS, None, {})
    policy.validate(args, lambda m, u=None: found.append(m))  # type: ignore[misc]
    return found


# --- stack rules, each compliant and violated -------------------------------------------------------------


def test_compliant_mesh_passes_every_stack_rule() -> None:
    for name, policy in RULES.items():
        if isinstance(policy, StackValidationPolicy) and name != "no-plain-secret-outputs":
            assert _stack_rule(name, _mesh()) == [], name


def test_cluster_identity_unique() -> None:
    clash = [*_cluster("a", 1, "10.1.0.0/16", ["b"]), *_cluster("b", 1, "10.2.0.0/16", ["a"])]
    assert _stack_rule("cluster-identity-unique", clash) == ["cluster id 1 is used by both a-cilium and b-cilium"]
    same_name = [_release("a", 1, "10.1.0.0/16"), _release("a", 2, "10.2.0.0/16")]
    assert _stack_rule("cluster-identity-unique", same_name) == ["cluster name a is used by both a-cilium and a-cilium"]


def test_cluster_id_within_max_and_the_same_max_everywhere() -> None:
    too_high = [_release("a", 300, "10.1.0.0/16"), _release("b", 2, "10.2.0.0/16")]
    assert _stack_rule("cluster-id-within-max", too_high) == ["cluster id 300 is outside 1..255 (maxConnectedClusters)"]
    mixed = [
        _release("a", 1, "10.1.0.0/16", clustermesh={"maxConnectedClusters": 511}),
        _release("b", 2, "10.2.0.0/16"),
    ]
    assert _stack_rule("cluster-id-within-max", mixed) == [
        "maxConnectedClusters differs between clusters (255: b-cilium; 511: a-cilium); it must be the same everywhere"
    ]


def test_pod_cidrs_disjoint() -> None:
    overlap = [_release("a", 1, "10.1.0.0/16"), _release("b", 2, "10.1.128.0/17")]
    assert _stack_rule("pod-cidrs-disjoint", overlap) == [
        "pod CIDR 10.1.0.0/16 of cluster a overlaps 10.1.128.0/17 of cluster b"
    ]


def test_pod_cidrs_disjoint_sees_chained_clusters_through_their_components() -> None:
    """aws-cni and Calico clusters carry no cluster-pool values; their ranges come from the MeshCluster."""
    chained = [
        _mesh_cluster("a", 1, ["10.0.0.0/16"], cni="aws-cni"),
        _mesh_cluster("b", 2, ["10.0.128.0/17"], cni="aws-cni"),
        _mesh_cluster("c", 3, ["192.168.0.0/16", "fd00:10::/48"], cni="calico"),
        _mesh_cluster("d", 4, ["10.4.0.0/16", "fd00:10:0:1::/64"], cni="calico"),
        *(_release(n, i, None, cni={"chainingMode": "aws-cni"}) for n, i in (("a", 1), ("b", 2))),
        *(_release(n, i, None, cni={"chainingMode": "generic-veth"}) for n, i in (("c", 3), ("d", 4))),
    ]
    assert _stack_rule("pod-cidrs-disjoint", chained) == [
        "pod CIDR 10.0.0.0/16 of cluster a overlaps 10.0.128.0/17 of cluster b",
        "pod CIDR fd00:10::/48 of cluster c overlaps fd00:10:0:1::/64 of cluster d",
    ]


def test_the_planner_shows_stack_rules_a_components_registered_outputs_as_the_engine_does() -> None:
    """The engine's state keeps a component's registered outputs, not its inputs: the pod ranges of chained
    clusters must be among the outputs MeshCluster registers, and the planner must read those."""
    chained = [
        cluster(name, i, pods, cni="aws-cni", nodeCidr=pods, routing={"mode": "native"})
        for i, (name, pods) in enumerate((("a", "10.1.0.0/16"), ("b", "10.2.0.0/16")), 1)
    ]
    plan = run_program(
        PROJECT_DIR,
        StackSettings("clustermesh", "test", PROJECT_DIR / "Pulumi.test.yaml", raw_config(chained), frozenset()),
    )
    components = {n.name: n for n in plan.nodes if n.type == "clustermesh:index:MeshCluster"}
    assert {name: node.outputs["podCidrs"] for name, node in components.items() if node.outputs} == {
        "a": ["10.1.0.0/16"],
        "b": ["10.2.0.0/16"],
    }
    assert not [v for v in check(plan) if v.policy == "pod-cidrs-disjoint"]
    # What a state that drifted from the inputs would hold: only the outputs overlap, and the rule sees it.
    assert components["b"].outputs is not None
    components["b"].outputs["podCidrs"] = ["10.1.128.0/17"]
    found = [v.message for v in check(plan) if v.policy == "pod-cidrs-disjoint"]
    assert found == ["pod CIDR 10.1.0.0/16 of cluster a overlaps 10.1.128.0/17 of cluster b"]


def test_pod_cidrs_within_one_cluster_may_overlap_and_count_once() -> None:
    """The component and the release name the same range once per cluster; with aws-cni pods and nodes share
    the VPC's range, so a cluster's own ranges may overlap each other."""
    own = [
        *_cluster("a", 1, "10.1.0.0/16", ["b"]),
        *_cluster("b", 2, ["10.2.0.0/16", "10.2.1.0/24"], ["a"]),
        _mesh_cluster("c", 3, ["10.3.0.0/16", "10.3.0.0/16"], cni="aws-cni"),
    ]
    assert _stack_rule("pod-cidrs-disjoint", own) == []
    # A component's ranges beside another cluster's release: one overlap, reported once.
    mixed = [*_cluster("a", 1, "10.1.0.0/16", ["b"]), _mesh_cluster("b", 2, ["10.1.0.0/24"], cni="aws-cni")]
    assert _stack_rule("pod-cidrs-disjoint", mixed) == [
        "pod CIDR 10.1.0.0/16 of cluster a overlaps 10.1.0.0/24 of cluster b"
    ]


def _without(resources: list[PolicyResource], *names: str) -> list[PolicyResource]:
    return [r for r in resources if r.name not in names]


def test_mesh_complete() -> None:
    missing = [
        *_without(_cluster("a", 1, "10.1.0.0/16", []), "a-clustermesh-remote-users"),
        _remote_users("a", ["b"]),
        *_without(_cluster("b", 2, "10.2.0.0/16", ["a", "c"]), "b-clustermesh-remote-users"),
        _remote_users("b", ["a"]),
    ]
    assert _stack_rule("mesh-complete", missing) == [
        "cilium-clustermesh of cluster a does not name b",
        "cilium-clustermesh of cluster b names c, not peers of it",
    ]
    no_secret = _without(_mesh(), "b-cilium-clustermesh")
    assert _stack_rule("mesh-complete", no_secret) == [
        "cluster b has no cilium-clustermesh Secret: it knows none of its 1 peers"
    ]


def test_mesh_complete_counts_only_secrets_in_the_cilium_namespace() -> None:
    """The agents mount cilium-clustermesh from kube-system: the right Secret elsewhere leaves the cluster blind."""
    elsewhere = [
        *_without(_mesh(), "b-cilium-clustermesh"),
        _secret("b", "cilium-clustermesh", {"a": "eA=="}, namespace="default"),
    ]
    assert _stack_rule("mesh-complete", elsewhere) == [
        "cluster b has no cilium-clustermesh Secret: it knows none of its 1 peers"
    ]
    users_elsewhere = [
        *_without(_mesh(), "a-clustermesh-remote-users"),
        _configmap("a", "clustermesh-remote-users", remote_users("a", ["b"])["data"], namespace="default"),
    ]
    assert _stack_rule("mesh-complete", users_elsewhere) == [
        "cluster a has no clustermesh-remote-users ConfigMap: its clustermesh-apiserver mounts it and never "
        "starts without it"
    ]


def test_mesh_complete_checks_each_clusters_remote_users() -> None:
    """Unless authMode is legacy, the clustermesh-apiserver mounts clustermesh-remote-users and creates one etcd
    user per entry: exactly remote-<peer> for each peer, role remote."""
    rule = "mesh-complete"
    wrong = [
        *_without(_mesh(), "a-clustermesh-remote-users", "b-clustermesh-remote-users"),
        _users("a", [{"name": "remote", "role": "remote"}]),  # the legacy CN, not b's identity
        _users("b", [{"name": "remote-a", "role": "admin"}, {"name": "remote-b", "role": "remote"}]),
    ]
    assert _stack_rule(rule, wrong) == [
        "clustermesh-remote-users of cluster a does not name remote-b",
        "clustermesh-remote-users of cluster a names remote, not peers of it",
        "clustermesh-remote-users of cluster b names remote-b, not peers of it",
        "clustermesh-remote-users of cluster b gives remote-a a role other than remote",
    ]
    garbled = [
        *_without(_mesh(), "a-clustermesh-remote-users"),
        _configmap("a", "clustermesh-remote-users", {"users.yaml": "users: remote-b"}),
    ]
    assert _stack_rule(rule, garbled) == ["clustermesh-remote-users of cluster a has no list of users under users.yaml"]
    # The chart's default authMode (migration) mounts it too, and a lone cluster needs it (with no users).
    default_mode = _without(
        _cluster("a", 1, "10.1.0.0/16", [], clustermesh={"apiserver": {"tls": {"auto": {"enabled": False}}}}),
        "a-clustermesh-remote-users",
    )
    assert len(_stack_rule(rule, default_mode)) == 1
    assert _stack_rule(rule, [*_without(default_mode), _remote_users("a", [])]) == []
    # legacy mounts nothing; with the chart's own peer list the chart renders it.
    legacy = {"apiserver": {"tls": {"auto": {"enabled": False}, "authMode": "legacy"}}}
    assert _stack_rule(rule, _without(_mesh(clustermesh=legacy), "a-clustermesh-remote-users")) == []
    chart_config = {"config": {"enabled": True}}
    assert _stack_rule(rule, _without(_mesh(clustermesh=chart_config), "a-clustermesh-remote-users")) == []


def test_mesh_complete_checks_the_kvstoremesh_secret_when_kvstoremesh_is_on() -> None:
    kvstoremesh = {"clustermesh": {"apiserver": {"kvstoremesh": {"enabled": True}}}}
    resources = [*_cluster("a", 1, "10.1.0.0/16", ["b"], **kvstoremesh), *_cluster("b", 2, "10.2.0.0/16", ["a"])]
    assert _stack_rule("mesh-complete", resources) == [
        "cluster a has no cilium-kvstoremesh Secret: it knows none of its 1 peers"
    ]


def test_explicit_providers_for_every_provider_package() -> None:
    """Every resource of a package with a provider (kubernetes, tls, aws, ...) names an explicit one."""
    stray = _resource(
        "kubernetes:core/v1:ConfigMap", "stray", {"metadata": {"name": "x"}}, _provider("a", default=True)
    )
    orphan = _resource("kubernetes:core/v1:ConfigMap", "orphan", {"metadata": {"name": "y"}}, None)
    key = _resource("tls:index/privateKey:PrivateKey", "ca", {}, _provider("mesh", default=True, package="tls"))
    unversioned = PolicyProviderResource("pulumi:providers:aws", {}, "urn:p::providers:aws::default", "default")
    record = _resource("aws:route53/record:Record", "a-dns", {}, unversioned)
    command = _resource("command:local:Command", "hook", {}, None)
    explicit = [
        _resource("tls:index/privateKey:PrivateKey", "b-key", {}, _provider("mesh", package="tls")),
        _resource("aws:route53/record:Record", "b-dns", {}, _provider("mesh", package="aws")),
        _resource("clustermesh:index:Mesh", "mesh", {}, None),  # a component: no provider of its own
        _resource("pulumi:providers:tls", "mesh-tls", {}, None),
        _resource("pulumi:pulumi:Stack", "p-dev", {}, None),
    ]
    found = _stack_rule("explicit-providers", [*_mesh(), *explicit, stray, orphan, key, record, command])
    assert [m.split(" (")[0] for m in found] == ["stray", "orphan", "ca", "a-dns", "hook"]
    assert found[2] == (
        "ca (tls:index/privateKey:PrivateKey) goes through the default tls provider (default_4_30_0), configured "
        "by whatever the ambient environment holds (a kubeconfig, cloud credentials and region) rather than by "
        "the stack"
    )
    assert found[4] == "hook (command:local:Command) names no provider"


def test_uniform_cilium_and_datapath() -> None:
    mixed = [
        _release("a", 1, "10.1.0.0/16", version="1.19.6"),
        _release("b", 2, "10.2.0.0/16", tunnelProtocol="geneve"),
    ]
    assert _stack_rule("uniform-cilium-and-datapath", mixed) == [
        "clusters differ in Cilium minor version (1.19: a-cilium; 1.20: b-cilium); a mesh needs one",
        "clusters differ in tunnel protocol (geneve: b-cilium; vxlan: a-cilium); a mesh needs one",
    ]


def test_clustermesh_apiserver_tls() -> None:
    no_certs = [r for r in _mesh() if r.name != "a-clustermesh-apiserver-server-cert"]
    assert _stack_rule("clustermesh-apiserver-tls", no_certs) == [
        "cluster a turns the chart's TLS generation off but gets no clustermesh-apiserver-server-cert Secret"
    ]
    weakened = _mesh(
        clustermesh={"apiserver": {"extraArgs": ["--client-cert-auth=false"], "tls": {"auto": {"enabled": False}}}}
    )
    assert _stack_rule("clustermesh-apiserver-tls", weakened) == [
        "clustermesh-apiserver of a is given arguments that weaken TLS: ['--client-cert-auth=false']"
    ]


def test_no_plain_secret_outputs_only_where_secrecy_is_known() -> None:
    stack = _resource(
        "pulumi:pulumi:Stack", "p-dev", {"caKey": EC_KEY, "caCertificate": "-----BEGIN CERTIFICATE-----"}, None
    )
    marked = {"outputSecretsMarked": True}
    assert _stack_rule("no-plain-secret-outputs", [stack], marked) == [
        "stack output 'caKey' holds a private key or kubeconfig in plain text"
    ]
    masked = _resource("pulumi:pulumi:Stack", "p-dev", {"caKey": "[secret]"}, None)
    assert _stack_rule("no-plain-secret-outputs", [masked], marked) == []
    kubeconfig = _resource(
        "pulumi:pulumi:Stack", "p-dev", {"kc": {"a": "apiVersion: v1\nkind: Config\nclusters: []\n"}}, None
    )
    assert len(_stack_rule("no-plain-secret-outputs", [kubeconfig], marked)) == 1
    # Under the Pulumi CLI secrets arrive decrypted, so the rule cannot tell and stands aside.
    assert _stack_rule("no-plain-secret-outputs", [stack]) == ["not applicable"]


# --- resource rules ---------------------------------------------------------------------------------------


def _exposed(**service: Any) -> PolicyResource:
    return _release("a", 1, "10.1.0.0/16", clustermesh={"apiserver": {"service": service}})


def test_clustermesh_apiserver_not_public() -> None:
    rule = "clustermesh-apiserver-not-public"
    assert _resource_rule(rule, _exposed(type="LoadBalancer", loadBalancerSourceRanges=["0.0.0.0/0"])) == [
        "the clustermesh-apiserver LoadBalancer is open to 0.0.0.0/0"
    ]
    assert len(_resource_rule(rule, _exposed(type="LoadBalancer"))) == 1
    assert _resource_rule(rule, _exposed(type="LoadBalancer", loadBalancerSourceRanges=["172.16.0.0/12"])) == []
    internal = {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
    assert _resource_rule(rule, _exposed(type="LoadBalancer", annotations=internal)) == []
    assert _resource_rule(rule, _exposed(type="NodePort")) == []
    service = _resource(
        "kubernetes:core/v1:Service",
        "svc",
        {
            "metadata": {"name": "clustermesh-apiserver"},
            "spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["::/0"]},
        },
        _provider("a"),
    )
    assert _resource_rule(rule, service) == ["the clustermesh-apiserver LoadBalancer is open to ::/0"]


AWS = "service.beta.kubernetes.io/aws-load-balancer-"
LBC = {"loadBalancerClass": "service.k8s.aws/nlb"}


@pytest.mark.parametrize(
    ("annotations", "service", "internal"),
    [
        # EKS's built-in controller: any value but "" and "false"; it ignores the scheme annotation.
        ({f"{AWS}internal": "true"}, {}, True),
        ({f"{AWS}internal": "false"}, {}, False),
        ({f"{AWS}internal": ""}, {}, False),
        ({f"{AWS}scheme": "internal"}, {}, False),
        ({f"{AWS}scheme": "internet-facing"}, {}, False),
        # ... and were the AWS Load Balancer Controller's webhook to take it, an explicit scheme would win.
        ({f"{AWS}internal": "true", f"{AWS}scheme": "internet-facing"}, {}, False),
        # The AWS Load Balancer Controller, only for a Service that asks for it.
        ({f"{AWS}scheme": "internal"}, LBC, True),
        ({f"{AWS}scheme": "internet-facing"}, LBC, False),
        ({f"{AWS}scheme": "Internal"}, LBC, False),  # refused by the controller; not counted
        ({f"{AWS}internal": "true"}, LBC, True),  # its legacy key, as a Go bool, without a scheme
        ({f"{AWS}internal": "false"}, LBC, False),
        ({}, LBC, False),  # its default scheme is a controller flag: not counted
        ({f"{AWS}scheme": "internal", f"{AWS}type": "nlb-ip"}, {}, True),
        ({f"{AWS}scheme": "internal", f"{AWS}type": "external", f"{AWS}nlb-target-type": "ip"}, {}, True),
        ({f"{AWS}scheme": "internal", f"{AWS}type": "external"}, {}, False),  # no target type: not taken
        ({f"{AWS}scheme": "internal", f"{AWS}type": "nlb"}, {}, False),  # nlb is the built-in controller's
        # GKE: the first of its keys present decides, "Internal" or "internal"; its legacy classes override it.
        ({"networking.gke.io/load-balancer-type": "Internal"}, {}, True),
        ({"cloud.google.com/load-balancer-type": "internal"}, {}, True),
        ({"networking.gke.io/load-balancer-type": "External"}, {}, False),
        (
            {"networking.gke.io/load-balancer-type": "External", "cloud.google.com/load-balancer-type": "Internal"},
            {},
            False,
        ),
        ({}, {"loadBalancerClass": "networking.gke.io/l4-regional-internal-legacy"}, True),
        (
            {"networking.gke.io/load-balancer-type": "Internal"},
            {"loadBalancerClass": "networking.gke.io/l4-regional-external-legacy"},
            False,
        ),
        # Azure: exactly "true". OpenStack: "true" (other values fall back to a cloud config not visible here).
        ({"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}, {}, True),
        ({"service.beta.kubernetes.io/azure-load-balancer-internal": "True"}, {}, False),
        ({"service.beta.kubernetes.io/openstack-internal-load-balancer": "true"}, {}, True),
        ({"service.beta.kubernetes.io/openstack-internal-load-balancer": "yes"}, {}, False),
        # Any other class: none of the clouds' annotations applies.
        ({f"{AWS}internal": "true"}, {"loadBalancerClass": "io.cilium/bgp-control-plane"}, False),
    ],
)
def test_internal_means_the_value_the_controller_honours(
    annotations: dict[str, str], service: dict[str, str], internal: bool
) -> None:
    found = _resource_rule(
        "clustermesh-apiserver-not-public", _exposed(type="LoadBalancer", annotations=annotations, **service)
    )
    assert len(found) == (0 if internal else 1), found


def test_a_scheme_the_built_in_controller_ignores_is_explained() -> None:
    (found,) = _resource_rule(
        "clustermesh-apiserver-not-public", _exposed(type="LoadBalancer", annotations={f"{AWS}scheme": "internal"})
    )
    assert "read only by the AWS Load Balancer Controller" in found
    assert 'needs service.beta.kubernetes.io/aws-load-balancer-internal: "true"' in found


@pytest.mark.parametrize(
    ("ranges", "open_to"),
    [
        (["0.0.0.0/1", "128.0.0.0/1"], ["0.0.0.0/1", "128.0.0.0/1"]),
        (["8.0.0.0/8"], ["8.0.0.0/8"]),
        (["10.0.0.0/7"], ["10.0.0.0/7"]),  # straddles: 11.0.0.0/8 is public
        (["100.0.0.0/8"], ["100.0.0.0/8"]),  # holds CGNAT, and public space around it
        (["192.0.0.9/32"], ["192.0.0.9/32"]),  # a globally reachable anycast address inside 192.0.0.0/24
        (["2000::/3"], ["2000::/3"]),
        (["::ffff:8.8.8.0/120"], ["::ffff:8.8.8.0/120"]),  # IPv4-mapped public addresses
        (["10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8", "192.168.0.0/16"], []),
        (["172.16.0.0/12", "198.18.0.0/15", "192.0.0.0/29", "10.1.2.3/8"], []),  # host bits as Kubernetes allows
        (["fd00::/8", "fe80::/10", "::1/128", "2001:db8::/32", "::ffff:10.0.0.0/104"], []),
    ],
)
def test_open_means_any_source_range_holding_a_public_address(ranges: list[str], open_to: list[str]) -> None:
    found = _resource_rule(
        "clustermesh-apiserver-not-public", _exposed(type="LoadBalancer", loadBalancerSourceRanges=ranges)
    )
    assert found == ([f"the clustermesh-apiserver LoadBalancer is open to {', '.join(open_to)}"] if open_to else [])


def test_not_public_reads_what_the_chart_renders() -> None:
    """The chart writes clustermesh.annotations, then the Service's own; it renders no Service when told another
    exists; a Service given as a resource is read from its spec, class included."""
    rule = "clustermesh-apiserver-not-public"
    shared_internal = _release(
        "a",
        1,
        "10.1.0.0/16",
        clustermesh={
            "annotations": {f"{AWS}internal": "true"},
            "apiserver": {"service": {"type": "LoadBalancer"}},
        },
    )
    assert _resource_rule(rule, shared_internal) == []
    overridden = _release(
        "a",
        1,
        "10.1.0.0/16",
        clustermesh={
            "annotations": {f"{AWS}internal": "true"},
            "apiserver": {"service": {"type": "LoadBalancer", "annotations": {f"{AWS}internal": "false"}}},
        },
    )
    assert len(_resource_rule(rule, overridden)) == 1
    assert _resource_rule(rule, _exposed(type="LoadBalancer", externallyCreated=True)) == []
    assert _resource_rule(rule, _exposed(type="LoadBalancer", loadBalancerSourceRanges=["not-a-cidr"])) == [
        "loadBalancerSourceRanges of the clustermesh-apiserver holds 'not-a-cidr', not a CIDR"
    ]
    service = _resource(
        "kubernetes:core/v1:Service",
        "svc",
        {
            "metadata": {"name": "clustermesh-apiserver", "annotations": {f"{AWS}scheme": "internal"}},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb"},
        },
        _provider("a"),
    )
    assert _resource_rule(rule, service) == []


def test_chart_version_pinned() -> None:
    assert _resource_rule("chart-version-pinned", _release("a", 1, "10.1.0.0/16")) == []
    assert _resource_rule("chart-version-pinned", _release("a", 1, "10.1.0.0/16", version="1.20.0-pre.3")) == []
    assert _resource_rule("chart-version-pinned", _release("a", 1, "10.1.0.0/16", version="~1.20")) == [
        "chart cilium is not pinned to an exact version (version: '~1.20')"
    ]
    assert len(_resource_rule("chart-version-pinned", _release("a", 1, "10.1.0.0/16", version=""))) == 1


def test_no_rule_crashes_or_reports_on_values_unknown_in_preview() -> None:
    names = ["a", "b", "c", "d", "e", "g"]

    def peers(name: str) -> list[str]:
        return [n for n in names if n != name]

    unknown_lb = {"type": "LoadBalancer", "loadBalancerSourceRanges": rpc.UNKNOWN}
    unknown_annotations = {"type": "LoadBalancer", "annotations": rpc.UNKNOWN}
    unknown_class = {
        "type": "LoadBalancer",
        "loadBalancerClass": rpc.UNKNOWN,
        "annotations": {f"{AWS}scheme": "internal"},
    }
    resources = [
        *_cluster("a", 1, "10.1.0.0/16", peers("a"), clustermesh={"apiserver": {"service": unknown_annotations}}),
        *_without(_cluster("b", 2, "10.2.0.0/16", peers("b")), "b-cilium-clustermesh", "b-clustermesh-remote-users"),
        _secret("b", "cilium-clustermesh", rpc.UNKNOWN),  # its peers' addresses are not known yet
        _configmap("b", "clustermesh-remote-users", {"users.yaml": rpc.UNKNOWN}),
        *_cluster("c", rpc.UNKNOWN, rpc.UNKNOWN, peers("c"), version=rpc.UNKNOWN, routingMode=rpc.UNKNOWN),
        *_cluster("d", 4, "10.4.0.0/16", peers("d"), clustermesh={"apiserver": {"service": unknown_lb}}),
        *_cluster("e", 5, "10.5.0.0/16", peers("e"), clustermesh={"apiserver": {"service": unknown_class}}),
        _mesh_cluster("f", 6, rpc.UNKNOWN, cni="aws-cni"),
        *_without(_cluster("g", 7, "10.7.0.0/16", peers("g"), clustermesh=rpc.UNKNOWN), "g"),
    ]
    for name, policy in RULES.items():
        if isinstance(policy, StackValidationPolicy):
            assert _stack_rule(name, resources, {"outputSecretsMarked": True}) == [], name
        else:
            for resource in resources:
                assert _resource_rule(name, resource) == [], (name, resource.name)


def test_every_rule_is_mandatory_by_default() -> None:
    assert {p.enforcement_level for p in POLICIES} == {EnforcementLevel.MANDATORY}


# --- the same rules on real plans -------------------------------------------------------------------------


def _planner(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "clustermesh"), *args]
    return subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)


def test_planner_exits_3_naming_the_rule_when_the_apiserver_is_open_to_the_world(tmp_path: Path) -> None:
    config = write_stack_file(
        tmp_path / "Pulumi.open.yaml",
        three_clusters(),
        apiserverExposure={"type": "LoadBalancer", "loadBalancerSourceRanges": ["0.0.0.0/0"]},
    )
    result = _planner("plan", "--config", str(config))
    assert result.returncode == 3, result.stderr
    assert "policy mandatory: clustermesh-apiserver-not-public: alpha-cilium:" in result.stderr
    assert _planner("plan", "--config", str(config), "--no-policy").returncode == 0


def test_planner_refuses_a_scheme_annotation_eks_built_in_controller_ignores(tmp_path: Path) -> None:
    config = write_stack_file(
        tmp_path / "Pulumi.scheme.yaml",
        [{**c, "apiserverExposure": {"hostname": f"{c['name']}.apiserver.example.net"}} for c in three_clusters()],
        apiserverExposure={"annotations": {f"{AWS}scheme": "internal"}},
    )
    result = _planner("plan", "--config", str(config))
    assert result.returncode == 3, result.stderr
    assert "policy mandatory: clustermesh-apiserver-not-public: alpha-cilium:" in result.stderr


def test_policy_config_can_lower_a_rule_to_advisory(tmp_path: Path) -> None:
    config = write_stack_file(
        tmp_path / "Pulumi.open.yaml",
        three_clusters(),
        apiserverExposure={"type": "LoadBalancer", "loadBalancerSourceRanges": ["0.0.0.0/0"]},
    )
    levels = tmp_path / "policy-config.json"
    levels.write_text('{"clustermesh-apiserver-not-public": {"enforcementLevel": "advisory"}}')
    result = _planner("plan", "--config", str(config), "--policy-config", str(levels))
    assert result.returncode == 0, result.stderr
    assert "policy advisory: clustermesh-apiserver-not-public" in result.stderr
    levels.write_text('{"no-such-rule": "advisory"}')
    assert _planner("plan", "--config", str(config), "--policy-config", str(levels)).returncode == 2


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
@pytest.mark.parametrize("stack_file", sorted(PROJECT_DIR.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_every_committed_stack_plans_without_a_violation(stack_file: Path, preview: bool) -> None:
    result = _planner("plan", "--config", str(stack_file), *(["--preview"] if preview else []))
    assert result.returncode == 0, result.stderr
    assert "policy" not in result.stderr


def test_a_program_that_builds_two_clusters_with_one_id_is_caught(tmp_path: Path) -> None:
    """Config validation refuses duplicate IDs, so this program builds its clusters directly, past it."""
    (tmp_path / "Pulumi.yaml").write_text("name: clustermesh\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(
        textwrap.dedent(
            """
            from components.mesh import Mesh, MeshArgs
            from components.mesh_cluster import MeshCluster, MeshClusterArgs
            from components.stack_config import read_mesh_config

            mesh = read_mesh_config()
            first = mesh.clusters[0]
            twin = mesh.clusters[1].model_copy(update={"id": first.id})
            clusters = [
                MeshCluster(spec.name, MeshClusterArgs(mesh=mesh, cluster=spec, kubeconfig="~/.kube/config"))
                for spec in (first, twin)
            ]
            Mesh("mesh", MeshArgs(mesh=mesh, clusters=clusters))
            """
        )
    )
    raw = raw_config(
        [cluster("a", 1, "10.1.0.0/16"), cluster("b", 2, "10.2.0.0/16")],
        apiserverExposure={"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"]},
    )
    plan = run_program(tmp_path, StackSettings("clustermesh", "twin", tmp_path / "Pulumi.twin.yaml", raw, frozenset()))
    found = [(v.policy, v.message) for v in check(plan)]
    assert found == [("cluster-identity-unique", "cluster id 1 is used by both a-cilium and b-cilium")]


def test_the_pack_entry_point_only_builds_the_pack_from_the_same_rule_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """`policy/__main__.py` as the CLI runs it, with PolicyPack (whose constructor serves forever) recorded."""
    import runpy  # noqa: PLC0415

    import pulumi_policy  # noqa: PLC0415

    built: list[dict[str, Any]] = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: built.append(kwargs))
    runpy.run_path(str(PROJECT_DIR / "policy" / "__main__.py"), run_name="__main__")
    assert len(built) == 1
    assert built[0]["name"] == "clustermesh" and built[0]["policies"] is POLICIES
    assert (PROJECT_DIR / "policy" / "PulumiPolicy.yaml").is_file()


def test_the_planner_shows_stack_outputs_with_their_secrecy_and_unknowns() -> None:
    """Outputs the program marked secret pass; a key in plain text fails, beside an output a preview cannot know."""
    outputs = {"pending": UNKNOWN, "sealed": Secret(EC_KEY), "exposed": EC_KEY}
    violations = check(CapturedPlan("p", "dev", [], outputs))
    assert [(v.policy, v.message) for v in violations] == [
        ("no-plain-secret-outputs", "stack output 'exposed' holds a private key or kubeconfig in plain text")
    ]
    assert check(CapturedPlan("p", "dev", [], {"pending": UNKNOWN, "sealed": Secret(EC_KEY)})) == []


def test_a_preview_before_any_load_balancer_exists_violates_nothing() -> None:
    """Addresses not known yet reach the rules as the engine's unknown, and a rule says nothing of them."""
    settings = StackSettings(
        "clustermesh",
        "test",
        PROJECT_DIR / "Pulumi.test.yaml",
        raw_config(three_clusters(), apiserverExposure=COMPLIANT_EXPOSURE),
        frozenset(),
    )
    plan = run_program(PROJECT_DIR, settings, preview=True)
    remote = [n for n in plan.nodes if n.name.endswith("-cilium-kvstoremesh")]
    assert len(remote) == 3 and all(reveal(n.inputs, secrets=True)["data"] == UNKNOWN_PLACEHOLDER for n in remote)
    assert check(plan) == []


def test_policy_config_reads_the_pulumi_format_and_names_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "policy-config.json"
    config.write_text(
        '{"all": "advisory", "mesh-complete": {"enforcementLevel": "disabled"},'
        ' "no-plain-secret-outputs": {"outputSecretsMarked": true}}'
    )
    assert load_levels(config) == {"all": EnforcementLevel.ADVISORY, "mesh-complete": EnforcementLevel.DISABLED}
    config.write_text('{"no-such-rule": "advisory", "mesh-complete": "loud"}')
    with pytest.raises(PolicyConfigError) as raised:
        load_levels(config)
    assert [p.split(": ", 2)[1] for p in raised.value.problems] == ["no-such-rule", "mesh-complete"]
    config.write_text("[]")
    with pytest.raises(PolicyConfigError, match="expected a JSON object"):
        load_levels(config)


def test_the_planner_applies_levels_for_every_rule_and_for_one() -> None:
    plan = CapturedPlan("p", "dev", [], {"exposed": EC_KEY})
    (lowered,) = check(plan, {"all": EnforcementLevel.ADVISORY})
    assert (lowered.policy, lowered.mandatory) == ("no-plain-secret-outputs", False)
    assert check(plan, {"no-plain-secret-outputs": EnforcementLevel.DISABLED}) == []
    (default,) = check(plan)
    assert default.mandatory
