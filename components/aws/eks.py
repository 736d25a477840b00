"""EksInfrastructure: one EKS cluster from plain AWS resources (VPC, subnets, NAT, IAM, EKS, node groups, NLB).

Plain `pulumi_aws` resources rather than pulumi_eks or awsx, which are remote components: under the planner (and
in a policy pack) they show one node and none of what they create. Addresses come from the config, so a preview
knows the clustermesh-apiserver's NLB addresses. The rules and routes that admit other clusters are the Mesh's
(`components.aws.underlay`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from clustermesh.model import AvailabilityZone, EksCluster, MeshConfig
from clustermesh.model.eks import APISERVER_NLB_PORT
from clustermesh.render import eks as render
from components.tokens import EKS_INFRASTRUCTURE

NAT_EVERYWHERE = "0.0.0.0/0"
"""The private subnets' default route (to the NAT gateway): egress, which nodes need to pull images."""
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
AMI_TYPE = "AL2023_x86_64_STANDARD"
"""Amazon Linux 2023, which requires IMDSv2 (hop limit 2) by default."""


@dataclass(frozen=True, kw_only=True)
class EksInfrastructureArgs:
    mesh: MeshConfig
    """Mesh-wide settings: the NodePort the NLB forwards to, the other clusters' ranges the VPC CNI must not SNAT."""
    cluster: EksCluster
    """This cluster's validated configuration."""


