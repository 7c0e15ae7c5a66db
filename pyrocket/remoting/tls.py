"""TLS for remoting: Java's ``tls.*`` settings, the SSL contexts they make,
and the server-side wrapping of accepted connections.

:class:`TlsSettings` holds every key of Java's ``TlsSystemConfig`` under its
Java name (:data:`TLS_KEYS`), read from a server's configuration file, the
command line, or a client's options, then from the file named by
``tls.config.file`` (:meth:`TlsSettings.with_config_file`, which, as Java's
``TlsHelper`` does, overrides everything but ``tls.server.mode``,
``tls.enable`` and the file name itself).

Servers: :class:`TlsAcceptor` turns an accepted socket into the stream a
:class:`~pyrocket.remoting.connection.Connection` runs over, per
``tls.server.mode``: ``enforcing`` wants a TLS handshake and closes anything
else; ``permissive`` looks at the first byte without consuming it (a TLS
record starts with 0x16, a RemotingCommand frame with its length word) and
serves both kinds on one port; ``disabled`` does not wrap at all (a server
then needs no acceptor). The wait for that byte and the handshake run in the
connection's own task, bounded, so a slow or silent peer delays nobody else.
Any server (NameServer, broker, fast port, HA port) uses the same acceptor.

Clients: :func:`client_context` and :func:`open_tls_stream`.

Streams are made ``https_compatible``: a peer that closes without a TLS
close_notify is an ordinary close, not an error. RocketMQ frames carry their
own length, so a cut-off frame is still caught by the frame splitter, and
Java's and pyrocket's own clients close that way.

Where Java is insecure pyrocket is not (see docs/deviations.md):
``tls.test.mode.enable`` is parsed and never used (no throwaway certificate,
no trust-everything client); a TLS server without ``tls.server.certPath`` and
``tls.server.keyPath`` refuses to start; client certificates, when asked for,
are verified; a client verifies the server when ``tls.client.authServer`` is
true or a trust file is named. Host names are not checked (Java does not).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
import math
import os
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias

import trio

from pyrocket.errors import ConfigError
from pyrocket.javaprops import read_properties_file
from pyrocket.remoting.logs import RepeatLimiter

log = logging.getLogger("pyrocket.remoting")

#: The first byte of a TLS handshake record (ClientHello).
TLS_HANDSHAKE_BYTE: Final = 0x16
#: Seconds a peer has to complete a TLS handshake (Netty's SslHandler default).
DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
#: ``tls.config.file`` when none is named (Java's default; read only if it exists).
DEFAULT_CONFIG_FILE: Final = "/etc/rocketmq/tls.properties"
#: Seconds between two looks at a server's certificate files (Java's
#: FileWatchService looks every 500 ms).
DEFAULT_WATCH_INTERVAL: Final = 0.5
#: Seconds between two log lines about refused connections of one kind.
REFUSAL_LOG_INTERVAL: Final = 10.0


class TlsMode(enum.Enum):
    """``tls.server.mode``."""

    DISABLED = "disabled"
    PERMISSIVE = "permissive"
    ENFORCING = "enforcing"

    @classmethod
    def parse(cls, text: str) -> TlsMode:
        """Any case; raises ConfigError for another word (Java takes any
        unknown text, "ENFORCING" included, as permissive)."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ConfigError(
                f"tls.server.mode={text.strip()}: must be disabled, permissive or enforcing"
            ) from None


