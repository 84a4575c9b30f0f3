"""Content-Type from a file name or, failing that, from the first bytes (a small, safe sniffer)."""

from __future__ import annotations

import mimetypes

__all__ = ["content_type"]

DEFAULT = "application/octet-stream"

_EXTRA = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".wasm": "application/wasm",
    ".md": "text/markdown; charset=utf-8",
}

_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"#EXTM3U", "application/vnd.apple.mpegurl"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\x00asm", "application/wasm"),
    (4, b"ftyp", "video/mp4"),
]


def content_type(name: str | None, head: bytes) -> str:
    """Guess a Content-Type. Never guesses HTML from bytes (a node must not turn stored data into active content)."""
    if name:
        lower = name.lower()
        for ext, mime in _EXTRA.items():
            if lower.endswith(ext):
                return mime
        guessed, _ = mimetypes.guess_type(lower, strict=False)
        if guessed:
            if guessed.startswith("text/") or guessed in ("application/javascript", "application/json"):
                return f"{guessed}; charset=utf-8"
            return guessed
    for offset, magic, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    if head and _looks_like_text(head):
        return "text/plain; charset=utf-8"
    return DEFAULT


def _looks_like_text(head: bytes) -> bool:
    sample = head[:512]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(sample) - 3  # a multi-byte character cut at the end of the sample
    return True
