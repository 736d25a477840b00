"""Every committed EKS stack, planned and replayed into moto; the tutorial's peering, the 60-cluster mesh's Transit
Gateways and how the underlay grows, and what adding a cluster to the tutorial changes.

moto accepts or refuses each request as AWS would (within what it checks: `tests/test_moto_replay.py` pins both
sides), and then holds what was made: the tutorial's peering is read back active, its routes in every route table
of both VPCs, each cluster security group's rules. Expected values come from the stack files and the inputs the
tests write, never from a plan.
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections import Counter
from collections.abc import Mapping
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from clustermesh.planner.fabricate_aws import (
    ASG_ATTACHMENT,
    EKS_CLUSTER,
    INGRESS_RULE,
    PEERING,
    PEERING_ACCEPTER,
    ROUTE,
    ROUTE_TABLE,
    SUBNET,
    TGW_PEERING,
    TGW_PEERING_ACCEPTER,
    TGW_VPC_ATTACHMENT,
    TRANSIT_GATEWAY,
    VPC,
)
from clustermesh.planner.graph import Node
from clustermesh.planner.report import write_plan
from clustermesh.planner.runner import CapturedPlan
from tests.conftest import PROJECT_DIR, plan_raw
from tests.moto_replay import (
    EKS_ACCESS_ENTRY,
    EKS_ACCESS_POLICY_ASSOCIATION,
    EKS_ADDON,
    EKS_NODE_GROUP,
    NOT_REPLAYED,
    MotoServer,
    ReplaySummary,
    moto_server_fixture,
    replay_captured,
)
from tests.test_incremental import CLUSTERMESH_SECRETS, REMOTE_USERS

moto_server = pytest.fixture(scope="session", name="moto_server")(moto_server_fixture)
"""One moto server for every test that needs it (shared with tests/test_moto_replay.py's, in one process)."""

EKS_STACKS = sorted(
    path
    for path in PROJECT_DIR.glob("Pulumi.*.yaml")
    if any(c.get("kind") == "eks" for c in yaml.safe_load(path.read_text())["config"].get("clustermesh:clusters", []))
)
TUTORIAL = PROJECT_DIR / "Pulumi.eks-tutorial.yaml"
MESH_60 = PROJECT_DIR / "Pulumi.eks-60.yaml"
MESH = "clustermesh:index:Mesh"
UNDERLAY_TYPES = ("aws:ec2transitgateway/", ROUTE, INGRESS_RULE, "aws:ec2/vpcPeeringConnection")
"""What the Mesh builds between the VPCs: Transit Gateway resources (`aws:ec2transitgateway/*`), routes, ingress
rules and peering connections (and their accepters), counted among the Mesh's children."""
ALL_TRAFFIC = "-1"


def stack_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())["config"]
    return config


def plan_config(config: Mapping[str, Any]) -> CapturedPlan:
    return plan_raw({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})


@functools.cache
def planned(path: Path) -> CapturedPlan:
    """A committed stack's plan, planned once per session (the 60-cluster one takes ~10 s)."""
    return plan_config(stack_config(path))


def eks_clusters(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in config["clustermesh:clusters"] if c.get("kind") == "eks"]


def of_type(plan: CapturedPlan, token: str) -> list[Node]:
    return [n for n in plan.nodes if n.type == token]


def aws_types(plan: CapturedPlan) -> Counter[str]:
    return Counter(n.type for n in plan.nodes if n.custom and n.type.startswith("aws:"))


def underlay(plan: CapturedPlan) -> list[Node]:
    """The Mesh component's children of the underlay's types."""
    (mesh,) = of_type(plan, MESH)
    return [n for n in plan.nodes if n.parent == mesh.urn and n.type.startswith(UNDERLAY_TYPES)]


@pytest.fixture(scope="module")
def replayed() -> dict[Path, tuple[ReplaySummary, float]]:
    """Each stack's replay (its summary and seconds taken), made by the first test that needs it (`replay_of`)."""
    return {}


def replay_of(
    path: Path, server: MotoServer, cache: dict[Path, tuple[ReplaySummary, float]]
) -> tuple[ReplaySummary, float]:
    if path not in cache:
        plan = planned(path)
        started = time.monotonic()
        summary = replay_captured(plan, server=server)
        cache[path] = (summary, time.monotonic() - started)
    return cache[path]


