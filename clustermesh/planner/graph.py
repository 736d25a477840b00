"""The resource graph a program registers, captured from the engine's side of the wire.

Values keep two markers the engine knows about and a plain dict would lose: `Secret` (the value is
secret, and must not be shown unless asked) and `UNKNOWN` (the value is not known until the cloud
answers, as in a preview).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor, Mocks


@dataclass(frozen=True)
class Secret:
    value: Any


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
SECRET_PLACEHOLDER = "[secret]"
UNKNOWN_PLACEHOLDER = "[unknown]"


@dataclass
class Node:
    urn: str
    type: str
    name: str
    parent: str
    provider: str
    custom: bool
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    inputs: dict[str, Any]
    read: bool = False
    """Read from the cloud (`Resource.get`) rather than managed."""
    options: dict[str, Any] = field(default_factory=dict)


def decode(value: Any) -> Any:  # noqa: PLR0911 - one return per wire encoding
    """A property value as the engine sees it, with secrets and unknowns marked and integers restored.

    Numbers cross the wire as protobuf doubles, so `2379` arrives as `2379.0`; every integral double is
    turned back into an int, which is what the provider (and Helm, and Kubernetes) receive as JSON.
    """
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return Secret(decode(value.get("value")))
        if sig == rpc._special_resource_sig:
            return value.get("urn", "")
        if sig == rpc._special_output_value_sig:
            if "value" not in value:
                return UNKNOWN
            inner = decode(value["value"])
            return Secret(inner) if value.get("secret") else inner
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == rpc.UNKNOWN:
        return UNKNOWN
    return value


def reveal(value: Any, *, secrets: bool) -> Any:
    """A JSON-ready copy of a decoded value: secrets shown or replaced, unknowns spelled out."""
    if isinstance(value, Secret):
        return reveal(value.value, secrets=secrets) if secrets else SECRET_PLACEHOLDER
    if value is UNKNOWN:
        return UNKNOWN_PLACEHOLDER
    if isinstance(value, dict):
        return {k: reveal(v, secrets=secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, secrets=secrets) for v in value]
    return value


def _provider_urn(reference: str) -> str:
    """`<urn>::<id>` -> `<urn>`."""
    return reference.rsplit("::", 1)[0] if reference else ""


class GraphMonitor(MockMonitor):
    """A mock monitor that keeps what the stock one drops: parents, dependencies, providers, secrets."""

    def __init__(self, mocks: Mocks, on_register: Callable[[Node], None] | None = None) -> None:
        super().__init__(mocks)
        self.nodes: list[Node] = []
        self._on_register = on_register

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        node = Node(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            provider=_provider_urn(request.provider),
            custom=request.custom,
            dependencies=sorted(set(request.dependencies)),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            inputs=decode(json_format.MessageToDict(request.object)),
            options={
                "protect": request.protect,
                "deleteBeforeReplace": request.deleteBeforeReplace,
                "ignoreChanges": list(request.ignoreChanges),
                "replaceOnChanges": list(request.replaceOnChanges),
                "retainOnDelete": request.retainOnDelete,
                "additionalSecretOutputs": list(request.additionalSecretOutputs),
            },
        )
        self._record(node)
        return response

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        node = Node(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            provider=_provider_urn(request.provider),
            custom=True,
            dependencies=sorted(set(request.dependencies)),
            property_dependencies={},
            inputs={"id": request.id, **decode(json_format.MessageToDict(request.properties))},
            read=True,
        )
        self._record(node)
        return response

    def _record(self, node: Node) -> None:
        self.nodes.append(node)
        if self._on_register is not None:
            self._on_register(node)
