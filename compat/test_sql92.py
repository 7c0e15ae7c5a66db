"""SQL92 selectors against Java 4.7.0 itself.

1. Thousands of generated selectors (well-formed and broken ones, with edge
   literals, mixed case, comments, trailing junk) and property maps go
   through Java's own ``FilterFactory`` / ``SelectorParser`` and evaluator
   (``compat/java/SelectorEval.java``, run in source-file mode against the
   install's jars) and through :mod:`pyrocket.filter`: both must refuse the
   same selectors and give the same TRUE / FALSE / null / failure for every
   map.
2. Java's push consumer subscribed with ``MessageSelector.bySql`` receives
   the same messages through a pyrocket broker as through a Java broker
   (both with ``enablePropertyFilter=true``), and both brokers refuse a
   selector that does not compile with the same code
   (``compat/java/Sql92Client.java``).

Skipped when ROCKETMQ_HOME is unset.
"""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest
import trio

from compat.java_cluster import JavaCluster, _java_major, free_port
from compat.test_broker_control import TIMING, pyrocket_broker
from compat.test_broker_control import start_namesrv as start_java_namesrv
from pyrocket.broker.config import BrokerSettings
from pyrocket.filter import EvaluationError, SelectorError, compile_selector
from tests.filter.test_selectors import CASES as UNIT_CASES
from tests.filter.test_selectors import INVALID as UNIT_INVALID

JAVA_DIR = Path(__file__).with_name("java")
EVALUATOR = JAVA_DIR / "SelectorEval.java"
CLIENT = JAVA_DIR / "Sql92Client.java"
CASES = 4000
#: What Sql92Client.java itself prints.
_OWN_LINE = re.compile(r"(sent \d+|idx \d+|done|started|refused -?\d+)")
MAPS_PER_CASE = 4

NAMES = ["a", "b", "c", "A", "x_1", "$d"]
VALUES = [
    "0", "7", "-3", "+5", "007", "10", "2147483647", "2147483648", "-2147483649",
    "9223372036854775807", "9223372036854775808", "1.5", ".5", "5.", "-0", "-0.0",
    " 7", "7 ", "1e3", "1E-2", "NaN", "-Infinity", "Infinity", "0x10", "0x1p3", "1f",
    "2d", "1_0", "\u0663", "x", "", "true", "TRUE", "tRuE", "false", "it's", "red",
]  # fmt: skip
NUMBERS = [
    "0", "5", "7", "10", "007", "2147483647", "2147483648", "3000000000", "5L", "10l",
    "9223372036854775807", "9223372036854775808", "1.5", ".5", "5.", "1e3", "1E-2",
    "2.5e+1", "0.0", "1e400", "4.9e-324",
]  # fmt: skip
STRINGS = ["'x'", "'red'", "'7'", "''", "'it''s'", "'true'", "'\u00e9'"]
EDGES = [
    "a = 'x\u00e9'", "\u00e9 = 1", "a = 1 \u00e9", "\u212a = 1", "a=1--x\r", "a = 1 /*/ AND",
    "a IN ('x',)", "a NOT", "a IS NOT", "()", "((a))", "-(a) > 1", "a > -+-1", "a = 1E5L",
    "a = 00.5", "a = 2147483648L", "a IS NULL IS NULL", "NULL IS NOT NULL", "-TRUE = 1",
    "NOT -a", "9a = 1", "a <> 1 <> 2", "a => 1", "a BETWEEN 1 AND 1.0", "a BETWEEN 1.5 AND 1",
    "a BETWEEN 5 AND 3000000000", "a NOT BETWEEN 10 AND 5", "\fa = 1", "a\u00a0= 1",
    "(" * 60 + "a = 1" + ")" * 60,
]  # fmt: skip
JUNK = ["#", "!", "'", "/*", "--", ".", ")", "(", "AND", "NOT", "IS", "x", "1", "=", ","]


def _kw(rng: random.Random, word: str) -> str:
    return rng.choice([word, word.lower(), word.capitalize()])