def ec2(server: MotoServer, summary: ReplaySummary, region: str) -> Any:
    return server.client("ec2", region, account_id=summary.account_id)


# --- 1. every committed EKS stack, replayed into moto --------------------------------------------------------


def test_every_eks_stack_is_checked() -> None:
    assert [p.name for p in EKS_STACKS] == ["Pulumi.eks-60.yaml", "Pulumi.eks-tutorial.yaml"]


@pytest.mark.parametrize("stack_file", EKS_STACKS, ids=lambda p: p.name)
def test_moto_accepts_every_aws_request_of_the_stack(
    stack_file: Path, moto_server: MotoServer, replayed: dict[Path, tuple[ReplaySummary, float]]
) -> None:
    clusters = eks_clusters(stack_config(stack_file))
    plan = planned(stack_file)

    summary, seconds = replay_of(stack_file, moto_server, replayed)  # a refusal raises AwsRefused

    print(f"{stack_file.name}: replayed in {seconds:.1f} s, {summary.requests} requests; {summary.line()}")
    planned_types = aws_types(plan)
    assert summary.created == Counter({t: n for t, n in planned_types.items() if t not in NOT_REPLAYED})
    assert summary.not_replayed == Counter({t: n for t, n in planned_types.items() if t in NOT_REPLAYED})
    assert {t: summary.reasons[t] for t in summary.not_replayed} == {t: NOT_REPLAYED[t] for t in summary.not_replayed}
    # From the stack file: what was made in moto, and that only what moto lacks was left out.
    groups = sum(len(c["nodeGroups"]) for c in clusters)
    admins = sum(len(c.get("adminPrincipals", [])) for c in clusters)
    zones = sum(len(c["availabilityZones"]) for c in clusters)
    assert (summary.created[VPC], summary.created[SUBNET]) == (len(clusters), 2 * zones)
    assert (summary.created[EKS_CLUSTER], summary.created[EKS_NODE_GROUP]) == (len(clusters), groups)
    assert summary.implied == Counter({"EKS cluster security group": len(clusters)})
    assert summary.not_replayed == Counter(
        {
            EKS_ADDON: len(clusters),  # the vpc-cni add-on
            ASG_ATTACHMENT: groups,  # each node group's instances behind the clustermesh NLB
            EKS_ACCESS_ENTRY: admins,
            EKS_ACCESS_POLICY_ASSOCIATION: admins,
        }
    )
    assert {r for r, n in summary.regions.items() if n} == {c["region"] for c in clusters}


# --- 2. the tutorial: one peering connection, routes in every table, rules for the other VPC only ------------


def _vpc_nodes(plan: CapturedPlan, clusters: list[dict[str, Any]]) -> dict[str, Node]:
    """Each cluster's VPC in the plan, found by the range its stack entry gives."""
    vpcs = {}
    for cluster in clusters:
        (vpcs[cluster["name"]],) = [n for n in of_type(plan, VPC) if n.inputs["cidrBlock"] == cluster["vpcCidr"]]
    return vpcs


def _cluster_group(plan: CapturedPlan, name: str) -> str:
    """The (fabricated) id of the security group EKS makes for cluster `name`, which its nodes use."""
    (cluster,) = [n for n in of_type(plan, EKS_CLUSTER) if n.inputs["name"] == name]
    group: str = (cluster.outputs or {})["vpcConfig"]["clusterSecurityGroupId"]
    return group


def test_the_tutorial_peers_its_two_vpcs_once() -> None:
    plan = planned(TUTORIAL)
    first, second = eks_clusters(stack_config(TUTORIAL))
    vpcs = _vpc_nodes(plan, [first, second])

    (peering,) = of_type(plan, PEERING)
    assert (peering.inputs["vpcId"], peering.inputs["peerVpcId"]) in {
        (vpcs[first["name"]].id, vpcs[second["name"]].id),
        (vpcs[second["name"]].id, vpcs[first["name"]].id),
    }
    assert of_type(plan, PEERING_ACCEPTER) == [], "one region: the requester accepts"
    assert of_type(plan, TRANSIT_GATEWAY) == []


