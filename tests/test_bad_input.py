"""A new user's mistakes, through the CLI: each is exit 2 with its config path and a message in the stack file's words.

Every malformed configuration below must be refused before anything is planned, naming the key as the
stack file spells it (camelCase, `clusters[1].podCidrs[0]`), what it expects and the value as given,
with no traceback and nothing of Python or pydantic in the output. Every valid edge case must plan.
The expected paths and fragments come from the config each case writes, not from the program's output.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from clustermesh.config import ConfigError, load_stack_config
from clustermesh.planner import stackfile
from clustermesh.planner.cli import app
from clustermesh.planner.stackfile import SECURE_PLACEHOLDER, StackSettings
from tests.conftest import PROJECT_DIR, cluster, plan_raw, raw_config, three_clusters

runner = CliRunner()

OMIT = object()
"""Leave `clustermesh:clusters` out of the stack file."""

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: alpha
  cluster: {server: "https://alpha.example:6443", certificate-authority-data: Y2E=}
users:
- name: alpha-admin
  user: {token: not-a-real-token}
contexts:
- name: alpha
  context: {cluster: alpha, user: alpha-admin}
current-context: alpha
"""
"""A kubeconfig the Kubernetes provider could load: one cluster, user and context, the context current."""

PYTHON_WORDS = re.compile(
    r"Traceback|\bNone\b|NoneType|Input should be|valid dictionary|Value error|pydantic|ValidationError|"
    r"\b(ClusterSpec|MeshConfig|Kubeconfig|ClusterExposure|MeshExposure|Certificates|Routing|ClusterKind|CniMode|"
    r"RoutingMode|TunnelProtocol|ServiceType|IPv4Network|IPv6Network|IPv4Address|IPv6Address|dict|tuple|int|str|"
    r"bool)\b"
)
"""What a message in the config's language never contains: Python's and pydantic's words and class names."""


def stack(clusters: Any = None, *, extra: dict[str, Any] | None = None, **mesh: Any) -> dict[str, Any]:
    """A stack file's document: three valid clusters unless given, mesh keys by their short name, `extra` verbatim."""
    config: dict[str, Any] = {"pulumi:disable-default-providers": ["*"]}
    if clusters is not OMIT:
        config["clustermesh:clusters"] = three_clusters() if clusters is None else clusters
    config.update({f"clustermesh:{key}": value for key, value in mesh.items()})
    config.update(extra or {})
    return {"config": config}


def with_cluster(index: int, **changes: Any) -> list[dict[str, Any]]:
    """Three valid clusters with `changes` made to one (a value of OMIT removes the key)."""
    clusters = three_clusters()
    for key, value in changes.items():
        if value is OMIT:
            del clusters[index][key]
        else:
            clusters[index][key] = value
    return clusters


def node_port_clusters() -> list[dict[str, Any]]:
    return [
        {**c, "apiserverExposure": {"nodeAddresses": [f"172.17.{i}.10"]}} for i, c in enumerate(three_clusters(), 1)
    ]


NODE_PORT = {"type": "NodePort"}


@dataclass(frozen=True)
class Bad:
    path: str
    """The config path the problem must be reported at; `{file}` stands for the stack file's path."""
    fragment: str
    """Part of the message: what the key expects, and the value as given."""
    document: dict[str, Any] | None = None
    text: str | bytes | None = None
    """The stack file's raw text instead of `document`, for what YAML dumped from Python cannot say."""
    config_is_directory: bool = field(default=False)


