"""RKE2, k3s or kubeadm on a node: its config file, and the scripts that install and remove it over SSH.

The scripts are sent as a `remote.Command`'s `create` and `delete` and hold no secret: the node's config (with
the join token) and, on the servers that take them, the cluster's CA keys arrive on the command's stdin as one
`secret_bundle`. RKE2 and k3s read `config.yaml` keys named as their CLI flags (k3s
docs/installation/configuration.md, rke2-docs docs/install/configuration.md); RKE2 is built on k3s and keeps
most of its keys, but drops some (`cluster-init`, `flannel-backend`, `disable-network-policy`: rancher/rke2
pkg/cli/cmds/server.go) and adds its own (`cni`, `ingress-controller`). kubeadm reads its own configuration
documents (`clustermesh.render.kubeadm`), and the script installs it as kubernetes/website's "Installing kubeadm"
does: containerd, then kubelet, kubeadm and kubectl from the pkgs.k8s.io repository of the cluster's minor release.
"""

from __future__ import annotations

import base64
import gzip
import io
import re
import shlex
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import PurePosixPath
from typing import Any

import yaml

from clustermesh.model.openstack import APISERVER_PORT, DistroName, Node, NodeRole, OpenStackCluster
from clustermesh.render import kubeadm

RKE2_SUPERVISOR_PORT = 9345
"""Where an RKE2 server registers new nodes; the Kubernetes API stays on 6443 (rke2-docs
docs/install/quickstart.md). k3s serves both on 6443."""
CLUSTER_DNS_OFFSET = 10
"""CoreDNS's Service address is the service CIDR's 10th address, as both distributions' defaults
(10.43.0.0/16 and 10.43.0.10) and kubeadm's place it."""
SERVICE_TIMEOUT_SECONDS = 900
"""How long the script waits for the service to report ready: a first server pulls every image first."""
API_TIMEOUT_SECONDS = 600
BUNDLE_FILE_MODE = 0o600
KUBERNETES_DIR = "/etc/kubernetes"
KUBEADM_CONFIG_PATH = "/etc/kubernetes/clustermesh-kubeadm.yaml"
KUBEADM_ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"
KUBEADM_KUBELET_KUBECONFIG = "/etc/kubernetes/kubelet.conf"
"""Written by kubeadm init and join alike once the node is set up: a join that left it is done."""
KUBEADM_TIMEOUT_SECONDS = 900
KUBEADM_PACKAGES = ("kubelet", "kubeadm", "kubectl")
KUBEADM_REPOSITORY = "https://pkgs.k8s.io/core:/stable:/{minor}/deb/"
"""One repository per minor release, its signing key at `Release.key` beside the packages (kubernetes/website
content/en/docs/setup/production-environment/tools/kubeadm/install-kubeadm.md)."""
KUBEADM_KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
KUBEADM_SOURCES = "/etc/apt/sources.list.d/kubernetes.list"
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CNI_CONFIG_DIR = "/etc/cni/net.d"
"""kubeadm reset leaves the CNI configuration ("The reset process does not clean CNI configuration")."""
_KUBERNETES_RELEASE = re.compile(r"v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)")


@dataclass(frozen=True)
class _Layout:
    """Where one distribution keeps things, and how its installer is driven."""

    data_dir: str
    config_dir: str
    admin_kubeconfig: str
    join_port: int
    installer_url: str
    binaries: tuple[str, ...]
    """Where the installer may put the binary: the first executable one is the installed version."""
    uninstallers: tuple[tuple[str, ...], tuple[str, ...]]
    """Uninstall scripts for a server, and for an agent, wherever the installer put them."""


_RKE2_UNINSTALLERS = (
    "/usr/local/bin/rke2-uninstall.sh",
    "/opt/rke2/bin/rke2-uninstall.sh",
    "/usr/bin/rke2-uninstall.sh",
)

