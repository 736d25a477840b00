"""Documents of an EKS cluster the program builds: IAM trust policies, the VPC CNI's configuration, the kubeconfig.

The kubeconfig calls `aws eks get-token` when the provider needs a token, so no token is ever stored in state.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network, IPv6Network

import yaml

from clustermesh.model import EksCluster, MeshConfig

CLUSTER_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
    "arn:aws:iam::aws:policy/AmazonEKSVPCResourceController",
)
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)
AGENT_NOT_READY_TAINT = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}
"""Cilium's operator removes it once the agent runs on the node: no pod starts before Cilium can manage it
(Cilium's EKS requirements)."""
LOAD_BALANCER_ROLE_TAGS = {
    "public": {"kubernetes.io/role/elb": "1"},
    "private": {"kubernetes.io/role/internal-elb": "1"},
}


def trust_policy(service: str) -> str:
    """An IAM role's assume-role policy for an AWS service principal (`eks.amazonaws.com`, `ec2.amazonaws.com`)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
            ],
        },
        sort_keys=True,
    )


def snat_exclusions(mesh: MeshConfig, cluster: EksCluster) -> list[IPv4Network | IPv6Network]:
    """What the VPC CNI must not masquerade towards: the mesh's range when given (`nativeRoutingCidrs`, which a
    Transit Gateway mesh requires: stable as clusters join), else every other EKS cluster's VPC."""
    if mesh.native_routing_cidrs:
        return list(mesh.native_routing_cidrs)
    return [c.vpc_cidr for c in mesh.clusters if isinstance(c, EksCluster) and c.name != cluster.name]


def vpc_cni_configuration(excluded: list[IPv4Network | IPv6Network]) -> str:
    """The vpc-cni add-on's configuration: no SNAT towards `excluded`, so pods of other clusters see a pod's own
    address (the VPC CNI masquerades every destination outside its VPC, peered VPCs included) and Cilium's identities
    and network policy work across the mesh."""
    env = {"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": ",".join(str(c) for c in excluded)} if excluded else {}
    return json.dumps({"env": env}, sort_keys=True)


def kubeconfig(cluster: EksCluster, endpoint: str, certificate_authority: str) -> str:
    """A kubeconfig whose user runs `aws eks get-token`: credentials come from the environment at each run."""
    name = cluster.name
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": name, "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority}}
            ],
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "--region",
                                cluster.region,
                                "eks",
                                "get-token",
                                "--cluster-name",
                                name,
                                "--output",
                                "json",
                            ],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        },
        sort_keys=False,
    )
