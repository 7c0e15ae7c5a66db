"""RemotingCommand: the one message type of RocketMQ remoting, and its codec.

A command is a frozen value. :func:`encode` turns it into a whole frame (length
word included) exactly as Java's ``RemotingCommand.encode`` lays it out;
:func:`decode_payload` / :func:`decode` parse one. Both header forms are
handled: JSON (fastjson's rendering of the Java bean) and ROCKETMQ (binary).

JSON header, as fastjson writes it: the bean's properties in alphabetical
order, ``code, extFields, flag, language, opaque, remark,
serializeTypeCurrentRPC, version``, with ``extFields`` and ``remark`` left out
when null and ``language`` written by name. ``ext_fields`` is kept in the order
it was read; commands built from typed headers get Java's HashMap order.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from pyrocket.errors import ProtocolError
from pyrocket.protocol.codes import VERSION_V4_7_0, LanguageCode, SerializeType
from pyrocket.protocol.fastjson import NEEDS_ESCAPE, escape, quote
from pyrocket.protocol.frame import (
    LENGTH_FIELD_SIZE,
    MAX_EXT_FIELDS,
    MAX_HEADER_SIZE,
    build_frame_head,
    build_rocketmq_header,
    parse_rocketmq_header,
)
from pyrocket.protocol.frozen import quick_init

if TYPE_CHECKING:
    from pyrocket.protocol.headers import CommandHeader

H = TypeVar("H", bound="CommandHeader")

#: flag bit 0: the command is a response.
RESPONSE_FLAG: Final = 1
#: flag bit 1: the request expects no response.
ONEWAY_FLAG: Final = 2

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


@quick_init
@dataclass(frozen=True, slots=True)
class RemotingCommand:
    """One request or response.

    ``code`` is a request code for requests and a response code for responses.
    ``ext_fields`` is ``None`` when the frame had none (JSON omits the key;
    ROCKETMQ writes length 0) and ``{}`` when it had an empty object. ``body``
    is ``None`` for no body; Java never distinguishes an empty body from none.
    """

    code: int
    opaque: int = 0
    flag: int = 0
    remark: str | None = None
    ext_fields: Mapping[str, str] | None = None
    body: bytes | None = None
    language: LanguageCode = LanguageCode.JAVA
    version: int = VERSION_V4_7_0
    serialize_type: SerializeType = SerializeType.JSON

    @property
    def is_response(self) -> bool:
        return bool(self.flag & RESPONSE_FLAG)

    @property
    def is_oneway(self) -> bool:
        return bool(self.flag & ONEWAY_FLAG)

    @classmethod
    def request(
        cls,
        code: int,
        header: CommandHeader | None = None,
        *,
        body: bytes | None = None,
        oneway: bool = False,
        opaque: int = 0,
        **options: Any,
    ) -> RemotingCommand:
        """A request; ``header`` fills ``ext_fields`` in Java's HashMap order."""
        return cls(
            code=code,
            opaque=opaque,
            flag=ONEWAY_FLAG if oneway else 0,
            ext_fields=None if header is None else header.to_ext_fields(),
            body=body or None,
            **options,
        )

    @classmethod
    def response(
        cls,
        code: int,
        remark: str | None = None,
        header: CommandHeader | None = None,
        *,
        body: bytes | None = None,
        **options: Any,
    ) -> RemotingCommand:
        """A response (opaque 0 until :meth:`answering` sets it).

        As in Java, a response created with a header class always carries an
        ``extFields`` object, empty if every header field is null.
        """
        return cls(
            code=code,
            flag=RESPONSE_FLAG,
            remark=remark,
            ext_fields=None if header is None else header.to_ext_fields(),
            body=body or None,
            **options,
        )

    def answering(self, request: RemotingCommand) -> RemotingCommand:
        """This response, carrying ``request``'s opaque."""
        return make_command(
            self.code,
            request.opaque,
            self.flag | RESPONSE_FLAG,
            self.remark,
            self.ext_fields,
            self.body,
            self.language,
            self.version,
            self.serialize_type,
        )

    def replace(self, **changes: Any) -> RemotingCommand:
        return dataclasses.replace(self, **changes)

    def decode_header(self, header_type: type[H]) -> H:
        """The typed header; raises CommandError naming a bad or missing field."""
        return header_type.from_ext_fields(self.ext_fields or {})

    def __repr__(self) -> str:
        kind = "response" if self.is_response else ("oneway" if self.is_oneway else "request")
        body = "" if self.body is None else f", body={len(self.body)}B"
        remark = "" if self.remark is None else f", remark={self.remark!r}"
        ext = "" if self.ext_fields is None else f", ext={dict(self.ext_fields)!r}"
        return f"<{kind} code={self.code} opaque={self.opaque}{remark}{ext}{body}>"


