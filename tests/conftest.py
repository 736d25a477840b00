"""Shared fixtures: config builders, and the real program run under the planner's mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime.mocks import MockResourceArgs

from clustermesh.planner.fabricate import PlanMocks
from clustermesh.planner.runner import CapturedPlan, run_program
from clustermesh.planner.stackfile import StackSettings
from tests.neutron import neutron_server_fixture

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def cluster(name: str, cluster_id: int, pod_cidr: str, **overrides: Any) -> dict[str, Any]:
    """A valid `existing` cluster entry as written in a stack file."""
    entry: dict[str, Any] = {
        "name": name,
        "id": cluster_id,
        "kind": "existing",
        "podCidrs": [pod_cidr],
        "serviceCidr": "10.96.0.0/12",
        "kubeconfig": {"path": "~/.kube/config", "context": name},
    }
    entry.update(overrides)
    return entry


def three_clusters() -> list[dict[str, Any]]:
    return [
        cluster("alpha", 1, "10.11.0.0/16", nodeCidr="172.17.1.0/24"),
        cluster("beta", 2, "10.12.0.0/16", nodeCidr="172.17.2.0/24"),
        cluster("gamma", 3, "10.13.0.0/16", nodeCidr="172.17.3.0/24"),
    ]


def raw_config(clusters: list[dict[str, Any]], **mesh: Any) -> dict[str, str]:
    """Config as the engine hands it to the program: namespaced keys, strings, objects as JSON."""
    raw = {"clustermesh:clusters": json.dumps(clusters)}
    for key, value in mesh.items():
        raw[f"clustermesh:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return raw


COMPLIANT_EXPOSURE = {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"]}
"""A LoadBalancer the policy pack accepts (restricted); the bare default is open to the world."""


def write_stack_file(path: Path, clusters: list[dict[str, Any]], **mesh: Any) -> Path:
    mesh.setdefault("apiserverExposure", COMPLIANT_EXPOSURE)
    config: dict[str, Any] = {"pulumi:disable-default-providers": ["*"], "clustermesh:clusters": clusters}
    config.update({f"clustermesh:{k}": v for k, v in mesh.items()})
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def plan_raw(
    raw: dict[str, str],
    secret_keys: frozenset[str] = frozenset(),
    *,
    preview: bool = False,
    mocks: type[PlanMocks] = PlanMocks,
) -> CapturedPlan:
    """Run the real __main__.py under the planner's mocks (or `mocks`) with this config; return the captured plan."""
    settings = StackSettings("clustermesh", "test", PROJECT_DIR / "Pulumi.test.yaml", raw, secret_keys)
    return run_program(PROJECT_DIR, settings, preview=preview, mocks=mocks)


LOAD_BALANCER_IPS = {
    "alpha-clustermesh-apiserver": ["203.0.113.17", "198.51.100.4"],
    "beta-clustermesh-apiserver": ["198.51.100.9"],
    "gamma-clustermesh-apiserver": ["203.0.113.2"],
}
"""What the clustermesh-apiserver load balancers of alpha, beta and gamma report under `ReportingMocks`."""


class ReportingMocks(PlanMocks):
    """Load balancers that report the addresses above, as a cloud would once they exist."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = super().new_resource(args)
        if args.typ == "kubernetes:core/v1:Service" and "status" in state:
            ingress = [{"ip": ip} for ip in LOAD_BALANCER_IPS[args.name]]
            state = state | {"status": {"loadBalancer": {"ingress": ingress}}}
        return resource_id, state


neutron_server = pytest.fixture(scope="session", name="neutron_server")(neutron_server_fixture)
"""One real Neutron API (Debian's neutron-server on loopback) for every test that needs it."""
