"""The tutorial stacks on OpenStack, planned offline: every resource the issue names, wired as the config says,
and adding a cluster to the tutorial-000 stack adds only that cluster's resources, the rules that admit it in
the others' security groups, and one entry in each clustermesh Secret and remote-users ConfigMap.

Expected values come from the committed stack files (their addresses, ranges, versions), never from a plan.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from ipaddress import ip_address, ip_network, summarize_address_range
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from clustermesh.planner.graph import Node, Secret, reveal
from clustermesh.planner.report import write_plan
from clustermesh.planner.runner import CapturedPlan
from clustermesh.planner.stackfile import load_stack
from tests.conftest import DATA, PROJECT_DIR, plan_raw
from tests.test_incremental import CLUSTERMESH_SECRETS, REMOTE_USERS

RKE2_STACK = PROJECT_DIR / "Pulumi.openstack-rke2.yaml"
K3S_STACK = PROJECT_DIR / "Pulumi.openstack-k3s.yaml"
KUBEADM_STACK = PROJECT_DIR / "Pulumi.openstack-kubeadm.yaml"
CALICO_MESH_STACK = PROJECT_DIR / "Pulumi.openstack-calico-mesh.yaml"
ALL_STACKS = [RKE2_STACK, K3S_STACK, KUBEADM_STACK, CALICO_MESH_STACK]

CLUSTER3 = {
    "name": "cluster3",
    "id": 3,
    "kind": "openstack",
    "podCidrs": ["10.46.0.0/16"],
    "serviceCidr": "10.47.0.0/16",
    "routing": {"mode": "tunnel", "tunnelProtocol": "vxlan"},
    "openstack": {"cloud": "openstack"},
    "network": {
        "existing": {
            "network": "vlan197_net",
            "subnet": "vlan197_subnet",
            "cidr": "10.195.197.0/24",
            "dhcpPools": ["10.195.197.2-10.195.197.150"],
        }
    },
    "image": "ubuntu-24.04",
    "flavor": "m1.medium",
    "nodePools": [{"name": "node", "role": "server", "count": 3, "addresses": "10.195.197.176-10.195.197.183"}],
    "distro": {"name": "rke2", "version": "v1.36.3+rke2r1"},
    "adminRanges": ["10.195.197.0/24"],
    "apiserverLoadBalancer": {
        "metallb": {"addresses": ["10.195.197.216-10.195.197.223"], "apiserverAddress": "10.195.197.216"}
    },
}


def stack_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())["config"]
    return config


def plan_config(config: dict[str, Any], *, preview: bool = False) -> CapturedPlan:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return plan_raw(raw, preview=preview)


def of_type(plan: CapturedPlan, token: str) -> list[Node]:
    return [n for n in plan.nodes if n.type == token]


def inputs(node: Node) -> Any:
    return reveal(node.inputs, secrets=True)


@pytest.fixture(scope="module")
def rke2_plan() -> CapturedPlan:
    return plan_config(stack_config(RKE2_STACK))


@pytest.fixture(scope="module")
def k3s_plan() -> CapturedPlan:
    return plan_config(stack_config(K3S_STACK))


def test_committed_stacks_load_through_the_planner() -> None:
    for path in (RKE2_STACK, K3S_STACK):
        settings = load_stack(PROJECT_DIR, config_file=path)
        assert settings.config


def test_every_node_has_a_port_with_its_fixed_ip_and_a_vm_booting_from_a_volume(rke2_plan: CapturedPlan) -> None:
    config = stack_config(RKE2_STACK)
    expected: dict[str, str] = {}
    for cluster in config["clustermesh:clusters"]:
        pool = cluster["nodePools"][0]
        first = ip_address(pool["addresses"].split("-")[0])
        for i in range(pool["count"]):
            expected[f"{cluster['name']}-{pool['name']}-{i}"] = str(first + i)
    ports = {inputs(p)["name"]: inputs(p) for p in of_type(rke2_plan, "openstack:networking/port:Port")}
    for node, address in expected.items():
        port = ports[node]
        assert [f["ipAddress"] for f in port["fixedIps"]] == [address]
        assert port["portSecurityEnabled"] is True
        assert port["securityGroupIds"]
    instances = {inputs(n)["name"]: (n, inputs(n)) for n in of_type(rke2_plan, "openstack:compute/instance:Instance")}
    assert sorted(instances) == sorted(expected)
    for node, (resource, args) in instances.items():
        (device,) = args["blockDevices"]
        assert (device["sourceType"], device["destinationType"], device["bootIndex"]) == ("image", "volume", 0)
        assert args["userData"].startswith("#cloud-config")
        assert args["flavorName"] == "m1.medium"
        assert "userData" in resource.options.get("ignoreChanges", []), node


def test_node_ports_carry_their_clusters_metallb_pool_and_a_port_reserves_the_pinned_address(
    rke2_plan: CapturedPlan,
) -> None:
    config = stack_config(RKE2_STACK)
    ports = {inputs(p)["name"]: inputs(p) for p in of_type(rke2_plan, "openstack:networking/port:Port")}
    for cluster in config["clustermesh:clusters"]:
        metallb = cluster["apiserverLoadBalancer"]["metallb"]
        first, last = (ip_address(a) for a in metallb["addresses"][0].split("-"))
        pool = {str(c) for c in summarize_address_range(first, last)}
        node_ports = [p for name, p in ports.items() if name.startswith(f"{cluster['name']}-node-")]
        assert len(node_ports) == cluster["nodePools"][0]["count"]
        # The pinned address also on its own: ML2/OVN makes the reserving port virtual only on an exact match.
        pinned = f"{metallb['apiserverAddress']}/32"
        for port in node_ports:
            assert {pair["ipAddress"] for pair in port["allowedAddressPairs"]} == {*pool, pinned}
        reserving = [
            p for p in ports.values() if [f["ipAddress"] for f in p["fixedIps"]] == [metallb["apiserverAddress"]]
        ]
        assert len(reserving) == 1 and reserving[0]["name"] == f"{cluster['name']}-clustermesh-apiserver"


def test_no_security_group_rule_admits_the_world(rke2_plan: CapturedPlan, k3s_plan: CapturedPlan) -> None:
    for plan in (rke2_plan, k3s_plan):
        rules = [inputs(r) for r in of_type(plan, "openstack:networking/secGroupRule:SecGroupRule")]
        assert rules
        for rule in rules:
            assert rule["direction"] == "ingress"
            prefix = rule.get("remoteIpPrefix")
            assert prefix or rule.get("remoteGroupId"), rule
            if prefix:
                assert ip_network(prefix).prefixlen > 0, rule


def test_metallb_answers_for_the_pinned_address(rke2_plan: CapturedPlan) -> None:
    config = stack_config(RKE2_STACK)
    releases = {inputs(r)["chart"]: inputs(r) for r in of_type(rke2_plan, "kubernetes:helm.sh/v3:Release")}
    assert releases["metallb"]["version"] == "0.16.1"
    pools = [inputs(r) for r in of_type(rke2_plan, "kubernetes:metallb.io/v1beta1:IPAddressPool")]
    assert sorted(p["spec"]["addresses"][0] for p in pools) == sorted(
        c["apiserverLoadBalancer"]["metallb"]["addresses"][0] for c in config["clustermesh:clusters"]
    )
    assert len(of_type(rke2_plan, "kubernetes:metallb.io/v1beta1:L2Advertisement")) == 2
    cilium = [inputs(r) for r in of_type(rke2_plan, "kubernetes:helm.sh/v3:Release") if inputs(r)["chart"] == "cilium"]
    pinned = sorted(
        r["values"]["clustermesh"]["apiserver"]["service"]["annotations"]["metallb.io/loadBalancerIPs"] for r in cilium
    )
    assert pinned == sorted(
        c["apiserverLoadBalancer"]["metallb"]["apiserverAddress"] for c in config["clustermesh:clusters"]
    )


def test_octavia_fronts_every_nodes_nodeport_on_the_pinned_vip(k3s_plan: CapturedPlan) -> None:
    config = stack_config(K3S_STACK)
    balancers = sorted(
        inputs(b)["vipAddress"] for b in of_type(k3s_plan, "openstack:loadbalancer/loadBalancer:LoadBalancer")
    )
    assert balancers == sorted(
        c["apiserverLoadBalancer"]["octavia"]["vipAddress"] for c in config["clustermesh:clusters"]
    )
    listeners = [inputs(b) for b in of_type(k3s_plan, "openstack:loadbalancer/listener:Listener")]
    assert {(listener["protocol"], listener["protocolPort"]) for listener in listeners} == {("TCP", 2379)}
    members = sorted(
        (inputs(m)["address"], inputs(m)["protocolPort"])
        for m in of_type(k3s_plan, "openstack:loadbalancer/member:Member")
    )
    node_port = config["clustermesh:apiserverExposure"]["nodePort"]
    assert members == sorted(
        (c["nodePools"][0]["addresses"].split("-")[0], node_port) for c in config["clustermesh:clusters"]
    )
    monitors = [inputs(m) for m in of_type(k3s_plan, "openstack:loadbalancer/monitor:Monitor")]
    assert len(monitors) == 3 and {m["type"] for m in monitors} == {"TCP"}


def test_kubernetes_goes_on_over_ssh_with_secrets_only_on_stdin(
    rke2_plan: CapturedPlan, k3s_plan: CapturedPlan
) -> None:
    for plan, distro in ((rke2_plan, "rke2"), (k3s_plan, "k3s")):
        commands = of_type(plan, "command:remote:Command")
        instances = of_type(plan, "openstack:compute/instance:Instance")
        assert len(commands) == len(instances)
        for command in commands:
            args = command.inputs
            assert reveal(args["logging"], secrets=True) == "none"
            assert f"get.{distro}" in reveal(args["create"], secrets=True)
            assert "PRIVATE KEY" not in reveal(args["create"], secrets=True)
            assert isinstance(args["stdin"], Secret), "the join token and CA keys travel on stdin, as a secret"
            assert "pulumi:providers:command::" in command.provider
            # The engine keeps what a run prints secret (additional_secret_outputs), as the planner does.
            assert command.outputs is not None and isinstance(command.outputs["stdout"], Secret)


def test_the_peers_addresses_are_complete_at_preview() -> None:
    plan = plan_config(stack_config(RKE2_STACK), preview=True)
    secrets = [
        n for n in of_type(plan, "kubernetes:core/v1:Secret") if inputs(n)["metadata"]["name"] == "cilium-clustermesh"
    ]
    assert len(secrets) == 2
    for secret in secrets:
        assert "[unknown]" not in json.dumps(inputs(secret)["data"])
    releases = of_type(plan, "kubernetes:helm.sh/v3:Release")
    assert {inputs(r)["chart"] for r in releases} == {"cilium", "metallb"}


def _plan_json(config: dict[str, Any], out: Path) -> dict[str, dict[str, Any]]:
    write_plan(plan_config(config), out, reveal_secrets=True)
    document = json.loads((out / "plan.json").read_text())
    return {resource["urn"]: resource for resource in document["resources"]}


def test_adding_a_cluster_adds_its_resources_its_rules_and_one_mesh_entry_per_peer(tmp_path: Path) -> None:
    config = stack_config(RKE2_STACK)
    grown = copy.deepcopy(config)
    grown["clustermesh:clusters"].append(CLUSTER3)
    before = _plan_json(config, tmp_path / "two")
    after = _plan_json(grown, tmp_path / "three")

    assert before.keys() <= after.keys(), "a resource of the two-cluster mesh is gone"
    changed = sorted(after[u]["name"] for u in before if before[u]["inputs"] != after[u]["inputs"])
    assert changed == sorted(
        [f"{c}-{s}" for c in ("cluster1", "cluster2") for s in CLUSTERMESH_SECRETS]
        + [f"{c}-{REMOTE_USERS}" for c in ("cluster1", "cluster2")]
    )
    added = [after[u] for u in after.keys() - before.keys()]
    cluster3_rules = 0
    for resource in added:
        name = resource["name"]
        if name.startswith(("cluster1-from-cluster3-", "cluster2-from-cluster3-")):
            assert resource["type"] == "openstack:networking/secGroupRule:SecGroupRule"
            cluster3_rules += 1
        else:
            assert name == "cluster3" or name.startswith("cluster3-"), name
    assert cluster3_rules > 0
    # The new cluster's own group admits the two others.
    assert any(r["name"].startswith("cluster3-from-cluster1-") for r in added)
    assert any(r["name"].startswith("cluster3-from-cluster2-") for r in added)


# --- what the plan sends, judged by what consumes it --------------------------------------------------------

CLOUD_INIT_SCHEMA = json.loads((DATA / "cloud-init-26.2" / "schema-cloud-config-v1.json").read_text())
METALLB = DATA / "metallb-0.16.1"


@pytest.mark.parametrize("stack_file", ALL_STACKS, ids=lambda p: p.name)
def test_every_planned_user_data_is_cloud_config_cloud_init_accepts(stack_file: Path) -> None:
    plan = plan_config(stack_config(stack_file))
    documents = {inputs(n)["userData"] for n in of_type(plan, "openstack:compute/instance:Instance")}
    assert len(documents) == 1, "every node of these stacks gets the same user data"
    for document in documents:
        assert document.startswith("#cloud-config\n")
        jsonschema.Draft4Validator(CLOUD_INIT_SCHEMA).validate(yaml.safe_load(document))


@pytest.mark.parametrize("stack_file", ALL_STACKS, ids=lambda p: p.name)
def test_every_planned_ssh_script_passes_shellcheck_and_bash(stack_file: Path, tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is not installed: run scripts/system_packages.sh"
    plan = plan_config(stack_config(stack_file))
    scripts = {inputs(n)[field] for n in of_type(plan, "command:remote:Command") for field in ("create", "delete")}
    assert len(scripts) >= 2
    for i, script in enumerate(sorted(scripts)):
        path = tmp_path / f"script-{i}.sh"
        path.write_text(script)
        checked = subprocess.run([shellcheck, "-s", "bash", str(path)], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout
        parsed = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
        assert parsed.returncode == 0, parsed.stderr


def test_planned_metallb_values_pass_the_charts_schema(rke2_plan: CapturedPlan) -> None:
    schema = json.loads((METALLB / "values.schema.json").read_text())
    defaults = yaml.safe_load((METALLB / "values.yaml").read_text())
    releases = [
        inputs(r) for r in of_type(rke2_plan, "kubernetes:helm.sh/v3:Release") if inputs(r)["chart"] == "metallb"
    ]
    assert len(releases) == 2
    for release in releases:
        jsonschema.Draft7Validator(schema).validate(_merged(defaults, release["values"]))


def _merged(base: Any, override: Any) -> Any:
    """Values as Helm merges them: the user's over the chart's, mapping by mapping."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in override.items()}}
    return override


