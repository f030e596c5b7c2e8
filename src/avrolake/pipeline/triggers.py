"""How a stream runs: drain what is there and stop (scheduled jobs) or keep going (continuous)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from avrolake.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql.streaming import DataStreamWriter

AVAILABLE_NOW = "available-now"
CONTINUOUS = "continuous"
MODES = (AVAILABLE_NOW, CONTINUOUS)
DEFAULT_INTERVAL = "5 seconds"


@dataclass(frozen=True)
class TriggerSettings:
    mode: str = AVAILABLE_NOW
    interval: str = DEFAULT_INTERVAL  # micro-batch interval in continuous mode

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"--trigger {self.mode!r} is not one of: {', '.join(MODES)}")

    def apply(self, writer: DataStreamWriter) -> DataStreamWriter:
        if self.mode == AVAILABLE_NOW:
            return writer.trigger(availableNow=True)
        return writer.trigger(processingTime=self.interval)