def _operand(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(NAMES)
    if roll < 0.7:
        return rng.choice(NUMBERS)
    if roll < 0.8:
        return rng.choice(STRINGS)
    if roll < 0.88:
        return _kw(rng, rng.choice(["TRUE", "FALSE", "NULL"]))
    if roll < 0.95:
        return rng.choice(["-", "+", "- "]) + _operand(rng, depth + 1)
    return f"({_condition(rng, depth + 1)})"


def _condition(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random() if depth < 4 else rng.random() * 0.6
    if roll < 0.3:
        op = rng.choice(["=", "<>", ">", ">=", "<", "<="])
        return f"{_operand(rng, depth)} {op} {_operand(rng, depth)}"
    if roll < 0.4:
        word = _kw(rng, "NOT BETWEEN" if rng.random() < 0.3 else "BETWEEN")
        return (
            f"{_operand(rng, depth)} {word} {_operand(rng, depth)} "
            f"{_kw(rng, 'AND')} {_operand(rng, depth)}"
        )
    if roll < 0.5:
        word = _kw(rng, "NOT IN" if rng.random() < 0.3 else "IN")
        items = ", ".join(rng.choice(STRINGS) for _ in range(rng.randint(1, 6)))
        return f"{rng.choice(NAMES)} {word} ({items})"
    if roll < 0.6:
        word = _kw(rng, "IS NOT NULL" if rng.random() < 0.5 else "IS NULL")
        return f"{_operand(rng, depth)} {word}"
    if roll < 0.68:
        return rng.choice([rng.choice(NAMES), _kw(rng, "TRUE"), _kw(rng, "NULL")])
    if roll < 0.76:
        return f"{_kw(rng, 'NOT')} {_condition(rng, depth + 1)}"
    if roll < 0.88:
        word = _kw(rng, rng.choice(["AND", "OR"]))
        return f"{_condition(rng, depth + 1)} {word} {_condition(rng, depth + 1)}"
    return f"({_condition(rng, depth + 1)})"


def selector_text(rng: random.Random) -> str:
    text = _condition(rng)
    roll = rng.random()
    if roll < 0.1:  # trailing junk: Java reads one token past the end
        text += " " + " ".join(rng.choice(JUNK) for _ in range(rng.randint(1, 3)))
    elif roll < 0.15:  # a token dropped
        parts = text.split(" ")
        del parts[rng.randrange(len(parts))]
        text = " ".join(parts)
    elif roll < 0.2:
        text = text.replace(" ", rng.choice(["\t", "\n", " /* c */ ", "  "]))
    elif roll < 0.22:
        text = text.replace(" ", " -- c\n", 1)
    return text


def property_map(rng: random.Random) -> dict[str, str]:
    return {name: rng.choice(VALUES) for name in NAMES if rng.random() < 0.6}


def _hex(text: str) -> str:
    return text.encode("utf-8").hex()


def pyrocket_line(text: str, maps: list[dict[str, str]]) -> str:
    try:
        selector = compile_selector(text)
    except SelectorError:
        return "ERR"
    letters = []
    for properties in maps:
        try:
            result = selector.evaluate(properties)
        except EvaluationError:
            letters.append("A")
            continue
        letters.append({True: "T", False: "F", None: "N"}.get(result, "X"))  # type: ignore[arg-type]
    return "OK" + "".join(letters)


def test_java_and_pyrocket_evaluate_selectors_alike(java: JavaCluster, tmp_path: Path) -> None:
    if _java_major() < 11:
        pytest.skip("running SelectorEval.java from source needs Java 11 or newer")
    rng = random.Random(15)
    cases = [
        (selector_text(rng), [property_map(rng) for _ in range(MAPS_PER_CASE)])
        for _ in range(CASES)
    ]
    # And every selector the unit tests hold, with their own property maps.
    cases += [(text, [properties, property_map(rng)]) for text, properties, _ in UNIT_CASES]
    cases += [(text, [property_map(rng)]) for text in UNIT_INVALID + EDGES]
    lines = []
    for text, maps in cases:
        lines.append("E" + _hex(text))
        for properties in maps:
            lines.append("P" + ",".join(f"{_hex(k)}:{_hex(v)}" for k, v in properties.items()))
        lines.append(".")
    result = subprocess.run(
        ["java", "-Xmx512m", "-cp", java.classpath, str(EVALUATOR)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers = result.stdout.splitlines()
    assert len(answers) == len(cases)
    mismatches = [
        (text, maps, java_answer, ours)
        for (text, maps), java_answer in zip(cases, answers, strict=True)
        if (ours := pyrocket_line(text, maps)) != java_answer
    ]
    refused = sum(answer == "ERR" for answer in answers)
    assert 0.1 * len(cases) < refused < 0.9 * len(cases), "a mix of good and bad selectors"
    assert mismatches == [], mismatches[:5]


def _pyrocket_settings(tmp_path: Path, namesrv: str, port: int) -> BrokerSettings:
    return BrokerSettings.from_properties(
        {
            "brokerClusterName": "DefaultCluster",
            "brokerName": "pybroker",
            "brokerId": "0",
            "brokerIP1": "127.0.0.1",
            "brokerIP2": "127.0.0.1",
            "listenPort": str(port),
            "namesrvAddr": namesrv,
            "storePathRootDir": str(tmp_path / "pystore"),
            "flushDiskType": "ASYNC_FLUSH",
            "autoCreateTopicEnable": "true",
            "enablePropertyFilter": "true",
        }
    )


async def _run(java: JavaCluster, *args: str, seconds: float) -> list[str]:
    result = await trio.to_thread.run_sync(
        lambda: java.run_class(str(CLIENT), args, timeout=seconds)
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    # The Java client's own logging may share stdout: keep the helper's lines.
    return [line for line in result.stdout.splitlines() if _OWN_LINE.fullmatch(line)]


def _produced_properties(i: int) -> dict[str, str]:
    # What Sql92Client.java's produce sets (and pyrocket's broker sees).
    properties = {"idx": str(i), "a": str(i)}
    if i % 7 != 0:
        properties["colour"] = ("red", "blue", "green")[i % 3]
    return properties


async def _deliveries(java: JavaCluster, ns: str, topic: str, sql: str) -> list[int]:
    assert await _run(java, "produce", ns, topic, "60", seconds=120) == ["sent 60"]
    lines = await _run(java, "push", ns, topic, "compat_sql92_group", sql, "15", seconds=120)
    assert lines[-1] == "done"
    return sorted(int(line.split()[1]) for line in lines if line.startswith("idx "))


async def test_java_sql92_consumer_gets_the_same_through_either_broker(
    java: JavaCluster, tmp_path: Path
) -> None:
    if _java_major() < 11:
        pytest.skip("running Sql92Client.java from source needs Java 11 or newer")
    sql = "a >= 10 AND (colour = 'red' OR colour IS NULL) AND a NOT BETWEEN 30 AND 39"
    expected = compile_selector(sql)
    wanted = [i for i in range(60) if expected.matches(_produced_properties(i))]
    java_ns_port, py_ns_port = free_port(), free_port()
    await start_java_namesrv(java, java_ns_port)
    await start_java_namesrv(java, py_ns_port)
    java_ns, py_ns = f"127.0.0.1:{java_ns_port}", f"127.0.0.1:{py_ns_port}"
    await trio.to_thread.run_sync(
        lambda: java.start_broker(
            "javabroker", free_port(2), java_ns, {"enablePropertyFilter": "true"}
        )
    )
    through_java = await _deliveries(java, java_ns, "CompatSql92Topic", sql)
    with trio.fail_after(400):
        async with pyrocket_broker(_pyrocket_settings(tmp_path, py_ns, free_port())):
            await trio.sleep(TIMING.first_delay)
            through_pyrocket = await _deliveries(java, py_ns, "CompatSql92Topic", sql)
            refused_py = await _run(
                java, "check", py_ns, "CompatSql92Topic", "compat_sql92_bad", "a >", seconds=60
            )
    refused_java = await _run(
        java, "check", java_ns, "CompatSql92Topic", "compat_sql92_bad", "a >", seconds=60
    )
    assert through_java == wanted
    assert through_pyrocket == through_java
    assert refused_py[-1] == refused_java[-1] == "refused 23"
