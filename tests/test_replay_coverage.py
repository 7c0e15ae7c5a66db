"""Every request code of every capture is compared by some replay: a code
seen in a capture (per scenario and server kind) that neither the NameServer
replay nor the broker replay sends and checks fails the suite."""

from __future__ import annotations

from pathlib import Path

from pyrocket.protocol.codes import RequestCode
from tests.broker.test_replay_broker import replayed_requests as broker_replayed
from tests.namesrv.test_replay_vectors import replayed_requests as namesrv_replayed
from tests.vectorset import read_records, scenario_files


def _name(code: int | None) -> str:
    if code is None:
        return "malformed"
    try:
        return RequestCode(code).name
    except ValueError:
        return str(code)


def test_every_recorded_request_code_is_replayed(vectors_dir: Path) -> None:
    unreplayed: list[str] = []
    seen = 0
    for path in scenario_files(vectors_dir):
        records = read_records(path)
        covered = broker_replayed(records) | namesrv_replayed(records)
        for server, code in sorted(
            {(r.server, r.code) for r in records if r.is_request},
            key=lambda item: (item[0], item[1] if item[1] is not None else -1),
        ):
            seen += 1
            if (server, code) not in covered:
                unreplayed.append(f"{path.stem}: {server} {_name(code)}")
    assert seen > 0
    assert not unreplayed, "request codes no replay compares:\n" + "\n".join(unreplayed)
