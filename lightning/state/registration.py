"""Signed node registration: what a node publishes about itself, signed by the keys it names.

Theory of operation. A node joins the registry through the ``stake`` transaction of an *owner* account, but only the
holder of the node key can say which node it is, which consensus key votes for it, where peers reach it and which
account may stake for it. So the node signs a *registration* and hands the bytes (a "blob") to its owner, who puts
them into the ``stake`` transaction (``lightning stake deposit`` does both from one home; ``lightning keys
registration`` prints the blob for a wallet). The executor verifies the blob (:func:`verify_registration`) and the
rules that need the state (owner = sender, keys unused, a fresh ``seq``; ``methods.py``).

Wire form (canonical msgpack; docs/wire.md, "Registration")::

    blob          = {"registration": registration, "node_sig": 64 bytes, "consensus_sig": 64 bytes}
    registration  = {"v": 1, "chain_id": int, "node": 32 bytes, "consensus_key": 32 bytes,
                     "keys": {kind: {"key": bytes, "pop": bytes}}, "host": str,
                     "ports": {"quic", "http", "pinger", "rpc"}, "owner": 32 or 20 bytes, "seq": int >= 1}
    node_sig      = Ed25519(node,          "lightning/registration/v1"           || 0x00 || encode(registration))
    consensus_sig = Ed25519(consensus_key, "lightning/registration-consensus/v1" || 0x00 || encode(registration))

Why each field:

==================  =============================================================================================
``chain_id``        a registration for one network is refused on another
``owner``           the only account whose ``stake`` may carry it: a blob copied out of the mempool is useless to
                    anyone else
``seq``             registrations of one node are ordered; a later one must carry a higher ``seq`` than the one in
                    force (genesis nodes start at 0), so an old blob cannot be replayed to roll back host or ports
``node_sig``        the node key's consent: nobody registers or stakes for a node id they do not hold
``consensus_sig``   proof of possession of the consensus key: nobody registers someone else's consensus key
``keys``            further keys by kind (empty today). An aggregate-signature key (e.g. ``bls12-381``) must
                    carry ``pop``, a proof of possession (its signature over the registration's node id under the
                    scheme's own PoP tag), against rogue-key attacks on aggregates. No kind is known yet, so any
                    entry is refused; a kind is added here together with its ``pop`` check.
==================  =============================================================================================

Every size is bounded (:data:`MAX_REGISTRATION_BYTES` for the whole blob). Errors: :class:`RegistrationMalformed`
(bytes that are not a registration), :class:`RegistrationWrongChain`, :class:`RegistrationBadSignature` (signed by
another key), all :class:`RegistrationError`; their messages are the ``stake`` revert reasons.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lightning.codec import CodecError, decode, encode
from lightning.crypto import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, BadSignature, Domain, PublicKey, SigningKey
from lightning.ids import ADDRESS_BYTES, AccountId, NodeId
from lightning.state.errors import StateError
from lightning.state.records import Ports

__all__ = [
    "MAX_REGISTRATION_BYTES",
    "REGISTRATION_VERSION",
    "ExtraKey",
    "Registration",
    "RegistrationBadSignature",
    "RegistrationError",
    "RegistrationMalformed",
    "RegistrationWrongChain",
    "SignedRegistration",
    "decode_registration",
    "sign_registration",
    "verify_registration",
    "verify_stake_registration",
]

REGISTRATION_VERSION = 1
MAX_REGISTRATION_BYTES = 2048
MAX_HOST_CHARS = 253
MAX_EXTRA_KEYS = 4
MAX_KEY_KIND_CHARS = 32
MAX_EXTRA_KEY_BYTES = 128
MAX_POP_BYTES = 192
MAX_SEQ = 2**64 - 1

_FIELDS = frozenset({"v", "chain_id", "node", "consensus_key", "keys", "host", "ports", "owner", "seq"})
_PORTS = ("quic", "http", "pinger", "rpc")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")

# Kinds of further keys this version verifies (kind -> what a registration must prove about it). None yet.
KNOWN_KEY_KINDS: Mapping[str, str] = {}


class RegistrationError(StateError):
    """A node registration that is not acceptable; the message says why (it is the revert reason)."""


class RegistrationMalformed(RegistrationError):
    """Bytes that are not a well-formed signed registration."""


class RegistrationWrongChain(RegistrationError):
    """A registration signed for another chain."""


class RegistrationBadSignature(RegistrationError):
    """A registration whose node or consensus signature does not verify (signed by another key)."""


def _short(b: bytes) -> str:
    return b.hex()[:16] + "…"


@dataclass(frozen=True)
class ExtraKey:
    """A further key of a node (kind named by its map key) and its proof of possession."""

    key: bytes
    pop: bytes = b""

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key, "pop": self.pop}


@dataclass(frozen=True)
class Registration:
    """What a node states about itself. :meth:`sign` turns it into a :class:`SignedRegistration`."""

    chain_id: int
    node: NodeId
    consensus_key: bytes
    host: str
    ports: Ports
    owner: AccountId
    seq: int
    keys: Mapping[str, ExtraKey] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": REGISTRATION_VERSION,
            "chain_id": self.chain_id,
            "node": bytes(self.node),
            "consensus_key": self.consensus_key,
            "keys": {kind: k.to_wire() for kind, k in self.keys.items()},
            "host": self.host,
            "ports": self.ports.to_wire(),
            "owner": bytes(self.owner),
            "seq": self.seq,
        }

    def signed_bytes(self) -> bytes:
        """The bytes both signatures cover."""
        return encode(self.to_wire())

    def sign(self, node_key: SigningKey, consensus_key: SigningKey) -> SignedRegistration:
        """Sign with the node key and the consensus key this registration names (ValueError if they differ)."""
        if node_key.public.raw != self.node or consensus_key.public.raw != self.consensus_key:
            raise ValueError("sign a registration with the node key and the consensus key it names")
        _check(self.to_wire())
        msg = self.signed_bytes()
        return SignedRegistration(
            self, node_key.sign(Domain.REGISTRATION, msg), consensus_key.sign(Domain.REGISTRATION_CONSENSUS, msg)
        )


@dataclass(frozen=True)
class SignedRegistration:
    registration: Registration
    node_sig: bytes
    consensus_sig: bytes

    @property
    def raw(self) -> bytes:
        """The blob: what ``stake``'s ``registration`` argument carries."""
        return encode(
            {
                "registration": self.registration.to_wire(),
                "node_sig": self.node_sig,
                "consensus_sig": self.consensus_sig,
            }
        )

    def verify(self, *, chain_id: int) -> Registration:
        """Check the chain id and both signatures; return the registration. Raises :class:`RegistrationError`."""
        reg = self.registration
        if reg.chain_id != chain_id:
            raise RegistrationWrongChain(f"registration is for chain {reg.chain_id}, this is chain {chain_id}")
        for kind in reg.keys:
            if kind not in KNOWN_KEY_KINDS:
                known = ", ".join(sorted(KNOWN_KEY_KINDS)) or "none"
                raise RegistrationMalformed(f"registration: unsupported key kind {kind!r} (known: {known})")
        msg = reg.signed_bytes()
        try:
            PublicKey(bytes(reg.node)).verify(Domain.REGISTRATION, msg, self.node_sig)
        except BadSignature:
            raise RegistrationBadSignature(
                f"registration is not signed by node key {_short(reg.node)} (signed by another key, or altered)"
            ) from None
        try:
            PublicKey(reg.consensus_key).verify(Domain.REGISTRATION_CONSENSUS, msg, self.consensus_sig)
        except BadSignature:
            raise RegistrationBadSignature(
                f"registration is not signed by its consensus key {_short(reg.consensus_key)} "
                "(the operator must prove it holds that key)"
            ) from None
        return reg


