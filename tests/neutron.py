"""A real OpenStack Networking API (Debian's `neutron-server`) on loopback, and a plan applied to it.

`NeutronServer` runs the real Neutron API code with no agents, no Keystone (`noauth`: every request is admin)
and a SQLite database, so that the networking a plan asks for meets the checks a cloud makes: subnets and
allocation pools, fixed IPs, allowed address pairs, port security, security-group rules, routers, floating IPs.
`apply_plan` creates, in dependency order, every `openstack:networking/*` resource of a captured plan on it,
with the property names translated from the provider's (camelCase) to the Neutron API v2.0's (snake_case) and
each id the planner fabricated replaced by the id Neutron returned. A request Neutron refuses raises
`NeutronRefused`, carrying the resource, the request body and Neutron's error type and message.

What it cannot show: Nova, Octavia and Glance resources (skipped, and counted as such), Keystone, a cloud's
quotas and policy, and an OVN cloud's own checks (the mechanism driver here is openvswitch). The setup is the
one described in `shared/reference/neutron-local.md`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from clustermesh.planner.graph import UNKNOWN, Node, Secret
from clustermesh.planner.runner import CapturedPlan
from tests.plan_order import DependencyCycle, dependency_order

PROJECT_DIR = Path(__file__).resolve().parent.parent
CACHE_DIR = PROJECT_DIR / ".cache" / "neutron"
"""Pristine databases, one per installed Neutron version (building one takes a few seconds; copying, none)."""
INSTALL_HINT = "run scripts/system_packages.sh (it installs neutron-server and shellcheck with apt-get)"
DEBIAN_PYTHON = "/usr/bin/python3"
"""The interpreter Debian's neutron packages are installed for."""
API_PASTE = "/usr/share/neutron-common/api-paste.ini"
NEUTRON_PACKAGE = "python3-neutron"
PR_SET_PDEATHSIG = 1

NETWORKING = "openstack:networking/"
NETWORK = "openstack:networking/network:Network"
SUBNET = "openstack:networking/subnet:Subnet"
ROUTER = "openstack:networking/router:Router"
ROUTER_INTERFACE = "openstack:networking/routerInterface:RouterInterface"
ROUTER_ROUTE = "openstack:networking/routerRoute:RouterRoute"
SUBNET_ROUTE = "openstack:networking/subnetRoute:SubnetRoute"
SEC_GROUP = "openstack:networking/secGroup:SecGroup"
SEC_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
PORT = "openstack:networking/port:Port"
PORT_SEC_GROUP_ASSOCIATE = "openstack:networking/portSecGroupAssociate:PortSecGroupAssociate"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"
FLOATING_IP_ASSOCIATE = "openstack:networking/floatingIpAssociate:FloatingIpAssociate"
GET_NETWORK = "openstack:networking/getNetwork:getNetwork"
GET_SUBNET = "openstack:networking/getSubnet:getSubnet"

EXTERNAL_CIDRS = ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24")
"""The subnets given to external networks the plan only names (documentation ranges, as a cloud's public ones)."""
PHYSICAL_NETWORK = "physnet1"
"""The one flat physical network of the config; a second external network gets a vxlan segment."""

NEUTRON_CONF = """\
[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
auth_strategy = noauth
core_plugin = ml2
service_plugins = router
allow_overlapping_ips = True
transport_url = fake://
notify_nova_on_port_status_changes = False
notify_nova_on_port_data_changes = False
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
state_path = {state}
api_paste_config = {api_paste}
log_file = {log}

[database]
connection = sqlite:///{database}

[oslo_concurrency]
lock_path = {locks}

[agent]
root_helper = /bin/false
"""

ML2_CONF = """\
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch
extension_drivers = port_security

[ml2_type_vxlan]
vni_ranges = 1:1000

[ml2_type_flat]
flat_networks = physnet1

[securitygroup]
enable_security_group = True
"""

CREATE_TABLES = """\
import sys
import sqlalchemy
from neutron.db.migration.models import head
head.get_metadata().create_all(sqlalchemy.create_engine(sys.argv[1]))
"""


class NeutronNotInstalled(RuntimeError):
    """`neutron-server` (or its database tool) is missing from this machine."""


class NeutronStartError(RuntimeError):
    """The server did not come up (or its database could not be built); the message ends with its log."""


class HarnessError(RuntimeError):
    """The plan holds something the harness cannot put to Neutron (an unknown property, an unresolved id)."""


