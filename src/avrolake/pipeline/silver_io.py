"""Silver's I/O: the ``foreachBatch`` function of a pipeline's silver stream, and its writes.

One stream per pipeline (a topic): each bronze row goes to its record type — the one whose subject
knows its schema ref (with TopicNameStrategy the topic's only type) — and each type to its own
silver table. Rows of a ref no type knows, and rows without a ref, go with the first type, whose
decode gives them their quarantine reason. The pipeline's bad records share one quarantine table.

Silver's contract: after every batch, each silver row equals Avro's resolution of its bronze bytes
(its own writer schema → the latest reader of its subject). Two kinds of commit keep it:

- **append** — a MERGE that only inserts: the batch's good rows whose dedupe key (the definition's
  key fields, or the Kafka coordinates) silver does not have yet (exactly-once under replays,
  restarts and producer retries);
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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import reduce

from pyspark.sql import Column, DataFrame, DataFrameWriter, SparkSession
from pyspark.sql import functions as F

from avrolake import wire
from avrolake.definitions import PipelineDefinition, RecordDefinition
from avrolake.errors import PipelineError
from avrolake.pipeline import silver
from avrolake.pipeline.batch_schemas import SchemaResolver
from avrolake.pipeline.silver import Roles
from avrolake.pipeline.tables import BRONZE, TableRef, TableSpace
from avrolake.registry import RegisteredSchema, SchemaRegistry
from avrolake.settings import DEFAULT_OUTAGE_TIMEOUT_S

log = logging.getLogger(__name__)

READER_PROPERTY = "avrolake.reader"  # JSON: fingerprint, ref, version, schema
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
    roles: str | None = None  # the definition's roles the table was written with (JSON)


def _roles_state(roles: Roles) -> str:
    return json.dumps(asdict(roles), sort_keys=True)


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
    return RecordedReader(state["fingerprint"], schema, state.get("roles"))


def _record_reader(
    spark: SparkSession, table: TableRef, reader: RegisteredSchema, roles: Roles
) -> None:
    state = json.dumps(
        {
            "fingerprint": silver.fingerprint(reader),
            "ref": reader.ref,
            "version": reader.version,
            "schema": reader.schema_str,
            "roles": _roles_state(roles),
        }
    )
    quoted = state.replace("\\", "\\\\").replace("'", "\\'")
    spark.sql(
        f"ALTER TABLE {table} SET TBLPROPERTIES "
        f"('{CHANGE_FEED_PROPERTY}' = 'true', '{STATS_PROPERTY}' = '{_stats_columns(roles)}', "
        f"'{READER_PROPERTY}' = '{quoted}')"
    )


def _stats_columns(roles: Roles) -> str:
    return ",".join(f"`{c}`" for c in ("event_time", *roles.dedupe_columns))


def _create(table: TableRef, rows: DataFrame, reader: RegisteredSchema, roles: Roles) -> None:
    from delta.tables import DeltaTable

    builder = DeltaTable.createIfNotExists(rows.sparkSession)
    builder = builder.tableName(table.name) if table.name else builder.location(str(table.path))
    (
        builder.addColumns(rows.schema)
        .partitionedBy(*roles.partition_by)
        .property(CHANGE_FEED_PROPERTY, "true")
        .property(STATS_PROPERTY, _stats_columns(roles))
        .execute()
    )
    _record_reader(rows.sparkSession, table, reader, roles)


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


def merge_silver(table: TableRef, rows: DataFrame, roles: Roles) -> None:
    """Insert events whose dedupe key silver does not have yet. A replayed batch, a restarted
    query or a producer retry inserts nothing: exactly-once by key.

    The cost must not grow with the table. A re-sent event carries the same event time (when
    ``roles.times_identify``), so the match is confined to the batch's event-time windows, as
    literal ranges on the target: Delta prunes partitions by ``event_date`` and files by their
    ``event_time`` statistics, and a day of streaming is written batch by batch in event-time
    order, so only the files of the batch's few minutes are read. A key with the Kafka timestamp
    as event time cannot prune (a re-send is a new Kafka record): its MERGE reads the whole table.
    """
    date = silver.EVENT_DATE
    keys = " AND ".join(f"t.`{c}` = s.`{c}`" for c in roles.dedupe_columns)
    if not roles.times_identify:
        if not rows.isEmpty():
            _insert_new(table, rows, keys)
        return
    # Window starts as epoch seconds: a collected timestamp would be shifted into the Python
    # process's time zone, the literal below is read in UTC whatever the session's zone.
    windows = rows.select(
        F.unix_timestamp(F.date_trunc(_WINDOW, "event_time")).alias("start"), date
    ).distinct()
    found = windows.collect()
    if not found:
        return
    dates = sorted({r[date] for r in found})
    date_list = ", ".join(f"DATE'{d.isoformat()}'" for d in dates)
    condition = f"t.{date} IN ({date_list})"
    if len(found) <= _MAX_WINDOWS:  # beyond that (a backfill of old data) the dates suffice
        ranges = " OR ".join(_window(r.start) for r in sorted(found, key=lambda r: r.start))
        condition += f" AND ({ranges})"
    condition += f" AND t.{date} = s.{date} AND t.event_time = s.event_time AND {keys}"
    _insert_new(table, rows, condition)


def _insert_new(table: TableRef, rows: DataFrame, condition: str) -> None:
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
    _insert_new(table, rows, " AND ".join(f"t.`{c}` = s.`{c}`" for c in silver.COORDINATES))


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


def _union(frames: Sequence[DataFrame]) -> DataFrame:
    return reduce(DataFrame.unionByName, frames)


class RecordSilver:
    """One record type's silver: its subject's schemas, its table, its roles in each reader."""

    def __init__(
        self,
        record: RecordDefinition,
        resolver: SchemaResolver,
        space: TableSpace,
        quarantine: TableRef,
        wire_format: wire.WireFormat,
    ) -> None:
        self.record = record
        self.resolver = resolver
        self.table = space.table(record.silver_table)
        self.bronze = space.table(BRONZE)
        self.quarantine = quarantine
        self.wire_format = wire_format
        self._roles: dict[str, Roles] = {}

    def roles(self, spark: SparkSession, reader: RegisteredSchema) -> Roles:
        """The definition's roles in ``reader`` (``PipelineError`` when it cannot have them)."""
        fingerprint = silver.fingerprint(reader)
        if fingerprint not in self._roles:
            record_type = silver.reader_type(spark, reader)
            self._roles[fingerprint] = Roles.of(self.record, reader, record_type)
        return self._roles[fingerprint]

    def decode(
        self,
        bronze: DataFrame,
        reader: RegisteredSchema,
        refs: Sequence[str],
        compressed: bool,
        unclaimed: Mapping[str, str] | None = None,
    ) -> DataFrame:
        """``bronze`` decoded as this type's records (``refs``: their schema refs of the topic's
        flavor; ``unclaimed``: refs of no record type of the pipeline, with the reason)."""
        roles = self.roles(bronze.sparkSession, reader)
        schemas = self.resolver.for_batch(reader, refs, self.wire_format, roles)
        if unclaimed:
            writers = {r: w for r, w in schemas.writers.items() if r not in unclaimed}
            schemas = replace(schemas, writers=writers, unusable={**schemas.unusable, **unclaimed})
        return silver.decode(
            bronze, schemas, sentinel=silver.new_sentinel(), has_compressed=compressed
        )

    def bring_to_reader(self, spark: SparkSession) -> RegisteredSchema:
        """The reader for the next write; rewrites silver first when it was written with another."""
        recorded = recorded_reader(spark, self.table)
        reader = self.resolver.reader(recorded.schema if recorded else None)
        # a definition the reader cannot serve fails before any write
        roles = _roles_state(self.roles(spark, reader))
        # a new reader, or a changed definition (key, event time, partitioning): old rows must
        # mean what new rows mean, so silver is decoded again from bronze either way
        if self.table.exists(spark) and (
            recorded is None
            or recorded.fingerprint != silver.fingerprint(reader)
            or recorded.roles != roles
        ):
            self.rewrite(spark, reader, recorded)
        return reader

    def rewrite(
        self, spark: SparkSession, reader: RegisteredSchema, recorded: RecordedReader | None
    ) -> None:
        """Decode every row silver holds again, from bronze, with ``reader``; overwrite silver."""
        before = f"v{recorded.schema.version}" if recorded else "an unrecorded reader"
        log.info("silver %s: reader is now v%d (was %s); rewriting it from bronze",
                 self.record.silver_table, reader.version, before)  # fmt: skip
        held = self.table.read(spark).select(*silver.COORDINATES)
        rows = (
            self.bronze.read(spark)
            .join(held, list(silver.COORDINATES), "left_semi")
            .dropDuplicates(list(silver.COORDINATES))  # a record ingested twice counts once
        )
        refs, compressed = _ref_stats(rows)
        ours = [ref for ref, framing in refs if wire.WireFormat(framing).flavor is self.wire_format]
        decoded = self.decode(rows, reader, ours, compressed).persist()
        # The rewrite re-decodes bronze's bytes: a silver row whose bronze record is gone (bronze
        # trimmed by a retention job) would vanish. Refuse rather than lose it.
        missing = held.count() - decoded.count()
        if missing > 0:
            decoded.unpersist()
            raise PipelineError(
                f"bronze no longer holds the records of {missing} row(s) of silver table "
                f"{self.table}, so it cannot be rewritten for reader v{reader.version}: restore "
                "bronze, or keep bronze at least as long as silver"
            )
        roles = self.roles(spark, reader)
        try:
            writer = (
                silver.silver_rows(decoded, reader, roles)
                .write.format("delta")
                .mode("overwrite")
                .option("overwriteSchema", "true")
                .partitionBy(*roles.partition_by)
            )
            _save(writer, self.table)
            merge_quarantine(self.quarantine, silver.quarantine_rows(decoded))
        finally:
            decoded.unpersist()
        _record_reader(spark, self.table, reader, roles)

    def write_silver(self, decoded: DataFrame, reader: RegisteredSchema) -> None:
        """Insert ``decoded``'s good rows into silver (creating silver and the quarantine on the
        first write), once per event."""
        spark = decoded.sparkSession
        roles = self.roles(spark, reader)
        rows = silver.silver_rows(decoded, reader, roles)
        if not self.table.exists(spark):
            _create(self.table, rows, reader, roles)
            # the quarantine exists from the first batch on, empty or not, so readers (and
            # replays) never meet a missing table
            _create_quarantine(self.quarantine, silver.quarantine_rows(decoded))
        merge_silver(self.table, rows, roles)


