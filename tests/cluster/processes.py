"""The processes of a cluster test run in network namespaces: NameServers,
brokers and a consumer, each ``python -m ...`` under ``ip netns exec``, with
its stdout and stderr in files of a temporary directory. A server counts as
up once its stdout shows the boot line; every process is killed when the
test leaves :class:`Processes`, however it leaves."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import trio

from tests.cluster.netns import Member

REPO: Final = Path(__file__).resolve().parents[2]

#: ``PR_SET_PDEATHSIG`` of <sys/prctl.h>.
PR_SET_PDEATHSIG: Final = 1

#: How long a server may take to print its boot line (s): the machine is shared.
BOOT_TIMEOUT: Final = 60.0


def _die_with_parent() -> None:
    # Run in the child before exec (``ip netns exec`` then execs python in
    # the same process): killed if the test process dies without cleaning up.
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Processes:
    """Children started in namespaces; all killed on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def _env(self, name: str) -> dict[str, str]:
        home = self.root / name / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(home)}

    def log(self, name: str, tail: int = 4000) -> str:
        """The last ``tail`` characters ``name`` wrote on stderr so far."""
        path = self.root / name / "stderr"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def start(self, name: str, member: Member, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        """``python argv`` in ``member``'s namespace, stdout and stderr in
        files of ``root/name``. Started from the calling thread (not a worker
        thread, as trio's open_process does) so that PR_SET_PDEATHSIG ties
        the child to this process rather than to a thread that may end."""
        (self.root / name).mkdir(parents=True, exist_ok=True)
        with (
            (self.root / name / "stdout").open("wb") as stdout,
            (self.root / name / "stderr").open("wb") as stderr,
        ):
            process = subprocess.Popen(
                member.command([sys.executable, *argv]),
                cwd=REPO,
                env=self._env(name),
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        self.running[name] = process
        return process

    async def booted(self, name: str, marker: str = "boot success") -> None:
        """Until ``name``'s stdout shows ``marker``; fails with its log if it
        exits first or takes longer than :data:`BOOT_TIMEOUT`."""
        process = self.running[name]
        path = self.root / name / "stdout"
        with trio.move_on_after(BOOT_TIMEOUT):
            while marker not in path.read_text(errors="replace"):
                if process.poll() is not None:
                    raise AssertionError(f"{name} exited {process.returncode}: {self.log(name)}")
                await trio.sleep(0.1)
            return
        raise AssertionError(f"{name} did not boot in {BOOT_TIMEOUT}s: {self.log(name)}")

    async def namesrv(self, name: str, member: Member, settings: Mapping[str, str]) -> str:
        """Start a NameServer on ``member`` port 9876; its address."""
        argv = ["-m", "pyrocket", "--log-level", "WARNING", "namesrv", "-p", "9876"]
        argv += ["--host", member.ip]
        for key, value in settings.items():
            argv += ["--set", f"{key}={value}"]
        self.start(name, member, argv)
        return f"{member.ip}:9876"

    async def broker(self, name: str, member: Member, properties: Mapping[str, str]) -> str:
        """Start a broker on ``member`` with these broker.conf keys; its address."""
        argv = ["-m", "pyrocket", "--log-level", "WARNING", "broker"]
        for key, value in properties.items():
            argv += ["--set", f"{key}={value}"]
        self.start(name, member, argv)
        return f"{member.ip}:{properties['listenPort']}"

    def kill_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.kill()

    async def __aenter__(self) -> Processes:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill_all()
        for process in self.running.values():
            # Killed: each exits within milliseconds.
            process.wait(timeout=10)


class ConsumerEvents:
    """The JSON lines a :mod:`tests.cluster.consumer_child` prints, as they come."""

    def __init__(self) -> None:
        self.started = trio.Event()
        #: ``msg`` events: keys, receive time, queue.
        self.messages: list[dict[str, Any]] = []
        #: ``pull`` events.
        self.pulls: list[dict[str, Any]] = []

    async def read(self, path: Path) -> None:
        """Follow the child's stdout file for ever (cancel to stop)."""
        offset = 0
        pending = b""
        while True:
            with path.open("rb") as file:
                file.seek(offset)
                chunk = file.read()
            offset += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._take(json.loads(line))
            await trio.sleep(0.05)

    def _take(self, event: dict[str, Any]) -> None:
        if "msg" in event:
            self.messages.append(event)
        elif "pull" in event:
            self.pulls.append(event)
        elif event.get("started"):
            self.started.set()

    def keys(self) -> set[str]:
        return {event["msg"] for event in self.messages}
