"""Key material for pulumi-tls resources under the planner: real, so the files it writes can be checked, and
marked as fixtures, so that nobody mistakes them for (or deploys them as) a mesh's own.

Every certificate's and request's subject starts with O=`FIXTURE_ORGANIZATION` (the program's own common name
and organization follow unchanged: etcd turns the CN into a user), and every certificate is valid for one day,
whatever lifetime the program asks for (its request stays visible in the resource's inputs). Keys come from a
`Fixtures`' seed: derived from the project and stack for a plan that shows no key (the same stack plans to the
same bytes, and two stacks share no key), or random for each run that reveals them. ECDSA signatures are
RFC 6979 deterministic, and validity starts on a half-day boundary, for the same reason.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CURVES = {"P224": ec.SECP224R1(), "P256": ec.SECP256R1(), "P384": ec.SECP384R1(), "P521": ec.SECP521R1()}
_EXTENDED_USES = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}
State = dict[str, Any]

FIXTURE_ORGANIZATION = "clustermesh planner fixture - not for deployment"
"""The first organization (O) of every certificate and request the planner makes."""
VALIDITY = datetime.timedelta(days=1)
"""How long every fixture certificate is valid, whatever the program asks."""
_STEP = datetime.timedelta(hours=12)
_LEAD = datetime.timedelta(hours=6)
_MARKER = x509.NameAttribute(NameOID.ORGANIZATION_NAME, FIXTURE_ORGANIZATION)


def validity_start(now: datetime.datetime | None = None) -> datetime.datetime:
    """Six hours before the last half-day boundary (00:00 or 12:00 UTC): the same for twelve hours, so that plans
    made an hour apart are byte-identical, and at any moment at least six of the day's hours are left."""
    now = now or datetime.datetime.now(datetime.UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + _STEP * ((now - midnight) // _STEP) - _LEAD


@dataclass(frozen=True)
class Fixtures:
    """Where a plan's key material comes from: `seed` names the stack and, for a random run, a secret nonce."""

    seed: str
    random: bool = False
    start: datetime.datetime = field(default_factory=validity_start)

    @classmethod
    def for_stack(cls, project: str, stack: str, *, random: bool = False) -> Fixtures:
        """Keys derived from the project and stack, or (`random`) fresh for this run only."""
        nonce = f"/{secrets.token_hex(32)}" if random else ""
        return cls(f"{project}/{stack}{nonce}", random=random)

    def _digest(self, purpose: str, name: str) -> bytes:
        return hashlib.sha256(f"planner-{purpose}/{self.seed}/{name}".encode()).digest()

    def private_key(self, name: str, inputs: State) -> State:
        if inputs.get("algorithm") == "ED25519":
            # SSH keys: Ed25519 derives from any 32 bytes, so the seed gives it as it gives ECDSA keys.
            seed = secrets.token_bytes(32) if self.random else self._digest("key", name)[:32]
            return _ed25519_state(ed25519.Ed25519PrivateKey.from_private_bytes(seed))
        if inputs.get("algorithm") != "ECDSA":
            raise ValueError(f"the planner fabricates ECDSA and ED25519 keys only, not {inputs.get('algorithm')}")
        curve = _CURVES[inputs.get("ecdsaCurve", "P224")]
        if self.random:
            key = ec.generate_private_key(curve)
        else:
            key = ec.derive_private_key(int.from_bytes(self._digest("key", name), "big") % (2**200) + 1, curve)
        return _key_state(key)

    def self_signed_cert(self, name: str, inputs: State) -> State:
        key = _private_key(inputs["privateKeyPem"])
        subject = _subject(inputs.get("subject"))
        sans = _sans(inputs.get("dnsNames", []), inputs.get("ipAddresses", []))
        is_ca = bool(inputs.get("isCaCertificate"))
        state = self._build(
            name,
            inputs,
            subject=subject,
            issuer=subject,
            public_key=key.public_key(),
            signer=key,
            sans=sans,
            is_ca=is_ca,
        )
        return {**state, "keyAlgorithm": "ECDSA"}

    @staticmethod
    def cert_request(name: str, inputs: State) -> State:
        key = _private_key(inputs["privateKeyPem"])
        builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(inputs.get("subject")))
        sans = _sans(inputs.get("dnsNames", []), inputs.get("ipAddresses", []))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        csr = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
        return {"certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode(), "keyAlgorithm": "ECDSA"}

    def locally_signed_cert(self, name: str, inputs: State) -> State:
        csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
        ca_key = _private_key(inputs["caPrivateKeyPem"])
        ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
        try:
            sans = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            sans = []
        state = self._build(
            name,
            inputs,
            subject=_marked(csr.subject),
            issuer=ca_cert.subject,
            public_key=csr.public_key(),
            signer=ca_key,
            sans=sans,
            is_ca=bool(inputs.get("isCaCertificate")),
        )
        return {**state, "caKeyAlgorithm": "ECDSA"}

    def _build(
        self,
        name: str,
        inputs: State,
        *,
        subject: x509.Name,
        issuer: x509.Name,
        public_key: Any,
        signer: ec.EllipticCurvePrivateKey,
        sans: list[x509.GeneralName],
        is_ca: bool,
    ) -> State:
        start, end = self.start, self.start + VALIDITY
        uses = set(inputs.get("allowedUses", []))
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(int.from_bytes(self._digest("serial", name)[:16], "big") >> 1)
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature="digital_signature" in uses,
                    content_commitment=False,
                    key_encipherment="key_encipherment" in uses,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign="cert_signing" in uses,
                    crl_sign="crl_signing" in uses,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        extended = [_EXTENDED_USES[u] for u in sorted(uses) if u in _EXTENDED_USES]
        if extended:
            builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if not is_ca:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
            )
        cert = builder.sign(signer, hashes.SHA256(), ecdsa_deterministic=True)
        return {
            "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "readyForRenewal": False,
            "validityStartTime": start.isoformat(),
            "validityEndTime": end.isoformat(),
        }


def _private_key(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _key_state(key: ec.EllipticCurvePrivateKey) -> State:
    public = key.public_key()
    return {
        "privateKeyPem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode(),
        "privateKeyPemPkcs8": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "publicKeyPem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "publicKeyFingerprintSha256": hashlib.sha256(
            public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).hexdigest(),
    }


def _ed25519_state(key: ed25519.Ed25519PrivateKey) -> State:
    public = key.public_key()
    openssh_public = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return {
        "privateKeyPem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "privateKeyOpenssh": _steady_openssh(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            ).decode()
        ),
        "publicKeyPem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "publicKeyOpenssh": openssh_public + "\n",
        "publicKeyFingerprintSha256": hashlib.sha256(
            public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).hexdigest(),
    }


