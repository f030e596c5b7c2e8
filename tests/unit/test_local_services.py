"""How each service is configured: exact files, properties and commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from avrolake.errors import ConfigError
from avrolake_dev.local import apicurio, kafka, moto
from avrolake_dev.local.stack import LocalStack, state_dir, tail
from avrolake_dev.settings import LocalPorts

PORTS = LocalPorts(kafka=29092, kafka_controller=29093, apicurio=28081, moto=25000)


def test_kafka_server_properties() -> None:
    assert kafka.server_properties(PORTS, Path("/state/kafka/data")).splitlines() == [
        "process.roles=broker,controller",
        "node.id=1",
        "listeners=PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093",
        "advertised.listeners=PLAINTEXT://127.0.0.1:29092",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "controller.quorum.bootstrap.servers=127.0.0.1:29093",
        "log.dirs=/state/kafka/data",
        "num.partitions=3",
        "auto.create.topics.enable=true",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "min.insync.replicas=1",
        "group.initial.rebalance.delay.ms=0",
    ]


def test_apicurio_listens_on_loopback_with_in_memory_storage() -> None:
    props = apicurio.system_properties(28081, Path("/state/apicurio"))
    assert props[:2] == ["-Dquarkus.http.host=127.0.0.1", "-Dquarkus.http.port=28081"]
    assert "-Dapicurio.storage.kind=sql" in props
    assert "-Dapicurio.storage.sql.kind=h2" in props


def test_moto_runs_under_this_interpreter() -> None:
    assert moto.command(25000) == [
        sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "25000"
    ]  # fmt: skip


def test_stack_addresses_and_layout(tmp_path: Path) -> None:
    stack = LocalStack(PORTS, tmp_path)
    assert [(s.name, s.address, dict(s.ports)) for s in stack.services] == [
        ("kafka", "127.0.0.1:29092",
         {"AVROLAKE_KAFKA_PORT": 29092, "AVROLAKE_KAFKA_CONTROLLER_PORT": 29093}),
        ("apicurio", "http://127.0.0.1:28081/apis/ccompat/v7", {"AVROLAKE_APICURIO_PORT": 28081}),
        ("moto", "http://127.0.0.1:25000", {"AVROLAKE_MOTO_PORT": 25000}),
    ]  # fmt: skip
    assert stack.bootstrap_servers == "127.0.0.1:29092"
    assert stack.pid_path("kafka") == tmp_path / "run" / "kafka.pid"
    assert stack.log_path("moto") == tmp_path / "logs" / "moto.log"
    assert [s.health for s in stack.status()] == ["stopped", "stopped", "stopped"]
    with pytest.raises(ConfigError) as caught:
        stack.service("zookeeper")
    assert str(caught.value) == "unknown service 'zookeeper': use one of kafka, apicurio, moto"


def test_two_services_on_one_port_is_a_config_error(tmp_path: Path) -> None:
    clash = LocalPorts(kafka=29092, kafka_controller=29093, apicurio=29092, moto=25000)
    with pytest.raises(ConfigError) as caught:
        LocalStack(clash, tmp_path).up()
    assert str(caught.value) == (
        "AVROLAKE_KAFKA_PORT and AVROLAKE_APICURIO_PORT are both 29092: "
        "give each service its own port"
    )


def test_state_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AVROLAKE_STATE_DIR", str(tmp_path / "s"))
    assert state_dir() == tmp_path / "s"
    monkeypatch.delenv("AVROLAKE_STATE_DIR")
    monkeypatch.setenv("AVROLAKE_CACHE", str(tmp_path / "c"))
    assert state_dir() == tmp_path / "c" / "state"


def test_tail_skips_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "x.log").write_text("a\n\nb\nc\n\n")
    assert tail(tmp_path / "x.log", 2) == ["b", "c"]
    assert tail(tmp_path / "missing.log", 2) == []
