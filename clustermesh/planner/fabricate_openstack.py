"""What an OpenStack cloud (Neutron, Nova, Octavia, Glance) and an SSH host would answer, for the planner.

Ids have OpenStack's form, a UUID derived from the resource's type and name (`fabricated_uuid`), so that a
stack plans to the same ids every time and two plans can be diffed; a key pair's id is its name and a router
interface's its port's, as the provider reports them.

What the cloud would pick is fabricated only where the plan makes it knowable. A port's fixed IPs are the ones
it asks for; a port that lets Neutron choose gets none, because which address DHCP would pick cannot be known
offline and a made-up one inside the subnet could collide with a real one. An instance reports the address of
its first network as the provider does (Nova lists every attached port's addresses and the provider matches
them to the `networks` entries): the entry's `fixedIpV4`, or the fixed IP of the port it names, else nothing.
Floating IPs and router gateways get addresses from 203.0.113.0/24 (TEST-NET-3), load balancer VIPs from
198.51.100.0/24 (TEST-NET-2): stable per resource name, and distinct within a plan as far as the 254 addresses
of a range go, since a cloud never hands one address out twice and the Neutron test harness tells floating
IPs apart by address.

Provider functions (`OpenStack.functions`) look up what a cloud already has (an image, a network, a subnet):
the name, id or CIDR asked for comes back, with a stable id, and the fields the SDK declares are all filled.

A remote command's `stdout` and `stderr` are empty strings: what a script prints on a machine that does not
exist cannot be predicted, and a program must not depend on a node's output to plan. Outputs a program marks
secret with `additional_secret_outputs` are the engine's to wrap, not the cloud's; outputs the provider itself
declares secret (a generated key pair's private key) come back secret here.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockResourceArgs

from clustermesh.planner.fabricate_tls import Fixtures

State = dict[str, Any]
Fabricator = Callable[[MockResourceArgs, State], State]
Function = Callable[[State], State]

NETWORK = "openstack:networking/network:Network"
SUBNET = "openstack:networking/subnet:Subnet"
ROUTER = "openstack:networking/router:Router"
ROUTER_INTERFACE = "openstack:networking/routerInterface:RouterInterface"
SEC_GROUP = "openstack:networking/secGroup:SecGroup"
SEC_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
PORT = "openstack:networking/port:Port"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"
FLOATING_IP_ASSOCIATE = "openstack:networking/floatingIpAssociate:FloatingIpAssociate"
INSTANCE = "openstack:compute/instance:Instance"
KEYPAIR = "openstack:compute/keypair:Keypair"
SERVER_GROUP = "openstack:compute/serverGroup:ServerGroup"
LOAD_BALANCER = "openstack:loadbalancer/loadBalancer:LoadBalancer"
LISTENER = "openstack:loadbalancer/listener:Listener"
POOL = "openstack:loadbalancer/pool:Pool"
MEMBER = "openstack:loadbalancer/member:Member"
MONITOR = "openstack:loadbalancer/monitor:Monitor"
REMOTE_COMMAND = "command:remote:Command"
COPY_TO_REMOTE = "command:remote:CopyToRemote"

GET_IMAGE = "openstack:images/getImage:getImage"
GET_NETWORK = "openstack:networking/getNetwork:getNetwork"
GET_SUBNET = "openstack:networking/getSubnet:getSubnet"

FABRICATED_REGION = "RegionOne"
"""The region of a resource that names none: the provider's comes from clouds.yaml, which a plan never reads."""
FLOATING_IP_RANGE = ipaddress.IPv4Network("203.0.113.0/24")
LOAD_BALANCER_VIP_RANGE = ipaddress.IPv4Network("198.51.100.0/24")
CLOUD_EPOCH = "2024-01-01T00:00:00Z"
"""When everything the cloud already had (images) was made: a constant, so that plans stay byte-identical."""
NETWORK_MTU = 1450
"""Neutron's MTU for a VXLAN or Geneve tenant network on a 1500-byte underlay."""
PUBLIC_KEY_COMMENT = "clustermesh-planner-fixture-not-for-deployment"

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "planner.clustermesh.invalid")


