"""Reading the stack's configuration inside a Pulumi program, where it reaches us through the runtime."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from clustermesh.config import ConfigError, load_stack_config
from clustermesh.model import PROJECT, ClusterSpec, MeshConfig


def _raw_config() -> tuple[dict[str, Any], frozenset[str]]:
    # The engine passes the whole stack config in PULUMI_CONFIG; tests and the planner set it through
    # set_all_config. pulumi.Config only answers for keys one already knows, and unknown keys must be
    # seen to be reported as typos.
    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = {*runtime_config.get_config_secret_keys_env(), *runtime_config._SECRET_KEYS.get()}
    return raw, frozenset(secret_keys)


def read_mesh_config() -> MeshConfig:
    """The validated mesh configuration, or a clean failure that lists every problem (no traceback)."""
    raw, secret_keys = _raw_config()
    try:
        return load_stack_config(raw, secret_keys)
    except ConfigError as exc:
        listing = "\n".join(f"  {problem}" for problem in exc.problems)
        raise pulumi.RunError(f"invalid stack configuration:\n{listing}") from None


def kubeconfig_input(cluster: ClusterSpec) -> pulumi.Input[str]:
    """What the cluster's provider reads its credentials from: a secret config value, or a file path."""
    source = cluster.kubeconfig
    if source.secret is not None:
        return pulumi.Config(PROJECT).require_secret(source.secret)
    assert source.path is not None  # validation guarantees exactly one source
    return source.path
