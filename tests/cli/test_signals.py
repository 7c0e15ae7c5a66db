"""Signals and the server commands: the first SIGINT starts the graceful
shutdown, a second one during it ends the process at once."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import trio

from pyrocket.broker.outer_api import UNREGISTER_TIMEOUT
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from tests.broker.helpers import broker_properties
from tests.broker.recording_namesrv import recording_namesrv

ROOT = Path(__file__).resolve().parents[2]


async def _booted(process: trio.Process) -> None:
    assert process.stdout is not None
    received = b""
    while b"boot success" not in received:
        chunk = await process.stdout.receive_some()
        assert chunk, "the broker exited before it booted"
        received += chunk


async def test_a_second_sigint_during_shutdown_exits_at_once(tmp_path: Path) -> None:
    unregistering = trio.Event()

    async def hold_the_unregistration(request: RemotingCommand) -> None:
        # The NameServer never answers: the broker's graceful shutdown waits
        # for its unregistration timeout.
        unregistering.set()
        await trio.sleep_forever()

    conf = tmp_path / "broker.conf"
    properties = broker_properties(tmp_path)
    conf.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
    with trio.fail_after(30):
        async with recording_namesrv(
            tmp_path / "ns", before={RequestCode.UNREGISTER_BROKER: hold_the_unregistration}
        ) as ns:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "pyrocket", "broker", "-c", str(conf), "-n", ns.addr],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            try:
                await _booted(process)
                process.send_signal(signal.SIGINT)
                await unregistering.wait()
                # The shutdown is now waiting on the NameServer; the second
                # signal ends it well before the unregistration times out.
                process.send_signal(signal.SIGINT)
                with trio.fail_after(UNREGISTER_TIMEOUT - 1):
                    status = await process.wait()
                assert status == 128 + signal.SIGINT
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()


async def test_one_sigint_waits_for_the_graceful_shutdown(tmp_path: Path) -> None:
    conf = tmp_path / "broker.conf"
    properties = broker_properties(tmp_path)
    conf.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
    with trio.fail_after(30):
        async with recording_namesrv(tmp_path / "ns") as ns:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "pyrocket", "broker", "-c", str(conf), "-n", ns.addr],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            try:
                await _booted(process)
                process.send_signal(signal.SIGINT)
                assert await process.wait() == 0
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            assert ns.count(RequestCode.UNREGISTER_BROKER) == 1
            assert not ns.routes.live_brokers
