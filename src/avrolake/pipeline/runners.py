"""The I/O of each stage: read a stream, apply the stage's pure transformations, write or MERGE.

Every ``run_*`` function takes the Spark session and settings and returns the started
``StreamingQuery``; the caller decides whether to wait (``awaitTermination``) or stop it.
"""

from __future__ import annotations

import json
import logging
import operator
from concurrent.futures import ThreadPoolExecutor
from functools import reduce
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from avrolake import wire
from avrolake.errors import ConfigError, SchemaNotFoundError
from avrolake.pipeline import bronze, gold, silver
from avrolake.pipeline.tables import TableLocations, TableRef
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.registry import RegisteredSchema, SchemaRegistry, open_registry
from avrolake.settings import ConnectionSettings, on_databricks

if TYPE_CHECKING:
    from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

log = logging.getLogger(__name__)


def _start(writer: DataStreamWriter, table: TableRef) -> StreamingQuery:
    return writer.toTable(table.name) if table.name else writer.start(table.path)


def validate_starting_offsets(value: str) -> str:
    """``earliest``, ``latest`` or per-partition JSON like ``{"products": {"0": 42, "1": -2}}``."""
    if value in ("earliest", "latest"):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    valid = isinstance(parsed, dict) and all(
        isinstance(partitions, dict) and all(isinstance(o, int) for o in partitions.values())
        for partitions in parsed.values()
    )
    if not valid:
        raise ConfigError(
            f"--starting-offsets {value!r} is not earliest, latest or JSON like "
            '{"topic": {"0": 42, "1": -2}}'
        )
    return value


# --- ingest: Kafka → bronze ------------------------------------------------------------------


def run_ingest(
    spark: SparkSession,
    connection: ConnectionSettings,
    locations: TableLocations,
    trigger: TriggerSettings,
    *,
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
) -> StreamingQuery:
    from avrolake.connection import spark_kafka_options

    reader = (
        spark.readStream.format("kafka")
        .options(**spark_kafka_options(connection.kafka, databricks=on_databricks()))
        .option("startingOffsets", validate_starting_offsets(starting_offsets))
        .option("includeHeaders", "true")
    )
    if max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    writer = (
        bronze.to_bronze(reader.load())
        .writeStream.format("delta")
        .queryName("avrolake-ingest")
        .outputMode("append")
        .option("checkpointLocation", locations.checkpoint("bronze"))
    )
    return _start(trigger.apply(writer), locations.bronze)


# --- silver: bronze → silver + quarantine ----------------------------------------------------


def _create_if_missing(table: TableRef, empty: DataFrame, partition_by: str | None = None) -> None:
    spark = empty.sparkSession
    if table.exists(spark):
        return
    writer = empty.limit(0).write.format("delta")
    if partition_by:
        writer = writer.partitionBy(partition_by)
    if table.name:
        writer.saveAsTable(table.name)
    else:
        writer.save(table.path)


