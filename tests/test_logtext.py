"""Clipped log arguments: short values as they are, long ones cut with the
rest counted, formatted only when a record is emitted."""

from __future__ import annotations

import logging

import pytest

from pyrocket.logtext import DEFAULT_LIMIT, clip, clipped


def test_short_values_are_unchanged() -> None:
    assert clip("abc") == "abc"
    assert clip(12) == "12"
    assert clip(b"\x00a") == repr(b"\x00a")
    assert str(clipped("x" * DEFAULT_LIMIT)) == "x" * DEFAULT_LIMIT


def test_long_values_are_cut_and_the_rest_counted() -> None:
    text = clip("y" * (DEFAULT_LIMIT + 10))
    assert text == "y" * DEFAULT_LIMIT + "... (10 more characters)"
    data = clip(b"z" * 100, limit=8)
    assert data == repr(b"z" * 8) + "... (92 more bytes)"
    assert clip({"k": "v" * 50}, limit=5) == "{'k':... (54 more characters)"


def test_a_clipped_argument_is_formatted_only_when_emitted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    formatted: list[int] = []

    class Costly:
        def __str__(self) -> str:
            formatted.append(1)
            return "c" * 10_000

    log = logging.getLogger("pyrocket.test.logtext")
    with caplog.at_level(logging.WARNING, logger=log.name):
        log.info("value %s", clipped(Costly()))
        assert formatted == []
        log.warning("value %s", clipped(Costly(), 20))
    assert formatted  # formatted for the handlers that took the record
    (record,) = caplog.records
    assert record.getMessage() == "value " + "c" * 20 + "... (9980 more characters)"
