"""Download an object from a lightning-py node and keep only bytes verified against its id.

    python examples/verify_download.py ROOT SOURCE OUTPUT

ROOT is the object's id (64 hex digits; not what ``b3sum`` prints, see docs/blockstore-format.md). SOURCE is
either a node's HTTP endpoint (``http://node:4220``; the path ``/services/0/blake3/ROOT`` is added), a full
``http(s)://`` URL, or the path of a proof stream saved to a file. Verified blocks are written to
``OUTPUT.part`` as they arrive; the file is renamed to OUTPUT only once the whole object verified. On failure
the exit status is 1 and ``OUTPUT.part`` holds the verified prefix only.

The verifier is ``lightning/blockstore/verify.py``, which needs nothing but the standard library and
``blake3``: outside this repository, copy that file next to this script and import it as ``verify``.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

try:
    from lightning.blockstore.verify import MEDIA_TYPE, ProofError, ProofStreamDecoder
except ImportError:  # outside the repository: verify.py copied next to this script
    from verify import MEDIA_TYPE, ProofError, ProofStreamDecoder  # type: ignore[no-redef,import-not-found]

CHUNK_BYTES = 65_536
TIMEOUT_S = 30.0


@contextmanager
def open_source(source: str, root_hex: str) -> Iterator[Iterator[bytes]]:
    """Yield an iterator of chunks of the proof stream, from a URL or a local file."""
    if source.startswith(("http://", "https://")):
        url = source if "/blake3/" in source else f"{source.rstrip('/')}/services/0/blake3/{root_hex}"
        request = urllib.request.Request(url, headers={"Accept": MEDIA_TYPE})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            content_type = response.headers.get_content_type()
            if content_type != MEDIA_TYPE:
                raise ProofError(f"{url} answered with {content_type}, not a proof stream ({MEDIA_TYPE})")
            yield iter(lambda: response.read(CHUNK_BYTES), b"")
    else:
        with open(source, "rb") as file:
            yield iter(lambda: file.read(CHUNK_BYTES), b"")


def download(root: bytes, source: str, output: str) -> int:
    """Fetch, verify and write the object; return the number of bytes written."""
    decoder = ProofStreamDecoder(root)
    partial = output + ".part"
    written = 0
    with open_source(source, root.hex()) as chunks, open(partial, "wb") as out:
        for chunk in chunks:
            decoder.receive_data(chunk)
            # Pull blocks one by one so every block verified before an error still reaches the file.
            while (block := decoder.next_block()) is not None:
                out.write(block.data)
                written += len(block.data)
        decoder.finish()
    os.replace(partial, output)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download an object and keep only verified bytes.")
    parser.add_argument("root", help="object id, 64 hex digits")
    parser.add_argument("source", help="node URL (http://node:4220), full URL, or a proof-stream file")
    parser.add_argument("output", help="where to write the verified content")
    args = parser.parse_args(argv)
    try:
        root = bytes.fromhex(args.root)
        if len(root) != 32:
            raise ValueError
    except ValueError:
        print(f"error: {args.root!r} is not an object id (64 hex digits)", file=sys.stderr)
        return 2
    try:
        written = download(root, args.source, args.output)
    except ProofError as error:
        where = "" if error.block_index is None else f" (block {error.block_index})"
        print(f"error: verification failed{where}: {error}", file=sys.stderr)
        print(f"only verified bytes were written, to {args.output}.part", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.output}: {written} bytes verified against {root.hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