def merge_silver(table: TableRef, rows: DataFrame) -> None:
    """Insert events whose ``eventId`` silver does not have yet; new reader fields become new
    columns (schema evolution). A replayed batch inserts nothing: exactly-once by key."""
    _create_if_missing(table, rows, partition_by="event_date")
    dates = [r.event_date for r in rows.select("event_date").distinct().collect()]
    if not dates:
        return
    # The same event always has the same event time, so the match can stay inside the batch's
    # dates: Delta prunes every other partition instead of scanning all of silver.
    date_list = ", ".join(f"DATE'{d.isoformat()}'" for d in dates)
    condition = (
        f"t.event_date IN ({date_list}) AND t.event_date = s.event_date "
        f"AND t.{silver.EVENT_KEY} = s.{silver.EVENT_KEY}"
    )
    (
        table.delta(rows.sparkSession)
        .alias("t")
        .merge(rows.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .withSchemaEvolution()
        .execute()
    )


FILLED_PROPERTY = "avrolake.defaultsFilled"


def fill_defaults(spark: SparkSession, table: TableRef, reader: RegisteredSchema) -> None:
    """Give rows written before a field existed that field's default, as Avro resolution would.

    Schema evolution adds a new reader field as a column that is NULL in older rows; each field
    with a non-null default is backfilled once (an UPDATE of the rows where it is NULL), then
    recorded in a table property. A crash in between only repeats the idempotent UPDATE.
    """
    delta = table.delta(spark)
    properties = delta.detail().first().properties or {}
    filled = set(filter(None, properties.get(FILLED_PROPERTY, "").split(",")))
    pending = {k: v for k, v in silver.reader_defaults(spark, reader).items() if k not in filled}
    if not pending:
        return
    types = {field.name: field.dataType for field in delta.toDF().schema}
    # One UPDATE (one commit, one rewrite of the affected files) for all pending fields.
    missing = reduce(operator.or_, (F.col(name).isNull() for name in pending))
    delta.update(
        missing,
        {name: F.coalesce(F.col(name), F.lit(v).cast(types[name])) for name, v in pending.items()},
    )
    names = ",".join(sorted(filled | set(pending)))
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('{FILLED_PROPERTY}' = '{names}')")
    log.info("silver: defaults of %s filled where rows predate them", ", ".join(pending))


def merge_quarantine(table: TableRef, rows: DataFrame) -> None:
    """Insert bad records by Kafka coordinates, so a replayed batch adds no second copy."""
    _create_if_missing(table, rows)
    condition = " AND ".join(f"t.`{c}` = s.`{c}`" for c in silver.COORDINATES)
    (
        table.delta(rows.sparkSession)
        .alias("t")
        .merge(rows.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
    )


class SilverBatch:
    """The ``foreachBatch`` function of the silver stream.

    Per micro-batch: the distinct schema refs, their writer schemas (the registry client caches
    them), the reader schema = the latest version *now* (so a version registered while the stream
    runs becomes new columns at the next batch), one decoding pass, two MERGEs.
    """

    def __init__(self, registry: SchemaRegistry, topic: str, locations: TableLocations) -> None:
        self.registry = registry
        self.topic = topic
        self.locations = locations
        self._defaults_filled_for: str | None = None  # reader ref whose defaults silver has

    def schemas_for(self, refs: list[str]) -> silver.BatchSchemas:
        writers: dict[str, RegisteredSchema] = {}
        for ref in refs:
            try:
                writers[ref] = self.registry.by_ref(ref, self.topic)
            except SchemaNotFoundError:  # its rows go to quarantine; an outage still raises
                log.warning("schema ref %s is not in the registry; quarantining its rows", ref)
        # Asked after the writers, so it is at least as new as any of this topic's writers.
        return silver.BatchSchemas(reader=self.registry.latest(self.topic), writers=writers)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        batch = batch.persist()
        try:
            compressed = wire.spark_is_compressed(F.col("value"), F.col("wire_format"))
            stats = (
                batch.where(F.col("schema_ref").isNotNull())
                .groupBy("schema_ref")
                .agg(F.max(compressed.cast("int")).alias("compressed"))
                .collect()
            )
            schemas = self.schemas_for([row.schema_ref for row in stats])
            has_compressed = any(row.compressed for row in stats)
            decoded = silver.decode(batch, schemas, has_compressed=has_compressed).persist()
            try:
                merge_silver(self.locations.silver, silver.silver_rows(decoded, schemas.reader))
                if self._defaults_filled_for != schemas.reader.ref:
                    # Delta's UPDATE analysis recurses deeply, and py4j runs calls made from
                    # foreachBatch on the stream's own, already deep, JVM thread: a fresh Python
                    # thread gets a fresh JVM thread (pinned-thread mode) with a whole stack.
                    with ThreadPoolExecutor(max_workers=1) as fresh_thread:
                        fresh_thread.submit(
                            fill_defaults, batch.sparkSession, self.locations.silver, schemas.reader
                        ).result()
                    self._defaults_filled_for = schemas.reader.ref
                bad = silver.quarantine_rows(decoded)
                merge_quarantine(self.locations.quarantine, bad)
                if log.isEnabledFor(logging.INFO):  # the counts are Spark jobs
                    log.info(
                        "silver batch %d: %d records, reader v%d, %d quarantined",
                        batch_id,
                        decoded.count(),
                        schemas.reader.version,
                        bad.count(),
                    )
            finally:
                decoded.unpersist()
        finally:
            batch.unpersist()


def run_silver(
    spark: SparkSession,
    connection: ConnectionSettings,
    locations: TableLocations,
    trigger: TriggerSettings,
    *,
    registry: SchemaRegistry | None = None,
) -> StreamingQuery:
    locations.bronze.require(spark, "ingest")
    batch_writer = SilverBatch(
        registry or open_registry(connection.registry), connection.kafka.topic, locations
    )
    stream = locations.bronze.read_stream(spark).where(F.col("topic") == connection.kafka.topic)
    writer = (
        stream.writeStream.queryName("avrolake-silver")
        .foreachBatch(batch_writer)
        .option("checkpointLocation", locations.checkpoint("silver"))
    )
    return trigger.apply(writer).start()


# --- gold: silver → aggregates ---------------------------------------------------------------


def merge_gold(spark: SparkSession, locations: TableLocations, silver_batch: DataFrame) -> None:
    fresh = gold.recompute(locations.silver.read(spark), gold.touched_groups(silver_batch))
    _create_if_missing(locations.gold, fresh)
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in gold.GROUP_KEYS)
    (
        locations.gold.delta(spark)
        .alias("t")
        .merge(fresh.alias("s"), condition)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def run_gold(
    spark: SparkSession, locations: TableLocations, trigger: TriggerSettings
) -> StreamingQuery:
    locations.silver.require(spark, "silver")
    writer = (
        locations.silver.read_stream(spark)
        .writeStream.queryName("avrolake-gold")
        .foreachBatch(lambda batch, _batch_id: merge_gold(spark, locations, batch))
        .option("checkpointLocation", locations.checkpoint("gold"))
    )
    return trigger.apply(writer).start()
