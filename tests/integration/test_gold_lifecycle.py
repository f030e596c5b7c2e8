"""Gold across silver's life: insert-only batches, rewrites by new readers (a key added later, a
rename through an alias, a type promotion), re-runs with nothing new, and crashes between gold's
two writes. After every update gold must equal a full recomputation from silver, computed here
independently (a plain groupBy with countDistinct on silver's columns, named by the test).

Silver is written here with plain Spark, obeying silver's contract: partitioned by ``event_date``,
change data feed on, the reader's fields as columns (their Avro aliases in the column metadata)
plus silver's own columns; commits are insert-only MERGEs, full rewrites, or property changes.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    DateType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)
from pyspark.testing import assertDataFrameEqual

from avrolake.pipeline import gold_io
from avrolake.pipeline.gold_io import GoldRunSummary, run_gold, update_gold
from avrolake.pipeline.tables import TableLocations
from avrolake.pipeline.triggers import TriggerSettings
from example_pipeline import DEFINITIONS_FILE, product_pipeline

ALIASES = "avrolake.aliases"
PIPELINE = product_pipeline()
SPEC = PIPELINE.records[0].gold  # the Product example's gold, as pipelines.yml defines it
assert SPEC is not None
DAY = dt.datetime(2026, 11, 23)
PRODUCTS = ("P1", "P2", "P3", "P4")  # few products: groups see the same product again and again


@dataclass(frozen=True)
class Field:
    """One reader field: its silver column, type, Avro aliases, and Avro default. ``source`` is
    the event attribute it resolves from (a renamed field reads the old name's value)."""

    name: str
    type: DataType
    default: Any = None
    aliases: tuple[str, ...] = ()
    source: str | None = None


BASE = (
    Field("productId", StringType()),
    Field("eventId", StringType()),
    Field("type", StringType()),
    Field("timestamp", LongType()),
)
V1 = BASE
V2 = (*BASE, Field("size", IntegerType(), 0), Field("color", StringType(), "none"))
V3 = (*BASE, Field("size", IntegerType(), 0),
      Field("colour", StringType(), "none", ("color",), source="color"))  # fmt: skip
V4 = (*BASE, Field("size", LongType(), 0),
      Field("colour", StringType(), "none", ("color",), source="color"))  # fmt: skip
SILVER_OWN = (
    StructField("event_time", TimestampType()),
    StructField("event_date", DateType()),
    StructField("schema_version", IntegerType()),
    StructField("schema_ref", StringType()),
    StructField("wire_format", StringType()),
    StructField("topic", StringType()),
    StructField("partition", IntegerType()),
    StructField("offset", LongType()),
    StructField("kafka_timestamp", TimestampType()),
    StructField("ingested_at", TimestampType()),
)


class Silver:
    """A silver table obeying the contract. Events are kept as written (attributes by their
    original names); each write resolves them to the current reader, as Avro would."""

    def __init__(self, spark: SparkSession, path: str) -> None:
        self.spark = spark
        self.path = path
        self.events: list[dict[str, Any]] = []
        self.reader: tuple[Field, ...] = V1
        self.version = 1

    def schema(self) -> StructType:
        fields = [StructField(f.name, f.type, metadata={ALIASES: list(f.aliases)})
                  for f in self.reader]  # fmt: skip
        return StructType([*fields, *SILVER_OWN])

    def rows(self, events: list[dict[str, Any]]) -> DataFrame:
        rows = []
        for event in events:
            values = [event.get(f.source or f.name, f.default) for f in self.reader]
            at = dt.datetime.fromtimestamp(event["timestamp"], dt.UTC).replace(tzinfo=None)
            rows.append((*values, at, at.date(), event["version"], str(event["version"]),
                         "confluent", "products", 0, event["offset"], at, at))  # fmt: skip
        return self.spark.createDataFrame(rows, self.schema())

    def record_reader(self) -> None:
        """What silver does after creating or rewriting the table: a metadata-only commit."""
        self.spark.sql(
            f"ALTER TABLE delta.`{self.path}` SET TBLPROPERTIES "
            f"('delta.enableChangeDataFeed' = 'true', 'avrolake.reader' = 'v{self.version}')"
        )

    def create(self) -> None:
        (
            DeltaTable.createIfNotExists(self.spark)
            .location(self.path)
            .addColumns(self.schema())
            .partitionedBy("event_date")
            .property("delta.enableChangeDataFeed", "true")
            .execute()
        )
        self.record_reader()

    def insert(self, events: list[dict[str, Any]]) -> None:
        """Silver's append: a MERGE that only inserts events it does not have (by eventId)."""
        (
            DeltaTable.forPath(self.spark, self.path)
            .alias("t")
            .merge(
                self.rows(events).alias("s"),
                "t.event_date = s.event_date AND t.eventId = s.eventId",
            )
            .whenNotMatchedInsertAll()
            .execute()
        )
        known = {e["eventId"] for e in self.events}
        self.events += [e for e in events if e["eventId"] not in known]

    def rewrite(self, reader: tuple[Field, ...]) -> None:
        """Silver's rewrite for a new reader: every row decoded again, the table overwritten."""
        self.reader, self.version = reader, self.version + 1
        (
            self.rows(self.events)
            .write.format("delta")
            .mode("overwrite")
            .option("overwriteSchema", "true")
            .partitionBy("event_date")
            .save(self.path)
        )
        self.record_reader()

    def read(self) -> DataFrame:
        return self.spark.read.format("delta").load(self.path)


class Events:
    """Random events of the current writer version over two days, reproducible."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.offset = 0

    def make(self, count: int, version: int, sizes: tuple[int, ...] = (38, 40)) -> list[dict]:
        events = []
        for _ in range(count):
            self.offset += 1
            event = {
                "productId": self.rng.choice(PRODUCTS),
                "eventId": f"e{self.offset}",
                "type": self.rng.choice(("shirt", "shoes")),
                "timestamp": int(DAY.replace(tzinfo=dt.UTC).timestamp())
                + self.rng.randrange(2 * 86400),
                "version": version,
                "offset": self.offset,
            }
            if version >= 2:
                event["size"] = self.rng.choice(sizes)
                event["color"] = self.rng.choice(("red", "blue"))
            events.append(event)
        return events


def expected_gold(silver: DataFrame, color: str | None, size: str | None) -> DataFrame:
    """Gold by definition, from silver's columns named here (None: the reader has no such
    field, the key is NULL)."""

    def key(column: str | None, name: str) -> Any:
        return (F.col(column) if column else F.lit(None).cast("string")).alias(name)

    return silver.groupBy("event_date", "type", key(color, "color"), key(size, "size")).agg(
        F.count(F.lit(1)).alias("events"),
        F.countDistinct("productId").alias("distinct_products"),
        F.min("event_time").alias("first_event_time"),
        F.max("event_time").alias("last_event_time"),
    )


@pytest.fixture
def world(spark: SparkSession, tmp_path: Path) -> tuple[TableLocations, Silver]:
    tables = TableLocations.in_directory(tmp_path / "warehouse")
    assert tables.silver.path is not None
    return tables, Silver(spark, tables.silver.path)


def latest_version(spark: SparkSession, path: str | None) -> int:
    assert path is not None
    [latest] = DeltaTable.forPath(spark, path).history(1).collect()
    return int(latest.version)


def check(
    spark: SparkSession,
    tables: TableLocations,
    silver: Silver,
    mode: str,
    *,
    color: str | None = "color",
    size: str | None = "size",
    rows: int | None = None,
) -> GoldRunSummary:
    """One gold update, which must take ``mode``; then gold equals the recomputation and the
    key table holds each distinct pair exactly once."""
    summary = update_gold(spark, tables, SPEC)
    assert summary.mode == mode, summary
    assert summary.silver_version == latest_version(spark, silver.path)
    if rows is not None:
        assert summary.rows_folded == rows
    expected = expected_gold(silver.read(), color, size)
    assertDataFrameEqual(tables.gold.read(spark), expected)
    keys = tables.gold_keys.read(spark)
    assert keys.groupBy(*keys.columns).count().where("count > 1").isEmpty()
    return summary


def test_gold_equals_a_recomputation_after_every_update(
    spark: SparkSession, world: tuple[TableLocations, Silver], monkeypatch: pytest.MonkeyPatch
) -> None:
    tables, silver = world
    events = Events(seed=8)
    v1 = dict(color=None, size=None)

    # v1: no size, no color. The first update has nothing to continue from.
    silver.create()
    silver.insert(events.make(30, version=1))
    check(spark, tables, silver, "full", **v1)
    # insert-only batches are folded in incrementally, exactly the rows inserted
    silver.insert(events.make(25, version=1))
    check(spark, tables, silver, "incremental", **v1, rows=25)

    # v2 adds size and color: the rewrite gives v1 rows the defaults, gold recomputes
    silver.rewrite(V2)
    check(spark, tables, silver, "full")
    # two batches and a property change between two updates; the second batch repeats five
    # events (a producer retry), which silver's MERGE does not insert again
    first = events.make(20, version=2)
    silver.insert(first)
    silver.record_reader()
    silver.insert(first[:5] + events.make(15, version=2))
    check(spark, tables, silver, "incremental", rows=35)
    # nothing new: no write at all
    gold_version = latest_version(spark, tables.gold.path)
    silver.insert(first[:3])  # a replayed batch: a MERGE that inserts nothing
    check(spark, tables, silver, "up-to-date")
    check(spark, tables, silver, "up-to-date")
    assert latest_version(spark, tables.gold.path) == gold_version

    # v3 renames color to colour (alias "color"): gold's color follows the alias
    silver.rewrite(V3)
    assert "color" not in silver.read().columns
    check(spark, tables, silver, "full", color="colour")
    silver.insert(events.make(20, version=3))
    check(spark, tables, silver, "incremental", color="colour", rows=20)

    # v4 promotes size int -> long; a crash after the key table's rewrite, before gold's
    silver.rewrite(V4)
    real_overwrite = gold_io._overwrite

    def crash_before_gold(rows: DataFrame, table: Any, **options: str) -> None:
        if table == tables.gold:
            raise RuntimeError("crash before gold's write")
        real_overwrite(rows, table, **options)

    monkeypatch.setattr(gold_io, "_overwrite", crash_before_gold)
    with pytest.raises(RuntimeError, match="crash before gold"):
        update_gold(spark, tables, SPEC)
    monkeypatch.undo()
    assert dict(tables.gold.read(spark).dtypes)["size"] == "int"  # gold untouched
    check(spark, tables, silver, "full", color="colour")  # the reason to recompute is still there
    assert dict(tables.gold.read(spark).dtypes)["size"] == "bigint"
    # values the old type could not hold
    silver.insert(events.make(10, version=4, sizes=(2**33, 40)))
    check(spark, tables, silver, "incremental", color="colour", rows=10)

    # a crash after new pairs went into the key table, before gold's write: the re-run folds
    # the same rows into the old gold and counts each pair once
    silver.insert(events.make(20, version=4, sizes=(42, 44)))
    before = tables.gold.read(spark).collect()
    pairs_before = tables.gold_keys.read(spark).count()
    monkeypatch.setattr(gold_io, "_write_gold_dates", _crash)
    with pytest.raises(RuntimeError, match="crash before gold"):
        update_gold(spark, tables, SPEC)
    monkeypatch.undo()
    assertDataFrameEqual(tables.gold.read(spark), before)
    assert tables.gold_keys.read(spark).count() > pairs_before  # the new sizes' pairs
    silver.insert(events.make(5, version=4))  # and silver moves on meanwhile
    check(spark, tables, silver, "incremental", color="colour", rows=25)

    # gold's own state lost: recomputed, not trusted
    shutil.rmtree(tables.gold_keys.path or "")
    silver.insert(events.make(5, version=4))
    summary = check(spark, tables, silver, "full", color="colour")
    assert "key table" in summary.reason

    # silver dropped and created again: its versions start over, gold starts over with them
    shutil.rmtree(silver.path)
    silver.events = []
    silver.create()
    silver.insert(events.make(10, version=4))
    summary = check(spark, tables, silver, "full", color="colour")
    assert "behind gold's" in summary.reason


def _crash(*_args: Any, **_kwargs: Any) -> None:
    raise RuntimeError("crash before gold's write")


def wait_for(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout:.0f}s"
        time.sleep(0.5)


def gold_events(spark: SparkSession, tables: TableLocations) -> int:
    if not tables.gold.exists(spark):
        return 0
    [total] = tables.gold.read(spark).agg(F.sum("events")).collect()
    return int(total[0] or 0)


def test_continuous_gold_follows_silver_until_stopped(
    spark: SparkSession, world: tuple[TableLocations, Silver]
) -> None:
    tables, silver = world
    events = Events(seed=10)
    silver.create()
    silver.insert(events.make(10, version=1))
    stop = threading.Event()
    result: list[list[GoldRunSummary]] = []
    trigger = TriggerSettings("continuous", "1 second")
    runner = threading.Thread(
        target=lambda: result.append(run_gold(spark, tables.space, [PIPELINE], trigger, stop=stop))
    )
    runner.start()
    try:
        wait_for(lambda: gold_events(spark, tables) == 10)
        silver.insert(events.make(7, version=1))  # picked up without a restart
        wait_for(lambda: gold_events(spark, tables) == 17)
    finally:
        stop.set()
        runner.join(timeout=120)
    assert not runner.is_alive()
    assert result and [s.table for s in result[0]] == ["gold"]
    assert result[0][0].silver_version >= 2
    assertDataFrameEqual(tables.gold.read(spark), expected_gold(silver.read(), None, None))


def avrolake(*args: str, output: Path) -> subprocess.Popen:
    """The CLI in a process of its own; stdout and stderr go to ``output`` (a pipe nobody reads
    while it runs would fill up and block it)."""
    with output.open("w") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "avrolake", *args], stdout=sink, stderr=subprocess.STDOUT
        )


def test_gold_command_rejects_a_bad_interval_in_one_line(tmp_path: Path) -> None:
    output = tmp_path / "gold.log"
    process = avrolake("gold", "--warehouse-dir", str(tmp_path), "--trigger", "continuous",
                       "--interval", "soon", output=output)  # fmt: skip
    assert process.wait(timeout=60) == 2
    assert output.read_text().strip().splitlines() == [
        "avrolake gold: --interval 'soon' is not an interval like '5 seconds' or '1 minute'"
    ]


def test_gold_command_stops_on_sigterm_and_exits_normally(
    world: tuple[TableLocations, Silver], tmp_path: Path
) -> None:
    _, silver = world
    silver.create()
    silver.insert(Events(seed=11).make(12, version=1))
    warehouse = str(Path(silver.path).parent)
    output = tmp_path / "gold.log"
    process = avrolake("gold", "--definitions", str(DEFINITIONS_FILE), "--warehouse-dir", warehouse,
                       "--trigger", "continuous", "--interval", "1 second",
                       output=output)  # fmt: skip
    try:
        wait_for(lambda: "up to date" in output.read_text() or process.poll() is not None, 300)
        assert process.poll() is None, output.read_text()
        process.send_signal(signal.SIGTERM)  # to the Python process only: Spark's JVM lives on
        assert process.wait(timeout=120) == 0, output.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    log = output.read_text()
    assert "gold gold: full, recomputed from silver v2" in log
    assert log.strip().splitlines()[-1].endswith("gold stopped on request")
    assert "Traceback" not in log