_new_command = object.__new__
(
    _set_code,
    _set_opaque,
    _set_flag,
    _set_remark,
    _set_ext_fields,
    _set_body,
    _set_language,
    _set_version,
    _set_serialize_type,
) = (getattr(RemotingCommand, name).__set__ for name in RemotingCommand.__slots__)


def make_command(
    code: int,
    opaque: int,
    flag: int,
    remark: str | None,
    ext_fields: Mapping[str, str] | None,
    body: bytes | None,
    language: LanguageCode,
    version: int,
    serialize_type: SerializeType,
) -> RemotingCommand:
    """``RemotingCommand(...)`` with every field given in order, built about
    twice as fast as the dataclass's own constructor (which a frozen class
    makes go through ``object.__setattr__`` by name). For the decoders and
    the transport, which build one or two commands per frame."""
    command = _new_command(RemotingCommand)
    _set_code(command, code)
    _set_opaque(command, opaque)
    _set_flag(command, flag)
    _set_remark(command, remark)
    _set_ext_fields(command, ext_fields)
    _set_body(command, body)
    _set_language(command, language)
    _set_version(command, version)
    _set_serialize_type(command, serialize_type)
    return command


# ---------------------------------------------------------------------------
# Encoding


def encode(command: RemotingCommand) -> bytes:
    """The whole frame for ``command``, length word included.

    Raises ProtocolError if a value does not fit its wire field.
    """
    head, body = encode_parts(
        command,
        command.opaque,
        command.flag,
        command.language,
        command.version,
        command.serialize_type,
    )
    return head + body if body else head


def encode_parts(
    command: RemotingCommand,
    opaque: int,
    flag: int,
    language: int,
    version: int,
    serialize_type: int,
) -> tuple[bytes, bytes]:
    """The frame of ``command`` sent with the given opaque, flag and wire
    settings instead of its own, as two pieces: the frame head with the
    header, and the body (``b""`` for none). Joined, they are what
    :func:`encode` gives for ``command`` with those values; the transport
    queues them apart so that a body is copied once, into the write."""
    if serialize_type == SerializeType.ROCKETMQ:
        remark = command.remark
        ext = command.ext_fields
        header = build_rocketmq_header(
            command.code,
            language,
            version,
            opaque,
            flag,
            remark.encode("utf-8", "replace") if remark else b"",
            list(ext.items()) if ext else [],
        )
    elif command.ext_fields is None and command.remark is None:
        # A header of the plain fields only (most answers): the rendering
        # of the same fields is kept, with the opaque put in.
        prefix, suffix = _plain_json_header(command.code, flag, language, version)
        header = b"%b%d%b" % (prefix, opaque, suffix)
    else:
        header = _json_header(
            command.code, command.ext_fields, flag, language, opaque, command.remark, version
        )
    body = command.body or b""
    size = len(header)
    length = 4 + size + len(body)
    if size > 0xFFFFFF or length > 0x7FFFFFFF:
        build_frame_head(length, serialize_type, size)  # raises the reason
    return _FRAME_HEAD.pack(length, (serialize_type << 24) | size) + header, body