def test_in_moto_the_tutorials_peering_is_active_and_every_route_table_routes_the_other_vpc_through_it(
    moto_server: MotoServer, replayed: dict[Path, tuple[ReplaySummary, float]]
) -> None:
    plan = planned(TUTORIAL)
    clusters = eks_clusters(stack_config(TUTORIAL))
    first, second = clusters
    summary, _ = replay_of(TUTORIAL, moto_server, replayed)
    region = first["region"]
    assert second["region"] == region
    client = ec2(moto_server, summary, region)
    vpcs = _vpc_nodes(plan, clusters)
    real_vpc = {name: summary.ids[node.urn] for name, node in vpcs.items()}

    (peering,) = of_type(plan, PEERING)
    peering_id = summary.ids[peering.urn]
    (connection,) = client.describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering_id])[
        "VpcPeeringConnections"
    ]
    assert connection["Status"]["Code"] == "active"
    ends = {
        (connection[side]["VpcId"], connection[side]["CidrBlock"]) for side in ("RequesterVpcInfo", "AccepterVpcInfo")
    }
    assert ends == {(real_vpc[c["name"]], c["vpcCidr"]) for c in clusters}

    for here, there in ((first, second), (second, first)):
        vpc_id = vpcs[here["name"]].id
        tables = [summary.ids[n.urn] for n in of_type(plan, ROUTE_TABLE) if n.inputs["vpcId"] == vpc_id]
        assert len(tables) == len(here["availabilityZones"]) + 1, "a public table and one private table per zone"
        described = client.describe_route_tables(RouteTableIds=tables)["RouteTables"]
        assert len(described) == len(tables)
        for table in described:
            assert table["VpcId"] == real_vpc[here["name"]]
            to_peer = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == there["vpcCidr"]]
            assert [r.get("VpcPeeringConnectionId") for r in to_peer] == [peering_id], table["RouteTableId"]
        # No subnet falls back on the VPC's main table (which routes nowhere but the VPC).
        subnets = client.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [real_vpc[here["name"]]]}])["Subnets"]
        assert len(subnets) == 2 * len(here["availabilityZones"])
        associated = {a["SubnetId"] for t in described for a in t["Associations"] if a.get("SubnetId")}
        assert associated == {s["SubnetId"] for s in subnets}


def test_each_tutorial_cluster_admits_the_other_vpc_and_else_only_its_own_nlb_health_checks(
    moto_server: MotoServer, replayed: dict[Path, tuple[ReplaySummary, float]]
) -> None:
    plan = planned(TUTORIAL)
    config = stack_config(TUTORIAL)
    first, second = eks_clusters(config)
    node_port = config["clustermesh:apiserverExposure"]["nodePort"]
    summary, _ = replay_of(TUTORIAL, moto_server, replayed)
    client = ec2(moto_server, summary, first["region"])
    rules = of_type(plan, INGRESS_RULE)

    for here, there in ((first, second), (second, first)):
        group = _cluster_group(plan, here["name"])
        (peer_rule,) = [r for r in rules if r.name == f"{here['name']}-from-{there['name']}"]
        assert (peer_rule.inputs["securityGroupId"], peer_rule.inputs["cidrIpv4"]) == (group, there["vpcCidr"])
        assert peer_rule.inputs["ipProtocol"] == ALL_TRAFFIC
        # In the plan, every ingress rule of the group: the other VPC on everything, its own on the NodePort.
        planned_rules = {
            (r.inputs["ipProtocol"], r.inputs.get("fromPort"), r.inputs.get("toPort"), r.inputs["cidrIpv4"])
            for r in rules
            if r.inputs["securityGroupId"] == group
        }
        expected = {
            (ALL_TRAFFIC, None, None, there["vpcCidr"]),
            ("tcp", node_port, node_port, here["vpcCidr"]),
        }
        assert planned_rules == expected
        # In moto, the group as replayed: the same CIDRs, besides EKS's own rule admitting its members.
        real_group = summary.real[group]
        described = client.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [real_group]}])
        ingress = [r for r in described["SecurityGroupRules"] if not r["IsEgress"]]
        by_cidr = {
            (r["IpProtocol"], r.get("FromPort"), r.get("ToPort"), r["CidrIpv4"]) for r in ingress if r.get("CidrIpv4")
        }
        assert by_cidr == {(ALL_TRAFFIC, -1, -1, there["vpcCidr"]), ("tcp", node_port, node_port, here["vpcCidr"])}
        others = [r for r in ingress if not r.get("CidrIpv4")]
        assert [r.get("ReferencedGroupInfo", {}).get("GroupId") for r in others] == [real_group]
        assert not any(r.get("CidrIpv6") or r.get("PrefixListId") for r in ingress)


