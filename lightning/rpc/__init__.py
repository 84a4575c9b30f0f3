"""JSON-RPC, metrics and health endpoint."""

from lightning.rpc.endpoint import RPC_PATH, RpcEndpoint
from lightning.rpc.jsonrpc import Dispatcher, RpcError, is_loopback

__all__ = ["RPC_PATH", "Dispatcher", "RpcEndpoint", "RpcError", "is_loopback"]