def encode_json_header(command: RemotingCommand) -> bytes:
    """fastjson's rendering of the Java RemotingCommand bean, as UTF-8."""
    return _json_header(
        command.code,
        command.ext_fields,
        command.flag,
        command.language,
        command.opaque,
        command.remark,
        command.version,
    )


def _json_header(
    code: int,
    ext: Mapping[str, str] | None,
    flag: int,
    language: int,
    opaque: int,
    remark: str | None,
    version: int,
) -> bytes:
    name = _JSON_LANGUAGE_NAMES.get(language)
    if name is None:
        name = _language_name(language)
    if ext is None:
        ext_text = ""
    elif not ext:
        ext_text = ',"extFields":{}'
    else:
        ext_text = ',"extFields":{' + _ext_json(ext) + "}"
    remark_text = "" if remark is None else ',"remark":' + quote(remark)
    return (
        f'{{"code":{code!s}{ext_text},"flag":{flag},"language":"{name}","opaque":{opaque}'
        f'{remark_text},"serializeTypeCurrentRPC":"JSON","version":{version}}}'
    ).encode("utf-8", "replace")


@functools.lru_cache(maxsize=256)
def _plain_json_header(code: int, flag: int, language: int, version: int) -> tuple[bytes, bytes]:
    """:func:`_json_header` of a command without ext fields or remark, as
    the text before its opaque's digits and the text after them."""
    header = _json_header(code, None, flag, language, 0, None, version)
    at = header.rindex(_OPAQUE_KEY) + len(_OPAQUE_KEY)
    return header[:at], header[at + 1 :]  # the 0 left out


#: The opaque's key as the top-level member after ``language``.
_OPAQUE_KEY: Final = b',"opaque":'


def _ext_json(ext: Mapping[str, str]) -> str:
    """The members of ``ext`` (not empty) as fastjson writes them, without
    the braces."""
    items = ext.items()
    # The usual case: printable ASCII with no backslash and no quote but
    # the separators' own (two per ``":"`` and per ``","``), which fastjson
    # writes as it is.
    text = '","'.join(map('":"'.join, items))
    if (
        text.isascii()
        and text.isprintable()
        and "\\" not in text
        and text.count('"') == 4 * len(ext) - 2
    ):
        return '"' + text + '"'
    # Every key and value in one text, apart by a character that is never
    # escaped: one scan says whether any needs escaping.
    joined = _TEXT_SEPARATOR.join(chain.from_iterable(items))
    if NEEDS_ESCAPE.search(joined) is None:
        return '"' + text + '"'
    if joined.count(_TEXT_SEPARATOR) == 2 * len(ext) - 1:
        # Escaped in one pass (escaping goes character by character), then
        # cut back into keys and values.
        texts = escape(joined).split(_TEXT_SEPARATOR)
        pairs = zip(texts[0::2], texts[1::2], strict=True)
        return '"' + '","'.join(map('":"'.join, pairs)) + '"'
    # A text holds the separator itself: one at a time.
    return ",".join(f"{quote(k)}:{quote(v)}" for k, v in items)


#: Not a character fastjson escapes (a Unicode noncharacter, in no real text).
_TEXT_SEPARATOR: Final = "\uffff"


def _language_name(language: int) -> str:
    member = LanguageCode(language)
    # A code Java does not know cannot be named in JSON; OTHER is the closest.
    return member.name if member in _KNOWN_LANGUAGES else "OTHER"


_KNOWN_LANGUAGES: Final = frozenset(LanguageCode)
_JSON_LANGUAGE_NAMES: Final[dict[int, str]] = {member: member.name for member in LanguageCode}
#: Every value of the ROCKETMQ header's language byte, as its enum member.
_LANGUAGES: Final = tuple(LanguageCode(value) for value in range(256))
_FRAME_HEAD: Final = struct.Struct(">iI")


