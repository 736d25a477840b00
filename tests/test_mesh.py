"""Mesh wiring under mocks: who learns of whom, what 1.19 needs, and what stays unknown in preview."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from clustermesh.planner.graph import UNKNOWN_PLACEHOLDER, reveal
from clustermesh.planner.runner import CapturedPlan
from clustermesh.planner.stackfile import load_stack
from tests.conftest import PROJECT_DIR, plan_raw, raw_config, three_clusters


def _opaque_secrets(plan: CapturedPlan) -> dict[str, Any]:
    return {
        n.name: reveal(n.inputs, secrets=True)
        for n in plan.nodes
        if n.type == "kubernetes:core/v1:Secret" and n.inputs.get("type") == "Opaque"
    }


def test_dev_stack_secrets_name_exactly_the_other_clusters() -> None:
    stack = load_stack(PROJECT_DIR, stack="dev")
    plan = plan_raw(stack.config, stack.secret_keys)
    secrets = _opaque_secrets(plan)
    names = {"k3scl1", "k3scl2", "k3scl3"}
    for cluster in names:
        for kind in ("cilium-clustermesh", "cilium-kvstoremesh"):
            assert set(secrets[f"{cluster}-{kind}"]["data"]) == names - {cluster}, (cluster, kind)
        remote = yaml.safe_load(
            base64.b64decode(secrets[f"{cluster}-cilium-kvstoremesh"]["data"][sorted(names - {cluster})[0]])
        )
        assert remote["endpoints"][0].endswith(".mesh.cilium.io:2379")
    assert not [n for n in plan.nodes if n.type.endswith("Patch")], "Cilium 1.20 needs no pod-template patch"


def test_cilium_1_19_gets_a_host_aliases_patch_instead_of_in_file_aliases() -> None:
    plan = plan_raw(raw_config(three_clusters(), ciliumVersion="1.19.6", kvstoremesh="false"))
    patches = {
        n.name: reveal(n.inputs, secrets=True) for n in plan.nodes if n.type == "kubernetes:apps/v1:DaemonSetPatch"
    }
    assert sorted(patches) == ["alpha-address-patch", "beta-address-patch", "gamma-address-patch"]
    aliases = patches["alpha-address-patch"]["spec"]["template"]["spec"]["hostAliases"]
    assert sorted(h for a in aliases for h in a["hostnames"]) == ["beta.mesh.cilium.io", "gamma.mesh.cilium.io"]
    secrets = _opaque_secrets(plan)
    config = base64.b64decode(secrets["alpha-cilium-clustermesh"]["data"]["beta"]).decode()
    assert "cilium-host-aliases" not in config and "common-etcd-client.crt" in config


def test_preview_with_unknown_load_balancers_plans_and_leaves_secrets_pending() -> None:
    """The remote entries wait for the peers' addresses; the agents' KVStoreMesh entries need only their names."""
    plan = plan_raw(raw_config(three_clusters()), preview=True)
    secrets = _opaque_secrets(plan)
    assert len(secrets) == 6
    for cluster in ("alpha", "beta", "gamma"):
        assert secrets[f"{cluster}-cilium-kvstoremesh"]["data"] == UNKNOWN_PLACEHOLDER
        assert sorted(secrets[f"{cluster}-cilium-clustermesh"]["data"]) == sorted(
            {"alpha", "beta", "gamma"} - {cluster}
        )
    services = {n.urn for n in plan.nodes if n.read}
    agents = [n for n in plan.nodes if n.name.endswith("-cilium-clustermesh")]
    assert agents and not [n.name for n in agents if services & set(n.dependencies)], (
        "agents' Secrets wait on no address"
    )


def test_without_kvstoremesh_the_agents_secret_waits_for_the_addresses() -> None:
    plan = plan_raw(raw_config(three_clusters(), kvstoremesh="false"), preview=True)
    secrets = _opaque_secrets(plan)
    assert sorted(secrets) == ["alpha-cilium-clustermesh", "beta-cilium-clustermesh", "gamma-cilium-clustermesh"]
    assert all(s["data"] == UNKNOWN_PLACEHOLDER for s in secrets.values())


def test_pinned_addresses_make_every_mesh_value_known_at_preview() -> None:
    stack = load_stack(PROJECT_DIR, stack="dev")
    plan = plan_raw(stack.config, stack.secret_keys, preview=True)
    secrets = [n for n in plan.nodes if n.type == "kubernetes:core/v1:Secret" and n.inputs.get("type") == "Opaque"]
    assert len(secrets) == 6
    assert all(isinstance(reveal(n.inputs, secrets=True)["data"], dict) for n in secrets)
