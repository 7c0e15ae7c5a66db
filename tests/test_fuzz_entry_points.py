"""The fuzz campaigns of fuzz/ start and run cleanly (a few seconds in CI);
the long runs are documented in fuzz/README.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz import corpus, run_hypothesis

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
