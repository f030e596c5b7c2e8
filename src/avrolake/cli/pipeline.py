"""``avrolake ingest | silver | gold``: the entry points the bundle's jobs call."""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from avrolake.errors import PipelineError
from avrolake.pipeline.tables import add_table_arguments, locations_from_args
from avrolake.pipeline.triggers import add_trigger_arguments, trigger_from_args
from avrolake.settings import add_connection_arguments, connection_from_args

if TYPE_CHECKING:
    from pyspark.sql.streaming import StreamingQuery

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
    ingest.add_argument("--max-offsets-per-trigger", type=int, help="rate limit per micro-batch")
    ingest.set_defaults(handler=ingest_command)

    silver = subparsers.add_parser(
        "silver", help="decode bronze into silver (+ quarantine), evolving with the registry"
    )
    add_connection_arguments(silver)
    add_table_arguments(silver)
    add_trigger_arguments(silver)
    silver.set_defaults(handler=silver_command)

    gold = subparsers.add_parser("gold", help="aggregate silver into gold")
    add_table_arguments(gold)
    add_trigger_arguments(gold)
    gold.set_defaults(handler=gold_command)


@contextmanager
def spark_errors(stage: str) -> Iterator[None]:
    """Spark's own failures (a missing catalog, a denied permission): one line, no JVM trace."""
    from pyspark.errors import PySparkException

    try:
        yield
    except PySparkException as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise PipelineError(f"{stage} failed: {first_line}") from None


def await_query(query: StreamingQuery) -> int:
    """Wait for the query; SIGTERM/SIGINT stop it cleanly at a batch boundary (the checkpoint
    keeps the position, so the next run resumes exactly there)."""

    def stop(signum: int, _frame: object) -> None:
        log.info("received %s, stopping %s", signal.Signals(signum).name, query.name)
        query.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        query.awaitTermination()
    except Exception as error:  # StreamingQueryException: the cause's first line is the message
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise PipelineError(f"query {query.name} failed: {first_line}") from error
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def ingest_command(args: argparse.Namespace) -> int:
    from avrolake.pipeline import preflight
    from avrolake.pipeline.runners import run_ingest, validate_starting_offsets
    from avrolake.spark import build_session

    connection = connection_from_args(args)
    locations = locations_from_args(args)
    trigger = trigger_from_args(args)
    validate_starting_offsets(args.starting_offsets)
    preflight.check_topic(connection.kafka)
    with spark_errors("ingest"):
        spark = build_session("avrolake-ingest")
        return await_query(
            run_ingest(
                spark,
                connection,
                locations,
                trigger,
                starting_offsets=args.starting_offsets,
                max_offsets_per_trigger=args.max_offsets_per_trigger,
            )
        )


def silver_command(args: argparse.Namespace) -> int:
    from avrolake.pipeline import preflight
    from avrolake.pipeline.runners import run_silver
    from avrolake.spark import build_session

    connection = connection_from_args(args)
    locations = locations_from_args(args)
    trigger = trigger_from_args(args)
    registry = preflight.check_registry(connection)
    with spark_errors("silver"):
        spark = build_session("avrolake-silver")
        return await_query(run_silver(spark, connection, locations, trigger, registry=registry))


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
