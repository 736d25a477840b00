"""Typed stack configuration: the one place raw `clustermesh:*` config becomes a `MeshConfig`.

Pure: no Pulumi resources, no network, no files. `load_stack_config` takes the raw config the way the
Pulumi engine hands it to a program (every value a string, objects as JSON) and either returns a
`MeshConfig` or raises `ConfigError` carrying every problem found, each with its config path.

Checking happens in two passes so that one run reports everything: pydantic checks the shape and
types of each key and of each cluster on its own, then `clustermesh.validation` checks the rules that
span fields and clusters on whatever parsed (a mesh-wide key that fails is replaced by its default
for the rules that do not read it).

Messages speak the stack file's language: its key names and paths, what a key expects, and the value
as given. No message shows the text of a value the engine holds as secret: it reads `[secret]`.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from functools import cache
from ipaddress import ip_address, ip_network
from typing import Any

from pydantic import BaseModel, ValidationError

from clustermesh import model
from clustermesh.model import CLUSTER_MODELS, PROJECT, UNDECRYPTED_SECRET, ClusterSpec, MeshConfig, shown
from clustermesh.validation import Problem, validate_mesh

KNOWN_NAMESPACES = (PROJECT, "pulumi", "kubernetes", "aws", "openstack", "tls", "command")
"""Config namespaces a stack of this program may hold: its own, the engine's, and its providers'."""

REDACTED = "[secret]"
"""What a secret config value's text becomes in a message."""


class ConfigError(Exception):
    """The stack configuration is invalid; `problems` lists every reason, each with its path."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


_MESH_KEYS = {(f.alias or name): name for name, f in MeshConfig.model_fields.items() if name != "clusters"}
_STRUCTURED_KEYS = {
    "clusters": "a list of clusters",
    "apiserverExposure": "a mapping",
    "nativeRoutingCidrs": "a list of CIDRs",
    "certificates": "a mapping",
}
"""Keys whose value is an object, which the engine hands over as JSON text; what each must be."""


def format_path(loc: Sequence[str | int]) -> str:
    """('clusters', 2, 'podCidrs', 0) -> 'clusters[2].podCidrs[0]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _field_model(annotation: Any) -> type[BaseModel] | None:
    args = getattr(annotation, "__args__", ()) or (annotation,)
    return next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)


def _known_fields(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys accepted at `loc` (used to suggest a spelling for an unknown key)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        current = _field_model(field.annotation) if field else None
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


_SIMPLE_MESSAGES = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
}


_BOUNDS = {"greater_than_equal": "at least", "greater_than": "greater than", "less_than_equal": "at most"}


def _describe(err: Any, model: type[BaseModel], loc: Sequence[str | int]) -> str:
    """Pydantic's error in the stack file's words: what the key must be, and the value as given."""
    kind, ctx, given = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "value_error":
        return str(ctx["error"])
    hint = ""
    if kind in _SIMPLE_MESSAGES:
        expected = _SIMPLE_MESSAGES[kind]
    elif kind == "string_type":
        expected = "must be a string"
        hint = "; quote it in YAML" if isinstance(given, int | float) else ""
    elif kind == "enum":
        expected = f"must be one of {ctx['expected']}"
    elif kind in {"model_type", "model_attributes_type"}:
        keys = _known_fields(model, [*loc, ""])
        expected = "must be a mapping with keys such as " + ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
    elif kind in _BOUNDS:
        expected = f"must be {_BOUNDS[kind]} {next(iter(ctx.values()))}"
    else:
        expected = str(err["msg"]).replace("Input should be", "must be")
    return f"{expected} (got {shown(given)}){hint}"


def _pydantic_problems(error: ValidationError, model: type[BaseModel], prefix: Sequence[str | int]) -> list[Problem]:
    problems = []
    for err in error.errors():
        if err["type"] == "too_short" and len(err["input"]) >= err["ctx"]["min_length"]:
            continue  # only short because an item failed, which is reported on its own
        loc = tuple(err["loc"])
        path = format_path([*prefix, *loc])
        if err["type"] == "extra_forbidden":
            choices = _known_fields(model, loc)
            problems.append(Problem(path, "unknown key" + _suggest(str(loc[-1]), choices)))
        elif err["type"] == "missing":
            problems.append(Problem(path, "required"))
        elif err["type"] == "too_short":
            problems.append(Problem(path, f"needs at least {err['ctx']['min_length']} entry"))
        else:
            problems.append(Problem(path, _describe(err, model, loc)))
    return problems


