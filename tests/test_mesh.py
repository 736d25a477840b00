"""Mesh wiring under mocks: who learns of whom, what 1.19 needs, and what stays unknown in preview."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.mocks import MockResourceArgs

from clustermesh.config import load_stack_config
from clustermesh.planner.fabricate import PlanMocks
from clustermesh.planner.graph import UNKNOWN_PLACEHOLDER, reveal
from clustermesh.planner.runner import CapturedPlan
from clustermesh.planner.stackfile import load_stack
from clustermesh.render.mesh_config import PeerAddress, ServiceTarget, dns_record, peer_address
from clustermesh.render.mesh_tls import cluster_certificates, remote_users
from tests.conftest import LOAD_BALANCER_IPS, PROJECT_DIR, ReportingMocks, plan_raw, raw_config, three_clusters
from tests.conftest import cluster as cluster_entry


def _opaque_secrets(plan: CapturedPlan) -> dict[str, Any]:
    return {
        n.name: reveal(n.inputs, secrets=True)
        for n in plan.nodes
        if n.type == "kubernetes:core/v1:Secret" and n.inputs.get("type") == "Opaque"
    }


def test_dev_stack_secrets_name_exactly_the_other_clusters() -> None:
    stack = load_stack(PROJECT_DIR, stack="dev")
    plan = plan_raw(stack.config, stack.secret_keys)
    secrets = _opaque_secrets(plan)
    names = {"k3scl1", "k3scl2", "k3scl3"}
    for cluster in names:
        for kind in ("cilium-clustermesh", "cilium-kvstoremesh"):
            assert set(secrets[f"{cluster}-{kind}"]["data"]) == names - {cluster}, (cluster, kind)
        remote = yaml.safe_load(
            base64.b64decode(secrets[f"{cluster}-cilium-kvstoremesh"]["data"][sorted(names - {cluster})[0]])
        )
        assert remote["endpoints"][0].endswith(".mesh.cilium.io:2379")
    assert not [n for n in plan.nodes if n.type.endswith("Patch")], "Cilium 1.20 needs no pod-template patch"


def test_cilium_1_19_gets_a_host_aliases_patch_instead_of_in_file_aliases() -> None:
    plan = plan_raw(raw_config(three_clusters(), ciliumVersion="1.19.6", kvstoremesh="false"))
    patches = {
        n.name: reveal(n.inputs, secrets=True) for n in plan.nodes if n.type == "kubernetes:apps/v1:DaemonSetPatch"
    }
    assert sorted(patches) == ["alpha-address-patch", "beta-address-patch", "gamma-address-patch"]
    aliases = patches["alpha-address-patch"]["spec"]["template"]["spec"]["hostAliases"]
    assert sorted(h for a in aliases for h in a["hostnames"]) == ["beta.mesh.cilium.io", "gamma.mesh.cilium.io"]
    secrets = _opaque_secrets(plan)
    config = base64.b64decode(secrets["alpha-cilium-clustermesh"]["data"]["beta"]).decode()
    assert "cilium-host-aliases" not in config and "common-etcd-client.crt" in config


def test_preview_with_unknown_load_balancers_plans_and_leaves_secrets_pending() -> None:
    """The remote entries wait for the peers' addresses; the agents' KVStoreMesh entries need only their names."""
    plan = plan_raw(raw_config(three_clusters()), preview=True)
    secrets = _opaque_secrets(plan)
    assert len(secrets) == 6
    for cluster in ("alpha", "beta", "gamma"):
        assert secrets[f"{cluster}-cilium-kvstoremesh"]["data"] == UNKNOWN_PLACEHOLDER
        assert sorted(secrets[f"{cluster}-cilium-clustermesh"]["data"]) == sorted(
            {"alpha", "beta", "gamma"} - {cluster}
        )
    services = {n.urn for n in plan.nodes if n.read}
    agents = [n for n in plan.nodes if n.name.endswith("-cilium-clustermesh")]
    assert agents and not [n.name for n in agents if services & set(n.dependencies)], (
        "agents' Secrets wait on no address"
    )


def test_without_kvstoremesh_the_agents_secret_waits_for_the_addresses() -> None:
    plan = plan_raw(raw_config(three_clusters(), kvstoremesh="false"), preview=True)
    secrets = _opaque_secrets(plan)
    assert sorted(secrets) == ["alpha-cilium-clustermesh", "beta-cilium-clustermesh", "gamma-cilium-clustermesh"]
    assert all(s["data"] == UNKNOWN_PLACEHOLDER for s in secrets.values())


def test_pinned_addresses_make_every_mesh_value_known_at_preview() -> None:
    stack = load_stack(PROJECT_DIR, stack="dev")
    plan = plan_raw(stack.config, stack.secret_keys, preview=True)
    secrets = [n for n in plan.nodes if n.type == "kubernetes:core/v1:Secret" and n.inputs.get("type") == "Opaque"]
    assert len(secrets) == 6
    assert all(isinstance(reveal(n.inputs, secrets=True)["data"], dict) for n in secrets)


class NlbMocks(PlanMocks):
    """Load balancers as an AWS NLB reports them: a hostname and no IP."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = super().new_resource(args)
        if args.typ == "kubernetes:core/v1:Service" and "status" in state:
            hostname = f"k8s-{args.name}-0a1b2c.elb.eu-west-1.amazonaws.com"
            state = state | {"status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}}
        return resource_id, state


def _with_hostnames(zone: str | None) -> list[dict[str, Any]]:
    clusters = three_clusters()
    for entry in clusters:
        entry["apiserverExposure"] = {"hostname": f"{entry['name']}.apiserver.example.net"}
        if zone is not None:
            entry["apiserverExposure"]["route53ZoneId"] = zone
    return clusters


def _config_of(plan: CapturedPlan, cluster: str, peer: str) -> dict[str, Any]:
    data = _opaque_secrets(plan)[f"{cluster}-cilium-kvstoremesh"]["data"]
    config: dict[str, Any] = yaml.safe_load(base64.b64decode(data[peer]))
    return config


def test_a_hostname_only_load_balancer_without_a_hostname_is_refused_with_the_fix() -> None:
    with pytest.raises(Exception, match=r"cluster alpha reports only the hostname k8s-alpha-clustermesh-apiserver-0a1b2c"
                       r"\.elb\.eu-west-1\.amazonaws\.com: set clusters\[0\]\.apiserverExposure\.hostname"):  # fmt: skip
        plan_raw(raw_config(three_clusters()), mocks=NlbMocks)


def test_hostname_peers_are_dialled_by_name_and_known_before_any_load_balancer() -> None:
    """An NLB's hostname is unknown until it exists; the configured name is not, so peers wait on nothing."""
    plan = plan_raw(raw_config(_with_hostnames("Z0EXAMPLE")), preview=True, mocks=NlbMocks)
    config = _config_of(plan, "alpha", "beta")
    assert config["endpoints"] == ["https://beta.apiserver.example.net:2379"]
    assert "cilium-host-aliases" not in config, "DNS resolves a hostname; no address travels in the file"
    reads = {n.urn for n in plan.nodes if n.read}
    secrets = [n for n in plan.nodes if n.type == "kubernetes:core/v1:Secret" and n.inputs.get("type") == "Opaque"]
    assert len(secrets) == 6 and not [n.name for n in secrets if reads & set(n.dependencies)]
    assert all(isinstance(reveal(n.inputs, secrets=True)["data"], dict) for n in secrets)
    server = next(n for n in plan.nodes if n.name == "beta-server" and n.type.endswith("CertRequest"))
    assert "beta.apiserver.example.net" in server.inputs["dnsNames"]
    assert "beta.mesh.cilium.io" in server.inputs["dnsNames"]


def test_route53_points_each_hostname_at_its_load_balancer() -> None:
    plan = plan_raw(raw_config(_with_hostnames("Z0EXAMPLE")), mocks=NlbMocks)
    records = {n.name: n.inputs for n in plan.nodes if n.type == "aws:route53/record:Record"}
    assert sorted(records) == [f"{c}-clustermesh-apiserver-dns" for c in ("alpha", "beta", "gamma")]
    beta = records["beta-clustermesh-apiserver-dns"]
    assert (beta["zoneId"], beta["name"], beta["type"]) == ("Z0EXAMPLE", "beta.apiserver.example.net", "CNAME")
    assert beta["records"] == ["k8s-beta-clustermesh-apiserver-0a1b2c.elb.eu-west-1.amazonaws.com"]
    read = next(n for n in plan.nodes if n.read and n.name == "beta-clustermesh-apiserver")
    beta_record = next(n for n in plan.nodes if n.name == "beta-clustermesh-apiserver-dns")
    assert read.urn in beta_record.dependencies


def test_without_a_zone_the_service_carries_the_external_dns_name_and_nothing_is_read() -> None:
    plan = plan_raw(raw_config(_with_hostnames(None)), mocks=NlbMocks)
    assert not [n for n in plan.nodes if n.read or n.type == "aws:route53/record:Record"]
    release = next(n for n in plan.nodes if n.name == "beta-cilium")
    annotations = reveal(release.inputs, secrets=True)["values"]["clustermesh"]["apiserver"]["service"]["annotations"]
    assert annotations["external-dns.alpha.kubernetes.io/hostname"] == "beta.apiserver.example.net"


def test_cilium_1_19_maps_only_peers_without_a_hostname() -> None:
    clusters = three_clusters()
    clusters[1]["apiserverExposure"] = {"hostname": "beta.apiserver.example.net"}
    plan = plan_raw(raw_config(clusters, ciliumVersion="1.19.6", kvstoremesh="false"))
    patch = next(n for n in plan.nodes if n.name == "alpha-address-patch")
    aliases = reveal(patch.inputs, secrets=True)["spec"]["template"]["spec"]["hostAliases"]
    assert [h for a in aliases for h in a["hostnames"]] == ["gamma.mesh.cilium.io"]


def test_dns_record_follows_what_the_load_balancer_reports() -> None:
    assert dns_record(ServiceTarget(hostname="nlb.example")) == ("CNAME", ["nlb.example"])
    assert dns_record(ServiceTarget(("192.0.2.9", "192.0.2.1"), "lb.example")) == ("A", ["192.0.2.1", "192.0.2.9"])
    assert dns_record(ServiceTarget(("2001:db8::1",))) == ("AAAA", ["2001:db8::1"])
    with pytest.raises(ValueError, match="give one IP family"):
        dns_record(ServiceTarget(("192.0.2.1", "2001:db8::1")))


def test_peer_address_needs_an_ip_and_says_which_setting_gives_one() -> None:
    mesh = load_stack_config(raw_config(three_clusters()))
    assert peer_address(mesh, "beta", ServiceTarget(("192.0.2.9", "192.0.2.1", "192.0.2.9")), 2379) == PeerAddress(
        ("192.0.2.1", "192.0.2.9"), 2379
    )
    with pytest.raises(ValueError, match=r"cluster beta has no address yet: set clusters\[1\]\.apiserverExposure"):
        peer_address(mesh, "beta", ServiceTarget(), 2379)


def test_a_hostname_equal_to_the_mesh_name_is_not_named_twice() -> None:
    clusters = three_clusters()
    clusters[0]["apiserverExposure"] = {"hostname": "alpha.mesh.cilium.io"}
    mesh = load_stack_config(raw_config(clusters))
    server = cluster_certificates(mesh, mesh.clusters[0])[0]
    assert server.dns_names == ("alpha.mesh.cilium.io", "clustermesh-apiserver.kube-system.svc")


def test_each_peer_is_mapped_to_the_addresses_its_load_balancer_reports() -> None:
    plan = plan_raw(raw_config(three_clusters()), mocks=ReportingMocks)
    names = ("alpha", "beta", "gamma")
    for cluster in names:
        for peer in set(names) - {cluster}:
            config = _config_of(plan, cluster, peer)
            assert config["endpoints"] == [f"https://{peer}.mesh.cilium.io:2379"]
            reported = sorted(LOAD_BALANCER_IPS[f"{peer}-clustermesh-apiserver"])
            assert config["cilium-host-aliases"] == [{"hostname": f"{peer}.mesh.cilium.io", "ips": reported}]


def test_node_port_peers_are_dialled_on_the_node_port_at_their_node_addresses() -> None:
    clusters = three_clusters()
    for index, entry in enumerate(clusters, start=1):
        entry["apiserverExposure"] = {"nodeAddresses": [f"172.17.{index}.10", f"172.17.{index}.11"]}
    plan = plan_raw(raw_config(clusters, apiserverExposure={"type": "NodePort", "nodePort": 31999}), preview=True)
    config = _config_of(plan, "alpha", "gamma")
    assert config["endpoints"] == ["https://gamma.mesh.cilium.io:31999"]
    assert config["cilium-host-aliases"] == [
        {"hostname": "gamma.mesh.cilium.io", "ips": ["172.17.3.10", "172.17.3.11"]}
    ]
    assert not [n for n in plan.nodes if n.read], "node addresses are configured, not read"


def test_certificate_lifetimes_follow_the_config() -> None:
    certificates = {"caValidityHours": 20000, "validityHours": 2000, "earlyRenewalHours": 100}
    plan = plan_raw(raw_config(three_clusters(), certificates=certificates))
    (ca,) = [n for n in plan.nodes if n.type == "tls:index/selfSignedCert:SelfSignedCert"]
    assert (ca.inputs["validityPeriodHours"], ca.inputs["earlyRenewalHours"]) == (20000, 100)
    leaves = [n for n in plan.nodes if n.type == "tls:index/locallySignedCert:LocallySignedCert"]
    assert len(leaves) == 3 * 4, "server, admin, remote and local for each cluster"
    assert {(n.inputs["validityPeriodHours"], n.inputs["earlyRenewalHours"]) for n in leaves} == {(2000, 100)}


def test_client_certificates_carry_the_identities_etcd_authorizes() -> None:
    """authMode cluster: each cluster presents its own remote identity, which its peers' etcd users name."""
    plan = plan_raw(raw_config(three_clusters()))
    names = {
        n.name: n.inputs["subject"]["commonName"] for n in plan.nodes if n.type.endswith("certRequest:CertRequest")
    }
    assert names["beta-remote"] == "remote-beta"
    assert names["alpha-remote"] == "remote-alpha"
    assert names["beta-admin"] == "admin-beta"
    assert names["beta-local"] == "local-beta"
    assert names["beta-server"] == "clustermesh-apiserver.kube-system.svc"


def test_the_mesh_and_its_clusters_are_components_of_their_own_types() -> None:
    plan = plan_raw(raw_config(three_clusters()))
    (mesh,) = [n for n in plan.nodes if n.type == "clustermesh:index:Mesh"]
    clusters = [n for n in plan.nodes if n.type == "clustermesh:index:MeshCluster"]
    assert len(clusters) == 3
    secrets = [n for n in plan.nodes if n.type == "kubernetes:core/v1:Secret" and n.inputs.get("type") == "Opaque"]
    assert secrets and all(n.parent == mesh.urn for n in secrets)


def test_on_cilium_1_19_the_address_patches_exist_in_a_preview_before_any_address() -> None:
    """Registered, with their content pending: a patch made inside an apply would be missing from the preview."""
    plan = plan_raw(raw_config(three_clusters(), ciliumVersion="1.19.6", kvstoremesh="false"), preview=True)
    patches = [n for n in plan.nodes if n.type == "kubernetes:apps/v1:DaemonSetPatch"]
    assert sorted(n.name for n in patches) == ["alpha-address-patch", "beta-address-patch", "gamma-address-patch"]
    assert all(reveal(n.inputs, secrets=True)["spec"] == UNKNOWN_PLACEHOLDER for n in patches)


def test_on_cilium_1_19_with_kvstoremesh_the_apiserver_deployment_gets_the_aliases() -> None:
    """With KVStoreMesh only the clustermesh-apiserver dials the peers; the agents' pods stay untouched."""
    plan = plan_raw(raw_config(three_clusters(), ciliumVersion="1.19.6", kvstoremesh="true"))
    assert not [n for n in plan.nodes if n.type == "kubernetes:apps/v1:DaemonSetPatch"]
    patch = next(n for n in plan.nodes if n.name == "alpha-address-patch")
    assert patch.type == "kubernetes:apps/v1:DeploymentPatch"
    inputs = reveal(patch.inputs, secrets=True)
    assert (inputs["metadata"]["name"], inputs["metadata"]["namespace"]) == ("clustermesh-apiserver", "kube-system")
    aliases = inputs["spec"]["template"]["spec"]["hostAliases"]
    assert sorted(h for a in aliases for h in a["hostnames"]) == ["beta.mesh.cilium.io", "gamma.mesh.cilium.io"]


def _mesh_of(size: int) -> list[dict[str, Any]]:
    pods = ipaddress.ip_network("10.0.0.0/8").subnets(new_prefix=16)
    nodes = ipaddress.ip_network("172.16.0.0/12").subnets(new_prefix=24)
    return [cluster_entry(f"c{i}", i, str(next(pods)), nodeCidr=str(next(nodes))) for i in range(1, size + 1)]


def test_each_added_cluster_costs_the_same_number_of_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Output per pair of clusters: from 4 to 8 to 16 clusters the Outputs made grow by equal steps per cluster.

    An Output per pair (or per Secret entry, which the SDK makes for a plain dict of data) adds a term in N².
    """
    made = 0
    track = pulumi.Output._track

    def counting(output: pulumi.Output[Any]) -> None:
        nonlocal made
        made += 1
        track(output)

    monkeypatch.setattr(pulumi.Output, "_track", counting)
    outputs = {}
    for size in (4, 8, 16):
        made = 0
        plan_raw(raw_config(_mesh_of(size)))
        outputs[size] = made
    assert outputs[16] - outputs[8] == 2 * (outputs[8] - outputs[4]), outputs


def _remote_users(plan: CapturedPlan) -> dict[str, list[dict[str, str]]]:
    """Each cluster's `clustermesh-remote-users` users, by the cluster whose provider the ConfigMap goes through."""
    cluster_of = {n.urn: n.name for n in plan.nodes if n.type == "clustermesh:index:MeshCluster"}
    provider_of = {n.urn: cluster_of[n.parent] for n in plan.nodes if n.type == "pulumi:providers:kubernetes"}
    found = {}
    for node in plan.nodes:
        if (
            node.type == "kubernetes:core/v1:ConfigMap"
            and node.inputs["metadata"]["name"] == "clustermesh-remote-users"
        ):
            assert node.inputs["metadata"]["namespace"] == "kube-system"
            found[provider_of[node.provider]] = yaml.safe_load(node.inputs["data"]["users.yaml"])["users"]
    return found


def test_every_cluster_gets_the_remote_users_of_exactly_its_peers_known_at_preview() -> None:
    """The clustermesh-apiserver mounts this ConfigMap (authMode cluster); without it the pod never starts."""
    plan = plan_raw(raw_config(three_clusters()), preview=True)
    users = _remote_users(plan)
    assert users == {
        "alpha": [{"name": "remote-beta", "role": "remote"}, {"name": "remote-gamma", "role": "remote"}],
        "beta": [{"name": "remote-alpha", "role": "remote"}, {"name": "remote-gamma", "role": "remote"}],
        "gamma": [{"name": "remote-alpha", "role": "remote"}, {"name": "remote-beta", "role": "remote"}],
    }


def test_the_chart_runs_in_cluster_auth_mode_and_1_19_renders_no_certificate_secrets() -> None:
    plan = plan_raw(raw_config(three_clusters(), ciliumVersion="1.19.6"))
    releases = [n for n in plan.nodes if n.type == "kubernetes:helm.sh/v3:Release"]
    assert len(releases) == 3
    for release in releases:
        tls = release.inputs["values"]["clustermesh"]["apiserver"]["tls"]
        assert tls == {"auto": {"enabled": False}, "authMode": "cluster", "enableSecrets": False}


def test_every_provider_backed_resource_names_its_provider() -> None:
    """Stacks disable every default provider: a TLS key or a Route 53 record without one would fail `pulumi up`."""
    clusters = three_clusters()
    clusters[0]["apiserverExposure"] = {"hostname": "alpha.apiserver.example.net", "route53ZoneId": "Z0EXAMPLE"}
    plan = plan_raw(raw_config(clusters))
    providers = {
        n.urn: n.type.removeprefix("pulumi:providers:") for n in plan.nodes if n.type.startswith("pulumi:providers:")
    }
    assert sorted(set(providers.values())) == ["aws", "kubernetes", "tls"]
    for node in plan.nodes:
        if node.custom and not node.type.startswith("pulumi:providers:"):
            package = node.type.split(":", 1)[0]
            assert providers.get(node.provider) == package, (node.name, node.type, node.provider)


@pytest.mark.parametrize("names", [["a"], ["a", "b"], ["z9", "a-b", "c0", "x", "1e5", "true", "null"]])
def test_the_remote_users_file_is_the_yaml_of_its_users(names: list[str]) -> None:
    """Written as JSON for speed, it must read as the YAML the apiserver expects: every peer, role remote."""
    text = remote_users("local", [*names, "local"])["data"]["users.yaml"]
    assert yaml.safe_load(text) == {"users": [{"name": f"remote-{n}", "role": "remote"} for n in sorted(names)]}
    assert yaml.safe_load(remote_users("local", ["local"])["data"]["users.yaml"]) == {"users": []}
