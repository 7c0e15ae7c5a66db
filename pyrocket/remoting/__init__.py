"""trio transport for RocketMQ remoting: servers, clients and their connections.

- :class:`RemotingServer` / :class:`ServerConfig`: accept connections and run
  processors by request code (``serve`` reports its port via ``task_status``).
- :class:`RemotingClient` / :class:`ClientConfig`: connections by address,
  ``invoke_sync`` / ``invoke_async`` / ``invoke_oneway``; ``addr=None`` means a
  NameServer from ``update_namesrv_addresses``.
- :class:`Connection`: one connection, the same at both ends; servers call
  clients back through its ``invoke`` / ``invoke_async`` / ``invoke_oneway``.
- :class:`ConnectionListener`: connect / close / exception / idle events.

A server::

    async def get_route(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(GetRouteInfoRequestHeader)  # CommandError -> SYSTEM_ERROR
        return RemotingCommand.response(ResponseCode.SUCCESS, body=...)

    server = RemotingServer(ServerConfig(listen_port=9876), listener=housekeeping)
    server.register_processor(RequestCode.GET_ROUTEINFO_BY_TOPIC, get_route)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "0.0.0.0")

A client::

    async with RemotingClient(ClientConfig(), namesrv_addresses=["127.0.0.1:9876"]) as client:
        response = await client.invoke_sync(None, request, timeout=3.0)
        future = await client.invoke_async("127.0.0.1:10911", request, 3.0)
        response = await future

Rules every user should know:

- Timeouts are seconds. Calls return the response whatever its code; they
  raise RemotingTimeoutError, ConnectionClosedError, RemotingConnectError,
  RemotingTooMuchRequestError (all RemotingError).
- The connection assigns opaques and stamps the configured serialize type,
  language and version on what it sends; ``as_is=True`` keeps a request's own.
  Responses always go out in the configured serialize type.
- Processors returning ``None`` send nothing; one that answers later calls
  ``await conn.send(response.answering(request))``. A processor that raises
  gets SYSTEM_ERROR with the error text as remark; the connection stays.
- Coroutine processors run on per-connection workers (concurrently); plain
  functions run inline in the reader (fastest, for quick in-memory work).
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
