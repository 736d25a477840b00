"""Kind `openstack` nodes: cloud-init user data, RKE2/k3s config files, the install and uninstall scripts (kubeadm's
too), the secret bundle they read, and the cluster PKI (join token, kubeconfig). kubeadm's documents are
tests/test_render_kubeadm.py's.

Expected values come from the test's own inputs or from the upstream documents the renderers follow: cloud-init's
own schema (vendored, draft-04), k3s's token format (docs/cli/token.md: sha256 of server-ca.crt as stored), the
documented join ports and files. The scripts run under shellcheck and `bash -n`, and once for real with
stand-ins for the commands that would touch the machine (curl, systemctl, cloud-init).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import ipaddress
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clustermesh.model.openstack import Node, NodeRole, OpenStackCluster
from clustermesh.render import cloud_init, cluster_pki, distro
from clustermesh.validation.mesh import kubeconfig_problems
from policy.rules import SECRET_FORMS
from tests.conftest import DATA

SCHEMA = json.loads((DATA / "cloud-init-26.2" / "schema-cloud-config-v1.json").read_text())
VERSIONS = {"rke2": "v1.36.3+rke2r1", "k3s": "v1.36.3+k3s1", "kubeadm": "v1.36.3"}
JOIN_PORTS = {"rke2": 9345, "k3s": 6443}
"""rke2-docs docs/install/quickstart.md (registration on 9345, the API on 6443); k3s serves both on 6443."""
DATA_DIRS = {"rke2": "/var/lib/rancher/rke2", "k3s": "/var/lib/rancher/k3s"}
CUSTOM_CA_FILES = {
    "server-ca.crt",
    "server-ca.key",
    "client-ca.crt",
    "client-ca.key",
    "request-header-ca.crt",
    "request-header-ca.key",
    "etcd/peer-ca.crt",
    "etcd/peer-ca.key",
    "etcd/server-ca.crt",
    "etcd/server-ca.key",
}
"""k3s docs/cli/certificate.md and rke2-docs docs/security/certificates.md, "Using Custom CA Certificates"
(service.key besides)."""
SERVER_WIDE_KEYS = {"cluster-cidr", "service-cidr", "cluster-dns", "disable-kube-proxy"}
"""Keys RKE2 requires to match on every server (rke2-docs docs/reference/server_config.md)."""
TOKEN = "K10" + "ab" * 32 + "::server:test-password"
SHELLCHECK_HINT = "shellcheck is not installed: run scripts/system_packages.sh"


def stack_cluster(distro_name: str = "rke2", **overrides: Any) -> OpenStackCluster:
    """Three servers and two agents on an existing network, as a stack file writes them."""
    entry: dict[str, Any] = {
        "name": "mesh1",
        "id": 1,
        "kind": "openstack",
        "podCidrs": ["10.1.0.0/16"],
        "serviceCidr": "10.96.0.0/12",
        "openstack": {"cloud": "lab"},
        "network": {
            "existing": {
                "network": "lab-net",
                "subnet": "lab-subnet",
                "cidr": "192.168.10.0/24",
                "dhcpPools": ["192.168.10.100-192.168.10.200"],
            }
        },
        "image": "ubuntu-24.04",
        "flavor": "m1.large",
        "nodePools": [
            {"name": "servers", "role": "server", "count": 3, "addresses": "192.168.10.10-192.168.10.19"},
            {"name": "agents", "role": "agent", "count": 2, "addresses": ["192.168.10.30", "192.168.10.31"]},
        ],
        "distro": {"name": distro_name, "version": VERSIONS[distro_name]},
    }
    entry.update(overrides)
    return OpenStackCluster.model_validate(entry)


def node_kinds(cluster: OpenStackCluster) -> dict[str, Node]:
    servers = [n for n in cluster.nodes if n.pool.role is NodeRole.SERVER]
    agents = [n for n in cluster.nodes if n.pool.role is NodeRole.AGENT]
    return {"first-server": servers[0], "other-server": servers[1], "agent": agents[0]}


def secrets_in(text: str) -> list[str]:
    return [kind for kind, pattern in SECRET_FORMS if pattern.search(text)]


def self_signed_ca(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


# --- cloud-init -------------------------------------------------------------------------------------------------


def test_the_vendored_cloud_init_schema_is_draft_04_and_rejects_an_unknown_key() -> None:
    """A schema that accepted anything would make the validation below vacuous."""
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-04/schema#"
    validator = jsonschema.Draft4Validator(SCHEMA)
    assert not validator.is_valid({"runcmdd": ["true"]})
    assert not validator.is_valid({"write_files": [{"content": "no path"}]})


@pytest.mark.parametrize("distro_name", ["rke2", "k3s", "kubeadm"])
def test_user_data_is_valid_cloud_config(distro_name: str) -> None:
    """cloud-init ignores, with only a warning in its log, keys it does not know: the VM would boot unprepared."""
    document = cloud_init.user_data(stack_cluster(distro_name))
    assert document.startswith("#cloud-config\n")
    jsonschema.Draft4Validator(SCHEMA).validate(yaml.safe_load(document))


@pytest.mark.parametrize("distro_name", ["rke2", "k3s", "kubeadm"])
def test_user_data_holds_no_secret_and_no_node_value(distro_name: str) -> None:
    """Nova keeps user data in clear, and a change to it replaces the VM: no secret, and nothing a new node changes."""
    cluster = stack_cluster(distro_name)
    document = cloud_init.user_data(cluster)
    assert secrets_in(document) == []
    assert "PRIVATE KEY" not in document and "K10" not in document
    for node in cluster.nodes:
        assert node.name not in document and str(node.address) not in document
    grown = stack_cluster(
        distro_name,
        nodePools=[
            {"name": "servers", "role": "server", "count": 5, "addresses": "192.168.10.10-192.168.10.19"},
            {"name": "agents", "role": "agent", "count": 4, "addresses": "192.168.10.30-192.168.10.39"},
        ],
    )
    assert len(grown.nodes) > len(cluster.nodes)
    assert cloud_init.user_data(grown) == document


def test_user_data_turns_off_reverse_path_filtering_on_ciliums_interfaces() -> None:
    """systemd >= 245 applies its rp_filter glob to Cilium's interfaces, which drops the packets Cilium routes."""
    files = yaml.safe_load(cloud_init.user_data(stack_cluster()))["write_files"]
    sysctl = next(f for f in files if f["path"].startswith("/etc/sysctl.d/"))
    lines = sysctl["content"].splitlines()
    assert "-net.ipv4.conf.lxc*.rp_filter = 0" in lines
    assert "-net.ipv4.conf.cilium_*.rp_filter = 0" in lines
    assert "net.ipv4.conf.all.rp_filter = 0" in lines


