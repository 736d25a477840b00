"""kubeadm's configuration documents, the CA pin and the bootstrap token (`clustermesh.render.kubeadm`), and the
kubeadm side of the cluster PKI.

Every key the program writes is checked against kubeadm's own Go types, vendored from kubernetes/kubernetes
(tests/data/kubeadm-v1beta4, see tests/data/SOURCES.md): a small parser reads the structs' `json:"..."` tags into a
schema of field names and kinds. Expected values come from the tests' inputs and from kubeadm's documented forms (the
pin is the SHA-256 of the CA's DER SubjectPublicKeyInfo, computed here with openssl and by walking the certificate's
DER; the token pattern is k8s.io/cluster-bootstrap's), never from the renderer's output.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from clustermesh.model.openstack import Node, NodeRole, OpenStackCluster
from clustermesh.render import cluster_pki, distro, kubeadm
from tests.conftest import DATA
from tests.test_render_distro import node_kinds, stack_cluster

TYPES_DIR = DATA / "kubeadm-v1beta4"
TYPES_FILES = {
    "kubeadm-v1beta4/types.go": TYPES_DIR / "types.go",
    "kubeadm-v1beta4/bootstraptoken-v1/types.go": TYPES_DIR / "bootstraptoken-v1" / "types.go",
}
SOURCES = DATA / "SOURCES.md"
API_VERSION = "kubeadm.k8s.io/v1beta4"
"""The group kubeadm's doc.go declares (+groupName=kubeadm.k8s.io) and the version of the vendored package."""
BOOTSTRAP_TOKEN = re.compile(r"\A[a-z0-9]{6}\.[a-z0-9]{16}\Z")
"""k8s.io/cluster-bootstrap token/api: BootstrapTokenPattern."""
TOKEN = "abcdef.0123456789abcdef"
SEED = "-----BEGIN EC PRIVATE KEY-----\nseed\n-----END EC PRIVATE KEY-----\n"


def kubeadm_cluster(**overrides: Any) -> OpenStackCluster:
    """The distro test's three servers and two agents, on kubeadm."""
    distro_entry = {"name": "kubeadm", "version": "v1.36.3", **overrides.pop("distro", {})}
    return stack_cluster("kubeadm", distro=distro_entry, **overrides)


def servers(cluster: OpenStackCluster) -> list[Node]:
    return [n for n in cluster.nodes if n.pool.role is NodeRole.SERVER]


def agents(cluster: OpenStackCluster) -> list[Node]:
    return [n for n in cluster.nodes if n.pool.role is NodeRole.AGENT]


def self_signed_ca(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubeadm-ca@mesh1")])
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


EC_CA = self_signed_ca(ec.generate_private_key(ec.SECP256R1()))


# --- a schema from kubeadm's Go types -----------------------------------------------------------------------------


@dataclass
class Kind:
    """What a JSON value must be: a scalar, a list of `items`, an object with `fields`, or a map of `values`."""

    name: str
    fields: dict[str, Kind] = field(default_factory=dict)
    items: Kind | None = None
    values: Kind | None = None
    opaque: bool = False
    """An external type the vendored files do not define: any use of it is refused until it is described."""


STRING, BOOL, INT = Kind("string"), Kind("bool"), Kind("int")
SCALARS = {"string": STRING, "bool": BOOL, "int": INT, "int32": INT, "int64": INT}
EXTERNAL = {
    # k8s.io/apimachinery: TypeMeta's two fields; Duration and Time marshal as strings.
    "metav1.Duration": STRING,
    "metav1.Time": STRING,
    "corev1.PullPolicy": STRING,
    "corev1.HostPathType": STRING,
    "corev1.Taint": Kind("object", opaque=True),
    "corev1.EnvVar": Kind("object", opaque=True),
    # bootstraptoken/v1 utils.go: BootstrapTokenString's MarshalJSON writes "<id>.<secret>".
    "bootstraptokenv1.BootstrapTokenString": STRING,
}
TYPE_META = {"apiVersion": STRING, "kind": STRING}
STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.MULTILINE | re.DOTALL)
NAMED_SCALAR = re.compile(r"^type (\w+) (string|bool|int|int32|int64)$", re.MULTILINE)
FIELD = re.compile(r"^\t(?:(?P<name>[A-Z]\w*)\s+)?(?P<type>[\w.*\[\]]+)\s*(?:`(?P<tags>[^`]*)`)?\s*$")
JSON_TAG = re.compile(r'json:"([^"]*)"')


