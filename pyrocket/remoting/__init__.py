"""trio transport for RocketMQ remoting: servers, clients and their connections.

- :class:`RemotingServer` / :class:`ServerConfig`: accept connections and run
  processors by request code (``serve`` reports its port via ``task_status``).
- :class:`RemotingClient` / :class:`ClientConfig`: connections by address,
  ``invoke_sync`` / ``invoke_async`` / ``invoke_oneway``.
- :class:`Connection`: one connection, the same at both ends; servers call
  clients back through it.
- :class:`ConnectionListener`: connect / close / exception / idle events.
"""

from pyrocket.remoting.client import ClientConfig, RemotingClient
from pyrocket.remoting.connection import (
    Connection,
    ConnectionSettings,
    Permits,
    ResponseCallback,
    ResponseFuture,
)
from pyrocket.remoting.dispatch import (
    OVERLOAD_REMARK,
    REJECT_REQUEST_REMARK,
    Processor,
    ProcessorTable,
    not_supported_remark,
)
from pyrocket.remoting.events import ConnectionEvent, ConnectionListener
from pyrocket.remoting.server import RemotingServer, ServerConfig

__all__ = [
    "OVERLOAD_REMARK",
    "REJECT_REQUEST_REMARK",
    "ClientConfig",
    "Connection",
    "ConnectionEvent",
    "ConnectionListener",
    "ConnectionSettings",
    "Permits",
    "Processor",
    "ProcessorTable",
    "RemotingClient",
    "RemotingServer",
    "ResponseCallback",
    "ResponseFuture",
    "ServerConfig",
    "not_supported_remark",
]
