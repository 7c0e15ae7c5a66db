"""The C++ RocketMQ client (PyPI ``rocketmq==0.4.4``) as a command, for the
interop tests, which run it in a subprocess (it starts threads and writes
``$HOME/logs``; a crash must not take the test runner with it).

    python tests/broker/cpp_client.py produce NAMESRV TOPIC COUNT
    python tests/broker/cpp_client.py push NAMESRV TOPIC GROUP COUNT SECONDS
    python tests/broker/cpp_client.py pull NAMESRV TOPIC GROUP

Messages are made by :func:`expected`: message ``i`` has tags ``Tag<i%3>``,
keys ``KEY<i>``, properties ``idx`` and ``origin``, a body that names ``i``
(every 100th one over 4 KiB, so the client compresses it), and is sent sync,
async, oneway or orderly by ``i % 4``. ``produce`` prints one JSON object
(what the client reported); the consumers print one JSON object per message
received and then ``{"done": ...}``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time

ORIGIN = "cpp-interop"
MODES = ("sync", "async", "oneway", "orderly")


def expected(i: int) -> dict[str, object]:
    """What message ``i`` carries."""
    body = f"message {i} from the C++ client ".encode()
    if i % 100 == 0:
        body = body * 200  # about 6 KiB: compressed by the client
    return {
        "i": i,
        "tags": f"Tag{i % 3}",
        "keys": f"KEY{i}",
        "props": {"idx": str(i), "origin": ORIGIN},
        "body_sha": hashlib.sha256(body).hexdigest(),
        "body_len": len(body),
        "mode": MODES[i % 4],
        "body": body,
    }


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def received(msg: object) -> dict[str, object]:
    body = bytes(msg.body)  # type: ignore[attr-defined]
    return {
        "i": int(_text(msg.get_property("idx"))),  # type: ignore[attr-defined]
        "tags": _text(msg.tags),  # type: ignore[attr-defined]
        "keys": _text(msg.keys),  # type: ignore[attr-defined]
        "props": {
            "idx": _text(msg.get_property("idx")),  # type: ignore[attr-defined]
            "origin": _text(msg.get_property("origin")),  # type: ignore[attr-defined]
        },
        "body_sha": hashlib.sha256(body).hexdigest(),
        "body_len": len(body),
        "queue": msg.queue_id,  # type: ignore[attr-defined]
        "offset": msg.queue_offset,  # type: ignore[attr-defined]
    }


#: The C++ client refreshes its routes 3 s after it starts (then every 30 s).
#: Shut down while that refresh waits for the NameServer, it aborts
#: (``terminate called after throwing ... boost::thread_interrupted``).
FIRST_ROUTE_REFRESH = 3.0
#: How long around that moment shutting down is put off.
REFRESH_WINDOW = (FIRST_ROUTE_REFRESH - 0.5, FIRST_ROUTE_REFRESH + 0.5)


def shutdown(client: object, started: float) -> None:
    """Shut ``client`` (started at ``time.monotonic()`` ``started``) down,
    outside the window of its first route refresh."""
    age = time.monotonic() - started
    if REFRESH_WINDOW[0] <= age < REFRESH_WINDOW[1]:
        time.sleep(REFRESH_WINDOW[1] - age)
    client.shutdown()  # type: ignore[attr-defined]


def send_first(producer: object, msg: object) -> object:
    """Send message 0 (sync). Its route answer makes the C++ client open the
    broker connection in two threads at once (this send and a heartbeat);
    the one that misses the transport table's lock fails at once, before
    anything is written, with "No route info of this topic". The send is
    made again once the connection is up; had the first attempt reached the
    broker, the consumers would see the message twice and the test fail."""
    from rocketmq.exceptions import ProducerSendSyncFailed

    try:
        return producer.send_sync(msg)  # type: ignore[attr-defined]
    except ProducerSendSyncFailed:
        time.sleep(0.5)
        return producer.send_sync(msg)  # type: ignore[attr-defined]


def produce(namesrv: str, topic: str, count: int) -> None:
    from rocketmq.client import Message, Producer, SendStatus

    producer = Producer("cpp_interop_producer")
    producer.set_namesrv_addr(namesrv)
    started = time.monotonic()
    producer.start()
    report = {"sync_ok": 0, "orderly_ok": 0, "oneway": 0, "async_ok": 0, "async_failed": 0}
    lock = threading.Lock()
    pending = [0]

    def on_success(result: object) -> None:
        with lock:
            report["async_ok"] += 1
            pending[0] -= 1

    def on_error(exc: object) -> None:
        with lock:
            report["async_failed"] += 1
            pending[0] -= 1

    for i in range(count):
        spec = expected(i)
        msg = Message(topic)
        msg.set_tags(str(spec["tags"]))
        msg.set_keys(str(spec["keys"]))
        for name, value in dict(spec["props"]).items():  # type: ignore[call-overload]
            msg.set_property(name, value)
        msg.set_body(spec["body"])
        mode = spec["mode"]
        if mode == "sync":
            result = send_first(producer, msg) if i == 0 else producer.send_sync(msg)
            if result.status == SendStatus.OK:  # type: ignore[attr-defined]
                report["sync_ok"] += 1
        elif mode == "async":
            with lock:
                pending[0] += 1
            producer.send_async(msg, on_success, on_error)
        elif mode == "oneway":
            producer.send_oneway(msg)
            report["oneway"] += 1
        else:
            if producer.send_orderly(msg, i, 3).status == SendStatus.OK:
                report["orderly_ok"] += 1
    deadline = time.time() + 20
    while pending[0] > 0 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the last oneway frames leave
    shutdown(producer, started)
    print(json.dumps(report), flush=True)


def push(namesrv: str, topic: str, group: str, count: int, seconds: float) -> None:
    from rocketmq.client import PushConsumer

    seen: list[dict[str, object]] = []
    lock = threading.Lock()

    def callback(msg: object) -> None:
        item = received(msg)
        with lock:
            seen.append(item)

    consumer = PushConsumer(group)
    consumer.set_namesrv_addr(namesrv)
    # One consume thread: with several, the C++ client can write a queue's
    # offset back (a thread that computed an older offset stores it after
    # one that computed a newer; it has no increase-only update, unlike
    # Java's client), and at shutdown it commits that older offset.
    consumer.set_thread_count(1)
    consumer.subscribe(topic, callback)
    started = time.monotonic()
    consumer.start()
    deadline = time.time() + seconds
    while time.time() < deadline:
        with lock:
            if len({item["i"] for item in seen}) >= count:
                break
        time.sleep(0.1)
    time.sleep(1.0)  # a duplicate would show up now
    shutdown(consumer, started)
    for item in seen:
        print(json.dumps(item), flush=True)
    print(json.dumps({"done": len(seen)}), flush=True)


def pull(namesrv: str, topic: str, group: str) -> None:
    from rocketmq.client import PullConsumer

    consumer = PullConsumer(group)
    consumer.set_namesrv_addr(namesrv)
    started = time.monotonic()
    consumer.start()
    count = 0
    for msg in consumer.pull(topic):
        print(json.dumps(received(msg)), flush=True)
        count += 1
    shutdown(consumer, started)
    print(json.dumps({"done": count}), flush=True)


def main(argv: list[str]) -> None:
    command, namesrv, topic, *rest = argv
    if command == "produce":
        produce(namesrv, topic, int(rest[0]))
    elif command == "push":
        push(namesrv, topic, rest[0], int(rest[1]), float(rest[2]))
    elif command == "pull":
        pull(namesrv, topic, rest[0])
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
