"""How a stream runs: drain what is there and stop (scheduled jobs) or keep going (continuous)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from avrolake.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql.streaming import DataStreamWriter

AVAILABLE_NOW = "available-now"
CONTINUOUS = "continuous"


@dataclass(frozen=True)
class TriggerSettings:
    mode: str = AVAILABLE_NOW
    interval: str = "5 seconds"  # micro-batch interval in continuous mode

    def __post_init__(self) -> None:
        if self.mode not in (AVAILABLE_NOW, CONTINUOUS):
            raise ConfigError(
                f"--trigger {self.mode!r} is not one of: {AVAILABLE_NOW}, {CONTINUOUS}"
            )

    def apply(self, writer: DataStreamWriter) -> DataStreamWriter:
        if self.mode == AVAILABLE_NOW:
            return writer.trigger(availableNow=True)
        return writer.trigger(processingTime=self.interval)


def add_trigger_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("trigger")
    group.add_argument(
        "--trigger",
        default=AVAILABLE_NOW,
        help=f"{AVAILABLE_NOW} (drain and stop; scheduled jobs) | {CONTINUOUS}",
    )
    group.add_argument("--interval", default="5 seconds", help="micro-batch interval, continuous")


def trigger_from_args(args: argparse.Namespace) -> TriggerSettings:
    return TriggerSettings(mode=args.trigger, interval=args.interval)
