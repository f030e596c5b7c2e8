"""Gold's pure parts: key resolution by name or alias, the aggregates, folding a batch into old
gold with the key pairs, the classification of silver's commits, gold's recorded progress, and
the continuous interval."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DataType, LongType, StringType, StructField, StructType, TimestampType
from pyspark.testing import assertDataFrameEqual

from avrolake.errors import ConfigError, PipelineError
from avrolake.pipeline import gold
from avrolake.pipeline.gold import Change, Commit, KeyColumn, Progress
from avrolake.pipeline.gold_io import parse_interval

D23, D24 = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
GOLD = (
    "event_date date, type string, color string, size string, events bigint, "
    "distinct_products bigint, first_event_time timestamp, last_event_time timestamp"
)
PAIRS = "event_date date, type string, color string, size string, productId string"


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
    assert gold.resolve(silver) == (
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


def test_project_reads_renamed_columns_and_nulls_absent_keys(spark: SparkSession) -> None:
    silver = spark.createDataFrame(
        [("p1", "shoes", "red", at(23, 1), D23)],
        "productId string, type string, colour string, event_time timestamp, event_date date",
    )
    keys = (
        KeyColumn("type", "type", "string"),
        KeyColumn("color", "colour", "string"),
        KeyColumn("size", None, "int"),
        KeyColumn("productId", "productId", "string"),
    )
    expected = spark.createDataFrame(
        [(D23, "shoes", "red", None, "p1", at(23, 1))],
        "event_date date, type string, color string, size int, productId string, "
        "event_time timestamp",
    )
    assertDataFrameEqual(gold.project(silver, keys), expected)


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
    pairs = gold.pair_aggregates(rows(spark, ROWS))
    expected = spark.createDataFrame(
        [
            (D23, "shirt", "red", "M", 4, 2, at(23, 1), at(23, 23)),
            (D24, "shirt", "red", "M", 1, 1, at(24, 0), at(24, 0)),
            (D24, "pants", None, None, 1, 1, at(24, 5), at(24, 5)),
        ],
        GOLD,
    )
    assertDataFrameEqual(gold.aggregate(pairs), expected)


def test_combine_pairs_marks_stored_pairs_of_touched_groups_only(spark: SparkSession) -> None:
    stored = spark.createDataFrame(
        [
            (D24, "pants", None, None, "p3"),  # a NULL-keyed group the batch touches
            (D24, "pants", None, None, "p3"),  # stored twice (a re-run): still one pair
            (D24, "shoes", "red", "M", "p9"),  # a group the batch does not touch
        ],
        PAIRS,
    )
    batch = gold.pair_aggregates(
        rows(
            spark,
            [
                (D24, "pants", None, None, "p3", at(24, 7)),
                (D24, "pants", None, None, "p4", at(24, 8)),
                (D24, "pants", None, None, None, at(24, 9)),
            ],
        )
    )
    combined = gold.combine_pairs(stored, batch)
    assertDataFrameEqual(
        combined,
        spark.createDataFrame(
            [(D24, "pants", None, None, "p3", True), (D24, "pants", None, None, "p4", False)],
            f"{PAIRS}, stored boolean",
        ),
    )
    assertDataFrameEqual(
        gold.new_pairs(combined), spark.createDataFrame([(D24, "pants", None, None, "p4")], PAIRS)
    )
    assertDataFrameEqual(
        gold.count_pairs(combined),
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
    batch = gold.pair_aggregates(
        rows(
            spark,
            [
                (D23, "shirt", "red", "M", "p1", at(23, 1)),  # earlier than the first
                (D23, "shirt", "red", "M", "p7", at(23, 21)),  # later than the last
                (D23, "pants", None, None, None, at(23, 8)),  # no product: count stays
                (D23, "socks", "red", "S", None, at(23, 9)),  # a new group without product
            ],
        )
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
    assertDataFrameEqual(gold.fold(old, batch, counts), expected)


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
    progress = Progress(
        41,
        "2026-11-23T10:15:02",
        "0f3c",
        (
            KeyColumn("type", "type", "string"),
            KeyColumn("color", "colour", "string"),
            KeyColumn("size", None, "string"),
            KeyColumn("productId", "productId", "string"),
        ),
    )
    assert Progress.from_json(progress.to_json()) == progress


@pytest.mark.parametrize("metadata", [None, "", "fixing a typo", "[1]", '{"other": 1}',
                                      '{"avrolake.gold": {"silver_version": 3}}'])  # fmt: skip
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
