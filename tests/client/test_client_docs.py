"""Every ```python block of docs/client.md is a whole program: each runs, in
its own process, against a fresh ``pyrocket up`` (the NameServer address in
``PYROCKET_NAMESRV``) and must finish without error within its deadline."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import trio

from tests.client.helpers import running_up

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "client.md"
#: Each example is meant to take under 5 s; the margin is for a busy machine.
PER_EXAMPLE = 30.0


def examples(text: str) -> list[tuple[str, str]]:
    """(the section it is under, the code) of each python block, in order."""
    found: list[tuple[str, str]] = []
    section = ""
    for match in re.finditer(r"^(#{2,3} [^\n]*)$|^```python\n(.*?)^```$", text, re.M | re.S):
        if match.group(1) is not None:
            section = match.group(1).lstrip("# ").strip()
        else:
            found.append((section, match.group(2)))
    return found


def test_the_guide_is_found_whole() -> None:
    found = examples(GUIDE.read_text(encoding="utf-8"))
    sections = {section for section, _ in found}
    assert {"Producer", "Push consumer", "Broadcasting", "Lite pull consumer"} <= sections
    assert {"Request-reply", "Transactions", "The blocking API"} <= sections
    assert all("PYROCKET_NAMESRV" in code for _, code in found)


async def test_every_example_runs(tmp_path: Path) -> None:
    found = examples(GUIDE.read_text(encoding="utf-8"))
    assert found
    home = tmp_path / "home"
    home.mkdir()
    failures: list[str] = []
    async with running_up(tmp_path) as running:
        env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(home))
        env["PYROCKET_NAMESRV"] = running.namesrv_addr
        env.pop("ROCKETMQ_CLIENT_LOCAL_OFFSET_STORE_DIR", None)
        for number, (section, code) in enumerate(found, 1):
            with trio.move_on_after(PER_EXAMPLE) as deadline:
                result = await trio.run_process(
                    [sys.executable, "-c", code],
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    cwd=tmp_path,
                    env=env,
                )
            if deadline.cancelled_caught:
                failures.append(f"example {number} (under '{section}') took over {PER_EXAMPLE} s")
            elif result.returncode != 0:
                failures.append(
                    f"example {number} (under '{section}') failed:\n{result.stderr.decode()}"
                )
    assert not failures, "\n".join(failures)
