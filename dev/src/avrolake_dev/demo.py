"""The end-to-end demo on the embedded stack: evolving schemas, live.

It runs the Product example's definition (``pipelines.yml``: its key, event time, tables and gold
spec) on a fresh topic of its own, under a warehouse of its own:

1. register v1 and v2 of the Product schema;
2. start ingest (Kafka → bronze) and silver (bronze → silver) as continuous streams;
3. produce a v1/v2 stream, register v3 midway, keep producing v1/v2/v3, inject a few bad records;
4. wait until silver and quarantine account for every record, stop the streams, run gold;
5. report gold, per-version counts, the quarantine and the end-to-end rate, and draw a chart.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Producer
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from avrolake import wire
from avrolake.connection import producer_config
from avrolake.definitions import Function, GoldSpec, PipelineDefinition, load_definitions
from avrolake.errors import ConfigError, PipelineError
from avrolake.pipeline.gold_io import run_gold
from avrolake.pipeline.runners import run_ingest, run_silver
from avrolake.pipeline.tables import TableLocations, TableSpace
from avrolake.pipeline.triggers import CONTINUOUS, TriggerSettings
from avrolake.producer.mix import parse_mix
from avrolake.producer.run import ProduceOptions, ensure_topic, run_produce
from avrolake.registry import SchemaRegistry, Subject, open_registry
from avrolake.schemas import SchemaVersion, load_versions
from avrolake.settings import ConnectionSettings, Flavor, KafkaSettings, RegistrySettings
from avrolake_dev import report
from avrolake_dev.polling import poll
from avrolake_dev.settings import LocalPorts

log = logging.getLogger(__name__)

BEFORE_V3_MIX = "v1=0.4,v2=0.6"
AFTER_V3_MIX = "v1=0.2,v2=0.3,v3=0.5"


@dataclass(frozen=True)
class DemoOptions:
    flavor: Flavor = Flavor.CONFLUENT
    events: int = 40_000
    # Paced so that silver runs batches with reader v2 before v3 arrives: the evolution is live.
    rate: float | None = 2_000.0  # events/s; None = as fast as the producer goes
    seed: int = 2026
    out_dir: Path = Path("out/demo")
    schemas_dir: Path = Path("schemas/product")
    definitions: Path = Path("pipelines.yml")  # the example definition
    pipeline: str = "products"  # its pipeline for the Product schema
    interval: str = "2 seconds"
    catch_up_timeout_s: float = 600.0


@dataclass
class DemoResult:
    produced: int = 0
    bad_records: int = 0
    bronze: int = 0
    silver: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    per_version: dict[int, int] = field(default_factory=dict)
    gold_events: int = 0
    seconds: float = 0.0
    chart: Path | None = None

    @property
    def events_per_s(self) -> float:
        return self.produced / self.seconds if self.seconds else 0.0


def demo_connection(flavor: Flavor, topic: str, ports: LocalPorts) -> ConnectionSettings:
    return ConnectionSettings(
        kafka=KafkaSettings(bootstrap_servers=ports.bootstrap_servers, topic=topic),
        registry=RegistrySettings(
            flavor=flavor,
            url=ports.confluent_registry_url,
            glue_registry_name="avrolake-demo",
            region="us-east-1",
            endpoint_url=ports.glue_endpoint_url,
        ),
    )


def inject_bad_records(connection: ConnectionSettings) -> int:
    """A null value, bytes with no known framing, and a record naming a schema nobody registered."""
    unknown = (
        wire.frame_confluent(999_999, b"\x00")
        if connection.flavor is Flavor.CONFLUENT
        else wire.frame_glue("00000000-0000-4000-8000-000000000000", b"\x00")
    )
    producer = Producer(producer_config(connection.kafka))
    values = [None, b"not avro at all", unknown]
    for value in values:
        producer.produce(connection.kafka.topic, value=value, key=b"bad")
    producer.flush(30)
    return len(values)


def register(registry: SchemaRegistry, subject: Subject, version: SchemaVersion) -> None:
    registered = registry.register(subject, version.text)
    log.info("registered v%d under %s as ref %s", version.number, subject, registered.ref)


def demo_pipeline(options: DemoOptions, topic: str) -> PipelineDefinition:
    """The example's pipeline on ``topic``. The demo produces one record type (the Product
    schema) under its topic's subject, so the pipeline must be of that shape."""
    (pipeline,) = load_definitions(options.definitions).select([options.pipeline])
    if len(pipeline.records) != 1 or pipeline.records[0].gold is None:
        raise ConfigError(
            f"{options.definitions}: the demo runs pipeline {pipeline.name} with one record type "
            "that has a gold spec (the Product example)"
        )
    if pipeline.flavor not in (None, options.flavor):
        raise ConfigError(
            f"{options.definitions}: pipeline {pipeline.name} is for flavor {pipeline.flavor}, "
            f"the demo runs --flavor {options.flavor}"
        )
    return pipeline.with_topic(topic)


def start_silver_when_bronze_exists(
    spark: SparkSession,
    pipeline: PipelineDefinition,
    tables: TableLocations,
    trigger: TriggerSettings,
    registry: SchemaRegistry,
    timeout_s: float = 600,
) -> StreamingQuery:
    if not poll(lambda: tables.bronze.exists(spark), timeout=timeout_s, interval=0.5):
        raise PipelineError(f"ingest created no bronze table in {timeout_s:.0f}s")
    return run_silver(spark, pipeline, registry, tables.space, trigger)


