"""``lightning keys registration``: the node's signed registration (docs/wire.md, "Registration"), and the builder
``lightning stake deposit`` uses to put one into a node's first stake.

The blob is signed with the home's node key and consensus key and names the one account that may stake with it
(``--owner``), so it can be handed to a wallet, or pasted anywhere, without letting anyone else register the node.
"""

from __future__ import annotations

from typing import Annotated

import typer

from lightning.cli.common import DevOpt, HomeOpt, resolve_home
from lightning.config import Config, load_config
from lightning.errors import LightningError
from lightning.genesis import load_genesis
from lightning.home import Home
from lightning.ids import AccountId
from lightning.state.records import Ports
from lightning.state.registration import RegistrationError, decode_registration, sign_registration

__all__ = ["config_ports", "home_registration", "keys_registration"]


QuicPortOpt = Annotated[
    int | None, typer.Option(min=1, max=65535, help="QUIC port [default: net.port]", show_default=False)
]
HttpPortOpt = Annotated[
    int | None, typer.Option(min=1, max=65535, help="Client HTTP port [default: http.port]", show_default=False)
]
PingerPortOpt = Annotated[
    int | None, typer.Option(min=1, max=65535, help="Pinger port [default: pinger.port]", show_default=False)
]
RpcPortOpt = Annotated[
    int | None,
    typer.Option(min=0, max=65535, help="Published RPC port, 0: none [default: rpc.port]", show_default=False),
]


def config_ports(
    config: Config,
    *,
    quic: int | None = None,
    http: int | None = None,
    pinger: int | None = None,
    rpc: int | None = None,
) -> Ports:
    """The ports peers reach this node at: the flags given, else the config's. Raises LightningError for port 0."""
    chosen = {
        "quic": (quic, config.net.port, "net.port", "--quic-port"),
        "http": (http, config.http.port, "http.port", "--http-port"),
        "pinger": (pinger, config.pinger.port, "pinger.port", "--pinger-port"),
    }
    out: dict[str, int] = {}
    for name, (flag, configured, key, option) in chosen.items():
        value = configured if flag is None else flag
        if value == 0:
            source = f"config {key} is 0 (any port)" if flag is None else f"{option} 0"
            raise LightningError(f"{source}: a registration names the {name} port peers reach; pass {option} PORT")
        out[name] = value
    return Ports(out["quic"], out["http"], out["pinger"], config.rpc.port if rpc is None else rpc)


def registration_host(config: Config, host: str | None) -> str:
    addr = host or config.node.listen_host
    if addr in ("0.0.0.0", "::"):
        raise LightningError("pass --host: the address peers reach this node at (node.listen_host is a wildcard)")
    return addr


def home_registration(
    home: Home,
    config: Config,
    *,
    owner: bytes,
    chain_id: int,
    host: str | None = None,
    ports: Ports | None = None,
    seq: int = 1,
) -> bytes:
    """The home's node registration blob, signed with its node and consensus keys. Raises LightningError."""
    keys = home.load_keys()
    try:
        return sign_registration(
            keys.node,
            keys.consensus,
            chain_id=chain_id,
            owner=owner,
            host=registration_host(config, host),
            ports=ports or config_ports(config),
            seq=seq,
        )
    except RegistrationError as exc:
        raise LightningError(f"cannot build the registration: {exc}") from None


def keys_registration(
    owner: Annotated[
        str, typer.Option("--owner", help="The account (address) that stakes for this node; only it can use the blob.")
    ],
    home: HomeOpt = None,
    dev: DevOpt = False,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address peers reach this node at [default: node.listen_host]", show_default=False),
    ] = None,
    quic_port: QuicPortOpt = None,
    http_port: HttpPortOpt = None,
    pinger_port: PingerPortOpt = None,
    rpc_port: RpcPortOpt = None,
    seq: Annotated[
        int,
        typer.Option(
            "--seq",
            min=1,
            help="Registration sequence number: 1 for a new node; above the registered one to change host or ports.",
        ),
    ] = 1,
    chain_id: Annotated[
        int | None,
        typer.Option("--chain-id", help="Chain id [default: the home's genesis]", show_default=False, min=0),
    ] = None,
) -> None:
    """Print this node's signed registration (hex) for a wallet's first stake; details go to stderr."""
    try:
        account = AccountId.parse(owner)
    except LightningError as exc:
        raise typer.BadParameter(str(exc), param_hint="--owner") from None
    h = resolve_home(home, dev)
    config = load_config(h.config_path)
    if chain_id is None:
        path = h.genesis_path(config.node.genesis)
        if not path.exists():
            raise LightningError(f"{path}: no genesis file to read the chain id from; pass --chain-id N")
        chain_id = load_genesis(path).chain_id
    ports = config_ports(config, quic=quic_port, http=http_port, pinger=pinger_port, rpc=rpc_port)
    blob = home_registration(h, config, owner=account, chain_id=chain_id, host=host, ports=ports, seq=seq)
    reg = decode_registration(blob).registration
    typer.echo(
        f"registration of node {reg.node.hex()} for owner {account.hex()} on chain {reg.chain_id}: host {reg.host}, "
        f"quic {reg.ports.quic}, http {reg.ports.http}, pinger {reg.ports.pinger}, rpc {reg.ports.rpc or '-'}, "
        f"seq {reg.seq}",
        err=True,
    )
    typer.echo(blob.hex())
