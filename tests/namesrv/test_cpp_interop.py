"""A real peer: the C++ RocketMQ client of PyPI's ``rocketmq==0.4.4``
(librocketmq.so) gets a route from a pyrocket NameServer.

A stand-in broker (a RemotingServer answering SEND_MESSAGE_V2 and the client's
heartbeats) registers topic CppTopic with the NameServer; a producer of the
C++ library, pointed at the NameServer only, then sends one message. It can
only reach the stand-in broker through the route the NameServer gave it. The
C++ client runs in a child process with a timeout, so its native threads can
neither hang nor crash the test run; it writes its logs under $HOME/logs,
which points at the test's temporary directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

from pyrocket.client.namesrv_api import BrokerIdentity, NameServerAPI
from pyrocket.protocol.bodies import TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    GetRouteInfoRequestHeader,
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
)
from pyrocket.remoting import Connection, RemotingClient, RemotingServer
from tests.conftest import require_cpp_client
from tests.namesrv.helpers import address, running_namesrv
from tests.remoting.helpers import running_server

require_cpp_client()

pytestmark = pytest.mark.interop

TOPIC = "CppTopic"

PRODUCER = """
import sys
from rocketmq.client import Message, Producer, SendStatus

producer = Producer("CppInteropGroup", timeout=5000)
producer.set_namesrv_addr(sys.argv[1])
producer.start()
try:
    message = Message(sys.argv[2])
    message.set_keys("key-1")
    message.set_tags("TagA")
    message.set_body(b"hello from librocketmq")
    result = producer.send_sync(message)
    status = "OK" if result.status == SendStatus.OK else result.status
    print("SEND", status, result.offset, flush=True)
finally:
    producer.shutdown()
"""


class StandInBroker:
    """Answers what a producer asks a broker: sends, heartbeats, goodbyes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    def send_message(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        if request.code == RequestCode.SEND_MESSAGE_V2:
            topic = request.decode_header(SendMessageRequestHeaderV2).topic
        else:
            topic = request.decode_header(SendMessageRequestHeader).topic
        self.sent.append((topic, request.body))
        header = SendMessageResponseHeader(
            msg_id="7F00000100002A9F0000000000000000", queue_id=0, queue_offset=len(self.sent)
        )
        return RemotingCommand.response(ResponseCode.SUCCESS, header=header)

    def success(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand.response(ResponseCode.SUCCESS)

    def server(self) -> RemotingServer:
        server = RemotingServer()
        for code in (RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2):
            server.register_processor(code, self.send_message)
        for code in (RequestCode.HEART_BEAT, RequestCode.UNREGISTER_CLIENT):
            server.register_processor(code, self.success)
        return server


async def test_cpp_producer_routes_through_a_pyrocket_namesrv(tmp_path: Path) -> None:
    broker = StandInBroker()
    script = tmp_path / "producer.py"
    await trio.Path(script).write_text(PRODUCER)
    with trio.fail_after(28):
        async with (
            running_namesrv(tmp_path) as namesrv,
            running_server(broker.server()) as broker_addr,
            RemotingClient() as client,
        ):
            # Watch the NameServer answer the route queries.
            routed: list[tuple[str, int]] = []
            table = namesrv.server.processors
            route = table.lookup(RequestCode.GET_ROUTEINFO_BY_TOPIC)
            assert route is not None

            def watched(conn: Connection, request: RemotingCommand) -> RemotingCommand:
                answer = route.processor(conn, request)
                assert isinstance(answer, RemotingCommand)
                routed.append((request.decode_header(GetRouteInfoRequestHeader).topic, answer.code))
                return answer

            table.register(RequestCode.GET_ROUTEINFO_BY_TOPIC, watched)

            identity = BrokerIdentity("DefaultCluster", broker_addr, "cpp-broker", 0, broker_addr)
            await NameServerAPI(client).register_broker(
                identity, [TopicConfig(TOPIC, 4, 4)], addr=address(namesrv)
            )
            result = await trio.run_process(
                [sys.executable, str(script), address(namesrv), TOPIC],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            )
    out = result.stdout.decode(errors="replace")
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, f"producer failed:\n{out}\n{err}"
    assert "SEND OK 1" in out, out
    assert (TOPIC, ResponseCode.SUCCESS) in routed
    assert broker.sent == [(TOPIC, b"hello from librocketmq")]
