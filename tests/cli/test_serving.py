"""The server commands' shared runner: the GIL switch interval it serves
with, and gives back."""

from __future__ import annotations

import logging
import sys

import trio

from pyrocket.cli.serving import SERVER_SWITCH_INTERVAL, serve_until_signalled


async def test_a_server_runs_with_the_short_switch_interval_and_restores_it() -> None:
    before = sys.getswitchinterval()
    assert before > SERVER_SWITCH_INTERVAL
    seen: list[float] = []
    with trio.fail_after(5), trio.CancelScope() as scope:

        async def start(nursery: trio.Nursery) -> None:
            seen.append(sys.getswitchinterval())
            scope.cancel()

        await serve_until_signalled(start, logging.getLogger("test"))
    assert seen == [SERVER_SWITCH_INTERVAL]
    assert sys.getswitchinterval() == before
