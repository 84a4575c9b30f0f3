import multiprocessing
import os
import stat

import pytest

from lightning.bootstrap import init_home
from lightning.home import Home, HomeError, HomeLocked, KeystoreError


def test_init_writes_private_keys(tmp_path):
    home = Home(tmp_path / "h")
    keys = init_home(home, dev=True, force=False)
    assert stat.S_IMODE(home.keystore.stat().st_mode) == 0o700
    for name in ("node", "consensus", "account"):
        assert stat.S_IMODE(home.key_path(name).stat().st_mode) == 0o600
    again = home.load_keys()
    assert again.node_id == keys.node_id
    assert len(str(keys.node_id)) == 64 and str(keys.node_id) == str(keys.node_id).lower()
    assert {keys.node.public, keys.consensus.public, keys.account.public} == {
        again.node.public,
        again.consensus.public,
        again.account.public,
    }


def test_init_refuses_to_overwrite_without_force(tmp_path):
    home = Home(tmp_path / "h")
    first = init_home(home, dev=True, force=False)
    with pytest.raises(HomeError, match="--force"):
        init_home(home, dev=True, force=False)
    assert home.load_keys().node_id == first.node_id
    second = init_home(home, dev=True, force=True)
    assert second.node_id != first.node_id


def _hold_lock(path, ready, release):
    with Home(path).lock():
        ready.set()
        release.wait(30)


def test_force_refuses_while_another_process_holds_the_lock(tmp_path):
    home = Home(tmp_path / "h")
    first = init_home(home, dev=True, force=False)
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(home.root, ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        assert home.is_locked()
        with pytest.raises(HomeLocked, match="in use"):
            init_home(home, dev=True, force=True)
        assert home.load_keys().node_id == first.node_id
    finally:
        release.set()
        proc.join(30)
    assert not home.is_locked()


def test_group_readable_key_is_refused(tmp_path):
    home = Home(tmp_path / "h")
    init_home(home, dev=True, force=False)
    os.chmod(home.key_path("node"), 0o644)
    with pytest.raises(KeystoreError, match="chmod 600"):
        home.load_keys()


def test_missing_and_malformed_keys(tmp_path):
    home = Home(tmp_path / "h")
    init_home(home, dev=True, force=False)
    home.key_path("consensus").write_text("not hex\n")
    with pytest.raises(KeystoreError, match=r"consensus\.key: not a key file"):
        home.load_keys()
    home.key_path("consensus").unlink()
    with pytest.raises(KeystoreError, match=r"consensus\.key: key file missing"):
        home.load_keys()


def test_ports_file_written_atomically(tmp_path):
    home = Home(tmp_path / "h")
    home.ensure_dirs()
    home.write_ports({"http": "127.0.0.1:1", "pid": 5})
    assert home.read_ports() == {"http": "127.0.0.1:1", "pid": 5}
    assert [p.name for p in home.run_dir.iterdir()] == ["ports.json"]
    home.clear_ports()
    assert home.read_ports() is None
