"""The processor table's guard: it sees every request before its processor
(plain or coroutine, registered before or after the guard, the default
one too); a refusal is answered and the processor does not run; the client's
RPC hook changes every request it sends."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel

from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import ClientConfig, Connection, RemotingClient, RemotingServer, ServerConfig
from tests.remoting.helpers import running_server, wait_until

REFUSED = RemotingCommand.response(ResponseCode.NO_PERMISSION, "refused by the guard")


async def test_guard_runs_before_every_processor() -> None:
    server = RemotingServer(ServerConfig())
    ran: list[int] = []

    def plain(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        ran.append(request.code)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def coroutine(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        await trio.lowlevel.checkpoint()
        ran.append(request.code)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    server.register_processor(1000, plain)
    server.register_default_processor(coroutine)

    def guard(conn: Connection, request: RemotingCommand) -> RemotingCommand | None:
        allowed = (request.ext_fields or {}).get("pass") == "yes"
        return None if allowed else REFUSED

    server.processors.set_guard(guard)
    server.register_processor(1001, coroutine, ordered=True)
    with pytest.raises(ValueError, match="already"):
        server.processors.set_guard(guard)

    def mark(request: RemotingCommand) -> RemotingCommand:
        return request.replace(ext_fields={**(request.ext_fields or {}), "pass": "yes"})

    with trio.fail_after(10):
        async with running_server(server) as addr:
            async with RemotingClient(ClientConfig()) as client:
                for code in (1000, 1001, 1002):
                    answer = await client.invoke_sync(addr, RemotingCommand(code=code), 5)
                    assert (answer.code, answer.remark) == (REFUSED.code, REFUSED.remark)
                assert ran == []
            async with RemotingClient(ClientConfig(), rpc_hook=mark) as client:
                for code in (1000, 1001, 1002):
                    answer = await client.invoke_sync(addr, RemotingCommand(code=code), 5)
                    assert answer.code == ResponseCode.SUCCESS
                await client.invoke_oneway(addr, RemotingCommand(code=1000))
                with trio.fail_after(5):
                    await wait_until(lambda: len(ran) >= 4)
    assert sorted(ran) == [1000, 1000, 1001, 1002]


async def test_a_guard_may_answer_later() -> None:
    server = RemotingServer(ServerConfig())

    def plain(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand.response(ResponseCode.SUCCESS, "ran")

    async def slow_verdict(request: RemotingCommand) -> RemotingCommand | None:
        await trio.sleep(0.01)
        return None if request.body == b"ok" else REFUSED

    server.register_processor(1000, plain)
    server.processors.set_guard(lambda conn, request: slow_verdict(request))
    with trio.fail_after(10):
        async with running_server(server) as addr, RemotingClient(ClientConfig()) as client:
            ok = await client.invoke_sync(addr, RemotingCommand(code=1000, body=b"ok"), 5)
            assert (ok.code, ok.remark) == (ResponseCode.SUCCESS, "ran")
            no = await client.invoke_sync(addr, RemotingCommand(code=1000, body=b"no"), 5)
            assert no.remark == REFUSED.remark