BAD: dict[str, Bad] = {
    # --- the stack file itself
    "non-string key under config": Bad("config", "key 1 is not a string", text="config:\n  1: x\n"),
    "non-utf8 file": Bad("{file}", "not UTF-8 text", text=b"config:\n  clustermesh:domain: caf\xe9\n"),
    "config names a directory": Bad("{file}", "is a directory", config_is_directory=True),
    "invalid yaml": Bad("{file}", "not valid YAML", text="config: [unclosed\n"),
    "config not a mapping": Bad("{file}", "expected a mapping with a `config:` mapping", text="config: [1, 2]\n"),
    "key given twice": Bad(
        "clustermesh:domain",
        "given twice",
        text="config:\n  clustermesh:domain: a.example\n  clustermesh:domain: b.example\n",
    ),
    "null domain": Bad("clustermesh:domain", "null is not a value", text="config:\n  clustermesh:domain: null\n"),
    "key without namespace": Bad(
        "domain", "need a namespace, e.g. clustermesh:domain", text="config:\n  domain: x.example\n"
    ),
    "non-string key inside a cluster": Bad(
        "clustermesh:clusters[0]", "key 7 is not a string", text="config:\n  clustermesh:clusters:\n    - {7: seven}\n"
    ),
    # --- namespaces and mesh-wide keys
    "misspelt namespace": Bad(
        "clustremesh:kvstoremesh",
        "unknown namespace clustremesh (did you mean clustermesh:kvstoremesh?)",
        stack(extra={"clustremesh:kvstoremesh": False}),
    ),
    "foreign namespace": Bad("gcp:project", "unknown namespace gcp", stack(extra={"gcp:project": "p"})),
    "misspelt mesh key": Bad(
        "maxConectedClusters", "did you mean maxConnectedClusters?", stack(maxConectedClusters=511)
    ),
    "unquoted version 1.20": Bad(
        "ciliumVersion",
        "'1.20' is not a pinned chart version like 1.20.0",
        text=yaml.safe_dump(stack(ciliumVersion="@@")).replace("'@@'", "1.20"),
    ),
    "unsupported version": Bad("ciliumVersion", "1.15.0 is not supported", stack(ciliumVersion="1.15.0")),
    "max connected clusters 300": Bad("maxConnectedClusters", "300 is not supported", stack(maxConnectedClusters=300)),
    "max connected clusters true": Bad(
        "maxConnectedClusters", "must be a whole number (got 'true')", stack(maxConnectedClusters=True)
    ),
    "kvstoremesh yes": Bad("kvstoremesh", "must be true or false (got 'yes')", stack(kvstoremesh="yes")),
    "domain with underscore": Bad(
        "domain", "'mesh_1.example' is not a DNS domain name", stack(domain="mesh_1.example")
    ),
    "empty domain": Bad("domain", "'' is not a DNS domain name", stack(domain="")),
    "ca validity 10**30 hours": Bad(
        "certificates.caValidityHours", "more than 100 years", stack(certificates={"caValidityHours": 10**30})
    ),
    "validity hours true": Bad(
        "certificates.validityHours", "must be a whole number (got true)", stack(certificates={"validityHours": True})
    ),
    "validity hours zero": Bad(
        "certificates.validityHours", "must be greater than 0 (got 0)", stack(certificates={"validityHours": 0})
    ),
    "renewal not before expiry": Bad(
        "certificates.earlyRenewalHours",
        "must be shorter than validityHours",
        stack(certificates={"validityHours": 100, "earlyRenewalHours": 100}),
    ),
    "leaf outlives ca": Bad(
        "certificates.validityHours",
        "must not outlive the CA",
        stack(certificates={"validityHours": 9000, "caValidityHours": 8000}),
    ),
    "misspelt certificates key": Bad(
        "certificates.validityHour",
        "unknown key (did you mean validityHours?)",
        stack(certificates={"validityHour": 1}),
    ),
    "certificates as a list": Bad("certificates", "must be a mapping", stack(certificates=[1])),
    "exposure type ClusterIP": Bad(
        "apiserverExposure.type",
        "must be one of 'LoadBalancer' or 'NodePort' (got 'ClusterIP')",
        stack(apiserverExposure={"type": "ClusterIP"}),
    ),
    "annotation key with a space": Bad(
        "apiserverExposure.annotations",
        "'bad key!' is not an annotation key",
        stack(apiserverExposure={"annotations": {"bad key!": "x"}}),
    ),
    "annotation key with a bad prefix": Bad(
        "apiserverExposure.annotations",
        "'-x.example/internal' is not an annotation key: the part before '/' must be a DNS subdomain",
        stack(apiserverExposure={"annotations": {"-x.example/internal": "true"}}),
    ),
    "annotation name over 63 characters": Bad(
        "apiserverExposure.annotations",
        "longer than 63 characters",
        stack(apiserverExposure={"annotations": {"example.com/" + "n" * 64: "x"}}),
    ),
    "annotation value a boolean": Bad(
        "apiserverExposure.annotations.service.beta.kubernetes.io/aws-load-balancer-internal",
        "must be a string (got true)",
        stack(apiserverExposure={"annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": True}}),
    ),
    "node port 80": Bad(
        "apiserverExposure.nodePort",
        "must be at least 30000 (got 80)",
        stack(node_port_clusters(), apiserverExposure={**NODE_PORT, "nodePort": 80}),
    ),
    "node port true": Bad(
        "apiserverExposure.nodePort",
        "must be a whole number (got true)",
        stack(node_port_clusters(), apiserverExposure={**NODE_PORT, "nodePort": True}),
    ),
    "source range with host bits": Bad(
        "apiserverExposure.loadBalancerSourceRanges[0]",
        "'10.0.0.1/8' is not a CIDR such as 10.1.0.0/16",
        stack(apiserverExposure={"loadBalancerSourceRanges": ["10.0.0.1/8"]}),
    ),
    "two native routing cidrs of one family": Bad(
        "nativeRoutingCidrs",
        "at most one CIDR per IP family",
        stack(nativeRoutingCidrs=["10.0.0.0/8", "172.16.0.0/12"]),
    ),
    "native routing cidr as a string": Bad(
        "nativeRoutingCidrs", "must be a list of CIDRs (got '10.0.0.0/8')", stack(nativeRoutingCidrs="10.0.0.0/8")
    ),
    "pod cidr outside native routing cidr": Bad(
        "clusters[0].podCidrs[0]",
        "10.11.0.0/16 is outside nativeRoutingCidrs 10.12.0.0/16",
        stack(
            [cluster("a", 1, "10.11.0.0/16", nodeCidr="172.17.0.0/24", routing={"mode": "native"})],
            nativeRoutingCidrs=["10.12.0.0/16"],
        ),
    ),
    "clusters a mapping": Bad(
        "clusters", "must be a list of clusters", stack({"alpha": cluster("alpha", 1, "10.1.0.0/16")})
    ),
    "clusters empty": Bad("clusters", "a mesh needs at least one cluster", stack([])),
    "clusters missing": Bad("clusters", "required", stack(OMIT)),
    "clusters secret as a whole": Bad(
        "clusters", "is secret as a whole", stack(OMIT, extra={"clustermesh:clusters": {"secure": "v1:AAAA"}})
    ),
    "clusters malformed json": Bad(
        "clusters", "not valid JSON", stack(OMIT, extra={"clustermesh:clusters": '[{"name": }]'})
    ),
    "exposure a string": Bad(
        "apiserverExposure", "must be a mapping (got 'LoadBalancer')", stack(apiserverExposure="LoadBalancer")
    ),
    "annotations a list": Bad(
        "apiserverExposure.annotations",
        "must be a mapping (got a list)",
        stack(apiserverExposure={"annotations": ["a=b"]}),
    ),
    # --- one cluster's fields
    "routing a string": Bad(
        "clusters[0].routing",
        "must be a mapping with keys such as mode, tunnelProtocol",
        stack(with_cluster(0, routing="native")),
    ),
    "kubeconfig path a number": Bad(
        "clusters[0].kubeconfig.path", "must be a string (got 42)", stack(with_cluster(0, kubeconfig={"path": 42}))
    ),
    "node cidr a list": Bad(
        "clusters[0].nodeCidr",
        "must be a CIDR such as 10.1.0.0/16 (got a list)",
        stack(with_cluster(0, nodeCidr=["172.17.1.0/24"])),
    ),
    "aws-cni id 400": Bad(
        "clusters[0].id",
        "400 cannot be used with aws-cni chaining",
        stack(
            [cluster("a", 400, "10.1.0.0/16", cni="aws-cni", nodeCidr="10.1.0.0/16", routing={"mode": "native"})],
            maxConnectedClusters=511,
        ),
    ),
    "aws load balancer without a hostname": Bad(
        "clusters[2].apiserverExposure.hostname",
        "required: apiserverExposure.annotations ask for an AWS load balancer, which reports a DNS name and no IP",
        stack(
            [
                cluster("a", 1, "10.1.0.0/16", apiserverExposure={"hostname": "a.apiserver.example.net"}),
                cluster("b", 2, "10.2.0.0/16", apiserverExposure={"hostname": "b.apiserver.example.net"}),
                cluster("c", 3, "10.3.0.0/16", apiserverExposure={"loadBalancerIP": "192.168.1.10"}),
            ],
            apiserverExposure={"annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}},
        ),
    ),
    "id true": Bad("clusters[1].id", "must be a whole number (got true)", stack(with_cluster(1, id=True))),
    "id a word": Bad("clusters[1].id", "must be a whole number (got 'two')", stack(with_cluster(1, id="two"))),
    "id a fraction": Bad("clusters[1].id", "must be a whole number (got 2.5)", stack(with_cluster(1, id=2.5))),
    "id zero": Bad("clusters[1].id", "0 is reserved", stack(with_cluster(1, id=0))),
    "id 256": Bad("clusters[1].id", "256 is out of range 1..255", stack(with_cluster(1, id=256))),
    "id 512 of 511": Bad(
        "clusters[1].id", "512 is out of range 1..511", stack(with_cluster(1, id=512), maxConnectedClusters=511)
    ),
    "duplicate id": Bad("clusters[2].id", "2 is already used by clusters[1]", stack(with_cluster(2, id=2))),
    "duplicate name": Bad(
        "clusters[2].name", "'alpha' is already used by clusters[0]", stack(with_cluster(2, name="alpha"))
    ),
    "name with capitals": Bad(
        "clusters[0].name", "'Alpha' must consist of lower case", stack(with_cluster(0, name="Alpha"))
    ),
    "name of 33 characters": Bad(
        "clusters[0].name", "is longer than 32 characters", stack(with_cluster(0, name="a" * 33))
    ),
    "name default": Bad("clusters[0].name", "'default' is reserved", stack(with_cluster(0, name="default"))),
    "name a number": Bad("clusters[0].name", "must be a string (got 123); quote it", stack(with_cluster(0, name=123))),
    "kind gke": Bad(
        "clusters[0].kind",
        "must be one of 'existing', 'openstack', 'eks' (got 'gke')",
        stack(with_cluster(0, kind="gke")),
    ),
    "kind missing": Bad("clusters[0].kind", "required", stack(with_cluster(0, kind=OMIT))),
    "cluster entry a string": Bad(
        "clusters[1]",
        "must be a mapping with keys such as name, id",
        stack([cluster("alpha", 1, "10.1.0.0/16"), "beta"]),
    ),
    "pod cidrs a string": Bad(
        "clusters[0].podCidrs", "must be a list (got '10.11.0.0/16')", stack(with_cluster(0, podCidrs="10.11.0.0/16"))
    ),
    "pod cidrs empty": Bad("clusters[0].podCidrs", "needs at least 1 entry", stack(with_cluster(0, podCidrs=[]))),
    "pod cidrs ipv6 first": Bad(
        "clusters[0].podCidrs",
        "give one IPv4 CIDR, then optionally one IPv6 CIDR",
        stack(with_cluster(0, podCidrs=["fd00:11::/104", "10.11.0.0/16"])),
    ),
    "ipv6 pod cidr /64 for cluster-pool": Bad(
        "clusters[0].podCidrs[1]",
        "fd00:12::/64 is too large for cluster-pool IPAM",
        stack(with_cluster(0, podCidrs=["10.11.0.0/16", "fd00:12::/64"])),
    ),
    "pod cidr smaller than a node block": Bad(
        "clusters[0].podCidrs[0]",
        "10.11.0.0/25 is smaller than the /24 block",
        stack(with_cluster(0, podCidrs=["10.11.0.0/25"])),
    ),
    "pod cidr with host bits": Bad(
        "clusters[0].podCidrs[0]", "'10.11.0.1/16' is not a CIDR", stack(with_cluster(0, podCidrs=["10.11.0.1/16"]))
    ),
    "pod cidrs overlap": Bad(
        "clusters[1].podCidrs[0]",
        "10.11.128.0/17 overlaps clusters[0].podCidrs[0] 10.11.0.0/16",
        stack(with_cluster(1, podCidrs=["10.11.128.0/17"])),
    ),
    "ipv6 pod cidrs overlap": Bad(
        "clusters[1].podCidrs[1]",
        "fd00:11::/112 overlaps clusters[0].podCidrs[1] fd00:11::/104",
        stack(
            [
                cluster("alpha", 1, "10.11.0.0/16", podCidrs=["10.11.0.0/16", "fd00:11::/104"]),
                cluster("beta", 2, "10.12.0.0/16", podCidrs=["10.12.0.0/16", "fd00:11::/112"]),
            ]
        ),
    ),
    "service cidr null": Bad(
        "clusters[0].serviceCidr",
        "must be a CIDR such as 10.1.0.0/16 (got null)",
        stack(with_cluster(0, serviceCidr=None)),
    ),
    "service cidr over own pods": Bad(
        "clusters[0].serviceCidr",
        "10.0.0.0/12 overlaps clusters[0].podCidrs[0] 10.11.0.0/16",
        stack(with_cluster(0, serviceCidr="10.0.0.0/12")),
    ),
    "service cidr over another cluster's pods": Bad(
        "clusters[2].serviceCidr",
        "10.12.0.0/16 overlaps clusters[1].podCidrs[0] 10.12.0.0/16",
        stack(with_cluster(2, serviceCidr="10.12.0.0/16")),
    ),
    "service cidr over another cluster's nodes": Bad(
        "clusters[2].serviceCidr",
        "172.17.1.0/24 overlaps clusters[0].nodeCidr 172.17.1.0/24",
        stack(with_cluster(2, serviceCidr="172.17.1.0/24")),
    ),
    "node cidr over another cluster's pods": Bad(
        "clusters[2].nodeCidr",
        "10.11.7.0/24 overlaps clusters[0].podCidrs[0] 10.11.0.0/16",
        stack(with_cluster(2, nodeCidr="10.11.7.0/24")),
    ),
    "native routing without node cidr": Bad(
        "clusters[0].nodeCidr",
        "required with native routing",
        stack([cluster("a", 1, "10.1.0.0/16", routing={"mode": "native"})], nativeRoutingCidrs=["10.0.0.0/8"]),
    ),
    "aws-cni id 200": Bad(
        "clusters[0].id",
        "200 cannot be used with aws-cni chaining",
        stack([cluster("a", 200, "10.1.0.0/16", cni="aws-cni", nodeCidr="10.1.0.0/16", routing={"mode": "native"})]),
    ),
    "aws-cni in a tunnel": Bad(
        "clusters[0].routing.mode",
        "aws-cni chaining needs native routing",
        stack([cluster("a", 1, "10.1.0.0/16", cni="aws-cni", nodeCidr="10.1.0.0/16")]),
    ),
    "direct routes in a tunnel": Bad(
        "clusters[0].routing.autoDirectNodeRoutes",
        "only applies to native routing",
        stack(with_cluster(0, routing={"autoDirectNodeRoutes": True})),
    ),
    "direct routes yes": Bad(
        "clusters[0].routing.autoDirectNodeRoutes",
        "must be true or false (got 'yes')",
        stack(with_cluster(0, routing={"autoDirectNodeRoutes": "yes"})),
    ),
    "routing mode direct": Bad(
        "clusters[0].routing.mode",
        "must be one of 'tunnel' or 'native' (got 'direct')",
        stack(with_cluster(0, routing={"mode": "direct"})),
    ),
    "tunnel protocol gre": Bad(
        "clusters[0].routing.tunnelProtocol", "(got 'gre')", stack(with_cluster(0, routing={"tunnelProtocol": "gre"}))
    ),
    "misspelt routing key": Bad(
        "clusters[0].routing.tunnelProtocl",
        "did you mean tunnelProtocol?",
        stack(with_cluster(0, routing={"tunnelProtocl": "vxlan"})),
    ),
    "two datapaths": Bad(
        "clusters[1].routing",
        "tunnel/geneve differs from clusters[0] (tunnel/vxlan)",
        stack(with_cluster(1, routing={"tunnelProtocol": "geneve"})),
    ),
    "service port without host": Bad(
        "clusters[0].k8sServicePort", "needs k8sServiceHost", stack(with_cluster(0, k8sServicePort=6443))
    ),
    "service port 70000": Bad(
        "clusters[0].k8sServicePort",
        "must be at most 65535 (got 70000)",
        stack(with_cluster(0, k8sServiceHost="auto", k8sServicePort=70000)),
    ),
    "kube-proxy replacement yes": Bad(
        "clusters[0].kubeProxyReplacement",
        "must be true or false (got 'yes')",
        stack(with_cluster(0, kubeProxyReplacement="yes")),
    ),
    "kubeconfig a string": Bad(
        "clusters[0].kubeconfig",
        "must be a mapping with keys such as path, context, secret (got '~/.kube/config')",
        stack(with_cluster(0, kubeconfig="~/.kube/config")),
    ),
    "kubeconfig path and secret": Bad(
        "clusters[0].kubeconfig",
        "give either path (and optionally context) or secret",
        stack(
            with_cluster(0, kubeconfig={"path": "~/.kube/config", "secret": "alphaKubeconfig"}),
            extra={"clustermesh:alphaKubeconfig": {"secure": "v1:AAAA"}},
        ),
    ),
    "kubeconfig secret not set": Bad(
        "clusters[0].kubeconfig.secret",
        "config key clustermesh:alphaKubeconfig is not set",
        stack(with_cluster(0, kubeconfig={"secret": "alphaKubeconfig"})),
    ),
    "kubeconfig secret in plain text": Bad(
        "clusters[0].kubeconfig.secret",
        "is stored in plain text; set it with --secret",
        stack(
            with_cluster(0, kubeconfig={"secret": "alphaKubeconfig"}), extra={"clustermesh:alphaKubeconfig": KUBECONFIG}
        ),
    ),
    "kubeconfig secret with a context": Bad(
        "clusters[0].kubeconfig.context",
        "only applies to a kubeconfig path",
        stack(
            with_cluster(0, kubeconfig={"secret": "alphaKubeconfig", "context": "alpha"}),
            extra={"clustermesh:alphaKubeconfig": {"secure": "v1:AAAA"}},
        ),
    ),
    "misspelt kubeconfig key": Bad(
        "clusters[0].kubeconfig.contxt",
        "did you mean context?",
        stack(with_cluster(0, kubeconfig={"path": "~/.kube/config", "contxt": "a"})),
    ),
    "misspelt cluster key": Bad(
        "clusters[0].podCIDRs", "did you mean podCidrs?", stack(with_cluster(0, podCIDRs=["10.1.0.0/16"]))
    ),
    # --- how peers reach each cluster
    "load balancer ip in another cluster's pods": Bad(
        "clusters[0].apiserverExposure.loadBalancerIP",
        "10.12.0.10 is inside clusters[1].podCidrs[0] 10.12.0.0/16",
        stack(with_cluster(0, apiserverExposure={"loadBalancerIP": "10.12.0.10"})),
    ),
    "load balancer ip in its own pods": Bad(
        "clusters[0].apiserverExposure.loadBalancerIP",
        "10.11.3.4 is inside clusters[0].podCidrs[0] 10.11.0.0/16",
        stack(with_cluster(0, apiserverExposure={"loadBalancerIP": "10.11.3.4"})),
    ),
    "load balancer ip twice": Bad(
        "clusters[1].apiserverExposure.loadBalancerIP",
        "192.0.2.10 is already pinned by clusters[0]",
        stack([{**c, "apiserverExposure": {"loadBalancerIP": "192.0.2.10"}} for c in three_clusters()[:2]]),
    ),
    "load balancer ip with NodePort": Bad(
        "clusters[0].apiserverExposure.loadBalancerIP",
        "only applies when apiserverExposure.type is LoadBalancer",
        stack(
            [
                {**c, "apiserverExposure": {**c["apiserverExposure"], "loadBalancerIP": "192.0.2.1"}} if i == 0 else c
                for i, c in enumerate(node_port_clusters())
            ],
            apiserverExposure=NODE_PORT,
        ),
    ),
    "load balancer ip is another cluster's node address": Bad(
        "clusters[1].apiserverExposure.loadBalancerIP",
        "172.17.1.10 is a node address of clusters[0]",
        stack(
            [
                {**three_clusters()[0], "apiserverExposure": {"nodeAddresses": ["172.17.1.10"]}},
                {**three_clusters()[1], "apiserverExposure": {"loadBalancerIP": "172.17.1.10"}},
            ]
        ),
    ),
    "node address on two clusters": Bad(
        "clusters[2].apiserverExposure.nodeAddresses[0]",
        "172.17.1.10 is already a node address of clusters[0]",
        stack(
            [
                c if i < 2 else {**c, "apiserverExposure": {"nodeAddresses": ["172.17.1.10"]}}
                for i, c in enumerate(node_port_clusters())
            ],
            apiserverExposure=NODE_PORT,
        ),
    ),
    "node address not an address": Bad(
        "clusters[0].apiserverExposure.nodeAddresses[0]",
        "'node-1' is not an IP address",
        stack(
            [
                {**c, "apiserverExposure": {"nodeAddresses": ["node-1"]}} if i == 0 else c
                for i, c in enumerate(node_port_clusters())
            ],
            apiserverExposure=NODE_PORT,
        ),
    ),
    "NodePort without node addresses": Bad(
        "clusters[1].apiserverExposure.nodeAddresses",
        "required when apiserverExposure.type is NodePort",
        stack(
            [c if i != 1 else three_clusters()[1] for i, c in enumerate(node_port_clusters())],
            apiserverExposure=NODE_PORT,
        ),
    ),
    "node addresses with a load balancer": Bad(
        "clusters[0].apiserverExposure.nodeAddresses",
        "only applies when apiserverExposure.type is NodePort",
        stack(with_cluster(0, apiserverExposure={"nodeAddresses": ["172.17.1.10"]})),
    ),
    "hostname not a name": Bad(
        "clusters[0].apiserverExposure.hostname",
        "'Alpha_Mesh.example' is not a lowercase DNS name",
        stack(with_cluster(0, apiserverExposure={"hostname": "Alpha_Mesh.example"})),
    ),
    "hostname twice": Bad(
        "clusters[1].apiserverExposure.hostname",
        "mesh.example.net is already the hostname of clusters[0]",
        stack([{**c, "apiserverExposure": {"hostname": "mesh.example.net"}} for c in three_clusters()]),
    ),
    "hostname another cluster's mesh name": Bad(
        "clusters[1].apiserverExposure.hostname",
        "alpha.mesh.cilium.io is the mesh name of clusters[0]",
        stack(with_cluster(1, apiserverExposure={"hostname": "alpha.mesh.cilium.io"})),
    ),
    "route53 zone without hostname": Bad(
        "clusters[0].apiserverExposure.route53ZoneId",
        "needs apiserverExposure.hostname",
        stack(with_cluster(0, apiserverExposure={"route53ZoneId": "Z0123456789"})),
    ),
    "hostname a number": Bad(
        "clusters[0].apiserverExposure.hostname",
        "must be a string (got 5)",
        stack(with_cluster(0, apiserverExposure={"hostname": 5})),
    ),
    "misspelt exposure key": Bad(
        "clusters[0].apiserverExposure.loadBalancerIp",
        "did you mean loadBalancerIP?",
        stack(with_cluster(0, apiserverExposure={"loadBalancerIp": "192.0.2.1"})),
    ),
}


