"""An inter-process lock on a file, with a bounded wait, re-entrant within one process."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from avrolake.errors import LocalStackError

# flock conflicts between two descriptors of one process too: count nested holds instead.
_held: dict[Path, int] = {}


@contextmanager
def file_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` body.

    Waits at most ``timeout`` seconds for another process, then raises ``LocalStackError`` saying
    ``what`` is busy. The kernel drops the lock if the holder dies, so a crash never leaves it
    stuck. Nested use on the same path in one process does not wait.
    """
    key = path.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    key.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LocalStackError(
                        f"{what} is busy: another avrolake process holds {key}; wait for it "
                        "to finish and retry"
                    ) from None
                time.sleep(0.2)
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
    finally:
        os.close(fd)  # closing releases the lock
