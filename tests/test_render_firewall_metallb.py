"""Security group rules of OpenStack clusters, and MetalLB's objects checked against MetalLB 0.16.1's own schemas.

Expected ports come from the documents that require them: Cilium's firewall requirements
(Documentation/operations/system_requirements.rst: 4240/tcp and ICMP echo for health, 8472/udp VXLAN,
6081/udp Geneve), RKE2's port table (docs/install/requirements.md: 6443, 9345, 10250, 2379-2381), MetalLB's
chart (values.yaml: the memberlist port) and Calico's network requirements (calico docs
getting-started/kubernetes/requirements: BGP 179/tcp, IP-in-IP IP protocol 4, VXLAN 4789/udp, Typha 5473/tcp).
Expected addresses come from the ranges written in these tests.
"""

from __future__ import annotations

import json
from collections import Counter
from ipaddress import (
    IPv4Network,
    IPv6Network,
    ip_address,
    ip_network,
    summarize_address_range,
)
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from clustermesh.model import ClusterSpec, MeshConfig, OpenStackCluster
from clustermesh.render.firewall import ANY, IPIP, SELF, IngressRule, cluster_rules, peer_rules
from clustermesh.render.metallb import (
    NAMESPACE,
    address_pool,
    l2_advertisement,
    metallb_values,
    namespace_manifest,
)
from tests.conftest import DATA
from tests.neutron import NeutronRefused, NeutronServer

METALLB = DATA / "metallb-0.16.1"
VALUES_SCHEMA = json.loads((METALLB / "values.schema.json").read_text())
CHART_DEFAULTS = yaml.safe_load((METALLB / "values.yaml").read_text())
CRDS = {
    crd["spec"]["names"]["kind"]: crd
    for name in ("metallb.io_ipaddresspools.yaml", "metallb.io_l2advertisements.yaml")
    for crd in yaml.safe_load_all((METALLB / name).read_text())
    if crd
}

Network = IPv4Network | IPv6Network

# Ports the documents name (see the module docstring).
KUBE_API, RKE2_SUPERVISOR, KUBELET, HEALTH, VXLAN, GENEVE = 6443, 9345, 10250, 4240, 8472, 6081
ETCD = (2379, 2381)
CLUSTERMESH_APISERVER = 2379
"""The clustermesh-apiserver Service's port (Cilium chart `clustermesh.apiserver.service`)."""
NODE_PORT = 32001
"""Not the chart's 32379, so a rule on it can only have come from the mesh config."""
MEMBERLIST = CHART_DEFAULTS["speaker"]["memberlist"]["mlBindPort"]

ADMIN_V4, ADMIN_V6 = "198.51.100.0/24", "2001:db8:1::/64"

ALPHA_SERVERS, ALPHA_AGENTS = "10.195.197.160-10.195.197.167", "10.195.197.170-10.195.197.181"
ALPHA_METALLB = "10.195.197.190-10.195.197.199"
BETA_SERVERS = "10.20.0.10-10.20.0.12"
BETA_AGENT_ADDRESSES = ["10.20.0.40", "10.20.0.77"]
GAMMA_SERVERS = "10.30.0.16-10.30.0.31"


def openstack(
    name: str,
    cluster_id: int,
    subnet: str,
    dhcp: str,
    pools: list[dict[str, Any]],
    *,
    distro: str = "rke2",
    tunnel: str = "vxlan",
    balancer: dict[str, Any] | None = None,
    admin: list[str] | None = None,
) -> dict[str, Any]:
    """An `openstack` cluster entry as a stack file writes it."""
    version = "v1.36.3+rke2r1" if distro == "rke2" else "v1.36.3+k3s1"
    entry: dict[str, Any] = {
        "name": name,
        "id": cluster_id,
        "kind": "openstack",
        "podCidrs": [f"10.{100 + cluster_id}.0.0/16"],
        "serviceCidr": "10.96.0.0/16",
        "routing": {"mode": "tunnel", "tunnelProtocol": tunnel},
        "openstack": {"cloud": "openstack"},
        "network": {
            "existing": {"network": f"{name}-net", "subnet": f"{name}-subnet", "cidr": subnet, "dhcpPools": [dhcp]}
        },
        "image": "ubuntu-24.04",
        "flavor": "m1.medium",
        "nodePools": pools,
        "distro": {"name": distro, "version": version},
        "adminRanges": admin if admin is not None else [ADMIN_V4],
    }
    if balancer is not None:
        entry["apiserverLoadBalancer"] = balancer
    return entry


def alpha(**overrides: Any) -> dict[str, Any]:
    """RKE2, two range pools, MetalLB."""
    entry = openstack(
        "alpha",
        1,
        "10.195.197.0/24",
        "10.195.197.2-10.195.197.150",
        [
            {"name": "server", "role": "server", "count": 3, "addresses": ALPHA_SERVERS},
            {"name": "agent", "role": "agent", "count": 2, "addresses": ALPHA_AGENTS},
        ],
        balancer={"metallb": {"addresses": [ALPHA_METALLB], "apiserverAddress": "10.195.197.190"}},
        admin=[ADMIN_V4, ADMIN_V6],
    )
    return {**entry, **overrides}


