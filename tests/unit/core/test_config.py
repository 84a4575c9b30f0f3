import dataclasses
import tomllib

import pytest

from lightning.bootstrap import single_node_genesis
from lightning.config import Config, ConfigError, dump_toml, load_config, parse_section
from lightning.genesis import load_genesis, parse_genesis
from lightning.home import Keys


def test_defaults_round_trip_through_toml():
    text = dump_toml(Config())
    assert parse_section(Config, tomllib.loads(text)) == Config()


def test_empty_file_gives_defaults(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("")
    assert load_config(p) == Config()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[http]\nport = "abc"', "http.port: expected an integer, got 'abc'"),
        ("[http]\nprot = 1", "http.prot: unknown key"),
        ("[nope]\nx = 1", "nope: unknown key"),
        ("[http]\nport = 70000", "http.port: must be a port number"),
        ("[http]\nport = true", "http.port: expected an integer"),
        ('[log]\nformat = "xml"', "log.format: expected one of 'text', 'json'"),
        ('[node]\nlisten_host = "example.com"', "node.listen_host: must be an IP address"),
        ("[node]\nshutdown_grace_s = -1", "node.shutdown_grace_s: must be greater than 0"),
        ("http = 1", "http: expected a table"),
        ("[rpc]\nmax_headers = 0", "rpc.max_headers: must be greater than 0"),
        ("[http]\nnotsent_lowat_bytes = -1", "http.notsent_lowat_bytes: must be 0 or more"),
        ("[rpc]\nbody_timeout_s = 'slow'", "rpc.body_timeout_s: expected a number"),
    ],
)
def test_bad_values_name_the_key_path(tmp_path, text, fragment):
    p = tmp_path / "config.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(info.value).startswith(str(p) + ": ")
    assert fragment in str(info.value)


def test_bad_toml_names_the_file(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("[http\nport=1")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(p)
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(p)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")


def test_float_fields_accept_integers(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("[http]\nidle_timeout_s = 5\n")
    assert load_config(p).http.idle_timeout_s == 5.0


def _genesis_data(**top):
    keys = Keys.generate()
    data = tomllib.loads(single_node_genesis(keys, Config(), genesis_time_ms=0))
    data.update(top)
    return data


def test_dev_genesis_loads(tmp_path):
    keys = Keys.generate()
    p = tmp_path / "genesis.toml"
    p.write_text(single_node_genesis(keys, Config(), genesis_time_ms=123))
    g = load_genesis(p)
    assert g.chain_id == 1337
    assert [n.node_id for n in g.committee] == [str(keys.node_id)]
    assert g.balances[keys.account.public.hex] == 1_000_000 * 10**18
    assert g.stakes[str(keys.node_id)] == g.min_stake == 1000 * 10**18
    assert g.digest() == load_genesis(p).digest()


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(chain_id=0), "chain_id"),
        (lambda d: d.update(nodes=[]), "at least one node"),
        (lambda d: d["nodes"][0].update(committee=False), "committee = true"),
        (lambda d: d["nodes"][0].update(stake="1 FLK"), "nodes[0].stake: a committee node needs at least 1000 FLK"),
        (lambda d: d["nodes"][0].update(node_key="abc"), "nodes[0]"),
        (lambda d: d["nodes"][0].update(colour="red"), "nodes[0].colour: unknown key"),
        (lambda d: d["accounts"][0].update(balance="-5 FLK"), "accounts[0].balance"),
        (lambda d: d["accounts"][0].update(balance=1.5), "accounts[0].balance"),
        (lambda d: d["params"].update(min_stake="lots"), "params.min_stake"),
        (lambda d: d["nodes"].append(dict(d["nodes"][0])), "appears twice"),
    ],
)
def test_bad_genesis(mutate, fragment):
    data = _genesis_data()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_genesis(data)
    assert fragment in str(info.value)


def test_genesis_amount_forms():
    data = _genesis_data()
    data["accounts"][0]["balance"] = "1000000000000000000000"
    assert parse_genesis(data).balances[data["accounts"][0]["address"]] == 1000 * 10**18
    data["accounts"][0]["balance"] = 7
    assert parse_genesis(data).balances[data["accounts"][0]["address"]] == 7
    data["accounts"][0]["balance"] = "0.5 FLK"
    assert parse_genesis(data).balances[data["accounts"][0]["address"]] == 5 * 10**17


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().http.port = 1  # type: ignore[misc]


def test_documented_example_genesis_loads():
    from pathlib import Path

    g = load_genesis(Path(__file__).parents[3] / "docs" / "genesis.example.toml")
    assert g.chain_id == 7 and len(g.committee) == 4


def test_documented_config_matches_the_defaults():
    from pathlib import Path

    text = (Path(__file__).parents[3] / "docs" / "config.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    assert block == dump_toml(Config()), "docs/config.md is stale: regenerate its block from dump_toml(Config())"


def test_rpc_limits_are_keys_of_its_own_table(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("[rpc]\nmax_body_bytes = 4096\nsend_timeout_s = 5\n[http]\nmax_head_bytes = 8192\n")
    config = load_config(p)
    assert (config.rpc.max_body_bytes, config.rpc.send_timeout_s) == (4096, 5.0)
    assert config.http.max_body_bytes == Config().http.max_body_bytes == 1024 * 1024
    assert (config.http.max_head_bytes, config.rpc.max_head_bytes) == (8192, 16 * 1024)


def test_consensus_config_reaches_the_core_by_field_name():
    from lightning.consensus.config import ConsensusConfig
    from lightning.consensus.core import CoreConfig
    from lightning.consensus.service import core_config

    assert core_config(ConsensusConfig()) == CoreConfig()  # the defaults agree
    assert core_config(ConsensusConfig(view_timeout_s=1.5, view_timeout_max_s=9.0)) == CoreConfig(
        view_timeout_s=1.5, view_timeout_max_s=9.0
    )
