"""The one way the client APIs make a request that must succeed: send it,
wait for the answer, and turn any code but SUCCESS into a ResponseError."""

from __future__ import annotations

from pyrocket.errors import ResponseError
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import RemotingClient


async def invoke_checked(
    client: RemotingClient,
    addr: str | None,
    request: RemotingCommand,
    timeout: float,  # noqa: ASYNC109 (the call's own timeout, as in Java)
    expected: int = ResponseCode.SUCCESS,
) -> RemotingCommand:
    """Send ``request`` to ``addr`` (None: a NameServer) and return the answer.

    Raises ResponseError (the answer's code and remark) when the code is not
    ``expected``, and the remoting errors (RemotingConnectError,
    RemotingTimeoutError, ConnectionClosedError) when no answer comes.
    """
    response = await client.invoke_sync(addr, request, timeout)
    if response.code != expected:
        raise ResponseError(response.code, response.remark)
    return response


__all__ = ["invoke_checked"]
