"""LocalStack's bookkeeping, with real processes standing in as already-running services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from avrolake.errors import LocalStackError
from avrolake_dev.local.proc import PidRecord, group_members, spawn, stop
from avrolake_dev.local.stack import LocalStack
from avrolake_dev.settings import LocalPorts

PORTS = LocalPorts(kafka=29092, kafka_controller=29093, apicurio=28081, moto=25000)


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[PidRecord]:
    record = spawn(["sh", "-c", "sleep 300 & sleep 300"], log_path=tmp_path / "sleep.log",
                   cwd=tmp_path, address="127.0.0.1:19999")  # fmt: skip
    yield record
    stop(record, grace=2.0)


def test_up_refuses_a_service_running_on_other_ports(tmp_path: Path, sleeper: PidRecord) -> None:
    stack = LocalStack(PORTS, tmp_path / "state")
    sleeper.write(stack.pid_path("kafka"))
    with pytest.raises(LocalStackError) as caught:
        stack.up()
    assert str(caught.value) == (
        "kafka already runs at 127.0.0.1:19999, not 127.0.0.1:29092: run `avrolake local down` "
        "first, or unset the AVROLAKE_*_PORT variables"
    )
    assert not stack.pid_path("apicurio").exists()  # nothing else was started


def test_down_stops_what_the_pid_files_name_and_forgets_stale_ones(
    tmp_path: Path, sleeper: PidRecord
) -> None:
    stack = LocalStack(PORTS, tmp_path / "state")
    sleeper.write(stack.pid_path("moto"))
    PidRecord(pid=sleeper.pid, started="0", address="-", command=["old"]).write(
        stack.pid_path("apicurio")  # the same pid under another start time: not ours to kill
    )
    assert [(s.name, s.pid) for s in stack.status()] == [
        ("kafka", None), ("apicurio", None), ("moto", sleeper.pid),
    ]  # fmt: skip
    assert stack.down() == ["moto"]
    assert group_members(sleeper.pid) == []
    assert list((stack.state_dir / "run").iterdir()) == []
    assert stack.down() == []
