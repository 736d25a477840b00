"""Reading `Pulumi.yaml` and a stack file into the config the engine would hand the program."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clustermesh.model import PROJECT

SECURE_PLACEHOLDER = "planner-cannot-decrypt:{key}"
"""What a `secure:` value becomes offline: the planner has no key to decrypt it, only to keep it secret."""


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


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StackFileError([f"{path}: no such file"]) from None
    except yaml.YAMLError as exc:
        raise StackFileError([f"{path}: not valid YAML: {exc}"]) from None


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
    document = _load_yaml(config_file) or {}
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackFileError([f"{config_file}: expected a mapping with a `config:` mapping"])
    problems = [
        f"{key}: stack config keys need a namespace, e.g. {PROJECT}:{key}"
        for key in (document.get("config") or {})
        if ":" not in key
    ]
    if problems:
        raise StackFileError(problems)

    config: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key, value in {**project_defaults(project_file), **(document.get("config") or {})}.items():
        config[key], secret = _encode(key, value)
        if secret:
            secret_keys.add(key)
    return StackSettings(project, stack, config_file, config, frozenset(secret_keys))
