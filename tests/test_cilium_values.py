"""Helm values: what Cilium's docs prescribe for each mode, and valid against Cilium's own values schema."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import jsonschema
import pytest
import yaml

from clustermesh.config import ConfigError, load_stack_config
from clustermesh.model import MeshConfig
from clustermesh.planner.stackfile import load_stack
from clustermesh.render.cilium_values import cilium_values
from clustermesh.render.cni import calico_chaining_configmap_data, calico_chaining_conflist
from tests.conftest import DATA, PROJECT_DIR, cluster, raw_config

SCHEMA = json.loads((DATA / "cilium-1.20.0" / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((DATA / "cilium-1.20.0" / "values.yaml").read_text())
NATIVE = {"mode": "native"}


def merged(values: dict[str, Any], base: dict[str, Any] = DEFAULTS) -> dict[str, Any]:
    """Helm's merge of user values over the chart's defaults."""
    out = dict(base)
    for key, value in values.items():
        out[key] = merged(value, base[key]) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def mesh_of(*clusters: dict[str, Any], **mesh: Any) -> MeshConfig:
    return load_stack_config(raw_config(list(clusters), **mesh))


MESHES = {
    "dev stack": lambda: load_stack_config(*_dev()),
    "aws-cni": lambda: mesh_of(
        cluster("eks1", 1, "10.1.0.0/16", cni="aws-cni", nodeCidr="10.1.0.0/16", routing=NATIVE)
    ),
    "calico": lambda: mesh_of(
        cluster("os1", 1, "10.1.0.0/16", cni="calico", nodeCidr="192.168.1.0/24", routing=NATIVE)
    ),
    "native dual-stack": lambda: mesh_of(
        cluster(
            "n1",
            1,
            "10.1.0.0/16",
            podCidrs=["10.1.0.0/16", "fd00:1::/104"],
            nodeCidr="192.168.1.0/24",
            routing={**NATIVE, "autoDirectNodeRoutes": True},
        ),
        nativeRoutingCidrs=["10.0.0.0/8", "fd00::/16"],
    ),
    "nodeport geneve": lambda: mesh_of(
        cluster(
            "g1",
            1,
            "10.1.0.0/16",
            routing={"mode": "tunnel", "tunnelProtocol": "geneve"},
            apiserverExposure={"nodeAddresses": ["192.0.2.1"]},
        ),
        apiserverExposure={"type": "NodePort", "nodePort": 32001},
    ),
    "nlb with hostname": lambda: mesh_of(
        cluster("eks1", 1, "10.1.0.0/16", apiserverExposure={"hostname": "eks1.mesh.example.net"}),
        apiserverExposure={"annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}},
    ),
}


def _dev() -> tuple[dict[str, str], frozenset[str]]:
    stack = load_stack(PROJECT_DIR, stack="dev")
    return stack.config, stack.secret_keys


@pytest.mark.parametrize("name", sorted(MESHES))
def test_values_validate_against_ciliums_schema(name: str) -> None:
    """Values the chart's schema refuses would fail at `helm upgrade`, long after preview looked fine."""
    mesh = MESHES[name]()
    for spec in mesh.clusters:
        errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(merged(cilium_values(mesh, spec))))
        assert errors == [], [e.message for e in errors]


def test_schema_check_catches_a_wrong_type() -> None:
    """The schema check above is only worth something if it can fail."""
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(merged({"cluster": {"id": "seven"}})))
    assert errors


def test_aws_cni_chaining_values_follow_the_cilium_guide() -> None:
    """docs: installation/cni-chaining-aws-cni: chainingMode=aws-cni exclusive=false masquerade off routingMode=native."""
    mesh = MESHES["aws-cni"]()
    values = cilium_values(mesh, mesh.clusters[0])
    assert values["cni"] == {"chainingMode": "aws-cni", "exclusive": False}
    assert values["enableIPv4Masquerade"] is False
    assert values["routingMode"] == "native"
    assert "ipam" not in values  # the AWS VPC CNI allocates pod addresses


def test_calico_chaining_values_follow_the_cilium_guide() -> None:
    """docs: installation/cni-chaining-calico: generic-veth, custom conf from the cni-configuration ConfigMap."""
    mesh = MESHES["calico"]()
    values = cilium_values(mesh, mesh.clusters[0])
    assert values["cni"] == {"chainingMode": "generic-veth", "customConf": True, "configMap": "cni-configuration"}
    assert values["routingMode"] == "native"
    assert values["enableIPv4Masquerade"] is False
    assert values["enableIdentityMark"] is False
    assert "ipam" not in values
    conflist = json.loads(calico_chaining_configmap_data()["cni-config"])
    assert conflist["name"] == "generic-veth"
    assert [p["type"] for p in conflist["plugins"]] == ["calico", "portmap", "cilium-cni"]
    assert conflist == calico_chaining_conflist()


def test_cluster_pool_ipam_native_routing_and_ipv6() -> None:
    mesh = MESHES["native dual-stack"]()
    values = cilium_values(mesh, mesh.clusters[0])
    assert values["ipam"] == {
        "mode": "cluster-pool",
        "operator": {
            "clusterPoolIPv4PodCIDRList": ["10.1.0.0/16"],
            "clusterPoolIPv4MaskSize": 24,
            "clusterPoolIPv6PodCIDRList": ["fd00:1::/104"],
            "clusterPoolIPv6MaskSize": 120,
        },
    }
    assert values["ipv6"] == {"enabled": True}
    assert values["routingMode"] == "native"
    assert values["ipv4NativeRoutingCIDR"] == "10.0.0.0/8"
    assert values["ipv6NativeRoutingCIDR"] == "fd00::/16"
    assert values["autoDirectNodeRoutes"] is True
    assert "tunnelProtocol" not in values


