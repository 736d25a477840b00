"""A rendered custom-resource manifest (MetalLB's, Calico's) applied as it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def apply_manifest(
    name: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """`manifest` (apiVersion, kind, metadata, spec, from a pure renderer) as a Pulumi custom resource."""
    return k8s.apiextensions.CustomResource(
        name,
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=k8s.meta.v1.ObjectMetaArgs(**manifest["metadata"]),
        spec=manifest["spec"],
        opts=opts,
    )