def beta(**overrides: Any) -> dict[str, Any]:
    """k3s, a range pool and a pool of listed addresses, Octavia."""
    entry = openstack(
        "beta",
        2,
        "10.20.0.0/24",
        "10.20.0.100-10.20.0.200",
        [
            {"name": "server", "role": "server", "count": 3, "addresses": BETA_SERVERS},
            {"name": "agent", "role": "agent", "count": 2, "addresses": BETA_AGENT_ADDRESSES},
        ],
        distro="k3s",
        balancer={"octavia": {"vipAddress": "10.20.0.5"}},
    )
    return {**entry, **overrides}


def gamma(**overrides: Any) -> dict[str, Any]:
    """RKE2 with no load balancer: peers dial every node's NodePort."""
    entry = openstack(
        "gamma",
        3,
        "10.30.0.0/24",
        "10.30.0.100-10.30.0.200",
        [{"name": "server", "role": "server", "count": 3, "addresses": GAMMA_SERVERS}],
    )
    return {**entry, **overrides}


def delta_existing(node_cidr: str | None = "172.17.4.0/24") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "delta",
        "id": 4,
        "kind": "existing",
        "podCidrs": ["10.104.0.0/16"],
        "serviceCidr": "10.96.0.0/12",
        "kubeconfig": {"path": "~/.kube/config", "context": "delta"},
    }
    if node_cidr is not None:
        entry["nodeCidr"] = node_cidr
    return entry


def mesh_of(*clusters: dict[str, Any], **mesh: Any) -> MeshConfig:
    mesh.setdefault("apiserverExposure", {"type": "LoadBalancer", "nodePort": NODE_PORT})
    return MeshConfig.model_validate({"clusters": list(clusters), **mesh})


def openstack_clusters(mesh: MeshConfig) -> list[OpenStackCluster]:
    return [c for c in mesh.clusters if isinstance(c, OpenStackCluster)]


def security_group(mesh: MeshConfig, cluster: OpenStackCluster) -> list[IngressRule]:
    """Every rule of `cluster`'s group in `mesh`, as a program would create them: its own, then each peer's."""
    rules = cluster_rules(mesh, cluster)
    for peer in mesh.clusters:
        if peer.name != cluster.name:
            rules += peer_rules(mesh, cluster, peer)
    return rules


def expected_cidrs(*ranges: str) -> set[str]:
    """The CIDRs covering the test's own `a-b` ranges."""
    cidrs: set[str] = set()
    for text in ranges:
        first, last = (ip_address(part) for part in text.split("-"))
        cidrs |= {str(c) for c in summarize_address_range(first, last)}
    return cidrs


def ports(rules: list[IngressRule], remote: str) -> set[tuple[str, int | None, int | None]]:
    return {(r.protocol, r.port_min, r.port_max) for r in rules if r.remote == remote}


def remotes(rules: list[IngressRule]) -> set[str]:
    return {r.remote for r in rules}


def two() -> MeshConfig:
    return mesh_of(alpha(), beta())


# --- firewall -----------------------------------------------------------------------------------------------


def test_no_rule_is_open_to_the_world() -> None:
    """A /0 anywhere in a node's security group would expose etcd, kubelet and SSH to the Internet."""
    mesh = mesh_of(alpha(), beta(), gamma(), delta_existing())
    for cluster in openstack_clusters(mesh):
        for rule in security_group(mesh, cluster):
            if rule.remote != SELF:
                assert ip_network(rule.remote).prefixlen > 0, rule


def test_a_world_wide_peer_network_is_refused() -> None:
    """A peer whose nodeCidr is the whole Internet must fail loudly, not open the tunnel to everyone."""
    mesh = mesh_of(alpha(), delta_existing("0.0.0.0/0"))
    cluster, peer = mesh.clusters
    assert isinstance(cluster, OpenStackCluster)
    with pytest.raises(ValueError, match="whole Internet"):
        peer_rules(mesh, cluster, peer)


def test_own_nodes_reach_each_other_on_what_rke2_and_cilium_need() -> None:
    """A missing port among a cluster's own nodes breaks joins, etcd quorum or the overlay."""
    mesh = two()
    alpha_cluster = openstack_clusters(mesh)[0]
    assert ports(cluster_rules(mesh, alpha_cluster), SELF) == {
        ("tcp", KUBE_API, KUBE_API),
        ("tcp", RKE2_SUPERVISOR, RKE2_SUPERVISOR),
        ("tcp", KUBELET, KUBELET),
        ("tcp", *ETCD),
        ("tcp", HEALTH, HEALTH),
        ("icmp", None, None),
        ("udp", VXLAN, VXLAN),
        ("tcp", MEMBERLIST, MEMBERLIST),
        ("udp", MEMBERLIST, MEMBERLIST),
    }


def test_rke2_opens_its_supervisor_port_and_k3s_does_not() -> None:
    """k3s's supervisor shares 6443; opening 9345 there would be a port nothing listens on."""
    mesh = two()
    rke2, k3s = openstack_clusters(mesh)
    assert ("tcp", RKE2_SUPERVISOR, RKE2_SUPERVISOR) in ports(cluster_rules(mesh, rke2), SELF)
    assert all(RKE2_SUPERVISOR not in (r.port_min, r.port_max) for r in security_group(mesh, k3s))
    assert ("tcp", KUBE_API, KUBE_API) in ports(cluster_rules(mesh, k3s), SELF)


