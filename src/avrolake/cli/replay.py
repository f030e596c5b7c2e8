"""``avrolake replay``: move quarantined records that decode now into silver, exactly once."""

from __future__ import annotations

import argparse
import datetime as dt

from avrolake.cli.failures import quiet_spark_logs, spark_errors
from avrolake.cli.options import (
    add_connection_arguments,
    add_definitions_arguments,
    add_table_arguments,
    flavor_from_args,
    pipelines_from_args,
    registry_from_args,
    space_from_args,
)
from avrolake.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    replay = subparsers.add_parser(
        "replay",
        help="decode quarantined records again (after a late registration, a fixed reader) "
        "and move those that decode into silver; run it while silver is stopped",
    )
    add_definitions_arguments(replay)
    add_connection_arguments(replay)
    add_table_arguments(replay)
    replay.add_argument(
        "--reason", metavar="TEXT", help="only records whose reason contains TEXT (default: all)"
    )
    for option, what in (("--since", "at or after"), ("--until", "before")):
        replay.add_argument(
            option,
            type=_utc_moment,
            metavar="ISO-8601",
            help=f"only records with a Kafka timestamp {what} this moment, UTC unless it names "
            "a zone (default: no bound)",
        )
    replay.set_defaults(handler=replay_command)


def _utc_moment(raw: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not an ISO-8601 moment like 2026-11-25T08:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def replay_command(args: argparse.Namespace) -> int:
    from avrolake.pipeline import preflight
    from avrolake.pipeline.replay import ReplaySelection, replay_quarantine
    from avrolake.spark import build_session

    selection = ReplaySelection(reason=args.reason, since=args.since, until=args.until)
    if selection.since and selection.until and selection.since >= selection.until:
        raise ConfigError(f"--since {args.since} is not before --until {args.until}")
    space = space_from_args(args)
    pipelines = pipelines_from_args(args, flavor_from_args(args))
    registry_settings = registry_from_args(args)  # replay reads bronze: it never talks to Kafka
    subjects = [pipeline.subject(record) for pipeline in pipelines for record in pipeline.records]
    registry = preflight.check_registry(registry_settings, subjects)
    with spark_errors("replay"):
        spark = build_session("avrolake-replay")
        quiet_spark_logs(spark, verbose=args.verbose)
        for pipeline in pipelines:
            summary = replay_quarantine(spark, pipeline, registry, space, selection)
            print(f"{pipeline.name}: {summary}" if len(pipelines) > 1 else summary)
    return 0
