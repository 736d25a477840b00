"""Every committed OpenStack stack's networking, created on a real Neutron API from its plan, in dependency order.

Neutron (Debian's neutron-server on loopback, `tests/neutron.py`) accepts or refuses each request as a cloud
does: fixed IPs inside their subnet and free, address pairs only with port security, security-group rules that
are well formed and not duplicated. The existing networks the stacks look up are made first, with the DHCP pools
the stack file says they have. A plan altered to break one of those rules is refused, so the check is real.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from clustermesh.planner.graph import Node
from clustermesh.planner.runner import CapturedPlan
from tests.conftest import PROJECT_DIR, plan_raw
from tests.neutron import NeutronRefused, NeutronServer, apply_captured, apply_plan

OPENSTACK_STACKS = sorted(
    path
    for path in PROJECT_DIR.glob("Pulumi.*.yaml")
    if '"kind": "openstack"' in json.dumps(yaml.safe_load(path.read_text())["config"].get("clustermesh:clusters"))
)


def plan_of(config: dict[str, Any]) -> CapturedPlan:
    return plan_raw({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})


def existing_subnets(config: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Each looked-up subnet's DHCP pools, as the stack file describes the subnet that exists."""
    pools: dict[str, list[tuple[str, str]]] = {}
    for cluster in config["clustermesh:clusters"]:
        existing = cluster.get("network", {}).get("existing")
        if existing:
            pools[existing["subnet"]] = [(p.split("-")[0], p.split("-")[-1]) for p in existing["dhcpPools"]]
    return pools


def routed_subnets(config: dict[str, Any]) -> dict[str, str]:
    """Existing subnets whose nodes get floating IPs: the cloud routes them to the floating IPs' network."""
    routed: dict[str, str] = {}
    for cluster in config["clustermesh:clusters"]:
        existing = cluster.get("network", {}).get("existing")
        floating = cluster.get("floatingIps", {})
        if existing and floating.get("enabled"):
            routed[existing["subnet"]] = floating["pool"]
    return routed


def allocated_floating_ips(config: dict[str, Any]) -> dict[str, str]:
    """Floating IPs the stack file says were allocated beforehand (the API's), by address."""
    return {
        floating["apiAddress"]: floating["pool"]
        for cluster in config["clustermesh:clusters"]
        if (floating := cluster.get("floatingIps", {})).get("apiAddress")
    }


def test_every_tutorial_stack_on_openstack_is_checked() -> None:
    assert [p.name for p in OPENSTACK_STACKS] == [
        "Pulumi.openstack-calico-mesh.yaml",
        "Pulumi.openstack-k3s.yaml",
        "Pulumi.openstack-kubeadm.yaml",
        "Pulumi.openstack-rke2.yaml",
    ]


@pytest.mark.parametrize("stack_file", OPENSTACK_STACKS, ids=lambda p: p.name)
def test_neutron_accepts_every_networking_request_of_the_stack(stack_file: Path, neutron_server: NeutronServer) -> None:
    config = yaml.safe_load(stack_file.read_text())["config"]
    plan = plan_of(config)
    summary = apply_captured(
        plan,
        client=neutron_server.client,
        existing_subnets=existing_subnets(config),
        routed_subnets=routed_subnets(config),
        existing_floating_ips=allocated_floating_ips(config),
    )
    print(summary.line())
    ports = [n for n in plan.nodes if n.type == "openstack:networking/port:Port"]
    rules = [n for n in plan.nodes if n.type == "openstack:networking/secGroupRule:SecGroupRule"]
    assert summary.created["openstack:networking/port:Port"] == len(ports) > 0
    assert summary.created["openstack:networking/secGroupRule:SecGroupRule"] == len(rules) > 0
    # What Neutron holds is what the plan asked for: each node port's addresses and address pairs.
    for node in ports:
        real = neutron_server.client.show("port", summary.ids[node.urn])
        assert [f["ip_address"] for f in real["fixed_ips"]] == [f["ipAddress"] for f in node.inputs["fixedIps"]]
        asked = {p["ipAddress"] for p in node.inputs.get("allowedAddressPairs") or []}
        assert {p["ip_address"] for p in real["allowed_address_pairs"]} == asked
        assert real["port_security_enabled"] is True


