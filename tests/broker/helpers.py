"""Builders shared by the broker tests: settings for a broker on 127.0.0.1
with its store in a temporary directory, and a running broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from pyrocket.broker.app import Broker, Installer, serve_broker
from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.registration import RegistrationTiming

#: Registration rounds every 50 ms, the first one 50 ms after start.
FAST_TIMING = RegistrationTiming(first_delay=0.05, period=0.05)


def broker_properties(root: Path, namesrv: Sequence[str] = (), **extra: Any) -> dict[str, str]:
    """broker.conf entries for a test broker (any free port, small files)."""
    properties = {
        "brokerClusterName": "DefaultCluster",
        "brokerName": "broker-a",
        "brokerId": "0",
        "brokerIP1": "127.0.0.1",
        "brokerIP2": "127.0.0.1",
        "listenPort": "0",
        "storePathRootDir": str(root / "store"),
        "mappedFileSizeCommitLog": str(64 * 1024),
        "mappedFileSizeConsumeQueue": str(20 * 64),
        "maxMessageSize": str(16 * 1024),
        "flushDiskType": "ASYNC_FLUSH",
    }
    if namesrv:
        properties["namesrvAddr"] = ";".join(namesrv)
    properties.update({key: str(value) for key, value in extra.items()})
    return properties


def broker_settings(
    root: Path,
    namesrv: Sequence[str] = (),
    *,
    config_file: Path | None = None,
    **extra: Any,
) -> BrokerSettings:
    return BrokerSettings.from_properties(
        broker_properties(root, namesrv, **extra), config_file=config_file
    )


@asynccontextmanager
async def running_broker(
    settings: BrokerSettings,
    *,
    timing: RegistrationTiming | None = FAST_TIMING,
    install: Sequence[Installer] = (),
    **options: Any,
) -> AsyncIterator[Broker]:
    """Serve a broker for the block (on 127.0.0.1); leaving it shuts the
    broker down (unregistering it)."""
    async with trio.open_nursery() as nursery:
        broker: Broker = await nursery.start(
            lambda task_status: serve_broker(
                settings,
                host="127.0.0.1",
                timing=timing,
                install=install,
                task_status=task_status,
                **options,
            )
        )
        yield broker
        nursery.cancel_scope.cancel()


def entries(text: str) -> Mapping[str, str]:
    """``key=value`` lines to a dict (test convenience)."""
    return dict(line.split("=", 1) for line in text.splitlines() if line)
