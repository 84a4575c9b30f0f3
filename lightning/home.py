"""The node's home directory: config, genesis, keystore, data, run files, and the lock that keeps one node per home.

Layout::

    <home>/config.toml          node config (see docs/config.md)
    <home>/genesis.toml         the network's genesis
    <home>/keystore/            0700; node.key, consensus.key, account.key (0600, hex seed + newline)
    <home>/data/                LMDB environments
    <home>/run/lock             held (flock) by the running node
    <home>/run/ports.json       bound endpoints and pid, written atomically once the node is ready
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lightning.crypto import SigningKey
from lightning.errors import LightningError
from lightning.ids import NodeId

__all__ = [
    "KEY_NAMES",
    "Home",
    "HomeError",
    "HomeLocked",
    "Keys",
    "KeystoreError",
    "atomic_write",
    "default_home",
]

KEY_NAMES = ("node", "consensus", "account")


class HomeError(LightningError):
    """A home directory that is missing, unusable or in use."""


class HomeLocked(HomeError):
    """Another node process holds this home."""


class KeystoreError(HomeError):
    """A key file that is missing, unreadable, malformed or too open."""


def default_home(dev: bool = False) -> Path:
    env = os.environ.get("LIGHTNING_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / (".lightning-dev" if dev else ".lightning")


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never a torn one (fsync + rename)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True)
class Keys:
    node: SigningKey
    consensus: SigningKey
    account: SigningKey

    @property
    def node_id(self) -> NodeId:
        return NodeId.of(self.node)

    @classmethod
    def generate(cls) -> Keys:
        return cls(SigningKey.generate(), SigningKey.generate(), SigningKey.generate())


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def keystore(self) -> Path:
        return self.root / "keystore"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def ports_path(self) -> Path:
        return self.run_dir / "ports.json"

    @property
    def lock_path(self) -> Path:
        return self.run_dir / "lock"

    def genesis_path(self, configured: str) -> Path:
        p = Path(configured).expanduser()
        return p if p.is_absolute() else self.root / p

    def key_path(self, name: str) -> Path:
        assert name in KEY_NAMES
        return self.keystore / f"{name}.key"

    def exists(self) -> bool:
        return self.config_path.exists()

    def ensure_dirs(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.keystore.mkdir(mode=0o700, exist_ok=True)
            self.data.mkdir(exist_ok=True)
            self.run_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise HomeError(f"{exc.filename}: cannot create directory ({exc.strerror})") from None

    # -- keys ---------------------------------------------------------------------------------------------------
    def write_keys(self, keys: Keys) -> None:
        self.keystore.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.keystore, 0o700)
        for name in KEY_NAMES:
            key: SigningKey = getattr(keys, name)
            atomic_write(self.key_path(name), key.seed.hex().encode() + b"\n", mode=0o600)

    def has_keys(self) -> bool:
        return any(self.key_path(n).exists() for n in KEY_NAMES)

    def load_key(self, name: str) -> SigningKey:
        path = self.key_path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise KeystoreError(
                f"{path}: key file missing; run `lightning init` or `lightning keys generate`"
            ) from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            mode = stat.S_IMODE(st.st_mode)
            raise KeystoreError(f"{path}: key file is open to other users (mode {mode:o}); run `chmod 600 {path}`")
        try:
            text = path.read_text("ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise KeystoreError(f"{path}: cannot read key file ({exc})") from None
        try:
            seed = bytes.fromhex(text)
        except ValueError:
            seed = b""
        if len(seed) != 32:
            raise KeystoreError(f"{path}: not a key file (expected 64 hex digits of an Ed25519 seed)")
        return SigningKey(seed)

    def load_keys(self) -> Keys:
        return Keys(*(self.load_key(n) for n in KEY_NAMES))

    # -- lock ---------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[IO[str]]:
        """Hold the home's lock for the duration; raise :class:`HomeLocked` if another process holds it."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        f = open(self.lock_path, "a+")
        try:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise HomeLocked(
                    f"{self.root}: home is in use by a running node (pid {holder}); stop it first"
                ) from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            yield f
        finally:
            f.close()

    def is_locked(self) -> bool:
        if not self.lock_path.exists():
            return False
        with open(self.lock_path) as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return False

    # -- run files ----------------------------------------------------------------------------------------------
    def write_ports(self, ports: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.ports_path, json.dumps(ports, indent=2, sort_keys=True).encode() + b"\n")

    def read_ports(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.ports_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def clear_ports(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.ports_path.unlink()
