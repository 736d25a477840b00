"""Every Kubernetes object the program applies validates with kubernetes-validate, in strict mode.

Strict mode refuses unknown fields, so a misspelt key fails here rather than being dropped by the API
server. Objects are taken from the planned graph exactly as the provider would send them (the same
`manifest` the planner writes), for meshes that between them produce every kind the program creates.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from clustermesh.planner.report import manifest
from clustermesh.planner.stackfile import load_stack
from tests.conftest import PROJECT_DIR, cluster, plan_raw, raw_config, three_clusters

OLDEST_KUBERNETES = "1.32"
"""The oldest Kubernetes checked: Cilium 1.20's tested range starts about here. The newest checked is the
newest kubernetes-validate knows; an API field removed in between fails one of the two."""
KUBERNETES_VERSIONS = [OLDEST_KUBERNETES, kubernetes_validate.utils.latest_version()]
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
"""Kubernetes' rule for Secret and ConfigMap keys (IsConfigMapKey); the JSON schema does not carry it."""
MAX_OBJECT_BYTES = 1024 * 1024

NATIVE = {"mode": "native"}


def _dev() -> tuple[dict[str, str], frozenset[str]]:
    stack = load_stack(PROJECT_DIR, stack="dev")
    return stack.config, stack.secret_keys


MESHES: dict[str, Callable[[], tuple[dict[str, str], frozenset[str]]]] = {
    "dev stack (1.20, KVStoreMesh, pinned LoadBalancers)": _dev,
    "1.19 with KVStoreMesh (Deployment patch)": lambda: (
        raw_config(three_clusters(), ciliumVersion="1.19.6"),
        frozenset(),
    ),
    "1.19 without KVStoreMesh (DaemonSet patch), NodePort": lambda: (
        raw_config(
            [
                cluster("a", 1, "10.1.0.0/16", apiserverExposure={"nodeAddresses": ["192.0.2.1", "192.0.2.2"]}),
                cluster("b", 2, "10.2.0.0/16", apiserverExposure={"nodeAddresses": ["192.0.2.3"]}),
            ],
            ciliumVersion="1.19.6",
            kvstoremesh="false",
            apiserverExposure={"type": "NodePort", "nodePort": 32379},
        ),
        frozenset(),
    ),
    "Calico chaining, native routing": lambda: (
        raw_config(
            [
                cluster("os1", 1, "10.1.0.0/16", cni="calico", nodeCidr="192.168.1.0/24", routing=NATIVE),
                cluster("os2", 2, "10.2.0.0/16", cni="calico", nodeCidr="192.168.2.0/24", routing=NATIVE),
            ],
            nativeRoutingCidrs=["10.0.0.0/8"],
        ),
        frozenset(),
    ),
}


@functools.cache
def _applied_objects(name: str) -> list[dict[str, Any]]:
    """Every object applied to a cluster (not provider configuration, not Helm releases, not reads)."""
    raw, secret_keys = MESHES[name]()
    plan = plan_raw(raw, secret_keys)
    return [
        manifest(n)
        for n in plan.nodes
        if n.type.startswith("kubernetes:")
        and n.custom
        and not n.read
        and "helm.sh" not in n.type
        and n.type != "pulumi:providers:kubernetes"
    ]


def _as_full_object(obj: dict[str, Any]) -> dict[str, Any]:
    """A workload patch set into the smallest complete object of its kind.

    A strategic-merge patch lacks the fields a complete DaemonSet or Deployment requires (selector,
    containers), which the chart's object supplies on the server. Strict validation of the patch's own
    fields needs a whole object, so the patch is placed into one; the patch's fields stay as they are.
    """
    if obj["kind"] not in {"DaemonSet", "Deployment"}:
        return obj
    full = copy.deepcopy(obj)
    labels = {"k8s-app": obj["metadata"]["name"]}
    spec = full.setdefault("spec", {})
    spec["selector"] = {"matchLabels": labels}
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})["labels"] = labels
    template.setdefault("spec", {})["containers"] = [{"name": "placeholder", "image": "registry.invalid/placeholder"}]
    return full


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0]


@pytest.mark.parametrize("mesh", sorted(MESHES))
def test_every_applied_object_validates_strictly(mesh: str) -> None:
    objects = _applied_objects(mesh)
    assert objects
    problems = []
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            try:
                kubernetes_validate.validate(_as_full_object(obj), version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{version} {obj['kind']}/{obj['metadata']['name']}: {_first_line(exc)}")
    assert problems == []


@pytest.mark.parametrize("mesh", sorted(MESHES))
def test_secret_and_configmap_keys_and_sizes_are_what_the_api_server_accepts(mesh: str) -> None:
    for obj in _applied_objects(mesh):
        for field in ("data", "stringData"):
            for key, value in (obj.get(field) or {}).items():
                assert SECRET_KEY.match(key), (obj["metadata"]["name"], key)
                if obj["kind"] == "Secret" and field == "data":
                    base64.b64decode(value, validate=True)
        assert len(json.dumps(obj)) < MAX_OBJECT_BYTES


def test_the_kinds_checked_cover_everything_the_program_applies() -> None:
    kinds = {(o["kind"], o.get("type")) for name in MESHES for o in _applied_objects(name)}
    assert kinds == {
        ("Secret", "kubernetes.io/tls"),
        ("Secret", "Opaque"),
        ("ConfigMap", None),
        ("DaemonSet", None),
        ("Deployment", None),
    }


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The check above can fail: an unknown field, as a typo in a renderer would produce, is refused."""
    secret = next(o for o in _applied_objects("Calico chaining, native routing") if o["kind"] == "Secret")
    broken = copy.deepcopy(secret)
    broken["metadata"]["namepsace"] = broken["metadata"].pop("namespace")
    with pytest.raises(kubernetes_validate.ValidationError, match="namepsace"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
