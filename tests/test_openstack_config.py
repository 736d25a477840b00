"""Kind `openstack` config: every mistake Neutron, Nova, the installers or MetalLB would trip on, found before
anything is created, each with its path in the stack file's words, all in one run.

Each case starts from the committed tutorial-000 stack (two RKE2 clusters on one existing network) and breaks
one thing; the expected path and fragment come from what the case changed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from clustermesh.config import ConfigError, load_stack_config
from clustermesh.planner.cli import app
from tests.conftest import PROJECT_DIR

STACK = PROJECT_DIR / "Pulumi.openstack-rke2.yaml"
K3S_STACK = PROJECT_DIR / "Pulumi.openstack-k3s.yaml"

Config = dict[str, Any]
Change = Callable[[list[dict[str, Any]]], None]


def tutorial_config(path: Path = STACK) -> Config:
    config: Config = yaml.safe_load(path.read_text())["config"]
    return config


def engine_view(config: Config) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def problems_of(config: Config, secret_keys: frozenset[str] = frozenset()) -> list[str]:
    try:
        load_stack_config(engine_view(config), secret_keys)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def changed(change: Change, path: Path = STACK) -> Config:
    config = copy.deepcopy(tutorial_config(path))
    change(config["clustermesh:clusters"])
    return config


def set_at(index: int, dotted: str, value: Any) -> Change:
    def change(clusters: list[dict[str, Any]]) -> None:
        target: Any = clusters[index]
        *parents, last = dotted.split(".")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target.setdefault(key, {})
        target[last] = value

    return change


CASES: dict[str, tuple[Change, str, str]] = {
    "node range outside the subnet": (
        set_at(0, "nodePools.0.addresses", "10.195.198.10-10.195.198.17"),
        "clusters[0].nodePools[0].addresses",
        "10.195.198.10-10.195.198.17 is not inside the subnet 10.195.197.0/24",
    ),
    "node inside the DHCP pool": (
        set_at(0, "nodePools.0.addresses", "10.195.197.100-10.195.197.107"),
        "clusters[0].nodePools[0].addresses",
        "10.195.197.100 is inside the DHCP pool 10.195.197.2-10.195.197.150",
    ),
    "two nodes on one IP in a cluster": (
        set_at(0, "nodePools.0.addresses", ["10.195.197.160", "10.195.197.160", "10.195.197.161"]),
        "clusters[0].nodePools[0].addresses[1]",
        "10.195.197.160 is already the address of",
    ),
    "a node of another cluster's address": (
        set_at(1, "nodePools.0.addresses", ["10.195.197.162", "10.195.197.170", "10.195.197.171"]),
        "clusters[1].nodePools",
        "10.195.197.162 (node cluster2-node-0) is already the address of clusters[0] node cluster1-node-2",
    ),
    "node ranges of two clusters on one subnet overlap": (
        set_at(1, "nodePools.0.addresses", "10.195.197.165-10.195.197.172"),
        "clusters[1].nodePools[0].addresses",
        "10.195.197.165-10.195.197.172 overlaps clusters[0].nodePools[0].addresses 10.195.197.160-10.195.197.167",
    ),
    "fewer addresses than nodes": (
        set_at(0, "nodePools.0.addresses", ["10.195.197.160", "10.195.197.161"]),
        "clusters[0].nodePools[0].addresses",
        "2 addresses for 3 nodes",
    ),
    "server count 0": (
        set_at(0, "nodePools.0.count", 0),
        "clusters[0].nodePools[0].count",
        "a pool needs at least one node",
    ),
    "no server pool": (
        set_at(0, "nodePools.0.role", "agent"),
        "clusters[0].nodePools",
        "needs a pool with role server",
    ),
    "pool name not a DNS label": (
        set_at(0, "nodePools.0.name", "Node_1"),
        "clusters[0].nodePools[0].name",
        "not a lowercase DNS label",
    ),
    "metallb pool outside the subnet": (
        set_at(0, "apiserverLoadBalancer.metallb.addresses", ["10.195.198.190-10.195.198.199"]),
        "clusters[0].apiserverLoadBalancer.metallb.addresses[0]",
        "not inside the subnet 10.195.197.0/24",
    ),
    "metallb pool inside the DHCP pool": (
        set_at(0, "apiserverLoadBalancer.metallb.addresses", ["10.195.197.140-10.195.197.155"]),
        "clusters[0].apiserverLoadBalancer.metallb.addresses[0]",
        "overlaps the DHCP pool 10.195.197.2-10.195.197.150",
    ),
    "pinned address not in its pool": (
        set_at(0, "apiserverLoadBalancer.metallb.apiserverAddress", "10.195.197.200"),
        "clusters[0].apiserverLoadBalancer.metallb.apiserverAddress",
        "10.195.197.200 is not in metallb.addresses",
    ),
    "metallb pools of two clusters sharing a network overlap": (
        set_at(
            1,
            "apiserverLoadBalancer.metallb",
            {"addresses": ["10.195.197.195-10.195.197.205"], "apiserverAddress": "10.195.197.201"},
        ),
        "clusters[1].apiserverLoadBalancer.metallb.addresses[0]",
        "overlaps clusters[0]'s MetalLB pool 10.195.197.190-10.195.197.199 on the same subnet",
    ),
    "metallb pool holding a node of the other cluster": (
        set_at(
            1,
            "apiserverLoadBalancer.metallb",
            {"addresses": ["10.195.197.160-10.195.197.161"], "apiserverAddress": "10.195.197.160"},
        ),
        "clusters[1].apiserverLoadBalancer.metallb.addresses[0]",
        "holds 10.195.197.160, the address of clusters[0] node cluster1-node-0",
    ),
    "metallb and octavia both": (
        set_at(0, "apiserverLoadBalancer.octavia", {"vipAddress": "10.195.197.180"}),
        "clusters[0].apiserverLoadBalancer",
        "give metallb or octavia, not both",
    ),
    "octavia VIP inside DHCP": (
        set_at(0, "apiserverLoadBalancer", {"octavia": {"vipAddress": "10.195.197.20"}}),
        "clusters[0].apiserverLoadBalancer.octavia.vipAddress",
        "10.195.197.20 is inside the DHCP pool",
    ),
    "distro version not pinned": (
        set_at(0, "distro.version", "stable"),
        "clusters[0].distro.version",
        "'stable' is not a pinned rke2 release such as v1.36.3+rke2r1",
    ),
    "distro version of the other distro": (
        set_at(0, "distro.version", "v1.36.3+k3s1"),
        "clusters[0].distro.version",
        "is not a pinned rke2 release",
    ),
    "unknown distro": (
        set_at(0, "distro.name", "rke"),
        "clusters[0].distro.name",
        "must be one of 'rke2', 'k3s' or 'kubeadm' (got 'rke')",
    ),
    "ssh key without its public half": (
        set_at(0, "ssh.privateKeySecret", "sshKey"),
        "clusters[0].ssh",
        "give privateKeySecret and publicKey together",
    ),
    "ssh key not set": (
        set_at(0, "ssh.privateKeySecret", "sshKey"),
        "clusters[0].ssh.privateKeySecret",
        "config key clustermesh:sshKey is not set",
    ),
    "admin range open to the world": (
        set_at(0, "adminRanges", ["0.0.0.0/0"]),
        "clusters[0].adminRanges[0]",
        "opens the Kubernetes API and SSH to the world",
    ),
    "native routing": (
        set_at(0, "routing.mode", "native"),
        "clusters[0].routing.mode",
        "native routing on OpenStack needs cni: calico",
    ),
    "both network choices": (
        set_at(0, "network.create", {"cidr": "10.9.0.0/24", "dhcpPool": "10.9.0.10-10.9.0.20"}),
        "clusters[0].network",
        "give either existing (a network and subnet) or create",
    ),
    "credentials missing": (
        set_at(0, "openstack", {"region": "RegionOne"}),
        "clusters[0].openstack",
        "give cloud (a clouds.yaml entry)",
    ),
    "floating IPs without a pool": (
        set_at(0, "floatingIps", {"enabled": True}),
        "clusters[0].floatingIps.pool",
        "required when floating IPs are enabled",
    ),
    "kubeconfig on an openstack cluster": (
        set_at(0, "kubeconfig", {"path": "~/.kube/config"}),
        "clusters[0].kubeconfig",
        "unknown key",
    ),
    "typo in a pool key": (
        set_at(0, "nodePools.0.adresses", "10.195.197.160-10.195.197.167"),
        "clusters[0].nodePools[0].adresses",
        "unknown key (did you mean addresses?)",
    ),
    "bad address range": (
        set_at(0, "nodePools.0.addresses", "10.195.197.167-10.195.197.160"),
        "clusters[0].nodePools[0].addresses",
        "ends before it starts",
    ),
    "created subnet's DHCP pool holds the gateway": (
        set_at(0, "network", {"create": {"cidr": "10.9.0.0/24", "dhcpPool": "10.9.0.1-10.9.0.99"}}),
        "clusters[0].network.create.dhcpPool",
        "holds the gateway 10.9.0.1",
    ),
    "an Octavia VIP on another cluster's node": (
        set_at(1, "apiserverLoadBalancer", {"octavia": {"vipAddress": "10.195.197.161"}}),
        "clusters[1].apiserverLoadBalancer.octavia.vipAddress",
        "10.195.197.161 (Octavia VIP) is already the address of clusters[0] node cluster1-node-1",
    ),
    "a MetalLB pool holding the created subnet's gateway": (
        set_at(
            0,
            "network",
            {
                "create": {
                    "cidr": "10.195.197.0/24",
                    "dhcpPool": "10.195.197.2-10.195.197.150",
                    "gateway": "10.195.197.191",
                }
            },
        ),
        "clusters[0].apiserverLoadBalancer.metallb.addresses[0]",
        "holds the subnet's gateway 10.195.197.191",
    ),
    "the pinned MetalLB address is the gateway": (
        set_at(
            0,
            "network",
            {
                "create": {
                    "cidr": "10.195.197.0/24",
                    "dhcpPool": "10.195.197.2-10.195.197.150",
                    "gateway": "10.195.197.190",
                }
            },
        ),
        "clusters[0].apiserverLoadBalancer.metallb.apiserverAddress",
        "10.195.197.190 is the subnet's gateway",
    ),
    "a pinned floating IP without floating IPs": (
        set_at(0, "floatingIps", {"apiAddress": "203.0.113.10"}),
        "clusters[0].floatingIps.apiAddress",
        "only applies when floating IPs are enabled",
    ),
}


def test_node_names_of_two_clusters_may_not_meet() -> None:
    """Cluster a-b's pool c and cluster a's pool b-c would both make VM a-b-c-0, one resource name twice."""

    def meeting(clusters: list[dict[str, Any]]) -> None:
        clusters[0]["name"] = "a-b"
        clusters[0]["nodePools"][0]["name"] = "c"
        clusters[1]["name"] = "a"
        clusters[1]["nodePools"][0]["name"] = "b-c"

    found = problems_of(changed(meeting))
    assert "clusters[1].nodePools: node name a-b-c-0 (<cluster>-<pool>-<n>) is also a node of clusters[0]" in found


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_openstack_mistake_is_reported_with_its_path(case: str) -> None:
    change, path, fragment = CASES[case]
    found = problems_of(changed(change))
    assert any(p.startswith(f"{path}: ") and fragment in p for p in found), found


def test_the_committed_openstack_stacks_are_valid() -> None:
    assert problems_of(tutorial_config(STACK)) == []
    assert problems_of(tutorial_config(K3S_STACK)) == []


def test_every_openstack_mistake_is_reported_in_one_run() -> None:
    def many(clusters: list[dict[str, Any]]) -> None:
        set_at(0, "nodePools.0.count", 0)(clusters)
        set_at(0, "distro.version", "latest")(clusters)
        set_at(1, "apiserverLoadBalancer.metallb.apiserverAddress", "10.195.197.250")(clusters)
        set_at(1, "adminRanges", ["::/0"])(clusters)

    found = problems_of(changed(many))
    paths = {p.split(": ")[0] for p in found}
    assert {
        "clusters[0].nodePools[0].count",
        "clusters[0].distro.version",
        "clusters[1].apiserverLoadBalancer.metallb.apiserverAddress",
        "clusters[1].adminRanges[0]",
    } <= paths, found


def test_an_ssh_key_in_plain_text_is_refused_and_a_secret_one_accepted() -> None:
    def keyed(clusters: list[dict[str, Any]]) -> None:
        set_at(0, "ssh", {"user": "ubuntu", "privateKeySecret": "sshKey", "publicKey": "ssh-ed25519 AAAAC3Nza test"})(
            clusters
        )

    config = changed(keyed)
    config["clustermesh:sshKey"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
    found = problems_of(config)
    assert any(p.startswith("clusters[0].ssh.privateKeySecret: ") and "plain text" in p for p in found), found
    assert not any("BEGIN OPENSSH" in p for p in found)
    assert problems_of(config, frozenset({"clustermesh:sshKey"})) == []


def test_the_cli_reports_openstack_mistakes_with_exit_2(tmp_path: Path) -> None:
    config = changed(set_at(0, "nodePools.0.addresses", "10.195.197.100-10.195.197.107"))
    stack_file = tmp_path / "Pulumi.case.yaml"
    stack_file.write_text(yaml.safe_dump({"config": config}))
    result = CliRunner().invoke(
        app, ["plan", "--config", str(stack_file), "--no-policy", "--project-dir", str(PROJECT_DIR)]
    )
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "clusters[0].nodePools[0].addresses: 10.195.197.100 is inside the DHCP pool" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


KUBEADM_STACK = PROJECT_DIR / "Pulumi.openstack-kubeadm.yaml"
CALICO_MESH_STACK = PROJECT_DIR / "Pulumi.openstack-calico-mesh.yaml"

CALICO_CASES: dict[str, tuple[Change, str, str]] = {
    "calico pool outside the pod CIDR": (
        set_at(0, "calico", {"ipPool": "10.202.0.0/24"}),
        "clusters[0].calico.ipPool",
        "10.202.0.0/24 is not inside the cluster's pod CIDRs",
    ),
    "fewer calico blocks than nodes": (
        set_at(0, "calico", {"blockSize": 24}),
        "clusters[0].podCidrs[0]",
        "10.201.0.0/24 holds 1 Calico block(s) of /24 and the cluster has 2 nodes",
    ),
    "calico pool smaller than a block": (
        set_at(0, "calico", {"ipPool": "10.201.0.0/28"}),
        "clusters[0].calico.ipPool",
        "is smaller than one Calico block (/26, calico.blockSize)",
    ),
    "calico version not pinned": (
        set_at(0, "calico", {"version": "latest"}),
        "clusters[0].calico.version",
        "is not a pinned Calico release",
    ),
    "calico settings without calico": (
        set_at(0, "cni", "cilium"),
        "clusters[0].calico",
        "only applies with cni: calico",
    ),
    "cilium's own native routing on OpenStack": (
        set_at(0, "cni", "cilium"),
        "clusters[0].routing.mode",
        "native routing on OpenStack needs cni: calico",
    ),
    "unknown encapsulation": (
        set_at(0, "calico", {"encapsulation": "GRE"}),
        "clusters[0].calico.encapsulation",
        "must be one of",
    ),
}


@pytest.mark.parametrize("case", list(CALICO_CASES), ids=list(CALICO_CASES))
def test_each_kubeadm_and_calico_mistake_is_reported_with_its_path(case: str) -> None:
    change, path, fragment = CALICO_CASES[case]
    found = problems_of(changed(change, KUBEADM_STACK))
    assert any(p.startswith(f"{path}: ") and fragment in p for p in found), found


def test_the_calico_stacks_are_valid() -> None:
    assert problems_of(tutorial_config(KUBEADM_STACK)) == []
    assert problems_of(tutorial_config(CALICO_MESH_STACK)) == []


def test_calico_pods_must_lie_in_the_mesh_pod_ranges() -> None:
    config = tutorial_config(CALICO_MESH_STACK)
    config["clustermesh:nativeRoutingCidrs"] = ["10.201.0.0/16"]
    assert "clusters[1].podCidrs[0]: 10.202.0.0/16 is outside nativeRoutingCidrs 10.201.0.0/16" in problems_of(config)


def test_the_control_plane_taint_is_kubeadms_alone() -> None:
    found = problems_of(changed(set_at(0, "distro.controlPlaneTaint", False)))
    assert (
        "clusters[0].distro.controlPlaneTaint: only applies to kubeadm (RKE2 and k3s servers take workloads)" in found
    )


def test_kubeadm_takes_a_pod_subnet_smaller_than_a_node_mask() -> None:
    """Tutorial 004 kept to /24 because kubeadm refuses a pod subnet smaller than the controller-manager's /24 node
    mask; the program turns node CIDR allocation off (Calico allocates blocks), and kubeadm then does not check."""
    config = changed(set_at(0, "podCidrs", ["10.201.0.0/25"]), KUBEADM_STACK)
    config["clustermesh:nativeRoutingCidrs"] = ["10.201.0.0/25"]
    assert problems_of(config) == []


def test_meshed_calico_clusters_share_a_subnet_and_run_bgp() -> None:
    def apart(clusters: list[dict[str, Any]]) -> None:
        clusters[1]["network"] = {"create": {"cidr": "172.19.0.0/24", "dhcpPool": "172.19.0.100-172.19.0.200"}}
        clusters[1]["nodePools"] = [
            {"name": "server", "role": "server", "count": 1, "addresses": "172.19.0.40-172.19.0.47"},
            {"name": "worker", "role": "agent", "count": 2, "addresses": "172.19.0.48-172.19.0.63"},
        ]
        clusters[0]["calico"] = {"encapsulation": "VXLAN"}

    found = problems_of(changed(apart, CALICO_MESH_STACK))
    assert (
        "clusters[1].network: Calico clusters reach each other's pods node to node: put it on the subnet of "
        "clusters[0] (172.18.0.0/24)"
    ) in found
    assert (
        "clusters[0].calico.encapsulation: VXLAN turns Calico's BGP off, and meshed Calico clusters learn each "
        "other's pods by BGP: use IPIP or None"
    ) in found
