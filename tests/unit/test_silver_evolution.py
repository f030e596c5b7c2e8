"""Silver's decode, version pair by version pair, against the fastavro oracle: every evolution of
``evolution_versions`` on a small DataFrame, without streams or registries (the live test is
tests/integration/test_evolution.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import Row, SparkSession

from avro_oracle import collected, record_as_collected, resolve, typed, write
from avrolake import wire
from avrolake.pipeline import bronze, silver
from avrolake.registry import RegisteredSchema
from evolution_versions import V1, V2, V3, V3_AGAIN, V4, event

VERSIONS = {1: V1, 2: V2, 3: V3, 4: V4, 5: V3_AGAIN}
REGISTERED = {v: RegisteredSchema(str(100 + v), v, text) for v, text in VERSIONS.items()}
# every Kafka record has a timestamp (silver quarantines one it cannot hold); these rows do not
# define an event-time field, so it is their event time
KAFKA_TIME = dt.datetime(2026, 3, 1, 12, 0, 0)
PER_WRITER = 6  # enough for every enum symbol, explicit nulls and each number of array items


@pytest.fixture(scope="module")
def records(spark: SparkSession) -> tuple[object, list[tuple[int, bytes]]]:
    """Bronze rows of ``PER_WRITER`` records of each of v1..v4, and each one's (writer, body)."""
    written = [
        (v, write(VERSIONS[v], event(VERSIONS[v], n, f"e{v}-{n}")))
        for v in (1, 2, 3, 4)
        for n in range(PER_WRITER)
    ]
    rows = [
        Row(key=None, value=wire.frame_confluent(100 + v, body), topic="t", partition=0,
            offset=i, timestamp=KAFKA_TIME, timestampType=0, headers=None)
        for i, (v, body) in enumerate(written)
    ]  # fmt: skip
    schema = (
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, "
        "timestampType int, headers array<struct<key:string,value:binary>>"
    )
    return bronze.to_bronze(spark.createDataFrame(rows, schema)).cache(), written


@pytest.mark.parametrize(
    ("reader", "writers"),
    [
        (2, (1, 2)),  # rename, promotions, symbol and nested fields added, defaults of v2's adds
        # removal, long→double, logical-type, bytes and fixed defaults; and v4 deleted: a writer
        # newer than the reader, RETIRED unknown to it
        (3, (1, 2, 3, 4)),
        (4, (1, 2, 3, 4)),
        (5, (1, 2, 3, 4)),  # v4 rolled back
    ],
)
def test_every_row_is_fastavros_resolution_of_its_bytes(
    records: tuple, reader: int, writers: tuple[int, ...]
) -> None:
    frame, written = records
    refs = {str(100 + w): REGISTERED[w] for w in writers}
    schemas = silver.BatchSchemas(REGISTERED[reader], refs)
    decoded = silver.decode(
        frame.where(frame.schema_ref.isin(list(refs))),
        schemas,
        sentinel=silver.new_sentinel(),
    ).cache()
    assert silver.quarantine_rows(decoded).collect() == []
    fields = [f["name"] for f in json.loads(VERSIONS[reader])["fields"]]
    got = {
        row.offset: {name: collected(row[name]) for name in fields}
        for row in silver.silver_rows(decoded, REGISTERED[reader]).collect()
    }
    want = {
        offset: record_as_collected(resolve(body, VERSIONS[v], VERSIONS[reader]), VERSIONS[reader])
        for offset, (v, body) in enumerate(written)
        if v in writers
    }
    assert typed(got) == typed(want)
