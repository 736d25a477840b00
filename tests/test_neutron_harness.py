"""The Neutron harness accepts valid networking and really checks it: what Neutron refuses, a test sees refused.

Plans here are synthetic (nodes as the planner records them, with fabricated ids), so that the harness is proven
before the program builds OpenStack clusters. One `neutron-server` serves the whole session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from clustermesh.planner.graph import Node, Secret
from clustermesh.planner.runner import CapturedPlan, run_program
from clustermesh.planner.stackfile import StackSettings
from tests.neutron import (
    FLOATING_IP,
    FLOATING_IP_ASSOCIATE,
    GET_NETWORK,
    GET_SUBNET,
    NETWORK,
    PORT,
    PROJECT_DIR,
    ROUTER,
    ROUTER_INTERFACE,
    SEC_GROUP,
    SEC_GROUP_RULE,
    SUBNET,
    ApplySummary,
    HarnessError,
    Invoke,
    NeutronClient,
    NeutronNotInstalled,
    NeutronRefused,
    NeutronServer,
    apply_captured,
    apply_plan,
)

INSTANCE = "openstack:compute/instance:Instance"
SCRIPT = PROJECT_DIR / "scripts" / "system_packages.sh"
PUBLIC_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "getNetwork/public"))
PUBLIC = Invoke(
    GET_NETWORK, {"name": "public", "external": True}, {"id": PUBLIC_ID, "name": "public", "external": True}
)


@dataclass
class Plan:
    """Nodes as the planner records them: fabricated UUIDs for ids, each input that holds another resource's id
    depending on it."""

    stack: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    nodes: list[Node] = field(default_factory=list)

    def add(
        self, type_: str, name: str, inputs: dict[str, Any], *, depends_on: Sequence[Node] = (), **outputs: Any
    ) -> Node:
        urn = f"urn:pulumi:{self.stack}::clustermesh::{type_}::{name}"
        ids = {n.id: n.urn for n in self.nodes if n.id}
        referenced = {ids[s] for s in _strings(inputs) if s in ids}
        node = Node(
            urn=urn,
            type=type_,
            name=name,
            parent=f"urn:pulumi:{self.stack}::clustermesh::pulumi:pulumi:Stack::clustermesh-{self.stack}",
            provider=f"urn:pulumi:{self.stack}::clustermesh::pulumi:providers:openstack::default",
            custom=True,
            dependencies=sorted(referenced | {n.urn for n in depends_on}),
            inputs=inputs,
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, urn)),
        )
        node.outputs = {**inputs, "id": node.id, **outputs}
        self.nodes.append(node)
        return node


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Secret):
        return _strings(value.value)
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def node_id(node: Node) -> str:
    assert node.id is not None
    return node.id


@dataclass
class Cluster:
    """A cluster's network as the program will build it: a network, a subnet whose pool leaves room for fixed
    addresses, a security group that admits its own members, control-plane ports sharing a VIP."""

    plan: Plan
    network: Node
    subnet: Node
    group: Node

    def port(self, name: str, address: str, **inputs: Any) -> Node:
        port_inputs = {
            "name": name,
            "networkId": self.network.id,
            "adminStateUp": True,
            "fixedIps": [{"subnetId": self.subnet.id, "ipAddress": address}],
            "securityGroupIds": [self.group.id],
            **inputs,
        }
        return self.plan.add(PORT, name, port_inputs)

    def rule(self, name: str, **inputs: Any) -> Node:
        rule_inputs = {"direction": "ingress", "ethertype": "IPv4", "securityGroupId": self.group.id, **inputs}
        return self.plan.add(SEC_GROUP_RULE, name, rule_inputs)


def cluster(plan: Plan, name: str = "alpha") -> Cluster:
    network = plan.add(NETWORK, f"{name}-net", {"name": f"{name}-net", "adminStateUp": True})
    subnet = plan.add(
        SUBNET,
        f"{name}-subnet",
        {
            "name": f"{name}-subnet",
            "networkId": network.id,
            "cidr": "10.195.197.0/24",
            "ipVersion": 4,
            "gatewayIp": "10.195.197.1",
            "allocationPools": [{"start": "10.195.197.2", "end": "10.195.197.150"}],
            "enableDhcp": True,
            "dnsNameservers": ["10.195.0.53"],
        },
    )
    group = plan.add(
        SEC_GROUP,
        f"{name}-nodes",
        {"name": f"{name}-nodes", "description": f"{name} nodes", "deleteDefaultRules": True, "tags": ["clustermesh"]},
    )
    return Cluster(plan, network, subnet, group)


def valid_cluster(plan: Plan) -> Cluster:
    """Everything a control plane needs, as a cloud accepts it."""
    c = cluster(plan)
    c.rule("api", protocol="tcp", portRangeMin=6443, portRangeMax=6443, remoteIpPrefix="10.195.197.0/24")
    c.rule("members", remoteGroupId=c.group.id, description="every node of the cluster")
    c.rule("vxlan", protocol="udp", portRangeMin=8472, portRangeMax=8472, remoteGroupId=c.group.id)
    # Would repeat one of Neutron's default egress rules, had deleteDefaultRules not removed them.
    c.rule("egress", direction="egress", remoteIpPrefix="0.0.0.0/0")
    vip = [{"ipAddress": "10.195.197.190/32"}]
    c.port("alpha-cp-0", "10.195.197.10", allowedAddressPairs=vip, portSecurityEnabled=True)
    c.port("alpha-cp-1", "10.195.197.11", allowedAddressPairs=vip, portSecurityEnabled=True)
    c.port("alpha-api-vip", "10.195.197.190", description="reserves the API VIP; no device")
    router = plan.add(ROUTER, "alpha-router", {"name": "alpha-router", "externalNetworkId": PUBLIC_ID})
    interface = plan.add(ROUTER_INTERFACE, "alpha-router-subnet", {"routerId": router.id, "subnetId": c.subnet.id})
    fip = plan.add(FLOATING_IP, "alpha-api", {"pool": "public", "description": "API"}, address="192.0.2.250")
    vip_port = next(n for n in plan.nodes if n.name == "alpha-api-vip")
    plan.add(
        FLOATING_IP_ASSOCIATE,
        "alpha-api",
        {"floatingIp": "192.0.2.250", "portId": vip_port.id},
        depends_on=[fip, interface],
    )
    for index in range(2):
        plan.add(
            INSTANCE, f"alpha-cp-{index}", {"name": f"alpha-cp-{index}", "networks": [{"port": node_id(vip_port)}]}
        )
    return c


def by_name(client: NeutronClient, resource: str, summary: ApplySummary) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in client.list(resource, project_id=summary.project_id)}


def test_a_valid_cluster_network_is_accepted_entirely(neutron_server: NeutronServer) -> None:
    plan = Plan()
    c = valid_cluster(plan)
    client = neutron_server.client
    started = time.monotonic()
    summary = apply_plan(plan.nodes, [PUBLIC], client=client)
    elapsed = time.monotonic() - started

    assert dict(summary.created) == {
        NETWORK: 1,
        SUBNET: 1,
        SEC_GROUP: 1,
        SEC_GROUP_RULE: 4,
        PORT: 3,
        ROUTER: 1,
        ROUTER_INTERFACE: 1,
        FLOATING_IP: 1,
        FLOATING_IP_ASSOCIATE: 1,
    }
    assert dict(summary.skipped) == {INSTANCE: 2}
    assert summary.line().startswith("neutron: created 1 FloatingIp, 1 FloatingIpAssociate, 1 Network, 3 Port, ")
    assert summary.line().endswith("; skipped, not Neutron's: 2 Instance"), summary.line()
    assert elapsed < 30, elapsed

    ports = by_name(client, "port", summary)
    assert {n: [ip["ip_address"] for ip in p["fixed_ips"]] for n, p in ports.items() if n} == {
        "alpha-cp-0": ["10.195.197.10"],
        "alpha-cp-1": ["10.195.197.11"],
        "alpha-api-vip": ["10.195.197.190"],
    }
    group_id = summary.ids[c.group.urn]
    for name in ("alpha-cp-0", "alpha-cp-1"):
        assert [p["ip_address"] for p in ports[name]["allowed_address_pairs"]] == ["10.195.197.190/32"]
        assert ports[name]["security_groups"] == [group_id]
        assert ports[name]["port_security_enabled"] is True
    assert ports["alpha-api-vip"]["device_id"] == ""

    subnet = client.show("subnet", summary.ids[c.subnet.urn])
    assert subnet["allocation_pools"] == [{"start": "10.195.197.2", "end": "10.195.197.150"}]
    assert subnet["dns_nameservers"] == ["10.195.0.53"]
    group = client.show("security_group", group_id)
    assert group["tags"] == ["clustermesh"]
    rules = {
        (r["direction"], r["protocol"], r["port_range_min"], r["remote_group_id"])
        for r in group["security_group_rules"]
    }
    assert rules == {
        ("ingress", "tcp", 6443, None),
        ("ingress", None, None, group_id),
        ("ingress", "udp", 8472, group_id),
        ("egress", None, None, None),
    }

    (fip,) = client.list("floatingip", project_id=summary.project_id)
    assert fip["port_id"] == ports["alpha-api-vip"]["id"]
    assert fip["fixed_ip_address"] == "10.195.197.190"
    assert summary.real["192.0.2.250"] == fip["floating_ip_address"]
    router = client.show("router", fip["router_id"])
    assert router["name"] == "alpha-router"
    assert router["external_gateway_info"]["network_id"] == summary.real[PUBLIC_ID]


def test_existing_networks_and_subnets_come_from_the_lookups_with_the_given_pools(
    neutron_server: NeutronServer,
) -> None:
    network_id, subnet_id = str(uuid.uuid4()), str(uuid.uuid4())
    calls = [
        Invoke(GET_NETWORK, {"name": "lab"}, {"id": network_id, "name": "lab", "external": False}),
        Invoke(GET_NETWORK, {"name": "lab"}, {"id": network_id, "name": "lab", "external": False}),  # looked up twice
        Invoke(
            GET_SUBNET,
            {"name": "lab-v4", "networkId": network_id},
            {"id": subnet_id, "cidr": "10.20.0.0/24", "networkId": network_id},
        ),
    ]
    plan = Plan()
    fixed = {
        "name": "fixed",
        "networkId": network_id,
        "fixedIps": [{"subnetId": subnet_id, "ipAddress": "10.20.0.200"}],
    }
    plan.add(PORT, "fixed", fixed)
    plan.add(PORT, "any", {"name": "any", "networkId": network_id, "fixedIps": [{"subnetId": subnet_id}]})

    summary = apply_plan(
        plan.nodes, calls, client=neutron_server.client, existing_subnets={"lab-v4": [("10.20.0.10", "10.20.0.99")]}
    )

    assert dict(summary.existing) == {"network": 1, "subnet": 1}
    subnet = neutron_server.client.show("subnet", summary.real[subnet_id])
    assert subnet["allocation_pools"] == [{"start": "10.20.0.10", "end": "10.20.0.99"}]
    assert subnet["network_id"] == summary.real[network_id]
    ports = by_name(neutron_server.client, "port", summary)
    assert ports["fixed"]["fixed_ips"][0]["ip_address"] == "10.20.0.200"  # outside the pool, inside the subnet
    assert 10 <= int(ports["any"]["fixed_ips"][0]["ip_address"].rsplit(".", 1)[1]) <= 99


PROGRAM = """\
import pulumi
from pulumi_openstack import networking as net

