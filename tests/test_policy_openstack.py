"""The policy pack's OpenStack and remote-command rules: each called directly on a compliant and a violating
resource, values unknown in a preview, and the address-pairs rule as the planner shows it a captured plan.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from pulumi.runtime import rpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from clustermesh.planner.graph import UNKNOWN, Node, Secret
from clustermesh.planner.policy_check import check
from clustermesh.planner.runner import CapturedPlan
from policy.rules import POLICIES
from tests.policy_run import resource_rule, stack_rule

RULES = {p.name: p for p in POLICIES}
STACK_PREFIX = "urn:pulumi:dev::clustermesh::"
SEC_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
PORT = "openstack:networking/port:Port"
NETWORK = "openstack:networking/network:Network"
INSTANCE = "openstack:compute/instance:Instance"
REMOTE_COMMAND = "command:remote:Command"
MESH_CLUSTER = "clustermesh:index:MeshCluster"
NODE_GROUP = "clustermesh:index:NodeGroup"
"""Any component between a cluster and its machines; the rules look through it to the MeshCluster."""
SECURITY_GROUP_ID = "5f3e1c2a-8b4d-4e6f-9a01-23456789abcd"
NETWORK_ID = "0b9d7c6e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
SUBNET_ID = "7d6c5b4a-3f2e-4d1c-9b8a-7f6e5d4c3b2a"
METALLB_RANGE = ("192.168.10.240", "192.168.10.250")
"""The MetalLB L2 pool of cluster a, as a range; its MeshCluster registers it summarized to CIDRs."""
FIRST, LAST = (ipaddress.IPv4Address(a) for a in METALLB_RANGE)
POOLS = [str(n) for n in ipaddress.summarize_address_range(FIRST, LAST)]  # .240/29, .248/31, .250/32
CA_HASH = "3f" * 32
K3S_TOKEN = f"K10{CA_HASH}::server:6f1e0d2c9b8a7f6e5d4c3b2a"
RSA_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----\n"
KUBECONFIG = (
    "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://192.168.10.11:6443\n  name: a\n"
    "users:\n- name: admin\n  user:\n    client-key-data: LS0tLS1CRUdJTi...\n"
)


# --- resources as the engine shows them to a policy ------------------------------------------------------------


def _urn(type_: str, name: str, parent: PolicyResource | None = None) -> str:
    qualified = f"{parent.urn.removeprefix(STACK_PREFIX).split('::')[0]}${type_}" if parent is not None else type_
    return f"{STACK_PREFIX}{qualified}::{name}"


def _provider(package: str, *, default: bool = False) -> PolicyProviderResource:
    name = "default_5_5_3" if default else f"a-{package}"
    return PolicyProviderResource(f"pulumi:providers:{package}", {}, _urn(f"pulumi:providers:{package}", name), name)


def _resource(
    type_: str,
    name: str,
    props: dict[str, Any],
    *,
    parent: PolicyResource | None = None,
    provider: PolicyProviderResource | None = None,
    link_parent: bool = True,
) -> PolicyResource:
    """A resource linked to its parent as the engine links a stack policy's resources (`link_parent=False`: only
    the parent's URN in the options)."""
    opts = PolicyResourceOptions(
        False, [], False, [], PolicyCustomTimeouts(0, 0, 0), [], parent.urn if parent is not None else None
    )
    resource = PolicyResource(
        type_, unknown_checking_proxy(props), _urn(type_, name, parent), name, opts, provider, None, [], {}
    )
    resource.parent = parent if link_parent else None
    return resource


def _mesh_cluster(name: str, pools: Any = None) -> PolicyResource:
    """The MeshCluster component's registered outputs; `pools` None: no MetalLB, so no `loadBalancerPools`."""
    props: dict[str, Any] = {"clusterName": name, "clusterId": 1, "cni": "cilium", "podCidrs": ["10.1.0.0/16"]}
    if pools is not None:
        props["loadBalancerPools"] = pools
    return _resource(MESH_CLUSTER, name, props)


