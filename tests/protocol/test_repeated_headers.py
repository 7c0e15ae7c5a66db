"""RepeatedHeaders gives, frame after frame, exactly what decode_payload gives.

Headers are sent again and again with their opaque written many ways (plain
digits of any width, leading zeros, signs, fractions, strings, out of range),
with an "opaque" ext field before the top-level one, duplicated and escaped
keys, bodies, and header-length words that move the header's end: whatever
it has kept, each frame decodes to the same command or the same error.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrocket.errors import ProtocolError
from pyrocket.protocol import repeated
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand, decode_payload, encode
from pyrocket.protocol.headers import GetRouteInfoRequestHeader
from pyrocket.protocol.repeated import MAX_KEPT, RepeatedHeaders

KEPT_CODES = (105, 106)

#: Header texts with ``%s`` where the opaque's text goes.
SHAPES = st.sampled_from(
    [
        b'{"code":%d,"extFields":{"topic":"T"},"flag":0,"language":"JAVA","opaque":%%s,'
        b'"serializeTypeCurrentRPC":"JSON","version":355}',
        b'{"code":%d,"flag":0,"language":"CPP","opaque":%%s,"remark":"r",'
        b'"serializeTypeCurrentRPC":"JSON","version":1}',
        b'{"code":%d,"language":"JAVA","opaque":%%s}',
        b'{"code":%d,"opaque":%%s}',
        b'{"code":%d,"opaque":%%s,"opaque":7}',
        b'{"code":%d,"extFields":{"opaque":%%s},"opaque":5}',
        b'{"code":%d,"extFields":{"opaque":%%s}}',
        b'{"code":%d,"opaque":%%s,"\\u006fpaque":9}',
        b'{"code":%d,"\\u006fpaque":9,"opaque":%%s}',
        b'{"code":%d,"flag":%%s,"opaque":%%s}',
        b'{"code":%d,"opaque":%%s,"flag":"x"}',
        b'{"code":%d,"opaque":%%s,"version":2147483648}',
        b'{"code":%d,"opaque":%%s,"language":"NOPE"}',
        b'{"code":%d,"opaque": %%s}',
        b'{"code":%d,"opaque":%%s',
        b'{"code":%d,"opaque":%%s,"extFields":[]}',
    ]
)
DIGITS = st.integers(0, (1 << 31) - 1).map(lambda n: b"%d" % n)
ODD_TEXT = st.one_of(
    DIGITS,
    st.integers(-(1 << 31), -1).map(lambda n: b"%d" % n),
    st.integers(1 << 31, 1 << 40).map(lambda n: b"%d" % n),
    st.sampled_from([b"1.5", b'"7"', b"1e3", b"null", b"true", b"-0", b"", b"9" * 30]),
)


def width_texts(width: int) -> st.SearchStrategy[bytes]:
    """Opaque texts of ``width`` characters: plain digits (for width 10,
    also past the int32 range), and digits with a leading zero."""
    low = 0 if width == 1 else 10 ** (width - 1)
    plain = st.integers(low, 10**width - 1).map(lambda n: b"%d" % n)
    zeroed = st.integers(0, 10 ** (width - 1) - 1).map(lambda n: b"%0*d" % (width, n))
    return st.one_of(plain, plain, plain, zeroed) if width > 1 else plain


@st.composite
def sequences(draw: st.DrawFn) -> list[bytes]:
    """Frames of one or two header shapes, most with opaques of one width
    (so that frames are kept and then answered from what is kept), some
    with other texts, other widths, bodies and header-length words that do
    not fit the header."""
    codes = draw(st.lists(st.sampled_from([*KEPT_CODES, 34]), min_size=1, max_size=2))
    picked = draw(st.lists(SHAPES, min_size=1, max_size=2))
    shapes = [shape % code for shape in picked for code in codes]
    width = draw(st.integers(1, 10))
    texts = (
        st.one_of(
            width_texts(width),
            width_texts(width),
            width_texts(width),
            width_texts(max(width - 1, 1)),
        )
        | width_texts(min(width + 1, 10))
        | ODD_TEXT
    )
    frames = []
    for _ in range(draw(st.integers(1, 40))):
        header = draw(st.sampled_from(shapes))
        while b"%s" in header:
            at = header.index(b"%s")
            header = header[:at] + draw(texts) + header[at + 2 :]
        body = draw(st.sampled_from([b"", b"", b"", b"xy", b"}", b" ", b"  ", b',"opaque":1}']))
        # Mostly the true header length; sometimes one that moves the end.
        length = len(header) + draw(st.sampled_from([0] * 8 + [-1, 1, -2]))
        kind = draw(st.sampled_from([0] * 8 + [1]))
        frames.append(bytes([kind]) + max(length, 0).to_bytes(3, "big") + header + body)
    return frames


def outcome(decode: object, payload: bytes) -> RemotingCommand | str:
    assert callable(decode)
    try:
        result = decode(payload)
    except ProtocolError as exc:
        return f"ProtocolError: {exc}"
    assert isinstance(result, RemotingCommand)
    return result


@settings(max_examples=400, deadline=None)
@given(sequences())
def test_every_frame_decodes_as_decode_payload_decodes_it(frames: list[bytes]) -> None:
    headers = RepeatedHeaders(KEPT_CODES)
    for payload in frames:
        assert outcome(headers.decode, payload) == outcome(decode_payload, payload)


def route_payload(topic: str, opaque: int) -> bytes:
    request = RemotingCommand.request(
        RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader(topic)
    ).replace(opaque=opaque)
    return encode(request)[4:]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, (1 << 31) - 1), min_size=3, max_size=20, unique=True))
def test_a_header_is_kept_after_two_opaques_and_answers_the_rest(opaques: list[int]) -> None:
    headers = RepeatedHeaders([RequestCode.GET_ROUTEINFO_BY_TOPIC])
    widths: dict[int, int] = {}
    for opaque in opaques:
        payload = route_payload("TopicA", opaque)
        width = len(str(opaque))
        widths[width] = widths.get(width, 0) + 1
        assert headers.decode(payload) == decode_payload(payload)
        assert headers.decode(payload).opaque == opaque
    # One kept frame for each width of opaque seen twice or more.
    assert headers.kept == sum(1 for count in widths.values() if count >= 2)


def test_other_codes_and_the_rocketmq_form_are_never_kept() -> None:
    headers = RepeatedHeaders([RequestCode.GET_ROUTEINFO_BY_TOPIC])
    for opaque in range(10, 40):
        other = RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_INFO).replace(opaque=opaque)
        payload = encode(other)[4:]
        assert headers.decode(payload) == decode_payload(payload)
    assert headers.kept == 0
    assert headers.codes == (RequestCode.GET_ROUTEINFO_BY_TOPIC,)


def test_what_is_kept_stays_bounded() -> None:
    headers = RepeatedHeaders([RequestCode.GET_ROUTEINFO_BY_TOPIC])
    topics = [f"T{i}" for i in range(MAX_KEPT + 100)]
    for round_ in (1000, 2000, 3000):
        for index, topic in enumerate(topics):
            headers.decode(route_payload(topic, round_ + index % 7))
    assert headers.kept == MAX_KEPT
    assert headers.seen <= MAX_KEPT
    # The newest are kept and answered.
    payload = route_payload(topics[-1], 4321)
    assert headers.decode(payload) == decode_payload(payload)


def test_routes_of_the_longest_topic_names_are_kept() -> None:
    """Java's topic names run to 127 characters."""
    headers = RepeatedHeaders([RequestCode.GET_ROUTEINFO_BY_TOPIC])
    check_all(headers, [route_payload("x" * 127, (1 << 30) + n) for n in range(3)])
    assert headers.kept == 1
    too_long = [route_payload("x" * repeated.MAX_KEPT_FRAME, (1 << 30) + n) for n in range(3)]
    check_all(headers, too_long)
    assert headers.kept == 1 and headers.seen == 0


