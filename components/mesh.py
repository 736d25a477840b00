"""Mesh: one CA, every cluster's clustermesh certificates, and each cluster's view of its peers.

The graph: CA -> each cluster's certificates (as the Secrets its clustermesh-apiserver mounts) ->
each cluster's clustermesh-apiserver address (pinned, NodePort, or read from its LoadBalancer Service
once Cilium is installed) -> the clustermesh Secrets (and, on Cilium 1.19, the address patch) of every
other cluster. Documents come from `clustermesh.render`; this component only wires them.

Scale: all addresses meet in one Output, rendered once for the mesh; each cluster's Secret is a slice
of it. Nothing here creates an Output per pair of clusters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from clustermesh import cilium
from clustermesh.model import ClusterSpec, ExistingCluster, MeshConfig, ServiceType
from clustermesh.render import mesh_config
from clustermesh.render.aws_underlay import Underlay
from clustermesh.render.mesh_config import EncodedPeers, PeerAddress, ServiceTarget
from clustermesh.render.mesh_tls import CA_COMMON_NAME, CertificateSpec, cluster_certificates, remote_users
from components.aws.underlay import connect_vpcs
from components.calico_peering import exclude_peer_pod_ranges
from components.mesh_cluster import MeshCluster
from components.openstack.peering import admit_peers
from components.tokens import MESH

DNS_TTL_SECONDS = 60
"""Short, so a load balancer that moves is found again within a minute."""


ROUTE53_REGION = "us-east-1"
"""Route 53 is a global service whose API AWS serves from us-east-1; the record needs no other region."""


@dataclass(frozen=True, kw_only=True)
class MeshArgs:
    mesh: MeshConfig
    """The validated mesh configuration."""
    clusters: Sequence[MeshCluster]
    """The clusters to connect, each with its own provider and Cilium release."""


class Mesh(pulumi.ComponentResource):
    ca_cert_pem: pulumi.Output[str]
    """The mesh CA certificate (public)."""
    ca_private_key_pem: pulumi.Output[str]
    """The mesh CA key: secret, and never written to any cluster."""
    underlay: Underlay
    """How the EKS clusters' VPCs are connected, and why (no cluster when the mesh has no EKS cluster)."""
    addresses: pulumi.Output[dict[str, list[str]]]
    """Each cluster's clustermesh-apiserver addresses as its peers reach it: IPs, or its own hostname."""

    def __init__(self, name: str, args: MeshArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(MESH, name, None, opts)
        self._mesh = args.mesh
        # Explicit providers for everything the Mesh makes outside the clusters: stacks disable every default
        # provider, so nothing can reach an account or endpoint the stack does not name.
        self._tls = tls.Provider(f"{name}-tls", opts=pulumi.ResourceOptions(parent=self))
        self._aws: aws.Provider | None = None
        if any(isinstance(c, ExistingCluster) and c.apiserver_exposure.route53_zone_id for c in args.mesh.clusters):
            self._aws = aws.Provider(f"{name}-aws", region=ROUTE53_REGION, opts=pulumi.ResourceOptions(parent=self))
        ca_key = self._private_key(f"{name}-ca")
        ca_cert = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name=CA_COMMON_NAME, organization=name),
            validity_period_hours=args.mesh.certificates.ca_validity_hours,
            early_renewal_hours=args.mesh.certificates.early_renewal_hours,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=self._tls_child(),
        )
        self.ca_cert_pem = ca_cert.cert_pem
        self.ca_private_key_pem = pulumi.Output.secret(ca_key.private_key_pem)

        addresses: dict[str, pulumi.Output[PeerAddress]] = {}
        for cluster in args.clusters:
            spec = args.mesh.cluster(cluster.cluster_name)
            for cert in cluster_certificates(args.mesh, spec):
                self._certificate_secret(cluster, cert, ca_key, ca_cert)
            addresses[spec.name] = self._address(cluster, spec)

        everyone = pulumi.Output.all(**addresses)
        peers = everyone.apply(lambda a: mesh_config.encode_peers(args.mesh, a))
        names = [cluster.cluster_name for cluster in args.clusters]
        for cluster in args.clusters:
            self._clustermesh_secrets(cluster, peers, names)
            self._remote_users(cluster, names)
            if not mesh_config.aliases_in_config(args.mesh):
                self._address_patch(cluster, everyone)

        admit_peers(self, args.mesh, args.clusters)
        exclude_peer_pod_ranges(self, args.mesh, args.clusters)
        self.underlay = connect_vpcs(self, args.mesh, args.clusters)

        self.addresses = everyone.apply(lambda a: {n: p.reached_at for n, p in a.items()})
        self.register_outputs(
            {"caCertPem": self.ca_cert_pem, "caPrivateKeyPem": self.ca_private_key_pem, "addresses": self.addresses}
        )

    def _certificate_secret(
        self, cluster: MeshCluster, cert: CertificateSpec, ca_key: tls.PrivateKey, ca_cert: tls.SelfSignedCert
    ) -> k8s.core.v1.Secret:
        """Issue one certificate and store it where the chart mounts it, in that cluster only."""
        prefix = f"{cluster.cluster_name}-{cert.role}"
        child = self._tls_child()
        key = self._private_key(prefix)
        request = tls.CertRequest(
            prefix,
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=cert.common_name),
            dns_names=list(cert.dns_names),
            ip_addresses=list(cert.ip_addresses),
            opts=child,
        )
        signed = tls.LocallySignedCert(
            prefix,
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca_cert.cert_pem,
            validity_period_hours=self._mesh.certificates.validity_hours,
            early_renewal_hours=self._mesh.certificates.early_renewal_hours,
            allowed_uses=list(cert.uses),
            opts=child,
        )
        return k8s.core.v1.Secret(
            f"{prefix}-cert",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=cert.secret_name, namespace=cilium.NAMESPACE),
            type="kubernetes.io/tls",
            string_data={
                "ca.crt": ca_cert.cert_pem,
                "tls.crt": signed.cert_pem,
                "tls.key": key.private_key_pem,  # a secret output of the tls provider
            },
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider),
        )

    def _tls_child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._tls)

    def _private_key(self, name: str) -> tls.PrivateKey:
        # ECDSA P-256, as Cilium's own certgen issues them.
        return tls.PrivateKey(name, algorithm="ECDSA", ecdsa_curve="P256", opts=self._tls_child())

    def _address(self, cluster: MeshCluster, spec: ClusterSpec) -> pulumi.Output[PeerAddress]:
        exposure = self._mesh.apiserver_exposure
        node_port = spec.apiserver_service_type(exposure.type) is ServiceType.NODE_PORT
        # An Octavia VIP listens on the apiserver's own port in front of the nodes' NodePort.
        port = exposure.node_port if node_port and spec.pinned_apiserver_ip is None else mesh_config.APISERVER_PORT
        hostname = spec.apiserver_hostname
        if hostname is not None:
            # Peers dial the name, known now: their configuration waits on no load balancer.
            if isinstance(spec, ExistingCluster) and spec.apiserver_exposure.route53_zone_id is not None:
                self._dns_record(spec, hostname, self._target(cluster, spec))
            return pulumi.Output.from_input(PeerAddress((), port, hostname))
        return self._target(cluster, spec).apply(lambda t: mesh_config.peer_address(self._mesh, spec.name, t, port))

    def _target(self, cluster: MeshCluster, spec: ClusterSpec) -> pulumi.Output[ServiceTarget]:
        """Where the cluster's clustermesh-apiserver answers: a pinned IP, node addresses, or its Service's ingress."""
        if spec.pinned_apiserver_ip is not None:
            # Pinned: known at preview, so every peer's configuration is too.
            return pulumi.Output.from_input(ServiceTarget(tuple(str(a) for a in spec.pinned_apiserver_ips)))
        if spec.apiserver_service_type(self._mesh.apiserver_exposure.type) is ServiceType.NODE_PORT:
            return pulumi.Output.from_input(ServiceTarget(tuple(str(a) for a in spec.apiserver_node_addresses)))
        # The Service is the chart's; its id waits on the release, so a preview of a new cluster skips the
        # read (leaving the address unknown) instead of failing on a Service that does not exist yet.
        service = k8s.core.v1.Service.get(
            f"{spec.name}-clustermesh-apiserver",
            cluster.cilium_release.status.apply(lambda s: f"{s.namespace}/clustermesh-apiserver"),
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider),
        )
        return service.status.apply(_ingress)

    def _dns_record(self, spec: ExistingCluster, hostname: str, target: pulumi.Output[ServiceTarget]) -> None:
        record = target.apply(mesh_config.dns_record)
        aws.route53.Record(
            f"{spec.name}-clustermesh-apiserver-dns",
            zone_id=spec.apiserver_exposure.route53_zone_id,
            name=hostname,
            type=record.apply(lambda r: r[0]),
            records=record.apply(lambda r: r[1]),
            ttl=DNS_TTL_SECONDS,
            opts=pulumi.ResourceOptions(parent=self, provider=self._aws),
        )

    def _clustermesh_secrets(
        self, cluster: MeshCluster, peers: pulumi.Output[EncodedPeers], names: Sequence[str]
    ) -> None:
        name = cluster.cluster_name
        remote = peers.apply(lambda p: _read_only(mesh_config.remote_secret(self._mesh, name, p)))
        self._opaque_secret(cluster, mesh_config.remote_secret_name(self._mesh), remote)
        # Known from the peers' names alone: no dependency on any address, and settled at preview.
        if (local := mesh_config.local_agent_secret(self._mesh, name, names)) is not None:
            self._opaque_secret(cluster, local["metadata"]["name"], _read_only(local))

    def _remote_users(self, cluster: MeshCluster, names: Sequence[str]) -> None:
        """The etcd users cluster's clustermesh-apiserver creates for its peers: removing a cluster revokes it here."""
        users = remote_users(cluster.cluster_name, names)
        k8s.core.v1.ConfigMap(
            f"{cluster.cluster_name}-{users['metadata']['name']}",
            metadata=k8s.meta.v1.ObjectMetaArgs(**users["metadata"]),
            data=users["data"],
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider),
        )

    def _opaque_secret(self, cluster: MeshCluster, secret_name: str, data: pulumi.Input[Mapping[str, str]]) -> None:
        k8s.core.v1.Secret(
            f"{cluster.cluster_name}-{secret_name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace=cilium.NAMESPACE),
            type="Opaque",
            data=data,
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider),
        )

    def _address_patch(self, cluster: MeshCluster, everyone: pulumi.Output[dict[str, PeerAddress]]) -> None:
        name = cluster.cluster_name
        patch = everyone.apply(lambda a: mesh_config.address_patch(self._mesh, name, a))
        opts = pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[cluster.cilium_release])
        metadata: Any = patch.apply(lambda p: p["metadata"])
        spec: Any = patch.apply(lambda p: p["spec"])
        kind, _ = mesh_config.address_patch_target(self._mesh)
        patch_class = k8s.apps.v1.DeploymentPatch if kind == "Deployment" else k8s.apps.v1.DaemonSetPatch
        patch_class(f"{name}-address-patch", metadata=metadata, spec=spec, opts=opts)


def _read_only(manifest: mesh_config.Manifest) -> Mapping[str, str]:
    """A Secret manifest's data as a read-only mapping, not a dict: `Output.secret` (which the Secret applies
    to `data`) unwraps a dict into an Output per entry, N per cluster and N² for the mesh. These entries are
    plain strings with nothing to unwrap, and the engine serializes any Mapping the same as a dict.
    """
    return MappingProxyType(manifest["data"])


def _ingress(status: Any) -> ServiceTarget:
    ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    ips = tuple(entry.ip for entry in ingress if entry.ip)
    hostname = next((entry.hostname for entry in ingress if entry.hostname), None)
    return ServiceTarget(ips, hostname)
