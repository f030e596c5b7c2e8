"""Silver's pure transformations on small DataFrames: decoding, quarantine reasons, dedupe, with
the Product example's definition (key eventId, event time ``timestamp`` in seconds; other
definitions: test_silver_definitions.py)."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal

import fastavro
import pytest
from pyspark.sql import Row, SparkSession

from avrolake import wire
from avrolake.pipeline import bronze, silver
from avrolake.registry import RegisteredSchema
from example_pipeline import product_pipeline

PRODUCT_V1 = {
    "type": "record",
    "name": "Product",
    "namespace": "com.company.product",
    "fields": [
        {"name": "productId", "type": "string"},
        {"name": "eventId", "type": "string"},
        {"name": "type", "type": "string"},
        {"name": "timestamp", "type": "long"},
    ],
}
PRODUCT_V2 = {
    **PRODUCT_V1,
    "fields": [
        *PRODUCT_V1["fields"][:3],
        {"name": "size", "type": "string", "default": "none"},
        {"name": "color", "type": "string", "default": "none"},
        PRODUCT_V1["fields"][3],
    ],
}
PRICE = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
PRODUCT_V3 = {
    **PRODUCT_V2,
    "fields": [*PRODUCT_V2["fields"], {"name": "price", "type": ["null", PRICE], "default": None}],
}
EPOCH = dt.datetime(1970, 1, 1)  # naive, as collected under the session's UTC time zone
V1 = RegisteredSchema("11", 1, json.dumps(PRODUCT_V1))
V2 = RegisteredSchema("12", 2, json.dumps(PRODUCT_V2))
V3 = RegisteredSchema("13", 3, json.dumps(PRODUCT_V3))
GLUE_V2 = RegisteredSchema("7c3f3c4e-2a4b-4a8e-9f1e-0d6c1d2b3a41", 2, json.dumps(PRODUCT_V2))


def avro(schema: dict, record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def event(n: int, **extra: object) -> dict:
    return {
        "productId": f"p{n}",
        "eventId": f"e{n}",
        "type": "shirt",
        "timestamp": 1_700_000_000 + n,
        **extra,
    }


def bronze_frame(spark: SparkSession, values: list[bytes | None]) -> object:
    rows = [
        Row(
            key=b"k",
            value=v,
            topic="products",
            partition=0,
            offset=i,
            timestamp=None,
            timestampType=0,
            headers=None,
        )
        for i, v in enumerate(values)
    ]
    schema = (
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, "
        "timestampType int, headers array<struct<key:string,value:binary>>"
    )
    return bronze.to_bronze(spark.createDataFrame(rows, schema))


def resolved(writer: dict, reader: dict, payload: bytes) -> dict:
    """The oracle: fastavro's resolution of the same bytes."""
    return fastavro.schemaless_reader(
        io.BytesIO(payload), fastavro.parse_schema(writer), fastavro.parse_schema(reader)
    )


# The example definition's roles in every Product version (checked against pipelines.yml below).
PRODUCT_ROLES = silver.Roles(key=("eventId",), event_time="timestamp")


def product(reader: RegisteredSchema, writers: dict, **kwargs) -> silver.BatchSchemas:
    return silver.BatchSchemas(reader, writers, roles=PRODUCT_ROLES, **kwargs)


def decode(frame, schemas: silver.BatchSchemas, **kwargs):
    return silver.decode(frame, schemas, sentinel=silver.new_sentinel(), **kwargs)


def silver_rows(decoded, schemas: silver.BatchSchemas):
    return silver.silver_rows(decoded, schemas.reader, schemas.roles)


@pytest.mark.parametrize("reader", [V1, V2, V3])
def test_the_example_definition_has_the_products_roles(
    spark: SparkSession, reader: RegisteredSchema
) -> None:
    record = product_pipeline().records[0]
    roles = silver.Roles.of(record, reader, silver.reader_type(spark, reader))
    assert roles == PRODUCT_ROLES


V1_EVENT = avro(PRODUCT_V1, event(1))
V2_EVENT = avro(PRODUCT_V2, event(2, size="XL", color="red"))
V3_EVENT = avro(PRODUCT_V3, event(3, size="S", color="blue", price=Decimal("9.99")))
TRUNCATED = avro(PRODUCT_V2, event(6, size="L", color="red"))[:7]