_LAYOUTS = {
    # The tarball method unpacks into /usr/local, or /opt/rke2 when /usr/local is read-only; the RPM method into
    # /usr (rancher/rke2 install.sh; rke2-docs docs/install/uninstall.md). One uninstall script for both roles.
    DistroName.RKE2: _Layout(
        data_dir="/var/lib/rancher/rke2",
        config_dir="/etc/rancher/rke2",
        admin_kubeconfig="/etc/rancher/rke2/rke2.yaml",
        join_port=RKE2_SUPERVISOR_PORT,
        installer_url="https://get.rke2.io",
        binaries=("/usr/local/bin/rke2", "/opt/rke2/bin/rke2", "/usr/bin/rke2"),
        uninstallers=(_RKE2_UNINSTALLERS, _RKE2_UNINSTALLERS),
    ),
    # k3s's installer uses /usr/local/bin, or /opt/bin when that is read-only, and names the uninstall script
    # after the service: k3s-uninstall.sh for `k3s`, k3s-agent-uninstall.sh for `k3s-agent` (k3s install.sh).
    DistroName.K3S: _Layout(
        data_dir="/var/lib/rancher/k3s",
        config_dir="/etc/rancher/k3s",
        admin_kubeconfig="/etc/rancher/k3s/k3s.yaml",
        join_port=APISERVER_PORT,
        installer_url="https://get.k3s.io",
        binaries=("/usr/local/bin/k3s", "/opt/bin/k3s"),
        uninstallers=(
            ("/usr/local/bin/k3s-uninstall.sh", "/opt/bin/k3s-uninstall.sh"),
            ("/usr/local/bin/k3s-agent-uninstall.sh", "/opt/bin/k3s-agent-uninstall.sh"),
        ),
    ),
}


def _layout(cluster: OpenStackCluster) -> _Layout:
    layout = _LAYOUTS.get(cluster.distro.name)
    if layout is None:
        raise ValueError(f"{cluster.distro.name} is not installed by an installer script of its own")
    return layout


def _is_kubeadm(cluster: OpenStackCluster) -> bool:
    return cluster.distro.name is DistroName.KUBEADM


def data_dir(cluster: OpenStackCluster) -> str:
    """The distribution's state directory (`--data-dir`'s default); its `server/tls` holds the CAs (RKE2, k3s)."""
    return _layout(cluster).data_dir


def config_path(cluster: OpenStackCluster) -> str:
    """The file `config_text` is written to on the node."""
    if _is_kubeadm(cluster):
        return KUBEADM_CONFIG_PATH
    return f"{_layout(cluster).config_dir}/config.yaml"


def admin_kubeconfig_path(cluster: OpenStackCluster) -> str:
    """The kubeconfig a server writes for its local admin (what the install script checks the API with)."""
    if _is_kubeadm(cluster):
        return KUBEADM_ADMIN_KUBECONFIG
    return _layout(cluster).admin_kubeconfig


def service_name(cluster: OpenStackCluster, node: Node) -> str:
    """The systemd unit: rke2-server / rke2-agent (rke2 bundle/lib/systemd), k3s / k3s-agent (k3s install.sh);
    kubeadm's nodes run the kubelet, which starts the rest as static pods."""
    server = node.pool.role is NodeRole.SERVER
    if cluster.distro.name is DistroName.RKE2:
        return "rke2-server" if server else "rke2-agent"
    if _is_kubeadm(cluster):
        return "kubelet"
    return "k3s" if server else "k3s-agent"


def join_url(cluster: OpenStackCluster) -> str:
    """Where every node but the first registers: the first server's supervisor (RKE2, k3s)."""
    return f"https://{_host(str(cluster.first_server.address))}:{_layout(cluster).join_port}"


def receives_cluster_pki(cluster: OpenStackCluster, node: Node) -> bool:
    """Whether `node` gets the cluster's CA files in its bundle.

    RKE2 and k3s: the first server only; other servers fetch them from it when they join. kubeadm: every server, as
    a control-plane node joining without a certificate key must find the shared CAs on disk.
    """
    if _is_kubeadm(cluster):
        return node.pool.role is NodeRole.SERVER
    return node.name == cluster.first_server.name


def config_text(cluster: OpenStackCluster, node: Node, token: str, server_ca_pem: str) -> str:
    """The file written at `config_path` on `node`: RKE2's or k3s's config.yaml; for kubeadm the init documents on
    the first server and a JoinConfiguration, pinning the API CA (`server_ca_pem`), everywhere else."""
    if not _is_kubeadm(cluster):
        return yaml.safe_dump(distro_config(cluster, node, token), sort_keys=True)
    if node.name == cluster.first_server.name:
        documents = kubeadm.init_documents(cluster, node, token)
    else:
        documents = [kubeadm.join_document(cluster, node, token, kubeadm.ca_cert_hash(server_ca_pem))]
    return yaml.safe_dump_all(documents, sort_keys=False)