def invoke(path: Path) -> Result:
    return runner.invoke(app, ["plan", "--config", str(path), "--no-policy", "--project-dir", str(PROJECT_DIR)])


def write_case(directory: Path, document: dict[str, Any] | None, text: str | bytes | None) -> Path:
    path = directory / "Pulumi.case.yaml"
    if text is not None:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    else:
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def assert_speaks_the_config_language(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    output = result.stdout + result.stderr
    assert PYTHON_WORDS.search(output) is None, output


def test_the_table_is_as_large_as_promised() -> None:
    assert len(BAD) >= 60
    assert len(VALID) >= 15


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_malformed_configuration_exits_2_with_its_path_and_message(case: str, tmp_path: Path) -> None:
    bad = BAD[case]
    path = tmp_path if bad.config_is_directory else write_case(tmp_path, bad.document, bad.text)
    result = invoke(path)
    assert result.exit_code == 2, result.stdout + result.stderr
    expected_path = bad.path.replace("{file}", str(path))
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"{expected_path}: ")]
    assert any(bad.fragment in line for line in lines), result.stderr
    assert_speaks_the_config_language(result)


def _dual_stack(index: int, name: str) -> dict[str, Any]:
    return cluster(name, index, f"10.{index}.0.0/16", podCidrs=[f"10.{index}.0.0/16", f"fd00:{index}::/104"])