@dataclass(frozen=True)
class GoField:
    key: str | None
    """The JSON key, or None for an embedded struct whose fields are promoted."""
    type: str


def parse_go(text: str, package: str) -> tuple[dict[str, list[GoField]], dict[str, str]]:
    """Struct definitions (name -> fields) and named scalar types of one Go file, names qualified by `package`."""
    structs: dict[str, list[GoField]] = {}
    for match in STRUCT.finditer(text):
        fields = []
        for line in match.group(2).splitlines():
            if not line.strip() or line.strip().startswith("//"):
                continue
            parsed = FIELD.match(line)
            assert parsed is not None, f"unparsed field line in {match.group(1)}: {line!r}"
            name, go_type, tags = parsed["name"], parsed["type"], parsed["tags"] or ""
            tag = JSON_TAG.search(tags)
            key = tag.group(1).split(",")[0] if tag else None
            if key == "-":
                continue
            if name is None:
                fields.append(GoField(key or None, go_type))  # embedded
            else:
                fields.append(GoField(key or name, go_type))  # untagged: encoding/json uses the Go name
        structs[f"{package}{match.group(1)}"] = fields
    scalars = {f"{package}{m.group(1)}": m.group(2) for m in NAMED_SCALAR.finditer(text)}
    return structs, scalars


class Schema:
    def __init__(self, files: dict[str, str]) -> None:
        self.structs: dict[str, list[GoField]] = {}
        self.scalars: dict[str, str] = {}
        for package, text in files.items():
            structs, scalars = parse_go(text, package)
            self.structs.update(structs)
            self.scalars.update(scalars)

    def kind(self, go_type: str, package: str = "") -> Kind:
        """The kind of a Go type as written in `package` (pointers are their target's; a nil pointer is omitted)."""
        go_type = go_type.removeprefix("*")
        if go_type.startswith("[]"):
            return Kind("list", items=self.kind(go_type[2:], package))
        if go_type.startswith("map[string]"):
            return Kind("map", values=self.kind(go_type.removeprefix("map[string]"), package))
        return self.named(go_type, package)

    def named(self, go_type: str, package: str) -> Kind:
        qualified = go_type if "." in go_type or go_type in SCALARS else f"{package}{go_type}"
        known = SCALARS.get(qualified) or EXTERNAL.get(qualified)
        if known is not None:
            return known
        if qualified in self.scalars:
            return SCALARS[self.scalars[qualified]]
        if qualified not in self.structs:
            raise KeyError(f"unknown Go type {go_type} (in {package or 'v1beta4'})")
        return self.struct(qualified)

    def struct(self, name: str) -> Kind:
        """An object of the struct's fields, embedded structs' fields promoted (encoding/json's rule for an
        anonymous field without a name of its own, which `json:",inline"` is)."""
        package = name.rpartition(".")[0] + "." if "." in name else ""
        result: dict[str, Kind] = {}
        for go_field in self.structs[name]:
            if go_field.key is not None:
                result[go_field.key] = self.kind(go_field.type, package)
            elif go_field.type == "metav1.TypeMeta":
                result.update(TYPE_META)
            else:
                embedded = self.kind(go_field.type, package)
                assert embedded.name == "object", f"cannot inline {go_field.type}"
                if embedded.opaque:
                    return Kind("object", opaque=True)
                result.update(embedded.fields)
        return Kind("object", fields=result)


SCHEMA = Schema(
    {"": TYPES_FILES["kubeadm-v1beta4/types.go"].read_text()}
    | {"bootstraptokenv1.": TYPES_FILES["kubeadm-v1beta4/bootstraptoken-v1/types.go"].read_text()}
)


def fits(value: Any, kind: Kind) -> bool:
    """Whether `value` is of the JSON type `kind` names (a bool is not an int, as in Go)."""
    if kind.name == "string":
        return isinstance(value, str)
    if kind.name == "bool":
        return isinstance(value, bool)
    if kind.name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, list if kind.name == "list" else dict)


