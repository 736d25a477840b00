"""CNI configuration documents for chaining Cilium onto another plugin."""

from __future__ import annotations

import json
from typing import Any

CALICO_CHAINING_CONFIGMAP = "cni-configuration"
CALICO_MTU = 1440
"""Calico's IP-in-IP default MTU, as in Cilium's chaining guide."""


def calico_chaining_conflist(mtu: int = CALICO_MTU) -> dict[str, Any]:
    """The generic-veth conflist of Cilium's Calico chaining guide: Calico plumbs and allocates, Cilium enforces.

    It replaces Calico's own conflist, so Calico's MTU detection does not apply: `mtu` must fit the network."""
    return {
        "name": "generic-veth",
        "cniVersion": "0.3.1",
        "plugins": [
            {
                "type": "calico",
                "log_level": "info",
                "datastore_type": "kubernetes",
                "mtu": mtu,
                "ipam": {"type": "calico-ipam"},
                "policy": {"type": "k8s"},
                "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"},
            },
            {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
            {"type": "cilium-cni"},
        ],
    }


def calico_chaining_configmap_data(mtu: int = CALICO_MTU) -> dict[str, str]:
    """The data of the ConfigMap the chart's `cni.configMap` points at."""
    return {"cni-config": json.dumps(calico_chaining_conflist(mtu), indent=2)}
