"""Quarantine replay: decode quarantined records again once their cause is fixed.

A record is quarantined when silver cannot decode it *then*: its schema was not registered yet
(registered late, or in a registry that replicates slowly), the reader of the time could not read
its writer, its bytes are bad. After the cause is fixed, ``replay_quarantine`` takes the selected
quarantined records' bronze bytes, decodes them exactly as a silver batch would (each routed to its
record type, decoded with that type's latest reader and its own writer), inserts those that now
decode into their type's silver table and takes them out of quarantine; the others stay, with the
reason they fail with now.

Exactly once: silver's insert is its dedupe MERGE (a record already in silver, from an earlier
replay or a re-send, is not inserted again), and only then are the records taken out of quarantine
in one MERGE. A replay that dies between the two commits leaves them in both; the next replay
inserts nothing and finishes the removal.

Run it while the silver stream is stopped (between scheduled runs): both write silver and
quarantine, and Delta fails one of two concurrent MERGEs on the same files.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from avrolake.definitions import PipelineDefinition
from avrolake.pipeline import silver
from avrolake.pipeline.silver_io import SilverBatch
from avrolake.pipeline.tables import BRONZE, TableSpace
from avrolake.registry import SchemaRegistry
from avrolake.settings import DEFAULT_OUTAGE_TIMEOUT_S

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplaySelection:
    """Which quarantined records to replay: all of the pipeline's, or those whose reason contains
    ``reason`` and whose Kafka timestamp is in [``since``, ``until``) (UTC)."""

    reason: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def condition(self) -> Column:
        condition = F.lit(True)
        if self.reason:
            condition &= F.col("reason").contains(self.reason)
        if self.since is not None:
            condition &= F.col("kafka_timestamp") >= F.lit(_utc(self.since))
        if self.until is not None:
            condition &= F.col("kafka_timestamp") < F.lit(_utc(self.until))
        return condition


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class ReplaySummary:
    selected: int
    into_silver: int  # decoded now: inserted, or in silver already (a re-sent event)
    still_quarantined: int
    missing_from_bronze: int  # quarantined records whose bronze rows are gone: left as they are

    def __str__(self) -> str:
        text = (
            f"replay: {self.selected:,} quarantined record(s) selected, {self.into_silver:,} "
            f"now in silver, {self.still_quarantined:,} still quarantined"
        )
        if self.missing_from_bronze:
            text += f", {self.missing_from_bronze:,} left alone (bronze no longer holds them)"
        return text


def replay_quarantine(
    spark: SparkSession,
    pipeline: PipelineDefinition,
    registry: SchemaRegistry,
    space: TableSpace,
    selection: ReplaySelection,
    *,
    outage_timeout_s: float = DEFAULT_OUTAGE_TIMEOUT_S,
) -> ReplaySummary:
    """Replay the selected quarantined records of ``pipeline`` (see the module docstring), each
    into the silver table of its record type, routed as the silver stream routes it."""
    bronze = space.table(BRONZE)
    quarantine = space.table(pipeline.quarantine_table)
    bronze.require(spark, "ingest")
    quarantine.require(spark, "silver")
    batch = SilverBatch.for_pipeline(pipeline, registry, space, outage_timeout_s)
    readers = batch.bring_to_readers(spark)

    selected = (
        quarantine.read(spark)
        .where((F.col("topic") == pipeline.topic) & selection.condition())
        .select(*silver.COORDINATES)
        .persist()
    )
    try:
        # one decode per record, even if bronze holds a record twice
        records = (
            bronze.read(spark)
            .join(selected, list(silver.COORDINATES), "left_semi")
            .dropDuplicates(list(silver.COORDINATES))
        )
        decoded = [frame.persist() for frame in batch.decode(records, readers)]
        try:
            outcomes = reduce(
                DataFrame.unionByName,
                [d.select(F.col("quarantine_reason").isNull().alias("good")) for d in decoded],
            )
            by_outcome = {
                row.good: row["count"] for row in outcomes.groupBy("good").count().collect()
            }
            selected_count = selected.count()
            if by_outcome.get(True):
                batch.write_silver(decoded, readers)
            if by_outcome:
                batch.settle_quarantine(decoded)
        finally:
            for frame in decoded:
                frame.unpersist()
    finally:
        selected.unpersist()
    good, bad = by_outcome.get(True, 0), by_outcome.get(False, 0)
    summary = ReplaySummary(selected_count, good, bad, selected_count - good - bad)
    log.info("%s", summary)
    return summary
