"""Bronze rows → silver rows and quarantine rows, decoded in one pass.

Every row is decoded with its own writer schema *resolved to the reader schema* (the latest
registered version) by Apache Avro itself: ``from_avro(payload, writer, {"avroSchema": reader})``.
Avro's resolution is the only implementation of Avro's rules here — defaults of every type,
aliases, promotions, enum defaults — nothing below re-implements them. All branches share the
reader's type, so one CASE over ``schema_ref`` decodes a micro-batch of mixed versions in a
single projection.

A record is only good if Avro consumed *exactly* its bytes. Spark's decoder reads one datum and
ignores what follows, so each payload is decoded inside an envelope record
``{value: <schema>, end: fixed(16)}`` with a random 16-byte sentinel appended: the sentinel comes
back in ``end`` only when the record ended where the payload ended (trailing bytes or a truncated
record shift it). Strings are checked for valid UTF-8, which the JVM decoder does not do.

What the fields *mean* comes from the record type's definition (``avrolake.definitions``),
resolved against each reader into ``Roles``: the dedupe key (reader fields, or the Kafka
coordinates), the event time (a reader field, or the Kafka timestamp) and the partition columns.

Rows that cannot be decoded get a ``quarantine_reason`` instead. Everything here is a pure
DataFrame transformation; ``silver_io`` does the reading and the writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DataType,
    IntegralType,
    MapType,
    NumericType,
    StringType,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from avrolake import wire
from avrolake.definitions import EVENT_DATE, RecordDefinition, TimeUnit
from avrolake.errors import PipelineError
from avrolake.registry import RegisteredSchema

ALIASES_METADATA = "avrolake.aliases"  # column metadata: the Avro field's aliases

COORDINATES = ("topic", "partition", "offset")
METADATA_COLUMNS = (
    "event_time",
    EVENT_DATE,
    "schema_version",
    "schema_ref",
    "wire_format",
    *COORDINATES,
    "kafka_timestamp",
    "ingested_at",
)
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

# Bigger than any Kafka record needs; caps what a zlib bomb can inflate to in a Python worker.
MAX_INFLATED_BYTES = 64 * 1024 * 1024
# Event times Spark can hold (0001-01-01 … 9999-12-31): outside them a cast would fail the batch.
MIN_EVENT_SECONDS, MAX_EVENT_SECONDS = -62135596800, 253402300799

_ENVELOPE = "avrolake_envelope_b7d1e4"  # names no user schema plausibly has
_END = "avrolake_end_b7d1e4"
_RANK = "avrolake_rank_b7d1e4"
_PER_SECOND = {TimeUnit.SECONDS: 1, TimeUnit.MILLISECONDS: 1_000, TimeUnit.MICROSECONDS: 1_000_000}
_FROM_INTEGER = {
    TimeUnit.SECONDS: F.timestamp_seconds,
    TimeUnit.MILLISECONDS: F.timestamp_millis,
    TimeUnit.MICROSECONDS: F.timestamp_micros,
}
SENTINEL_BYTES = 16
_NOT_AT_END = (
    "the Avro record does not end where the value ends (trailing or missing bytes) for schema ref "
)


@dataclass(frozen=True)
class Roles:
    """A record definition's roles as columns of one reader.

    ``key``: the reader fields silver deduplicates by, () for the Kafka coordinates;
    ``event_time``: the reader field of the event time (a number in ``unit``, or a timestamp
    logical type), None for the Kafka timestamp; ``partition_by``: silver's partition columns.
    ``Roles()`` is a record type defined by nothing but its table.
    """

    key: tuple[str, ...] = ()
    event_time: str | None = None
    unit: TimeUnit = TimeUnit.SECONDS
    partition_by: tuple[str, ...] = (EVENT_DATE,)

    @property
    def dedupe_columns(self) -> tuple[str, ...]:
        return self.key or COORDINATES

    @property
    def times_identify(self) -> bool:
        """Whether two records with one dedupe key always have one event time: a re-sent event
        carries its event-time field, one Kafka record has one timestamp. Only then may the
        dedupe MERGE look for a key among the rows of the same event time."""
        return self.event_time is not None or not self.key

    @classmethod
    def of(cls, record: RecordDefinition, reader: RegisteredSchema, record_type: DataType) -> Roles:
        """``record``'s roles in ``reader`` (``record_type``: its Spark type, see
        ``reader_type``). Each field is found by name, else by Avro alias, so a renamed field keeps
        its role. ``PipelineError`` for what silver cannot store or find."""
        fields = reader_fields(reader)
        metadata = {c.lower(): c for c in METADATA_COLUMNS}
        for f in fields:  # Spark resolves names case-insensitively: ``Topic`` clashes too
            if f["name"].lower() in metadata:
                raise PipelineError(
                    f"reader v{reader.version} (schema ref {reader.ref}) has a field "
                    f"{f['name']!r}, but silver's metadata column {metadata[f['name'].lower()]!r} "
                    "has that name: rename the field (an Avro alias keeps it readable)"
                )

        def find(name: str, role: str) -> str:
            for f in fields:
                if f["name"] == name:
                    return name
            for f in fields:
                if name in f.get("aliases", []):
                    return str(f["name"])
            raise PipelineError(
                f"{role} field {name!r} is not in reader v{reader.version} (schema ref "
                f"{reader.ref}), by name or alias: fix the pipeline definition or the schema"
            )

        event_time = None
        if record.event_time is not None:
            event_time = find(record.event_time.field, "event_time")
            assert isinstance(record_type, StructType)
            data_type = record_type[event_time].dataType
            if not isinstance(data_type, NumericType | TimestampType | TimestampNTZType):
                raise PipelineError(
                    f"event_time field {event_time!r} of reader v{reader.version} is "
                    f"{data_type.simpleString()}: it must be a number (in event_time.unit) or a "
                    "timestamp logical type"
                )
        key = tuple(find(name, "key") for name in record.key)
        partition_by = tuple(
            name if name in METADATA_COLUMNS else find(name, "partition_by")
            for name in record.partition_by
        )
        assert isinstance(record_type, StructType)
        # what Spark would refuse only inside the first batch, with an analysis trace
        for role, names, refused in (
            ("key", key, lambda t: _contains(t, MapType)),  # maps cannot be compared
            (
                "partition_by",
                partition_by,
                lambda t: isinstance(t, StructType | ArrayType | MapType),
            ),
        ):
            for name in names:
                if name in record_type.fieldNames() and refused(record_type[name].dataType):
                    raise PipelineError(
                        f"{role} field {name!r} of reader v{reader.version} is "
                        f"{record_type[name].dataType.simpleString()}: silver cannot use it as "
                        f"{'a key' if role == 'key' else 'a partition column'}"
                    )
        return cls(
            key=key,
            event_time=event_time,
            unit=record.event_time.unit if record.event_time else TimeUnit.SECONDS,
            partition_by=partition_by,
        )


def _contains(data_type: DataType, kind: type) -> bool:
    if isinstance(data_type, kind):
        return True
    if isinstance(data_type, StructType):
        return any(_contains(f.dataType, kind) for f in data_type.fields)
    if isinstance(data_type, ArrayType):
        return _contains(data_type.elementType, kind)
    if isinstance(data_type, MapType):
        return _contains(data_type.keyType, kind) or _contains(data_type.valueType, kind)
    return False


@dataclass(frozen=True)
class BatchSchemas:
    """The schemas one micro-batch is decoded with.

    ``writers`` by wire reference; refs that cannot be used are absent from it and, when the
    reason is known, in ``unusable`` (unknown to the registry, another subject's, unreadable by
    the reader). ``wire_format`` is the framing of the topic's registry; frames of the other flavor
    are quarantined without asking the registry. ``roles``: the record type's roles in ``reader``.
    """

    reader: RegisteredSchema
    writers: Mapping[str, RegisteredSchema]
    wire_format: wire.WireFormat = wire.WireFormat.CONFLUENT
    unusable: Mapping[str, str] = field(default_factory=dict)
    roles: Roles = Roles()


def new_sentinel() -> bytes:
    """A fresh random end marker: a record cannot be crafted to fake it."""
    return os.urandom(SENTINEL_BYTES)


def envelope(schema_str: str) -> str:
    """``schema_str`` as the first field of a record whose second field is the end marker.

    The envelope has no namespace, so names inside the schema resolve exactly as they would at the
    top level; the binary encoding of a record is the concatenation of its fields.
    """
    return json.dumps(
        {
            "type": "record",
            "name": _ENVELOPE,
            "fields": [
                {"name": "value", "type": json.loads(schema_str)},
                {"name": "end", "type": {"type": "fixed", "name": _END, "size": SENTINEL_BYTES}},
            ],
        }
    )


def reader_fields(reader: RegisteredSchema) -> list[dict]:
    """The reader's top-level fields (name, aliases, …) as parsed JSON."""
    schema = json.loads(reader.schema_str)
    if not isinstance(schema, dict) or schema.get("type") != "record":
        # a silver table's columns are a record's fields: one line, not a KeyError trace
        raise PipelineError(
            f"reader v{reader.version} (schema ref {reader.ref}) is not a record schema: "
            "silver stores the fields of record schemas only"
        )
    return list(schema["fields"])