@pytest.mark.parametrize(("protocol", "port", "other"), [("vxlan", VXLAN, GENEVE), ("geneve", GENEVE, VXLAN)])
def test_the_tunnel_port_follows_the_tunnel_protocol(protocol: str, port: int, other: int) -> None:
    """Geneve on the VXLAN port (or the reverse) would drop every packet between nodes and between clusters."""
    mesh = mesh_of(
        alpha(routing={"mode": "tunnel", "tunnelProtocol": protocol}),
        beta(routing={"mode": "tunnel", "tunnelProtocol": protocol}),
    )
    for cluster in openstack_clusters(mesh):
        rules = security_group(mesh, cluster)
        udp = {r.port_min for r in rules if r.protocol == "udp" and r.port_min != MEMBERLIST}
        assert udp == {port}
        assert all(other not in (r.port_min, r.port_max) for r in rules)


def test_memberlist_only_with_metallb() -> None:
    """The speakers' port is open only where speakers run, and is the one the chart binds."""
    mesh = two()
    with_metallb, with_octavia = openstack_clusters(mesh)
    assert {("tcp", MEMBERLIST, MEMBERLIST), ("udp", MEMBERLIST, MEMBERLIST)} <= ports(
        cluster_rules(mesh, with_metallb), SELF
    )
    assert all(MEMBERLIST not in (r.port_min, r.port_max) for r in security_group(mesh, with_octavia))
    assert metallb_values(with_metallb)["speaker"]["memberlist"]["mlBindPort"] == MEMBERLIST


def test_admin_ranges_reach_ssh_and_the_api_only() -> None:
    """Where `pulumi up` runs needs SSH and the Kubernetes API, in either address family, and nothing else."""
    mesh = two()
    alpha_cluster = openstack_clusters(mesh)[0]
    rules = cluster_rules(mesh, alpha_cluster)
    for admin in (ADMIN_V4, ADMIN_V6):
        assert ports(rules, admin) == {("tcp", 22, 22), ("tcp", KUBE_API, KUBE_API)}
        assert {r.ethertype for r in rules if r.remote == admin} == {"IPv6" if ":" in admin else "IPv4"}


def test_peer_rules_cover_exactly_the_peers_reserved_ranges() -> None:
    """A node added inside its pool's range must already be admitted, and nothing outside the ranges may be."""
    mesh = two()
    alpha_cluster, beta_cluster = openstack_clusters(mesh)
    assert remotes(peer_rules(mesh, beta_cluster, alpha_cluster)) == expected_cidrs(ALPHA_SERVERS, ALPHA_AGENTS)
    assert remotes(peer_rules(mesh, alpha_cluster, beta_cluster)) == expected_cidrs(BETA_SERVERS) | {
        f"{a}/32" for a in BETA_AGENT_ADDRESSES
    }


def test_an_existing_peer_is_admitted_by_its_node_cidr() -> None:
    """An existing cluster's nodes are known by nodeCidr only; without it there is nothing to admit."""
    mesh = mesh_of(alpha(), delta_existing())
    cluster, peer = mesh.clusters
    assert isinstance(cluster, OpenStackCluster)
    assert remotes(peer_rules(mesh, cluster, peer)) == {"172.17.4.0/24"}
    bare = mesh_of(alpha(), delta_existing(None))
    assert peer_rules(bare, openstack_clusters(bare)[0], bare.clusters[1]) == []


def test_peers_reach_the_tunnel_health_and_the_apiserver() -> None:
    """What a peer's nodes send: overlay packets, health probes, and kvstoremesh's dial of the apiserver."""
    mesh = two()
    alpha_cluster, beta_cluster = openstack_clusters(mesh)
    wanted = {("udp", VXLAN, VXLAN), ("tcp", HEALTH, HEALTH), ("icmp", None, None)}
    into_alpha = peer_rules(mesh, alpha_cluster, beta_cluster)
    for remote in remotes(into_alpha):
        # alpha's apiserver answers on its MetalLB address, port 2379, on whichever node holds the address.
        assert ports(into_alpha, remote) == wanted | {("tcp", CLUSTERMESH_APISERVER, CLUSTERMESH_APISERVER)}
    into_beta = peer_rules(mesh, beta_cluster, alpha_cluster)
    for remote in remotes(into_beta):
        # beta's apiserver is a NodePort behind Octavia.
        assert ports(into_beta, remote) == wanted | {
            ("tcp", CLUSTERMESH_APISERVER, CLUSTERMESH_APISERVER),
            ("tcp", NODE_PORT, NODE_PORT),
        }


def test_the_node_port_is_opened_only_for_node_port_services() -> None:
    """MetalLB's LoadBalancer needs no NodePort; Octavia's members and bare NodePort peers do."""
    mesh = mesh_of(alpha(), beta(), gamma())
    with_metallb, with_octavia, without_balancer = openstack_clusters(mesh)
    assert all(NODE_PORT not in (r.port_min, r.port_max) for r in security_group(mesh, with_metallb))
    # Octavia's amphorae sit on beta's subnet and dial the NodePort from there.
    assert ("tcp", NODE_PORT, NODE_PORT) in ports(cluster_rules(mesh, with_octavia), "10.20.0.0/24")
    for cluster in (with_octavia, without_balancer):
        for peer in mesh.clusters:
            if peer.name != cluster.name:
                for remote in remotes(peer_rules(mesh, cluster, peer)):
                    assert ("tcp", NODE_PORT, NODE_PORT) in ports(peer_rules(mesh, cluster, peer), remote)
    # Without a load balancer peers dial the NodePort only, so 2379 (embedded etcd's port on servers) stays shut.
    into_gamma = peer_rules(mesh, without_balancer, with_metallb)
    assert all(CLUSTERMESH_APISERVER not in (r.port_min, r.port_max) for r in into_gamma)