def node_bundle(
    cluster: OpenStackCluster, node: Node, token: str, server_ca_pem: str, pki_files: Mapping[str, str]
) -> str:
    """What `node`'s install command reads on stdin: its configuration at `config_path`, and the cluster's CA files
    (`pki_files`, path to PEM) where `receives_cluster_pki` says the node takes them."""
    files = {config_path(cluster): config_text(cluster, node, token, server_ca_pem)}
    if receives_cluster_pki(cluster, node):
        files.update(pki_files)
    return secret_bundle(files)


def cluster_dns(cluster: OpenStackCluster) -> str:
    return str(cluster.service_cidr.network_address + CLUSTER_DNS_OFFSET)


def distro_config(cluster: OpenStackCluster, node: Node, token: str) -> dict[str, Any]:
    """The node's `config.yaml`: what it joins with, and on servers the cluster's shape.

    Every server gets the same cluster-wide keys (RKE2 requires cluster-cidr, service-cidr, cluster-dns and
    disable-kube-proxy, among others, to match on every server: rke2-docs docs/reference/server_config.md),
    so they are computed from the cluster alone. Agents carry only what they join with; the kube-proxy
    choice reaches them from the servers.
    """
    if _is_kubeadm(cluster):
        raise ValueError("kubeadm reads its own configuration documents: see config_text")
    config: dict[str, Any] = {"node-name": node.name, "node-ip": str(node.address), "token": token}
    if node.name != cluster.first_server.name:
        config["server"] = join_url(cluster)
    if node.pool.role is NodeRole.SERVER:
        config.update(_server_keys(cluster, node))
    return config


def _server_keys(cluster: OpenStackCluster, node: Node) -> dict[str, Any]:
    pod_cidrs = sorted(cluster.pod_cidrs, key=lambda cidr: cidr.version)  # IPv4 first: the primary family
    keys: dict[str, Any] = {
        "cluster-cidr": ",".join(str(cidr) for cidr in pod_cidrs),
        "service-cidr": str(cluster.service_cidr),
        "cluster-dns": cluster_dns(cluster),
        "disable-kube-proxy": cluster.kube_proxy_replacement,
        # The API is reached at the configured address, or the first server's: the program's kubeconfig and
        # the other nodes must both find their name in the serving certificate.
        "tls-san": list(
            dict.fromkeys(
                str(a) for a in (cluster.api_host, cluster.first_server.address, node.address) if a is not None
            )
        ),
        "write-kubeconfig-mode": "0600",
    }
    if cluster.distro.name is DistroName.RKE2:
        # Cilium is installed from the upstream chart (rancher/rke2#1472: the packaged one lacks Cluster Mesh
        # options). `none` disables every packaged ingress controller: from v1.36 the default is Traefik
        # (rancher/rke2 pkg/cli/cmds/server.go disableExceptSelected; docs/reference/ingress_migration.md).
        # RKE2's ServiceLB is off unless `enable-servicelb` is set, so there is nothing else to turn off.
        keys.update({"cni": "none", "ingress-controller": "none"})
    else:
        # k3s docs/networking/basic-network-options.md, "Custom CNI": no flannel and no built-in network policy
        # controller; Traefik and ServiceLB would take ports and LoadBalancer Services MetalLB or Cilium serve.
        keys.update({"flannel-backend": "none", "disable-network-policy": True, "disable": ["traefik", "servicelb"]})
        if node.name == cluster.first_server.name:
            # Embedded etcd from the start: a cluster started on SQLite cannot take more servers later.
            keys["cluster-init"] = True
    return keys


def _host(address: str) -> str:
    return f"[{address}]" if ip_address(address).version == 6 else address


def secret_bundle(files: Mapping[str, str]) -> str:
    """`files` (absolute path -> text) as the base64 of a tar.gz that the install script extracts at `/`.

    Byte-identical for identical input (sorted members, mtime 0, uid/gid 0, a gzip header without time or
    name), so a re-run hands the command the same stdin and Pulumi sees no change. Every member is a regular
    file, 0600 root:root. There are no directory entries: an `etc` entry would set /etc's owner and mode on
    extraction; the script creates missing directories 0700 and leaves existing ones as they are.
    """
    members = sorted((_member_name(path), text) for path, text in files.items())
    names = [name for name, _ in members]
    if len(set(names)) != len(names):
        raise ValueError("two paths name the same file")
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for name, text in members:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = BUNDLE_FILE_MODE
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            archive.addfile(info, io.BytesIO(data))
    return base64.b64encode(raw.getvalue()).decode("ascii")


