"""``pyrocket decode``: printing and checking captures, JSON Lines and raw."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyrocket.cli import main
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.headers import GetRouteInfoRequestHeader
from pyrocket.vectors import iter_all_records, read_records, scenario_files


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
    }
