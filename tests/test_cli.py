"""``pyrocket decode``: printing and checking captures, JSON Lines and raw."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pyrocket.cli import main
from pyrocket.protocol.bodies import BrokerData, KVTable, TopicList, TopicRouteData
from pyrocket.protocol.catalog import request_header_type
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.headers import GetRouteInfoRequestHeader, UnRegisterBrokerRequestHeader
from pyrocket.protocol.javahash import JavaHashSet, hashmap_order, java_hash, long_hash
from tests.vectorset import iter_all_records, read_records, scenario_files


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, captured.out, captured.err


def test_check_passes_on_every_vector(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(path) for path in scenario_files()]
    status, out, err = _run(["decode", "--check", *files], capsys)
    assert status == 0, err
    summary = json.loads(out.splitlines()[-1])
    records = list(iter_all_records())
    frames = sum(1 for r in records if r.is_frame)
    assert summary["frames"] == summary["identical"] == frames
    assert summary["bodies"] == summary["bodies_identical"] > 0
    # Malformed records are reported as undecodable, with the reason.
    malformed = [r for r in records if r.dir != "close" and r.raw.get("malformed")]
    assert out.count("undecodable, as recorded:") == len(malformed)
    assert "exceeds the limit of 16777216" in out


def test_decode_prints_commands(capsys: pytest.CaptureFixture[str], vectors_dir: Path) -> None:
    path = vectors_dir / "register-basic.jsonl"
    status, out, _ = _run(["decode", str(path)], capsys)
    assert status == 0
    record = read_records(path)[0]
    first = out.splitlines()[0]
    assert first.startswith(
        f"register-basic.jsonl record 0 {record.conn} client: REGISTER_BROKER (103) request"
    )
    broker_name = (decode(record.frame).ext_fields or {})["brokerName"]
    assert f'  ext brokerName = "{broker_name}"' in out
    assert "SUCCESS to UNREGISTER_BROKER (0) response" in out
    assert "  body (" in out and '{"filterServerList":[]' in out
    assert not out.splitlines()[-1].startswith('{"frames"')  # counts only with --check


def _raw_stream(vectors_dir: Path) -> bytes:
    # The first connection's frames: a broker's registrations and answers.
    records = read_records(vectors_dir / "register-basic.jsonl")
    return b"".join(r.frame for r in records if r.is_frame and r.conn == records[0].conn)


def test_raw_stream_decodes_and_pairs_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vectors_dir: Path
) -> None:
    raw = tmp_path / "capture.bin"
    raw.write_bytes(_raw_stream(vectors_dir))
    status, out, err = _run(["decode", "--check", str(raw)], capsys)
    assert status == 0, err
    assert "capture.bin record 0: REGISTER_BROKER (103) request" in out
    assert "SUCCESS to REGISTER_BROKER" in out
    summary = json.loads(out.splitlines()[-1])
    assert summary["frames"] == summary["identical"] > 2


def test_raw_stream_with_a_cut_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vectors_dir: Path
) -> None:
    stream = _raw_stream(vectors_dir)
    raw = tmp_path / "cut.bin"
    raw.write_bytes(stream + stream[:10])
    status, out, _ = _run(["decode", str(raw)], capsys)
    assert status == 1
    assert out.splitlines()[-1].endswith("10 bytes of an incomplete frame at the end")
    status, _, err = _run(["decode", "--check", str(raw)], capsys)
    assert status == 1 and "incomplete frame" in err


def test_raw_stream_with_an_oversized_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "huge.bin"
    raw.write_bytes(b"\x01\x00\x00\x01rest")
    status, out, _ = _run(["decode", str(raw)], capsys)
    assert status == 1
    assert "stream unreadable: frame of 16777221 bytes exceeds the limit" in out


def _tampered(tmp_path: Path, vectors_dir: Path, change: str) -> Path:
    lines = (vectors_dir / "register-basic.jsonl").read_text().splitlines()
    record = json.loads(lines[1])
    frame = bytes.fromhex(record["frame_hex"])
    if change == "header-space":
        # The same JSON header with a space fastjson would never write.
        header_length = int.from_bytes(frame[5:8], "big")
        header = frame[8 : 8 + header_length].replace(b'{"code":', b'{"code": ', 1)
        rest = frame[8 + header_length :]
        frame = (
            (4 + len(header) + len(rest)).to_bytes(4, "big")
            + b"\x00"
            + len(header).to_bytes(3, "big")
            + header
            + rest
        )
    elif change == "not-a-frame":
        frame = frame[:4] + b"\x09" + frame[5:]
    record["frame_hex"] = frame.hex()
    lines[1] = json.dumps(record)
    path = tmp_path / f"{change}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_names_file_record_and_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vectors_dir: Path
) -> None:
    path = _tampered(tmp_path, vectors_dir, "header-space")
    status, out, err = _run(["decode", "--check", str(path)], capsys)
    assert status == 1
    assert "check failed: header-space.jsonl record 1: frame differs at byte" in err
    assert '"frames"' not in out  # no summary after a failure


def test_undecodable_record_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vectors_dir: Path
) -> None:
    path = _tampered(tmp_path, vectors_dir, "not-a-frame")
    status, out, _ = _run(["decode", str(path)], capsys)
    assert status == 1
    assert "not-a-frame.jsonl record 1: undecodable: unknown serialize type 9" in out
    status, _, err = _run(["decode", "--check", str(path)], capsys)
    assert status == 1 and "unknown serialize type 9" in err


def test_body_mismatch_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A body Java would write without the space: decodes, re-encodes differently.
    request = RemotingCommand.request(
        RequestCode.QUERY_DATA_VERSION, body=b'{"counter":1, "timestamp":2}'
    )
    raw = tmp_path / "spaced.bin"
    raw.write_bytes(encode(request))
    status, _, err = _run(["decode", "--check", str(raw)], capsys)
    assert status == 1
    assert "spaced.bin record 0: body (DataVersion) differs at byte 13" in err


def test_missing_file_and_bad_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(["decode", str(tmp_path / "absent.jsonl")], capsys)
    assert status == 1 and "No such file" in err
    status, _, _ = _run(["decode"], capsys)
    assert status == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    status, _, err = _run(["decode", str(bad)], capsys)
    assert status == 1 and "not a capture record" in err


def test_module_entry_point(tmp_path: Path) -> None:
    raw = tmp_path / "one.bin"
    raw.write_bytes(encode(RemotingCommand.request(105, GetRouteInfoRequestHeader("T\u2028"))))
    result = subprocess.run(
        [sys.executable, "-m", "pyrocket", "decode", "--check", str(raw)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert 'ext topic = "T\u2028"' in result.stdout
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "frames": 1,
        "identical": 1,
        "bodies": 0,
        "bodies_identical": 0,
        "handcrafted": 0,
    }


def _java_request_with_ext(serialize: str) -> tuple[dict[str, object], RemotingCommand]:
    """The first Java-written request of that serialize type whose header class
    is known and whose ext fields span more than one HashMap bucket."""
    for record in iter_all_records():
        if not (record.is_frame and record.is_request and record.raw.get("serialize") == serialize):
            continue
        if record.client == "handcrafted" or record.code is None:
            continue
        command = decode(record.frame)
        ext = command.ext_fields or {}
        if request_header_type(record.code) is None or len(ext) < 3:
            continue
        if list(reversed(ext)) != hashmap_order(reversed(ext)):
            return record.raw, command
    raise AssertionError(f"no {serialize} request with ext fields in the vectors")


@pytest.mark.parametrize("serialize", ["JSON", "ROCKETMQ"])
def test_check_reports_ext_order_no_hashmap_produces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serialize: str
) -> None:
    raw, command = _java_request_with_ext(serialize)
    recorded = dict(command.ext_fields or {})
    permuted = {key: recorded[key] for key in reversed(recorded)}
    assert permuted == recorded and list(permuted) != list(recorded)
    path = tmp_path / "permuted.jsonl"
    as_java = dict(raw, frame_hex=encode(command).hex())
    moved = dict(raw, seq=1, frame_hex=encode(command.replace(ext_fields=permuted)).hex())
    path.write_text(json.dumps(as_java) + "\n" + json.dumps(moved) + "\n")
    status, out, err = _run(["decode", "--check", str(path)], capsys)
    assert status == 1
    header_type = request_header_type(command.code)
    assert header_type is not None
    assert "check failed: permuted.jsonl record 1: frame differs at byte" in err
    assert f"ext fields as {header_type.__name__} would send them: {', '.join(recorded)}" in err
    assert f"(recorded: {', '.join(permuted)})" in err
    # The same frame from a connection marked handcrafted keeps its order.
    handmade = [dict(r, client="handcrafted") for r in (as_java, moved)]
    path.write_text("".join(json.dumps(r) + "\n" for r in handmade))
    status, out, err = _run(["decode", "--check", str(path)], capsys)
    assert status == 0, err
    assert json.loads(out.splitlines()[-1])["handcrafted"] == 2


def test_check_rebuilds_unknown_codes_as_a_string_hashmap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [f"k{i}" for i in range(20)]
    java = {key: "v" for key in hashmap_order(keys)}
    raw = tmp_path / "unknown.bin"
    request = RemotingCommand(code=31999, ext_fields=java)
    raw.write_bytes(encode(request))
    status, _, err = _run(["decode", "--check", str(raw)], capsys)
    assert status == 0, err
    raw.write_bytes(encode(request.replace(ext_fields={key: "v" for key in sorted(keys)})))
    status, _, err = _run(["decode", "--check", str(raw)], capsys)
    assert status == 1
    assert "ext fields as HashMap<String,String> would send them" in err


def test_decode_help_says_what_check_checks(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(["decode", "--help"], capsys)
    assert status == 0
    text = " ".join(out.split())
    for phrase in (
        "header class Java picks for the request code",
        "paired by connection, opaque and opposite sender",
        "Java's HashMap",
        "plain HashMap<String,String>",
        "no Java process would produce is reported as not identical",
        "'handcrafted' client",
        "hash map or hash set",
        "any power-of-two table size",
    ):
        assert phrase in text


def _answered(tmp_path: Path, code: int, body: bytes) -> Path:
    """A raw stream: a request with ``code`` and a SUCCESS answer with ``body``."""
    request = RemotingCommand.request(code, opaque=3)
    answer = RemotingCommand.response(ResponseCode.SUCCESS, body=body).answering(request)
    raw = tmp_path / "answered.bin"
    raw.write_bytes(encode(request) + encode(answer))
    return raw


@pytest.mark.parametrize(
    ("code", "java", "build"),
    [
        (
            RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            "HashSet<String>",
            lambda names: TopicList(tuple(names)).encode(),
        ),
        (
            RequestCode.GET_KVLIST_BY_NAMESPACE,
            "HashMap<String,String>",
            lambda names: KVTable({name: "v" for name in names}).encode(),
        ),
        (
            RequestCode.GET_ROUTEINFO_BY_TOPIC,
            "HashMap<Long,String>",
            lambda ids: TopicRouteData(
                broker_datas=(BrokerData("c", "b", {int(i[1:]): "a" for i in ids}),)
            ).encode(),
        ),
        (
            RequestCode.GET_ROUTEINFO_BY_TOPIC,
            "HashSet<String> of broker names",
            lambda names: TopicRouteData(
                broker_datas=tuple(BrokerData("c", name, {0: "a"}) for name in names)
            ).encode(),
        ),
    ],
    ids=["set", "map", "nested-long-map", "list-from-a-set"],
)
def test_check_reports_body_order_no_java_collection_produces(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    code: int,
    java: str,
    build: Callable[[list[str]], bytes],
) -> None:
    names = [f"k{n * 7919}" for n in range(24)]
    hasher = (lambda k: long_hash(int(k[1:]))) if "Long" in java else java_hash
    in_java_order = list(JavaHashSet.copy_of(names, hasher=hasher))
    status, out, err = _run(
        ["decode", "--check", str(_answered(tmp_path, code, build(in_java_order)))], capsys
    )
    assert status == 0, err
    assert json.loads(out.splitlines()[-1])["bodies_identical"] == 1
    reordered = build(list(reversed(in_java_order)))
    status, _, err = _run(["decode", "--check", str(_answered(tmp_path, code, reordered))], capsys)
    assert status == 1
    assert "record 1: body (" in err
    assert f"no Java {java} iterates its 24 keys in this order" in err


def test_check_renders_ext_values_from_their_java_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = UnRegisterBrokerRequestHeader("b", "127.0.0.1:10911", "c", 0)
    request = RemotingCommand.request(RequestCode.UNREGISTER_BROKER, header)
    raw = tmp_path / "padded.bin"
    raw.write_bytes(encode(request))
    status, _, err = _run(["decode", "--check", str(raw)], capsys)
    assert status == 0, err
    # Java's Long.toString never writes "00": the same map, not Java's bytes.
    padded = {k: ("00" if k == "brokerId" else v) for k, v in (request.ext_fields or {}).items()}
    raw.write_bytes(encode(request.replace(ext_fields=padded)))
    status, _, err = _run(["decode", "--check", str(raw)], capsys)
    assert status == 1 and "padded.bin record 0: frame differs at byte" in err