def test_kubeadm_user_data_prepares_what_kubeadms_preflight_checks() -> None:
    """kubernetes/website container-runtimes.md: overlay and br_netfilter loaded (and at every boot), bridged traffic
    through iptables, forwarding on; install-kubeadm.md: swap off. The bridge keys exist only once br_netfilter is in."""
    document = yaml.safe_load(cloud_init.user_data(stack_cluster("kubeadm")))
    files = {f["path"]: f["content"] for f in document["write_files"]}
    modules = next(c for p, c in files.items() if p.startswith("/etc/modules-load.d/"))
    assert set(modules.split()) == {"overlay", "br_netfilter"}
    sysctl = next(c for p, c in files.items() if p.startswith("/etc/sysctl.d/") and "ip_forward" in c)
    settings = dict(line.replace(" ", "").split("=") for line in sysctl.splitlines() if line.strip())
    assert settings == {
        "net.ipv4.ip_forward": "1",
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.bridge.bridge-nf-call-ip6tables": "1",
    }
    commands = document["runcmd"]
    assert commands[0] == "set -e"
    assert commands.index("systemctl restart systemd-modules-load.service") < commands.index(
        "systemctl restart systemd-sysctl.service"
    )
    assert "swapoff -a" in commands
    assert any("/etc/fstab" in c and "swap" in c for c in commands)


@pytest.mark.parametrize("distro_name", ["rke2", "k3s"])
def test_rke2_and_k3s_user_data_leave_kernel_modules_and_swap_to_the_distribution(distro_name: str) -> None:
    document = yaml.safe_load(cloud_init.user_data(stack_cluster(distro_name)))
    assert [f["path"] for f in document["write_files"]] == ["/etc/sysctl.d/99-zzz-override_cilium.conf"]
    assert not any("swap" in c or "modules-load" in c for c in document["runcmd"])


# --- distro config ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("distro_name", ["rke2", "k3s"])
def test_agents_carry_only_what_they_join_with(distro_name: str) -> None:
    cluster = stack_cluster(distro_name)
    agent = node_kinds(cluster)["agent"]
    config = distro.distro_config(cluster, agent, TOKEN)
    assert config == {
        "server": f"https://192.168.10.10:{JOIN_PORTS[distro_name]}",
        "token": TOKEN,
        "node-ip": "192.168.10.30",
        "node-name": "mesh1-agents-0",
    }


@pytest.mark.parametrize("distro_name", ["rke2", "k3s"])
def test_every_node_but_the_first_joins_the_first_server_on_its_registration_port(distro_name: str) -> None:
    cluster = stack_cluster(distro_name)
    first, *others = cluster.nodes
    assert "server" not in distro.distro_config(cluster, first, TOKEN)
    for node in others:
        assert distro.distro_config(cluster, node, TOKEN)["server"] == (
            f"https://{first.address}:{JOIN_PORTS[distro_name]}"
        )


