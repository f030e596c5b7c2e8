"""An inter-process lock on a file (``filelock``), bounded wait, re-entrant in one process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from avrolake.errors import LocalStackError


@contextmanager
def file_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` body.

    Waits at most ``timeout`` seconds for another process, then raises ``LocalStackError`` saying
    ``what`` is busy. The kernel drops the lock if the holder dies, so a crash never leaves it
    stuck. Nested use on the same path in one process does not wait (one lock object per path,
    counting its holds; any thread, as two ``flock``s of one process would conflict).
    """
    key = path.resolve()
    key.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(key, thread_local=False, is_singleton=True, poll_interval=0.2,
                    preserve_lock_file=True)  # fmt: skip
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise LocalStackError(
            f"{what} is busy: another avrolake process holds {key}; wait for it to finish and retry"
        ) from None
    try:
        yield
    finally:
        lock.release()
