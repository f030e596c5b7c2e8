"""The medallion as a schedule runs it: ingest, silver and gold as ``available-now`` runs, again and
again on the same checkpoints, with the registry changing between runs.

Five real registrations of the Product schema (ours v1→v3, then ``type`` renamed ``category``
through an alias, then ``quantity`` promoted int→long); old producers keep writing old versions;
earlier events are re-sent (a producer retry, an upstream replay) after silver's schema changed.
After every scheduled run:

- bronze holds every delivery byte for byte (re-sends included);
- silver holds each event once, every cell equal to fastavro's resolution of its first delivery's
  bronze bytes to the latest version (``live_topic``'s oracle);
- gold equals a recomputation from silver written here: a plain groupBy naming silver's columns
  (``category`` feeds gold's ``type`` once renamed).

A run with nothing new writes nothing: no silver rewrite, no gold commit.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from avrolake.pipeline.gold_io import run_gold
from avrolake.pipeline.runners import run_ingest, run_silver
from avrolake.pipeline.tables import TableLocations
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.producer.broker import ensure_topic
from avrolake.registry import RegisteredSchema, open_registry
from example_pipeline import product_pipeline
from live_topic import Producers, assert_silver_is_avro_resolution, connection

SCHEMAS = Path(__file__).parents[2] / "schemas" / "product"
SCHEDULED = TriggerSettings()  # available-now: what the bundle's scheduled jobs run
RUN_TIMEOUT_S = 600  # per stage run; two shared cores


def _v3_fields() -> list[dict]:
    return json.loads((SCHEMAS / "v3.avsc").read_text())["fields"]


def _schema(fields: list[dict]) -> str:
    v3 = json.loads((SCHEMAS / "v3.avsc").read_text())
    return json.dumps({**v3, "fields": fields})


def _renamed(fields: list[dict]) -> list[dict]:
    """``type`` → ``category`` (aliases: ``type``), and a new ``quantity`` int."""
    renamed = [
        {**f, "name": "category", "aliases": ["type"]} if f["name"] == "type" else f for f in fields
    ]
    return [*renamed, {"name": "quantity", "type": "int", "default": 1}]


def _promoted(fields: list[dict]) -> list[dict]:
    return [{**f, "type": "long"} if f["name"] == "quantity" else f for f in fields]


V4_FIELDS = _renamed(_v3_fields())
VERSIONS = [
    (SCHEMAS / "v1.avsc").read_text(),
    (SCHEMAS / "v2.avsc").read_text(),
    (SCHEMAS / "v3.avsc").read_text(),
    _schema(V4_FIELDS),
    _schema(_promoted(V4_FIELDS)),
]


@dataclass(frozen=True)
class Run:
    """A scheduled run: ``registers`` the next version first (or None), ``writers`` (version
    number → records) produce, ``resend`` earlier deliveries go out again; then the three
    stages run. ``type_column``: silver's column that feeds gold's ``type``."""

    registers: str | None
    writers: dict[int, int]
    resend: int = 0
    type_column: str = "type"


RUNS = [
    Run(VERSIONS[0], {1: 8}),
    Run(VERSIONS[1], {1: 4, 2: 8}),
    Run(None, {}),  # nothing new: nothing written
    Run(VERSIONS[2], {1: 3, 2: 3, 3: 8}, resend=5),
    Run(VERSIONS[3], {1: 2, 3: 3, 4: 8}, resend=4, type_column="category"),
    Run(VERSIONS[4], {1: 2, 4: 3, 5: 8}, resend=6, type_column="category"),
]

PRODUCTS = ("P1", "P2", "P3")  # few: gold's distinct counts see products again across runs
TYPES = ("view", "cart", "buy")
DAY = 1_764_028_800  # 2025-11-25 00:00 UTC


def record(writer: RegisteredSchema, n: int) -> dict:
    """Event ``n`` as ``writer`` has it: few products and types, two event dates, and every field
    the writer has (the rest is Avro's business: defaults in silver)."""
    fields = {f["name"]: f for f in json.loads(writer.schema_str)["fields"]}
    values: dict[str, Any] = {
        "productId": PRODUCTS[n % len(PRODUCTS)],
        "eventId": f"e{n:03d}-v{writer.version}",
        "type": TYPES[n % len(TYPES)],
        "category": TYPES[n % len(TYPES)],
        "size": ("S", "M")[n % 2],
        "color": ("red", "blue", "green")[n % 3],
        "timestamp": DAY + n * 3_001,  # ~29 events a day: the runs span two event dates
        "price": None if n % 4 == 0 else Decimal(n * 101).scaleb(-2),
        "updatedAt": dt.datetime.fromtimestamp(DAY + n, dt.UTC),
        "quantity": n if writer.version < 5 else n + 2**40,  # beyond int once it is a long
    }
    return {name: values[name] for name in fields}


def expected_gold(silver: DataFrame, type_column: str) -> DataFrame:
    """Gold by definition, from silver's columns named here (a key the reader lacks is NULL)."""

    def key(name: str) -> Any:
        column = F.col(name) if name in silver.columns else F.lit(None).cast("string")
        return column.alias(name)

    return silver.groupBy(
        "event_date", F.col(type_column).alias("type"), key("color"), key("size")
    ).agg(
        F.count(F.lit(1)).alias("events"),
        F.countDistinct("productId").alias("distinct_products"),
        F.min("event_time").alias("first_event_time"),
        F.max("event_time").alias("last_event_time"),
    )


def latest_version(spark: SparkSession, path: str | None) -> int:
    assert path is not None
    [latest] = DeltaTable.forPath(spark, path).history(1).collect()
    return int(latest.version)


def run_to_end(query: Any) -> None:
    assert query.awaitTermination(RUN_TIMEOUT_S), f"{query.name}: still running"
    assert query.exception() is None, query.exception()


@pytest.mark.parametrize("flavor", ["confluent", "glue"])
def test_scheduled_runs_follow_every_registration_exactly_once(
    flavor: str, local_stack: Any, spark: SparkSession, new_topic: Any, tmp_path: Path
) -> None:
    settings = connection(local_stack, flavor, new_topic())
    topic = settings.kafka.topic
    pipeline = product_pipeline(topic)
    registry = open_registry(settings.registry)
    tables = TableLocations.in_directory(tmp_path / "warehouse")
    ensure_topic(settings.kafka, set(), timeout=60)
    producing = Producers(settings)
    versions: dict[int, RegisteredSchema] = {}
    n = 0
    for index, run in enumerate(RUNS):
        if run.registers is not None:
            registered = registry.register(topic, run.registers)
            versions[registered.version] = registered
        reader = versions[max(versions)]
        assert registry.latest(topic) == reader
        for version, count in run.writers.items():
            producing.produce_records(
                versions[version], [record(versions[version], n + i) for i in range(count)]
            )
            n += count
        # the oldest deliveries again, byte for byte, each of them already in silver
        producing.resend(producing.sent[: run.resend])
        before = (
            (latest_version(spark, tables.silver.path), latest_version(spark, tables.gold.path))
            if index
            else None
        )

        run_to_end(run_ingest(spark, settings.kafka, tables, SCHEDULED))
        run_to_end(run_silver(spark, pipeline, registry, tables.space, SCHEDULED))
        run_gold(spark, tables.space, [pipeline], SCHEDULED)

        assert_silver_is_avro_resolution(spark, tables, producing.sent, reader)
        silver = tables.silver.read(spark)
        assertDataFrameEqual(tables.gold.read(spark), expected_gold(silver, run.type_column))
        if not run.writers and not run.resend and run.registers is None:
            after = (
                latest_version(spark, tables.silver.path),
                latest_version(spark, tables.gold.path),
            )
            assert after == before, "a run with nothing new committed to silver or gold"
    assert len({s.event_id for s in producing.sent}) == n
    assert len(producing.sent) == n + sum(r.resend for r in RUNS)