class ClientAuth(enum.Enum):
    """``tls.server.need.client.auth``."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRE = "require"

    @classmethod
    def parse(cls, text: str) -> ClientAuth:
        """Any case, blank is none; raises ConfigError for another word
        (Java takes a misspelt "required" as none)."""
        word = text.strip().lower()
        if not word:
            return cls.NONE
        try:
            return cls(word)
        except ValueError:
            raise ConfigError(
                f"tls.server.need.client.auth={text.strip()}: must be none, optional or require"
            ) from None


def _bool(key: str, text: str) -> bool:
    word = text.strip().lower()
    if word not in ("true", "false"):
        raise ConfigError(f"{key}={text.strip()}: must be true or false")
    return word == "true"


def _path(text: str) -> str | None:
    return text.strip() or None


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Java's ``TlsSystemConfig``, one attribute per key of :data:`TLS_KEYS`.

    ``server_mode`` None means not set: permissive when a server certificate
    and key are configured, disabled otherwise (Java: permissive with a
    throwaway certificate). ``enable`` None means not set (``tls.enable``;
    a broker then connects with TLS when its own mode is enforcing, as
    BrokerStartup does). ``config_file`` None means Java's default path,
    read only if it exists; a named file must exist.
    """

    server_mode: TlsMode | None = None
    enable: bool | None = None
    config_file: str | None = None
    test_mode_enable: bool = True
    server_need_client_auth: ClientAuth = ClientAuth.NONE
    server_key_path: str | None = None
    server_key_password: str | None = field(default=None, repr=False)
    server_cert_path: str | None = None
    server_auth_client: bool = False
    server_trust_cert_path: str | None = None
    client_key_path: str | None = None
    client_key_password: str | None = field(default=None, repr=False)
    client_cert_path: str | None = None
    client_auth_server: bool = False
    client_trust_cert_path: str | None = None

    def with_properties(self, properties: Mapping[str, str]) -> TlsSettings:
        """These settings with the ``tls.*`` entries of ``properties``
        applied (other keys are ignored). Raises ConfigError naming the key."""
        changes: dict[str, Any] = {}
        for key, text in properties.items():
            attr = TLS_KEYS.get(key)
            if attr is not None:
                changes[attr] = _PARSERS[attr](key, text)
        return dataclasses.replace(self, **changes) if changes else self

    def with_config_file(self) -> TlsSettings:
        """These settings overridden by the file ``tls.config.file`` names
        (blocking I/O: call it from a thread or before serving). Every key
        but ``tls.server.mode``, ``tls.enable`` and ``tls.config.file`` is
        taken from the file, as Java's TlsHelper does. Raises ConfigError
        when a named file cannot be read or holds a bad value."""
        if self.config_file is None:
            path = Path(DEFAULT_CONFIG_FILE)
            if not path.is_file():
                return self
        else:
            path = Path(self.config_file)
        entries = read_properties_file(path)
        kept = {k: v for k, v in entries.items() if k not in _NOT_FROM_FILE}
        try:
            return self.with_properties(kept)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    @property
    def effective_server_mode(self) -> TlsMode:
        """The mode a server runs in (see the class for the unset case)."""
        if self.server_mode is not None:
            return self.server_mode
        if self.server_cert_path and self.server_key_path:
            return TlsMode.PERMISSIVE
        return TlsMode.DISABLED

    def describe(self) -> str:
        """The settings in use, passwords hidden (for the start-up log)."""
        parts = []
        for key, attr in TLS_KEYS.items():
            value = getattr(self, attr)
            if value is None:
                continue
            if attr.endswith("_password"):
                value = "******"
            elif isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, bool):
                value = str(value).lower()
            parts.append(f"{key}={value}")
        return ", ".join(parts)


#: Java key -> TlsSettings attribute, in TlsSystemConfig's order.
TLS_KEYS: Final[Mapping[str, str]] = {
    "tls.server.mode": "server_mode",
    "tls.enable": "enable",
    "tls.config.file": "config_file",
    "tls.test.mode.enable": "test_mode_enable",
    "tls.server.need.client.auth": "server_need_client_auth",
    "tls.server.keyPath": "server_key_path",
    "tls.server.keyPassword": "server_key_password",
    "tls.server.certPath": "server_cert_path",
    "tls.server.authClient": "server_auth_client",
    "tls.server.trustCertPath": "server_trust_cert_path",
    "tls.client.keyPath": "client_key_path",
    "tls.client.keyPassword": "client_key_password",
    "tls.client.certPath": "client_cert_path",
    "tls.client.authServer": "client_auth_server",
    "tls.client.trustCertPath": "client_trust_cert_path",
}
#: Keys whose values are secrets: never logged, never listed over the network.
SECRET_TLS_KEYS: Final = frozenset({"tls.server.keyPassword", "tls.client.keyPassword"})
_NOT_FROM_FILE: Final = frozenset({"tls.server.mode", "tls.enable", "tls.config.file"})


