"""What a plan shows a person (a tree per cluster, a summary) and writes for machines (plan.json, files)."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from clustermesh.planner.graph import UNKNOWN_PLACEHOLDER, Node, reveal
from clustermesh.planner.runner import CapturedPlan
from components.tokens import (
    ADDRESS_PATCHES,
    HELM_RELEASE,
    KUBERNETES_PROVIDER,
    KUBERNETES_SECRET,
    LOCALLY_SIGNED_CERT,
    MESH_CLUSTER,
)


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


def descendants(root_urn: str, children: dict[str, list[Node]]) -> list[Node]:
    found, stack = [], [root_urn]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child.urn)
    return found


def _children(nodes: Iterable[Node]) -> dict[str, list[Node]]:
    """Each parent's children, in the order of `nodes`."""
    children: dict[str, list[Node]] = {}
    for node in nodes:
        children.setdefault(node.parent, []).append(node)
    return children


def cilium_values_by_cluster(plan: CapturedPlan, *, reveal_secrets: bool) -> dict[str, Any]:
    """The values each cluster's Cilium release receives, as the engine sent them."""
    by_cluster = {}
    children = _children(plan.nodes)  # once: a walk per cluster over every node would be quadratic
    for name, component in cluster_components(plan).items():
        for node in descendants(component.urn, children):
            if node.type == HELM_RELEASE:
                by_cluster[name] = reveal(node.inputs.get("values", {}), secrets=reveal_secrets)
    return by_cluster


def _cluster_of(plan: CapturedPlan) -> dict[str, str]:
    """Provider URN -> cluster name: a Kubernetes resource belongs to the cluster its provider reaches."""
    components = {n.urn: n.name for n in plan.nodes if n.type == MESH_CLUSTER}
    return {n.urn: components[n.parent] for n in plan.nodes if n.type == KUBERNETES_PROVIDER and n.parent in components}


def manifest(node: Node) -> dict[str, Any]:
    """The object a Kubernetes resource applies, as its provider sends it (callers decide what may be shown)."""
    group_version, kind = node.type.removeprefix("kubernetes:").rsplit(":", 1)
    group, version = group_version.split("/")
    api_version = version if group == "core" else f"{group}/{version}"
    body = {k: v for k, v in reveal(node.inputs, secrets=True).items() if k not in {"apiVersion", "kind"}}
    return {"apiVersion": api_version, "kind": kind.removesuffix("Patch"), **body}


def _yaml(documents: list[Any], *, sort_keys: bool = False) -> str:
    # libyaml's emitter: the pure-Python one spends seconds per cluster on a large mesh's base64 entries.
    return yaml.dump_all(documents, Dumper=yaml.CSafeDumper, sort_keys=sort_keys)


_PLAIN_CANDIDATE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+/=._-]*\Z")
SIMPLE_KEY_LENGTH = 128
"""PyYAML writes a longer mapping key as an explicit `? key` entry."""


@functools.lru_cache(maxsize=8192)
def _plain_scalar(text: str) -> bool:
    """Whether PyYAML writes `text` as it is, on one line: a plain scalar that still reads back as a string."""
    return bool(_PLAIN_CANDIDATE.match(text)) and yaml.load(text, Loader=yaml.CSafeLoader) == text


def _plain_key(key: Any) -> bool:
    return type(key) is str and len(key) < SIMPLE_KEY_LENGTH and _plain_scalar(key)


def _flat_entry(key: Any, value: Any) -> str | None:
    """`key:` and its entries, for a mapping of plain strings (a Secret's `data`); None for anything else."""
    if not (_plain_key(key) and isinstance(value, dict) and value):
        return None
    lines = [f"{key}:\n"]
    for k, v in value.items():
        if not (_plain_key(k) and type(v) is str and _plain_scalar(v)):
            return None
        lines.append(f"  {k}: {v}\n")
    return "".join(lines)


def _manifests_yaml(documents: list[dict[str, Any]]) -> str:
    """The same text as `_yaml(documents)`, without a YAML node per entry of a Secret's `data`.

    A 511-cluster mesh writes half a million such entries, and PyYAML represents each one in Python even
    with libyaml's emitter. A top-level entry of a block mapping is written the same alone as within its
    document, so each is written on its own: a flat mapping of plain strings directly, anything else by
    PyYAML. (`manifest` builds each document afresh, so no object is shared between entries.)
    """
    texts = []
    for document in documents:
        if not document:
            return _yaml(documents)
        texts.append("".join(_flat_entry(k, v) or _yaml([{k: v}]) for k, v in document.items()))
    return "---\n".join(texts)


