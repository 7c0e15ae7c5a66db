"""The fuzz campaigns of fuzz/ start and run cleanly (a few seconds in CI);
the long runs are documented in fuzz/README.md."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fuzz import corpus, run_hypothesis, servers
from tests.test_fuzz_findings import OPEN_FINDINGS

ROOT = Path(__file__).resolve().parents[1]


def test_hypothesis_campaign_runs_every_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_hypothesis.main(["--examples", "20", "--no-database"]) == 0
    out = capsys.readouterr().out
    for name in (
        "frame",
        "payload",
        "rocketmq_header",
        "json",
        "body",
        "compressed_body",
        "header",
        "selector",
    ):
        assert f"{name}: 20 inputs in" in out


def test_seed_corpus_is_written(tmp_path: Path) -> None:
    assert corpus.main([str(tmp_path)]) == 0
    names = {path.name.split("-")[0] for path in tmp_path.iterdir()}
    assert {"frames", "headers", "bodies", "compressed", "ext"} <= names


@pytest.mark.parametrize("target", ["all", "frame"])
def test_atheris_harness_runs(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "fuzz.atheris_target", target, "-runs=300", "-seed=1"],
        cwd=tmp_path,  # libFuzzer writes crash files to the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done 300 runs" in result.stderr


def test_server_campaign_runs_and_checks_the_canary(capsys: pytest.CaptureFixture[str]) -> None:
    """A few seconds against real servers: requests go out, the canary is
    checked after every sequence, and nothing but the open findings of
    tests/test_fuzz_findings.py turns up."""
    status = servers.main(["--seconds", "4", "--seed", "1", "--workers", "2"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["requests"] > 0
    assert summary["canary_rounds"] == summary["sequences"] > 0
    unexpected = [
        key
        for key in summary["distinct_findings"]
        if not any(marker in key for marker in OPEN_FINDINGS)
    ]
    assert unexpected == []
    assert status == (1 if summary["findings"] else 0)


def test_server_sequences_are_reproducible_from_the_seed() -> None:
    seeds = servers.load_seeds()
    assert seeds.sequences["namesrv"] and seeds.sequences["broker"]

    def run(seed: int) -> list[servers.FuzzSequence]:
        mutator = servers.Mutator(seeds, random.Random(seed))
        return [mutator.sequence() for _ in range(200)]

    first = run(5)
    assert first == run(5)
    assert first != run(6)
    assert {s.server for s in first} == {"namesrv", "broker"}
    excluded = {int(code) for code in servers.EXCLUDED_CODES}
    assert not any(
        r.command and r.command.code in excluded
        for s in seeds.sequences.values()
        for seq in s
        for r in seq
    )


def test_a_traceback_in_a_pyrocket_log_is_a_finding() -> None:
    findings = servers.Findings()
    with servers.capture_logs(findings) as handler:
        log = logging.getLogger("pyrocket.remoting")
        log.warning("closing connection %s: bad frame: %s", "peer", "short")
        try:
            raise KeyError("x")
        except KeyError:
            log.exception("processor for request code %d from %s failed", 10, "peer")
    assert handler.templates["WARNING closing connection %s: bad frame: %s"] == 1
    assert findings.total == 1
    [key] = findings.counts
    assert "KeyError" in key and "processor for request code" in key


def test_a_blocked_event_loop_is_a_finding() -> None:
    findings = servers.Findings()
    stalled = threading.Event()
    watchdog = servers.Watchdog(1.0, findings, stalled.set)
    thread = threading.Thread(target=watchdog.watch, daemon=True)
    thread.start()
    # No beat() runs: to the watchdog this thread is a blocked event loop.
    assert stalled.wait(20)
    thread.join(5)
    [key] = findings.counts
    assert key.startswith("stall: event loop blocked at")
    assert "test_a_blocked_event_loop_is_a_finding" in findings.seen[key]["detail"]
