"""The certificate authorities the program issues for a cluster it installs, and what follows from them.

RKE2 and k3s use CA files they find under `<data-dir>/server/tls` when their first server starts for the first
time, instead of generating their own (k3s docs/cli/certificate.md and rke2-docs docs/security/certificates.md,
"Using Custom CA Certificates"). kubeadm does the same with the files under /etc/kubernetes/pki ("If both files
already exist, kubeadm skips the generation step", kubeadm_init_phase_certs_ca), and a control-plane node joining
without a certificate key needs them on disk already (cmd/kubeadm/app/phases/certs/certs.go,
SharedCertificateExists: ca, sa.key with sa.pub, front-proxy-ca, etcd/ca). The program issues them, so before any
VM exists it knows:
- the admin kubeconfig: a client certificate it signs with the client CA (group system:masters) and the CA the
  API's serving certificate chains to, so every Kubernetes resource of the cluster can be previewed;
- the join token: for RKE2 and k3s the secure form `K10<server CA hash>::server:<password>`, which lets joining nodes
  check the server they reach before sending credentials (k3s docs/cli/token.md); for kubeadm a bootstrap token,
  which joining nodes use with the CA's public-key pin (`clustermesh.render.kubeadm.ca_cert_hash`). Without custom
  CAs neither the hash nor the pin would be known until the first server had generated its CA.

Each CA is a self-signed certificate, one per file. That is the distributions' own default topology (k3s
docs/cli/certificate.md, "Default CA Topology"); the root and intermediate chain the example script
(k3s contrib/util/generate-custom-ca-certs.sh) builds is optional, and would change what the token hashes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import yaml

from clustermesh.model.openstack import DistroName, OpenStackCluster
from clustermesh.render.distro import data_dir
from clustermesh.render.kubeadm import bootstrap_token

ADMIN_COMMON_NAME = "clustermesh-admin"
ADMIN_ORGANIZATION = "system:masters"
"""The admin client certificate's group: bound to cluster-admin by Kubernetes' default RBAC. k3s issues its own
admin certificate the same way, signed by the client CA with organization system:masters (k3s
pkg/daemons/control/deps/deps.go, genClientCerts), and the apiserver trusts client-ca.crt for client certificates."""
TOKEN_PREFIX = "K10"
TOKEN_USER = "server"
"""The user of the server token (k3s writes `K10<hash>::server:<password>` to `server/token`)."""
JOIN_PASSWORD_CONTEXT = b"clustermesh/join-password/v1\x00"
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"

KUBEADM_PKI_DIR = "/etc/kubernetes/pki"
"""kubeadm's certificatesDir (ClusterConfiguration's default)."""

# (name, file under server/tls): the CAs both distributions require (k3s docs/cli/certificate.md, "Using Custom CA
# Certificates"; the same list in rke2-docs docs/security/certificates.md). The etcd CAs are required even
# without embedded etcd.
_CAS = (
    ("server-ca", "server-ca"),
    ("client-ca", "client-ca"),
    ("request-header-ca", "request-header-ca"),
    ("etcd-peer-ca", "etcd/peer-ca"),
    ("etcd-server-ca", "etcd/server-ca"),
)
# (name, file under /etc/kubernetes/pki): the CAs every kubeadm control-plane node must share (SharedCertificateExists,
# with stacked etcd). One CA serves the API and signs client certificates; front-proxy-ca signs the aggregation
# layer's client; etcd/ca both etcd's serving and peer certificates.
_KUBEADM_CAS = (
    ("ca", "ca"),
    ("front-proxy-ca", "front-proxy-ca"),
    ("etcd-ca", "etcd/ca"),
)


@dataclass(frozen=True)
class CaSpec:
    name: str
    """server-ca, client-ca, request-header-ca, etcd-peer-ca or etcd-server-ca; for kubeadm ca, front-proxy-ca or
    etcd-ca."""
    common_name: str
    """Stable: a new name issues a new CA, which a running cluster does not take by itself."""
    cert_path: str
    key_path: str


def _kubeadm(cluster: OpenStackCluster) -> bool:
    return cluster.distro.name is DistroName.KUBEADM


def tls_dir(cluster: OpenStackCluster) -> str:
    if _kubeadm(cluster):
        return KUBEADM_PKI_DIR
    return f"{data_dir(cluster)}/server/tls"


def cluster_cas(cluster: OpenStackCluster) -> list[CaSpec]:
    """The CA certificates and keys to place before the distribution first starts: on the first server for RKE2 and
    k3s, on every server for kubeadm (`clustermesh.render.distro.receives_cluster_pki`)."""
    tls = tls_dir(cluster)
    return [
        CaSpec(
            name=name,
            # As the distributions name theirs (`k3s-server-ca@<time>`), with the cluster in place of the time.
            common_name=f"{cluster.distro.name.value}-{name}@{cluster.name}",
            cert_path=f"{tls}/{file}.crt",
            key_path=f"{tls}/{file}.key",
        )
        for name, file in (_KUBEADM_CAS if _kubeadm(cluster) else _CAS)
    ]


def api_ca_name(cluster: OpenStackCluster) -> str:
    """The CA the API's serving certificate chains to: what the kubeconfig trusts and the join token pins."""
    return "ca" if _kubeadm(cluster) else "server-ca"