@pytest.mark.parametrize("distro_name", ["rke2", "k3s"])
def test_servers_agree_on_the_cluster_wide_keys(distro_name: str) -> None:
    """A server whose cluster-cidr, service-cidr, cluster-dns or kube-proxy choice differs is refused by RKE2."""
    cluster = stack_cluster(distro_name, kubeProxyReplacement=True)
    servers = [n for n in cluster.nodes if n.pool.role is NodeRole.SERVER]
    configs = [distro.distro_config(cluster, n, TOKEN) for n in servers]
    expected = {
        "cluster-cidr": "10.1.0.0/16",
        "service-cidr": "10.96.0.0/12",
        "cluster-dns": str(ipaddress.ip_network("10.96.0.0/12")[10]),
        "disable-kube-proxy": True,
    }
    for config in configs:
        assert {k: config[k] for k in SERVER_WIDE_KEYS} == expected
        assert config["token"] == TOKEN
        assert config["write-kubeconfig-mode"] == "0600"


def test_the_cluster_dns_address_is_the_tenth_of_the_service_cidr() -> None:
    cluster = stack_cluster(serviceCidr="172.20.64.0/18")
    config = distro.distro_config(cluster, cluster.first_server, TOKEN)
    assert config["cluster-dns"] == str(ipaddress.ip_network("172.20.64.0/18").network_address + 10)


def test_dual_stack_pod_cidrs_are_joined_ipv4_first() -> None:
    cluster = stack_cluster(podCidrs=["fd00:10:1::/56", "10.1.0.0/16"])
    config = distro.distro_config(cluster, cluster.first_server, TOKEN)
    assert config["cluster-cidr"] == "10.1.0.0/16,fd00:10:1::/56"


def test_k3s_starts_embedded_etcd_on_the_first_server_only() -> None:
    """Without cluster-init the first k3s server runs SQLite, and no other server can ever join it."""
    cluster = stack_cluster("k3s")
    kinds = node_kinds(cluster)
    assert distro.distro_config(cluster, kinds["first-server"], TOKEN)["cluster-init"] is True
    assert "cluster-init" not in distro.distro_config(cluster, kinds["other-server"], TOKEN)
    assert "cluster-init" not in distro.distro_config(cluster, kinds["agent"], TOKEN)


def test_k3s_servers_leave_networking_to_cilium() -> None:
    cluster = stack_cluster("k3s")
    config = distro.distro_config(cluster, cluster.first_server, TOKEN)
    assert config["flannel-backend"] == "none"
    assert config["disable-network-policy"] is True
    assert {"traefik", "servicelb"} <= set(config["disable"])
    assert "cni" not in config


def test_rke2_servers_leave_networking_to_cilium_and_run_no_ingress() -> None:
    """RKE2 drops k3s's flannel and cluster-init keys; its own are cni and ingress-controller (none of either)."""
    cluster = stack_cluster("rke2")
    for node in (n for n in cluster.nodes if n.pool.role is NodeRole.SERVER):
        config = distro.distro_config(cluster, node, TOKEN)
        assert config["cni"] == "none"
        assert config["ingress-controller"] == "none"
        assert not {"flannel-backend", "disable-network-policy", "cluster-init"} & set(config)


def test_the_serving_certificate_names_the_api_address_and_the_first_server() -> None:
    cluster = stack_cluster(apiAddress="192.168.10.5")
    second = node_kinds(cluster)["other-server"]
    sans = distro.distro_config(cluster, second, TOKEN)["tls-san"]
    assert {"192.168.10.5", "192.168.10.10", str(second.address)} <= set(sans)
    assert len(sans) == len(set(sans))


def test_kube_proxy_follows_the_clusters_choice() -> None:
    for choice in (False, True):
        cluster = stack_cluster(kubeProxyReplacement=choice)
        assert distro.distro_config(cluster, cluster.first_server, TOKEN)["disable-kube-proxy"] is choice


# --- scripts ----------------------------------------------------------------------------------------------------


def all_scripts() -> list[tuple[str, str]]:
    scripts = []
    for distro_name in ("rke2", "k3s", "kubeadm"):
        cluster = stack_cluster(distro_name)
        for kind, node in node_kinds(cluster).items():
            scripts.append((f"{distro_name}-{kind}-install", distro.install_script(cluster, node)))
            scripts.append((f"{distro_name}-{kind}-uninstall", distro.uninstall_script(cluster, node)))
    return scripts


SCRIPTS = all_scripts()


