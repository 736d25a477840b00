"""What a plan shows a person (a tree per cluster, a summary) and writes for machines (plan.json, files)."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from clustermesh.cilium import CHART_NAME
from clustermesh.planner.graph import UNKNOWN, UNKNOWN_PLACEHOLDER, Node, Secret, reveal
from clustermesh.planner.runner import CapturedPlan
from components.tokens import (
    ADDRESS_PATCHES,
    HELM_RELEASE,
    KUBERNETES_CONFIGMAP,
    KUBERNETES_SECRET,
    LOCALLY_SIGNED_CERT,
    MESH,
    MESH_CLUSTER,
    OPENSTACK_INSTANCE,
    OPENSTACK_PORT,
    OPENSTACK_SECURITY_GROUP_RULE,
    REMOTE_COMMAND,
)

FABRICATED_NOTE = (
    "Each resource's id and outputs are what the planner's mocks answered (`clustermesh plan`), not state read "
    "from any cluster or cloud. Load balancer addresses, Helm release status and key material are fabricated; "
    "a Secret's data and stringData are answered empty (the program never reads them back); in a preview a "
    "resource not yet created has no id and only the outputs known before it exists."
)
"""The top-level `fabricated` entry of plan.json."""


def _resource_outputs(node: Node) -> Any:
    """A resource's answered state, with the outputs the SDK declares secret (additionalSecretOutputs) kept so."""
    if node.outputs is None:
        return None
    secret = set(node.options.get("additionalSecretOutputs", ()))
    if not secret:
        return node.outputs
    return {k: Secret(v) if k in secret and not isinstance(v, Secret) else v for k, v in node.outputs.items()}


def _resource_id(node: Node) -> str | None:
    """The answered id; the unknown marker for a resource a preview has not created; None for a component."""
    if not node.custom:
        return None
    return node.id if node.id else UNKNOWN_PLACEHOLDER


