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

Where pyrocket answers differently by design the replay recognises it by rule
(:func:`deviation_of`: a code with no processor, a missing required header
field) and expects pyrocket's answer; once pyrocket refused a registration
Java accepted without a broker name, cluster-info answers are compared with
Java's minus that nameless broker. Nothing in the replay names a case, a
broker or a count of one capture.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from pyrocket.errors import PyrocketError
from pyrocket.namesrv import NameServer, load_config
from pyrocket.protocol.bodies import Properties
from pyrocket.protocol.catalog import request_header_type
from pyrocket.protocol.codes import RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.remoting import not_supported_remark
from tests.conftest import report_replay
from tests.namesrv.helpers import RawConnection, running_namesrv
from tests.vectorset import Record, read_records, scenario_files

#: How long "no answer" is waited for.
SILENCE = 0.3

#: GET_NAMESRV_CONFIG keys whose values depend on the host and port.
NORMALISED_KEYS = ("rocketmqHome", "kvConfigPath", "configStorePath", "listenPort")


@dataclass(frozen=True)
class Expect:
    """pyrocket's answer where it differs from Java's by design."""

    why: str
    check: Callable[[RemotingCommand], None]


def _not_supported(code: int) -> Callable[[RemotingCommand], None]:
    def check(answer: RemotingCommand) -> None:
        assert answer.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
        assert answer.remark == not_supported_remark(code)
        assert answer.ext_fields is None and answer.body is None

    return check


def _missing_field(remark: str) -> Callable[[RemotingCommand], None]:
    def check(answer: RemotingCommand) -> None:
        assert answer.code == ResponseCode.SYSTEM_ERROR
        assert answer.remark == remark
        assert answer.body is None

    return check


def missing_required_field(record: Record) -> str | None:
    """The "the custom field <x> is null" remark when ``record`` lacks a field
    its header class requires (Java's @CFNotNull), else None."""
    header_type = request_header_type(record.code or 0)
    if header_type is None:
        return None
    command = decode(record.frame)
    try:
        command.decode_header(header_type)
    except PyrocketError as exc:
        missing = re.fullmatch(r"the custom field <(\w+)> is null", str(exc))
        if missing is not None and missing.group(1) not in (command.ext_fields or {}):
            return str(exc)
    return None


def deviation_of(server: NameServer, record: Record) -> Expect | None:
    """pyrocket's deliberate deviation for ``record``, by rule, or None: a
    code the NameServer has no processor for (Java is silent), a request
    missing a required header field (Java goes on with null)."""
    code = record.code or 0
    if code not in server.server.processors.codes():
        return Expect("unknown code: REQUEST_CODE_NOT_SUPPORTED", _not_supported(code))
    remark = missing_required_field(record)
    if remark is not None:
        return Expect(f"{RequestCode(code).name} without a required field", _missing_field(remark))
    return None


def without_nameless_broker(body: bytes) -> bytes:
    """Java's cluster info once it had registered a broker with no name
    (``null`` in a cluster's broker-name set), as it is without that broker:
    what pyrocket, which refused the registration, answers."""
    text = body.decode()
    text = re.sub(r"\[null,", "[", text)
    text = re.sub(r",null(?=[\],])", "", text)
    text = text.replace("[null]", "[]")
    return text.encode()


def namesrv_groups() -> list[tuple[str, int, list[Record]]]:
    """(scenario, NameServer port, its records) for every capture with a Java
    NameServer in it."""
    groups = []
    for path in scenario_files():
        records = [r for r in read_records(path) if r.server == "java-namesrv"]
        for port in sorted({r.server_port for r in records if r.server_port is not None}):
            groups.append((path.stem, port, [r for r in records if r.server_port == port]))
    return groups


def replayed_requests(records: list[Record]) -> set[tuple[str, int | None]]:
    """(server, request code) of every request this replay sends or checks:
    everything sent over a connection to a Java NameServer."""
    return {(r.server, r.code) for r in records if r.server == "java-namesrv" and r.is_request}


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
    skipped: int = 0


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
    refused_nameless = False
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
                deviation = deviation_of(server, record)
                answer = answers.get((record.conn, record.opaque))
                if answer is not None:
                    tally.consumed.add(answer.seq)
                if deviation is not None:
                    received = decode(await conn.receive_frame())
                    assert received.opaque == record.opaque
                    deviation.check(received)
                    tally.deviations += 1
                    if (
                        record.code == RequestCode.REGISTER_BROKER
                        and answer is not None
                        and answer.code == ResponseCode.SUCCESS
                        and "brokerName" not in (decode(record.frame).ext_fields or {})
                    ):
                        refused_nameless = True
                elif answer is not None:
                    received_frame = await conn.receive_frame()
                    expected = answer.frame
                    if record.code == RequestCode.GET_NAMESRV_CONFIG:
                        received_frame = normalise_config_body(received_frame)
                        expected = normalise_config_body(expected)
                    java = decode(expected)
                    if (
                        refused_nameless
                        and record.code == RequestCode.GET_BROKER_CLUSTER_INFO
                        and java.body is not None
                        and without_nameless_broker(java.body) != java.body
                    ):
                        expected = encode(java.replace(body=without_nameless_broker(java.body)))
                        tally.deviations += 1
                    tally.compared += 1
                    assert received_frame == expected, (
                        f"{scenario} seq {answer.seq} (request seq {record.seq}, "
                        f"code {record.code}):\n got      {received_frame!r}\n expected "
                        f"{expected!r}"
                    )
                    tally.identical += 1
                elif record.oneway or record.seq != last_seq[record.conn]:
                    await conn.expect_silence(SILENCE)
                    tally.silences += 1
                else:
                    # The client left before Java answered: nothing to compare.
                    tally.skipped += 1
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
    assert tally.compared == tally.identical
    assert tally.consumed == recorded
    assert tally.compared > 0
    report_replay(
        f"{scenario} namesrv {port}: {tally.compared} compared, {tally.identical} identical "
        "after normalisation, "
        f"{tally.deviations} named deviations, 0 recognised races (one Java executor), "
        f"{tally.skipped} skipped (client left before the answer), {tally.silences} silences, "
        f"{tally.closes} closes"
    )
