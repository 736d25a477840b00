"""OpenStackInfrastructure: one cluster's network, firewall, ports and VMs (and its Octavia load balancer).

Only wiring: user data, firewall rules and addresses come from `clustermesh.render` and the typed config.
Every address is the config's, never one Neutron picks, so a preview knows each node's and the
clustermesh-apiserver's address. The rules that admit other clusters are the Mesh's (`components.mesh`):
adding a cluster adds rules there and replaces nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

import pulumi
import pulumi_openstack as openstack
import pulumi_tls as tls

from clustermesh.model import CniMode, MeshConfig, Node, OctaviaProvider, OpenStackCluster
from clustermesh.render.cloud_init import user_data
from clustermesh.render.firewall import SELF, IngressRule, cluster_rules
from components.tokens import OPENSTACK_INFRASTRUCTURE

SERVER_GROUP_POLICY = "soft-anti-affinity"
"""Spread a pool's VMs over hypervisors where the cloud can, without refusing to boot where it cannot."""
APISERVER_LISTENER_PORT = 2379
LISTENER_IDLE_TIMEOUT_MS = 3_600_000
"""Cilium's etcd clients keep their watches open for hours (with a 15 s gRPC keepalive): an idle cut costs a
reconnect and a full resync, so the listener never cuts one that is alive."""
NOT_RECREATED_ON_CHANGE = ["userData", "blockDevices[0].uuid"]
"""Nova replaces a server whose user data or boot image changes. Neither may replace a running node by surprise:
new user data or a newer image under the same name reach new nodes, and an existing one with `--replace`."""


@dataclass(frozen=True, kw_only=True)
class OpenStackInfrastructureArgs:
    mesh: MeshConfig
    cluster: OpenStackCluster
    application_credential_secret: pulumi.Input[str] | None = None
    """The application credential's secret, when the cluster names one (else clouds.yaml holds the credential)."""
    ssh_private_key: pulumi.Input[str] | None = None
    """The configured private key (secret); the program generates a key pair when None."""


