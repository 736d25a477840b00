"""The generated mesh configuration, proven against a real etcd run the way the clustermesh-apiserver runs it.

Each peer's etcd serves the server certificate the program issued for it, with `--client-cert-auth` and the
chart's flags (no HTTP gateway: clients speak gRPC, as Cilium's Go client does). It is initialised call for
call as Cilium's `etcdinit` does (cilium/cilium pkg/kvstore/etcdinit/init.go: users root and `admin-<c>`
with role root, `externalworkload`, `local-<c>` and `remote` with their read-only roles, then auth on),
and its remote users come from the program's `clustermesh-remote-users` ConfigMap, applied as the
clustermesh-apiserver's users manager applies it (clustermesh-apiserver/clustermesh/users_mgmt.go). With
auth on, etcd authorises a TLS client by its certificate's CN alone.

A cluster C reaches peer R exactly as Cilium's kvstoremesh would: it reads the file named R from its
generated Secret, resolves R's hostname through the generated `cilium-host-aliases`, and connects with
the files kubelet would mount, verifying R's server certificate for that hostname. The connection is
redirected to the real etcd on loopback. A peer with a DNS name of its own (`apiserverExposure.hostname`,
as for an AWS NLB) is dialled by that name instead; the agents of a cluster reach their own
clustermesh-apiserver by its Service name with the `local-etcd-client.*` files.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import grpc  # type: ignore[import-untyped]
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clustermesh.planner.graph import reveal
from clustermesh.planner.report import ca_certificate, ca_private_key
from clustermesh.planner.runner import CapturedPlan
from clustermesh.render.mesh_config import MOUNT
from tests.conftest import LOAD_BALANCER_IPS, ReportingMocks, cluster, plan_raw, raw_config, three_clusters

ETCD = Path(sys.executable).parent / "etcd"
CALL_TIMEOUT = 5.0
APISERVER_SERVICE = "clustermesh-apiserver.kube-system.svc"
"""The name the agents dial their own clustermesh-apiserver by (with KVStoreMesh), in its server certificate."""


def _resource(plan: CapturedPlan, resource_name: str) -> dict[str, Any]:
    node = next(n for n in plan.nodes if n.name == resource_name)
    return cast(dict[str, Any], reveal(node.inputs, secrets=True))


def _secret_data(plan: CapturedPlan, resource_name: str) -> dict[str, str]:
    values = _resource(plan, resource_name)
    if "stringData" in values:
        return dict(values["stringData"])
    return {k: base64.b64decode(v).decode() for k, v in values["data"].items()}


def _users_yaml(plan: CapturedPlan, cluster: str) -> str:
    """What cluster's clustermesh-apiserver reads from its mounted `clustermesh-remote-users` ConfigMap."""
    config_map = _resource(plan, f"{cluster}-clustermesh-remote-users")
    assert config_map["metadata"]["name"] == "clustermesh-remote-users"
    return str(config_map["data"]["users.yaml"])


DELTA_HOSTNAME = "delta.apiserver.example.net"


def _four_clusters() -> list[dict[str, Any]]:
    """alpha, beta and gamma mapped by the mesh's names; delta reached by a DNS name of its own."""
    delta = cluster("delta", 4, "10.14.0.0/16", apiserverExposure={"hostname": DELTA_HOSTNAME})
    return [*three_clusters(), delta]


@pytest.fixture(scope="module")
def plan() -> CapturedPlan:
    return plan_raw(raw_config(_four_clusters()), mocks=ReportingMocks)


LOOPBACK = "127.0.0.1"
REDIRECTED = {ip: LOOPBACK for ips in LOAD_BALANCER_IPS.values() for ip in ips}
"""The load balancers' addresses, as this test's network sees them: each leads to the etcd on loopback."""


