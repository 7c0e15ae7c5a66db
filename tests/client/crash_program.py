"""A consumer that acknowledges only some messages and is then killed:

    python tests/client/crash_program.py NAMESRV TOPIC GROUP COUNT

It takes ``COUNT`` messages with ``auto_ack=False``, acknowledges those
whose ``idx`` is not 3 modulo 7, prints one JSON line per message left
unacknowledged (``{"queue": q, "offset": o}``) and ``{"ready": true}``, and
waits to be killed (it never closes).
"""

from __future__ import annotations

import json
import sys

import trio

from pyrocket.client import PushConsumer
from pyrocket.protocol.bodies.client import ConsumeFromWhere


async def main(namesrv: str, topic: str, group: str, count: int) -> None:
    consumer = PushConsumer(
        group,
        [namesrv],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        auto_ack=False,
        persist_interval=0.2,
    )
    consumer.subscribe(topic)
    async with consumer:
        for _ in range(count):
            message = await consumer.receive()
            if int(message.properties["idx"]) % 7 == 3:
                line = {"queue": message.queue_id, "offset": message.queue_offset}
                print(json.dumps(line), flush=True)
            else:
                consumer.ack(message)
        print(json.dumps({"ready": True}), flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
