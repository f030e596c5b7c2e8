"""Kafka's storage across restarts: formatted once, reused by a restart on the same ports, and
discarded only when the registries its records refer to start empty with it.

The storage tests run Kafka's own ``StorageTool`` (a JVM, a few seconds each); the stack tests use
stand-in services (``sleep``) so that only the bookkeeping is under test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from avrolake_dev.local import kafka
from avrolake_dev.local.proc import PidRecord, stop
from avrolake_dev.local.service import Service
from avrolake_dev.local.stack import LocalStack
from avrolake_dev.settings import LocalPorts
from loopback import free_ports


def cluster_id(home: Path) -> str:
    lines = (kafka.data_dir(home) / "meta.properties").read_text().splitlines()
    (found,) = [line.split("=", 1)[1] for line in lines if line.startswith("cluster.id=")]
    return found


def test_storage_is_formatted_once_and_reused(tmp_path: Path) -> None:
    ports = LocalPorts(*free_ports(4))
    home = tmp_path / "kafka"
    service = kafka.service(ports, home)
    assert not kafka.formatted(home)

    service.prepare()
    assert kafka.formatted(home)
    first = cluster_id(home)
    (kafka.data_dir(home) / "products-0").mkdir()  # stands for a topic's partition

    service.prepare()  # a restart after a crash or a stop
    assert cluster_id(home) == first
    assert (kafka.data_dir(home) / "products-0").is_dir()


def test_storage_made_for_other_ports_is_formatted_again(tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    kafka.service(LocalPorts(*free_ports(4)), home).prepare()
    first = cluster_id(home)
    (kafka.data_dir(home) / "products-0").mkdir()

    kafka.service(LocalPorts(*free_ports(4)), home).prepare()
    assert cluster_id(home) != first
    assert not (kafka.data_dir(home) / "products-0").exists()


def test_half_formatted_storage_is_formatted_again(tmp_path: Path) -> None:
    """A format that died before writing meta.properties leaves nothing worth keeping."""
    ports = LocalPorts(*free_ports(4))
    home = tmp_path / "kafka"
    home.mkdir()
    (home / "server.properties").write_text(kafka.server_properties(ports, kafka.data_dir(home)))
    (kafka.data_dir(home) / "leftover").mkdir(parents=True)
    kafka.service(ports, home).prepare()
    assert kafka.formatted(home)
    assert not (kafka.data_dir(home) / "leftover").exists()


def test_discard_data_empties_the_storage(tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    service = kafka.service(LocalPorts(*free_ports(4)), home)
    service.prepare()
    service.discard_data()
    assert not kafka.formatted(home)
    assert not kafka.data_dir(home).exists()
    assert (home / "server.properties").is_file()


# -- when the stack discards it --------------------------------------------------------------


class StandIns:
    """A stack whose three services are ``sleep`` processes; records which data was discarded."""

    def __init__(self, tmp_path: Path) -> None:
        self.discarded: list[str] = []
        ports = dict(zip(("kafka", "apicurio", "moto"), free_ports(3), strict=True))
        self.stack = LocalStack(LocalPorts(*free_ports(4)), tmp_path / "state")
        self.stack.services = tuple(
            Service(
                name=name,
                address=f"127.0.0.1:{port}",
                ports={f"AVROLAKE_{name.upper()}_PORT": port},
                home=tmp_path / "state" / name,
                command=lambda: ["sleep", "300"],
                probe=lambda: True,
                discard_data=lambda name=name: self.discarded.append(name),
                state_in_memory=name != "kafka",
                needs_java=False,
                start_timeout=5.0,
            )
            for name, port in ports.items()
        )

    def crash(self, name: str) -> None:
        record = PidRecord.read(self.stack.pid_path(name))
        assert record is not None
        assert stop(record, grace=2.0)


@pytest.fixture
def stand_ins(tmp_path: Path) -> Iterator[StandIns]:
    stand_ins = StandIns(tmp_path)
    yield stand_ins
    stand_ins.stack.down(grace=2.0)


def test_a_fresh_stack_starts_kafka_empty(stand_ins: StandIns) -> None:
    assert sorted(stand_ins.stack.up()) == ["apicurio", "kafka", "moto"]
    assert stand_ins.discarded == ["kafka"]


def test_a_crashed_broker_restarts_on_its_data(stand_ins: StandIns) -> None:
    stand_ins.stack.up()
    stand_ins.discarded.clear()
    stand_ins.crash("kafka")
    assert stand_ins.stack.up() == ["kafka"]
    assert stand_ins.discarded == []


def test_a_registry_restarting_under_a_running_broker_is_reported(
    stand_ins: StandIns, caplog: pytest.LogCaptureFixture
) -> None:
    stand_ins.stack.up()
    stand_ins.discarded.clear()
    stand_ins.crash("apicurio")
    with caplog.at_level(logging.WARNING, logger="avrolake_dev.local.stack"):
        assert stand_ins.stack.up() == ["apicurio"]
    assert stand_ins.discarded == []
    assert [r.getMessage() for r in caplog.records] == [
        "kafka keeps running on its data, but apicurio restarted empty: records written before "
        "may name unknown schema ids (`avrolake local down`, then `up`, starts afresh)"
    ]


def test_the_broker_and_a_registry_crashed_together(stand_ins: StandIns) -> None:
    stand_ins.stack.up()
    stand_ins.discarded.clear()
    stand_ins.crash("kafka")
    stand_ins.crash("moto")
    assert sorted(stand_ins.stack.up()) == ["kafka", "moto"]
    assert stand_ins.discarded == ["kafka"]
