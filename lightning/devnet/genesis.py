"""``lightning dev genesis``: keys, homes and one shared genesis for an N-node local network.

Layout under ``out``::

    out/cluster.json         manifest: nodes (name, home, node id, host, ports), faucet address, chain id
    out/faucet.key           the faucet account's key (0600)
    out/node-1/ … node-N/    full homes: config.toml, genesis.toml, keystore/

Locally node k binds 127.0.0.k (``host_base`` + k - 1) on the default ports, so every node has the same ports; for
docker compose (``compose=True``) node k is the service ``node-k`` and binds 0.0.0.0.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from lightning.config import Config, NodeConfig, dump_toml
from lightning.crypto import SigningKey
from lightning.errors import LightningError
from lightning.genesis import GenesisAccount, GenesisNode, GenesisParams, render_genesis
from lightning.home import Home, Keys, atomic_write
from lightning.http.config import HttpConfig
from lightning.rpc.config import RpcConfig

__all__ = ["ClusterLayout", "DevnetError", "NodeLayout", "make_cluster"]

DEV_CHAIN_ID = 1337
NODE_BALANCE = "100000 FLK"
FAUCET_BALANCE = "1000000000 FLK"


class DevnetError(LightningError):
    """Bad cluster parameters or an unusable output directory."""


@dataclass(frozen=True)
class NodeLayout:
    name: str
    home: Path
    node_id: str
    host: str  # what peers dial
    listen_host: str
    rpc_host: str
    http_port: int
    rpc_port: int
    quic_port: int
    committee: bool


@dataclass(frozen=True)
class ClusterLayout:
    root: Path
    chain_id: int
    faucet: str
    nodes: tuple[NodeLayout, ...]

    @classmethod
    def load(cls, root: Path) -> ClusterLayout:
        try:
            data = json.loads((root / "cluster.json").read_text())
            nodes = tuple(NodeLayout(**{**n, "home": Path(n["home"])}) for n in data["nodes"])
            return cls(root, int(data["chain_id"]), str(data["faucet"]), nodes)
        except FileNotFoundError:
            raise DevnetError(
                f"{root}: no cluster.json; generate one with `lightning dev genesis --out {root}`"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise DevnetError(f"{root / 'cluster.json'}: unreadable manifest ({exc})") from None

    def save(self) -> None:
        data = {
            "chain_id": self.chain_id,
            "faucet": self.faucet,
            "nodes": [{**dataclasses.asdict(n), "home": str(n.home)} for n in self.nodes],
        }
        atomic_write(self.root / "cluster.json", json.dumps(data, indent=2).encode() + b"\n")


def node_hosts(n: int, host_base: str) -> list[str]:
    try:
        base = ipaddress.IPv4Address(host_base)
    except ValueError:
        raise DevnetError(f"--host-base: {host_base!r} is not an IPv4 address") from None
    hosts = [base + k for k in range(n)]
    if not all(h.is_loopback for h in hosts) and base.is_loopback:
        raise DevnetError(f"--host-base {host_base}: {n} nodes run past the loopback range")
    return [str(h) for h in hosts]


def make_cluster(
    out: Path,
    *,
    nodes: int,
    committee: int,
    host_base: str = "127.0.0.1",
    compose: bool = False,
    http_port: int = 4220,
    rpc_port: int = 4240,
    quic_port: int = 4300,
    epoch_time_ms: int = 24 * 3600 * 1000,
    genesis_time_ms: int | None = None,
) -> ClusterLayout:
    """Write homes and a shared genesis for ``nodes`` nodes, the first ``committee`` of them the genesis committee.

    Raises :class:`DevnetError` for impossible parameters or a non-empty ``out``."""
    if nodes < 1:
        raise DevnetError("--nodes: need at least 1 node")
    for option, port, lowest in (
        ("--http-port", http_port, 1),
        ("--rpc-port", rpc_port, 0),
        ("--quic-port", quic_port, 1),
    ):
        if not lowest <= port <= 65535:  # an RPC port of 0 publishes none (docs/genesis.md)
            raise DevnetError(f"{option}: {port} is not a port a genesis can publish ({lowest}..65535)")
    if not 1 <= committee <= nodes:
        raise DevnetError(f"--committee: must be between 1 and the number of nodes ({nodes}), got {committee}")
    if out.exists() and any(out.iterdir()):
        raise DevnetError(f"{out}: not empty; choose another --out or remove it")
    hosts = [f"node-{k + 1}" for k in range(nodes)] if compose else node_hosts(nodes, host_base)
    out.mkdir(parents=True, exist_ok=True)
    faucet = SigningKey.generate()
    atomic_write(out / "faucet.key", faucet.seed.hex().encode() + b"\n", mode=0o600)

    keys = [Keys.generate() for _ in range(nodes)]
    params = GenesisParams(committee_size=committee, epoch_time_ms=epoch_time_ms)
    genesis_nodes = [
        GenesisNode(
            node_key=k.node.public.hex,
            consensus_key=k.consensus.public.hex,
            owner=k.account.public.hex,
            host=host,
            quic_port=quic_port,
            http_port=http_port,
            rpc_port=rpc_port,
            stake=params.min_stake,
            committee=i < committee,
        )
        for i, (k, host) in enumerate(zip(keys, hosts, strict=True))
    ]
    accounts = [GenesisAccount(address=faucet.public.hex, balance=FAUCET_BALANCE)] + [
        GenesisAccount(address=k.account.public.hex, balance=NODE_BALANCE) for k in keys
    ]
    genesis_text = render_genesis(
        chain_id=DEV_CHAIN_ID,
        genesis_time_ms=int(time.time() * 1000) if genesis_time_ms is None else genesis_time_ms,
        nodes=genesis_nodes,
        accounts=accounts,
        params=params,
        faucet=faucet.public.hex,
        governance=faucet.public.hex,
    )
    layouts = []
    for i, (k, host) in enumerate(zip(keys, hosts, strict=True)):
        name = f"node-{i + 1}"
        home = Home((out / name).absolute())
        bind = "0.0.0.0" if compose else host
        config = dataclasses.replace(
            Config(),
            node=NodeConfig(listen_host=bind, rpc_host=bind),
            http=HttpConfig(port=http_port),
            rpc=RpcConfig(port=rpc_port),
            net=dataclasses.replace(Config().net, port=quic_port),
        )
        home.ensure_dirs()
        home.write_keys(k)
        home.config_path.write_text(dump_toml(config))
        home.genesis_path(config.node.genesis).write_text(genesis_text)
        layouts.append(
            NodeLayout(name, home.root, str(k.node_id), host, bind, bind, http_port, rpc_port, quic_port, i < committee)
        )
    layout = ClusterLayout(out.absolute(), DEV_CHAIN_ID, faucet.public.hex, tuple(layouts))
    layout.save()
    os.chmod(out / "faucet.key", 0o600)
    return layout
