"""The file a broadcasting consumer keeps its offsets in (Java's
``OffsetSerializeWrapper``, written by ``LocalFileOffsetStore`` as
``<dir>/<clientId>/<group>/offsets.json``).

Java writes it with ``toJson(true)``, fastjson's pretty format, where each
``MessageQueue`` key is itself an object broken over lines::

    {
    \t"offsetTable":{{
    \t\t\t"brokerName":"broker-a",
    \t\t\t"queueId":1,
    \t\t\t"topic":"TopicA"
    \t\t}:17,{
    \t\t\t...
    \t\t}:5
    \t}
    }

:func:`encode_offset_file` lays the table out the same way, in the order of
the ``ConcurrentHashMap`` Java fills one queue at a time (its bucket order,
which :class:`~pyrocket.protocol.javahash.JavaHashMap` models);
:func:`decode_offset_file` reads it (or any JSON of that shape).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies._bean import LONG, Bean, bean, map_of, prop
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.javahash import JavaHashMap


@dataclass(frozen=True, slots=True)
class OffsetSerializeWrapper(Bean):
    """The consumed offset of each queue a broadcasting consumer reads."""

    offset_table: Mapping[MessageQueue, int] = prop(
        "offsetTable", map_of(bean(MessageQueue), LONG), factory=dict
    )


def encode_offset_file(table: Mapping[MessageQueue, int]) -> str:
    """``OffsetSerializeWrapper.toJson(true)`` for ``table``."""
    ordered: JavaHashMap[MessageQueue, int] = JavaHashMap()
    for queue, offset in table.items():
        ordered[queue] = offset
    out = ['{\n\t"offsetTable":{']
    first = True
    for queue, offset in ordered.items():
        if not first:
            out.append(",")
        first = False
        fields: list[str] = []
        if queue.broker_name is not None:
            fields.append('"brokerName":' + fastjson.quote(queue.broker_name))
        fields.append(f'"queueId":{queue.queue_id}')
        if queue.topic is not None:
            fields.append('"topic":' + fastjson.quote(queue.topic))
        out.append("{\n\t\t\t" + ",\n\t\t\t".join(fields) + "\n\t\t}:" + str(offset))
    out.append("\n\t}\n}" if ordered else "}\n}")
    return "".join(out)


def decode_offset_file(text: str) -> dict[MessageQueue, int]:
    """The offsets in an ``offsets.json``; raises ProtocolError when it is
    not JSON of that shape."""
    wrapper = OffsetSerializeWrapper.from_json(fastjson.loads(text))
    return dict(wrapper.offset_table)


__all__ = ["OffsetSerializeWrapper", "decode_offset_file", "encode_offset_file"]
