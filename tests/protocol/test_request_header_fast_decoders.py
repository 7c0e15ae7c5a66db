"""The fast request-header decoders (``SendMessageRequestHeaderV2`` and
``PullMessageRequestHeader.from_ext_fields_fast``) are the generic decoder,
only quicker: for any ext-field map each gives the same header, or raises the
same CommandError, as ``from_ext_fields``.

The maps are random (plain, signed, zero-padded, out-of-range and non-numeric
numbers; missing and extra keys) and, as a second source, every send and pull
request Java recorded in the golden vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.errors import CommandError
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import decode
from pyrocket.protocol.headers import (
    PullMessageRequestHeader,
    PullMessageResponseHeader,
    SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
)
from tests.vectorset import iter_all_records

# Every code the broker decodes with the V2 header.
V2_CODES = {
    RequestCode.SEND_MESSAGE_V2,
    RequestCode.SEND_BATCH_MESSAGE,
    RequestCode.SEND_REPLY_MESSAGE_V2,
}

#: Each header with a fast decoder: its string, number and boolean wire keys.
SHAPES: dict[type[Any], tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    SendMessageRequestHeaderV2: (
        ("a", "b", "c", "i"),
        ("d", "e", "f", "g", "h", "j", "l"),
        ("k", "m"),
    ),
    PullMessageRequestHeader: (
        ("consumerGroup", "topic", "subscription", "expressionType"),
        (
            "queueId",
            "queueOffset",
            "maxMsgNums",
            "sysFlag",
            "commitOffset",
            "suspendTimeoutMillis",
            "subVersion",
        ),
        (),
    ),
}


def _outcome(decode_with: Callable[[Mapping[str, str]], object], ext: Mapping[str, str]) -> object:
    """The decoded header, or the error's kind and message."""
    try:
        return decode_with(ext)
    except CommandError as exc:
        return ("CommandError", str(exc))


def _assert_same(ext: Mapping[str, str], header: type[Any] = SendMessageRequestHeaderV2) -> None:
    fast = _outcome(header.from_ext_fields_fast, ext)
    generic = _outcome(header.from_ext_fields, ext)
    assert fast == generic
    assert type(fast) is type(generic)


_magnitudes = st.one_of(
    st.integers(min_value=0, max_value=10**3),
    st.integers(min_value=0, max_value=1 << 33),
    st.integers(min_value=0, max_value=1 << 65),
    # Around the Java int and long limits and the fast path's digit counts.
    st.sampled_from(
        [
            (1 << 31) - 1,
            1 << 31,
            (1 << 31) + 1,
            (1 << 63) - 1,
            1 << 63,
            (1 << 63) + 1,
            10**9 - 1,
            10**9,
            10**18 - 1,
            10**18,
            10**19,
        ]
    ),
)


@st.composite
def _numbers(draw: st.DrawFn) -> str:
    sign = draw(st.sampled_from(["", "", "-", "+", "--", "-+"]))
    zeros = "0" * draw(st.sampled_from([0, 0, 0, 1, 2, 9, 20]))
    digits = str(draw(_magnitudes))
    return sign + zeros + digits


_number_text = st.one_of(
    _numbers(),
    st.sampled_from(["", "-", "+", " 1", "1 ", "1.0", "0x10", "1e3", "١٢", "²", "NaN", "1_000"]),
    st.text(max_size=12),
)
_boolean_text = st.one_of(
    st.sampled_from(["true", "TRUE", "True", "false", "yes", "1", ""]), st.text(max_size=6)
)


@st.composite
def _ext_maps(draw: st.DrawFn, header: type[Any]) -> dict[str, str]:
    strings, numbers, booleans = SHAPES[header]
    ext: dict[str, str] = {}
    # Required keys are present most of the time, so the fast path is reached.
    for key in strings:
        if draw(st.integers(0, 9)) > 0:
            ext[key] = draw(st.text(max_size=10))
    for key in numbers:
        if draw(st.integers(0, 9)) > 0:
            ext[key] = draw(_number_text)
    for key in booleans:
        if draw(st.booleans()):
            ext[key] = draw(_boolean_text)
    extra = draw(st.dictionaries(st.text(min_size=2, max_size=8), st.text(max_size=8), max_size=3))
    for key, value in extra.items():
        ext.setdefault(key, value)
    return ext


@pytest.mark.parametrize("header", list(SHAPES))
@given(data=st.data())
def test_fast_path_equals_the_generic_decoder(header: type[Any], data: st.DataObject) -> None:
    _assert_same(data.draw(_ext_maps(header)), header)


