"""What a plan shows a person (a tree per cluster, a summary) and writes for machines (plan.json, files)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from clustermesh.planner.graph import Node, reveal
from clustermesh.planner.runner import CapturedPlan
from components.tokens import HELM_RELEASE, MESH_CLUSTER


def plan_document(plan: CapturedPlan, *, reveal_secrets: bool) -> dict[str, Any]:
    return {
        "project": plan.project,
        "stack": plan.stack,
        "resources": [
            {
                "urn": n.urn,
                "type": n.type,
                "name": n.name,
                "parent": n.parent,
                "provider": n.provider,
                "dependencies": n.dependencies,
                "inputs": reveal(n.inputs, secrets=reveal_secrets),
                **({"read": True} if n.read else {}),
            }
            for n in sorted(plan.nodes, key=lambda n: n.urn)
        ],
        "outputs": reveal(plan.outputs, secrets=reveal_secrets),
    }


def cluster_components(plan: CapturedPlan) -> dict[str, Node]:
    """MeshCluster components by cluster name (the component's name is the cluster's)."""
    return {n.name: n for n in plan.nodes if n.type == MESH_CLUSTER}


def descendants(plan: CapturedPlan, root_urn: str) -> list[Node]:
    children: dict[str, list[Node]] = {}
    for node in plan.nodes:
        children.setdefault(node.parent, []).append(node)
    found, stack = [], [root_urn]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child.urn)
    return found


def cilium_values_by_cluster(plan: CapturedPlan, *, reveal_secrets: bool) -> dict[str, Any]:
    """The values each cluster's Cilium release receives, as the engine sent them."""
    by_cluster = {}
    for name, component in cluster_components(plan).items():
        for node in descendants(plan, component.urn):
            if node.type == HELM_RELEASE:
                by_cluster[name] = reveal(node.inputs.get("values", {}), secrets=reveal_secrets)
    return by_cluster


def write_plan(plan: CapturedPlan, out: Path, *, reveal_secrets: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "plan.json"]
    written[0].write_text(json.dumps(plan_document(plan, reveal_secrets=reveal_secrets), indent=2, sort_keys=True))
    for name, values in cilium_values_by_cluster(plan, reveal_secrets=reveal_secrets).items():
        path = out / "clusters" / name / "cilium-values.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(values, sort_keys=True))
        written.append(path)
    return written


def _label(node: Node, names: dict[str, str]) -> str:
    deps = [names.get(d, d.rsplit("::", 1)[-1]) for d in node.dependencies if d != node.parent]
    suffix = f"  [dim]<- {', '.join(deps)}[/dim]" if deps else ""
    if node.provider:
        suffix += f"  [dim]via {names.get(node.provider, node.provider)}[/dim]"
    read = " [dim](read)[/dim]" if node.read else ""
    return f"[bold]{node.name}[/bold] [cyan]{node.type}[/cyan]{read}{suffix}"


def print_tree(plan: CapturedPlan, console: Console) -> None:
    """One tree per cluster: every resource it creates, and what each waits for."""
    names = {n.urn: n.name for n in plan.nodes}
    children: dict[str, list[Node]] = {}
    for node in sorted(plan.nodes, key=lambda n: n.name):
        children.setdefault(node.parent, []).append(node)

    def grow(tree: Tree, urn: str) -> None:
        for child in children.get(urn, []):
            grow(tree.add(_label(child, names)), child.urn)

    tops = sorted((n for n in plan.nodes if n.parent not in names), key=lambda n: n.name)
    for top in tops:
        tree = Tree(_label(top, names))
        grow(tree, top.urn)
        console.print(tree)


def print_summary(plan: CapturedPlan, console: Console) -> None:
    counts = Counter(n.type for n in plan.nodes)
    table = Table(title=f"plan for stack {plan.stack}: {len(plan.nodes)} resources")
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_, count in sorted(counts.items()):
        table.add_row(type_, str(count))
    console.print(table)
