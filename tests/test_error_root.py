"""Every exception pyrocket defines derives from the one root,
:class:`pyrocket.errors.PyrocketError` (STYLE.md: one error root)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import pyrocket
from pyrocket.errors import LocalProtocolError, ProtocolError, PyrocketError
from pyrocket.protocol.frame import build_frame_head


def pyrocket_exceptions() -> list[type[BaseException]]:
    """Every exception class defined (not just imported) in a pyrocket module."""
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(pyrocket.__path__, "pyrocket."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_pyrocket_exception_has_the_one_root() -> None:
    exceptions = pyrocket_exceptions()
    assert PyrocketError in exceptions and len(exceptions) > 10
    outside = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in exceptions
        if not issubclass(cls, PyrocketError)
    )
    assert outside == []


def test_a_local_encode_failure_is_told_apart_from_bad_input() -> None:
    local = LocalProtocolError("a value of ours does not fit")
    assert isinstance(local, ProtocolError) and isinstance(local, ValueError)
    assert not isinstance(ProtocolError("bad bytes", 3), LocalProtocolError)


def test_encoders_raise_the_local_kind() -> None:
    with pytest.raises(LocalProtocolError):
        build_frame_head(-1, 0, 0)
    with pytest.raises(LocalProtocolError):
        build_frame_head(8, 0, 1 << 24)
