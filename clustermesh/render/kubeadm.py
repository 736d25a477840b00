"""kubeadm's configuration for a node (kubeadm.k8s.io/v1beta4), the CA pin joining nodes check, and the join token.

Tutorial 004 runs `kubeadm init --pod-network-cidr=10.201.0.0/24 --token-ttl 0`, joins the worker with
`--discovery-token-ca-cert-hash`, and untaints the master. The same, as configuration files (kubernetes/kubernetes
cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go): the first server gets an InitConfiguration and a ClusterConfiguration,
every other node a JoinConfiguration. The program issues the cluster's CAs (see `clustermesh.render.cluster_pki`),
so the CA pin and the bootstrap token are known before any VM exists, and every server gets the shared CA files
before kubeadm first runs on it: kubeadm uses CA files it finds instead of generating them, and a control-plane node
that joins without `certificateKey` takes the shared ones from disk (cmd/kubeadm/app/cmd/phases/join/preflight.go,
checkIfReadyForAdditionalControlPlane), so no certificate is ever uploaded to the cluster.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from clustermesh.model.openstack import APISERVER_PORT, DistroName, Node, NodeRole, OpenStackCluster

API_VERSION = "kubeadm.k8s.io/v1beta4"
CRI_SOCKET = "unix:///run/containerd/containerd.sock"
"""containerd's socket (Ubuntu's /var/run is a link to /run, so kubeadm's documented path names the same one)."""
TOKEN_USAGES = ("signing", "authentication")
"""Signing the cluster-info ConfigMap joining nodes discover the cluster from, and authenticating their kubelets'
TLS bootstrap (k8s.io/cluster-bootstrap token/api: KnownTokenUsages)."""
TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
"""The group kubeadm's own tokens carry, which kubeadm init binds to node bootstrapping and CSR auto-approval."""
TOKEN_TTL_NEVER = "0s"
TOKEN_ID_LENGTH = 6
TOKEN_SECRET_LENGTH = 16
TOKEN_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
"""A bootstrap token is `[a-z0-9]{6}.[a-z0-9]{16}` (k8s.io/cluster-bootstrap token/api: BootstrapTokenPattern)."""
TOKEN_CONTEXT = b"clustermesh/kubeadm-bootstrap-token/v1\x00"
KUBE_PROXY_PHASE = "addon/kube-proxy"
DNS_DOMAIN = "cluster.local"
CA_HASH_TYPE = "sha256"
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def init_documents(cluster: OpenStackCluster, node: Node, token: str) -> list[dict[str, Any]]:
    """The first server's InitConfiguration and ClusterConfiguration, for `kubeadm init --config`."""
    _require_kubeadm(cluster)
    if node.name != cluster.first_server.name:
        raise ValueError(f"{node.name} is not the first server, which alone runs kubeadm init")
    init: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "InitConfiguration",
        "bootstrapTokens": [
            {
                "token": token,
                # Never expires, as tutorial 004's --token-ttl 0: the program joins every node with this one token,
                # including a node added months later, and it has no way to mint a new one on a running cluster.
                "ttl": TOKEN_TTL_NEVER,
                "usages": list(TOKEN_USAGES),
                "groups": [TOKEN_GROUP],
            }
        ],
        "nodeRegistration": _node_registration(cluster, node),
        "localAPIEndpoint": _local_endpoint(node),
    }
    if cluster.kube_proxy_replacement:
        # Cilium replaces kube-proxy: kubeadm then never installs it (and records proxy.disabled for upgrades).
        init["skipPhases"] = [KUBE_PROXY_PHASE]
    first = cluster.first_server.address
    pod_cidrs = sorted(cluster.pod_cidrs, key=lambda cidr: cidr.version)  # IPv4 first: the primary family
    configuration: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": cluster.distro.version,
        # Where every node reaches the API: the first server's fixed address, which nodes can reach whatever the
        # runner uses. kubeadm refuses to add a control-plane node to a cluster initialised without one.
        "controlPlaneEndpoint": control_plane_endpoint(cluster),
        "apiServer": {"certSANs": list(dict.fromkeys(str(a) for a in (cluster.api_host, first)))},
        "networking": {
            "podSubnet": ",".join(str(cidr) for cidr in pod_cidrs),
            "serviceSubnet": str(cluster.service_cidr),
            "dnsDomain": DNS_DOMAIN,
        },
        # Calico, or Cilium's cluster-pool IPAM, hands out pod addresses itself and ignores Node.spec.podCIDR; left
        # on, the controller-manager would carve the pod subnet into per-node ranges nobody uses (and refuse a pod
        # subnet smaller than its node mask).
        "controllerManager": {"extraArgs": [{"name": "allocate-node-cidrs", "value": "false"}]},
    }
    return [init, configuration]


