"""REGISTER_BROKER bodies as the NameServer reads them: reduced to the
DataVersion, each topic's queue numbers and the filter servers, and decoded
again only when a broker's body changed beyond its DataVersion.

:func:`decode_register_body` reads a ``RegisterBrokerBody`` (plain fastjson
JSON or the compressed form of :class:`~pyrocket.protocol.bodies.RegisterBrokerBody`),
:func:`decode_legacy_register_body` the bare TopicConfigSerializeWrapper of a
broker older than 3.0.11, and :class:`RegistrationDecoder` keeps each broker's
last body to skip the JSON parse of one that only has a new DataVersion.
A topicConfigTable written as Java's fastjson writes it is read from its text
without the JSON parser building an object per topic; anything else goes
through the parser, with the same result.
Sans-I/O: nothing here reads a socket, a file or a clock other than Java's
``new DataVersion()`` stamp.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pyrocket.errors import CommandError, ProtocolError
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies.route import QueueNums
from pyrocket.protocol.bodies.topic import DataVersion, RegisterBrokerBody

_INT32: Final = (-(1 << 31), (1 << 31) - 1)

TopicQueues = Mapping[str, QueueNums]
"""A registering broker's topics: name -> queue data, in the order its body
lists them."""


@dataclass(frozen=True, slots=True)
class RegistrationBody:
    """A decoded REGISTER_BROKER body: what the route tables need of it."""

    data_version: DataVersion
    topics: TopicQueues
    filter_server_list: tuple[str, ...] | None


def decode_register_body(
    body: bytes | None, compressed: bool, *, java_table: bool = True
) -> RegistrationBody:
    """``RegisterBrokerBody.decode(body, compressed)``, reduced to what the
    route tables need. No body is an empty table with DataVersion 0/0, as in
    Java. Raises CommandError when the body does not decode."""
    if body is None:
        return RegistrationBody(DataVersion(0, 0), {}, ())
    what = "RegisterBrokerBody"
    if compressed:
        try:
            decoded = RegisterBrokerBody.decode(body, compressed=True)
        except ProtocolError as exc:
            raise CommandError(f"Failed to decode {what}: {exc}") from exc
        wrapper = decoded.topic_config_serialize_wrapper
        queues = {
            name: (c.read_queue_nums, c.write_queue_nums, c.perm, c.topic_sys_flag)
            for name, c in wrapper.topic_config_table.items()
        }
        return RegistrationBody(wrapper.data_version, queues, decoded.filter_server_list)
    read = _read_java_table(body) if java_table else None
    try:
        if read is None:
            document = _json_object(body, what)
        else:
            document, read_topics = read
        wrapper_json = _object_field(document, "topicConfigSerializeWrapper")
        data_version = _data_version(wrapper_json)
        if read is None:
            table = _object_field(wrapper_json, "topicConfigTable")
        elif "topicConfigTable" not in wrapper_json:
            # The table read was not the wrapper's: read the body in full.
            return decode_register_body(body, compressed, java_table=False)
        servers = document.get("filterServerList")
        if servers is None:
            filter_servers: tuple[str, ...] = ()
        elif isinstance(servers, list) and all(isinstance(s, str) for s in servers):
            filter_servers = tuple(servers)
        else:
            raise ProtocolError("filterServerList is not a list of strings")
    except ProtocolError as exc:
        raise CommandError(f"Failed to decode {what}: {exc}") from exc
    topics = _topic_queues(table, what) if read is None else read_topics
    return RegistrationBody(data_version, topics, filter_servers)


# The topicConfigTable as Java 4.7.0's fastjson writes it (and pyrocket's
# broker does): each TopicConfig's seven properties in their sorted order, no
# blanks, the key equal to the topic name, queue numbers and flags small
# non-negative JSON integers, names and the filter type strings without
# escapes or control characters. Text of that form is valid JSON whose value
# is plain to see, so it is read without building the JSON objects; any
# other text is read by the JSON parser.
_PLAIN_TEXT: Final = r'[^"\\\x00-\x1f]*'
_SMALL_INT: Final = r"(0|[1-9][0-9]{0,8})"  # below 2**31: no range check
_JAVA_TOPIC_CONFIG: Final = re.compile(
    rf'"({_PLAIN_TEXT})":\{{"order":(?:true|false),"perm":{_SMALL_INT},'
    rf'"readQueueNums":{_SMALL_INT},"topicFilterType":"{_PLAIN_TEXT}",'
    rf'"topicName":"\1","topicSysFlag":{_SMALL_INT},"writeQueueNums":{_SMALL_INT}\}}'
)
_TABLE_KEY: Final = '"topicConfigTable":'


def _read_java_table(body: bytes) -> tuple[dict[str, Any], dict[str, QueueNums]] | None:
    """(the body's JSON with its topicConfigTable replaced by 0, the table
    as name -> queue numbers) when the table is of Java's exact form and
    nothing else in the body has an escape; None otherwise. The caller
    checks that the table is the wrapper's."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # Without escapes (checked below), quoted text cannot be inside a JSON
    # string and a string before a colon is a key: counting the name makes
    # this the only key of that name in the body.
    at = text.find(_TABLE_KEY)
    if at < 0 or text.count('"topicConfigTable"') != 1:
        return None
    start = at + len(_TABLE_KEY)
    # Between and around the matches: "{", ",", ..., then "}" and the rest
    # of the body. Anything else is not a table of Java's form.
    parts = _JAVA_TOPIC_CONFIG.split(text[start:])
    separators = parts[::6]
    count = len(separators) - 1
    tail = separators[-1]
    if (
        count == 0
        or separators[0] != "{"
        or not tail.startswith("}")
        or (count > 1 and set(separators[1:-1]) != {","})
    ):
        return None
    # With no escape outside the table (there is none inside), no other key
    # can spell "topicConfigTable" either: the wrapper's table, if it has
    # one, is this. The rest parsed with 0 in its place is the body parsed,
    # but for the table's value.
    rest = text[:start] + "0" + tail[1:]
    if "\\" in rest:
        return None
    try:
        document = _json_object(rest.encode(), "")
    except ProtocolError:
        return None
    # Each match is (name, perm, read, flag, write); most topics share their
    # numbers, so each distinct text is converted once.
    texts = list(zip(parts[2::6], parts[3::6], parts[4::6], parts[5::6], strict=True))
    numbers = {
        text: (int(text[1]), int(text[3]), int(text[0]), int(text[2])) for text in set(texts)
    }
    # As a JSON object does: a repeated name keeps its first place, its last value.
    return document, dict(zip(parts[1::6], map(numbers.__getitem__, texts), strict=True))