def _first_node_port(plan: CapturedPlan) -> Node:
    return next(
        n for n in plan.nodes if n.type == "openstack:networking/port:Port" and n.inputs.get("allowedAddressPairs")
    )


def test_a_plan_with_an_address_outside_its_subnet_is_refused(neutron_server: NeutronServer) -> None:
    stack_file = PROJECT_DIR / "Pulumi.openstack-rke2.yaml"
    config = yaml.safe_load(stack_file.read_text())["config"]
    plan = plan_of(config)
    port = _first_node_port(plan)
    inputs = copy.deepcopy(port.inputs)
    inputs["fixedIps"][0]["ipAddress"] = "10.195.198.160"
    with pytest.raises(NeutronRefused) as refused:
        apply_plan(
            [n if n.urn != port.urn else Node(**{**vars(n), "inputs": inputs}) for n in plan.nodes],
            plan.calls,
            client=neutron_server.client,
            existing_subnets=existing_subnets(config),
        )
    assert refused.value.error_type == "InvalidIpForSubnet"


def test_a_plan_with_address_pairs_on_a_port_without_port_security_is_refused(neutron_server: NeutronServer) -> None:
    stack_file = PROJECT_DIR / "Pulumi.openstack-rke2.yaml"
    config = yaml.safe_load(stack_file.read_text())["config"]
    plan = plan_of(config)
    port = _first_node_port(plan)
    inputs = {k: v for k, v in port.inputs.items() if k != "securityGroupIds"}
    inputs["portSecurityEnabled"] = False
    with pytest.raises(NeutronRefused) as refused:
        apply_plan(
            [n if n.urn != port.urn else Node(**{**vars(n), "inputs": inputs}) for n in plan.nodes],
            plan.calls,
            client=neutron_server.client,
            existing_subnets=existing_subnets(config),
        )
    assert refused.value.error_type == "AddressPairAndPortSecurityRequired"


def test_a_network_the_program_creates_is_accepted_with_its_router_and_floating_ips(
    neutron_server: NeutronServer,
) -> None:
    """Neither tutorial creates its network; a cluster that does (subnet with its DHCP pool, router to the external
    network, floating IPs through it) goes through Neutron the same way."""
    config = yaml.safe_load((PROJECT_DIR / "Pulumi.openstack-k3s.yaml").read_text())["config"]
    (first, *_) = config["clustermesh:clusters"]
    first["network"] = {
        "create": {
            "cidr": "192.168.40.0/24",
            "dhcpPool": "192.168.40.100-192.168.40.200",
            "externalNetwork": "public",
            "dnsNameservers": ["192.0.2.53"],
        }
    }
    first["nodePools"][0]["addresses"] = "192.168.40.8-192.168.40.15"
    first["apiserverLoadBalancer"] = {"octavia": {"vipAddress": "192.168.40.250"}}
    config["clustermesh:clusters"] = [first]
    plan = plan_of(config)
    summary = apply_captured(plan, client=neutron_server.client, existing_floating_ips=allocated_floating_ips(config))
    for kind in ("network:Network", "subnet:Subnet", "router:Router", "routerInterface:RouterInterface"):
        assert summary.created[f"openstack:networking/{kind}"] == 1, summary.line()
    # The API's floating IP, allocated beforehand, is now the server's, through the router the program made.
    assert summary.created["openstack:networking/floatingIpAssociate:FloatingIpAssociate"] == 1
    (port,) = [n for n in plan.nodes if n.type == "openstack:networking/port:Port"]
    (floating,) = neutron_server.client.list("floatingip", floating_ip_address=first["floatingIps"]["apiAddress"])
    assert floating["port_id"] == summary.ids[port.urn]
    subnet = next(n for n in plan.nodes if n.type == "openstack:networking/subnet:Subnet")
    real = neutron_server.client.show("subnet", summary.ids[subnet.urn])
    assert real["allocation_pools"] == [{"start": "192.168.40.100", "end": "192.168.40.200"}]
    assert real["gateway_ip"] == "192.168.40.1"
    assert real["dns_nameservers"] == ["192.0.2.53"]
