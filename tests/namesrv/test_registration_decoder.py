"""REGISTER_BROKER body decoding, and the per-broker reuse of a previous
decoding when only the DataVersion changed: the reused result must always be
exactly what a full decoding gives."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.errors import CommandError
from pyrocket.protocol.bodies import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.bodies import register as register_module
from pyrocket.protocol.bodies.register import (
    RegistrationDecoder,
    decode_legacy_register_body,
    decode_register_body,
)


def body(topics: dict[str, int], version: DataVersion, servers: tuple[str, ...] = ()) -> bytes:
    table = {name: TopicConfig(name, queues, queues) for name, queues in topics.items()}
    return RegisterBrokerBody(TopicConfigSerializeWrapper(table, version), servers).encode()


def test_a_body_decodes_to_its_table_version_and_filter_servers() -> None:
    decoded = decode_register_body(body({"A": 4, "B": 8}, DataVersion(5, 6), ("f:1",)), False)
    assert decoded.data_version == DataVersion(5, 6)
    assert dict(decoded.topics) == {"A": (4, 4, 6, 0), "B": (8, 8, 6, 0)}
    assert decoded.filter_server_list == ("f:1",)
    compressed = RegisterBrokerBody.decode(body({"A": 4, "B": 8}, DataVersion(5, 6), ("f:1",)))
    assert decode_register_body(compressed.encode(compress=True), True) == decoded
    assert decode_register_body(None, False).data_version == DataVersion(0, 0)
    assert decode_legacy_register_body(None).filter_server_list is None


def test_missing_fields_take_javas_topic_config_defaults() -> None:
    raw = b'{"topicConfigSerializeWrapper":{"dataVersion":{"counter":1,"timestamp":2},'
    raw += b'"topicConfigTable":{"T":{"topicName":"T","perm":null}}}}'
    decoded = decode_register_body(raw, False)
    assert dict(decoded.topics) == {"T": (16, 16, 6, 0)}
    assert decoded.filter_server_list == ()


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b'{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":[]}}}', "is not an object"),
        (b'{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{}}}}', "topicName"),
        (
            b'{"topicConfigSerializeWrapper":{"topicConfigTable":'
            b'{"T":{"topicName":"T","perm":4294967296}}}}',
            "perm is not a Java int",
        ),
        (b'{"filterServerList":[1]}', "filterServerList"),
        (b'{"topicConfigSerializeWrapper":{"dataVersion":{"counter":"x"}}}', "counter"),
    ],
)
def test_what_is_not_a_register_body_is_named(raw: bytes, complaint: str) -> None:
    with pytest.raises(CommandError, match=complaint):
        decode_register_body(raw, False)


def test_a_new_data_version_reuses_the_previous_decoding() -> None:
    decoder = RegistrationDecoder()
    first = decoder.decode("b:1", body({"A": 4}, DataVersion(100, 1)), False)
    second = decoder.decode("b:1", body({"A": 4}, DataVersion(200, 2)), False)
    assert second.data_version == DataVersion(200, 2)
    assert second.topics is first.topics
    # Another broker's identical body is its own decoding.
    other = decoder.decode("b:2", body({"A": 4}, DataVersion(200, 2)), False)
    assert other.topics is not first.topics
    # A changed table is decoded again.
    third = decoder.decode("b:1", body({"A": 8}, DataVersion(300, 3)), False)
    assert dict(third.topics) == {"A": (8, 8, 6, 0)}


def test_bodies_that_name_data_version_twice_are_always_decoded_in_full() -> None:
    decoder = RegistrationDecoder()
    first = decoder.decode("b:1", body({"dataVersion": 4}, DataVersion(1, 1)), False)
    second = decoder.decode("b:1", body({"dataVersion": 4}, DataVersion(2, 2)), False)
    assert second.topics is not first.topics
    assert second.data_version == DataVersion(2, 2)


def test_the_decoder_forgets_the_oldest_broker_beyond_its_capacity() -> None:
    decoder = RegistrationDecoder(capacity=2)
    first = decoder.decode("b:1", body({"A": 4}, DataVersion(1, 1)), False)
    decoder.decode("b:2", body({"A": 4}, DataVersion(1, 1)), False)
    decoder.decode("b:3", body({"A": 4}, DataVersion(1, 1)), False)
    again = decoder.decode("b:1", body({"A": 4}, DataVersion(2, 2)), False)
    assert again.topics is not first.topics
    assert again.data_version == DataVersion(2, 2)


def test_a_body_that_hides_its_data_version_is_stamped_at_decoding() -> None:
    decoder = RegistrationDecoder()
    original = body({"A": 4}, DataVersion(1, 2))
    decoder.decode("b:1", original, False)
    hidden = original.replace(b'"dataVersion"', b'"dataVersioN"')
    with patch("time.time_ns", return_value=5_000_000_042):
        got = decoder.decode("b:1", hidden, False)
    assert got.data_version == DataVersion(5_000, 0)
    assert dict(got.topics) == {"A": (4, 4, 6, 0)}


COUNTERS = st.integers(-(1 << 63), (1 << 63) - 1)
STILL_CLOCK_NS = 1_700_000_000_123_456_789


@st.composite
def edited(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with its DataVersion or any other few bytes changed."""
    if draw(st.booleans()):
        version = DataVersion(draw(COUNTERS), draw(COUNTERS))
        marker = b'"dataVersion":'
        start = original.index(marker) + len(marker)
        end = original.index(b"}", start) + 1
        return original[:start] + version.encode() + original[end:]
    at = draw(st.integers(0, len(original) - 1))
    size = draw(st.integers(0, 3))
    return original[:at] + draw(st.binary(max_size=4)) + original[at + size :]


