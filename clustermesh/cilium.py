"""Facts about Cilium the program relies on: where its chart lives, and its limits on cluster identity.

The limits are shared by the config validation and the policy pack, so both refuse exactly what Cilium
refuses (pkg/clustermesh/types ValidateClusterName, InitClusterIDMax, ValidateBuggyClusterID; the
chart's validate.yaml).
"""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"([a-z0-9][-a-z0-9]*)?[a-z0-9]")
NAME_MAX_LENGTH = 32
MAX_CONNECTED_CLUSTERS_CHOICES = (255, 511)
SUPPORTED_CILIUM_MINORS = (19, 20)

CHART_NAME = "cilium"
CHART_REPOSITORY = "https://helm.cilium.io/"
RELEASE_NAME = "cilium"
NAMESPACE = "kube-system"
CLUSTER_POOL_MASK = {4: 24, 6: 120}
"""The per-node block cluster-pool IPAM carves out of each pod CIDR (the chart's defaults)."""


def cluster_name_problem(name: str) -> str | None:
    """Why Cilium would refuse `name` as a mesh member's name, or None.

    `default` is Cilium's name for a cluster outside any mesh (ID 0), so a member may not use it.
    """
    if not name:
        return "must not be empty"
    if len(name) > NAME_MAX_LENGTH:
        return f"{name!r} is longer than {NAME_MAX_LENGTH} characters"
    if not NAME_PATTERN.fullmatch(name):
        return (
            f"{name!r} must consist of lower case alphanumeric characters and '-', "
            "and start and end with an alphanumeric character"
        )
    if name == "default":
        return "'default' is reserved for a cluster outside any mesh (ID 0)"
    return None


def buggy_cluster_id(cluster_id: int) -> bool:
    """IDs with bit 7 set (128-255, 384-511) break policy with ENI or aws-cni chaining (cilium#21330)."""
    return bool(cluster_id & 0x80)
