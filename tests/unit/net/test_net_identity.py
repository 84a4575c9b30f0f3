"""Certificates bound to the node key, and the client's post-handshake proof (identity.py)."""

from __future__ import annotations

import pytest
from cryptography import x509

from lightning.codec import encode
from lightning.crypto import Domain, SigningKey
from lightning.ids import NodeId
from lightning.net.errors import HandshakeFailed
from lightning.net.identity import (
    BINDING_OID,
    TlsIdentity,
    auth_transcript,
    make_client_proof,
    node_key_from_certificate,
    verify_client_proof,
)


def _cert_with_binding(identity: TlsIdentity, binding: bytes) -> x509.Certificate:
    cert = identity.certificate
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(identity.private_key.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .add_extension(x509.UnrecognizedExtension(BINDING_OID, binding), critical=False)
    )
    return builder.sign(identity.private_key, None)


def test_certificate_names_its_node_key():
    key = SigningKey(bytes(range(32)))
    identity = TlsIdentity.generate(key)
    assert node_key_from_certificate(identity.certificate) == NodeId.of(key)
    assert len(identity.certificate_hash) == 32


def test_binding_by_another_key_or_for_another_tls_key_fails():
    key, other = SigningKey.generate(), SigningKey.generate()
    identity = TlsIdentity.generate(key)
    # A binding signed by `other` but claiming `key`.
    spki_sig = other.sign(Domain.TLS_BINDING, b"whatever")
    forged = _cert_with_binding(identity, encode({"key": key.public.raw, "sig": spki_sig}))
    with pytest.raises(HandshakeFailed, match="does not verify"):
        node_key_from_certificate(forged)
    # A genuine binding copied from another certificate (another TLS key) does not transfer.
    theirs = TlsIdentity.generate(key).certificate.extensions.get_extension_for_oid(BINDING_OID).value
    assert isinstance(theirs, x509.UnrecognizedExtension)
    with pytest.raises(HandshakeFailed, match="does not verify"):
        node_key_from_certificate(_cert_with_binding(identity, theirs.value))


@pytest.mark.parametrize("binding", [b"", b"\xc1", encode({"key": b"short", "sig": b""}), encode([1, 2])])
def test_malformed_binding(binding: bytes):
    identity = TlsIdentity.generate(SigningKey.generate())
    with pytest.raises(HandshakeFailed):
        node_key_from_certificate(_cert_with_binding(identity, binding))


def test_certificate_without_binding():
    identity = TlsIdentity.generate(SigningKey.generate())
    cert = (
        x509.CertificateBuilder()
        .subject_name(identity.certificate.subject)
        .issuer_name(identity.certificate.issuer)
        .public_key(identity.private_key.public_key())
        .serial_number(1)
        .not_valid_before(identity.certificate.not_valid_before_utc)
        .not_valid_after(identity.certificate.not_valid_after_utc)
        .sign(identity.private_key, None)
    )
    with pytest.raises(HandshakeFailed, match="no node-key binding"):
        node_key_from_certificate(cert)


def test_client_proof_is_bound_to_the_connection():
    key = SigningKey.generate()
    transcript = auth_transcript(b"c" * 8, b"s" * 8, b"h" * 32)
    proof = make_client_proof(key, transcript)
    assert verify_client_proof(proof, transcript) == NodeId.of(key)
    # Replayed on another connection (other ids) or to another server (other certificate): rejected.
    for other in (
        auth_transcript(b"C" * 8, b"s" * 8, b"h" * 32),
        auth_transcript(b"c" * 8, b"S" * 8, b"h" * 32),
        auth_transcript(b"c" * 8, b"s" * 8, b"H" * 32),
    ):
        with pytest.raises(HandshakeFailed, match="does not sign this connection"):
            verify_client_proof(proof, other)
    # A signature under another domain (e.g. the certificate binding) is not a proof.
    wrong = encode({"key": key.public.raw, "sig": key.sign(Domain.TLS_BINDING, transcript)})
    with pytest.raises(HandshakeFailed):
        verify_client_proof(wrong, transcript)
    with pytest.raises(HandshakeFailed, match="too large"):
        verify_client_proof(b"x" * 1000, transcript)
