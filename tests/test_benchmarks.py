"""The server benchmarks' load generator (benchmarks/loadgen.py) and quick
runs of benchmarks/namesrv.py and benchmarks/broker.py against pyrocket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyrocket.protocol.codes import RequestCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.message import decode_properties

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import broker as bench_broker  # noqa: E402  (benchmarks/broker.py)
import loadgen  # noqa: E402  (benchmarks/loadgen.py)


def test_send_template_splices_the_opaque_and_the_key() -> None:
    template = bench_broker.send_template("SomeTopic", 8, 5)
    for opaque in (1, 987654321, -7):
        frame = template.frame(opaque, b"K3-%d" % opaque)
        command = decode(frame)
        assert command.opaque == opaque
        assert command.code == RequestCode.SEND_MESSAGE_V2
        assert command.body == bench_broker.BODY
        fields = dict(command.ext_fields or {})
        assert fields["b"] == "SomeTopic" and fields["e"] == "5"
        assert decode_properties(fields["i"])["KEYS"] == f"K3-{opaque}"


def test_pull_template_splices_offset_and_count() -> None:
    frame = bench_broker.pull_template("SomeTopic", 2).frame(42, b"12345678901", b"7")
    command = decode(frame)
    fields = dict(command.ext_fields or {})
    assert command.opaque == 42 and command.code == RequestCode.PULL_MESSAGE
    assert (fields["queueId"], fields["queueOffset"], fields["maxMsgNums"]) == (
        "2",
        "12345678901",
        "7",
    )


def test_a_marker_must_be_unique() -> None:
    command = RemotingCommand.request(RequestCode.GET_ALL_TOPIC_CONFIG)
    header = encode(command.replace(opaque=loadgen.OPAQUE_MARK))[8:]
    with pytest.raises(ValueError):
        loadgen.Template(header, markers=["nowhere"])


@pytest.mark.parametrize("serialize_type", [SerializeType.JSON, SerializeType.ROCKETMQ])
@pytest.mark.parametrize("opaque", [0, 17, 2**31 - 1, -5])
def test_answers_read_for_code_and_opaque(serialize_type: SerializeType, opaque: int) -> None:
    answer = RemotingCommand.response(
        25, remark='no "opaque":99, here', body=b'"opaque":3,'
    ).replace(
        opaque=opaque,
        serialize_type=serialize_type,
        ext_fields={"opaque": "8", "x": '"opaque":1,'},
    )
    frame = encode(answer)
    size = int.from_bytes(frame[4:8], "big")
    kind, header = size >> 24, frame[8 : 8 + (size & 0xFFFFFF)]
    assert loadgen.answer_code_opaque(kind, header) == (25, opaque)


def test_count_messages() -> None:
    body = b"".join(size.to_bytes(4, "big") + b"m" * (size - 4) for size in (90, 1200, 8))
    assert loadgen.count_messages(body) == 3
    assert loadgen.count_messages(b"") == 0
    with pytest.raises(ValueError):
        loadgen.count_messages(b"\x00\x00\x00\x00")


def _quick_run(script: str, *options: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "ROCKETMQ_HOME"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--no-java", *options],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return figures


def test_namesrv_benchmark_quick_run() -> None:
    figures = _quick_run("namesrv.py")
    assert figures["route_per_s"] > 0
    assert "route_errors" not in figures
    assert figures["route_cpu_us_per_msg"] > 0
    assert 0 < figures["rss_mib"] < 1000
    assert figures["generator_cpu_us_per_msg"] > 0


def test_broker_benchmark_quick_run() -> None:
    figures = _quick_run("broker.py", "--flush", "ASYNC_FLUSH")
    assert figures["send_async_per_s"] > 0
    assert "send_async_errors" not in figures and "pull_errors" not in figures
    assert figures["pulled_msgs"] >= figures["send_async_per_s"]  # the window's and more
    assert figures["send_async_cpu_us_per_msg"] > 0
    assert 0 < figures["rss_mib"] < 1000


def test_replication_benchmark_quick_run() -> None:
    figures = _quick_run("replication.py")
    for mode in ("sync", "async"):
        assert figures[f"{mode}_send_per_s"] > 0
        assert figures[f"{mode}_lag_samples"] > 0
        assert figures[f"{mode}_lag_bytes_p99"] >= figures[f"{mode}_lag_bytes_p50"] >= 0
        assert figures[f"{mode}_master_cpu_us_per_send"] > 0
    # The restarted slave copied what the master held beyond it.
    assert figures["catchup_bytes"] > 0 and figures["catchup_mb_per_s"] > 0
    assert 0 < figures["master_rss_mb"] < 1000 and 0 < figures["slave_rss_mb"] < 1000
