"""Every frame Java 4.7.0 wrote decodes to what was recorded and re-encodes to
the identical bytes."""

from __future__ import annotations

import base64
import json

import pytest

from pyrocket.protocol.command import decode, encode
from tests.vectorset import Record, iter_all_records, scenario_files

FRAMES = [r for r in iter_all_records() if r.is_frame]


def test_vectors_are_discovered() -> None:
    # Every capture file contributes frames (none is skipped or unreadable).
    scenarios = {r.scenario for r in FRAMES}
    assert scenarios == {path.stem for path in scenario_files()}


@pytest.mark.parametrize("record", FRAMES, ids=lambda r: f"{r.scenario}-{r.seq}")
def test_frame_decodes_as_recorded_and_reencodes_identically(record: Record) -> None:
    raw = record.raw
    frame = record.frame
    command = decode(frame)
    assert command.code == raw["code"]
    assert command.opaque == raw["opaque"]
    assert command.flag == raw["flag"]
    assert command.is_oneway == raw["oneway"]
    assert command.is_response == (raw["dir"] == "response")
    assert command.serialize_type.name == raw["serialize"]
    header = raw["header"]
    assert command.language.name == header["language"]
    assert command.version == header["version"]
    assert command.remark == header.get("remark")
    ext = header.get("extFields")
    assert (None if command.ext_fields is None else dict(command.ext_fields)) == ext
    if ext is not None:
        assert list(command.ext_fields or {}) == list(ext), "ext field order"
    if raw["header_text"] is not None:
        assert json.loads(raw["header_text"]) == header
    expected_body = base64.b64decode(raw["body_b64"]) if raw["body_b64"] else None
    assert command.body == expected_body
    assert encode(command) == frame