def json_payload(header: bytes, length: int | None = None, body: bytes = b"") -> bytes:
    size = len(header) if length is None else length
    return b"\x00" + size.to_bytes(3, "big") + header + body


def refused(decode: object, payload: bytes) -> bool:
    result = outcome(decode, payload)
    return isinstance(result, str) and result.startswith("ProtocolError")


def check_all(headers: RepeatedHeaders, payloads: list[bytes]) -> None:
    for payload in payloads:
        assert outcome(headers.decode, payload) == outcome(decode_payload, payload)


def test_a_kept_frame_answers_only_opaques_of_its_width() -> None:
    """Other digits under the same header-length word move the header's end:
    such a frame is decoded (and refused) in full."""
    shape = b'{"code":105,"opaque":%s,"flag":0}'
    headers = RepeatedHeaders([105])
    learned = [json_payload(shape % b"123", body=b"}}"), json_payload(shape % b"456", body=b"}}")]
    check_all(headers, learned)
    assert headers.kept == 1
    wider = json_payload(shape % b"7890", length=len(shape % b"123"), body=b"}}")
    narrower = json_payload(shape % b"78", length=len(shape % b"123"), body=b"}}")
    check_all(headers, [wider, narrower])
    assert refused(decode_payload, wider)


@pytest.mark.parametrize(
    ("learned", "bad", "good"),
    [
        ((b"123", b"456"), b"012", b"789"),  # a leading zero
        ((b"1000000000", b"1000000001"), b"2147483648", b"2147483647"),  # past int32
    ],
)
def test_a_kept_frame_refuses_digits_java_would_not_send(
    learned: tuple[bytes, bytes], bad: bytes, good: bytes
) -> None:
    shape = b'{"code":105,"opaque":%s,"flag":0}'
    headers = RepeatedHeaders([105])
    check_all(headers, [json_payload(shape % digits) for digits in learned])
    assert headers.kept == 1
    check_all(headers, [json_payload(shape % bad), json_payload(shape % good)])
    assert refused(headers.decode, json_payload(shape % bad))


