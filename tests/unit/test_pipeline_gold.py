"""Gold's pure parts: resolving a spec's names by name or alias, the aggregates, folding a batch
into old gold with the key pairs, the classification of silver's commits, gold's recorded progress,
and the continuous interval. Then whole updates of small local Delta tables for specs other than
the Product example's: sums, min/max and counts without a key table, a changed spec, and
incremental folding against a recomputation by plain Spark."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)
from pyspark.testing import assertDataFrameEqual

from avrolake.definitions import GoldSpec
from avrolake.errors import ConfigError, PipelineError
from avrolake.pipeline import gold
from avrolake.pipeline.gold import Change, Commit, KeyColumn, Plan, Progress
from avrolake.pipeline.gold_io import parse_interval, update_gold
from avrolake.pipeline.tables import TableLocations, TableRef, TableSpace
from example_pipeline import product_pipeline

D23, D24 = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
GOLD = (
    "event_date date, type string, color string, size string, events bigint, "
    "distinct_products bigint, first_event_time timestamp, last_event_time timestamp"
)
PAIRS = "event_date date, type string, color string, size string, productId string"


PRODUCT = product_pipeline().records[0].gold
assert PRODUCT is not None
# The Product spec as the unit tests' projected rows have it: every name a column of its own.
PRODUCT_PLAN = Plan(
    PRODUCT,
    (
        KeyColumn("type", "type", "string"),
        KeyColumn("color", "color", "string"),
        KeyColumn("size", "size", "string"),
        KeyColumn("productId", "productId", "string"),
        KeyColumn("event_time", "event_time", "timestamp"),
    ),
)


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour)


def aliased(name: str, aliases: list[str], data_type: DataType | None = None) -> StructField:
    return StructField(name, data_type or StringType(), metadata={gold.ALIASES: aliases})


# --- resolve / project -----------------------------------------------------------------------


def test_keys_resolve_by_name_then_alias_else_absent() -> None:
    silver = StructType(
        [
            aliased("productId", []),
            aliased("type", []),
            aliased("colour", ["color", "tint"]),
            StructField("event_time", TimestampType()),
        ]
    )
    assert gold.resolve(silver, ["type", "color", "size", "productId"]) == (
        KeyColumn("type", "type", "string"),
        KeyColumn("color", "colour", "string"),
        KeyColumn("size", None, "string"),
        KeyColumn("productId", "productId", "string"),
    )


def test_a_column_of_the_name_wins_over_an_alias() -> None:
    silver = StructType([aliased("size", [], LongType()), aliased("fit", ["size"])])
    assert gold.resolve(silver, ["size"]) == (KeyColumn("size", "size", "bigint"),)


def test_two_columns_aliasing_one_key_are_refused() -> None:
    silver = StructType([aliased("colour", ["color"]), aliased("tint", ["color"])])
    with pytest.raises(PipelineError, match="colour, tint all alias 'color'"):
        gold.resolve(silver, ["color"])


def test_plan_resolves_each_name_once_in_spec_order() -> None:
    silver = StructType(
        [
            aliased("productId", []),
            aliased("type", []),
            aliased("colour", ["color"]),
            StructField("event_time", TimestampType()),
            StructField("event_date", DateType()),
        ]
    )
    assert gold.plan(PRODUCT, silver) == Plan(
        PRODUCT,
        (
            KeyColumn("type", "type", "string"),
            KeyColumn("color", "colour", "string"),
            KeyColumn("size", None, "string"),
            KeyColumn("productId", "productId", "string"),
            KeyColumn("event_time", "event_time", "timestamp"),  # min and max: read once
        ),
    )


def test_project_reads_renamed_columns_and_nulls_absent_keys(spark: SparkSession) -> None:
    silver = spark.createDataFrame(
        [("p1", "shoes", "red", at(23, 1), D23)],
        "productId string, type string, colour string, event_time timestamp, event_date date",
    )
    plan = Plan(
        PRODUCT,
        (
            KeyColumn("type", "type", "string"),
            KeyColumn("color", "colour", "string"),
            KeyColumn("size", None, "int"),
            KeyColumn("productId", "productId", "string"),
            KeyColumn("event_time", "event_time", "timestamp"),
        ),
    )
    expected = spark.createDataFrame(
        [(D23, "shoes", "red", None, "p1", at(23, 1))],
        "event_date date, type string, color string, size int, productId string, "
        "event_time timestamp",
    )
    assertDataFrameEqual(gold.project(silver, plan), expected)


def spec(*aggregates: dict, group_by: tuple[str, ...] = ("kind",)) -> GoldSpec:
    return GoldSpec.model_validate(
        {"table": "sales", "group_by": group_by, "aggregates": aggregates}
    )


@pytest.mark.parametrize(
    ("aggregate", "column", "problem"),
    [
        ({"function": "sum", "field": "sku"}, "'sku' of type string", "is not a number"),
        ({"function": "sum", "field": "sold_at"}, "'sold_at' of type timestamp", "is not a number"),
        ({"function": "sum", "field": "event_date"}, "'event_date' of type date",
         "is not a number"),
        ({"function": "sum", "field": "paid"}, "'paid' of type boolean", "is not a number"),
        ({"function": "min", "field": "tags"}, "'tags' of type map<string,string>",
         "holds values Spark cannot compare"),
        ({"function": "max", "field": "nested"}, "'nested' of type struct<tags:map<string,int>>",
         "holds values Spark cannot compare"),
        ({"function": "count_distinct", "field": "labels"},
         "'labels' of type map<string,string>", "holds values Spark cannot compare"),
    ],
)  # fmt: skip
def test_a_column_that_cannot_take_its_role_is_refused(
    aggregate: dict, column: str, problem: str
) -> None:
    silver = StructType(
        [
            StructField("sku", StringType()),
            StructField("sold_at", TimestampType()),
            StructField("event_date", DateType()),
            StructField("paid", BooleanType()),
            StructField("tags", MapType(StringType(), StringType())),
            StructField(
                "nested", StructType([StructField("tags", MapType(StringType(), IntegerType()))])
            ),
            aliased("labels", ["tags_v1"], MapType(StringType(), StringType())),
        ]
    )
    bad = spec({"name": "x", **aggregate})
    with pytest.raises(PipelineError) as caught:
        gold.plan(bad, silver)
    assert str(caught.value) == (
        f"gold table sales: {aggregate['function']} x reads silver column {column}, which "
        f"{problem}; point it at another field in the pipeline definitions"
    )


def test_a_group_key_that_cannot_be_compared_is_refused_by_its_alias() -> None:
    silver = StructType([aliased("labels", ["tags"], MapType(StringType(), StringType()))])
    with pytest.raises(PipelineError, match="group_by tags reads silver column 'labels'"):
        gold.plan(spec({"name": "n", "function": "count"}, group_by=("tags",)), silver)


# --- aggregates ------------------------------------------------------------------------------


def rows(spark: SparkSession, data: list[tuple]) -> DataFrame:
    """Projected silver rows: (date, type, color, size, productId, event_time)."""
    return spark.createDataFrame(
        data,
        "event_date date, type string, color string, size string, productId string, "
        "event_time timestamp",
    )


ROWS = [
    (D23, "shirt", "red", "M", "p1", at(23, 23)),
    (D23, "shirt", "red", "M", "p1", at(23, 1)),
    (D23, "shirt", "red", "M", "p2", at(23, 12)),
    (D23, "shirt", "red", "M", None, at(23, 13)),  # an event, but no product
    (D24, "shirt", "red", "M", "p1", at(24, 0)),  # next day: its own group
    (D24, "pants", None, None, "p3", at(24, 5)),  # keys the reader lacks: NULL groups
]


def test_aggregate_counts_events_and_exact_distinct_products(spark: SparkSession) -> None:
    grain = gold.partials(rows(spark, ROWS), PRODUCT_PLAN)
    expected = spark.createDataFrame(
        [
            (D23, "shirt", "red", "M", 4, 2, at(23, 1), at(23, 23)),
            (D24, "shirt", "red", "M", 1, 1, at(24, 0), at(24, 0)),
            (D24, "pants", None, None, 1, 1, at(24, 5), at(24, 5)),
        ],
        GOLD,
    )
    assertDataFrameEqual(gold.aggregate(grain, PRODUCT_PLAN), expected)


def test_combine_pairs_marks_stored_pairs_of_touched_groups_only(spark: SparkSession) -> None:
    stored = spark.createDataFrame(
        [
            (D24, "pants", None, None, "p3"),  # a NULL-keyed group the batch touches
            (D24, "pants", None, None, "p3"),  # stored twice (a re-run): still one pair
            (D24, "shoes", "red", "M", "p9"),  # a group the batch does not touch
        ],
        PAIRS,
    )
    batch = gold.partials(
        rows(
            spark,
            [
                (D24, "pants", None, None, "p3", at(24, 7)),
                (D24, "pants", None, None, "p4", at(24, 8)),
                (D24, "pants", None, None, None, at(24, 9)),
            ],
        ),
        PRODUCT_PLAN,
    )
    combined = gold.combine_pairs(stored, batch, PRODUCT_PLAN)
    assertDataFrameEqual(
        combined,
        spark.createDataFrame(
            [(D24, "pants", None, None, "p3", True), (D24, "pants", None, None, "p4", False)],
            f"{PAIRS}, stored boolean",
        ),
    )
    assertDataFrameEqual(
        gold.new_pairs(combined, PRODUCT_PLAN),
        spark.createDataFrame([(D24, "pants", None, None, "p4")], PAIRS),
    )
    assertDataFrameEqual(
        gold.count_pairs(combined, PRODUCT_PLAN),
        spark.createDataFrame(
            [(D24, "pants", None, None, 2)], f"{PAIRS.rsplit(',', 1)[0]}, distinct_products bigint"
        ),
    )


def test_fold_adds_events_combines_times_and_takes_the_new_counts(spark: SparkSession) -> None:
    old = spark.createDataFrame(
        [
            (D23, "shirt", "red", "M", 5, 2, at(23, 2), at(23, 20)),
            (D23, "shoes", "blue", "L", 3, 1, at(23, 4), at(23, 5)),  # untouched: kept
            (D23, "pants", None, None, 2, 1, at(23, 6), at(23, 7)),
        ],
        GOLD,
    )
    batch = gold.partials(
        rows(
            spark,
            [
                (D23, "shirt", "red", "M", "p1", at(23, 1)),  # earlier than the first
                (D23, "shirt", "red", "M", "p7", at(23, 21)),  # later than the last
                (D23, "pants", None, None, None, at(23, 8)),  # no product: count stays
                (D23, "socks", "red", "S", None, at(23, 9)),  # a new group without product
            ],
        ),
        PRODUCT_PLAN,
    )
    counts = spark.createDataFrame(
        [(D23, "shirt", "red", "M", 3)], "event_date date, type string, color string, "
        "size string, distinct_products bigint"
    )  # fmt: skip
    expected = spark.createDataFrame(
        [
            (D23, "shirt", "red", "M", 7, 3, at(23, 1), at(23, 21)),
            (D23, "shoes", "blue", "L", 3, 1, at(23, 4), at(23, 5)),
            (D23, "pants", None, None, 3, 1, at(23, 6), at(23, 8)),
            (D23, "socks", "red", "S", 1, 0, at(23, 9), at(23, 9)),
        ],
        GOLD,
    )
    assertDataFrameEqual(gold.fold(old, batch, counts, PRODUCT_PLAN), expected)


# --- silver's commits ------------------------------------------------------------------------

MERGE_INSERT = {
    "numTargetRowsInserted": "5",
    "numTargetRowsUpdated": "0",
    "numTargetRowsDeleted": "0",
    "numTargetRowsMatchedUpdated": "0",
    "numTargetRowsMatchedDeleted": "0",
    "numTargetRowsNotMatchedBySourceUpdated": "0",
    "numTargetRowsNotMatchedBySourceDeleted": "0",
    "numTargetRowsCopied": "0",
}


@pytest.mark.parametrize(
    ("operation", "parameters", "metrics", "change"),
    [
        ("MERGE", {}, MERGE_INSERT, Change.INSERT),
        ("MERGE", {}, {**MERGE_INSERT, "numTargetRowsInserted": "0"}, Change.NONE),
        ("MERGE", {}, {**MERGE_INSERT, "numTargetRowsMatchedUpdated": "1"}, Change.REWRITE),
        ("MERGE", {}, {**MERGE_INSERT, "numTargetRowsNotMatchedBySourceDeleted": "2"},
         Change.REWRITE),
        ("MERGE", {}, {}, Change.REWRITE),  # metrics off: nobody can tell
        ("WRITE", {"mode": "Append"}, {"numOutputRows": "3"}, Change.INSERT),
        ("WRITE", {"mode": "Append"}, {"numOutputRows": "0"}, Change.NONE),
        ("WRITE", {"mode": "Overwrite"}, {"numOutputRows": "3"}, Change.REWRITE),
        ("STREAMING UPDATE", {"outputMode": "Append"}, {"numOutputRows": "3"}, Change.INSERT),
        ("STREAMING UPDATE", {"outputMode": "Complete"}, {"numOutputRows": "3"}, Change.REWRITE),
        ("SET TBLPROPERTIES", {}, {}, Change.NONE),
        ("OPTIMIZE", {}, {"numRemovedFiles": "9"}, Change.NONE),
        ("VACUUM END", {}, {}, Change.NONE),
        ("UPDATE", {}, {"numUpdatedRows": "0"}, Change.REWRITE),
        ("DELETE", {}, {}, Change.REWRITE),
        ("RESTORE", {}, {}, Change.REWRITE),
        ("RENAME COLUMN", {}, {}, Change.REWRITE),
        ("CREATE OR REPLACE TABLE AS SELECT", {}, {}, Change.REWRITE),
    ],
)  # fmt: skip
def test_commits_are_inserts_only_when_known_to_be(
    operation: str, parameters: dict, metrics: dict, change: Change
) -> None:
    assert gold.classify(Commit(7, operation, parameters, metrics)) is change


def test_inserted_rows_come_from_the_commit_metrics() -> None:
    assert Commit(1, "MERGE", {}, MERGE_INSERT).inserted_rows == 5
    assert Commit(1, "WRITE", {"mode": "Append"}, {"numOutputRows": "3"}).inserted_rows == 3
    assert Commit(1, "WRITE", {"mode": "Append"}, {}).inserted_rows is None


# --- progress --------------------------------------------------------------------------------


def test_progress_round_trips_through_commit_metadata() -> None:
    progress = Progress(41, "2026-11-23T10:15:02", "0f3c", PRODUCT_PLAN)
    assert Progress.from_json(progress.to_json()) == progress


OLDER = (
    '{"avrolake.gold": {"silver_version": 3, "silver_commit": "t", "lineage": "l", '
    '"keys": {"type": ["type", "string"]}}}'
)  # an avrolake before gold specs: no spec


@pytest.mark.parametrize(
    "metadata",
    [None, "", "fixing a typo", "[1]", '{"other": 1}', '{"avrolake.gold": {"silver_version": 3}}',
     OLDER],
)  # fmt: skip
def test_other_commit_metadata_is_no_progress(metadata: str | None) -> None:
    assert Progress.from_json(metadata) is None


# --- interval --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5 seconds", 5), ("1 minute", 60), ("500 ms", 0.5), ("10", 10), ("interval 2 hours", 7200)],
)
def test_intervals_read_as_spark_writes_them(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["soon", "5 fortnights", "", "-1 second"])
def test_a_bad_interval_names_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--interval .* is not an interval like '5 seconds'"):
        parse_interval(text)


# --- whole updates of other specs --------------------------------------------------------------

SALES_SILVER = StructType(
    [
        StructField("sku", StringType()),
        aliased("category", ["kind"]),  # renamed from "kind": the spec still says kind
        StructField("qty", IntegerType()),
        StructField("price", DecimalType(10, 2)),
        StructField("grams", DoubleType()),
        StructField("event_time", TimestampType()),
        StructField("event_date", DateType()),
        StructField("kafka_timestamp", TimestampType()),
    ]
)
SALES_SPEC = spec(
    {"name": "sales", "function": "count"},
    {"name": "units", "function": "sum", "field": "qty"},
    {"name": "revenue", "function": "sum", "field": "price"},
    {"name": "weight", "function": "sum", "field": "grams"},
    {"name": "refunds", "function": "sum", "field": "refund"},  # no such field: NULL
    {"name": "first_seen", "function": "min", "field": "kafka_timestamp"},
    {"name": "last_sku", "function": "max", "field": "sku"},
    group_by=("kind", "channel"),  # no channel field: one NULL group
)
SKUS = {"name": "skus", "function": "count_distinct", "field": "sku"}


class Sales:
    """Random sales over two days, NULLs in every column, reproducible. Weights are sums of
    powers of two, so a double sum is exact in any order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def make(self, spark: SparkSession, count: int) -> DataFrame:
        rng = self.rng
        rows = []
        for _ in range(count):
            at_ = dt.datetime(2026, 11, 23) + dt.timedelta(seconds=rng.randrange(2 * 86400))
            rows.append(
                (
                    rng.choice(("s1", "s2", "s3", "s4", None)),
                    rng.choice(("tee", "mug", None)),
                    rng.choice((1, 2, 7, -3, None)),
                    rng.choice((Decimal("9.99"), Decimal("0.01"), Decimal("-5.50"), None)),
                    rng.choice((0.5, 1.25, 2.0, None)),
                    at_,
                    at_.date(),
                    at_ + dt.timedelta(seconds=rng.randrange(-600, 600)),
                )
            )
        return spark.createDataFrame(rows, SALES_SILVER)