def _invalid_utf8_event() -> bytes:
    """A v1 record whose ``type`` string holds the bytes ff fe (not UTF-8)."""
    good = avro(PRODUCT_V1, event(7, type="ab"))
    return good.replace(b"\x04ab", b"\x04\xff\xfe")


@pytest.fixture(scope="module")
def mixed(spark: SparkSession):
    values = [
        wire.frame_confluent(11, V1_EVENT),
        wire.frame_confluent(12, V2_EVENT),
        wire.frame_confluent(13, V3_EVENT),
        wire.frame_glue(GLUE_V2.ref, V2_EVENT),  # the other flavor's framing
        wire.frame_confluent(12, V2_EVENT),  # a producer retry: the same event again
        None,
        b"\x07garbage",
        wire.frame_confluent(99, avro(PRODUCT_V1, event(5))),
        wire.frame_confluent(12, TRUNCATED),
        wire.frame_confluent(11, V1_EVENT + b"\x00"),  # trailing bytes
        wire.frame_confluent(11, _invalid_utf8_event()),
        wire.frame_confluent(11, avro(PRODUCT_V1, event(8, timestamp=2**62))),
    ]
    schemas = product(
        V3,
        {"11": V1, "12": V2, "13": V3},
        unusable={"99": "unknown schema ref 99: not in the registry"},
    )
    return decode(bronze_frame(spark, values), schemas).cache()


def test_every_version_decodes_to_the_reader_schema_as_avro_resolves_it(mixed) -> None:
    rows = silver_rows(mixed, product(V3, {})).orderBy("offset").collect()
    fields = [f["name"] for f in PRODUCT_V3["fields"]]
    got = [{name: r[name] for name in fields} for r in rows]
    assert got == [
        resolved(PRODUCT_V1, PRODUCT_V3, V1_EVENT),
        resolved(PRODUCT_V2, PRODUCT_V3, V2_EVENT),
        resolved(PRODUCT_V3, PRODUCT_V3, V3_EVENT),
    ]
    assert [r.schema_version for r in rows] == [1, 2, 3]
    first = rows[0]
    assert first.event_time.isoformat() == "2023-11-14T22:13:21"
    assert str(first.event_date) == "2023-11-14"
    assert (first.wire_format, first.schema_ref) == ("confluent", "11")


def test_each_bad_record_is_quarantined_with_its_reason(mixed) -> None:
    rows = silver.quarantine_rows(mixed).orderBy("offset").collect()
    not_at_end = "the Avro record does not end where the value ends (trailing or missing bytes)"
    assert [(r.offset, r.reason) for r in rows] == [
        (3, f"glue framing on a confluent topic: schema ref {GLUE_V2.ref}"),
        (5, "null value"),
        (6, "unknown wire format: first byte 0x07"),
        (7, "unknown schema ref 99: not in the registry"),
        (8, "corrupt or truncated Avro for schema ref 12"),
        (9, f"{not_at_end} for schema ref 11"),
        (10, "invalid UTF-8 in a string for schema ref 11"),
        (11, f"timestamp out of range: {2**62}"),
    ]
    assert rows[2].value == b"\x07garbage"
    assert list(rows[0].asDict()) == list(silver.QUARANTINE_COLUMNS)


def test_good_and_bad_rows_partition_the_batch(mixed) -> None:
    good = mixed.where("quarantine_reason IS NULL").count()
    bad = silver.quarantine_rows(mixed).count()
    assert (good, bad, mixed.count()) == (4, 8, 12)


def test_glue_records_compressed_or_not(spark: SparkSession) -> None:
    not_zlib = wire.frame_glue(GLUE_V2.ref, b"not zlib at all")
    not_zlib = not_zlib[:1] + bytes([wire.GLUE_COMPRESSION_ZLIB]) + not_zlib[2:]
    bomb = wire.frame_glue(GLUE_V2.ref, b"\x00" * (silver.MAX_INFLATED_BYTES + 1), compress=True)
    values = [
        wire.frame_glue(GLUE_V2.ref, V2_EVENT, compress=True),
        wire.frame_glue(GLUE_V2.ref, V2_EVENT),
        not_zlib,
        bomb,
        wire.frame_confluent(12, V2_EVENT),
    ]
    schemas = product(V2, {GLUE_V2.ref: GLUE_V2}, wire_format=wire.WireFormat.GLUE)
    decoded = decode(bronze_frame(spark, values), schemas, has_compressed=True)
    good = silver_rows(decoded, schemas).collect()
    assert [r.offset for r in good] == [0]  # offset 1 is the same event: deduplicated
    bad = silver.quarantine_rows(decoded).orderBy("offset").collect()
    assert [(r.offset, r.reason) for r in bad] == [
        (2, f"corrupt or oversized compressed body for schema ref {GLUE_V2.ref}"),
        (3, f"corrupt or oversized compressed body for schema ref {GLUE_V2.ref}"),
        (4, "confluent framing on a glue topic: schema ref 12"),
    ]


