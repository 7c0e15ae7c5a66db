"""Network namespaces for cluster tests: a private layer-2 segment (a Linux
bridge in a namespace of its own) and one namespace per cluster member, each
joined to the bridge by a veth pair and given an address on a 10.x.y.0/24
subnet. Partitions cut the traffic between two members with blackhole routes
in both of their namespaces; delay and loss use ``tc netem`` where the kernel
has it.

Nothing here touches the host's own namespace: every link lives in a
namespace created for the run (named ``prk<pid>-<random>-<member>``, so
parallel runs never clash), and :func:`network` deletes them all when it
ends, however it ends (and those of earlier runs whose process was
killed). :func:`netns_problem` says why this cannot work here (not root, no
``ip``, no namespaces); tests skip with that reason. :func:`sockets_in` puts
the sockets a trio run opens in a member's namespace, so the test's own
clients live there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final

import trio

#: ``CLONE_NEWNET`` of <sched.h>: setns(2) into a network namespace.
CLONE_NEWNET: Final = 0x40000000

#: How long one ``ip`` or ``tc`` command may take (s).
COMMAND_TIMEOUT: Final = 10.0

#: The bridge's name inside the hub namespace.
BRIDGE: Final = "br0"


class NetnsError(RuntimeError):
    """An ``ip``/``tc`` command failed: the command and its stderr."""


def run_ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one ``ip``/``tc`` command line (``args[0]`` is the program)."""
    done = subprocess.run(
        list(args), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done


@functools.cache
def netns_problem() -> str | None:
    """Why network namespaces cannot be used here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    name = f"prk{os.getpid()}-{secrets.token_hex(3)}-probe"
    try:
        run_ip("ip", "netns", "add", name)
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return f"ip netns add fails here: {exc}"
    try:
        run_ip("ip", "-n", name, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
        run_ip("ip", "-n", name, "link", "add", "b0", "type", "bridge")
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return f"veth pairs or bridges are not available: {exc}"
    finally:
        run_ip("ip", "netns", "del", name, check=False)
    return None


@functools.cache
def netem_problem() -> str | None:
    """Why ``tc qdisc ... netem`` (delay, loss) cannot be used, or None."""
    if netns_problem() is not None:
        return netns_problem()
    if shutil.which("tc") is None:
        return "the tc command (iproute2) is not installed"
    name = f"prk{os.getpid()}-{secrets.token_hex(3)}-netem"
    try:
        run_ip("ip", "netns", "add", name)
        run_ip("ip", "-n", name, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
        run_ip("tc", "-n", name, "qdisc", "add", "dev", "p0", "root", "netem", "delay", "1ms")
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return f"tc netem is not available (kernel module sch_netem?): {exc}"
    finally:
        run_ip("ip", "netns", "del", name, check=False)
    return None


@dataclass(frozen=True, slots=True)
class Member:
    """One namespace on the segment: its name and its address."""

    label: str
    netns: str
    ip: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this member's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]


@dataclass(slots=True)
class Network:
    """The members of one run's segment, and the partitions in force."""

    prefix: str
    subnet: str
    hub: str
    members: dict[str, Member] = field(default_factory=dict)
    _cuts: set[tuple[str, str]] = field(default_factory=set)

    def __getitem__(self, label: str) -> Member:
        return self.members[label]

    def add(self, label: str) -> Member:
        """A new namespace joined to the bridge (its ``eth0``, the next address)."""
        index = len(self.members) + 1
        member = Member(label, f"{self.prefix}-{label}", f"{self.subnet}.{index}")
        self.members[label] = member
        run_ip("ip", "netns", "add", member.netns)
        run_ip("ip", "-n", member.netns, "link", "set", "lo", "up")
        port = f"h{index}"
        run_ip(
            "ip", "-n", member.netns, "link", "add", "eth0", "type", "veth",
            "peer", "name", port, "netns", self.hub,
        )  # fmt: skip
        run_ip("ip", "-n", self.hub, "link", "set", port, "master", BRIDGE)
        run_ip("ip", "-n", self.hub, "link", "set", port, "up")
        run_ip("ip", "-n", member.netns, "addr", "add", f"{member.ip}/24", "dev", "eth0")
        run_ip("ip", "-n", member.netns, "link", "set", "eth0", "up")
        return member

    def _route(self, action: str, inside: Member, to: Member) -> None:
        run_ip("ip", "-n", inside.netns, "route", action, "blackhole", f"{to.ip}/32")

    def cut(self, a: str, b: str) -> None:
        """Drop every packet between members ``a`` and ``b`` (both ways);
        established connections hang as on a real partition."""
        first, second = self[a], self[b]
        self._route("add", first, second)
        self._route("add", second, first)
        self._cuts.add((a, b))

    def heal(self, a: str, b: str) -> None:
        """Undo :meth:`cut`."""
        first, second = self[a], self[b]
        self._route("del", first, second)
        self._route("del", second, first)
        self._cuts.discard((a, b))

    def netem(self, label: str, *spec: str) -> None:
        """Apply ``tc netem`` (``"delay", "50ms", "loss", "5%"``) to what
        ``label`` sends. Raises NetnsError where netem is missing."""
        run_ip(
            "tc", "-n", self[label].netns, "qdisc", "replace", "dev", "eth0", "root", "netem", *spec
        )

    def teardown(self) -> None:
        """Delete every namespace of the run (its links go with it)."""
        for member in self.members.values():
            run_ip("ip", "netns", "del", member.netns, check=False)
        run_ip("ip", "netns", "del", self.hub, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_leftovers() -> None:
    """Delete the namespaces of runs whose process is gone (killed before
    it could clean up); their servers died with it (PR_SET_PDEATHSIG)."""
    listed = run_ip("ip", "netns", "list", check=False).stdout
    for line in listed.splitlines():
        name = line.split(" ", 1)[0]
        found = re.fullmatch(r"prk(\d+)-[0-9a-f]+-\w+", name)
        if found is not None and not _alive(int(found.group(1))):
            run_ip("ip", "netns", "del", name, check=False)


@contextmanager
def network(labels: Sequence[str]) -> Iterator[Network]:
    """A bridge and one namespace per label; all deleted on the way out."""
    sweep_leftovers()
    token = f"{os.getpid()}-{secrets.token_hex(3)}"
    # Each run has a segment of its own, in its own namespaces, so the subnet
    # only has to be private; varying it keeps captures of parallel runs apart.
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
    prefix = f"prk{token}"
    net = Network(prefix=prefix, subnet=subnet, hub=f"{prefix}-hub")
    try:
        run_ip("ip", "netns", "add", net.hub)
        run_ip("ip", "-n", net.hub, "link", "add", BRIDGE, "type", "bridge")
        run_ip("ip", "-n", net.hub, "link", "set", BRIDGE, "up")
        for label in labels:
            net.add(label)
        yield net
    finally:
        net.teardown()


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


class _NamespaceSockets(trio.abc.SocketFactory):
    """Makes each trio socket in another network namespace: the calling
    thread goes there for the ``socket()`` call alone, then back."""

    def __init__(self, target: int, home: int) -> None:
        self._target = target
        self._home = home

    def socket(
        self,
        family: socket.AddressFamily | int = socket.AF_INET,
        type: socket.SocketKind | int = socket.SOCK_STREAM,
        proto: int = 0,
    ) -> trio.socket.SocketType:
        _setns(self._target)
        try:
            raw = socket.socket(family, type, proto)
        finally:
            _setns(self._home)
        return trio.socket.from_stdlib_socket(raw)


@contextmanager
def sockets_in(member: Member) -> Iterator[None]:
    """For the block, every trio socket the current trio run opens (its
    clients' connections) lives in ``member``'s namespace. Only the socket
    calls move there and back: no thread stays in the namespace, so worker
    threads and later tests are untouched."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{member.netns}", os.O_RDONLY)
        try:
            previous = trio.socket.set_custom_socket_factory(_NamespaceSockets(target, home))
            try:
                yield
            finally:
                trio.socket.set_custom_socket_factory(previous)
        finally:
            os.close(target)
    finally:
        os.close(home)