def _member_name(path: str) -> str:
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts or len(pure.parts) < 2 or str(pure) != path:
        raise ValueError(f"{path!r} is not a normalised absolute file path")
    return str(pure.relative_to("/"))


def install_script(cluster: OpenStackCluster, node: Node) -> str:
    """The bash script that installs the pinned release on `node` and starts it (and, on servers, waits for the API).

    It reads the secret bundle from stdin, waits for cloud-init, writes the bundle's files, installs with the
    official installer unless the pinned version is already there, and (re)starts the service when it was
    installed or its config changed. A re-run on a configured node changes nothing. Holds no secret.
    """
    if _is_kubeadm(cluster):
        return _kubeadm_install_script(cluster, node)
    layout = _layout(cluster)
    role = node.pool.role.value
    version = cluster.distro.version
    if cluster.distro.name is DistroName.RKE2:
        install_env = [f"INSTALL_RKE2_VERSION={version}", f"INSTALL_RKE2_TYPE={role}"]
        kubectl = [f"{layout.data_dir}/bin/kubectl"]  # rke2-docs docs/reference/cli_tools.md
    else:
        # The k3s installer starts the service itself; skipping that leaves one place (below) that starts it.
        install_env = [f"INSTALL_K3S_VERSION={version}", f"INSTALL_K3S_EXEC={role}", "INSTALL_K3S_SKIP_START=true"]
        kubectl = []  # the k3s binary's own `kubectl` subcommand, wherever the installer put it
    header = _assignments(
        {
            "NODE": node.name,
            "DISTRO": cluster.distro.name.value,
            "VERSION": version,
            "ROLE": role,
            "SERVICE": service_name(cluster, node),
            "CONFIG": config_path(cluster),
            "ADMIN_KUBECONFIG": layout.admin_kubeconfig,
            "INSTALLER_URL": layout.installer_url,
            "SERVICE_TIMEOUT": str(SERVICE_TIMEOUT_SECONDS),
            "API_TIMEOUT": str(API_TIMEOUT_SECONDS),
            "WAIT_FOR_API": "true" if node.pool.role is NodeRole.SERVER else "false",
        },
        {"BINARIES": list(layout.binaries), "INSTALL_ENV": install_env, "KUBECTL": kubectl},
    )
    return _script(f"Install {cluster.distro.name.value} {version} on {node.name} ({role}).", header, _INSTALL_BODY)


def uninstall_script(cluster: OpenStackCluster, node: Node) -> str:
    """The bash script that removes the distribution from `node`, if it is there (the command's `delete`)."""
    if _is_kubeadm(cluster):
        return _kubeadm_uninstall_script(cluster, node)
    layout = _layout(cluster)
    server = node.pool.role is NodeRole.SERVER
    # A server leaves the cluster first: deleting its Node makes RKE2/k3s remove its etcd member, without which
    # the remaining servers count a dead member and lose quorum as servers go. Agents hold no admin credentials.
    kubectl = [f"{layout.data_dir}/bin/kubectl"] if cluster.distro.name is DistroName.RKE2 else ["k3s", "kubectl"]
    header = _assignments(
        {"NODE": node.name, "ADMIN_KUBECONFIG": layout.admin_kubeconfig if server else ""},
        {"UNINSTALLERS": list(layout.uninstallers[0 if server else 1]), "KUBECTL": kubectl if server else []},
    )
    return _script(f"Remove {cluster.distro.name.value} from {node.name}.", header, _UNINSTALL_BODY)