def _port(name: str, pairs: Any, parent: PolicyResource | None, **props: Any) -> PolicyResource:
    merged = {
        "networkId": NETWORK_ID,
        "adminStateUp": True,
        "fixedIps": [{"subnetId": SUBNET_ID, "ipAddress": "192.168.10.11"}],
        "securityGroupIds": [SECURITY_GROUP_ID],
        **({"allowedAddressPairs": pairs} if pairs is not None else {}),
        **props,
    }
    return _resource(PORT, name, merged, parent=parent, provider=_provider("openstack"))


def _pairs(*addresses: str) -> list[dict[str, str]]:
    return [{"ipAddress": address} for address in addresses]


def _ingress(**props: Any) -> PolicyResource:
    merged = {"direction": "ingress", "ethertype": "IPv4", "securityGroupId": SECURITY_GROUP_ID, **props}
    return _resource(SEC_GROUP_RULE, "a-rule", merged, provider=_provider("openstack"))


def _instance(user_data: Any) -> PolicyResource:
    props = {
        "name": "a-server-0",
        "flavorName": "m1.large",
        "imageName": "ubuntu-24.04",
        "keyPair": "clustermesh",
        "networks": [{"port": "c4d5e6f7-0000-4a1b-8c2d-3e4f5a6b7c8d"}],
        "userData": user_data,
    }
    return _resource(INSTANCE, "a-server-0", props, provider=_provider("openstack"))


def _command(**props: Any) -> PolicyResource:
    connection = {"host": "192.168.10.11", "user": "ubuntu", "privateKey": RSA_KEY}  # a secret input of its own
    return _resource(
        REMOTE_COMMAND, "a-server-0-join", {"connection": connection, **props}, provider=_provider("command")
    )


def test_openstack_rules_are_registered_and_mandatory() -> None:
    kinds = {
        "openstack-no-world-ingress": ResourceValidationPolicy,
        "openstack-port-security": ResourceValidationPolicy,
        "openstack-address-pairs-within-pools": StackValidationPolicy,
        "openstack-no-secret-user-data": ResourceValidationPolicy,
        "remote-command-secrets": ResourceValidationPolicy,
    }
    for name, kind in kinds.items():
        assert isinstance(RULES[name], kind), name
        assert RULES[name].enforcement_level is EnforcementLevel.MANDATORY, name


# --- openstack-no-world-ingress ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (
            {"protocol": "tcp", "portRangeMin": 6443, "portRangeMax": 6443, "remoteIpPrefix": "0.0.0.0/0"},
            "ingress rule admits the whole internet (remoteIpPrefix 0.0.0.0/0) to tcp port 6443",
        ),
        (
            {
                "ethertype": "IPv6",
                "protocol": "udp",
                "portRangeMin": 30000,
                "portRangeMax": 32767,
                "remoteIpPrefix": "::/0",
            },
            "ingress rule admits the whole internet (remoteIpPrefix ::/0) to udp ports 30000-32767",
        ),
        (  # host bits do not narrow a /0
            {"protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22, "remoteIpPrefix": "203.0.113.7/0"},
            "ingress rule admits the whole internet (remoteIpPrefix 203.0.113.7/0) to tcp port 22",
        ),
        (  # the provider's 0 is an unset port bound
            {"protocol": "tcp", "portRangeMin": 0, "portRangeMax": 0, "remoteIpPrefix": "0.0.0.0/0"},
            "ingress rule admits the whole internet (remoteIpPrefix 0.0.0.0/0) to tcp, every port",
        ),
        (
            {"protocol": "icmp", "portRangeMin": 8, "remoteIpPrefix": "0.0.0.0/0"},
            "ingress rule admits the whole internet (remoteIpPrefix 0.0.0.0/0) to icmp type 8",
        ),
        (
            {"protocol": "tcp", "portRangeMin": 2379, "portRangeMax": 2379},
            "ingress rule names no remoteIpPrefix, remoteGroupId or remoteAddressGroupId, so Neutron admits every "
            "IPv4 address to tcp port 2379",
        ),
        (  # the range is not known yet, but the world is let in whatever it turns out to be
            {
                "protocol": "tcp",
                "portRangeMin": rpc.UNKNOWN,
                "portRangeMax": rpc.UNKNOWN,
                "remoteIpPrefix": "0.0.0.0/0",
            },
            "ingress rule admits the whole internet (remoteIpPrefix 0.0.0.0/0) to tcp, ports not known yet",
        ),
        (  # empty strings, as the provider's state shows unset remotes
            {"ethertype": "IPv6", "remoteIpPrefix": "", "remoteGroupId": "", "remoteAddressGroupId": ""},
            "ingress rule names no remoteIpPrefix, remoteGroupId or remoteAddressGroupId, so Neutron admits every "
            "IPv6 address to every protocol and port",
        ),
    ],
)
def test_world_ingress_is_refused(props: dict[str, Any], expected: str) -> None:
    assert resource_rule("openstack-no-world-ingress", _ingress(**props)) == [expected]