def sales_oracle(silver: DataFrame, distinct: bool) -> DataFrame:
    """SALES_SPEC (and SKUS) by definition: a plain groupBy naming silver's columns."""
    columns = [
        F.count(F.lit(1)).alias("sales"),
        F.sum("qty").alias("units"),
        F.sum("price").alias("revenue"),
        F.sum("grams").alias("weight"),
        F.sum(F.lit(None).cast("bigint")).alias("refunds"),
        F.min("kafka_timestamp").alias("first_seen"),
        F.max("sku").alias("last_sku"),
    ]
    if distinct:
        columns.append(F.countDistinct("sku").alias("skus"))
    return silver.groupBy(
        "event_date", F.col("category").alias("kind"), F.lit(None).cast("string").alias("channel")
    ).agg(*columns)


def sales_tables(space: TableSpace, spec: GoldSpec) -> TableLocations:
    return TableLocations.named(space, "sales_silver", "quarantine", spec.table, spec.keys_table)


def create_silver(spark: SparkSession, space: TableSpace) -> TableRef:
    silver = space.table("sales_silver")
    (
        DeltaTable.createIfNotExists(spark)
        .location(str(silver.path))
        .addColumns(SALES_SILVER)
        .partitionedBy("event_date")
        .property("delta.enableChangeDataFeed", "true")
        .execute()
    )
    return silver