class NeutronRefused(Exception):
    """Neutron answered a request with an error, as it would on a cloud."""

    def __init__(
        self,
        *,
        method: str,
        path: str,
        body: Any,
        status: int,
        error_type: str,
        message: str,
        urn: str = "",
        name: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.status = status
        self.error_type = error_type
        self.message = message
        self.urn = urn
        self.name = name
        super().__init__(str(self))

    def __str__(self) -> str:
        who = f"{self.name} ({self.urn}): " if self.urn else ""
        request = f"{self.method} {self.path} {json.dumps(self.body, sort_keys=True)}"
        return f"{who}Neutron refused {request}: {self.status} {self.error_type}: {self.message}"

    def for_resource(self, urn: str, name: str) -> NeutronRefused:
        return NeutronRefused(
            method=self.method,
            path=self.path,
            body=self.body,
            status=self.status,
            error_type=self.error_type,
            message=self.message,
            urn=urn,
            name=name,
        )


COLLECTIONS = {
    "network": "networks",
    "subnet": "subnets",
    "router": "routers",
    "port": "ports",
    "security_group": "security-groups",
    "security_group_rule": "security-group-rules",
    "floatingip": "floatingips",
}
"""Neutron's resource key -> its collection's path under /v2.0."""


class NeutronClient:
    """Plain JSON over HTTP to the Neutron API v2.0 (noauth: no token, every request admin)."""

    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.base_url}/v2.0", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NeutronClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None, *, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded answer; `NeutronRefused` for any error status."""
        response = self._http.request(method, path, json=body, params=params)
        if response.is_success:
            return response.json() if response.content else None
        error_type, message = _neutron_error(response)
        raise NeutronRefused(
            method=method,
            path=path,
            body=body,
            status=response.status_code,
            error_type=error_type,
            message=message,
        )

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def create(self, resource: str, body: Mapping[str, Any], *, project_id: str) -> dict[str, Any]:
        """POST one `resource` (a Neutron key such as `port`); `project_id` is added unless the body has one."""
        answer = self.post(COLLECTIONS[resource], {resource: {"project_id": project_id, **body}})
        created: dict[str, Any] = answer[resource]
        return created

    def show(self, resource: str, resource_id: str) -> dict[str, Any]:
        shown: dict[str, Any] = self.get(f"{COLLECTIONS[resource]}/{resource_id}")[resource]
        return shown

    def update(self, resource: str, resource_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        updated: dict[str, Any] = self.put(f"{COLLECTIONS[resource]}/{resource_id}", {resource: dict(body)})[resource]
        return updated

    def list(self, resource: str, **filters: Any) -> list[dict[str, Any]]:
        collection = COLLECTIONS[resource]
        found: list[dict[str, Any]] = self.get(collection, **filters)[collection.replace("-", "_")]
        return found


def _neutron_error(response: httpx.Response) -> tuple[str, str]:
    """Neutron's `{"NeutronError": {"type", "message"}}`, or whatever the WSGI layer answered instead."""
    try:
        payload = response.json()
    except ValueError:
        return f"HTTP{response.status_code}", response.text.strip()
    error = payload.get("NeutronError") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("type", "")), str(error.get("message", ""))
    if isinstance(error, str):
        return f"HTTP{response.status_code}", error
    return f"HTTP{response.status_code}", json.dumps(payload)


# --- the server ---------------------------------------------------------------------------------------------


def neutron_version() -> str:
    """The installed Debian package's version (keys the pristine database)."""
    if shutil.which("dpkg-query") is None:
        raise NeutronNotInstalled(f"no dpkg-query: this is not a Debian system; {INSTALL_HINT}")
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status} ${Version}", NEUTRON_PACKAGE], capture_output=True, text=True, check=False
    )
    status, _, version = result.stdout.rpartition(" ")
    if result.returncode != 0 or status != "install ok installed":
        raise NeutronNotInstalled(f"{NEUTRON_PACKAGE} is not installed; {INSTALL_HINT}")
    return version