def _mode(key: str, text: str) -> TlsMode:
    return TlsMode.parse(text)


def _auth(key: str, text: str) -> ClientAuth:
    return ClientAuth.parse(text)


def _text(key: str, text: str) -> str | None:
    return _path(text)


def _password(key: str, text: str) -> str | None:
    return text or None


_Parser: TypeAlias = Callable[[str, str], object]
#: How each attribute's text is read.
_PARSERS: Final[Mapping[str, _Parser]] = {
    attr: (
        _mode
        if attr == "server_mode"
        else _auth
        if attr == "server_need_client_auth"
        else _bool
        if attr in ("enable", "test_mode_enable", "server_auth_client", "client_auth_server")
        else _password
        if attr.endswith("_password")
        else _text
    )
    for attr in TLS_KEYS.values()
}


def tls_properties(properties: Mapping[str, str]) -> dict[str, str]:
    """The ``tls.*`` entries of ``properties`` pyrocket knows."""
    return {k: v for k, v in properties.items() if k in TLS_KEYS}


# ---------------------------------------------------------------------------
# SSL contexts (blocking: they read files)


def _load_chain(
    context: ssl.SSLContext, cert: str, key: str, password: str | None, side: str
) -> None:
    try:
        # An empty password rather than None: OpenSSL would otherwise prompt
        # on the terminal for an encrypted key.
        context.load_cert_chain(cert, key, password or "")
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"tls.{side}.certPath={cert} / tls.{side}.keyPath={key}: cannot be loaded "
            f"(a PEM certificate chain and a PKCS#8 PEM key, with tls.{side}.keyPassword "
            f"if the key is encrypted): {exc}"
        ) from exc