# --- 3. the 60-cluster mesh: Transit Gateways, and an underlay that grows linearly ------------------------------


REGIONS = ("us-east-1", "us-west-2")
GENERATED = frozenset({"name", "id", "region", "vpcCidr", "availabilityZones"})
"""What Pulumi.eks-60.yaml's generator varies by cluster; everything else is the first cluster's."""


def generated_clusters(n: int, template: Mapping[str, Any]) -> list[dict[str, Any]]:
    """As Pulumi.eks-60.yaml was generated: cluster i (from 1) has VPC 10.i.0.0/16 (a /19 private and a /24 public
    subnet in each of two zones, the NLB on .10 of each private one); the first half in us-east-1, the rest in
    us-west-2."""
    shared = {k: copy.deepcopy(v) for k, v in template.items() if k not in GENERATED}
    clusters = []
    for i in range(1, n + 1):
        region = REGIONS[0] if i <= n // 2 else REGIONS[1]
        zones = [
            {
                "name": f"{region}{zone}",
                "privateSubnet": f"10.{i}.{32 * k}.0/19",
                "publicSubnet": f"10.{i}.{64 + k}.0/24",
                "apiserverAddress": f"10.{i}.{32 * k}.10",
            }
            for k, zone in enumerate("ab")
        ]
        entry = {"name": f"eks{i:02d}", "id": i, "region": region, "vpcCidr": f"10.{i}.0.0/16"}
        clusters.append({**shared, **entry, "availabilityZones": zones})
    return clusters


def generated_config(n: int, underlay_mode: str) -> dict[str, Any]:
    config = stack_config(MESH_60)
    template = config["clustermesh:clusters"][0]
    return config | {"clustermesh:clusters": generated_clusters(n, template), "clustermesh:awsUnderlay": underlay_mode}


def test_the_generator_reproduces_the_60_cluster_stack() -> None:
    config = stack_config(MESH_60)
    assert generated_clusters(60, config["clustermesh:clusters"][0]) == config["clustermesh:clusters"]
    assert config["clustermesh:awsUnderlay"] == "auto"


def test_the_60_cluster_mesh_is_on_two_peered_transit_gateways() -> None:
    plan = planned(MESH_60)
    clusters = eks_clusters(stack_config(MESH_60))
    assert len(clusters) == 60 and Counter(c["region"] for c in clusters) == Counter(dict.fromkeys(REGIONS, 30))
    types = aws_types(plan)

    assert types[TRANSIT_GATEWAY] == len(REGIONS)
    assert types[TGW_VPC_ATTACHMENT] == len(clusters)
    assert (types[TGW_PEERING], types[TGW_PEERING_ACCEPTER]) == (1, 1)
    assert (types[PEERING], types[PEERING_ACCEPTER]) == (0, 0)
    gateways = {n.id: n for n in of_type(plan, TRANSIT_GATEWAY)}
    vpc_by_id = {n.id: n.inputs["cidrBlock"] for n in of_type(plan, VPC)}
    attached = {vpc_by_id[n.inputs["vpcId"]] for n in of_type(plan, TGW_VPC_ATTACHMENT)}
    assert attached == {c["vpcCidr"] for c in clusters}, "every VPC attached once"
    (peering,) = of_type(plan, TGW_PEERING)
    assert {peering.inputs["transitGatewayId"], peering.inputs["peerTransitGatewayId"]} == set(gateways)


