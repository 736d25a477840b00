"""Type tokens shared by the components, the planner and the policy pack."""

MESH_CLUSTER = "clustermesh:index:MeshCluster"
MESH = "clustermesh:index:Mesh"
STACK = "pulumi:pulumi:Stack"

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
KUBERNETES_SECRET = "kubernetes:core/v1:Secret"
KUBERNETES_CONFIGMAP = "kubernetes:core/v1:ConfigMap"
ADDRESS_PATCHES = ("kubernetes:apps/v1:DaemonSetPatch", "kubernetes:apps/v1:DeploymentPatch")
LOCALLY_SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert"

OPENSTACK_INFRASTRUCTURE = "clustermesh:index:OpenStackInfrastructure"
KUBERNETES_OVER_SSH = "clustermesh:index:KubernetesOverSsh"
OPENSTACK_SECURITY_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
OPENSTACK_PORT = "openstack:networking/port:Port"
OPENSTACK_NETWORK = "openstack:networking/network:Network"
OPENSTACK_INSTANCE = "openstack:compute/instance:Instance"
REMOTE_COMMAND = "command:remote:Command"
EKS_INFRASTRUCTURE = "clustermesh:index:EksInfrastructure"