@pytest.mark.parametrize(
    "props",
    [
        {"protocol": "tcp", "portRangeMin": 6443, "portRangeMax": 6443, "remoteIpPrefix": "192.168.10.0/24"},
        {"protocol": "udp", "portRangeMin": 8472, "portRangeMax": 8472, "remoteGroupId": SECURITY_GROUP_ID},
        {"protocol": "tcp", "portRangeMin": 4240, "portRangeMax": 4240, "remoteAddressGroupId": NETWORK_ID},
        {"ethertype": "IPv6", "protocol": "tcp", "remoteIpPrefix": "fd00:10::/64"},
        {"direction": "egress", "remoteIpPrefix": "0.0.0.0/0"},  # egress is out of this rule's scope
        {"direction": "egress"},
    ],
)
def test_ingress_from_a_range_or_a_group_passes(props: dict[str, Any]) -> None:
    assert resource_rule("openstack-no-world-ingress", _ingress(**props)) == []


def test_world_ingress_says_nothing_of_what_a_preview_cannot_know() -> None:
    """A group made in the same update has no id yet; nor has a prefix computed from another resource."""
    rule = "openstack-no-world-ingress"
    assert resource_rule(rule, _ingress(protocol="tcp", portRangeMin=22, remoteGroupId=rpc.UNKNOWN)) == []
    assert resource_rule(rule, _ingress(protocol="tcp", portRangeMin=22, remoteIpPrefix=rpc.UNKNOWN)) == []
    assert resource_rule(rule, _ingress(direction=rpc.UNKNOWN, remoteIpPrefix="0.0.0.0/0")) == []


# --- openstack-port-security ----------------------------------------------------------------------------------


def test_port_security_off_is_refused() -> None:
    (found,) = resource_rule("openstack-port-security", _port("a-server-0", None, None, portSecurityEnabled=False))
    assert found.startswith("port security is off: Neutron neither filters the port's traffic")
    network = _resource(NETWORK, "a-net", {"name": "a-net", "portSecurityEnabled": False})
    (found,) = resource_rule("openstack-port-security", network)
    assert found.startswith("port security is off on the network")


@pytest.mark.parametrize("setting", [{"portSecurityEnabled": True}, {}, {"portSecurityEnabled": rpc.UNKNOWN}])
def test_port_security_on_or_by_default_passes(setting: dict[str, Any]) -> None:
    port = _port("a-server-0", _pairs("192.168.10.244"), None, **setting)
    assert resource_rule("openstack-port-security", port) == []
    assert resource_rule("openstack-port-security", _resource(NETWORK, "a-net", {"name": "a-net", **setting})) == []


# --- openstack-address-pairs-within-pools ------------------------------------------------------------------------

PAIRS = "openstack-address-pairs-within-pools"