VALID: dict[str, Callable[[], dict[str, Any]]] = {
    "511 clusters allowed, id 511": lambda: stack(with_cluster(2, id=511), maxConnectedClusters=511),
    "id 255 of 255": lambda: stack(with_cluster(2, id=255)),
    "dual-stack pod cidrs, IPv6 /104": lambda: stack([_dual_stack(1, "alpha"), _dual_stack(2, "beta")]),
    "IPv6 /120 pod cidr, one node block": lambda: stack(
        [cluster("alpha", 1, "10.1.0.0/16", podCidrs=["10.1.0.0/16", "fd00:1::/120"])]
    ),
    "hostname exposures with a Route 53 zone": lambda: stack(
        [
            {**c, "apiserverExposure": {"hostname": f"{c['name']}.apiserver.example.net", "route53ZoneId": "Z0123"}}
            for c in three_clusters()
        ]
    ),
    "NodePort with node addresses on the lowest port": lambda: stack(
        node_port_clusters(), apiserverExposure={**NODE_PORT, "nodePort": 30000}
    ),
    "quoted version 1.19": lambda: stack(ciliumVersion="1.19.6", kvstoremesh=False),
    "quoted version 1.20.0": lambda: stack(ciliumVersion="1.20.0"),
    "secret kubeconfig the planner cannot decrypt": lambda: stack(
        with_cluster(0, kubeconfig={"secret": "alphaKubeconfig"}),
        extra={"clustermesh:alphaKubeconfig": {"secure": "v1:AAAA"}},
    ),
    "KVStoreMesh off": lambda: stack(kvstoremesh=False),
    "calico with native routing": lambda: stack(
        [
            cluster(n, i, f"10.{i}.0.0/16", cni="calico", nodeCidr=f"172.17.{i}.0/24", routing={"mode": "native"})
            for i, n in enumerate(["alpha", "beta"], 1)
        ],
        nativeRoutingCidrs=["10.0.0.0/8"],
    ),
    "aws-cni with native routing, pods in the node network, id 127": lambda: stack(
        [
            cluster("alpha", 1, "10.1.0.0/16", cni="aws-cni", nodeCidr="10.1.0.0/16", routing={"mode": "native"}),
            cluster("beta", 127, "10.2.0.0/16", cni="aws-cni", nodeCidr="10.2.0.0/16", routing={"mode": "native"}),
        ]
    ),
    "names of exactly 32 characters": lambda: stack(
        [cluster("a" * 31 + "1", 1, "10.1.0.0/16"), cluster("b" * 31 + "2", 2, "10.2.0.0/16")]
    ),
    "one cluster": lambda: stack([cluster("solo", 1, "10.1.0.0/16")]),
    "every cluster with the same service cidr": lambda: stack(
        [{**c, "serviceCidr": "10.43.0.0/16"} for c in three_clusters()]
    ),
    "valid annotation keys, one with capitals": lambda: stack(
        apiserverExposure={
            "annotations": {
                "networking.gke.io/load-balancer-type": "Internal",
                "Example.COM/Team_Name.v1": "mesh",
                "plain": "x",
            }
        }
    ),
    "certificates at their bounds": lambda: stack(
        certificates={"caValidityHours": 876600, "validityHours": 876600, "earlyRenewalHours": 0}
    ),
    "provider namespaces beside the project's": lambda: stack(
        extra={"aws:region": "eu-west-1", "kubernetes:enableServerSideApply": True, "tls:x": "y"}
    ),
    "pinned load balancer ips outside every range": lambda: stack(
        [{**c, "apiserverExposure": {"loadBalancerIP": f"192.0.2.{i}"}} for i, c in enumerate(three_clusters(), 1)]
    ),
    "kube-proxy replacement with the API server address": lambda: stack(
        with_cluster(0, kubeProxyReplacement=True, k8sServiceHost="172.17.1.5", k8sServicePort=6443)
    ),
}


