"""Silver's pure transformations on small DataFrames: decoding, quarantine reasons, dedupe."""

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


@pytest.fixture(scope="module")
def mixed(spark: SparkSession):
    v2_event = avro(PRODUCT_V2, event(2, size="XL", color="red"))
    v3_event = avro(PRODUCT_V3, event(3, size="S", color="blue", price=Decimal("9.99")))
    glue_event = avro(PRODUCT_V2, event(4, size="M", color="black"))
    truncated = avro(PRODUCT_V2, event(6, size="L", color="red"))[:7]
    not_zlib = wire.frame_glue(GLUE_V2.ref, b"not zlib at all")
    not_zlib = not_zlib[:1] + bytes([wire.GLUE_COMPRESSION_ZLIB]) + not_zlib[2:]
    values = [
        wire.frame_confluent(11, avro(PRODUCT_V1, event(1))),
        wire.frame_confluent(12, v2_event),
        wire.frame_confluent(13, v3_event),
        wire.frame_glue(GLUE_V2.ref, glue_event, compress=True),
        wire.frame_confluent(12, v2_event),  # a producer retry: the same event again
        None,
        b"\x07garbage",
        wire.frame_confluent(99, avro(PRODUCT_V1, event(5))),
        wire.frame_confluent(12, truncated),
        not_zlib,
    ]
    schemas = silver.BatchSchemas(
        reader=V3, writers={"11": V1, "12": V2, "13": V3, GLUE_V2.ref: GLUE_V2}
    )
    return silver.decode(bronze_frame(spark, values), schemas, has_compressed=True).cache()


def test_every_version_decodes_to_the_reader_schema_with_defaults(mixed) -> None:
    rows = silver.silver_rows(mixed, V3).orderBy("offset").collect()
    got = [(r.eventId, r.size, r.color, r.price, r.schema_version, r.offset) for r in rows]
    assert got == [
        ("e1", "none", "none", None, 1, 0),
        ("e2", "XL", "red", None, 2, 1),
        ("e3", "S", "blue", Decimal("9.99"), 3, 2),
        ("e4", "M", "black", None, 2, 3),
    ]
    first = rows[0]
    assert first.event_time.isoformat() == "2023-11-14T22:13:21"
    assert str(first.event_date) == "2023-11-14"
    assert (first.wire_format, first.schema_ref) == ("confluent", "11")
    assert rows[3].wire_format == "glue" and rows[3].schema_ref == GLUE_V2.ref


def test_each_bad_record_is_quarantined_with_its_reason(mixed) -> None:
    rows = silver.quarantine_rows(mixed).orderBy("offset").collect()
    assert [(r.offset, r.reason) for r in rows] == [
        (5, "null value"),
        (6, "unknown wire format: first byte 0x07"),
        (7, "unknown schema ref 99"),
        (8, "corrupt or truncated Avro for schema ref 12"),
        (9, f"corrupt compressed body for schema ref {GLUE_V2.ref}"),
    ]
    assert rows[1].value == b"\x07garbage"
    assert list(rows[0].asDict()) == list(silver.QUARANTINE_COLUMNS)


def test_good_and_bad_rows_partition_the_batch(mixed) -> None:
    good = mixed.where("quarantine_reason IS NULL").count()
    bad = silver.quarantine_rows(mixed).count()
    assert (good, bad, mixed.count()) == (5, 5, 10)


def test_a_batch_with_no_known_schema_quarantines_everything(spark: SparkSession) -> None:
    frame = bronze_frame(spark, [wire.frame_confluent(42, avro(PRODUCT_V1, event(1)))])
    decoded = silver.decode(frame, silver.BatchSchemas(reader=V1, writers={}))
    assert [r.reason for r in silver.quarantine_rows(decoded).collect()] == [
        "unknown schema ref 42"
    ]
    assert silver.silver_rows(decoded, V1).count() == 0


def test_reader_older_than_a_writer_drops_the_newer_fields(spark: SparkSession) -> None:
    frame = bronze_frame(
        spark, [wire.frame_confluent(12, avro(PRODUCT_V2, event(1, size="XS", color="red")))]
    )
    rows = silver.silver_rows(
        silver.decode(frame, silver.BatchSchemas(V1, {"12": V2})), V1
    ).collect()
    assert [r.asDict()["eventId"] for r in rows] == ["e1"]
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


def test_reader_defaults_come_from_avro_resolution(spark: SparkSession) -> None:
    assert silver.reader_defaults(spark, V3) == {"size": "none", "color": "none"}
    assert silver.reader_defaults(spark, V1) == {}


def test_reader_defaults_of_logical_types(spark: SparkSession) -> None:
    from pathlib import Path

    from avrolake.schemas import load_versions

    v3 = load_versions(Path(__file__).parents[2] / "schemas" / "product")[2]
    defaults = silver.reader_defaults(spark, RegisteredSchema("3", 3, v3.text))
    assert defaults == {"size": "none", "color": "none", "updatedAt": EPOCH}
