"""The RemotingCommand frame and the ROCKETMQ binary header, as construct Structs,
plus the incremental splitter that cuts a byte stream into frames.

::

    +----------------+--------------------------------+-------------+------------+
    | total length N | serialize type | header length | header      | body       |
    | int32 BE       | uint8          | uint24 BE     | header len  | the rest   |
    +----------------+--------------------------------+-------------+------------+
    N counts every byte after itself. serialize type: 0 JSON, 1 ROCKETMQ.

    ROCKETMQ header (all big-endian):
    code int16 | language uint8 | version int16 | opaque int32 | flag int32 |
    remark: int32 length + UTF-8 | extFields: int32 length + repeated
    (key: int16 length + UTF-8, value: int32 length + UTF-8)

Java's decoder (Netty's LengthFieldBasedFrameDecoder behind NettyDecoder)
refuses a frame whose length word plus its own four bytes exceed 16 MiB; the
splitter applies the same bound, configurable.

Java bounds a header only by the frame. pyrocket refuses a header longer than
:data:`MAX_HEADER_SIZE` or with more than :data:`MAX_EXT_FIELDS` ext fields,
so that decoding one frame stays a matter of milliseconds: Java's own headers
are a few hundred bytes with at most a score of fields, and the largest legal
one (a message's properties, which Java's store caps at 32767 bytes, escaped
as JSON) stays well below the bound. Bulk data travels in the body.
"""

from __future__ import annotations

import struct
from typing import Final

import construct as c

from pyrocket.errors import LocalProtocolError, ProtocolError

#: Netty's frame limit in Java RocketMQ, counted with the 4-byte length word.
DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024

LENGTH_FIELD_SIZE: Final = 4

#: Largest header accepted, in bytes (Java: anything up to the frame size).
MAX_HEADER_SIZE: Final = 256 * 1024

#: Most ext fields accepted in one header (Java: no bound).
MAX_EXT_FIELDS: Final = 1024

FRAME = c.Struct(
    "length" / c.Rebuild(c.Int32sb, 4 + c.len_(c.this.header) + c.len_(c.this.body)),
    "serialize_type" / c.Int8ub,
    "header_length" / c.Rebuild(c.Int24ub, c.len_(c.this.header)),
    "header" / c.Bytes(c.this.header_length),
    "body" / c.Bytes(c.this.length - 4 - c.this.header_length),
)
"""A whole frame, length word included: the reference layout."""

EXT_FIELD = c.Struct(
    "key" / c.PascalString(c.Int16ub, "utf8"),
    "value" / c.PascalString(c.Int32ub, "utf8"),
)
"""One extFields entry of the binary header."""

ROCKETMQ_HEADER = c.Struct(
    "code" / c.Int16sb,
    "language" / c.Int8ub,
    "version" / c.Int16sb,
    "opaque" / c.Int32sb,
    "flag" / c.Int32sb,
    "remark" / c.Prefixed(c.Int32ub, c.GreedyBytes),
    "ext_fields" / c.Prefixed(c.Int32ub, c.GreedyRange(EXT_FIELD)),
)
"""The binary header written when serializeTypeCurrentRPC is ROCKETMQ: the
reference layout."""

# The codec below runs on every frame, so it avoids the costly parts of the
# reference layouts: the 8-byte frame head and the fixed part of the binary
# header go through ``struct``, and the extFields blob is cut by a loop instead
# of GreedyRange (five times slower). Every declared length is checked against
# the bytes present (a compiled construct Prefixed would silently read short).
# tests/protocol/test_frame.py checks that both paths agree on every input.
_HEAD = struct.Struct(">iI")
_LENGTH_WORD = struct.Struct(">i")
#: Frames up to this many payload bytes are sliced out of the buffer (two
#: small copies); longer ones are copied once through a view.
_SLICED_FRAME: Final = 16 * 1024
_ROCKETMQ_FIXED = struct.Struct(">hBhiiI")  # code .. flag, then the remark length
_ROCKETMQ_BUILD = struct.Struct(">hBhii")
_FIXED_SIZE = _ROCKETMQ_FIXED.size


