"""startMonitoring's service against an in-process NameServer and broker: a
round reports a group's backlog and its clients' running information, and
an offset-moved event the broker stores is reported."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from pyrocket.client.admin import Admin
from pyrocket.client.admin.monitor import (
    DefaultMonitorListener,
    DeleteMsgsEvent,
    MonitorService,
    UndoneMsgs,
)
from pyrocket.client.admin.reading import PullStatus, QueueReader
from pyrocket.client.producer import Producer, new_message
from pyrocket.protocol.bodies.admin import ConsumerRunningInfo
from pyrocket.protocol.bodies.client import MessageQueue
from tests.cli.test_broker_cli import cli
from tests.client.helpers import consumer, running_up
from tests.remoting.helpers import wait_until


class Recorder:
    def __init__(self) -> None:
        self.rounds = 0
        self.undone: list[UndoneMsgs] = []
        self.events: list[DeleteMsgsEvent] = []
        self.infos: list[dict[str, ConsumerRunningInfo]] = []

    def begin_round(self) -> None:
        self.undone.clear()

    def report_undone_msgs(self, undone: UndoneMsgs) -> None:
        self.undone.append(undone)

    def report_delete_msgs_event(self, event: DeleteMsgsEvent) -> None:
        self.events.append(event)

    def report_consumer_running_info(self, table: dict[str, ConsumerRunningInfo]) -> None:
        self.infos.append(table)

    def end_round(self) -> None:
        self.rounds += 1


async def test_monitor_reports_backlog_running_info_and_offset_moves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    topic = "MonTopic"
    with trio.fail_after(40):
        async with (
            running_up(tmp_path) as running,
            Producer("mon_producers", [running.namesrv_addr], client_ip="127.0.0.1") as producer,
        ):
            ns = running.namesrv_addr
            for i in range(5):
                await producer.send(new_message(topic, f"m{i}".encode()))
            async with consumer(ns, "mon_group", topic) as reader, Admin(ns) as admin:
                for _ in range(5):
                    await reader.receive()
                await reader.commit()
                for i in range(3):
                    await producer.send(new_message(topic, f"late{i}".encode()))
                recorder = Recorder()
                service = MonitorService(admin, recorder, first_delay=0, round_interval=0.2)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(service.run)
                    await wait_until(lambda: recorder.rounds >= 1, 0.02)
                    mine = [u for u in recorder.undone if u.consumer_group == "mon_group"]
                    on_topic = [u for u in mine if u.topic == topic]
                    assert len(on_topic) == 1
                    assert on_topic[0].undone_msgs_total == 3
                    assert 1 <= on_topic[0].undone_msgs_single_mq <= 3
                    assert str(on_topic[0]).startswith(
                        f"UndoneMsgs [consumerGroup=mon_group, topic={topic}, undoneMsgsTotal=3, "
                    )
                    assert any(reader.client_id in table for table in recorder.infos)

                    # A pull from far past the end: the broker stores an event.
                    queue = MessageQueue(topic, "broker-a", 0)
                    result = await QueueReader(admin, "mon_group").pull(queue, "*", 999, 1)
                    assert result.status is PullStatus.OFFSET_ILLEGAL
                    await wait_until(lambda: bool(recorder.events), 0.02)
                    event = recorder.events[0]
                    assert event.offset_moved_event.consumer_group == "mon_group"
                    assert event.offset_moved_event.offset_request == 999
                    assert str(event).startswith(
                        "DeleteMsgsEvent [offsetMovedEvent=OffsetMovedEvent "
                        "[consumerGroup=mon_group, messageQueue=MessageQueue "
                        f"[topic={topic}, brokerName=broker-a, queueId=0], offsetRequest=999, "
                    )
                    nursery.cancel_scope.cancel()

                # The default listener logs a round as Java's does.
                with caplog.at_level(logging.INFO, logger="pyrocket.client.monitor"):
                    quiet = MonitorService(admin, DefaultMonitorListener())
                    await quiet.do_round()
                messages = [
                    r.getMessage() for r in caplog.records if r.name == "pyrocket.client.monitor"
                ]
                assert (
                    messages[0] == "[MONITOR] =========================================beginRound"
                )
                assert any(
                    m.startswith("[MONITOR] reportUndoneMsgs: UndoneMsgs [") for m in messages
                )
                assert messages[-1] == "[MONITOR] =========================================endRound"

    code, _, _ = await cli("admin", "startMonitoring", "--help")
    assert code == 0
