"""One small application written against ``rocketmq.client``'s blocking API,
run with either implementation of it:

    python tests/client/blocking_program.py MODULE NAMESRV TOPIC GROUP COUNT

``MODULE`` is ``rocketmq.client`` (the C++ client of PyPI's ``rocketmq``
wheel) or ``pyrocket.client.blocking``. It sends ``COUNT`` messages with
keys, tags and properties (send_sync), consumes them with a PushConsumer
and prints one JSON object per delivery, then ``{"done": ...}``.
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time

from tests.broker.cpp_client import shutdown


def body_of(i: int) -> bytes:
    return f"blocking message {i} ".encode() * (1 + i % 5)


def main(module_name: str, namesrv: str, topic: str, group: str, count: int) -> None:
    api = importlib.import_module(module_name)
    producer = api.Producer(f"{group}_producer")
    producer.set_namesrv_addr(namesrv)
    started = time.monotonic()
    producer.start()
    statuses = []
    for i in range(count):
        msg = api.Message(topic)
        msg.set_keys(f"KEY{i}")
        msg.set_tags(f"Tag{i % 3}")
        msg.set_property("idx", str(i))
        msg.set_property("colour", ("red", "green")[i % 2])
        msg.set_body(body_of(i))
        for attempt in range(3):  # the C++ client's first send may miss its route
            try:
                statuses.append(int(producer.send_sync(msg).status))
                break
            except Exception:
                if attempt == 2:
                    raise
                time.sleep(0.5)
    shutdown(producer, started)

    seen: list[dict[str, object]] = []
    lock = threading.Lock()

    def callback(msg: object) -> None:
        item = {
            "topic": msg.topic,  # type: ignore[attr-defined]
            "body": bytes(msg.body).decode(),  # type: ignore[attr-defined]
            "keys": bytes(msg.keys).decode(),  # type: ignore[attr-defined]
            "tags": bytes(msg.tags).decode(),  # type: ignore[attr-defined]
            "idx": bytes(msg.get_property("idx")).decode(),  # type: ignore[attr-defined]
            "colour": bytes(msg.get_property("colour")).decode(),  # type: ignore[attr-defined]
            "missing": bytes(msg.get_property("nothing")).decode(),  # type: ignore[attr-defined]
            "id_set": bool(msg.id),  # type: ignore[attr-defined]
            "reconsume_times": msg.reconsume_times,  # type: ignore[attr-defined]
        }
        with lock:
            seen.append(item)

    consumer = api.PushConsumer(group)
    consumer.set_namesrv_addr(namesrv)
    consumer.set_thread_count(1)
    consumer.subscribe(topic, callback)
    started = time.monotonic()
    consumer.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(seen) >= count:
                break
        time.sleep(0.1)
    time.sleep(0.5)  # a duplicate would show up now
    shutdown(consumer, started)
    print(json.dumps({"statuses": statuses}), flush=True)
    for item in seen:
        print(json.dumps(item), flush=True)
    print(json.dumps({"done": len(seen)}), flush=True)


if __name__ == "__main__":
    module, namesrv, topic, group, count = sys.argv[1:]
    main(module, namesrv, topic, group, int(count))
