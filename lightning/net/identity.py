"""Node-key authentication for QUIC: certificates bound to the node key, and the client's post-handshake proof.

Server side (TLS). Each process makes a throwaway Ed25519 TLS key and a self-signed certificate for it. The
certificate carries an extension (OID :data:`BINDING_OID`) holding ``{"key": node public key, "sig": signature}``,
where the signature is the node key's, under ``Domain.TLS_BINDING``, over the certificate's SubjectPublicKeyInfo
(DER). TLS proves the server holds the TLS key (CertificateVerify, checked by aioquic whatever the verify mode);
the extension proves the node key vouches for the TLS key. A dialer checks the node key against the one it meant.

Client side. aioquic's server cannot ask for a client certificate through its public API, so right after the
handshake the client sends, on stream 0, ``{"key": node public key, "sig": signature}`` where the signature is
under ``Domain.HANDSHAKE`` over the canonical encoding of this connection's transcript: both initial source
connection ids and the SHA-256 of the server's certificate. A server relaying the proof to a third node cannot
reuse it: that node's certificate hash and connection ids differ. The server accepts nothing else before it.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from lightning.codec import CodecError, decode, encode
from lightning.crypto import PUBLIC_KEY_BYTES, BadSignature, Domain, SigningKey
from lightning.ids import NodeId
from lightning.net.errors import HandshakeFailed

__all__ = [
    "ALPN",
    "BINDING_OID",
    "TlsIdentity",
    "auth_transcript",
    "make_client_proof",
    "node_key_from_certificate",
    "verify_client_proof",
]

ALPN: Final = "lightning/1"
BINDING_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.62253.1.1")
MAX_PROOF_BYTES: Final = 256
CERT_VALIDITY = datetime.timedelta(days=3650)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class TlsIdentity:
    """The TLS key and certificate one endpoint presents, bound to ``node_key``."""

    node_key: SigningKey
    private_key: ed25519.Ed25519PrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls, node_key: SigningKey) -> TlsIdentity:
        tls_key = ed25519.Ed25519PrivateKey.generate()
        spki = tls_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        binding = encode({"key": node_key.public.raw, "sig": node_key.sign(Domain.TLS_BINDING, spki)})
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_key.public.hex)])
        # Validity is informational: peers check the binding, not dates or a chain.
        start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(tls_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + CERT_VALIDITY * 3)
            .add_extension(x509.UnrecognizedExtension(BINDING_OID, binding), critical=False)
            .sign(tls_key, None)
        )
        return cls(node_key, tls_key, cert)

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def certificate_hash(self) -> bytes:
        return hashlib.sha256(self.certificate_der).digest()


def node_key_from_certificate(cert: x509.Certificate) -> NodeId:
    """The node key a peer's certificate is bound to. Raises HandshakeFailed if the binding is missing or bad."""
    try:
        ext = cert.extensions.get_extension_for_oid(BINDING_OID)
    except x509.ExtensionNotFound:
        raise HandshakeFailed("the peer's certificate carries no node-key binding") from None
    except ValueError as exc:  # malformed extensions
        raise HandshakeFailed(f"the peer's certificate has malformed extensions ({exc})") from None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise HandshakeFailed("the peer's node-key binding has an unexpected form")
    key, sig = _key_and_sig(value.value, "certificate binding")
    try:
        key.verify(Domain.TLS_BINDING, _spki(cert), sig)
    except BadSignature:
        raise HandshakeFailed(f"the certificate's node-key binding does not verify for {key.short()}…") from None
    return key


def _key_and_sig(data: bytes, what: str) -> tuple[NodeId, bytes]:
    if len(data) > MAX_PROOF_BYTES:
        raise HandshakeFailed(f"{what} of {len(data)} bytes is too large")
    try:
        value: Any = decode(data, max_bytes=MAX_PROOF_BYTES)
    except CodecError as exc:
        raise HandshakeFailed(f"{what} is not canonical msgpack ({exc})") from None
    if (
        not isinstance(value, dict)
        or set(value) != {"key", "sig"}
        or not isinstance(value["key"], bytes)
        or not isinstance(value["sig"], bytes)
        or len(value["key"]) != PUBLIC_KEY_BYTES
    ):
        raise HandshakeFailed(f"{what} must be {{key: 32 bytes, sig: bytes}}")
    return NodeId(value["key"]), value["sig"]


def auth_transcript(client_cid: bytes, server_cid: bytes, server_cert_hash: bytes) -> bytes:
    """What the client signs: this connection's initial source connection ids and the server certificate."""
    return encode({"alpn": ALPN, "client_cid": client_cid, "server_cid": server_cid, "server_cert": server_cert_hash})


def make_client_proof(node_key: SigningKey, transcript: bytes) -> bytes:
    return encode({"key": node_key.public.raw, "sig": node_key.sign(Domain.HANDSHAKE, transcript)})


def verify_client_proof(proof: bytes, transcript: bytes) -> NodeId:
    """The client's node key. Raises HandshakeFailed unless the proof signs this connection's transcript."""
    key, sig = _key_and_sig(proof, "client proof")
    try:
        key.verify(Domain.HANDSHAKE, transcript, sig)
    except BadSignature:
        raise HandshakeFailed(f"client proof from {key.short()}… does not sign this connection") from None
    return key
