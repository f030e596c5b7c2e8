"""Progress of a produce run: a tqdm bar on a terminal, else a log line every few seconds."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from avrolake.producer.run import ProduceOptions, ProduceSummary

log = logging.getLogger("avrolake.producer.run")

LOG_EVERY_S = 5.0


class Progress:
    """A tqdm bar on a terminal, else a log line every ``LOG_EVERY_S``."""

    def __init__(self, options: ProduceOptions) -> None:
        tty = sys.stderr.isatty() if options.progress is None else options.progress
        self._bar = None
        self._next_log = time.monotonic() + LOG_EVERY_S
        if tty:
            from tqdm import tqdm

            total = options.count if options.count is not None and not options.duration else None
            self._bar = tqdm(total=total, unit="ev", unit_scale=True, file=sys.stderr)
        self._shown = 0

    def update(self, generated: int, summary: ProduceSummary) -> None:
        if self._bar is not None:
            self._bar.update(generated - self._shown)
            self._shown = generated
        elif time.monotonic() >= self._next_log:
            self._next_log = time.monotonic() + LOG_EVERY_S
            log.info(
                "generated %d, acknowledged %d, failed %d",
                generated,
                sum(summary.per_version.values()),
                summary.failed,
            )

    def close_with(self, summary: ProduceSummary) -> None:
        if self._bar is not None:
            self._bar.update(summary.generated - self._shown)
            self._bar.close()
            self._bar = None


@contextmanager
def progress_for(options: ProduceOptions) -> Iterator[Progress]:
    progress = Progress(options)
    try:
        yield progress
    finally:
        if progress._bar is not None:
            progress._bar.close()
