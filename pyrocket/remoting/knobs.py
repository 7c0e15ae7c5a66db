"""The settings of one connection (:class:`ConnectionSettings`), what they
stamp on outgoing commands (:func:`outgoing`, :func:`outgoing_frame`), and what ClientConfig and
ServerConfig share to make them (:class:`ConnectionKnobs`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyrocket.protocol.codes import VERSION_V4_7_0, LanguageCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode_payload, encode_parts
from pyrocket.protocol.frame import DEFAULT_MAX_FRAME_SIZE


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Per-connection knobs, filled from a server's or client's config.

    ``idle_seconds``: close after this long without a byte read or written
    (Java's channelMaxIdleTimeSeconds); ``None`` or 0 never closes.
    ``max_in_flight``: requests from the peer accepted but not yet answered;
    more are answered SYSTEM_BUSY. ``workers``: processors running at once.
    ``decode``: parses each frame read whole, as ``decode_payload`` does (a
    server's keeps the headers of its repeated codes:
    :class:`~pyrocket.protocol.repeated.RepeatedHeaders`); a frame over the
    splitter's split size is decoded by ``decode_payload`` itself, its body
    joined off the event loop.
    """

    serialize_type: SerializeType = SerializeType.JSON
    language: LanguageCode = LanguageCode.JAVA
    version: int = VERSION_V4_7_0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    idle_seconds: float | None = 120.0
    max_in_flight: int = 1024
    workers: int = 64
    decode: Callable[[bytes], RemotingCommand] = decode_payload

    def __post_init__(self) -> None:
        if self.max_in_flight < 1 or self.workers < 1:
            raise ValueError("max_in_flight and workers must be at least 1")


def outgoing(
    settings: ConnectionSettings, command: RemotingCommand, opaque: int, flag: int, as_is: bool
) -> RemotingCommand:
    """``command`` as it goes out with ``opaque`` and ``flag``: in the
    configured serialize type, language and version (Java stamps its
    process-wide settings onto every command it creates), unless ``as_is``."""
    if as_is:
        language, version, serialize_type = (
            command.language,
            command.version,
            command.serialize_type,
        )
    else:
        language, version, serialize_type = (
            settings.language,
            settings.version,
            settings.serialize_type,
        )
    return RemotingCommand(
        command.code,
        opaque,
        flag,
        command.remark,
        command.ext_fields,
        command.body,
        language,
        version,
        serialize_type,
    )


def outgoing_frame(
    settings: ConnectionSettings, command: RemotingCommand, opaque: int, flag: int, as_is: bool
) -> tuple[bytes, bytes]:
    """The frame of ``outgoing(settings, command, opaque, flag, as_is)`` as
    :func:`~pyrocket.protocol.command.encode_parts` gives it (head with
    header, body), without building that command first."""
    if as_is:
        return encode_parts(
            command, opaque, flag, command.language, command.version, command.serialize_type
        )
    return encode_parts(
        command, opaque, flag, settings.language, settings.version, settings.serialize_type
    )


class ConnectionKnobs:
    """Mixed into the client and server configs (frozen dataclasses that
    declare these attributes): one way to turn them into the
    :class:`ConnectionSettings` of a connection."""

    __slots__ = ()

    serialize_type: SerializeType
    language: LanguageCode
    version: int
    max_frame_size: int
    channel_max_idle_seconds: float
    max_in_flight_per_connection: int
    workers_per_connection: int

    def connection_settings(self) -> ConnectionSettings:
        """The settings of each connection (an idle time of 0 disables the check)."""
        return ConnectionSettings(
            serialize_type=self.serialize_type,
            language=self.language,
            version=self.version,
            max_frame_size=self.max_frame_size,
            idle_seconds=self.channel_max_idle_seconds or None,
            max_in_flight=self.max_in_flight_per_connection,
            workers=self.workers_per_connection,
        )