# etcd's v3 gRPC API (api/etcdserverpb/rpc.proto, api/authpb/auth.proto), the few messages used here encoded by hand.


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _message(*fields: tuple[int, bytes | str | int]) -> bytes:
    """A protobuf message of `(field number, value)`: ints as varints, str and bytes length-delimited; defaults omitted."""
    out = bytearray()
    for number, value in fields:
        if isinstance(value, int):
            if value:
                out += _varint(number << 3) + _varint(value)
            continue
        data = value.encode() if isinstance(value, str) else value
        if data:
            out += _varint(number << 3 | 2) + _varint(len(data)) + data
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _fields(data: bytes, number: int) -> list[bytes]:
    """The length-delimited values of field `number` in a protobuf message (other fields skipped)."""
    found, at = [], 0
    while at < len(data):
        tag, at = _read_varint(data, at)
        wire = tag & 7
        if wire == 0:
            _, at = _read_varint(data, at)
            continue
        if wire == 2:
            length, at = _read_varint(data, at)
            if tag >> 3 == number:
                found.append(data[at : at + length])
            at += length
            continue
        at += {1: 8, 5: 4}[wire]
    return found


READ, READWRITE = 0, 2
"""authpb.Permission.Type"""
KeyRange = tuple[str, str]
ALL_KEYS: KeyRange = ("\x00", "\x00")


def _prefix_end(prefix: str) -> str:
    """clientv3.GetPrefixRangeEnd."""
    end = bytearray(prefix.encode())
    for i in reversed(range(len(end))):
        if end[i] < 0xFF:
            end[i] += 1
            return end[: i + 1].decode()
    return "\x00"


def range_for_prefix(prefix: str, *, trailing_slash: bool = True) -> KeyRange:
    """etcdinit's rangeForPrefix: a slash is added unless asked not to (only the heartbeat is)."""
    if trailing_slash and not prefix.endswith("/"):
        prefix += "/"
    return prefix, _prefix_end(prefix)


def range_for_key(key: str) -> KeyRange:
    return key, ""


class Etcd:
    """A gRPC client of etcd presenting one client certificate: once auth is on, the CN is the user it acts as."""

    def __init__(self, address: str, port: int, files: TlsFiles, server_name: str) -> None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=files.ca.read_bytes(),
            private_key=files.key.read_bytes(),
            certificate_chain=files.cert.read_bytes(),
        )
        # The name the certificate is checked against (and sent as SNI): the host the client meant to reach.
        options = [("grpc.ssl_target_name_override", server_name)]
        self._channel = grpc.secure_channel(f"{address}:{port}", credentials, options=options)

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: bytes) -> bytes:
        call = self._channel.unary_unary(method)  # no (de)serializers: bytes in, bytes out
        return cast(bytes, call(request, timeout=CALL_TIMEOUT))

    def get(self, key: str) -> bytes | None:
        response = self._call("/etcdserverpb.KV/Range", _message((1, key)))
        values = [b"".join(_fields(kv, 5)) for kv in _fields(response, 2)]  # RangeResponse.kvs, KeyValue.value
        return values[0] if values else None

    def put(self, key: str, value: bytes) -> None:
        self._call("/etcdserverpb.KV/Put", _message((1, key), (2, value)))

    def add_no_password_user(self, name: str) -> None:
        """UserAddWithOptions(name, "", {NoPassword: true}): a user only a certificate can act as."""
        self._call("/etcdserverpb.Auth/UserAdd", _message((1, name), (3, _message((1, True)))))

    def add_role(self, name: str) -> None:
        self._call("/etcdserverpb.Auth/RoleAdd", _message((1, name)))

    def grant_role_to_user(self, role: str, user: str) -> None:
        self._call("/etcdserverpb.Auth/UserGrantRole", _message((1, user), (2, role)))

    def grant_permission_to_role(self, permission: int, key_range: KeyRange, role: str) -> None:
        start, end = key_range
        perm = _message((1, permission), (2, start), (3, end))
        self._call("/etcdserverpb.Auth/RoleGrantPermission", _message((1, role), (2, perm)))

    def enable_auth(self) -> None:
        self._call("/etcdserverpb.Auth/AuthEnable", b"")

    def delete_user(self, name: str) -> None:
        self._call("/etcdserverpb.Auth/UserDelete", _message((1, name)))

    def users(self) -> list[str]:
        return [u.decode() for u in _fields(self._call("/etcdserverpb.Auth/UserList", b""), 2)]

    def watch(self, prefix: str) -> Watch:
        return Watch(self._channel.stream_stream("/etcdserverpb.Watch/Watch"), prefix)

    def user_enforce_presence(self, name: str, roles: list[str]) -> None:
        """Cilium's etcd backend (pkg/kvstore/etcd.go): add the user unless it exists, grant each role."""
        try:
            self.add_no_password_user(name)
        except grpc.RpcError as error:
            if error.details() != "etcdserver: user name already exists":
                raise
        for role in roles:
            self.grant_role_to_user(role, name)

    def user_enforce_absence(self, name: str) -> None:
        try:
            self.delete_user(name)
        except grpc.RpcError as error:
            if error.details() != "etcdserver: user name not found":
                raise


