"""The requests a Java slave sends its Java master to copy the delay offsets
(GET_ALL_DELAY_OFFSET) and the consumer-group table
(GET_ALL_SUBSCRIPTIONGROUP_CONFIG), from the ``cluster-multi`` capture,
replayed verbatim against a pyrocket broker set up like the master (the
broker the slave's requests went to, with the identity its registrations
carry).

The state is reproduced faithfully: in that scenario no consumer ever
connects and nothing is sent with a delay level, so the master's group table
holds exactly the system groups of a fresh broker and its delay-offset table
is empty, whatever topics mqadmin created meanwhile. The answers must equal
Java's frames byte for byte after the one normalisation the vectors README
lists for these bodies: ``dataVersion`` (timestamp and counter) is taken
from the recorded answer. Our own ``dataVersion`` is checked to be a fresh
one (counter 0), as the recorded one is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.protocol.bodies import HeartbeatData
from pyrocket.protocol.bodies.admin import SubscriptionGroupWrapper
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import decode, encode
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.broker.test_replay_broker import SLOW, recorded_brokers, settings_for
from tests.vectorset import pair_requests, read_records

SYNC_CODES = (RequestCode.GET_ALL_DELAY_OFFSET, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)


async def test_slave_sync_answers_match_the_java_master(tmp_path: Path, vectors_dir: Path) -> None:
    records = read_records(vectors_dir / "cluster-multi.jsonl")
    by_seq = {r.seq: r for r in records}
    answers = {request.seq: by_seq[seq] for seq, request in pair_requests(records).items()}
    replayed = [
        r
        for r in records
        if r.is_frame
        and r.is_request
        and r.sender == "client"
        and r.client == "java-broker"
        and r.code in SYNC_CODES
    ]
    if {r.code for r in replayed} != set(SYNC_CODES):
        pytest.skip("the capture has no slave syncing its delay offsets and groups")
    # The master: the broker whose (fast) port the slave's requests went to.
    brokers, route = recorded_brokers(records)
    master = brokers[route[replayed[0].server_port or 0]]
    if any(
        r.code == RequestCode.HEART_BEAT
        and route.get(r.server_port or 0) == master.listen_port
        and HeartbeatData.decode(r.body or b"{}").consumer_data_set
        for r in records
        if r.is_frame
    ):
        pytest.skip("consumers reached the master: its group table needs the full broker replay")
    checked = dict.fromkeys(SYNC_CODES, 0)
    with trio.fail_after(30):
        async with (
            recording_namesrv(tmp_path / "ns") as namesrv,
            running_broker(settings_for(master, tmp_path, namesrv.addr), timing=SLOW) as broker,
            RemotingClient() as client,
        ):
            for record in replayed:
                answer = answers[record.seq]
                response = await client.invoke_sync(
                    broker.broker_addr, decode(record.frame), 10, as_is=True
                )
                response = response.replace(opaque=answer.opaque)
                if record.code == RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG:
                    ours = SubscriptionGroupWrapper.decode(response.body or b"")
                    assert ours.encode() == response.body, "not fastjson's layout"
                    assert ours.data_version.counter == 0
                    recorded = SubscriptionGroupWrapper.decode(answer.body or b"")
                    normalised = SubscriptionGroupWrapper(
                        ours.subscription_group_table, recorded.data_version
                    ).encode()
                    response = response.replace(body=normalised)
                assert encode(response) == answer.frame, record.seq
                checked[record.code] += 1
    assert all(checked.values()), checked
