"""A push consumer run as a child process of a cluster test (in a network
namespace of its own): ``python -m tests.cluster.consumer_child SPEC`` with
SPEC a JSON object (``namesrv``, ``group``, ``topic``, ``client_ip`` and
consumer options). It prints one JSON line per event on stdout:

- ``{"started": true}`` once the consumer runs;
- ``{"msg": KEYS, "uniq": UNIQ_KEY, "queue": Q, "offset": O, "t": TIME}``
  per message handed out (each counts as consumed);
- ``{"pull": ADDR, "queue": Q, "code": CODE, "suggest": ID, "found": N,
  "t": TIME}`` per PULL_MESSAGE answered, ``{"pull": ADDR, "queue": Q,
  "error": NAME, "t": TIME}`` per one that failed.

Times are ``time.time()`` when the event happened. It runs until killed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import trio

from pyrocket.client.consumer import PushConsumer
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import PullMessageRequestHeader, PullMessageResponseHeader

#: Answers that carry a PullMessageResponseHeader.
PULL_ANSWERS = (
    ResponseCode.SUCCESS,
    ResponseCode.PULL_NOT_FOUND,
    ResponseCode.PULL_RETRY_IMMEDIATELY,
    ResponseCode.PULL_OFFSET_MOVED,
)


def emit(event: dict[str, Any]) -> None:
    event["t"] = time.time()
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def record_pulls(consumer: PushConsumer) -> None:
    """Emit an event for every PULL_MESSAGE the consumer sends."""
    brokers = consumer.instance.brokers
    real = brokers.pull_message

    async def recording(
        addr: str,
        header: PullMessageRequestHeader,
        timeout: float,  # noqa: ASYNC109
    ) -> RemotingCommand:
        event: dict[str, Any] = {"pull": addr, "queue": header.queue_id}
        try:
            response = await real(addr, header, timeout)
        except (PyrocketError, OSError) as exc:
            emit({**event, "error": type(exc).__name__})
            raise
        event["code"] = response.code
        if response.code in PULL_ANSWERS:
            answer = response.decode_header(PullMessageResponseHeader)
            event["suggest"] = answer.suggest_which_broker_id
            if response.code == ResponseCode.SUCCESS:
                event["found"] = answer.next_begin_offset - header.queue_offset
        emit(event)
        return response

    brokers.pull_message = recording  # type: ignore[method-assign]


async def main(spec: dict[str, Any]) -> None:
    consumer = PushConsumer(
        spec["group"],
        spec["namesrv"],
        client_ip=spec["client_ip"],
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        **spec.get("options", {}),
    )
    consumer.subscribe(spec["topic"], "*")
    record_pulls(consumer)
    async with consumer:
        emit({"started": True})
        while True:
            message = await consumer.receive()
            emit(
                {
                    "msg": message.keys,
                    "uniq": message.uniq_key,
                    "queue": message.queue_id,
                    "offset": message.queue_offset,
                }
            )


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    trio.run(main, json.loads(sys.argv[1]))