class EksInfrastructure(pulumi.ComponentResource):
    provider: aws.Provider
    """The explicit provider of this cluster's region."""
    vpc_id: pulumi.Output[str]
    route_table_ids: list[pulumi.Output[str]]
    """Every route table of the VPC (the public one, and each zone's private one): the underlay routes the mesh
    through each."""
    private_subnet_ids: list[pulumi.Output[str]]
    node_security_group_id: pulumi.Output[str]
    """EKS's cluster security group, which managed node groups without a launch template use."""
    kubeconfig: pulumi.Output[str]
    """`aws eks get-token` credentials for the cluster's API (no token in state)."""
    node_groups: list[aws.eks.NodeGroup]

    def __init__(self, name: str, args: EksInfrastructureArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        cluster = args.cluster
        super().__init__(EKS_INFRASTRUCTURE, name, {"clusterName": cluster.name, "region": cluster.region}, opts)
        self._cluster = cluster
        self.provider = aws.Provider(f"{name}-aws", region=cluster.region, opts=pulumi.ResourceOptions(parent=self))
        self._on_aws = pulumi.ResourceOptions(parent=self, provider=self.provider)
        tags = {"clustermesh/cluster": cluster.name}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(cluster.vpc_cidr),
            enable_dns_hostnames=True,  # EKS private endpoints resolve only with DNS hostnames on
            enable_dns_support=True,
            tags={**tags, "Name": f"clustermesh-{cluster.name}"},
            opts=self._on_aws,
        )
        self.vpc_id = vpc.id
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags, opts=self._on_aws)
        public_table = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, tags=tags, opts=self._on_aws)
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_table.id,
            destination_cidr_block=NAT_EVERYWHERE,
            gateway_id=gateway.id,
            opts=self._on_aws,
        )
        self.route_table_ids = [public_table.id]
        self.private_subnet_ids = []
        self._zones: list[tuple[AvailabilityZone, aws.ec2.Subnet]] = []
        self._egress: list[pulumi.Resource] = []
        """Each private subnet's default route and its association: nodes pull images through them."""
        for zone in cluster.availability_zones:
            self._zone(name, zone, vpc, public_table, tags=tags, gateway=gateway)

        cluster_role = self._role(f"{name}-cluster", "eks.amazonaws.com", render.CLUSTER_POLICIES)
        node_role = self._role(f"{name}-node", "ec2.amazonaws.com", render.NODE_POLICIES)
        key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Encrypts the Kubernetes Secrets of EKS cluster {cluster.name}",
            enable_key_rotation=True,
            opts=self._on_aws,
        )
        eks_cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=cluster.name,
            role_arn=cluster_role[0].arn,
            version=cluster.kubernetes_version,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=self.private_subnet_ids,
                endpoint_private_access=True,
                # Public only towards the networks named in the config; EKS's own default is the world.
                endpoint_public_access=bool(cluster.public_access_cidrs),
                public_access_cidrs=[str(c) for c in cluster.public_access_cidrs] or None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn), resources=["secrets"]
            ),
            kubernetes_network_config=aws.eks.ClusterKubernetesNetworkConfigArgs(
                service_ipv4_cidr=str(cluster.service_cidr)
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
            ),
            tags=tags,
            opts=pulumi.ResourceOptions.merge(self._on_aws, pulumi.ResourceOptions(depends_on=cluster_role[1])),
        )
        self.node_security_group_id = eks_cluster.vpc_config.cluster_security_group_id
        for i, cidr in enumerate(cluster.api_access_cidrs):
            # The private endpoint answers inside the VPC only to what the cluster security group admits.
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-api-{i}",
                security_group_id=self.node_security_group_id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4=str(cidr),
                description="Kubernetes API (private endpoint) from where `pulumi up` runs",
                opts=self._on_aws,
            )
        for i, principal in enumerate(cluster.admin_principals):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{i}", cluster_name=eks_cluster.name, principal_arn=principal, opts=self._on_aws
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{i}",
                cluster_name=eks_cluster.name,
                principal_arn=principal,
                policy_arn=CLUSTER_ADMIN_POLICY,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions.merge(self._on_aws, pulumi.ResourceOptions(depends_on=[entry])),
            )
        # Kept for chaining, with no SNAT towards the other clusters: pods keep their addresses across the mesh.
        vpc_cni = aws.eks.Addon(
            f"{name}-vpc-cni",
            cluster_name=eks_cluster.name,
            addon_name="vpc-cni",
            configuration_values=render.vpc_cni_configuration(render.snat_exclusions(args.mesh, cluster)),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=self._on_aws,
        )
        self.node_groups = [
            aws.eks.NodeGroup(
                f"{name}-{group.name}",
                cluster_name=eks_cluster.name,
                node_group_name=group.name,
                node_role_arn=node_role[0].arn,
                subnet_ids=self.private_subnet_ids,
                instance_types=list(group.instance_types),
                ami_type=AMI_TYPE,
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    desired_size=group.desired_size, min_size=group.min_size, max_size=group.max_size
                ),
                taints=[aws.eks.NodeGroupTaintArgs(**render.AGENT_NOT_READY_TAINT)],
                tags=tags,
                opts=pulumi.ResourceOptions.merge(
                    self._on_aws,
                    pulumi.ResourceOptions(
                        # Nodes start with the VPC CNI's final configuration, and with their way out.
                        depends_on=[*node_role[1], vpc_cni, *self._egress],
                        # The autoscaler owns the desired size once the group runs.
                        ignore_changes=["scalingConfig.desiredSize"],
                    ),
                ),
            )
            for group in cluster.node_groups
        ]
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(eks_cluster.endpoint, eks_cluster.certificate_authority.data).apply(
                lambda v: render.kubeconfig(cluster, v[0], v[1])
            )
        )
        self._apiserver_load_balancer(name, vpc, args.mesh.apiserver_exposure.node_port)
        self.register_outputs({"clusterName": cluster.name, "vpcId": self.vpc_id, "kubeconfig": self.kubeconfig})

    def _zone(
        self,
        name: str,
        zone: AvailabilityZone,
        vpc: aws.ec2.Vpc,
        public_table: aws.ec2.RouteTable,
        *,
        tags: dict[str, str],
        gateway: aws.ec2.InternetGateway,
    ) -> None:
        """A zone's public subnet (with its NAT gateway) and private subnet (nodes, pods, the NLB's address)."""
        here = f"{name}-{zone.name}"
        public = aws.ec2.Subnet(
            f"{here}-public",
            vpc_id=vpc.id,
            cidr_block=str(zone.public_subnet),
            availability_zone=zone.name,
            tags={**tags, **render.LOAD_BALANCER_ROLE_TAGS["public"]},
            opts=self._on_aws,
        )
        aws.ec2.RouteTableAssociation(
            f"{here}-public", subnet_id=public.id, route_table_id=public_table.id, opts=self._on_aws
        )
        # An Elastic IP and a NAT gateway need the internet gateway attached first (and detach after them).
        after_gateway = pulumi.ResourceOptions.merge(self._on_aws, pulumi.ResourceOptions(depends_on=[gateway]))
        address = aws.ec2.Eip(f"{here}-nat", domain="vpc", tags=tags, opts=after_gateway)
        nat = aws.ec2.NatGateway(
            f"{here}-nat", allocation_id=address.id, subnet_id=public.id, tags=tags, opts=after_gateway
        )
        private = aws.ec2.Subnet(
            f"{here}-private",
            vpc_id=vpc.id,
            cidr_block=str(zone.private_subnet),
            availability_zone=zone.name,
            tags={**tags, **render.LOAD_BALANCER_ROLE_TAGS["private"]},
            opts=self._on_aws,
        )
        table = aws.ec2.RouteTable(f"{here}-private", vpc_id=vpc.id, tags=tags, opts=self._on_aws)
        egress = aws.ec2.Route(
            f"{here}-private-default",
            route_table_id=table.id,
            destination_cidr_block=NAT_EVERYWHERE,
            nat_gateway_id=nat.id,
            opts=self._on_aws,
        )
        association = aws.ec2.RouteTableAssociation(
            f"{here}-private", subnet_id=private.id, route_table_id=table.id, opts=self._on_aws
        )
        self._egress += [egress, association]
        self.private_subnet_ids.append(private.id)
        self.route_table_ids.append(table.id)
        self._zones.append((zone, private))

    def _role(
        self, name: str, service: str, policies: tuple[str, ...]
    ) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        role = aws.iam.Role(name, assume_role_policy=render.trust_policy(service), opts=self._on_aws)
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy.rsplit('/', 1)[-1]}", role=role.name, policy_arn=policy, opts=self._on_aws
            )
            for policy in policies
        ]
        return role, attachments

    def _apiserver_load_balancer(self, name: str, vpc: aws.ec2.Vpc, node_port: int) -> None:
        """An internal NLB on the configured private addresses, 2379 to every node's clustermesh NodePort."""
        zones = [(zone, subnet) for zone, subnet in self._zones if zone.apiserver_address is not None]
        if not zones:
            return
        balancer = aws.lb.LoadBalancer(
            f"{name}-clustermesh",
            # AWS allows 32 characters and Pulumi's auto-name adds 7 to the resource name: a short one of our own.
            name=f"clustermesh-{self._cluster.id}",
            load_balancer_type="network",
            internal=True,
            subnet_mappings=[
                aws.lb.LoadBalancerSubnetMappingArgs(
                    subnet_id=subnet.id, private_ipv4_address=str(zone.apiserver_address)
                )
                for zone, subnet in zones
            ],
            enable_cross_zone_load_balancing=True,
            opts=pulumi.ResourceOptions.merge(self._on_aws, pulumi.ResourceOptions(delete_before_replace=True)),
        )
        targets = aws.lb.TargetGroup(
            f"{name}-clustermesh",
            name=f"clustermesh-{self._cluster.id}",
            port=node_port,
            protocol="TCP",
            target_type="instance",
            vpc_id=vpc.id,
            health_check=aws.lb.TargetGroupHealthCheckArgs(protocol="TCP", port="traffic-port"),
            opts=self._on_aws,
        )
        aws.lb.Listener(
            f"{name}-clustermesh",
            load_balancer_arn=balancer.arn,
            port=APISERVER_NLB_PORT,
            protocol="TCP",
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=targets.arn)],
            opts=self._on_aws,
        )
        for config, group in zip(self._cluster.node_groups, self.node_groups, strict=True):
            aws.autoscaling.Attachment(
                f"{name}-{config.name}-clustermesh",
                autoscaling_group_name=group.resources.apply(_autoscaling_group),
                lb_target_group_arn=targets.arn,
                opts=self._on_aws,
            )
        # The NLB keeps clients' addresses: its health checks come from its own addresses in the VPC.
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-clustermesh-health",
            security_group_id=self.node_security_group_id,
            ip_protocol="tcp",
            from_port=node_port,
            to_port=node_port,
            cidr_ipv4=str(self._cluster.vpc_cidr),
            description="clustermesh-apiserver NodePort from the NLB's health checks",
            opts=self._on_aws,
        )


def _autoscaling_group(resources: Sequence[aws.eks.outputs.NodeGroupResource]) -> str:
    """The Auto Scaling group EKS made for a managed node group: the NLB's targets register through it."""
    groups = resources[0].autoscaling_groups or []
    return str(groups[0].name)