def problems(value: Any, kind: Kind, path: str = "") -> list[str]:
    """Every place `value` does not fit `kind`: unknown keys and values of the wrong kind."""
    if not fits(value, kind):
        article = "an" if kind.name[0] in "aeiou" else "a"
        return [f"{path}: {value!r} is not {article} {kind.name}"]
    if kind.items is not None:
        return [p for i, item in enumerate(value) for p in problems(item, kind.items, f"{path}[{i}]")]
    if kind.values is not None:
        return [p for key, item in value.items() for p in problems(item, kind.values, f"{path}.{key}")]
    if kind.opaque:
        return [f"{path}: this type is not described by the vendored files"]
    found: list[str] = []
    for key, item in value.items() if kind.name == "object" else ():
        if key not in kind.fields:
            found.append(f"{path}.{key}: no such field")
        else:
            found += problems(item, kind.fields[key], f"{path}.{key}")
    return found


def document_problems(document: dict[str, Any]) -> list[str]:
    if document.get("apiVersion") != API_VERSION:
        return [f"apiVersion {document.get('apiVersion')!r} is not {API_VERSION}"]
    return problems(document, SCHEMA.kind(document["kind"]), document["kind"])


# --- the vendored types and the checker --------------------------------------------------------------------------


def test_the_vendored_types_are_the_files_sources_md_records() -> None:
    """A file edited by hand would make the schema say what kubeadm does not."""
    table = SOURCES.read_text()
    for name, path in TYPES_FILES.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert hashlib.sha256(path.read_bytes()).hexdigest() in row, name


def test_the_parser_reads_kubeadms_structs_as_their_documentation_describes_them() -> None:
    init = SCHEMA.kind("InitConfiguration")
    assert {"apiVersion", "kind", "bootstrapTokens", "nodeRegistration", "localAPIEndpoint", "skipPhases"} <= set(
        init.fields
    )
    token = init.fields["bootstrapTokens"].items
    assert token is not None and token.fields["token"] is STRING and token.fields["ttl"] is STRING
    assert token.fields["usages"].items is STRING
    registration = init.fields["nodeRegistration"]
    assert registration.fields["taints"].name == "list"
    argument = registration.fields["kubeletExtraArgs"].items
    assert argument is not None and set(argument.fields) == {"name", "value"}
    assert init.fields["localAPIEndpoint"].fields["bindPort"] is INT
    cluster = SCHEMA.kind("ClusterConfiguration")
    # APIServer embeds ControlPlaneComponent: its extraArgs are the API server's own.
    assert {"certSANs", "extraArgs", "extraVolumes"} <= set(cluster.fields["apiServer"].fields)
    assert cluster.fields["featureGates"].name == "map"
    assert cluster.fields["encryptionAlgorithm"] is STRING  # a named string type
    join = SCHEMA.kind("JoinConfiguration")
    assert set(join.fields["discovery"].fields["bootstrapToken"].fields) == {
        "token",
        "apiServerEndpoint",
        "caCertHashes",
        "unsafeSkipCAVerification",
    }
    # An untagged field keeps its Go name; `json:"-"` fields are not there.
    assert "SkipPhases" in SCHEMA.kind("UpgradeApplyConfiguration").fields
    assert SCHEMA.structs["bootstraptokenv1.BootstrapTokenString"] == []
    # A struct that inlines a type the vendored files do not define cannot be checked, and says so.
    extra_env = cluster.fields["apiServer"].fields["extraEnvs"].items
    assert extra_env is not None and extra_env.opaque


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (lambda d: d["nodeRegistration"].update(kubeletExtraArg=[]), "kubeletExtraArg: no such field"),
        (lambda d: d.update(skipPhases="addon/kube-proxy"), "is not a list"),
        (lambda d: d["localAPIEndpoint"].update(bindPort="6443"), "is not an int"),
        (lambda d: d["bootstrapTokens"][0].update(ttl=0), "is not a string"),
        (lambda d: d["nodeRegistration"].update(taints=[{"key": "k", "effect": "NoSchedule"}]), "not described"),
        (lambda d: d.update(apiVersion="kubeadm.k8s.io/v1beta3"), "is not kubeadm.k8s.io/v1beta4"),
    ],
)
def test_the_checker_refuses_a_misspelt_key_and_a_value_of_the_wrong_kind(mistake: Any, expected: str) -> None:
    """A checker that accepted anything would make the document checks below vacuous."""
    cluster = kubeadm_cluster()
    document = kubeadm.init_documents(cluster, cluster.first_server, TOKEN)[0]
    assert document_problems(document) == []
    mistake(document)
    found = document_problems(document)
    assert any(expected in problem for problem in found), found


