"""Gold's I/O: bring each gold table up to date with its silver table, once or every interval.

Gold is a batch job, not a stream on silver: a Delta stream fails on silver's rewrites (a new
reader re-decodes every row) and schema changes. Each update reads silver's commits since the
version gold last folded in (``Progress``, kept in the ``userMetadata`` of gold's own commits):

- only inserts (and metadata commits) since then — **incremental**: silver's change data feed
  between the two versions, read as a batch, gives exactly the inserted rows. They are folded into
  gold's rows of their dates, and their (group, value) pairs of the spec's count_distinct into
  the key table; the cost follows the batch and the key pairs of the groups it touches, not the
  number of events of the day;
- anything else (a rewrite, an update or delete, an unknown operation, a history that no longer
  reaches back, no gold or key table yet, a changed gold spec, a field that maps to another
  silver column or type, another silver table) — **full**: gold and the key table are recomputed
  from the silver snapshot.

Every read of one update is pinned to one silver version. Crash safety: the key table is written
before gold, and an incremental update only *adds* pairs to it (a pair already there is not added
again, and one added twice would still count once); gold's rows and its progress are one commit.
A crash between the two writes leaves gold at the old version with a key table already holding
some of the new pairs — which is a state the next update starts from correctly, since it folds the
same rows again into the old gold and counts the pairs from the set. One writer per gold table.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, DataFrameReader, DataFrameWriter, Row, SparkSession
from pyspark.sql import functions as F

from avrolake.errors import ConfigError
from avrolake.pipeline import gold
from avrolake.pipeline.gold import Change, Commit, Progress
from avrolake.pipeline.tables import TableLocations, TableRef
from avrolake.pipeline.triggers import AVAILABLE_NOW, TriggerSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from delta.tables import DeltaTable

    from avrolake.definitions import GoldSpec, PipelineDefinition
    from avrolake.pipeline.tables import TableSpace

__all__ = ["GoldRunSummary", "parse_interval", "run_gold", "update_gold"]

log = logging.getLogger(__name__)

INCREMENTAL, FULL, UP_TO_DATE = "incremental", "full", "up-to-date"
# Commits of gold's own history looked through for its latest progress. Only commits that change
# no rows (OPTIMIZE, VACUUM: Databricks' predictive optimization runs them) may lie in between.
PROGRESS_SEARCH_DEPTH = 50
# Delta's answers meaning "the change feed cannot give these versions" (turned off for a while,
# or its files vacuumed): gold then recomputes instead of failing.
NO_CHANGE_FEED = frozenset({"DELTA_MISSING_CHANGE_DATA", "DELTA_CHANGE_DATA_FILE_NOT_FOUND"})
STOP_POLL_S = 0.2  # how soon a continuous run notices ``stop`` while it waits


@dataclass(frozen=True)
class GoldRunSummary:
    """What one update of the gold table ``table`` did. ``rows_folded``: silver rows folded in
    incrementally (None for a full recomputation, which reads all of silver); ``dates``: the event
    dates whose gold rows were rewritten (None: all of them)."""

    mode: str
    silver_version: int
    reason: str
    table: str = "gold"
    rows_folded: int | None = None
    dates: int | None = None
    seconds: float = 0.0

    def __str__(self) -> str:
        if self.mode == UP_TO_DATE:
            return (f"gold {self.table}: up to date with silver v{self.silver_version} "
                    f"({self.reason})")  # fmt: skip
        if self.mode == FULL:
            what = f"recomputed from silver v{self.silver_version} ({self.reason})"
        else:
            rows = "?" if self.rows_folded is None else f"{self.rows_folded:,}"
            what = (f"folded {rows} silver rows up to v{self.silver_version} into "
                    f"{self.dates} event date(s)")  # fmt: skip
        return f"gold {self.table}: {self.mode}, {what} in {self.seconds:.1f}s"


# --- reading -----------------------------------------------------------------------------------


def _reader(spark: SparkSession, table: TableRef, **options: object) -> DataFrame:
    reader: DataFrameReader = spark.read.format("delta")
    for key, value in options.items():
        reader = reader.option(key, str(value))
    return reader.table(table.name) if table.name else reader.load(table.path)


def _commits(rows: list[Row]) -> list[Commit]:
    return [
        Commit(
            r.version,
            r.operation,
            r.operationParameters or {},
            r.operationMetrics or {},
            r.timestamp.isoformat() if r.timestamp else "",
        )
        for r in rows
    ]


def _silver_commits(table: DeltaTable, since: int, upto: int) -> list[Commit] | None:
    """Silver's commits ``since`` <= version <= ``upto``, oldest first (``since`` itself too, to
    tell that it is the commit gold folded in); None when the history no longer reaches back that
    far (log retention). History reads only those commits' log entries, not silver's data."""
    limit = upto - since + 1
    for _ in range(3):  # history(n) is the newest n: silver may commit meanwhile, then ask again
        rows = table.history(limit).collect()
        wanted = {r.version: r for r in rows if since <= r.version <= upto}
        if len(wanted) == upto - since + 1:
            return _commits([wanted[v] for v in sorted(wanted)])
        newest = max((r.version for r in rows), default=upto)
        if newest <= upto:
            return None
        limit += newest - upto
    return None


def _gold_progress(spark: SparkSession, table: TableRef) -> Progress | None:
    """Gold's latest progress. None when gold is missing, has none, or was changed by another
    writer after it (then gold no longer equals any silver version)."""
    if not table.exists(spark):
        return None
    gold_table = table.delta(spark)
    # Usually gold's newest commit is its last update: read one log entry, else look further.
    for depth in (1, PROGRESS_SEARCH_DEPTH):
        history = sorted(gold_table.history(depth).collect(), key=lambda r: -r.version)
        for row in history:
            progress = Progress.from_json(row.userMetadata)
            if progress is not None:
                return progress
            if gold.classify(_commits([row])[0]) is not Change.NONE:
                return None
        if len(history) < depth:
            return None  # the whole history, and no progress in it
    return None


# --- writing -----------------------------------------------------------------------------------


def _save(writer: DataFrameWriter, table: TableRef) -> None:
    if table.name:
        writer.saveAsTable(table.name)
    else:
        writer.save(table.path)


def _overwrite(rows: DataFrame, table: TableRef, **options: str) -> None:
    writer = (
        rows.write.format("delta")
        .mode("overwrite")
        .option("overwriteSchema", "true")
        .partitionBy(gold.DATE_KEY)
        .options(**options)
    )
    _save(writer, table)


def _dates_predicate(dates: list[date | None]) -> str:
    listed = ", ".join(f"DATE'{d.isoformat()}'" for d in dates if d is not None)
    parts = [f"{gold.DATE_KEY} IN ({listed})"] if listed else []
    if None in dates:  # NULL is not IN any list
        parts.append(f"{gold.DATE_KEY} IS NULL")
    return " OR ".join(parts)


def _write_gold_dates(rows: DataFrame, table: TableRef, progress: Progress) -> None:
    """Replace gold's rows of the dates ``rows`` has (each date of the batch has rows there), with
    the progress in the same commit.

    The idempotent-write pair (txnAppId per lineage, txnVersion = silver version) makes Delta skip
    this write when one for a later silver version is there already: a stray second gold process
    can never put gold back on an older state. A full recomputation starts a new lineage, so a
    silver created again, whose versions restart, is not skipped."""
    writer = (
        rows.write.format("delta")
        .mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .option("userMetadata", progress.to_json())
        .option("txnAppId", f"avrolake-gold:{progress.lineage}")
        .option("txnVersion", str(progress.silver_version))
    )
    _save(writer, table)


# --- one update --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tables:
    """The tables one update reads and writes; ``keys`` only for a spec with count_distinct."""

    silver: TableRef
    gold: TableRef
    keys: TableRef | None

    @classmethod
    def of(cls, locations: TableLocations, spec: GoldSpec) -> _Tables:
        keys = locations.gold_keys if spec.distinct is not None else None
        if locations.gold is None or (spec.distinct is not None and keys is None):
            raise ValueError(
                f"locations for gold table {spec.table} lack its gold or key table: build them "
                "with TableLocations.for_record from the record that has this gold spec"
            )
        return cls(locations.silver, locations.gold, keys)


def _full(
    spark: SparkSession, tables: _Tables, current: Progress, reason: str, started: float
) -> GoldRunSummary:
    progress = replace(current, lineage=uuid.uuid4().hex)
    plan = progress.plan
    snapshot = _reader(spark, tables.silver, versionAsOf=progress.silver_version)
    grain = gold.partials(gold.project(snapshot, plan), plan)
    if tables.keys is not None:
        grain = grain.persist()  # read twice: for the key table and for gold
    try:
        if tables.keys is not None:
            # Keys first: a crash before gold's write leaves gold's progress as it was, so the
            # next update finds the same reason to recompute, and overwrites this key table again.
            _overwrite(gold.pairs(grain, plan), tables.keys)
        _overwrite(gold.aggregate(grain, plan), tables.gold, userMetadata=progress.to_json())
    finally:
        grain.unpersist()
    return GoldRunSummary(FULL, progress.silver_version, reason, plan.spec.table,
                          seconds=time.monotonic() - started)  # fmt: skip


def _incremental(
    spark: SparkSession,
    tables: _Tables,
    since: int,
    progress: Progress,
    rows: int | None,
    started: float,
) -> GoldRunSummary | None:
    """Fold silver's inserts after ``since`` into gold; None when the change feed cannot give
    them (the caller recomputes)."""
    plan = progress.plan
    changes = _reader(spark, tables.silver, readChangeFeed="true",
                      startingVersion=since + 1, endingVersion=progress.silver_version)  # fmt: skip
    inserted = changes.where(F.col("_change_type") == "insert")
    batch = gold.partials(gold.project(inserted, plan), plan).persist()
    combined = None
    try:
        try:  # the first action: where Delta finds out whether the change feed has these versions
            dates = [r[0] for r in batch.select(gold.DATE_KEY).distinct().collect()]
        except PySparkException as error:
            if error.getCondition() in NO_CHANGE_FEED:
                log.info("gold %s: silver's change feed lacks v%d..v%d (%s): recomputing",
                         plan.spec.table, since + 1, progress.silver_version,
                         error.getCondition())  # fmt: skip
                return None
            raise
        if dates:
            counts = None
            if tables.keys is not None:
                stored = _reader(spark, tables.keys).where(_dates_predicate(dates))
                combined = gold.combine_pairs(stored, batch, plan).persist()
                # Before gold: see the module docstring for why a crash right after is harmless.
                writer = gold.new_pairs(combined, plan).write.format("delta").mode("append")
                _save(writer, tables.keys)
                counts = gold.count_pairs(combined, plan)
            old = _reader(spark, tables.gold).where(_dates_predicate(dates))
            _write_gold_dates(gold.fold(old, batch, counts, plan), tables.gold, progress)
    finally:
        batch.unpersist()
        if combined is not None:
            combined.unpersist()
    return GoldRunSummary(INCREMENTAL, progress.silver_version, "only inserts", plan.spec.table,
                          rows_folded=rows, dates=len(dates),
                          seconds=time.monotonic() - started)  # fmt: skip


def update_gold(spark: SparkSession, locations: TableLocations, spec: GoldSpec) -> GoldRunSummary:
    """Bring the gold table of ``spec`` (and its key table) to silver's current version; see the
    module docstring. ``PipelineError`` before anything is written when silver is missing or a
    column cannot take its role in the spec (see ``gold.plan``)."""
    started = time.monotonic()
    tables = _Tables.of(locations, spec)
    tables.silver.require(spark, "silver")
    silver = tables.silver.delta(spark)
    [latest] = _commits(silver.history(1).collect())
    version = latest.version
    plan = gold.plan(spec, _reader(spark, tables.silver, versionAsOf=version).schema)
    done = _gold_progress(spark, tables.gold)
    current = Progress(version, latest.timestamp, done.lineage if done else "", plan)

    def full(reason: str) -> GoldRunSummary:
        return _full(spark, tables, current, reason, started)

    def up_to_date(reason: str) -> GoldRunSummary:
        return GoldRunSummary(UP_TO_DATE, version, reason, spec.table,
                              seconds=time.monotonic() - started)  # fmt: skip

    if done is None:
        return full("gold has no progress recorded (new, or changed by another writer since)")
    if done.silver_version > version:
        return full(f"silver is at v{version}, behind gold's v{done.silver_version}")
    if done.plan.spec != spec:
        return full("the gold spec changed")
    if done.plan.inputs != plan.inputs:
        return full("the gold spec's fields map to other silver columns or types now")
    if tables.keys is not None and not tables.keys.exists(spark):
        return full("the gold key table is missing")
    if version == done.silver_version:
        commits: list[Commit] | None = [latest]
    else:
        commits = _silver_commits(silver, done.silver_version, version)
    if commits is None:
        return full(f"silver's history no longer reaches back to v{done.silver_version}")
    if commits[0].timestamp != done.silver_commit:  # same version, another commit
        return full(f"silver's v{done.silver_version} is not the one gold folded in")
    changes = [gold.classify(c) for c in commits[1:]]
    if Change.REWRITE in changes:
        first = commits[1 + changes.index(Change.REWRITE)]
        return full(f"silver v{first.version} {first.operation} may have changed rows")
    inserts = [c for c, kind in zip(commits[1:], changes, strict=True) if kind is Change.INSERT]
    if not inserts:
        return up_to_date("no new silver commit" if version == done.silver_version
                          else "no rows inserted since gold's last update")  # fmt: skip
    counts = [c.inserted_rows for c in inserts]
    rows = None if None in counts else sum(c for c in counts if c is not None)
    summary = _incremental(spark, tables, done.silver_version, current, rows, started)
    return summary or full("silver's change data feed cannot give the inserted rows")


# --- the runner --------------------------------------------------------------------------------

_UNITS = {"ms": 0.001, "millisecond": 0.001, "s": 1, "sec": 1, "second": 1, "m": 60, "min": 60,
          "minute": 60, "h": 3600, "hour": 3600}  # fmt: skip
_INTERVAL = re.compile(r"^\s*(?:interval\s+)?(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_interval(text: str) -> float:
    """Seconds in a Spark-style interval: ``"5 seconds"``, ``"1 minute"``, ``"500 ms"``, ``"10"``
    (seconds)."""
    match = _INTERVAL.match(text)
    unit = match.group(2).lower() if match else ""
    if unit not in _UNITS and unit.endswith("s"):  # "seconds", "mins"; but "ms" is a unit
        unit = unit[:-1]
    if match is None or (unit and unit not in _UNITS):
        raise ConfigError(f"--interval {text!r} is not an interval like '5 seconds' or '1 minute'")
    return float(match.group(1)) * _UNITS.get(unit, 1)


def run_gold(
    spark: SparkSession,
    space: TableSpace,
    pipelines: Sequence[PipelineDefinition],
    trigger: TriggerSettings,
    *,
    stop: threading.Event | None = None,
) -> list[GoldRunSummary]:
    """Update the gold table of every record type of ``pipelines`` that has a gold spec, one after
    the other: once (``available-now``), or every ``trigger.interval`` until ``stop`` is set
    (``continuous``; an update under way when it is set finishes first, the next table's does not
    start). Returns each table's last summary; every update is logged as one line (a table's
    repeated "up to date" at debug level).

    ``stop`` is only ever read with ``is_set()``, never waited on: a signal handler may set it
    while this thread would otherwise hold the event's lock.
    """
    interval = parse_interval(trigger.interval)
    targets = [(TableLocations.for_record(space, pipeline, record), record.gold)
               for pipeline in pipelines for record in pipeline.records
               if record.gold is not None]  # fmt: skip
    if not targets:
        log.info("gold: no record type of pipeline(s) %s has a gold spec: nothing to update",
                 ", ".join(p.name for p in pipelines))  # fmt: skip
        return []
    last: list[GoldRunSummary | None] = [None] * len(targets)

    def stopped() -> bool:
        return stop is not None and stop.is_set()

    while True:
        for index, (locations, spec) in enumerate(targets):
            summary = update_gold(spark, locations, spec)
            # An idle continuous run would repeat "up to date" every interval: once is enough.
            previous, last[index] = last[index], summary
            idle = previous is not None and previous.mode == summary.mode == UP_TO_DATE
            log.log(logging.DEBUG if idle else logging.INFO, "%s", summary)
            if stopped():
                break
        if trigger.mode == AVAILABLE_NOW or stopped():
            return [s for s in last if s is not None]
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline and not stopped():
            time.sleep(min(STOP_POLL_S, max(0.0, deadline - time.monotonic())))
        if stopped():
            return [s for s in last if s is not None]
