"""The node supervisor: the only module that knows every component and wires them together.

``Node.run`` starts each component in one nursery, in dependency order, with ``await nursery.start(...)``, so the node
is ready only when every component is. An unexpected exception in any component ends the node with
:class:`ComponentCrashed` naming it. ``request_stop`` (SIGINT/SIGTERM, or the admin RPC) cancels the nursery; every
component closes its own resources in ``finally``.

What a node takes from whoever runs it rather than from the machine is its :class:`Runtime`: the network its pool
runs on (QUIC by default; ``lightning/sim/`` passes a simulated network), its wall clock, whether storage runs inline
on the trio thread (simulation under a ``MockClock``), whether it binds its HTTP endpoints, and component
factories (the hook a simulation uses to give one node Byzantine behaviour).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio
from prometheus_client import CollectorRegistry

import lightning
from lightning.blockstore.component import Blockstore
from lightning.broadcast import Broadcast, DebugLog, register_broadcast_rpc
from lightning.chain import (
    EpochDriver,
    Follower,
    Mempool,
    RegistryNodes,
    Sequencer,
    State,
    StateAdmission,
    register_state_rpc,
)
from lightning.chain.component import pause_hook_from_env
from lightning.clock import SystemWallClock, WallClock
from lightning.config import Config
from lightning.consensus.safety import FileSafetyStore
from lightning.consensus.service import Consensus
from lightning.crypto import SigningKey
from lightning.errors import LightningError, leaf_exceptions
from lightning.fetcher import Fetcher, Pointer
from lightning.fetcher.ipfs_origin import IpfsGatewayOrigin
from lightning.fetcher.peer_source import PeerSource
from lightning.fetcher.resolver import Resolver
from lightning.fetcher.url_origin import UrlOrigin
from lightning.genesis import Genesis
from lightning.home import Home, Keys
from lightning.hostport import join_host_port
from lightning.http.endpoint import ClientEndpoint
from lightning.http.server import HttpMetrics
from lightning.ids import NodeId
from lightning.metrics import NodeMetrics, new_registry
from lightning.net import AddressBook, Admission, PeerPool, QuicPool
from lightning.net.content import ContentClient, ContentServer
from lightning.net.duplicate import DuplicateKeyWatch
from lightning.net.rpc import register_net_rpc
from lightning.net.topology import Topology
from lightning.rpc import Dispatcher, RpcEndpoint
from lightning.services import ContentService, ServiceMetrics, VideoService
from lightning.sync import BlockGossip, PoolBlockSource, PoolForwarder, SyncServer, TxServer

__all__ = ["ComponentCrashed", "Network", "Node", "NodeStatus", "PoolSpec", "QuicNetwork", "Runtime"]

logger = logging.getLogger(__name__)

RunFn = Callable[..., Awaitable[Any]]


class ComponentCrashed(LightningError):
    """A component raised unexpectedly (or returned while the node was running)."""

    def __init__(self, component: str, cause: BaseException | None) -> None:
        if cause is None:
            detail = "exited unexpectedly"
        elif isinstance(cause, LightningError):
            detail = str(cause)
        else:
            detail = f"{type(cause).__name__}: {cause}"
        super().__init__(f"component {component!r} failed: {detail}")
        self.component = component


@dataclass(frozen=True)
class PoolSpec:
    """Everything a node's peer pool is built from."""

    config: Config
    node_key: SigningKey
    admission: Admission
    addresses: AddressBook
    registry: CollectorRegistry


class Network(Protocol):
    """Where a node's peer pool runs."""

    def make_pool(self, spec: PoolSpec) -> PeerPool: ...


class QuicNetwork:
    """The production network: QUIC over UDP on the node's ``listen_host``."""

    def make_pool(self, spec: PoolSpec) -> PeerPool:
        return QuicPool(
            spec.config.net,
            spec.node_key,
            host=spec.config.node.listen_host,
            admission=spec.admission,
            addresses=spec.addresses,
            registry=spec.registry,
        )