class OpenStackInfrastructure(pulumi.ComponentResource):
    provider: openstack.Provider
    """The explicit provider every OpenStack resource of this cluster goes through."""
    security_group_id: pulumi.Output[str]
    """The nodes' security group: the Mesh adds the rules that admit other clusters to it."""
    instances: dict[str, openstack.compute.Instance]
    """Each node's VM, by node name."""
    ssh_hosts: dict[str, pulumi.Output[str]]
    """Where the program's SSH sessions reach each node (its floating IP, or its fixed IP)."""
    ssh_private_key: pulumi.Output[str]
    """The key the nodes accept (secret)."""

    def __init__(
        self, name: str, args: OpenStackInfrastructureArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        cluster = args.cluster
        super().__init__(OPENSTACK_INFRASTRUCTURE, name, {"clusterName": cluster.name}, opts)
        cloud = cluster.openstack
        self.provider = openstack.Provider(
            f"{name}-openstack",
            cloud=cloud.cloud,
            region=cloud.region,
            auth_url=cloud.auth_url,
            application_credential_id=cloud.application_credential_id,
            application_credential_secret=args.application_credential_secret,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._cluster = cluster
        self._mesh = args.mesh
        on_cloud = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self._on_cloud = on_cloud
        # For what holds a name or an address only one resource may hold (a fixed IP, a VIP, a key pair's name):
        # Pulumi would otherwise create the replacement while the old one still holds it.
        self._replaced_first = pulumi.ResourceOptions.merge(
            on_cloud, pulumi.ResourceOptions(delete_before_replace=True)
        )
        self._invoke = pulumi.InvokeOptions(parent=self, provider=self.provider)

        network_id, subnet_id = self._network(name)
        # Floating IPs reach a created subnet only through its router, and new VMs download their installer
        # through it: both wait for the router's interface on the subnet.
        self._routed: list[pulumi.Resource] = [self._router_interface] if self._router_interface else []
        group = openstack.networking.SecGroup(
            f"{name}-nodes",
            name=f"clustermesh-{cluster.name}-nodes",
            description=f"Nodes of cluster {cluster.name}: its own traffic, its admins, and (by the mesh) its peers",
            opts=on_cloud,
        )
        self.security_group_id = group.id
        for rule in cluster_rules(args.mesh, cluster):
            self._rule(f"{name}-{rule.key}", rule)

        ports = {node.name: self._port(node, network_id, subnet_id) for node in cluster.nodes}
        self._reserve_apiserver_address(name, network_id, subnet_id)
        self.ssh_private_key, key_pair = self._key_pair(name, args.ssh_private_key)
        image = openstack.images.get_image_output(name=cluster.image, most_recent=True, opts=self._invoke)
        groups = {
            pool.name: openstack.compute.ServerGroup(
                f"{name}-{pool.name}", name=f"{cluster.name}-{pool.name}", policies=SERVER_GROUP_POLICY, opts=on_cloud
            )
            for pool in cluster.node_pools
        }
        cloud_config = user_data(cluster)
        self.instances = {}
        self.ssh_hosts = {}
        for node in cluster.nodes:
            port = ports[node.name]
            self.instances[node.name] = openstack.compute.Instance(
                node.name,
                name=node.name,
                flavor_name=node.pool.flavor or cluster.flavor,
                # The name as configured, not the key pair's output: replacing the key pair must not read as
                # replacing every VM in a preview (Nova reads the key once, at boot).
                key_pair=key_pair_name(cluster),
                availability_zone=node.pool.availability_zone,
                networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
                block_devices=[
                    openstack.compute.InstanceBlockDeviceArgs(
                        uuid=image.id,
                        source_type="image",
                        destination_type="volume",
                        volume_size=node.pool.boot_volume_gb,
                        boot_index=0,
                        delete_on_termination=True,
                    )
                ],
                scheduler_hints=[openstack.compute.InstanceSchedulerHintArgs(group=groups[node.pool.name].id)],
                user_data=cloud_config,
                metadata={"clustermesh-cluster": cluster.name, "clustermesh-role": node.pool.role.value},
                opts=pulumi.ResourceOptions.merge(
                    on_cloud,
                    pulumi.ResourceOptions(
                        ignore_changes=NOT_RECREATED_ON_CHANGE,
                        depends_on=[key_pair, *self._routed],
                        # The new VM takes the node's port, which the old one holds until it is gone.
                        delete_before_replace=True,
                    ),
                ),
            )
            self.ssh_hosts[node.name] = self._ssh_host(node, port)
        self._octavia(name, subnet_id)
        self.register_outputs(
            {
                "clusterName": cluster.name,
                "securityGroupId": self.security_group_id,
                "nodeAddresses": {node.name: str(node.address) for node in cluster.nodes},
            }
        )

    def _network(self, name: str) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """The network and subnet the nodes join: looked up when they exist, created (with a router) otherwise."""
        self._router_interface: openstack.networking.RouterInterface | None = None
        choice = self._cluster.network
        if choice.existing is not None:
            existing = choice.existing
            network = openstack.networking.get_network_output(name=existing.network, opts=self._invoke)
            # Filtering on the CIDR too: a subnet of that name with another range is not the one configured.
            subnet = openstack.networking.get_subnet_output(
                name=existing.subnet, network_id=network.id, cidr=str(existing.cidr), opts=self._invoke
            )
            return network.id, subnet.id
        create = choice.create
        assert create is not None  # validation requires one of the two
        created = openstack.networking.Network(
            f"{name}-network", name=f"clustermesh-{self._cluster.name}", admin_state_up=True, opts=self._on_cloud
        )
        subnet_resource = openstack.networking.Subnet(
            f"{name}-subnet",
            name=f"clustermesh-{self._cluster.name}",
            network_id=created.id,
            cidr=str(create.cidr),
            ip_version=create.cidr.version,
            gateway_ip=str(choice.gateway),
            enable_dhcp=True,
            # Node, MetalLB and VIP addresses lie outside this pool, so DHCP never hands one to another VM.
            allocation_pools=[
                openstack.networking.SubnetAllocationPoolArgs(
                    start=str(create.dhcp_pool.first), end=str(create.dhcp_pool.last)
                )
            ],
            dns_nameservers=[str(a) for a in create.dns_nameservers] or None,
            opts=self._on_cloud,
        )
        if create.external_network is not None:
            external = (
                openstack.networking.get_network_output(name=create.external_network, external=True, opts=self._invoke)
                if create.external_network is not None
                else None
            )
            router = openstack.networking.Router(
                f"{name}-router",
                name=f"clustermesh-{self._cluster.name}",
                external_network_id=external.id if external is not None else None,
                admin_state_up=True,
                opts=self._on_cloud,
            )
            self._router_interface = openstack.networking.RouterInterface(
                f"{name}-router-interface", router_id=router.id, subnet_id=subnet_resource.id, opts=self._on_cloud
            )
        return created.id, subnet_resource.id

    def _rule(self, resource_name: str, rule: IngressRule) -> openstack.networking.SecGroupRule:
        return ingress_rule(resource_name, rule, self.security_group_id, self._on_cloud)

    def _port(
        self, node: Node, network_id: pulumi.Input[str], subnet_id: pulumi.Input[str]
    ) -> openstack.networking.Port:
        # Port security stays on: the MetalLB addresses a node may answer ARP for are listed, nothing more.
        return openstack.networking.Port(
            f"{node.name}-port",
            name=node.name,
            network_id=network_id,
            fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet_id, ip_address=str(node.address))],
            security_group_ids=[self.security_group_id],
            port_security_enabled=True,
            allowed_address_pairs=[
                openstack.networking.PortAllowedAddressPairArgs(ip_address=pair)
                for pair in address_pairs(self._mesh, self._cluster)
            ]
            or None,
            admin_state_up=True,
            opts=self._replaced_first,
        )

    def _reserve_apiserver_address(
        self, name: str, network_id: pulumi.Input[str], subnet_id: pulumi.Input[str]
    ) -> None:
        """A port bound to nothing that holds the MetalLB address, so Neutron never gives it to anyone else."""
        metallb = self._cluster.apiserver_load_balancer.metallb
        if metallb is None:
            return  # Octavia reserves its VIP itself
        openstack.networking.Port(
            f"{name}-clustermesh-apiserver-address",
            name=f"{self._cluster.name}-clustermesh-apiserver",
            description="Reserves the clustermesh-apiserver's MetalLB address",
            network_id=network_id,
            fixed_ips=[
                openstack.networking.PortFixedIpArgs(subnet_id=subnet_id, ip_address=str(metallb.apiserver_address))
            ],
            security_group_ids=[self.security_group_id],
            port_security_enabled=True,
            admin_state_up=False,
            opts=self._replaced_first,
        )

    def _key_pair(
        self, name: str, configured: pulumi.Input[str] | None
    ) -> tuple[pulumi.Output[str], openstack.compute.Keypair]:
        ssh = self._cluster.ssh
        if configured is not None and ssh.public_key is not None:
            private_key = pulumi.Output.secret(configured)
            public_key: pulumi.Input[str] = ssh.public_key
        else:
            pki = tls.Provider(f"{name}-ssh-tls", opts=pulumi.ResourceOptions(parent=self))
            generated = tls.PrivateKey(
                f"{name}-ssh", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self, provider=pki)
            )
            private_key = pulumi.Output.secret(generated.private_key_openssh)
            public_key = generated.public_key_openssh
        key_pair = openstack.compute.Keypair(
            f"{name}-ssh", name=key_pair_name(self._cluster), public_key=public_key, opts=self._replaced_first
        )
        return private_key, key_pair

    def _ssh_host(self, node: Node, port: openstack.networking.Port) -> pulumi.Output[str]:
        floating = self._cluster.floating_ips
        if not floating.enabled:
            return pulumi.Output.from_input(str(node.address))
        after_router = pulumi.ResourceOptions.merge(self._on_cloud, pulumi.ResourceOptions(depends_on=self._routed))
        address: pulumi.Output[str]
        if node == self._cluster.first_server and floating.api_address is not None:
            # Allocated beforehand, so the API's address (in the kubeconfig and certificate) is known now.
            openstack.networking.FloatingIpAssociate(
                f"{node.name}-floating-ip",
                floating_ip=str(floating.api_address),
                port_id=port.id,
                fixed_ip=str(node.address),
                opts=after_router,
            )
            address = pulumi.Output.from_input(str(floating.api_address))
        else:
            address = openstack.networking.FloatingIp(
                f"{node.name}-floating-ip",
                pool=floating.pool,
                port_id=port.id,
                fixed_ip=str(node.address),
                description=f"SSH to node {node.name}",
                opts=after_router,
            ).address
        if self._cluster.ssh.bastion is not None:
            return pulumi.Output.from_input(str(node.address))  # through the bastion, on the node network
        return address

    def _octavia(self, name: str, subnet_id: pulumi.Input[str]) -> None:
        """A TCP load balancer on the configured VIP in front of every node's clustermesh-apiserver NodePort."""
        octavia = self._cluster.apiserver_load_balancer.octavia
        if octavia is None:
            return
        balancer = openstack.loadbalancer.LoadBalancer(
            f"{name}-clustermesh-apiserver",
            name=f"{self._cluster.name}-clustermesh-apiserver",
            vip_subnet_id=subnet_id,
            vip_address=str(octavia.vip_address),
            loadbalancer_provider=octavia.provider.value,
            opts=self._replaced_first,
        )
        listener = openstack.loadbalancer.Listener(
            f"{name}-clustermesh-apiserver",
            loadbalancer_id=balancer.id,
            protocol="TCP",
            protocol_port=APISERVER_LISTENER_PORT,
            timeout_client_data=LISTENER_IDLE_TIMEOUT_MS,
            timeout_member_data=LISTENER_IDLE_TIMEOUT_MS,
            opts=self._on_cloud,
        )
        # The OVN provider balances only by source IP and port.
        method = "SOURCE_IP_PORT" if octavia.provider is OctaviaProvider.OVN else "ROUND_ROBIN"
        pool = openstack.loadbalancer.Pool(
            f"{name}-clustermesh-apiserver",
            listener_id=listener.id,
            protocol="TCP",
            lb_method=method,
            opts=self._on_cloud,
        )
        openstack.loadbalancer.Monitor(
            f"{name}-clustermesh-apiserver",
            pool_id=pool.id,
            type="TCP",
            delay=10,
            timeout=5,
            max_retries=3,
            opts=self._on_cloud,
        )
        node_port = self._mesh.apiserver_exposure.node_port
        for node in self._cluster.nodes:
            # One member per node: adding a node adds a member and changes no other.
            openstack.loadbalancer.Member(
                f"{node.name}-clustermesh-apiserver",
                pool_id=pool.id,
                address=str(node.address),
                protocol_port=node_port,
                subnet_id=subnet_id,
                opts=pulumi.ResourceOptions.merge(
                    self._on_cloud, pulumi.ResourceOptions(depends_on=[self.instances[node.name]])
                ),
            )