class Watch:
    """A watch on every key under `prefix`, held open as kvstoremesh holds one on each peer's state."""

    def __init__(self, stream: Callable[[Iterator[bytes]], Any], prefix: str) -> None:
        self._requests: queue.Queue[bytes | None] = queue.Queue()
        create = _message((1, prefix), (2, _prefix_end(prefix)))
        self._requests.put(_message((1, create)))  # WatchRequest.create_request
        self._call = stream(iter(self._requests.get, None))
        self._responses: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            for response in self._call:
                self._responses.put(response)

    def next(self) -> tuple[list[bytes], str]:
        """The next WatchResponse: the values its events carry, and its cancel reason ("" if not cancelled)."""
        response = self._responses.get(timeout=CALL_TIMEOUT)
        values = [b"".join(_fields(kv, 5)) for event in _fields(response, 11) for kv in _fields(event, 2)]
        return values, b"".join(_fields(response, 6)).decode()

    def close(self) -> None:
        self._requests.put(None)
        self._call.cancel()


def cilium_etcd_init(etcd: Etcd, cluster: str) -> None:
    """cilium/cilium pkg/kvstore/etcdinit ClusterMeshEtcdInit(cluster), call for call."""
    etcd.add_no_password_user("root")
    etcd.grant_role_to_user("root", "root")

    etcd.add_no_password_user(f"admin-{cluster}")
    etcd.grant_role_to_user("root", f"admin-{cluster}")

    etcd.add_no_password_user("externalworkload")
    etcd.add_role("externalworkload")
    etcd.grant_role_to_user("externalworkload", "externalworkload")
    etcd.grant_permission_to_role(READ, ALL_KEYS, "externalworkload")
    etcd.grant_permission_to_role(READWRITE, range_for_prefix("cilium/state/noderegister/v1"), "externalworkload")
    etcd.grant_permission_to_role(READWRITE, range_for_prefix("cilium/.initlock"), "externalworkload")

    etcd.add_no_password_user(f"local-{cluster}")
    etcd.add_role("local")
    etcd.grant_role_to_user("local", f"local-{cluster}")
    for key_range in (
        range_for_prefix("cilium/.heartbeat", trailing_slash=False),
        range_for_prefix("cilium/cache"),
        range_for_prefix("cilium/cluster-config"),
        range_for_prefix("cilium/synced"),
    ):
        etcd.grant_permission_to_role(READ, key_range, "local")

    etcd.add_no_password_user("remote")
    etcd.add_role("remote")
    etcd.grant_role_to_user("remote", "remote")
    for key_range in (
        range_for_prefix("cilium/.heartbeat", trailing_slash=False),
        range_for_prefix("cilium/state"),
        range_for_key(f"cilium/cluster-config/{cluster}"),
        range_for_prefix(f"cilium/synced/{cluster}"),
    ):
        etcd.grant_permission_to_role(READ, key_range, "remote")

    etcd.enable_auth()


