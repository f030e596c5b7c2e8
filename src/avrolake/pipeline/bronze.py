"""Kafka records → bronze rows: the raw bytes and coordinates, plus the parsed header.

Bronze keeps the record exactly as it arrived so anything downstream can be replayed; the header
is parsed here once, on the JVM, by the expressions of ``avrolake.wire``.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from avrolake import wire

BRONZE_COLUMNS = (
    "key",
    "value",
    "topic",
    "partition",
    "offset",
    "timestamp",
    "timestampType",
    "headers",
    "wire_format",
    "schema_ref",
    "ingested_at",
)


def to_bronze(kafka_records: DataFrame) -> DataFrame:
    """Add ``wire_format``, ``schema_ref`` and ``ingested_at`` to the Kafka source's columns."""
    value, headers = F.col("value"), F.col("headers")
    wire_format = wire.spark_wire_format(value, headers)
    return (
        kafka_records.withColumn("wire_format", wire_format)
        .withColumn("schema_ref", wire.spark_schema_ref(value, F.col("wire_format"), headers))
        .withColumn("ingested_at", F.current_timestamp())
        .select(*BRONZE_COLUMNS)
    )
