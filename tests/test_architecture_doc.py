"""docs/architecture.md stays true to the code.

Its request-code table is regenerated here from the processor tables of a
running NameServer, broker and push consumer (what each registers, on which
server, with which handler, ordered or not) and must equal the block between
the two marker comments. ``PYROCKET_WRITE_DOCS=1 python -m pytest
tests/test_architecture_doc.py`` rewrites that block instead. Every pyrocket
module, class or function the document names (``pyrocket.x.y.name`` or
``pyrocket/x/y.py`` in backquotes) must exist.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path

import trio

from pyrocket.client.producer import Producer
from pyrocket.client.transaction import TransactionProducer
from pyrocket.protocol.codes import RequestCode
from pyrocket.remoting.dispatch import ProcessorTable
from tests.client.helpers import consumer, running_up

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
BEGIN = "<!-- request-codes:begin -->"
END = "<!-- request-codes:end -->"


@dataclass(frozen=True, order=True)
class Row:
    """One registration: a code answered by one server's handler (``rank``
    orders the servers of one code: NameServer, broker, clients)."""

    code: int
    rank: int
    server: str
    handler: str
    ordered: bool
    plain: bool


def handler_name(processor: object) -> str:
    """``module.qualname`` of a processor (a bound method or a function)."""
    function = getattr(processor, "__func__", processor)
    module = getattr(function, "__module__", type(function).__module__)
    qualname = getattr(function, "__qualname__", type(function).__qualname__)
    return f"{module}.{qualname}"


def table_entries(table: ProcessorTable) -> dict[int, tuple[str, bool, bool]]:
    """Code -> (handler, ordered, plain function) of each own registration."""
    entries: dict[int, tuple[str, bool, bool]] = {}
    for code in table.codes():
        registration = table.lookup(code)
        assert registration is not None
        processor = registration.processor
        plain = not inspect.iscoroutinefunction(processor)
        entries[code] = (handler_name(processor), registration.ordered, plain)
    return entries


def rows_for(server: str, rank: int, table: ProcessorTable) -> list[Row]:
    return [Row(code, rank, server, *entry) for code, entry in table_entries(table).items()]


def broker_rows(main: ProcessorTable, fast: ProcessorTable) -> list[Row]:
    """The broker's two servers as one: a registration on both is "broker"."""
    main_entries, fast_entries = table_entries(main), table_entries(fast)
    rows: list[Row] = []
    for code in main_entries.keys() | fast_entries.keys():
        on_main, on_fast = main_entries.get(code), fast_entries.get(code)
        if on_main is not None and on_main == on_fast:
            rows.append(Row(code, 1, "broker", *on_main))
            continue
        if on_main is not None:
            rows.append(Row(code, 2, "broker (main port only)", *on_main))
        if on_fast is not None:
            rows.append(Row(code, 3, "broker (fast port only)", *on_fast))
    return rows


def code_name(code: int) -> str:
    try:
        return RequestCode(code).name
    except ValueError:
        return "?"


def render(rows: list[Row]) -> str:
    """The Markdown table, one line per registration, by code then server."""
    lines = [
        "| code | RequestCode | answered by | handler | ordered | kind |",
        "|---:|---|---|---|---|---|",
    ]
    for row in sorted(rows):
        lines.append(
            f"| {row.code} | `{code_name(row.code)}` | {row.server} | `{row.handler}` "
            f"| {'ordered' if row.ordered else ''} | {'plain' if row.plain else 'async'} |"
        )
    return "\n".join(lines)


async def registered_rows(tmp_path: Path) -> list[Row]:
    """The registrations of a real NameServer, broker (its servers and its
    client to the NameServers), producer, transaction producer and push
    consumer."""
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            rows = rows_for("NameServer", 0, running.namesrv.server.processors)
            broker = running.broker
            rows += broker_rows(broker.server.processors, broker.fast_server.processors)
            rows += rows_for("broker (its client)", 4, broker.client.processors)
            producer = Producer(
                "architecture_doc_producer", [running.namesrv_addr], client_ip="127.0.0.1"
            )
            async with producer:
                rows += rows_for("client (producer)", 5, producer.instance.remoting.processors)
            transactional = TransactionProducer(
                "architecture_doc_tx_producer",
                [running.namesrv_addr],
                client_ip="127.0.0.1",
                execute_local=lambda message, arg: None,
                check_local=lambda message: None,
            )
            async with transactional:
                table = transactional.instance.remoting.processors
                rows += rows_for("client (transaction producer)", 7, table)
            push = consumer(running.namesrv_addr, "architecture_doc_group", "ArchitectureDocTopic")
            async with push:
                table = push.instance.remoting.processors
                rows += rows_for("client (push consumer)", 6, table)
    return rows


def doc_block(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END)
    assert start < end, "the request-code markers are out of order"
    return text[start + len(BEGIN) : end].strip("\n")


async def test_request_code_table_is_current(tmp_path: Path) -> None:
    rows = await registered_rows(tmp_path)
    # Each server answers something, so an empty table cannot pass.
    assert {row.server for row in rows} >= {"NameServer", "broker", "client (push consumer)"}
    expected = render(rows)
    text = DOC.read_text(encoding="utf-8")
    if os.environ.get("PYROCKET_WRITE_DOCS") == "1":
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        text = f"{text[:start]}\n{expected}\n{text[end:]}"
        DOC.write_text(text, encoding="utf-8")
    assert doc_block(text) == expected, (
        "docs/architecture.md's request-code table is stale; regenerate it with "
        "PYROCKET_WRITE_DOCS=1 python -m pytest tests/test_architecture_doc.py, "
        f"or paste:\n{expected}"
    )


def resolves(dotted: str) -> bool:
    """Whether ``pyrocket.a.b.C.d`` names a module or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_named_code_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    dotted = set(re.findall(r"`(pyrocket(?:\.\w+)+)`", text))
    paths = set(re.findall(r"`(pyrocket/[\w/]+\.py)`", text))
    assert dotted and paths, "the document names no code"
    assert sorted(name for name in dotted if not resolves(name)) == []
    assert sorted(path for path in paths if not (REPO / path).is_file()) == []