@dataclass
class UsersManager:
    """The clustermesh-apiserver's users manager (users_mgmt.go `sync`), run on each change of users.yaml.

    It enforces the presence of every user the file lists (with its role) and the absence of the users it
    created that the file no longer lists.
    """

    etcd: Etcd
    cluster: str
    users: dict[str, str] = field(default_factory=dict)

    def sync(self, users_yaml: str) -> None:
        stale = set(self.users)
        for user in yaml.safe_load(users_yaml)["users"]:
            name, role = user["name"], user["role"]
            if name == self.cluster:
                continue
            if self.users.get(name) != role:
                self.etcd.user_enforce_presence(name, [role])
            self.users[name] = role
            stale.discard(name)
        for name in sorted(stale):
            self.etcd.user_enforce_absence(name)
            del self.users[name]


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _project(plan: CapturedPlan, resource_name: str, directory: Path, stem: str) -> TlsFiles:
    """A `kubernetes.io/tls` Secret as the chart projects it: `<stem>.crt`, `<stem>.key`, `<stem>-ca.crt`."""
    secret = _secret_data(plan, resource_name)
    files = TlsFiles(ca=directory / f"{stem}-ca.crt", cert=directory / f"{stem}.crt", key=directory / f"{stem}.key")
    files.ca.write_text(secret["ca.crt"])
    files.cert.write_text(secret["tls.crt"])
    files.key.write_text(secret["tls.key"])
    return files


