"""Deterministic, realistic outputs for what the cloud would return, so the program runs end to end offline.

Every value derives from the resource's name and inputs: the same stack plans to the same bytes, and
two plans can be diffed. In preview mode cloud-computed outputs are left out, which the engine reads as
unknown, exactly as in a `pulumi preview` of resources that do not exist yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from pulumi.runtime import Mocks
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from clustermesh.planner.graph import Secret, decode

State = dict[str, Any]
Fabricator = Callable[[MockResourceArgs, State], State]


def stable_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


def _helm_release(args: MockResourceArgs, inputs: State) -> State:
    return {
        "status": {
            "name": inputs.get("name", args.name),
            "namespace": inputs.get("namespace", "default"),
            "chart": inputs.get("chart"),
            "version": inputs.get("version"),
            "appVersion": inputs.get("version"),
            "revision": 1,
            "status": "deployed",
        }
    }


FABRICATORS: dict[str, Fabricator] = {
    "kubernetes:helm.sh/v3:Release": _helm_release,
}
"""Cloud-computed outputs by resource type; other resources echo their inputs, as a provider's state does."""


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class PlanMocks(Mocks):
    def __init__(self, *, preview: bool = False) -> None:
        self.preview = preview

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, State]:
        inputs = _plain(decode(args.inputs))
        state = dict(args.inputs)
        if args.resource_id:  # a read of an existing resource: the cloud knows it, even in preview
            fabricate = FABRICATORS.get(args.typ)
            return args.resource_id, {**state, **(fabricate(args, inputs) if fabricate else {})}
        if self.preview:
            return None, state
        fabricate = FABRICATORS.get(args.typ)
        if fabricate is not None:
            state.update(fabricate(args, inputs))
        return f"{args.name}-{stable_id(args.typ, args.name)}", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None
