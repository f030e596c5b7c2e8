"""``avrolake ingest | silver | gold``: the entry points the bundle's jobs call."""

from __future__ import annotations

import argparse
import logging

from avrolake.cli.failures import quiet_spark_logs, spark_errors
from avrolake.cli.stopping import StopRequest, await_query, stop_signals
from avrolake.errors import ConfigError
from avrolake.pipeline.tables import add_table_arguments, locations_from_args
from avrolake.pipeline.triggers import add_trigger_arguments, trigger_from_args
from avrolake.settings import add_connection_arguments, connection_from_args

# what every stage's command uses, here and in gold_command
__all__ = ["await_query", "quiet_spark_logs", "register", "spark_errors", "stop_signals"]

DEFAULT_OUTAGE_TIMEOUT_S = 600.0  # pipeline.batch_schemas' default, without importing Spark
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    ingest = subparsers.add_parser("ingest", help="stream Kafka into the bronze Delta table")
    add_connection_arguments(ingest)
    add_table_arguments(ingest)
    add_trigger_arguments(ingest)
    ingest.add_argument(
        "--starting-offsets",
        default="earliest",
        help='earliest | latest | per-partition JSON, e.g. {"products": {"0": 42, "1": -2}}',
    )
    ingest.add_argument(
        "--max-offsets-per-trigger", type=int, help="rate limit per micro-batch (at least 1)"
    )
    ingest.set_defaults(handler=ingest_command)

    silver = subparsers.add_parser(
        "silver", help="decode bronze into silver (+ quarantine), evolving with the registry"
    )
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

    gold = subparsers.add_parser("gold", help="aggregate silver into gold")
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


def ingest_command(args: argparse.Namespace) -> int:
    from avrolake.pipeline import preflight
    from avrolake.pipeline.runners import run_ingest, validate_starting_offsets
    from avrolake.spark import build_session

    connection = connection_from_args(args)
    locations = locations_from_args(args)
    trigger = trigger_from_args(args)
    validate_starting_offsets(args.starting_offsets)
    max_offsets = check_max_offsets(args.max_offsets_per_trigger)
    # From here on a signal is recorded, not fatal: one during the preflight or Spark's start-up
    # ends the command with 0 before the stream starts, or stops the stream once it has.
    with stop_signals() as stop:
        preflight.check_topic(connection.kafka)
        if _stopped_before_start(stop):
            return 0
        with spark_errors("ingest", stop):
            spark = build_session("avrolake-ingest")
            stop.install()  # the new SparkContext took SIGINT over
            quiet_spark_logs(spark, verbose=args.verbose)
            if _stopped_before_start(stop):  # Spark's start-up takes seconds
                return 0
            query = run_ingest(
                spark,
                connection,
                locations,
                trigger,
                starting_offsets=args.starting_offsets,
                max_offsets_per_trigger=max_offsets,
            )
            return await_query(query, stop)
        return 0  # spark_errors swallowed what a signal to the process group did to Spark


def _positive_seconds(raw: str) -> float:
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a positive number of seconds")
    return seconds


def silver_command(args: argparse.Namespace) -> int:
    from avrolake.pipeline import preflight
    from avrolake.pipeline.runners import run_silver
    from avrolake.spark import build_session

    connection = connection_from_args(args)
    locations = locations_from_args(args)
    trigger = trigger_from_args(args)
    with stop_signals() as stop:  # see ingest_command
        registry = preflight.check_registry(connection)
        if _stopped_before_start(stop):
            return 0
        with spark_errors("silver", stop):
            spark = build_session("avrolake-silver")
            stop.install()  # the new SparkContext took SIGINT over
            quiet_spark_logs(spark, verbose=args.verbose)
            if _stopped_before_start(stop):  # Spark's start-up takes seconds
                return 0
            query = run_silver(
                spark,
                connection,
                locations,
                trigger,
                registry=registry,
                outage_timeout_s=args.registry_outage_timeout,
            )
            return await_query(query, stop)
        return 0  # see ingest_command


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

    locations = locations_from_args(args)
    trigger = trigger_from_args(args)
    parse_interval(trigger.interval)  # a bad --interval is one line before Spark starts
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
                    run_gold(spark, locations, trigger, stop=stop)
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