def test_address_pairs_within_the_owning_clusters_pools_pass() -> None:
    cluster = _mesh_cluster("a", POOLS)
    group = _resource(NODE_GROUP, "a-servers", {}, parent=cluster)
    inside = [
        _port("a-server-0", _pairs("192.168.10.244"), cluster),
        _port("a-server-1", _pairs("192.168.10.240/29", "192.168.10.248/31"), group),  # under another component
        _port("a-server-2", _pairs("192.168.10.240/29", "192.168.10.250/32"), cluster),
        _port("a-server-3", [], cluster),
        _port("a-server-4", None, None),  # no pairs, no cluster: nothing to check
    ]
    assert stack_rule(PAIRS, [cluster, group, *inside]) == []


def test_address_pairs_union_of_pools_counts() -> None:
    """A pair may span pools that are adjacent: it is inside as long as every address is in one of them."""
    cluster = _mesh_cluster("a", POOLS)
    spanning = "192.168.10.248/30"  # .248-.251: .251 is past the range's end
    assert stack_rule(PAIRS, [cluster, _port("a-server-0", _pairs(spanning), cluster)]) == [
        f"port a-server-0 allows address pair {spanning}, outside the load-balancer pools and pod ranges of cluster a "
        f"({', '.join(POOLS)})"
    ]
    exact = "192.168.10.248/31"
    assert stack_rule(PAIRS, [cluster, _port("a-server-0", _pairs(exact), cluster)]) == []


@pytest.mark.parametrize("wide", ["10.0.0.0/8", "192.168.10.0/24", "192.168.10.251", "fd00::1"])
def test_address_pairs_wider_than_or_outside_the_pools_are_refused(wide: str) -> None:
    cluster = _mesh_cluster("a", POOLS)
    port = _port("a-server-0", _pairs("192.168.10.244", wide), cluster)
    assert stack_rule(PAIRS, [cluster, port]) == [
        f"port a-server-0 allows address pair {wide}, outside the load-balancer pools and pod ranges of cluster a ({', '.join(POOLS)})"
    ]


@pytest.mark.parametrize("public", ["0.0.0.0/0", "8.8.8.0/24", "100.0.0.0/6"])
def test_address_pairs_holding_public_addresses_are_refused_whatever_the_pools(public: str) -> None:
    cluster = _mesh_cluster("a", [*POOLS, public])
    port = _port("a-server-0", _pairs(public), cluster)
    assert stack_rule(PAIRS, [cluster, port]) == [
        f"port a-server-0 allows address pair {public}, which holds public addresses: the VM could send as hosts of "
        "the Internet"
    ]


def test_address_pairs_without_a_cluster_or_its_pools_are_refused() -> None:
    orphan = _port("bastion", _pairs("192.168.10.244"), None)
    assert stack_rule(PAIRS, [_mesh_cluster("a", POOLS), orphan]) == [
        "port bastion allows address pair 192.168.10.244 but belongs to no MeshCluster: only a cluster's "
        "load-balancer pools may pass"
    ]
    no_pools: list[list[str] | None] = [None, []]  # no MetalLB: the component registers no pools, or an empty list
    for pools in no_pools:
        bare = _mesh_cluster("b", pools)
        port = _port("b-server-0", _pairs("192.168.20.240"), bare)
        assert stack_rule(PAIRS, [bare, port]) == [
            "port b-server-0 allows address pair 192.168.20.240 but cluster b has no load-balancer address pool"
        ]
    cluster = _mesh_cluster("a", POOLS)
    garbled = _port("a-server-0", _pairs("192.168.10.300"), cluster)
    assert stack_rule(PAIRS, [cluster, garbled]) == [
        "port a-server-0 allows address pair 192.168.10.300, not an address or CIDR"
    ]


