"""The planner's OpenStack cloud and SSH hosts: small programs run under `PlanMocks`, read back through the SDK."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_openstack as openstack
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from clustermesh.planner.fabricate import FunctionCall, UnansweredFunctionError
from clustermesh.planner.fabricate_openstack import (
    FLOATING_IP_RANGE,
    LOAD_BALANCER_VIP_RANGE,
    allocation_pools,
    fabricated_uuid,
)
from clustermesh.planner.graph import UNKNOWN, Node, Secret
from clustermesh.planner.runner import CapturedPlan, run_function
from clustermesh.planner.stackfile import StackSettings

STACK = StackSettings("clustermesh", "test", Path("Pulumi.test.yaml"), {}, frozenset())
NODE_CIDR = "10.20.0.0/24"
NODE_IPS = ["10.20.0.11", "10.20.0.12"]


def plan(program: Callable[[], None], *, preview: bool = False, stack: StackSettings = STACK) -> CapturedPlan:
    return run_function(program, stack, preview=preview)


def custom(captured: CapturedPlan, type_suffix: str) -> list[Node]:
    return [n for n in captured.nodes if n.custom and n.type.endswith(type_suffix)]


def _network() -> tuple[openstack.networking.Network, openstack.networking.Subnet]:
    network = openstack.networking.Network("nodes", name="clustermesh-alpha")
    subnet = openstack.networking.Subnet("nodes", network_id=network.id, cidr=NODE_CIDR, ip_version=4)
    return network, subnet


def _port(name: str, network: Any, subnet: Any, ips: Sequence[str | None]) -> openstack.networking.Port:
    return openstack.networking.Port(
        name,
        network_id=network.id,
        fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet.id, ip_address=ip) for ip in ips],
        security_group_ids=["group-a", "group-b"],
    )


def test_a_port_reports_the_fixed_ips_it_asks_for_in_order_and_none_it_lets_neutron_pick() -> None:
    def program() -> None:
        network, subnet = _network()
        asked = _port("asked", network, subnet, list(reversed(NODE_IPS)))
        picked = _port("picked", network, subnet, [None])
        partly = _port("partly", network, subnet, [NODE_IPS[0], None])
        pulumi.export("asked", asked.all_fixed_ips)
        pulumi.export("picked", picked.all_fixed_ips)
        pulumi.export("partly", partly.all_fixed_ips)
        pulumi.export("groups", asked.all_security_group_ids)
        pulumi.export("mac", asked.mac_address)
        pulumi.export("portSecurity", asked.port_security_enabled)

    outputs = plan(program).outputs
    assert outputs["asked"] == list(reversed(NODE_IPS))
    assert outputs["picked"] == []
    assert outputs["partly"] == []
    assert outputs["groups"] == ["group-a", "group-b"]
    assert outputs["mac"].startswith("fa:16:3e:")
    assert len(outputs["mac"].split(":")) == 6
    assert outputs["portSecurity"] is True


def test_ids_are_uuids_stable_across_plans_and_distinct_per_name() -> None:
    def program() -> None:
        network, subnet = _network()
        for name in ("one", "two"):
            _port(name, network, subnet, [None])
        openstack.compute.Keypair("key", name="clustermesh-alpha", public_key="ssh-ed25519 AAAA key")
        openstack.networking.SecGroup("nodes", name="nodes")

    first, second = plan(program), plan(program)
    ids = {(n.type, n.name): n.id for n in first.nodes if n.custom}
    assert ids == {(n.type, n.name): n.id for n in second.nodes if n.custom}
    keypair = ("openstack:compute/keypair:Keypair", "key")
    assert ids.pop(keypair) == "clustermesh-alpha"  # Nova names key pairs, and the provider uses the name as id
    for resource_id in ids.values():
        assert resource_id is not None
        assert str(uuid.UUID(resource_id)) == resource_id
    assert len(set(ids.values())) == len(ids)
    assert ids[("openstack:networking/port:Port", "one")] == fabricated_uuid("openstack:networking/port:Port", "one")


def test_a_subnet_echoes_what_it_asks_for_and_defaults_the_gateway_and_pool_around_it() -> None:
    def program() -> None:
        network, subnet = _network()
        pinned = openstack.networking.Subnet(
            "pinned", network_id=network.id, cidr="10.30.0.0/24", gateway_ip="10.30.0.254"
        )
        pulumi.export("network", network.id)
        pulumi.export("mtu", network.mtu)
        pulumi.export("subnet", [subnet.cidr, subnet.network_id, subnet.gateway_ip, subnet.allocation_pools])
        pulumi.export("pinned", [pinned.gateway_ip, pinned.allocation_pools])

    outputs = plan(program).outputs
    cidr, network_id, gateway, pools = outputs["subnet"]
    assert (cidr, network_id) == (NODE_CIDR, outputs["network"])
    assert gateway == "10.20.0.1"
    assert pools == [{"start": "10.20.0.2", "end": "10.20.0.254"}]
    assert outputs["pinned"] == ["10.30.0.254", [{"start": "10.30.0.1", "end": "10.30.0.253"}]]
    assert outputs["mtu"] == 1450


def test_lookups_answer_what_was_asked_with_stable_ids_and_are_recorded_in_order() -> None:
    def program() -> None:
        image = openstack.images.get_image_output(name="ubuntu-24.04", most_recent=True)
        external = openstack.networking.get_network_output(name="public", external=True)
        subnet = openstack.networking.get_subnet_output(name="nodes", network_id=external.id, cidr="192.0.2.0/24")
        pulumi.export("image", [image.id, image.name, image.size_bytes, image.tags])
        pulumi.export("external", [external.id, external.name, external.external])
        pulumi.export(
            "subnet",
            [subnet.id, subnet.cidr, subnet.network_id, subnet.gateway_ip, subnet.ip_version, subnet.enable_dhcp],
        )
        pulumi.export("pools", subnet.allocation_pools)

    first, second = plan(program), plan(program)
    assert first.outputs == second.outputs
    image_id, image_name, size, tags = first.outputs["image"]
    assert uuid.UUID(image_id) and image_name == "ubuntu-24.04" and size > 0 and tags == []
    network_id, network_name, external = first.outputs["external"]
    assert uuid.UUID(network_id) and (network_name, external) == ("public", True)
    subnet_id, cidr, subnet_network, gateway, version, dhcp = first.outputs["subnet"]
    assert uuid.UUID(subnet_id)
    assert (cidr, subnet_network, version, dhcp) == ("192.0.2.0/24", network_id, 4, True)
    assert ipaddress.ip_address(gateway) in ipaddress.ip_network("192.0.2.0/24")
    for pool in first.outputs["pools"]:
        assert ipaddress.ip_address(pool["start"]) in ipaddress.ip_network("192.0.2.0/24")

    assert [c.token for c in first.calls] == [
        "openstack:images/getImage:getImage",
        "openstack:networking/getNetwork:getNetwork",
        "openstack:networking/getSubnet:getSubnet",
    ]
    assert all(isinstance(c, FunctionCall) for c in first.calls)
    assert first.calls[1].args == {"name": "public", "external": True}
    assert first.calls[2].args == {"name": "nodes", "networkId": network_id, "cidr": "192.0.2.0/24"}
    assert first.calls[2].result["id"] == subnet_id
    assert first.calls == second.calls


def test_lookups_of_different_names_get_different_ids_and_an_asked_id_comes_back() -> None:
    known = str(uuid.uuid4())

    def program() -> None:
        a = openstack.networking.get_network_output(name="a")
        b = openstack.networking.get_network_output(name="b")
        by_id = openstack.networking.get_network_output(network_id=known)
        pulumi.export("ids", [a.id, b.id, by_id.id])

    a, b, by_id = plan(program).outputs["ids"]
    assert a != b
    assert by_id == known


def test_a_function_the_planner_cannot_answer_fails_the_plan_naming_it() -> None:
    def program() -> None:
        flavor = openstack.compute.get_flavor_output(name="m1.small")
        pulumi.export("flavor", flavor.id)

    with pytest.raises(UnansweredFunctionError, match="openstack:compute/getFlavor:getFlavor"):
        plan(program)


def test_a_preview_leaves_what_the_cloud_computes_unknown_but_answers_lookups() -> None:
    def program() -> None:
        network, subnet = _network()
        port = _port("asked", network, subnet, NODE_IPS)
        address = openstack.networking.FloatingIp("fip", pool="public", port_id=port.id)
        key = openstack.compute.Keypair("generated", name="generated")
        run = command.remote.Command(
            "install", connection=command.remote.ConnectionArgs(host="192.0.2.1"), create="true"
        )
        image = openstack.images.get_image_output(name="ubuntu-24.04")
        pulumi.export("unknown", [port.id, port.all_fixed_ips, port.mac_address, address.address, key.private_key])
        pulumi.export("stdout", run.stdout)
        pulumi.export("cidr", subnet.cidr)
        pulumi.export("image", image.name)

    captured = plan(program, preview=True)
    assert captured.outputs["unknown"] == [UNKNOWN] * 5
    assert captured.outputs["stdout"] is UNKNOWN
    assert captured.outputs["cidr"] == NODE_CIDR  # an input: known before the cloud answers
    assert captured.outputs["image"] == "ubuntu-24.04"
    assert all(n.id is None for n in custom(captured, ":Port"))


def test_a_generated_key_pair_returns_its_private_key_secret_and_an_imported_one_none() -> None:
    imported_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtXc6Qk7Lz2vAhmZ8UxjGmI7Lr5Ff5y2X0dQvVZ0b7x me@host"

    def program() -> None:
        generated = openstack.compute.Keypair("generated", name="generated")
        imported = openstack.compute.Keypair("imported", name="imported", public_key=imported_key)
        pulumi.export("generated", [generated.public_key, generated.fingerprint])
        pulumi.export("private", generated.private_key)
        pulumi.export("imported", [imported.public_key, imported.private_key, imported.fingerprint])

    outputs = plan(program).outputs
    private = outputs["private"]
    assert isinstance(private, Secret)
    public, fingerprint = outputs["generated"]
    key = serialization.load_pem_private_key(private.value.encode(), password=None)
    derived = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert public.split()[:2] == derived.decode().split()
    assert len(fingerprint.split(":")) == 16
    public_again, no_private, imported_fingerprint = outputs["imported"]
    assert (public_again, no_private) == (imported_key, None)
    assert imported_fingerprint != fingerprint


def test_generated_key_pairs_differ_between_stacks() -> None:
    def program() -> None:
        pulumi.export("private", openstack.compute.Keypair("generated", name="generated").private_key)

    other = StackSettings("clustermesh", "other", Path("Pulumi.other.yaml"), {}, frozenset())
    assert plan(program).outputs["private"] == plan(program).outputs["private"]
    assert plan(program).outputs["private"] != plan(program, stack=other).outputs["private"]


def test_floating_ips_are_distinct_test_net_3_addresses_unless_one_is_asked_for() -> None:
    names = [f"node-{i}" for i in range(40)]
    asked = "203.0.113.200"

    def program() -> None:
        pulumi.export("addresses", [openstack.networking.FloatingIp(name, pool="public").address for name in names])
        pulumi.export("asked", openstack.networking.FloatingIp("asked", pool="public", address=asked).address)

    first, second = plan(program).outputs, plan(program).outputs
    assert first == second
    assert len(set(first["addresses"])) == len(names)
    assert all(ipaddress.ip_address(a) in FLOATING_IP_RANGE for a in first["addresses"])
    assert first["asked"] == asked


def test_a_floating_ip_on_a_port_reports_the_ports_address() -> None:
    def program() -> None:
        network, subnet = _network()
        port = _port("node", network, subnet, NODE_IPS[:1])
        address = openstack.networking.FloatingIp("node", pool="public", port_id=port.id)
        pulumi.export("fixed", address.fixed_ip)

    assert plan(program).outputs["fixed"] == NODE_IPS[0]


def test_an_instance_reports_the_address_of_its_first_network() -> None:
    def program() -> None:
        network, subnet = _network()
        port = _port("on-port", network, subnet, NODE_IPS[1:])
        on_port = openstack.compute.Instance(
            "on-port", flavor_name="m1.small", networks=[openstack.compute.InstanceNetworkArgs(port=port.id)]
        )
        fixed = openstack.compute.Instance(
            "fixed",
            flavor_name="m1.small",
            networks=[openstack.compute.InstanceNetworkArgs(uuid=network.id, fixed_ip_v4=NODE_IPS[0])],
        )
        dhcp = openstack.compute.Instance(
            "dhcp", flavor_name="m1.small", networks=[openstack.compute.InstanceNetworkArgs(uuid=network.id)]
        )
        pulumi.export("addresses", [on_port.access_ip_v4, fixed.access_ip_v4, dhcp.access_ip_v4])
        pulumi.export("ids", [on_port.id, fixed.id, dhcp.id])

    outputs = plan(program).outputs
    assert outputs["addresses"] == [NODE_IPS[1], NODE_IPS[0], ""]
    assert len({str(uuid.UUID(i)) for i in outputs["ids"]}) == 3


def test_a_load_balancer_keeps_the_vip_it_asks_for_or_gets_a_test_net_2_one() -> None:
    vip = "10.20.0.100"

    def program() -> None:
        _, subnet = _network()
        pinned = openstack.loadbalancer.LoadBalancer("pinned", vip_subnet_id=subnet.id, vip_address=vip)
        chosen = openstack.loadbalancer.LoadBalancer("chosen", vip_subnet_id=subnet.id)
        pulumi.export("pinned", [pinned.vip_address, pinned.vip_port_id])
        pulumi.export("chosen", chosen.vip_address)

    outputs = plan(program).outputs
    address, port_id = outputs["pinned"]
    assert address == vip
    assert uuid.UUID(port_id)
    assert ipaddress.ip_address(outputs["chosen"]) in LOAD_BALANCER_VIP_RANGE


def test_remote_commands_print_nothing_offline() -> None:
    def program() -> None:
        connection = command.remote.ConnectionArgs(host="192.0.2.10", user="ubuntu")
        run = command.remote.Command("install", connection=connection, create="curl -sfL https://get.k3s.io | sh -")
        pulumi.export("output", [run.stdout, run.stderr])

    assert plan(program).outputs["output"] == ["", ""]


@given(
    prefix=st.integers(min_value=20, max_value=30),
    base=st.integers(min_value=0, max_value=2**32 - 1),
    gateway_offset=st.integers(min_value=1),
)
def test_default_pools_hold_every_host_address_but_the_gateway(prefix: int, base: int, gateway_offset: int) -> None:
    network = ipaddress.IPv4Network((base, prefix), strict=False)
    hosts = set(network.hosts())
    gateway = network.network_address + 1 + gateway_offset % len(hosts)
    pooled: set[ipaddress.IPv4Address] = set()
    for pool in allocation_pools(str(network), str(gateway)):
        start, end = ipaddress.IPv4Address(pool["start"]), ipaddress.IPv4Address(pool["end"])
        pooled |= {ipaddress.IPv4Address(a) for a in range(int(start), int(end) + 1)}
    assert pooled == hosts - {gateway}
