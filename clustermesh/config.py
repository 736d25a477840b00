"""Typed stack configuration: the one place raw `clustermesh:*` config becomes a `MeshConfig`.

Pure: no Pulumi resources, no network, no files. `load_stack_config` takes the raw config the way the
Pulumi engine hands it to a program (every value a string, objects as JSON) and either returns a
`MeshConfig` or raises `ConfigError` carrying every problem found, each with its config path.

Checking happens in two passes so that one run reports everything: pydantic checks the shape and
types of each key and of each cluster on its own, then `clustermesh.validation` checks the rules that
span fields and clusters on whatever parsed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from clustermesh.model import PROJECT, ClusterSpec, MeshConfig
from clustermesh.validation import Problem, validate_mesh


class ConfigError(Exception):
    """The stack configuration is invalid; `problems` lists every reason, each with its path."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


_MESH_KEYS = {(f.alias or name): name for name, f in MeshConfig.model_fields.items() if name != "clusters"}
_STRUCTURED_KEYS = {"clusters", "apiserverExposure", "nativeRoutingCidrs", "certificates"}


def format_path(loc: Sequence[str | int]) -> str:
    """('clusters', 2, 'podCidrs', 0) -> 'clusters[2].podCidrs[0]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _known_fields(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys accepted at `loc` (used to suggest a spelling for an unknown key)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        annotation = field.annotation if field else None
        args = getattr(annotation, "__args__", ()) or (annotation,)
        current = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


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
        elif err["type"] == "value_error":
            problems.append(Problem(path, str(err["ctx"]["error"])))
        else:
            problems.append(Problem(path, f"{err['msg']} (got {err.get('input')!r})"))
    return problems


def _decode(key: str, raw: Any) -> tuple[Any, list[Problem]]:
    if key in _STRUCTURED_KEYS and isinstance(raw, str):
        try:
            return json.loads(raw), []
        except json.JSONDecodeError as exc:
            return None, [Problem(key, f"not valid JSON: {exc.msg}")]
    return raw, []


def load_stack_config(raw: Mapping[str, Any], secret_keys: frozenset[str] = frozenset()) -> MeshConfig:
    """Parse and validate the project's config keys (`clustermesh:<key>` -> raw value).

    `secret_keys` names the keys the engine holds as secrets; a cluster's kubeconfig may only come
    from one of those.
    """
    values, problems = _mesh_values(raw)
    clusters_raw, cluster_problems = _clusters_list(values.pop("clusters", None), raw)
    problems += cluster_problems

    # Each cluster is parsed on its own, so a broken cluster does not hide the others' problems;
    # the cross-cluster rules then run over those that parsed, under their original index.
    parsed: list[tuple[int, ClusterSpec]] = []
    for index, item in enumerate(clusters_raw):
        try:
            parsed.append((index, ClusterSpec.model_validate(item)))
        except ValidationError as exc:
            problems += _pydantic_problems(exc, ClusterSpec, ("clusters", index))

    mesh: MeshConfig | None
    try:
        mesh = MeshConfig.model_validate({**values, "clusters": [c for _, c in parsed]})
    except ValidationError as exc:
        problems += _pydantic_problems(exc, MeshConfig, ())
        mesh = None

    problems += validate_mesh(mesh, parsed, n_clusters=len(clusters_raw), raw=raw, secret_keys=secret_keys)
    if problems or mesh is None:
        raise ConfigError(sorted(set(problems), key=_problem_order))
    return mesh


def _mesh_values(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The project's keys, decoded; any other key of the project's namespace is a typo or a leftover."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    referenced_secrets = _kubeconfig_secret_names(raw.get(f"{PROJECT}:clusters"))
    known = [*_MESH_KEYS, "clusters"]
    for full_key, raw_value in raw.items():
        namespace, _, key = full_key.partition(":")
        if namespace != PROJECT or key in referenced_secrets:
            continue
        if key not in known:
            problems.append(Problem(key, "unknown configuration key" + _suggest(key, known)))
            continue
        value, decode_problems = _decode(key, raw_value)
        problems += decode_problems
        if not decode_problems:
            values[key] = value
    return values, problems


def _clusters_list(value: Any, raw: Mapping[str, Any]) -> tuple[list[Any], list[Problem]]:
    if value is None:
        if f"{PROJECT}:clusters" in raw:  # present but undecodable: already reported
            return [], []
        return [], [Problem("clusters", "required: the list of clusters in the mesh")]
    if not isinstance(value, list):
        return [], [Problem("clusters", "must be a list of clusters")]
    return value, []


def _problem_order(problem: Problem) -> tuple[Any, ...]:
    """Sort by path with numeric indexes compared as numbers, so clusters[10] follows clusters[9]."""
    key: list[Any] = []
    for chunk in problem.path.replace("]", "").split("["):
        for part in chunk.split("."):
            key.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    return (tuple(key), problem.message)


def _kubeconfig_secret_names(clusters_raw: Any) -> set[str]:
    """Config keys named as a cluster's kubeconfig secret: they are expected, not unknown."""
    if isinstance(clusters_raw, str):
        try:
            clusters_raw = json.loads(clusters_raw)
        except json.JSONDecodeError:
            return set()
    if not isinstance(clusters_raw, list):
        return set()
    names = set()
    for item in clusters_raw:
        kubeconfig = item.get("kubeconfig") if isinstance(item, dict) else None
        if isinstance(kubeconfig, dict) and isinstance(kubeconfig.get("secret"), str):
            names.add(kubeconfig["secret"])
    return names