@pytest.mark.parametrize(("name", "script"), SCRIPTS, ids=[name for name, _ in SCRIPTS])
def test_script_passes_shellcheck_and_bash_syntax(name: str, script: str, tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail(SHELLCHECK_HINT)
    path = tmp_path / f"{name}.sh"
    path.write_text(script)
    checked = subprocess.run([shellcheck, "-s", "bash", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    parsed = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert parsed.returncode == 0, parsed.stderr


@pytest.mark.parametrize(("name", "script"), SCRIPTS, ids=[name for name, _ in SCRIPTS])
def test_script_holds_no_secret(name: str, script: str) -> None:
    """The scripts are the command's create and delete, which Pulumi shows in previews and keeps in clear."""
    assert secrets_in(script) == [], name
    assert script.startswith("#!/usr/bin/env bash\n")


@pytest.mark.parametrize("distro_name", ["rke2", "k3s"])
def test_install_script_pins_the_version_with_the_official_installer(distro_name: str) -> None:
    cluster = stack_cluster(distro_name)
    kinds = node_kinds(cluster)
    server, agent = (
        distro.install_script(cluster, kinds["first-server"]),
        distro.install_script(cluster, kinds["agent"]),
    )
    prefix = "INSTALL_RKE2" if distro_name == "rke2" else "INSTALL_K3S"
    assert f"{prefix}_VERSION={VERSIONS[distro_name]}" in server
    assert f"https://get.{distro_name}.io" in server
    role_variable = "INSTALL_RKE2_TYPE" if distro_name == "rke2" else "INSTALL_K3S_EXEC"
    assert f"{role_variable}=server" in server and f"{role_variable}=agent" in agent


@pytest.mark.parametrize(
    ("distro_name", "kind", "uninstaller"),
    [
        ("rke2", "first-server", "rke2-uninstall.sh"),
        ("rke2", "agent", "rke2-uninstall.sh"),
        ("k3s", "first-server", "k3s-uninstall.sh"),
        ("k3s", "agent", "k3s-agent-uninstall.sh"),
    ],
)
def test_uninstall_script_runs_the_installers_uninstaller(distro_name: str, kind: str, uninstaller: str) -> None:
    """The installers name it: rke2-uninstall.sh for both roles; k3s after the service (k3s, k3s-agent)."""
    cluster = stack_cluster(distro_name)
    script = distro.uninstall_script(cluster, node_kinds(cluster)[kind])
    assert f"/usr/local/bin/{uninstaller}" in script
    if distro_name == "k3s" and kind == "first-server":
        assert "k3s-agent-uninstall.sh" not in script


@pytest.mark.parametrize("distro_name", ["rke2", "k3s"])
def test_a_server_leaves_the_cluster_before_it_is_uninstalled(distro_name: str) -> None:
    """Deleting the Node is what makes RKE2/k3s drop the server's etcd member; an agent has no admin credentials."""
    cluster = stack_cluster(distro_name)
    kinds = node_kinds(cluster)
    server = distro.uninstall_script(cluster, kinds["first-server"])
    kubeconfig = f"/etc/rancher/{distro_name}/{distro_name}.yaml"
    assert f"readonly ADMIN_KUBECONFIG={kubeconfig}" in server
    assert server.index('delete node "$NODE"') < server.index('"${as_root[@]}" "$uninstaller"')
    agent = distro.uninstall_script(cluster, kinds["agent"])
    assert "readonly ADMIN_KUBECONFIG=''" in agent


KUBEADM_REPOSITORY = "https://pkgs.k8s.io/core:/stable:/v1.36/deb/"
"""kubernetes/website install-kubeadm.md: one repository per minor release, Release.key beside the packages."""


def test_kubeadm_install_script_pins_the_release_from_its_minors_repository() -> None:
    cluster = stack_cluster("kubeadm")
    script = distro.install_script(cluster, cluster.first_server)
    assert f"readonly REPOSITORY={KUBEADM_REPOSITORY}" in script
    assert '"${REPOSITORY}Release.key"' in script
    assert "readonly PACKAGE_VERSION=1.36.3" in script
    assert "readonly -a PACKAGES=(kubelet kubeadm kubectl)" in script
    assert '"$package=$PACKAGE_VERSION-*"' in script
    assert 'apt-mark hold "${PACKAGES[@]}"' in script
    assert "SystemdCgroup = true" in script
    assert "apt_get install containerd" in script


@pytest.mark.parametrize(
    ("kind", "action", "done_file", "waits"),
    [
        ("first-server", "init", "/etc/kubernetes/admin.conf", "true"),
        ("other-server", "join", "/etc/kubernetes/kubelet.conf", "true"),
        ("agent", "join", "/etc/kubernetes/kubelet.conf", "false"),
    ],
)
def test_kubeadm_initialises_on_the_first_server_and_joins_elsewhere_once(
    kind: str, action: str, done_file: str, waits: str
) -> None:
    """init writes admin.conf and join kubelet.conf: either present means this node was set up, so a re-run skips."""
    cluster = stack_cluster("kubeadm")
    script = distro.install_script(cluster, node_kinds(cluster)[kind])
    assert f"readonly ACTION={action}" in script
    assert f"readonly DONE_FILE={done_file}" in script
    assert f"readonly WAIT_FOR_API={waits}" in script
    assert 'kubeadm "$ACTION" --config "$CONFIG"' in script
    assert "readonly CONFIG=/etc/kubernetes/clustermesh-kubeadm.yaml" in script


def test_a_kubeadm_server_leaves_etcd_then_the_cluster_then_resets() -> None:
    """kubeadm reset finds the server's etcd member through its Node (cmd/kubeadm/app/util/config/cluster.go reads
    the node registration from the Node object): removing the Node first would leave the member behind."""
    cluster = stack_cluster("kubeadm")
    kinds = node_kinds(cluster)
    server = distro.uninstall_script(cluster, kinds["other-server"])
    member = server.index("kubeadm reset phase remove-etcd-member")
    node = server.index('delete node "$NODE"')
    reset = server.index("kubeadm reset -f")
    assert member < node < reset
    assert server.index("cilium_vxlan") < reset
    assert "readonly ADMIN_KUBECONFIG=/etc/kubernetes/admin.conf" in server
    agent = distro.uninstall_script(cluster, kinds["agent"])
    assert "readonly ADMIN_KUBECONFIG=''" in agent
    assert "kubeadm reset -f" in agent


# --- the install script, run --------------------------------------------------------------------------------------

STUBS = {
    "cloud-init": 'echo "cloud-init $*" >>"$STUB_LOG"\nexit "${CLOUD_INIT_STATUS:-0}"\n',
    "systemctl": 'echo "systemctl $*" >>"$STUB_LOG"\n',
    "journalctl": "exit 0\n",
    "sudo": '[ "$1" = -n ] && shift\nexec "$@"\n',
    "kubectl": 'echo "kubectl $*" >>"$STUB_LOG"\n',
    # The installer the script downloads: records what it was given and puts a binary that reports the version.
    "curl": (
        'while [ "$#" -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\n'
        "cat >\"$out\" <<'EOF'\n"
        'echo "installer $(env | grep ^INSTALL_ | sort | tr "\\n" " ")" >>"$STUB_LOG"\n'
        'printf \'#!/bin/sh\\necho "%s version %s (0000000)"\\n\' "$FAKE_NAME" "$FAKE_VERSION" >"$FAKE_BINARY"\n'
        'chmod 755 "$FAKE_BINARY"\n'
        "EOF\n"
    ),
}


class Sandbox:
    """The install script with its paths moved under a temporary directory and stand-ins for system commands."""

    def __init__(self, root: Path, cluster: OpenStackCluster, node: Node) -> None:
        self.root, self.cluster, self.node = root, cluster, node
        self.bin = root / "bin"
        self.bin.mkdir()
        for name, body in STUBS.items():
            (self.bin / name).write_text("#!/bin/sh\n" + body)
            (self.bin / name).chmod(0o755)
        self.binary = root / "installed" / cluster.distro.name.value
        self.binary.parent.mkdir()
        self.config = root / "etc" / "config.yaml"
        self.log = root / "stub.log"
        script = distro.install_script(cluster, node)
        moved = {
            "BINARIES": f"readonly -a BINARIES=({self.binary})",
            "KUBECTL": f"readonly -a KUBECTL=({self.bin / 'kubectl'})",
            "CONFIG": f"readonly CONFIG={self.config}",
        }
        lines = script.splitlines()
        for i, line in enumerate(lines):
            for variable, replacement in moved.items():
                if line.startswith((f"readonly {variable}=", f"readonly -a {variable}=")):
                    lines[i] = replacement
        assert sum(line in moved.values() for line in lines) == len(moved)
        self.script = "\n".join(lines) + "\n"

    def run(self, stdin: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "STUB_LOG": str(self.log),
            "FAKE_BINARY": str(self.binary),
            "FAKE_NAME": self.cluster.distro.name.value,
            "FAKE_VERSION": self.cluster.distro.version,
            **env,
        }
        self.log.write_text("")
        return subprocess.run(
            ["bash", "-c", self.script], input=stdin, capture_output=True, text=True, env=environment, check=False
        )

    def bundle(self, token: str) -> str:
        text = yaml.safe_dump(distro.distro_config(self.cluster, self.node, token), sort_keys=True)
        return distro.secret_bundle({str(self.config): text})

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.mark.parametrize("distro_name", ["rke2", "k3s"])
def test_install_script_installs_once_and_restarts_only_on_change(distro_name: str, tmp_path: Path) -> None:
    """A re-run with the same input reinstalls nothing and restarts nothing; a new config restarts the service."""
    cluster = stack_cluster(distro_name)
    agent = node_kinds(cluster)["agent"]
    service = "rke2-agent" if distro_name == "rke2" else "k3s-agent"
    sandbox = Sandbox(tmp_path, cluster, agent)

    first = sandbox.run(sandbox.bundle(TOKEN))
    assert first.returncode == 0, first.stdout + first.stderr
    calls = sandbox.calls()
    assert "cloud-init status --wait" in calls
    installer = next(c for c in calls if c.startswith("installer "))
    assert VERSIONS[distro_name] in installer and "agent" in installer
    assert f"systemctl restart {service}" in calls and f"systemctl enable {service}" in calls
    assert yaml.safe_load(sandbox.config.read_text())["token"] == TOKEN
    assert stat.S_IMODE(sandbox.config.stat().st_mode) == 0o600
    if os.getuid() == 0:
        assert sandbox.config.stat().st_uid == 0

    again = sandbox.run(sandbox.bundle(TOKEN))
    assert again.returncode == 0, again.stdout + again.stderr
    assert not any(c.startswith("installer ") for c in sandbox.calls())
    assert f"systemctl start {service}" in sandbox.calls()
    assert f"systemctl restart {service}" not in sandbox.calls()

    changed = sandbox.run(sandbox.bundle(TOKEN.replace("test-password", "new-password")))
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert not any(c.startswith("installer ") for c in sandbox.calls())
    assert f"systemctl restart {service}" in sandbox.calls()


def test_install_script_waits_for_the_api_on_servers(tmp_path: Path) -> None:
    cluster = stack_cluster("rke2")
    sandbox = Sandbox(tmp_path, cluster, cluster.first_server)
    result = sandbox.run(sandbox.bundle(TOKEN))
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(c.startswith("kubectl ") and "get --raw=/readyz" in c for c in sandbox.calls())
    assert "the Kubernetes API is ready" in result.stdout


@pytest.mark.parametrize(("status", "succeeds"), [(0, True), (2, True), (1, False)])
def test_install_script_accepts_a_degraded_cloud_init_but_not_a_failed_one(
    status: int, succeeds: bool, tmp_path: Path
) -> None:
    """Since cloud-init 23.4, exit 2 means done with recoverable errors; only 1 is a failure."""
    cluster = stack_cluster("k3s")
    sandbox = Sandbox(tmp_path, cluster, node_kinds(cluster)["agent"])
    result = sandbox.run(sandbox.bundle(TOKEN), CLOUD_INIT_STATUS=str(status))
    assert (result.returncode == 0) is succeeds, result.stdout + result.stderr
    if not succeeds:
        assert "cloud-init failed" in result.stderr
        assert not any(c.startswith("installer ") for c in sandbox.calls())


def test_install_script_refuses_to_run_without_its_bundle(tmp_path: Path) -> None:
    cluster = stack_cluster("rke2")
    sandbox = Sandbox(tmp_path, cluster, node_kinds(cluster)["agent"])
    result = sandbox.run("")
    assert result.returncode != 0
    assert "no configuration bundle on stdin" in result.stderr
    assert sandbox.calls() == []


KUBEADM_STUBS = {
    "cloud-init": STUBS["cloud-init"],
    "systemctl": STUBS["systemctl"],
    "journalctl": STUBS["journalctl"],
    "sudo": STUBS["sudo"],
    "kubectl": STUBS["kubectl"],
    "apt-mark": 'echo "apt-mark $*" >>"$STUB_LOG"\n',
    # Installing "<package>=<version>-*" records <version>-1.1, as pkgs.k8s.io numbers its packages.
    "apt-get": (
        'echo "apt-get $*" >>"$STUB_LOG"\n'
        'for a; do case "$a" in *=*) v=${a#*=}; echo "${v%\\*}1.1" >"$STATE/${a%%=*}";; esac; done\n'
    ),
    "dpkg-query": 'for last; do :; done\ncat "$STATE/$last" 2>/dev/null\n',
    "containerd": '[ "$1 $2" = "config default" ] && printf \'version = 2\\n  SystemdCgroup = false\\n\'\nexit 0\n',
    "curl": 'while [ "$#" -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\necho key >"$out"\n',
    "gpg": 'while [ "$#" -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\necho keyring >"$out"\n',
    "kubeadm": 'echo "kubeadm $*" >>"$STUB_LOG"\ncase "$1" in init|join) touch "$DONE" ;; esac\n',
}


class KubeadmSandbox:
    """kubeadm's install script with every path it writes moved under a temporary directory, and stand-ins for the
    package tools, containerd, systemctl and kubeadm (which marks the node set up, as init and join do)."""

    def __init__(self, root: Path, cluster: OpenStackCluster, node: Node) -> None:
        self.root, self.cluster, self.node = root, cluster, node
        self.bin, self.state = root / "bin", root / "state"
        self.bin.mkdir()
        self.state.mkdir()
        for name, body in KUBEADM_STUBS.items():
            (self.bin / name).write_text("#!/bin/sh\n" + body)
            (self.bin / name).chmod(0o755)
        etc = root / "etc"
        (etc / "sources.list.d").mkdir(parents=True)  # apt's, there on every image
        self.config = etc / "kubernetes" / "clustermesh-kubeadm.yaml"
        self.done = etc / "kubernetes" / "done.conf"
        self.containerd_config = etc / "containerd" / "config.toml"
        self.log = root / "stub.log"
        moved = {
            "CONFIG": self.config,
            "KUBERNETES_DIR": etc / "kubernetes",
            "DONE_FILE": self.done,
            "ADMIN_KUBECONFIG": self.done,
            "KEYRING": etc / "keyrings" / "kubernetes.gpg",
            "SOURCES": etc / "sources.list.d" / "kubernetes.list",
            "CONTAINERD_CONFIG": self.containerd_config,
        }
        lines = distro.install_script(cluster, node).splitlines()
        for i, line in enumerate(lines):
            for variable, path in moved.items():
                if line.startswith(f"readonly {variable}="):
                    lines[i] = f"readonly {variable}={path}"
        assert sum(line.startswith("readonly ") and str(root) in line for line in lines) == len(moved)
        self.script = "\n".join(lines) + "\n"

    def run(self) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "STUB_LOG": str(self.log),
            "STATE": str(self.state),
            "DONE": str(self.done),
        }
        self.log.write_text("")
        bundle = distro.secret_bundle({str(self.config): "kind: JoinConfiguration\n"})
        return subprocess.run(
            ["bash", "-c", self.script], input=bundle, capture_output=True, text=True, env=environment, check=False
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


def test_kubeadm_install_script_sets_a_node_up_once(tmp_path: Path) -> None:
    """The first run installs the pinned packages, holds them, configures containerd and runs kubeadm; a re-run with
    the same input installs nothing and runs kubeadm no more."""
    cluster = stack_cluster("kubeadm")
    sandbox = KubeadmSandbox(tmp_path, cluster, node_kinds(cluster)["agent"])

    first = sandbox.run()
    assert first.returncode == 0, first.stdout + first.stderr
    calls = sandbox.calls()
    install = next(c for c in calls if c.startswith("apt-get") and " install " in c and "kubeadm=" in c)
    assert {"kubelet=1.36.3-*", "kubeadm=1.36.3-*", "kubectl=1.36.3-*"} <= set(install.split())
    assert "apt-mark hold kubelet kubeadm kubectl" in calls
    assert f"kubeadm join --config {sandbox.config}" in calls
    assert "systemctl enable --now kubelet" in calls
    assert re.search(r"^\s*SystemdCgroup = true$", sandbox.containerd_config.read_text(), re.MULTILINE)
    assert "systemctl restart containerd" in calls
    assert sandbox.config.read_text() == "kind: JoinConfiguration\n"

    again = sandbox.run()
    assert again.returncode == 0, again.stdout + again.stderr
    calls = sandbox.calls()
    assert not any(c.startswith("apt-get") for c in calls), calls
    assert not any(c.startswith("kubeadm") for c in calls), calls
    assert "systemctl restart containerd" not in calls
    assert "kubeadm join ran before" in again.stdout


def test_kubeadm_install_script_refuses_to_change_the_version_of_a_node_it_set_up(tmp_path: Path) -> None:
    cluster = stack_cluster("kubeadm")
    sandbox = KubeadmSandbox(tmp_path, cluster, node_kinds(cluster)["agent"])
    assert sandbox.run().returncode == 0
    for package in ("kubelet", "kubeadm", "kubectl"):
        (sandbox.state / package).write_text("1.35.9-1.1\n")
    result = sandbox.run()
    assert result.returncode != 0
    assert "kubeadm upgrade" in result.stderr
    assert not any(c.startswith("apt-get") for c in sandbox.calls())


# --- the secret bundle ----------------------------------------------------------------------------------------


def test_the_bundle_round_trips_as_root_owned_0600_files() -> None:
    files = {"/etc/rancher/rke2/config.yaml": "token: x\n", "/var/lib/rancher/rke2/server/tls/etcd/peer-ca.key": "k"}
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(distro.secret_bundle(files))), mode="r:gz") as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == sorted(path.lstrip("/") for path in files)
        for member in members:
            assert member.isfile()
            assert stat.S_IMODE(member.mode) == 0o600
            assert (member.uid, member.gid) == (0, 0)
            extracted = archive.extractfile(member)
            assert extracted is not None
            assert extracted.read().decode() == files["/" + member.name]


def test_the_bundle_is_byte_identical_for_the_same_files() -> None:
    """Any difference would be a new stdin, and so a re-run command, on every `pulumi up`."""
    files = {"/b/file": "two", "/a/file": "one"}
    first = distro.secret_bundle(files)
    assert distro.secret_bundle(files) == first
    assert distro.secret_bundle(dict(reversed(files.items()))) == first


@pytest.mark.parametrize("path", ["etc/relative", "/etc/../root/x", "/", "/etc//double", "/etc/trailing/"])
def test_the_bundle_takes_only_normalised_absolute_paths(path: str) -> None:
    with pytest.raises(ValueError, match="normalised absolute"):
        distro.secret_bundle({path: "x"})


# --- cluster PKI ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("distro_name", ["rke2", "k3s"])
def test_the_cluster_cas_are_the_files_the_distributions_require(distro_name: str) -> None:
    cluster = stack_cluster(distro_name)
    tls = f"{DATA_DIRS[distro_name]}/server/tls/"
    cas = cluster_pki.cluster_cas(cluster)
    paths = [p for ca in cas for p in (ca.cert_path, ca.key_path)]
    assert all(p.startswith(tls) for p in paths)
    assert {p.removeprefix(tls) for p in paths} == CUSTOM_CA_FILES
    assert cluster_pki.service_account_key_path(cluster) == tls + "service.key"
    assert {"server-ca", "client-ca"} <= {ca.name for ca in cas}
    assert len({ca.common_name for ca in cas}) == len(cas)


def test_the_secure_join_token_hashes_the_server_ca_as_stored() -> None:
    """k3s docs/cli/token.md: K10, the SHA256 of the PEM certificate as stored on disk, ::, user:password."""
    pem = self_signed_ca("rke2-server-ca@mesh1")
    token = cluster_pki.secure_join_token(pem, "s3cret")
    assert token == "K10" + hashlib.sha256(pem.encode()).hexdigest() + "::server:s3cret"


def test_the_secure_join_token_refuses_a_chain() -> None:
    """For a bundle of several certificates k3s hashes the root's DER instead: the token would not match."""
    chain = self_signed_ca("leaf") + self_signed_ca("root")
    with pytest.raises(ValueError, match="exactly one PEM certificate"):
        cluster_pki.secure_join_token(chain, "s3cret")


def test_the_join_password_is_stable_per_seed_and_fits_the_token() -> None:
    seed = "-----BEGIN EC PRIVATE KEY-----\nseed\n-----END EC PRIVATE KEY-----\n"
    password = cluster_pki.join_password(seed)
    assert cluster_pki.join_password(seed) == password
    assert cluster_pki.join_password(seed.replace("seed", "other")) != password
    assert len(password) == 64 and set(password) <= set("0123456789abcdef")
    assert seed not in password


def test_the_kubeconfig_reaches_the_api_endpoint_with_the_programs_credentials() -> None:
    cluster = stack_cluster(apiAddress="192.168.10.5")
    ca = self_signed_ca("rke2-server-ca@mesh1")
    text = cluster_pki.kubeconfig(cluster, ca, "CLIENT CERT PEM", "CLIENT KEY PEM")
    assert kubeconfig_problems(text) == []
    document = yaml.safe_load(text)
    (entry,) = document["clusters"]
    assert entry["cluster"]["server"] == "https://192.168.10.5:6443"
    assert base64.b64decode(entry["cluster"]["certificate-authority-data"]).decode() == ca
    (user,) = document["users"]
    assert base64.b64decode(user["user"]["client-certificate-data"]).decode() == "CLIENT CERT PEM"
    assert base64.b64decode(user["user"]["client-key-data"]).decode() == "CLIENT KEY PEM"
    assert document["current-context"] == "mesh1"


def test_the_kubeconfig_defaults_to_the_first_server() -> None:
    cluster = stack_cluster()
    document = yaml.safe_load(cluster_pki.kubeconfig(cluster, "CA", "CERT", "KEY"))
    assert document["clusters"][0]["cluster"]["server"] == "https://192.168.10.10:6443"


def test_the_admin_certificate_is_in_the_group_kubernetes_makes_cluster_admin() -> None:
    """Kubernetes' default RBAC binds group system:masters to cluster-admin; k3s issues its own admin the same way."""
    assert cluster_pki.ADMIN_ORGANIZATION == "system:masters"
    assert cluster_pki.ADMIN_COMMON_NAME == "clustermesh-admin"


@pytest.mark.parametrize("distro_name", ["rke2", "k3s", "kubeadm"])
def test_each_node_bundle_holds_its_config_and_the_ca_files_only_where_they_belong(distro_name: str) -> None:
    """What reaches a node on stdin: its configuration, and the CA files on the servers that take them (the first
    server for RKE2 and k3s, which read them once at first start; every server for kubeadm)."""
    cluster = stack_cluster(distro_name)
    ca_pem = self_signed_ca("server-ca")
    pki = {"/pki/ca.key": "KEY", "/pki/ca.crt": ca_pem}
    for kind, node in node_kinds(cluster).items():
        bundle = distro.node_bundle(cluster, node, "token-text", ca_pem, pki)
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(bundle))) as archive:
            names = {m.name.lstrip("/") for m in archive.getmembers()}
        expected = {distro.config_path(cluster).lstrip("/")}
        if kind == "first-server" or (distro_name == "kubeadm" and kind != "agent"):
            expected |= {"pki/ca.key", "pki/ca.crt"}
        assert names == expected, kind