def _kubeadm_install_script(cluster: OpenStackCluster, node: Node) -> str:
    """Prepares the node as kubernetes/website's "Installing kubeadm" page does, then runs kubeadm init (first
    server) or join (every other node) with the bundle's configuration, once.

    containerd comes from Ubuntu's archive, configured for the systemd cgroup driver, which the kubelet kubeadm
    configures uses (containerd docs/cri/config.md: `SystemdCgroup = true` in runc's options, on containerd 1.x and
    2.x alike). kubelet, kubeadm and kubectl come from the pkgs.k8s.io repository of the cluster's minor release, at
    the pinned patch, and are held (as the page does) so a system upgrade leaves them alone.
    """
    version = cluster.distro.version
    match = _KUBERNETES_RELEASE.fullmatch(version)
    if match is None:
        raise ValueError(f"{version!r} is not a Kubernetes release such as v1.36.3")
    minor = f"v{match['major']}.{match['minor']}"
    first = node.name == cluster.first_server.name
    role = node.pool.role.value
    header = _assignments(
        {
            "NODE": node.name,
            "VERSION": version,
            "PACKAGE_VERSION": version.removeprefix("v"),
            "ROLE": role,
            "ACTION": "init" if first else "join",
            "CONFIG": KUBEADM_CONFIG_PATH,
            "KUBERNETES_DIR": KUBERNETES_DIR,
            # kubeadm init writes admin.conf, join kubelet.conf: either says this node was set up before.
            "DONE_FILE": KUBEADM_ADMIN_KUBECONFIG if first else KUBEADM_KUBELET_KUBECONFIG,
            "ADMIN_KUBECONFIG": KUBEADM_ADMIN_KUBECONFIG,
            "REPOSITORY": KUBEADM_REPOSITORY.format(minor=minor),
            "KEYRING": KUBEADM_KEYRING,
            "SOURCES": KUBEADM_SOURCES,
            "CONTAINERD_CONFIG": CONTAINERD_CONFIG,
            "KUBEADM_TIMEOUT": str(KUBEADM_TIMEOUT_SECONDS),
            "API_TIMEOUT": str(API_TIMEOUT_SECONDS),
            "WAIT_FOR_API": "true" if node.pool.role is NodeRole.SERVER else "false",
        },
        {"PACKAGES": list(KUBEADM_PACKAGES)},
    )
    return _script(f"Install kubeadm {version} on {node.name} ({role}).", header, _KUBEADM_INSTALL_BODY)


def _kubeadm_uninstall_script(cluster: OpenStackCluster, node: Node) -> str:
    server = node.pool.role is NodeRole.SERVER
    header = _assignments(
        {
            "NODE": node.name,
            "ADMIN_KUBECONFIG": KUBEADM_ADMIN_KUBECONFIG if server else "",
            "CONFIG": KUBEADM_CONFIG_PATH,
            "CNI_CONFIG_DIR": CNI_CONFIG_DIR,
        },
        {},
    )
    return _script(f"Remove kubeadm's Kubernetes from {node.name}.", header, _KUBEADM_UNINSTALL_BODY)


def _assignments(scalars: Mapping[str, str], arrays: Mapping[str, list[str]]) -> str:
    lines = [f"readonly {name}={shlex.quote(value)}" for name, value in scalars.items()]
    lines += [f"readonly -a {name}=({' '.join(shlex.quote(v) for v in values)})" for name, values in arrays.items()]
    return "\n".join(lines)


def _script(purpose: str, header: str, body: str) -> str:
    return f"#!/usr/bin/env bash\n# clustermesh: {purpose}\nset -euo pipefail\n\n{header}\n{body}"


_COMMON = r"""
log() { printf '[%s] %s\n' "$NODE" "$*"; }
die() {
    printf '[%s] error: %s\n' "$NODE" "$*" >&2
    exit 1
}

# Cloud images log in as a user with passwordless sudo; -n fails instead of waiting for a password.
as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
    as_root=(sudo -n)
fi
"""

_NODE_FILES = r"""
wait_for_cloud_init() {
    if ! command -v cloud-init >/dev/null 2>&1; then
        return 0
    fi
    log "waiting for cloud-init to finish"
    local status=0
    "${as_root[@]}" cloud-init status --wait >/dev/null || status=$?
    # Since cloud-init 23.4, 2 means done with recoverable errors ("degraded"); only 1 is a failure.
    if [[ "$status" -eq 1 ]]; then
        die "cloud-init failed; see /var/log/cloud-init-output.log"
    fi
}

write_bundle() {
    log "writing the node's configuration"
    # Members are 0600 root:root; the umask makes directories tar creates 0700, and --no-overwrite-dir leaves
    # existing ones as they are. --touch stamps files now rather than with the bundle's fixed time.
    base64 -d <<<"$bundle" | "${as_root[@]}" sh -c \
        'umask 077 && exec tar -xzf - -C / --no-overwrite-dir --same-owner --same-permissions --touch' ||
        die "could not unpack the bundle read from stdin"
}

"""
"""Waiting for cloud-init, and writing the secret bundle read from stdin: the same on every distribution."""