def fabricated_uuid(*parts: str) -> str:
    """The UUID the planner gives whatever `parts` name; the same parts give the same UUID in every plan.

    A resource's id is `fabricated_uuid(type_token, resource_name)`; a looked-up network's or image's is
    `fabricated_uuid(function_token, name)`.
    """
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))  # a separator no name contains: ("a/b", "c") != ("a", "b/c")


FABRICATED_PROJECT_ID = uuid.UUID(fabricated_uuid("project")).hex
"""The project (tenant) everything belongs to: Keystone ids are 32 hex digits without dashes."""


def _secret(value: Any) -> dict[str, Any]:
    """The wire form of a secret value: outputs the provider declares secret come back secret."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def _mac(*parts: str) -> str:
    """A MAC in Neutron's default base_mac prefix (fa:16:3e), as every OpenStack port has."""
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in _digest("mac", *parts)[:3])


def _lookup_key(args: State, *identity: str) -> str:
    """What a lookup is keyed on: the identifying arguments if any is given, else every argument (canonical JSON)."""
    given = {k: args[k] for k in identity if args.get(k) not in (None, "")}
    return json.dumps(given or args, sort_keys=True, default=str)


def _first_host(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return str(network.network_address + 1) if network.num_addresses > 2 else str(network.network_address)


def allocation_pools(cidr: str, gateway_ip: str | None) -> list[State]:
    """Neutron's default allocation pools: every host address of the subnet but its gateway's."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version == 4 and network.prefixlen > 30:
        return []
    first = int(network.network_address) + 1
    last = int(network.broadcast_address) - (1 if network.version == 4 else 0)
    ranges = [(first, last)]
    gateway = ipaddress.ip_address(gateway_ip) if gateway_ip else None
    if gateway is not None and gateway.version == network.version and first <= int(gateway) <= last:
        ranges = [(first, int(gateway) - 1), (int(gateway) + 1, last)]
    address = type(network.network_address)
    return [{"start": str(address(start)), "end": str(address(end))} for start, end in ranges if start <= end]


@dataclass
class _Range:
    """Addresses handed out from one range: stable per name, and none twice until the range runs out."""

    network: ipaddress.IPv4Network
    taken: set[str] = field(default_factory=set)

    def take(self, *name: str) -> str:
        size = self.network.num_addresses - 2
        start = int.from_bytes(_digest("address", *name)[:4], "big") % size
        for step in range(size):
            candidate = str(self.network.network_address + 1 + (start + step) % size)
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate
        # Exhausted: a bigger plan than the range; repeat rather than fail, the plan stays readable.
        return str(self.network.network_address + 1 + start)

    def reserve(self, address: str) -> None:
        self.taken.add(address)


@dataclass
class _Port:
    ips: list[str]
    mac: str
    network_id: str


def _defaults(inputs: State, **values: Any) -> State:
    """The values a cloud fills in for the properties the program left unset (and only those)."""
    return {k: v for k, v in values.items() if inputs.get(k) is None}


def _common(inputs: State, *, tenant: bool = True) -> State:
    state = _defaults(inputs, region=FABRICATED_REGION)
    if tenant:
        state |= _defaults(inputs, tenantId=FABRICATED_PROJECT_ID)
    return state


def _tags(inputs: State) -> State:
    return {"allTags": list(inputs.get("tags") or [])}


class OpenStack:
    """One cloud for one plan: what it created so far, so that later answers agree with earlier ones (an
    instance on a port reports the port's address, a floating IP the port's fixed IP)."""

    def __init__(self, fixtures: Fixtures) -> None:
        self.fixtures = fixtures
        self._public = _Range(FLOATING_IP_RANGE)
        self._vips = _Range(LOAD_BALANCER_VIP_RANGE)
        self._ports: dict[str, _Port] = {}
        self._subnet_networks: dict[str, str] = {}
        self._floating_ips: dict[str, str] = {}
        """Floating IP address -> its id."""

    def fabricators(self) -> dict[str, Fabricator]:
        return {
            NETWORK: self._network,
            SUBNET: self._subnet,
            ROUTER: self._router,
            ROUTER_INTERFACE: self._router_interface,
            SEC_GROUP: lambda a, i: _common(i) | _tags(i) | _defaults(i, description="", stateful=True),
            SEC_GROUP_RULE: lambda a, i: (
                _common(i)
                | _defaults(i, remoteIpPrefix="", remoteGroupId="", remoteAddressGroupId="", ethertype="IPv4")
            ),
            PORT: self._port,
            FLOATING_IP: self._floating_ip,
            FLOATING_IP_ASSOCIATE: self._floating_ip_associate,
            INSTANCE: self._instance,
            KEYPAIR: self._keypair,
            SERVER_GROUP: lambda a, i: _common(i, tenant=False) | {"members": []} | _defaults(i, rules={}),
            LOAD_BALANCER: self._load_balancer,
            LISTENER: lambda a, i: (
                _common(i)
                | _defaults(
                    i,
                    name="",
                    connectionLimit=-1,
                    defaultPoolId="",
                    alpnProtocols=[],
                    timeoutClientData=50_000,
                    timeoutMemberConnect=5_000,
                    timeoutMemberData=50_000,
                    timeoutTcpInspect=0,
                    tlsCiphers="",
                    tlsVersions=[],
                )
            ),
            POOL: lambda a, i: _common(i) | _defaults(i, name="", alpnProtocols=[], tlsCiphers="", tlsVersions=[]),
            MEMBER: lambda a, i: _common(i) | _defaults(i, name="", weight=1),
            MONITOR: self._monitor,
            REMOTE_COMMAND: lambda a, i: {"stdout": "", "stderr": ""},
            COPY_TO_REMOTE: lambda a, i: {},  # its state is its inputs
        }

    def functions(self) -> dict[str, Function]:
        return {
            GET_IMAGE: self.get_image,
            GET_NETWORK: self.get_network,
            GET_SUBNET: self.get_subnet,
        }

    def resource_id(self, args: MockResourceArgs) -> str | None:
        """The id the provider reports for a new resource of `args`, or None for one that is not OpenStack's."""
        if not args.typ.startswith("openstack:"):
            return None
        if args.typ == KEYPAIR:
            name = args.inputs.get("name")
            return name if isinstance(name, str) and name else args.name
        if args.typ == FLOATING_IP_ASSOCIATE:  # the association's id is its floating IP's
            address = args.inputs.get("floatingIp")
            if isinstance(address, str) and address in self._floating_ips:
                return self._floating_ips[address]
        return fabricated_uuid(args.typ, args.name)

    def _id(self, args: MockResourceArgs) -> str:
        """The resource's id: the one read (`Resource.get`), else the one `resource_id` gives it."""
        if args.resource_id and args.resource_id != rpc.UNKNOWN:
            return str(args.resource_id)
        return self.resource_id(args) or ""

    # --- networking ---------------------------------------------------------------------------------------

    def _network(self, args: MockResourceArgs, inputs: State) -> State:
        return (
            _common(inputs)
            | _tags(inputs)
            | _defaults(
                inputs,
                adminStateUp=True,
                availabilityZoneHints=[],
                dnsDomain="",
                external=False,
                mtu=NETWORK_MTU,
                portSecurityEnabled=True,
                qosPolicyId="",
                segments=[],
                shared=False,
                transparentVlan=False,
            )
        )

    def _subnet(self, args: MockResourceArgs, inputs: State) -> State:
        state = (
            _common(inputs)
            | _tags(inputs)
            | _defaults(
                inputs,
                enableDhcp=True,
                dnsNameservers=[],
                serviceTypes=[],
                ipv6AddressMode="",
                ipv6RaMode="",
                segmentId="",
                subnetpoolId="",
            )
        )
        if isinstance(inputs.get("networkId"), str):
            self._subnet_networks[self._id(args)] = inputs["networkId"]
        cidr = inputs.get("cidr")
        if not isinstance(cidr, str):  # from a subnet pool: the cloud picks, nothing to go by
            return state
        network = ipaddress.ip_network(cidr, strict=False)
        gateway = inputs.get("gatewayIp")
        if gateway is None:
            gateway = "" if inputs.get("noGateway") else _first_host(network)
            state["gatewayIp"] = gateway
        if inputs.get("allocationPools") is None:
            state["allocationPools"] = allocation_pools(cidr, gateway)
        return state | _defaults(inputs, ipVersion=network.version)

    def _router(self, args: MockResourceArgs, inputs: State) -> State:
        state = (
            _common(inputs)
            | _tags(inputs)
            | _defaults(
                inputs,
                adminStateUp=True,
                availabilityZoneHints=[],
                distributed=False,
                externalQosPolicyId="",
                externalNetworkId="",
            )
        )
        external = inputs.get("externalNetworkId")
        if external and inputs.get("externalFixedIps") is None:  # Neutron gives the gateway a public address
            subnet = (inputs.get("externalSubnetIds") or [_network_subnet_id(external)])[0]
            state["externalFixedIps"] = [{"subnetId": subnet, "ipAddress": self._public.take(args.typ, args.name)}]
        return state | _defaults(inputs, enableSnat=bool(external))

    def _router_interface(self, args: MockResourceArgs, inputs: State) -> State:
        # Neutron makes the interface's port (on the subnet's gateway address); its id is the resource's.
        return _common(inputs, tenant=False) | _defaults(inputs, portId=self._id(args), subnetId="")

    def _port(self, args: MockResourceArgs, inputs: State) -> State:
        fixed = inputs.get("fixedIps") or []
        asked = all(isinstance(entry, dict) and entry.get("ipAddress") for entry in fixed)
        ips = [str(entry["ipAddress"]) for entry in fixed] if asked else []
        groups = list(inputs.get("securityGroupIds") or [])
        mac = inputs.get("macAddress") or _mac(args.typ, args.name)
        self._ports[self._id(args)] = _Port(ips, mac, str(inputs.get("networkId") or ""))
        return (
            _common(inputs)
            | _tags(inputs)
            | {"allFixedIps": ips, "allSecurityGroupIds": groups, "macAddress": mac}
            | _defaults(
                inputs,
                portSecurityEnabled=True,
                adminStateUp=True,
                deviceId="",
                deviceOwner="",
                dnsAssignments=[],
                dnsName="",
                qosPolicyId="",
                binding={"hostId": "", "profile": "", "vifDetails": {}, "vifType": "unbound", "vnicType": "normal"},
            )
        )

    def _floating_ip(self, args: MockResourceArgs, inputs: State) -> State:
        requested = inputs.get("address")
        if isinstance(requested, str) and requested:
            self._public.reserve(requested)
            address = requested
        else:
            address = self._public.take(args.typ, args.name)
        self._floating_ips[address] = self._id(args)
        state = _common(inputs) | _tags(inputs) | {"address": address}
        state |= _defaults(inputs, dnsDomain="", dnsName="", portId="", subnetId="", pool="")
        if not inputs.get("fixedIp"):
            state["fixedIp"] = self._port_ip(inputs.get("portId"))
        return state

    def _floating_ip_associate(self, args: MockResourceArgs, inputs: State) -> State:
        state = _common(inputs, tenant=False)
        if not inputs.get("fixedIp"):
            state["fixedIp"] = self._port_ip(inputs.get("portId"))
        return state

    def _port_ip(self, port_id: Any) -> str:
        """The first fixed IPv4 of a port this plan made, as Neutron picks it for a floating IP; else empty."""
        port = self._ports.get(port_id) if isinstance(port_id, str) else None
        return next((ip for ip in port.ips if ipaddress.ip_address(ip).version == 4), "") if port else ""

    # --- compute ------------------------------------------------------------------------------------------

    def _instance(self, args: MockResourceArgs, inputs: State) -> State:
        networks = [dict(n) for n in inputs.get("networks") or [] if isinstance(n, dict)]
        for network in networks:  # Nova reports a port's addresses; the provider matches them to the entry
            port = self._ports.get(network.get("port") or "")
            if port is not None:
                v4 = [ip for ip in port.ips if ipaddress.ip_address(ip).version == 4]
                v6 = [ip for ip in port.ips if ipaddress.ip_address(ip).version == 6]
                network.setdefault("fixedIpV4", v4[0] if v4 else "")
                network.setdefault("fixedIpV6", v6[0] if v6 else "")
                network.setdefault("mac", port.mac)
                network.setdefault("uuid", port.network_id)
        created = self.fixtures.start.astimezone(datetime.UTC)
        state = _common(inputs, tenant=False) | _tags(inputs)
        state |= {
            "allMetadata": dict(inputs.get("metadata") or {}),
            "accessIpV4": inputs.get("accessIpV4") or _access_address(networks, "fixedIpV4"),
            "accessIpV6": inputs.get("accessIpV6") or _access_address(networks, "fixedIpV6"),
            # The provider's format for both: Go's time.Time.String() of Nova's timestamp.
            "created": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
            "updated": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
        }
        if networks:
            state["networks"] = networks
        flavor, image = inputs.get("flavorName"), inputs.get("imageName")
        state |= _defaults(
            inputs,
            availabilityZone="nova",
            flavorId=fabricated_uuid("flavor", flavor) if flavor else "",
            flavorName="",
            imageId=fabricated_uuid(GET_IMAGE, image) if image else "",
            imageName="",
            hypervisorHostname="",
            securityGroups=["default"],
            powerState="active",
        )
        return state

    def _keypair(self, args: MockResourceArgs, inputs: State) -> State:
        state = _common(inputs, tenant=False) | _defaults(inputs, userId="")
        public_key = inputs.get("publicKey")
        if public_key:  # imported: Nova keeps no private key
            return state | {"fingerprint": _fingerprint(public_key)}
        name = str(inputs.get("name") or args.name)
        if self.fixtures.random:
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            seed = _digest("keypair", self.fixtures.seed, name)
            key = ec.derive_private_key(int.from_bytes(seed, "big") % 2**255 + 1, ec.SECP256R1())  # below the order
        openssh = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        public = f"{openssh.decode()} {PUBLIC_KEY_COMMENT}"
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        return state | {"publicKey": public, "privateKey": _secret(private), "fingerprint": _fingerprint(public)}

    # --- load balancing -----------------------------------------------------------------------------------

    def _load_balancer(self, args: MockResourceArgs, inputs: State) -> State:
        requested = inputs.get("vipAddress")
        if isinstance(requested, str) and requested:
            self._vips.reserve(requested)
            vip = requested
        else:
            vip = self._vips.take(args.typ, args.name)
        subnet = inputs.get("vipSubnetId")
        network = self._subnet_networks.get(subnet, "") if isinstance(subnet, str) else ""
        state = _common(inputs) | {"vipAddress": vip}
        return state | _defaults(
            inputs,
            vipPortId=fabricated_uuid(args.typ, args.name, "vip-port"),
            vipNetworkId=network,
            vipSubnetId="",
            adminStateUp=True,
            loadbalancerProvider="amphora",
            flavorId="",
            securityGroupIds=[],
        )

    @staticmethod
    def _monitor(args: MockResourceArgs, inputs: State) -> State:
        http = inputs.get("type") in {"HTTP", "HTTPS"}
        return _common(inputs) | _defaults(
            inputs,
            name="",
            maxRetriesDown=3,
            httpMethod="GET" if http else "",
            urlPath="/" if http else "",
            expectedCodes="200" if http else "",
        )

    # --- provider functions -------------------------------------------------------------------------------

    def get_image(self, args: State) -> State:
        image_id = fabricated_uuid(GET_IMAGE, args.get("name") or _lookup_key(args))
        digest = _digest("image", image_id)
        tags = list(args.get("tags") or ([args["tag"]] if args.get("tag") else []))
        return {
            **args,
            "id": image_id,
            "name": args.get("name") or f"image-{image_id[:8]}",
            "checksum": digest[:16].hex(),
            "containerFormat": args.get("containerFormat") or "bare",
            "diskFormat": args.get("diskFormat") or "qcow2",
            "createdAt": CLOUD_EPOCH,
            "updatedAt": CLOUD_EPOCH,
            "file": f"/v2/images/{image_id}/file",
            "hidden": bool(args.get("hidden")),
            "metadata": {},
            "minDiskGb": 0,
            "minRamMb": 0,
            "owner": args.get("owner") or FABRICATED_PROJECT_ID,
            "properties": dict(args.get("properties") or {}),
            "protected": False,
            "region": args.get("region") or FABRICATED_REGION,
            "schema": "/v2/schemas/image",
            "sizeBytes": 256 * 2**20 + int.from_bytes(digest[16:20], "big") % (512 * 2**20),
            "tags": tags,
            "visibility": args.get("visibility") or "public",
        }

    def get_network(self, args: State) -> State:
        if args.get("networkId"):
            network_id = str(args["networkId"])
        else:
            network_id = fabricated_uuid(GET_NETWORK, args.get("name") or _lookup_key(args))
        tags = list(args.get("tags") or [])
        return {
            **args,
            "id": network_id,
            "networkId": network_id,
            "name": args.get("name") or f"network-{network_id[:8]}",
            "description": args.get("description") or "",
            "external": bool(args.get("external")),
            "adminStateUp": "true",  # a string in this function's result, as the provider declares it
            "shared": "false",
            "allTags": tags,
            "availabilityZoneHints": [],
            "dnsDomain": "",
            "mtu": args.get("mtu") or NETWORK_MTU,
            "region": args.get("region") or FABRICATED_REGION,
            "segments": [],
            "status": args.get("status") or "ACTIVE",
            "subnets": [_network_subnet_id(network_id)],
            "tenantId": args.get("tenantId") or FABRICATED_PROJECT_ID,
            "transparentVlan": bool(args.get("transparentVlan")),
        }

    def get_subnet(self, args: State) -> State:
        if args.get("subnetId"):
            subnet_id = str(args["subnetId"])
        else:
            subnet_id = fabricated_uuid(GET_SUBNET, _lookup_key(args, "networkId", "name", "cidr"))
        network_id = str(args.get("networkId") or fabricated_uuid(GET_NETWORK, "subnet", subnet_id))
        cidr = args.get("cidr") or _fabricated_cidr(subnet_id)
        network = ipaddress.ip_network(cidr, strict=False)
        gateway = args.get("gatewayIp") or _first_host(network)
        self._subnet_networks[subnet_id] = network_id
        tags = list(args.get("tags") or [])
        return {
            **args,
            "id": subnet_id,
            "subnetId": subnet_id,
            "name": args.get("name") or f"subnet-{subnet_id[:8]}",
            "networkId": network_id,
            "cidr": cidr,
            "ipVersion": args.get("ipVersion") or network.version,
            "gatewayIp": gateway,
            "allocationPools": allocation_pools(cidr, gateway),
            "enableDhcp": args.get("dhcpEnabled", True),
            "description": args.get("description") or "",
            "dnsNameservers": [],
            "dnsPublishFixedIp": bool(args.get("dnsPublishFixedIp")),
            "hostRoutes": [],
            "ipv6AddressMode": args.get("ipv6AddressMode") or "",
            "ipv6RaMode": args.get("ipv6RaMode") or "",
            "region": args.get("region") or FABRICATED_REGION,
            "segmentId": args.get("segmentId") or "",
            "serviceTypes": [],
            "subnetpoolId": args.get("subnetpoolId") or "",
            "tags": tags,
            "allTags": tags,
            "tenantId": args.get("tenantId") or FABRICATED_PROJECT_ID,
        }


def _network_subnet_id(network_id: str) -> str:
    """The one subnet a looked-up network reports: the id `getSubnet` answers when asked by that network alone."""
    return fabricated_uuid(GET_SUBNET, _lookup_key({"networkId": network_id}, "networkId", "name", "cidr"))


def _fabricated_cidr(subnet_id: str) -> str:
    digest = _digest("cidr", subnet_id)
    return f"10.{digest[0]}.{digest[1]}.0/24"


def _access_address(networks: list[State], key: str) -> str:
    """The provider's choice: the first network with an address of that family, or one marked access_network."""
    chosen = ""
    for network in networks:
        address = network.get(key) or ""
        if address and (not chosen or network.get("accessNetwork")):
            chosen = address
    return chosen


def _fingerprint(public_key: str) -> str:
    """Nova's fingerprint: the MD5 of the key blob, colon-separated (of the text, for something that is no key)."""
    parts = public_key.split()
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (IndexError, ValueError):
        blob = public_key.encode()
    return ":".join(f"{b:02x}" for b in hashlib.md5(blob, usedforsecurity=False).digest())
