"""The mesh's invariants and security rules, as CrossGuard policies.

`policy/__main__.py` serves these to `pulumi preview --policy-pack policy`; the offline planner runs the
very same objects on the graph it captures. They read what the engine shows a policy: each resource's
inputs (outputs once created), its provider and its dependencies. Config validation catches most of this
before a resource exists; the rules catch it whoever edits the program, or a stack file that skipped it.

Every read goes through `_read`: during a preview a value the cloud has not assigned yet is unknown, and
a rule then says nothing about it rather than report a violation it cannot know.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from clustermesh.cilium import CHART_NAME, MAX_CONNECTED_CLUSTERS_CHOICES, NAMESPACE
from clustermesh.render.mesh_config import AGENT_SECRET, KVSTOREMESH_SECRET
from clustermesh.render.mesh_tls import certificate_secret_name
from components.tokens import HELM_RELEASE, STACK
from components.tokens import KUBERNETES_SECRET as SECRET

PACK_NAME = "clustermesh"
SERVICE = "kubernetes:core/v1:Service"
APISERVER_SERVICE = "clustermesh-apiserver"
CLUSTERMESH_SECRETS = {AGENT_SECRET: None, KVSTOREMESH_SECRET: "kvstoremesh"}
"""The Secrets naming a cluster's peers, and the values switch each one depends on (None: always)."""
APISERVER_CERT_ROLES = ("server", "admin", "remote")
INTERNAL_LB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "networking.gke.io/load-balancer-type": "Internal",
    "cloud.google.com/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
    "service.beta.kubernetes.io/openstack-internal-load-balancer": "true",
}
"""Annotations with which each cloud's controller gives a LoadBalancer no public address."""
OPEN_RANGES = {ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")}
PINNED_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
INSECURE_APISERVER_ARGS = re.compile(r"client-cert-auth=false|insecure|http://")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
KUBECONFIG = re.compile(r"(^|\n)kind:\s*Config\b|\"kind\":\s*\"Config\"")


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown during preview>"


UNKNOWN = _Unknown()


def _read(props: Any, *path: str, default: Any = None) -> Any:
    """`props[path...]`, `default` where absent, or UNKNOWN where the engine does not know it yet."""
    value = props
    try:
        for key in path:
            if value is None or not hasattr(value, "get"):
                return default
            value = value.get(key)
        return default if value is None else value
    except UnknownValueError:
        return UNKNOWN


def _known(*values: Any) -> bool:
    return all(v is not UNKNOWN for v in values)


def _plain(value: Any) -> Any:
    """A proxied value as plain Python; UNKNOWN if any part of it is not known yet."""
    if value is UNKNOWN:
        return UNKNOWN
    try:
        if hasattr(value, "items"):
            mapping = {k: _plain(v) for k, v in value.items()}
            return UNKNOWN if any(v is UNKNOWN for v in mapping.values()) else mapping
        if isinstance(value, str | int | float | bool) or value is None:
            return value
        items = [_plain(v) for v in value]
        return UNKNOWN if any(v is UNKNOWN for v in items) else items
    except UnknownValueError:
        return UNKNOWN


# --- what the rules look at -----------------------------------------------------------------------------


def _is_cilium(resource_type: str, props: Any) -> bool:
    return resource_type == HELM_RELEASE and _read(props, "chart") == CHART_NAME


def _cilium_releases(resources: Iterable[PolicyResource]) -> list[PolicyResource]:
    return [r for r in resources if _is_cilium(r.resource_type, r.props)]


def _provider_urn(resource: PolicyResource) -> str | None:
    return resource.provider.urn if resource.provider is not None else None


def _cluster_name(release: PolicyResource) -> Any:
    return _read(release.props, "values", "cluster", "name")


def _by_cluster(resources: list[PolicyResource]) -> dict[str, tuple[str, PolicyResource]]:
    """Provider URN -> (cluster name, its Cilium release): a resource belongs to the cluster its provider reaches."""
    clusters = {}
    for release in _cilium_releases(resources):
        name, provider = _cluster_name(release), _provider_urn(release)
        if provider is not None and _known(name):
            clusters[provider] = (str(name), release)
    return clusters


def _kube_system_secrets(resources: list[PolicyResource]) -> dict[tuple[str | None, Any], list[PolicyResource]]:
    """(provider URN, name) -> the kube-system Secrets of that name in that cluster, indexed once per rule."""
    index: dict[tuple[str | None, Any], list[PolicyResource]] = defaultdict(list)
    for r in resources:
        if r.resource_type == SECRET and _read(r.props, "metadata", "namespace") == NAMESPACE:
            index[(_provider_urn(r), _read(r.props, "metadata", "name"))].append(r)
    return index


# --- stack rules ----------------------------------------------------------------------------------------


def _validate_unique_identity(args: StackValidationArgs, report: ReportViolation) -> None:
    for field in ("name", "id"):
        seen: dict[Any, str] = {}
        for release in _cilium_releases(args.resources):
            value = _read(release.props, "values", "cluster", field)
            if not _known(value) or value is None:
                continue
            key = int(value) if field == "id" else value
            if key in seen:
                report(f"cluster {field} {key} is used by both {seen[key]} and {release.name}", release.urn)
            else:
                seen[key] = release.name


def _validate_ids_within_max(args: StackValidationArgs, report: ReportViolation) -> None:
    maxima: dict[int, list[str]] = defaultdict(list)
    for release in _cilium_releases(args.resources):
        maximum = _read(release.props, "values", "clustermesh", "maxConnectedClusters", default=255)
        cluster_id = _read(release.props, "values", "cluster", "id")
        if not _known(maximum, cluster_id):
            continue
        maximum = int(maximum)
        maxima[maximum].append(release.name)
        if maximum not in MAX_CONNECTED_CLUSTERS_CHOICES:
            report(f"maxConnectedClusters is {maximum}; Cilium accepts only 255 or 511", release.urn)
        if cluster_id is None or not 1 <= int(cluster_id) <= maximum:
            report(f"cluster id {cluster_id} is outside 1..{maximum} (maxConnectedClusters)", release.urn)
    if len(maxima) > 1:
        detail = "; ".join(f"{m}: {', '.join(sorted(names))}" for m, names in sorted(maxima.items()))
        report(f"maxConnectedClusters differs between clusters ({detail}); it must be the same everywhere", None)


def _pod_cidrs(release: PolicyResource) -> list[Any]:
    operator = _read(release.props, "values", "ipam", "operator", default={})
    if not _known(operator):
        return []
    cidrs: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for key in ("clusterPoolIPv4PodCIDRList", "clusterPoolIPv6PodCIDRList"):
        listed = _plain(_read(operator, key, default=[]))
        if _known(listed):
            cidrs.extend(ipaddress.ip_network(str(cidr), strict=False) for cidr in listed or [])
    return cidrs


def _validate_pod_cidrs_disjoint(args: StackValidationArgs, report: ReportViolation) -> None:
    ranges = [(cidr, release) for release in _cilium_releases(args.resources) for cidr in _pod_cidrs(release)]
    for i, (cidr, release) in enumerate(ranges):
        for other_cidr, other in ranges[i + 1 :]:
            if other.urn != release.urn and cidr.version == other_cidr.version and cidr.overlaps(other_cidr):
                report(f"pod CIDR {cidr} of {release.name} overlaps {other_cidr} of {other.name}", release.urn)


def _validate_mesh_complete(args: StackValidationArgs, report: ReportViolation) -> None:
    clusters = _by_cluster(args.resources)
    everyone = {name for name, _ in clusters.values()}
    if len(everyone) < 2:
        return
    secrets_by_name = _kube_system_secrets(args.resources)
    for provider, (name, release) in sorted(clusters.items()):
        expected = everyone - {name}
        for secret_name, switch in CLUSTERMESH_SECRETS.items():
            enabled = switch is None or _read(release.props, "values", "clustermesh", "apiserver", switch, "enabled")
            if not _known(enabled) or not enabled:
                continue
            secrets = secrets_by_name[(provider, secret_name)]
            if not secrets:
                report(f"cluster {name} has no {secret_name} Secret: it knows none of its {len(expected)} peers", None)
                continue
            for secret in secrets:
                data = _plain(_read(secret.props, "data", default={}))
                string_data = _plain(_read(secret.props, "stringData", default={}))
                if not _known(data, string_data):
                    continue  # filled in once the peers' addresses are known
                named = set(data or {}) | set(string_data or {})
                missing, foreign = sorted(expected - named), sorted(named - expected)
                if missing:
                    report(f"{secret_name} of cluster {name} does not name {', '.join(missing)}", secret.urn)
                if foreign:
                    report(f"{secret_name} of cluster {name} names {', '.join(foreign)}, not peers of it", secret.urn)


def _validate_explicit_providers(args: StackValidationArgs, report: ReportViolation) -> None:
    for resource in args.resources:
        if not resource.resource_type.startswith("kubernetes:"):
            continue
        provider = resource.provider
        if provider is None or provider.name.startswith("default"):
            report(
                f"{resource.name} ({resource.resource_type}) goes through the default Kubernetes provider, "
                "which reaches whatever cluster the ambient kubeconfig points at",
                resource.urn,
            )


def _validate_uniform_cilium(args: StackValidationArgs, report: ReportViolation) -> None:
    for label, read in (
        ("Cilium minor version", _minor_version),
        ("routing mode", lambda r: _read(r.props, "values", "routingMode", default="tunnel")),
        ("tunnel protocol", _tunnel_protocol),
    ):
        found: dict[Any, list[str]] = defaultdict(list)
        for release in _cilium_releases(args.resources):
            value = read(release)
            if _known(value) and value is not None:
                found[value].append(release.name)
        if len(found) > 1:
            detail = "; ".join(f"{v}: {', '.join(sorted(names))}" for v, names in sorted(found.items(), key=str))
            report(f"clusters differ in {label} ({detail}); a mesh needs one", None)


def _minor_version(release: PolicyResource) -> Any:
    version = _read(release.props, "version", default="")
    return version if version is UNKNOWN else ".".join(str(version).removeprefix("v").split(".")[:2])


def _tunnel_protocol(release: PolicyResource) -> Any:
    mode = _read(release.props, "values", "routingMode", default="tunnel")
    if mode != "tunnel":
        return None
    return _read(release.props, "values", "tunnelProtocol", default="vxlan")


def _validate_apiserver_tls(args: StackValidationArgs, report: ReportViolation) -> None:
    secrets_by_name = _kube_system_secrets(args.resources)
    for provider, (name, release) in sorted(_by_cluster(args.resources).items()):
        apiserver = _read(release.props, "values", "clustermesh", "apiserver", default={})
        if not _known(apiserver) or not _read(release.props, "values", "clustermesh", "useAPIServer"):
            continue
        for container in ("", "kvstoremesh"):
            extra = _plain(_read(apiserver, *([container] if container else []), "extraArgs", default=[])) or []
            if _known(extra) and any(INSECURE_APISERVER_ARGS.search(str(arg)) for arg in extra):
                report(f"clustermesh-apiserver of {name} is given arguments that weaken TLS: {extra}", release.urn)
        if _read(apiserver, "tls", "auto", "enabled", default=True) is not False:
            continue
        roles = [*APISERVER_CERT_ROLES, *(["local"] if _read(apiserver, "kvstoremesh", "enabled") else [])]
        missing = [
            role
            for role in roles
            if not [
                s
                for s in secrets_by_name[(provider, certificate_secret_name(role))]
                if _read(s.props, "type") == "kubernetes.io/tls"
            ]
        ]
        if missing:
            report(
                f"cluster {name} turns the chart's TLS generation off but gets no "
                f"{', '.join(certificate_secret_name(m) for m in missing)} Secret",
                release.urn,
            )


def _validate_no_plain_secret_outputs(args: StackValidationArgs, report: ReportViolation) -> None:
    if not args.get_config().get("outputSecretsMarked"):
        # The engine hands policies secret values decrypted; only a caller that marks them can tell.
        args.not_applicable("stack outputs' secrecy is not visible to policies under the Pulumi CLI")
    for resource in args.resources:
        if resource.resource_type != STACK:
            continue
        # Output by output: one still unknown in a preview leaves the others checked.
        for name in resource.props:
            for text in _strings(_plain(_read(resource.props, name))):
                if PRIVATE_KEY.search(text) or KUBECONFIG.search(text):
                    report(f"stack output {name!r} holds a private key or kubeconfig in plain text", resource.urn)
                    break


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


# --- resource rules -------------------------------------------------------------------------------------


def _exposure(args: ResourceValidationArgs) -> tuple[Any, Any, Any] | None:
    """(type, source ranges, annotations) of a clustermesh-apiserver Service, from a release or a Service."""
    props = args.props
    if _is_cilium(args.resource_type, props):
        service = _read(props, "values", "clustermesh", "apiserver", "service", default={})
        if not _read(props, "values", "clustermesh", "useAPIServer"):
            return None
        return (
            _read(service, "type", default="NodePort"),
            _plain(_read(service, "loadBalancerSourceRanges", default=[])),
            _plain(_read(service, "annotations", default={})),
        )
    if args.resource_type == SERVICE and _read(props, "metadata", "name") == APISERVER_SERVICE:
        return (
            _read(props, "spec", "type", default="ClusterIP"),
            _plain(_read(props, "spec", "loadBalancerSourceRanges", default=[])),
            _plain(_read(props, "metadata", "annotations", default={})),
        )
    return None


def _validate_apiserver_not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    exposure = _exposure(args)
    if exposure is None:
        return
    service_type, ranges, annotations = exposure
    if not _known(service_type, ranges, annotations) or service_type != "LoadBalancer":
        return
    if any(str((annotations or {}).get(k, "")).lower() == v.lower() for k, v in INTERNAL_LB_ANNOTATIONS.items()):
        return
    if not ranges:
        report(
            "the clustermesh-apiserver LoadBalancer is neither internal nor restricted by "
            "loadBalancerSourceRanges: every address on the internet can reach the mesh's etcd",
            None,
        )
        return
    open_ranges = [r for r in ranges if ipaddress.ip_network(str(r), strict=False) in OPEN_RANGES]
    if open_ranges:
        report(f"the clustermesh-apiserver LoadBalancer is open to {', '.join(map(str, open_ranges))}", None)


def _validate_chart_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != HELM_RELEASE:
        return
    version = _read(args.props, "version", default="")
    if _known(version) and not PINNED_VERSION.match(str(version)):
        chart = _read(args.props, "chart")
        report(f"chart {chart} is not pinned to an exact version (version: {version!r})", None)


def _stack(name: str, description: str, validate: Callable[..., None], **kwargs: Any) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY, **kwargs
    )