def reader_field_names(reader: RegisteredSchema) -> list[str]:
    return [f["name"] for f in reader_fields(reader)]


def reader_type(spark: SparkSession, reader: RegisteredSchema) -> DataType:
    """The Spark type Avro's reader ``reader`` decodes to (analysis only: no job runs)."""
    probe = spark.range(0).select(from_avro(F.lit(None).cast("binary"), reader.schema_str))
    return probe.schema.fields[0].dataType


def fingerprint(reader: RegisteredSchema) -> str:
    """Identifies a reader by everything resolution depends on — defaults, aliases and docs
    included, so unlike Avro's parsing canonical form a changed default is a new reader."""
    normalized = json.dumps(json.loads(reader.schema_str), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(normalized.encode()).hexdigest()


def _inflate(body: bytes | None) -> bytes | None:
    """zlib bodies of compressed Glue records; Spark has no zlib expression. A corrupt body, one
    inflating past ``MAX_INFLATED_BYTES`` or one with bytes after its zlib stream becomes NULL:
    the decoder turns it into a reason."""
    if body is None:
        return None
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error:
        return None
    # too big, cut short, or bytes after the zlib stream (not part of any record)
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        return None
    return out


def _payload(has_compressed: bool) -> Column:
    value, wire_format = F.col("value"), F.col("wire_format")
    payload = wire.spark_payload(value, wire_format)
    if not has_compressed:  # skip the Python UDF entirely for the common, uncompressed case
        return payload
    inflate = F.udf(_inflate, BinaryType())
    return F.when(wire.spark_is_compressed(value, wire_format), inflate(payload)).otherwise(payload)


def has_strings(data_type: DataType) -> bool:
    if isinstance(data_type, StringType):
        return True
    if isinstance(data_type, StructType):
        return any(has_strings(f.dataType) for f in data_type.fields)
    if isinstance(data_type, ArrayType):
        return has_strings(data_type.elementType)
    if isinstance(data_type, MapType):
        return has_strings(data_type.keyType) or has_strings(data_type.valueType)
    return False


def valid_utf8(column: Column, data_type: DataType) -> Column:
    """True when every string inside ``column`` is valid UTF-8 (NULLs count as valid). The JVM
    decoder copies string bytes without checking them; Parquet would store them as they are."""
    if not has_strings(data_type):
        return F.lit(True)
    if isinstance(data_type, StringType):
        return F.coalesce(F.is_valid_utf8(column), F.lit(True))
    if isinstance(data_type, StructType):
        checks = [
            valid_utf8(column.getField(f.name), f.dataType)
            for f in data_type.fields
            if has_strings(f.dataType)
        ]
        return reduce(lambda a, b: a & b, checks)
    if isinstance(data_type, ArrayType):
        return _every_valid(column, data_type.elementType)
    assert isinstance(data_type, MapType)
    checks = [
        _every_valid(part, part_type)
        for part, part_type in ((F.map_keys(column), data_type.keyType),
                                (F.map_values(column), data_type.valueType))
        if has_strings(part_type)
    ]  # fmt: skip
    return reduce(lambda a, b: a & b, checks)


def _every_valid(elements: Column, element_type: DataType) -> Column:
    """``valid_utf8`` of every element of an array column (Spark lambdas take one argument)."""
    return F.coalesce(
        F.forall(elements, lambda element: valid_utf8(element, element_type)), F.lit(True)
    )


def decode(
    bronze: DataFrame,
    schemas: BatchSchemas,
    *,
    sentinel: bytes,
    has_compressed: bool = False,
) -> DataFrame:
    """Bronze columns plus ``record`` (the reader's value), ``schema_version`` and
    ``quarantine_reason`` (NULL for a good row)."""
    options = {"avroSchema": envelope(schemas.reader.schema_str), "mode": "PERMISSIVE"}
    framed = F.concat(F.col("_payload"), F.lit(sentinel))
    ref = F.col("schema_ref")
    decoded: Column | None = None
    version: Column | None = None
    for schema_ref, writer in sorted(schemas.writers.items()):
        branch = from_avro(framed, envelope(writer.schema_str), options)
        matches = ref == schema_ref
        decoded = F.when(matches, branch) if decoded is None else decoded.when(matches, branch)
        number = F.lit(writer.version)
        version = F.when(matches, number) if version is None else version.when(matches, number)
    if decoded is None:  # no usable writer in this batch: every row is quarantined below, but
        # the column still needs the reader's type
        reader_envelope = envelope(schemas.reader.schema_str)
        decoded = F.when(F.lit(False), from_avro(framed, reader_envelope, options))
        version = F.lit(None)
    assert version is not None

    with_record = (
        bronze.withColumn("_payload", _payload(has_compressed))
        .withColumn("_envelope", decoded)
        .withColumn("record", F.col("_envelope.value"))
        .withColumn("schema_version", version.cast("int"))
    )
    record_type = with_record.schema["record"].dataType
    strings_ok = valid_utf8(F.col("record"), record_type) if has_strings(record_type) else None
    checked, in_range, event_time = _event_time(schemas.roles, record_type)
    return (
        with_record.withColumn(
            "quarantine_reason",
            _reason(schemas, sentinel, strings_ok, checked, in_range),
        )
        .withColumn("event_time", event_time)
        .drop("_payload", "_envelope")
    )


def _event_time(roles: Roles, record_type: DataType) -> tuple[Column | None, Column, Column]:
    """The event-time value silver checks, whether it is in the range Spark can hold, and the
    event time (NULL outside it: a conversion there would fail the whole batch)."""
    if roles.event_time is None:
        # a broker that accepts any CreateTime (message.timestamp.after.max.ms = Long.MAX) can
        # carry year 10000: Python (the MERGE's literals, the collected dates) cannot hold it
        seconds = F.unix_seconds(F.col("timestamp"))
        in_range = seconds.between(MIN_EVENT_SECONDS, MAX_EVENT_SECONDS)
        return seconds, in_range, F.when(in_range, F.col("timestamp"))
    assert isinstance(record_type, StructType)
    value = F.col("record").getField(roles.event_time)
    data_type = record_type[roles.event_time].dataType
    if isinstance(data_type, TimestampType | TimestampNTZType):
        # a timestamp logical type can still hold a year Python (and the MERGE's literals)
        # cannot: year 50000 must go to quarantine, not fail every replay of the batch
        seconds = F.unix_seconds(value.cast("timestamp"))
        in_range = seconds.between(MIN_EVENT_SECONDS, MAX_EVENT_SECONDS)
        return seconds, in_range, F.when(in_range, value.cast("timestamp"))
    per_second = _PER_SECOND[roles.unit]
    # in ``unit``: from the first microsecond of year 1 to the last of 9999
    in_range = (value >= MIN_EVENT_SECONDS * per_second) & (
        value < (MAX_EVENT_SECONDS + 1) * per_second
    )
    if isinstance(data_type, IntegralType):  # exact, whatever the unit
        time = _FROM_INTEGER[roles.unit](value.cast("long"))
    else:  # a fraction: to the microsecond, Spark's resolution
        micros = F.round(value * (_PER_SECOND[TimeUnit.MICROSECONDS] // per_second))
        # rounding can carry the last fraction of 9999 into year 10000
        last = (MAX_EVENT_SECONDS + 1) * _PER_SECOND[TimeUnit.MICROSECONDS] - 1
        in_range = in_range & (micros <= last)
        time = F.timestamp_micros(micros.cast("long"))
    return value, in_range, F.when(in_range, time)


def _reason(
    schemas: BatchSchemas,
    sentinel: bytes,
    strings_ok: Column | None,
    event_time: Column | None,
    in_range: Column,
) -> Column:
    ref = F.col("schema_ref")
    wire_format = F.col("wire_format")
    # hex of an empty value is "", not NULL
    first_byte = F.when(F.length("value") == 0, F.lit("(empty)")).otherwise(
        F.hex(F.substring("value", 1, 1))
    )
    expected = schemas.wire_format.value
    reason = (
        F.when(F.col("value").isNull(), F.lit("null value"))
        .when(
            (wire_format == wire.WireFormat.UNKNOWN.value)
            & wire.spark_value_schema_id_header(F.col("headers")).isNotNull(),
            F.lit(f"malformed {wire.VALUE_SCHEMA_ID_HEADER} header"),
        )
        .when(
            wire_format == wire.WireFormat.UNKNOWN.value,
            F.concat(F.lit("unknown wire format: first byte 0x"), first_byte),
        )
        .when(
            wire.spark_flavor(wire_format) != expected,
            F.concat(wire_format, F.lit(f" framing on a {expected} topic: schema ref "), ref),
        )
    )
    for schema_ref, why in sorted(schemas.unusable.items()):
        reason = reason.when(ref == schema_ref, F.lit(why))
    reason = (
        reason.when(~ref.isin(list(schemas.writers)), F.concat(F.lit("unknown schema ref "), ref))
        .when(
            F.col("_payload").isNull(),
            F.concat(F.lit("corrupt or oversized compressed body for schema ref "), ref),
        )
        .when(
            # PERMISSIVE turns a record Avro cannot read into a struct of NULLs; ``end`` is never
            # NULL in a record it read
            F.col("_envelope.end").isNull(),
            F.concat(F.lit("corrupt or truncated Avro for schema ref "), ref),
        )
        .when(F.col("_envelope.end") != F.lit(sentinel), F.concat(F.lit(_NOT_AT_END), ref))
    )
    if strings_ok is not None:
        reason = reason.when(
            ~strings_ok, F.concat(F.lit("invalid UTF-8 in a string for schema ref "), ref)
        )
    roles = schemas.roles
    for name in roles.key:
        reason = reason.when(F.col("record").getField(name).isNull(), F.lit(f"null {name}"))
    if event_time is not None:
        field_name = roles.event_time or "Kafka timestamp"
        reason = reason.when(event_time.isNull(), F.lit(f"null {field_name}")).when(
            ~in_range, F.concat(F.lit(f"{field_name} out of range: "), event_time.cast("string"))
        )
    return reason


def silver_rows(
    decoded: DataFrame, reader: RegisteredSchema, roles: Roles | None = None
) -> DataFrame:
    """Good rows, flattened to the reader's fields (each column's metadata carries the field's
    Avro aliases) plus event time and Kafka coordinates, deduplicated by ``roles``' key within
    the batch (the earliest Kafka offset wins). ``roles`` must be those ``decoded`` was decoded
    with."""
    roles = roles or Roles()
    fields = [
        F.col("record")
        .getField(f["name"])
        .alias(f["name"], metadata={ALIASES_METADATA: list(f.get("aliases", []))})
        for f in reader_fields(reader)
    ]
    # the same identity as the MERGE's: a key with its event-time field names one event, so a
    # re-stamped event is another one here too (else batch boundaries would decide what is kept)
    identity = roles.dedupe_columns
    if roles.key and roles.event_time is not None:
        identity = (*roles.key, "event_time")
    first_seen = Window.partitionBy(*identity).orderBy(*COORDINATES)
    return (
        decoded.where(F.col("quarantine_reason").isNull())
        .select(
            *fields,
            "event_time",
            "schema_version",
            "schema_ref",
            "wire_format",
            *COORDINATES,
            F.col("timestamp").alias("kafka_timestamp"),
            "ingested_at",
        )
        .withColumn(EVENT_DATE, F.to_date("event_time"))
        .withColumn(_RANK, F.row_number().over(first_seen))
        .where(F.col(_RANK) == 1)
        .drop(_RANK)
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
