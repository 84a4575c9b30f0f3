"""CIDs and verified blocks.

A CID names a block by the hash of its bytes: ``<version><codec><multihash>`` where the multihash is
``<hash function code><digest length><digest>``. CIDv0 is a bare sha2-256 multihash of a dag-pb block (text form
``Qm…``, base58btc); CIDv1 spells out version and codec (text form multibase, canonically base32 ``b…``).

Text CIDs are multibase-decoded with the ``multiformats`` package (every multibase it knows), then parsed like
binary ones. Binary CIDs, which arrive inside CAR streams and dag-pb links by the thousand, are parsed here: they
are self-delimiting, strict (minimal varints, so one CID has one binary form) and cheap. Hash functions come from
``multiformats`` (with ``hashlib`` and ``blake3`` called directly for sha2-256 and blake3, the two that matter
for speed).

Which hash functions we accept is a policy, not just what ``multiformats`` implements: a CID is only as strong as
its hash, and a gateway that can find a second preimage can serve anything. Refused: md5 and sha1 (collisions are
practical), non-cryptographic hashes (murmur3 …), digests shorter than 20 bytes, identity digests longer than 128
bytes. ``multiformats`` lacks implementations for keccak, ripemd, kangarootwelve and sha2-512/224, sha2-512/256
unless the optional ``pycryptodome`` is installed, and for skein without ``pyskein``; those raise ``Unsupported``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import blake3
from multiformats import multibase, multicodec, multihash

from lightning.ipfs._varint import BytesLike, encode_uvarint, read_uvarint
from lightning.ipfs.errors import BlockMismatch, InvalidCid, Unsupported

__all__ = [
    "BLAKE3",
    "DAG_PB",
    "IDENTITY",
    "RAW",
    "SHA2_256",
    "Block",
    "BytesLike",
    "Cid",
    "check_supported",
    "hash_digest",
    "inline_block",
    "parse_cid",
    "verify_block",
]

RAW: Final = 0x55
DAG_PB: Final = 0x70
IDENTITY: Final = 0x00
SHA2_256: Final = 0x12
BLAKE3: Final = 0x1E
SHA1: Final = 0x11
MD5: Final = 0xD5

DIGEST_BYTES_MIN: Final = 20
"""Shortest digest we trust (identity excepted): a truncated hash is a weaker hash."""
DIGEST_BYTES_MAX: Final = 128
"""Longest digest we parse; also the largest identity ("inline") block."""
CID_TEXT_CHARS_MAX: Final = 512
SUPPORTED_CODECS: Final = {RAW: "raw", DAG_PB: "dag-pb"}
_REFUSED_HASHES: Final = {SHA1: "sha1: collisions are practical", MD5: "md5: collisions are practical"}


@dataclass(frozen=True, slots=True)
class Cid:
    """A parsed CID. Equal CIDs have equal ``binary``; a CIDv0 and its CIDv1 twin differ (same ``multihash``).

    Build one with :meth:`parse`, :meth:`decode`, :meth:`create` or :meth:`of`, never with the constructor.
    """

    binary: bytes
    version: int = field(compare=False)
    codec: int = field(compare=False)
    hash_code: int = field(compare=False)
    digest: bytes = field(compare=False, repr=False)
    multihash: bytes = field(compare=False, repr=False)

    def __str__(self) -> str:
        if self.version == 0:
            return str(multibase.encode(self.binary, "base58btc"))[1:]
        return "b" + base64.b32encode(self.binary).decode("ascii").lower().rstrip("=")

    def __repr__(self) -> str:
        return f"Cid({self})"

    @property
    def is_identity(self) -> bool:
        """The block is the digest itself (an "inline" CID); no fetch needed, see :func:`inline_block`."""
        return self.hash_code == IDENTITY

    @property
    def codec_name(self) -> str:
        return _codec_name(self.codec)

    @property
    def hash_name(self) -> str:
        return _codec_name(self.hash_code)

    def to_v1(self) -> Cid:
        return self if self.version == 1 else Cid.create(self.codec, self.hash_code, self.digest)

    @classmethod
    def create(cls, codec: int, hash_code: int, digest: bytes, *, version: int = 1) -> Cid:
        """The CID with these parts; raises InvalidCid if CIDv0 is asked for anything but dag-pb + sha2-256."""
        if not 0 < len(digest) <= DIGEST_BYTES_MAX and not (hash_code == IDENTITY and not digest):
            raise InvalidCid(f"digest of {len(digest)} bytes (at most {DIGEST_BYTES_MAX})")
        mh = encode_uvarint(hash_code) + encode_uvarint(len(digest)) + digest
        if version == 0:
            if codec != DAG_PB or hash_code != SHA2_256 or len(digest) != 32:
                raise InvalidCid("CIDv0 is only dag-pb with a 32-byte sha2-256 digest")
            return cls(mh, 0, codec, hash_code, bytes(digest), mh)
        if version != 1:
            raise InvalidCid(f"CID version {version} is not defined")
        return cls(b"\x01" + encode_uvarint(codec) + mh, 1, codec, hash_code, bytes(digest), mh)

    @classmethod
    def of(cls, data: BytesLike, *, codec: int = RAW, hash_code: int = SHA2_256, version: int = 1) -> Cid:
        """The CID of ``data`` (for writers and tests); raises Unsupported for a hash function we refuse."""
        size = 32 if hash_code != IDENTITY else len(data)
        return cls.create(codec, hash_code, hash_digest(hash_code, size, data), version=version)

    @classmethod
    def decode(cls, buf: BytesLike, pos: int = 0, end: int | None = None) -> tuple[Cid, int]:
        """Parse the binary CID at ``buf[pos:end]``: ``(cid, next_pos)``. Raises InvalidCid (also if truncated)."""
        if end is None:
            end = len(buf)
        if end - pos >= 4 and buf[pos] == 1 and buf[pos + 1] < 0x80 and buf[pos + 2] < 0x80 and buf[pos + 3] < 0x80:
            # Fast path: CIDv1 whose codec, hash code and length are one-byte varints (raw/dag-pb + sha2-256 …).
            stop = pos + 4 + buf[pos + 3]
            if stop > end:
                raise InvalidCid("truncated CID digest")
            binary = bytes(buf[pos:stop])
            return cls(binary, 1, binary[1], binary[2], binary[4:], binary[2:]), stop
        try:
            if end - pos >= 2 and buf[pos] == SHA2_256 and buf[pos + 1] == 32:
                if end - pos < 34:
                    raise InvalidCid("truncated CIDv0")
                mh = bytes(buf[pos : pos + 34])
                return cls(mh, 0, DAG_PB, SHA2_256, mh[2:], mh), pos + 34
            version, p = _need(read_uvarint(buf, pos, end))
            if version != 1:
                raise InvalidCid(f"CID version {version} is not defined" if version != 0 else "malformed CIDv0")
            codec, p = _need(read_uvarint(buf, p, end))
            mh_start = p
            hash_code, p = _need(read_uvarint(buf, p, end))
            size, p = _need(read_uvarint(buf, p, end))
        except ValueError as exc:
            raise InvalidCid(f"malformed binary CID: {exc}") from None
        if size > DIGEST_BYTES_MAX:
            raise InvalidCid(f"digest of {size} bytes (at most {DIGEST_BYTES_MAX})")
        if end - p < size:
            raise InvalidCid("truncated CID digest")
        stop = p + size
        digest = bytes(buf[p:stop])
        return cls(bytes(buf[pos:stop]), 1, codec, hash_code, digest, bytes(buf[mh_start:stop])), stop

    @classmethod
    def parse(cls, value: str | BytesLike) -> Cid:
        """Parse a text CID (any multibase ``multiformats`` knows, or a ``Qm…`` CIDv0) or a binary one.

        Checks syntax only; see :func:`parse_cid` for what we can serve. Raises InvalidCid.
        """
        if isinstance(value, str):
            text = value.strip()
            if not text:
                raise InvalidCid("empty CID")
            if len(text) > CID_TEXT_CHARS_MAX:
                raise InvalidCid(f"CID text longer than {CID_TEXT_CHARS_MAX} characters")
            # CIDv0 text is bare base58btc (no multibase prefix); every other CID text is multibase.
            encoded = "z" + text if len(text) == 46 and text.startswith("Qm") else text
            try:
                binary = bytes(multibase.decode(encoded))
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise InvalidCid(f"malformed CID {text[:80]!r}: {exc}") from None
            if binary[:1] == b"\x12" and encoded == text:
                raise InvalidCid(f"malformed CID {text[:80]!r}: a CIDv0 must be written in base58btc as Qm...")
        else:
            binary = bytes(value)
        cid, end = cls.decode(binary)
        if end != len(binary):
            raise InvalidCid(f"{len(binary) - end} trailing bytes after the CID")
        return cid


@dataclass(frozen=True, slots=True)
class Block:
    """A block whose bytes were checked against its CID. Only :func:`verify_block` and :func:`inline_block`
    make them, so code that receives a ``Block`` need not hash it again."""

    cid: Cid
    data: bytes


def parse_cid(text: str) -> Cid:
    """Parse a CID from a request and check that we can serve it (raw or dag-pb, a hash we accept).

    Raises InvalidCid, with a message fit for a 400 response.
    """
    cid = Cid.parse(text)
    if cid.codec not in SUPPORTED_CODECS:
        raise InvalidCid(f"CID {cid} has codec {cid.codec_name}; only raw and dag-pb (UnixFS) are served")
    try:
        check_supported(cid)
    except Unsupported as exc:
        raise InvalidCid(str(exc)) from None
    return cid


def check_supported(cid: Cid) -> None:
    """Raise Unsupported unless blocks named by ``cid`` can be verified (hash function and digest length)."""
    _hasher(cid.hash_code, len(cid.digest))


def hash_digest(hash_code: int, size: int, data: BytesLike) -> bytes:
    """The raw digest of ``data`` for a multihash function, ``size`` bytes long; raises Unsupported."""
    return _hasher(hash_code, size)(data)


def verify_block(cid: Cid, data: BytesLike) -> Block:
    """Check that ``data`` hashes to ``cid``'s digest; return it as a verified Block.

    Raises BlockMismatch (naming the CID) when it doesn't, Unsupported for a hash function we refuse.
    """
    if _hasher(cid.hash_code, len(cid.digest))(data) != cid.digest:
        raise BlockMismatch(cid, f"{len(data)} bytes hash to something else")
    return Block(cid, data if isinstance(data, bytes) else bytes(data))


def inline_block(cid: Cid) -> Block | None:
    """The block of an identity CID (its digest), or None for any other CID."""
    if cid.hash_code != IDENTITY:
        return None
    return Block(cid, cid.digest)


# -- internals ----------------------------------------------------------------------------------------------------


def _need(result: tuple[int, int] | None) -> tuple[int, int]:
    if result is None:
        raise InvalidCid("truncated binary CID")
    return result


@functools.lru_cache(maxsize=256)
def _codec_name(code: int) -> str:
    try:
        return str(multicodec.get(code=code).name)
    except (KeyError, ValueError):
        return f"0x{code:x}"


@functools.lru_cache(maxsize=256)
def _hasher(hash_code: int, size: int) -> Callable[[BytesLike], bytes]:
    name = _codec_name(hash_code)
    if hash_code == IDENTITY:
        if size > DIGEST_BYTES_MAX:
            raise Unsupported(f"identity CID of {size} bytes (at most {DIGEST_BYTES_MAX})")
        return bytes
    if hash_code in _REFUSED_HASHES:
        raise Unsupported(f"hash function {_REFUSED_HASHES[hash_code]}; not accepted")
    if size < DIGEST_BYTES_MIN:
        raise Unsupported(f"{name} digest of {size} bytes is too short to trust (at least {DIGEST_BYTES_MIN})")
    if size > DIGEST_BYTES_MAX:
        raise Unsupported(f"{name} digest of {size} bytes (at most {DIGEST_BYTES_MAX})")
    if hash_code == SHA2_256 and size == 32:
        return lambda data: hashlib.sha256(data).digest()
    if hash_code == BLAKE3:
        return lambda data: blake3.blake3(data).digest(length=size)
    try:
        mh = multihash.get(code=hash_code)
        if not mh.is_cryptographic:
            raise Unsupported(f"hash function {name} is not cryptographic; not accepted")
        function, size_max = mh.implementation
    except (KeyError, ValueError, ImportError) as exc:
        raise Unsupported(f"hash function {name} is not available on this node ({exc})") from None
    if size_max is not None and size > size_max:
        raise Unsupported(f"{name} digest of {size} bytes (its digests have at most {size_max})")

    def digest(data: BytesLike) -> bytes:
        return bytes(function(data, size))

    try:
        digest(b"")
    except (ValueError, ImportError) as exc:
        raise Unsupported(f"hash function {name} is not available on this node ({exc})") from None
    return digest
