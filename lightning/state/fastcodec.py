"""Fast paths of the canonical codec for the executor's hot path; byte-for-byte equal to ``lightning.codec``.

* :func:`encode_fast` is ``codec.encode`` without its generic machinery: maps are written key by key in canonical
  order (by encoded key), scalars by a per-thread msgpack packer, big integers as the codec's ext types.
* :func:`decode_strict` is ``codec.decode`` (canonical bytes only) with :func:`encode_fast` for the re-encoding
  check (``codec.decode_with``): it is used on transactions, which arrive from anyone.

State rows, which this node wrote itself, decode with ``codec.decode_trusted``.
``tests/unit/state/test_state_fastcodec.py`` checks both against the codec on generated values and random bytes.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack

from lightning.codec import (
    EXT_BIG_NEG,
    EXT_BIG_POS,
    MAX_BIG_BYTES,
    MAX_DEPTH,
    MAX_FRAME_BYTES,
    CodecError,
    decode_with,
)

__all__ = ["decode_strict", "encode_fast"]

_FIXEXT = {1: b"\xd4", 2: b"\xd5", 4: b"\xd6", 8: b"\xd7", 16: b"\xd8"}
_local = threading.local()  # a msgpack Packer is not thread-safe: one per thread
_KEYS: dict[Any, bytes] = {}
_ORDERS: dict[tuple[Any, ...], tuple[tuple[bytes, Any], ...]] = {}


def _packer() -> Any:
    pack = getattr(_local, "pack", None)
    if pack is None:
        pack = _local.pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack
    return pack


def _big(v: int) -> bytes:
    magnitude = -v if v < 0 else v
    size = (magnitude.bit_length() + 7) // 8
    if size > MAX_BIG_BYTES:
        raise CodecError(f"integer of {size} bytes exceeds the {MAX_BIG_BYTES}-byte limit")
    code = bytes((EXT_BIG_POS if v > 0 else EXT_BIG_NEG,))
    data = magnitude.to_bytes(size, "big")
    head = _FIXEXT.get(size)
    return (head + code if head is not None else b"\xc7" + bytes((size,)) + code) + data


def _key(k: Any, pack: Any) -> bytes:
    kp = _KEYS.get(k) if type(k) is str else None
    if kp is None:
        if isinstance(k, bytes) and type(k) is not bytes:
            k = bytes(k)  # NodeId/AccountId keys encode as their bytes
        if type(k) not in (str, int, bytes) or (type(k) is int and not -(2**63) <= k < 2**64):
            raise CodecError(f"map key {k!r:.40} is not allowed (str, bytes or a 64-bit integer)")
        kp = _enc(k, pack, 0)
        if type(k) is str and len(_KEYS) < 4096:
            _KEYS[k] = kp
    return kp


def _enc(v: Any, pack: Any, depth: int) -> bytes:
    if depth > MAX_DEPTH:
        raise CodecError(f"value nested deeper than {MAX_DEPTH} levels")
    t = type(v)
    if t is int:
        return pack(v) if -(2**63) <= v < 2**64 else _big(v)
    if t is bytes or t is str or t is bool or v is None:
        return pack(v)  # type: ignore[no-any-return]
    if t is dict:
        names = tuple(v)
        order = _ORDERS.get(names)
        if order is None:
            order = tuple(sorted(((_key(k, pack), k) for k in names), key=lambda pair: pair[0]))
            for i in range(1, len(order)):
                if order[i][0] == order[i - 1][0]:
                    raise CodecError("duplicate map key")
            if len(names) <= 16 and len(_ORDERS) < 4096 and all(type(k) is str for k in names):
                _ORDERS[names] = order  # records and messages reuse a few fixed key sets
        items = [(kp, v[k]) for kp, k in order]
        n = len(items)
        head = (
            bytes((0x80 | n,))
            if n < 16
            else (b"\xde" + n.to_bytes(2, "big") if n < 65536 else b"\xdf" + n.to_bytes(4, "big"))
        )
        return head + b"".join(kp + _enc(x, pack, depth + 1) for kp, x in items)
    if t is list or t is tuple:
        n = len(v)
        head = (
            bytes((0x90 | n,))
            if n < 16
            else (b"\xdc" + n.to_bytes(2, "big") if n < 65536 else b"\xdd" + n.to_bytes(4, "big"))
        )
        return head + b"".join(_enc(x, pack, depth + 1) for x in v)
    if t is float:
        raise CodecError("floats are not allowed in canonical encoding")
    if isinstance(v, bytes | bytearray | memoryview):  # also NodeId/AccountId (bytes subclasses)
        return pack(bytes(v))  # type: ignore[no-any-return]
    raise CodecError(f"type {t.__name__} cannot be encoded")


def encode_fast(value: Any) -> bytes:
    """Exactly ``codec.encode(value)``. Raises :class:`CodecError`."""
    return _enc(value, _packer(), 0)


def decode_strict(raw: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """``codec.decode`` re-encoding with :func:`encode_fast`: the same parsing, limits and messages, so it accepts,
    returns and refuses exactly what the codec does (while ``encode_fast`` equals ``codec.encode``). Raises
    :class:`CodecError`."""
    return decode_with(encode_fast, raw, max_bytes=max_bytes)
