"""Gold's pure transformations: typed dates, exact aggregates, recomputing only touched groups."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from avrolake.pipeline import gold

SILVER_SCHEMA = "productId string, eventId string, type string, color string, size string, " \
    "event_time timestamp, event_date date"  # fmt: skip


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour)


def silver(spark: SparkSession, rows: list[tuple]) -> object:
    full = [(p, e, t, c, s, ts, ts.date()) for p, e, t, c, s, ts in rows]
    return spark.createDataFrame(full, SILVER_SCHEMA)


ROWS = [
    ("p1", "e1", "shirt", "red", "M", at(23, 23)),
    ("p1", "e2", "shirt", "red", "M", at(23, 1)),
    ("p2", "e3", "shirt", "red", "M", at(23, 12)),
    ("p1", "e4", "shirt", "red", "M", at(24, 0)),  # next day: its own group
    ("p3", "e5", "pants", "none", "none", at(24, 5)),
]


def test_aggregate_counts_events_and_distinct_products_per_day(spark: SparkSession) -> None:
    rows = gold.aggregate(silver(spark, ROWS)).orderBy("event_date", "type").collect()
    assert [tuple(r) for r in rows] == [
        (dt.date(2026, 11, 23), "shirt", "red", "M", 3, 2, at(23, 1), at(23, 23)),
        (dt.date(2026, 11, 24), "pants", "none", "none", 1, 1, at(24, 5), at(24, 5)),
        (dt.date(2026, 11, 24), "shirt", "red", "M", 1, 1, at(24, 0), at(24, 0)),
    ]


def test_recompute_covers_exactly_the_touched_groups(spark: SparkSession) -> None:
    full = silver(spark, ROWS)
    batch = silver(spark, [ROWS[0]])  # one new row of the 23rd's shirt/red/M group
    rows = gold.recompute(full, gold.touched_groups(batch)).collect()
    assert [(r.event_date, r.events, r.distinct_products) for r in rows] == [
        (dt.date(2026, 11, 23), 3, 2)
    ]


def test_silver_without_size_and_color_groups_under_the_default(spark: SparkSession) -> None:
    v1_only = spark.createDataFrame(
        [("p1", "e1", "shoes", at(23, 3), dt.date(2026, 11, 23))],
        "productId string, eventId string, type string, event_time timestamp, event_date date",
    )
    rows = gold.aggregate(gold.with_group_keys(v1_only)).collect()
    assert [(r.type, r.color, r.size, r.events) for r in rows] == [("shoes", "none", "none", 1)]
