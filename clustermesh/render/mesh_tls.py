"""The clustermesh certificates of one cluster, as Cilium's chart would issue them (identities and names).

With `clustermesh.apiserver.tls.auto.enabled=false` the chart mounts these pre-created Secrets
(`kubernetes.io/tls`, keys `ca.crt`, `tls.crt`, `tls.key`); the CNs are what etcd turns into users:
`admin-<c>` (root), `local-<c>` (the agents' read of the KVStoreMesh cache) and, with
`authMode: cluster`, `remote-<c>`, the identity under which cluster c reads its peers' state. Each peer's
etcd knows that user only while its `clustermesh-remote-users` ConfigMap lists it
(`remote_users`), so removing a cluster from the mesh revokes its access everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from clustermesh import cilium
from clustermesh.model import ClusterSpec, MeshConfig
from clustermesh.render.mesh_config import peer_hostname

CA_COMMON_NAME = "Cilium Cluster Mesh CA"
REMOTE_USERS_CONFIGMAP = "clustermesh-remote-users"
"""Mounted (not optional) by the clustermesh-apiserver whenever `authMode` is not `legacy`; the chart renders it
only from its own peer list (`clustermesh.config`), which the program keeps off, so the program provides it."""
REMOTE_USERS_KEY = "users.yaml"
AUTH_MODE = "cluster"
"""`clustermesh.apiserver.tls.authMode`: one etcd user per remote cluster, each revocable on its own."""
SERVER_USES = ("digital_signature", "key_encipherment", "server_auth", "client_auth")
CLIENT_USES = ("digital_signature", "key_encipherment", "client_auth")


def remote_user(cluster_name: str) -> str:
    """The etcd user (and remote certificate CN) of cluster `cluster_name` in its peers' clustermesh-apiservers."""
    return f"remote-{cluster_name}"


def certificate_secret_name(role: str) -> str:
    """The Secret the chart mounts a `role` certificate from (server, admin, remote or local)."""
    return f"clustermesh-apiserver-{role}-cert"


@dataclass(frozen=True)
class CertificateSpec:
    role: str
    """server, admin, remote or local: also the middle of the Secret's name."""
    common_name: str
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    uses: tuple[str, ...] = CLIENT_USES

    @property
    def secret_name(self) -> str:
        return certificate_secret_name(self.role)


def cluster_certificates(mesh: MeshConfig, cluster: ClusterSpec) -> list[CertificateSpec]:
    """The server certificate and the client certificates of `cluster`'s clustermesh-apiserver.

    The server certificate names this cluster (`<name>.<domain>`) rather than the chart's wildcard
    `*.<domain>`: with a wildcard any cluster's apiserver could answer for any other, while an exact
    name lets a client check that the peer it dialled is the peer it meant. A cluster's own
    `apiserverExposure.hostname` is added, since peers dial it by that name.
    """
    own_name = (cluster.apiserver_hostname,) if cluster.apiserver_hostname else ()
    specs = [
        CertificateSpec(
            role="server",
            common_name=f"clustermesh-apiserver.{cilium.NAMESPACE}.svc",
            dns_names=tuple(
                dict.fromkeys(
                    (peer_hostname(mesh, cluster.name), *own_name, f"clustermesh-apiserver.{cilium.NAMESPACE}.svc")
                )
            ),
            ip_addresses=("127.0.0.1", "::1"),
            uses=SERVER_USES,
        ),
        CertificateSpec(role="admin", common_name=f"admin-{cluster.name}"),
        # The identity this cluster presents to every peer; each peer grants it read access to its state
        # for as long as its users ConfigMap names it.
        CertificateSpec(role="remote", common_name=remote_user(cluster.name)),
    ]
    if mesh.kvstoremesh:
        specs.append(CertificateSpec(role="local", common_name=f"local-{cluster.name}"))
    return specs


def remote_users(local: str, names: Iterable[str]) -> dict[str, Any]:
    """Cluster `local`'s `clustermesh-remote-users` ConfigMap: an etcd user with role `remote` per peer, never itself.

    The clustermesh-apiserver watches this file and creates the users that appear and deletes those that
    disappear, without a restart (cilium/cilium clustermesh-apiserver/clustermesh/users_mgmt.go). It needs
    the peers' names only, so it is known at preview and waits on no other cluster.
    """
    users = [{"name": remote_user(name), "role": "remote"} for name in sorted(set(names) - {local})]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": REMOTE_USERS_CONFIGMAP, "namespace": cilium.NAMESPACE},
        # JSON, which is YAML to the apiserver's parser (yaml.v3) and parses in a fraction of the time for
        # whoever checks it: at 511 clusters the mesh holds 261,000 users, and a YAML loader took seconds. The
        # default separators keep a space after each ':' and ',', as YAML parsers older than 1.2 require.
        "data": {REMOTE_USERS_KEY: json.dumps({"users": users})},
    }
