"""The resource graph a program registers, captured from the engine's side of the wire.

Values keep two markers the engine knows about and a plain dict would lose: `Secret` (the value is
secret, and must not be shown unless asked) and `UNKNOWN` (the value is not known until the cloud
answers, as in a preview).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.proto import resource_pb2

from components.tokens import STACK


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
    inputs: dict[str, Any]
    read: bool = False
    """Read from the cloud (`Resource.get`) rather than managed."""
    options: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    """The id the mocks answered (None for a component, and for a resource a preview has not created)."""
    outputs: dict[str, Any] | None = None
    """The state the mocks answered (decoded, each echoed input shared with `inputs`, not copied); for a component,
    the outputs it registered. None where nothing was answered."""


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


def reveal(value: Any, *, secrets: bool, unknown: Any = UNKNOWN_PLACEHOLDER) -> Any:
    """A plain copy of a decoded value: secrets shown or replaced, each unknown as `unknown` (spelled out
    for JSON by default; the engine's own marker for a policy)."""
    if isinstance(value, Secret):
        return reveal(value.value, secrets=secrets, unknown=unknown) if secrets else SECRET_PLACEHOLDER
    if value is UNKNOWN:
        return unknown
    if isinstance(value, dict):
        return {k: reveal(v, secrets=secrets, unknown=unknown) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, secrets=secrets, unknown=unknown) for v in value]
    return value


def provider_urn(reference: str) -> str:
    """`<urn>::<id>` -> `<urn>`."""
    return reference.rsplit("::", 1)[0] if reference else ""


class GraphMonitor(MockMonitor):
    """A mock monitor that keeps what the stock one drops: parents, dependencies, providers, secrets.

    It also answers in one pass. The stock monitor turns each request into Python objects and the mocks'
    state back into protobuf through the SDK's async (de)serializers, one await per property; a
    511-cluster mesh sends half a million Secret entries, and those awaits were most of its plan time.
    Here each request is converted once, sharing equal strings (a mesh repeats every clustermesh entry and
    peer URN across clusters), and the state goes back with `Struct.update`. The wire forms of secrets and
    unknowns pass through both untouched.
    """

    def __init__(self, mocks: Mocks, on_register: Callable[[Node], None] | None = None) -> None:
        super().__init__(mocks)
        self.nodes: list[Node] = []
        self._on_register = on_register
        self._strings: dict[str, str] = {}
        self._by_urn: dict[str, Node] = {}

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        wire_inputs, resource_id, state = self._answer(request, request.object, request.importId, custom=request.custom)
        # What the engine does for `additional_secret_outputs`: those outputs come back secret, in the state and to
        # the program (a command's stdout, say), whatever the provider's schema says.
        for name in request.additionalSecretOutputs:
            if name in state and not _is_secret(state[name]):
                state[name] = {rpc._special_sig_key: rpc._special_secret_sig, "value": state[name]}
        inputs = decode(wire_inputs)
        self._record(
            request,
            urn,
            inputs=inputs,
            id=resource_id if request.custom else None,
            outputs=_outputs(wire_inputs, inputs, state) if request.custom else None,
            options={
                "protect": request.protect,
                "deleteBeforeReplace": request.deleteBeforeReplace,
                "ignoreChanges": list(request.ignoreChanges),
                "replaceOnChanges": list(request.replaceOnChanges),
                "retainOnDelete": request.retainOnDelete,
                "additionalSecretOutputs": list(request.additionalSecretOutputs),
            },
            custom=request.custom,
        )
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id or "", object=_struct(state))

    def ReadResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        wire_inputs, resource_id, state = self._answer(request, request.properties, request.id, custom=True)
        inputs = decode(wire_inputs)
        outputs = _outputs(wire_inputs, inputs, state)
        self._record(request, urn, inputs={"id": request.id, **inputs}, read=True, id=resource_id, outputs=outputs)
        return resource_pb2.ReadResourceResponse(urn=urn, properties=_struct(state))

    def RegisterResourceOutputs(self, request: Any) -> Any:
        """A component's outputs (`register_outputs`), kept as its node's `outputs`; the stack's are read apart."""
        node = self._by_urn.get(request.urn)
        if node is not None and not node.custom:
            node.outputs = decode(_struct_value(request.outputs, self._strings))
        return empty_pb2.Empty()

    def _answer(
        self, request: Any, properties: struct_pb2.Struct, resource_id: str, *, custom: bool
    ) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
        """The request's properties as plain Python (each string shared with its equals), and the mocks' answer."""
        wire_inputs = _struct_value(properties, self._strings)
        answer_id, state = self.mocks.new_resource(
            MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=wire_inputs,
                provider=request.provider,
                resource_id=resource_id,
                custom=custom,
            )
        )
        return wire_inputs, answer_id, state

    def _record(self, request: Any, urn: str, *, inputs: dict[str, Any], custom: bool = True, **extra: Any) -> None:
        node = Node(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            provider=provider_urn(request.provider),
            custom=custom,
            # Shared strings: every clustermesh Secret depends on every cluster's address.
            dependencies=sorted({self._strings.setdefault(u, u) for u in request.dependencies}),
            inputs=inputs,
            **extra,
        )
        self.nodes.append(node)
        self._by_urn[urn] = node
        if self._on_register is not None:
            self._on_register(node)


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def _outputs(wire_inputs: dict[str, Any], inputs: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """The mocks' answer, decoded: a property echoed from the inputs (the same object) is the decoded input
    itself, shared rather than decoded again, so that a plan holds each echoed value once."""
    return {k: inputs[k] if k in wire_inputs and wire_inputs[k] is v else decode(v) for k, v in state.items()}


def _struct_value(struct: struct_pb2.Struct, strings: dict[str, str]) -> dict[str, Any]:
    return {key: _value(value, strings) for key, value in struct.fields.items()}


def _value(value: struct_pb2.Value, strings: dict[str, str]) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        text = value.string_value
        return strings.setdefault(text, text)
    if kind == "struct_value":
        return _struct_value(value.struct_value, strings)
    if kind == "list_value":
        return [_value(item, strings) for item in value.list_value.values]
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    return None


def _struct(state: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(state)
    return struct
