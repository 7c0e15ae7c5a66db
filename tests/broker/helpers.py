"""Builders shared by the broker tests: settings for a broker on 127.0.0.1
with its store in a temporary directory, a running broker (in this process
or as a ``python -m pyrocket broker`` child), and the SEND_MESSAGE_V2 and
PULL_MESSAGE requests the data-plane tests send."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from pyrocket.broker.app import Broker, Installer, serve_broker
from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.registration import RegistrationTiming
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import PullMessageRequestHeader, SendMessageRequestHeaderV2
from pyrocket.protocol.message import encode_properties

REPO = Path(__file__).resolve().parents[2]

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


async def stored_in_topic(broker: Broker, topic: str, expected: int) -> int:
    """How many messages ``topic`` holds, once it holds ``expected`` or
    after two seconds (oneway sends are never answered, so a producer may
    exit with its last ones still on their way)."""
    store = broker.store
    with trio.move_on_after(2):
        while True:
            stored = sum(store.get_max_offset_in_queue(topic, q) for q in store.queue_ids(topic))
            if stored >= expected:
                break
            await trio.sleep(0.02)
    return stored


def assert_group_consumed_all(broker: Broker, group: str, topic: str) -> None:
    """``group`` committed, for every queue of ``topic``, the queue's end."""
    assert broker.data_plane is not None
    offsets = broker.data_plane.consumer_offset_manager
    store = broker.store
    queues = store.queue_ids(topic)
    assert queues
    for queue_id in queues:
        committed = offsets.query_offset(group, topic, queue_id)
        assert committed == store.get_max_offset_in_queue(topic, queue_id), (group, queue_id)


def entries(text: str) -> Mapping[str, str]:
    """``key=value`` lines to a dict (test convenience)."""
    return dict(line.split("=", 1) for line in text.splitlines() if line)


@asynccontextmanager
async def broker_process(properties: Mapping[str, str]) -> AsyncIterator[tuple[trio.Process, str]]:
    """``python -m pyrocket broker`` with ``properties`` as ``--set``
    overrides; yields the process and its address once it has booted.
    Leaving the block kills the process if it still runs."""
    command = [sys.executable, "-m", "pyrocket", "--log-level", "ERROR", "broker"]
    for key, value in properties.items():
        command += ["--set", f"{key}={value}"]
    process = await trio.lowlevel.open_process(
        command, cwd=REPO, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert process.stdout is not None
    try:
        output = b""
        with trio.fail_after(30):
            while b"\n" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, f"broker exited before booting: {output!r}"
                output += chunk
        found = re.search(rb", ([0-9.]+:[0-9]+)\] boot success", output)
        assert found is not None, output
        yield process, found.group(1).decode()
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(10):
            await process.wait()


def send_request(
    topic: str,
    queue_id: int,
    body: bytes,
    *,
    tags: str = "TagA",
    keys: str | None = None,
    group: str = "test_producer",
) -> RemotingCommand:
    """A SEND_MESSAGE_V2 as the Java producer sends it (queue count 4)."""
    properties = {"TAGS": tags, "WAIT": "true"}
    if keys is not None:
        properties["KEYS"] = keys
    header = SendMessageRequestHeaderV2(
        producer_group=group,
        topic=topic,
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=queue_id,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties=encode_properties(properties),
        reconsume_times=0,
        unit_mode=False,
        batch=False,
    )
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=body)


#: PULL_MESSAGE sysFlag bits (PullSysFlag): commit offset, suspend, subscription.
PULL_FLAG_SUSPEND = 0x2
PULL_FLAG_SUBSCRIPTION = 0x4


def pull_request(
    topic: str,
    queue_id: int,
    offset: int,
    *,
    group: str = "test_consumer",
    subscription: str = "*",
    max_msgs: int = 32,
    suspend_ms: int = 0,
) -> RemotingCommand:
    """A PULL_MESSAGE carrying its subscription; held up to ``suspend_ms``
    (long polling) when that is positive."""
    sys_flag = PULL_FLAG_SUBSCRIPTION | (PULL_FLAG_SUSPEND if suspend_ms > 0 else 0)
    header = PullMessageRequestHeader(
        consumer_group=group,
        topic=topic,
        queue_id=queue_id,
        queue_offset=offset,
        max_msg_nums=max_msgs,
        sys_flag=sys_flag,
        commit_offset=0,
        suspend_timeout_millis=suspend_ms,
        subscription=subscription,
        sub_version=0,
        expression_type="TAG",
    )
    return RemotingCommand.request(RequestCode.PULL_MESSAGE, header)
