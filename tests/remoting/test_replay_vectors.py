"""Captured Java 4.7.0 traffic through pyrocket's client and server.

Every well-formed request of every capture is sent by a RemotingClient (with
the command's own serialize type, language and version) to a RemotingServer
whose processor answers with the response Java recorded for it. The server
must see exactly the recorded command and the client must receive exactly the
recorded answer: byte for byte, once the opaques the connection assigned are
mapped back to the recorded ones. Requests the server sent to clients
(NOTIFY_CONSUMER_IDS_CHANGED) go back over the server's end of the connection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.protocol.codes import SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.remoting import ClientConfig, Connection, RemotingClient, RemotingServer, ServerConfig
from tests.remoting.helpers import running_server
from tests.vectorset import Record, pair_requests, read_records, scenario_files

SCENARIOS = scenario_files()


class Answering:
    """A processor that records requests and answers with a preset response."""

    def __init__(self) -> None:
        self.received: list[RemotingCommand] = []
        self.connections: list[Connection] = []
        self.next_answer: RemotingCommand | None = None
        self._arrived = trio.Event()

    async def __call__(self, conn: Connection, request: RemotingCommand) -> RemotingCommand | None:
        self.received.append(request)
        self.connections.append(conn)
        self._arrived.set()
        self._arrived = trio.Event()
        return self.next_answer

    async def wait_for(self, count: int) -> RemotingCommand:
        while len(self.received) < count:
            await self._arrived.wait()
        return self.received[count - 1]


def answering_serialize_type(records: list[Record]) -> SerializeType:
    """The type a capture's answering processes wrote (Java answers in its own)."""
    types = {r.raw["serialize"] for r in records if r.is_frame and r.is_response}
    assert len(types) <= 1, f"answers in several serialize types: {types}"
    return SerializeType[types.pop()] if types else SerializeType.JSON


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
async def test_capture_replays_exactly_through_client_and_server(path: Path) -> None:
    records = read_records(path)
    frames = [r for r in records if r.is_frame]
    by_seq = {r.seq: r for r in frames}
    answer_of = {request.seq: by_seq[seq] for seq, request in pair_requests(records).items()}
    serialize_type = answering_serialize_type(records)

    server_side = Answering()
    client_side = Answering()
    server = RemotingServer(ServerConfig(serialize_type=serialize_type))
    server.register_default_processor(server_side)
    client = RemotingClient(ClientConfig(serialize_type=serialize_type))
    client.register_default_processor(client_side)

    checked = 0
    with trio.fail_after(60):
        async with running_server(server) as addr, client:
            for record in frames:
                if not record.is_request:
                    continue
                request = decode(record.frame)
                answer = answer_of.get(record.seq)
                expected = None if answer is None else decode(answer.frame)
                if record.sender == "client":
                    receiver, count = server_side, len(server_side.received) + 1
                    receiver.next_answer = expected
                    if request.is_oneway:
                        await client.invoke_oneway(addr, request, as_is=True)
                        response = None
                    elif expected is not None:
                        response = await client.invoke_sync(addr, request, 10, as_is=True)
                    else:
                        await client.invoke_async(addr, request, 10, as_is=True)
                        response = None
                else:
                    # Sent by the server over a client's connection.
                    assert server_side.connections, "server request before any connection"
                    conn = server_side.connections[-1]
                    receiver, count = client_side, len(client_side.received) + 1
                    receiver.next_answer = expected
                    if request.is_oneway:
                        await conn.invoke_oneway(request, as_is=True)
                        response = None
                    else:
                        response = await conn.invoke(request, 10, as_is=True)
                seen = await receiver.wait_for(count)
                assert encode(seen.replace(opaque=record.opaque)) == record.frame, record.seq
                if expected is not None:
                    assert answer is not None and response is not None
                    assert response.opaque == seen.opaque
                    assert encode(response.replace(opaque=answer.opaque)) == answer.frame, (
                        answer.seq
                    )
                checked += 1
    assert checked == sum(1 for r in frames if r.is_request)
    assert checked > 0
