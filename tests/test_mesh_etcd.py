"""The generated mesh configuration, proven against a real etcd serving the certificate the program issued.

A cluster C reaches peer R exactly as Cilium's kvstoremesh would: it reads the file named R from its
generated Secret, resolves R's hostname through the generated `cilium-host-aliases`, and connects with
the files kubelet would mount, verifying R's server certificate for that hostname. The connection is
redirected to a real etcd on loopback that serves the server certificate issued for R. A peer with a
DNS name of its own (`apiserverExposure.hostname`, as for an AWS NLB) is dialled by that name instead.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clustermesh.planner.graph import reveal
from clustermesh.planner.runner import CapturedPlan
from clustermesh.render.mesh_config import MOUNT
from tests.conftest import LOAD_BALANCER_IPS, ReportingMocks, cluster, plan_raw, raw_config, three_clusters

ETCD = Path(sys.executable).parent / "etcd"


def _secret_data(plan: CapturedPlan, resource_name: str) -> dict[str, str]:
    node = next(n for n in plan.nodes if n.name == resource_name)
    values = reveal(node.inputs, secrets=True)
    if "stringData" in values:
        return dict(values["stringData"])
    return {k: base64.b64decode(v).decode() for k, v in values["data"].items()}


DELTA_HOSTNAME = "delta.apiserver.example.net"


@pytest.fixture(scope="module")
def plan() -> CapturedPlan:
    """alpha, beta and gamma mapped by the mesh's names; delta reached by a DNS name of its own."""
    delta = cluster("delta", 4, "10.14.0.0/16", apiserverExposure={"hostname": DELTA_HOSTNAME})
    return plan_raw(raw_config([*three_clusters(), delta]), mocks=ReportingMocks)