def ingress_rule(
    resource_name: str, rule: IngressRule, security_group_id: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> openstack.networking.SecGroupRule:
    """One rendered rule in a security group; `SELF` admits the group's own members."""
    return openstack.networking.SecGroupRule(
        resource_name,
        direction="ingress",
        ethertype=rule.ethertype,
        protocol=rule.neutron_protocol,
        port_range_min=rule.port_min,
        port_range_max=rule.port_max,
        remote_ip_prefix=None if rule.remote == SELF else rule.remote,
        remote_group_id=security_group_id if rule.remote == SELF else None,
        security_group_id=security_group_id,
        description=rule.description,
        opts=opts,
    )


def key_pair_name(cluster: OpenStackCluster) -> str:
    return f"clustermesh-{cluster.name}"


def address_pairs(mesh: MeshConfig, cluster: OpenStackCluster) -> list[str]:
    """What a node port may answer for besides its own address: the MetalLB pool, as CIDRs, and the pinned
    clustermesh-apiserver address on its own (ML2/OVN makes the reserving port a virtual port, so the node that
    answers ARP gets the traffic, only when its exact address is some port's pair, not a CIDR holding it); with
    Calico, the mesh's pod ranges (`nativeRoutingCidrs`), since pods' addresses are on the wire."""
    pairs = [str(c) for c in pod_address_pairs(mesh, cluster)]
    metallb = cluster.apiserver_load_balancer.metallb
    if metallb is None:
        return pairs
    pinned = f"{metallb.apiserver_address}/{metallb.apiserver_address.max_prefixlen}"
    return [*(str(c) for c in metallb.cidrs), pinned, *pairs]


def pod_address_pairs(mesh: MeshConfig, cluster: OpenStackCluster) -> list[IPv4Network | IPv6Network]:
    """The pod ranges a Calico cluster's node ports carry: the mesh's, given once (`nativeRoutingCidrs`), so a new
    cluster inside them changes no port."""
    return list(mesh.native_routing_cidrs) if cluster.cni is CniMode.CALICO else []