public = net.get_network(name="public", external=True)
network = net.Network("net", name="net", admin_state_up=True)
subnet = net.Subnet(
    "subnet", network_id=network.id, cidr="10.195.197.0/24", ip_version=4, gateway_ip="10.195.197.1",
    allocation_pools=[net.SubnetAllocationPoolArgs(start="10.195.197.2", end="10.195.197.150")],
)
group = net.SecGroup("nodes", name="nodes", delete_default_rules=True)
net.SecGroupRule("members", security_group_id=group.id, direction="ingress", ethertype="IPv4", remote_group_id=group.id)
net.SecGroupRule(
    "api", security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
    port_range_min=6443, port_range_max=6443, remote_ip_prefix="10.0.0.0/8",
)
vip = net.Port("vip", network_id=network.id, fixed_ips=[net.PortFixedIpArgs(subnet_id=subnet.id, ip_address="10.195.197.190")])
net.Port(
    "cp-0", network_id=network.id, security_group_ids=[group.id],
    fixed_ips=[net.PortFixedIpArgs(subnet_id=subnet.id, ip_address="10.195.197.10")],
    allowed_address_pairs=[net.PortAllowedAddressPairArgs(ip_address="10.195.197.190/32")],
)
router = net.Router("router", name="router", external_network_id=public.id)
interface = net.RouterInterface("router-subnet", router_id=router.id, subnet_id=subnet.id)
fip = net.FloatingIp("api", pool="public")
net.FloatingIpAssociate(
    "api", floating_ip=fip.address, port_id=vip.id, opts=pulumi.ResourceOptions(depends_on=[interface])
)
"""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pulumi_openstack's import warns of its own renames
def test_a_plan_as_the_planner_captures_it_is_applied(neutron_server: NeutronServer, tmp_path: Path) -> None:
    """Inputs, ids, dependencies and getNetwork calls exactly as the planner records them, not as a test writes them."""
    (tmp_path / "__main__.py").write_text(PROGRAM)
    plan = run_program(tmp_path, StackSettings("harness", "test", tmp_path / "Pulumi.test.yaml", {}, frozenset()))

    summary = apply_captured(plan, client=neutron_server.client)

    assert sum(summary.created.values()) == 11, summary.line()
    fips = neutron_server.client.list("floatingip", project_id=summary.project_id)
    assert [(f["fixed_ip_address"], f["port_id"]) for f in fips] == [("10.195.197.190", summary.ids[_urn(plan, "vip")])]


def _urn(plan: CapturedPlan, name: str) -> str:
    return next(n.urn for n in plan.nodes if n.name == name and n.type == PORT)


def test_an_external_subnet_the_plan_looks_up_is_the_clouds_and_shared(neutron_server: NeutronServer) -> None:
    """A router's gateway on a looked-up subnet of the external network; the cloud's subnet serves every plan."""
    subnet_id = str(uuid.uuid4())
    lookup = Invoke(
        GET_SUBNET,
        {"name": "public-v4", "networkId": PUBLIC_ID},
        {"id": subnet_id, "cidr": "198.51.100.0/24", "networkId": PUBLIC_ID},
    )
    for _ in range(2):
        plan = Plan()
        router = plan.add(
            ROUTER, "edge", {"name": "edge", "externalNetworkId": PUBLIC_ID, "externalSubnetIds": [subnet_id]}
        )

        summary = apply_plan(plan.nodes, [PUBLIC, lookup], client=neutron_server.client)

        gateway = neutron_server.client.show("router", summary.ids[router.urn])["external_gateway_info"]
        assert gateway["network_id"] == summary.real[PUBLIC_ID]
        assert [ip["subnet_id"] for ip in gateway["external_fixed_ips"]] == [summary.real[subnet_id]]
        assert neutron_server.client.show("subnet", summary.real[subnet_id])["cidr"] == "198.51.100.0/24"


def refusal(server: NeutronServer, plan: Plan, calls: Sequence[Invoke] = ()) -> NeutronRefused:
    with pytest.raises(NeutronRefused) as caught:
        apply_plan(plan.nodes, calls, client=server.client)
    return caught.value


def test_a_fixed_ip_outside_its_subnet_is_refused(neutron_server: NeutronServer) -> None:
    plan = Plan()
    c = cluster(plan)
    bad = c.port("stray", "10.195.198.5")

    refused = refusal(neutron_server, plan)

    assert (refused.status, refused.error_type) == (400, "InvalidIpForSubnet")
    assert (refused.urn, refused.name) == (bad.urn, "stray")
    assert refused.body["port"]["fixed_ips"][0]["ip_address"] == "10.195.198.5"
    assert refused.body["port"]["fixed_ips"][0]["subnet_id"] != c.subnet.id  # the real id, not the fabricated one
    assert "stray" in str(refused) and "InvalidIpForSubnet" in str(refused)


def test_address_pairs_without_port_security_are_refused(neutron_server: NeutronServer) -> None:
    plan = Plan()
    c = cluster(plan)
    c.port(
        "open",
        "10.195.197.10",
        portSecurityEnabled=False,
        securityGroupIds=None,
        allowedAddressPairs=[{"ipAddress": "10.195.197.190/32"}],
    )

    refused = refusal(neutron_server, plan)

    assert (refused.status, refused.error_type) == (409, "AddressPairAndPortSecurityRequired")
    assert refused.body["port"]["allowed_address_pairs"] == [{"ip_address": "10.195.197.190/32"}]


def test_a_second_port_on_the_reserved_address_is_refused(neutron_server: NeutronServer) -> None:
    plan = Plan()
    c = cluster(plan)
    c.port("api-vip", "10.195.197.190")
    c.port("squatter", "10.195.197.190")

    refused = refusal(neutron_server, plan)

    assert (refused.status, refused.error_type, refused.name) == (409, "IpAddressAlreadyAllocated", "squatter")


def test_a_duplicate_security_group_rule_is_refused(neutron_server: NeutronServer) -> None:
    plan = Plan()
    c = cluster(plan)
    c.rule("api", protocol="tcp", portRangeMin=6443, portRangeMax=6443, remoteIpPrefix="10.0.0.0/8")
    c.rule("api-again", protocol="tcp", portRangeMin=6443, portRangeMax=6443, remoteIpPrefix="10.0.0.0/8")

    refused = refusal(neutron_server, plan)

    assert (refused.status, refused.error_type, refused.name) == (409, "SecurityGroupRuleExists", "api-again")


def test_the_default_egress_rules_stay_unless_the_group_deletes_them(neutron_server: NeutronServer) -> None:
    plan = Plan()
    group = plan.add(SEC_GROUP, "keeps-defaults", {"name": "keeps-defaults"})
    plan.add(SEC_GROUP_RULE, "egress", {"direction": "egress", "ethertype": "IPv4", "securityGroupId": group.id})

    assert refusal(neutron_server, plan).error_type == "SecurityGroupRuleExists"


def test_what_the_harness_cannot_translate_is_an_error_not_a_silent_drop(neutron_server: NeutronServer) -> None:
    plan = Plan()
    plan.add(NETWORK, "net", {"name": "net", "someFutureProperty": True})
    with pytest.raises(HarnessError, match=r"does not translate input\(s\) \['someFutureProperty'\]"):
        apply_plan(plan.nodes, client=neutron_server.client)

    plan = Plan()
    plan.add(PORT, "orphan", {"networkId": str(uuid.uuid4())})
    with pytest.raises(HarnessError, match=r"orphan.networkId = .* is no resource of the plan"):
        apply_plan(plan.nodes, client=neutron_server.client)

    plan = Plan()
    plan.add("openstack:networking/trunk:Trunk", "trunk", {"portId": str(uuid.uuid4())})
    with pytest.raises(HarnessError, match="does not know openstack:networking/trunk:Trunk"):
        apply_plan(plan.nodes, client=neutron_server.client)


def test_without_neutron_server_the_harness_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NeutronNotInstalled, match=r"neutron-server is not installed .* run scripts/system_packages.sh"):
        NeutronServer(cache_dir=tmp_path).start()


def test_the_install_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed: run scripts/system_packages.sh"
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_the_install_script_is_silent_when_the_packages_are_there(neutron_server: NeutronServer) -> None:
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=False, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


STUB_DPKG_QUERY = """#!/bin/sh
for arg; do last=$arg; done
[ "$last" = shellcheck ] && printf 'install ok installed'
exit 0
"""
STUB_APT_GET = """#!/bin/sh
echo "apt-get $* | policy: $(tr '\\n' ' ' < "$POLICY_RC_D")" >> "$STUB_LOG"
"""


def test_the_install_script_installs_what_is_missing_with_the_daemon_held_back(tmp_path: Path) -> None:
    """With stand-ins for dpkg-query (shellcheck there, neutron-server not) and apt-get, and the policy file moved
    to a scratch path: one line, only the missing package, a policy-rc.d forbidding starts during apt, then gone."""
    for name, text in (("dpkg-query", STUB_DPKG_QUERY), ("apt-get", STUB_APT_GET)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "POLICY_RC_D": str(tmp_path / "policy-rc.d"),
        "STUB_LOG": str(tmp_path / "apt.log"),
    }
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=False, env=env, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("system packages: installing neutron-server (")
    assert (tmp_path / "apt.log").read_text().splitlines() == [
        "apt-get update -qq | policy: #!/bin/sh exit 101 ",
        "apt-get install -y -qq neutron-server | policy: #!/bin/sh exit 101 ",
    ]
    assert not (tmp_path / "policy-rc.d").exists()
