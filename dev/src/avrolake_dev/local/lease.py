"""Sharing one local stack between concurrent holders, such as parallel pytest sessions.

A holder takes a lease (a file naming its pid) for as long as it needs the stack. Services that a
holder had to start are marked ``shared``; when the last live lease goes, those are stopped. Any
plain ``LocalStack.up()`` (``avrolake local up``, the demo) removes the marks: what a user asked
for stays up. Leases of crashed holders are recognised by their dead pid and ignored.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from avrolake_dev.local.proc import start_time
from avrolake_dev.local.stack import LocalStack


def _leases(stack: LocalStack) -> Path:
    return stack.state_dir / "leases"


def _live_leases(stack: LocalStack) -> list[Path]:
    live = []
    for lease in _leases(stack).glob("*"):
        try:
            pid, started = lease.read_text().split(maxsplit=1)
            alive = start_time(int(pid)) == started.strip()
        except (OSError, ValueError):
            alive = False  # unreadable: a holder that died while writing it
        if alive:
            live.append(lease)
        else:
            lease.unlink(missing_ok=True)
    return live


@contextmanager
def shared(stack: LocalStack, *, timeout: float | None = None) -> Iterator[LocalStack]:
    """Hold ``stack`` up for the ``with`` body, starting what is not running.

    On exit, if no other holder is alive, stops the services that holders started (and only those).
    """
    me = _leases(stack) / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # nested holders: one each
    with stack.locked():
        me.parent.mkdir(parents=True, exist_ok=True)
        me.write_text(f"{os.getpid()} {start_time(os.getpid())}")
        try:
            started = stack.up(timeout=timeout, claim=False)
        except BaseException:
            me.unlink(missing_ok=True)
            raise
        for name in started:
            stack.shared_mark(name).touch()
    try:
        yield stack
    finally:
        with stack.locked():
            me.unlink(missing_ok=True)
            if not _live_leases(stack):
                stack.down([s.name for s in stack.services if stack.shared_mark(s.name).exists()])