def _load_trust(context: ssl.SSLContext, path: str | None, purpose: ssl.Purpose, key: str) -> None:
    if path is None:
        context.load_default_certs(purpose)
        return
    try:
        context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{key}={path}: cannot be loaded as PEM certificates: {exc}") from exc


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """The server-side context: the configured certificate, and client
    certificates requested and verified as ``tls.server.need.client.auth``
    says (against ``tls.server.trustCertPath``, else the system's store).
    Raises ConfigError when no certificate is configured or a file fails."""
    cert, key = settings.server_cert_path, settings.server_key_path
    if not cert or not key:
        raise ConfigError(
            "TLS is on (tls.server.mode="
            f"{settings.effective_server_mode.value}) but tls.server.certPath and "
            "tls.server.keyPath are not both set; pyrocket does not make up a throwaway "
            "certificate (tls.test.mode.enable)"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_chain(context, cert, key, settings.server_key_password, "server")
    need = settings.server_need_client_auth
    if need is not ClientAuth.NONE:
        context.verify_mode = ssl.CERT_REQUIRED if need is ClientAuth.REQUIRE else ssl.CERT_OPTIONAL
        _load_trust(
            context,
            settings.server_trust_cert_path,
            ssl.Purpose.CLIENT_AUTH,
            "tls.server.trustCertPath",
        )
    return context


def client_verifies(settings: TlsSettings) -> bool:
    """Whether a client checks the server's certificate chain."""
    return settings.client_auth_server or settings.client_trust_cert_path is not None


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """The client-side context: the server's chain verified when
    :func:`client_verifies` (against ``tls.client.trustCertPath``, else the
    system's store), the client's own certificate presented when configured.
    Raises ConfigError when a file fails to load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if client_verifies(settings):
        _load_trust(
            context,
            settings.client_trust_cert_path,
            ssl.Purpose.SERVER_AUTH,
            "tls.client.trustCertPath",
        )
    else:
        context.verify_mode = ssl.CERT_NONE
        log.warning(
            "TLS client does not verify servers: set tls.client.authServer=true and "
            "tls.client.trustCertPath to do so"
        )
    cert, key = settings.client_cert_path, settings.client_key_path
    if cert or key:
        if not cert or not key:
            raise ConfigError("tls.client.certPath and tls.client.keyPath go together")
        _load_chain(context, cert, key, settings.client_key_password, "client")
    return context


async def load_client_context(settings: TlsSettings) -> ssl.SSLContext:
    """:func:`client_context` after ``tls.config.file``, off the event loop."""

    def build() -> ssl.SSLContext:
        return client_context(settings.with_config_file())

    context: ssl.SSLContext = await trio.to_thread.run_sync(build)
    return context


async def open_tls_stream(
    stream: trio.abc.Stream, context: ssl.SSLContext, host: str
) -> trio.SSLStream[trio.abc.Stream]:
    """``stream`` with a completed client handshake (the caller bounds the
    time). Raises trio.BrokenResourceError when the handshake fails."""
    tls = trio.SSLStream(stream, context, server_hostname=host, https_compatible=True)
    await tls.do_handshake()
    return tls


# ---------------------------------------------------------------------------
# Accepting


def _fingerprints(paths: tuple[str, ...]) -> tuple[bytes | None, ...]:
    """A digest of each file's contents (None: unreadable)."""
    digests: list[bytes | None] = []
    for path in paths:
        try:
            with open(path, "rb") as file:
                digests.append(hashlib.sha256(file.read()).digest())
        except OSError:
            digests.append(None)
    return tuple(digests)


def _plain_without_files(settings: TlsSettings) -> bool:
    """Whether a server runs without TLS and has no file to read to learn
    otherwise (one stat of Java's default ``tls.config.file``, once per
    server start)."""
    return (
        settings.config_file is None
        and settings.effective_server_mode is TlsMode.DISABLED
        and not os.path.isfile(DEFAULT_CONFIG_FILE)
    )


class TlsAcceptor:
    """Wraps accepted sockets per ``mode`` (permissive or enforcing).

    Build it with :meth:`create` before serving; then every connection task
    calls :meth:`accept`, and :meth:`watch` (run beside them) reloads the
    certificate files when they change, as Java's brokers and NameServers do.
    """

    def __init__(
        self,
        mode: TlsMode,
        context: ssl.SSLContext,
        *,
        settings: TlsSettings | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        if mode is TlsMode.DISABLED:
            raise ValueError("a disabled server has no TlsAcceptor")
        self.mode = mode
        self.context = context
        self.settings = settings
        self.handshake_timeout = handshake_timeout
        self._limits: dict[str, RepeatLimiter] = {}

    @classmethod
    async def create(
        cls, settings: TlsSettings, *, handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    ) -> TlsAcceptor | None:
        """The acceptor ``settings`` ask for (after ``tls.config.file``), or
        None when the server runs without TLS. Raises ConfigError."""

        if _plain_without_files(settings):
            # Nothing to read: no thread, so a plain server starts as it always did.
            return None

        def build() -> tuple[TlsSettings, ssl.SSLContext | None]:
            resolved = settings.with_config_file()
            if resolved.effective_server_mode is TlsMode.DISABLED:
                return resolved, None
            return resolved, server_context(resolved)

        resolved, context = await trio.to_thread.run_sync(build)
        mode = resolved.effective_server_mode
        if context is None:
            return None
        log.info("TLS %s mode: %s", mode.value, resolved.describe())
        return cls(mode, context, settings=resolved, handshake_timeout=handshake_timeout)

    async def watch(self, interval: float = DEFAULT_WATCH_INTERVAL) -> None:
        """Every ``interval`` seconds, look at the certificate, key and trust
        files; when their contents changed and they load, new connections
        get them (connections already open keep theirs). Files that do not
        load (a key written before its certificate, say) are logged and the
        previous ones kept until they do. Runs until cancelled."""
        settings = self.settings
        if settings is None:
            return
        paths = tuple(
            path
            for path in (
                settings.server_cert_path,
                settings.server_key_path,
                settings.server_trust_cert_path,
            )
            if path
        )
        seen = await trio.to_thread.run_sync(_fingerprints, paths)
        while True:
            await trio.sleep(interval)
            now = await trio.to_thread.run_sync(_fingerprints, paths)
            if now == seen:
                continue
            seen = now
            try:
                context = await trio.to_thread.run_sync(server_context, settings)
            except ConfigError as exc:
                log.error("TLS files changed but do not load; keeping the previous ones: %s", exc)
                continue
            self.context = context
            log.info("TLS files changed: reloaded %s", ", ".join(paths))

    def _refused(self, kind: str, message: str, *args: object) -> None:
        limiter = self._limits.get(kind)
        if limiter is None:
            limiter = self._limits[kind] = RepeatLimiter(REFUSAL_LOG_INTERVAL)
        limiter.log(log, logging.WARNING, trio.current_time(), message, *args)

    async def accept(
        self, stream: trio.SocketStream, peer: str, *, first_byte_timeout: float | None = None
    ) -> trio.abc.Stream | None:
        """The stream to serve ``stream`` over, or None when it was refused
        or failed (then it is closed, and the reason logged).

        Permissive mode waits up to ``first_byte_timeout`` (None: for ever)
        for the peer's first byte, then gives a TLS peer ``handshake_timeout``
        for its handshake; enforcing mode gives the first byte and the
        handshake ``handshake_timeout`` together."""
        now = trio.current_time()
        if self.mode is TlsMode.ENFORCING:
            # One deadline for the first byte and the handshake together.
            first_deadline = handshake_deadline = now + self.handshake_timeout
        else:
            first_deadline = math.inf if first_byte_timeout is None else now + first_byte_timeout
            handshake_deadline = math.inf  # set once the first byte is in
        first: bytes = b""
        with trio.move_on_at(first_deadline) as waited:
            try:
                first = await stream.socket.recv(1, socket.MSG_PEEK)
            except OSError as exc:
                log.info("connection from %s failed before its first byte: %s", peer, exc)
        if not first:
            if waited.cancelled_caught:
                self._refused("silent", "closing connection from %s: nothing sent in time", peer)
            await trio.aclose_forcefully(stream)
            return None
        if first[0] != TLS_HANDSHAKE_BYTE:
            if self.mode is TlsMode.PERMISSIVE:
                return stream
            self._refused(
                "plaintext",
                "closing connection from %s: not TLS, and this server enforces TLS",
                peer,
            )
            await trio.aclose_forcefully(stream)
            return None
        if handshake_deadline == math.inf:
            handshake_deadline = trio.current_time() + self.handshake_timeout
        tls = trio.SSLStream(stream, self.context, server_side=True, https_compatible=True)
        try:
            with trio.fail_at(handshake_deadline):
                await tls.do_handshake()
        except trio.TooSlowError:
            self._refused(
                "timeout",
                "closing connection from %s: TLS handshake not done in %gs",
                peer,
                self.handshake_timeout,
            )
        except trio.BrokenResourceError as exc:
            self._refused(
                "handshake",
                "closing connection from %s: TLS handshake failed: %s",
                peer,
                exc.__cause__ or exc,
            )
        else:
            return tls
        await trio.aclose_forcefully(tls)
        return None


__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_WATCH_INTERVAL",
    "SECRET_TLS_KEYS",
    "TLS_HANDSHAKE_BYTE",
    "TLS_KEYS",
    "ClientAuth",
    "TlsAcceptor",
    "TlsMode",
    "TlsSettings",
    "client_context",
    "client_verifies",
    "load_client_context",
    "open_tls_stream",
    "server_context",
    "tls_properties",
]
