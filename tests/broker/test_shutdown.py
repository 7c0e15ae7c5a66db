"""A broker's shutdown has a deadline: a NameServer that never answers the
unregistration, or a shutdown step that hangs, cannot keep the broker from
stopping, and the store is still closed cleanly when only the NameServer hangs."""

from __future__ import annotations

from pathlib import Path

import trio

from pyrocket.broker.app import Broker
from pyrocket.broker.outer_api import UNREGISTER_TIMEOUT
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv

GRACE = 1.0


async def never_answer(request: RemotingCommand) -> None:
    await trio.sleep_forever()


async def test_a_namesrv_that_never_answers_does_not_hold_the_shutdown(tmp_path: Path) -> None:
    hooks_run: list[str] = []

    async def hook() -> None:
        hooks_run.append("final persistence")

    def install(broker: Broker) -> None:
        broker.add_shutdown_hook(hook)

    with trio.fail_after(30):
        async with recording_namesrv(
            tmp_path / "ns", before={RequestCode.UNREGISTER_BROKER: never_answer}
        ) as ns:
            settings = broker_settings(tmp_path / "b", [ns.addr])
            async with running_broker(settings, install=[install], shutdown_grace=GRACE):
                started = trio.current_time()
            # Leaving the block cancelled the broker; the exit waited for it.
            took = trio.current_time() - started
            # The unregistration alone would have waited UNREGISTER_TIMEOUT.
            assert took < min(GRACE + 1, UNREGISTER_TIMEOUT)
            assert hooks_run == ["final persistence"]
            assert ns.unregistered == []  # the request was sent, never answered
            # The store was flushed and closed on the way out.
            async with running_broker(broker_settings(tmp_path / "b")) as again:
                assert again.store.last_exit_ok is True


async def test_a_shutdown_step_that_hangs_is_cut_at_the_grace(tmp_path: Path) -> None:
    reached: list[bool] = []

    async def hanging_hook() -> None:
        reached.append(True)
        await trio.sleep_forever()

    def install(broker: Broker) -> None:
        broker.add_shutdown_hook(hanging_hook)

    with trio.fail_after(30):
        async with recording_namesrv(tmp_path / "ns") as ns:
            settings = broker_settings(tmp_path / "b", [ns.addr])
            async with running_broker(settings, install=[install], shutdown_grace=GRACE) as broker:
                addr = broker.broker_addr
                started = trio.current_time()
            took = trio.current_time() - started
            assert reached == [True]
            assert GRACE <= took < GRACE + 2
            # It still unregistered first.
            assert ns.unregistered == [addr]
