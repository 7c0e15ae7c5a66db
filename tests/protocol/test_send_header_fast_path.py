"""``SendMessageRequestHeaderV2.from_ext_fields_fast`` is the generic decoder,
only quicker: for any ext-field map it gives the same header, or raises the
same CommandError, as ``from_ext_fields``.

The maps are random (plain, signed, zero-padded, out-of-range and non-numeric
numbers; missing and extra keys) and, as a second source, every send request
Java recorded in the golden vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hypothesis import given
from hypothesis import strategies as st

from pyrocket.errors import CommandError
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import decode
from pyrocket.protocol.headers import SendMessageRequestHeaderV2, SendMessageResponseHeader
from tests.vectorset import iter_all_records

# Every code the broker decodes with the V2 header.
V2_CODES = {
    RequestCode.SEND_MESSAGE_V2,
    RequestCode.SEND_BATCH_MESSAGE,
    RequestCode.SEND_REPLY_MESSAGE_V2,
}

STRING_KEYS = ("a", "b", "c", "i")
NUMBER_KEYS = ("d", "e", "f", "g", "h", "j", "l")
BOOLEAN_KEYS = ("k", "m")


def _outcome(
    decode_with: Callable[[Mapping[str, str]], SendMessageRequestHeaderV2], ext: Mapping[str, str]
) -> object:
    """The decoded header, or the error's kind and message."""
    try:
        return decode_with(ext)
    except CommandError as exc:
        return ("CommandError", str(exc))


def _assert_same(ext: Mapping[str, str]) -> None:
    fast = _outcome(SendMessageRequestHeaderV2.from_ext_fields_fast, ext)
    generic = _outcome(SendMessageRequestHeaderV2.from_ext_fields, ext)
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
def _ext_maps(draw: st.DrawFn) -> dict[str, str]:
    ext: dict[str, str] = {}
    # Required keys are present most of the time, so the fast path is reached.
    for key in STRING_KEYS:
        if draw(st.integers(0, 9)) > 0:
            ext[key] = draw(st.text(max_size=10))
    for key in NUMBER_KEYS:
        if draw(st.integers(0, 9)) > 0:
            ext[key] = draw(_number_text)
    for key in BOOLEAN_KEYS:
        if draw(st.booleans()):
            ext[key] = draw(_boolean_text)
    extra = draw(st.dictionaries(st.text(min_size=2, max_size=8), st.text(max_size=8), max_size=3))
    for key, value in extra.items():
        ext.setdefault(key, value)
    return ext


@given(_ext_maps())
def test_fast_path_equals_the_generic_decoder(ext: dict[str, str]) -> None:
    _assert_same(ext)


@given(st.dictionaries(st.sampled_from(STRING_KEYS + NUMBER_KEYS + BOOLEAN_KEYS), _numbers()))
def test_fast_path_equals_the_generic_decoder_on_numbers_everywhere(ext: dict[str, str]) -> None:
    _assert_same(ext)


def test_fast_path_takes_the_common_shape_and_refuses_like_the_generic_decoder() -> None:
    # The plain shape decodes; values the fast path leaves to the generic
    # decoder still decode or fail exactly as before.
    ext = {"a": "G", "b": "T", "c": "TBW102", "d": "4", "e": "-1", "f": "0", "g": "17"}
    ext |= {"h": "0", "k": "TRUE", "m": "false"}
    header = SendMessageRequestHeaderV2.from_ext_fields_fast(ext)
    assert (header.queue_id, header.born_timestamp, header.unit_mode, header.batch) == (
        -1,
        17,
        True,
        False,
    )
    for key, value in [("e", "+3"), ("e", "0000000000007"), ("g", str(1 << 63)), ("d", "x")]:
        _assert_same(ext | {key: value})
    for key in ("a", "d", "g"):
        _assert_same({k: v for k, v in ext.items() if k != key})


def test_fast_path_equals_the_generic_decoder_on_every_recorded_send() -> None:
    seen = 0
    for record in iter_all_records():
        if not record.is_frame or not record.is_request or record.code not in V2_CODES:
            continue
        ext = decode(record.frame).ext_fields or {}
        _assert_same(ext)
        seen += record.code == RequestCode.SEND_MESSAGE_V2
    assert seen > 0, "the vectors hold no SEND_MESSAGE_V2 request"


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