def _executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise NeutronNotInstalled(f"{name} is not installed (not on PATH); {INSTALL_HINT}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NeutronServer:
    """`neutron-server` on 127.0.0.1 with a fresh copy of a pristine database, for as long as the context lasts.

    `timings` records, in seconds, `db_build` (only when no pristine database was cached for this version),
    `db_copy` and `start` (launch until `GET /v2.0/networks` answers).
    """

    def __init__(self, *, cache_dir: Path = CACHE_DIR, startup_timeout: float = 60.0) -> None:
        self.cache_dir = cache_dir
        self.startup_timeout = startup_timeout
        self.timings: dict[str, float] = {}
        self.port = 0
        self.workdir: Path | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._client: NeutronClient | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def client(self) -> NeutronClient:
        if self._client is None:
            raise RuntimeError("the Neutron server is not running")
        return self._client

    def __enter__(self) -> NeutronServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        server = _executable("neutron-server")
        db_manage = _executable("neutron-db-manage")
        version = neutron_version()
        self._tempdir = tempfile.TemporaryDirectory(prefix="neutron-")
        self.workdir = Path(self._tempdir.name)
        try:
            self._start(server, db_manage, version, self.workdir)
        except BaseException:
            self.stop()
            raise

    def _start(self, server: str, db_manage: str, version: str, workdir: Path) -> None:
        self.port = free_port()
        config = self._write_config(workdir, workdir / "neutron.db")
        started = time.monotonic()
        pristine = self._pristine_database(db_manage, version)
        copying = time.monotonic()
        shutil.copyfile(pristine, workdir / "neutron.db")
        self.timings["db_copy"] = time.monotonic() - copying
        launched = time.monotonic()
        with (workdir / "server.out").open("wb") as out:
            self._process = subprocess.Popen(
                [server, *config],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads of ours run yet, and it only calls prctl
            )
        self._client = NeutronClient(self.url)
        self._wait_until_ready()
        self.timings["start"] = time.monotonic() - launched
        self.timings["total"] = time.monotonic() - started

    def _write_config(self, workdir: Path, database: Path) -> list[str]:
        """The two config files, as `--config-file` arguments."""
        for sub in ("state", "locks"):
            (workdir / sub).mkdir(exist_ok=True)
        neutron_conf = workdir / "neutron.conf"
        neutron_conf.write_text(
            NEUTRON_CONF.format(
                port=self.port,
                state=workdir / "state",
                api_paste=API_PASTE,
                log=workdir / "neutron.log",
                database=database,
                locks=workdir / "locks",
            )
        )
        ml2_conf = workdir / "ml2_conf.ini"
        ml2_conf.write_text(ML2_CONF)
        return ["--config-file", str(neutron_conf), "--config-file", str(ml2_conf)]

    def _pristine_database(self, db_manage: str, version: str) -> Path:
        """The cached empty database of this Neutron version, built first if need be.

        `neutron-db-manage upgrade heads` cannot run on SQLite (its migrations alter constraints); as Neutron's
        own unit tests do, the tables are created from the models and the migrations stamped as applied.
        """
        pristine = self.cache_dir / f"neutron-{version}.db"
        if pristine.exists():
            return pristine
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        building = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="neutron-db-", dir=self.cache_dir) as scratch:
            database = Path(scratch) / "neutron.db"
            self._run([DEBIAN_PYTHON, "-c", CREATE_TABLES, f"sqlite:///{database}"], "creating Neutron's tables")
            config = self._write_config(Path(scratch), database)
            self._run([db_manage, *config, "stamp", "heads"], "stamping Neutron's database")
            os.replace(database, pristine)  # atomic: a concurrent session sees a whole file or none
        self.timings["db_build"] = time.monotonic() - building
        return pristine

    @staticmethod
    def _run(command: list[str], what: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise NeutronStartError(f"{what} failed ({' '.join(command[:2])} ...):\n{tail}")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise NeutronStartError(
                    f"neutron-server exited with {self._process.returncode} before answering\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError, NeutronRefused):
                self.client.get("networks")
                return
            if time.monotonic() > deadline:
                raise NeutronStartError(
                    f"neutron-server did not answer GET {self.url}/v2.0/networks within "
                    f"{self.startup_timeout:.0f} s\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log and of its stdout/stderr."""
        if self.workdir is None:
            return ""
        parts = []
        for name in ("neutron.log", "server.out"):
            path = self.workdir / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} (last {len(tail)} lines) ---\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the server and its workers (its process group, whose id is the server's PID); remove its files."""
        if self._client is not None:
            self._client.close()
            self._client = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
            self.workdir = None


def _die_with_parent() -> None:
    """In the child before exec: be sent SIGTERM when the test process dies, even killed, so no server outlives it."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group `pid` leads (the server was started in a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


_shared: NeutronServer | None = None
_shared_users = 0


def neutron_server_fixture() -> Iterator[NeutronServer]:
    """A session fixture's body: one server for every user in the process, stopped when the last one is done.

    Wire it with `pytest.fixture(scope="session", name="neutron_server")(neutron_server_fixture)`; defined in
    several places (a conftest and a test module), it still starts one server.
    """
    global _shared, _shared_users  # noqa: PLW0603 - one server per process, however many fixtures use it
    if _shared is None:
        server = NeutronServer()
        server.start()
        _shared = server
    _shared_users += 1
    try:
        yield _shared
    finally:
        _shared_users -= 1
        if _shared_users == 0:
            _shared.stop()
            _shared = None


# --- applying a plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invoke:
    """A provider function call as the planner records it (`token`, `args`, `result`; camelCase, decoded)."""

    token: str
    args: dict[str, Any]
    result: dict[str, Any]


@dataclass
class ApplySummary:
    project_id: str
    created: Counter[str] = field(default_factory=Counter)
    """Resources of the plan created (or, for an association, applied) on Neutron, by type."""
    existing: Counter[str] = field(default_factory=Counter)
    """What a cloud would already have, created first: networks and subnets the plan looks up, external networks."""
    skipped: Counter[str] = field(default_factory=Counter)
    """OpenStack resources that are not Neutron's (Nova, Octavia, Glance ...), by type."""
    ids: dict[str, str] = field(default_factory=dict)
    """URN -> the id Neutron gave the resource."""
    real: dict[str, str] = field(default_factory=dict)
    """Each fabricated value (an id, a floating address) -> the real one."""

    def line(self) -> str:
        """One progress line: what was created on Neutron, and what was skipped."""
        created = ", ".join(f"{count} {_short(kind)}" for kind, count in sorted(self.created.items())) or "nothing"
        text = f"neutron: created {created}"
        if self.existing:
            text += f" (on {sum(self.existing.values())} pre-existing networks/subnets)"
        if self.skipped:
            skipped = ", ".join(f"{count} {_short(kind)}" for kind, count in sorted(self.skipped.items()))
            text += f"; skipped, not Neutron's: {skipped}"
        return text


def _short(kind: str) -> str:
    return kind.rsplit(":", 1)[-1]


@dataclass
class _Apply:
    client: NeutronClient
    project_id: str
    summary: ApplySummary
    known: set[str] = field(default_factory=set)
    """Every real id the plan may reference."""

    def real_value(self, value: Any, where: str) -> Any:
        """`value` with every fabricated id replaced by the real one; secrets unwrapped."""
        if isinstance(value, Secret):
            return self.real_value(value.value, where)
        if value is UNKNOWN:
            raise HarnessError(f"{where} is unknown in the plan (a preview, or a value the mocks did not answer)")
        if isinstance(value, str):
            return self.summary.real.get(value, value)
        if isinstance(value, list):
            return [self.real_value(v, where) for v in value]
        if isinstance(value, dict):
            return {k: self.real_value(v, where) for k, v in value.items()}
        return value

    def reference(self, value: str, where: str) -> str:
        """An id input that must name something on Neutron (already replaced by `real_value`)."""
        if value not in self.known:
            raise HarnessError(f"{where} = {value!r} is no resource of the plan nor anything the plan looked up")
        return value

    def remember(self, fabricated: Any, real: Any) -> None:
        if isinstance(fabricated, str) and fabricated and isinstance(real, str):
            self.summary.real[fabricated] = real
            self.known.add(real)


Translate = Callable[["_Apply", Node, dict[str, Any]], dict[str, Any]]
"""Create one resource of the plan (its inputs with real ids) on Neutron; answer what Neutron answered: its `id`,
and for a floating IP its `address` too."""

IGNORED = frozenset({"region"})


def _body(node: Node, inputs: dict[str, Any], fields: Mapping[str, str], special: frozenset[str]) -> dict[str, Any]:
    """The Neutron body for the plain `fields` (provider name -> Neutron name); any input neither plain, special
    nor ignored is an error, so that nothing the program sets goes unchecked."""
    unknown = sorted(set(inputs) - set(fields) - special - IGNORED - {"tags", "tenantId", "valueSpecs"})
    unknown = [key for key in unknown if not key.startswith("__")]
    if unknown:
        raise HarnessError(f"{node.name} ({node.type}): the harness does not translate input(s) {unknown}")
    body = {fields[key]: value for key, value in inputs.items() if key in fields and value is not None}
    if "tenantId" in inputs:
        body["project_id"] = inputs["tenantId"]
    body.update(inputs.get("valueSpecs") or {})
    return body


def _tag(ctx: _Apply, resource: str, resource_id: str, inputs: dict[str, Any]) -> None:
    if inputs.get("tags"):
        ctx.client.put(f"{COLLECTIONS[resource]}/{resource_id}/tags", {"tags": inputs["tags"]})


NETWORK_FIELDS = {
    "name": "name",
    "description": "description",
    "adminStateUp": "admin_state_up",
    "shared": "shared",
    "external": "router:external",
    "mtu": "mtu",
    "dnsDomain": "dns_domain",
    "portSecurityEnabled": "port_security_enabled",
    "qosPolicyId": "qos_policy_id",
    "availabilityZoneHints": "availability_zone_hints",
    "transparentVlan": "vlan_transparent",
}
SEGMENT_FIELDS = {
    "networkType": "provider:network_type",
    "physicalNetwork": "provider:physical_network",
    "segmentationId": "provider:segmentation_id",
}


def _network(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    body = _body(node, inputs, NETWORK_FIELDS, frozenset({"segments"}))
    segments = [{SEGMENT_FIELDS[k]: v for k, v in s.items() if v is not None} for s in inputs.get("segments") or []]
    if len(segments) == 1:  # as the provider does: one segment as the network's provider attributes
        body.update(segments[0])
    elif segments:
        body["segments"] = segments
    created = ctx.client.create("network", body, project_id=ctx.project_id)
    _tag(ctx, "network", created["id"], inputs)
    return created


SUBNET_FIELDS = {
    "name": "name",
    "description": "description",
    "networkId": "network_id",
    "cidr": "cidr",
    "ipVersion": "ip_version",
    "gatewayIp": "gateway_ip",
    "enableDhcp": "enable_dhcp",
    "dnsNameservers": "dns_nameservers",
    "serviceTypes": "service_types",
    "ipv6AddressMode": "ipv6_address_mode",
    "ipv6RaMode": "ipv6_ra_mode",
    "subnetpoolId": "subnetpool_id",
    "prefixLength": "prefixlen",
    "segmentId": "segment_id",
    "dnsPublishFixedIp": "dns_publish_fixed_ip",
}


def _subnet(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    body = _body(node, inputs, SUBNET_FIELDS, frozenset({"allocationPools", "noGateway"}))
    ctx.reference(body["network_id"], f"{node.name}.networkId")
    body.setdefault("ip_version", 4)  # the provider's default
    if inputs.get("allocationPools"):
        body["allocation_pools"] = [{"start": p["start"], "end": p["end"]} for p in inputs["allocationPools"]]
    if inputs.get("noGateway"):
        body["gateway_ip"] = None
    created = ctx.client.create("subnet", body, project_id=ctx.project_id)
    _tag(ctx, "subnet", created["id"], inputs)
    return created


def _fixed_ips(ctx: _Apply, node: Node, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    fixed = []
    for entry in entries:
        item = {"subnet_id": entry.get("subnetId"), "ip_address": entry.get("ipAddress")}
        if item["subnet_id"]:
            ctx.reference(item["subnet_id"], f"{node.name}.fixedIps.subnetId")
        fixed.append({k: v for k, v in item.items() if v})
    return fixed


ROUTER_FIELDS = {
    "name": "name",
    "description": "description",
    "adminStateUp": "admin_state_up",
    "distributed": "distributed",
    "availabilityZoneHints": "availability_zone_hints",
}
ROUTER_GATEWAY = frozenset(
    {"externalNetworkId", "enableSnat", "externalFixedIps", "externalSubnetIds", "externalQosPolicyId", "vendorOptions"}
)


def _router(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    """As the provider does: the gateway in the create request (after it, with setRouterGatewayAfterCreate), and
    with externalSubnetIds each subnet in turn until one has an address left."""
    body = _body(node, inputs, ROUTER_FIELDS, ROUTER_GATEWAY)
    gateways = _router_gateways(ctx, node, inputs)
    if not gateways or (inputs.get("vendorOptions") or {}).get("setRouterGatewayAfterCreate"):
        created = ctx.client.create("router", body, project_id=ctx.project_id)
        if gateways:
            path = created["id"]
            created = _first_with_room(
                gateways, lambda info: ctx.client.update("router", path, {"external_gateway_info": info})
            )
    else:
        attempts = [{**body, "external_gateway_info": gateway} for gateway in gateways]
        created = _first_with_room(attempts, lambda b: ctx.client.create("router", b, project_id=ctx.project_id))
    _tag(ctx, "router", created["id"], inputs)
    return created


def _router_gateways(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """The external_gateway_info to try, in order (none without an external network)."""
    if not inputs.get("externalNetworkId"):
        return []
    gateway: dict[str, Any] = {
        "network_id": ctx.reference(inputs["externalNetworkId"], f"{node.name}.externalNetworkId")
    }
    if inputs.get("enableSnat") is not None:
        gateway["enable_snat"] = inputs["enableSnat"]
    if inputs.get("externalQosPolicyId"):
        gateway["qos_policy_id"] = inputs["externalQosPolicyId"]
    if inputs.get("externalFixedIps"):
        gateway["external_fixed_ips"] = _fixed_ips(ctx, node, inputs["externalFixedIps"])
    subnets = [ctx.reference(s, f"{node.name}.externalSubnetIds") for s in inputs.get("externalSubnetIds") or []]
    return [{**gateway, "external_fixed_ips": [{"subnet_id": s}]} for s in subnets] or [gateway]


def _first_with_room(
    attempts: Sequence[dict[str, Any]], request: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """The answer to the first of `attempts` for which a subnet has an address left (the last one's refusal)."""
    for attempt in attempts[:-1]:
        try:
            return request(attempt)
        except NeutronRefused as refused:
            if refused.error_type != "IpAddressGenerationFailure":
                raise
    return request(attempts[-1])


def _router_interface(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    _body(node, inputs, {}, frozenset({"routerId", "subnetId", "portId", "forceDestroy"}))
    router = ctx.reference(inputs["routerId"], f"{node.name}.routerId")
    if inputs.get("portId"):
        body = {"port_id": ctx.reference(inputs["portId"], f"{node.name}.portId")}
    else:
        body = {"subnet_id": ctx.reference(inputs["subnetId"], f"{node.name}.subnetId")}
    answer = ctx.client.put(f"routers/{router}/add_router_interface", body)
    return {"id": answer["port_id"]}  # the provider's id for an interface is its port's


def _router_route(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    _body(node, inputs, {}, frozenset({"routerId", "destinationCidr", "nextHop"}))
    router = ctx.reference(inputs["routerId"], f"{node.name}.routerId")
    route = {"destination": inputs["destinationCidr"], "nexthop": inputs["nextHop"]}
    ctx.client.put(f"routers/{router}/add_extraroutes", {"router": {"routes": [route]}})
    return {"id": f"{router}-route-{route['destination']}-{route['nexthop']}"}


def _subnet_route(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    _body(node, inputs, {}, frozenset({"subnetId", "destinationCidr", "nextHop"}))
    subnet = ctx.reference(inputs["subnetId"], f"{node.name}.subnetId")
    routes = ctx.client.show("subnet", subnet)["host_routes"]
    route = {"destination": inputs["destinationCidr"], "nexthop": inputs["nextHop"]}
    ctx.client.update("subnet", subnet, {"host_routes": [*routes, route]})
    return {"id": f"{subnet}-route-{route['destination']}-{route['nexthop']}"}


SEC_GROUP_FIELDS = {"name": "name", "description": "description", "stateful": "stateful"}


def _sec_group(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    body = _body(node, inputs, SEC_GROUP_FIELDS, frozenset({"deleteDefaultRules"}))
    created = ctx.client.create("security_group", body, project_id=ctx.project_id)
    if inputs.get("deleteDefaultRules"):  # the provider deletes the egress rules Neutron adds to a new group
        for rule in created["security_group_rules"]:
            ctx.client.delete(f"security-group-rules/{rule['id']}")
    _tag(ctx, "security_group", created["id"], inputs)
    return created


SEC_GROUP_RULE_FIELDS = {
    "direction": "direction",
    "ethertype": "ethertype",
    "protocol": "protocol",
    "portRangeMin": "port_range_min",
    "portRangeMax": "port_range_max",
    "remoteIpPrefix": "remote_ip_prefix",
    "remoteGroupId": "remote_group_id",
    "remoteAddressGroupId": "remote_address_group_id",
    "securityGroupId": "security_group_id",
    "description": "description",
}


def _sec_group_rule(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    # The provider leaves out what is zero or empty (omitempty): port 0 and protocol "" mean "not set".
    body = {k: v for k, v in _body(node, inputs, SEC_GROUP_RULE_FIELDS, frozenset()).items() if v not in (0, "")}
    ctx.reference(body["security_group_id"], f"{node.name}.securityGroupId")
    if body.get("remote_group_id"):
        ctx.reference(body["remote_group_id"], f"{node.name}.remoteGroupId")
    return ctx.client.create("security_group_rule", body, project_id=ctx.project_id)


PORT_FIELDS = {
    "name": "name",
    "description": "description",
    "networkId": "network_id",
    "adminStateUp": "admin_state_up",
    "macAddress": "mac_address",
    "deviceOwner": "device_owner",
    "deviceId": "device_id",
    "portSecurityEnabled": "port_security_enabled",
    "dnsName": "dns_name",
    "qosPolicyId": "qos_policy_id",
}
PORT_SPECIAL = frozenset(
    {"fixedIps", "noFixedIp", "securityGroupIds", "noSecurityGroups", "allowedAddressPairs", "extraDhcpOptions"}
    | {"binding"}
)


def _port(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    body = _body(node, inputs, PORT_FIELDS, PORT_SPECIAL)
    ctx.reference(body["network_id"], f"{node.name}.networkId")
    if inputs.get("fixedIps"):
        body["fixed_ips"] = _fixed_ips(ctx, node, inputs["fixedIps"])
    elif inputs.get("noFixedIp"):
        body["fixed_ips"] = []
    if inputs.get("securityGroupIds"):
        body["security_groups"] = [
            ctx.reference(g, f"{node.name}.securityGroupIds") for g in inputs["securityGroupIds"]
        ]
    elif inputs.get("noSecurityGroups"):
        body["security_groups"] = []
    if inputs.get("allowedAddressPairs") is not None:
        pairs = [
            {"ip_address": p["ipAddress"], "mac_address": p.get("macAddress")} for p in inputs["allowedAddressPairs"]
        ]
        body["allowed_address_pairs"] = [{k: v for k, v in p.items() if v} for p in pairs]
    body.update(_port_extras(inputs))
    created = ctx.client.create("port", body, project_id=ctx.project_id)
    _tag(ctx, "port", created["id"], inputs)
    return created


def _port_extras(inputs: dict[str, Any]) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    if inputs.get("extraDhcpOptions"):
        extras["extra_dhcp_opts"] = [
            {"opt_name": o["name"], "opt_value": o["value"], "ip_version": o.get("ipVersion", 4)}
            for o in inputs["extraDhcpOptions"]
        ]
    binding = inputs.get("binding") or {}
    for key, neutron_key in (("hostId", "binding:host_id"), ("vnicType", "binding:vnic_type")):
        if binding.get(key):
            extras[neutron_key] = binding[key]
    if binding.get("profile"):
        extras["binding:profile"] = json.loads(binding["profile"])
    return extras


def _port_sec_group_associate(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    _body(node, inputs, {}, frozenset({"portId", "securityGroupIds", "enforce"}))
    port = ctx.reference(inputs["portId"], f"{node.name}.portId")
    groups = [ctx.reference(g, f"{node.name}.securityGroupIds") for g in inputs.get("securityGroupIds") or []]
    if not inputs.get("enforce"):
        groups = [*ctx.client.show("port", port)["security_groups"], *groups]
    ctx.client.update("port", port, {"security_groups": list(dict.fromkeys(groups))})
    return {"id": port}


FLOATING_IP_FIELDS = {
    "description": "description",
    "address": "floating_ip_address",
    "portId": "port_id",
    "fixedIp": "fixed_ip_address",
    "subnetId": "subnet_id",
    "dnsName": "dns_name",
    "dnsDomain": "dns_domain",
}


def _floating_ip(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    body = _body(node, inputs, FLOATING_IP_FIELDS, frozenset({"pool", "subnetIds"}))
    networks = ctx.client.list("network", name=inputs["pool"], **{"router:external": True})
    if not networks:
        raise HarnessError(f"{node.name}.pool: no external network named {inputs['pool']!r}")
    body["floating_network_id"] = networks[0]["id"]
    if body.get("port_id"):
        ctx.reference(body["port_id"], f"{node.name}.portId")
    attempts = [{**body, "subnet_id": s} for s in inputs.get("subnetIds") or []] or [body]
    created = _first_with_room(attempts, lambda b: ctx.client.create("floatingip", b, project_id=ctx.project_id))
    _tag(ctx, "floatingip", created["id"], inputs)
    return {**created, "address": created["floating_ip_address"]}


def _floating_ip_associate(ctx: _Apply, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    _body(node, inputs, {}, frozenset({"floatingIp", "portId", "fixedIp"}))
    found = ctx.client.list("floatingip", floating_ip_address=inputs["floatingIp"])
    if not found:
        raise HarnessError(f"{node.name}.floatingIp = {inputs['floatingIp']!r} is no floating IP on Neutron")
    body = {"port_id": ctx.reference(inputs["portId"], f"{node.name}.portId")}
    if inputs.get("fixedIp"):
        body["fixed_ip_address"] = inputs["fixedIp"]
    return ctx.client.update("floatingip", found[0]["id"], body)


TRANSLATORS: dict[str, Translate] = {
    NETWORK: _network,
    SUBNET: _subnet,
    ROUTER: _router,
    ROUTER_INTERFACE: _router_interface,
    ROUTER_ROUTE: _router_route,
    SUBNET_ROUTE: _subnet_route,
    SEC_GROUP: _sec_group,
    SEC_GROUP_RULE: _sec_group_rule,
    PORT: _port,
    PORT_SEC_GROUP_ASSOCIATE: _port_sec_group_associate,
    FLOATING_IP: _floating_ip,
    FLOATING_IP_ASSOCIATE: _floating_ip_associate,
}
"""The networking resources the harness puts to Neutron; any other `openstack:networking/*` type is an error."""

SETTLED = {FLOATING_IP: ("address",)}
"""Outputs besides the id that other resources may reference, fabricated by the planner and settled by Neutron."""


# --- what a cloud already has ------------------------------------------------------------------------------


def _call_parts(call: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """`token`, `args`, `result` of a recorded call (an object with those attributes, or a mapping)."""
    if isinstance(call, Mapping):
        return str(call["token"]), dict(call.get("args") or {}), dict(call.get("result") or {})
    return str(call.token), dict(call.args or {}), dict(call.result or {})


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return _plain(value.value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _external_references(nodes: Sequence[Node]) -> tuple[set[str], set[str]]:
    """The (fabricated) network ids routers use as their gateway, and the pool names floating IPs draw from."""
    ids: set[str] = set()
    names: set[str] = set()
    for node in nodes:
        if node.type == ROUTER and isinstance(node.inputs.get("externalNetworkId"), str):
            ids.add(node.inputs["externalNetworkId"])
        if node.type == FLOATING_IP and isinstance(node.inputs.get("pool"), str):
            names.add(node.inputs["pool"])
    return ids, names


def _ensure_external(ctx: _Apply, name: str) -> str:
    """The id of the external network `name`, created (flat on physnet1 if free, with a subnet) if need be.

    External networks belong to the cloud, not to one plan: one of that name already on the server is reused.
    """
    found = ctx.client.list("network", name=name, **{"router:external": True})
    if found:
        ctx.known.add(found[0]["id"])
        return str(found[0]["id"])
    body: dict[str, Any] = {"name": name, "router:external": True, "shared": False}
    flat = {"provider:network_type": "flat", "provider:physical_network": PHYSICAL_NETWORK}
    try:
        network = ctx.client.create("network", {**body, **flat}, project_id="admin")
    except NeutronRefused as refused:
        if refused.error_type != "FlatNetworkInUse":
            raise
        network = ctx.client.create("network", body, project_id="admin")
    ctx.summary.existing["external network"] += 1
    ctx.known.add(network["id"])
    return str(network["id"])


def _ensure_external_subnet(ctx: _Apply, network_id: str) -> None:
    if ctx.client.list("subnet", network_id=network_id):
        return
    used = {s["cidr"] for s in ctx.client.list("subnet")}
    cidr = next((c for c in EXTERNAL_CIDRS if c not in used), None) or f"100.64.{len(used) % 256}.0/24"
    body = {"name": f"{network_id[:8]}-public", "network_id": network_id, "cidr": cidr, "ip_version": 4}
    ctx.client.create("subnet", {**body, "enable_dhcp": False}, project_id="admin")
    ctx.summary.existing["external subnet"] += 1


def _existing_network(ctx: _Apply, args: dict[str, Any], result: dict[str, Any], external: bool) -> None:
    name = args.get("name") or result.get("name") or f"existing-{str(result.get('id', 'network'))[:8]}"
    if external:
        real = _ensure_external(ctx, name)
    else:
        real = ctx.client.create("network", {"name": name}, project_id=ctx.project_id)["id"]
        ctx.summary.existing["network"] += 1
    ctx.remember(result.get("id"), real)
    ctx.remember(args.get("networkId"), real)


PoolSpec = Sequence[tuple[str, str] | Mapping[str, str]]
"""Allocation pools: (start, end) pairs or Neutron's {"start", "end"}."""


def _existing_subnet(ctx: _Apply, args: dict[str, Any], result: dict[str, Any], pools: Mapping[str, PoolSpec]) -> None:
    name = args.get("name") or result.get("name") or ""
    cidr = args.get("cidr") or result.get("cidr")
    if not cidr:
        raise HarnessError(f"getSubnet {args}: no cidr in its arguments nor its result; cannot create it")
    fabricated_network = args.get("networkId") or result.get("networkId")
    network = ctx.summary.real.get(fabricated_network or "")
    if network is None:
        network = ctx.client.create("network", {"name": f"{name or cidr}-network"}, project_id=ctx.project_id)["id"]
        ctx.summary.existing["network"] += 1
        ctx.remember(fabricated_network, network)
    body: dict[str, Any] = {"name": name, "network_id": network, "cidr": cidr, "ip_version": args.get("ipVersion", 4)}
    if args.get("gatewayIp"):
        body["gateway_ip"] = args["gatewayIp"]
    spec = pools.get(name) or pools.get(cidr)
    if spec:
        body["allocation_pools"] = [p if isinstance(p, Mapping) else {"start": p[0], "end": p[1]} for p in spec]
    if ctx.client.show("network", network).get("router:external"):  # the cloud's, shared by every plan
        same = [s for s in ctx.client.list("subnet", network_id=network) if s["cidr"] == cidr]
        real = same[0]["id"] if same else ctx.client.create("subnet", body, project_id="admin")["id"]
    else:
        real = ctx.client.create("subnet", body, project_id=ctx.project_id)["id"]
    ctx.summary.existing["subnet"] += 1
    ctx.remember(result.get("id"), real)
    ctx.remember(args.get("subnetId"), real)


def _create_existing(
    ctx: _Apply, nodes: Sequence[Node], calls: Sequence[Any], pools: Mapping[str, PoolSpec]
) -> list[str]:
    """Create what the plan looks up (networks, then subnets, then the external networks it only names);
    answer the real ids of the external networks, which get a subnet if the plan looked up none."""
    gateway_ids, pool_names = _external_references(nodes)
    parts = [_call_parts(call) for call in calls]
    externals: list[str] = []
    for _, args, result in (_plain_parts(p) for p in parts if p[0] == GET_NETWORK):
        if result.get("id") in ctx.summary.real:
            continue  # the same lookup again
        external = bool(args.get("external") or result.get("external")) or result.get("id") in gateway_ids
        external = external or (args.get("name") or result.get("name")) in pool_names
        _existing_network(ctx, args, result, external)
        if external:
            externals.append(ctx.summary.real[result["id"]])
    for _, args, result in (_plain_parts(p) for p in parts if p[0] == GET_SUBNET):
        if result.get("id") not in ctx.summary.real:
            _existing_subnet(ctx, args, result, pools)
    for fabricated in sorted(gateway_ids - set(ctx.summary.real)):  # a gateway given as a literal id
        ctx.remember(fabricated, _ensure_external(ctx, f"external-{fabricated[:8]}"))
        externals.append(ctx.summary.real[fabricated])
    externals.extend(_ensure_external(ctx, name) for name in sorted(pool_names))
    return list(dict.fromkeys(externals))


def _plain_parts(parts: tuple[str, dict[str, Any], dict[str, Any]]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    token, args, result = parts
    return token, _plain(args), _plain(result)


# --- order and the whole plan ------------------------------------------------------------------------------


def _order(nodes: Sequence[Node]) -> list[Node]:
    """The networking nodes, each after what it depends on (declared, through a component, or through an id in its
    inputs), otherwise in registration order."""
    networking = [n for n in nodes if n.custom and n.type.startswith(NETWORKING)]
    produced = {n.id: n.urn for n in networking if n.id}
    for node in networking:  # a floating IP is referenced by its address
        for key in SETTLED.get(node.type, ()):
            value = (node.outputs or {}).get(key)
            if isinstance(value, str):
                produced[value] = node.urn
    try:
        return dependency_order(nodes, networking, produced=produced, strings=_strings)
    except DependencyCycle as cycle:
        raise HarnessError(str(cycle)) from None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, Secret):
        yield from _strings(value.value)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def apply_plan(
    nodes: Sequence[Node],
    calls: Sequence[Any] = (),
    *,
    client: NeutronClient,
    existing_subnets: Mapping[str, PoolSpec] | None = None,
    routed_subnets: Mapping[str, str] | None = None,
    existing_floating_ips: Mapping[str, str] | None = None,
    project_id: str | None = None,
) -> ApplySummary:
    """Create the plan's networking on Neutron, in dependency order; answer what was created and skipped.

    `calls` are the plan's provider function calls (objects or mappings with `token`, `args`, `result`): the
    networks and subnets it looks up with getNetwork/getSubnet are created first, as a cloud would already
    have them, each subnet with the allocation pools `existing_subnets` gives for its name (or cidr), else
    Neutron's (the whole range). External networks (a router's gateway, a floating IP's pool) are created
    once per server, with a subnet. `routed_subnets` names looked-up subnets the cloud already routes to an
    external network (subnet name -> external network name), as a floating IP on them needs: a router joins them.
    `existing_floating_ips` are floating IPs the project allocated beforehand (address -> external network name).
    Every resource goes to a project of its own (`project_id`, else a new one).
    Raises `NeutronRefused` (with the resource's URN) when Neutron refuses a request, `HarnessError` when the
    plan holds something the harness cannot translate.
    """
    summary = ApplySummary(project_id or uuid.uuid4().hex)
    ctx = _Apply(client, summary.project_id, summary)
    externals = _create_existing(ctx, nodes, calls, existing_subnets or {})
    for network in externals:
        _ensure_external_subnet(ctx, network)
    for subnet_name, external_name in (routed_subnets or {}).items():
        _route_existing_subnet(ctx, subnet_name, external_name)
    for address, external_name in (existing_floating_ips or {}).items():
        _allocate_floating_ip(ctx, address, external_name)
    for node in nodes:
        if node.custom and node.type.startswith("openstack:") and not node.type.startswith(NETWORKING):
            summary.skipped[node.type] += 1
    for node in _order(nodes):
        _apply_one(ctx, node)
    return summary


def _allocate_floating_ip(ctx: _Apply, address: str, external_name: str) -> None:
    """A floating IP the project already holds, on the external network (given a subnet holding it if need be)."""
    external = _ensure_external(ctx, external_name)
    subnets = ctx.client.list("subnet", network_id=external)
    if not any(ipaddress.ip_address(address) in ipaddress.ip_network(s["cidr"]) for s in subnets):
        body = {"network_id": external, "cidr": str(ipaddress.ip_network(f"{address}/24", strict=False))}
        ctx.client.create("subnet", {**body, "ip_version": 4, "enable_dhcp": False}, project_id="admin")
    # The external network outlives each apply: an earlier plan's hold on the address is released first.
    for earlier in ctx.client.list("floatingip", floating_ip_address=address):
        ctx.client.delete(f"floatingips/{earlier['id']}")
    body = {"floating_network_id": external, "floating_ip_address": address}
    ctx.client.create("floatingip", body, project_id=ctx.project_id)
    ctx.summary.existing["floating ip"] += 1


def _route_existing_subnet(ctx: _Apply, subnet_name: str, external_name: str) -> None:
    """The router a cloud already has between an existing subnet and its external network."""
    (subnet,) = ctx.client.list("subnet", name=subnet_name, project_id=ctx.project_id)
    external = _ensure_external(ctx, external_name)
    body = {"name": f"{subnet_name}-router", "external_gateway_info": {"network_id": external}}
    router = ctx.client.create("router", body, project_id=ctx.project_id)["id"]
    ctx.client.put(f"routers/{router}/add_router_interface", {"subnet_id": subnet["id"]})
    ctx.summary.existing["router"] += 1


def _apply_one(ctx: _Apply, node: Node) -> None:
    translate = TRANSLATORS.get(node.type)
    if translate is None:
        raise HarnessError(f"{node.name}: the harness does not know {node.type}")
    if node.read:
        raise HarnessError(f"{node.name}: a {node.type} read with .get(); the harness only knows getNetwork/getSubnet")
    inputs = ctx.real_value(node.inputs, node.name)
    try:
        created = translate(ctx, node, inputs)
    except NeutronRefused as refused:
        raise refused.for_resource(node.urn, node.name) from None
    ctx.remember(node.id, created["id"])
    ctx.summary.ids[node.urn] = created["id"]
    for key in SETTLED.get(node.type, ()):
        ctx.remember((node.outputs or {}).get(key), created.get(key))
    ctx.summary.created[node.type] += 1


def apply_captured(plan: CapturedPlan, *, client: NeutronClient, **options: Any) -> ApplySummary:
    """`apply_plan` for a `CapturedPlan` (its `nodes`, and its `calls` once the planner records them)."""
    return apply_plan(plan.nodes, getattr(plan, "calls", ()), client=client, **options)