def encode_rocketmq_header(command: RemotingCommand) -> bytes:
    """The binary header of ``command``."""
    remark = command.remark.encode("utf-8", "replace") if command.remark else b""
    ext = list(command.ext_fields.items()) if command.ext_fields else []
    return build_rocketmq_header(
        command.code,
        command.language,
        command.version,
        command.opaque,
        command.flag,
        remark,
        ext,
    )


# ---------------------------------------------------------------------------
# Decoding


def decode(frame: bytes) -> RemotingCommand:
    """Parse a whole frame, length word included; it must be exactly one frame."""
    if len(frame) < LENGTH_FIELD_SIZE:
        raise ProtocolError(f"frame of {len(frame)} bytes has no length word", 0)
    length = int.from_bytes(frame[:4], "big", signed=True)
    if length != len(frame) - LENGTH_FIELD_SIZE:
        raise ProtocolError(
            f"length word says {length} bytes but {len(frame) - LENGTH_FIELD_SIZE} follow", 0
        )
    return decode_payload(frame[4:], base_offset=LENGTH_FIELD_SIZE)


def decode_payload(
    payload: bytes,
    base_offset: int = 0,
    *,
    max_header_size: int = MAX_HEADER_SIZE,
    max_ext_fields: int = MAX_EXT_FIELDS,
) -> RemotingCommand:
    """Parse a frame without its length word (what the splitter hands out).

    Raises ProtocolError for every malformed input, and for a header longer
    than ``max_header_size`` bytes or with more than ``max_ext_fields`` ext
    fields; offsets count from the start of ``payload`` plus ``base_offset``.
    """
    if len(payload) < 4:
        raise ProtocolError(f"frame of {len(payload)} bytes has no header-length word", base_offset)
    kind = payload[0]
    header_length = int.from_bytes(payload[1:4], "big")
    end = 4 + header_length
    if end > len(payload):
        raise ProtocolError(
            f"header length {header_length} runs past the frame ({len(payload) - 4} bytes left)",
            base_offset + 1,
        )
    if kind > 1:  # neither JSON (0) nor ROCKETMQ (1)
        raise ProtocolError(f"unknown serialize type {kind}", base_offset)
    if header_length > max_header_size:
        raise ProtocolError(
            f"header of {header_length} bytes exceeds the limit of {max_header_size}",
            base_offset + 1,
        )
    header = payload[4:end]
    body = payload[end:] if end < len(payload) else None
    try:
        if kind == 0:
            return _decode_json(header, max_ext_fields, body)
        return _decode_rocketmq(header, max_ext_fields, body)
    except ProtocolError as exc:
        if exc.offset is None:
            raise
        raise ProtocolError(exc.what, base_offset + 4 + exc.offset) from exc


def decode_rocketmq_header(header: bytes, max_ext_fields: int = MAX_EXT_FIELDS) -> RemotingCommand:
    return _decode_rocketmq(header, max_ext_fields, None)


def _decode_rocketmq(header: bytes, max_ext_fields: int, body: bytes | None) -> RemotingCommand:
    code, language, version, opaque, flag, remark, ext = parse_rocketmq_header(
        header, max_ext_fields
    )
    return make_command(
        code,
        opaque,
        flag,
        remark.decode("utf-8", "replace") if remark else None,
        ext or None,
        body,
        _LANGUAGES[language],
        version,
        SerializeType.ROCKETMQ,
    )


def decode_json_header(header: bytes, max_ext_fields: int = MAX_EXT_FIELDS) -> RemotingCommand:
    return _decode_json(header, max_ext_fields, None)