def test_identity_tunnel_kube_proxy_replacement_and_exposure() -> None:
    mesh = load_stack_config(*_dev())
    values = cilium_values(mesh, mesh.cluster("k3scl2"))
    assert values["cluster"] == {"name": "k3scl2", "id": 2}
    assert (values["routingMode"], values["tunnelProtocol"]) == ("tunnel", "vxlan")
    assert values["kubeProxyReplacement"] is True
    assert (values["k8sServiceHost"], values["k8sServicePort"]) == ("172.17.11.75", 6443)
    apiserver = values["clustermesh"]["apiserver"]
    assert apiserver["service"] == {
        "type": "LoadBalancer",
        "loadBalancerSourceRanges": ["172.17.11.0/24"],
        "loadBalancerIP": "172.17.11.202",
    }
    assert apiserver["kvstoremesh"] == {"enabled": True}
    assert values["clustermesh"]["useAPIServer"] is True
    assert values["clustermesh"]["maxConnectedClusters"] == 255


def test_kube_proxy_replacement_without_a_host_looks_it_up() -> None:
    mesh = mesh_of(cluster("a", 1, "10.1.0.0/16", kubeProxyReplacement=True))
    values = cilium_values(mesh, mesh.clusters[0])
    assert values["k8sServiceHost"] == "auto"
    assert "k8sServicePort" not in values
    plain = mesh_of(cluster("a", 1, "10.1.0.0/16"))
    assert "k8sServiceHost" not in cilium_values(plain, plain.clusters[0])


def test_nodeport_exposure() -> None:
    mesh = MESHES["nodeport geneve"]()
    service = cilium_values(mesh, mesh.clusters[0])["clustermesh"]["apiserver"]["service"]
    assert service == {"type": "NodePort", "nodePort": 32001}


def test_a_hostname_without_a_zone_is_published_by_external_dns_beside_the_mesh_annotations() -> None:
    mesh = MESHES["nlb with hostname"]()
    service = cilium_values(mesh, mesh.clusters[0])["clustermesh"]["apiserver"]["service"]
    assert service["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
        "external-dns.alpha.kubernetes.io/hostname": "eks1.mesh.example.net",
    }
    zoned = mesh_of(
        cluster("eks1", 1, "10.1.0.0/16", apiserverExposure={"hostname": "eks1.example.net", "route53ZoneId": "Z1"})
    )
    assert "annotations" not in cilium_values(zoned, zoned.clusters[0])["clustermesh"]["apiserver"]["service"], (
        "with Route 53 the program owns the record; external-dns must not fight over it"
    )


def test_chart_peer_list_stays_off_and_values_name_no_peer() -> None:
    """Peers in Helm values would make each release depend on the others and a later helm upgrade drop them."""
    alone = mesh_of(cluster("a", 1, "10.1.0.0/16"))
    crowded = mesh_of(cluster("a", 1, "10.1.0.0/16"), cluster("b", 2, "10.2.0.0/16"), cluster("c", 3, "10.3.0.0/16"))
    values = cilium_values(crowded, crowded.clusters[0])
    assert values == cilium_values(alone, alone.clusters[0])
    assert values["clustermesh"]["config"]["enabled"] is False
    assert '"b"' not in json.dumps(values) and '"c"' not in json.dumps(values)


def test_wireguard_encryption_is_on_in_every_cluster_only_when_the_mesh_asks() -> None:
    clusters = [cluster("alpha", 1, "10.11.0.0/16"), cluster("beta", 2, "10.12.0.0/16")]
    encrypted = mesh_of(*clusters, encryption="wireguard")
    for spec in encrypted.clusters:
        values = cilium_values(encrypted, spec)
        assert values["encryption"] == {"enabled": True, "type": "wireguard"}
        jsonschema.validate(merged(values), SCHEMA)
    plain = mesh_of(*clusters)
    assert all("encryption" not in cilium_values(plain, spec) for spec in plain.clusters)


def test_an_unknown_encryption_is_reported_with_its_key() -> None:
    raw = raw_config([cluster("alpha", 1, "10.11.0.0/16")], encryption="ipsec")
    with pytest.raises(ConfigError) as refused:
        load_stack_config(raw)
    assert [str(p) for p in refused.value.problems] == [
        "encryption: must be one of 'none' or 'wireguard' (got 'ipsec')"
    ]


def test_chained_eks_clusters_get_router_addresses_of_their_own() -> None:
    """Chained on aws-cni, cluster-pool only addresses `cilium_host`: a distinct range per cluster, outside the VPCs."""
    stack = load_stack(PROJECT_DIR, stack="eks-60")
    mesh = load_stack_config(stack.config, stack.secret_keys)
    pools = []
    for spec in mesh.clusters:
        values = cilium_values(mesh, spec)
        assert values["cni"]["chainingMode"] == "aws-cni"
        (pool,) = values["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"]
        network = ipaddress.IPv4Network(pool)
        assert network.subnet_of(ipaddress.IPv4Network("100.64.0.0/10"))
        assert not any(network.overlaps(c.node_cidr) for c in mesh.clusters if c.node_cidr is not None)
        pools.append(network)
    assert len(set(pools)) == len(pools) == 60
