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
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
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

from clustermesh import aws_load_balancers
from clustermesh.cilium import CHART_NAME, MAX_CONNECTED_CLUSTERS_CHOICES, NAMESPACE
from clustermesh.render.mesh_config import AGENT_SECRET, KVSTOREMESH_SECRET
from clustermesh.render.mesh_tls import REMOTE_USERS_CONFIGMAP, REMOTE_USERS_KEY, certificate_secret_name, remote_user
from components.tokens import (
    HELM_RELEASE,
    KUBERNETES_CONFIGMAP,
    MESH_CLUSTER,
    OPENSTACK_INSTANCE,
    OPENSTACK_NETWORK,
    OPENSTACK_PORT,
    OPENSTACK_SECURITY_GROUP_RULE,
    REMOTE_COMMAND,
    STACK,
)
from components.tokens import KUBERNETES_SECRET as SECRET

PACK_NAME = "clustermesh"
SERVICE = "kubernetes:core/v1:Service"
APISERVER_SERVICE = "clustermesh-apiserver"
CLUSTERMESH_SECRETS = {AGENT_SECRET: None, KVSTOREMESH_SECRET: "kvstoremesh"}
"""The Secrets naming a cluster's peers, and the values switch each one depends on (None: always)."""
APISERVER_CERT_ROLES = ("server", "admin", "remote")
DEFAULT_AUTH_MODE = "migration"
"""The charts' (1.19, 1.20) default `clustermesh.apiserver.tls.authMode`."""
CRD_IDENTITY_MODES = ("crd", "doublewrite-readkvstore", "doublewrite-readcrd")
"""`identityAllocationMode`s the chart's `identityAllocationCRD` helper counts as CRD."""
COMPONENT_PACKAGES = frozenset({"clustermesh"})
"""Packages of this program's own component resources, which have no provider; `pulumi` is the engine's own."""

# How each cloud's load-balancer controller reads a Service, as its source does (annotation keys and the values
# it honours); a value it does not honour, or a controller that does not take the Service, is not internal.
AWS_INTERNAL = "service.beta.kubernetes.io/aws-load-balancer-internal"
"""EKS's built-in controller (kubernetes/cloud-provider-aws pkg/providers/v1/aws.go): any value but "" and
"false" is internal. The AWS Load Balancer Controller reads it too, as a Go bool, when no scheme is given."""
AWS_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
"""Only the AWS Load Balancer Controller (pkg/service/model_build_load_balancer.go): `internal` or
`internet-facing`; any other value fails the Service. EKS's built-in controller ignores it."""
AWS_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"
AWS_TARGET_TYPE = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
AWS_LBC_CLASS = aws_load_balancers.LOAD_BALANCER_CONTROLLER_CLASS
"""The AWS Load Balancer Controller takes a Service of this loadBalancerClass, or without a class one whose type
is `nlb-ip`, or `external` with target type `ip` or `instance` (pkg/service/service_utils.go); the built-in
controller leaves those types alone (isLBExternal), and every Service that names a class."""
GKE_TYPE = ("networking.gke.io/load-balancer-type", "cloud.google.com/load-balancer-type")
"""GKE (kubernetes/cloud-provider-gcp providers/gce/gce_annotations.go): the first key present decides;
`Internal` or `internal` is internal."""
GKE_INTERNAL_CLASS = "networking.gke.io/l4-regional-internal-legacy"
"""The loadBalancerClass GKE's controller makes internal whatever the annotation says (its twin
`...-external-legacy` is external whatever it says; any other class is not that controller's)."""
AZURE_INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
"""Azure (kubernetes-sigs/cloud-provider-azure requiresInternalLoadBalancer): exactly "true"."""
OPENSTACK_INTERNAL = "service.beta.kubernetes.io/openstack-internal-load-balancer"
"""OpenStack (kubernetes/cloud-provider-openstack getBoolFromServiceAnnotation): "true"; any value but "true"
or "false" falls back to the cloud config's `internal-lb`, which a policy cannot see."""
GO_TRUE, GO_FALSE = {"1", "t", "T", "TRUE", "true", "True"}, {"0", "f", "F", "FALSE", "false", "False"}
"""Go's strconv.ParseBool; anything else is an error."""


def _networks(*cidrs: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(c) for c in cidrs]


