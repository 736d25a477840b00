"""The certificate authorities the program issues for an RKE2 or k3s cluster, and what follows from them.

RKE2 and k3s use CA files they find under `<data-dir>/server/tls` when their first server starts for the first
time, instead of generating their own (k3s docs/cli/certificate.md and rke2-docs docs/security/certificates.md,
"Using Custom CA Certificates"). The program issues them, so before any VM exists it knows:
- the admin kubeconfig: a client certificate it signs with the client CA (group system:masters) and the server
  CA the API's serving certificate chains to, so every Kubernetes resource of the cluster can be previewed;
- the secure join token: `K10<server CA hash>::server:<password>`, which lets joining nodes check the server
  they reach before sending credentials (k3s docs/cli/token.md). Without custom CAs the first server could
  only take the short form, since the hash would not be known until it had generated its CA.

Each CA is a self-signed certificate, one per file. That is the distributions' own default topology (k3s
docs/cli/certificate.md, "Default CA Topology"); the root and intermediate chain the example script
(k3s contrib/util/generate-custom-ca-certs.sh) builds is optional, and would change what the token hashes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import yaml

from clustermesh.model.openstack import OpenStackCluster
from clustermesh.render.distro import data_dir

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


@dataclass(frozen=True)
class CaSpec:
    name: str
    """server-ca, client-ca, request-header-ca, etcd-peer-ca or etcd-server-ca."""
    common_name: str
    """Stable: a new name issues a new CA, which a running cluster does not take by itself."""
    cert_path: str
    key_path: str


def tls_dir(cluster: OpenStackCluster) -> str:
    return f"{data_dir(cluster)}/server/tls"


def cluster_cas(cluster: OpenStackCluster) -> list[CaSpec]:
    """The CA certificates and keys to place on the first server before the distribution first starts."""
    tls = tls_dir(cluster)
    return [
        CaSpec(
            name=name,
            # As the distributions name theirs (`k3s-server-ca@<time>`), with the cluster in place of the time.
            common_name=f"{cluster.distro.name.value}-{name}@{cluster.name}",
            cert_path=f"{tls}/{file}.crt",
            key_path=f"{tls}/{file}.key",
        )
        for name, file in _CAS
    ]


def service_account_key_path(cluster: OpenStackCluster) -> str:
    """The key that signs service-account tokens: required with custom CAs, and it has no certificate."""
    return f"{tls_dir(cluster)}/service.key"


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
