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
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from pyrocket.errors import ProtocolError
from pyrocket.protocol.codes import VERSION_V4_7_0, LanguageCode, SerializeType
from pyrocket.protocol.fastjson import quote
from pyrocket.protocol.frame import (
    LENGTH_FIELD_SIZE,
    MAX_EXT_FIELDS,
    MAX_HEADER_SIZE,
    build_frame_head,
    build_rocketmq_header,
    parse_rocketmq_header,
)

if TYPE_CHECKING:
    from pyrocket.protocol.headers import CommandHeader

H = TypeVar("H", bound="CommandHeader")

#: flag bit 0: the command is a response.
RESPONSE_FLAG: Final = 1
#: flag bit 1: the request expects no response.
ONEWAY_FLAG: Final = 2

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


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
        return dataclasses.replace(self, opaque=request.opaque, flag=self.flag | RESPONSE_FLAG)

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


# ---------------------------------------------------------------------------
# Encoding


def encode(command: RemotingCommand) -> bytes:
    """The whole frame for ``command``, length word included.

    Raises ProtocolError if a value does not fit its wire field.
    """
    if command.serialize_type == SerializeType.ROCKETMQ:
        header = encode_rocketmq_header(command)
    else:
        header = encode_json_header(command)
    body = command.body or b""
    length = 4 + len(header) + len(body)
    return b"".join((build_frame_head(length, command.serialize_type, len(header)), header, body))


def encode_json_header(command: RemotingCommand) -> bytes:
    """fastjson's rendering of the Java RemotingCommand bean, as UTF-8."""
    parts = ['{"code":', str(command.code)]
    ext = command.ext_fields
    if ext is not None:
        parts.append(',"extFields":{')
        parts.append(",".join(f"{quote(k)}:{quote(v)}" for k, v in ext.items()))
        parts.append("}")
    parts.append(f',"flag":{command.flag},"language":"{_language_name(command.language)}"')
    parts.append(f',"opaque":{command.opaque}')
    if command.remark is not None:
        parts.append(',"remark":')
        parts.append(quote(command.remark))
    parts.append(f',"serializeTypeCurrentRPC":"JSON","version":{command.version}}}')
    return "".join(parts).encode("utf-8", "replace")


def _language_name(language: int) -> str:
    member = LanguageCode(language)
    # A code Java does not know cannot be named in JSON; OTHER is the closest.
    return member.name if member in _KNOWN_LANGUAGES else "OTHER"


_KNOWN_LANGUAGES: Final = frozenset(LanguageCode)


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
    if kind not in (SerializeType.JSON, SerializeType.ROCKETMQ):
        raise ProtocolError(f"unknown serialize type {kind}", base_offset)
    if header_length > max_header_size:
        raise ProtocolError(
            f"header of {header_length} bytes exceeds the limit of {max_header_size}",
            base_offset + 1,
        )
    header = payload[4:end]
    body = payload[end:] or None
    try:
        if kind == SerializeType.JSON:
            command = decode_json_header(header, max_ext_fields)
        else:
            command = decode_rocketmq_header(header, max_ext_fields)
    except ProtocolError as exc:
        if exc.offset is None:
            raise
        raise ProtocolError(exc.what, base_offset + 4 + exc.offset) from exc
    if body is not None:
        command = dataclasses.replace(command, body=body)
    return command


def decode_rocketmq_header(header: bytes, max_ext_fields: int = MAX_EXT_FIELDS) -> RemotingCommand:
    code, language, version, opaque, flag, remark, ext = parse_rocketmq_header(
        header, max_ext_fields
    )
    return RemotingCommand(
        code=code,
        opaque=opaque,
        flag=flag,
        remark=remark.decode("utf-8", "replace") if remark else None,
        ext_fields=ext or None,
        language=LanguageCode(language),
        version=version,
        serialize_type=SerializeType.ROCKETMQ,
    )


def decode_json_header(header: bytes, max_ext_fields: int = MAX_EXT_FIELDS) -> RemotingCommand:
    text = header.decode("utf-8", "replace")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"JSON header does not parse: {exc.msg}", exc.pos) from exc
    except RecursionError as exc:
        raise ProtocolError("JSON header nests too deeply") from exc
    except ValueError as exc:  # e.g. an integer longer than int() accepts
        raise ProtocolError(f"JSON header does not parse: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("JSON header is not an object", 0)
    ext_raw = obj.get("extFields")
    ext: dict[str, str] | None
    if ext_raw is None:
        ext = None
    elif isinstance(ext_raw, dict):
        if len(ext_raw) > max_ext_fields:
            raise ProtocolError(f"more than {max_ext_fields} ext fields")
        ext = {}
        for key, value in ext_raw.items():
            if value is None:
                continue  # fastjson drops null map values when writing anyway
            ext[key] = _ext_value(key, value)
    else:
        raise ProtocolError("JSON header extFields is not an object")
    remark = obj.get("remark")
    if remark is not None and not isinstance(remark, str):
        raise ProtocolError("JSON header remark is not a string")
    return RemotingCommand(
        code=_int32(obj, "code", 0),
        opaque=_int32(obj, "opaque", 0),
        flag=_int32(obj, "flag", 0),
        remark=remark,
        ext_fields=ext,
        language=_json_language(obj.get("language")),
        version=_int32(obj, "version", 0),
        serialize_type=SerializeType.JSON,
    )


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