@given(
    st.dictionaries(st.sampled_from(["A", "B", "T1", "dataVersion"]), st.integers(1, 16)),
    COUNTERS,
    COUNTERS,
    st.data(),
)
def test_reuse_always_equals_a_full_decoding(
    topics: dict[str, int], counter: int, timestamp: int, data: st.DataObject
) -> None:
    decoder = RegistrationDecoder()
    original = body(topics, DataVersion(timestamp, counter))
    decoder.decode("b:1", original, False)
    for _ in range(3):
        changed = data.draw(edited(original))
        # An edit that hides the DataVersion (a renamed key, a null) makes both
        # decodings stamp one with the wall clock, as Java's new DataVersion()
        # does; the clock stands still so the two stamps are comparable.
        with patch("time.time_ns", return_value=STILL_CLOCK_NS):
            try:
                expected = decode_register_body(changed, False)
            except CommandError:
                with pytest.raises(CommandError):
                    decoder.decode("b:1", changed, False)
                continue
            got = decoder.decode("b:1", changed, False)
        assert got.data_version == expected.data_version
        assert dict(got.topics) == dict(expected.topics)
        assert got.filter_server_list == expected.filter_server_list


def outside_data_version(raw: bytes) -> tuple[bytes, bytes]:
    """The bytes of ``raw`` before and after its DataVersion object."""
    marker = b'"dataVersion":'
    start = raw.index(marker) + len(marker)
    return raw[:start], raw[raw.index(b"}", start) + 1 :]


def test_a_body_of_the_same_length_with_one_topic_renamed_is_decoded_again() -> None:
    decoder = RegistrationDecoder()
    first = decoder.decode("b:1", body({"TopicA": 4, "TopicB": 4}, DataVersion(1, 1)), False)
    renamed = body({"TopicA": 4, "TopicC": 4}, DataVersion(2, 2))
    assert len(renamed) == len(body({"TopicA": 4, "TopicB": 4}, DataVersion(2, 2)))
    second = decoder.decode("b:1", renamed, False)
    assert second.topics is not first.topics
    assert list(second.topics) == ["TopicA", "TopicC"]


def test_reuse_never_rests_on_a_hash_of_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Were the bytes around the DataVersion compared by hash, a crafted body
    # whose hashes collide would be taken for the last one. Make every hash
    # collide: a changed body must still be decoded in full.
    monkeypatch.setattr(register_module, "hash", lambda _: 0, raising=False)
    decoder = RegistrationDecoder()
    first = decoder.decode("b:1", body({"TopicA": 4}, DataVersion(1, 1)), False)
    second = decoder.decode("b:1", body({"TopicA": 8}, DataVersion(2, 2)), False)
    assert second.topics is not first.topics
    assert dict(second.topics) == {"TopicA": (8, 8, 6, 0)}


TOPIC_NAMES = st.text("ABCxyz019-_%", min_size=1, max_size=8)


@given(
    st.dictionaries(TOPIC_NAMES, st.integers(1, 16), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 5), st.sampled_from("ABCxyz019")), max_size=2),
    st.sampled_from([(), ("f:1",)]),
    COUNTERS,
    COUNTERS,
)
def test_the_reuse_path_gives_what_a_full_decoding_gives(
    topics: dict[str, int],
    renames: list[tuple[int, str]],
    servers: tuple[str, ...],
    counter: int,
    timestamp: int,
) -> None:
    # The next body has a new DataVersion and maybe some topic names changed
    # by one character, keeping the body's length.
    changed = dict(topics)
    for index, char in renames:
        name = list(changed)[index % len(changed)]
        renamed = char + name[1:]
        if renamed not in changed:
            changed = {renamed if key == name else key: value for key, value in changed.items()}
    decoder = RegistrationDecoder()
    original = body(topics, DataVersion(1, 1), servers)
    first = decoder.decode("b:1", original, False)
    following = body(changed, DataVersion(timestamp, counter), servers)
    got = decoder.decode("b:1", following, False)
    expected = decode_register_body(following, False)
    assert got == expected
    assert list(got.topics) == list(expected.topics)
    # Reused exactly when nothing but the DataVersion differs.
    same_outside = outside_data_version(original) == outside_data_version(following)
    assert (got.topics is first.topics) == same_outside