def build_frame_head(length: int, serialize_type: int, header_length: int) -> bytes:
    """The eight opening bytes of a frame: length word and header-length word."""
    if header_length > 0xFFFFFF:
        raise LocalProtocolError(f"header of {header_length} bytes does not fit 24 bits")
    if not 0 <= length <= 0x7FFFFFFF:
        raise LocalProtocolError(f"frame length {length} does not fit the length word")
    return _HEAD.pack(length, (serialize_type << 24) | header_length)


def parse_rocketmq_header(
    header: bytes, max_ext_fields: int = MAX_EXT_FIELDS
) -> tuple[int, int, int, int, int, bytes, dict[str, str]]:
    """(code, language, version, opaque, flag, remark bytes, ext fields).

    Raises ProtocolError for truncated, over-long or trailing data, and for
    more than ``max_ext_fields`` ext fields. Text that
    is not UTF-8 is decoded with replacement characters, as Java's ``new
    String(bytes, UTF_8)`` does.
    """
    size = len(header)
    if size < _FIXED_SIZE:
        raise ProtocolError(
            f"bad ROCKETMQ header: {size} bytes, the fixed part needs {_FIXED_SIZE}", 0
        )
    code, language, version, opaque, flag, remark_length = _ROCKETMQ_FIXED.unpack_from(header)
    pos = _FIXED_SIZE
    if remark_length > size - pos:
        raise ProtocolError(
            f"bad ROCKETMQ header: remark of {remark_length} bytes runs past the header "
            f"({size - pos} left)",
            pos - 4,
        )
    remark = header[pos : pos + remark_length]
    pos += remark_length
    if size - pos < 4:
        raise ProtocolError("bad ROCKETMQ header: ext fields length cut short", pos)
    ext_length = int.from_bytes(header[pos : pos + 4], "big")
    pos += 4
    if ext_length > size - pos:
        raise ProtocolError(
            f"bad ROCKETMQ header: ext fields of {ext_length} bytes run past the header "
            f"({size - pos} left)",
            pos - 4,
        )
    end = pos + ext_length
    if end != size:
        raise ProtocolError(f"bad ROCKETMQ header: {size - end} bytes after the ext fields", end)
    ext = _parse_ext_blob(header[pos:end], pos, max_ext_fields)
    return code, language, version, opaque, flag, remark, ext


def _parse_ext_blob(blob: bytes, base: int, max_fields: int = MAX_EXT_FIELDS) -> dict[str, str]:
    ext: dict[str, str] = {}
    pos, end = 0, len(blob)
    count = 0
    while pos < end:
        if count == max_fields:
            # Counted on the wire, repeated keys included: the cost is per entry.
            raise ProtocolError(f"more than {max_fields} ext fields", base + pos)
        count += 1
        if pos + 2 > end:
            raise ProtocolError("ext field key length cut short", base + pos)
        key_len = int.from_bytes(blob[pos : pos + 2], "big")
        key_end = pos + 2 + key_len
        if key_end + 4 > end:
            raise ProtocolError("ext field key runs past the ext fields", base + pos)
        value_len = int.from_bytes(blob[key_end : key_end + 4], "big")
        value_end = key_end + 4 + value_len
        if value_end > end:
            raise ProtocolError("ext field value runs past the ext fields", base + key_end)
        key = blob[pos + 2 : key_end].decode("utf-8", "replace")
        # A repeated key keeps its first position and its last value, as a
        # Java HashMap filled in wire order does.
        ext[key] = blob[key_end + 4 : value_end].decode("utf-8", "replace")
        pos = value_end
    return ext


