"""Bronze rows → silver rows and quarantine rows, decoded in one pass.

Every row is decoded with its own writer schema *resolved to the reader schema* (the latest
registered version): ``from_avro(payload, writer, {"avroSchema": reader})``. All branches then
share the reader's type, so one CASE over ``schema_ref`` decodes a whole micro-batch of mixed
versions in a single projection, and old rows carry the new fields' defaults (a v1 row has
``size = "none"``, not NULL). Rows that cannot be decoded get a ``quarantine_reason`` instead.

Everything here is a pure DataFrame transformation; ``runners`` does the reading and MERGEs.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro
from pyspark.sql.types import BinaryType

from avrolake import wire
from avrolake.registry import RegisteredSchema

EVENT_KEY = "eventId"  # silver's primary key
# A field every version of the Product schema requires: NULL after decoding means the decoder
# gave up (PERMISSIVE mode turns a corrupt record into a struct of NULLs instead of failing).
REQUIRED_FIELD = "eventId"

COORDINATES = ("topic", "partition", "offset")
QUARANTINE_COLUMNS = (
    "key",
    "value",
    "topic",
    "partition",
    "offset",
    "kafka_timestamp",
    "wire_format",
    "schema_ref",
    "reason",
    "quarantined_at",
)


@dataclass(frozen=True)
class BatchSchemas:
    """The schemas one micro-batch is decoded with."""

    reader: RegisteredSchema
    writers: Mapping[str, RegisteredSchema]  # by wire reference; refs the registry lacks are absent


def reader_field_names(reader: RegisteredSchema) -> list[str]:
    return [field["name"] for field in json.loads(reader.schema_str)["fields"]]


def reader_defaults(spark: SparkSession, reader: RegisteredSchema) -> dict[str, object]:
    """The non-null defaults of the reader's fields, as Spark values, computed by Avro itself:
    an empty record resolved to the reader's defaulted fields yields exactly their defaults."""
    schema = json.loads(reader.schema_str)
    defaulted = [field for field in schema["fields"] if "default" in field]
    if not defaulted:
        return {}
    empty_writer = {**schema, "fields": []}
    defaults_reader = {**schema, "fields": defaulted}
    decoded = from_avro(
        F.lit(b""), json.dumps(empty_writer), {"avroSchema": json.dumps(defaults_reader)}
    )
    row = spark.range(1).select(decoded.alias("defaults")).first()
    assert row is not None
    return {name: value for name, value in row.defaults.asDict().items() if value is not None}


def _inflate(body: bytes | None) -> bytes | None:
    """zlib bodies of compressed Glue records; Spark has no zlib expression. A corrupt body
    becomes NULL, which the decoder turns into a quarantine reason."""
    if body is None:
        return None
    try:
        return zlib.decompress(body)
    except zlib.error:
        return None


def _payload(has_compressed: bool) -> Column:
    value, wire_format = F.col("value"), F.col("wire_format")
    payload = wire.spark_payload(value, wire_format)
    if not has_compressed:  # skip the Python UDF entirely for the common, uncompressed case
        return payload
    inflate = F.udf(_inflate, BinaryType())
    return F.when(wire.spark_is_compressed(value, wire_format), inflate(payload)).otherwise(payload)


def decode(bronze: DataFrame, schemas: BatchSchemas, *, has_compressed: bool = False) -> DataFrame:
    """Bronze columns plus ``record`` (the reader's struct), ``schema_version`` and
    ``quarantine_reason`` (NULL for a good row)."""
    options = {"avroSchema": schemas.reader.schema_str, "mode": "PERMISSIVE"}
    ref = F.col("schema_ref")
    record: Column | None = None
    version: Column | None = None
    for schema_ref, writer in sorted(schemas.writers.items()):
        decoded = from_avro(F.col("_payload"), writer.schema_str, options)
        matches = ref == schema_ref
        record = F.when(matches, decoded) if record is None else record.when(matches, decoded)
        version = (
            F.when(matches, F.lit(writer.version))
            if version is None
            else version.when(matches, F.lit(writer.version))
        )
    if record is None:  # no known writer in this batch: every row is quarantined below, but the
        # column still needs the reader's type
        record = F.when(F.lit(False), from_avro(F.col("_payload"), schemas.reader.schema_str))
        version = F.lit(None)

    first_byte = F.coalesce(F.hex(F.substring("value", 1, 1)), F.lit("(empty)"))
    known_refs = list(schemas.writers)
    reason = (
        F.when(F.col("value").isNull(), F.lit("null value"))
        .when(
            F.col("wire_format") == wire.WireFormat.UNKNOWN.value,
            F.concat(F.lit("unknown wire format: first byte 0x"), first_byte),
        )
        .when(~ref.isin(known_refs), F.concat(F.lit("unknown schema ref "), ref))
        .when(
            F.col("_payload").isNull(),
            F.concat(F.lit("corrupt compressed body for schema ref "), ref),
        )
        .when(
            F.col("record").getField(REQUIRED_FIELD).isNull(),
            F.concat(F.lit("corrupt or truncated Avro for schema ref "), ref),
        )
    )
    return (
        bronze.withColumn("_payload", _payload(has_compressed))
        .withColumn("record", record)
        .withColumn("schema_version", version.cast("int"))
        .withColumn("quarantine_reason", reason)
        .drop("_payload")
    )


def silver_rows(decoded: DataFrame, reader: RegisteredSchema) -> DataFrame:
    """Good rows, flattened to the reader's fields plus event time and Kafka coordinates,
    deduplicated by ``eventId`` within the batch (the earliest Kafka offset wins)."""
    fields = [F.col("record").getField(name).alias(name) for name in reader_field_names(reader)]
    first_seen = Window.partitionBy(EVENT_KEY).orderBy(*COORDINATES)
    return (
        decoded.where(F.col("quarantine_reason").isNull())
        .select(
            *fields,
            F.timestamp_seconds(F.col("record.timestamp")).alias("event_time"),
            "schema_version",
            "schema_ref",
            "wire_format",
            *COORDINATES,
            F.col("timestamp").alias("kafka_timestamp"),
            "ingested_at",
        )
        .withColumn("event_date", F.to_date("event_time"))
        .withColumn("_rank", F.row_number().over(first_seen))
        .where(F.col("_rank") == 1)
        .drop("_rank")
    )


def quarantine_rows(decoded: DataFrame) -> DataFrame:
    """Rows that could not be decoded: raw bytes, coordinates, why, and when."""
    return decoded.where(F.col("quarantine_reason").isNotNull()).select(
        "key",
        "value",
        *COORDINATES,
        F.col("timestamp").alias("kafka_timestamp"),
        "wire_format",
        "schema_ref",
        F.col("quarantine_reason").alias("reason"),
        F.current_timestamp().alias("quarantined_at"),
    )
