"""Replay every Java NameServer conversation of the golden vectors against a
pyrocket NameServer (the vectors README's "Test kind 2").

Each scenario (and, in register-two-namesrv, each NameServer port) gets a
fresh NameServer with an empty KV store. The recorded client frames are sent
verbatim, in capture order, one TCP connection per recorded connection, each
closed right after its last record (a broker's routes go with its
connection). Every recorded answer must come back byte for byte; requests
Java left unanswered must get no answer, and frames Java could not decode must
make the server close the connection. GET_NAMESRV_CONFIG bodies are compared
with the path keys and listenPort normalised, as the README says.

The errors-handcrafted cases where pyrocket answers differently by design are
named in DEVIATIONS and expect pyrocket's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from pyrocket.namesrv import NameServer, load_config
from pyrocket.protocol.bodies import Properties
from pyrocket.protocol.codes import RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.remoting import not_supported_remark
from pyrocket.vectors import Record, read_records, scenario_files
from tests.namesrv.helpers import RawConnection, running_namesrv

#: How long "no answer" is waited for.
SILENCE = 0.3

#: GET_NAMESRV_CONFIG keys whose values depend on the host and port.
NORMALISED_KEYS = ("rocketmqHome", "kvConfigPath", "configStorePath", "listenPort")


@dataclass(frozen=True)
class Expect:
    """pyrocket's answer where it differs from Java's by design."""

    why: str
    check: Callable[[RemotingCommand, dict[str, RemotingCommand]], None]


def _not_supported(code: int) -> Callable[[RemotingCommand, dict[str, RemotingCommand]], None]:
    def check(answer: RemotingCommand, earlier: dict[str, RemotingCommand]) -> None:
        assert answer.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
        assert answer.remark == not_supported_remark(code)
        assert answer.ext_fields is None and answer.body is None

    return check


def _missing_field(name: str) -> Callable[[RemotingCommand, dict[str, RemotingCommand]], None]:
    def check(answer: RemotingCommand, earlier: dict[str, RemotingCommand]) -> None:
        assert answer.code == ResponseCode.SYSTEM_ERROR
        assert answer.remark == f"the custom field <{name}> is null"
        assert answer.body is None

    return check


def _same_cluster_info_as_before(
    answer: RemotingCommand, earlier: dict[str, RemotingCommand]
) -> None:
    # Java registered the broker without a name and left `null` in the
    # cluster's broker-name set; pyrocket refused it, so the cluster map is
    # still the one answered (byte-identical to Java) before those cases.
    before = earlier["ns-unknown-code"]
    assert answer.code == ResponseCode.SUCCESS
    assert answer.body == before.body
    assert answer.body is not None and b"null" not in answer.body


#: (scenario, case, request code) -> pyrocket's answer.
DEVIATIONS: dict[tuple[str, str, int], Expect] = {
    ("errors-handcrafted", "ns-unknown-code", 9999): Expect(
        "unknown code: REQUEST_CODE_NOT_SUPPORTED instead of no answer", _not_supported(9999)
    ),
    ("errors-handcrafted", "ns-register-missing-brokerName", RequestCode.REGISTER_BROKER): Expect(
        "missing @CFNotNull brokerName: refused (Java registers a broker named null)",
        _missing_field("brokerName"),
    ),
    ("errors-handcrafted", "ns-register-missing-brokerId", RequestCode.REGISTER_BROKER): Expect(
        "missing @CFNotNull brokerId: named (Java answers a NullPointerException trace)",
        _missing_field("brokerId"),
    ),
    (
        "errors-handcrafted",
        "ns-language-python-version0",
        RequestCode.GET_BROKER_CLUSTER_INFO,
    ): Expect("consequence of refusing the nameless broker above", _same_cluster_info_as_before),
}


def namesrv_groups() -> list[tuple[str, int, list[Record]]]:
    """(scenario, NameServer port, its records) for every capture with a Java
    NameServer in it."""
    groups = []
    for path in scenario_files():
        records = [r for r in read_records(path) if r.server == "java-namesrv"]
        for port in sorted({r.server_port for r in records if r.server_port is not None}):
            groups.append((path.stem, port, [r for r in records if r.server_port == port]))
    return groups


GROUPS = namesrv_groups()


def answering_serialize_type(records: list[Record]) -> SerializeType:
    """The type the Java NameServer answered in (its configured one)."""
    types = {r.raw["serialize"] for r in records if r.is_frame and r.is_response}
    assert len(types) == 1, types
    return SerializeType[types.pop()]


def normalise_config_body(frame: bytes) -> bytes:
    command = decode(frame)
    assert command.body is not None
    entries = dict(Properties.decode(command.body).entries)
    for key in NORMALISED_KEYS:
        if key in entries:
            entries[key] = "<normalised>"
    return encode(command.replace(body=Properties(entries).encode()))


@dataclass
class Tally:
    compared: int = 0
    consumed: set[int] = field(default_factory=set)
    identical: int = 0
    deviations: int = 0
    silences: int = 0
    closes: int = 0


async def replay(server: NameServer, scenario: str, records: list[Record], tally: Tally) -> None:
    assert server.port is not None
    frames_of: dict[str, list[Record]] = {}
    for record in records:
        if record.dir != "close":
            frames_of.setdefault(record.conn, []).append(record)
    last_seq = {conn: frames[-1].seq for conn, frames in frames_of.items()}
    answers = {
        (r.conn, r.opaque): r
        for r in records
        if r.is_frame and r.is_response and r.sender == "server"
    }
    server_closes = {
        r.conn
        for r in records
        if r.dir == "close"
        and r.sender == "server"
        # the first close record of a connection says who closed first
        and next(c for c in records if c.dir == "close" and c.conn == r.conn) is r
    }
    request_code: dict[tuple[str, int | None], int | None] = {}
    earlier_answers: dict[str, RemotingCommand] = {}
    connections: dict[str, RawConnection] = {}
    ended = 0

    async def end(conn_id: str, conn: RawConnection) -> None:
        nonlocal ended
        if not conn.eof:
            await conn.aclose()
        ended += 1
        # The broker's routes go with its connection: wait until the server
        # has handled the close before the next record.
        await server.housekeeping.closed.wait_value(lambda count: count >= ended)

    for record in records:
        if record.dir == "close":
            continue
        conn = connections.get(record.conn)
        if (record.sender == "client" and record.is_request) or record.raw.get("malformed"):
            if conn is None:
                conn = connections[record.conn] = await RawConnection.open(server.port)
            request_code[(record.conn, record.opaque)] = record.code
            await conn.send(record.frame)
            if record.raw.get("malformed"):
                assert record.conn in server_closes
                await conn.expect_close()
                tally.closes += 1
            else:
                deviation = DEVIATIONS.get((scenario, record.case or "", record.code or 0))
                answer = answers.get((record.conn, record.opaque))
                if answer is not None:
                    tally.consumed.add(answer.seq)
                if deviation is not None:
                    received = decode(await conn.receive_frame())
                    assert received.opaque == record.opaque
                    deviation.check(received, earlier_answers)
                    tally.deviations += 1
                elif answer is not None:
                    received_frame = await conn.receive_frame()
                    expected = answer.frame
                    if record.code == RequestCode.GET_NAMESRV_CONFIG:
                        received_frame = normalise_config_body(received_frame)
                        expected = normalise_config_body(expected)
                    tally.compared += 1
                    assert received_frame == expected, (
                        f"{scenario} seq {answer.seq} (request seq {record.seq}, "
                        f"code {record.code}):\n got      {received_frame!r}\n expected "
                        f"{expected!r}"
                    )
                    tally.identical += 1
                    if record.case:
                        earlier_answers.setdefault(record.case, decode(received_frame))
                elif record.oneway or record.seq != last_seq[record.conn]:
                    await conn.expect_silence(SILENCE)
                    tally.silences += 1
        if conn is not None and record.seq == last_seq[record.conn]:
            await end(record.conn, conn)
            del connections[record.conn]
    for conn_id, conn in list(connections.items()):
        await end(conn_id, conn)


@pytest.mark.parametrize(
    ("scenario", "port", "records"),
    GROUPS,
    ids=[f"{scenario}-{port}" for scenario, port, _ in GROUPS],
)
async def test_java_namesrv_answers_replay_byte_for_byte(
    scenario: str, port: int, records: list[Record], tmp_path: Path
) -> None:
    conf = tmp_path / "namesrv.conf"
    conf.write_text(f"kvConfigPath={tmp_path / 'namesrv' / 'kvConfig.json'}\nlistenPort={port}\n")
    config = load_config(conf).replace(
        rocketmq_home=str(tmp_path), serialize_type=answering_serialize_type(records)
    )
    tally = Tally()
    with trio.fail_after(60):
        async with running_namesrv(config=config) as server:
            await replay(server, scenario, records, tally)
    recorded = {r.seq for r in records if r.is_frame and r.is_response and r.sender == "server"}
    named = sum(1 for key in DEVIATIONS if key[0] == scenario)
    assert tally.compared == tally.identical
    assert tally.consumed == recorded
    assert tally.deviations == named
    assert tally.compared > 0
    print(
        f"{scenario}:{port}: {tally.identical}/{tally.compared} answers identical, "
        f"{tally.deviations} named deviations, {tally.silences} silences, "
        f"{tally.closes} closes"
    )