def _decode(key: str, raw: Any) -> tuple[Any, list[Problem]]:
    if key not in _STRUCTURED_KEYS or not isinstance(raw, str):
        return raw, []
    if raw == UNDECRYPTED_SECRET.format(key=f"{PROJECT}:{key}"):
        return None, [
            Problem(
                key,
                "is secret as a whole, which the planner cannot decrypt offline; "
                "make only its sensitive values secret (pulumi config set --secret --path ...)",
            )
        ]
    try:
        return json.loads(raw), []
    except (ValueError, RecursionError) as exc:
        if raw.lstrip()[:1] in {"[", "{"} and isinstance(exc, json.JSONDecodeError):
            return None, [Problem(key, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")]
        return None, [Problem(key, f"must be {_STRUCTURED_KEYS[key]} (got {shown(raw)})")]


def load_stack_config(raw: Mapping[str, Any], secret_keys: frozenset[str] = frozenset()) -> MeshConfig:
    """Parse and validate the project's config keys (`clustermesh:<key>` -> raw value).

    `secret_keys` names the keys the engine holds as secrets; a cluster's kubeconfig may only come
    from one of those, and no problem quotes the text of any of them.
    """
    values, problems = _mesh_values(raw)
    clusters_raw, cluster_problems = _clusters_list(values.pop("clusters", None), raw)
    problems += cluster_problems

    # Each cluster is parsed on its own, so a broken cluster does not hide the others' problems;
    # the cross-cluster rules then run over those that parsed, under their original index.
    parsed: list[tuple[int, ClusterSpec]] = []
    for index, item in enumerate(clusters_raw):
        cluster, item_problems = _parse_cluster(index, item)
        problems += item_problems
        if cluster is not None:
            parsed.append((index, cluster))

    mesh, checked, unchecked, mesh_problems = _parse_mesh(values, [c for _, c in parsed])
    problems += mesh_problems
    problems += validate_mesh(checked, parsed, raw=raw, secret_keys=secret_keys, unchecked=unchecked)
    if problems or mesh is None:
        redacted = redact(problems, secret_texts(raw, secret_keys))
        raise ConfigError(sorted(set(redacted), key=_problem_order))
    return mesh


def _parse_cluster(index: int, item: Any) -> tuple[ClusterSpec | None, list[Problem]]:
    """One cluster, parsed by the model of its `kind`: each kind has its own keys and rules."""
    at = ("clusters", index)
    if not isinstance(item, dict):
        return None, [
            Problem(format_path(at), f"must be a mapping with keys such as name, id, kind (got {shown(item)})")
        ]
    kind = item.get("kind")
    if kind is None:
        return None, [Problem(format_path([*at, "kind"]), "required")]
    cluster_model = CLUSTER_MODELS.get(kind) if isinstance(kind, str) else None
    if cluster_model is None:
        kinds = ", ".join(repr(k) for k in CLUSTER_MODELS)
        return None, [Problem(format_path([*at, "kind"]), f"must be one of {kinds} (got {shown(kind)})")]
    try:
        return cluster_model.model_validate(item), []
    except ValidationError as exc:
        return None, _pydantic_problems(exc, cluster_model, at)


def _parse_mesh(
    values: dict[str, Any], clusters: list[ClusterSpec]
) -> tuple[MeshConfig | None, MeshConfig | None, frozenset[str], list[Problem]]:
    """The mesh; the mesh to check the rules on; the keys that failed to parse; their problems.

    When mesh-wide keys fail, the rules still run on a mesh built with their defaults, skipping the
    rules that read them, so one run still reports everything else.
    """
    try:
        mesh = MeshConfig.model_validate({**values, "clusters": clusters})
    except ValidationError as exc:
        unchecked = frozenset(str(err["loc"][0]) for err in exc.errors() if err["loc"])
        try:
            stand_in = MeshConfig.model_validate(
                {**{k: v for k, v in values.items() if k not in unchecked}, "clusters": clusters}
            )
        except ValidationError:
            stand_in = None
        return None, stand_in, unchecked, _pydantic_problems(exc, MeshConfig, ())
    return mesh, mesh, frozenset(), []


def _mesh_values(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The project's keys, decoded; any other key of the project's namespace is a typo or a leftover."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    referenced_secrets = _referenced_secret_names(raw.get(f"{PROJECT}:clusters"))
    known = [*_MESH_KEYS, "clusters"]
    for full_key, raw_value in raw.items():
        namespace, _, key = full_key.partition(":")
        if namespace != PROJECT:
            problems += _namespace_problems(full_key)
            continue
        if key in referenced_secrets:
            continue
        if key not in known:
            problems.append(Problem(key, "unknown configuration key" + _suggest(key, known)))
            continue
        value, decode_problems = _decode(key, raw_value)
        problems += decode_problems
        if not decode_problems:
            values[key] = value
    return values, problems


def _namespace_problems(full_key: str) -> list[Problem]:
    """A key outside the namespaces this stack's program and providers read is a typo nobody would notice."""
    namespace, colon, key = full_key.partition(":")
    if namespace in KNOWN_NAMESPACES:
        return []
    if not colon:
        return [Problem(full_key, f"config keys need a namespace, e.g. {PROJECT}:{full_key}")]
    close = difflib.get_close_matches(namespace, KNOWN_NAMESPACES, n=1)
    if close:
        return [Problem(full_key, f"unknown namespace {namespace} (did you mean {close[0]}:{key}?)")]
    readers = ", ".join(KNOWN_NAMESPACES)
    return [
        Problem(full_key, f"unknown namespace {namespace}: neither this program nor its providers read it ({readers})")
    ]


def _clusters_list(value: Any, raw: Mapping[str, Any]) -> tuple[list[Any], list[Problem]]:
    if value is None:
        if f"{PROJECT}:clusters" in raw:  # present but undecodable: already reported
            return [], []
        return [], [Problem("clusters", "required: the list of clusters in the mesh")]
    if not isinstance(value, list):
        return [], [Problem("clusters", f"must be a list of clusters (got {shown(value)})")]
    if not value:
        return [], [Problem("clusters", "a mesh needs at least one cluster")]
    return value, []


def _problem_order(problem: Problem) -> tuple[Any, ...]:
    """Sort by path with numeric indexes compared as numbers, so clusters[10] follows clusters[9]."""
    key: list[Any] = []
    for chunk in problem.path.replace("]", "").split("["):
        for part in chunk.split("."):
            key.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    return (tuple(key), problem.message)


SECRET_REFERENCES = (
    ("kubeconfig", "secret"),
    ("ssh", "privateKeySecret"),
    ("openstack", "applicationCredentialSecret"),
)
"""Where a cluster names a secret config key of its own (a kubeconfig, an SSH key, a cloud credential)."""


def _referenced_secret_names(clusters_raw: Any) -> set[str]:
    """Config keys a cluster names as one of its secrets: they are expected, not unknown."""
    if isinstance(clusters_raw, str):
        try:
            clusters_raw = json.loads(clusters_raw)
        except json.JSONDecodeError:
            return set()
    if not isinstance(clusters_raw, list):
        return set()
    names = set()
    for item in clusters_raw:
        for section, key in SECRET_REFERENCES:
            holder = item.get(section) if isinstance(item, dict) else None
            if isinstance(holder, dict) and isinstance(holder.get(key), str):
                names.add(holder[key])
    return names


_KUBECONFIG_WORDS = ("Config", "v1", "clusters", "cluster", "users", "user", "contexts", "context", "name", "server")
"""A kubeconfig's own keys, which messages about one name."""


@cache
def _public_words() -> frozenset[str]:
    """Words of the config's own vocabulary (key names, enum values): never secret, so never redacted."""
    words = {"true", "false", "null", PROJECT, *KNOWN_NAMESPACES, *_KUBECONFIG_WORDS}
    for member in vars(model).values():
        if isinstance(member, type) and issubclass(member, StrEnum) and member is not StrEnum:
            words |= {str(m.value) for m in member}
        if isinstance(member, type) and issubclass(member, BaseModel):
            words |= {f.alias or n for n, f in member.model_fields.items()}
    return frozenset(words)


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def _spellings(text: str) -> set[str]:
    """The ways a message may spell `text`: as given, stripped, quoted-escaped, or as a parsed address."""
    spellings = {text, text.strip(), repr(text)[1:-1], json.dumps(text)[1:-1]}
    for parse in (ip_network, ip_address):
        with contextlib.suppress(ValueError):
            spellings.add(str(parse(text.strip())))
    return spellings


def secret_texts(raw: Mapping[str, Any], secret_keys: frozenset[str]) -> frozenset[str]:
    """Every text a message must not show: each secret value, whole and leaf by leaf if it is an object."""
    texts: set[str] = set()
    for key in secret_keys:
        value = raw.get(key)
        if not isinstance(value, str) or value == UNDECRYPTED_SECRET.format(key=key):
            continue
        leaves = [value]
        with contextlib.suppress(ValueError, RecursionError):
            leaves += _leaves(json.loads(value))
        for leaf in leaves:
            texts |= _spellings(leaf)
    return frozenset(t for t in texts if t.strip() and t not in _public_words())


def redact(problems: Sequence[Problem], texts: frozenset[str]) -> list[Problem]:
    """The problems with every secret text replaced by [secret], in paths and messages alike.

    A text is replaced where it stands as a value of its own: not inside a longer word, and not as
    the index of a path (`clusters[1]` keeps its 1 even when a secret is 1).
    """
    if not texts:
        return list(problems)
    alternatives = "|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True))
    pattern = re.compile(rf"(?<![A-Za-z0-9])(?<![A-Za-z0-9_]\[)(?:{alternatives})(?![A-Za-z0-9])")
    return [Problem(pattern.sub(REDACTED, p.path), pattern.sub(REDACTED, p.message)) for p in problems]