def test_address_pairs_are_held_against_the_nearest_cluster_only() -> None:
    """Cluster b's pool does not vouch for a port of cluster a, and the nearest MeshCluster ancestor owns a port."""
    a, b = _mesh_cluster("a", POOLS), _mesh_cluster("b", ["192.168.20.240/28"])
    port = _port("a-server-0", _pairs("192.168.20.241"), a)
    assert stack_rule(PAIRS, [a, b, port]) == [
        f"port a-server-0 allows address pair 192.168.20.241, outside the load-balancer pools and pod ranges of cluster a "
        f"({', '.join(POOLS)})"
    ]
    nested = _resource(
        MESH_CLUSTER, "b-inner", {"clusterName": "b", "loadBalancerPools": ["192.168.20.240/28"]}, parent=a
    )
    assert stack_rule(PAIRS, [a, nested, _port("b-server-0", _pairs("192.168.20.241"), nested)]) == []


def test_address_pairs_find_the_cluster_by_parent_urn_alone() -> None:
    cluster = _mesh_cluster("a", POOLS)
    group = _resource(NODE_GROUP, "a-servers", {}, parent=cluster, link_parent=False)
    port = _resource(PORT, "a-server-0", {"allowedAddressPairs": _pairs("10.0.0.0/8")}, parent=group, link_parent=False)
    assert port.urn == f"{STACK_PREFIX}{MESH_CLUSTER}${NODE_GROUP}${PORT}::a-server-0"
    assert stack_rule(PAIRS, [cluster, group, port]) == [
        f"port a-server-0 allows address pair 10.0.0.0/8, outside the load-balancer pools and pod ranges of cluster a "
        f"({', '.join(POOLS)})"
    ]


def test_address_pairs_say_nothing_of_what_a_preview_cannot_know() -> None:
    cluster = _mesh_cluster("a", POOLS)
    pending = _mesh_cluster("b", rpc.UNKNOWN)
    resources = [
        cluster,
        pending,
        _port("a-server-0", rpc.UNKNOWN, cluster),
        _port("a-server-1", [{"ipAddress": rpc.UNKNOWN}, {"ipAddress": "192.168.10.244"}], cluster),
        _port("b-server-0", _pairs("10.0.0.0/8"), pending),
    ]
    assert stack_rule(PAIRS, resources) == []


def _node(urn: str, type_: str, parent: str, inputs: dict[str, Any], **kwargs: Any) -> Node:
    return Node(urn, type_, urn.rsplit("::", 1)[1], parent, kwargs.pop("provider", ""), False, [], inputs, **kwargs)


def test_the_planner_holds_pairs_against_the_pools_the_cluster_registered() -> None:
    """A component's registered outputs replace its inputs in the state; the rule reads what the planner shows."""
    cluster_urn = f"{STACK_PREFIX}{MESH_CLUSTER}::a"
    provider_urn = f"{STACK_PREFIX}pulumi:providers:openstack::a-openstack"
    port_urn = f"{STACK_PREFIX}{MESH_CLUSTER}${PORT}::a-server-0"
    identity = {"clusterName": "a", "clusterId": 1, "cni": "cilium", "podCidrs": ["10.1.0.0/16"]}
    registered = ["192.168.30.240/28"]  # differs from the inputs: only the outputs count

    def plan(outputs_pools: Any, pair: str) -> CapturedPlan:
        component = _node(
            cluster_urn,
            MESH_CLUSTER,
            "",
            {**identity, "loadBalancerPools": POOLS},
            outputs={**identity, "loadBalancerPools": outputs_pools, "kubeconfig": Secret(KUBECONFIG)},
        )
        provider = Node(provider_urn, "pulumi:providers:openstack", "a-openstack", "", "", True, [], {})
        port = Node(
            port_urn,
            PORT,
            "a-server-0",
            cluster_urn,
            provider_urn,
            True,
            [],
            {"networkId": NETWORK_ID, "allowedAddressPairs": [{"ipAddress": pair}]},
        )
        return CapturedPlan("clustermesh", "dev", [component, provider, port], {})

    def found(captured: CapturedPlan) -> list[tuple[str | None, str]]:
        return [(v.urn, v.message) for v in check(captured) if v.policy == PAIRS]

    assert found(plan(registered, "192.168.30.241")) == []
    assert found(plan(registered, "192.168.10.244")) == [
        (
            port_urn,
            f"port a-server-0 allows address pair 192.168.10.244, outside the load-balancer pools and pod ranges of cluster a "
            f"({registered[0]})",
        )
    ]
    assert found(plan(UNKNOWN, "10.0.0.0/8")) == []  # a preview before the pools are known