def test_in_moto_the_60_clusters_vpcs_are_attached_to_their_regions_gateway(
    moto_server: MotoServer, replayed: dict[Path, tuple[ReplaySummary, float]]
) -> None:
    """Read through DescribeTransitGatewayAttachments, filtered here: moto answers DescribeTransitGatewayVpcAttachments
    with the peering attachment too (without a VpcId), and lists attachments of every region in each."""
    clusters = eks_clusters(stack_config(MESH_60))
    summary, _ = replay_of(MESH_60, moto_server, replayed)
    gateways = {}
    for region in REGIONS:
        client = ec2(moto_server, summary, region)
        (gateway,) = client.describe_transit_gateways()["TransitGateways"]
        gateways[region] = gateway["TransitGatewayId"]
        vpcs = {v["VpcId"]: v["CidrBlock"] for v in client.describe_vpcs()["Vpcs"]}
        attached = [
            vpcs[a["ResourceId"]]
            for a in client.describe_transit_gateway_attachments()["TransitGatewayAttachments"]
            if a["TransitGatewayId"] == gateways[region] and a["ResourceType"] == "vpc"
        ]
        assert sorted(attached) == sorted(c["vpcCidr"] for c in clusters if c["region"] == region)

    listed = ec2(moto_server, summary, REGIONS[0]).describe_transit_gateway_peering_attachments()
    (peering,) = [p for p in listed["TransitGatewayPeeringAttachments"] if "RequesterTgwInfo" in p]
    assert peering["Status"]["Code"] == "active"
    ends = {
        (peering[side]["Region"], peering[side]["TransitGatewayId"]) for side in ("RequesterTgwInfo", "AccepterTgwInfo")
    }
    assert ends == set(gateways.items())


def _counts(plan: CapturedPlan) -> Counter[str]:
    return Counter(n.type for n in underlay(plan))


def test_the_transit_gateway_underlay_grows_linearly() -> None:
    """The same shape at 20, 40 and 60 clusters (the 60 being the committed stack, whose auto choice is the
    Transit Gateway): each 20 clusters more add the same underlay resources, type by type."""
    at = {n: _counts(plan_config(generated_config(n, "transit-gateway"))) for n in (20, 40)}
    at[60] = _counts(planned(MESH_60))
    assert at[60][TRANSIT_GATEWAY] == len(REGIONS), "the committed stack is on Transit Gateways"

    print({n: counts.total() for n, counts in at.items()})
    assert at[60].total() - at[40].total() == at[40].total() - at[20].total() > 0
    for kind in at[20].keys() | at[40].keys() | at[60].keys():
        assert at[60][kind] - at[40][kind] == at[40][kind] - at[20][kind], kind
    assert at[60][PEERING] == 0