def test_no_rule_is_opened_to_the_node_port_range() -> None:
    """Only the mesh's NodePort is used; the 30000-32767 range would expose every Service of the cluster."""
    mesh = mesh_of(alpha(), beta(), gamma())
    for cluster in openstack_clusters(mesh):
        for rule in security_group(mesh, cluster):
            assert rule.port_min == rule.port_max or (rule.port_min, rule.port_max) == ETCD, rule


def test_keys_are_unique_in_each_security_group_and_fit_a_resource_name() -> None:
    """Two rules with one key would be one Pulumi resource name twice; Neutron also refuses duplicate rules."""
    # Same subnet for alpha and a second cluster, and an admin range equal to that subnet: the crowded case.
    shared = openstack(
        "beta",
        2,
        "10.195.197.0/24",
        "10.195.197.2-10.195.197.150",
        [{"name": "server", "role": "server", "count": 3, "addresses": "10.195.197.200-10.195.197.207"}],
        balancer={"octavia": {"vipAddress": "10.195.197.220"}},
        admin=["10.195.197.0/24"],
    )
    mesh = mesh_of(alpha(), shared, gamma(), delta_existing())
    for cluster in openstack_clusters(mesh):
        rules = security_group(mesh, cluster)
        duplicates = [key for key, n in Counter(r.key for r in rules).items() if n > 1]
        assert duplicates == []
        for rule in rules:
            assert "::" not in rule.key and all(c.isalnum() or c in "-._" for c in rule.key), rule.key


def test_keys_read_as_protocol_ports_and_remote() -> None:
    """The key is what a reader sees in the resource name: protocol, port(s), remote."""
    assert IngressRule("tcp", 6443, 6443, "10.195.197.0/24", "api").key == "tcp-6443-10.195.197.0-24"
    assert IngressRule("icmp", None, None, SELF, "health").key == "icmp-self"
    assert IngressRule("tcp", 2379, 2381, SELF, "etcd").key == "tcp-2379-2381-self"


def test_adding_a_cluster_adds_rules_and_changes_none() -> None:
    """Neutron rules are replaced, never updated: a changed rule would drop traffic between existing clusters."""
    before = mesh_of(alpha(), beta())
    after = mesh_of(alpha(), beta(), gamma())
    third = openstack_clusters(after)[2]
    for old, new in zip(openstack_clusters(before), openstack_clusters(after)[:2], strict=True):
        old_rules = {r.key: r for r in security_group(before, old)}
        new_rules = {r.key: r for r in security_group(after, new)}
        assert {key: new_rules[key] for key in old_rules} == old_rules
        added = set(new_rules.values()) - set(old_rules.values())
        assert added == set(peer_rules(after, new, third))
        assert remotes(list(added)) == expected_cidrs(GAMMA_SERVERS)


def test_growing_a_pool_inside_its_range_changes_no_rule() -> None:
    """A node added in range is already admitted by every peer: the rules are those of the range, not the nodes."""
    small = mesh_of(alpha(), beta())
    grown_pools = [{**pool, "count": 8} if pool["name"] == "server" else pool for pool in alpha()["nodePools"]]
    grown = mesh_of(alpha(nodePools=grown_pools), beta())
    for old, new in zip(openstack_clusters(small), openstack_clusters(grown), strict=True):
        assert security_group(small, old) == security_group(grown, new)


def test_adding_a_pool_next_to_another_adds_rules_and_changes_none() -> None:
    """Ranges that touch are not merged into one wider CIDR: that would replace the peer's existing rules."""
    adjacent = "10.195.197.168-10.195.197.175"  # with ALPHA_SERVERS, exactly 10.195.197.160/28
    more_pools = [*alpha()["nodePools"], {"name": "extra", "role": "agent", "count": 1, "addresses": adjacent}]
    before, after = mesh_of(alpha(), beta()), mesh_of(alpha(nodePools=more_pools), beta())
    old = set(security_group(before, openstack_clusters(before)[1]))
    new = set(security_group(after, openstack_clusters(after)[1]))
    assert old <= new
    assert remotes(list(new - old)) == expected_cidrs(adjacent)


def rules_for(mesh: MeshConfig, cluster: OpenStackCluster, peer: ClusterSpec) -> list[IngressRule]:
    return cluster_rules(mesh, cluster) if peer is cluster else peer_rules(mesh, cluster, peer)


def test_rules_are_sorted_without_duplicates_and_repeatable() -> None:
    """Resource order and names must not depend on set iteration order between runs."""
    mesh = mesh_of(alpha(), beta(), gamma(), delta_existing())
    for cluster in openstack_clusters(mesh):
        for peer in mesh.clusters:
            rules = rules_for(mesh, cluster, peer)
            assert rules == sorted(set(rules))
            assert rules == rules_for(mesh, cluster, peer)


def test_a_rule_cannot_mix_icmp_and_ports() -> None:
    """ICMP has no ports in Neutron (they would be type and code); TCP without ports would open every port."""
    with pytest.raises(ValueError):
        IngressRule("icmp", 8, 0, SELF, "echo")
    with pytest.raises(ValueError):
        IngressRule("tcp", None, None, SELF, "every port")


# --- MetalLB ------------------------------------------------------------------------------------------------