# --- what a change of the stack file changes ----------------------------------------------------------------


def _diff(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
) -> tuple[list[str], list[str], list[str]]:
    """Names of the resources added, changed and removed between two plan.json files."""
    added = sorted(after[u]["name"] for u in after.keys() - before.keys())
    removed = sorted(before[u]["name"] for u in before.keys() - after.keys())
    changed = sorted(
        after[u]["name"] for u in before.keys() & after.keys() if before[u]["inputs"] != after[u]["inputs"]
    )
    return added, changed, removed


def test_planning_the_same_stack_twice_changes_nothing(tmp_path: Path) -> None:
    config = stack_config(RKE2_STACK)
    assert _diff(_plan_json(config, tmp_path / "a"), _plan_json(config, tmp_path / "b")) == ([], [], [])


def test_adding_a_node_to_a_pool_touches_no_other_node(tmp_path: Path) -> None:
    config = stack_config(RKE2_STACK)
    grown = copy.deepcopy(config)
    grown["clustermesh:clusters"][0]["nodePools"][0]["count"] += 1
    added, changed, removed = _diff(_plan_json(config, tmp_path / "a"), _plan_json(grown, tmp_path / "b"))
    new = f"cluster1-node-{config['clustermesh:clusters'][0]['nodePools'][0]['count']}"
    assert added == sorted([new, f"{new}-port", f"{new}-rke2"])
    assert (changed, removed) == ([], [])


