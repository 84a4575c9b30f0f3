"""Creating a home: config, keys, and (for ``--dev``) a single-node genesis in which this node is the committee."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from lightning.config import Config, NodeConfig, dump_toml
from lightning.genesis import GenesisAccount, GenesisNode, GenesisParams, load_genesis, render_genesis
from lightning.home import Home, HomeError, Keys

__all__ = ["DEV_CHAIN_ID", "dev_config", "init_home", "single_node_genesis"]

DEV_CHAIN_ID = 1337


def dev_config() -> Config:
    """A dev node binds loopback only."""
    return dataclasses.replace(Config(), node=NodeConfig(listen_host="127.0.0.1", rpc_host="127.0.0.1"))


def single_node_genesis(keys: Keys, config: Config, *, genesis_time_ms: int | None = None) -> str:
    params = GenesisParams(committee_size=1)
    node = GenesisNode(
        node_key=keys.node.public.hex,
        consensus_key=keys.consensus.public.hex,
        owner=keys.account.public.hex,
        host=config.node.listen_host if config.node.listen_host != "0.0.0.0" else "127.0.0.1",
        http_port=config.http.port,
        rpc_port=config.rpc.port,
        stake=params.min_stake,
        committee=True,
    )
    return render_genesis(
        chain_id=DEV_CHAIN_ID,
        genesis_time_ms=int(time.time() * 1000) if genesis_time_ms is None else genesis_time_ms,
        nodes=[node],
        accounts=[GenesisAccount(address=keys.account.public.hex, balance="1000000 FLK")],
        params=params,
        faucet=keys.account.public.hex,
        governance=keys.account.public.hex,
    )


def init_home(home: Home, *, dev: bool, force: bool, genesis_src: Path | None = None) -> Keys:
    """Write config.toml and fresh keys (and a genesis for ``dev`` or from ``genesis_src``).

    Raises :class:`HomeError` if the home already has a config or keys and ``force`` is false, or if a node holds it.
    """
    if not force and (home.exists() or home.has_keys()):
        raise HomeError(f"{home.root}: already initialised; pass --force to overwrite its config and keys")
    home.ensure_dirs()
    with home.lock():  # --force must never pull keys from under a running node
        if genesis_src is not None:
            load_genesis(genesis_src)  # validate before touching anything
        keys = Keys.generate()
        config = dev_config() if dev else Config()
        home.write_keys(keys)
        home.config_path.write_text(dump_toml(config))
        genesis_path = home.genesis_path(config.node.genesis)
        if genesis_src is not None:
            shutil.copyfile(genesis_src, genesis_path)
        elif dev:
            genesis_path.write_text(single_node_genesis(keys, config))
        return keys