def wait_until(
    condition: Callable[[], bool],
    what: str,
    queries: list,
    timeout_s: float = 300,
    starting: Future | None = None,
) -> None:
    """Poll ``condition``; fail at once when a query (or the ``starting`` of one) failed."""

    def done() -> bool:
        if condition():
            return True
        if starting is not None and starting.done() and starting.exception() is not None:
            raise PipelineError(f"starting silver failed: {starting.exception()}")
        for query in queries:
            if query.exception() is not None:
                raise PipelineError(f"query {query.name} failed: {query.exception()}")
        return False

    if not poll(done, timeout=timeout_s, interval=0.5):
        raise PipelineError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def wait_for_catch_up(
    spark: SparkSession, tables: TableLocations, expected: int, queries: list, timeout_s: float
) -> None:
    """Until silver and quarantine together hold every record produced, logging progress."""
    seen = [-1]

    def caught_up() -> bool:
        silver = tables.silver.read(spark).count() if tables.silver.exists(spark) else 0
        bad = tables.quarantine.read(spark).count() if tables.quarantine.exists(spark) else 0
        if silver + bad != seen[0]:
            seen[0] = silver + bad
            log.info("silver %d + quarantine %d of %d records", silver, bad, expected)
        return seen[0] >= expected

    wait_until(caught_up, f"silver to hold all {expected} records", queries, timeout_s)


def run_demo(spark: SparkSession, options: DemoOptions, ports: LocalPorts) -> DemoResult:
    versions = {v.number: v for v in load_versions(options.schemas_dir)}
    pipeline = demo_pipeline(options, f"demo-{options.flavor.value}-{int(time.time())}")
    (record,) = pipeline.records
    spec = record.gold
    assert spec is not None  # demo_pipeline checked it
    subject = pipeline.subject(record)
    connection = demo_connection(options.flavor, pipeline.topic, ports)
    registry = open_registry(connection.registry)
    warehouse = options.out_dir / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    space = TableSpace.in_directory(warehouse)
    tables = TableLocations.for_record(space, pipeline, record)

    register(registry, subject, versions[1])
    register(registry, subject, versions[2])
    registry.set_compatibility(subject, "FULL_TRANSITIVE")
    ensure_topic(connection.kafka, set(), 20.0)

    live = TriggerSettings(mode=CONTINUOUS, interval=options.interval)
    # Bronze must exist before silver can stream from it: seed it by starting ingest first.
    queries = [run_ingest(spark, connection.kafka, tables, live)]
    # Silver starts as soon as ingest has created bronze, from a helper thread, while the
    # producer (which owns the signal handlers, so it stays on the main thread) keeps going.
    starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="start-silver")
    silver_started = starter.submit(
        lambda: queries.append(
            start_silver_when_bronze_exists(spark, pipeline, tables, live, registry)
        )
    )
    starter.shutdown(wait=False)
    result = DemoResult()
    started = time.perf_counter()
    try:
        first_half = options.events // 2
        phases = ((BEFORE_V3_MIX, first_half), (AFTER_V3_MIX, options.events - first_half))
        for number, (mix, count) in enumerate(phases):
            if number == 1:
                # Let silver commit rows read with v2 first, so v3 visibly arrives mid-stream.
                wait_until(
                    lambda: tables.silver.exists(spark) and not tables.silver.read(spark).isEmpty(),
                    "silver's first rows",
                    queries,
                    starting=silver_started,
                )
                register(registry, subject, versions[3])
            available = [v for n, v in sorted(versions.items()) if n <= 2 + number]
            summary = run_produce(
                connection,
                available,
                ProduceOptions(
                    count=count,
                    rate=options.rate,
                    seed=options.seed + number,
                    mix=parse_mix(mix),
                    register=False,
                    manifest=options.out_dir / f"manifest-phase{number + 1}.jsonl",
                ),
                registry=registry,
            )
            result.produced += summary.sent
        result.bad_records = inject_bad_records(connection)
        wait_for_catch_up(
            spark, tables, result.produced + result.bad_records, queries, options.catch_up_timeout_s
        )
        result.seconds = time.perf_counter() - started
    finally:
        for query in reversed(queries):
            query.stop()
    run_gold(spark, space, [pipeline], TriggerSettings())
    return summarize(spark, tables, spec, result, options)


def summarize(
    spark: SparkSession,
    tables: TableLocations,
    spec: GoldSpec,
    result: DemoResult,
    options: DemoOptions,
) -> DemoResult:
    """Counts of every table, gold printed and drawn by its spec's groups; ``gold_events`` sums
    the spec's ``count`` aggregate (the example's ``events``)."""
    assert tables.gold is not None
    silver = tables.silver.read(spark)
    gold = tables.gold.read(spark)
    counted = [a.name for a in spec.aggregates if a.function is Function.COUNT]
    if not counted:
        raise ConfigError(f"the demo sums gold's count aggregate: {spec.table} has none")
    result.bronze = tables.bronze.read(spark).count()
    result.silver = silver.count()
    result.per_version = {
        int(r.schema_version): int(r["count"])
        for r in silver.groupBy("schema_version").count().collect()
    }
    quarantine = tables.quarantine.read(spark).groupBy("reason").count().collect()
    result.quarantine_reasons = {r.reason: int(r["count"]) for r in quarantine}
    total = gold.agg(F.sum(counted[0])).first()
    result.gold_events = int((total[0] if total else 0) or 0)
    gold.orderBy("event_date", *spec.group_by).show(200, truncate=False)
    result.chart = report.draw(
        report.gold_breakdowns(gold, spec.group_by, counted[0]),
        report.versions_over_time(silver),
        options.out_dir / "demo.png",
        f"avrolake demo ({options.flavor.value}): {result.silver:,} events in silver",
    )
    return result