def _write(path: Path, text: str, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    written.append(path)


def write_plan(plan: CapturedPlan, out: Path, *, reveal_secrets: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    _write(
        out / "plan.json",
        json.dumps(plan_document(plan, reveal_secrets=reveal_secrets), indent=2, sort_keys=True),
        written,
    )
    for name, values in cilium_values_by_cluster(plan, reveal_secrets=reveal_secrets).items():
        _write(out / "clusters" / name / "cilium-values.yaml", _yaml([values], sort_keys=True), written)
    for name, files in mesh_files_by_cluster(plan, reveal_secrets=reveal_secrets).items():
        for file_name, text in files.items():
            _write(out / "clusters" / name / file_name, text, written)
    if (ca := ca_certificate(plan)) is not None:
        _write(out / "ca" / "ca.crt", ca, written)
    if reveal_secrets and (ca_key := ca_private_key(plan)) is not None:
        _write(out / "ca" / "ca.key", ca_key, written)
    return written


def _issued(value: Any) -> str | None:
    """A PEM the planner can write; None in a preview, where nothing is issued yet."""
    return None if value == UNKNOWN_PLACEHOLDER else str(value)


def ca_certificate(plan: CapturedPlan) -> str | None:
    """The mesh CA certificate, as every cluster's TLS Secrets carry it (`ca.crt`)."""
    for node in plan.nodes:
        if node.type == KUBERNETES_SECRET and node.inputs.get("type") == "kubernetes.io/tls":
            files = reveal(node.inputs["stringData"], secrets=True)
            return _issued(files["ca.crt"] if isinstance(files, dict) else files)
    return None


def ca_private_key(plan: CapturedPlan) -> str | None:
    """The mesh CA key, as every certificate it signs receives it."""
    for node in plan.nodes:
        if node.type == LOCALLY_SIGNED_CERT:
            return _issued(reveal(node.inputs["caPrivateKeyPem"], secrets=True))
    return None


def mesh_files_by_cluster(plan: CapturedPlan, *, reveal_secrets: bool) -> dict[str, dict[str, str]]:
    """Per cluster: its clustermesh Secrets (no key material: addresses and file paths) and address patch;
    with --reveal-secrets also its certificate Secrets, as applied.
    """
    cluster_of = _cluster_of(plan)
    files: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for node in sorted(plan.nodes, key=lambda n: n.name):
        cluster = cluster_of.get(node.provider)
        if cluster is None:
            continue
        if node.type == KUBERNETES_SECRET and node.inputs.get("type") == "Opaque":
            file_name = "clustermesh-secrets.yaml"
        elif node.type in ADDRESS_PATCHES:
            file_name = "address-patch.yaml"
        elif node.type == KUBERNETES_SECRET and reveal_secrets:
            file_name = "tls-secrets.yaml"
        else:
            continue
        files.setdefault(cluster, {}).setdefault(file_name, []).append(manifest(node))
    return {
        cluster: {name: _manifests_yaml(docs) for name, docs in by_file.items()} for cluster, by_file in files.items()
    }


LABEL_DEPENDENCIES = 4
"""How many of a resource's dependencies the tree names before it counts the rest."""


def _label(node: Node, names: dict[str, str]) -> str:
    waits_on = [d for d in node.dependencies if d != node.parent]
    deps = [names.get(d, d.rsplit("::", 1)[-1]) for d in waits_on[:LABEL_DEPENDENCIES]]
    if len(waits_on) > LABEL_DEPENDENCIES:
        # A clustermesh Secret waits on every peer's address: a count reads better than 510 names.
        deps.append(f"and {len(waits_on) - LABEL_DEPENDENCIES} more")
    suffix = f"  [dim]<- {', '.join(deps)}[/dim]" if deps else ""
    if node.provider:
        suffix += f"  [dim]via {names.get(node.provider, node.provider)}[/dim]"
    read = " [dim](read)[/dim]" if node.read else ""
    return f"[bold]{node.name}[/bold] [cyan]{node.type}[/cyan]{read}{suffix}"


def print_tree(plan: CapturedPlan, console: Console) -> None:
    """One tree per cluster: every resource it creates, and what each waits for."""
    names = {n.urn: n.name for n in plan.nodes}
    children = _children(sorted(plan.nodes, key=lambda n: n.name))

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