_INSTALL_BODY = (
    _COMMON
    + r"""
installer=""
trap 'rm -f "$installer"' EXIT

installed_binary() {
    local candidate
    for candidate in "${BINARIES[@]}"; do
        if [[ -x "$candidate" ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

installed_version() {
    local binary
    binary="$(installed_binary)" || return 0
    # "<name> version v1.36.3+rke2r1 (<commit>)": the third word of the first line.
    "$binary" --version 2>/dev/null | awk 'NR == 1 { print $3 }' || true
}

config_digest() {
    "${as_root[@]}" sha256sum "$CONFIG" 2>/dev/null | cut -d ' ' -f 1 || true
}
"""
    + _NODE_FILES
    + r"""install_release() {
    installer="$(mktemp)"
    log "downloading the installer from $INSTALLER_URL"
    curl -sfL --retry 5 --retry-connrefused -o "$installer" "$INSTALLER_URL" ||
        die "could not download $INSTALLER_URL"
    log "installing $DISTRO $VERSION ($ROLE)"
    # env, because sudo resets the environment the installer reads its settings from.
    "${as_root[@]}" env "${INSTALL_ENV[@]}" sh "$installer"
}

run_service() {
    local action=$1
    "${as_root[@]}" systemctl enable "$SERVICE"
    log "${action}ing $SERVICE"
    # The units are Type=notify: this returns when the service reports ready, or fails when it exits.
    if ! "${as_root[@]}" timeout "$SERVICE_TIMEOUT" systemctl "$action" "$SERVICE"; then
        "${as_root[@]}" journalctl -u "$SERVICE" -n 40 --no-pager >&2 || true
        die "$SERVICE did not become ready within ${SERVICE_TIMEOUT}s (its last log lines are above)"
    fi
}

wait_for_api() {
    local kubectl=("${KUBECTL[@]}")
    if [[ ${#kubectl[@]} -eq 0 ]]; then
        kubectl=("$(installed_binary)" kubectl)
    fi
    log "waiting for the Kubernetes API to answer /readyz"
    local deadline=$((SECONDS + API_TIMEOUT))
    until "${as_root[@]}" "${kubectl[@]}" --kubeconfig "$ADMIN_KUBECONFIG" get --raw=/readyz >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            die "the Kubernetes API of this server did not answer /readyz within ${API_TIMEOUT}s"
        fi
        sleep 5
    done
    log "the Kubernetes API is ready"
}

bundle="$(cat)"
if [[ -z "$bundle" ]]; then
    die "no configuration bundle on stdin"
fi

wait_for_cloud_init
before="$(config_digest)"
write_bundle
action=start
if [[ "$(config_digest)" != "$before" ]]; then
    action=restart
fi

current="$(installed_version)"
if [[ "$current" == "$VERSION" ]]; then
    log "$DISTRO $VERSION is already installed"
else
    if [[ -n "$current" ]]; then
        log "replacing $DISTRO $current"
    fi
    install_release
    action=restart
fi

run_service "$action"
if [[ "$WAIT_FOR_API" == true ]]; then
    wait_for_api
fi
log "done"
"""
)

_CILIUM_CLEANUP = r"""
# Cilium's interfaces and iptables rules go first, or the host may lose its network (and this session) when
# the service stops (k3s docs/networking/basic-network-options.md, "Custom CNI", Cilium).
log "removing Cilium's interfaces and iptables rules"
for link in cilium_host cilium_net cilium_vxlan; do
    "${as_root[@]}" ip link delete "$link" 2>/dev/null || true
done
for tables in iptables ip6tables; do
    if command -v "$tables-save" >/dev/null 2>&1; then
        "${as_root[@]}" sh -c "$tables-save | grep -iv cilium | $tables-restore" || true
    fi
done

"""

