"""KubernetesOverSsh: RKE2, k3s or kubeadm on a cluster's VMs, installed over SSH, and the credentials to reach it.

The program issues the cluster's certificate authorities and an admin client certificate itself (RKE2, k3s and
kubeadm take custom CAs placed before their first start), so the kubeconfig, and with it every Kubernetes resource
of the cluster, is known at preview: nothing is read back from a node. The join token is the program's too.

Secrets travel only on each command's stdin with logging off; the scripts themselves hold none. Each node has
its own command: adding an agent runs one command and touches no other node, and a re-run changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_tls as tls

from clustermesh.model import Node, NodeRole, OpenStackCluster
from clustermesh.render import cluster_pki, distro
from components.tokens import KUBERNETES_OVER_SSH

CA_VALIDITY_HOURS = 10 * 8766
"""The cluster CAs live as long as the cluster: RKE2, k3s and kubeadm do not rotate custom CAs by themselves."""
ADMIN_VALIDITY_HOURS = 8766
ADMIN_EARLY_RENEWAL_HOURS = 30 * 24
"""A `pulumi up` in the last month re-issues the admin certificate; the CAs stay."""
SSH_DIAL_ATTEMPTS = 60
"""The VM is created before it boots: keep dialling (15 s a try) for about 15 minutes."""


@dataclass(frozen=True, kw_only=True)
class KubernetesOverSshArgs:
    cluster: OpenStackCluster
    ssh_hosts: Mapping[str, pulumi.Input[str]]
    """Where each node (by name) answers SSH."""
    ssh_private_key: pulumi.Input[str]
    machines: Mapping[str, pulumi.Resource]
    """Each node's VM, by name: its command runs once it exists, and again if it is replaced."""