# --- the documents ------------------------------------------------------------------------------------------------


def every_document(cluster: OpenStackCluster) -> list[dict[str, Any]]:
    documents = kubeadm.init_documents(cluster, cluster.first_server, TOKEN)
    pin = kubeadm.ca_cert_hash(EC_CA)
    documents += [kubeadm.join_document(cluster, node, TOKEN, pin) for node in cluster.nodes[1:]]
    return documents


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"kubeProxyReplacement": True, "distro": {"controlPlaneTaint": False}},
        {"podCidrs": ["10.1.0.0/16", "fd00:10:1::/56"], "apiAddress": "192.168.10.5"},
    ],
    ids=["defaults", "kpr-untainted", "dual-stack-api-address"],
)
def test_every_document_uses_only_fields_kubeadm_has_with_their_kinds(overrides: dict[str, Any]) -> None:
    cluster = kubeadm_cluster(**overrides)
    documents = every_document(cluster)
    assert [d["kind"] for d in documents] == ["InitConfiguration", "ClusterConfiguration"] + ["JoinConfiguration"] * (
        len(cluster.nodes) - 1
    )
    for document in documents:
        assert document_problems(document) == []


def test_the_first_server_initialises_with_a_token_that_never_expires() -> None:
    """Tutorial 004's --token-ttl 0: a node added months later joins with the same token."""
    cluster = kubeadm_cluster()
    init, _ = kubeadm.init_documents(cluster, cluster.first_server, TOKEN)
    (token,) = init["bootstrapTokens"]
    assert token == {
        "token": TOKEN,
        "ttl": "0s",
        "usages": ["signing", "authentication"],
        "groups": ["system:bootstrappers:kubeadm:default-node-token"],
    }
    assert init["localAPIEndpoint"] == {"advertiseAddress": "192.168.10.10", "bindPort": 6443}
    registration = init["nodeRegistration"]
    assert registration["name"] == "mesh1-servers-0"
    assert registration["criSocket"] == "unix:///run/containerd/containerd.sock"
    assert registration["kubeletExtraArgs"] == [{"name": "node-ip", "value": "192.168.10.10"}]


def test_the_cluster_configuration_follows_the_cluster() -> None:
    cluster = kubeadm_cluster(apiAddress="192.168.10.5", podCidrs=["fd00:10:1::/56", "10.201.0.0/24"])
    _, configuration = kubeadm.init_documents(cluster, cluster.first_server, TOKEN)
    assert configuration["kubernetesVersion"] == "v1.36.3"
    # Nodes reach the first server's fixed address; the runner's address is in the certificate too.
    assert configuration["controlPlaneEndpoint"] == "192.168.10.10:6443"
    assert set(configuration["apiServer"]["certSANs"]) == {"192.168.10.5", "192.168.10.10"}
    assert configuration["networking"] == {
        "podSubnet": "10.201.0.0/24,fd00:10:1::/56",
        "serviceSubnet": "10.96.0.0/12",
        "dnsDomain": "cluster.local",
    }
    assert configuration["controllerManager"]["extraArgs"] == [{"name": "allocate-node-cidrs", "value": "false"}]
    for subnet in configuration["networking"]["podSubnet"].split(","):
        ip_network(subnet)


@pytest.mark.parametrize("taint", [True, False])
def test_servers_are_untainted_only_when_asked_and_agents_never_carry_taints(taint: bool) -> None:
    """`taints: []` is kubeadm's form of tutorial 004's untaint; an absent list gives servers the default taint."""
    cluster = kubeadm_cluster(distro={"controlPlaneTaint": taint})
    pin = kubeadm.ca_cert_hash(EC_CA)
    registrations = {cluster.first_server.name: kubeadm.init_documents(cluster, cluster.first_server, TOKEN)[0]}
    for node in cluster.nodes[1:]:
        registrations[node.name] = kubeadm.join_document(cluster, node, TOKEN, pin)
    for node in servers(cluster):
        registration = registrations[node.name]["nodeRegistration"]
        if taint:
            assert "taints" not in registration
        else:
            assert registration["taints"] == []
    for node in agents(cluster):
        assert "taints" not in registrations[node.name]["nodeRegistration"]


