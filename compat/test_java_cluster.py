"""The launcher itself: a Java NameServer and broker come up and see each other."""

from __future__ import annotations

from compat.java_cluster import JavaCluster, free_port


def test_java_broker_registers_with_java_namesrv(java: JavaCluster) -> None:
    ns_port = free_port()
    java.start_namesrv(ns_port)
    broker_port = free_port()
    java.start_broker("broker-a", broker_port, f"127.0.0.1:{ns_port}")
    result = java.mqadmin("clusterList", "-n", f"127.0.0.1:{ns_port}")
    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{broker_port}" in result.stdout
    assert "broker-a" in result.stdout