# --- openstack-no-secret-user-data --------------------------------------------------------------------------------


def _cloud_config(path: str, content: str, *runcmd: str) -> str:
    indented = "".join(f"      {line}\n" for line in content.splitlines())
    commands = "".join(f"  - {command}\n" for command in runcmd)
    return (
        f"#cloud-config\nwrite_files:\n  - path: {path}\n    permissions: '0600'\n    content: |\n{indented}"
        f"runcmd:\n{commands}"
    )


@pytest.mark.parametrize(
    ("user_data", "kinds"),
    [
        (_cloud_config("/etc/ssl/private/node.key", RSA_KEY), "a private key"),
        (_cloud_config("/root/.kube/config", KUBECONFIG), "a kubeconfig"),
        (_cloud_config("/etc/rancher/k3s/config.yaml", f"token: {K3S_TOKEN}\nnode-ip: 192.168.10.11"), "a join token"),
        (
            _cloud_config("/etc/rancher/rke2/config.yaml", "server: https://192.168.10.10:9345\ntoken: s3cr3t"),
            "a join token",
        ),
        (_cloud_config("/etc/rancher/k3s/config.yaml", "agent-token: 0123456789abcdef"), "a join token"),
        (_cloud_config("/tmp/x", "x", "curl -sfL https://get.k3s.io | K3S_TOKEN=s3cr3t sh -s - agent"), "a join token"),
        (_cloud_config("/tmp/x", "x", "curl -sfL https://get.rke2.io | RKE2_TOKEN='s3cr3t' sh -"), "a join token"),
        (f"#!/bin/sh\nk3s agent --server https://192.168.10.10:6443 --token {K3S_TOKEN}\n", "a join token"),
        ("#!/bin/sh\nkubeadm join 192.168.10.10:6443 --token abcdef.0123456789abcdef\n", "a join token"),
        (
            _cloud_config("/etc/kubernetes/kubeadm.yaml", "bootstrapTokens:\n- token: abcdef.0123456789abcdef"),
            "a join token",
        ),
        (
            _cloud_config("/root/.kube/config", KUBECONFIG + "    token: abc\n") + RSA_KEY,
            "a private key and a kubeconfig and a join token",
        ),
    ],
)
def test_secret_user_data_is_refused(user_data: str, kinds: str) -> None:
    assert resource_rule("openstack-no-secret-user-data", _instance(user_data)) == [
        f"user data holds {kinds}: Nova keeps user data unencrypted and serves it to the instance's metadata service "
        "and to anyone who may show the server; the provider does not treat it as secret"
    ]


@pytest.mark.parametrize(
    "user_data",
    [
        "#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI clustermesh\n"
        "package_update: true\npackages: [curl]\n",
        _cloud_config("/etc/rancher/k3s/config.yaml", "token-file: /run/k3s-token\nnode-ip: 192.168.10.11"),
        _cloud_config("/etc/rancher/k3s/config.yaml", 'token: ""'),
        _cloud_config("/tmp/x", "x", 'curl -sfL https://get.k3s.io | K3S_TOKEN="$(cat /run/k3s-token)" sh -'),
        "#!/bin/sh\nkubeadm join 192.168.10.10:6443 --token-file /run/token --discovery-token-ca-cert-hash sha256:00\n",
        _cloud_config("/etc/kubernetes/kubeadm.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration"),
        _cloud_config("/etc/ssl/certs/ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----"),
    ],
)
def test_user_data_without_secrets_passes(user_data: str) -> None:
    assert resource_rule("openstack-no-secret-user-data", _instance(user_data)) == []


