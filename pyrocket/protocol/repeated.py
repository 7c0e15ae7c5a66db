"""Decoding JSON headers that come again and again but for their opaque.

A client asks a NameServer for the same topic's route many times, and each
request's header is the same text but for the opaque's digits. For the
request codes it is given, :class:`RepeatedHeaders` keeps each such header
decoded, keyed by its text with the digits cut out, and answers a later
frame with that key by the kept command with the new opaque put in: a
dictionary lookup instead of a JSON decode and its checks.

A frame is kept only once it is known where its top-level opaque is: when
a second frame with the same key but other digits has come, and the two
decoded to commands with different opaques.
A frame it cannot use (another code, the ROCKETMQ form, a long header, an
opaque written any way but plain decimal digits, a header it has not seen)
is decoded by :func:`~pyrocket.protocol.command.decode_payload`, which also
gives every error. So the result is always what that function gives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Final

from pyrocket.protocol.command import (
    RemotingCommand,
    decode_payload,
    make_command,
)

#: The top-level key whose value is cut out of a header to make its key.
_OPAQUE: Final = b'"opaque":'
#: The longest frame kept (header and body, without the length word), and
#: how many are kept (the oldest goes first).
MAX_KEPT_FRAME: Final = 512
MAX_KEPT: Final = 4096
#: Decimal digits of an int32 that need no range check (below 10**9).
_SAFE_DIGITS: Final = 9
_INT32_MAX: Final = (1 << 31) - 1


class RepeatedHeaders:
    """:func:`decode_payload` (default limits) for frames of any code, with
    the JSON headers of ``codes`` kept decoded.

    State is bounded: at most :data:`MAX_KEPT` frames kept and as many seen
    once, each of at most :data:`MAX_KEPT_FRAME` bytes.
    """

    __slots__ = ("_kept", "_prefixes", "_seen")

    def __init__(self, codes: Iterable[int] = ()) -> None:
        self._prefixes: tuple[bytes, ...] = ()
        #: By key: the command of a frame and the width of its opaque's digits.
        self._kept: OrderedDict[bytes, tuple[RemotingCommand, int]] = OrderedDict()
        #: Frames seen once. When it is full the newest goes, so that under
        #: more keys than fit, some still come a second time and are kept.
        self._seen: dict[bytes, RemotingCommand] = {}
        for code in codes:
            self.add_code(code)

    def add_code(self, code: int) -> None:
        """Keep the headers of ``code`` from now on."""
        # fastjson writes "code" first, so a header of one of these codes
        # starts with one of these texts.
        prefix = b'{"code":%d,' % code
        if prefix not in self._prefixes:
            self._prefixes = (*self._prefixes, prefix)

    @property
    def codes(self) -> tuple[int, ...]:
        """The codes whose headers are kept."""
        return tuple(int(prefix[8:-1]) for prefix in self._prefixes)

    @property
    def kept(self) -> int:
        """How many frames are kept now."""
        return len(self._kept)

    @property
    def seen(self) -> int:
        """How many frames have been seen once and not kept (yet)."""
        return len(self._seen)

    def decode(self, payload: bytes) -> RemotingCommand:
        """The command of ``payload`` (a frame without its length word)."""
        if len(payload) > MAX_KEPT_FRAME or not payload.startswith(self._prefixes, 4):
            return decode_payload(payload)
        at = payload.find(_OPAQUE, 4)
        stop = payload.find(b",", at)
        if at < 0 or stop < 0:
            return decode_payload(payload)
        start = at + len(_OPAQUE)
        # The whole frame but the digits, its header-length word included.
        key = payload[:start] + payload[stop:]
        entry = self._kept.get(key)
        if entry is None:
            return self._learn(payload, key, start, stop)
        kept, width = entry
        digits = payload[start:stop]
        if (
            len(digits) != width
            or not digits.isdigit()
            or (digits[0] == 0x30 and width > 1)
            or (width > _SAFE_DIGITS and int(digits) > _INT32_MAX)
        ):
            return decode_payload(payload)  # for its error, or another width
        return make_command(
            kept.code,
            int(digits),
            kept.flag,
            kept.remark,
            kept.ext_fields,
            kept.body,
            kept.language,
            kept.version,
            kept.serialize_type,
        )

    def _learn(self, payload: bytes, key: bytes, start: int, stop: int) -> RemotingCommand:
        """Decode ``payload`` in full; keep it once two frames with this key
        have decoded to commands with different opaques. Only the digits
        differ between the two, so they are what sets the opaque: the value
        of the top-level key (an ext field or a duplicate key could not
        change it, and a JSON text cannot hold ``"opaque":``). Any other
        digits of the width (checked when used) then give the same command
        with them as its opaque."""
        command = decode_payload(payload)
        if not payload[start:stop].isdigit():
            return command
        first = self._seen.pop(key, None)
        if first is None or first.opaque == command.opaque:
            seen = self._seen
            if len(seen) >= MAX_KEPT:
                seen.popitem()
            seen[key] = command
        else:
            kept = self._kept
            if len(kept) >= MAX_KEPT:
                kept.popitem(last=False)  # the oldest
            kept[key] = (command, stop - start)
        return command