def test_adding_an_agent_pool_adds_its_nodes_and_the_rules_that_admit_them(tmp_path: Path) -> None:
    config = stack_config(RKE2_STACK)
    grown = copy.deepcopy(config)
    grown["clustermesh:clusters"][0]["nodePools"].append(
        {"name": "agent", "role": "agent", "count": 2, "addresses": "10.195.197.176-10.195.197.183"}
    )
    added, changed, removed = _diff(_plan_json(config, tmp_path / "a"), _plan_json(grown, tmp_path / "b"))
    assert (changed, removed) == ([], [])
    nodes = ["cluster1-agent-0", "cluster1-agent-1"]
    assert [a for a in added if a.startswith("cluster1-")] == sorted(
        ["cluster1-agent", *nodes, *(f"{n}-port" for n in nodes), *(f"{n}-rke2" for n in nodes)]
    )
    # cluster2 admits the new range (one CIDR, 10.195.197.176/29) on each port it opens to a peer.
    peer_rules = [a for a in added if not a.startswith("cluster1-")]
    assert peer_rules and all(a.startswith("cluster2-from-cluster1-") and "10.195.197.176-29" in a for a in peer_rules)


def test_ssh_goes_through_the_bastion_to_the_fixed_address() -> None:
    config = stack_config(K3S_STACK)
    bastion = {"host": "203.0.113.7", "user": "jump", "port": 2222}
    for cluster in config["clustermesh:clusters"]:
        cluster["ssh"] = {"user": "ubuntu", "bastion": bastion}
    plan = plan_config(config)
    commands = of_type(plan, "command:remote:Command")
    assert len(commands) == 3
    for command in commands:
        connection = inputs(command)["connection"]
        assert connection["proxy"]["host"] == bastion["host"]
        assert (connection["proxy"]["user"], connection["proxy"]["port"]) == (bastion["user"], bastion["port"])
        assert connection["proxy"]["privateKey"] == connection["privateKey"]
        # Behind the bastion the node answers on its fixed address, floating IP or not.
        assert connection["host"].startswith("172.17.11."), connection["host"]
        assert connection["user"] == "ubuntu"


