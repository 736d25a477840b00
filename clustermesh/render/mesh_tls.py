"""The clustermesh certificates of one cluster, as Cilium's chart would issue them (identities and names).

With `clustermesh.apiserver.tls.auto.enabled=false` the chart mounts these pre-created Secrets
(`kubernetes.io/tls`, keys `ca.crt`, `tls.crt`, `tls.key`); the CNs are what etcd turns into users.
"""

from __future__ import annotations

from dataclasses import dataclass

from clustermesh import cilium
from clustermesh.model import ClusterSpec, MeshConfig
from clustermesh.render.mesh_config import peer_hostname

CA_COMMON_NAME = "Cilium Cluster Mesh CA"
SERVER_USES = ("digital_signature", "key_encipherment", "server_auth", "client_auth")
CLIENT_USES = ("digital_signature", "key_encipherment", "client_auth")


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
    own_name = (cluster.apiserver_exposure.hostname,) if cluster.apiserver_exposure.hostname else ()
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
        # CN `remote`: the user every clustermesh-apiserver grants read access to its state
        # (authMode legacy and migration, the chart's default).
        CertificateSpec(role="remote", common_name="remote"),
    ]
    if mesh.kvstoremesh:
        specs.append(CertificateSpec(role="local", common_name=f"local-{cluster.name}"))
    return specs
