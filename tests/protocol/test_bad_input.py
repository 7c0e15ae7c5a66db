"""Any input decodes or raises ProtocolError (header decoders: CommandError).

A bounded pass over the fuzz targets of ``fuzz/targets.py`` with the inputs of
``fuzz/strategies.py`` (the long campaigns live in ``fuzz/``): arbitrary bytes,
mutated recordings, and structured inputs that get past the first checks
(JSON headers with wrong types, JSON bodies using the real property names with
wrong values, ext fields with the headers' names).
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.strategies import inputs_for
from fuzz.targets import BODY_CODECS, TARGETS
from pyrocket.errors import ProtocolError
from pyrocket.protocol.bodies import Properties, parse_properties


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target(name: str) -> None:
    target = TARGETS[name]

    @given(inputs_for(name))
    def check(data: bytes) -> None:
        target(data)

    check()


@given(st.binary(max_size=512))
def test_every_target_on_the_same_bytes(data: bytes) -> None:
    for target in TARGETS.values():
        target(data)


@given(st.text(alphabet=st.sampled_from(string.printable + "\\\x0c é☃"), max_size=80))
def test_properties_parser_takes_any_text(text: str) -> None:
    try:
        entries = parse_properties(text)
    except ProtocolError as exc:  # only a malformed \\uXXXX may fail
        assert "uxxxx" in str(exc)
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in entries.items())


@given(
    st.dictionaries(
        st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=10),
        st.text(
            alphabet=st.characters(exclude_characters="\\\n\r", exclude_categories=("Cs",)),
            max_size=10,
        ).map(str.strip),
        max_size=6,
    )
)
def test_properties_round_trip_for_plain_values(entries: dict[str, str]) -> None:
    # properties2String writes values raw; values without backslashes, line
    # breaks or leading blanks read back as written.
    body = Properties(entries)
    assert Properties.decode(body.encode()) == body


def test_every_body_codec_is_exercised() -> None:
    names = {codec.name for codec in BODY_CODECS}
    assert {"RegisterBrokerBody", "RegisterBrokerBody(compressed)", "Properties"} <= names
    assert len(names) >= 20