def test_digits_that_only_match_the_opaque_by_chance_are_not_kept() -> None:
    """The first ``"opaque":`` is an ext field's; the top-level opaque, under
    an escaped key, happens to have the same value."""
    shape = b'{"code":105,"extFields":{"opaque":%s},"\\u006fpaque":5}'
    headers = RepeatedHeaders([105])
    check_all(headers, [json_payload(shape % b"5")] * 3 + [json_payload(shape % b"6")])
    assert headers.kept == 0
    answer = outcome(headers.decode, json_payload(shape % b"6"))
    assert isinstance(answer, RemotingCommand) and answer.opaque == 5


def test_opaques_that_are_not_plain_digits_are_not_remembered() -> None:
    headers = RepeatedHeaders([105])
    for text in (b'"7"', b"-5", b"1.5", b"-6", b'"8"'):
        check_all(headers, [json_payload(b'{"code":105,"opaque":%s,"flag":0}' % text)])
    assert headers.seen == headers.kept == 0


def test_a_header_end_moved_over_whitespace_keeps_the_split_of_its_width() -> None:
    """Under one header-length word, a narrower opaque takes a trailing space
    of the body into the header, where JSON allows it: what is kept then
    answers frames of that width only, with that split."""
    shape = b'{"code":105,"opaque":%s,"flag":0}'
    length = len(shape % b"55")
    frames = [json_payload(shape % b"55", length, b" "), json_payload(shape % b"5", length, b" ")]
    headers = RepeatedHeaders([105])
    check_all(headers, frames)
    assert headers.kept == 1
    check_all(headers, [json_payload(shape % b"7", length, b" "), *frames])
    answer = headers.decode(json_payload(shape % b"7", length, b" "))
    assert (answer.opaque, answer.body) == (7, None)