def join_document(cluster: OpenStackCluster, node: Node, token: str, ca_cert_hash: str) -> dict[str, Any]:
    """A JoinConfiguration for every node but the first server, for `kubeadm join --config`.

    Other servers join as control-plane nodes without `certificateKey`: the shared CA files are already on them.
    """
    _require_kubeadm(cluster)
    if node.name == cluster.first_server.name:
        raise ValueError(f"{node.name} is the first server, which initialises the cluster rather than joining it")
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "JoinConfiguration",
        "nodeRegistration": _node_registration(cluster, node),
        "discovery": {
            "bootstrapToken": {
                "token": token,
                "apiServerEndpoint": control_plane_endpoint(cluster),
                "caCertHashes": [ca_cert_hash],
            }
        },
    }
    if node.pool.role is NodeRole.SERVER:
        document["controlPlane"] = {"localAPIEndpoint": _local_endpoint(node)}
    return document


def control_plane_endpoint(cluster: OpenStackCluster) -> str:
    """`host:port` of the first server's API, as kubeadm's controlPlaneEndpoint and apiServerEndpoint take it."""
    address = cluster.first_server.address
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"{host}:{APISERVER_PORT}"


def _node_registration(cluster: OpenStackCluster, node: Node) -> dict[str, Any]:
    registration: dict[str, Any] = {
        "name": node.name,
        "criSocket": CRI_SOCKET,
        "kubeletExtraArgs": [{"name": "node-ip", "value": str(node.address)}],
    }
    if node.pool.role is NodeRole.SERVER and not cluster.distro.control_plane_taint:
        # An empty list, not an absent one: kubeadm gives control-plane nodes its NoSchedule taint when the field
        # is unset (v1beta4 NodeRegistrationOptions.Taints), which tutorial 004 removes with kubectl taint.
        registration["taints"] = []
    return registration


def _local_endpoint(node: Node) -> dict[str, Any]:
    return {"advertiseAddress": str(node.address), "bindPort": APISERVER_PORT}


def _require_kubeadm(cluster: OpenStackCluster) -> None:
    if cluster.distro.name is not DistroName.KUBEADM:
        raise ValueError(f"cluster {cluster.name} runs {cluster.distro.name}, not kubeadm")


def ca_cert_hash(ca_pem: str) -> str:
    """The pin joining nodes check the cluster CA against: `sha256:` and the hex SHA-256 of its DER
    SubjectPublicKeyInfo (kubeadm's pubkeypin.Hash; `--discovery-token-ca-cert-hash`)."""
    if ca_pem.count(PEM_CERTIFICATE) != 1:
        raise ValueError("the CA must be exactly one PEM certificate")
    certificate = x509.load_pem_x509_certificate(ca_pem.encode())
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"{CA_HASH_TYPE}:{hashlib.sha256(spki).hexdigest()}"


def bootstrap_token(seed_pem: str) -> str:
    """The cluster's bootstrap token, derived from a private key the program generates only to be this seed.

    As `cluster_pki.join_password`: the seed lives in the stack's state (encrypted), so every run derives the same
    token; the hash is domain-separated, so the token says nothing else about the key. The digest's 256 bits are read
    as base-36 digits, of which the token takes 22 (about 113 bits).
    """
    number = int.from_bytes(hashlib.sha256(TOKEN_CONTEXT + seed_pem.encode()).digest(), "big")
    characters = []
    for _ in range(TOKEN_ID_LENGTH + TOKEN_SECRET_LENGTH):
        number, digit = divmod(number, len(TOKEN_ALPHABET))
        characters.append(TOKEN_ALPHABET[digit])
    text = "".join(characters)
    return f"{text[:TOKEN_ID_LENGTH]}.{text[TOKEN_ID_LENGTH:]}"