def test_a_configured_ssh_key_is_used_and_stays_secret() -> None:
    config = stack_config(RKE2_STACK)
    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example"
    private = "-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in\n-----END OPENSSH PRIVATE KEY-----\n"
    config["clustermesh:clusters"][0]["ssh"] = {"user": "ubuntu", "privateKeySecret": "sshKey", "publicKey": public}
    config["clustermesh:sshKey"] = private
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    plan = plan_raw(raw, frozenset({"clustermesh:sshKey"}))
    keypairs = {inputs(k)["name"]: inputs(k) for k in of_type(plan, "openstack:compute/keypair:Keypair")}
    assert keypairs["clustermesh-cluster1"]["publicKey"] == public
    for command in of_type(plan, "command:remote:Command"):
        if command.name.startswith("cluster1-"):
            assert isinstance(command.inputs["connection"], Secret)
            assert inputs(command)["connection"]["privateKey"] == private
    # cluster2 keeps a generated key: no tls key is made for cluster1's SSH.
    ssh_keys = [n.name for n in of_type(plan, "tls:index/privateKey:PrivateKey") if n.name.endswith("-ssh")]
    assert ssh_keys == ["cluster2-ssh"]


def test_the_plan_writes_what_each_machine_gets_for_review(tmp_path: Path) -> None:
    plan = plan_config(stack_config(RKE2_STACK))
    write_plan(plan, tmp_path / "plan", reveal_secrets=False)
    for cluster in ("cluster1", "cluster2"):
        here = tmp_path / "plan" / "clusters" / cluster
        commands = [n for n in of_type(plan, "command:remote:Command") if n.name.startswith(f"{cluster}-")]
        assert sorted(p.name for p in (here / "ssh").iterdir()) == sorted(f"{c.name}.sh" for c in commands)
        for command in commands:
            assert (here / "ssh" / f"{command.name}.sh").read_text() == inputs(command)["create"]
        (instance, *_) = [n for n in of_type(plan, "openstack:compute/instance:Instance") if n.name.startswith(cluster)]
        assert (here / "user-data.yaml").read_text() == inputs(instance)["userData"]
        network = yaml.safe_load((here / "openstack.yaml").read_text())
        rules = [n.name for n in of_type(plan, "openstack:networking/secGroupRule:SecGroupRule")]
        assert sorted(r["name"] for r in network["securityGroupRules"]) == sorted(
            r for r in rules if r.startswith(f"{cluster}-")
        )
        assert {p["name"] for p in network["ports"]} >= {f"{cluster}-node-0-port"}
        for path in here.rglob("*"):
            assert path.is_dir() or "PRIVATE KEY" not in path.read_text(), path


