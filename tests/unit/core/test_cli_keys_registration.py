"""``lightning keys registration``: the printed blob verifies, names the home's keys and config, and registers the node
on a chain only for the ``--owner`` it names (run through the real entry point, in process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning.bootstrap import init_home
from lightning.cli.main import main
from lightning.home import Home
from lightning.state.records import Ports
from lightning.state.registration import RegistrationWrongChain, verify_registration
from lightning.state.store import StateStore
from lightning.testing.devchain import CHAIN_ID, DevChain


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def home(tmp_path: Path) -> Home:
    h = Home(tmp_path / "h")
    init_home(h, dev=False, force=False)
    return h


def test_the_printed_blob_registers_the_node_for_its_owner_only(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = DevChain.create(nodes=1, accounts=2)
    owner, other = chain.accounts
    code, out, err = cli(
        capsys, "keys", "registration", "--home", str(home.root), "--owner", owner.public.hex,
        "--host", "node.example.org", "--chain-id", str(CHAIN_ID),
    )  # fmt: skip
    assert code == 0, err
    keys = home.load_keys()
    blob = bytes.fromhex(out.strip())
    reg = verify_registration(blob, chain_id=CHAIN_ID)
    assert (reg.node, reg.consensus_key, reg.owner, reg.host, reg.seq) == (
        keys.node_id,
        keys.consensus.public.raw,
        owner.public.raw,
        "node.example.org",
        1,
    )
    assert reg.ports == Ports(4300, 4220, 4350, 4240)  # the config's ports
    assert f"registration of node {keys.node_id}" in err and "seq 1" in err
    with pytest.raises(RegistrationWrongChain):
        verify_registration(blob, chain_id=CHAIN_ID + 1)

    with StateStore(tmp_path / "state", map_size=1 << 28, sync=False) as store:
        store.initialize(chain.genesis)
        nid = keys.node_id
        stolen = chain.sign(other, "stake", node=nid, amount=10**18, registration=blob)
        (r,) = chain.apply(store, [stolen]).receipts
        assert r.status == "reverted" and "names owner" in r.reason
        with store.view() as v:
            assert v.node(nid) is None
        (r,) = chain.apply(store, [chain.sign(owner, "stake", node=nid, amount=10**18, registration=blob)]).receipts
        assert r.status == "ok", r.reason
        with store.view() as v:
            n = v.node(nid)
            assert n is not None and n.owner == owner.public.raw and n.host == "node.example.org"


def test_flags_override_the_config(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    owner20 = "ab" * 20  # an Ethereum-style address
    code, out, err = cli(
        capsys, "keys", "registration", "--home", str(home.root), "--owner", owner20, "--host", "10.1.2.3",
        "--quic-port", "5300", "--http-port", "5220", "--pinger-port", "5350", "--rpc-port", "0", "--seq", "4",
        "--chain-id", "9",
    )  # fmt: skip
    assert code == 0, err
    reg = verify_registration(bytes.fromhex(out.strip()), chain_id=9)
    assert (reg.owner.hex(), reg.host, reg.ports, reg.seq) == (owner20, "10.1.2.3", Ports(5300, 5220, 5350, 0), 4)


@pytest.mark.parametrize(
    ("args", "code", "reason"),
    [
        (("--owner", "ab" * 32, "--chain-id", "7"), 1, "pass --host"),  # listen_host is 0.0.0.0 after `init`
        (("--owner", "ab" * 32, "--host", "10.0.0.1"), 1, "no genesis file to read the chain id from; pass --chain-id"),
        (("--owner", "zz", "--host", "10.0.0.1", "--chain-id", "7"), 2, "'zz' is not hex"),  # a bad value: usage
        (("--owner", "ab" * 32, "--host", "not a host", "--chain-id", "7"), 1, "neither an IP address nor a host name"),
    ],
)
def test_errors_say_what_to_do(
    home: Home, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], code: int, reason: str
) -> None:
    got, out, err = cli(capsys, "keys", "registration", "--home", str(home.root), *args)
    assert got == code and out == "" and reason in err