@dataclass(frozen=True)
class Runtime:
    """What a node takes from whoever runs it (the defaults are a production node's)."""

    network: Network = field(default_factory=QuicNetwork)
    wall_clock: WallClock = field(default_factory=SystemWallClock)
    inline: bool = False  # storage writes on the trio thread (simulation: an autojump clock must not leap past them)
    durable: bool = True  # fsync state commits and consensus votes (a simulation's crashes keep the page cache)
    endpoints: bool = True  # bind the client HTTP and RPC endpoints (a simulation reaches the handlers in memory)
    factories: Mapping[str, Callable[..., Any]] = field(default_factory=dict)  # component name -> its class, replaced


@dataclass(frozen=True)
class NodeStatus:
    version: str
    node_id: str
    chain_id: int
    uptime_s: float
    ready: bool
    peers: int
    epoch: int
    committee: bool
    syncing: bool  # still catching up with the chain (``lightning opt in`` waits for it)
    head_height: int
    best_known_height: int


class Node:
    def __init__(
        self, *, home: Home, config: Config, genesis: Genesis, keys: Keys, runtime: Runtime | None = None
    ) -> None:
        self.home = home
        self.config = config
        self.genesis = genesis
        self.keys = keys
        self.runtime = runtime = runtime or Runtime()
        inline = runtime.inline
        self._started_at: float | None = None
        self._ready = False
        self._stop = trio.Event()

        self.registry = new_registry()
        self.metrics = NodeMetrics(self.registry, node_id=str(keys.node_id), chain_id=genesis.chain_id)
        self.metrics.uptime.set_function(lambda: self.status().uptime_s)
        http_metrics = HttpMetrics(self.registry)

        self.blockstore = Blockstore(config.blockstore, home.data / "blockstore", inline=inline, registry=self.registry)

        self.state = State(
            config.state,
            home.data / "state",
            genesis,
            inline=inline,
            durable=runtime.durable,
            registry=self.registry,
            pause_hook=pause_hook_from_env(),
        )
        # Peer-to-peer: the QUIC pool; peer admission from the state (lightning/chain/admission.py): staked nodes,
        # the allow-list and the committee get their scopes, any other node transactions and sync reads, rate-limited.
        self.addresses = AddressBook.from_genesis(genesis)
        self.admission = StateAdmission(self.state, genesis, config.net.allow)
        self.pool = runtime.network.make_pool(
            PoolSpec(
                config,
                keys.node,
                admission=self.admission,
                addresses=self.addresses,
                registry=self.registry,
            )
        )
        self.duplicate_keys = DuplicateKeyWatch(self.pool, registry=self.registry)  # docs/operator.md, one process
        self.content_server = self._make("content_server", ContentServer)(
            self.pool, self.blockstore, concurrency=config.net.block_serve_concurrency
        )
        self.content_client = ContentClient(self.pool, self.blockstore, concurrency=config.net.block_fetch_concurrency)

        # Application state (lightning/chain/). Transactions are forwarded to the ordering nodes over the pool's TXS
        # scope (lightning/sync/txs.py); who orders and where blocks come from follow the current committee (below).
        wall_clock = runtime.wall_clock
        self.mempool = Mempool(
            self.state,
            config.state,
            node_id=keys.node_id,
            ordering_nodes=self.ordering_nodes,
            forwarder=PoolForwarder(self.pool, registry=self.registry),
            registry=self.registry,
        )
        # Roles follow the current epoch's committee (docs/consensus.md, "Roles"): a committee of several orders by BFT
        # consensus (lightning/consensus/, docs/consensus.md), a one-member committee by the single-node sequencer;
        # both run on every node, each active only in the epochs whose committee it orders and that this node is in.
        # Every node outside the current committee follows: blocks over broadcast, the pool's sync scope as fallback.
        self.sync_server = SyncServer(self.pool, self.state)
        self.tx_server = TxServer(self.pool, self.mempool, registry=self.registry)
        self.consensus = self._make("consensus", Consensus)(
            self.state,
            self.mempool,
            self.pool,
            keys,
            wall_clock,
            FileSafetyStore(home.data / "consensus" / "safety", durable=runtime.durable),
            config=config.consensus,
            inline=inline,
            registry=self.registry,
        )
        self.sequencer = Sequencer(self.state, self.mempool, keys, wall_clock, block_time_s=config.state.block_time_s)
        self.follower = Follower(
            self.state,
            PoolBlockSource(self.pool, self.ordering_nodes),
            node_id=keys.node_id,
            clock=wall_clock,
            orders_here=lambda: self.in_committee,
            quorum_proofs_only=True,  # a one-member committee's block may carry its member's single signature
            wait_turn=lambda: self.gossip.wait_turn(),  # blocks come over broadcast; sync is the fallback
        )
        self.epoch_driver = EpochDriver(self.state, self.mempool, keys.node, wall_clock)

        # Gossip (docs/broadcast.md): the peer set from the topology (genesis nodes, allow-list and staked registered
        # nodes; latencies from the broadcast's pings), signed topic messages deduplicated across restarts.
        def current_epoch() -> int:
            return self.state.epoch() if self.state.running else 0

        known_nodes = RegistryNodes(self.state, genesis, config.net.allow)  # + staked registered nodes, per epoch
        self.topology = Topology(config.topology, keys.node_id, known_nodes, epoch=current_epoch)
        self.broadcast = Broadcast(
            config.broadcast,
            self.pool,
            keys.node,
            chain_id=genesis.chain_id,
            known=known_nodes,
            topology=self.topology,
            wall_clock=wall_clock,
            path=home.data / "broadcast",
            epoch=current_epoch,
            inline=inline,
            probes_per_round=config.topology.probes_per_round,
            registry=self.registry,
        )
        self.broadcast_debug = DebugLog(self.broadcast)
        # Committed blocks over broadcast: proposers publish, edge nodes verify and execute (lightning/sync/gossip.py).
        self.gossip = BlockGossip(
            self.state,
            self.broadcast,
            node_id=keys.node_id,
            registry=self.registry,
            on_verified=self.follower.observe_height,  # the chain's tip as peers show it (``lightning opt in``)
        )
        self.consensus.on_decided = self.gossip.publish  # our own blocks go out when decided, before executing
        # At each epoch change (lightning/chain/hooks.py): the node set from the registry, then the topology from it.
        self.state.epoch_hooks.add(
            "topology", lambda change: (known_nodes.refresh(), self.topology.recompute(change.epoch))
        )
        # Peer admission at each epoch change: close the connections of peers that lost a role (they may reconnect).
        # Not while replaying history: a node catching up would close live connections (maybe to the peer it syncs
        # from) at every past change; each message is still judged by the current levels.
        self.state.epoch_hooks.add(
            "admission", lambda change: None if self.follower.catch_up().syncing else self.pool.recheck()
        )
        # After a restart the first commit shows the current epoch (a no-op when it is unchanged).
        self.state.add_commit_listener(lambda _outcome: self.topology.set_epoch(current_epoch()))

        self.dispatcher = Dispatcher(admin_loopback_only=config.rpc.admin_loopback_only)
        self._register_rpc()
        register_state_rpc(self.dispatcher, self.state, self.mempool)
        register_net_rpc(self.dispatcher, pool=self.pool, content=self.content_client)
        register_broadcast_rpc(self.dispatcher, self.broadcast, self.broadcast_debug)

        # Content: local blockstore → peers → origins (IPFS gateways), merged and queued by the content fetcher.
        # Origin fetches are announced as resolver records so other nodes can fetch from us instead of the origin.
        self.resolver = Resolver(self.broadcast, registry=self.registry, epoch=current_epoch)
        self.content_fetcher = Fetcher(
            config.fetcher,
            self.blockstore,
            [
                PeerSource(self.content_client, self._locate_content),
                *(IpfsGatewayOrigin(gateway) for gateway in config.origin_ipfs.gateways),
                UrlOrigin(config.origin_url),
            ],
            registry=self.registry,
            on_fetched=self._announce_fetched,
        )
        service_metrics = ServiceMetrics(self.registry)
        self.content = ContentService(self.blockstore, fetcher=self.content_fetcher, metrics=service_metrics)
        self.video = VideoService(
            self.blockstore, fetcher=self.content_fetcher, metrics=service_metrics, registry=self.registry
        )
        self.client = ClientEndpoint(
            config.http,
            host=config.node.listen_host,
            health=self.health,
            services={ContentService.service_id: self.content.handle, VideoService.service_id: self.video.handle},
            http_metrics=http_metrics,
        )
        self.rpc = RpcEndpoint(
            config.rpc,
            host=config.node.rpc_host,
            dispatcher=self.dispatcher,
            registry=self.registry,
            health=self.health,
            http_metrics=http_metrics,
        )
        # Dependency order: each starts after the ones before it are ready.
        self._components: list[tuple[str, RunFn]] = [
            ("blockstore", self.blockstore.run),
            ("net", self.pool.run),
            ("topology", self.topology.run),
            ("broadcast", self.broadcast.run),
            ("broadcast-debug", self.broadcast_debug.run),
            ("state", self.state.run),
            ("mempool", self.mempool.run),
            ("consensus", self.consensus.run),
            ("sequencer", self.sequencer.run),
            ("gossip", self.gossip.run),
            ("follower", self.follower.run),
            *([("epoch", self.epoch_driver.run)] if config.state.epoch_driver else []),
            ("resolver", self.resolver.run),
            ("fetcher", self.content_fetcher.run),
            *([("http", self.client.run), ("rpc", self.rpc.run)] if runtime.endpoints else []),
        ]

    def _make(self, name: str, default: Callable[..., Any]) -> Callable[..., Any]:
        """The class that builds component ``name``: the runtime's replacement if it has one (a Byzantine node in a
        simulation), else ``default``."""
        return self.runtime.factories.get(name, default)

    def _announce_fetched(self, pointer: Pointer, root: bytes, source: str) -> None:
        # Only what we verified against the origin ourselves (CID blocks, SRI hash): re-announcing a record we took
        # from a peer would vouch for someone else's claim.
        if pointer.kind != "blake3" and source == "origin":
            self.resolver.announce_nowait(pointer.alias, root)

    def _locate_content(self, pointer: Pointer) -> tuple[bytes, list[NodeId]] | None:
        """Where peers may have content: a blake3 root from connected peers first, then every other known peer;
        an origin pointer from the providers of its resolver record (None: ask the origin)."""
        me = self.keys.node_id
        if pointer.kind == "blake3":
            connected = [p for p in self.pool.peers() if p != me]
            return bytes.fromhex(pointer.key), connected + [
                p for p in self.addresses.peers() if p != me and p not in connected
            ]
        record = self.resolver.lookup(pointer.alias)
        if record is None:
            return None
        root, providers = record
        return root, [p for p in providers if p != me]

    # -- status -------------------------------------------------------------------------------------------------
    def ordering_nodes(self) -> Sequence[NodeId]:
        """The current epoch's committee: where transactions are forwarded and blocks fetched from."""
        return self.state.committee().members

    @property
    def in_committee(self) -> bool:
        """Whether this node is in the current epoch's committee (the genesis committee before the state runs)."""
        if not self.state.running:
            return any(n.node_id == str(self.keys.node_id) for n in self.genesis.committee)
        return self.keys.node_id in self.state.committee().members

    def status(self) -> NodeStatus:
        uptime = 0.0 if self._started_at is None else trio.current_time() - self._started_at
        return NodeStatus(
            version=lightning.__version__,
            node_id=str(self.keys.node_id),
            chain_id=self.genesis.chain_id,
            uptime_s=round(uptime, 3),
            ready=self._ready,
            peers=len(self.pool.peers()),
            epoch=self.state.epoch() if self.state.running else 0,
            committee=self.in_committee,
            **self._catch_up(),
        )

    def _catch_up(self) -> dict[str, Any]:
        if not self.state.running:
            return {"syncing": True, "head_height": 0, "best_known_height": 0}
        return vars(self.follower.catch_up())

    def health(self) -> dict[str, Any]:
        return {"status": "ok" if self._ready else "starting", "node_id": str(self.keys.node_id)}

    def _register_rpc(self) -> None:
        from lightning.rpc.node_rpc import register_node_rpc  # the node's own methods (docs/rpc.md)

        register_node_rpc(self.dispatcher, self)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[dict[str, Any]] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every component until :meth:`request_stop` or cancellation; raises :class:`ComponentCrashed`."""
        self._started_at = trio.current_time()
        try:
            async with trio.open_nursery() as nursery:
                bound: dict[str, Any] = {}
                scopes: list[tuple[str, trio.CancelScope, trio.Event]] = []
                for name, fn in self._components:
                    scope, finished = trio.CancelScope(), trio.Event()
                    bound[name] = await nursery.start(_supervise, name, fn, scope, finished)
                    scopes.append((name, scope, finished))
                ports: dict[str, Any] = {"pid": os.getpid(), "node_id": str(self.keys.node_id)}
                if self.runtime.endpoints:
                    ports |= {  # (host, port) of each bound socket; an IPv6 sockaddr has two more fields
                        "http": join_host_port(*bound["http"][:2]),
                        "rpc": join_host_port(*bound["rpc"][:2]),
                        "quic": join_host_port(*bound["net"][:2]),
                    }
                    self.home.write_ports(ports)
                self._ready = True
                self.metrics.ready.set(1)
                logger.info(
                    "node %s ready in %.3f s (http %s, rpc %s)",
                    self.keys.node_id.short(),
                    trio.current_time() - self._started_at,
                    ports.get("http", "-"),
                    ports.get("rpc", "-"),
                )
                task_status.started(ports)
                await self._stop.wait()
                logger.info("stopping")
                self._ready = False
                # Reverse dependency order: a component stops before the ones it uses (the fetcher before the
                # blockstore it writes to), each within the node's shutdown grace.
                with trio.move_on_after(self.config.node.shutdown_grace_s):
                    for name, scope, finished in reversed(scopes):
                        scope.cancel()
                        await finished.wait()
                        logger.debug("%s stopped", name)
                nursery.cancel_scope.cancel()
        finally:
            self._ready = False
            self.metrics.ready.set(0)
            if self.runtime.endpoints:
                self.home.clear_ports()


async def _supervise(
    name: str,
    fn: RunFn,
    scope: trio.CancelScope,
    finished: trio.Event,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    try:
        with scope:
            await fn(task_status=task_status)
        if scope.cancelled_caught:
            return  # stopped on purpose, in order
    except Exception as exc:  # includes ExceptionGroups from the component's own nurseries
        leaves = leaf_exceptions(exc)
        for leaf in leaves:
            if isinstance(leaf, ComponentCrashed):
                raise leaf from None
        expected = [leaf for leaf in leaves if isinstance(leaf, LightningError)]
        if expected:  # a known failure (port in use, disk full …): its message says it all
            raise ComponentCrashed(name, expected[0]) from exc
        logger.exception("component %s crashed", name)
        raise ComponentCrashed(name, leaves[0]) from exc
    finally:
        finished.set()
    raise ComponentCrashed(name, None)
