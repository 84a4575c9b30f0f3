"""The first command's failures: one wording for every bind error (HTTP, RPC, QUIC, pinger) naming the option and
config key that fix it, and the hint listing every taken port at once. Sockets bind 127.0.1.x, never the node's
fixed ports on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import errno
import socket

import pytest

from lightning.bootstrap import dev_config
from lightning.cli.common import taken_ports_hint
from lightning.hostport import bind_error_message

IN_USE = OSError(errno.EADDRINUSE, "Address already in use")


@pytest.mark.parametrize(
    ("name", "option", "key"),
    [
        ("client", "--http-port", "http.port"),
        ("http", "--http-port", "http.port"),
        ("rpc", "--rpc-port", "rpc.port"),
        ("quic", "--quic-port", "net.port"),
    ],
)
def test_a_port_in_use_names_the_option_and_the_key(name: str, option: str, key: str) -> None:
    text = bind_error_message(name, "127.0.0.1", 4300, IN_USE, udp=name == "quic")
    where = "cannot bind 127.0.0.1:4300/udp" if name == "quic" else "cannot listen on 127.0.0.1:4300"
    assert text == (
        f"{name}: {where}: the port is already in use (another node or program?); stop it, or configure another "
        f"port: {option} N (0 = any free port) or {key} in config.toml"
    )


def test_the_pinger_and_unknown_sockets_still_say_what_to_do() -> None:
    text = bind_error_message("pinger", "127.0.0.1", 4350, IN_USE, udp=True)
    assert text.startswith("pinger: cannot bind 127.0.0.1:4350/udp: the port is already in use")
    assert text.endswith("--pinger-port N (0 = any free port) or pinger.port in config.toml")


def test_an_ipv6_host_is_in_brackets() -> None:
    assert bind_error_message("quic", "::1", 4300, IN_USE, udp=True).startswith("quic: cannot bind [::1]:4300/udp: ")
    assert "[fe80::1]:4220" in bind_error_message("client", "fe80::1", 4220, IN_USE)


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (
            OSError(errno.EADDRNOTAVAIL, "x"),
            "the address is not on this machine; check the configured host (--rpc-host",
        ),
        (
            OSError(errno.EACCES, "x"),
            "permission denied (ports below 1024 need privileges); configure another port: --rpc",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            "cannot resolve the host (Name or service not known); check",
        ),
        (OSError(errno.EMFILE, "Too many open files"), "Too many open files"),
    ],
)
def test_other_bind_failures(exc: OSError, says: str) -> None:
    assert says in bind_error_message("rpc", "10.9.9.9", 80, exc)


def test_taken_ports_hint_lists_every_taken_port_and_the_command() -> None:
    host = "127.0.1.41"
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind((host, 0))
        tcp.listen()
        udp.bind((host, 0))
        http, quic = tcp.getsockname()[1], udp.getsockname()[1]
        base = dev_config()
        config = dataclasses.replace(
            base,
            node=dataclasses.replace(base.node, listen_host=host, rpc_host=host),
            http=dataclasses.replace(base.http, port=http),
            rpc=dataclasses.replace(base.rpc, port=0),  # any free port: never taken
            net=dataclasses.replace(base.net, port=quic),
        )
        hint = taken_ports_hint(config, "lightning run --dev")
    assert hint == (
        f"taken here: {http}/tcp, {quic}/udp; to run beside it: `lightning run --dev --http-port 0 --quic-port 0` "
        "(0 = any free port)"
    )
    assert taken_ports_hint(config, "lightning run") == ""  # released: nothing to say
    assert taken_ports_hint(None, "lightning run") == ""