def append(rows: DataFrame, silver: TableRef) -> None:
    rows.write.format("delta").mode("append").save(silver.path)


@pytest.mark.parametrize("distinct", [False, True], ids=["no count_distinct", "count_distinct"])
def test_incremental_gold_equals_a_recomputation_for_every_function(
    spark: SparkSession, tmp_path: Path, distinct: bool
) -> None:
    space = TableSpace.in_directory(tmp_path)
    sales_spec = spec(*SALES_SPEC.model_dump()["aggregates"], *([SKUS] if distinct else []),
                      group_by=SALES_SPEC.group_by)  # fmt: skip
    tables = sales_tables(space, sales_spec)
    assert tables.gold is not None and tables.gold_keys is not None
    silver, sales = create_silver(spark, space), Sales(seed=3)
    append(sales.make(spark, 60), silver)

    first = update_gold(spark, tables, sales_spec)
    assert first.mode == "full"
    assertDataFrameEqual(tables.gold.read(spark), sales_oracle(silver.read(spark), distinct))
    append(sales.make(spark, 30), silver)
    append(sales.make(spark, 20), silver)
    second = update_gold(spark, tables, sales_spec)
    assert (second.mode, second.rows_folded) == ("incremental", 50)
    assertDataFrameEqual(tables.gold.read(spark), sales_oracle(silver.read(spark), distinct))

    # The same silver recomputed into a gold table of its own: the same rows, types included.
    again_spec = sales_spec.model_copy(update={"table": "again", "keys_table": "again_keys"})
    again = sales_tables(space, again_spec)
    assert again.gold is not None
    assert update_gold(spark, again, again_spec).mode == "full"
    assertDataFrameEqual(tables.gold.read(spark), again.gold.read(spark))
    assert tables.gold_keys.exists(spark) is distinct  # a key table only for count_distinct
    if distinct:  # every (group, sku) once
        pairs = silver.read(spark).where("sku IS NOT NULL").select(
            "event_date", F.col("category").alias("kind"),
            F.lit(None).cast("string").alias("channel"), "sku",
        ).distinct()  # fmt: skip
        assertDataFrameEqual(tables.gold_keys.read(spark), pairs)


