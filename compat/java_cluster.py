"""Start real Java RocketMQ 4.7 processes from a user's install, for live tests.

The install is named by ``ROCKETMQ_HOME`` (the official layout: ``lib/*.jar``,
``conf/``). Every process runs ``java -cp "$ROCKETMQ_HOME/lib/*" <main class>``
on 127.0.0.1 with its home directory (logs, kvConfig.json) and data inside a
test's temporary directory, and is killed when its context exits.

The JVM flags are the minimum that Java 17 needs for a 4.7 broker (its mapped
files are unmapped through JDK internals); Java 8 does not know these flags,
so they are only passed to a JVM of version 9 or newer.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NAMESRV_MAIN = "org.apache.rocketmq.namesrv.NamesrvStartup"
BROKER_MAIN = "org.apache.rocketmq.broker.BrokerStartup"
ADMIN_MAIN = "org.apache.rocketmq.tools.command.MQAdminStartup"

_BROKER_OPENS = (
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
)


def rocketmq_home() -> Path | None:
    """The install named by ROCKETMQ_HOME, or None when unset or unusable."""
    value = os.environ.get("ROCKETMQ_HOME")
    if not value:
        return None
    home = Path(value)
    if not any(home.glob("lib/rocketmq-*.jar")) or shutil.which("java") is None:
        return None
    return home


def free_port(span: int = 1) -> int:
    """A port p such that p-2 .. p+span-1 were all free a moment ago (a Java
    broker also binds listenPort-2 and listenPort+1)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 1100:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for candidate in range(port - 2, port + span):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port range found")


def _java_major() -> int:
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return 8
    major = int(match.group(1))
    return int(match.group(2) or 8) if major == 1 else major


@dataclass
class JavaProcess:
    """A running Java process; ``log`` collects its stdout and stderr."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_output(self, pattern: str, timeout: float) -> None:
        """Wait until ``pattern`` (a regex) appears in the output.

        Raises RuntimeError with the output if the process exits first or the
        timeout passes.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.output()):
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not print {pattern!r}:\n{self.output()[-4000:]}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful: a broker unregisters), then SIGKILL if needed."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)


@dataclass
class JavaCluster:
    """Launches Java RocketMQ processes of one install inside ``workdir``."""

    home: Path
    workdir: Path
    serialize_type: str = "JSON"
    processes: list[JavaProcess] = field(default_factory=list)
    #: Extra JVM flags for every process started after they are set
    #: (``-Dtls.*`` system properties, for instance).
    jvm_flags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._modern = _java_major() >= 9

    @property
    def classpath(self) -> str:
        return str(self.home / "lib" / "*")

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["ROCKETMQ_HOME"] = str(self.home)
        env["ROCKETMQ_SERIALIZE_TYPE"] = self.serialize_type
        env.pop("NAMESRV_ADDR", None)
        env.update(extra or {})
        return env

    def _command(
        self, main: str, args: Sequence[str], *, heap: str, broker: bool = False
    ) -> list[str]:
        flags = [f"-Xms{heap}", f"-Xmx{heap}", f"-Duser.home={self.workdir}"]
        flags.append(f"-Drocketmq.serialize.type={self.serialize_type}")
        flags.append("-Djava.net.preferIPv4Stack=true")
        if broker and self._modern:
            flags.extend(_BROKER_OPENS)
        flags.extend(self.jvm_flags)
        return ["java", *flags, "-cp", self.classpath, main, *args]

    def _spawn(self, name: str, command: list[str], env: Mapping[str, str] | None) -> JavaProcess:
        log = self.workdir / f"{name}.out"
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, env=self._env(env)
            )
        process = JavaProcess(name, popen, log)
        self.processes.append(process)
        return process

    def start_namesrv(self, port: int, properties: Mapping[str, str] | None = None) -> JavaProcess:
        """A NameServer on 127.0.0.1:``port``; waits until it says it booted."""
        conf = self.workdir / f"namesrv-{port}.properties"
        lines = {"listenPort": str(port), **(properties or {})}
        conf.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        process = self._spawn(
            f"namesrv-{port}", self._command(NAMESRV_MAIN, ["-c", str(conf)], heap="256m"), None
        )
        process.wait_for_output(r"boot success", 60)
        return process

    def start_broker(
        self,
        name: str,
        port: int,
        namesrv_addr: str,
        properties: Mapping[str, str] | None = None,
    ) -> JavaProcess:
        """A broker listening on ``port`` (and port-2, port+1) with its store
        under the work dir; waits until it says it booted."""
        store = self.workdir / f"store-{name}-{port}"
        conf_values = {
            "brokerClusterName": "DefaultCluster",
            "brokerName": name,
            "brokerId": "0",
            "brokerRole": "ASYNC_MASTER",
            "flushDiskType": "ASYNC_FLUSH",
            "listenPort": str(port),
            "namesrvAddr": namesrv_addr,
            "brokerIP1": "127.0.0.1",
            "brokerIP2": "127.0.0.1",
            "autoCreateTopicEnable": "true",
            "storePathRootDir": str(store),
            "storePathCommitLog": str(store / "commitlog"),
            "mappedFileSizeCommitLog": str(64 * 1024 * 1024),
            **(properties or {}),
        }
        conf = self.workdir / f"broker-{name}-{port}.conf"
        conf.write_text("".join(f"{k}={v}\n" for k, v in conf_values.items()))
        process = self._spawn(
            f"broker-{name}-{port}",
            self._command(BROKER_MAIN, ["-c", str(conf)], heap="512m", broker=True),
            None,
        )
        process.wait_for_output(r"boot success", 90)
        return process

    def run_class(
        self,
        main: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run a Java main class to completion (tools, examples)."""
        return subprocess.run(
            self._command(main, args, heap="128m"),
            capture_output=True,
            text=True,
            env=self._env(env),
            timeout=timeout,
        )

    def spawn_class(
        self, name: str, main: str, args: Sequence[str] = (), env: Mapping[str, str] | None = None
    ) -> JavaProcess:
        """Start a long-running Java main class (e.g. a push consumer)."""
        return self._spawn(name, self._command(main, args, heap="128m"), env)

    def mqadmin(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """``mqadmin <args>``; returns the finished process (check returncode/stdout)."""
        return self.run_class(ADMIN_MAIN, args, timeout=timeout)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


@contextlib.contextmanager
def java_cluster(home: Path, workdir: Path, serialize_type: str = "JSON") -> Iterator[JavaCluster]:
    """A JavaCluster whose processes are all stopped on exit."""
    cluster = JavaCluster(home, workdir, serialize_type)
    try:
        yield cluster
    finally:
        cluster.stop_all()