def build_rocketmq_header(
    code: int,
    language: int,
    version: int,
    opaque: int,
    flag: int,
    remark: bytes,
    ext_fields: list[tuple[str, str]],
) -> bytes:
    """Serialize a binary header. Raises LocalProtocolError for values out of range."""
    parts: list[bytes] = []
    for key, value in ext_fields:
        key_bytes, value_bytes = key.encode("utf-8", "replace"), value.encode("utf-8", "replace")
        if len(key_bytes) > 0x7FFF:
            raise LocalProtocolError(f"ext field key of {len(key_bytes)} bytes is too long")
        parts += (len(key_bytes).to_bytes(2, "big"), key_bytes)
        parts += (len(value_bytes).to_bytes(4, "big"), value_bytes)
    blob = b"".join(parts)
    try:
        fixed = _ROCKETMQ_BUILD.pack(code, language, version, opaque, flag)
    except struct.error as exc:
        raise LocalProtocolError(f"cannot build ROCKETMQ header: {exc}") from exc
    return b"".join(
        (fixed, len(remark).to_bytes(4, "big"), remark, len(blob).to_bytes(4, "big"), blob)
    )


class NeedData:
    """Sentinel type: the splitter needs more bytes before the next frame."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


#: A frame longer than this that arrives in pieces is collected as a list of
#: chunks and joined once complete, rather than grown in one bytearray (which
#: copies it again at every reallocation).
COLLECT_OVER: Final = 256 * 1024

#: A collected frame longer than this is handed out by
#: :meth:`FrameSplitter.next_split` as a :class:`SplitFrame`: its header apart,
#: its body still in chunks, so that the caller can join the body elsewhere
#: (a 16 MiB copy takes milliseconds).
SPLIT_OVER: Final = 1024 * 1024


class SplitFrame:
    """A large frame payload as collected: its head (the serialize-type and
    header-length word and the header) apart from its body chunks.

    ``head`` is None when the header-length word announces a header that runs
    past the frame or is longer than the splitter's ``head_limit``; then
    ``body`` holds the whole payload, which no decoder with the default bounds
    accepts. ``body`` holds exact ``bytes`` objects only, which CPython joins
    without holding the GIL once they add up to a megabyte or more.
    """

    __slots__ = ("body", "body_size", "head")

    def __init__(self, head: bytes | None, body: list[bytes], body_size: int) -> None:
        self.head = head
        self.body = body
        self.body_size = body_size

    def join_body(self) -> bytes:
        """The body chunks (the whole payload when ``head`` is None) as one bytes."""
        body = self.body
        return body[0] if len(body) == 1 else b"".join(body)

    def payload(self) -> bytes:
        """The whole payload, as :meth:`FrameSplitter.next_frame` returns it."""
        if self.head is None:
            return self.join_body()
        return b"".join([self.head, *self.body])

    def __repr__(self) -> str:
        head = None if self.head is None else len(self.head)
        return f"SplitFrame(head={head}, body_size={self.body_size})"


def _split_payload(parts: list[bytes], size: int, head_limit: int) -> SplitFrame:
    """Carve the head off a collected payload of ``size`` bytes (at least 4)."""
    word = b""
    for part in parts:
        word += part[: 4 - len(word)]
        if len(word) == 4:
            break
    header_length = int.from_bytes(word[1:4], "big")
    head_size = 4 + header_length
    if header_length > head_limit or head_size > size:
        return SplitFrame(None, parts, size)
    taken: list[bytes] = []
    need, index = head_size, 0
    while need:
        part = parts[index]
        if len(part) > need:
            # The chunk that straddles the end of the header: the body keeps
            # its tail (one chunk's copy, bounded by the receive size).
            taken.append(part[:need])
            parts[index] = part[need:]
            break
        taken.append(part)
        need -= len(part)
        index += 1
    head = taken[0] if len(taken) == 1 else b"".join(taken)
    return SplitFrame(head, parts[index:], size - head_size)


class FrameSplitter:
    """Cuts a byte stream into frame payloads (everything after the length word).

    Feed bytes with :meth:`feed`, then call :meth:`next_frame` until it returns
    :data:`NEED_DATA`. A length word that is negative or announces a frame
    larger than ``max_frame_size`` (counted with the length word, as Netty
    counts it) raises ProtocolError; after that the stream is unusable.

    A frame over ``collect_over`` bytes still incomplete when its length word
    is read is collected chunk by chunk and copied once, when it is whole.
    :meth:`next_split` hands such a frame over ``split_over`` bytes out
    uncopied, as a :class:`SplitFrame` whose head holds a header of at most
    ``head_limit`` bytes.
    """

    def __init__(
        self,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        collect_over: int = COLLECT_OVER,
        split_over: int = SPLIT_OVER,
        head_limit: int = MAX_HEADER_SIZE,
    ) -> None:
        self.max_frame_size = max_frame_size
        self.collect_over = collect_over
        self.split_over = split_over
        self.head_limit = head_limit
        self._buffer = bytearray()
        self._start = 0  # read position inside _buffer
        self._consumed = 0  # stream offset of _buffer[_start], or of the collected frame
        # The payload of a large frame being collected (None: not collecting);
        # while collecting, _buffer is empty until the payload is complete.
        self._parts: list[bytes] | None = None
        self._parts_size = 0
        self._parts_need = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a frame."""
        collected = 0 if self._parts is None else LENGTH_FIELD_SIZE + self._parts_size
        return len(self._buffer) - self._start + collected

    def feed(self, data: bytes) -> None:
        if self._parts is not None:
            room = self._parts_need - self._parts_size
            if room > 0:
                part = bytes(data[:room]) if len(data) > room else bytes(data)
                self._parts.append(part)
                self._parts_size += len(part)
                data = data[len(part) :]
            if not data:
                return
        if self._start and self._start >= len(self._buffer) // 2:
            # Compact lazily so a burst of small frames costs linear time.
            del self._buffer[: self._start]
            self._start = 0
        self._buffer += data

    def next_frame(self) -> bytes | NeedData:
        """The next whole payload, or NEED_DATA."""
        frame = self.next_split()
        return frame.payload() if isinstance(frame, SplitFrame) else frame

    def next_split(self) -> bytes | SplitFrame | NeedData:
        """As :meth:`next_frame`, but a collected frame over ``split_over``
        bytes comes as a :class:`SplitFrame`, none of its body copied."""
        parts = self._parts
        if parts is not None:
            size = self._parts_need
            if self._parts_size < size:
                return NEED_DATA
            self._consumed += LENGTH_FIELD_SIZE + size
            self._parts = None
            self._parts_size = self._parts_need = 0
            if size > self.split_over and size >= 4:
                return _split_payload(parts, size, self.head_limit)
            return parts[0] if len(parts) == 1 else b"".join(parts)
        buffer, start = self._buffer, self._start
        available = len(buffer) - start
        if available < LENGTH_FIELD_SIZE:
            return NEED_DATA
        (length,) = _LENGTH_WORD.unpack_from(buffer, start)
        if length < 0:
            raise ProtocolError(f"negative frame length {length}", self._consumed)
        if length + LENGTH_FIELD_SIZE > self.max_frame_size:
            raise ProtocolError(
                f"frame of {length + LENGTH_FIELD_SIZE} bytes exceeds the limit of "
                f"{self.max_frame_size}",
                self._consumed,
            )
        end = start + LENGTH_FIELD_SIZE + length
        if len(buffer) < end:
            if length > self.collect_over:
                # Collect the rest as chunks: what is here already is the
                # first one, and the buffer starts afresh after the frame.
                with memoryview(buffer) as view:
                    first = bytes(view[start + LENGTH_FIELD_SIZE :])
                self._parts = [first] if first else []
                self._parts_size = len(first)
                self._parts_need = length
                buffer.clear()
                self._start = 0
            return NEED_DATA
        if length <= _SLICED_FRAME:
            # A small frame: copying twice costs less than making a view.
            payload = bytes(buffer[start + LENGTH_FIELD_SIZE : end])
        else:
            # One copy, through a view: slicing the bytearray first would
            # copy a 16 MiB frame twice.
            with memoryview(buffer) as view:
                payload = bytes(view[start + LENGTH_FIELD_SIZE : end])
        self._consumed += end - start
        if end == len(buffer):
            buffer.clear()
            self._start = 0
        else:
            self._start = end
        return payload
