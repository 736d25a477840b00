"""Real key material for pulumi-tls resources under the planner, so the files it writes work.

Keys derive from the resource name and ECDSA signatures are RFC 6979 deterministic, so the same stack
plans to the same certificates on the same day; validity starts at midnight UTC for the same reason.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CURVES = {"P224": ec.SECP224R1(), "P256": ec.SECP256R1(), "P384": ec.SECP384R1(), "P521": ec.SECP521R1()}
_EXTENDED_USES = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}
State = dict[str, Any]


def _start() -> datetime.datetime:
    now = datetime.datetime.now(datetime.UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def private_key(name: str, inputs: State) -> State:
    if inputs.get("algorithm") != "ECDSA":
        raise ValueError(f"the planner fabricates ECDSA keys only, not {inputs.get('algorithm')}")
    curve = _CURVES[inputs.get("ecdsaCurve", "P224")]
    seed = int.from_bytes(hashlib.sha256(f"planner-key/{name}".encode()).digest(), "big")
    key = ec.derive_private_key(seed % (2**200) + 1, curve)
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


def _subject(subject: State | None) -> x509.Name:
    subject = subject or {}
    attributes = []
    if subject.get("organization"):
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["organization"]))
    if subject.get("commonName"):
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, subject["commonName"]))
    return x509.Name(attributes)


def _sans(dns_names: list[str], ip_addresses: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    return names


def _build(
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
    start = _start()
    hours = int(inputs.get("validityPeriodHours", 24))
    uses = set(inputs.get("allowedUses", []))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(int.from_bytes(hashlib.sha256(f"planner-serial/{name}".encode()).digest()[:16], "big") >> 1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(hours=hours))
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
        "validityEndTime": (start + datetime.timedelta(hours=hours)).isoformat(),
    }


def self_signed_cert(name: str, inputs: State) -> State:
    key = serialization.load_pem_private_key(inputs["privateKeyPem"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    subject = _subject(inputs.get("subject"))
    sans = _sans(inputs.get("dnsNames", []), inputs.get("ipAddresses", []))
    is_ca = bool(inputs.get("isCaCertificate"))
    state = _build(
        name, inputs, subject=subject, issuer=subject, public_key=key.public_key(), signer=key, sans=sans, is_ca=is_ca
    )
    return {**state, "keyAlgorithm": "ECDSA"}


def cert_request(name: str, inputs: State) -> State:
    key = serialization.load_pem_private_key(inputs["privateKeyPem"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(inputs.get("subject")))
    sans = _sans(inputs.get("dnsNames", []), inputs.get("ipAddresses", []))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    csr = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    return {"certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode(), "keyAlgorithm": "ECDSA"}


def locally_signed_cert(name: str, inputs: State) -> State:
    csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
    ca_key = serialization.load_pem_private_key(inputs["caPrivateKeyPem"].encode(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    try:
        sans = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        sans = []
    state = _build(
        name,
        inputs,
        subject=csr.subject,
        issuer=ca_cert.subject,
        public_key=csr.public_key(),
        signer=ca_key,
        sans=sans,
        is_ca=bool(inputs.get("isCaCertificate")),
    )
    return {**state, "caKeyAlgorithm": "ECDSA"}