def _fail(what: str) -> None:
    raise RegistrationMalformed(f"registration: {what}")


def _bytes(v: Any, name: str, sizes: tuple[int, ...]) -> bytes:
    if not isinstance(v, bytes) or len(v) not in sizes:
        _fail(f"{name} must be {' or '.join(map(str, sizes))} bytes")
    return bytes(v)


def _int(v: Any, name: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        _fail(f"{name} must be an integer in [{lo}, {hi}]")
    return int(v)


def _host(v: Any) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= MAX_HOST_CHARS:
        _fail(f"host must be a string of 1..{MAX_HOST_CHARS} characters")
    try:
        ipaddress.ip_address(v)
    except ValueError:
        if not _HOSTNAME.fullmatch(v):
            _fail(f"host {v!r} is neither an IP address nor a host name")
    return str(v)


def _ports(v: Any) -> Ports:
    if not isinstance(v, dict) or set(v) != set(_PORTS):
        _fail(f"ports must be a map of exactly {', '.join(_PORTS)}")
    quic, http, pinger = (_int(v[k], f"ports.{k}", 1, 65535) for k in ("quic", "http", "pinger"))
    return Ports(quic, http, pinger, _int(v["rpc"], "ports.rpc", 0, 65535))  # rpc 0: not published


def _keys(v: Any) -> dict[str, ExtraKey]:
    if not isinstance(v, dict) or len(v) > MAX_EXTRA_KEYS:
        _fail(f"keys must be a map of at most {MAX_EXTRA_KEYS} entries")
    out = {}
    for kind, entry in v.items():
        if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KEY_KIND_CHARS:
            _fail(f"a key kind must be a string of 1..{MAX_KEY_KIND_CHARS} characters")
        if not isinstance(entry, dict) or set(entry) != {"key", "pop"}:
            _fail(f"keys.{kind} must be a map of exactly key, pop")
        key, pop = entry["key"], entry["pop"]
        if not isinstance(key, bytes) or not 0 < len(key) <= MAX_EXTRA_KEY_BYTES:
            _fail(f"keys.{kind}.key must be 1..{MAX_EXTRA_KEY_BYTES} bytes")
        if not isinstance(pop, bytes) or len(pop) > MAX_POP_BYTES:
            _fail(f"keys.{kind}.pop must be at most {MAX_POP_BYTES} bytes")
        out[kind] = ExtraKey(key, pop)
    return out


def _check(w: Any) -> Registration:
    """The registration map → :class:`Registration`, every field checked."""
    if not isinstance(w, dict):
        _fail("expected a map")
    if set(w) != _FIELDS:
        missing, extra = sorted(_FIELDS - set(w)), sorted(set(w) - _FIELDS)
        _fail(f"fields differ (missing: {', '.join(missing) or '-'}; unknown: {', '.join(extra) or '-'})")
    if _int(w["v"], "v", 0, MAX_SEQ) != REGISTRATION_VERSION:
        _fail(f"version {w['v']} is not supported (this node reads version {REGISTRATION_VERSION})")
    node = _bytes(w["node"], "node", (PUBLIC_KEY_BYTES,))
    ckey = _bytes(w["consensus_key"], "consensus_key", (PUBLIC_KEY_BYTES,))
    if ckey == node:
        _fail("the consensus key must differ from the node key")
    return Registration(
        chain_id=_int(w["chain_id"], "chain_id", 0, 2**64 - 1),
        node=NodeId(node),
        consensus_key=ckey,
        host=_host(w["host"]),
        ports=_ports(w["ports"]),
        owner=AccountId(_bytes(w["owner"], "owner", (PUBLIC_KEY_BYTES, ADDRESS_BYTES))),
        seq=_int(w["seq"], "seq", 1, MAX_SEQ),
        keys=_keys(w["keys"]),
    )


def decode_registration(raw: bytes) -> SignedRegistration:
    """Parse a blob (no signature checks). Raises :class:`RegistrationMalformed` saying what is wrong."""
    if len(raw) > MAX_REGISTRATION_BYTES:
        raise RegistrationMalformed(f"registration is {len(raw)} bytes; at most {MAX_REGISTRATION_BYTES}")
    try:
        w = decode(raw, max_bytes=MAX_REGISTRATION_BYTES)
    except CodecError as exc:
        raise RegistrationMalformed(f"registration does not decode: {exc}") from None
    if not isinstance(w, dict) or set(w) != {"registration", "node_sig", "consensus_sig"}:
        _fail("expected a map of exactly registration, node_sig, consensus_sig")
    return SignedRegistration(
        _check(w["registration"]),
        _bytes(w["node_sig"], "node_sig", (SIGNATURE_BYTES,)),
        _bytes(w["consensus_sig"], "consensus_sig", (SIGNATURE_BYTES,)),
    )


def verify_registration(raw: bytes, *, chain_id: int) -> Registration:
    """Decode a blob and check its chain id and both signatures. Raises :class:`RegistrationError`."""
    return decode_registration(raw).verify(chain_id=chain_id)


def verify_stake_registration(raw: bytes, *, node: bytes, owner: bytes, chain_id: int) -> Registration:
    """A blob a ``stake`` of ``node`` by ``owner`` may carry: verified, for this node, naming that owner. Used by the
    executor and by transaction acceptance alike. Raises :class:`RegistrationError`."""
    reg = verify_registration(raw, chain_id=chain_id)
    if reg.node != node:
        raise RegistrationError(f"the registration is for node {_short(reg.node)}, not {_short(node)}")
    if reg.owner != owner:
        raise RegistrationError(
            f"the registration names owner {_short(reg.owner)}; only that account may stake with it, "
            f"not {_short(owner)}"
        )
    return reg


def sign_registration(
    node_key: SigningKey,
    consensus_key: SigningKey,
    *,
    chain_id: int,
    owner: bytes,
    host: str,
    ports: Ports,
    seq: int = 1,
) -> bytes:
    """A node's signed registration blob. Raises :class:`RegistrationMalformed` for a field out of bounds."""
    reg = Registration(
        chain_id=chain_id,
        node=NodeId(node_key.public.raw),
        consensus_key=consensus_key.public.raw,
        host=host,
        ports=ports,
        owner=AccountId(owner),
        seq=seq,
    )
    blob = reg.sign(node_key, consensus_key).raw
    if len(blob) > MAX_REGISTRATION_BYTES:  # only oversize extra keys could; none exist yet
        raise RegistrationMalformed(f"registration is {len(blob)} bytes; at most {MAX_REGISTRATION_BYTES}")
    return blob
