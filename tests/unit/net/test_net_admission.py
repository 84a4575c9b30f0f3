"""Admission until the state exists, peer addresses, and the [net] config table."""

from __future__ import annotations

import pytest

from lightning.config import Config, ConfigError, parse_section
from lightning.crypto import SigningKey
from lightning.errors import LightningError
from lightning.genesis import GenesisNode, parse_genesis
from lightning.ids import NodeId
from lightning.net.admission import AddressBook, StaticAdmission, parse_peer_address
from lightning.net.config import NetConfig
from lightning.net.wire import Scope


def _genesis(nodes: list[tuple[SigningKey, bool]]):
    gnodes = [
        GenesisNode(
            node_key=k.public.hex,
            consensus_key=SigningKey.generate().public.hex,
            owner=SigningKey.generate().public.hex,
            host=f"127.0.0.{i + 1}",
            quic_port=4300 + i,
            committee=committee,
        )
        for i, (k, committee) in enumerate(nodes)
    ]
    return parse_genesis(
        {
            "chain_id": 7,
            "genesis_time_ms": 0,
            "nodes": [{f: getattr(n, f) for f in n.__dataclass_fields__} for n in gnodes],
        }
    )


def test_genesis_and_allow_list_admission():
    member, edge, allowed, stranger = (SigningKey.generate() for _ in range(4))
    genesis = _genesis([(member, True), (edge, False)])
    adm = StaticAdmission.from_genesis(genesis, allow=[allowed.public.hex])
    for k in (member, edge, allowed):
        assert adm.admits(NodeId.of(k))
        for scope in (Scope.BROADCAST, Scope.BLOCKS, Scope.SYNC):
            assert adm.allows(NodeId.of(k), scope)
    assert adm.allows(NodeId.of(member), Scope.CONSENSUS)
    assert not adm.allows(NodeId.of(edge), Scope.CONSENSUS) and not adm.allows(NodeId.of(allowed), Scope.CONSENSUS)
    assert not adm.admits(NodeId.of(stranger))
    assert not any(adm.allows(NodeId.of(stranger), s) for s in Scope)

    book = AddressBook.from_genesis(genesis)
    assert book.get(NodeId.of(member)) == ("127.0.0.1", 4300) and book.get(NodeId.of(edge)) == ("127.0.0.2", 4301)
    assert book.get(NodeId.of(stranger)) is None and len(book) == 2


def test_parse_peer_address():
    key = NodeId.of(SigningKey.generate())
    assert parse_peer_address(f"{key.hex()}@127.0.0.2:4300") == (key, ("127.0.0.2", 4300))
    assert parse_peer_address(f"0x{key.hex()}@[::1]:9") == (key, ("::1", 9))
    assert parse_peer_address(f"{key.hex()}@node-1:4300") == (key, ("node-1", 4300))
    for bad in (key.hex(), f"{key.hex()}@host", f"{key.hex()}@host:0", f"{key.hex()}@:1", "abc@host:1"):
        with pytest.raises(LightningError):
            parse_peer_address(bad)


def test_net_config_table():
    cfg = parse_section(Config, {"net": {"port": 0, "datagram_bytes": 1452, "allow": ["AB" * 32]}})
    assert cfg.net.port == 0 and cfg.net.datagram_bytes == 1452 and cfg.net.allow == ("AB" * 32,)
    assert NetConfig().port == 4300
    with pytest.raises(ConfigError, match=r"net\.datagram_bytes"):
        parse_section(Config, {"net": {"datagram_bytes": 1000}})
    with pytest.raises(ConfigError, match=r"net\.allow"):
        parse_section(Config, {"net": {"allow": ["nope"]}})
