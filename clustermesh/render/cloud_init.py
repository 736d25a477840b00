"""The cloud-init user data of an OpenStack cluster's VMs: OS preparation for Cilium, and nothing else.

User data holds no secret and no per-node value. Nova stores it unencrypted, serves it to anything on the
instance that can reach the metadata service, and shows it to anyone allowed to show the server; pulumi-openstack
does not mark it secret. And changing it replaces the VM. So the join token and CA keys go over SSH (on a
command's stdin, see `clustermesh.render.distro`), and the document is the same for every node: adding a node,
or a new token, changes nothing for the others.
"""

from __future__ import annotations

from typing import Any

import yaml

from clustermesh.model.openstack import DistroName, OpenStackCluster

CILIUM_SYSCTL_PATH = "/etc/sysctl.d/99-zzz-override_cilium.conf"
CILIUM_SYSCTL = """
# Disable rp_filter on Cilium interfaces since it may cause mangled packets to be dropped
-net.ipv4.conf.lxc*.rp_filter = 0
-net.ipv4.conf.cilium_*.rp_filter = 0
# The kernel uses max(conf.all, conf.{dev}) as its value, so we need to set .all. to 0 as well.
# Otherwise it will overrule the device specific settings.
net.ipv4.conf.all.rp_filter = 0
"""
"""Cilium's own override, byte for byte (cilium/cilium tools/sysctlfix/main.go, run by the agent's
`apply-sysctl-overwrites` init container while the chart's `sysctlfix.enabled` is true, the default).

systemd 245 and later applies sysctl.d globs (its own 50-default.conf sets `net.ipv4.conf.*.rp_filter = 2`) to new
interfaces,
Cilium's included, and reverse-path filtering drops packets Cilium routes (cilium/cilium#10645). Writing it at
boot covers the node before the agent's first start; identical bytes mean the init container finds it up to date
and does not restart systemd-sysctl, which would re-apply every sysctl.d file to the running host."""
KUBEADM_MODULES_PATH = "/etc/modules-load.d/k8s.conf"
KUBEADM_MODULES = ("overlay", "br_netfilter")
KUBEADM_SYSCTL_PATH = "/etc/sysctl.d/k8s.conf"
KUBEADM_SYSCTL = {
    "net.bridge.bridge-nf-call-iptables": 1,
    "net.bridge.bridge-nf-call-ip6tables": 1,
    "net.ipv4.ip_forward": 1,
}
"""What a node needs before kubeadm: containerd's overlay snapshotter, bridged traffic through iptables, and
forwarding, which kubeadm's preflight requires (kubernetes/website container-runtimes.md, "Forwarding IPv4 and
letting iptables see bridged traffic", with these files). RKE2 and k3s load and set these themselves."""
SWAP_OFF = "swapoff -a"
SWAP_OUT_OF_FSTAB = r"sed -i -E 's/^([^#].*[[:space:]]swap[[:space:]].*)$/# \1/' /etc/fstab"
"""The kubelet refuses to start with swap on, unless configured to allow it (install-kubeadm.md: "Swap disabled");
the fstab entries are commented out so swap stays off after a reboot."""
BPFFS = "/sys/fs/bpf"
BPFFS_OPTIONS = "rw,nosuid,nodev,noexec,relatime,mode=700"
"""As Cilium's `sys-fs-bpf.mount` example has them (Documentation/network/kubernetes/configuration.rst)."""


def user_data(cluster: OpenStackCluster) -> str:
    """The `#cloud-config` document every VM of `cluster` boots with.

    No `sys-fs-bpf.mount` unit, although Cilium's docs show one: systemd 238 and later mount the BPF
    filesystem at /sys/fs/bpf themselves (systemd src/shared/mount-setup.c, mode 0700) and refuse a unit for
    that API filesystem ("Cannot create mount unit for API file system /sys/fs/bpf. Refusing.", cilium/cilium
    #10955), so enabling one fails on every supported image (Ubuntu 22.04 or later). The boot command mounts
    it only where it is missing; Cilium needs it mounted on the host for its maps to outlive an agent restart.
    The document depends only on the cluster's distribution: a kubeadm node also loads the kernel modules and sets
    the sysctls kubeadm expects, and turns swap off, which RKE2 and k3s see to themselves.
    """
    kubeadm = cluster.distro.name is DistroName.KUBEADM
    files = [{"path": CILIUM_SYSCTL_PATH, "content": CILIUM_SYSCTL, "owner": "root:root", "permissions": "0644"}]
    # runcmd's entries become one shell script that reports only its last command's status: stop at the first
    # failure instead, so cloud-init reports it (and the install command waiting on it fails).
    commands = ["set -e"]
    if kubeadm:
        files += [
            {
                "path": KUBEADM_MODULES_PATH,
                "content": "".join(f"{module}\n" for module in KUBEADM_MODULES),
                "owner": "root:root",
                "permissions": "0644",
            },
            {
                "path": KUBEADM_SYSCTL_PATH,
                "content": "".join(f"{key} = {value}\n" for key, value in KUBEADM_SYSCTL.items()),
                "owner": "root:root",
                "permissions": "0644",
            },
        ]
        # The bridge sysctls exist only once br_netfilter is loaded: the modules first (at every later boot too,
        # systemd-sysctl runs after systemd-modules-load).
        commands.append("systemctl restart systemd-modules-load.service")
    commands.append("systemctl restart systemd-sysctl.service")
    if kubeadm:
        commands += [SWAP_OFF, SWAP_OUT_OF_FSTAB]
    commands.append(f"mountpoint -q {BPFFS} || mount -t bpf -o {BPFFS_OPTIONS} bpffs {BPFFS}")
    document: dict[str, Any] = {"write_files": files, "runcmd": commands}
    return "#cloud-config\n" + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=120)


class _Dumper(yaml.SafeDumper):
    """Multi-line text as a literal block, so the file reads in the user data as it will on disk."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _text)