class KubernetesOverSsh(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    """Admin credentials for the cluster's API (secret), known at preview."""
    installed: list[pulumi.Resource]
    """The servers' install commands: the cluster's API answers once they are done."""

    def __init__(self, name: str, args: KubernetesOverSshArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        cluster = args.cluster
        super().__init__(KUBERNETES_OVER_SSH, name, {"clusterName": cluster.name, "distro": cluster.distro.name}, opts)
        self._cluster = cluster
        self._tls = tls.Provider(f"{name}-pki", opts=pulumi.ResourceOptions(parent=self))
        ssh = command.Provider(f"{name}-ssh", opts=pulumi.ResourceOptions(parent=self))

        cas: dict[str, tuple[tls.PrivateKey, tls.SelfSignedCert]] = {}
        files: dict[str, pulumi.Output[str]] = {}
        for ca in cluster_pki.cluster_cas(cluster):
            key = self._key(f"{name}-{ca.name}")
            cert = tls.SelfSignedCert(
                f"{name}-{ca.name}",
                private_key_pem=key.private_key_pem,
                is_ca_certificate=True,
                subject=tls.SelfSignedCertSubjectArgs(common_name=ca.common_name),
                validity_period_hours=CA_VALIDITY_HOURS,
                allowed_uses=["cert_signing", "crl_signing", "digital_signature", "key_encipherment"],
                opts=self._pki(),
            )
            cas[ca.name] = (key, cert)
            files[ca.cert_path] = cert.cert_pem
            files[ca.key_path] = pulumi.Output.secret(key.private_key_pem)
        # ECDSA, which the API server signs service-account tokens with (ES256) as it does with RSA.
        service_account = self._key(f"{name}-service-account")
        files[cluster_pki.service_account_key_path(cluster)] = pulumi.Output.secret(service_account.private_key_pem)
        public_key_path = cluster_pki.service_account_public_key_path(cluster)
        if public_key_path is not None:
            files[public_key_path] = service_account.public_key_pem

        server_ca = cas[cluster_pki.api_ca_name(cluster)][1]
        self.kubeconfig = self._admin_kubeconfig(name, server_ca, *cas[cluster_pki.client_ca_name(cluster)])
        seed = self._key(f"{name}-join-token")
        token: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(server_ca.cert_pem, seed.private_key_pem).apply(
                lambda v: cluster_pki.join_token(cluster, v[0], v[1])
            )
        )

        pki_files: pulumi.Output[dict[str, str]] = pulumi.Output.all(**files)
        self.installed = []
        first: command.remote.Command | None = None
        for node in cluster.nodes:  # servers first
            server = node.pool.role is NodeRole.SERVER
            # The first server starts the cluster, other servers join it, and agents join once every server runs.
            # The CA files go to the servers that take them (the first one; every one with kubeadm).
            after: list[pulumi.Resource] = [] if first is None else [first] if server else list(self.installed)
            install = self._install(
                node, args, ssh=ssh, token=token, server_ca_pem=server_ca.cert_pem, pki_files=pki_files, after=after
            )
            first = first or install
            if server:
                self.installed.append(install)
        self.register_outputs({"clusterName": cluster.name, "kubeconfig": self.kubeconfig})

    def _pki(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._tls)

    def _key(self, name: str) -> tls.PrivateKey:
        return tls.PrivateKey(name, algorithm="ECDSA", ecdsa_curve="P256", opts=self._pki())

    def _admin_kubeconfig(
        self, name: str, server_ca: tls.SelfSignedCert, client_ca_key: tls.PrivateKey, client_ca: tls.SelfSignedCert
    ) -> pulumi.Output[str]:
        key = self._key(f"{name}-admin")
        request = tls.CertRequest(
            f"{name}-admin",
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(
                common_name=cluster_pki.ADMIN_COMMON_NAME, organization=cluster_pki.ADMIN_ORGANIZATION
            ),
            opts=self._pki(),
        )
        cert = tls.LocallySignedCert(
            f"{name}-admin",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=client_ca_key.private_key_pem,
            ca_cert_pem=client_ca.cert_pem,
            validity_period_hours=ADMIN_VALIDITY_HOURS,
            early_renewal_hours=ADMIN_EARLY_RENEWAL_HOURS,
            allowed_uses=["client_auth", "digital_signature", "key_encipherment"],
            opts=self._pki(),
        )
        cluster = self._cluster
        return pulumi.Output.secret(
            pulumi.Output.all(server_ca.cert_pem, cert.cert_pem, key.private_key_pem).apply(
                lambda v: cluster_pki.kubeconfig(cluster, v[0], v[1], v[2])
            )
        )

    def _install(
        self,
        node: Node,
        args: KubernetesOverSshArgs,
        *,
        ssh: command.Provider,
        token: pulumi.Output[str],
        server_ca_pem: pulumi.Output[str],
        pki_files: pulumi.Output[dict[str, str]],
        after: list[pulumi.Resource],
    ) -> command.remote.Command:
        cluster = self._cluster
        bundle: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(token, server_ca_pem, pki_files).apply(
                lambda v: distro.node_bundle(cluster, node, v[0], v[1], v[2])
            )
        )
        bastion = cluster.ssh.bastion
        connection = command.remote.ConnectionArgs(
            host=args.ssh_hosts[node.name],
            user=cluster.ssh.user,
            private_key=args.ssh_private_key,
            dial_error_limit=SSH_DIAL_ATTEMPTS,
            proxy=command.remote.ProxyConnectionArgs(
                host=bastion.host,
                user=bastion.user,
                port=bastion.port,
                private_key=args.ssh_private_key,
                dial_error_limit=SSH_DIAL_ATTEMPTS,
            )
            if bastion is not None
            else None,
        )
        machine = args.machines[node.name]
        return command.remote.Command(
            f"{node.name}-{cluster.distro.name.value}",
            connection=connection,
            create=distro.install_script(cluster, node),
            delete=distro.uninstall_script(cluster, node),
            stdin=bundle,
            # The bundle holds the join token and, on servers that take them, the CA keys: nothing of a run is logged.
            logging=command.remote.Logging.NONE,
            triggers=[machine.id] if isinstance(machine, pulumi.CustomResource) else None,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=ssh,
                depends_on=[machine, *after],
                additional_secret_outputs=["stdout", "stderr"],
                # A new VM replaces the command: the old one's uninstall must run (on nothing) before the new
                # install, or it would wipe the node just installed at the same address.
                delete_before_replace=True,
            ),
        )
