"""Appends under SYNC_FLUSH until killed, printing each acknowledged message.

Run as ``python crash_writer.py <root> <round>``: one putter per queue, each
printing ``<queue> <queue offset> <msg id> <round>:<queue>:<seq>`` as soon as
its put returns PUT_OK. The crash test kills this process with SIGKILL and
checks that every printed message survives.
"""

from __future__ import annotations

import itertools
import sys
import time

import trio

from pyrocket.broker.store import FlushDiskType, PutMessageStatus, open_message_store
from tests.broker.store.helpers import message, small_config

QUEUES = 4


async def main(root: str, round_id: str) -> None:
    config = small_config(
        root,
        flush_disk_type=FlushDiskType.SYNC_FLUSH,
        flush_interval_consume_queue=20,
    )
    # A clock that runs fast (50 ms per reading) so that a short storm spans
    # far more than the checkpoint's 3 s margin and recovery replays from a
    # later file, not from the first.
    start = time.time_ns() // 1_000_000
    readings = itertools.count()

    def fast_clock() -> int:
        return start + 50 * next(readings)

    async with open_message_store(config, now_ms=fast_clock) as store:
        print(f"ready {store.last_exit_ok}", flush=True)

        async def putter(queue_id: int) -> None:
            seq = 0
            while True:
                tag = f"{round_id}:{queue_id}:{seq}"
                body = tag.encode() + b"." * (200 + 37 * (seq % 20))
                result = await store.put_message(message(queue_id=queue_id, body=body, keys=tag))
                if result.status is not PutMessageStatus.PUT_OK or result.append_result is None:
                    print(f"failed {result.status.name}", flush=True)
                    return
                appended = result.append_result
                print(f"{queue_id} {appended.logics_offset} {appended.msg_id} {tag}", flush=True)
                seq += 1

        async with trio.open_nursery() as nursery:
            for queue_id in range(QUEUES):
                nursery.start_soon(putter, queue_id)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