def test_a_batch_with_no_known_schema_quarantines_everything(spark: SparkSession) -> None:
    frame = bronze_frame(spark, [wire.frame_confluent(42, avro(PRODUCT_V1, event(1)))])
    schemas = product(V1, {})
    decoded = decode(frame, schemas)
    assert [r.reason for r in silver.quarantine_rows(decoded).collect()] == [
        "unknown schema ref 42"
    ]
    assert silver_rows(decoded, schemas).count() == 0


def test_reader_older_than_a_writer_drops_the_newer_fields(spark: SparkSession) -> None:
    frame = bronze_frame(spark, [wire.frame_confluent(12, V2_EVENT)])
    schemas = product(V1, {"12": V2})
    rows = silver_rows(decode(frame, schemas), schemas).collect()
    assert [r.eventId for r in rows] == ["e2"]
    assert "size" not in rows[0].asDict()


def test_bronze_parses_headers(spark: SparkSession) -> None:
    version = str(uuid.uuid4())
    frame = bronze_frame(
        spark, [wire.frame_confluent(258, b""), wire.frame_glue(version, b"x"), b"", None]
    )
    assert [(r.wire_format, r.schema_ref) for r in frame.orderBy("offset").collect()] == [
        ("confluent", "258"),
        ("glue", version),
        ("unknown", None),
        ("unknown", None),
    ]
    assert frame.columns == list(bronze.BRONZE_COLUMNS)


def test_inflate_caps_the_inflated_size() -> None:
    import zlib

    assert silver._inflate(zlib.compress(b"abc")) == b"abc"
    assert silver._inflate(zlib.compress(b"\x00" * (silver.MAX_INFLATED_BYTES + 1))) is None
    assert silver._inflate(zlib.compress(b"abc")[:-2]) is None  # cut short
    assert silver._inflate(b"nope") is None


def test_bronze_reads_confluent_header_and_guid_framings_like_wire_parse(
    spark: SparkSession,
) -> None:
    from confluent_kafka.schema_registry.common.serde import SchemaId

    guid = "6f1d2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
    body = avro(PRODUCT_V1, event(1))
    cases = [
        (body, [(wire.VALUE_SCHEMA_ID_HEADER, SchemaId("AVRO", schema_id=11).id_to_bytes())]),
        (body, [(wire.VALUE_SCHEMA_ID_HEADER, SchemaId("AVRO", guid=guid).guid_to_bytes())]),
        (SchemaId("AVRO", guid=guid).guid_to_bytes() + body, None),
        (wire.frame_confluent(11, body), [("unrelated", b"1")]),
        (wire.frame_confluent(11, body), [(wire.VALUE_SCHEMA_ID_HEADER, b"\x00\x01")]),
    ]
    rows = [
        Row(key=None, value=v, topic="t", partition=0, offset=i, timestamp=None,
            timestampType=0, headers=h)
        for i, (v, h) in enumerate(cases)
    ]  # fmt: skip
    schema = (
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, "
        "timestampType int, headers array<struct<key:string,value:binary>>"
    )
    frame = bronze.to_bronze(spark.createDataFrame(rows, schema)).orderBy("offset").collect()
    expected = []
    for value, headers in cases:
        try:
            parsed = wire.parse(value, headers)
            expected.append((parsed.wire_format.value, parsed.schema_ref))
        except Exception:
            expected.append(("unknown", None))
    assert [(r.wire_format, r.schema_ref) for r in frame] == expected
    assert expected[:3] == [
        ("confluent-header", "11"),
        ("confluent-header", f"guid:{guid}"),
        ("confluent-guid", f"guid:{guid}"),
    ]
    decoded = decode(
        bronze.to_bronze(spark.createDataFrame(rows, schema)),
        product(V1, {"11": V1}),
    )
    got = {r.offset: r.quarantine_reason for r in decoded.collect()}
    assert got[0] is None and got[3] is None  # header id and classic prefix both decode
    assert got[4] == "malformed __value_schema_id header"


