"""Building the messages a producer sends: :func:`new_message` (Java's
``Message`` constructor and setters), the UNIQ_KEY every send carries, and
the queue selectors of orderly sends (Java's ``MessageQueueSelector``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence

from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.javahash import JavaHashMap, java_hash
from pyrocket.protocol.message import Message, MessageConst

#: Picks a queue for an orderly send from the topic's queues, the message
#: and the caller's argument (Java's ``MessageQueueSelector``).
QueueSelector = Callable[[Sequence[MessageQueue], Message, object], MessageQueue]


def select_by_hash(queues: Sequence[MessageQueue], message: Message, arg: object) -> MessageQueue:
    """``SelectMessageQueueByHash``: ``abs(arg.hashCode()) % len(queues)``
    (a str hashes as a Java String, an int as a Java Integer/Long)."""
    value = arg if isinstance(arg, int) and -(2**31) <= arg < 2**31 else java_hash(arg)
    return queues[abs(value) % len(queues)]


def select_by_random(queues: Sequence[MessageQueue], message: Message, arg: object) -> MessageQueue:
    """``SelectMessageQueueByRandom``: any of the queues, ``arg`` unused."""
    return random.choice(queues)


def new_message(
    topic: str,
    body: bytes,
    *,
    tags: str | None = None,
    keys: str | Iterable[str] | None = None,
    properties: Mapping[str, str] | None = None,
    flag: int = 0,
    wait_store_msg_ok: bool = True,
    delay_level: int = 0,
) -> Message:
    """A message as Java's ``Message`` constructor and setters build it: TAGS,
    KEYS (several joined by a space), WAIT, DELAY, then the user's
    properties, in a Java HashMap (so the properties string comes out in
    Java's order).

    Raises ValueError for a user property with a name Java reserves.
    """
    table: JavaHashMap[str, str] = JavaHashMap()
    if tags:
        table[MessageConst.PROPERTY_TAGS] = tags
    if keys is not None and not isinstance(keys, str):
        keys = MessageConst.KEY_SEPARATOR.join(keys)
    if keys:
        table[MessageConst.PROPERTY_KEYS] = keys
    table[MessageConst.PROPERTY_WAIT_STORE_MSG_OK] = "true" if wait_store_msg_ok else "false"
    if delay_level > 0:
        table[MessageConst.PROPERTY_DELAY_TIME_LEVEL] = str(delay_level)
    for name, value in (properties or {}).items():
        if name in MessageConst.RESERVED_NAMES:
            raise ValueError(f"The Property<{name}> is used by system, input another please")
        table[name] = value
    return Message(topic=topic, body=body, properties=table, flag=flag)


def with_unique_id(message: Message, next_id: Callable[[], str]) -> JavaHashMap[str, str]:
    """The properties a message is sent with: its own in a Java HashMap, plus
    a fresh UNIQ_KEY unless it has one (``MessageClientIDSetter.setUniqID``).
    Encoded, they come out in Java's order."""
    # Java adds the id to the message's own map (default capacity, grown
    # entry by entry); re-adding the entries one by one to a fresh map lays
    # them out the same, where ``new HashMap<>(map)`` would size it otherwise.
    properties: JavaHashMap[str, str] = JavaHashMap()
    properties.update(message.properties)
    if MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX not in properties:
        properties[MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX] = next_id()
    return properties


#: Key sequence (the message's, then UNIQ_KEY if added) -> the order a Java
#: HashMap filled with them in that sequence iterates them.
_LAYOUTS: dict[tuple[str, ...], tuple[str, ...]] = {}
#: Distinct key sets kept; past this the table starts afresh.
_LAYOUTS_KEPT = 512


def _layout(keys: tuple[str, ...]) -> tuple[str, ...]:
    order = _LAYOUTS.get(keys)
    if order is None:
        table: JavaHashMap[str, str] = JavaHashMap()
        for key in keys:
            table[key] = ""
        order = tuple(table)
        if len(_LAYOUTS) >= _LAYOUTS_KEPT:
            _LAYOUTS.clear()
        _LAYOUTS[keys] = order
    return order


def sending_properties(message: Message, next_id: Callable[[], str]) -> dict[str, str]:
    """What :func:`with_unique_id` gives, as a plain dict in the same
    iteration order: the Java HashMap layout of a key sequence is worked out
    once and reused for every message with the same property names."""
    source = message.properties
    keys = tuple(source)
    values = {key: source[key] for key in keys}
    uniq = MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX
    if uniq not in values:
        values[uniq] = next_id()
        keys += (uniq,)
    return {key: values[key] for key in _layout(keys)}


__all__ = [
    "QueueSelector",
    "new_message",
    "select_by_hash",
    "select_by_random",
    "sending_properties",
    "with_unique_id",
]
