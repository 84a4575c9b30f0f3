"""Text forms of network addresses, and the one wording of a failed bind (HTTP, RPC, QUIC, pinger)."""

from __future__ import annotations

import errno
import socket

__all__ = ["bind_error_message", "join_host_port"]


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets (``[::1]:4300``), as URLs and ``NODE_ID@HOST:PORT`` want it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# socket name -> (its `lightning run` port option, its config key, the host option and key it binds)
_SETTINGS: dict[str, tuple[str | None, str | None, str, str]] = {
    "http": ("--http-port", "http.port", "--listen-host", "node.listen_host"),
    "client": ("--http-port", "http.port", "--listen-host", "node.listen_host"),  # the client endpoint's HTTP
    "rpc": ("--rpc-port", "rpc.port", "--rpc-host", "node.rpc_host"),
    "quic": ("--quic-port", "net.port", "--listen-host", "node.listen_host"),
    "pinger": ("--pinger-port", "pinger.port", "--listen-host", "node.listen_host"),
}


def bind_error_message(name: str, host: str, port: int, exc: OSError, *, udp: bool = False) -> str:
    """One line for a socket ``name`` (``client``/``http``, ``rpc``, ``quic``, ``pinger``) that could not bind
    ``host:port``: what happened and what to do, naming the ``lightning run`` option and config key that choose
    another port or host (every endpoint says it the same way).

    >>> import errno
    >>> print(bind_error_message("quic", "::1", 4300, OSError(errno.EADDRINUSE, "in use"), udp=True))
    ... # doctest: +NORMALIZE_WHITESPACE
    quic: cannot bind [::1]:4300/udp: the port is already in use (another node or program?); stop it, or configure
    another port: --quic-port N (0 = any free port) or net.port in config.toml
    """
    where = join_host_port(host, port) + ("/udp" if udp else "")
    default = (None, None, "--listen-host", "node.listen_host")
    port_option, port_key, host_option, host_key = _SETTINGS.get(name, default)
    if port_option and port_key:
        other_port = f"configure another port: {port_option} N (0 = any free port) or {port_key} in config.toml"
    else:
        other_port = f"configure another port for the {name}"
    other_host = f"check the configured host ({host_option} or {host_key} in config.toml)"
    if isinstance(exc, socket.gaierror):
        why = f"cannot resolve the host ({exc.strerror}); {other_host}"
    elif exc.errno == errno.EADDRINUSE:
        why = f"the port is already in use (another node or program?); stop it, or {other_port}"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"the address is not on this machine; {other_host}"
    elif exc.errno == errno.EACCES:
        why = f"permission denied (ports below 1024 need privileges); {other_port}"
    else:
        why = exc.strerror or str(exc)
    verb = "cannot bind" if udp else "cannot listen on"
    return f"{name}: {verb} {where}: {why}"
