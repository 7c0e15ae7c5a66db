"""Access control on a running server (broker or NameServer): the file
``<rocketmqHome>/conf/plain_acl.yml`` loaded at start (a server with ACL on
does not start without a good one), reloaded when it changes (a change that
does not load is logged and the last good configuration kept, as Java's
watcher does), the request check as a processor-table guard, and the ACL
admin requests' edits written back to the file.

The check itself is :func:`pyrocket.acl.validator.check`; this module adds
the I/O around it. Refusals answer SYSTEM_ERROR with Java's remark; the first
refusal of each peer IP is logged (a bounded table), never a secret key.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

import trio

from pyrocket.acl.addresses import peer_ip
from pyrocket.acl.plain import ACL_FILE, AclConfig, dump_document, load_text, parse_document
from pyrocket.acl.validator import BROKER_ADMIN_CODES, Refusal, check
from pyrocket.errors import ConfigError
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting.connection import Connection

log = logging.getLogger("pyrocket.acl")

#: Seconds between two looks at the file (Java's FileWatchService: 500 ms).
WATCH_INTERVAL: Final = 0.5
#: Peers whose first refusal was logged, remembered at most.
LOGGED_PEERS: Final = 1024
#: Heartbeat bodies above this are decoded for the check in a worker thread.
INLINE_BODY_LIMIT: Final = 64 * 1024

NeededOverride = Callable[[RemotingCommand], "dict[str, int] | None"]


def acl_file(rocketmq_home: str | None) -> Path:
    """``<rocketmqHome>/conf/plain_acl.yml``; raises ConfigError without a home."""
    if not rocketmq_home:
        raise ConfigError(
            "aclEnable=true needs rocketmqHome (or the ROCKETMQ_HOME environment "
            "variable) to find conf/plain_acl.yml"
        )
    return Path(rocketmq_home) / ACL_FILE


def _read(path: Path) -> tuple[str, tuple[int, int], bytes]:
    try:
        data = path.read_bytes()
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the ACL file: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8: {exc}") from exc
    return text, (stat.st_mtime_ns, stat.st_size), hashlib.sha256(data).digest()


def _write(path: Path, text: str) -> tuple[tuple[int, int], bytes]:
    data = text.encode("utf-8")
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    stat = path.stat()
    return (stat.st_mtime_ns, stat.st_size), hashlib.sha256(data).digest()


class AclGuard:
    """The ACL of one server. Build it with :meth:`load` (blocking), hand it
    to ``ProcessorTable.set_guard`` and run :meth:`watch` beside the server."""

    def __init__(
        self,
        path: Path,
        config: AclConfig,
        *,
        admin_codes: frozenset[int] = BROKER_ADMIN_CODES,
        needed: NeededOverride | None = None,
        checked: frozenset[int] | None = None,
        stamp: tuple[tuple[int, int], bytes] = ((0, 0), b""),
    ) -> None:
        self.path = path
        #: The request codes checked (None: every one).
        self.checked = checked
        self.config = config
        self.admin_codes = admin_codes
        self._needed = needed
        self._stat, self._digest = stamp
        self._logged: OrderedDict[str, None] = OrderedDict()
        self._edit_lock = trio.Lock()
        self._complaint: str | None = None
        #: Configurations loaded since start (tests wait on it).
        self.reloads = 0

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        admin_codes: frozenset[int] = BROKER_ADMIN_CODES,
        needed: NeededOverride | None = None,
        checked: frozenset[int] | None = None,
    ) -> AclGuard:
        """Read ``path``; raises ConfigError saying what is wrong with it.
        ``admin_codes`` need an admin account, ``needed`` replaces Java's
        table of the resources a request needs, only ``checked`` codes are
        checked (None: all)."""
        text, stat, digest = _read(path)
        config = load_text(text, str(path))
        log.info(
            "ACL loaded from %s: %d accounts, %d global white addresses",
            path,
            len(config.accounts),
            len(config.global_white),
        )
        return cls(
            path,
            config,
            admin_codes=admin_codes,
            needed=needed,
            checked=checked,
            stamp=(stat, digest),
        )

    # -- the check ----------------------------------------------------------

    def __call__(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand | Awaitable[RemotingCommand | None] | None:
        if self.checked is not None and request.code not in self.checked:
            return None
        needed = None if self._needed is None else self._needed(request)
        if (
            needed is None
            and request.code == RequestCode.HEART_BEAT
            and len(request.body or b"") > INLINE_BODY_LIMIT
        ):
            # A big heartbeat is decoded off the event loop, as its processor does.
            return self._check_later(conn, request)
        return self._verdict(conn, request, needed)

    async def _check_later(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand | None:
        config, address = self.config, conn.remote_address
        refusal = await trio.to_thread.run_sync(check, config, request, address, self.admin_codes)
        return self._answer(conn, request, refusal)

    def _verdict(
        self, conn: Connection, request: RemotingCommand, needed: dict[str, int] | None
    ) -> RemotingCommand | None:
        refusal = check(self.config, request, conn.remote_address, self.admin_codes, needed)
        return self._answer(conn, request, refusal)

    def _answer(
        self, conn: Connection, request: RemotingCommand, refusal: Refusal | None
    ) -> RemotingCommand | None:
        if refusal is None:
            return None
        ip = peer_ip(conn.remote_address)
        if ip not in self._logged:
            self._logged[ip] = None
            if len(self._logged) > LOGGED_PEERS:
                self._logged.popitem(last=False)
            log.warning(
                "ACL refused request code %d from %s: %s (further refusals of this peer "
                "are not logged)",
                request.code,
                conn.remote_address,
                refusal.reason,
            )
        return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, refusal.remark)

    # -- the file -------------------------------------------------------------

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Reload the file whenever it changes, until cancelled."""
        while True:
            await trio.sleep(interval)
            await self.reload_if_changed()

    async def reload_if_changed(self) -> bool:
        """Reload the file if it changed; True when a new configuration took effect."""
        try:
            stat = await trio.to_thread.run_sync(self.path.stat)
        except OSError as exc:
            self._complain(f"cannot read the ACL file: {exc.strerror or exc}")
            return False
        if (stat.st_mtime_ns, stat.st_size) == self._stat:
            return False
        async with self._edit_lock:
            try:
                text, stamp, digest = await trio.to_thread.run_sync(_read, self.path)
                if digest == self._digest:
                    self._stat = stamp
                    return False
                config = load_text(text, str(self.path))
            except ConfigError as exc:
                self._stat = (stat.st_mtime_ns, stat.st_size)
                self._complain(str(exc))
                return False
            self._stat, self._digest = stamp, digest
            self.config = config
            self.reloads += 1
            self._complaint = None
        log.info("ACL file %s changed: reloaded, %d accounts", self.path, len(config.accounts))
        return True

    def _complain(self, why: str) -> None:
        # Polled twice a second: the same problem is logged once.
        if why == self._complaint:
            return
        self._complaint = why
        log.error("ACL file %s not reloaded, the last good configuration stays: %s", self.path, why)

    async def apply(self, edit: Callable[[AclConfig], Mapping[str, Any] | None]) -> bool:
        """Run ``edit`` on the configuration as it is now; write the document
        it returns to the file and use it. False when ``edit`` returns None.
        Raises ConfigError (a bad edit, or the file cannot be written)."""
        async with self._edit_lock:
            document = edit(self.config)
            if document is None:
                return False
            config = parse_document(dict(document), str(self.path))
            try:
                stamp = await trio.to_thread.run_sync(_write, self.path, dump_document(document))
            except OSError as exc:
                raise ConfigError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
            self._stat, self._digest = stamp
            self.config = config
            self.reloads += 1
            return True


__all__ = ["LOGGED_PEERS", "WATCH_INTERVAL", "AclGuard", "acl_file"]