def _decode_json(header: bytes, max_ext_fields: int, body: bytes | None) -> RemotingCommand:
    text = header.decode("utf-8", "replace")
    try:
        # The C scanner straight on the text: what json.loads does for a
        # header with no whitespace around it, without its two regex scans.
        # Anything else (whitespace, bad JSON) goes through json.loads, for
        # its result or its error.
        obj, end = _scan_json(text, 0)
        if end != len(text):
            raise ValueError
    except (StopIteration, ValueError, RecursionError):
        obj = _loads_json(text)
    if type(obj) is not dict:
        raise ProtocolError("JSON header is not an object", 0)
    ext_raw = obj.get("extFields")
    ext: dict[str, str] | None
    if ext_raw is None:
        ext = None
    elif type(ext_raw) is dict:
        if len(ext_raw) > max_ext_fields:
            raise ProtocolError(f"more than {max_ext_fields} ext fields")
        ext = ext_raw
        for value in ext_raw.values():
            if type(value) is not str:
                ext = _ext_strings(ext_raw)
                break
    else:
        raise ProtocolError("JSON header extFields is not an object")
    remark = obj.get("remark")
    if remark is not None and type(remark) is not str:
        raise ProtocolError("JSON header remark is not a string")
    # The usual shape (plain ints, a language name) is taken as it is; any
    # other goes through the general checks and conversions.
    code = obj.get("code", 0)
    if type(code) is not int or not _INT32_MIN <= code <= _INT32_MAX:
        code = _int32(obj, "code", 0)
    opaque = obj.get("opaque", 0)
    if type(opaque) is not int or not _INT32_MIN <= opaque <= _INT32_MAX:
        opaque = _int32(obj, "opaque", 0)
    flag = obj.get("flag", 0)
    if type(flag) is not int or not _INT32_MIN <= flag <= _INT32_MAX:
        flag = _int32(obj, "flag", 0)
    # (In this order, which decides which error a header with several bad
    # fields gets.)
    name = obj.get("language")
    language = _LANGUAGE_BY_NAME.get(name) if type(name) is str else None
    if language is None:
        language = _json_language(name)
    version = obj.get("version", 0)
    if type(version) is not int or not _INT32_MIN <= version <= _INT32_MAX:
        version = _int32(obj, "version", 0)
    return make_command(
        code, opaque, flag, remark, ext, body, language, version, SerializeType.JSON
    )


def _loads_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"JSON header does not parse: {exc.msg}", exc.pos) from exc
    except RecursionError as exc:
        raise ProtocolError("JSON header nests too deeply") from exc
    except ValueError as exc:  # e.g. an integer longer than int() accepts
        raise ProtocolError(f"JSON header does not parse: {exc}") from exc


#: The C scanner of the default decoder (typeshed does not declare the attribute).
_scan_json: Final[Callable[[str, int], tuple[Any, int]]] = cast(Any, json.JSONDecoder()).scan_once


def _ext_strings(ext_raw: dict[str, Any]) -> dict[str, str]:
    """Ext fields with values that are not all strings: nulls dropped,
    numbers and booleans as their JSON text."""
    ext: dict[str, str] = {}
    for key, value in ext_raw.items():
        if value is None:
            continue  # fastjson drops null map values when writing anyway
        ext[key] = _ext_value(key, value)
    return ext


_LANGUAGE_BY_NAME: Final[dict[str, LanguageCode]] = dict(LanguageCode.__members__)


def _ext_value(key: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    raise ProtocolError(f"JSON header extFields[{key!r}] is not a string")


def _int32(obj: dict[str, Any], key: str, default: int) -> int:
    value = obj.get(key, default)
    if isinstance(value, str):
        # fastjson coerces numeric strings into int fields.
        try:
            value = int(value, 10)
        except ValueError as exc:
            raise ProtocolError(f"JSON header {key} is not an integer: {value!r}") from exc
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"JSON header {key} is not an integer: {value!r}")
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise ProtocolError(f"JSON header {key} is out of int range: {value}")
    return value


def _json_language(value: object) -> LanguageCode:
    if value is None:
        return LanguageCode.JAVA
    if isinstance(value, str):
        member = LanguageCode.__members__.get(value)
        # Java maps names it does not know to null and carries on; so do we,
        # recording them as OTHER.
        return member if member is not None else LanguageCode.OTHER
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return LanguageCode(value)
    raise ProtocolError(f"JSON header language is not a language name: {value!r}")
