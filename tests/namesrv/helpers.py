"""Helpers for NameServer tests: an in-process NameServer on 127.0.0.1:0, a
raw frame connection, and REGISTER_BROKER requests built from topic configs.

    async with running_namesrv(tmp_path) as ns:
        ...  # ns.port, ns.state.routes, ns.housekeeping
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from pyrocket.namesrv import NameServer, NamesrvConfig
from pyrocket.protocol.bodies import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.checksum import crc32
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.frame import NEED_DATA, FrameSplitter
from pyrocket.protocol.headers import RegisterBrokerRequestHeader


def namesrv_config(tmp_path: Path, **changes: Any) -> NamesrvConfig:
    """A config whose files all live under ``tmp_path``."""
    values: dict[str, Any] = {
        "rocketmq_home": str(tmp_path / "home"),
        "kv_config_path": str(tmp_path / "namesrv" / "kvConfig.json"),
        "config_store_path": str(tmp_path / "namesrv.properties"),
        "listen_port": 0,
    }
    values.update(changes)
    return NamesrvConfig(**values)


@asynccontextmanager
async def running_namesrv(
    tmp_path: Path | None = None, config: NamesrvConfig | None = None
) -> AsyncIterator[NameServer]:
    """A NameServer serving on 127.0.0.1 (port 0) until the block ends."""
    if config is None:
        assert tmp_path is not None
        config = namesrv_config(tmp_path)
    server = NameServer(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, "127.0.0.1", 0)
        yield server
        nursery.cancel_scope.cancel()


def address(server: NameServer) -> str:
    assert server.port is not None
    return f"127.0.0.1:{server.port}"


class RawConnection:
    """Frames in and out of one TCP connection, bytes untouched."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.splitter = FrameSplitter()
        self.eof = False

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, frame: bytes) -> None:
        await self.stream.send_all(frame)

    def _pending_frame(self) -> bytes | None:
        payload = self.splitter.next_frame()
        if payload is NEED_DATA:
            return None
        assert isinstance(payload, bytes)
        return len(payload).to_bytes(4, "big") + payload

    async def receive_frame(self) -> bytes:
        """The next whole frame (length word included); fails at EOF."""
        while True:
            frame = self._pending_frame()
            if frame is not None:
                return frame
            data = await self.stream.receive_some(65536)
            assert data, "connection closed while a frame was expected"
            self.splitter.feed(bytes(data))

    async def expect_silence(self, seconds: float) -> None:
        """Nothing arrives for ``seconds`` (and the connection stays open)."""
        assert self._pending_frame() is None
        with trio.move_on_after(seconds):
            data = await self.stream.receive_some(65536)
            raise AssertionError(f"unexpected {len(data)} bytes: {bytes(data)[:200]!r}")

    async def expect_close(self) -> None:
        """The peer closes without sending a frame."""
        received = b""
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not data:
                break
            received += data
        assert received == b"", f"expected a close, got {received[:200]!r}"
        self.eof = True

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def call(self, request: RemotingCommand, opaque: int) -> RemotingCommand:
        """Send ``request`` with ``opaque`` and decode the next frame."""
        await self.send(encode(request.replace(opaque=opaque)))
        return decode(await self.receive_frame())


def topic_table(
    topics: Iterable[str | TopicConfig],
) -> dict[str, TopicConfig]:
    table: dict[str, TopicConfig] = {}
    for topic in topics:
        config = topic if isinstance(topic, TopicConfig) else TopicConfig(topic, 4, 4)
        assert config.topic_name is not None
        table[config.topic_name] = config
    return table


def register_request(
    *,
    cluster: str = "DefaultCluster",
    broker_name: str = "broker-a",
    broker_addr: str = "127.0.0.1:10911",
    broker_id: int = 0,
    ha_server_addr: str | None = None,
    topics: Iterable[str | TopicConfig] = (),
    data_version: DataVersion | None = None,
    filter_servers: Iterable[str] = (),
    compressed: bool = False,
    oneway: bool = False,
) -> RemotingCommand:
    """A REGISTER_BROKER request as a Java broker builds it."""
    wrapper = TopicConfigSerializeWrapper(
        topic_table(topics), data_version or DataVersion(1_600_000_000_000, 1)
    )
    body = RegisterBrokerBody(wrapper, tuple(filter_servers)).encode(compressed)
    header = RegisterBrokerRequestHeader(
        broker_name=broker_name,
        broker_addr=broker_addr,
        cluster_name=cluster,
        ha_server_addr=ha_server_addr or broker_addr,
        broker_id=broker_id,
        compressed=compressed,
        body_crc32=crc32(body),
    )
    return RemotingCommand.request(RequestCode.REGISTER_BROKER, header, body=body, oneway=oneway)
