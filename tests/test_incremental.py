"""Adding or removing a cluster, shown by diffing two plan.json files as the planner writes them.

What must hold (and what `pulumi preview` then shows): the existing clusters change only in their
clustermesh Secrets, by exactly the entry of the cluster that joins or leaves, and in the remote users their
clustermesh-apiserver grants, by exactly that cluster's user; no Helm release and, on Cilium 1.20, no pod
template of an existing cluster changes; the new cluster's resources are created (its own Secrets among them),
the removed cluster's deleted, and nothing else is created, replaced or deleted.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from clustermesh.planner.report import write_plan
from tests.conftest import cluster, plan_raw, raw_config, three_clusters

DELTA = cluster("delta", 4, "10.14.0.0/16", nodeCidr="172.17.4.0/24")
CLUSTERMESH_SECRETS = ("cilium-clustermesh", "cilium-kvstoremesh")
REMOTE_USERS = "clustermesh-remote-users"
"""The ConfigMap listing the etcd users a cluster's clustermesh-apiserver grants its peers, `remote-<peer>`."""


def _plan_json(clusters: list[dict[str, Any]], out: Path, **mesh: Any) -> dict[str, dict[str, Any]]:
    """Plan these clusters, write the plan as `clustermesh plan --reveal-secrets` does, read plan.json back."""
    write_plan(plan_raw(raw_config(clusters, **mesh)), out, reveal_secrets=True)
    document = json.loads((out / "plan.json").read_text())
    return {resource["urn"]: resource for resource in document["resources"]}


def _owner(resource: dict[str, Any], names: set[str]) -> str:
    """The cluster a resource belongs to: its own name, or the prefix of a Mesh child's name."""
    return next(
        n for n in sorted(names, key=len, reverse=True) if resource["name"] == n or resource["name"].startswith(f"{n}-")
    )


def _users(resource: dict[str, Any]) -> set[str]:
    """The etcd users a remote-users ConfigMap names."""
    (document,) = resource["inputs"]["data"].values()
    return {user["name"] for user in yaml.safe_load(document)["users"]}