@pytest.mark.parametrize("header", list(SHAPES))
@given(data=st.data())
def test_fast_path_equals_the_generic_decoder_on_numbers_everywhere(
    header: type[Any], data: st.DataObject
) -> None:
    keys = st.sampled_from([key for group in SHAPES[header] for key in group])
    _assert_same(data.draw(st.dictionaries(keys, _numbers())), header)


#: Per header: a plain map, fields it must decode to, values the fast path
#: leaves to the generic decoder, and required keys.
COMMON_SHAPES = [
    (
        SendMessageRequestHeaderV2,
        {"a": "G", "b": "T", "c": "TBW102", "d": "4", "e": "-1", "f": "0", "g": "17"}
        | {"h": "0", "k": "TRUE", "m": "false"},
        {"queue_id": -1, "born_timestamp": 17, "unit_mode": True, "batch": False},
        [("e", "+3"), ("e", "0000000000007"), ("g", str(1 << 63)), ("d", "x")],
        ("a", "d", "g"),
    ),
    (
        PullMessageRequestHeader,
        {"consumerGroup": "G", "topic": "T", "queueId": "3", "queueOffset": "-1"}
        | {"maxMsgNums": "32", "sysFlag": "2", "commitOffset": "0"}
        | {"suspendTimeoutMillis": "15000", "subVersion": "1733240000000", "subscription": "*"},
        {"queue_id": 3, "queue_offset": -1, "sub_version": 1733240000000, "expression_type": None},
        [("queueId", "+3"), ("subVersion", str(1 << 63)), ("maxMsgNums", "x")],
        ("consumerGroup", "queueOffset", "subVersion"),
    ),
]


@pytest.mark.parametrize(("header", "ext", "fields", "odd", "required"), COMMON_SHAPES)
def test_fast_path_takes_the_common_shape_and_refuses_like_the_generic_decoder(
    header: type[Any],
    ext: dict[str, str],
    fields: dict[str, object],
    odd: list[tuple[str, str]],
    required: tuple[str, ...],
) -> None:
    # The plain shape decodes; values the fast path leaves to the generic
    # decoder still decode or fail exactly as before.
    decoded = header.from_ext_fields_fast(ext)
    assert {name: getattr(decoded, name) for name in fields} == fields
    _assert_same(ext, header)
    for key, value in odd:
        _assert_same(ext | {key: value}, header)
    for key in required:
        _assert_same({k: v for k, v in ext.items() if k != key}, header)


def test_fast_path_equals_the_generic_decoder_on_every_recorded_send_and_pull() -> None:
    seen = {RequestCode.SEND_MESSAGE_V2: 0, RequestCode.PULL_MESSAGE: 0}
    for record in iter_all_records():
        if not record.is_frame or not record.is_request:
            continue
        if record.code in V2_CODES:
            header: type[Any] = SendMessageRequestHeaderV2
        elif record.code == RequestCode.PULL_MESSAGE:
            header = PullMessageRequestHeader
        else:
            continue
        _assert_same(decode(record.frame).ext_fields or {}, header)
        if record.code in seen:
            seen[record.code] += 1
    assert all(seen.values()), f"the vectors lack a request of a kind: {seen}"


# -- the answer: SendMessageResponseHeader.answer_ext_fields -----------------

PRECEDING_KEYS = ("MSG_REGION", "TRACE_ON", "AccessKey", "x", "queueId")


@given(
    msg_id=st.text(max_size=40),
    queue_id=st.integers(-(2**31), 2**31 - 1),
    queue_offset=st.integers(-(2**63), 2**63 - 1),
    preceding=st.dictionaries(st.sampled_from(PRECEDING_KEYS), st.text(max_size=8), max_size=4),
)
def test_the_answer_fast_path_is_the_generic_encoder(
    msg_id: str, queue_id: int, queue_offset: int, preceding: dict[str, str]
) -> None:
    header = SendMessageResponseHeader(msg_id=msg_id, queue_id=queue_id, queue_offset=queue_offset)
    fast = SendMessageResponseHeader.answer_ext_fields(msg_id, queue_id, queue_offset, preceding)
    generic = header.to_ext_fields(preceding)
    assert list(fast.items()) == list(generic.items())


# -- the answer of a pull that found messages ---------------------------------

LONGS = st.integers(-(2**63), 2**63 - 1)


@given(suggest=LONGS, next_begin=LONGS, low=LONGS, high=LONGS)
def test_the_pull_answer_fast_path_is_the_generic_encoder(
    suggest: int, next_begin: int, low: int, high: int
) -> None:
    header = PullMessageResponseHeader(suggest, next_begin, low, high)
    fast = PullMessageResponseHeader.answer_ext_fields(suggest, next_begin, low, high)
    assert list(fast.items()) == list(header.to_ext_fields().items())