@dataclass
class ApiserverEtcd:
    """A cluster's clustermesh-apiserver etcd, and the apiserver's own (admin) client of it."""

    cluster: str
    port: int
    log: Path
    admin: Etcd
    users: UsersManager


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind((LOOPBACK, 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@contextlib.contextmanager
def _apiserver_etcd(plan: CapturedPlan, cluster: str, directory: Path) -> Iterator[ApiserverEtcd]:
    """`cluster`'s clustermesh-apiserver etcd: its issued server certificate, the chart's flags, Cilium's users.

    Cilium's etcdinit runs on a plain-HTTP loopback etcd before the TLS one starts; here it runs over TLS with
    the admin certificate before auth is on, which leaves the same users, roles and auth state with one start.
    """
    server = _project(plan, f"{cluster}-server-cert", directory, "server")
    client_port, peer_port = _free_ports(2)
    log = directory / "etcd.log"
    process = subprocess.Popen(
        [
            str(ETCD), "--name", cluster, "--data-dir", str(directory / "data"),
            "--client-cert-auth", "--trusted-ca-file", str(server.ca),
            "--cert-file", str(server.cert), "--key-file", str(server.key),
            "--listen-client-urls", f"https://{LOOPBACK}:{client_port}",
            "--advertise-client-urls", f"https://{LOOPBACK}:{client_port}",
            "--auto-compaction-retention=1", "--enable-grpc-gateway=false",
            "--listen-peer-urls", f"http://{LOOPBACK}:{peer_port}",
            "--initial-advertise-peer-urls", f"http://{LOOPBACK}:{peer_port}",
            "--initial-cluster", f"{cluster}=http://{LOOPBACK}:{peer_port}",
            "--logger", "zap", "--log-outputs", str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    admin: Etcd | None = None
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((LOOPBACK, client_port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"etcd did not start: {log.read_text() if log.exists() else 'no log'}")
                time.sleep(0.05)
        # The apiserver's own client: its admin certificate, to the etcd in its pod.
        admin = Etcd(LOOPBACK, client_port, _project(plan, f"{cluster}-admin-cert", directory, "admin"), LOOPBACK)
        cilium_etcd_init(admin, cluster)
        users = UsersManager(admin, cluster)
        users.sync(_users_yaml(plan, cluster))
        yield ApiserverEtcd(cluster, client_port, log, admin, users)
    finally:
        if admin is not None:
            admin.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def beta_etcd(plan: CapturedPlan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiserverEtcd]:
    """beta's etcd, shared by the module. Only the revocation test changes its users, and only gamma's."""
    with _apiserver_etcd(plan, "beta", tmp_path_factory.mktemp("etcd-beta")) as etcd:
        cilium_users = {"root", "admin-beta", "externalworkload", "local-beta", "remote"}
        assert set(etcd.admin.users()) == cilium_users | {"remote-alpha", "remote-gamma", "remote-delta"}
        etcd.admin.put("cilium/state/nodes/v1/beta/n1", b'{"name": "n1"}')  # as beta's agents register
        yield etcd


def _mount(plan: CapturedPlan, cluster: str, secret: str, directory: Path) -> Path:
    """`cluster`'s clustermesh files as kubelet projects them into /var/lib/cilium/clustermesh: the entries of
    `secret` (`cilium-kvstoremesh` for the kvstoremesh container, `cilium-clustermesh` for the agents), the
    remote certificate as `common-etcd-client.*` and the local one (KVStoreMesh is on) as `local-etcd-client.*`.
    """
    mount = directory / f"{cluster}-{secret}"
    mount.mkdir(parents=True)
    for name, text in _secret_data(plan, f"{cluster}-{secret}").items():
        (mount / name).write_text(text)
    _project(plan, f"{cluster}-remote-cert", mount, "common-etcd-client")
    _project(plan, f"{cluster}-local-cert", mount, "local-etcd-client")
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
        "files": TlsFiles(
            ca=local(config["trusted-ca-file"]), cert=local(config["cert-file"]), key=local(config["key-file"])
        ),
    }


def _kvstoremesh_config(plan: CapturedPlan, cluster: str, peer: str, directory: Path) -> dict[str, Any]:
    """`cluster`'s generated configuration for `peer`, read from its files as mounted in its kvstoremesh container."""
    mount = _mount(plan, cluster, "cilium-kvstoremesh", directory)
    return _parse_as_cilium(mount / peer, mount)


def _dial(config: dict[str, Any], port: int) -> Etcd:
    """Connect as Cilium does with this configuration: to the address the file maps the name to (a name without
    one is left to DNS, which here resolves to loopback), checking the server certificate for that name."""
    address = REDIRECTED[config["ips"][0]] if config["ips"] else LOOPBACK
    return Etcd(address, port, config["files"], config["host"])


@contextlib.contextmanager
def _connected(config: dict[str, Any], port: int) -> Iterator[Etcd]:
    client = _dial(config, port)
    try:
        yield client
    finally:
        client.close()


def _refused(call: Callable[[], object], code: Any = None) -> str:
    """The details of the error `call` fails with; `code` defaults to PERMISSION_DENIED."""
    with pytest.raises(grpc.RpcError) as raised:
        call()
    error: Any = raised.value
    assert error.code() == (code or grpc.StatusCode.PERMISSION_DENIED), error.details()
    return str(error.details())


def test_a_peer_reads_the_remote_clusters_state_and_cannot_write_it(
    plan: CapturedPlan, beta_etcd: ApiserverEtcd, tmp_path: Path
) -> None:
    beta = _kvstoremesh_config(plan, "alpha", "beta", tmp_path)
    assert beta["host"] == "beta.mesh.cilium.io" and beta["port"] == 2379
    assert beta["ips"] == LOAD_BALANCER_IPS["beta-clustermesh-apiserver"]
    assert reveal(plan.outputs["apiserverAddresses"], secrets=True)["beta"] == beta["ips"]
    key = "cilium/state/nodes/v1/beta/n1"
    with _connected(beta, beta_etcd.port) as alpha:
        assert alpha.get(key) == b'{"name": "n1"}'
        assert _refused(lambda: alpha.put(key, b"{}")) == "etcdserver: permission denied"
        assert _refused(lambda: alpha.put("cilium/state/nodes/v1/alpha/n1", b"{}"))
        assert _refused(lambda: alpha.get("cilium/cache/nodes/v1/gamma/n1"))  # beta's cache is for beta's agents
        assert alpha.get("cilium/cluster-config/beta") is None  # readable, not written here
        assert _refused(lambda: alpha.get("cilium/cluster-config/alpha"))
    assert beta_etcd.admin.get(key) == b'{"name": "n1"}'


def test_the_agents_local_identity_reads_the_cache_and_cannot_write_it(
    plan: CapturedPlan, beta_etcd: ApiserverEtcd, tmp_path: Path
) -> None:
    """With KVStoreMesh, beta's agents read every peer from beta's own apiserver, as `local-beta`."""
    mount = _mount(plan, "beta", "cilium-clustermesh", tmp_path)
    alpha = _parse_as_cilium(mount / "alpha", mount)
    assert (alpha["host"], alpha["port"], alpha["ips"]) == (APISERVER_SERVICE, 2379, [])
    assert alpha["files"].cert.name == "local-etcd-client.crt"
    assert (
        x509.load_pem_x509_certificate(alpha["files"].cert.read_bytes())
        .subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0]
        .value
        == "local-beta"
    )
    key = "cilium/cache/nodes/v1/alpha/n1"
    beta_etcd.admin.put(key, b'{"name": "n1"}')  # as beta's kvstoremesh caches alpha's state
    with _connected(alpha, beta_etcd.port) as agent:
        assert agent.get(key) == b'{"name": "n1"}'
        assert _refused(lambda: agent.put(key, b"{}"))
        assert _refused(lambda: agent.get("cilium/state/nodes/v1/beta/n1"))
    assert beta_etcd.admin.get(key) == b'{"name": "n1"}'


def _client_certificate(plan: CapturedPlan, common_name: str, directory: Path) -> TlsFiles:
    """A client certificate for `common_name` issued by the mesh's own CA, as any holder of its key could."""
    ca_pem, ca_key_pem = ca_certificate(plan), ca_private_key(plan)
    assert ca_pem is not None and ca_key_pem is not None
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    files = TlsFiles(
        ca=directory / "ca.crt", cert=directory / f"{common_name}.crt", key=directory / f"{common_name}.key"
    )
    files.ca.write_text(ca_pem)
    files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


@pytest.mark.parametrize(
    "identity",
    ["beta-remote-cert", "alpha-admin-cert", "alpha-local-cert", "remote-stranger"],
)
def test_a_certificate_of_the_mesh_ca_whose_cn_beta_does_not_know_is_denied(
    plan: CapturedPlan, beta_etcd: ApiserverEtcd, tmp_path: Path, identity: str
) -> None:
    """The CA is shared by the mesh, so every cluster's certificates pass beta's TLS: only the CN decides.

    beta's own remote identity is not a user of beta (its users file names its peers only); alpha's admin and
    local identities are users of alpha's etcd alone; `remote-stranger` is any name no users file lists.
    """
    if identity.endswith("-cert"):
        files = _project(plan, identity, tmp_path, "client")
    else:
        files = _client_certificate(plan, identity, tmp_path)
    client = Etcd(LOOPBACK, beta_etcd.port, files, "beta.mesh.cilium.io")
    try:
        assert _refused(lambda: client.get("cilium/state/nodes/v1/beta/n1")) == "etcdserver: permission denied"
        assert _refused(lambda: client.get("cilium/.heartbeat"))
        assert _refused(lambda: client.put("cilium/state/nodes/v1/beta/n1", b"{}"))
    finally:
        client.close()
    # The same certificate's CN, once a user with the remote role, reads: the denial above is the CN's.
    if identity == "remote-stranger":
        beta_etcd.admin.user_enforce_presence(identity, ["remote"])
        client = Etcd(LOOPBACK, beta_etcd.port, files, "beta.mesh.cilium.io")
        try:
            assert client.get("cilium/state/nodes/v1/beta/n1") == b'{"name": "n1"}'
        finally:
            client.close()
            beta_etcd.admin.user_enforce_absence(identity)


def test_a_removed_cluster_is_refused_after_the_plan_without_it(
    plan: CapturedPlan, beta_etcd: ApiserverEtcd, tmp_path: Path
) -> None:
    """gamma leaves the stack: beta's users file loses `remote-gamma`, and beta's etcd refuses gamma from then on.

    The etcd and every certificate stay those of the deployed mesh (the plan without gamma re-issues nothing
    that is used here): only the users file of the new plan is applied, as kubelet and the users manager would.
    """
    state = "cilium/state/nodes/v1/beta/"
    gamma = _kvstoremesh_config(plan, "gamma", "beta", tmp_path)
    alpha = _kvstoremesh_config(plan, "alpha", "beta", tmp_path)
    with _connected(gamma, beta_etcd.port) as gamma_client, _connected(alpha, beta_etcd.port) as alpha_client:
        assert gamma_client.get(state + "n1") == b'{"name": "n1"}'
        open_watch = gamma_client.watch(state)
        assert open_watch.next() == ([], "")  # created

        without_gamma = plan_raw(
            raw_config([c for c in _four_clusters() if c["name"] != "gamma"]), mocks=ReportingMocks
        )
        users = yaml.safe_load(_users_yaml(without_gamma, "beta"))["users"]
        assert users == [{"name": "remote-alpha", "role": "remote"}, {"name": "remote-delta", "role": "remote"}]
        # What alpha reads about beta does not change (its pods restart for nothing); gamma leaves its files.
        assert _secret_data(without_gamma, "alpha-cilium-kvstoremesh") == {
            k: v for k, v in _secret_data(plan, "alpha-cilium-kvstoremesh").items() if k != "gamma"
        }
        beta_etcd.users.sync(_users_yaml(without_gamma, "beta"))
        assert "remote-gamma" not in beta_etcd.admin.users()

        # gamma's connection stays open, as its kvstoremesh's would: each request is authorised anew.
        assert _refused(lambda: gamma_client.get(state + "n1")) == "etcdserver: permission denied"
        new_watch = gamma_client.watch(state)
        assert "etcdserver: permission denied" in new_watch.next()[1]
        assert alpha_client.get(state + "n1") == b'{"name": "n1"}'
        # etcd checks a watch's permission when it is created only: the watch gamma opened before goes on
        # streaming beta's changes until it is re-established (the limit the README states for revocation).
        beta_etcd.admin.put(state + "n2", b'{"name": "n2"}')
        assert open_watch.next() == ([b'{"name": "n2"}'], "")
        open_watch.close()
        new_watch.close()
    with _connected(gamma, beta_etcd.port) as reconnected:
        assert _refused(lambda: reconnected.get(state + "n1"))


def test_a_peer_with_its_own_hostname_is_reached_by_that_name(
    plan: CapturedPlan, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """No address travels in the file: DNS resolves delta's name (here, to loopback), and its certificate names it."""
    delta = _kvstoremesh_config(plan, "alpha", "delta", tmp_path)
    assert (delta["host"], delta["port"], delta["ips"]) == (DELTA_HOSTNAME, 2379, [])
    assert reveal(plan.outputs["apiserverAddresses"], secrets=True)["delta"] == [DELTA_HOSTNAME]
    with _apiserver_etcd(plan, "delta", tmp_path_factory.mktemp("etcd-delta")) as delta_etcd:
        delta_etcd.admin.put("cilium/.heartbeat", b"now")  # as delta's operator does
        with _connected(delta, delta_etcd.port) as alpha:
            assert alpha.get("cilium/.heartbeat") == b"now"
            assert _refused(lambda: alpha.put("cilium/.heartbeat", b"later"))


def test_a_client_certificate_from_another_ca_is_refused(
    plan: CapturedPlan, beta_etcd: ApiserverEtcd, tmp_path: Path
) -> None:
    beta = _kvstoremesh_config(plan, "alpha", "beta", tmp_path)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "remote-alpha")])
    rogue = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(rogue_key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(hours=1))
        .sign(rogue_key, hashes.SHA256())
    )  # fmt: skip
    files = TlsFiles(ca=beta["files"].ca, cert=tmp_path / "rogue.crt", key=tmp_path / "rogue.key")
    files.cert.write_bytes(rogue.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        rogue_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    client = Etcd(LOOPBACK, beta_etcd.port, files, beta["host"])
    try:
        _refused(lambda: client.get("cilium/.heartbeat"), grpc.StatusCode.UNAVAILABLE)
    finally:
        client.close()
    time.sleep(0.2)
    assert "certificate signed by unknown authority" in beta_etcd.log.read_text()


def test_another_clusters_configuration_fails_hostname_verification(
    plan: CapturedPlan, beta_etcd: ApiserverEtcd, tmp_path: Path
) -> None:
    """alpha's file for gamma, dialled at beta's apiserver, must not be accepted: beta's certificate is not gamma's."""
    gamma = _kvstoremesh_config(plan, "alpha", "gamma", tmp_path)
    assert gamma["host"] == "gamma.mesh.cilium.io"
    with _connected(gamma, beta_etcd.port) as client:
        details = _refused(lambda: client.get("cilium/.heartbeat"), grpc.StatusCode.UNAVAILABLE)
    assert "Hostname Verification Check failed" in details


def test_etcd_binary_is_the_real_one() -> None:
    assert shutil.which(str(ETCD)) is not None
    version = subprocess.run([str(ETCD), "--version"], capture_output=True, text=True, check=True).stdout
    assert "etcd Version: 3.5" in version