LOOPBACK = "127.0.0.1"
REDIRECTED = {ip: LOOPBACK for ip in LOAD_BALANCER_IPS["beta-clustermesh-apiserver"]}
"""beta's load balancer, as this test's network sees it: its address leads to the etcd on loopback."""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@contextlib.contextmanager
def _etcd(plan: CapturedPlan, cluster: str, directory: Path) -> Iterator[tuple[int, Path]]:
    """A real etcd with client-certificate auth, serving the server certificate issued for `cluster`."""
    server = _secret_data(plan, f"{cluster}-server-cert")
    for key in ("ca.crt", "tls.crt", "tls.key"):
        (directory / key).write_text(server[key])
    client_port, peer_port = _free_ports(2)
    log = directory / "etcd.log"
    process = subprocess.Popen(
        [
            str(ETCD), "--name", cluster, "--data-dir", str(directory / "data"),
            "--listen-client-urls", f"https://127.0.0.1:{client_port}",
            "--advertise-client-urls", f"https://127.0.0.1:{client_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"{cluster}=http://127.0.0.1:{peer_port}",
            "--cert-file", str(directory / "tls.crt"), "--key-file", str(directory / "tls.key"),
            "--trusted-ca-file", str(directory / "ca.crt"), "--client-cert-auth",
            "--logger", "zap", "--log-outputs", str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", client_port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"etcd did not start: {log.read_text() if log.exists() else 'no log'}")
    yield client_port, log
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def etcd_for_beta(plan: CapturedPlan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    with _etcd(plan, "beta", tmp_path_factory.mktemp("etcd-beta")) as etcd:
        yield etcd


def _mount_cluster_files(plan: CapturedPlan, cluster: str, directory: Path) -> Path:
    """Write cluster's clustermesh files as kubelet projects them into /var/lib/cilium/clustermesh."""
    mount = directory / "clustermesh"
    mount.mkdir()
    for name, text in _secret_data(plan, f"{cluster}-cilium-kvstoremesh").items():
        (mount / name).write_text(text)
    remote = _secret_data(plan, f"{cluster}-remote-cert")
    (mount / "common-etcd-client.crt").write_text(remote["tls.crt"])
    (mount / "common-etcd-client.key").write_text(remote["tls.key"])
    (mount / "common-etcd-client-ca.crt").write_text(remote["ca.crt"])
    return mount


def _parse_as_cilium(path: Path, mount: Path) -> dict[str, Any]:
    """What Cilium takes from a remote-cluster file: it counts only if it says `endpoints:`."""
    text = path.read_text()
    assert "endpoints:" in text
    config = yaml.safe_load(text)

    def local(p: str) -> Path:
        assert p.startswith(MOUNT + "/")
        return mount / p.removeprefix(MOUNT + "/")

    endpoint = urlparse(config["endpoints"][0])
    aliases = {a["hostname"]: a["ips"] for a in config.get("cilium-host-aliases", [])}
    return {
        "host": endpoint.hostname,
        "port": endpoint.port,
        "ips": aliases.get(endpoint.hostname, []),
        "ca": local(config["trusted-ca-file"]),
        "cert": local(config["cert-file"]),
        "key": local(config["key-file"]),
    }


def _alpha_config_for(plan: CapturedPlan, peer: str, tmp_path: Path) -> dict[str, Any]:
    """alpha's generated configuration for `peer`, read from its files as mounted in alpha's pods."""
    mount = _mount_cluster_files(plan, "alpha", tmp_path)
    return _parse_as_cilium(mount / peer, mount)


def _client(ca: Path, cert: Path, key: Path) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return httpx.Client(verify=context, timeout=5)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_cluster_reaches_peer_etcd_with_the_generated_configuration(
    plan: CapturedPlan, etcd_for_beta: tuple[int, Path], tmp_path: Path
) -> None:
    port, _ = etcd_for_beta
    beta = _alpha_config_for(plan, "beta", tmp_path)
    assert beta["host"] == "beta.mesh.cilium.io" and beta["port"] == 2379
    assert beta["ips"] == LOAD_BALANCER_IPS["beta-clustermesh-apiserver"]
    assert reveal(plan.outputs["apiserverAddresses"], secrets=True)["beta"] == beta["ips"]
    # The dialer connects to the address the file maps beta's name to; the network leads it to loopback.
    url = f"https://{REDIRECTED[beta['ips'][0]]}:{port}/v3/kv"
    with _client(beta["ca"], beta["cert"], beta["key"]) as client:
        sni = {"sni_hostname": beta["host"]}
        put = client.post(
            f"{url}/put", json={"key": _b64("cilium/state/nodes/v1/beta/n1"), "value": _b64("{}")}, extensions=sni
        )
        assert put.status_code == 200, put.text
        got = client.post(f"{url}/range", json={"key": _b64("cilium/state/nodes/v1/beta/n1")}, extensions=sni)
        assert got.status_code == 200
        assert base64.b64decode(got.json()["kvs"][0]["value"]) == b"{}"


def test_a_peer_with_its_own_hostname_is_reached_by_that_name(
    plan: CapturedPlan, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """No address travels in the file: DNS resolves delta's name (here, to loopback), and its certificate names it."""
    delta = _alpha_config_for(plan, "delta", tmp_path)
    assert (delta["host"], delta["port"], delta["ips"]) == (DELTA_HOSTNAME, 2379, [])
    assert reveal(plan.outputs["apiserverAddresses"], secrets=True)["delta"] == [DELTA_HOSTNAME]
    with (
        _etcd(plan, "delta", tmp_path_factory.mktemp("etcd-delta")) as (port, _),
        _client(delta["ca"], delta["cert"], delta["key"]) as client,
    ):
        sni = {"sni_hostname": delta["host"]}
        url = f"https://127.0.0.1:{port}/v3/kv"
        put = client.post(f"{url}/put", json={"key": _b64("cilium/.heartbeat"), "value": _b64("now")}, extensions=sni)
        assert put.status_code == 200, put.text
        got = client.post(f"{url}/range", json={"key": _b64("cilium/.heartbeat")}, extensions=sni)
        assert base64.b64decode(got.json()["kvs"][0]["value"]) == b"now"


def test_a_client_certificate_from_another_ca_is_refused(
    plan: CapturedPlan, etcd_for_beta: tuple[int, Path], tmp_path: Path
) -> None:
    port, log = etcd_for_beta
    beta = _alpha_config_for(plan, "beta", tmp_path)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "remote")])
    rogue = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(rogue_key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(hours=1))
        .sign(rogue_key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "rogue.crt").write_bytes(rogue.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "rogue.key").write_bytes(
        rogue_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with _client(beta["ca"], tmp_path / "rogue.crt", tmp_path / "rogue.key") as client, pytest.raises(httpx.HTTPError):
        client.post(
            f"https://127.0.0.1:{port}/v3/kv/range", json={"key": _b64("x")}, extensions={"sni_hostname": beta["host"]}
        )
    time.sleep(0.2)
    assert "certificate signed by unknown authority" in log.read_text()


def test_another_clusters_configuration_fails_hostname_verification(
    plan: CapturedPlan, etcd_for_beta: tuple[int, Path], tmp_path: Path
) -> None:
    """alpha's file for gamma, dialled at beta's apiserver, must not be accepted: beta's certificate is not gamma's."""
    port, _ = etcd_for_beta
    gamma = _alpha_config_for(plan, "gamma", tmp_path)
    assert gamma["host"] == "gamma.mesh.cilium.io"
    with (
        _client(gamma["ca"], gamma["cert"], gamma["key"]) as client,
        pytest.raises(httpx.ConnectError, match=r"[Hh]ostname mismatch"),
    ):
        client.post(
            f"https://127.0.0.1:{port}/v3/kv/range", json={"key": _b64("x")}, extensions={"sni_hostname": gamma["host"]}
        )


def test_etcd_binary_is_the_real_one() -> None:
    assert shutil.which(str(ETCD)) is not None
    version = subprocess.run([str(ETCD), "--version"], capture_output=True, text=True, check=True).stdout
    assert "etcd Version: 3.5" in version
