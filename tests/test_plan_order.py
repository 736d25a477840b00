"""The order both real-API harnesses (Neutron, moto) create a plan's resources in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from clustermesh.planner.graph import Node
from tests.plan_order import DependencyCycle, dependency_order


def node(name: str, *, parent: str = "stack", dependencies: tuple[str, ...] = (), **inputs: Any) -> Node:
    return Node(
        urn=name,
        type="t",
        name=name,
        parent=parent,
        provider="",
        custom=True,
        dependencies=list(dependencies),
        inputs=inputs,
        id=f"id-{name}",
    )


def strings(value: Any) -> Iterator[str]:
    yield from (v for v in value.values() if isinstance(v, str))


def test_a_resource_comes_after_what_it_references_declares_or_waits_on_through_a_component() -> None:
    subnet = node("subnet", networkId="id-network")  # references the network by its id
    network = node("network", parent="component")
    port = node("port", dependencies=("component",))  # waits on a component: everything under it
    component = Node(
        urn="component",
        type="c",
        name="component",
        parent="stack",
        provider="",
        custom=False,
        dependencies=[],
        inputs={},
    )
    nodes = [subnet, port, component, network]
    produced = {"id-network": "network"}
    ordered = dependency_order(nodes, [subnet, port, network], produced=produced, strings=strings)
    assert [n.name for n in ordered] == ["network", "subnet", "port"]


def test_a_cycle_is_refused() -> None:
    a, b = node("a", ref="id-b"), node("b", ref="id-a")
    with pytest.raises(DependencyCycle, match="dependency cycle"):
        dependency_order([a, b], [a, b], produced={"id-a": "a", "id-b": "b"}, strings=strings)
