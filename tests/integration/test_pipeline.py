"""Kafka → bronze → silver (+ quarantine) → gold on the real local stack, for both flavors.

Real broker, real registries (Apicurio for Confluent, moto for Glue), local Spark with Delta. The
producer's manifest is the ground truth every table is compared with.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from avrolake import wire
from avrolake.connection import producer_config
from avrolake.pipeline.gold_io import run_gold
from avrolake.pipeline.runners import run_ingest, run_silver
from avrolake.pipeline.tables import TableLocations
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.producer.manifest import read_manifest
from avrolake.producer.mix import parse_mix
from avrolake.producer.run import ProduceOptions, run_produce
from avrolake.registry import open_registry
from avrolake.schemas import load_versions
from avrolake.settings import ConnectionSettings, Flavor, KafkaSettings, RegistrySettings
from example_pipeline import product_pipeline

SCHEMAS = Path(__file__).parents[2] / "schemas" / "product"
EVENTS = 3000
DRAIN = TriggerSettings()  # available-now: process what is there, then stop
V3_DEFAULTS = {"size": "none", "color": "none", "price": None, "updatedAt": 0}
ORDER = json.dumps(
    {"type": "record", "name": "Order", "namespace": "com.company.order",
     "fields": [{"name": "orderId", "type": "string"}]}
)  # fmt: skip
EPOCH = dt.datetime(1970, 1, 1)


def connection_for(local_stack: Any, flavor: str, topic: str) -> ConnectionSettings:
    return ConnectionSettings(
        kafka=KafkaSettings(bootstrap_servers=local_stack.bootstrap_servers, topic=topic),
        registry=RegistrySettings(
            flavor=Flavor(flavor),
            url=local_stack.confluent_registry_url,
            glue_registry_name="avrolake-tests",  # moto allows only 10 registries per server
            region="us-east-1",
            endpoint_url=local_stack.glue_endpoint_url,
        ),
    )


def finish(query: StreamingQuery, timeout_s: int = 600) -> None:
    """An available-now query must drain and stop by itself, within a bound (never a hang)."""
    assert query.awaitTermination(timeout_s), f"{query.name} still running after {timeout_s}s"
    assert query.exception() is None


def drain(spark: SparkSession, connection: ConnectionSettings, tables: TableLocations) -> None:
    finish(run_ingest(spark, connection.kafka, tables, DRAIN))
    registry = open_registry(connection.registry)
    pipeline = product_pipeline(connection.kafka.topic)
    finish(run_silver(spark, pipeline, registry, tables.space, DRAIN))
    run_gold(spark, tables.space, [pipeline], DRAIN)


def forget_last_commit(checkpoint: str) -> None:
    """Make a stream re-run its last batch, as a crash just before the commit would."""
    commits = Path(checkpoint) / "commits"
    last = max((p for p in commits.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    last.unlink()
    (commits / f".{last.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum of the commit


def silver_as_manifest_values(spark: SparkSession, tables: TableLocations) -> dict[str, dict]:
    """Silver's Product fields per eventId, in the manifest's JSON forms."""
    fields = ["productId", "eventId", "type", "size", "color", "timestamp", "price", "updatedAt"]
    out = {}
    for row in tables.silver.read(spark).select(*fields).collect():
        value = row.asDict()
        value["price"] = None if value["price"] is None else str(value["price"])
        value["updatedAt"] = (value["updatedAt"] - EPOCH) // dt.timedelta(milliseconds=1)
        out[value["eventId"]] = value
    return out


def expected_from_manifest(manifest: list[dict]) -> dict[str, dict]:
    """What silver must hold: each record as written, plus the reader's defaults for the fields
    its writer version did not have."""
    return {line["eventId"]: {**V3_DEFAULTS, **line["value"]} for line in manifest}


@pytest.fixture(scope="module", params=["confluent", "glue"])
def pipeline(request, local_stack, spark: SparkSession, tmp_path_factory):
    """A topic with EVENTS mixed-version events, drained through every stage once."""
    flavor = request.param
    topic = f"pipeline-{flavor}-{uuid.uuid4().hex[:8]}"
    connection = connection_for(local_stack, flavor, topic)
    root = tmp_path_factory.mktemp(f"pipeline-{flavor}")
    manifest_path = root / "manifest.jsonl"
    summary = run_produce(
        connection,
        load_versions(SCHEMAS),
        ProduceOptions(
            count=EVENTS,
            seed=20261124,
            mix=parse_mix("v1=0.3,v2=0.4,v3=0.3"),
            manifest=manifest_path,
            progress=False,
            glue_compression=flavor == "glue",  # Glue's zlib form goes through the inflate path
        ),
    )
    assert (summary.sent, summary.failed) == (EVENTS, 0)
    tables = TableLocations.in_directory(root / "warehouse")
    drain(spark, connection, tables)
    return connection, tables, read_manifest(manifest_path)


def test_every_event_lands_once_in_bronze_silver_and_gold(pipeline, spark: SparkSession) -> None:
    connection, tables, manifest = pipeline
    assert len(manifest) == EVENTS
    bronze = tables.bronze.read(spark)
    assert bronze.count() == EVENTS
    assert {r.wire_format for r in bronze.select("wire_format").distinct().collect()} == {
        connection.flavor.value
    }
    silver = tables.silver.read(spark)
    assert silver.count() == EVENTS
    assert silver.select("eventId").distinct().count() == EVENTS
    assert silver_as_manifest_values(spark, tables) == expected_from_manifest(manifest)
    versions = {
        r.schema_version: r["count"] for r in silver.groupBy("schema_version").count().collect()
    }
    assert versions == {v: sum(1 for line in manifest if line["version"] == v) for v in (1, 2, 3)}
    assert tables.quarantine.read(spark).count() == 0
    gold = tables.gold.read(spark)
    assert gold.agg(F.sum("events")).first()[0] == EVENTS
    assert {f.name: f.dataType.simpleString() for f in gold.schema} == {
        "event_date": "date",
        "type": "string",
        "color": "string",
        "size": "string",
        "events": "bigint",
        "distinct_products": "bigint",
        "first_event_time": "timestamp",
        "last_event_time": "timestamp",
    }


def bad_records(flavor: str) -> dict[bytes | None, str]:
    """Injected records and the quarantine reason each must get."""
    unknown_ref = "424242" if flavor == "confluent" else str(uuid.UUID(int=42))
    framed = (
        wire.frame_confluent(424242, b"\x02")
        if flavor == "confluent"
        else wire.frame_glue(unknown_ref, b"\x02")
    )
    return {
        None: "null value",
        b"\x09not avro": "unknown wire format: first byte 0x09",
        framed: f"unknown schema ref {unknown_ref}",
    }


def snapshot(spark: SparkSession, tables: TableLocations) -> tuple[list, list, list]:
    silver = tables.silver.read(spark).drop("ingested_at").orderBy("eventId").collect()
    quarantine = tables.quarantine.read(spark).drop("quarantined_at").orderBy("offset").collect()
    gold = tables.gold.read(spark).orderBy("event_date", "type", "color", "size").collect()
    return silver, quarantine, gold


def test_resent_events_replayed_batches_and_bad_records_change_nothing_else(
    pipeline, spark: SparkSession
) -> None:
    connection, tables, _ = pipeline
    silver_before, _, gold_before = snapshot(spark, tables)

    # A producer retry: the same framed bytes again, for 100 events.
    resend = [r.value for r in tables.bronze.read(spark).orderBy("offset").limit(100).collect()]
    # And a truncated copy of a real record: its header is valid, its Avro body is not.
    good = resend[0]
    header = wire.HEADER_LEN[wire.detect(good)]
    # A record framed with another topic's schema: it must not become this topic's reader.
    foreign = open_registry(connection.registry).register(f"{connection.kafka.topic}-orders", ORDER)
    framed_foreign = (
        wire.frame_confluent(int(foreign.ref), b"\x02")
        if connection.flavor is Flavor.CONFLUENT
        else wire.frame_glue(foreign.ref, b"\x02")
    )
    bad = {**bad_records(connection.flavor.value), good[: header + 3]: None, framed_foreign: None}
    producer = Producer(producer_config(connection.kafka))
    for value in [*resend, *bad]:
        producer.produce(connection.kafka.topic, value=value)
    assert producer.flush(30) == 0
    drain(spark, connection, tables)

    assert tables.bronze.read(spark).count() == EVENTS + 100 + len(bad)
    silver_after, quarantine, gold_after = snapshot(spark, tables)
    assert silver_after == silver_before
    assert gold_after == gold_before
    # an unknown ref's reason goes on with the registry's own words; the ref is what matters here
    reasons = sorted(
        r.reason.split(":")[0] if r.reason.startswith("unknown schema ref") else r.reason
        for r in quarantine
    )
    # Glue records here are zlib-compressed, so truncation breaks the compressed body first.
    glue = connection.flavor is Flavor.GLUE
    broken = "or oversized compressed body" if glue else "or truncated Avro"
    truncated = f"corrupt {broken} for schema ref "
    ref = wire.parse(good).schema_ref
    expected = [
        *bad_records(connection.flavor.value).values(),
        truncated + ref,
        f"unknown schema ref {foreign.ref}",
    ]
    assert reasons == sorted(expected)
    assert [r.value for r in quarantine if r.reason == "null value"] == [None]

    # Re-run the last silver batch, and gold.
    pipeline = product_pipeline(connection.kafka.topic)
    forget_last_commit(tables.space.checkpoint("silver", pipeline.name))
    finish(run_silver(spark, pipeline, open_registry(connection.registry), tables.space, DRAIN))
    # gold keeps no checkpoint: a re-run finds nothing new
    run_gold(spark, tables.space, [pipeline], DRAIN)
    assert snapshot(spark, tables) == (silver_after, quarantine, gold_after)


@pytest.mark.parametrize("flavor", ["confluent", "glue"])
def test_a_version_registered_mid_stream_becomes_columns_without_restart(
    flavor: str, local_stack, spark: SparkSession, tmp_path: Path
) -> None:
    topic = f"evolve-{flavor}-{uuid.uuid4().hex[:8]}"
    connection = connection_for(local_stack, flavor, topic)
    versions = load_versions(SCHEMAS)
    registry = open_registry(connection.registry)
    tables = TableLocations.in_directory(tmp_path / "warehouse")
    live = TriggerSettings(mode="continuous", interval="1 second")

    def produce(mix: str, count: int, available: int) -> list[dict]:
        """Produce with versions 1..``available`` registered (the producer registers them)."""
        manifest = tmp_path / f"{mix}.jsonl"
        options = ProduceOptions(
            count=count, seed=len(mix), mix=parse_mix(mix), progress=False, manifest=manifest
        )
        summary = run_produce(connection, versions[:available], options, registry=registry)
        assert summary.sent == count
        return read_manifest(manifest)

    produce("v1=1", 200, available=1)
    ingest = run_ingest(spark, connection.kafka, tables, live)
    silver = None
    try:
        wait_for(lambda: tables.bronze.exists(spark) and tables.bronze.read(spark).count() == 200)
        silver = run_silver(spark, product_pipeline(topic), registry, tables.space, live)
        wait_for(lambda: tables.silver.exists(spark) and tables.silver.read(spark).count() == 200)
        assert {"size", "color", "price"}.isdisjoint(tables.silver.read(spark).columns)
        query_id = silver.id

        # v2 and v3 are registered while the query runs
        newer = produce("v2=0.5,v3=0.5", 100, available=3)
        wait_for(lambda: tables.silver.read(spark).count() == 300)
        assert silver.isActive and silver.id == query_id
        assert silver.exception() is None
        current = tables.silver.read(spark)
        assert {"size", "color", "price", "updatedAt"} <= set(current.columns)
        # rows written before the columns existed carry the reader's defaults, not NULL
        wait_for(lambda: tables.silver.read(spark).where(F.col("size").isNull()).isEmpty())
        old = tables.silver.read(spark).where(F.col("schema_version") == 1)
        assert [
            tuple(r) for r in old.groupBy("size", "color", "price", "updatedAt").count().collect()
        ] == [("none", "none", None, EPOCH, 200)]
        v3_rows = current.where(F.col("schema_version") == 3)
        assert v3_rows.count() == sum(1 for line in newer if line["version"] == 3)
        priced = sum(1 for line in newer if line["value"].get("price") is not None)
        assert v3_rows.where(F.col("price").isNotNull()).count() == priced
    finally:
        for query in (silver, ingest):
            if query is not None:
                query.stop()
    run_gold(spark, tables.space, [product_pipeline(topic)], DRAIN)
    gold = tables.gold.read(spark)
    assert gold.agg(F.sum("events")).first()[0] == 300
    assert gold.where(F.col("size").isNull() | F.col("color").isNull()).isEmpty()
    defaults = gold.where((F.col("size") == "none") & (F.col("color") == "none"))
    assert defaults.agg(F.sum("events")).first()[0] == 200


def wait_for(condition, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"condition not met within {timeout:.0f}s")


def test_price_decimal_survives_the_round_trip(pipeline, spark: SparkSession) -> None:
    _, tables, manifest = pipeline
    priced = [line for line in manifest if line["value"].get("price") is not None]
    assert priced, "the v3 share of the mix must produce some prices"
    sample = priced[0]
    row = tables.silver.read(spark).where(F.col("eventId") == sample["eventId"]).first()
    assert row.price == Decimal(sample["value"]["price"])
