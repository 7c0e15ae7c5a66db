"""``pyrocket namesrv`` as a process, and ``pyrocket admin``'s NameServer
commands against it over a real socket, end to end."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pyrocket.cli import main
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies import TopicRouteData
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import decode_payload, encode
from pyrocket.protocol.frame import FrameSplitter
from pyrocket.protocol.javahash import hashmap_order
from tests.namesrv.helpers import register_request

ROOT = Path(__file__).resolve().parents[2]


def _pyrocket(*args: str) -> list[str]:
    return [sys.executable, "-m", "pyrocket", *args]


@pytest.fixture
def namesrv(tmp_path: Path) -> Iterator[str]:
    """A ``pyrocket namesrv`` process on 127.0.0.1; yields its address and
    checks it stops cleanly on SIGTERM."""
    conf = tmp_path / "namesrv.properties"
    conf.write_text(f"kvConfigPath={tmp_path / 'kvConfig.json'}\nrocketmqHome={tmp_path}\n")
    process = subprocess.Popen(
        _pyrocket("namesrv", "-c", str(conf), "-p", "0", "--host", "127.0.0.1"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        assert process.stderr is not None and process.stdout is not None
        port = None
        for line in process.stderr:
            match = re.search(r"NameServer ready on 127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        assert port is not None, "the NameServer did not report ready"
        assert process.stdout.readline().startswith("The Name Server boot success.")
        yield f"127.0.0.1:{port}"
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["admin", *args])
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@contextmanager
def registered_brokers(addr: str) -> Iterator[None]:
    """Brokers registered over a plain socket kept open for the block (the
    NameServer drops a broker when its connection closes)."""
    host, port = addr.split(":")
    requests = [
        register_request(topics=["TopicA"]),
        register_request(broker_addr="127.0.0.1:10921", broker_id=1),
        register_request(
            cluster="SecondCluster",
            broker_name="broker-c",
            broker_addr="127.0.0.1:10941",
            topics=["TopicC", "%RETRY%g"],
        ),
    ]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        splitter = FrameSplitter()
        for opaque, request in enumerate(requests):
            sock.sendall(encode(request.replace(opaque=opaque)))
            while not isinstance(payload := splitter.next_frame(), bytes):
                splitter.feed(sock.recv(65536))
            assert decode_payload(payload).code == ResponseCode.SUCCESS
        yield


def test_admin_commands_against_a_namesrv_process(
    namesrv: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with registered_brokers(namesrv):
        run_admin_commands(namesrv, capsys)


def run_admin_commands(namesrv: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = admin(capsys, "clusterList", "-n", namesrv)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("#Cluster Name     #Broker Name            #BID  #Addr")
    rows = [line.split()[:4] for line in lines[1:]]
    by_cluster = {
        "DefaultCluster": [
            ["DefaultCluster", "broker-a", "0", "127.0.0.1:10911"],
            ["DefaultCluster", "broker-a", "1", "127.0.0.1:10921"],
        ],
        "SecondCluster": [["SecondCluster", "broker-c", "0", "127.0.0.1:10941"]],
    }
    # mqadmin walks the clusters in the order of the HashMap it decoded them into.
    assert rows == [row for cluster in hashmap_order(by_cluster) for row in by_cluster[cluster]]
    assert "cannot fetch runtime info of 127.0.0.1:10911" in err  # no real broker there

    status, out, _ = admin(capsys, "topicRoute", "-n", namesrv, "-t", "TopicA")
    assert status == 0
    assert out.startswith('{\n\t"brokerDatas":[')
    route = TopicRouteData.from_json(fastjson.loads(out))
    assert route.broker_datas is not None
    assert route.broker_datas[0].broker_addrs == {0: "127.0.0.1:10911", 1: "127.0.0.1:10921"}

    status, out, err = admin(capsys, "topicRoute", "-n", namesrv, "-t", "Nobody")
    assert status == 1
    assert "TopicRouteSubCommand command failed: response code 17" in err

    status, out, _ = admin(capsys, "topicList", "-n", namesrv)
    assert status == 0 and sorted(out.split()) == ["%RETRY%g", "TopicA", "TopicC"]

    status, out, _ = admin(capsys, "topicList", "-n", namesrv, "-c")
    assert status == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["#Cluster", "Name", "#Topic", "#Consumer", "Group"]
    assert sorted(rows[1:]) == [["DefaultCluster", "TopicA"], ["SecondCluster", "TopicC"]]

    status, out, _ = admin(capsys, "topicClusterList", "-n", namesrv, "-t", "TopicC")
    assert (status, out) == (0, "SecondCluster\n")

    status, out, _ = admin(
        capsys, "updateKvConfig", "-n", namesrv, "-s", "NS", "-k", "k", "-v", "v"
    )
    assert (status, out) == (0, "create or update kv config to namespace success.\n")
    status, out, _ = admin(capsys, "deleteKvConfig", "-n", namesrv, "-s", "NS", "-k", "k")
    assert (status, out) == (0, "delete kv config from namespace success.\n")

    status, out, _ = admin(
        capsys, "updateNamesrvConfig", "-n", namesrv, "-k", "orderMessageEnable", "-v", "true"
    )
    assert (status, out) == (
        0,
        f"update name server config success![{namesrv}]\norderMessageEnable : true\n",
    )
    status, out, err = admin(
        capsys, "updateNamesrvConfig", "-n", namesrv, "-k", "configStorePath", "-v", "/etc/x"
    )
    assert status == 1
    assert "UpdateNamesrvConfigCommand command failed" in err and "configStorePath" in err

    status, out, _ = admin(capsys, "getNamesrvConfig", "-n", namesrv)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == f"============{namesrv}============"
    assert f"{'orderMessageEnable':<50}=  true" in lines
    assert len(lines) == 18

    status, out, _ = admin(capsys, "wipeWritePerm", "-n", namesrv, "-b", "broker-a")
    assert (status, out) == (
        0,
        f"wipe write perm of broker[broker-a] in name server[{namesrv}] OK, 1\n",
    )
    status, out, _ = admin(capsys, "topicRoute", "-n", namesrv, "-t", "TopicA")
    assert '"perm":4' in out


def test_admin_without_a_namesrv_address_fails_clearly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NAMESRV_ADDR", raising=False)
    status, _, err = admin(capsys, "topicList")
    assert status == 1
    assert "TopicListSubCommand command failed: no name server address" in err


def test_namesrv_prints_its_config_and_refuses_bad_ones(tmp_path: Path) -> None:
    env = dict(os.environ, HOME=str(tmp_path))
    printed = subprocess.run(
        _pyrocket("namesrv", "--printConfigItem", "-p", "1234", "--set", "orderMessageEnable=true"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert printed.returncode == 0
    assert "listenPort=1234\n" in printed.stdout
    assert "orderMessageEnable=true\n" in printed.stdout
    assert f"kvConfigPath={tmp_path}/namesrv/kvConfig.json\n" in printed.stdout

    bad = tmp_path / "bad.properties"
    bad.write_text("listenPort=port\n")
    refused = subprocess.run(
        _pyrocket("namesrv", "-c", str(bad)),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2
    assert "listenPort='port': expected an integer" in refused.stderr


def test_namesrv_asked_for_tls_without_certificate_refuses_to_start(tmp_path: Path) -> None:
    conf = tmp_path / "namesrv.properties"
    conf.write_text("listenPort=0\ntls.server.mode=enforcing\n")
    refused = subprocess.run(
        _pyrocket("namesrv", "-c", str(conf)),
        cwd=ROOT,
        env=dict(os.environ, HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode != 0
    assert "tls.server.certPath and tls.server.keyPath are not both set" in refused.stderr
    assert "Name Server boot success" not in refused.stdout


def test_namesrv_metrics_port_flag_serves_metrics(tmp_path: Path) -> None:
    conf = tmp_path / "namesrv.properties"
    conf.write_text(f"kvConfigPath={tmp_path / 'kvConfig.json'}\nrocketmqHome={tmp_path}\n")
    process = subprocess.Popen(
        _pyrocket(
            "namesrv", "-c", str(conf), "-p", "0", "--host", "127.0.0.1", "--metrics-port", "0"
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("The Name Server boot success.")
        line = process.stdout.readline()
        match = re.fullmatch(r"Metrics: (http://127\.0\.0\.1:\d+/metrics)\n", line)
        assert match, line
        with urllib.request.urlopen(match.group(1), timeout=5) as answer:
            text = answer.read().decode()
        assert "pyrocket_namesrv_brokers_alive 0.0" in text
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
