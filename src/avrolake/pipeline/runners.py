"""The I/O of each stage: read a stream, apply the stage's pure transformations, write or MERGE.

Every ``run_*`` function takes the Spark session and settings and returns the started
``StreamingQuery``; the caller decides whether to wait (``awaitTermination``) or stop it.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from avrolake.errors import ConfigError
from avrolake.pipeline import bronze
from avrolake.pipeline.silver_io import SilverBatch
from avrolake.pipeline.tables import BRONZE, TableLocations, TableRef, TableSpace
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.registry import SchemaRegistry
from avrolake.settings import DEFAULT_OUTAGE_TIMEOUT_S, KafkaSettings, on_databricks

if TYPE_CHECKING:
    from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

    from avrolake.definitions import PipelineDefinition

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
    kafka: KafkaSettings,
    locations: TableLocations,
    trigger: TriggerSettings,
    *,
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
) -> StreamingQuery:
    """Start the stream of ``kafka.topic`` (one topic, or several comma-separated: Spark's
    ``subscribe`` takes the list) into bronze, every topic's records in one table."""
    from avrolake.connection import spark_kafka_options

    reader = (
        spark.readStream.format("kafka")
        .options(**spark_kafka_options(kafka, databricks=on_databricks()))
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


def run_silver(
    spark: SparkSession,
    pipeline: PipelineDefinition,
    registry: SchemaRegistry,
    space: TableSpace,
    trigger: TriggerSettings,
    *,
    outage_timeout_s: float = DEFAULT_OUTAGE_TIMEOUT_S,
) -> StreamingQuery:
    """Start the silver stream of ``pipeline``: its topic's bronze rows, each decoded as its record
    type with ``registry``'s schemas, into the type's silver table (bad records into the
    pipeline's quarantine). Before it starts, every silver table is brought to its latest reader,
    so a scheduled run applies a newly registered version even when no new record arrived. Silver
    never talks to Kafka."""
    bronze_table = space.table(BRONZE)
    bronze_table.require(spark, "ingest")
    batch_writer = SilverBatch.for_pipeline(pipeline, registry, space, outage_timeout_s)
    batch_writer.bring_to_readers(spark)
    stream = bronze_table.read_stream(spark).where(F.col("topic") == pipeline.topic)
    writer = (
        stream.writeStream.queryName(f"avrolake-silver-{pipeline.name}")
        .foreachBatch(batch_writer)
        .option("checkpointLocation", space.checkpoint("silver", pipeline.name))
    )
    return trigger.apply(writer).start()
