"""Silver rows → gold aggregates per (event_date, type, color, size).

Distinct-product counts cannot be summed across batches, so gold is maintained by recomputing
only the groups a batch touched, from silver itself, and MERGing them in: re-running any batch
gives the same table.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

GROUP_KEYS = ("event_date", "type", "color", "size")


DEFAULTED_KEYS = ("color", "size")  # introduced by v2 with the default "none"


def with_group_keys(silver: DataFrame) -> DataFrame:
    """Silver written while only v1 was registered lacks ``size``/``color`` (or, for a moment
    before silver backfills a new column, holds NULL in it): group such rows under the fields'
    schema default, "none"."""
    for key in DEFAULTED_KEYS:
        value = F.coalesce(F.col(key), F.lit("none")) if key in silver.columns else F.lit("none")
        silver = silver.withColumn(key, value)
    return silver


def aggregate(silver: DataFrame) -> DataFrame:
    """Events, distinct products and first/last event time per group. Rows from schema versions
    without ``color``/``size`` already carry the reader's defaults ("none")."""
    return silver.groupBy(*GROUP_KEYS).agg(
        F.count(F.lit(1)).alias("events"),
        F.countDistinct("productId").alias("distinct_products"),
        F.min("event_time").alias("first_event_time"),
        F.max("event_time").alias("last_event_time"),
    )


def touched_groups(silver_batch: DataFrame) -> DataFrame:
    return with_group_keys(silver_batch).select(*GROUP_KEYS).distinct()


def recompute(silver: DataFrame, groups: DataFrame) -> DataFrame:
    """Aggregates of exactly ``groups``, from every silver row in them."""
    silver = with_group_keys(silver)
    dates = groups.select("event_date").distinct()
    relevant = silver.join(F.broadcast(dates), "event_date").join(
        F.broadcast(groups), list(GROUP_KEYS), "left_semi"
    )
    return aggregate(relevant)