_UNINSTALL_BODY = (
    _COMMON
    + r"""
uninstaller=""
for candidate in "${UNINSTALLERS[@]}"; do
    if [[ -x "$candidate" ]]; then
        uninstaller="$candidate"
        break
    fi
done
if [[ -z "$uninstaller" ]]; then
    log "nothing to remove: no uninstall script"
    exit 0
fi

if [[ -n "$ADMIN_KUBECONFIG" ]] && "${as_root[@]}" test -f "$ADMIN_KUBECONFIG"; then
    log "removing node $NODE from the cluster (and so its etcd member)"
    "${as_root[@]}" "${KUBECTL[@]}" --kubeconfig "$ADMIN_KUBECONFIG" delete node "$NODE" --wait=false \
        --request-timeout=60s || log "could not remove node $NODE from the cluster: remove it with kubectl"
fi
"""
    + _CILIUM_CLEANUP
    + r"""log "running $uninstaller"
"${as_root[@]}" "$uninstaller"
log "done"
"""
)

_KUBEADM_INSTALL_BODY = (
    _COMMON
    + r"""
key_file=""
trap 'rm -f "$key_file"' EXIT

apt_get() {
    # Cloud images upgrade packages at first boot: wait for the dpkg lock rather than fail on it.
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 "$@"
}
"""
    + _NODE_FILES
    + r"""systemd_cgroup_set() {
    "${as_root[@]}" grep -Eq '^[[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*true' "$CONTAINERD_CONFIG" 2>/dev/null
}

install_containerd() {
    if ! command -v containerd >/dev/null 2>&1; then
        log "installing containerd from the distribution's archive"
        apt_get update
        apt_get install containerd
    fi
    if ! systemd_cgroup_set; then
        log "configuring containerd for the systemd cgroup driver"
        "${as_root[@]}" mkdir -p "$(dirname "$CONTAINERD_CONFIG")"
        "${as_root[@]}" containerd config default |
            sed -E 's/^([[:space:]]*)SystemdCgroup = false/\1SystemdCgroup = true/' |
            "${as_root[@]}" tee "$CONTAINERD_CONFIG" >/dev/null
        systemd_cgroup_set || die "containerd's default configuration has no SystemdCgroup option to turn on"
        "${as_root[@]}" systemctl restart containerd
    fi
    "${as_root[@]}" systemctl enable --now containerd
}

add_repository() {
    local entry="deb [signed-by=$KEYRING] $REPOSITORY /"
    if "${as_root[@]}" test -s "$KEYRING" && [[ "$(cat "$SOURCES" 2>/dev/null)" == "$entry" ]]; then
        return 0
    fi
    log "adding the Kubernetes package repository $REPOSITORY"
    if ! command -v gpg >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
        apt_get update
        apt_get install ca-certificates curl gpg
    fi
    key_file="$(mktemp)"
    curl -fsSL --retry 5 --retry-connrefused -o "$key_file" "${REPOSITORY}Release.key" ||
        die "could not download ${REPOSITORY}Release.key"
    "${as_root[@]}" install -d -m 0755 "$(dirname "$KEYRING")"
    "${as_root[@]}" gpg --batch --yes --dearmor -o "$KEYRING" "$key_file"
    "${as_root[@]}" chmod 0644 "$KEYRING"
    printf '%s\n' "$entry" | "${as_root[@]}" tee "$SOURCES" >/dev/null
    "${as_root[@]}" chmod 0644 "$SOURCES"
}

package_version() {
    dpkg-query -W -f="\${Version}" "$1" 2>/dev/null || true
}

packages_installed() {
    local package
    for package in "${PACKAGES[@]}"; do
        # pkgs.k8s.io versions are <release>-<revision>, such as 1.36.3-1.1.
        if [[ "$(package_version "$package")" != "$PACKAGE_VERSION"-* ]]; then
            return 1
        fi
    done
}

install_packages() {
    if packages_installed; then
        log "kubelet, kubeadm and kubectl $VERSION are installed"
        return 0
    fi
    if "${as_root[@]}" test -f "$DONE_FILE"; then
        die "this node runs another Kubernetes version than $VERSION: upgrading it takes kubeadm upgrade"
    fi
    log "installing kubelet, kubeadm and kubectl $VERSION"
    local pinned=() package
    for package in "${PACKAGES[@]}"; do
        pinned+=("$package=$PACKAGE_VERSION-*")
    done
    "${as_root[@]}" apt-mark unhold "${PACKAGES[@]}" >/dev/null 2>&1 || true
    apt_get update
    apt_get install --allow-change-held-packages --allow-downgrades "${pinned[@]}"
    "${as_root[@]}" apt-mark hold "${PACKAGES[@]}" >/dev/null
}

run_kubeadm() {
    if "${as_root[@]}" test -f "$DONE_FILE"; then
        log "kubeadm $ACTION ran before ($DONE_FILE exists)"
        if [[ "$after" != "$before" ]]; then
            log "its configuration changed since: kubeadm reads it only when it sets a node up"
        fi
        return 0
    fi
    log "running kubeadm $ACTION ($ROLE)"
    if ! "${as_root[@]}" timeout "$KUBEADM_TIMEOUT" kubeadm "$ACTION" --config "$CONFIG"; then
        "${as_root[@]}" journalctl -u kubelet -n 40 --no-pager >&2 || true
        # A half-done init or join makes kubeadm's next preflight fail: undo it, so a re-run starts clean (and
        # finds the bundle's files again, which it writes before this).
        log "undoing the partial kubeadm $ACTION"
        "${as_root[@]}" kubeadm reset -f >&2 || true
        die "kubeadm $ACTION failed (the kubelet's last log lines are above)"
    fi
}

wait_for_api() {
    log "waiting for the Kubernetes API to answer /readyz"
    local deadline=$((SECONDS + API_TIMEOUT))
    until "${as_root[@]}" kubectl --kubeconfig "$ADMIN_KUBECONFIG" get --raw=/readyz >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            die "the Kubernetes API of this server did not answer /readyz within ${API_TIMEOUT}s"
        fi
        sleep 5
    done
    log "the Kubernetes API is ready"
}

config_digest() {
    "${as_root[@]}" sha256sum "$CONFIG" 2>/dev/null | cut -d ' ' -f 1 || true
}

bundle="$(cat)"
if [[ -z "$bundle" ]]; then
    die "no configuration bundle on stdin"
fi

wait_for_cloud_init
# As the packages would make it: the bundle's extraction creates missing directories 0700.
"${as_root[@]}" install -d -m 0755 "$KUBERNETES_DIR"
before="$(config_digest)"
write_bundle
after="$(config_digest)"
install_containerd
add_repository
install_packages
"${as_root[@]}" systemctl enable --now kubelet
run_kubeadm
if [[ "$WAIT_FOR_API" == true ]]; then
    wait_for_api
fi
log "done"
"""
)

