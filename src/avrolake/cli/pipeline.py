"""``avrolake ingest | silver | gold``: the entry points the bundle's jobs call."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from avrolake.cli.failures import quiet_spark_logs, spark_errors
from avrolake.cli.options import (
    add_connection_arguments,
    add_definitions_arguments,
    add_table_arguments,
    add_trigger_arguments,
    flavor_from_args,
    kafka_from_args,
    pipelines_from_args,
    registry_from_args,
    space_from_args,
    topics_from_args,
    trigger_from_args,
)
from avrolake.cli.stopping import StopRequest, await_queries, await_query, stop_signals
from avrolake.errors import ConfigError
from avrolake.pipeline.tables import TableLocations
from avrolake.settings import DEFAULT_OUTAGE_TIMEOUT_S

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from avrolake.registry import SchemaRegistry

# what every stage's command uses, here and in gold_command
__all__ = [
    "await_queries",
    "await_query",
    "quiet_spark_logs",
    "register",
    "spark_errors",
    "stop_signals",
]

log = logging.getLogger(__name__)
Checked = TypeVar("Checked")


def register(subparsers: argparse._SubParsersAction) -> None:
    ingest = subparsers.add_parser(
        "ingest", help="stream the definitions' Kafka topics (or --topic) into the bronze table"
    )
    add_definitions_arguments(ingest)
    add_connection_arguments(ingest)
    add_table_arguments(ingest)
    add_trigger_arguments(ingest)
    ingest.add_argument(
        "--starting-offsets",
        default="earliest",
        help='earliest | latest | per-partition JSON, e.g. {"products": {"0": 42, "1": -2}} '
        "(default: %(default)s)",
    )
    ingest.add_argument(
        "--max-offsets-per-trigger",
        type=int,
        metavar="N",
        help="rate limit per micro-batch, at least 1 (default: no limit)",
    )
    ingest.set_defaults(handler=ingest_command)

    silver = subparsers.add_parser(
        "silver",
        help="decode each pipeline's bronze rows into silver (+ quarantine), evolving with the "
        "registry",
    )
    add_definitions_arguments(silver)
    add_connection_arguments(silver)
    add_table_arguments(silver)
    add_trigger_arguments(silver)
    silver.add_argument(
        "--registry-outage-timeout",
        type=_positive_seconds,
        default=DEFAULT_OUTAGE_TIMEOUT_S,
        metavar="SECONDS",
        help="how long silver waits out an unreachable schema registry before failing "
        "(default: %(default)s)",
    )
    silver.set_defaults(handler=silver_command)

    gold = subparsers.add_parser(
        "gold", help="aggregate silver into gold, for each record type with a gold spec"
    )
    add_definitions_arguments(gold)
    add_table_arguments(gold)
    add_trigger_arguments(gold)
    gold.set_defaults(handler=gold_command)


def check_max_offsets(value: int | None) -> int | None:
    """Spark rejects 0 and negatives only when the stream starts, with a JVM trace."""
    if value is not None and value < 1:
        raise ConfigError(
            f"--max-offsets-per-trigger {value} must be at least 1 (or left out: no limit)"
        )
    return value


def _positive_seconds(raw: str) -> float:
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a positive number of seconds")
    return seconds


def ingest_command(args: argparse.Namespace) -> int:
    from avrolake.pipeline import preflight
    from avrolake.pipeline.runners import run_ingest, validate_starting_offsets

    # what the options alone can tell first, then what the environment has to supply
    space = space_from_args(args)
    trigger = trigger_from_args(args)
    starting_offsets = validate_starting_offsets(args.starting_offsets)
    max_offsets = check_max_offsets(args.max_offsets_per_trigger)
    # ingest copies bytes, but a bad --flavor (or a pipeline of the other one) is bad all the same
    topics = topics_from_args(args, flavor_from_args(args))
    # one stream for every topic into the one bronze table (Spark's `subscribe` takes a list)
    kafka = replace(kafka_from_args(args), topic=",".join(topics))
    # run_ingest writes only bronze and its checkpoint; the other tables are silver's business
    locations = TableLocations.named(space, silver="silver", quarantine="quarantine")

    def check() -> None:  # ingest never asks the registry
        for topic in topics:
            preflight.check_topic(replace(kafka, topic=topic))

    def start(spark: SparkSession, _: None) -> Iterator[StreamingQuery]:
        yield run_ingest(
            spark,
            kafka,
            locations,
            trigger,
            starting_offsets=starting_offsets,
            max_offsets_per_trigger=max_offsets,
        )

    return _run_stream("ingest", check, start, args)


def silver_command(args: argparse.Namespace) -> int:
    from avrolake.pipeline import preflight
    from avrolake.pipeline.runners import run_silver

    space = space_from_args(args)
    trigger = trigger_from_args(args)
    pipelines = pipelines_from_args(args, flavor_from_args(args))
    registry_settings = registry_from_args(args)  # silver reads bronze: it never talks to Kafka
    subjects = [pipeline.subject(record) for pipeline in pipelines for record in pipeline.records]

    def start(spark: SparkSession, registry: SchemaRegistry) -> Iterator[StreamingQuery]:
        for pipeline in pipelines:  # one stream per pipeline, all in this session
            yield run_silver(
                spark,
                pipeline,
                registry,
                space,
                trigger,
                outage_timeout_s=args.registry_outage_timeout,
            )

    def check() -> SchemaRegistry:
        return preflight.check_registry(registry_settings, subjects)

    return _run_stream("silver", check, start, args)


def _run_stream(
    stage: str,
    check: Callable[[], Checked],
    start: Callable[[SparkSession, Checked], Iterable[StreamingQuery]],
    args: argparse.Namespace,
) -> int:
    """Check what the streams read from (``check``: seconds, and no Spark), start Spark and the
    streams (``start``, given what ``check`` returned, yields each as it starts) and wait until
    they end.

    From the check on, SIGTERM/SIGINT are recorded, not fatal: one during the check or Spark's
    start-up ends the command with 0 before the streams start, or stops them once they have.
    A stream that fails to start stops those started before it.
    """
    from avrolake.spark import build_session

    with stop_signals() as stop:
        checked = check()
        if _stopped_before_start(stop):
            return 0
        with spark_errors(stage, stop):
            spark = build_session(f"avrolake-{stage}")
            stop.install()  # the new SparkContext took SIGINT over
            quiet_spark_logs(spark, verbose=args.verbose)
            if _stopped_before_start(stop):  # Spark's start-up takes seconds
                return 0
            queries: list[StreamingQuery] = []
            try:
                for query in start(spark, checked):
                    queries.append(query)
            except BaseException:
                for query in queries:
                    with contextlib.suppress(Exception):  # the JVM may be gone: report the start
                        query.stop()
                raise
            return await_queries(queries, stop)
        return 0  # spark_errors swallowed what a signal to the process group did to Spark


def _stopped_before_start(stop: StopRequest) -> bool:
    if stop.requested:
        log.info("%s received before the stream started: not starting it", stop.signal_name)
    return stop.requested


def gold_command(args: argparse.Namespace) -> int:
    """Gold is a batch update, once or every ``--interval`` (not a stream): SIGTERM/SIGINT let the
    update under way finish and then end the command normally. Stopping anywhere loses nothing,
    since gold records its progress in its own commit."""
    import signal
    import threading

    from avrolake.pipeline.gold_io import parse_interval, run_gold
    from avrolake.spark import build_session

    space = space_from_args(args)
    trigger = trigger_from_args(args)
    parse_interval(trigger.interval)  # a bad --interval is one line before Spark starts
    pipelines = pipelines_from_args(args)  # gold reads silver tables: no flavor to agree with
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()  # only this: no py4j call and no logging inside a signal handler

    def catch_signals() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if on_main_thread:  # Python installs handlers only there (an embedding runner: none)
            catch_signals()  # from here: a signal during Spark's start-up is kept, not fatal
        with spark_errors("gold"):
            spark = build_session("avrolake-gold")
            if on_main_thread:
                catch_signals()  # again: starting a SparkContext installs its own SIGINT handler
            quiet_spark_logs(spark, verbose=args.verbose)
            if not stop.is_set():
                try:
                    run_gold(spark, space, pipelines, trigger, stop=stop)
                except Exception:
                    # A SIGTERM to the whole process group (`timeout`, some supervisors) stops
                    # Spark's JVM too, under the update: the stop was asked for, and an update cut
                    # short leaves gold as of its last commit, which holds its own progress.
                    if not stop.is_set():
                        raise
                    log.info("gold: Spark stopped under the update; gold is as of its last commit")
    finally:
        if on_main_thread:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if stop.is_set():
        log.info("gold stopped on request")
    return 0