def crd_schema(kind: str) -> dict[str, Any]:
    (version,) = CRDS[kind]["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the CRD's structural schema does not declare: the API server would prune them without a word."""
    if isinstance(value, dict) and "properties" in schema:
        found = []
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{path}.{key}")
            else:
                found += unknown_fields(item, schema["properties"][key], f"{path}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return [f for i, item in enumerate(value) for f in unknown_fields(item, schema["items"], f"{path}[{i}]")]
    return []


def metallb_parse(text: str) -> list[Network]:
    """MetalLB's reading of one pool entry (internal/config/config.go ParseCIDR at v0.16.1): a CIDR, or `a-b`."""
    if "-" not in text:
        return [ip_network(text, strict=False)]  # Go's net.ParseCIDR: a prefix length is required
    first_text, last_text = text.split("-", 1)
    first, last = ip_address(first_text.strip()), ip_address(last_text.strip())
    assert first.version == last.version and int(first) <= int(last), text
    return list(summarize_address_range(first, last))


def metallb_cluster(*ranges: str, apiserver: str) -> OpenStackCluster:
    entry = alpha(apiserverLoadBalancer={"metallb": {"addresses": list(ranges), "apiserverAddress": apiserver}})
    return OpenStackCluster.model_validate(entry)


@pytest.mark.parametrize(("kind", "render"), [("IPAddressPool", address_pool), ("L2Advertisement", l2_advertisement)])
def test_metallb_objects_validate_against_the_crds(kind: str, render: Any) -> None:
    """An object the CRD refuses fails at `pulumi up`; a field it does not declare is silently dropped."""
    cluster = OpenStackCluster.model_validate(alpha())
    obj = render(cluster)
    crd = CRDS[kind]
    (version,) = crd["spec"]["versions"]
    assert obj["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
    assert obj["kind"] == kind
    assert crd["spec"]["scope"] == "Namespaced" and obj["metadata"]["namespace"] == NAMESPACE
    jsonschema.Draft7Validator(crd_schema(kind)).validate(obj)
    assert unknown_fields(obj, crd_schema(kind)) == []


def test_the_crd_checks_can_fail() -> None:
    """The checks above are only worth something if a wrong object fails them."""
    schema = crd_schema("IPAddressPool")
    wrong = {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {},
        "spec": {"addresses": "10.0.0.1/32"},
    }
    assert list(jsonschema.Draft7Validator(schema).iter_errors(wrong))
    assert list(jsonschema.Draft7Validator(schema).iter_errors({**wrong, "spec": {}}))
    assert unknown_fields({"spec": {"addresses": [], "autoAssing": False}}, schema) == [".spec.autoAssing"]


def test_the_advertisement_names_the_pool() -> None:
    """An L2Advertisement naming no pool advertises every pool; naming another pool advertises nothing of ours."""
    cluster = OpenStackCluster.model_validate(alpha())
    assert l2_advertisement(cluster)["spec"]["ipAddressPools"] == [address_pool(cluster)["metadata"]["name"]]


@pytest.mark.parametrize(
    "ranges",
    [
        [ALPHA_METALLB],  # not one CIDR: written a-b
        ["10.195.197.192-10.195.197.199"],  # exactly 10.195.197.192/29
        ["10.195.197.192/29", "10.195.197.210"],  # a CIDR, and one address
        ["10.195.197.190-10.195.197.191", "10.195.197.200-10.195.197.230"],
    ],
)
def test_pool_addresses_are_what_metallb_parses_back_to_the_ranges(ranges: list[str]) -> None:
    """MetalLB takes a CIDR or `first-last`; whatever the spelling, it must own exactly the configured addresses."""
    first = ranges[0].split("-")[0].split("/")[0]
    cluster = metallb_cluster(*ranges, apiserver=first)
    written = address_pool(cluster)["spec"]["addresses"]
    parsed = {n for entry in written for n in metallb_parse(entry)}
    expected: set[Network] = set()
    for text in ranges:
        if "/" in text:
            expected.add(ip_network(text))
        else:
            low, _, high = text.partition("-")
            expected |= set(summarize_address_range(ip_address(low), ip_address(high or low)))
    assert {a for n in parsed for a in n} == {a for n in expected for a in n}
    assert len(written) == len(ranges)


def test_a_single_address_and_a_whole_cidr_are_written_as_cidrs() -> None:
    """MetalLB's docs: "To specify a single IP address in a pool, use /32 in the CIDR notation"."""
    cluster = metallb_cluster("10.195.197.192/29", "10.195.197.210", ALPHA_METALLB, apiserver="10.195.197.192")
    assert address_pool(cluster)["spec"]["addresses"] == ["10.195.197.192/29", "10.195.197.210/32", ALPHA_METALLB]


def test_the_pool_does_not_hand_out_the_pinned_address_on_its_own() -> None:
    """With autoAssign MetalLB gives the lowest free address to any unpinned Service, possibly the apiserver's."""
    cluster = OpenStackCluster.model_validate(alpha())
    assert address_pool(cluster)["spec"]["autoAssign"] is False


def helm_merged(values: dict[str, Any], base: dict[str, Any] = CHART_DEFAULTS) -> dict[str, Any]:
    """Helm's merge of user values over the chart's defaults, which is what the chart's schema checks."""
    out = dict(base)
    for key, value in values.items():
        out[key] = (
            helm_merged(value, base[key]) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return out


def paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in values.items():
        found += paths(value, f"{prefix}{key}.") if isinstance(value, dict) and value else [f"{prefix}{key}"]
    return found


def default_at(path: str) -> Any:
    node: Any = CHART_DEFAULTS
    for part in path.split("."):
        node = node[part]
    return node


def test_metallb_values_validate_against_the_charts_schema() -> None:
    """Values the chart's schema refuses fail at `helm upgrade`, long after preview looked fine."""
    values = metallb_values(OpenStackCluster.model_validate(alpha()))
    jsonschema.Draft7Validator(VALUES_SCHEMA).validate(helm_merged(values))


def test_metallb_values_only_set_keys_the_chart_has() -> None:
    """The schema allows unknown keys, so a misspelt key (`frrK8s`) would pass it and change nothing."""
    values = metallb_values(OpenStackCluster.model_validate(alpha()))
    for path in paths(values):
        default_at(path)  # a KeyError names the key the chart does not have


def test_metallb_runs_l2_without_any_bgp_daemon() -> None:
    """Chart 0.16 turns FRR-K8s on by default; the install docs' native mode has frrk8s and speaker.frr both off."""
    assert default_at("frrk8s.enabled") is True  # what would be installed otherwise
    merged = helm_merged(metallb_values(OpenStackCluster.model_validate(alpha())))
    assert merged["frrk8s"]["enabled"] is False
    assert merged["speaker"]["frr"]["enabled"] is False
    assert merged["speaker"]["memberlist"]["enabled"] is True


def test_metallb_needs_a_cluster_with_metallb() -> None:
    """Rendering MetalLB for an Octavia cluster is a caller's mistake, not an empty pool."""
    octavia = OpenStackCluster.model_validate(beta())
    for render in (metallb_values, address_pool, l2_advertisement):
        with pytest.raises(ValueError, match=r"no apiserverLoadBalancer\.metallb"):
            render(octavia)


def test_the_namespace_admits_privileged_pods() -> None:
    """The speaker runs on the host network; under a restricted Pod Security level it would not be admitted."""
    namespace = namespace_manifest()
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"] == {
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/audit": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
    }
    kubernetes_validate.validate(namespace, kubernetes_validate.utils.latest_version(), strict=True)


def test_wireguard_opens_its_port_to_own_nodes_and_each_peer_range_only_when_the_mesh_encrypts() -> None:
    plain = two()
    encrypted = mesh_of(alpha(), beta(), encryption="wireguard")
    wireguard = ("udp", 51871, 51871)
    a_plain, a_encrypted = openstack_clusters(plain)[0], openstack_clusters(encrypted)[0]
    assert all(
        wireguard not in ports(security_group(plain, a_plain), r) for r in remotes(security_group(plain, a_plain))
    )
    rules = security_group(encrypted, a_encrypted)
    beta_ranges = expected_cidrs(BETA_SERVERS) | {f"{a}/32" for a in BETA_AGENT_ADDRESSES}
    assert {r.remote for r in rules if (r.protocol, r.port_min, r.port_max) == wireguard} == {SELF, *beta_ranges}
    # Turning encryption on adds rules and changes none of the others.
    assert set(security_group(plain, a_plain)) <= set(rules)


# --- Calico-chained clusters --------------------------------------------------------------------------------

# Calico's network requirements (see the module docstring); IP protocol 4 is `ipip` to Neutron (neutron-lib
# constants: PROTO_NAME_IPIP = 'ipip', PROTO_NUM_IPIP = 4).
CALICO_BGP, CALICO_VXLAN, TYPHA = 179, 4789, 5473
CILIUM_TUNNELS = {VXLAN, GENEVE}

KAPPA_SERVERS, LAMBDA_SERVERS, MU_SERVERS = "10.50.0.10-10.50.0.17", "10.60.0.10-10.60.0.13", "10.70.0.8-10.70.0.15"
LAMBDA_POOL = "10.106.128.0/17"
"""lambda's configured Calico pool: inside its pod CIDR (10.106.0.0/16), and what its pods really use."""
NU_PODS_V4, NU_PODS_V6 = "10.108.0.0/16", "fd00:108::/48"


def calico(
    name: str, cluster_id: int, subnet: str, servers: str, encapsulation: str, **calico_settings: Any
) -> dict[str, Any]:
    """An OpenStack cluster entry with `cni: calico` (Cilium chained, so native routing)."""
    base = subnet.rsplit(".", 1)[0]  # the tests' subnets are /24s
    entry = openstack(
        name,
        cluster_id,
        subnet,
        f"{base}.100-{base}.200",
        [{"name": "server", "role": "server", "count": 3, "addresses": servers}],
    )
    return {
        **entry,
        "cni": "calico",
        "routing": {"mode": "native"},
        "calico": {"encapsulation": encapsulation, **calico_settings},
    }


def kappa(encapsulation: str = "IPIP") -> dict[str, Any]:
    return calico("kappa", 5, "10.50.0.0/24", KAPPA_SERVERS, encapsulation)


def lambda_(encapsulation: str = "VXLAN") -> dict[str, Any]:
    return calico("lambda", 6, "10.60.0.0/24", LAMBDA_SERVERS, encapsulation, ipPool=LAMBDA_POOL)


def mu(encapsulation: str = "None") -> dict[str, Any]:
    return calico("mu", 7, "10.70.0.0/24", MU_SERVERS, encapsulation)


def nu_existing() -> dict[str, Any]:
    """An existing cluster, natively routed, dual-stack."""
    entry = delta_existing("172.17.8.0/24")
    return {**entry, "name": "nu", "id": 8, "podCidrs": [NU_PODS_V4, NU_PODS_V6], "routing": {"mode": "native"}}


def calico_mesh() -> MeshConfig:
    return mesh_of(kappa(), lambda_(), mu(), nu_existing())


BASE_SELF_RKE2 = {
    ("tcp", KUBE_API, KUBE_API),
    ("tcp", RKE2_SUPERVISOR, RKE2_SUPERVISOR),
    ("tcp", KUBELET, KUBELET),
    ("tcp", *ETCD),
    ("tcp", HEALTH, HEALTH),
    ("icmp", None, None),
}
"""What every RKE2 cluster's nodes need from each other, whatever the CNI (the tunnel port aside)."""


@pytest.mark.parametrize(
    ("encapsulation", "calico_ports"),
    [
        ("IPIP", {("tcp", TYPHA, TYPHA), ("tcp", CALICO_BGP, CALICO_BGP), ("ipip", None, None)}),
        ("VXLAN", {("tcp", TYPHA, TYPHA), ("udp", CALICO_VXLAN, CALICO_VXLAN)}),
        # Unencapsulated, BIRD routes (BGP) and the nodes reach each other's pods from their own addresses.
        ("None", {("tcp", TYPHA, TYPHA), ("tcp", CALICO_BGP, CALICO_BGP), ("any", None, None)}),
    ],
)
def test_a_calico_cluster_opens_calicos_ports_for_its_encapsulation(
    encapsulation: str, calico_ports: set[tuple[str, int | None, int | None]]
) -> None:
    """IP-in-IP without protocol 4, or VXLAN without 4789, drops every packet between nodes; BGP without 179
    leaves the nodes without routes to each other's pods."""
    mesh = mesh_of(kappa(encapsulation))
    (cluster,) = openstack_clusters(mesh)
    assert ports(cluster_rules(mesh, cluster), SELF) == BASE_SELF_RKE2 | calico_ports


def test_a_calico_cluster_opens_no_cilium_tunnel() -> None:
    """Chained on Calico, Cilium routes natively: 8472 or 6081 would be open with nothing listening."""
    mesh = calico_mesh()
    for cluster in openstack_clusters(mesh):
        for rule in security_group(mesh, cluster):
            assert rule.protocol != "udp" or rule.port_min not in CILIUM_TUNNELS, rule


def test_calico_rules_are_only_for_calico_clusters() -> None:
    """A cluster without Calico runs no BIRD, Typha or Calico tunnel, and admits no pod range on every port."""
    mesh = mesh_of(alpha(), beta(), gamma(), delta_existing())
    calico_ports = {CALICO_BGP, CALICO_VXLAN, TYPHA}
    for cluster in openstack_clusters(mesh):
        for rule in security_group(mesh, cluster):
            assert rule.protocol not in {"any", "ipip"}, rule
            assert rule.port_min not in calico_ports, rule


def test_the_own_pool_is_admitted_on_every_protocol() -> None:
    """Pods' addresses are on the wire between nodes; the configured pool, not the pod CIDR, is what pods use."""
    mesh = calico_mesh()
    by_name = {c.name: c for c in openstack_clusters(mesh)}
    expected = {"kappa": "10.105.0.0/16", "lambda": LAMBDA_POOL, "mu": "10.107.0.0/16"}
    for name, pool in expected.items():
        rules = cluster_rules(mesh, by_name[name])
        assert ports(rules, pool) == {("any", None, None)}
        assert {r.remote for r in rules if r.protocol == ANY} - {SELF} == {pool}


def test_each_calico_peers_pod_pool_is_admitted_on_every_protocol() -> None:
    """Cilium's native routing: "firewalls must allow pod-to-pod traffic on all ports" between the clusters."""
    mesh = calico_mesh()
    kappa_cluster = openstack_clusters(mesh)[0]
    peers = {p.name: p for p in mesh.clusters}
    expected = {"lambda": {LAMBDA_POOL}, "mu": {"10.107.0.0/16"}, "nu": {NU_PODS_V4}}
    for name, pools in expected.items():
        rules = peer_rules(mesh, kappa_cluster, peers[name])
        assert {r.remote for r in rules if r.protocol == ANY} == pools
        for pool in pools:
            assert ports(rules, pool) == {("any", None, None)}
    # An existing peer's IPv6 pod range is not admitted: Calico here carries IPv4 only.
    assert all(NU_PODS_V6 not in r.remote for r in security_group(mesh, kappa_cluster))


def test_calico_peers_still_reach_health_and_the_apiserver_by_node_address() -> None:
    """Native routing changes what pods send, not what the nodes need: health probes and kvstoremesh's dial."""
    mesh = calico_mesh()
    kappa_cluster, lambda_cluster, _ = openstack_clusters(mesh)
    into_kappa = peer_rules(mesh, kappa_cluster, lambda_cluster)
    for remote in expected_cidrs(LAMBDA_SERVERS):
        # kappa has no load balancer: peers dial the NodePort on every node; both run Calico, whose nodes peer
        # by BGP across the clusters.
        assert ports(into_kappa, remote) == {
            ("tcp", HEALTH, HEALTH),
            ("icmp", None, None),
            ("tcp", NODE_PORT, NODE_PORT),
            ("tcp", 179, 179),
        }


def test_adding_a_calico_peer_adds_rules_and_changes_none() -> None:
    """A new Calico cluster brings its nodes' and its pods' rules into its peers' groups, and replaces nothing."""
    before = mesh_of(kappa(), nu_existing())
    after = mesh_of(kappa(), nu_existing(), lambda_())
    old, new = openstack_clusters(before)[0], openstack_clusters(after)[0]
    newcomer = openstack_clusters(after)[1]
    old_rules = {r.key: r for r in security_group(before, old)}
    new_rules = {r.key: r for r in security_group(after, new)}
    assert {key: new_rules[key] for key in old_rules} == old_rules
    added = set(new_rules.values()) - set(old_rules.values())
    assert added == set(peer_rules(after, new, newcomer))
    assert remotes(list(added)) == expected_cidrs(LAMBDA_SERVERS) | {LAMBDA_POOL}


def test_calico_groups_have_unique_keys_and_nothing_open_to_the_world() -> None:
    mesh = calico_mesh()
    for cluster in openstack_clusters(mesh):
        rules = security_group(mesh, cluster)
        assert [k for k, n in Counter(r.key for r in rules).items() if n > 1] == []
        for rule in rules:
            assert rule.remote == SELF or ip_network(rule.remote).prefixlen > 0, rule
            assert all(c.isalnum() or c in "-._" for c in rule.key), rule.key


def test_a_world_wide_pod_range_is_refused() -> None:
    """A peer whose pod CIDR is the whole Internet must fail loudly, not open every port to everyone."""
    mesh = mesh_of(kappa(), {**nu_existing(), "podCidrs": ["0.0.0.0/0"]})
    cluster, peer = mesh.clusters
    assert isinstance(cluster, OpenStackCluster)
    with pytest.raises(ValueError, match="whole Internet"):
        peer_rules(mesh, cluster, peer)


def test_portless_protocols_take_no_ports_and_any_is_no_protocol_to_neutron() -> None:
    """A port range on `any` or `ipip` is meaningless to Neutron; the word `any` is not a protocol it knows."""
    with pytest.raises(ValueError):
        IngressRule(ANY, 1, 65535, SELF, "every port")
    with pytest.raises(ValueError):
        IngressRule(IPIP, 4, 4, SELF, "protocol number as a port")
    assert IngressRule(ANY, None, None, "10.105.0.0/16", "pods").key == "any-10.105.0.0-16"
    assert IngressRule(IPIP, None, None, SELF, "ipip").key == "ipip-self"
    assert IngressRule(ANY, None, None, SELF, "all").neutron_protocol is None
    assert IngressRule(IPIP, None, None, SELF, "ipip").neutron_protocol == "ipip"
    assert IngressRule("tcp", 22, 22, SELF, "ssh").neutron_protocol == "tcp"


def neutron_rule(rule: IngressRule, group_id: str) -> dict[str, Any]:
    """The Neutron API body of a rule, as the pulumi-openstack SecGroupRule sends it (no protocol: omitted)."""
    body: dict[str, Any] = {
        "security_group_id": group_id,
        "direction": "ingress",
        "ethertype": rule.ethertype,
        "description": rule.description,
        "port_range_min": rule.port_min,
        "port_range_max": rule.port_max,
    }
    if rule.neutron_protocol is not None:
        body["protocol"] = rule.neutron_protocol
    if rule.remote == SELF:
        body["remote_group_id"] = group_id
    else:
        body["remote_ip_prefix"] = rule.remote
    return body


@pytest.mark.parametrize("encapsulation", ["IPIP", "VXLAN", "None"])
def test_neutron_accepts_every_rule_of_a_calico_clusters_group(
    encapsulation: str, neutron_server: NeutronServer
) -> None:
    """The real Neutron API takes `ipip` and protocol-less rules beside the rest, none refused as a duplicate;
    the word `any` itself it refuses, which is why components must send `neutron_protocol`."""
    mesh = mesh_of(kappa(encapsulation), lambda_(), mu(), nu_existing())
    cluster = openstack_clusters(mesh)[0]
    client = neutron_server.client
    project = f"calico-{encapsulation.lower()}"
    group = client.create("security_group", {"name": f"kappa-{encapsulation}"}, project_id=project)
    rules = security_group(mesh, cluster)
    for rule in rules:
        client.create("security_group_rule", neutron_rule(rule, group["id"]), project_id=project)
    created = client.list("security_group_rule", security_group_id=group["id"], direction="ingress")
    assert sorted(
        (r["protocol"] or "", r["port_range_min"] or 0, r["remote_ip_prefix"] or "") for r in created
    ) == sorted((r.neutron_protocol or "", r.port_min or 0, "" if r.remote == SELF else r.remote) for r in rules)
    wrong = IngressRule(ANY, None, None, "10.200.0.0/16", "pods")
    with pytest.raises(NeutronRefused, match="protocol"):
        client.create(
            "security_group_rule", {**neutron_rule(wrong, group["id"]), "protocol": "any"}, project_id=project
        )


def test_bgp_crosses_only_between_calico_clusters() -> None:
    """Only Calico clusters peer by BGP: an existing natively routed peer gets no 179."""
    mesh = mesh_of(kappa(), nu_existing())
    (kappa_cluster,) = openstack_clusters(mesh)
    nu = next(c for c in mesh.clusters if c.name != kappa_cluster.name)
    assert all((r.protocol, r.port_min) != ("tcp", 179) for r in peer_rules(mesh, kappa_cluster, nu))