@pytest.mark.parametrize("replacement", [True, False])
def test_kube_proxy_is_skipped_exactly_when_cilium_replaces_it(replacement: bool) -> None:
    cluster = kubeadm_cluster(kubeProxyReplacement=replacement)
    init, _ = kubeadm.init_documents(cluster, cluster.first_server, TOKEN)
    assert init.get("skipPhases") == (["addon/kube-proxy"] if replacement else None)


def test_every_other_node_joins_the_first_server_with_the_ca_pin() -> None:
    cluster = kubeadm_cluster()
    pin = "sha256:" + "ab" * 32
    for node in cluster.nodes[1:]:
        document = kubeadm.join_document(cluster, node, TOKEN, pin)
        assert document["discovery"] == {
            "bootstrapToken": {"token": TOKEN, "apiServerEndpoint": "192.168.10.10:6443", "caCertHashes": [pin]}
        }
        assert document["nodeRegistration"]["name"] == node.name
        assert document["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": str(node.address)}]


def test_other_servers_join_as_control_plane_without_a_certificate_key_and_agents_as_workers() -> None:
    """The shared CAs are on every server already (receives_cluster_pki): nothing is downloaded, so no key."""
    cluster = kubeadm_cluster()
    kinds = node_kinds(cluster)
    other = kubeadm.join_document(cluster, kinds["other-server"], TOKEN, "sha256:" + "00" * 32)
    assert other["controlPlane"] == {
        "localAPIEndpoint": {"advertiseAddress": str(kinds["other-server"].address), "bindPort": 6443}
    }
    agent = kubeadm.join_document(cluster, kinds["agent"], TOKEN, "sha256:" + "00" * 32)
    assert "controlPlane" not in agent


def test_init_is_for_the_first_server_and_join_for_the_others() -> None:
    cluster = kubeadm_cluster()
    kinds = node_kinds(cluster)
    with pytest.raises(ValueError, match="first server"):
        kubeadm.init_documents(cluster, kinds["other-server"], TOKEN)
    with pytest.raises(ValueError, match="first server"):
        kubeadm.join_document(cluster, kinds["first-server"], TOKEN, "sha256:" + "00" * 32)
    with pytest.raises(ValueError, match="not kubeadm"):
        kubeadm.init_documents(stack_cluster("rke2"), stack_cluster("rke2").first_server, TOKEN)


def test_the_node_config_file_holds_the_documents_for_the_node() -> None:
    cluster = kubeadm_cluster()
    kinds = node_kinds(cluster)
    assert distro.config_path(cluster) == "/etc/kubernetes/clustermesh-kubeadm.yaml"
    first = list(yaml.safe_load_all(distro.config_text(cluster, kinds["first-server"], TOKEN, EC_CA)))
    assert [d["kind"] for d in first] == ["InitConfiguration", "ClusterConfiguration"]
    assert first[0]["bootstrapTokens"][0]["token"] == TOKEN
    for kind in ("other-server", "agent"):
        (joining,) = yaml.safe_load_all(distro.config_text(cluster, kinds[kind], TOKEN, EC_CA))
        assert joining["kind"] == "JoinConfiguration"
        assert joining["discovery"]["bootstrapToken"]["caCertHashes"] == [openssl_pin(EC_CA) or der_walk_pin(EC_CA)]


# --- the CA pin ---------------------------------------------------------------------------------------------------


def der_element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end) of the DER element at `offset`."""
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    return tag, start, start + length


def der_walk_pin(pem: str) -> str:
    """The pin by hand: Certificate > tbsCertificate > its 7th element (6th without the explicit [0] version),
    subjectPublicKeyInfo, hashed as its DER bytes (RFC 5280 4.1)."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    _, certificate_start, _ = der_element(der, 0)
    _, offset, tbs_end = der_element(der, certificate_start)
    elements = []
    while offset < tbs_end:
        tag, _, end = der_element(der, offset)
        elements.append((tag, offset, end))
        offset = end
    if elements[0][0] == 0xA0:  # [0] EXPLICIT version
        elements = elements[1:]
    tag, start, end = elements[5]  # serial, signature, issuer, validity, subject, subjectPublicKeyInfo
    assert tag == 0x30
    return "sha256:" + hashlib.sha256(der[start:end]).hexdigest()


