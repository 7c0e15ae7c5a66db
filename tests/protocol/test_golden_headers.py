"""Every recorded command's ext fields decode with the typed header Java uses
for its code, and building the command again from the decoded values (values
-> bytes, ext-field order computed from Java's HashMap model) gives the frame
Java wrote.

Ext fields that are not header fields. Java puts some entries into a command's
ext-field map before the header's fields are added at encode time:

* ``mqadmin``'s ACL hook (AclClientRPCHook.doBeforeRequest) adds ``Signature``
  then ``AccessKey`` to every request it sends;
* the broker's SendMessageProcessor adds ``MSG_REGION`` then ``TRACE_ON`` to
  every send answer.

Those keys share the one HashMap with the header fields, so they move the
header fields' positions. The test passes them as ``preceding`` entries (in
Java's put order) and checks the whole map, order included; any other
non-header key fails the test. Hand-made frames (client ``handcrafted``) were
not written by Java: for them only "decodes or raises CommandError" is checked.
"""

from __future__ import annotations

import pytest

from pyrocket.errors import CommandError
from pyrocket.protocol.catalog import request_header_type, response_header_type
from pyrocket.protocol.codes import RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.headers import CommandHeader
from tests.vectorset import Record, pair_requests, read_records, scenario_files

# Keys Java adds before the header's own, in the order it adds them.
ACL_HOOK_KEYS = ("Signature", "AccessKey")
SEND_ANSWER_KEYS = ("MSG_REGION", "TRACE_ON")
SEND_CODES = {
    RequestCode.SEND_MESSAGE,
    RequestCode.SEND_MESSAGE_V2,
    RequestCode.SEND_BATCH_MESSAGE,
}


def _commands() -> list[tuple[Record, int]]:
    """(record, request code) for every frame Java could parse."""
    found = []
    for path in scenario_files():
        records = read_records(path)
        pairs = pair_requests(records)
        for record in records:
            if not record.is_frame:
                continue
            if record.is_request:
                assert record.code is not None
                found.append((record, record.code))
            else:
                request = pairs.get(record.seq)
                if request is not None and request.code is not None:
                    found.append((record, request.code))
    return found


COMMANDS = _commands()


def _header_type(record: Record, request_code: int) -> type[CommandHeader] | None:
    if record.is_request:
        return request_header_type(request_code)
    return response_header_type(request_code)


def _preceding_keys(record: Record, request_code: int) -> tuple[str, ...]:
    if record.is_request and record.client == "java-mqadmin":
        return ACL_HOOK_KEYS
    if record.is_response and request_code in SEND_CODES:
        return SEND_ANSWER_KEYS
    return ()


def _id(item: tuple[Record, int]) -> str:
    record, code = item
    return f"{record.scenario}-{record.seq}-{RequestCode(code).name}-{record.dir}"


TYPED = [item for item in COMMANDS if _header_type(*item) is not None]
JAVA_TYPED = [item for item in TYPED if item[0].client != "handcrafted"]
HAND_TYPED = [item for item in TYPED if item[0].client == "handcrafted"]
UNTYPED_JAVA = [
    item for item in COMMANDS if _header_type(*item) is None and item[0].client != "handcrafted"
]


def test_header_coverage() -> None:
    codes = {RequestCode(code).name for record, code in JAVA_TYPED if record.is_request}
    # Header-carrying requests Java sent in the captures (GET_TOPICS_BY_CLUSTER
    # and GET_KVLIST_BY_NAMESPACE were only sent by hand).
    expected = {
        "REGISTER_BROKER",
        "UNREGISTER_BROKER",
        "QUERY_DATA_VERSION",
        "GET_ROUTEINFO_BY_TOPIC",
        "PUT_KV_CONFIG",
        "GET_KV_CONFIG",
        "DELETE_KV_CONFIG",
        "WIPE_WRITE_PERM_OF_BROKER",
        "DELETE_TOPIC_IN_NAMESRV",
        "SEND_MESSAGE_V2",
        "PULL_MESSAGE",
        "QUERY_CONSUMER_OFFSET",
        "UPDATE_CONSUMER_OFFSET",
        "UPDATE_AND_CREATE_TOPIC",
        "UNREGISTER_CLIENT",
    }
    missing = expected - codes
    if missing:
        pytest.skip(f"the capture has no Java request of {sorted(missing)}")
    assert expected <= codes