def test_user_data_unknown_or_absent_says_nothing() -> None:
    assert resource_rule("openstack-no-secret-user-data", _instance(rpc.UNKNOWN)) == []
    no_user_data = _resource(INSTANCE, "a-server-0", {"name": "a-server-0", "flavorName": "m1.large"})
    assert resource_rule("openstack-no-secret-user-data", no_user_data) == []


# --- remote-command-secrets ---------------------------------------------------------------------------------------

JOIN = "sudo install -m 600 /dev/stdin /etc/rancher/k3s/token && curl -sfL https://get.k3s.io | sh -s - agent"
STDIN_LOGGED = (
    "the command takes input on stdin (where secrets go) but logs its output (logging: {}); an echo or an error puts "
    'the input in the update\'s log; set logging to "none"'
)


@pytest.mark.parametrize(
    ("logging", "shown"),
    [
        (None, "stdoutAndStderr, the default"),
        ("stdoutAndStderr", "stdoutAndStderr"),
        ("stdout", "stdout"),
        ("stderr", "stderr"),
    ],
)
def test_a_command_taking_stdin_must_log_nothing(logging: str | None, shown: str) -> None:
    props = {"create": JOIN, "stdin": K3S_TOKEN, **({"logging": logging} if logging is not None else {})}
    assert resource_rule("remote-command-secrets", _command(**props)) == [STDIN_LOGGED.format(shown)]
    # Before the server exists its token is not known, but the command takes it on stdin all the same.
    pending = {**props, "stdin": rpc.UNKNOWN}
    assert resource_rule("remote-command-secrets", _command(**pending)) == [STDIN_LOGGED.format(shown)]


@pytest.mark.parametrize(
    "props",
    [
        {"create": JOIN, "stdin": K3S_TOKEN, "logging": "none"},
        {"create": JOIN, "stdin": rpc.UNKNOWN, "logging": "none"},
        {"create": "sudo systemctl is-active k3s-agent", "logging": "stdoutAndStderr"},  # no input: may log
        {"create": "cloud-init status --wait", "stdin": ""},
        {"create": JOIN, "stdin": K3S_TOKEN, "logging": rpc.UNKNOWN},  # not known: nothing to say
        {
            "create": JOIN,
            "environment": {"INSTALL_K3S_VERSION": "v1.33.1+k3s1", "K3S_URL": "https://192.168.10.10:6443"},
        },
        {
            "create": 'K3S_TOKEN="$(cat)" sh -c "curl -sfL https://get.k3s.io | sh -"',
            "stdin": K3S_TOKEN,
            "logging": "none",
        },
        {"create": rpc.UNKNOWN, "environment": rpc.UNKNOWN, "logging": "none"},
    ],
)
def test_a_command_sending_secrets_on_stdin_unlogged_passes(props: dict[str, Any]) -> None:
    assert resource_rule("remote-command-secrets", _command(**props)) == []


@pytest.mark.parametrize("logging", ["none", "stdoutAndStderr"])
def test_secrets_in_a_commands_scripts_or_environment_are_refused_whatever_it_logs(logging: str) -> None:
    props = {
        "create": f"curl -sfL https://get.k3s.io | K3S_TOKEN={K3S_TOKEN} sh -s - agent",
        "update": f"printf '%s' '{RSA_KEY}' > /etc/ssl/private/node.key",
        "delete": f"cat > /root/.kube/config <<'EOF'\n{KUBECONFIG}EOF",
        "environment": {"K3S_URL": "https://192.168.10.10:6443", "RKE2_TOKEN": "s3cr3t"},
        "logging": logging,
    }
    assert resource_rule("remote-command-secrets", _command(**props)) == [
        "the command's create script holds a join token; pass secrets on stdin",
        "the command's update script holds a private key; pass secrets on stdin",
        "the command's delete script holds a kubeconfig; pass secrets on stdin",
        "the command's environment holds a join token; pass secrets on stdin",
    ]
    in_value = _command(create=JOIN, environment={"SERVER_TOKEN": K3S_TOKEN}, logging=logging)
    assert resource_rule("remote-command-secrets", in_value) == [
        "the command's environment holds a join token; pass secrets on stdin"
    ]