def test_peering_forced_on_ten_clusters_takes_a_connection_per_pair() -> None:
    """Why auto switches: peering grows with the pairs, N(N-1)/2, each across regions with its accepter."""
    n = 10
    plan = plan_config(generated_config(n, "peering"))
    counts = _counts(plan)

    assert counts[PEERING] == n * (n - 1) // 2
    assert counts[PEERING_ACCEPTER] == (n // 2) ** 2, "one per pair across the two regions"
    assert counts[TRANSIT_GATEWAY] == 0


# --- 4. adding a cluster to the tutorial ------------------------------------------------------------------------

NEW_VPC = "10.249.0.0/18"
CLUSTER3_ZONES = [
    {
        "name": "us-east-1a",
        "privateSubnet": "10.249.0.0/20",
        "publicSubnet": "10.249.32.0/24",
        "apiserverAddress": "10.249.0.10",
    },
    {
        "name": "us-east-1b",
        "privateSubnet": "10.249.16.0/20",
        "publicSubnet": "10.249.33.0/24",
        "apiserverAddress": "10.249.16.10",
    },
]
CLUSTER3_ENTRY = {
    "name": "cluster3",
    "id": 3,
    "region": "us-east-1",
    "vpcCidr": NEW_VPC,
    "serviceCidr": "10.101.0.0/16",
    "availabilityZones": CLUSTER3_ZONES,
}
"""The new cluster's own settings; the rest (version, node groups, API access, admins) as cluster1's."""
SNAT_EXCLUSIONS = "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"


def _plan_json(plan: CapturedPlan, out: Path) -> dict[str, dict[str, Any]]:
    """plan.json as `clustermesh plan --reveal-secrets` writes it, by URN."""
    write_plan(plan, out, reveal_secrets=True)
    document = json.loads((out / "plan.json").read_text())
    return {resource["urn"]: resource for resource in document["resources"]}


def _users(resource: dict[str, Any]) -> set[str]:
    (document,) = resource["inputs"]["data"].values()
    return {user["name"] for user in yaml.safe_load(document)["users"]}


def _snat_exclusions(resource: dict[str, Any]) -> list[str]:
    env = json.loads(resource["inputs"]["configurationValues"])["env"]
    return [str(ip_network(c)) for c in env[SNAT_EXCLUSIONS].split(",")]


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    config = stack_config(TUTORIAL)
    bigger = copy.deepcopy(config)
    bigger["clustermesh:clusters"].append({**copy.deepcopy(config["clustermesh:clusters"][0]), **CLUSTER3_ENTRY})
    root = tmp_path_factory.mktemp("eks-grow")
    return _plan_json(planned(TUTORIAL), root / "two"), _plan_json(plan_config(bigger), root / "three")


def _involves_cluster3(name: str) -> bool:
    """`cluster3-...`, or a mesh resource between it and another (`a-cluster3-peering`, `a-to-cluster3-0`)."""
    return "cluster3" in name.split("-")


def test_adding_an_eks_cluster_adds_only_its_resources_and_the_underlay_towards_it(
    grown: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    before, after = grown
    clusters = eks_clusters(stack_config(TUTORIAL))
    existing = [c["name"] for c in clusters]

    assert before.keys() <= after.keys(), "a resource of the two-cluster mesh is gone"
    added = [after[u] for u in after.keys() - before.keys()]
    (mesh,) = [r for r in after.values() if r["type"] == MESH]
    mesh_added = [r for r in added if r["parent"] == mesh["urn"] and r["type"].startswith(UNDERLAY_TYPES)]
    assert all(_involves_cluster3(r["name"]) for r in mesh_added), "underlay between the existing clusters changed"
    for resource in added:
        if resource not in mesh_added:  # its own resources, the Mesh's certificates for it among them
            assert resource["name"] == "cluster3" or resource["name"].startswith("cluster3-"), resource["name"]
    # From the stack files: a peering per existing cluster, routes in every table of both VPCs, a rule each way.
    tables = {c["name"]: len(c["availabilityZones"]) + 1 for c in clusters}
    new_tables = len(CLUSTER3_ZONES) + 1
    assert Counter(r["type"] for r in mesh_added) == Counter(
        {
            PEERING: len(existing),
            ROUTE: sum(tables[c] + new_tables for c in existing),
            INGRESS_RULE: 2 * len(existing),
        }
    )
    assert sorted(r["name"] for r in mesh_added if r["type"] == INGRESS_RULE) == sorted(
        [f"{c}-from-cluster3" for c in existing] + [f"cluster3-from-{c}" for c in existing]
    )


def test_adding_an_eks_cluster_changes_the_others_mesh_entries_and_snat_exclusions_only(
    grown: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    before, after = grown
    clusters = eks_clusters(stack_config(TUTORIAL))
    existing = [c["name"] for c in clusters]
    changed = {u: after[u] for u in before.keys() & after.keys() if before[u]["inputs"] != after[u]["inputs"]}

    assert sorted(r["name"] for r in changed.values()) == sorted(
        [f"{c}-{s}" for c in existing for s in CLUSTERMESH_SECRETS]
        + [f"{c}-{REMOTE_USERS}" for c in existing]
        + [f"{c}-vpc-cni" for c in existing]
    )
    for urn, resource in changed.items():
        old, new = before[urn]["inputs"], resource["inputs"]
        if resource["type"] == EKS_ADDON:
            # The add-on lists every other VPC: it gains the new one, and nothing else of it changes.
            (cluster,) = [c for c in clusters if resource["name"] == f"{c['name']}-vpc-cni"]
            others = [str(ip_network(c["vpcCidr"])) for c in clusters if c is not cluster]
            assert sorted(_snat_exclusions(before[urn])) == sorted(others)
            assert sorted(_snat_exclusions(resource)) == sorted([*others, NEW_VPC])
            assert {k: v for k, v in new.items() if k != "configurationValues"} == {
                k: v for k, v in old.items() if k != "configurationValues"
            }
        elif new.get("metadata", {}).get("name") == REMOTE_USERS:
            assert _users(resource) - _users(before[urn]) == {"remote-cluster3"}, "one user granted"
            assert _users(before[urn]) <= _users(resource), "no user revoked"
        else:
            assert {k: v for k, v in new.items() if k != "data"} == {k: v for k, v in old.items() if k != "data"}
            assert set(new["data"]) - set(old["data"]) == {"cluster3"}, "one entry added"
            assert {k: new["data"][k] for k in old["data"]} == old["data"], "existing entries untouched"