def _split(changed: dict[str, tuple[Any, Any]], after: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """The changed clustermesh Secrets and the changed remote-users ConfigMaps, by URN."""
    maps = {u: v for u, v in changed.items() if after[u]["inputs"].get("metadata", {}).get("name") == REMOTE_USERS}
    return {u: v for u, v in changed.items() if u not in maps}, maps


def _changed(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    """URN -> (inputs before, inputs after), for every resource in both plans whose inputs differ."""
    return {
        urn: (before[urn]["inputs"], after[urn]["inputs"])
        for urn in before.keys() & after.keys()
        if before[urn]["inputs"] != after[urn]["inputs"]
    }


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    root = tmp_path_factory.mktemp("grow")
    return _plan_json(three_clusters(), root / "n3"), _plan_json([*three_clusters(), DELTA], root / "n4")


def test_adding_a_cluster_changes_only_the_existing_clustermesh_secrets(
    grown: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    before, after = grown
    changed = _changed(before, after)
    existing = ("alpha", "beta", "gamma")
    assert sorted(after[urn]["name"] for urn in changed) == sorted(
        [f"{c}-{s}" for c in existing for s in CLUSTERMESH_SECRETS] + [f"{c}-{REMOTE_USERS}" for c in existing]
    )
    secrets, users = _split(changed, after)
    for old, new in secrets.values():
        assert {k: v for k, v in new.items() if k != "data"} == {k: v for k, v in old.items() if k != "data"}
        assert set(new["data"]) - set(old["data"]) == {"delta"}, "one entry added"
        assert {k: new["data"][k] for k in old["data"]} == old["data"], "existing entries untouched"
    for urn in users:
        assert _users(after[urn]) - _users(before[urn]) == {"remote-delta"}, "one user granted"
        assert _users(before[urn]) <= _users(after[urn]), "no user revoked"


def test_adding_a_cluster_deletes_nothing_and_creates_only_the_new_clusters_resources(
    grown: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    before, after = grown
    assert before.keys() - after.keys() == set(), "nothing deleted"
    created = [after[urn] for urn in after.keys() - before.keys()]
    names = {"alpha", "beta", "gamma", "delta"}
    assert {_owner(r, names) for r in created} == {"delta"}
    created_types = sorted({r["type"] for r in created})
    assert "kubernetes:helm.sh/v3:Release" in created_types and "kubernetes:core/v1:Secret" in created_types


def _secrets_by_provider(plan: dict[str, dict[str, Any]], provider: str) -> dict[str, dict[str, Any]]:
    """The Secrets applied through `provider`, by their name in the cluster."""
    return {
        r["inputs"]["metadata"]["name"]: r
        for r in plan.values()
        if r["type"] == "kubernetes:core/v1:Secret" and r["provider"] == provider
    }


def test_adding_a_cluster_creates_the_new_clusters_own_secrets(grown: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The joining cluster's clustermesh Secrets, naming every cluster already there, and its certificate Secrets,
    the same set each existing cluster has, are all among the additions."""
    before, after = grown
    created = {urn: after[urn] for urn in after.keys() - before.keys()}
    (delta_provider,) = [urn for urn, r in created.items() if r["type"] == "pulumi:providers:kubernetes"]
    (alpha_provider,) = [urn for urn, r in before.items() if r["name"] == "alpha-k8s"]
    added = _secrets_by_provider(created, delta_provider)
    assert _secrets_by_provider(after, delta_provider) == added, "every Secret of the new cluster is an addition"

    for secret_name in CLUSTERMESH_SECRETS:
        assert secret_name in added, f"the new cluster's {secret_name} Secret is created"
        assert sorted(added[secret_name]["inputs"]["data"]) == ["alpha", "beta", "gamma"]
        assert added[secret_name]["inputs"]["metadata"]["namespace"] == "kube-system"

    alpha_certificates = {
        name: r for name, r in _secrets_by_provider(before, alpha_provider).items() if r["inputs"]["type"] != "Opaque"
    }
    assert alpha_certificates, "an existing cluster has certificate Secrets to compare with"
    delta_certificates = {name: r for name, r in added.items() if r["inputs"]["type"] != "Opaque"}
    assert sorted(delta_certificates) == sorted(alpha_certificates)
    for name, secret in delta_certificates.items():
        assert secret["inputs"]["type"] == alpha_certificates[name]["inputs"]["type"] == "kubernetes.io/tls"
        assert sorted(secret["inputs"]["stringData"]) == ["ca.crt", "tls.crt", "tls.key"]
        assert secret["inputs"]["stringData"]["tls.crt"] != alpha_certificates[name]["inputs"]["stringData"]["tls.crt"]


def test_adding_a_cluster_changes_no_release_and_no_pod_template(grown: tuple[dict[str, Any], dict[str, Any]]) -> None:
    before, after = grown
    releases = [urn for urn, r in before.items() if r["type"] == "kubernetes:helm.sh/v3:Release"]
    assert len(releases) == 3
    assert all(before[urn]["inputs"] == after[urn]["inputs"] for urn in releases)
    workload_types = ("DaemonSet", "Deployment", "DaemonSetPatch", "DeploymentPatch")
    assert not [r for r in after.values() if r["type"].rsplit(":", 1)[-1] in workload_types]


def test_removing_a_cluster_removes_its_entry_everywhere_and_deletes_only_its_resources(tmp_path: Path) -> None:
    alpha, beta, gamma = three_clusters()
    before = _plan_json([alpha, beta, gamma, DELTA], tmp_path / "n4")
    after = _plan_json([alpha, gamma, DELTA], tmp_path / "n3")
    assert after.keys() - before.keys() == set(), "nothing created"
    names = {"alpha", "beta", "gamma", "delta"}
    assert {_owner(before[urn], names) for urn in before.keys() - after.keys()} == {"beta"}
    changed = _changed(before, after)
    remaining = ("alpha", "gamma", "delta")
    assert sorted(after[urn]["name"] for urn in changed) == sorted(
        [f"{c}-{s}" for c in remaining for s in CLUSTERMESH_SECRETS] + [f"{c}-{REMOTE_USERS}" for c in remaining]
    )
    secrets, users = _split(changed, after)
    for old, new in secrets.values():
        assert set(old["data"]) - set(new["data"]) == {"beta"}
        assert new["data"] == {k: v for k, v in old["data"].items() if k != "beta"}
    for urn in users:
        assert _users(before[urn]) - _users(after[urn]) == {"remote-beta"}, "beta's access revoked, no other"
        assert _users(after[urn]) <= _users(before[urn])
    for resource in after.values():
        text = json.dumps(resource["inputs"])
        assert "beta.mesh.cilium.io" not in text and "remote-beta" not in text
        if resource["type"] != "kubernetes:core/v1:Secret":
            continue
        for entry in (resource["inputs"].get("data") or {}).values():
            assert "beta" not in yaml.safe_load(base64.b64decode(entry))["endpoints"][0]


def test_on_cilium_1_19_a_new_cluster_also_changes_the_host_aliases_patches(tmp_path: Path) -> None:
    """The contrast that makes 1.20's in-file aliases worth having: on 1.19 every agent pod template changes."""
    mesh = {"ciliumVersion": "1.19.6", "kvstoremesh": "false"}
    before = _plan_json(three_clusters(), tmp_path / "n3", **mesh)
    after = _plan_json([*three_clusters(), DELTA], tmp_path / "n4", **mesh)
    changed_types = {after[urn]["type"] for urn in _changed(before, after)}
    assert changed_types == {
        "kubernetes:core/v1:Secret",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:apps/v1:DaemonSetPatch",
    }
    releases = [urn for urn, r in before.items() if r["type"] == "kubernetes:helm.sh/v3:Release"]
    assert all(before[urn]["inputs"] == after[urn]["inputs"] for urn in releases)
