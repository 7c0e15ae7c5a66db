"""What ClientConfig and ServerConfig share: the settings of each connection
they open or accept (:class:`ConnectionKnobs`)."""

from __future__ import annotations

from pyrocket.protocol.codes import LanguageCode, SerializeType
from pyrocket.remoting.connection import ConnectionSettings


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