@pytest.mark.parametrize("case", list(VALID), ids=list(VALID))
def test_valid_edge_case_plans(case: str, tmp_path: Path) -> None:
    result = invoke(write_case(tmp_path, VALID[case](), None))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def test_unquoted_version_reaches_the_program_as_written(tmp_path: Path) -> None:
    """The engine keeps a config scalar's YAML text: `1.20` is the text 1.20, not the number 1.2."""
    text = "config:\n  clustermesh:ciliumVersion: 1.20\n  clustermesh:clusters: []\n"
    result = invoke(write_case(tmp_path, None, text))
    assert "ciliumVersion: '1.20' is not a pinned chart version" in result.stderr
    assert "'1.2'" not in result.stderr


MARKER = "zebra-quokka-7731"
"""A word that appears in the malformed secret kubeconfig below and nowhere else."""

MALFORMED_KUBECONFIG = f"apiVersion: v1\nkind: Config\nclusters:\n- name: {MARKER}\n  cluster: {{server: {MARKER}}}\n  [unclosed {MARKER}\n"
WRONG_KUBECONFIG = KUBECONFIG.replace("alpha-admin", MARKER).replace("user: " + MARKER, "user: nobody")


@pytest.mark.parametrize("secret", [MALFORMED_KUBECONFIG, WRONG_KUBECONFIG], ids=["not yaml", "context names no user"])
def test_a_malformed_secret_kubeconfig_is_reported_without_its_text(
    secret: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI as it would run with the stack's secrets decrypted: the problem is named, not one word of the value."""
    key = "clustermesh:alphaKubeconfig"
    real_load_stack = stackfile.load_stack

    def decrypting_load_stack(*args: Any, **kwargs: Any) -> StackSettings:
        settings = real_load_stack(*args, **kwargs)
        assert settings.config[key] == SECURE_PLACEHOLDER.format(key=key)
        return StackSettings(
            settings.project, settings.stack, settings.source, {**settings.config, key: secret}, settings.secret_keys
        )

    monkeypatch.setattr("clustermesh.planner.cli.load_stack", decrypting_load_stack)
    document = stack(with_cluster(0, kubeconfig={"secret": "alphaKubeconfig"}), extra={key: {"secure": "v1:AAAA"}})
    result = invoke(write_case(tmp_path, document, None))
    assert result.exit_code == 2, result.stdout + result.stderr
    assert (
        "clusters[0].kubeconfig.secret: config key clustermesh:alphaKubeconfig is not a usable kubeconfig"
        in result.stderr
    )
    assert MARKER not in result.stdout + result.stderr
    assert_speaks_the_config_language(result)


def test_the_program_reports_a_malformed_secret_kubeconfig_without_its_text() -> None:
    """Inside `pulumi up` the engine hands the program the decrypted value; its failure must not echo it."""
    raw = {
        **raw_config(with_cluster(0, kubeconfig={"secret": "alphaKubeconfig"})),
        "clustermesh:alphaKubeconfig": WRONG_KUBECONFIG,
    }
    with pytest.raises(Exception) as failure:  # the engine's RunError, whatever wraps it
        plan_raw(raw, frozenset({"clustermesh:alphaKubeconfig"}))
    message = str(failure.value)
    assert "contexts[0].context.user names no entry of users" in message
    assert MARKER not in message


def test_secret_values_are_redacted_from_every_message() -> None:
    """A secret mesh key whose value is wrong is reported by path, with [secret] where its text would be."""
    clusters = copy.deepcopy(three_clusters())
    clusters[1]["podCidrs"] = ["10.11.128.0/17"]
    clusters[2]["serviceCidr"] = "not-a-cidr-but-secret"
    raw = raw_config(clusters, domain="Secret_Domain.example")
    secret_keys = frozenset({"clustermesh:clusters", "clustermesh:domain"})
    with pytest.raises(ConfigError) as failure:
        load_stack_config(raw, secret_keys)
    text = str(failure.value)
    for secret in ("10.11.128.0/17", "10.11.0.0/16", "not-a-cidr-but-secret", "Secret_Domain.example"):
        assert secret not in text
    assert "clusters[1].podCidrs[0]: [secret] overlaps clusters[0].podCidrs[0] [secret]" in text
    assert "domain: '[secret]' is not a DNS domain name" in text
    assert "clusters[2].serviceCidr: '[secret]' is not a CIDR" in text
