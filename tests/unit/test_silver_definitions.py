"""Silver driven by a record definition other than the Product example's: the Kafka coordinates as
the key, event times in milliseconds or microseconds, a key of two fields, a key field renamed
through an alias, field names silver cannot store, and two record types of one topic routed to two
silver tables (and replayed there from the quarantine). Expected values come from fastavro."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, Row, SparkSession

from avro_oracle import as_collected, resolve, write
from avrolake import wire
from avrolake.definitions import EventTime, RecordDefinition, TimeUnit, parse_definitions
from avrolake.errors import PipelineError, SchemaNotFoundError
from avrolake.pipeline import bronze, silver, silver_io
from avrolake.pipeline.replay import ReplaySelection, ReplaySummary, replay_quarantine
from avrolake.pipeline.tables import TableRef, TableSpace
from avrolake.registry import RegisteredSchema, Subject, as_subject

KAFKA_TIME = dt.datetime(2026, 3, 1, 12, 0, 0)  # naive: PySpark reads and collects it locally
BRONZE_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, "
    "timestampType int, headers array<struct<key:string,value:binary>>"
)


def record_schema(name: str, *fields: dict) -> dict:
    return {"type": "record", "name": name, "namespace": "com.example", "fields": list(fields)}


def registered(ref: str, version: int, schema: dict) -> RegisteredSchema:
    return RegisteredSchema(ref, version, json.dumps(schema))


def bronze_frame(
    spark: SparkSession, values: list[bytes], offsets: list[int] | None = None, topic: str = "t"
) -> DataFrame:
    """Bronze rows of ``values`` at offsets 0, 1, … (or ``offsets``), each with the Kafka time
    KAFKA_TIME + its offset in seconds."""
    rows = [
        Row(key=None, value=v, topic=topic, partition=0, offset=offset,
            timestamp=KAFKA_TIME + dt.timedelta(seconds=offset), timestampType=0, headers=None)
        for v, offset in zip(values, offsets or range(len(values)), strict=True)
    ]  # fmt: skip
    return bronze.to_bronze(spark.createDataFrame(rows, BRONZE_SCHEMA))


def decoded_with(
    spark: SparkSession, frame: DataFrame, record: RecordDefinition, reader: RegisteredSchema,
    writers: list[RegisteredSchema],
) -> tuple[DataFrame, silver.Roles]:  # fmt: skip
    roles = silver.Roles.of(record, reader, silver.reader_type(spark, reader))
    schemas = silver.BatchSchemas(reader, {w.ref: w for w in writers}, roles=roles)
    return silver.decode(frame, schemas, sentinel=silver.new_sentinel()), roles


def reasons(decoded: DataFrame) -> list[tuple[int, str]]:
    rows = silver.quarantine_rows(decoded).orderBy("offset").collect()
    return [(r.offset, r.reason) for r in rows]


# --- the Kafka coordinates as the key; event time in milliseconds or microseconds ---------------


@pytest.mark.parametrize(
    ("unit", "logical", "value"),
    [
        (TimeUnit.MILLISECONDS, "timestamp-millis", 1_772_366_400_123),
        (TimeUnit.MICROSECONDS, "timestamp-micros", 1_772_366_400_123_456),
    ],
)
def test_coordinates_key_and_a_numeric_event_time_in_its_unit(
    spark: SparkSession, tmp_path: Path, unit: TimeUnit, logical: str, value: int
) -> None:
    click = record_schema(
        "Click", {"name": "page", "type": "string"}, {"name": "at", "type": ["null", "long"]}
    )
    reader = registered("1", 1, click)
    record = RecordDefinition(silver_table="clicks", event_time=EventTime(field="at", unit=unit))
    same = write(click, {"page": "/", "at": value})
    bodies = [same, same, write(click, {"page": "/b", "at": None}),
              write(click, {"page": "/c", "at": 2**62}), same]  # fmt: skip
    # offsets 0 and 1 are two Kafka records (both kept); offset 1 comes twice (one row)
    frame = bronze_frame(
        spark, [wire.frame_confluent(1, b) for b in bodies], offsets=[0, 1, 2, 3, 1]
    )
    decoded, roles = decoded_with(spark, frame, record, reader, [reader])
    assert roles == silver.Roles(event_time="at", unit=unit)
    assert reasons(decoded) == [(2, "null at"), (3, f"at out of range: {2**62}")]

    # the oracle: the same bytes read by fastavro as the unit's timestamp logical type
    as_time = record_schema(
        "Click",
        {"name": "page", "type": "string"},
        {"name": "at", "type": ["null", {"type": "long", "logicalType": logical}]},
    )
    expected_time = as_collected(resolve(same, click, as_time)["at"], as_time["fields"][1]["type"])
    table = TableRef(path=str(tmp_path / "clicks"))
    rows = silver.silver_rows(decoded, reader, roles)
    silver_io._create(table, rows, reader, roles)
    for _ in range(2):  # a replayed batch inserts nothing
        silver_io.merge_silver(table, rows, roles)
    got = table.read(spark).orderBy("offset").collect()
    assert [(r.offset, r.page, r.at, r.event_time) for r in got] == [
        (0, "/", value, expected_time),
        (1, "/", value, expected_time),
    ]
    assert str(got[0].event_date) == str(expected_time.date())


def test_without_an_event_time_field_the_kafka_timestamp_is_the_event_time(
    spark: SparkSession,
) -> None:
    reader = registered("1", 1, record_schema("Ping", {"name": "n", "type": "int"}))
    frame = bronze_frame(spark, [wire.frame_confluent(1, write(reader.schema_str, {"n": n}))
                                 for n in range(3)])  # fmt: skip
    record = RecordDefinition(silver_table="pings")
    decoded, roles = decoded_with(spark, frame, record, reader, [reader])
    rows = silver.silver_rows(decoded, reader, roles).orderBy("offset").collect()
    assert [(r.n, r.event_time, r.kafka_timestamp) for r in rows] == [
        (n, KAFKA_TIME + dt.timedelta(seconds=n), KAFKA_TIME + dt.timedelta(seconds=n))
        for n in range(3)
    ]


# --- a key of two fields ---------------------------------------------------------------------

SALE = record_schema(
    "Sale",
    {"name": "region", "type": "string"},
    {"name": "id", "type": ["null", "long"]},
    {"name": "ts", "type": "long"},
    {"name": "amount", "type": "long"},
)
SALE_V1 = registered("7", 1, SALE)


def sale(region: str, id_: int | None, amount: int) -> bytes:
    return write(SALE, {"region": region, "id": id_, "ts": 1_772_366_400, "amount": amount})


@pytest.mark.parametrize("event_time", [EventTime(field="ts"), None])
def test_a_key_of_two_fields_dedupes_by_both(
    spark: SparkSession, tmp_path: Path, event_time: EventTime | None
) -> None:
    """With the event time a field, or the Kafka timestamp (a re-send is then a new Kafka record
    with a new timestamp: the MERGE must still find the key)."""
    record = RecordDefinition(silver_table="sales", key=("region", "id"), event_time=event_time)
    first = [sale("eu", 1, 10), sale("us", 1, 20), sale("eu", 1, 99), sale("eu", None, 5)]
    frame = bronze_frame(spark, [wire.frame_confluent(7, b) for b in first])
    decoded, roles = decoded_with(spark, frame, record, SALE_V1, [SALE_V1])
    assert roles.key == ("region", "id")
    assert reasons(decoded) == [(3, "null id")]
    table = TableRef(path=str(tmp_path / "sales"))
    rows = silver.silver_rows(decoded, SALE_V1, roles)
    silver_io._create(table, rows, SALE_V1, roles)
    silver_io.merge_silver(table, rows, roles)

    second = [sale("eu", 1, 77), sale("eu", 2, 30)]  # a re-sent key, and a new one
    later = bronze_frame(spark, [wire.frame_confluent(7, b) for b in second], offsets=[10, 11])
    decoded, _ = decoded_with(spark, later, record, SALE_V1, [SALE_V1])
    silver_io.merge_silver(table, silver.silver_rows(decoded, SALE_V1, roles), roles)

    columns = ("region", "id", "amount", "offset")
    got = sorted(tuple(r) for r in table.read(spark).select(*columns).collect())
    # the earliest offset of each key wins: fastavro's reading of those bytes
    kept = {0: first[0], 1: first[1], 11: second[1]}
    expected = [{**resolve(body, SALE, SALE), "offset": o} for o, body in kept.items()]
    assert got == sorted(tuple(e[c] for c in columns) for e in expected)


# --- a key field renamed through an alias --------------------------------------------------------

ORDER_V1 = record_schema(
    "Order", {"name": "id", "type": "string"}, {"name": "placed", "type": "long"}
)
ORDER_V2 = record_schema(
    "Order",
    {"name": "order_id", "type": "string", "aliases": ["id"]},
    {"name": "placed_at", "type": "long", "aliases": ["placed"]},
    {"name": "note", "type": "string", "default": ""},
)


def test_a_renamed_key_field_keeps_its_role_by_alias(spark: SparkSession) -> None:
    v1, v2 = registered("1", 1, ORDER_V1), registered("2", 2, ORDER_V2)
    record = RecordDefinition(
        silver_table="orders", key=("id",), event_time=EventTime(field="placed")
    )
    old = write(ORDER_V1, {"id": "o1", "placed": 1_772_366_400})
    new = write(ORDER_V2, {"order_id": "o1", "placed_at": 1_772_366_400, "note": "again"})
    other = write(ORDER_V2, {"order_id": "o2", "placed_at": 1_772_366_401, "note": "x"})
    frame = bronze_frame(
        spark, [wire.frame_confluent(1, old), wire.frame_confluent(2, new),
                wire.frame_confluent(2, other)],
    )  # fmt: skip
    decoded, roles = decoded_with(spark, frame, record, v2, [v1, v2])
    assert (roles.key, roles.event_time) == (("order_id",), "placed_at")
    rows = silver.silver_rows(decoded, v2, roles).orderBy("offset").collect()
    fields = [f["name"] for f in ORDER_V2["fields"]]
    assert [{f: r[f] for f in fields} for r in rows] == [
        resolve(old, ORDER_V1, ORDER_V2),  # o1 once: v1's record and v2's re-send share the key
        resolve(other, ORDER_V2, ORDER_V2),
    ]

    missing = RecordDefinition(silver_table="orders", key=("customer",))
    with pytest.raises(PipelineError) as failure:
        silver.Roles.of(missing, v2, silver.reader_type(spark, v2))
    assert "key field 'customer'" in str(failure.value)
    assert "reader v2" in str(failure.value)


# --- what silver cannot store --------------------------------------------------------------------


@pytest.mark.parametrize(("field", "column"), [("offset", "offset"), ("Event_Date", "event_date")])
def test_a_field_named_like_a_metadata_column_is_one_clear_error(
    spark: SparkSession, field: str, column: str
) -> None:
    reader = registered("3", 4, record_schema("Log", {"name": field, "type": "long"}))
    with pytest.raises(PipelineError) as failure:
        silver.Roles.of(
            RecordDefinition(silver_table="logs"), reader, silver.reader_type(spark, reader)
        )
    message = str(failure.value)
    assert "\n" not in message
    assert f"field {field!r}" in message and f"metadata column {column!r}" in message
    assert "reader v4" in message


@pytest.mark.parametrize(
    ("record", "named"),
    [
        (RecordDefinition(silver_table="x", event_time=EventTime(field="page")), "'page'"),
        (RecordDefinition(silver_table="x", partition_by=("nowhere",)), "'nowhere'"),
    ],
)
def test_an_event_time_that_is_no_time_and_an_unknown_partition_column_fail(
    spark: SparkSession, record: RecordDefinition, named: str
) -> None:
    reader = registered("3", 1, record_schema("Log", {"name": "page", "type": "string"}))
    with pytest.raises(PipelineError, match=named):
        silver.Roles.of(record, reader, silver.reader_type(spark, reader))


# --- two record types on one topic, two silver tables, one quarantine -----------------------------

SHOP = """
pipelines:
  - name: shop
    topic: shop
    subject_strategy: topic_record
    records:
      - record: com.example.Order
        key: [orderId]
        event_time: {field: placedAt, unit: milliseconds}
      - record: com.example.Refund
        partition_by: [currency]