def _steady_openssh(pem: str) -> str:
    """An OpenSSH private key with its check integer fixed: OpenSSH draws it at random on every serialization (it
    only detects a wrong passphrase), which would make the same key differ between two plans."""
    lines = pem.strip().splitlines()
    blob = bytearray(base64.b64decode("".join(lines[1:-1])))

    def after_string(at: int) -> int:
        return at + 4 + int.from_bytes(blob[at : at + 4], "big")

    offset = after_string(after_string(after_string(len(b"openssh-key-v1\0"))))  # cipher, KDF, KDF options
    offset = after_string(offset + 4)  # the key count, then the public key
    offset += 4  # the private section's length; the two check integers follow
    check = hashlib.sha256(bytes(blob[offset + 8 :])).digest()[:4]
    blob[offset : offset + 8] = check * 2
    body = base64.b64encode(bytes(blob)).decode()
    return "\n".join([lines[0], *(body[i : i + 70] for i in range(0, len(body), 70)), lines[-1]]) + "\n"


def _subject(subject: State | None) -> x509.Name:
    """The subject the program asks for, marked: O=<fixture>, then its own organization and common name."""
    subject = subject or {}
    attributes = [_MARKER]
    if subject.get("organization"):
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["organization"]))
    if subject.get("commonName"):
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, subject["commonName"]))
    return x509.Name(attributes)


def _marked(name: x509.Name) -> x509.Name:
    """`name` with the fixture organization first, unless it is there already."""
    if _MARKER in name:
        return name
    return x509.Name([x509.RelativeDistinguishedName([_MARKER]), *name.rdns])


def _sans(dns_names: list[str], ip_addresses: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    return names