def test_a_changed_spec_recomputes_gold(spark: SparkSession, tmp_path: Path) -> None:
    space = TableSpace.in_directory(tmp_path)
    tables = sales_tables(space, SALES_SPEC)
    assert tables.gold is not None
    silver, sales = create_silver(spark, space), Sales(seed=5)
    append(sales.make(spark, 40), silver)
    assert update_gold(spark, tables, SALES_SPEC).mode == "full"
    assert update_gold(spark, tables, SALES_SPEC).mode == "up-to-date"

    changed = spec(*SALES_SPEC.model_dump()["aggregates"], SKUS, group_by=SALES_SPEC.group_by)
    summary = update_gold(spark, tables, changed)
    assert (summary.mode, summary.reason) == ("full", "the gold spec changed")
    assertDataFrameEqual(tables.gold.read(spark), sales_oracle(silver.read(spark), True))
    assert update_gold(spark, tables, changed).mode == "up-to-date"
    append(sales.make(spark, 10), silver)
    assert update_gold(spark, tables, changed).mode == "incremental"
    assertDataFrameEqual(tables.gold.read(spark), sales_oracle(silver.read(spark), True))

    # And back: the key table stays as it is, but gold loses the column.
    summary = update_gold(spark, tables, SALES_SPEC)
    assert (summary.mode, summary.reason) == ("full", "the gold spec changed")
    assertDataFrameEqual(tables.gold.read(spark), sales_oracle(silver.read(spark), False))


def test_a_bad_spec_fails_before_gold_is_touched(spark: SparkSession, tmp_path: Path) -> None:
    space = TableSpace.in_directory(tmp_path)
    tables = sales_tables(space, SALES_SPEC)
    assert tables.gold is not None
    silver = create_silver(spark, space)
    append(Sales(seed=7).make(spark, 5), silver)
    update_gold(spark, tables, SALES_SPEC)
    [before] = tables.gold.delta(spark).history(1).collect()
    bad = spec({"name": "total", "function": "sum", "field": "sku"})
    with pytest.raises(PipelineError, match="sum total reads silver column 'sku' of type string"):
        update_gold(spark, tables, bad)
    [after] = tables.gold.delta(spark).history(1).collect()
    assert after.version == before.version