def test_the_written_cilium_values_are_ciliums_not_metallbs(tmp_path: Path) -> None:
    write_plan(plan_config(stack_config(RKE2_STACK)), tmp_path / "plan", reveal_secrets=False)
    for cluster in ("cluster1", "cluster2"):
        (values,) = yaml.safe_load_all((tmp_path / "plan" / "clusters" / cluster / "cilium-values.yaml").read_text())
        assert values["cluster"]["name"] == cluster
        assert "frrk8s" not in values


def test_the_kubeconfig_names_the_api_on_its_pinned_floating_ip_and_waits_for_the_servers(
    k3s_plan: CapturedPlan,
) -> None:
    config = stack_config(K3S_STACK)
    kubeconfigs = k3s_plan.outputs["kubeconfigs"]
    for cluster in config["clustermesh:clusters"]:
        kubeconfig = kubeconfigs[cluster["name"]]
        assert isinstance(kubeconfig, Secret)
        (entry,) = yaml.safe_load(kubeconfig.value)["clusters"]
        assert entry["cluster"]["server"] == f"https://{cluster['floatingIps']['apiAddress']}:6443"
        (provider,) = [
            n for n in k3s_plan.nodes if n.type == "pulumi:providers:kubernetes" and n.name == f"{cluster['name']}-k8s"
        ]
        installs = {n.urn for n in of_type(k3s_plan, "command:remote:Command") if n.name.startswith(cluster["name"])}
        assert installs and installs <= set(provider.dependencies), "the provider would check a cluster not yet up"


