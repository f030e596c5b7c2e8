"""Background processes: pid files, whole-group stops, SIGKILL after the grace, recycled pids."""

from __future__ import annotations

import os
import time
from pathlib import Path

from avrolake_dev.local.proc import PidRecord, group_members, is_alive, spawn, stop


def _wait_members(pgid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 5
    while len(members := group_members(pgid)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    # a shell that forks a second process: both must go
    record = spawn(["sh", "-c", "sleep 300 & sleep 300"], log_path=tmp_path / "x.log",
                   cwd=tmp_path, address="-")  # fmt: skip
    members = _wait_members(record.pid, 3)
    assert len(members) == 3 and record.pid in members
    assert is_alive(record)

    assert stop(record, grace=5.0) is True
    assert group_members(record.pid) == []
    assert not is_alive(record)
    assert stop(record, grace=5.0) is False  # already gone: nothing to signal


def test_a_process_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    record = spawn(["sh", "-c", "trap '' TERM; sleep 300"], log_path=tmp_path / "x.log",
                   cwd=tmp_path, address="-")  # fmt: skip
    _wait_members(record.pid, 2)
    begin = time.monotonic()
    assert stop(record, grace=0.5) is True
    assert time.monotonic() - begin < 5
    assert group_members(record.pid) == []


def test_a_recycled_pid_is_not_ours() -> None:
    # our own pid with another start time: what a pid file left by a dead process looks like
    stale = PidRecord(pid=os.getpid(), started="0", address="-", command=["gone"])
    assert not is_alive(stale)
    assert stop(stale, grace=0.1) is False  # and we are still here


def test_pid_record_round_trip(tmp_path: Path) -> None:
    record = PidRecord(pid=42, started="123", address="127.0.0.1:1", command=["java", "-jar"])
    record.write(tmp_path / "run" / "x.pid")
    assert PidRecord.read(tmp_path / "run" / "x.pid") == record
    assert PidRecord.read(tmp_path / "missing.pid") is None
    (tmp_path / "bad.pid").write_text("{not json")
    assert PidRecord.read(tmp_path / "bad.pid") is None


def test_spawn_appends_output_to_the_log(tmp_path: Path) -> None:
    record = spawn(["sh", "-c", "echo hello; sleep 300"], log_path=tmp_path / "logs" / "x.log",
                   cwd=tmp_path / "home", address="-")  # fmt: skip
    try:
        deadline = time.monotonic() + 5
        while not (tmp_path / "logs" / "x.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "logs" / "x.log").read_text() == "hello\n"
    finally:
        stop(record, grace=5.0)
