"""RemotingServer and RemotingClient over real sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import random
import socket

import pytest
import trio

from pyrocket.errors import (
    CommandError,
    ConnectionClosedError,
    RemotingConnectError,
    RemotingTimeoutError,
    RemotingTooMuchRequestError,
)
from pyrocket.protocol.codes import LanguageCode, RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.frame import FrameSplitter
from pyrocket.remoting import (
    OVERLOAD_REMARK,
    REJECT_REQUEST_REMARK,
    ClientConfig,
    Connection,
    ConnectionListener,
    RemotingClient,
    RemotingServer,
    ResponseFuture,
    ServerConfig,
)
from pyrocket.remoting.address import split_address
from tests.remoting.helpers import Recorder, echo, running_server, wait_until

ROUTE = RequestCode.GET_ROUTEINFO_BY_TOPIC


def route_request(topic: str = "TopicTest", body: bytes | None = None) -> RemotingCommand:
    return RemotingCommand.request(ROUTE, body=body).replace(ext_fields={"topic": topic})


def echo_server(config: ServerConfig | None = None) -> RemotingServer:
    server = RemotingServer(config)
    server.register_processor(ROUTE, echo)
    return server


async def read_frame(stream: trio.SocketStream, splitter: FrameSplitter) -> RemotingCommand:
    while True:
        payload = splitter.next_frame()
        if isinstance(payload, bytes):
            return decode(len(payload).to_bytes(4, "big") + payload)
        data = await stream.receive_some()
        assert data, "connection closed while waiting for a frame"
        splitter.feed(data)


async def test_sync_round_trip() -> None:
    recorder = Recorder(lambda r: RemotingCommand.response(ResponseCode.SUCCESS, body=r.body))
    server = RemotingServer()
    server.register_processor(ROUTE, recorder)
    with trio.fail_after(10):
        async with running_server(server) as addr, RemotingClient() as client:
            for i in range(3):
                response = await client.invoke_sync(addr, route_request(body=b"x%d" % i), 5)
                assert response.code == ResponseCode.SUCCESS
                assert response.is_response
                assert response.body == b"x%d" % i
            seen = recorder.requests
            assert [r.opaque for r in seen] == [0, 1, 2]  # the connection numbers them
            assert all(r.serialize_type == SerializeType.JSON for r in seen)
            assert all(r.language == LanguageCode.JAVA and r.version == 353 for r in seen)
            assert seen[0].ext_fields == {"topic": "TopicTest"}
            assert list(client.connections) == [addr]


async def test_async_round_trip_awaited_and_with_callback() -> None:
    with trio.fail_after(10):
        async with running_server(echo_server()) as addr, RemotingClient() as client:
            future = await client.invoke_async(addr, route_request("A"), 5)
            response = await future
            assert response.ext_fields == {"topic": "A"}
            assert future.done() and future.result() is response

            completed: list[ResponseFuture] = []
            done = trio.Event()

            def callback(f: ResponseFuture) -> None:
                completed.append(f)
                done.set()

            second = await client.invoke_async(addr, route_request("B"), 5, callback)
            await done.wait()
            assert completed == [second]
            assert second.result().ext_fields == {"topic": "B"}


async def test_oneway_request_gets_no_reply() -> None:
    recorder = Recorder()
    server = RemotingServer()
    server.register_default_processor(recorder)
    with trio.fail_after(10):
        async with running_server(server) as addr:
            # A raw socket shows that nothing comes back for the oneway request.
            host, port = split_address(addr)
            stream = await trio.open_tcp_stream(host, port)
            oneway = route_request().replace(flag=2, opaque=5)
            await stream.send_all(encode(oneway))
            await recorder.wait_for(1)
            assert recorder.requests[0].is_oneway
            with trio.move_on_after(0.3):
                data = await stream.receive_some()
                pytest.fail(f"a oneway request was answered: {data!r}")
            # The connection still answers normal requests afterwards.
            await stream.send_all(encode(route_request().replace(opaque=6)))
            reply = await read_frame(stream, FrameSplitter())
            assert reply.opaque == 6 and reply.code == ResponseCode.SUCCESS
            await stream.aclose()

            async with RemotingClient() as client:
                await client.invoke_oneway(addr, route_request("via-client"))
                requests = await recorder.wait_for(3)
                assert requests[2].is_oneway and requests[2].ext_fields == {"topic": "via-client"}


async def test_thousand_concurrent_calls_on_one_connection_are_matched() -> None:
    rng = random.Random(7)

    async def shuffled_echo(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        # Answer out of order.
        await trio.sleep(rng.random() * 0.02)
        return await echo(conn, request)

    accepted: list[Connection] = []

    class Accepted(ConnectionListener):
        async def on_connect(self, conn: Connection) -> None:
            accepted.append(conn)

    server = RemotingServer(listener=Accepted())
    server.register_processor(ROUTE, shuffled_echo)
    results: dict[int, RemotingCommand] = {}
    with trio.fail_after(30):
        async with running_server(server) as addr, RemotingClient() as client:

            async def call(i: int) -> None:
                results[i] = await client.invoke_sync(addr, route_request(f"t{i}"), 20)

            async with trio.open_nursery() as nursery:
                for i in range(1000):
                    nursery.start_soon(call, i)
            # 1000 first calls at once shared one connect.
            assert len(client.connections) == 1
            assert len(accepted) == 1
            assert client.connections[addr].pending_calls == 0
    assert len(results) == 1000
    for i, response in results.items():
        assert response.code == ResponseCode.SUCCESS
        assert response.ext_fields == {"topic": f"t{i}"}


async def test_timeout_raises_and_the_late_answer_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = trio.Event()

    async def stalled(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        await release.wait()
        return RemotingCommand.response(ResponseCode.SUCCESS, "late")

    server = echo_server()
    server.register_processor(RequestCode.REGISTER_BROKER, stalled)
    with trio.fail_after(10):
        async with running_server(server) as addr, RemotingClient() as client:
            with pytest.raises(RemotingTimeoutError):
                await client.invoke_sync(addr, RemotingCommand.request(103), 0.2)
            conn = client.connections[addr]
            assert conn.pending_calls == 0
            with caplog.at_level(logging.WARNING, logger="pyrocket.remoting"):
                release.set()
                # The echo answer after it shows the late one was read first.
                assert (await client.invoke_sync(addr, route_request(), 5)).code == 0
            assert "matches no pending request" in caplog.text
            assert client.connections[addr] is conn


async def test_peer_dying_mid_call_fails_pending_calls_promptly() -> None:
    async def die(conn: Connection, request: RemotingCommand) -> None:
        conn.close()

    server = echo_server()
    server.register_processor(RequestCode.REGISTER_BROKER, die)
    with trio.fail_after(5):
        async with running_server(server) as addr, RemotingClient() as client:
            waiting = await client.invoke_async(addr, route_request(), 60)
            with trio.fail_after(2):
                # A 60 s call fails as soon as the connection drops.
                with pytest.raises(ConnectionClosedError):
                    await client.invoke_sync(addr, RemotingCommand.request(103), 60)
                with pytest.raises(ConnectionClosedError):
                    await waiting
            # The next call opens a new connection.
            assert (await client.invoke_sync(addr, route_request(), 5)).code == 0


async def test_client_reconnects_after_a_server_restart() -> None:
    with trio.fail_after(20):
        async with RemotingClient() as client:
            async with running_server(echo_server()) as addr:
                assert (await client.invoke_sync(addr, route_request("one"), 5)).code == 0
                first = client.connections[addr]
            host, port = split_address(addr)
            # Server gone: the old connection closes, calls fail to connect.
            await first.wait_closed()
            with pytest.raises(RemotingConnectError):
                await client.invoke_sync(addr, route_request(), 5)
            async with trio.open_nursery() as nursery:
                await nursery.start(echo_server().serve, host, port)
                response = await client.invoke_sync(addr, route_request("two"), 5)
                assert response.ext_fields == {"topic": "two"}
                assert client.connections[addr] is not first
                nursery.cancel_scope.cancel()


async def test_unknown_request_code_is_answered_not_supported() -> None:
    with trio.fail_after(10):
        async with running_server(echo_server()) as addr, RemotingClient() as client:
            response = await client.invoke_sync(addr, RemotingCommand.request(999), 5)
            assert response.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
            assert response.remark == " request type 999 not supported"
            assert (await client.invoke_sync(addr, route_request(), 5)).code == 0


async def test_processor_errors_become_system_error_and_keep_the_connection() -> None:
    async def broken(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        raise ValueError("division went wrong")

    async def refusing(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        raise CommandError("the custom field topic is null")

    server = echo_server()
    server.register_processor(RequestCode.REGISTER_BROKER, broken)
    server.register_processor(RequestCode.GET_KV_CONFIG, refusing)
    with trio.fail_after(10):
        async with running_server(server) as addr, RemotingClient() as client:
            first = await client.invoke_sync(addr, RemotingCommand.request(103), 5)
            assert first.code == ResponseCode.SYSTEM_ERROR
            assert first.remark == "ValueError: division went wrong"
            second = await client.invoke_sync(addr, RemotingCommand.request(101), 5)
            assert second.code == ResponseCode.SYSTEM_ERROR
            assert second.remark == "the custom field topic is null"
            conn = client.connections[addr]
            assert (await client.invoke_sync(addr, route_request(), 5)).code == 0
            assert client.connections[addr] is conn


async def test_overload_and_rejecting_processor_answer_system_busy() -> None:
    release = trio.Event()
    rejecting = [True]

    async def stalled(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        await release.wait()
        return RemotingCommand.response(ResponseCode.SUCCESS)

    server = RemotingServer(ServerConfig(max_in_flight_per_connection=2))
    server.register_processor(RequestCode.REGISTER_BROKER, stalled)
    server.register_processor(ROUTE, echo, reject_request=lambda: rejecting[0])
    with trio.fail_after(10):
        async with running_server(server) as addr, RemotingClient() as client:
            rejected = await client.invoke_sync(addr, route_request(), 5)
            assert rejected.code == ResponseCode.SYSTEM_BUSY
            assert rejected.remark == REJECT_REQUEST_REMARK
            rejecting[0] = False
            held = [
                await client.invoke_async(addr, RemotingCommand.request(103), 5) for _ in range(2)
            ]
            busy = await client.invoke_sync(addr, RemotingCommand.request(103), 5)
            assert busy.code == ResponseCode.SYSTEM_BUSY
            assert busy.remark == OVERLOAD_REMARK
            release.set()
            assert [(await f).code for f in held] == [0, 0]
            assert (await client.invoke_sync(addr, route_request(), 5)).code == 0


async def raw_connect(addr: str) -> trio.SocketStream:
    host, port = split_address(addr)
    return await trio.open_tcp_stream(host, port)


async def expect_closed_by_peer(stream: trio.SocketStream) -> None:
    """The server closes the connection without answering."""
    while True:
        try:
            data = await stream.receive_some()
        except trio.BrokenResourceError:
            return  # reset: closed as well
        assert data == b"", f"server answered a bad frame: {data!r}"
        return


BAD_INPUTS = {
    "oversized length word": (16 * 1024 * 1024 + 1).to_bytes(4, "big") + b"\x00" * 16,
    "negative length word": b"\xff\xff\xff\xf0" + b"\x00" * 8,
    "zero length": b"\x00\x00\x00\x00",
    "header not JSON": b"\x00\x00\x00\x0c\x00\x00\x00\x08notjson!",
    "serialize type 2": b"\x00\x00\x00\x06\x02\x00\x00\x02{}",
    "header past the frame": b"\x00\x00\x00\x06\x00\x00\x00\xff{}",
    "truncated ROCKETMQ header": b"\x00\x00\x00\x07\x01\x00\x00\x03\x00\x01\x00",
}


async def test_bad_frames_close_only_their_own_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[tuple[str, str]] = []

    class Listener(ConnectionListener):
        async def on_exception(self, conn: Connection) -> None:
            events.append(("exception", conn.remote_address))

    server = RemotingServer(ServerConfig(max_frame_size=1024 * 1024), listener=Listener())
    server.register_processor(ROUTE, echo)
    with trio.fail_after(20), caplog.at_level(logging.WARNING, logger="pyrocket.remoting"):
        async with running_server(server) as addr, RemotingClient() as client:
            assert (await client.invoke_sync(addr, route_request(), 5)).code == 0
            good = client.connections[addr]
            inputs = dict(BAD_INPUTS)
            inputs["over the configured 1 MiB"] = (1024 * 1024).to_bytes(4, "big")
            for name, data in inputs.items():
                stream = await raw_connect(addr)
                host, port = stream.socket.getsockname()[:2]
                local = f"{host}:{port}"
                await stream.send_all(data)
                await expect_closed_by_peer(stream)
                await stream.aclose()
                assert local in caplog.text, name
                # The well-behaved client carries on over its same connection.
                response = await client.invoke_sync(addr, route_request(name), 5)
                assert response.ext_fields == {"topic": name}
                assert client.connections[addr] is good
            with trio.fail_after(2):
                await wait_until(lambda: len(events) == len(inputs))
    assert "bad frame" in caplog.text
    assert "exceeds the limit of 1048576" in caplog.text


async def test_server_answers_in_its_own_serialize_type() -> None:
    server = echo_server(ServerConfig(serialize_type=SerializeType.ROCKETMQ))
    with trio.fail_after(10):
        async with running_server(server) as addr:
            stream = await raw_connect(addr)
            await stream.send_all(encode(route_request().replace(opaque=9)))  # JSON request
            reply = await read_frame(stream, FrameSplitter())
            assert reply.serialize_type == SerializeType.ROCKETMQ
            assert reply.opaque == 9 and reply.ext_fields == {"topic": "TopicTest"}
            await stream.aclose()
            config = ClientConfig(serialize_type=SerializeType.ROCKETMQ, language=LanguageCode.GO)
            recorder = Recorder()
            plain = RemotingServer()  # JSON
            plain.register_default_processor(recorder)
            async with running_server(plain) as plain_addr, RemotingClient(config) as client:
                response = await client.invoke_sync(plain_addr, route_request(), 5)
                assert response.serialize_type == SerializeType.JSON
                assert recorder.requests[0].serialize_type == SerializeType.ROCKETMQ
                assert recorder.requests[0].language == LanguageCode.GO
                # A command can keep its own wire settings.
                own = route_request().replace(serialize_type=SerializeType.JSON)
                await client.invoke_sync(plain_addr, own, 5, as_is=True)
                assert recorder.requests[1].serialize_type == SerializeType.JSON
                assert recorder.requests[1].language == LanguageCode.JAVA


async def test_server_calls_the_client_back_over_its_connection() -> None:
    client_seen = Recorder(
        lambda r: RemotingCommand.response(ResponseCode.SUCCESS, body=b"running-info")
    )
    callbacks: list[RemotingCommand] = []

    async def heartbeat(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        notify = RemotingCommand.request(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED)
        await conn.invoke_oneway(notify)
        answer = await conn.invoke(
            RemotingCommand.request(RequestCode.GET_CONSUMER_RUNNING_INFO), 5
        )
        callbacks.append(answer)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    server = RemotingServer()
    server.register_processor(RequestCode.HEART_BEAT, heartbeat)
    with trio.fail_after(10):
        async with running_server(server) as addr, RemotingClient() as client:
            client.register_processor(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, client_seen)
            client.register_processor(RequestCode.GET_CONSUMER_RUNNING_INFO, client_seen)
            response = await client.invoke_sync(addr, RemotingCommand.request(34), 5)
            assert response.code == ResponseCode.SUCCESS
            # Both were handled by the client's workers, in either order.
            by_code = {r.code: r for r in client_seen.requests}
            assert sorted(by_code) == [40, 307]
            assert by_code[40].is_oneway and not by_code[307].is_oneway
            assert callbacks[0].body == b"running-info"
            # A code the client has no processor for: REQUEST_CODE_NOT_SUPPORTED.
            (server_conn,) = server.connections
            unknown = await server_conn.invoke(RemotingCommand.request(12345), 5)
            assert unknown.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED


async def test_connection_events_on_both_sides() -> None:
    seen: list[tuple[str, str]] = []

    class Listener(ConnectionListener):
        def __init__(self, side: str) -> None:
            self.side = side

        async def on_connect(self, conn: Connection) -> None:
            seen.append((self.side, "connect"))

        async def on_close(self, conn: Connection) -> None:
            seen.append((self.side, "close"))

    server = RemotingServer(listener=Listener("server"))
    server.register_processor(ROUTE, echo)
    with trio.fail_after(10):
        async with (
            running_server(server) as addr,
            RemotingClient(listener=Listener("client")) as client,
        ):
            await client.invoke_sync(addr, route_request(), 5)
            client.close_connection(addr)
            await wait_until(lambda: len(seen) == 4)
    assert sorted(seen) == sorted(
        [("server", "connect"), ("client", "connect"), ("server", "close"), ("client", "close")]
    )


async def test_namesrv_address_list_fails_over() -> None:
    # An address nobody listens on: bind a socket, note its port, close it.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead = f"127.0.0.1:{probe.getsockname()[1]}"
    probe.close()
    with trio.fail_after(20):
        async with running_server(echo_server()) as live, RemotingClient() as client:
            with pytest.raises(RemotingConnectError):
                await client.invoke_sync(None, route_request(), 5)
            client.update_namesrv_addresses([dead, live])
            assert sorted(client.namesrv_addresses) == sorted([dead, live])
            for _ in range(4):
                assert (await client.invoke_sync(None, route_request(), 5)).code == 0
                assert client.chosen_namesrv == live
            client.update_namesrv_addresses([dead])
            client.close_connection(live)
            with pytest.raises(RemotingConnectError):
                await client.invoke_oneway(None, route_request())


async def test_async_permits_bound_calls_in_flight() -> None:
    release = trio.Event()

    async def stalled(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        await release.wait()
        return RemotingCommand.response(ResponseCode.SUCCESS)

    server = RemotingServer()
    server.register_default_processor(stalled)
    config = ClientConfig(async_permits=2, oneway_permits=1)
    with trio.fail_after(10):
        async with running_server(server) as addr, RemotingClient(config) as client:
            held = [await client.invoke_async(addr, route_request(), 5) for _ in range(2)]
            conn = await client.get_connection(addr)
            with pytest.raises(RemotingTooMuchRequestError):
                await conn.invoke_async(route_request(), 0)
            with pytest.raises(RemotingTimeoutError, match="semaphore timeout"):
                await client.invoke_async(addr, route_request(), 0.1)
            release.set()
            for future in held:
                await future
            # Permits come back once calls complete.
            third = await client.invoke_async(addr, route_request(), 5)
            assert (await third).code == 0


async def test_shutdown_fails_pending_calls_promptly_and_leaves_no_task() -> None:
    never = trio.Event()

    async def stalled(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        await never.wait()
        raise AssertionError("unreachable")

    server = RemotingServer()
    server.register_default_processor(stalled)
    failures: list[BaseException] = []
    with trio.fail_after(10):
        async with RemotingClient() as client, trio.open_nursery() as callers:
            async with trio.open_nursery() as server_nursery:
                port = await server_nursery.start(server.serve, "127.0.0.1", 0)
                addr = f"127.0.0.1:{port}"

                async def call() -> None:
                    try:
                        await client.invoke_sync(addr, route_request(), 60)
                    except ConnectionClosedError as exc:
                        failures.append(exc)

                for _ in range(5):
                    callers.start_soon(call)
                await wait_until(
                    lambda: bool(client.connections) and client.connections[addr].pending_calls == 5
                )
                server_nursery.cancel_scope.cancel()
            # The server is gone, its connections and handler tasks with it.
            assert server.connections == frozenset()
            with trio.fail_after(1):
                await wait_until(lambda: len(failures) == 5)
    assert len(failures) == 5


async def test_plain_function_processors_run_inline() -> None:
    calls: list[int] = []

    def lookup(conn: Connection, request: RemotingCommand) -> RemotingCommand | None:
        calls.append(request.code)
        if request.code == RequestCode.GET_KV_CONFIG:
            raise CommandError("the custom field key is null")
        if request.is_oneway:
            return None
        return RemotingCommand.response(ResponseCode.SUCCESS, "inline")

    server = RemotingServer()
    server.register_processor(ROUTE, lookup)
    server.register_processor(RequestCode.GET_KV_CONFIG, lookup)
    with trio.fail_after(10):
        async with running_server(server) as addr, RemotingClient() as client:
            response = await client.invoke_sync(addr, route_request(), 5)
            assert (response.code, response.remark) == (ResponseCode.SUCCESS, "inline")
            failed = await client.invoke_sync(addr, RemotingCommand.request(101), 5)
            assert failed.code == ResponseCode.SYSTEM_ERROR
            assert failed.remark == "the custom field key is null"
            await client.invoke_oneway(addr, route_request())
            # Answered in order on the reader: the oneway ran before this one.
            assert (await client.invoke_sync(addr, route_request(), 5)).remark == "inline"
            assert calls == [105, 101, 105, 105]
            assert client.connections[addr].is_open


async def test_processor_may_answer_later_through_send() -> None:
    held: list[tuple[Connection, RemotingCommand]] = []
    arrived = trio.Event()

    async def long_poll(conn: Connection, request: RemotingCommand) -> None:
        held.append((conn, request))
        arrived.set()
        return None  # answered later, as a suspended PULL_MESSAGE is

    server = RemotingServer()
    server.register_processor(RequestCode.PULL_MESSAGE, long_poll)
    server.register_processor(ROUTE, echo)
    with trio.fail_after(10):
        async with running_server(server) as addr, RemotingClient() as client:
            future = await client.invoke_async(addr, RemotingCommand.request(11), 5)
            await arrived.wait()
            # Other requests are answered meanwhile; the held one waits.
            assert (await client.invoke_sync(addr, route_request(), 5)).code == 0
            assert not future.done()
            conn, request = held[0]
            found = RemotingCommand.response(ResponseCode.SUCCESS, body=b"messages")
            await conn.send(found.answering(request))
            response = await future
            assert response.body == b"messages" and response.opaque == request.opaque


def _big_request(opaque: int, body_size: int) -> RemotingCommand:
    ext = {f"field{i:04d}": f"value {i} " * (1 + i % 7) for i in range(1000)}
    body = random.Random(opaque).randbytes(body_size)
    return route_request(f"big-{opaque}", body).replace(
        ext_fields={"topic": f"big-{opaque}", **ext}, opaque=opaque
    )


@pytest.mark.parametrize("serialize_type", [SerializeType.JSON, SerializeType.ROCKETMQ])
async def test_big_frame_decodes_the_same_and_keeps_its_place(
    serialize_type: SerializeType,
) -> None:
    # A frame collected in pieces and joined off the event loop arrives as
    # the same command, and the small frames sent right after it arrive after
    # it, in order, on the same connection. The processor runs inline on the
    # reader, so what it sees is the order in which frames were decoded.
    requests: list[RemotingCommand] = []

    def inline(conn: Connection, request: RemotingCommand) -> RemotingCommand | None:
        requests.append(request)
        return None if request.is_oneway else RemotingCommand.response(ResponseCode.SUCCESS)

    server = RemotingServer()
    server.register_processor(ROUTE, inline)
    big = _big_request(7, 5 * 1024 * 1024 + 3).replace(serialize_type=serialize_type, flag=2)
    smalls = [
        route_request(f"small-{i}").replace(opaque=100 + i, flag=2, serialize_type=serialize_type)
        for i in range(20)
    ]
    with trio.fail_after(30):
        async with running_server(server) as addr:
            stream = await raw_connect(addr)
            wire = b"".join([encode(big), *(encode(s) for s in smalls), encode(big)])
            await stream.send_all(wire)
            await wait_until(lambda: len(requests) >= len(smalls) + 2)
            assert [r.opaque for r in requests] == [7] + [s.opaque for s in smalls] + [7]
            for got in (requests[0], requests[-1]):
                assert got.body == big.body
                assert got.ext_fields == big.ext_fields
                assert got == decode(encode(big))
            assert [r.ext_fields for r in requests[1:-1]] == [s.ext_fields for s in smalls]
            # The connection answers as before.
            await stream.send_all(encode(route_request().replace(opaque=9)))
            reply = await read_frame(stream, FrameSplitter())
            assert reply.opaque == 9 and reply.code == ResponseCode.SUCCESS
            await stream.aclose()


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x00\x04\x00" + b"not json" * 128,  # a bad header, decoded first
        b"\x00" + (512 * 1024).to_bytes(3, "big"),  # a header over the bound
        b"\x00\xff\xff\xff",  # a header past the frame
    ],
)
async def test_a_bad_big_frame_closes_its_connection(
    head: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    server = RemotingServer()
    server.register_default_processor(recorder)
    payload = head + b"\x00" * (3 * 1024 * 1024)
    with trio.fail_after(30), caplog.at_level(logging.WARNING, logger="pyrocket.remoting"):
        async with running_server(server) as addr:
            stream = await raw_connect(addr)
            await stream.send_all(len(payload).to_bytes(4, "big") + payload)
            await stream.send_all(encode(route_request().replace(opaque=3)))
            await expect_closed_by_peer(stream)
            await stream.aclose()
            assert recorder.requests == []
    assert "bad frame" in caplog.text