def openssl_pin(pem: str) -> str | None:
    """kubeadm's documented route (create-cluster-kubeadm.md), with `pkey` so it takes EC keys as well as RSA."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    public = subprocess.run(
        [openssl, "x509", "-pubkey", "-noout"], input=pem.encode(), capture_output=True, check=True
    ).stdout
    der = subprocess.run(
        [openssl, "pkey", "-pubin", "-outform", "der"], input=public, capture_output=True, check=True
    ).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize(
    "key",
    [ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(public_exponent=65537, key_size=2048)],
    ids=["ecdsa-p256", "rsa-2048"],
)
def test_the_ca_pin_is_the_sha256_of_the_subject_public_key_info(key: Any) -> None:
    pem = self_signed_ca(key)
    pin = kubeadm.ca_cert_hash(pem)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", pin)
    assert pin == der_walk_pin(pem)
    from_openssl = openssl_pin(pem)
    if from_openssl is not None:
        assert pin == from_openssl


def test_the_ca_pin_takes_exactly_one_certificate() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        kubeadm.ca_cert_hash(EC_CA + EC_CA)


# --- the bootstrap token ------------------------------------------------------------------------------------------


def test_the_bootstrap_token_has_kubeadms_form_and_is_stable_per_seed() -> None:
    token = kubeadm.bootstrap_token(SEED)
    assert BOOTSTRAP_TOKEN.match(token)
    assert kubeadm.bootstrap_token(SEED) == token
    assert kubeadm.bootstrap_token(SEED.replace("seed", "other")) != token
    assert "seed" not in token
    for i in range(200):
        assert BOOTSTRAP_TOKEN.match(kubeadm.bootstrap_token(f"seed {i}")), i


# --- the cluster PKI on kubeadm -----------------------------------------------------------------------------------


def test_the_cluster_cas_are_the_files_kubeadm_shares_between_control_plane_nodes() -> None:
    """SharedCertificateExists (cmd/kubeadm/app/phases/certs/certs.go): ca, sa.key with sa.pub, front-proxy-ca,
    etcd/ca."""
    cluster = kubeadm_cluster()
    pki = "/etc/kubernetes/pki/"
    paths = [p for ca in cluster_pki.cluster_cas(cluster) for p in (ca.cert_path, ca.key_path)]
    assert {p.removeprefix(pki) for p in paths if p.startswith(pki)} == {
        "ca.crt",
        "ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "etcd/ca.crt",
        "etcd/ca.key",
    }
    assert len(paths) == 6
    assert cluster_pki.service_account_key_path(cluster) == pki + "sa.key"
    assert cluster_pki.service_account_public_key_path(cluster) == pki + "sa.pub"
    assert cluster_pki.api_ca_name(cluster) == cluster_pki.client_ca_name(cluster) == "ca"
    assert "ca" in {ca.name for ca in cluster_pki.cluster_cas(cluster)}


@pytest.mark.parametrize("distro_name", ["rke2", "k3s"])
def test_rke2_and_k3s_keep_their_own_ca_names_and_no_public_key_file(distro_name: str) -> None:
    cluster = stack_cluster(distro_name)
    assert cluster_pki.api_ca_name(cluster) == "server-ca"
    assert cluster_pki.client_ca_name(cluster) == "client-ca"
    assert cluster_pki.service_account_public_key_path(cluster) is None


def test_the_join_token_is_a_bootstrap_token_on_kubeadm_and_the_secure_form_elsewhere() -> None:
    assert cluster_pki.join_token(kubeadm_cluster(), EC_CA, SEED) == kubeadm.bootstrap_token(SEED)
    rke2 = cluster_pki.join_token(stack_cluster("rke2"), EC_CA, SEED)
    assert rke2 == "K10" + hashlib.sha256(EC_CA.encode()).hexdigest() + "::server:" + cluster_pki.join_password(SEED)


def test_every_kubeadm_server_takes_the_cluster_pki_and_no_agent_does() -> None:
    """A control-plane node joining without a certificate key must find the shared CAs on disk."""
    cluster = kubeadm_cluster()
    assert {n.name for n in cluster.nodes if distro.receives_cluster_pki(cluster, n)} == {
        n.name for n in servers(cluster)
    }
    rke2 = stack_cluster("rke2")
    assert [n.name for n in rke2.nodes if distro.receives_cluster_pki(rke2, n)] == [rke2.first_server.name]
