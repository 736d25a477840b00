"""The order in which a harness creates a plan's resources on a real API (Neutron, moto): each after what it
depends on, as the engine would, otherwise in registration order.

A resource depends on what it declares (a component standing for every resource under it) and on any resource
whose id, or other value it produced (`produced`), appears among its inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from clustermesh.planner.graph import Node

Strings = Callable[[Any], Iterable[str]]
"""The strings of a resource's inputs that may hold a value another resource produced."""


class DependencyCycle(RuntimeError):
    """The plan's resources depend on each other in a circle: no order creates them."""


class _Dependencies:
    def __init__(
        self, nodes: Sequence[Node], chosen: Sequence[Node], produced: Mapping[str, str], strings: Strings
    ) -> None:
        self.by_urn = {n.urn: n for n in chosen}
        self.produced = produced
        self.strings = strings
        self.children: dict[str, list[str]] = {}
        for node in nodes:
            self.children.setdefault(node.parent, []).append(node.urn)

    def resources(self, urn: str) -> Iterator[str]:
        """`urn` if it is chosen, else (a component) every chosen resource under it."""
        if urn in self.by_urn:
            yield urn
        else:
            for child in self.children.get(urn, []):
                yield from self.resources(child)

    def of(self, node: Node) -> list[Node]:
        declared = [u for d in node.dependencies for u in self.resources(d)]
        referenced = [self.produced[s] for s in self.strings(node.inputs) if s in self.produced]
        return [self.by_urn[u] for u in dict.fromkeys(declared + referenced) if u != node.urn]


def dependency_order(
    nodes: Sequence[Node],
    chosen: Sequence[Node],
    *,
    produced: Mapping[str, str],
    strings: Strings,
) -> list[Node]:
    """`chosen` (the resources the harness creates), each after the chosen resources it depends on.

    `produced` maps a value a chosen resource produced (its id, an address) to that resource's URN; `strings`
    yields the strings of a resource's inputs that may hold such a value.
    """
    dependencies = _Dependencies(nodes, chosen, produced, strings)
    ordered: list[Node] = []
    state: dict[str, str] = {}

    def visit(node: Node) -> None:
        if state.get(node.urn) == "done":
            return
        if state.get(node.urn) == "visiting":
            raise DependencyCycle(f"dependency cycle through {node.urn}")
        state[node.urn] = "visiting"
        for dependency in dependencies.of(node):
            visit(dependency)
        state[node.urn] = "done"
        ordered.append(node)

    for node in chosen:
        visit(node)
    return ordered