def _minus(
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    holes: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """`nets` without the addresses in `holes` (all one IP version), as a list of networks."""
    for hole in holes:
        rest: list[Any] = []
        for net in nets:
            if net.subnet_of(hole):  # type: ignore[arg-type]
                continue
            rest.extend(net.address_exclude(hole) if hole.subnet_of(net) else [net])  # type: ignore[arg-type]
        nets = rest
    return nets


NOT_PUBLIC = {
    4: _minus(
        _networks(
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "240.0.0.0/4",
        ),
        _networks("192.0.0.9/32", "192.0.0.10/32"),
    ),
    6: _minus(
        _networks(
            "::/128",
            "::1/128",
            "64:ff9b:1::/48",
            "100::/64",
            "2001::/23",
            "2001:db8::/32",
            "3fff::/20",
            "5f00::/16",
            "fc00::/7",
            "fe80::/10",
        ),
        _networks(
            "2001:1::1/128",
            "2001:1::2/128",
            "2001:1::3/128",
            "2001:3::/32",
            "2001:4:112::/48",
            "2001:20::/28",
            "2001:30::/28",
        ),
    ),
}
"""Addresses no one on the internet has: the entries of IANA's IPv4 and IPv6 special-purpose address registries
that are not globally reachable (private, shared/CGNAT, loopback, link-local, documentation, benchmarking,
reserved, ULA, ...), less the anycast exceptions inside them. Fixed here rather than read from `ipaddress`,
whose `is_global` differs between Python 3.11 and 3.13. Anything else (multicast, 6to4, NAT64's 64:ff9b::/96)
counts as public."""
IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
PINNED_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
INSECURE_APISERVER_ARGS = re.compile(r"client-cert-auth=false|insecure|http://")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
KUBECONFIG = re.compile(r"(^|\n)kind:\s*Config\b|\"kind\":\s*\"Config\"")

# OpenStack resources (pulumi_openstack v5) and the command provider's remote Command, as their type tokens.
OPENSTACK_SEC_GROUP_RULE = OPENSTACK_SECURITY_GROUP_RULE
REMOTE_COMMAND_SCRIPTS = ("create", "update", "delete")
REMOTE_COMMAND_DEFAULT_LOGGING = "stdoutAndStderr"
"""pulumi_command's `Logging` (wire values stdout, stderr, stdoutAndStderr, none); absent, it logs both."""
ICMP_PROTOCOLS = frozenset({"icmp", "ipv6-icmp", "icmpv6", "1", "58"})
"""Neutron protocols whose port range is an ICMP type (min) and code (max)."""
EMBEDDED_KUBECONFIG = re.compile(
    r"""(?mx)
    ^[ \t-]*["']?kind["']?[ \t]*:[ \t]*["']?Config["']?[ \t]*,?[ \t]*(?:\#.*)?$  # kind: Config, at any indentation
    | "kind"\s*:\s*"Config"                                                  # the same as JSON
    | client-key-data["']?[ \t]*:                                             # a user's client key
    """
)
"""A kubeconfig anywhere in a document (a cloud-config `write_files` entry, a heredoc): its `kind: Config` line at
any indentation, or a client key. Unlike KUBECONFIG, which reads a whole output, this reads text holding others."""
JOIN_TOKEN = re.compile(
    r"""(?mx)
    ^[ \t-]*["']?(?:agent-)?token["']?[ \t]*:[ \t]*(?!["']{2}|["']?\$|null\b|~|\#|$)\S  # YAML: token: / agent-token:
    | \b(?:K3S|RKE2)_(?:AGENT_)?TOKEN=["']?[^\s"'$]                                    # K3S_TOKEN=..., RKE2_TOKEN=...
    | \bK10[0-9a-fA-F]{32,}::\S                                                         # k3s/RKE2 secure token
    | (?:^|\s)--(?:agent-)?token(?:=|[ \t]+)["']?[^\s"'$-]                              # --token <value> (kubeadm, k3s)
    """
)
"""A cluster join token given literally: a k3s/RKE2 config or kubeadm YAML key, an installer's environment
variable, the `K10<CA hash>::<user>:<password>` secure form, or a `--token` flag. One read from elsewhere
(`$K3S_TOKEN`, `token-file:`, `--token-file`, an empty value) is not."""
SECRET_FORMS = (("a private key", PRIVATE_KEY), ("a kubeconfig", EMBEDDED_KUBECONFIG), ("a join token", JOIN_TOKEN))

# AWS resources (pulumi_aws v7) as their type tokens, and what EKS and ELB do when an input is not given.
AWS_SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
AWS_SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
AWS_SECURITY_GROUP_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
AWS_LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
"""`aws.lb.LoadBalancer` and its older alias `aws.alb.LoadBalancer`: one resource, two tokens."""
AWS_LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
AWS_INSTANCE = "aws:ec2/instance:Instance"
AWS_VPC_PEERING_CONNECTION = "aws:ec2/vpcPeeringConnection:VpcPeeringConnection"
AWS_VPC_PEERING_ACCEPTER = "aws:ec2/vpcPeeringConnectionAccepter:VpcPeeringConnectionAccepter"
AWS_ROUTE = "aws:ec2/route:Route"
AWS_ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
AWS_TGW_VPC_ATTACHMENT = "aws:ec2transitgateway/vpcAttachment:VpcAttachment"
AWS_TGW_PEERING_ATTACHMENT = "aws:ec2transitgateway/peeringAttachment:PeeringAttachment"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EKS_KIND = "eks"
"""The MeshCluster `kind` of a cluster the program builds on EKS; such a cluster registers `vpcId` and `vpcCidr`."""
AWS_ALL_PROTOCOLS = frozenset({"-1", "all"})
"""EC2's any-protocol rule (`-1`; the legacy SecurityGroupRule also takes `all`), which covers every port."""
AWS_ICMP_PROTOCOLS = frozenset({"icmp", "icmpv6", "1", "58"})
"""EC2 protocols whose from/to ports are an ICMP type and code, -1 meaning every one."""
EKS_DEFAULT_PRIVATE_ACCESS, EKS_DEFAULT_PUBLIC_ACCESS = False, True
"""`vpcConfig.endpointPrivateAccess` and `endpointPublicAccess` when not given (pulumi_aws ClusterVpcConfig); a public
endpoint without `publicAccessCidrs` is open to 0.0.0.0/0."""
IMDSV2_AMI_TYPE_PREFIX = "AL2023_"
"""EKS AMI types whose AMI requires IMDSv2 when nothing at launch says otherwise: "By default, any instances launched
with the AL2023 AMI require IMDSv2-only and your default hop limit will be set to 2" (Amazon Linux 2023 User Guide,
IMDSv2), and the EKS-optimized AL2023 AMIs "automatically use ... IMDSv2" (AWS Containers blog, "Amazon EKS-Optimized
Amazon Linux 2023 AMIs Now Available"). AL2 and Windows AMIs allow IMDSv1; for Bottlerocket no such default is
documented. What EKS writes into the launch template it generates for a node group without one is not documented
(aws/containers-roadmap#1497), so only the AMI's own default is relied on."""


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


def _kube_system_objects(
    resources: list[PolicyResource], resource_type: str = SECRET
) -> dict[tuple[str | None, Any], list[PolicyResource]]:
    """(provider URN, name) -> the objects of that type and name in that cluster's Cilium namespace (kube-system:
    what the agents and the clustermesh-apiserver mount from), indexed once per rule."""
    index: dict[tuple[str | None, Any], list[PolicyResource]] = defaultdict(list)
    for r in resources:
        if r.resource_type == resource_type and _read(r.props, "metadata", "namespace") == NAMESPACE:
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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parsed(cidrs: Any) -> list[Network]:
    """The CIDRs of a known list; an entry that is not one is config validation's to report."""
    if not _known(cidrs) or not isinstance(cidrs, list):
        return []
    parsed = []
    for cidr in cidrs:
        try:
            parsed.append(ipaddress.ip_network(str(cidr), strict=False))
        except ValueError:
            continue
    return parsed


def _pod_ranges(resources: Iterable[PolicyResource]) -> dict[str, tuple[PolicyResource, list[Network]]]:
    """Cluster name -> (a resource to point at, the cluster's pod CIDRs, each once).

    From the MeshCluster components, which carry the ranges whatever installs pod addresses (Cilium's
    cluster-pool, the AWS VPC CNI, Calico), and from Cilium releases' cluster-pool values.
    """
    found: dict[str, tuple[PolicyResource, list[Network]]] = {}

    def add(name: Any, resource: PolicyResource, cidrs: list[Network]) -> None:
        if not _known(name) or name is None:
            return
        _, known = found.setdefault(str(name), (resource, []))
        known.extend(c for c in cidrs if c not in known)

    for resource in resources:
        if resource.resource_type == MESH_CLUSTER:
            add(_read(resource.props, "clusterName"), resource, _parsed(_plain(_read(resource.props, "podCidrs"))))
        elif _is_cilium(resource.resource_type, resource.props):
            operator = _read(resource.props, "values", "ipam", "operator", default={})
            for key in ("clusterPoolIPv4PodCIDRList", "clusterPoolIPv6PodCIDRList"):
                add(_cluster_name(resource), resource, _parsed(_plain(_read(operator, key, default=[]))))
    return found


def _validate_pod_cidrs_disjoint(args: StackValidationArgs, report: ReportViolation) -> None:
    # Within one cluster ranges may overlap (with the AWS VPC CNI pods and nodes share the VPC's); across
    # clusters an address must name one pod.
    clusters = sorted(_pod_ranges(args.resources).items())
    for i, (name, (resource, cidrs)) in enumerate(clusters):
        for other, (_, other_cidrs) in clusters[i + 1 :]:
            for cidr in cidrs:
                for other_cidr in other_cidrs:
                    if cidr.version == other_cidr.version and cidr.overlaps(other_cidr):
                        report(
                            f"pod CIDR {cidr} of cluster {name} overlaps {other_cidr} of cluster {other}", resource.urn
                        )


def _validate_mesh_complete(args: StackValidationArgs, report: ReportViolation) -> None:
    clusters = _by_cluster(args.resources)
    everyone = {name for name, _ in clusters.values()}
    secrets_by_name = _kube_system_objects(args.resources)
    users_by_name = _kube_system_objects(args.resources, KUBERNETES_CONFIGMAP)
    for provider, (name, release) in sorted(clusters.items()):
        expected = everyone - {name}
        if _needs_remote_users(release):
            _check_remote_users(name, expected, users_by_name[(provider, REMOTE_USERS_CONFIGMAP)], report, release)
        if len(everyone) < 2:
            continue
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
                named = set(_mapping(data)) | set(_mapping(string_data))
                _report_difference(f"{secret_name} of cluster {name}", expected, named, report, secret.urn)


def _needs_remote_users(release: PolicyResource) -> bool:
    """Whether the chart mounts a `clustermesh-remote-users` ConfigMap it does not render itself.

    The clustermesh-apiserver mounts it (not optional) unless authMode is `legacy`; the chart renders it only
    from its own peer list (clustermesh.config.enabled, kvstoreMode internal, CRD identities).
    """
    values = _read(release.props, "values", default={})
    use = _read(values, "clustermesh", "useAPIServer")
    mode = _read(values, "clustermesh", "apiserver", "tls", "authMode", default=DEFAULT_AUTH_MODE)
    chart_config = _read(values, "clustermesh", "config", "enabled")
    kvstore_mode = _read(values, "clustermesh", "apiserver", "kvstoremesh", "kvstoreMode", default="internal")
    identities = _read(values, "identityAllocationMode", default="crd")
    if not _known(use, mode, chart_config, kvstore_mode, identities) or not use or mode == "legacy":
        return False
    return not (chart_config and kvstore_mode == "internal" and identities in CRD_IDENTITY_MODES)


def _check_remote_users(
    name: str, peers: set[str], configmaps: list[PolicyResource], report: ReportViolation, release: PolicyResource
) -> None:
    if not configmaps:
        report(
            f"cluster {name} has no {REMOTE_USERS_CONFIGMAP} ConfigMap: its clustermesh-apiserver mounts it and "
            "never starts without it",
            release.urn,
        )
        return
    expected = {remote_user(peer) for peer in peers}
    what = f"{REMOTE_USERS_CONFIGMAP} of cluster {name}"
    for configmap in configmaps:
        text = _read(configmap.props, "data", REMOTE_USERS_KEY)
        if not _known(text):
            continue
        document = _yaml_document(str(text or ""))
        users = _mapping(document).get("users")
        if not isinstance(users, list) or not all(isinstance(u, Mapping) for u in users):
            report(f"{what} has no list of users under {REMOTE_USERS_KEY}", configmap.urn)
            continue
        _report_difference(what, expected, {str(u.get("name")) for u in users}, report, configmap.urn)
        wrong_role = sorted(str(u.get("name")) for u in users if u.get("role") != "remote")
        if wrong_role:
            report(f"{what} gives {', '.join(wrong_role)} a role other than remote", configmap.urn)


def _yaml_document(text: str) -> Any:
    """A YAML document, or None if it is not one. JSON is YAML too, and parses many times faster: the program
    writes the users file as JSON, and a 511-cluster mesh holds 261,000 users."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return None


def _report_difference(what: str, expected: set[str], named: set[str], report: ReportViolation, urn: str) -> None:
    missing, foreign = sorted(expected - named), sorted(named - expected)
    if missing:
        report(f"{what} does not name {', '.join(missing)}", urn)
    if foreign:
        report(f"{what} names {', '.join(foreign)}, not peers of it", urn)


def _validate_explicit_providers(args: StackValidationArgs, report: ReportViolation) -> None:
    for resource in args.resources:
        package = resource.resource_type.split(":", 1)[0]
        if package == "pulumi" or package in COMPONENT_PACKAGES:
            continue  # providers, the stack, and this program's components have no provider of their own
        provider = resource.provider
        if provider is None:
            report(f"{resource.name} ({resource.resource_type}) names no provider", resource.urn)
        elif _is_default_provider(provider.name):
            report(
                f"{resource.name} ({resource.resource_type}) goes through the default {package} provider "
                f"({provider.name}), configured by whatever the ambient environment holds (a kubeconfig, "
                "cloud credentials and region) rather than by the stack",
                resource.urn,
            )


def _is_default_provider(name: str) -> bool:
    """The engine names the default provider of a package `default`, or `default_<version>[_<url>]`."""
    return name == "default" or name.startswith("default_")


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
    secrets_by_name = _kube_system_objects(args.resources)
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


def _validate_address_pairs_within_pools(args: StackValidationArgs, report: ReportViolation) -> None:
    by_urn = {r.urn: r for r in args.resources}
    for port in args.resources:
        if port.resource_type != OPENSTACK_PORT:
            continue
        pairs = _read(port.props, "allowedAddressPairs", default=[])
        if not _known(pairs) or not pairs:
            continue
        cluster = _owning_cluster(port, by_urn)
        pools = _plain(_read(cluster.props, "loadBalancerPools", default=[])) if cluster is not None else []
        pod_ranges = _plain(_read(cluster.props, "podAddressPairs", default=[])) if cluster is not None else []
        if not _known(pools, pod_ranges):
            continue  # the pools are not known yet: nothing to hold the pairs against
        pools = [*(pools or []), *(pod_ranges or [])]
        owner = _cluster_label(cluster) if cluster is not None else None
        for entry in _elements(pairs):
            address = _read(entry, "ipAddress")
            if _known(address) and address is not None:
                _check_address_pair(port, str(address), owner, _parsed(pools), report)


def _check_address_pair(
    port: PolicyResource, address: str, owner: str | None, pools: list[Network], report: ReportViolation
) -> None:
    """An allowed address pair lets the port send and receive as `address`: Neutron's anti-spoofing lets it pass.
    Only the addresses MetalLB answers for in the port's own cluster need that."""
    what = f"port {port.name} allows address pair {address}"
    try:
        network = ipaddress.ip_network(address.strip(), strict=False)
    except ValueError:
        report(f"{what}, not an address or CIDR", port.urn)
        return
    if _public_part(network):
        report(f"{what}, which holds public addresses: the VM could send as hosts of the Internet", port.urn)
        return
    if owner is None:
        report(f"{what} but belongs to no MeshCluster: only a cluster's load-balancer pools may pass", port.urn)
    elif not pools:
        report(f"{what} but cluster {owner} has no load-balancer address pool", port.urn)
    elif _minus([network], [p for p in pools if p.version == network.version]):
        shown = ", ".join(str(p) for p in pools)
        report(f"{what}, outside the load-balancer pools and pod ranges of cluster {owner} ({shown})", port.urn)


def _owning_cluster(resource: PolicyResource, by_urn: Mapping[str, PolicyResource]) -> PolicyResource | None:
    """The nearest MeshCluster among `resource`'s ancestors (the engine links a stack policy's resources to their
    parents; the parent URN in the options is the fallback)."""
    seen: set[str] = set()
    current = _parent(resource, by_urn)
    while current is not None and current.urn not in seen:
        if current.resource_type == MESH_CLUSTER:
            return current
        seen.add(current.urn)
        current = _parent(current, by_urn)
    return None


def _parent(resource: PolicyResource, by_urn: Mapping[str, PolicyResource]) -> PolicyResource | None:
    if resource.parent is not None:
        return resource.parent
    urn = getattr(resource.opts, "parent", None)
    return by_urn.get(urn) if urn else None


def _cluster_label(cluster: PolicyResource) -> str:
    name = _read(cluster.props, "clusterName")
    return str(name) if _known(name) and name is not None else cluster.name


def _elements(value: Any) -> list[Any]:
    """The elements of a known list, each UNKNOWN where the engine does not know it yet; [] for anything else."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    elements = []
    for index in range(len(value)):
        try:
            elements.append(value[index])
        except UnknownValueError:
            elements.append(UNKNOWN)
    return elements


def _secrets_in(text: str) -> list[str]:
    """What kinds of secret `text` holds, as SECRET_FORMS names them."""
    return [kind for kind, pattern in SECRET_FORMS if pattern.search(text)]


# --- resource rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Exposure:
    """A clustermesh-apiserver Service as the cloud's controller sees it."""

    type: Any
    source_ranges: Any
    annotations: Any
    load_balancer_class: Any


def _exposure(args: ResourceValidationArgs) -> _Exposure | None:
    """The clustermesh-apiserver Service a Cilium release renders, or a Service of that name."""
    props = args.props
    if _is_cilium(args.resource_type, props):
        values = _read(props, "values", default={})
        service = _read(values, "clustermesh", "apiserver", "service", default={})
        if not _read(values, "clustermesh", "useAPIServer") or _read(service, "externallyCreated") is True:
            return None  # no Service from the chart (one created elsewhere is checked as a Service)
        if _read(values, "clustermesh", "apiserver", "kvstoremesh", "kvstoreMode", default="internal") != "internal":
            return None
        # The chart writes `clustermesh.annotations` and then the Service's own annotations.
        shared = _plain(_read(values, "clustermesh", "annotations", default={}))
        own = _plain(_read(service, "annotations", default={}))
        return _Exposure(
            _read(service, "type", default="NodePort"),
            _plain(_read(service, "loadBalancerSourceRanges", default=[])),
            {**_mapping(shared), **_mapping(own)} if _known(shared, own) else UNKNOWN,
            _read(service, "loadBalancerClass"),
        )
    if args.resource_type == SERVICE and _read(props, "metadata", "name") == APISERVER_SERVICE:
        return _Exposure(
            _read(props, "spec", "type", default="ClusterIP"),
            _plain(_read(props, "spec", "loadBalancerSourceRanges", default=[])),
            _plain(_read(props, "metadata", "annotations", default={})),
            _read(props, "spec", "loadBalancerClass"),
        )
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(annotations: Mapping[str, Any], key: str) -> str | None:
    """An annotation's value; None where absent or not a string (Kubernetes refuses those)."""
    value = annotations.get(key)
    return value if isinstance(value, str) else None


def _aws_lbc_takes(annotations: Mapping[str, Any], load_balancer_class: str | None) -> bool:
    if load_balancer_class is not None:
        return load_balancer_class == AWS_LBC_CLASS
    lb_type = _text(annotations, AWS_TYPE)
    return lb_type == "nlb-ip" or (lb_type == "external" and _text(annotations, AWS_TARGET_TYPE) in ("ip", "instance"))


def _aws_lbc_scheme(annotations: Mapping[str, Any]) -> str | None:
    """The scheme the AWS Load Balancer Controller gives a Service it takes: `internal`, `internet-facing`, `invalid`
    (it refuses the Service), or None (its default, `--default-load-balancer-scheme`, or an existing LB's)."""
    if AWS_SCHEME in annotations:
        scheme = _text(annotations, AWS_SCHEME)
        return scheme if scheme in ("internal", "internet-facing") else "invalid"
    if AWS_INTERNAL in annotations:
        internal = _text(annotations, AWS_INTERNAL)
        if internal in GO_TRUE:
            return "internal"
        return "internet-facing" if internal in GO_FALSE else "invalid"
    return None


def _aws_builtin_internal(annotations: Mapping[str, Any]) -> bool:
    return _text(annotations, AWS_INTERNAL) not in (None, "", "false")


def _gke_internal(annotations: Mapping[str, Any], load_balancer_class: str | None) -> bool:
    if load_balancer_class is not None:
        return load_balancer_class == GKE_INTERNAL_CLASS
    first = next((key for key in GKE_TYPE if key in annotations), None)
    return first is not None and _text(annotations, first) in ("Internal", "internal")


def _is_internal(annotations: Mapping[str, Any], load_balancer_class: Any) -> bool:
    """Whether the controller that takes this Service gives it no public address, by the value it honours.

    The cloud is not known here, so each cloud's reading is tried; a Service naming a class is read only by
    the controller of that class. Without a class, an AWS Service counts as internal only if EKS's built-in
    controller makes it so and the AWS Load Balancer Controller would too, were its webhook to take it.
    """
    lb_class = load_balancer_class if isinstance(load_balancer_class, str) and load_balancer_class else None
    if _aws_lbc_takes(annotations, lb_class):
        return _aws_lbc_scheme(annotations) == "internal"
    if _gke_internal(annotations, lb_class):
        return True
    if lb_class is not None:
        return False  # only that class's controller reads the Service, by rules not known here
    return (
        (_aws_builtin_internal(annotations) and _aws_lbc_scheme(annotations) != "internet-facing")
        or _text(annotations, AZURE_INTERNAL) == "true"
        or _text(annotations, OPENSTACK_INTERNAL) == "true"
    )


def _why_not_internal(annotations: Mapping[str, Any], load_balancer_class: Any) -> str:
    """A hint for an annotation that looks internal but is not honoured where it stands."""
    lb_class = load_balancer_class if isinstance(load_balancer_class, str) and load_balancer_class else None
    if AWS_SCHEME in annotations and not _aws_lbc_takes(annotations, lb_class):
        return (
            f" ({AWS_SCHEME} is read only by the AWS Load Balancer Controller, which takes the Service only with "
            f"loadBalancerClass {AWS_LBC_CLASS} or {AWS_TYPE} nlb-ip or external with {AWS_TARGET_TYPE}; "
            f'EKS\'s built-in controller needs {AWS_INTERNAL}: "true")'
        )
    looks_internal = [
        k for k in (AWS_INTERNAL, AWS_SCHEME, *GKE_TYPE, AZURE_INTERNAL, OPENSTACK_INTERNAL) if k in annotations
    ]
    if looks_internal:
        shown = ", ".join(f"{k}: {annotations[k]!r}" for k in looks_internal)
        where = f" with loadBalancerClass {lb_class}" if lb_class else ""
        return f" ({shown} does not make it internal{where})"
    return ""


def _public_part(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """Whether `network` holds an address someone on the internet can have."""
    if isinstance(network, ipaddress.IPv6Network):
        if network.subnet_of(IPV4_MAPPED):
            mapped = network.network_address.ipv4_mapped
            assert mapped is not None
            return _public_part(ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}"))
        if IPV4_MAPPED.subnet_of(network):
            return True  # it holds every IPv4 address, mapped
    return bool(_minus([network], NOT_PUBLIC[network.version]))


def _validate_apiserver_not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    exposure = _exposure(args)
    if exposure is None:
        return
    ranges, annotations = exposure.source_ranges, exposure.annotations
    if not _known(exposure.type, ranges, annotations, exposure.load_balancer_class):
        return
    annotations = _mapping(annotations)
    if exposure.type != "LoadBalancer" or _is_internal(annotations, exposure.load_balancer_class):
        return
    hint = _why_not_internal(annotations, exposure.load_balancer_class)
    if not ranges:
        report(
            "the clustermesh-apiserver LoadBalancer is neither internal nor restricted by "
            f"loadBalancerSourceRanges: every address on the internet can reach the mesh's etcd{hint}",
            None,
        )
        return
    open_ranges = []
    for entry in ranges:
        try:
            network = ipaddress.ip_network(str(entry).strip(), strict=False)
        except ValueError:
            report(f"loadBalancerSourceRanges of the clustermesh-apiserver holds {entry!r}, not a CIDR", None)
            continue
        if _public_part(network):
            open_ranges.append(str(entry))
    if open_ranges:
        report(f"the clustermesh-apiserver LoadBalancer is open to {', '.join(open_ranges)}{hint}", None)


def _validate_chart_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != HELM_RELEASE:
        return
    version = _read(args.props, "version", default="")
    if _known(version) and not PINNED_VERSION.match(str(version)):
        chart = _read(args.props, "chart")
        report(f"chart {chart} is not pinned to an exact version (version: {version!r})", None)


def _validate_no_world_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != OPENSTACK_SEC_GROUP_RULE or _read(args.props, "direction") != "ingress":
        return
    props = args.props
    prefix = _read(props, "remoteIpPrefix", default="")
    groups = [_read(props, "remoteGroupId", default=""), _read(props, "remoteAddressGroupId", default="")]
    if not _known(prefix):
        return
    # The traffic is only named: the whole internet let in is a violation whatever the ports turn out to be.
    traffic = _traffic(*(_read(props, key) for key in ("protocol", "portRangeMin", "portRangeMax")))
    if prefix:
        try:
            network = ipaddress.ip_network(str(prefix).strip(), strict=False)
        except ValueError:
            return  # Neutron refuses it
        if network.prefixlen == 0:
            report(f"ingress rule admits the whole internet (remoteIpPrefix {prefix}) to {traffic}", None)
    elif _known(*groups) and not any(groups):
        ethertype = _read(props, "ethertype", default="IPv4")
        ethertype = ethertype if _known(ethertype) else "IP"
        report(
            f"ingress rule names no remoteIpPrefix, remoteGroupId or remoteAddressGroupId, so Neutron admits every "
            f"{ethertype} address to {traffic}",
            None,
        )


def _traffic(protocol: Any, low: Any, high: Any) -> str:
    """A rule's protocol and port range as words; Neutron's 0 (or nothing) is an open end."""
    if not _known(protocol):
        return "a protocol and ports not known yet"
    if not protocol:
        return "every protocol and port"
    if not _known(low, high):
        return f"{protocol}, ports not known yet"
    first, last = (int(v) if isinstance(v, int | float) and v else None for v in (low, high))
    if str(protocol).lower() in ICMP_PROTOCOLS:
        kind = "every type" if first is None else f"type {first}" + (f" code {last}" if last is not None else "")
        return f"{protocol}{',' if first is None else ''} {kind}"
    return f"{protocol}{_port_range(first, last)}"


def _port_range(first: int | None, last: int | None) -> str:
    if first is None and last is None:
        return ", every port"
    if first is None or last is None or first == last:
        return f" port {first if first is not None else last}"
    return f" ports {first}-{last}"


def _validate_port_security(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (OPENSTACK_PORT, OPENSTACK_NETWORK):
        return
    if _read(args.props, "portSecurityEnabled") is not False:
        return  # on, the network's default (a Network is checked itself), or not known yet
    if args.resource_type == OPENSTACK_PORT:
        report(
            "port security is off: Neutron neither filters the port's traffic by its security groups nor stops it "
            "spoofing addresses (allowed address pairs are the way to let through the addresses it must answer for)",
            None,
        )
    else:
        report(
            "port security is off on the network, so each port on it without portSecurityEnabled: true (those Nova "
            "makes for an instance among them) has no security groups and no anti-spoofing",
            None,
        )


def _validate_no_secret_user_data(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != OPENSTACK_INSTANCE:
        return
    user_data = _read(args.props, "userData")
    if not isinstance(user_data, str):
        return  # absent, or not known yet
    found = _secrets_in(user_data)
    if found:
        report(
            f"user data holds {' and '.join(found)}: Nova keeps user data unencrypted and serves it to the instance's "
            "metadata service and to anyone who may show the server; the provider does not treat it as secret",
            None,
        )


def _validate_remote_command_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REMOTE_COMMAND:
        return
    props = args.props
    stdin, logging = _read(props, "stdin"), _read(props, "logging")
    # A stdin not known yet is still there: the program gave one, so the command takes input.
    if (stdin is UNKNOWN or stdin) and _known(logging) and logging != "none":
        shown = f"{logging}" if logging is not None else f"{REMOTE_COMMAND_DEFAULT_LOGGING}, the default"
        report(
            f"the command takes input on stdin (where secrets go) but logs its output (logging: {shown}); "
            'an echo or an error puts the input in the update\'s log; set logging to "none"',
            None,
        )
    for field in REMOTE_COMMAND_SCRIPTS:
        script = _read(props, field)
        found = _secrets_in(script) if isinstance(script, str) else []
        if found:
            report(f"the command's {field} script holds {' and '.join(found)}; pass secrets on stdin", None)
    environment = _plain(_read(props, "environment", default={}))
    if _known(environment):
        text = "\n".join(f"{key}={value}" for key, value in _mapping(environment).items())
        found = _secrets_in(text)
        if found:
            report(f"the command's environment holds {' and '.join(found)}; pass secrets on stdin", None)


# --- AWS (EKS) rules ------------------------------------------------------------------------------------


def _world_cidrs(cidrs: Any) -> list[str]:
    """The entries of a known CIDR list (or one CIDR) that are a /0: every address of their IP version."""
    entries = [cidrs] if isinstance(cidrs, str) else _elements(cidrs)
    wide = []
    for entry in entries:
        if not isinstance(entry, str):
            continue  # not known yet, or not a CIDR: EC2 refuses it
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            continue
        if network.prefixlen == 0:
            wide.append(entry)
    return wide


def _aws_traffic(protocol: Any, low: Any, high: Any) -> str:
    """An EC2 rule's protocol and port range as words; -1 is every protocol, or every ICMP type or code."""
    if not _known(protocol):
        return "a protocol and ports not known yet"
    if protocol is None or str(protocol).lower() in AWS_ALL_PROTOCOLS:
        return "every protocol and port"
    if not _known(low, high):
        return f"{protocol}, ports not known yet"
    first, last = (int(v) if isinstance(v, int | float) and v >= 0 else None for v in (low, high))
    if str(protocol).lower() in AWS_ICMP_PROTOCOLS:
        kind = "every type" if first is None else f"type {first}" + (f" code {last}" if last is not None else "")
        return f"{protocol}{',' if first is None else ''} {kind}"
    if first in (None, 0) and last in (None, 65535):
        return f"{protocol}, every port"
    return f"{protocol}{_port_range(first, last)}"


def _world_sources(props: Any, *keys: str) -> str | None:
    """`key cidr, ...` for the /0 entries under `keys`, or None if there are none (or none known yet)."""
    found = [f"{key} {', '.join(wide)}" for key in keys if (wide := _world_cidrs(_read(props, key)))]
    return "; ".join(found) or None


def _validate_aws_no_world_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == AWS_SECURITY_GROUP:
        rules = [(f"inline ingress rule {i}", block) for i, block in enumerate(_elements(_read(props, "ingress")))]
        keys = ("cidrBlocks", "ipv6CidrBlocks", "protocol")
    elif args.resource_type == AWS_SECURITY_GROUP_RULE and _read(props, "type") == "ingress":
        rules, keys = [("ingress rule", props)], ("cidrBlocks", "ipv6CidrBlocks", "protocol")
    elif args.resource_type == AWS_SECURITY_GROUP_INGRESS_RULE:
        rules, keys = [("ingress rule", props)], ("cidrIpv4", "cidrIpv6", "ipProtocol")
    else:
        return
    # The traffic is only named: the whole internet let in is a violation whatever the ports turn out to be.
    for what, rule in rules:
        sources = _world_sources(rule, *keys[:2])
        if sources:
            traffic = _aws_traffic(*(_read(rule, key) for key in (keys[2], "fromPort", "toPort")))
            report(f"{what} admits the whole internet ({sources}) to {traffic}", None)


def _validate_eks_private_endpoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    vpc_config = _read(args.props, "vpcConfig", default={})
    if not _known(vpc_config):
        return
    private = _read(vpc_config, "endpointPrivateAccess")
    if _known(private) and (private if private is not None else EKS_DEFAULT_PRIVATE_ACCESS) is not True:
        shown = "false" if private is False else "not set, and EKS defaults it to false"
        report(
            f"the cluster's API server has no private endpoint (vpcConfig.endpointPrivateAccess {shown}): nodes and "
            "peers in the VPC would reach it through the public one",
            None,
        )
    public = _read(vpc_config, "endpointPublicAccess")
    if not _known(public) or (public if public is not None else EKS_DEFAULT_PUBLIC_ACCESS) is not True:
        return
    cidrs = _read(vpc_config, "publicAccessCidrs", default=[])
    if not _known(cidrs):
        return
    shown = "true" if public is True else "not set, and EKS defaults it to true"
    if not _elements(cidrs):
        report(
            f"the cluster's API server endpoint is public (vpcConfig.endpointPublicAccess {shown}) without "
            "publicAccessCidrs, which EKS then sets to 0.0.0.0/0: the whole internet reaches it",
            None,
        )
    elif wide := _world_cidrs(cidrs):
        report(
            f"the cluster's public API server endpoint admits the whole internet (publicAccessCidrs {', '.join(wide)})",
            None,
        )


def _validate_eks_secrets_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    encryption = _read(args.props, "encryptionConfig")
    if not _known(encryption):
        return
    if encryption is None:
        report(
            "the cluster has no encryptionConfig: its Secrets are not envelope-encrypted with a KMS key of the stack's "
            '(give resources ["secrets"] and provider.keyArn)',
            None,
        )
        return
    resources = _plain(_read(encryption, "resources", default=[]))
    if _known(resources) and "secrets" not in (resources if isinstance(resources, list) else []):
        named = ", ".join(str(r) for r in resources) if isinstance(resources, list) and resources else "none"
        report(f'encryptionConfig does not name "secrets" among its resources (it names {named})', None)
    key = _read(encryption, "provider", "keyArn")
    if _known(key) and not key:
        report("encryptionConfig names no provider.keyArn: no KMS key envelope-encrypts the cluster's Secrets", None)


def _validate_nlb_internal(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in AWS_LOAD_BALANCERS:
        return
    lb_type, internal = _read(args.props, "loadBalancerType"), _read(args.props, "internal")
    if lb_type != "network" or not _known(internal) or internal is True:
        return  # another type (application is the default), internal, or not known yet
    shown = "false" if internal is False else "not set, and it defaults to false"
    report(
        f"the network load balancer is internet-facing (internal {shown}): it gets public addresses, and the "
        "clustermesh-apiserver behind it serves the mesh's etcd",
        None,
    )


def _validate_imdsv2_required(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == EKS_NODE_GROUP:
        _check_node_group_imds(props, report)
        return
    if args.resource_type not in (AWS_LAUNCH_TEMPLATE, AWS_INSTANCE):
        return
    options = _read(props, "metadataOptions", default={})
    tokens, endpoint = _read(options, "httpTokens"), _read(options, "httpEndpoint")
    if not _known(options, tokens, endpoint) or tokens == "required" or endpoint == "disabled":
        return  # IMDSv2 only, no metadata service at all, or not known yet
    if args.resource_type == AWS_INSTANCE and tokens is None and _read(props, "launchTemplate") is not None:
        return  # the launch template's metadata options apply, and the template is checked itself
    what = "launch template" if args.resource_type == AWS_LAUNCH_TEMPLATE else "instance"
    shown = repr(tokens) if tokens is not None else "not set, so the AMI or the account default decides"
    report(
        f"the {what} does not require IMDSv2 (metadataOptions.httpTokens {shown}): IMDSv1 answers any process that "
        "can reach 169.254.169.254, a pod or an SSRF among them, with the node role's credentials; set "
        '"required"',
        None,
    )


def _check_node_group_imds(props: Any, report: ReportViolation) -> None:
    """A managed node group with a launch template runs with the template's metadata options (the template is
    checked itself); without one, with whatever its AMI defaults to."""
    template, ami_type = _read(props, "launchTemplate"), _read(props, "amiType")
    if template is not None or not _known(ami_type):
        return
    if isinstance(ami_type, str) and ami_type.startswith(IMDSV2_AMI_TYPE_PREFIX):
        return
    shown = ami_type if ami_type is not None else "not set, so EKS picks one by Kubernetes version"
    report(
        f"the node group has no launch template and its AMI type ({shown}) does not require IMDSv2 by default; use an "
        f'{IMDSV2_AMI_TYPE_PREFIX}* AMI type or a launch template with metadataOptions.httpTokens "required"',
        None,
    )


# mesh-vpcs-connected: the verdicts are three-valued, None standing for "not known until the cloud answers".
Verdict = bool | None


def _any(verdicts: Iterable[Verdict]) -> Verdict:
    result: Verdict = False
    for verdict in verdicts:
        if verdict is True:
            return True
        if verdict is None:
            result = None
    return result


def _all(verdicts: Iterable[Verdict]) -> Verdict:
    result: Verdict = True
    for verdict in verdicts:
        if verdict is False:
            return False
        if verdict is None:
            result = None
    return result


def _equals(value: Any, expected: Any) -> Verdict:
    if not _known(value, expected):
        return None
    return value is not None and value == expected


@dataclass(frozen=True)
class _MeshVpc:
    """A meshed cluster's VPC, as its MeshCluster registers it."""

    cluster: str
    resource: PolicyResource
    vpc_id: Any
    cidrs: Any
    """The VPC's CIDRs (list of networks), or UNKNOWN."""


@dataclass(frozen=True)
class _Network:
    """What connects VPCs (peering connections, routes, transit gateway attachments and peerings), indexed once:
    a full mesh of N VPCs holds some N² routes, and each of its N² directions is looked up in them."""

    routes: dict[tuple[Any, Network], list[PolicyResource]]
    """(VPC id of the route's table, destination) -> the routes known to be there."""
    uncertain_routes: list[PolicyResource]
    """Routes whose table, VPC or destination is not known yet (or is a prefix list): weighed for every direction."""
    by_id: dict[str, list[PolicyResource]]
    """Route tables and peering connections by the id their state shows, where it shows one."""
    peerings: dict[frozenset[Any], list[PolicyResource]]
    """Peering connections by the VPC ids at their ends, where both are known."""
    attachments: frozenset[tuple[Any, Any]]
    """(VPC id, transit gateway id) of every transit gateway attachment whose ends are known."""
    uncertain_attachments: list[PolicyResource]
    gateway_peerings: list[PolicyResource]

    @classmethod
    def of(cls, resources: Iterable[PolicyResource]) -> _Network:
        by_type: dict[str, list[PolicyResource]] = defaultdict(list)
        for resource in resources:
            by_type[resource.resource_type].append(resource)
        by_id: dict[str, list[PolicyResource]] = defaultdict(list)
        for resource in (*by_type[AWS_ROUTE_TABLE], *by_type[AWS_VPC_PEERING_CONNECTION]):
            if isinstance(resource_id := _read(resource.props, "id"), str):
                by_id[resource_id].append(resource)
        peerings: dict[frozenset[Any], list[PolicyResource]] = defaultdict(list)
        for peering in by_type[AWS_VPC_PEERING_CONNECTION]:
            ends = (_read(peering.props, "vpcId"), _read(peering.props, "peerVpcId"))
            if _known(*ends):
                peerings[frozenset(ends)].append(peering)
        attachments, uncertain_attachments = set(), []
        for attachment in by_type[AWS_TGW_VPC_ATTACHMENT]:
            ends = (_read(attachment.props, "vpcId"), _read(attachment.props, "transitGatewayId"))
            if _known(*ends):
                attachments.add(ends)
            else:
                uncertain_attachments.append(attachment)
        network = cls(
            {},
            [],
            by_id,
            peerings,
            frozenset(attachments),
            uncertain_attachments,
            by_type[AWS_TGW_PEERING_ATTACHMENT],
        )
        for route in by_type[AWS_ROUTE]:
            network.index(route)
        return network

    def index(self, route: PolicyResource) -> None:
        tables = self.referenced(route, "routeTableId", AWS_ROUTE_TABLE)
        vpc_ids = [_read(t.props, "vpcId") for t in tables] if tables is not UNKNOWN else [UNKNOWN]
        keys = ("destinationCidrBlock", "destinationIpv6CidrBlock", "destinationPrefixListId")
        destinations = [_read(route.props, key) for key in keys]
        if not _known(*vpc_ids, *destinations) or destinations[2] is not None:
            self.uncertain_routes.append(route)
            return
        for vpc_id in vpc_ids:
            for destination in _parsed([d for d in destinations[:2] if d is not None]):
                self.routes.setdefault((vpc_id, destination), []).append(route)

    def candidate_routes(self, vpc_id: Any, cidr: Network) -> list[PolicyResource]:
        """The routes that may send `cidr` from VPC `vpc_id`: to it or to a network holding it, or not known yet."""
        known = (self.routes.get((vpc_id, cidr.supernet(new_prefix=p)), []) for p in range(cidr.prefixlen + 1))
        return [*self.uncertain_routes, *(route for routes in known for route in routes)]

    def referenced(self, resource: PolicyResource, prop: str, resource_type: str) -> Any:
        """The resources of `resource_type` that `resource`'s input `prop` may name: those the engine records as that
        input's dependencies, those whose state shows that id, or else all the resource's dependencies of that type
        (the planner records a resource's dependencies, not each input's). Where several may be the one, a verdict
        true of any of them is not a violation, and one false of all of them is. [] if none; UNKNOWN if none and
        the input is not known yet."""
        named = [d for d in resource.property_dependencies.get(prop, []) if d.resource_type == resource_type]
        value = _read(resource.props, prop)
        if not named and isinstance(value, str):
            named = [r for r in self.by_id.get(value, []) if r.resource_type == resource_type]
        if not named:
            named = [d for d in resource.dependencies if d.resource_type == resource_type]
        return named if named or _known(value) else UNKNOWN

    def peering_of(self, route: PolicyResource) -> Any:
        """The peering connection a route sends its traffic to, named directly or through its accepter (whose id
        is the connection's)."""
        key = "vpcPeeringConnectionId"
        peerings = self.referenced(route, key, AWS_VPC_PEERING_CONNECTION)
        if peerings is not UNKNOWN and peerings:
            return peerings
        accepters = self.referenced(route, key, AWS_VPC_PEERING_ACCEPTER)
        if accepters is UNKNOWN or not accepters:
            return peerings
        found = [self.referenced(accepter, key, AWS_VPC_PEERING_CONNECTION) for accepter in accepters]
        return UNKNOWN if UNKNOWN in found else [p for named in found for p in named]

    def peered(self, one: Any, other: Any) -> list[PolicyResource]:
        """The peering connections known to join VPCs `one` and `other`."""
        return self.peerings.get(frozenset((one, other)), [])

    def attached(self, vpc_id: Any, gateway: Any) -> Verdict:
        if _known(vpc_id, gateway) and (vpc_id, gateway) in self.attachments:
            return True
        return _any(
            _all([_equals(_read(a.props, "vpcId"), vpc_id), _equals(_read(a.props, "transitGatewayId"), gateway)])
            for a in self.uncertain_attachments
        )


def _mesh_vpcs(resources: Iterable[PolicyResource], report: ReportViolation) -> list[_MeshVpc]:
    """The VPCs of the meshed clusters that have one: EKS clusters, and any cluster that registers a VPC."""
    vpcs = []
    for resource in resources:
        if resource.resource_type != MESH_CLUSTER:
            continue
        kind, vpc_id = _read(resource.props, "kind"), _read(resource.props, "vpcId")
        cidr = _plain(_read(resource.props, "vpcCidr"))
        if kind != EKS_KIND and vpc_id is None and cidr is None:
            continue
        name = _cluster_label(resource)
        missing = [key for key, value in (("vpcId", vpc_id), ("vpcCidr", cidr)) if value is None]
        if missing:
            report(
                f"cluster {name} registers no {' or '.join(missing)}: which VPC its nodes are in, and so whether it "
                "reaches its peers, cannot be told",
                resource.urn,
            )
            continue
        cidrs = _parsed([cidr] if isinstance(cidr, str) else cidr) if _known(cidr) else UNKNOWN
        vpcs.append(_MeshVpc(name, resource, vpc_id, cidrs))
    return sorted(vpcs, key=lambda v: v.cluster)


def _joins(peering: PolicyResource, one: Any, other: Any) -> Verdict:
    """Whether a peering connection is between the VPCs `one` and `other` (either may have requested it)."""
    ends = [_read(peering.props, "vpcId"), _read(peering.props, "peerVpcId")]
    known = [end for end in ends if _known(end)]
    if any(end not in (one, other) for end in known):
        return False
    if len(known) < len(ends):
        return None
    return set(known) == {one, other}


def _through_gateway(network: _Network, gateway: Any, source: Any, target: Any) -> Verdict:
    """Whether a route to transit gateway `gateway` in VPC `source` can reach VPC `target`: `source` is attached to
    it, and `target` to it or to a transit gateway peered with it (one peering: routes do not cross two)."""
    if not _known(gateway):
        return None
    reaches: list[Verdict] = [network.attached(target, gateway)]
    for peering in network.gateway_peerings:
        ends = [_read(peering.props, "transitGatewayId"), _read(peering.props, "peerTransitGatewayId")]
        if not _known(*ends):
            reaches.append(None)  # it may join `gateway` to one `target` is attached to
        elif gateway in ends:
            reaches.append(network.attached(target, ends[1] if ends[0] == gateway else ends[0]))
    return _all([network.attached(source, gateway), _any(reaches)])


def _route_target(network: _Network, route: PolicyResource, source: Any, target: Any) -> Verdict:
    """Whether a route sends its traffic to a peering connection between the two VPCs or to a transit gateway
    joining them."""
    targets: list[Verdict] = []
    if _read(route.props, "vpcPeeringConnectionId") is not None:
        peerings = network.peering_of(route)
        targets.append(None if peerings is UNKNOWN else _any(_joins(p, source, target) for p in peerings))
    gateway = _read(route.props, "transitGatewayId")
    if gateway is not None:
        targets.append(_through_gateway(network, gateway, source, target))
    return _any(targets)


def _route_covers(route: PolicyResource, cidr: Network) -> Verdict:
    key = "destinationCidrBlock" if cidr.version == 4 else "destinationIpv6CidrBlock"
    destination, prefix_list = _read(route.props, key), _read(route.props, "destinationPrefixListId")
    if destination is None:
        return None if prefix_list is UNKNOWN or prefix_list else False  # a prefix list's entries are not read
    if not _known(destination):
        return None
    try:
        network = ipaddress.ip_network(str(destination).strip(), strict=False)
    except ValueError:
        return False
    return network.version == cidr.version and cidr.subnet_of(network)  # type: ignore[arg-type]


def _routes_to(network: _Network, source: _MeshVpc, target: _MeshVpc, cidr: Network) -> Verdict:
    """Whether some route table of `source`'s VPC sends `cidr` (of `target`'s VPC) towards `target`'s VPC."""
    verdicts = []
    for route in network.candidate_routes(source.vpc_id, cidr):
        tables = network.referenced(route, "routeTableId", AWS_ROUTE_TABLE)
        in_source = None if tables is UNKNOWN else _any(_equals(_read(t.props, "vpcId"), source.vpc_id) for t in tables)
        if in_source is False:
            continue
        verdicts.append(
            _all([in_source, _route_covers(route, cidr), _route_target(network, route, source.vpc_id, target.vpc_id)])
        )
    return _any(verdicts)


def _unrouted(network: _Network, source: _MeshVpc, target: _MeshVpc) -> list[Network]:
    """`target`'s CIDRs that no route of `source`'s VPC is known to send to `target`'s VPC ([] if every one is, or
    if that is not known yet)."""
    if not _known(source.vpc_id, target.vpc_id, target.cidrs) or source.vpc_id == target.vpc_id:
        return []
    return [cidr for cidr in target.cidrs if _routes_to(network, source, target, cidr) is False]


def _validate_mesh_vpcs_connected(args: StackValidationArgs, report: ReportViolation) -> None:
    vpcs = _mesh_vpcs(args.resources, report)
    network = _Network.of(args.resources)
    for source in vpcs:
        for target in vpcs:
            if target is source:
                continue
            missing = _unrouted(network, source, target)
            if not missing:
                continue
            peered = [p.name for p in network.peered(source.vpc_id, target.vpc_id)]
            hint = f" (peering connection {', '.join(peered)} joins them, but no such route uses it)" if peered else ""
            report(
                f"cluster {source.cluster} cannot reach cluster {target.cluster}: no route table of VPC "
                f"{source.vpc_id} sends {', '.join(str(c) for c in missing)} to a peering connection with VPC "
                f"{target.vpc_id} or to a transit gateway that reaches it{hint}",
                source.resource.urn,
            )


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
        "Pod CIDRs of different clusters do not overlap, whatever installs them (Cilium's cluster-pool, the AWS "
        "VPC CNI, Calico): pods reach each other by IP across the mesh.",
        _validate_pod_cidrs_disjoint,
    ),
    _stack(
        "mesh-complete",
        "Every cluster's clustermesh Secrets (in the Cilium namespace) name every other cluster, and only them; "
        "unless authMode is legacy, its clustermesh-remote-users ConfigMap names exactly remote-<peer> for each.",
        _validate_mesh_complete,
    ),
    _stack(
        "explicit-providers",
        "No resource of any provider package (kubernetes, tls, aws, openstack, command, ...) goes through a "
        "default provider.",
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
    _stack(
        "openstack-address-pairs-within-pools",
        "A Neutron port's allowed address pairs lie within the load-balancer (MetalLB) pools of the MeshCluster that "
        "owns the port: anti-spoofing lets through no other address.",
        _validate_address_pairs_within_pools,
    ),
    _stack(
        "mesh-vpcs-connected",
        "The VPCs of every two meshed EKS clusters (the vpcId and vpcCidr their MeshClusters register) reach each "
        "other both ways: a route table of each VPC sends the other's CIDR to a peering connection between the two, "
        "or to a transit gateway the VPC is attached to and the other VPC is attached to (or to one peered with it).",
        _validate_mesh_vpcs_connected,
    ),
    _resource(
        "clustermesh-apiserver-not-public",
        "A LoadBalancer clustermesh-apiserver is internal (by the annotation value or class the cloud's controller "
        "honours) or restricted by loadBalancerSourceRanges that hold no public address.",
        _validate_apiserver_not_public,
    ),
    _resource(
        "chart-version-pinned",
        "Helm charts are pinned to an exact version, so a preview shows every upgrade.",
        _validate_chart_pinned,
    ),
    _resource(
        "openstack-no-world-ingress",
        "No ingress security group rule admits the whole internet: remoteIpPrefix 0.0.0.0/0 or ::/0, or no remote "
        "prefix or group at all, which Neutron reads as every address.",
        _validate_no_world_ingress,
    ),
    _resource(
        "openstack-port-security",
        "Every Neutron port and network the stack manages keeps port security on: security groups and anti-spoofing "
        "filter each port, and allowed address pairs let through only what it must answer for.",
        _validate_port_security,
    ),
    _resource(
        "openstack-no-secret-user-data",
        "No instance's user data holds a private key, a kubeconfig or a join token: Nova stores user data "
        "unencrypted and the provider does not treat it as secret.",
        _validate_no_secret_user_data,
    ),
    _resource(
        "remote-command-secrets",
        'A remote command that takes input on stdin (how the program sends secrets) logs nothing (logging "none"), '
        "and no remote command's scripts or environment hold a private key, a kubeconfig or a join token.",
        _validate_remote_command_secrets,
    ),
    _resource(
        "aws-no-world-ingress",
        "No EC2 security group rule admits the whole internet: a VPC ingress rule, a legacy ingress SecurityGroupRule "
        "or a security group's inline ingress with 0.0.0.0/0 or ::/0, whatever the protocol and ports.",
        _validate_aws_no_world_ingress,
    ),
    _resource(
        "eks-private-endpoint",
        "An EKS cluster's API server has its private endpoint on, and a public endpoint (on unless turned off) only "
        "with explicit publicAccessCidrs, none of them a /0 (EKS opens it to 0.0.0.0/0 without them).",
        _validate_eks_private_endpoint,
    ),
    _resource(
        "eks-secrets-encrypted",
        "An EKS cluster envelope-encrypts its Secrets with a KMS key of the stack's: encryptionConfig with resources "
        '["secrets"] and a provider.keyArn.',
        _validate_eks_secrets_encrypted,
    ),
    _resource(
        "nlb-internal",
        "Every network load balancer is internal: the clustermesh-apiserver serves the mesh's etcd, and only peers in "
        "connected VPCs need to reach it.",
        _validate_nlb_internal,
    ),
    _resource(
        "imdsv2-required",
        'Instances require IMDSv2: every EC2 launch template and instance sets metadataOptions.httpTokens "required" '
        "(or turns the metadata service off; an instance may leave it to its launch template), and an EKS node group "
        "without a launch template uses an AL2023 AMI type, whose AMI requires IMDSv2.",
        _validate_imdsv2_required,
    ),
]