_KUBEADM_UNINSTALL_BODY = (
    _COMMON
    + r"""
if ! command -v kubeadm >/dev/null 2>&1; then
    log "nothing to remove: kubeadm is not installed"
    exit 0
fi

if [[ -n "$ADMIN_KUBECONFIG" ]] && "${as_root[@]}" test -f "$ADMIN_KUBECONFIG"; then
    # The etcd member first: kubeadm finds it through this node's Node object (it reads the node's registration from
    # the cluster), so once the Node is gone it no longer can, and the other servers would count a dead member.
    log "removing this server's etcd member"
    "${as_root[@]}" kubeadm reset phase remove-etcd-member --kubeconfig "$ADMIN_KUBECONFIG" ||
        log "could not remove this server's etcd member: remove it with etcdctl"
    log "removing node $NODE from the cluster"
    "${as_root[@]}" kubectl --kubeconfig "$ADMIN_KUBECONFIG" delete node "$NODE" --wait=false \
        --request-timeout=60s || log "could not remove node $NODE from the cluster: remove it with kubectl"
fi
"""
    + _CILIUM_CLEANUP
    + r"""log "running kubeadm reset"
"${as_root[@]}" kubeadm reset -f
"${as_root[@]}" rm -rf "$CNI_CONFIG_DIR" "$CONFIG"
log "done"
"""
)


COREDNS_DEPLOYMENTS = {
    DistroName.RKE2: "rke2-coredns-rke2-coredns",
    DistroName.K3S: "coredns",
    DistroName.KUBEADM: "coredns",
}
"""The cluster DNS Deployment (kube-system) each distribution installs."""


def coredns_deployment(cluster: OpenStackCluster) -> str:
    return COREDNS_DEPLOYMENTS[cluster.distro.name]