def test_an_empty_value_and_bytes_after_a_zlib_stream_get_their_reasons(
    spark: SparkSession,
) -> None:
    """Found by tests/integration/test_hostile.py: Spark's hex of an empty value is "" (not NULL),
    and bytes after a complete zlib stream were dropped silently, the record kept as good."""
    import zlib

    after_stream = wire.frame_glue(GLUE_V2.ref, V2_EVENT, compress=True) + b"\x00junk"
    assert silver._inflate(zlib.compress(V2_EVENT) + b"\x00junk") is None
    schemas = product(V2, {GLUE_V2.ref: GLUE_V2}, wire_format=wire.WireFormat.GLUE)
    decoded = decode(bronze_frame(spark, [b"", after_stream]), schemas, has_compressed=True)
    assert [r.reason for r in silver.quarantine_rows(decoded).orderBy("offset").collect()] == [
        "unknown wire format: first byte 0x(empty)",
        f"corrupt or oversized compressed body for schema ref {GLUE_V2.ref}",
    ]


def test_events_at_the_first_and_last_representable_second_merge_once(
    spark: SparkSession, tmp_path
) -> None:
    """Found by tests/integration/test_hostile.py: the dedupe MERGE's window literals failed for
    year 1 (strftime writes "1-01-01") and for the last minute of 9999 (its end is year 10000),
    failing the batch again on every restart."""
    from pyspark.sql import functions as F

    from avrolake.pipeline import silver_io
    from avrolake.pipeline.tables import TableRef

    values = [
        wire.frame_confluent(11, avro(PRODUCT_V1, event(1, timestamp=silver.MIN_EVENT_SECONDS))),
        wire.frame_confluent(11, avro(PRODUCT_V1, event(2, timestamp=silver.MAX_EVENT_SECONDS))),
    ]
    schemas = product(V1, {"11": V1})
    rows = silver_rows(decode(bronze_frame(spark, values), schemas), schemas)
    table = TableRef(path=str(tmp_path / "silver"))
    silver_io._create(table, rows, V1, schemas.roles)
    for _ in range(2):  # the second MERGE is a replay: it must find both and insert nothing
        silver_io.merge_silver(table, rows, schemas.roles)
    # event_time as seconds: PySpark cannot collect year 1 as a local datetime
    got = table.read(spark).select(
        "eventId", F.unix_seconds("event_time"), F.col("event_date").cast("string")
    )
    assert [tuple(r) for r in got.orderBy("timestamp").collect()] == [
        ("e1", silver.MIN_EVENT_SECONDS, "0001-01-01"),
        ("e2", silver.MAX_EVENT_SECONDS, "9999-12-31"),
    ]


def test_a_logical_timestamp_beyond_year_9999_is_quarantined(spark: SparkSession) -> None:
    micros = {"type": "long", "logicalType": "timestamp-micros"}
    schema = {
        "type": "record",
        "name": "Tick",
        "fields": [{"name": "eventId", "type": "string"}, {"name": "timestamp", "type": micros}],
    }
    ok = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    year_50000_micros = (50_000 - 1970) * 366 * 86_400 * 1_000_000  # fastavro takes raw longs
    raw = {**schema, "fields": [schema["fields"][0], {"name": "timestamp", "type": "long"}]}
    values = [
        wire.frame_confluent(5, avro(schema, {"eventId": "a", "timestamp": ok})),
        wire.frame_confluent(5, avro(raw, {"eventId": "b", "timestamp": year_50000_micros})),
    ]
    reader = RegisteredSchema("5", 1, json.dumps(schema))
    schemas = product(reader, {"5": reader})
    decoded = decode(bronze_frame(spark, values), schemas)
    assert [r.event_time for r in silver_rows(decoded, schemas).collect()] == [
        ok.replace(tzinfo=None)
    ]
    bad = silver.quarantine_rows(decoded).collect()
    assert [r.reason.split(":")[0] for r in bad] == ["timestamp out of range"]