# --- explicit-providers, for the packages the OpenStack backend brings ------------------------------------------


def test_explicit_providers_covers_openstack_and_command() -> None:
    cluster = _mesh_cluster("a", POOLS)  # a component: no provider of its own
    explicit = [
        _resource(PORT, "a-server-0", {}, parent=cluster, provider=_provider("openstack")),
        _resource(REMOTE_COMMAND, "a-server-0-join", {}, parent=cluster, provider=_provider("command")),
    ]
    stray = _resource(INSTANCE, "a-server-1", {}, parent=cluster, provider=_provider("openstack", default=True))
    orphan = _resource(REMOTE_COMMAND, "a-server-1-join", {}, parent=cluster)
    local = _resource("command:local:Command", "kubeconfig", {}, provider=_provider("command", default=True))
    found = stack_rule("explicit-providers", [cluster, *explicit, stray, orphan, local])
    assert found == [
        f"a-server-1 ({INSTANCE}) goes through the default openstack provider (default_5_5_3), configured by "
        "whatever the ambient environment holds (a kubeconfig, cloud credentials and region) rather than by the stack",
        f"a-server-1-join ({REMOTE_COMMAND}) names no provider",
        "kubeconfig (command:local:Command) goes through the default command provider (default_5_5_3), configured by "
        "whatever the ambient environment holds (a kubeconfig, cloud credentials and region) rather than by the stack",
    ]


# --- every new rule, on values a preview does not know -------------------------------------------------------------


def test_no_openstack_rule_reports_on_values_unknown_in_preview() -> None:
    cluster = _mesh_cluster("a", rpc.UNKNOWN)
    resources = [
        cluster,
        _ingress(protocol="tcp", portRangeMin=6443, portRangeMax=6443, remoteIpPrefix=rpc.UNKNOWN),
        _ingress(protocol=rpc.UNKNOWN, remoteGroupId=SECURITY_GROUP_ID),
        _port("a-server-0", _pairs("192.168.10.244"), cluster, portSecurityEnabled=rpc.UNKNOWN),
        _resource(NETWORK, "a-net", {"portSecurityEnabled": rpc.UNKNOWN}),
        _instance(rpc.UNKNOWN),
        _command(create=rpc.UNKNOWN, update=rpc.UNKNOWN, environment={"K3S_TOKEN": rpc.UNKNOWN}, logging="none"),
    ]
    names = [
        "openstack-no-world-ingress",
        "openstack-port-security",
        "openstack-no-secret-user-data",
        "remote-command-secrets",
    ]
    for name in names:
        for resource in resources:
            assert resource_rule(name, resource) == [], (name, resource.name)
    assert stack_rule(PAIRS, resources) == []


def test_a_calico_clusters_pod_ranges_may_pass_its_ports_and_nothing_wider() -> None:
    """With Calico the pods' own addresses are on the wire: the cluster registers the mesh's pod ranges."""
    cluster = _resource(
        MESH_CLUSTER,
        "c",
        {
            "clusterName": "c",
            "clusterId": 3,
            "cni": "calico",
            "podCidrs": ["10.201.0.0/24"],
            "podAddressPairs": ["10.200.0.0/14"],
        },
    )
    assert stack_rule(PAIRS, [cluster, _port("c-node-0", _pairs("10.200.0.0/14"), cluster)]) == []
    assert stack_rule(PAIRS, [cluster, _port("c-node-0", _pairs("10.201.0.0/24"), cluster)]) == []
    assert stack_rule(PAIRS, [cluster, _port("c-node-0", _pairs("10.0.0.0/8"), cluster)]) == [
        "port c-node-0 allows address pair 10.0.0.0/8, outside the load-balancer pools and pod ranges of cluster c "
        "(10.200.0.0/14)"
    ]