def plan_document(plan: CapturedPlan, *, reveal_secrets: bool) -> dict[str, Any]:
    return {
        "project": plan.project,
        "stack": plan.stack,
        "fabricated": FABRICATED_NOTE,
        "resources": [
            {
                "urn": n.urn,
                "type": n.type,
                "name": n.name,
                "parent": n.parent,
                "provider": n.provider,
                "dependencies": n.dependencies,
                "inputs": reveal(n.inputs, secrets=reveal_secrets),
                "id": _resource_id(n),
                "outputs": reveal(_resource_outputs(n), secrets=reveal_secrets),
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
            if node.type == HELM_RELEASE and node.inputs.get("chart") == CHART_NAME:  # not MetalLB's
                by_cluster[name] = reveal(node.inputs.get("values", {}), secrets=reveal_secrets)
    return by_cluster


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
    """Whether PyYAML writes `text` as it is, on one line: a plain scalar that still reads back as a string.

    A text PyYAML cannot even read back as what its resolver takes it for (`0b_` looks like a binary integer
    and is none) is not: PyYAML quotes it when it writes it.
    """
    if not _PLAIN_CANDIDATE.match(text):
        return False
    try:
        return bool(yaml.load(text, Loader=yaml.CSafeLoader) == text)
    except (yaml.YAMLError, ValueError):
        return False


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


OUT_MARKER = ".clustermesh-plan"
"""The file by which the planner knows an --out directory as its own, and empties it before writing."""
_MARKER_TEXT = (
    "Written by `clustermesh plan`. Each run empties this directory before it writes the new plan;\n"
    "the planner refuses a non-empty directory without this file.\n"
)


class OutDirError(Exception):
    """An --out directory the planner will not write into."""


def check_out_dir(out: Path) -> None:
    """Refuse `out` if it is not a directory, or holds files that an earlier plan did not write."""
    if out.exists() and not out.is_dir():
        raise OutDirError(f"{out} exists and is not a directory")
    if out.is_dir() and not (out / OUT_MARKER).is_file() and any(out.iterdir()):
        raise OutDirError(
            f"{out} is not empty and was not written by clustermesh plan (it has no {OUT_MARKER}): "
            "give a new or empty directory, or one an earlier plan wrote"
        )


def _claim(out: Path) -> None:
    """Make `out` an empty planner directory: the earlier plan's files (stale clusters, a CA key) all go."""
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    for entry in out.iterdir():
        if entry.name == OUT_MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (out / OUT_MARKER).write_text(_MARKER_TEXT)


PRIVATE_MODE = 0o600


def _write(path: Path, text: str, written: list[Path], *, private: bool = False) -> None:
    """Write `text`; a `private` file is created owner-only (never readable by others, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE if private else 0o666)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        if private:
            os.fchmod(file.fileno(), PRIVATE_MODE)
        file.write(text)
    written.append(path)


def write_plan(plan: CapturedPlan, out: Path, *, reveal_secrets: bool) -> list[Path]:
    """Write plan.json and each cluster's files under `out`, which is emptied first (see `OUT_MARKER`).

    Files with key material (ca.key, tls-secrets.yaml) are mode 0600; with `reveal_secrets` every file is, since
    plan.json and the values then hold secrets too.
    """
    _claim(out)
    written: list[Path] = []
    _write(
        out / "plan.json",
        json.dumps(plan_document(plan, reveal_secrets=reveal_secrets), indent=2, sort_keys=True),
        written,
        private=reveal_secrets,
    )
    for name, values in cilium_values_by_cluster(plan, reveal_secrets=reveal_secrets).items():
        _write(
            out / "clusters" / name / "cilium-values.yaml",
            _yaml([values], sort_keys=True),
            written,
            private=reveal_secrets,
        )
    for name, files in mesh_files_by_cluster(plan, reveal_secrets=reveal_secrets).items():
        for file_name, text in files.items():
            _write(out / "clusters" / name / file_name, text, written, private=reveal_secrets)
    for name, files in machine_files_by_cluster(plan).items():
        for file_name, text in files.items():
            _write(out / "clusters" / name / file_name, text, written, private=reveal_secrets)
    if (ca := ca_certificate(plan)) is not None:
        _write(out / "ca" / "ca.crt", ca, written)
    if reveal_secrets and (ca_key := ca_private_key(plan)) is not None:
        _write(out / "ca" / "ca.key", ca_key, written, private=True)
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
    """Per cluster: its clustermesh Secrets (no key material: addresses and file paths), its ConfigMaps (the
    clustermesh-apiserver's remote users) and address patch; with --reveal-secrets also its certificate Secrets,
    as applied.
    """
    owner = owners(plan)  # the same placement as the printed tree, so the files and the tree agree
    files: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for node in sorted(plan.nodes, key=lambda n: n.name):
        cluster = owner.get(node.urn)
        if cluster is None:
            continue
        if node.type == KUBERNETES_SECRET and node.inputs.get("type") == "Opaque":
            file_name = "clustermesh-secrets.yaml"
        elif node.type in ADDRESS_PATCHES and _urn_type(node.parent) == MESH:  # not a cluster's own patch
            file_name = "address-patch.yaml"
        elif node.type == KUBERNETES_CONFIGMAP:
            file_name = "configmaps.yaml"
        elif node.type == KUBERNETES_SECRET and reveal_secrets:
            file_name = "tls-secrets.yaml"
        else:
            continue
        files.setdefault(cluster, {}).setdefault(file_name, []).append(manifest(node))
    return {
        cluster: {name: _manifests_yaml(docs) for name, docs in by_file.items()} for cluster, by_file in files.items()
    }


def _urn_type(urn: str) -> str:
    """The resource type a URN names (`urn:pulumi:<stack>::<project>::<parent types$>type::<name>`)."""
    return urn.split("::")[2].rsplit("$", 1)[-1] if urn.count("::") >= 3 else ""


def machine_files_by_cluster(plan: CapturedPlan) -> dict[str, dict[str, str]]:
    """Per cluster the program builds, what its machines get, to review as text: `openstack.yaml` (each port's
    addresses and address pairs, each security-group rule), `user-data.yaml`, and `ssh/<command>.sh`, each script
    a node runs (none holds a secret: those travel on stdin, never written here)."""
    owner = owners(plan)
    files: dict[str, dict[str, str]] = {}
    network: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for node in sorted(plan.nodes, key=lambda n: n.name):
        cluster = owner.get(node.urn)
        if cluster is None or node.type not in _MACHINE_TYPES:
            continue
        args = reveal(node.inputs, secrets=False)
        here = files.setdefault(cluster, {})
        if node.type == OPENSTACK_INSTANCE:
            here["user-data.yaml"] = str(args.get("userData", ""))
        elif node.type == REMOTE_COMMAND:
            here[f"ssh/{node.name}.sh"] = str(args.get("create", ""))
        elif node.type == OPENSTACK_PORT:
            row = {"name": node.name, "fixedIps": [f.get("ipAddress") for f in args.get("fixedIps") or []]}
            if pairs := [p.get("ipAddress") for p in args.get("allowedAddressPairs") or []]:
                row["allowedAddressPairs"] = pairs
            network.setdefault(cluster, {}).setdefault("ports", []).append(row)
        else:
            keys = ("protocol", "portRangeMin", "portRangeMax", "remoteIpPrefix", "description")
            row = {"name": node.name, **{k: args[k] for k in keys if args.get(k) not in (None, "", 0)}}
            if args.get("remoteGroupId"):
                row["remote"] = "own security group"
            network.setdefault(cluster, {}).setdefault("securityGroupRules", []).append(row)
    for cluster, document in network.items():
        files.setdefault(cluster, {})["openstack.yaml"] = _yaml([document], sort_keys=False)
    return files


_MACHINE_TYPES = frozenset({OPENSTACK_INSTANCE, REMOTE_COMMAND, OPENSTACK_PORT, OPENSTACK_SECURITY_GROUP_RULE})


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


_SHARED = ""
"""The claim of a resource that more than one cluster waits on: it stays with the mesh."""


def owners(plan: CapturedPlan) -> dict[str, str]:
    """URN -> the cluster each resource goes to; a mesh-wide resource (and a component other than a
    MeshCluster) is absent.

    A resource belongs to a cluster when it is part of that cluster's MeshCluster, when it goes through a
    provider of that cluster (the Mesh's Secrets, ConfigMaps, address patches and reads), or else when that
    cluster's resources alone wait on it (a certificate, its key and request) or, waited on by none, it waits on
    that cluster's alone (a DNS record of its address). The CA, which every cluster's certificates wait on,
    stays with the mesh.
    """
    owner = _placed(plan.nodes)
    claims = _claims(plan.nodes, owner)
    resources = {n.urn for n in plan.nodes if n.custom}
    for node in plan.nodes:
        if node.urn in owner or not node.custom:
            continue
        claim = claims.get(node.urn)
        if claim is None:
            waits_on = {owner.get(d, claims.get(d, _SHARED)) for d in node.dependencies if d in resources}
            claim = waits_on.pop() if len(waits_on) == 1 else None
        if claim:
            owner[node.urn] = claim
    return owner


def _placed(nodes: list[Node]) -> dict[str, str]:
    """URN -> cluster, for the parts of each MeshCluster and whatever goes through one of its providers."""
    clusters = {n.urn: n.name for n in nodes if n.type == MESH_CLUSTER}
    owner: dict[str, str] = {}
    for node in nodes:  # parents register before their children
        if node.urn in clusters:
            owner[node.urn] = clusters[node.urn]
        elif node.parent in owner:
            owner[node.urn] = owner[node.parent]
    providers = {n.urn: owner[n.urn] for n in nodes if n.urn in owner and n.type.startswith("pulumi:providers:")}
    for node in nodes:
        if node.urn not in owner and node.provider in providers:
            owner[node.urn] = providers[node.provider]
    return owner


def _claims(nodes: list[Node], owner: dict[str, str]) -> dict[str, str]:
    """URN -> the one cluster whose resources alone wait on it (directly or not), or `_SHARED`.

    Claims flow from each resource to what it waits on; a resource registers after everything it waits on,
    so in reverse order each resource's claim is complete before it is passed on.
    """
    claims: dict[str, str] = {}
    for node in reversed(nodes):
        mine = owner.get(node.urn, claims.get(node.urn))
        if mine is None:
            continue
        for dependency in node.dependencies:
            if dependency not in owner:
                claims[dependency] = mine if claims.get(dependency, mine) == mine else _SHARED
    return claims


def _order(node: Node) -> tuple[str, str]:
    return node.name, node.type


def _grow(tree: Tree, urn: str, children: dict[str, list[Node]], keep: set[str], names: dict[str, str]) -> None:
    for child in children.get(urn, []):
        if child.urn in keep:
            _grow(tree.add(_label(child, names)), child.urn, children, keep, names)


def cluster_tree(plan: CapturedPlan, cluster: str, owner: dict[str, str] | None = None) -> Tree:
    """Everything that goes to `cluster`: its MeshCluster, and under the component that made them (the Mesh)
    the resources made for it elsewhere."""
    owner = owners(plan) if owner is None else owner
    nodes = {n.urn: n for n in plan.nodes}
    names = {urn: n.name for urn, n in nodes.items()}
    children = _children(sorted(plan.nodes, key=_order))
    keep = {urn for urn, name in owner.items() if name == cluster}
    (root,) = [n for n in plan.nodes if n.type == MESH_CLUSTER and n.name == cluster]
    tree = Tree(_label(root, names))
    _grow(tree, root.urn, children, keep, names)
    # The cluster's resources whose parent is not the cluster's: shown under that parent, as branches.
    made_elsewhere: dict[str, list[Node]] = {}
    for urn in sorted(keep, key=lambda u: _order(nodes[u])):
        node = nodes[urn]
        if node.parent not in keep and urn != root.urn:
            made_elsewhere.setdefault(node.parent, []).append(node)
    for parent, made in sorted(made_elsewhere.items(), key=lambda item: names.get(item[0], item[0])):
        maker = nodes.get(parent)
        heading = f"{maker.name} [cyan]{maker.type}[/cyan]" if maker else parent.rsplit("::", 1)[-1]
        branch = tree.add(f"[dim]made by[/dim] {heading}")
        for node in made:
            _grow(branch.add(_label(node, names)), node.urn, children, keep, names)
    return tree


def mesh_trees(plan: CapturedPlan, owner: dict[str, str] | None = None) -> list[Tree]:
    """The mesh-wide resources (the CA, the Mesh's providers), under each top-level component but the clusters."""
    owner = owners(plan) if owner is None else owner
    names = {n.urn: n.name for n in plan.nodes}
    children = _children(sorted(plan.nodes, key=_order))
    keep = {n.urn for n in plan.nodes if n.urn not in owner}
    trees = []
    for top in sorted((n for n in plan.nodes if n.parent not in names and n.urn in keep), key=lambda n: n.name):
        tree = Tree(f"{_label(top, names)} [dim](mesh-wide)[/dim]")
        _grow(tree, top.urn, children, keep, names)
        trees.append(tree)
    return trees


def print_tree(plan: CapturedPlan, console: Console, *, cluster: str | None = None) -> None:
    """One tree per cluster (every resource that goes to it), then the mesh-wide ones; or `cluster`'s alone."""
    owner = owners(plan)
    if cluster is not None:
        console.print(cluster_tree(plan, cluster, owner))
        return
    for name in sorted(cluster_components(plan)):
        console.print(cluster_tree(plan, name, owner))
    for tree in mesh_trees(plan, owner):
        console.print(tree)


def _address(plan: CapturedPlan) -> dict[str, str]:
    """Each cluster's clustermesh-apiserver address as the Mesh reports it (`addresses`), where it is known."""
    for node in plan.nodes:
        if node.type == MESH and isinstance(node.outputs, dict):
            addresses = node.outputs.get("addresses")
            if isinstance(addresses, dict):
                return {k: ", ".join(map(str, v)) for k, v in addresses.items() if isinstance(v, list) and v}
    return {}


def print_clusters(plan: CapturedPlan, console: Console) -> None:
    """One row per cluster: its resources, the peers its clustermesh Secrets name, their entries, its address."""
    owner = owners(plan)
    resources: Counter[str] = Counter(owner[n.urn] for n in plan.nodes if n.custom and n.urn in owner)
    peers: dict[str, set[str]] = {}
    entries: Counter[str] = Counter()
    pending: set[str] = set()
    for node in plan.nodes:
        if node.type == KUBERNETES_SECRET and node.inputs.get("type") == "Opaque" and node.urn in owner:
            cluster = owner[node.urn]
            data = node.inputs.get("data")
            data = data.value if isinstance(data, Secret) else data
            if data is UNKNOWN or not isinstance(data, dict):
                pending.add(cluster)
                continue
            peers.setdefault(cluster, set()).update(data)
            entries[cluster] += len(data)
    addresses = _address(plan)
    table = Table(title=f"{len(cluster_components(plan))} clusters of stack {plan.stack}")
    for column in ("cluster", "resources", "peers", "Secret entries", "address"):
        table.add_column(column, justify="left" if column in {"cluster", "address"} else "right")
    for name in sorted(cluster_components(plan)):
        unknown = name in pending
        table.add_row(
            name,
            str(resources[name]),
            UNKNOWN_PLACEHOLDER if unknown else str(len(peers.get(name, ()))),
            UNKNOWN_PLACEHOLDER if unknown else str(entries[name]),
            addresses.get(name, UNKNOWN_PLACEHOLDER),
        )
    console.print(table)


def print_summary(plan: CapturedPlan, console: Console, *, cluster: str | None = None) -> None:
    """Resources by type, of the whole plan or of `cluster`."""
    nodes = plan.nodes
    title = f"plan for stack {plan.stack}"
    if cluster is not None:
        owner = owners(plan)
        nodes = [n for n in nodes if owner.get(n.urn) == cluster]
        title += f", cluster {cluster}"
    counts = Counter(n.type for n in nodes)
    table = Table(title=f"{title}: {len(nodes)} resources")
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_, count in sorted(counts.items()):
        table.add_row(type_, str(count))
    console.print(table)
    underlay = plan.outputs.get("awsUnderlay")
    if cluster is None and isinstance(underlay, dict):
        # Which network joins the EKS clusters' VPCs is a choice the program makes: say which, and why.
        console.print(f"AWS underlay: {underlay.get('mode')} ({underlay.get('reason')})")
        for need in underlay.get("quotas") or []:
            console.print(f"  raise AWS quotas first: {need}")