"""
ORDER = record_schema(
    "Order", {"name": "orderId", "type": "string"}, {"name": "placedAt", "type": "long"}
)
REFUND = record_schema(
    "Refund", {"name": "refundId", "type": "string"}, {"name": "currency", "type": "string"}
)
REFUND_V2 = {**REFUND, "fields": [*REFUND["fields"], {"name": "note", "type": "string",
                                                      "default": "-"}]}  # fmt: skip


class SubjectRegistry:
    """An in-memory registry of subjects, as the real ones answer: ``by_ref`` under a subject
    that does not hold the ref is not found."""

    wire_format = wire.WireFormat.CONFLUENT

    def __init__(self) -> None:
        self.subjects: dict[str, list[RegisteredSchema]] = {}

    def add(self, subject: Subject, ref: str, schema: dict) -> RegisteredSchema:
        versions = self.subjects.setdefault(subject.confluent, [])
        versions.append(registered(ref, len(versions) + 1, schema))
        return versions[-1]

    def latest(self, topic: str | Subject) -> RegisteredSchema:
        return self.subjects[as_subject(topic).confluent][-1]

    def by_ref(self, ref: str, topic: str | Subject | None = None) -> RegisteredSchema:
        assert topic is not None
        subject = as_subject(topic).confluent
        for version in self.subjects.get(subject, []):
            if version.ref == ref:
                return version
        raise SchemaNotFoundError(f"schema id {ref} is not registered under {subject}")


def table_rows(spark: SparkSession, space: TableSpace, name: str, *columns: str) -> list[tuple]:
    return sorted(tuple(r) for r in space.table(name).read(spark).select(*columns).collect())


def test_two_record_types_go_to_their_own_tables_and_replay_there(
    spark: SparkSession, tmp_path: Path
) -> None:
    (pipeline,) = parse_definitions(SHOP).pipelines
    orders, refunds = pipeline.records
    registry = SubjectRegistry()
    registry.add(pipeline.subject(orders), "1", ORDER)
    registry.add(pipeline.subject(refunds), "2", REFUND)
    order = write(ORDER, {"orderId": "o1", "placedAt": 1_772_366_400_250})
    refund = write(REFUND, {"refundId": "r1", "currency": "EUR"})
    late = write(REFUND_V2, {"refundId": "r2", "currency": "USD", "note": "late"})
    values = [
        wire.frame_confluent(1, order),
        wire.frame_confluent(2, refund),
        wire.frame_confluent(1, order),  # re-sent: one order o1
        wire.frame_confluent(2, refund),  # another Kafka record: refunds key by coordinates
        wire.frame_confluent(3, late),  # a Refund version not registered yet
        b"\x07garbage",
    ]
    space = TableSpace.in_directory(tmp_path / "warehouse")
    frame = bronze_frame(spark, values, topic="shop")
    frame.write.format("delta").save(space.table("bronze").path)

    silver_io.SilverBatch.for_pipeline(pipeline, registry, space)(frame, 0)  # type: ignore[arg-type]

    placed = as_collected(
        resolve(order, ORDER, ORDER)["placedAt"],
        {"type": "long", "logicalType": "timestamp-millis"},
    )
    assert table_rows(spark, space, "shop_order_silver", "orderId", "event_time", "offset") == [
        ("o1", placed, 0)
    ]
    kafka_time = [KAFKA_TIME + dt.timedelta(seconds=s) for s in range(len(values))]
    r1 = resolve(refund, REFUND, REFUND)
    assert table_rows(
        spark, space, "shop_refund_silver", "refundId", "currency", "event_time", "offset"
    ) == [(r1["refundId"], r1["currency"], kafka_time[o], o) for o in (1, 3)]
    detail = space.table("shop_refund_silver").delta(spark).detail().first()
    assert detail is not None and list(detail.partitionColumns) == ["currency"]
    quarantined = table_rows(spark, space, "shop_quarantine", "offset", "reason")
    assert [o for o, _ in quarantined] == [4, 5]
    assert quarantined[0][1].startswith("unknown schema ref 3: ")  # the first type's reason
    assert quarantined[1][1] == "unknown wire format: first byte 0x07"

    registry.add(pipeline.subject(refunds), "3", REFUND_V2)  # registered late

    def replay() -> ReplaySummary:
        return replay_quarantine(spark, pipeline, registry, space, ReplaySelection())  # type: ignore[arg-type]

    assert replay() == ReplaySummary(2, 1, 1, 0)
    assert replay() == ReplaySummary(1, 0, 1, 0)  # exactly once: nothing more to move
    expected: list[tuple[Any, ...]] = [
        (*(resolve(refund, REFUND, REFUND_V2)[f] for f in ("refundId", "note")), o) for o in (1, 3)
    ]
    expected.append((*(resolve(late, REFUND_V2, REFUND_V2)[f] for f in ("refundId", "note")), 4))
    assert table_rows(spark, space, "shop_refund_silver", "refundId", "note", "offset") == sorted(
        expected
    )
    assert table_rows(spark, space, "shop_order_silver", "orderId", "offset") == [("o1", 0)]
    assert [o for o, _ in table_rows(spark, space, "shop_quarantine", "offset", "reason")] == [5]


# --- identities and ranges the stream must survive -----------------------------------------------


def test_a_kafka_timestamp_past_9999_is_quarantined_not_fatal(spark: SparkSession) -> None:
    """A broker that accepts any CreateTime can carry year 10000; as the event time it would
    fail every replay of the batch (Python cannot hold the date), so the record is quarantined."""
    from pyspark.sql import functions as F

    reader = registered("1", 1, record_schema("Ping", {"name": "n", "type": "int"}))
    frame = bronze_frame(
        spark, [wire.frame_confluent(1, write(reader.schema_str, {"n": n})) for n in (1, 2)]
    )
    first_of_10000 = (silver.MAX_EVENT_SECONDS + 1) * 1000  # ms: 10000-01-01T00:00:00Z
    frame = frame.withColumn(
        "timestamp",
        F.when(F.col("offset") == 1, F.timestamp_millis(F.lit(first_of_10000))).otherwise(
            F.col("timestamp")
        ),
    )
    record = RecordDefinition(silver_table="pings")
    decoded, roles = decoded_with(spark, frame, record, reader, [reader])
    # (its Kafka timestamp stays in the quarantine row, which Python cannot collect)
    quarantined = silver.quarantine_rows(decoded).select("offset", "reason").collect()
    assert [(r.offset, r.reason) for r in quarantined] == [
        (1, f"Kafka timestamp out of range: {first_of_10000 // 1000}")
    ]
    rows = silver.silver_rows(decoded, reader, roles).collect()
    assert [(r.offset, r.n, r.event_time) for r in rows] == [(0, 1, KAFKA_TIME)]


def test_a_key_with_its_event_time_names_one_event_within_a_batch_too(
    spark: SparkSession,
) -> None:
    """The MERGE matches (key, event time): an event re-stamped with another event time is
    another event across batches, so it must be one within a batch as well — else the batch
    boundaries (and a rewrite, which decodes everything as one batch) would decide what is kept."""
    order = record_schema("Order", {"name": "id", "type": "string"}, {"name": "at", "type": "long"})
    reader = registered("1", 1, order)
    record = RecordDefinition(silver_table="orders", key=("id",), event_time=EventTime(field="at"))
    sent = [{"id": "a", "at": 100}, {"id": "a", "at": 200}, {"id": "a", "at": 100}]
    frame = bronze_frame(spark, [wire.frame_confluent(1, write(order, e)) for e in sent])
    decoded, roles = decoded_with(spark, frame, record, reader, [reader])
    rows = silver.silver_rows(decoded, reader, roles).orderBy("offset").collect()
    # the first copy of each distinct (id, at) in the order sent
    firsts: dict[tuple[str, int], int] = {}
    for offset, event in enumerate(sent):
        firsts.setdefault((event["id"], event["at"]), offset)
    assert [(r.offset, r.id, r.at) for r in rows] == [
        (offset, key, at) for (key, at), offset in firsts.items()
    ]


def test_a_changed_definition_rewrites_silver_from_bronze(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Old rows must mean what new rows mean: with the event time taken from Kafka instead of
    ``placedAt``, the next batch (even an empty one) first rewrites the rows already in silver."""
    (pipeline,) = parse_definitions(SHOP).pipelines
    registry = SubjectRegistry()
    registry.add(pipeline.subject(pipeline.records[0]), "1", ORDER)
    registry.add(pipeline.subject(pipeline.records[1]), "2", REFUND)
    order = write(ORDER, {"orderId": "o1", "placedAt": 1_772_366_400_250})
    space = TableSpace.in_directory(tmp_path / "warehouse")
    frame = bronze_frame(spark, [wire.frame_confluent(1, order)], topic="shop")
    frame.write.format("delta").save(space.table("bronze").path)
    silver_io.SilverBatch.for_pipeline(pipeline, registry, space)(frame, 0)  # type: ignore[arg-type]
    placed = as_collected(
        resolve(order, ORDER, ORDER)["placedAt"],
        {"type": "long", "logicalType": "timestamp-millis"},
    )
    assert table_rows(spark, space, "shop_order_silver", "orderId", "event_time") == [
        ("o1", placed)
    ]

    edited = SHOP.replace("        event_time: {field: placedAt, unit: milliseconds}\n", "")
    (changed,) = parse_definitions(edited).pipelines
    assert changed.records[0].event_time is None
    batch = silver_io.SilverBatch.for_pipeline(changed, registry, space)  # type: ignore[arg-type]
    batch(frame.limit(0), 1)
    assert table_rows(spark, space, "shop_order_silver", "orderId", "event_time") == [
        ("o1", KAFKA_TIME)  # the Kafka timestamp of offset 0
    ]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            RecordDefinition(silver_table="s", key=("tags",)),
            "key field 'tags' of reader v1 is map<string,string>: silver cannot use it as a key",
        ),
        (
            RecordDefinition(silver_table="s", partition_by=("where",)),
            "partition_by field 'where' of reader v1 is struct<city:string>: silver cannot use "
            "it as a partition column",
        ),
    ],
    ids=["a map as the key", "a record as a partition column"],
)
def test_a_key_or_partition_spark_cannot_use_is_one_line(
    spark: SparkSession, record: RecordDefinition, message: str
) -> None:
    city = {"type": "record", "name": "Where", "fields": [{"name": "city", "type": "string"}]}
    schema = record_schema(
        "Visit",
        {"name": "tags", "type": {"type": "map", "values": "string"}},
        {"name": "where", "type": city},
    )
    reader = registered("1", 1, schema)
    with pytest.raises(PipelineError) as raised:
        silver.Roles.of(record, reader, silver.reader_type(spark, reader))
    assert str(raised.value) == message


def test_a_reader_that_is_not_a_record_is_one_line() -> None:
    with pytest.raises(PipelineError) as raised:
        silver.reader_fields(registered("7", 2, "string"))  # type: ignore[arg-type]
    assert str(raised.value) == (
        "reader v2 (schema ref 7) is not a record schema: silver stores the fields of record "
        "schemas only"
    )