def test_servers_install_first_then_agents_once_every_server_runs(tmp_path: Path) -> None:
    config = stack_config(RKE2_STACK)
    config["clustermesh:clusters"][0]["nodePools"].append(
        {"name": "agent", "role": "agent", "count": 2, "addresses": "10.195.197.176-10.195.197.183"}
    )
    plan = plan_config(config)
    commands = {n.name: n for n in of_type(plan, "command:remote:Command") if n.name.startswith("cluster1-")}
    servers = {commands[f"cluster1-node-{i}-rke2"].urn for i in range(3)}
    first = commands["cluster1-node-0-rke2"]
    assert not servers & set(first.dependencies)
    for i in (1, 2):
        assert first.urn in commands[f"cluster1-node-{i}-rke2"].dependencies
    for i in (0, 1):
        assert servers <= set(commands[f"cluster1-agent-{i}-rke2"].dependencies)


# --- Calico-chained clusters --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calico_plan() -> CapturedPlan:
    return plan_config(stack_config(CALICO_MESH_STACK))


def test_each_calico_clusters_nodes_peer_with_every_node_of_the_other(calico_plan: CapturedPlan) -> None:
    """BGP node to node across the mesh: each learns the other cluster's blocks with their owners as next hops."""
    config = stack_config(CALICO_MESH_STACK)
    nodes: dict[str, set[str]] = {}
    for cluster in config["clustermesh:clusters"]:
        addresses = set()
        for pool in cluster["nodePools"]:
            first = ip_address(pool["addresses"].split("-")[0])
            addresses |= {str(first + i) for i in range(pool["count"])}
        nodes[cluster["name"]] = addresses
    peers: dict[str, set[str]] = {name: set() for name in nodes}
    for peer in of_type(calico_plan, "kubernetes:crd.projectcalico.org/v1:BGPPeer"):
        spec = inputs(peer)["spec"]
        assert spec["asNumber"] == 64512  # Calico's default AS on both sides: one iBGP full mesh
        peers[peer.name.split("-")[0]].add(spec["peerIP"])
    assert peers == {"hyp": nodes["apps"], "apps": nodes["hyp"]}
    # No router hairpin: the path is node to node both ways, as Neutron's per-port conntrack needs.
    assert of_type(calico_plan, "openstack:networking/routerRoute:RouterRoute") == []


