"""Output queued for a peer that does not read stays bounded per connection,
and such a peer is closed by the idle timer: a burst of small requests with
1 MiB answers, over a real socket, from a client that never reads."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, encode
from pyrocket.protocol.frame import MAX_HEADER_SIZE
from pyrocket.protocol.headers import GetKVConfigRequestHeader, PutKVConfigRequestHeader
from pyrocket.remoting import (
    Connection,
    ConnectionListener,
    RemotingClient,
    RemotingServer,
    ServerConfig,
)
from pyrocket.remoting.connection import HIGH_WATER
from tests.namesrv.helpers import address, namesrv_config, running_namesrv
from tests.remoting.helpers import running_server, wait_until

BIG_CODE = 101  # GET_KV_CONFIG's code: a small request, a large answer
VALUE = b"v" * (1024 * 1024)
#: What one connection may hold queued: the high-water mark plus one answer.
BOUND = HIGH_WATER + len(VALUE) + 64 * 1024


def plain_big(conn: Connection, request: RemotingCommand) -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SUCCESS, body=VALUE)


async def async_big(conn: Connection, request: RemotingCommand) -> RemotingCommand:
    await trio.lowlevel.checkpoint()
    # A fresh body per answer, as a message read from the store would be.
    return RemotingCommand.response(ResponseCode.SUCCESS, body=bytes(VALUE))


def burst(size: int) -> tuple[bytes, int]:
    """Small requests for BIG_CODE filling ``size`` bytes; and their count."""
    frames: list[bytes] = []
    total = 0
    opaque = 0
    while total < size:
        opaque += 1
        frame = encode(RemotingCommand(BIG_CODE, opaque, 0, ext_fields={"key": "k"}))
        frames.append(frame)
        total += len(frame)
    return b"".join(frames), opaque


class IdleWatch(ConnectionListener):
    def __init__(self) -> None:
        self.idle: list[Connection] = []

    async def on_idle(self, conn: Connection) -> None:
        self.idle.append(conn)


@pytest.mark.parametrize("processor", [plain_big, async_big], ids=["plain", "coroutine"])
async def test_a_peer_that_does_not_read_costs_a_bounded_output_queue(processor: object) -> None:
    watch = IdleWatch()
    server = RemotingServer(ServerConfig(channel_max_idle_seconds=1.0), listener=watch)
    server.register_processor(BIG_CODE, processor)  # type: ignore[arg-type]
    data, count = burst(64 * 1024)
    assert count > 200  # the burst asks for hundreds of MiB of answers
    with trio.fail_after(30):
        async with running_server(server) as addr:
            host, port = addr.rsplit(":", 1)
            sock = trio.socket.socket()
            # A small receive buffer: the kernel holds little on our side.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            await sock.connect((host, int(port)))
            stream = trio.SocketStream(sock)
            async with stream:
                await stream.send_all(data)
                await wait_until(lambda: len(server.connections) == 1)
                (conn,) = server.connections
                # The server answers what fits, then waits; it never queues much.
                while conn.is_open:
                    assert conn.queued_output_bytes <= BOUND
                    await trio.sleep(0.01)
                await conn.wait_closed()
                assert conn.queued_output_peak <= BOUND
                assert conn.queued_output_peak > 0
                # The idle timer closed it (the peer never read).
                await wait_until(lambda: watch.idle == [conn])


async def test_a_nameserver_peer_bursting_get_kv_config_without_reading(tmp_path: Path) -> None:
    config = namesrv_config(tmp_path, server_channel_max_idle_time_seconds=1)
    # KV values travel in the header, so the largest is bounded by it.
    value = "v" * (MAX_HEADER_SIZE - 4096)
    with trio.fail_after(30):
        async with running_namesrv(config=config) as ns, RemotingClient() as client:
            put = RemotingCommand.request(
                RequestCode.PUT_KV_CONFIG, PutKVConfigRequestHeader("NS", "big", value)
            )
            answer = await client.invoke_sync(address(ns), put, 5)
            assert answer.code == ResponseCode.SUCCESS
            frames = [
                encode(
                    RemotingCommand.request(
                        RequestCode.GET_KV_CONFIG, GetKVConfigRequestHeader("NS", "big")
                    ).replace(opaque=n)
                )
                for n in range(1, 1001)
            ]
            data = b"".join(frames)[: 64 * 1024]
            sock = trio.socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            await sock.connect(("127.0.0.1", ns.port))
            async with trio.SocketStream(sock) as stream:
                await stream.send_all(data)
                # The connection that queued a 1 MiB answer (not the client's).
                await wait_until(
                    lambda: any(c.queued_output_peak > len(value) for c in ns.server.connections)
                )
                (conn,) = [c for c in ns.server.connections if c.queued_output_peak > len(value)]
                while conn.is_open:
                    assert conn.queued_output_bytes <= BOUND
                    await trio.sleep(0.01)
                assert conn.queued_output_peak <= BOUND


async def later_big(conn: Connection, request: RemotingCommand) -> None:
    # Answers later, through send, as a held pull does.
    await trio.lowlevel.checkpoint()
    answer = RemotingCommand.response(ResponseCode.SUCCESS, body=VALUE)
    await conn.send(answer.answering(request))


async def test_answers_sent_later_wait_before_they_are_queued() -> None:
    server = RemotingServer(ServerConfig(channel_max_idle_seconds=1.0))
    server.register_processor(BIG_CODE, later_big)
    data, _ = burst(16 * 1024)
    with trio.fail_after(30):
        async with running_server(server) as addr:
            host, port = addr.rsplit(":", 1)
            sock = trio.socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            await sock.connect((host, int(port)))
            async with trio.SocketStream(sock) as stream:
                await stream.send_all(data)
                await wait_until(lambda: len(server.connections) == 1)
                (conn,) = server.connections
                await conn.wait_closed()
                assert 0 < conn.queued_output_peak <= BOUND