def _resource(name: str, description: str, validate: Callable[..., None]) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


POLICIES: list[Policy] = [
    _stack(
        "cluster-identity-unique",
        "Cluster names and IDs are unique across the mesh: Cilium encodes the cluster ID in every identity.",
        _validate_unique_identity,
    ),
    _stack(
        "cluster-id-within-max",
        "Every cluster ID is within maxConnectedClusters, which is 255 or 511 and the same on every cluster.",
        _validate_ids_within_max,
    ),
    _stack(
        "pod-cidrs-disjoint",
        "Pod CIDRs of different clusters do not overlap: pods reach each other by IP across the mesh.",
        _validate_pod_cidrs_disjoint,
    ),
    _stack(
        "mesh-complete",
        "Every cluster's clustermesh Secrets name every other cluster, and only them.",
        _validate_mesh_complete,
    ),
    _stack(
        "explicit-kubernetes-provider",
        "No Kubernetes resource goes through a default provider.",
        _validate_explicit_providers,
    ),
    _stack(
        "uniform-cilium-and-datapath",
        "All clusters run the same Cilium minor version and the same datapath (routing mode, tunnel protocol).",
        _validate_uniform_cilium,
    ),
    _stack(
        "clustermesh-apiserver-tls",
        "The clustermesh-apiserver always serves and demands TLS: with the chart's generation off, "
        "the program issues its certificates, and no argument weakens it.",
        _validate_apiserver_tls,
    ),
    _stack(
        "no-plain-secret-outputs",
        "No stack output holds a private key (the mesh CA's) or a kubeconfig in plain text.",
        _validate_no_plain_secret_outputs,
        config_schema=PolicyConfigSchema({"outputSecretsMarked": {"type": "boolean"}}),
    ),
    _resource(
        "clustermesh-apiserver-not-public",
        "A LoadBalancer clustermesh-apiserver is internal or restricted by loadBalancerSourceRanges, never open "
        "to 0.0.0.0/0.",
        _validate_apiserver_not_public,
    ),
    _resource(
        "chart-version-pinned",
        "Helm charts are pinned to an exact version, so a preview shows every upgrade.",
        _validate_chart_pinned,
    ),
]
