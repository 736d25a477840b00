"""Adding or removing a cluster, shown by diffing two plan.json files as the planner writes them.

What must hold (and what `pulumi preview` then shows): the existing clusters change only in their
clustermesh Secrets, by exactly the entry of the cluster that joins or leaves; no Helm release and, on
Cilium 1.20, no pod template of an existing cluster changes; the new cluster's resources are created,
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
    assert sorted(after[urn]["name"] for urn in changed) == sorted(
        f"{c}-{s}" for c in ("alpha", "beta", "gamma") for s in CLUSTERMESH_SECRETS
    )
    for old, new in changed.values():
        assert {k: v for k, v in new.items() if k != "data"} == {k: v for k, v in old.items() if k != "data"}
        assert set(new["data"]) - set(old["data"]) == {"delta"}, "one entry added"
        assert {k: new["data"][k] for k in old["data"]} == old["data"], "existing entries untouched"


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
    # Its own peers: the new cluster's clustermesh Secrets name exactly the three that were there.
    for resource in created:
        if resource["name"] in {f"delta-{s}" for s in CLUSTERMESH_SECRETS}:
            assert sorted(resource["inputs"]["data"]) == ["alpha", "beta", "gamma"]


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
    assert sorted(after[urn]["name"] for urn in changed) == sorted(
        f"{c}-{s}" for c in ("alpha", "gamma", "delta") for s in CLUSTERMESH_SECRETS
    )
    for old, new in changed.values():
        assert set(old["data"]) - set(new["data"]) == {"beta"}
        assert new["data"] == {k: v for k, v in old["data"].items() if k != "beta"}
    for resource in after.values():
        text = json.dumps(resource["inputs"])
        assert "beta.mesh.cilium.io" not in text
        for entry in (resource["inputs"].get("data") or {}).values():
            assert "beta" not in yaml.safe_load(base64.b64decode(entry))["endpoints"][0]


def test_on_cilium_1_19_a_new_cluster_also_changes_the_host_aliases_patches(tmp_path: Path) -> None:
    """The contrast that makes 1.20's in-file aliases worth having: on 1.19 every agent pod template changes."""
    mesh = {"ciliumVersion": "1.19.6", "kvstoremesh": "false"}
    before = _plan_json(three_clusters(), tmp_path / "n3", **mesh)
    after = _plan_json([*three_clusters(), DELTA], tmp_path / "n4", **mesh)
    changed_types = {after[urn]["type"] for urn in _changed(before, after)}
    assert changed_types == {"kubernetes:core/v1:Secret", "kubernetes:apps/v1:DaemonSetPatch"}
    releases = [urn for urn, r in before.items() if r["type"] == "kubernetes:helm.sh/v3:Release"]
    assert all(before[urn]["inputs"] == after[urn]["inputs"] for urn in releases)
