"""Kind `eks` config: what AWS, EKS and the VPC CNI would refuse, found before anything is created, each problem
with its path. Cases start from the committed tutorial-001 stack and break one thing each."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from clustermesh.config import ConfigError, load_stack_config
from clustermesh.planner.graph import reveal
from tests.conftest import PROJECT_DIR, plan_raw

TUTORIAL = PROJECT_DIR / "Pulumi.eks-tutorial.yaml"
SIXTY = PROJECT_DIR / "Pulumi.eks-60.yaml"
Change = Callable[[dict[str, Any]], None]


def config_of(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())["config"]
    return config


def problems(config: dict[str, Any]) -> list[str]:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    try:
        load_stack_config(raw)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def cluster_set(index: int, key: str, value: Any) -> Change:
    def change(config: dict[str, Any]) -> None:
        target: Any = config["clustermesh:clusters"][index]
        *parents, last = key.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value

    return change


def both(first: Change, second: Change) -> Change:
    def change(config: dict[str, Any]) -> None:
        first(config)
        second(config)

    return change


CASES: dict[str, tuple[Change, str, str]] = {
    "vpcs overlap": (
        cluster_set(1, "vpcCidr", "10.248.0.0/16"),
        "clusters[1]",
        "overlaps clusters[0]",
    ),
    "vpc too large for AWS": (
        cluster_set(0, "vpcCidr", "10.0.0.0/8"),
        "clusters[0].vpcCidr",
        "is not an IPv4 CIDR of /16 to /28",
    ),
    "one availability zone": (
        cluster_set(
            0,
            "availabilityZones",
            [
                {
                    "name": "us-east-1a",
                    "privateSubnet": "10.248.0.0/20",
                    "publicSubnet": "10.248.32.0/24",
                    "apiserverAddress": "10.248.0.10",
                }
            ],
        ),
        "clusters[0].availabilityZones",
        "EKS needs subnets in at least two availability zones",
    ),
    "subnet outside the vpc": (
        cluster_set(0, "availabilityZones.0.privateSubnet", "10.249.0.0/20"),
        "clusters[0].availabilityZones[0].privateSubnet",
        "is outside the VPC 10.248.0.0/18",
    ),
    "subnets overlap": (
        cluster_set(0, "availabilityZones.1.publicSubnet", "10.248.32.0/25"),
        "clusters[0].availabilityZones[1].publicSubnet",
        "overlaps clusters[0].availabilityZones[0].publicSubnet",
    ),
    "nlb address reserved by AWS": (
        cluster_set(0, "availabilityZones.0.apiserverAddress", "10.248.0.2"),
        "clusters[0].availabilityZones[0].apiserverAddress",
        "the first four and the last are reserved",
    ),
    "nlb address missing": (
        cluster_set(0, "availabilityZones.1.apiserverAddress", None),
        "clusters[0].availabilityZones[1].apiserverAddress",
        "required: the clustermesh-apiserver's NLB takes an address in every zone",
    ),
    "zone of another region": (
        cluster_set(0, "availabilityZones.1.name", "us-west-2b"),
        "clusters[0].availabilityZones[1].name",
        "is not a zone of us-east-1",
    ),
    "service cidr outside EKS's ranges": (
        cluster_set(0, "serviceCidr", "100.64.0.0/16"),
        "clusters[0].serviceCidr",
        "within 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
    ),
    "service cidr overlapping a vpc of the mesh": (
        cluster_set(0, "serviceCidr", "192.168.0.0/16"),
        "clusters[0].serviceCidr",
        "overlaps clusters[1]",
    ),
    "cluster id with bit 0x80 and aws-cni": (
        cluster_set(0, "id", 130),
        "clusters[0].id",
        "cannot be used with aws-cni chaining",
    ),
    "public API open to the world": (
        cluster_set(0, "publicAccessCidrs", ["0.0.0.0/0"]),
        "clusters[0].publicAccessCidrs[0]",
        "opens the Kubernetes API to the world",
    ),
    "kubernetes version not EKS's": (
        cluster_set(0, "kubernetesVersion", "latest"),
        "clusters[0].kubernetesVersion",
        "is not an EKS version",
    ),
    "node group sizes": (
        cluster_set(0, "nodeGroups.0.desiredSize", 9),
        "clusters[0].nodeGroups[0]",
        "needs minSize <= desiredSize <= maxSize",
    ),
    "region": (cluster_set(0, "region", "mars"), "clusters[0].region", "is not an AWS region"),
    "no way to reach the API": (
        cluster_set(0, "publicAccessCidrs", []),
        "clusters[0]",
        "give publicAccessCidrs (the API's public endpoint) or apiAccessCidrs (its private one)",
    ),
    "private API open to the world": (
        cluster_set(0, "apiAccessCidrs", ["0.0.0.0/0"]),
        "clusters[0].apiAccessCidrs[0]",
        "opens the Kubernetes API to the world",
    ),
    "cilium in place of aws-cni": (
        both(cluster_set(0, "cni", "cilium"), cluster_set(0, "podCidrs", ["10.40.0.0/16"])),
        "clusters[0].cni",
        "not available on kind eks yet",
    ),
    "kube-proxy replacement on eks": (
        cluster_set(0, "kubeProxyReplacement", True),
        "clusters[0].kubeProxyReplacement",
        "not on kind eks",
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_eks_mistake_is_reported_with_its_path(case: str) -> None:
    change, path, fragment = CASES[case]
    config = copy.deepcopy(config_of(TUTORIAL))
    change(config)
    found = problems(config)
    assert any(p.startswith(path) and fragment in p for p in found), found


def test_the_eks_stacks_are_valid() -> None:
    assert problems(config_of(TUTORIAL)) == []
    assert problems(config_of(SIXTY)) == []


def test_forced_peering_past_the_quota_is_refused_with_the_reason() -> None:
    config = config_of(SIXTY)
    config["clustermesh:awsUnderlay"] = "peering"
    assert (
        "awsUnderlay: peering 60 EKS clusters takes 59 peering connections and routes per VPC, more than AWS's "
        "default quotas allow (49): use transit-gateway or auto"
    ) in problems(config)


def test_transit_gateways_need_the_mesh_range_to_hold_every_vpc() -> None:
    """With Transit Gateways each VPC routes and admits the mesh's range as one: a VPC outside it is unreachable."""
    config = config_of(SIXTY)
    config["clustermesh:nativeRoutingCidrs"] = ["10.0.0.0/11"]  # 10.0.0.0-10.31.255.255
    found = [p for p in problems(config) if "is outside nativeRoutingCidrs" in p]
    outside = [f"clusters[{i - 1}].vpcCidr: 10.{i}.0.0/16" for i in range(32, 61)]
    assert sorted(p.split(" is outside")[0] for p in found) == sorted(outside)


def test_an_admin_principal_must_be_an_iam_arn() -> None:
    config = copy.deepcopy(config_of(TUTORIAL))
    cluster_set(1, "adminPrincipals", ["platform-admin"])(config)
    assert "clusters[1].adminPrincipals[0]: 'platform-admin' is not an IAM role or user ARN" in problems(config)


def test_peers_dial_every_nlb_address_of_an_eks_cluster_known_at_preview() -> None:
    """The NLB has one fixed address per zone: each peer's clustermesh Secret names them all, at preview."""
    config = config_of(TUTORIAL)
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    plan = plan_raw(raw, preview=True)
    # With KVStoreMesh (the default) the peers' addresses are in the kvstoremesh Secret.
    (secret,) = [n for n in plan.nodes if n.name == "cluster1-cilium-kvstoremesh"]
    entry = base64.b64decode(reveal(secret.inputs["data"], secrets=True)["cluster2"]).decode()
    (cluster2,) = [c for c in config["clustermesh:clusters"] if c["name"] == "cluster2"]
    for zone in cluster2["availabilityZones"]:
        assert zone["apiserverAddress"] in entry, entry