def client_ca_name(cluster: OpenStackCluster) -> str:
    """The CA the API trusts for client certificates: it signs the admin certificate."""
    return "ca" if _kubeadm(cluster) else "client-ca"


def service_account_key_path(cluster: OpenStackCluster) -> str:
    """The key that signs service-account tokens: required with custom CAs, and it has no certificate."""
    if _kubeadm(cluster):
        return f"{KUBEADM_PKI_DIR}/sa.key"
    return f"{tls_dir(cluster)}/service.key"


def service_account_public_key_path(cluster: OpenStackCluster) -> str | None:
    """Where the service-account key's public half goes, if the distribution reads it from a file of its own.

    kubeadm does: it uses an existing sa.key without writing sa.pub (certs.go, CreateServiceAccountKeyAndPublicKeyFiles
    returns as soon as the key loads), the API server it configures verifies tokens with sa.pub, and a control-plane
    node joins only where both are present. RKE2 and k3s derive what they need from service.key.
    """
    return f"{KUBEADM_PKI_DIR}/sa.pub" if _kubeadm(cluster) else None


def kubeconfig(cluster: OpenStackCluster, server_ca_pem: str, client_cert_pem: str, client_key_pem: str) -> str:
    """The admin kubeconfig for the cluster's API, with every credential inline (the provider reads no file)."""
    name = cluster.name
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": cluster.api_endpoint, "certificate-authority-data": _b64(server_ca_pem)},
            }
        ],
        "users": [
            {
                "name": name,
                "user": {"client-certificate-data": _b64(client_cert_pem), "client-key-data": _b64(client_key_pem)},
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(document, sort_keys=False)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def join_token(cluster: OpenStackCluster, server_ca_pem: str, seed_pem: str) -> str:
    """The token every node but the first joins with: k3s's secure form for RKE2 and k3s, a bootstrap token for kubeadm
    (which checks the CA with a separate pin, `clustermesh.render.kubeadm.ca_cert_hash`)."""
    if _kubeadm(cluster):
        return bootstrap_token(seed_pem)
    return secure_join_token(server_ca_pem, join_password(seed_pem))


def secure_join_token(server_ca_pem: str, password: str) -> str:
    """The join token in k3s's secure form, `K10<sha256 of the server CA>::server:<password>`.

    A joining node downloads the CA bundle from the server's /cacerts (the bytes of server-ca.crt as stored)
    and compares its hash with the token's before sending credentials. For a bundle of one certificate the
    hash is over the file's literal bytes; for a chain it is over the root's DER instead (k3s
    pkg/clientaccess/token.go, hashCA). So `server_ca_pem` must be exactly what is written to server-ca.crt,
    and one self-signed certificate.
    """
    if server_ca_pem.count(PEM_CERTIFICATE) != 1:
        raise ValueError("the server CA must be exactly one PEM certificate; a chain is hashed differently")
    if not password or ":" in password:
        raise ValueError("the password must be non-empty and hold no ':'")
    digest = hashlib.sha256(server_ca_pem.encode()).hexdigest()
    return f"{TOKEN_PREFIX}{digest}::{TOKEN_USER}:{password}"


def join_password(seed_pem: str) -> str:
    """The join token's password, derived from a private key the program generates only to be this seed.

    The seed (a `tls.PrivateKey`) is kept in the stack's state, encrypted, so every run derives the same
    password and nothing changes on re-runs; a generator such as pulumi-random is not among the program's
    providers. The hash is domain-separated so the value says nothing about the key beyond being derived from it,
    and hex, so it has no ':' (which would split the token's user and password).
    """
    return hashlib.sha256(JOIN_PASSWORD_CONTEXT + seed_pem.encode()).hexdigest()
