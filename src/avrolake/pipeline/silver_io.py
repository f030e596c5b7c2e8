"""Silver's I/O: the ``foreachBatch`` function of the silver stream and the writes it makes.

Silver's contract: after every batch, each silver row equals Avro's resolution of its bronze bytes
(its own writer schema → the latest reader). Two kinds of commit keep it:

- **append** — a MERGE that only inserts: the batch's good rows whose ``eventId`` silver does not
  have yet (exactly-once under replays, restarts and producer retries);
- **rewrite** — when the reader changed (a new version, a deleted one, a new default or alias),
  every row already in silver is decoded again from its bronze bytes with the new reader and the
  table is overwritten with the reader's columns and types. Defaults, aliases, promotions and
  removals are then right by construction, because Avro computed them. A row the new reader cannot
  read moves to quarantine with the reason.

The reader a table was written with is recorded in its properties (fingerprint, ref, version and
schema), so a restarted stream knows whether a rewrite is due, and can keep decoding with it while
the registry is down. Silver has the change data feed on: consumers read appends and rewrites
from it (gold does).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
from pyspark.sql import functions as F

from avrolake import wire
from avrolake.errors import PipelineError
from avrolake.pipeline import silver
from avrolake.pipeline.batch_schemas import SchemaResolver
from avrolake.pipeline.tables import TableLocations, TableRef
from avrolake.registry import RegisteredSchema

log = logging.getLogger(__name__)

READER_PROPERTY = "avrolake.reader"  # JSON: fingerprint, ref, version, schema
PARTITION_COLUMN = "event_date"
CHANGE_FEED_PROPERTY = "delta.enableChangeDataFeed"
# Statistics on the columns the dedupe MERGE prunes by, whatever the reader's width (Delta
# collects them only for the first 32 columns by default).
STATS_PROPERTY = "delta.dataSkippingStatsColumns"
_WINDOW, _WINDOW_SECONDS = "MINUTE", 60  # granularity of the ranges the dedupe MERGE reads
_MAX_WINDOWS = 240
_LAST_SECOND = silver.MAX_EVENT_SECONDS  # 9999-12-31 23:59:59, the last event time silver takes


@dataclass(frozen=True)
class RecordedReader:
    fingerprint: str
    schema: RegisteredSchema


def recorded_reader(spark: SparkSession, table: TableRef) -> RecordedReader | None:
    """The reader silver was last written with, or None (no table yet, or written before
    avrolake recorded it: then the next batch rewrites it)."""
    if not table.exists(spark):
        return None
    detail = table.delta(spark).detail().first()
    properties = (detail.properties if detail else None) or {}
    raw = properties.get(READER_PROPERTY)
    if not raw:
        return None
    state = json.loads(raw)
    schema = RegisteredSchema(state["ref"], int(state["version"]), state["schema"])
    return RecordedReader(state["fingerprint"], schema)


def _record_reader(spark: SparkSession, table: TableRef, reader: RegisteredSchema) -> None:
    state = json.dumps(
        {
            "fingerprint": silver.fingerprint(reader),
            "ref": reader.ref,
            "version": reader.version,
            "schema": reader.schema_str,
        }
    )
    quoted = state.replace("\\", "\\\\").replace("'", "\\'")
    spark.sql(
        f"ALTER TABLE {table} SET TBLPROPERTIES "
        f"('{CHANGE_FEED_PROPERTY}' = 'true', '{STATS_PROPERTY}' = '{_stats_columns()}', "
        f"'{READER_PROPERTY}' = '{quoted}')"
    )


def _stats_columns() -> str:
    return f"event_time,{silver.EVENT_KEY}"


def _create(table: TableRef, rows: DataFrame, reader: RegisteredSchema) -> None:
    from delta.tables import DeltaTable

    builder = DeltaTable.createIfNotExists(rows.sparkSession)
    builder = builder.tableName(table.name) if table.name else builder.location(str(table.path))
    (
        builder.addColumns(rows.schema)
        .partitionedBy(PARTITION_COLUMN)
        .property(CHANGE_FEED_PROPERTY, "true")
        .property(STATS_PROPERTY, _stats_columns())
        .execute()
    )
    _record_reader(rows.sparkSession, table, reader)


def _utc_literal(epoch_seconds: int) -> str:
    moment = dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).replace(tzinfo=None)
    # isoformat pads the year to four digits (strftime's %Y writes year 1 as "1")
    return f"TIMESTAMP'{moment.isoformat(sep=' ')}Z'"


def _window(start: int) -> str:
    """``t.event_time`` within the window starting at ``start``. The last minute of 9999 has no
    end a literal can name (a Python datetime stops at 9999), and needs none: nothing is later."""
    end = start + _WINDOW_SECONDS
    upper = f" AND t.event_time < {_utc_literal(end)}" if end <= _LAST_SECOND else ""
    return f"(t.event_time >= {_utc_literal(start)}{upper})"


def merge_silver(table: TableRef, rows: DataFrame) -> None:
    """Insert events whose ``eventId`` silver does not have yet. A replayed batch, a restarted
    query or a producer retry inserts nothing: exactly-once by key.

    The cost must not grow with the table. A re-sent event carries the same event time, so the
    match is confined to the batch's event-time windows, as literal ranges on the target: Delta
    prunes partitions by ``event_date`` and files by their ``event_time`` statistics, and a day of
    streaming is written batch by batch in event-time order, so only the files of the batch's few
    minutes are read.
    """
    # Window starts as epoch seconds: a collected timestamp would be shifted into the Python
    # process's time zone, the literal below is read in UTC whatever the session's zone.
    windows = rows.select(
        F.unix_timestamp(F.date_trunc(_WINDOW, "event_time")).alias("start"), PARTITION_COLUMN
    ).distinct()
    found = windows.collect()
    if not found:
        return
    key = silver.EVENT_KEY
    dates = sorted({r[PARTITION_COLUMN] for r in found})
    date_list = ", ".join(f"DATE'{d.isoformat()}'" for d in dates)
    condition = f"t.{PARTITION_COLUMN} IN ({date_list})"
    if len(found) <= _MAX_WINDOWS:  # beyond that (a backfill of old data) the dates suffice
        ranges = " OR ".join(_window(r.start) for r in sorted(found, key=lambda r: r.start))
        condition += f" AND ({ranges})"
    condition += (
        f" AND t.{PARTITION_COLUMN} = s.{PARTITION_COLUMN} AND t.event_time = s.event_time"
        f" AND t.`{key}` = s.`{key}`"
    )
    (
        table.delta(rows.sparkSession)
        .alias("t")
        .merge(rows.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
    )


def _create_quarantine(table: TableRef, rows: DataFrame) -> None:
    if not table.exists(rows.sparkSession):
        _save(rows.limit(0).write.format("delta"), table)


def merge_quarantine(table: TableRef, rows: DataFrame) -> None:
    """Insert bad records by Kafka coordinates, so a replayed batch adds no second copy."""
    _create_quarantine(table, rows)
    condition = " AND ".join(f"t.`{c}` = s.`{c}`" for c in silver.COORDINATES)
    (
        table.delta(rows.sparkSession)
        .alias("t")
        .merge(rows.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
    )


def _save(writer: DataFrameWriter, table: TableRef) -> None:
    if table.name:
        writer.saveAsTable(table.name)
    else:
        writer.save(table.path)


def _ref_stats(bronze: DataFrame) -> tuple[list[tuple[str, str]], bool]:
    """The batch's distinct (schema ref, wire format) and whether any record is compressed: one
    small aggregation, needed to know which writer schemas to fetch."""
    compressed = wire.spark_is_compressed(F.col("value"), F.col("wire_format"))
    rows = (
        bronze.where(F.col("schema_ref").isNotNull())
        .groupBy("schema_ref", "wire_format")
        .agg(F.max(compressed.cast("int")).alias("compressed"))
        .collect()
    )
    return [(r.schema_ref, r.wire_format) for r in rows], any(r.compressed for r in rows)


class SilverBatch:
    """The ``foreachBatch`` function of the silver stream (see the module docstring)."""

    def __init__(
        self, resolver: SchemaResolver, locations: TableLocations, wire_format: wire.WireFormat
    ) -> None:
        self.resolver = resolver
        self.locations = locations
        self.wire_format = wire_format

    def decode(self, bronze: DataFrame, reader: RegisteredSchema) -> DataFrame:
        refs, has_compressed = _ref_stats(bronze)
        ours = [ref for ref, framing in refs if wire.WireFormat(framing).flavor is self.wire_format]
        schemas = self.resolver.for_batch(reader, ours, self.wire_format)
        return silver.decode(
            bronze, schemas, sentinel=silver.new_sentinel(), has_compressed=has_compressed
        )

    def bring_to_reader(self, spark: SparkSession) -> RegisteredSchema:
        """The reader for the next write; rewrites silver first when it was written with another."""
        table = self.locations.silver
        recorded = recorded_reader(spark, table)
        reader = self.resolver.reader(recorded.schema if recorded else None)
        if table.exists(spark) and (
            recorded is None or recorded.fingerprint != silver.fingerprint(reader)
        ):
            self.rewrite(spark, reader, recorded)
        return reader

    def rewrite(
        self, spark: SparkSession, reader: RegisteredSchema, recorded: RecordedReader | None
    ) -> None:
        """Decode every row silver holds again, from bronze, with ``reader``; overwrite silver."""
        before = f"v{recorded.schema.version}" if recorded else "an unrecorded reader"
        log.info("silver: reader is now v%d (was %s); rewriting silver from bronze",
                 reader.version, before)  # fmt: skip
        table = self.locations.silver
        held = table.read(spark).select(*silver.COORDINATES)
        rows = self.locations.bronze.read(spark).join(held, list(silver.COORDINATES), "left_semi")
        decoded = self.decode(rows, reader).persist()
        # The rewrite re-decodes bronze's bytes: a silver row whose bronze record is gone (bronze
        # trimmed by a retention job) would vanish. Refuse rather than lose it.
        missing = held.count() - decoded.count()
        if missing > 0:
            decoded.unpersist()
            raise PipelineError(
                f"bronze no longer holds the records of {missing} silver row(s), so silver "
                f"cannot be rewritten for reader v{reader.version}: restore bronze, or keep "
                "bronze at least as long as silver"
            )
        try:
            good = silver.silver_rows(decoded, reader)
            writer = (
                good.write.format("delta")
                .mode("overwrite")
                .option("overwriteSchema", "true")
                .partitionBy(PARTITION_COLUMN)
            )
            _save(writer, table)
            merge_quarantine(self.locations.quarantine, silver.quarantine_rows(decoded))
        finally:
            decoded.unpersist()
        _record_reader(spark, table, reader)

    def write_silver(self, decoded: DataFrame, reader: RegisteredSchema) -> None:
        """Insert ``decoded``'s good rows into silver (creating silver and the quarantine on the
        first write), once per event."""
        spark = decoded.sparkSession
        rows = silver.silver_rows(decoded, reader)
        if not self.locations.silver.exists(spark):
            _create(self.locations.silver, rows, reader)
            # the quarantine exists from the first batch on, empty or not, so readers (and
            # replays) never meet a missing table
            _create_quarantine(self.locations.quarantine, silver.quarantine_rows(decoded))
        merge_silver(self.locations.silver, rows)

    def settle_quarantine(self, decoded: DataFrame) -> None:
        """After a replay wrote ``decoded``'s good rows: take them out of quarantine, and give
        the others the reason they fail with now. One MERGE by Kafka coordinates."""
        outcome = decoded.select(*silver.COORDINATES, F.col("quarantine_reason").alias("reason"))
        condition = " AND ".join(f"t.`{c}` = s.`{c}`" for c in silver.COORDINATES)
        (
            self.locations.quarantine.delta(decoded.sparkSession)
            .alias("t")
            .merge(outcome.alias("s"), condition)
            .whenMatchedDelete("s.reason IS NULL")
            .whenMatchedUpdate("t.reason <> s.reason", set={"reason": "s.reason"})
            .execute()
        )

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        spark = batch.sparkSession
        batch = batch.persist()
        try:
            reader = self.bring_to_reader(spark)
            decoded = self.decode(batch, reader).persist()
            try:
                bad = decoded.where(F.col("quarantine_reason").isNotNull()).count()
                self.write_silver(decoded, reader)
                if bad:  # most batches have none: no MERGE, no commit on the quarantine
                    merge_quarantine(self.locations.quarantine, silver.quarantine_rows(decoded))
            finally:
                decoded.unpersist()
            log.info(
                "silver batch %d: reader v%d, %d record(s) quarantined",
                batch_id,
                reader.version,
                bad,
            )
        finally:
            batch.unpersist()
