"""The server commands' shared runner: the GIL switch interval and the
collector settings it serves with, and gives back."""

from __future__ import annotations

import gc
import logging
import sys

import trio

from pyrocket.cli.serving import (
    SERVER_GC_THRESHOLD,
    SERVER_SWITCH_INTERVAL,
    serve_until_signalled,
)


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


async def test_a_server_serves_with_startup_objects_frozen_and_gives_the_collector_back() -> None:
    before = gc.get_threshold()
    assert before != SERVER_GC_THRESHOLD
    assert gc.get_freeze_count() == 0
    loaded: list[object] = []
    seen: list[tuple[tuple[int, int, int], bool, bool]] = []
    with trio.fail_after(5), trio.CancelScope() as scope:

        async def start(nursery: trio.Nursery) -> None:
            # Something the server loads while starting: it outlives the start.
            loaded.append({"table": [object() for _ in range(100)]})

            async def serving() -> None:
                await trio.lowlevel.checkpoint()
                # Frozen objects are out of every generation the collector walks.
                made_while_serving = [object()]
                walked = gc.get_objects()
                seen.append(
                    (
                        gc.get_threshold(),
                        any(obj is loaded[0] for obj in walked),
                        any(obj is made_while_serving for obj in walked),
                    )
                )
                scope.cancel()

            nursery.start_soon(serving)

        await serve_until_signalled(start, logging.getLogger("test"))
    assert len(seen) == 1
    threshold, loaded_walked, new_walked = seen[0]
    assert threshold == SERVER_GC_THRESHOLD
    assert not loaded_walked
    assert new_walked
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
