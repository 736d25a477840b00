"""Reading `Pulumi.yaml` and a stack file into the config the engine would hand the program."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clustermesh.model import PROJECT, UNDECRYPTED_SECRET

SECURE_PLACEHOLDER = UNDECRYPTED_SECRET
"""What a `secure:` value becomes offline: the planner has no key to decrypt it, only to keep it secret."""

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, keeping timestamps as their text, as the engine's YAML decoder does in objects."""


def _timestamp_text(loader: _Loader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type] # a timestamp is always a scalar


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_text)


class StackFileError(Exception):
    """The project or stack file cannot be read; `problems` lists why, each with its key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class StackSettings:
    project: str
    stack: str
    source: Path
    config: dict[str, str]
    """Every config key, namespaced, with the engine's string encoding (objects as JSON)."""
    secret_keys: frozenset[str]


def find_project_dir(start: Path) -> Path:
    for directory in (start, *start.parents):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    raise StackFileError([f"{start}: no Pulumi.yaml here or in any parent directory"])


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StackFileError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise StackFileError([f"{path}: is a directory, not a stack file"]) from None
    except OSError as exc:
        raise StackFileError([f"{path}: cannot read it: {exc.strerror}"]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StackFileError([f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"]) from None


def _compose(path: Path) -> tuple[Any, yaml.Node | None]:
    """The document, and its node tree (which keeps each scalar's text as written)."""
    loader = _Loader(_read_text(path))
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    except yaml.YAMLError as exc:
        raise StackFileError([f"{path}: not valid YAML: {exc}"]) from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. an unhashable key, a bad !!binary
        raise StackFileError([f"{path}: not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()


def _load_yaml(path: Path) -> Any:
    return _compose(path)[0]


def project_defaults(project_file: Any) -> dict[str, Any]:
    """The defaults declared in Pulumi.yaml's `config:` schema, namespaced as the engine merges them."""
    declared = (project_file or {}).get("config") or {}
    defaults = {}
    for key, spec in declared.items():
        full_key = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(spec, dict) and "default" in spec:
            defaults[full_key] = spec["default"]
        elif not isinstance(spec, dict):
            defaults[full_key] = spec
    return defaults


def _encode(key: str, value: Any) -> tuple[str, bool]:
    """The engine's string form of a config value, and whether it is secret."""
    secret = False

    def strip_secure(v: Any) -> Any:
        nonlocal secret
        if isinstance(v, dict) and set(v) == {"secure"}:
            secret = True
            return SECURE_PLACEHOLDER.format(key=key)
        if isinstance(v, dict):
            return {k: strip_secure(x) for k, x in v.items()}
        if isinstance(v, list):
            return [strip_secure(x) for x in v]
        return v

    value = strip_secure(value)
    if isinstance(value, str):
        return value, secret
    if isinstance(value, bool):
        return ("true" if value else "false"), secret
    if isinstance(value, int | float):
        return str(value), secret
    return json.dumps(value), secret


def load_stack(project_dir: Path, *, stack: str | None = None, config_file: Path | None = None) -> StackSettings:
    """The config of `stack` (Pulumi.<stack>.yaml), or of any file in the same format."""
    project_file = _load_yaml(project_dir / "Pulumi.yaml")
    project = (project_file or {}).get("name", PROJECT)
    if config_file is None:
        stack = stack or "dev"
        config_file = project_dir / f"Pulumi.{stack}.yaml"
    elif stack is None:
        name = config_file.name
        stack = name[len("Pulumi.") : -len(".yaml")] if name.startswith("Pulumi.") else config_file.stem
    document, root = _compose(config_file)
    document = document or {}
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackFileError([f"{config_file}: expected a mapping with a `config:` mapping"])
    config_node = _config_node(root)
    problems = list(_key_problems(config_node, "config"))
    problems += [
        f"{key}: stack config keys need a namespace, e.g. {PROJECT}:{key}"
        for key in (document.get("config") or {})
        if isinstance(key, str) and ":" not in key
    ]
    scalars = _scalar_texts(config_node)
    problems += [
        f"{key}: null is not a value; give one (quoted, if it is the text null) or remove the key"
        for key, node in scalars.items()
        if node.tag == _NULL
    ]
    if problems:
        raise StackFileError(problems)

    config: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key, value in {**project_defaults(project_file), **(document.get("config") or {})}.items():
        if key in scalars:
            config[key] = scalars[key].value  # the engine keeps a scalar as written: 1.20 stays 1.20
            continue
        config[key], secret = _encode(key, value)
        if secret:
            secret_keys.add(key)
    return StackSettings(project, stack, config_file, config, frozenset(secret_keys))


def _config_node(root: yaml.Node | None) -> yaml.MappingNode | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "config" and isinstance(value, yaml.MappingNode):
            return value
    return None


def _scalar_texts(config: yaml.MappingNode | None) -> dict[str, yaml.ScalarNode]:
    """The stack's keys whose value is a scalar, with its node: the engine hands the program its text."""
    if config is None:
        return {}
    return {
        key.value: value
        for key, value in config.value
        if isinstance(key, yaml.ScalarNode) and key.tag == _STR and isinstance(value, yaml.ScalarNode)
    }


def _key_problems(node: yaml.Node | None, path: str, seen: frozenset[int] = frozenset()) -> Iterator[str]:
    """Keys the engine would refuse: one that is not a string (YAML `1: x`), or one given twice."""
    if node is None or id(node) in seen:
        return
    seen = seen | {id(node)}
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _key_problems(item, f"{path}[{i}]", seen)
    if not isinstance(node, yaml.MappingNode):
        return
    keys: set[str] = set()
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag not in {_STR, _MERGE}:
            text = key.value if isinstance(key, yaml.ScalarNode) else "a list or mapping"
            yield f"{path}: key {text} is not a string; quote it"
            continue
        child = key.value if path == "config" else f"{path}.{key.value}"
        if key.value in keys:
            yield f"{child}: given twice"
        keys.add(key.value)
        yield from _key_problems(value, child, seen)
