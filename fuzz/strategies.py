"""Inputs for the fuzz targets: the recorded frames and bodies of the golden
vectors (mutated), arbitrary bytes, and structured JSON that uses the real
property and field names so it gets past the first type check.
"""

from __future__ import annotations

import dataclasses
import zlib
from functools import cache

from hypothesis import strategies as st

from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies import Bean
from pyrocket.protocol.catalog import all_header_types
from pyrocket.protocol.command import decode
from tests.vectorset import default_vectors_dir, iter_all_records


def _all_beans() -> list[type[Bean]]:
    found: list[type[Bean]] = []
    pending = list(Bean.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


BODY_NAMES = sorted(
    {f.metadata["wire"] for cls in _all_beans() for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
)
HEADER_NAMES = sorted(
    {name for header_type in all_header_types() for name in header_type.wire_names()}
)
COMMAND_KEYS = ["code", "extFields", "flag", "language", "opaque", "remark", "version"]


@cache
def seeds() -> dict[str, tuple[bytes, ...]]:
    """Recorded inputs by kind: frames, headers, bodies, inflated compressed
    bodies, ext fields (NUL-joined, the header target's format). Empty
    without the vectors."""
    frames: list[bytes] = []
    headers: list[bytes] = []
    bodies: list[bytes] = []
    compressed: list[bytes] = []
    ext: list[bytes] = []
    if default_vectors_dir().is_dir():
        for record in iter_all_records():
            if record.dir == "close":
                continue
            frames.append(record.frame)
            if not record.is_frame:
                continue
            header_length = int.from_bytes(record.frame[5:8], "big")
            headers.append(record.frame[8 : 8 + header_length])
            body = record.body
            if body is not None:
                if body[:1] == b"\x78":  # a zlib stream (compressed registration)
                    compressed.append(zlib.decompress(body))
                else:
                    bodies.append(body)
            fields = decode(record.frame).ext_fields or {}
            ext.append("\x00".join(f"{k}\x00{v}" for k, v in fields.items()).encode())
    return {
        "frames": tuple(dict.fromkeys(frames)),
        "headers": tuple(dict.fromkeys(headers)),
        "bodies": tuple(dict.fromkeys(bodies)),
        "compressed": tuple(dict.fromkeys(compressed)),
        "ext": tuple(dict.fromkeys(ext)),
    }


@st.composite
def mutated(draw: st.DrawFn, pool: tuple[bytes, ...]) -> bytes:
    """A recorded input with a few byte-level edits."""
    data = bytearray(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        if not data:
            data += draw(st.binary(min_size=1, max_size=8))
            continue
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif action == "truncate":
            del data[at:]
        else:
            other = draw(st.sampled_from(pool))
            data[at:] = other[draw(st.integers(0, max(0, len(other) - 1))) :]
    return bytes(data)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["SINGLE_TAG", "CLUSTERING", "CONSUME_PASSIVELY", "TAG", "*", "0"]),
)


def json_values(keys: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """JSON documents whose object keys come from ``keys``."""
    return st.recursive(
        _scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5)
        ),  # type: ignore[arg-type]
        max_leaves=25,
    )


body_keys = st.one_of(st.sampled_from(BODY_NAMES), st.text(max_size=6), st.integers(-5, 5))

#: JSON bodies: objects keyed by real property names, nested anything.
json_bodies = st.one_of(
    json_values(body_keys),
    st.dictionaries(st.sampled_from(BODY_NAMES), json_values(body_keys), max_size=6),
).map(fastjson.dumps_bytes)

#: JSON command headers with wrong types in the real keys.
json_headers = st.dictionaries(
    st.sampled_from([*COMMAND_KEYS, "x"]), json_values(st.text(max_size=4)), max_size=8
).map(fastjson.dumps_bytes)

#: Ext fields in the header target's format, keyed by real field names.
ext_fields = st.dictionaries(
    st.one_of(st.sampled_from(HEADER_NAMES), st.text(max_size=4)),
    st.one_of(
        st.text(max_size=8),
        st.integers().map(str),
        st.sampled_from(["true", "TRUE", "false", "+1", "-0", "1.5", " 1", "1e3", "9" * 30]),
    ),
    max_size=10,
).map(lambda ext: "\x00".join(f"{k}\x00{v}" for k, v in ext.items()).encode())


def inputs_for(target: str) -> st.SearchStrategy[bytes]:
    """The input strategy for a target of :data:`fuzz.targets.TARGETS`."""
    pools = seeds()
    choices: list[st.SearchStrategy[bytes]] = [st.binary(max_size=512)]

    def recorded(kind: str) -> None:
        if pools[kind]:
            choices.append(mutated(pools[kind]))

    if target == "frame":
        recorded("frames")
        choices.append(json_headers.map(_as_frame))
    elif target in ("payload", "rocketmq_header"):
        recorded("headers")
        choices.append(json_headers)
    elif target in ("json", "body"):
        recorded("bodies")
        choices.append(json_bodies)
    elif target == "compressed_body":
        recorded("compressed")
    elif target == "header":
        recorded("ext")
        choices.append(ext_fields)
    return st.one_of(choices)


def _as_frame(header: bytes) -> bytes:
    return (4 + len(header)).to_bytes(4, "big") + len(header).to_bytes(4, "big") + header