def test_calico_node_ports_carry_the_mesh_pod_ranges(calico_plan: CapturedPlan) -> None:
    ranges = set(stack_config(CALICO_MESH_STACK)["clustermesh:nativeRoutingCidrs"])
    ports = [inputs(p) for p in of_type(calico_plan, "openstack:networking/port:Port")]
    assert ports
    for port in ports:
        assert {pair["ipAddress"] for pair in port["allowedAddressPairs"]} == ranges


def test_each_calico_cluster_excludes_its_peers_pod_ranges(calico_plan: CapturedPlan) -> None:
    config = stack_config(CALICO_MESH_STACK)
    pools = [n for n in of_type(calico_plan, "kubernetes:crd.projectcalico.org/v1:IPPool")]
    seen = set()
    for pool in pools:
        spec = inputs(pool)["spec"]
        assert spec["disabled"] is True and spec["natOutgoing"] is False
        seen.add((pool.name.split("-")[0], spec["cidr"]))
    names = [c["name"] for c in config["clustermesh:clusters"]]
    expected = {(c, p["podCidrs"][0]) for c in names for p in config["clustermesh:clusters"] if p["name"] != c}
    assert seen == expected


def test_cilium_chains_on_calico_only_once_calico_is_ready(calico_plan: CapturedPlan) -> None:
    installations = {n.urn: n for n in of_type(calico_plan, "kubernetes:operator.tigera.io/v1:Installation")}
    assert len(installations) == 2
    for installation in installations.values():
        assert inputs(installation)["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    cilium = [r for r in of_type(calico_plan, "kubernetes:helm.sh/v3:Release") if inputs(r)["chart"] == "cilium"]
    for release in cilium:
        assert set(release.dependencies) & installations.keys()
        values = inputs(release)["values"]
        assert values["cni"]["chainingMode"] == "generic-veth" and values["routingMode"] == "native"


@pytest.mark.parametrize("stack_file", [KUBEADM_STACK, CALICO_MESH_STACK], ids=lambda p: p.name)
def test_every_planned_calico_object_passes_calicos_crds(stack_file: Path) -> None:
    plan = plan_config(stack_config(stack_file))
    crds = {
        "Installation": DATA / "calico-3.32.1" / "operator.tigera.io_installations.yaml",
        "IPPool": DATA / "calico-3.32.1" / "crd.projectcalico.org_ippools.yaml",
        "BGPPeer": DATA / "calico-3.32.1" / "crd.projectcalico.org_bgppeers.yaml",
    }
    checked = 0
    for node in plan.nodes:
        if node.type not in (
            "kubernetes:operator.tigera.io/v1:Installation",
            "kubernetes:crd.projectcalico.org/v1:IPPool",
        ):
            continue
        manifest = inputs(node)
        kind = node.type.rsplit(":", 1)[1]
        crd = yaml.load(crds[kind].read_text(), Loader=yaml.CSafeLoader)
        (version,) = crd["spec"]["versions"]
        jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"]).validate(
            {
                "apiVersion": manifest["apiVersion"],
                "kind": manifest["kind"],
                "metadata": manifest["metadata"],
                "spec": manifest["spec"],
            }
        )
        checked += 1
    assert checked >= 1


def test_cluster_dns_restarts_once_after_cilium_chains_on_calico(calico_plan: CapturedPlan) -> None:
    """Pods running before Cilium stay outside it until restarted (Cilium's Calico chaining guide)."""
    patches = of_type(calico_plan, "kubernetes:apps/v1:DeploymentPatch")
    releases = {r.urn for r in of_type(calico_plan, "kubernetes:helm.sh/v3:Release") if inputs(r)["chart"] == "cilium"}
    assert len(patches) == 2  # one per cluster
    for patch in patches:
        args = inputs(patch)
        assert (args["metadata"]["name"], args["metadata"]["namespace"]) == ("coredns", "kube-system")
        annotations = args["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {"kubectl.kubernetes.io/restartedAt": "after-cilium-chaining"}
        assert set(patch.dependencies) & releases


def test_a_clusters_own_patch_is_not_written_as_the_mesh_address_patch(tmp_path: Path) -> None:
    write_plan(plan_config(stack_config(CALICO_MESH_STACK)), tmp_path / "plan", reveal_secrets=False)
    assert not (tmp_path / "plan" / "clusters" / "hyp" / "address-patch.yaml").exists()
