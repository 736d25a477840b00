"""The clustermesh configuration each cluster reads about its peers, rendered as Cilium's chart would.

Layout (Cilium 1.20 chart, templates/clustermesh-config): Secret `cilium-clustermesh`, mounted by the
agents, holds one etcd client config per remote cluster, the file name being the cluster name. With
KVStoreMesh, `cilium-kvstoremesh` (mounted by the kvstoremesh container) holds the remote configs and
the agents' entries all point at the local clustermesh-apiserver. The shared-CA layout is used: every
cluster presents its own `clustermesh-apiserver-remote-cert`, projected as `common-etcd-client.*`.

Each config names `https://<cluster>.<domain>:<port>`. On Cilium 1.20 the address of that name travels
in the file (`cilium-host-aliases`), so a peer joining changes a Secret and restarts nothing; on 1.19
it needs `hostAliases` in a pod template (see `address_patch`). A cluster given its own DNS name
(`apiserverExposure.hostname`) is dialled by that name instead, which DNS resolves.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

import yaml

from clustermesh import cilium
from clustermesh.model import MeshConfig

MOUNT = "/var/lib/cilium/clustermesh"
APISERVER_PORT = 2379
AGENT_SECRET = "cilium-clustermesh"
KVSTOREMESH_SECRET = "cilium-kvstoremesh"
LOCAL_APISERVER = f"https://clustermesh-apiserver.{cilium.NAMESPACE}.svc:{APISERVER_PORT}"
HOST_ALIASES_MINOR = 20
"""First Cilium minor that reads `cilium-host-aliases` from the config file."""

Manifest = dict[str, Any]


@dataclass(frozen=True)
class PeerAddress:
    """How peers reach a cluster's clustermesh-apiserver.

    Either `<cluster>.<domain>` mapped to `ips` in the peers' own configuration, or, with `hostname`, a
    DNS name dialled as is (the chart's `address` entries), for load balancers that report no IP.
    """

    ips: tuple[str, ...]
    port: int
    hostname: str | None = None

    @property
    def reached_at(self) -> list[str]:
        """What a peer connects to: the hostname, or else the IPs."""
        return [self.hostname] if self.hostname else list(self.ips)


@dataclass(frozen=True)
class ServiceTarget:
    """What a clustermesh-apiserver Service answers on, as its cloud reports it: IPs, or only a hostname."""

    ips: tuple[str, ...] = ()
    hostname: str | None = None


def peer_hostname(mesh: MeshConfig, name: str) -> str:
    """The name under which the mesh knows cluster `name`: its server certificate always carries it."""
    return f"{name}.{mesh.domain}"


def peer_address(mesh: MeshConfig, name: str, target: ServiceTarget, port: int) -> PeerAddress:
    """The address of cluster `name` mapped from its Service's IPs; a hostname alone cannot be mapped."""
    if not target.ips:
        index = next(i for i, c in enumerate(mesh.clusters) if c.name == name)
        found = f"reports only the hostname {target.hostname}" if target.hostname else "has no address yet"
        raise ValueError(
            f"the clustermesh-apiserver LoadBalancer of cluster {name} {found}: set "
            f"clusters[{index}].apiserverExposure.hostname to a DNS name for it, or pin loadBalancerIP"
        )
    return PeerAddress(sorted_ips(target.ips), port)


def dns_record(target: ServiceTarget) -> tuple[str, list[str]]:
    """The DNS record type and values that point a cluster's hostname at its Service."""
    if target.hostname and not target.ips:
        return "CNAME", [target.hostname]
    versions = {ip_address(ip).version for ip in target.ips}
    if versions == {4}:
        return "A", list(sorted_ips(target.ips))
    if versions == {6}:
        return "AAAA", list(sorted_ips(target.ips))
    raise ValueError(f"cannot point one DNS record at {', '.join(target.ips) or 'no address'}: give one IP family")


def aliases_in_config(mesh: MeshConfig) -> bool:
    """Whether the peers' addresses travel in the configuration files; before 1.20 a pod-template patch carries them."""
    return mesh.cilium_minor >= HOST_ALIASES_MINOR


def dump_yaml(document: Mapping[str, Any]) -> str:
    """A block-style YAML document in key order, by libyaml's emitter: a mesh writes one per cluster, and
    PyYAML's pure-Python emitter costs seconds at a few hundred clusters."""
    return yaml.dump(dict(document), Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False)


def remote_config(mesh: MeshConfig, name: str, address: PeerAddress) -> str:
    """The etcd client config for reaching cluster `name` with the shared-CA `common-` files."""
    host = address.hostname or peer_hostname(mesh, name)
    document: dict[str, Any] = {
        "endpoints": [f"https://{host}:{address.port}"],
        "trusted-ca-file": f"{MOUNT}/common-etcd-client-ca.crt",
        "key-file": f"{MOUNT}/common-etcd-client.key",
        "cert-file": f"{MOUNT}/common-etcd-client.crt",
    }
    if aliases_in_config(mesh) and address.hostname is None:
        document["cilium-host-aliases"] = [{"hostname": peer_hostname(mesh, name), "ips": list(address.ips)}]
    return dump_yaml(document)


LOCAL_CONFIG = dump_yaml(
    {
        "endpoints": [LOCAL_APISERVER],
        "trusted-ca-file": f"{MOUNT}/local-etcd-client-ca.crt",
        "key-file": f"{MOUNT}/local-etcd-client.key",
        "cert-file": f"{MOUNT}/local-etcd-client.crt",
    }
)
"""With KVStoreMesh, what agents get for every remote cluster: their local clustermesh-apiserver's cache."""


def encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


LOCAL_ENTRY = encoded(LOCAL_CONFIG)


@dataclass(frozen=True)
class EncodedPeers:
    """Every cluster's remote entry, rendered and base64-encoded once for the whole mesh.

    A cluster's Secret is then this mapping minus its own name: building it costs a dict copy per
    cluster, not a render per pair, which keeps a 511-cluster mesh linear in rendering work.
    """

    remote: Mapping[str, str]


def encode_peers(mesh: MeshConfig, addresses: Mapping[str, PeerAddress]) -> EncodedPeers:
    return EncodedPeers(
        remote={name: encoded(remote_config(mesh, name, addresses[name])) for name in sorted(addresses)}
    )


def _secret(name: str, data: Mapping[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": cilium.NAMESPACE},
        "type": "Opaque",
        "data": dict(data),
    }


def remote_secret_name(mesh: MeshConfig) -> str:
    """The Secret that reaches the other clusters: the kvstoremesh container's with KVStoreMesh, else the agents'."""
    return KVSTOREMESH_SECRET if mesh.kvstoremesh else AGENT_SECRET


def remote_secret(mesh: MeshConfig, local: str, peers: EncodedPeers) -> Manifest:
    """The Secret through which cluster `local` reaches its peers: one entry per other cluster, never its own."""
    return _secret(remote_secret_name(mesh), {name: text for name, text in peers.remote.items() if name != local})


def local_agent_secret(mesh: MeshConfig, local: str, names: Iterable[str]) -> Manifest | None:
    """With KVStoreMesh, the agents' Secret: an entry per other cluster, each pointing at the local cache.

    It depends on the peers' names only, never on their addresses: it is known at preview and waits on
    no other cluster. Without KVStoreMesh the agents read `remote_secret` instead.
    """
    if not mesh.kvstoremesh:
        return None
    return _secret(AGENT_SECRET, dict.fromkeys(sorted(set(names) - {local}), LOCAL_ENTRY))


def host_aliases(mesh: MeshConfig, local: str, addresses: Mapping[str, PeerAddress]) -> list[dict[str, Any]]:
    """Pod `hostAliases` resolving every other cluster's name, for Cilium before 1.20 (DNS resolves hostnames)."""
    by_ip: dict[str, list[str]] = {}
    for name in sorted(addresses):
        if name != local and addresses[name].hostname is None:
            for ip in addresses[name].ips:
                by_ip.setdefault(ip, []).append(peer_hostname(mesh, name))
    return [{"ip": ip, "hostnames": names} for ip, names in by_ip.items()]


def address_patch(mesh: MeshConfig, local: str, addresses: Mapping[str, PeerAddress]) -> Manifest:
    """On Cilium 1.19, the patch that puts the peers' names into the pods that dial them.

    Agents dial peers without KVStoreMesh; with it, only the clustermesh-apiserver does. Only where the
    names do not travel in the configuration itself (`aliases_in_config`): on 1.20 no pod template is touched.
    """
    kind, name = address_patch_target(mesh)
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": cilium.NAMESPACE,
            # The chart owns the rest of this object; the patch takes only hostAliases.
            "annotations": {"pulumi.com/patchForce": "true"},
        },
        "spec": {"template": {"spec": {"hostAliases": host_aliases(mesh, local, addresses)}}},
    }


def address_patch_target(mesh: MeshConfig) -> tuple[str, str]:
    """The kind and name of the workload whose pods dial the peers (see `address_patch`)."""
    return ("Deployment", "clustermesh-apiserver") if mesh.kvstoremesh else ("DaemonSet", "cilium")


def sorted_ips(ips: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(set(ips)))