@pytest.mark.parametrize("item", JAVA_TYPED, ids=_id)
def test_java_header_decodes_and_rebuilds_the_frame(item: tuple[Record, int]) -> None:
    record, request_code = item
    header_type = _header_type(record, request_code)
    assert header_type is not None
    command = decode(record.frame)
    ext = command.ext_fields
    if ext is None and command.serialize_type == SerializeType.ROCKETMQ:
        ext = {}  # the binary header cannot tell an empty map from none
    if ext is None:
        # An answer made without a header (an error answer): nothing to decode.
        assert record.is_response and command.code != ResponseCode.SUCCESS
        return
    try:
        header = header_type.from_ext_fields(ext)
    except CommandError:
        # Java fills required answer fields only on success (e.g. PULL_MESSAGE
        # answered SUBSCRIPTION_NOT_LATEST carries an empty header).
        assert record.is_response and command.code != ResponseCode.SUCCESS
        return
    preceding_keys = _preceding_keys(record, request_code)
    own = header.to_ext_fields()
    extras = [key for key in ext if key not in own]
    assert set(extras) <= set(preceding_keys), f"unexpected ext fields {extras}"
    preceding = {key: ext[key] for key in preceding_keys if key in ext}
    rebuilt_ext = header.to_ext_fields(preceding)
    assert list(rebuilt_ext.items()) == list(ext.items())
    # values -> bytes: the whole frame again, ext order computed, not copied.
    rebuilt = RemotingCommand(
        code=command.code,
        opaque=command.opaque,
        flag=command.flag,
        remark=command.remark,
        ext_fields=rebuilt_ext,
        body=command.body,
        language=command.language,
        version=command.version,
        serialize_type=command.serialize_type,
    )
    assert encode(rebuilt) == record.frame


@pytest.mark.parametrize("item", UNTYPED_JAVA, ids=_id)
def test_headerless_java_commands_carry_only_hook_fields(item: tuple[Record, int]) -> None:
    record, request_code = item
    command = decode(record.frame)
    ext = command.ext_fields
    if ext is None or not ext:
        return
    keys = _preceding_keys(record, request_code)
    assert set(ext) == set(keys)
    rebuilt = _NoFields().to_ext_fields({key: ext[key] for key in keys})
    assert list(rebuilt.items()) == list(ext.items())


class _NoFields(CommandHeader):
    """A header without fields, as Java's ``createRequestCommand(code, null)``."""

    __slots__ = ()


@pytest.mark.parametrize("item", HAND_TYPED, ids=_id)
def test_handcrafted_headers_decode_or_raise_command_error(item: tuple[Record, int]) -> None:
    record, request_code = item
    header_type = _header_type(record, request_code)
    assert header_type is not None
    command = decode(record.frame)
    try:
        header = header_type.from_ext_fields(command.ext_fields or {})
    except CommandError as exc:
        assert str(exc).startswith("the custom field <")
        return
    assert isinstance(header, header_type)


def test_handcrafted_missing_fields_name_the_field() -> None:
    # Java accepts these and fails later (or stores null); pyrocket names the
    # missing @CFNotNull field.
    missing = set()
    for record, request_code in HAND_TYPED:
        if not record.is_request:
            continue
        header_type = _header_type(record, request_code)
        assert header_type is not None
        try:
            header_type.from_ext_fields(decode(record.frame).ext_fields or {})
        except CommandError as exc:
            missing.add(str(exc))
    assert {
        "the custom field <brokerName> is null",
        "the custom field <brokerId> is null",
        "the custom field <a> is null",
    } <= missing
