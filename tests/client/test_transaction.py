"""TransactionProducer over real sockets against a scripted cluster: the
prepared send's fields, END_TRANSACTION's fields for each local outcome,
and the answers to CHECK_TRANSACTION_STATE pushed over the producer's
connection."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel

from pyrocket.client import LocalTransactionState, TransactionProducer, new_message
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    CheckTransactionStateRequestHeader,
    EndTransactionRequestHeader,
    SendMessageRequestHeaderV2,
)
from pyrocket.protocol.message import (
    HostPort,
    Message,
    MessageExt,
    MessageSysFlag,
    decode_properties,
    encode_message,
)
from pyrocket.remoting import Connection
from tests.client.helpers import ScriptedCluster, route_to
from tests.client.test_producer import stored
from tests.remoting.helpers import running_server, wait_until

TOPIC = "TxTopic"


def ends(cluster: ScriptedCluster) -> list[tuple[RemotingCommand, EndTransactionRequestHeader]]:
    return [
        (r, r.decode_header(EndTransactionRequestHeader))
        for r in cluster.seen(RequestCode.END_TRANSACTION)
    ]


async def test_prepared_send_and_end_transaction_fields() -> None:
    cluster = ScriptedCluster()
    cluster.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: stored(r, 7)
    seen: list[tuple[bytes, object, str | None]] = []

    async def execute(message: Message, arg: object) -> LocalTransactionState:
        body = message.body
        seen.append((body, arg, message.properties.get("UNIQ_KEY")))
        if body == b"boom":
            raise RuntimeError("boom")
        await trio.lowlevel.checkpoint()
        return LocalTransactionState.COMMIT_MESSAGE

    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)])
            async with TransactionProducer(
                "pg",
                [addr],
                client_ip="127.0.0.1",
                execute_local=execute,
                check_local=lambda m: None,
            ) as producer:
                ok = await producer.send_in_transaction(
                    new_message(TOPIC, b"fine", delay_level=3), arg=42
                )
                failed = await producer.send_in_transaction(new_message(TOPIC, b"boom"))
                await wait_until(lambda: len(ends(cluster)) == 2)
    assert ok.local_transaction_state is LocalTransactionState.COMMIT_MESSAGE
    assert failed.local_transaction_state is LocalTransactionState.UNKNOW
    assert seen == [(b"fine", 42, ok.msg_id), (b"boom", None, failed.msg_id)]
    send = cluster.seen(RequestCode.SEND_MESSAGE_V2)[0]
    header = send.decode_header(SendMessageRequestHeaderV2)
    assert header.sys_flag & MessageSysFlag.TRANSACTION_PREPARED_TYPE
    properties = decode_properties(header.properties or "")
    assert properties["TRAN_MSG"] == "true" and properties["PGROUP"] == "pg"
    assert "DELAY" not in properties
    (commit, commit_header), (unknown, unknown_header) = ends(cluster)
    assert commit.is_oneway and unknown.is_oneway
    assert commit_header == EndTransactionRequestHeader(
        producer_group="pg",
        tran_state_table_offset=7,
        commit_log_offset=7,
        commit_or_rollback=MessageSysFlag.TRANSACTION_COMMIT_TYPE,
        from_transaction_check=False,
        msg_id=ok.msg_id,
        transaction_id=None,
    )
    assert commit.remark is None
    assert unknown_header.commit_or_rollback == MessageSysFlag.TRANSACTION_NOT_TYPE
    assert unknown.remark == "executeLocalTransactionBranch exception: RuntimeError: boom"


async def test_flush_timeout_rolls_back_without_running_the_local_transaction() -> None:
    cluster = ScriptedCluster()
    cluster.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: stored(r, 3).replace(
        code=ResponseCode.FLUSH_DISK_TIMEOUT
    )
    ran: list[object] = []
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)])
            async with TransactionProducer(
                "pg",
                [addr],
                client_ip="127.0.0.1",
                execute_local=lambda m, a: ran.append(m),
                check_local=lambda m: None,
            ) as producer:
                result = await producer.send_in_transaction(new_message(TOPIC, b"x"))
                await wait_until(lambda: len(ends(cluster)) == 1)
    assert ran == []
    assert result.local_transaction_state is LocalTransactionState.ROLLBACK_MESSAGE
    [(_, header)] = ends(cluster)
    assert header.commit_or_rollback == MessageSysFlag.TRANSACTION_ROLLBACK_TYPE


def half(group: str, body: bytes) -> MessageExt:
    return MessageExt(
        topic=TOPIC,
        body=body,
        properties={"PGROUP": group, "UNIQ_KEY": "AC11000100002A9F0000000000000001"},
        queue_offset=5,
        commit_log_offset=900,
        born_host=HostPort.parse("127.0.0.1:5555"),
        store_host=HostPort.parse("127.0.0.1:10911"),
    )


def check_request(message: MessageExt | None) -> RemotingCommand:
    header = CheckTransactionStateRequestHeader(
        tran_state_table_offset=5,
        commit_log_offset=900,
        msg_id="AC11000100002A9F0000000000000001",
        transaction_id="AC11000100002A9F0000000000000001",
        offset_msg_id="7F00000100002A9F0000000000000384",
    )
    body = encode_message(message) if message is not None else b"\x00\x01"
    return RemotingCommand.request(
        RequestCode.CHECK_TRANSACTION_STATE, header, body=body, oneway=True
    )


@pytest.mark.parametrize("fails", [False, True])
async def test_checks_are_answered_over_the_connection(fails: bool) -> None:
    cluster = ScriptedCluster()
    connections: list[Connection] = []

    def heartbeat(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        connections.append(conn)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    cluster.server.register_processor(RequestCode.HEART_BEAT, heartbeat)
    cluster.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: stored(r, 1)
    asked: list[MessageExt] = []

    async def check(message: MessageExt) -> LocalTransactionState:
        asked.append(message)
        if fails:
            raise ValueError("no idea")
        return LocalTransactionState.ROLLBACK_MESSAGE

    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)])
            async with TransactionProducer(
                "pg",
                [addr],
                client_ip="127.0.0.1",
                execute_local=lambda m, a: LocalTransactionState.COMMIT_MESSAGE,
                check_local=check,
            ) as producer:
                await producer.send_in_transaction(new_message(TOPIC, b"first"))
                await wait_until(lambda: bool(connections))
                conn = connections[-1]
                # Another group's message and an undecodable body are ignored.
                await conn.invoke_oneway(check_request(half("other", b"x")), 1)
                await conn.invoke_oneway(check_request(None), 1)
                await conn.invoke_oneway(check_request(half("pg", b"mine")), 1)
                await wait_until(lambda: len(ends(cluster)) == 2)
    assert [m.body for m in asked] == [b"mine"]
    request, header = ends(cluster)[1]
    assert request.is_oneway
    assert header == EndTransactionRequestHeader(
        producer_group="pg",
        tran_state_table_offset=5,
        commit_log_offset=900,
        commit_or_rollback=(
            MessageSysFlag.TRANSACTION_NOT_TYPE
            if fails
            else MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
        ),
        from_transaction_check=True,
        msg_id="AC11000100002A9F0000000000000001",
        transaction_id="AC11000100002A9F0000000000000001",
    )
    expected = "checkLocalTransactionState Exception: ValueError: no idea" if fails else None
    assert request.remark == expected