class SilverBatch:
    """The ``foreachBatch`` function of a pipeline's silver stream (see the module docstring)."""

    def __init__(
        self,
        records: Sequence[RecordSilver],
        quarantine: TableRef,
        wire_format: wire.WireFormat,
        name: str = "",
    ) -> None:
        self.name = name  # the pipeline's, for messages
        self.records = list(records)
        self.quarantine = quarantine
        self.wire_format = wire_format
        self._routes: dict[str, int] = {}  # schema ref → its record type (refs are immutable)

    @classmethod
    def for_pipeline(
        cls,
        pipeline: PipelineDefinition,
        registry: SchemaRegistry,
        space: TableSpace,
        outage_timeout_s: float = DEFAULT_OUTAGE_TIMEOUT_S,
    ) -> SilverBatch:
        quarantine = space.table(pipeline.quarantine_table)
        records = [
            RecordSilver(
                record,
                SchemaResolver(registry, pipeline.subject(record), outage_timeout_s),
                space,
                quarantine,
                registry.wire_format,
            )
            for record in pipeline.records
        ]
        return cls(records, quarantine, registry.wire_format, pipeline.name)

    def bring_to_readers(self, spark: SparkSession) -> list[RegisteredSchema]:
        """Each record type's reader, its silver rewritten first when it was written with
        another (see ``RecordSilver.bring_to_reader``)."""
        return [record.bring_to_reader(spark) for record in self.records]

    def route(self, refs: Sequence[str]) -> dict[str, int]:
        """The record type (an index) of each of ``refs``: the first whose subject knows it; the
        first type for a ref no subject knows (its decode gives the reason)."""
        if len(self.records) > 1:
            for ref in refs:
                if ref not in self._routes:
                    known = (i for i, r in enumerate(self.records) if r.resolver.knows(ref))
                    found = next(known, None)
                    if found is not None:  # not cached when unknown: it may be registered late
                        self._routes[ref] = found
        return {ref: self._routes.get(ref, 0) for ref in refs}

    def decode(self, bronze: DataFrame, readers: Sequence[RegisteredSchema]) -> list[DataFrame]:
        """``bronze`` decoded, one frame per record type (with ``readers``, in the definition's
        order): each row in its type's frame."""
        refs, compressed = _ref_stats(bronze)
        ours = [ref for ref, framing in refs if wire.WireFormat(framing).flavor is self.wire_format]
        routes = self.route(ours)
        if len(self.records) == 1:
            return [self.records[0].decode(bronze, readers[0], ours, compressed)]
        route = _route_column(routes, self.wire_format)
        # refs no type knows go with the first type; their reason names every type's subject,
        # not only the first's (which would read as a broken record of that type)
        subjects = ", ".join(r.resolver.where for r in self.records)
        unclaimed = {
            ref: f"unknown schema ref {ref}: not a version of any record type of pipeline "
            f"{self.name} ({subjects})"
            for ref in ours
            if ref not in self._routes
        }
        return [
            record.decode(
                bronze.where(route == i),
                reader,
                [ref for ref, to in routes.items() if to == i],
                compressed,
                unclaimed if i == 0 else None,
            )
            for i, (record, reader) in enumerate(zip(self.records, readers, strict=True))
        ]

    def write_silver(
        self, decoded: Sequence[DataFrame], readers: Sequence[RegisteredSchema]
    ) -> None:
        """Each type's good rows into its silver table (see ``RecordSilver.write_silver``)."""
        for record, frame, reader in zip(self.records, decoded, readers, strict=True):
            record.write_silver(frame, reader)

    def settle_quarantine(self, decoded: Sequence[DataFrame]) -> None:
        """After a replay wrote ``decoded``'s good rows: take them out of quarantine, and give
        the others the reason they fail with now. One MERGE by Kafka coordinates."""
        outcome = _union(
            [
                d.select(*silver.COORDINATES, F.col("quarantine_reason").alias("reason"))
                for d in decoded
            ]
        )
        condition = " AND ".join(f"t.`{c}` = s.`{c}`" for c in silver.COORDINATES)
        (
            self.quarantine.delta(outcome.sparkSession)
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
            readers = self.bring_to_readers(spark)
            decoded = [frame.persist() for frame in self.decode(batch, readers)]
            try:
                quarantined = _union([silver.quarantine_rows(d) for d in decoded])
                bad = quarantined.count()
                self.write_silver(decoded, readers)
                if bad:  # most batches have none: no MERGE, no commit on the quarantine
                    merge_quarantine(self.quarantine, quarantined)
            finally:
                for frame in decoded:
                    frame.unpersist()
            log.info(
                "silver batch %d: reader(s) %s, %d record(s) quarantined",
                batch_id,
                ", ".join(f"v{r.version}" for r in readers),
                bad,
            )
        finally:
            batch.unpersist()


def _route_column(routes: dict[str, int], wire_format: wire.WireFormat) -> Column:
    """Each bronze row's record type: its ref's, for a ref of the topic's flavor; else 0."""
    ours = wire.spark_flavor(F.col("wire_format")) == wire_format.value
    column = F.lit(0)
    for i in sorted(set(routes.values()) - {0}):
        refs = sorted(ref for ref, to in routes.items() if to == i)
        column = F.when(ours & F.col("schema_ref").isin(refs), F.lit(i)).otherwise(column)
    return column
