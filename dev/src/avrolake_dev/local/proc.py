"""Background processes that outlive the command that started them, tracked by pid files.

Each process leads its own process group (``start_new_session``), so stopping it reaches every
child it forked, and Ctrl-C in the starting terminal does not reach it. A pid file also records the
process's start time (psutil's, in seconds since boot, so a change of the system clock does not
alter it): a recycled pid belonging to some unrelated program is never signalled.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from avrolake.errors import LocalStackError
from avrolake_dev.polling import poll

# Popen objects of processes started by this interpreter, so stopping one can reap it (no zombies,
# no "subprocess still running" warnings when pytest starts the stack in-process).
_children: dict[int, subprocess.Popen[bytes]] = {}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds: the process, how to recognise it, and what it serves."""

    pid: int
    started: str  # the OS's start time of the process: tells a recycled pid apart
    address: str
    command: list[str]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> PidRecord | None:
        """The record in ``path``, or ``None`` when the file is missing or unreadable."""
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def require_tool(name: str, fix: str) -> str:
    """The absolute path of ``name`` on ``PATH``, else ``LocalStackError`` saying ``fix``."""
    found = shutil.which(name)
    if found is None:
        raise LocalStackError(f"{name} not found on PATH: {fix}")
    return found


def start_time(pid: int) -> str | None:
    """When ``pid`` started, in seconds since boot, or ``None`` when it is gone or a zombie."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return f"{process.create_time() - psutil.boot_time():.2f}"
    except psutil.Error:
        return None


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def is_alive(record: PidRecord) -> bool:
    """Whether the process of ``record`` still runs (same pid and same start time)."""
    _reap(record.pid)
    return start_time(record.pid) == record.started


def spawn(command: list[str], *, log_path: Path, cwd: Path, address: str) -> PidRecord:
    """Start ``command`` detached in its own session, stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        child = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[child.pid] = child
    started = start_time(child.pid)
    if started is None:
        child.wait()
        raise LocalStackError(
            f"{command[0]} exited at once (exit {child.returncode}); see {log_path}"
        )
    return PidRecord(pid=child.pid, started=started, address=address, command=command)


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    return bool(group_members(pgid))


def _wait_group_gone(pgid: int, seconds: float) -> bool:
    return poll(lambda: not _group_alive(pgid), timeout=seconds, interval=0.1)


def stop(record: PidRecord, *, grace: float) -> bool:
    """Stop the whole process group of ``record``: SIGTERM, then SIGKILL after ``grace`` seconds.

    Returns ``False`` when the process was already gone (nothing signalled). Raises
    ``LocalStackError`` if the group survives SIGKILL too.
    """
    if not is_alive(record):
        return False
    pgid = record.pid  # spawn() made it a session leader: its pid is the group id
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if not _wait_group_gone(pgid, grace):
        log.warning("pid %d ignored SIGTERM for %.0fs; sending SIGKILL", record.pid, grace)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return True
        if not _wait_group_gone(pgid, 10.0):
            raise LocalStackError(f"process group {pgid} survived SIGKILL; check `ps -g {pgid}`")
    return True


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes in process group ``pgid``."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            in_group = os.getpgid(process.pid) == pgid
        except OSError:  # gone since the listing
            continue
        if in_group and process.info["status"] != psutil.STATUS_ZOMBIE:
            members.append(process.pid)
    return members
