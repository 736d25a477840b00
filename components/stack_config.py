"""Reading the stack's configuration inside a Pulumi program, where it reaches us through the runtime."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from clustermesh.config import ConfigError, load_stack_config
from clustermesh.model import PROJECT, ClusterSpec, ExistingCluster, MeshConfig, OpenStackCluster


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


def kubeconfig_input(cluster: ClusterSpec) -> pulumi.Input[str] | None:
    """What an existing cluster's provider reads its credentials from: a secret config value, or a file path.

    None for a cluster the program builds: its credentials are the program's own."""
    if not isinstance(cluster, ExistingCluster):
        return None
    source = cluster.kubeconfig
    if source.secret is not None:
        return pulumi.Config(PROJECT).require_secret(source.secret)
    assert source.path is not None  # validation guarantees exactly one source
    return source.path


def kube_context(cluster: ClusterSpec) -> str | None:
    """The context to use in an existing cluster's kubeconfig file (None: the file's current context)."""
    return cluster.kubeconfig.context if isinstance(cluster, ExistingCluster) else None


def cluster_secrets(cluster: ClusterSpec) -> dict[str, pulumi.Output[str]]:
    """The secret config values a built cluster names (its SSH key, its cloud credential), by config key."""
    if not isinstance(cluster, OpenStackCluster):
        return {}
    names = (cluster.ssh.private_key_secret, cluster.openstack.application_credential_secret)
    config = pulumi.Config(PROJECT)
    return {name: config.require_secret(name) for name in names if name is not None}