# A DataVersion as fastjson writes it; JSON integers only (no leading zeros).
_DATA_VERSION_TEXT: Final = re.compile(
    rb'\{"counter":(-?(?:0|[1-9][0-9]{0,18})),"timestamp":(-?(?:0|[1-9][0-9]{0,18}))\}'
)
_LONG: Final = (-(1 << 63), (1 << 63) - 1)


@dataclass(frozen=True, slots=True)
class _BodyShape:
    """A broker's last plain body, as the bytes before and after its
    DataVersion, and what the rest decoded to. The bytes themselves are kept
    (not a hash of them): a body is reused only when they are equal, so no
    crafted body can pass for another."""

    prefix: bytes
    suffix: bytes
    decoded: RegistrationBody


@dataclass(frozen=True, slots=True)
class PreparedRegistration:
    """A decoding and what it changes in a :class:`RegistrationDecoder`'s
    memory: ``shape`` is the broker's new body shape, ``None`` to forget it;
    ``keep_shape`` leaves the shape memory as it is; ``table`` records the
    topic table as the broker's last compressed one."""

    decoded: RegistrationBody
    shape: _BodyShape | None = None
    keep_shape: bool = True
    table: bool = False


class RegistrationDecoder:
    """Decodes REGISTER_BROKER bodies, remembering each broker's last one.

    A broker sends the same body every 30 s, or the same one with a new
    DataVersion after a topic change elsewhere; parsing 100 topics of JSON
    each time is most of a registration's cost. When a body equals the
    previous one of its broker except for the DataVersion text (the bytes
    around it compared with the previous body's, the DataVersion itself
    parsed), the previous decoding is reused: the result is exactly what a
    full decoding would give. A DataVersion is located only when the body names
    ``dataVersion`` and ``topicConfigSerializeWrapper`` once each (text with
    quotes cannot hide inside a JSON string), so the spliced bytes are the
    wrapper's DataVersion and nothing else.

    Compressed bodies have no text to compare, so each is decoded in full;
    when its topic table equals, in content and order, the one the broker's
    last compressed body had, the result carries that same table object, which
    lets the route tables skip re-applying it.

    :meth:`prepare` only reads the decoder's memory, so it may run in a worker
    thread; :meth:`remember` then records its outcome, on the event loop.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._shapes: dict[str, _BodyShape] = {}
        self._tables: dict[str, TopicQueues] = {}

    def decode(self, broker_addr: str, body: bytes | None, compressed: bool) -> RegistrationBody:
        """As :func:`decode_register_body`; raises CommandError."""
        prepared = self.prepare(broker_addr, body, compressed)
        self.remember(broker_addr, prepared)
        return prepared.decoded

    def prepare(
        self, broker_addr: str, body: bytes | None, compressed: bool
    ) -> PreparedRegistration:
        """Decode ``body`` without changing the decoder; raises CommandError."""
        if body is None:
            return PreparedRegistration(decode_register_body(body, compressed))
        if not compressed:
            reused = self._reuse_shape(broker_addr, body)
            if reused is not None:
                return PreparedRegistration(reused)
        decoded = decode_register_body(body, compressed)
        if not compressed:
            return PreparedRegistration(decoded, self._shape_of(body, decoded), keep_shape=False)
        last = self._tables.get(broker_addr)
        topics = decoded.topics
        if (
            last is not None
            and last == topics
            and all(a == b for a, b in zip(last, topics, strict=True))
        ):
            decoded = RegistrationBody(decoded.data_version, last, decoded.filter_server_list)
        return PreparedRegistration(decoded, table=True)

    def remember(self, broker_addr: str, prepared: PreparedRegistration) -> None:
        """Record what :meth:`prepare` found."""
        if not prepared.keep_shape:
            self._shapes.pop(broker_addr, None)
            if prepared.shape is not None:
                self._bounded_put(self._shapes, broker_addr, prepared.shape)
        if prepared.table:
            self._tables.pop(broker_addr, None)
            self._bounded_put(self._tables, broker_addr, prepared.decoded.topics)

    def _bounded_put(self, table: dict[str, Any], key: str, value: Any) -> None:
        if len(table) >= self._capacity:
            del table[next(iter(table))]
        table[key] = value

    def _reuse_shape(self, broker_addr: str, body: bytes) -> RegistrationBody | None:
        shape = self._shapes.get(broker_addr)
        if shape is None:
            return None
        start = len(shape.prefix)
        end = len(body) - len(shape.suffix)
        # startswith/endswith compare in place, without copying the slices.
        if end > start and body.startswith(shape.prefix) and body.endswith(shape.suffix):
            match = _DATA_VERSION_TEXT.fullmatch(body, start, end)
            if match is not None:
                counter, timestamp = int(match[1]), int(match[2])
                if _LONG[0] <= counter <= _LONG[1] and _LONG[0] <= timestamp <= _LONG[1]:
                    previous = shape.decoded
                    return RegistrationBody(
                        DataVersion(timestamp, counter),
                        previous.topics,
                        previous.filter_server_list,
                    )
        return None

    @staticmethod
    def _shape_of(body: bytes, decoded: RegistrationBody) -> _BodyShape | None:
        if body.count(b'"dataVersion"') != 1 or body.count(b'"topicConfigSerializeWrapper"') != 1:
            return None
        version = decoded.data_version
        text = b'{"counter":%d,"timestamp":%d}' % (version.counter, version.timestamp)
        key = b'"dataVersion":'
        at = body.find(key + text)
        if at < 0:
            return None
        start = at + len(key)
        end = start + len(text)
        return _BodyShape(body[:start], body[end:], decoded)


def decode_legacy_register_body(body: bytes | None) -> RegistrationBody:
    """The body of a REGISTER_BROKER from a broker older than 3.0.11: a bare
    TopicConfigSerializeWrapper. Filter servers stay as they are."""
    if body is None:
        return RegistrationBody(DataVersion(0, 0), {}, None)
    what = "TopicConfigSerializeWrapper"
    try:
        wrapper = _json_object(body, what)
        data_version = _data_version(wrapper)
        table = _object_field(wrapper, "topicConfigTable")
    except ProtocolError as exc:
        raise CommandError(f"Failed to decode {what}: {exc}") from exc
    return RegistrationBody(data_version, _topic_queues(table, what), None)


#: Bodies from this size on are parsed so that other threads get a turn:
#: the C parser holds the interpreter lock for a whole document (about 1 ms
#: per 100 KiB here), which a worker thread must not do to the event loop.
_SHARED_PARSE_SIZE: Final = 64 * 1024


def _handing_over(obj: dict[str, Any]) -> dict[str, Any]:
    # Called by the C parser for each object; running Python code here is
    # what lets the interpreter switch threads in the middle of a document.
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(body: bytes) -> Any:
    """``fastjson.loads(body)``; a large body is parsed a few objects at a
    time as far as the interpreter lock goes (the same value either way)."""
    if len(body) >= _SHARED_PARSE_SIZE:
        try:
            return json.loads(
                body.decode("utf-8"), parse_constant=_reject_constant, object_hook=_handing_over
            )
        except (UnicodeDecodeError, ValueError, RecursionError):
            pass  # fastjson's reader says what is wrong, or reads its extensions
    return fastjson.loads(body)


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    document = _parse(body)
    if not isinstance(document, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    return document


def _object_field(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{key} is not an object")
    return value


def _data_version(wrapper: dict[str, Any]) -> DataVersion:
    version_json = wrapper.get("dataVersion")
    if version_json is None:
        return DataVersion()  # Java's default: stamped now
    return DataVersion.from_json(version_json, "dataVersion")


_TOPIC_DEFAULTS: Final = (16, 16, 6, 0)  # new TopicConfig()
_TOPIC_KEYS: Final = ("readQueueNums", "writeQueueNums", "perm", "topicSysFlag")


def _topic_queues(table: dict[str, Any], what: str) -> TopicQueues:
    """The topicConfigTable as name -> queue numbers; raises CommandError
    naming the first entry that is not a TopicConfig."""
    low, high = _INT32
    topics: dict[str, QueueNums] = {}
    for key, config in table.items():
        # The common case in one go: every field present and an int in range.
        if type(config) is dict:
            name = config.get("topicName")
            read = config.get("readQueueNums")
            write = config.get("writeQueueNums")
            perm = config.get("perm")
            flag = config.get("topicSysFlag")
            if (
                type(name) is str
                and type(read) is int
                and type(write) is int
                and type(perm) is int
                and type(flag) is int
                and low <= read <= high
                and low <= write <= high
                and low <= perm <= high
                and low <= flag <= high
            ):
                topics[name] = (read, write, perm, flag)
                continue
        name, queues = _topic_entry(key, config, what)
        topics[name] = queues
    return topics


def _topic_entry(key: str, config: Any, what: str) -> tuple[str, QueueNums]:
    where = f"Failed to decode {what}: topicConfigTable[{key!r}]"
    if not isinstance(config, dict):
        raise CommandError(f"{where} is not an object")
    name = config.get("topicName")
    if not isinstance(name, str):
        raise CommandError(f"{where}.topicName is not a string")
    values = []
    for field_name, default in zip(_TOPIC_KEYS, _TOPIC_DEFAULTS, strict=True):
        value = config.get(field_name)
        if value is None:
            value = default
        elif type(value) is not int or not _INT32[0] <= value <= _INT32[1]:
            raise CommandError(f"{where}.{field_name} is not a Java int: {value!r}")
        values.append(value)
    return name, (values[0], values[1], values[2], values[3])


__all__ = [
    "PreparedRegistration",
    "RegistrationBody",
    "RegistrationDecoder",
    "TopicQueues",
    "decode_legacy_register_body",
    "decode_register_body",
]
