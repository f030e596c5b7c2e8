"""Silver rows → gold aggregates per (event_date, type, color, size): the pure parts.

Gold holds, per group, ``events``, ``distinct_products`` (exact), ``first_event_time`` and
``last_event_time``. It is folded forward from silver's inserted rows (``fold``) or recomputed
from a silver snapshot (``aggregate``); ``gold_io`` decides which (``classify`` reads silver's
commits) and does the reads and writes.

Events add up and min/max combine across batches; distinct counts do not. They stay exact through
the key table: every distinct (group, productId) pair seen so far. A batch's pairs are combined
with the stored pairs of the groups it touches (``combine_pairs``): the pairs not stored yet are
appended, and the combined set counts each touched group's products again (``count_pairs``).

Gold's keys are looked up in silver by name or by the column's Avro aliases (``resolve``), so a
field renamed through an alias keeps feeding the same gold column, and a key the reader does not
have groups as NULL. Silver holds Avro's defaults already: nothing here invents a value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from avrolake.errors import PipelineError

__all__ = [
    "DATE_KEY",
    "DISTINCT_KEY",
    "FIELD_KEYS",
    "GOLD_COLUMNS",
    "GROUP_KEYS",
    "PAIR_KEYS",
    "Change",
    "Commit",
    "KeyColumn",
    "Progress",
    "aggregate",
    "classify",
    "combine_pairs",
    "count_pairs",
    "fold",
    "new_pairs",
    "pair_aggregates",
    "project",
    "resolve",
]

ALIASES = "avrolake.aliases"  # silver's column metadata: the Avro field's aliases
DATE_KEY = "event_date"
EVENT_TIME = "event_time"
FIELD_KEYS = ("type", "color", "size")  # group keys that are reader fields
DISTINCT_KEY = "productId"
GROUP_KEYS = (DATE_KEY, *FIELD_KEYS)
PAIR_KEYS = (*GROUP_KEYS, DISTINCT_KEY)  # one row of the key table
GOLD_COLUMNS = (*GROUP_KEYS, "events", "distinct_products", "first_event_time", "last_event_time")
ABSENT_TYPE = "string"  # the type of a key column the reader does not have (all NULL)


# --- which silver column feeds which gold key --------------------------------------------------


@dataclass(frozen=True)
class KeyColumn:
    """Gold's ``name`` is read from silver's column ``source`` (None: the reader has no such
    field, the key is NULL) of type ``type`` (a Spark DDL type string)."""

    name: str
    source: str | None
    type: str

    def column(self) -> Column:
        if self.source is None:
            return F.lit(None).cast(self.type).alias(self.name)
        return F.col(f"`{self.source}`").alias(self.name)


def resolve(
    silver: StructType, names: Sequence[str] = (*FIELD_KEYS, DISTINCT_KEY)
) -> tuple[KeyColumn, ...]:
    """Each name's silver column: the column of that name, else the one whose Avro aliases hold
    it (a renamed field), else none."""
    by_name = {field.name: field for field in silver.fields}
    resolved = []
    for name in names:
        field = by_name.get(name)
        if field is None:
            aliased = [f for f in silver.fields if name in (f.metadata.get(ALIASES) or ())]
            if len(aliased) > 1:
                sources = ", ".join(f.name for f in aliased)
                raise PipelineError(
                    f"silver columns {sources} all alias {name!r}: gold cannot tell which one is "
                    f"its {name!r} key; give the alias to one field of the reader schema only"
                )
            field = aliased[0] if aliased else None
        if field is None:
            resolved.append(KeyColumn(name, None, ABSENT_TYPE))
        else:
            resolved.append(KeyColumn(name, field.name, field.dataType.simpleString()))
    return tuple(resolved)


def project(silver: DataFrame, keys: Sequence[KeyColumn]) -> DataFrame:
    """Silver rows (a snapshot or change-feed rows) as gold's keys, ``productId`` and event time."""
    return silver.select(F.col(DATE_KEY), *(k.column() for k in keys), F.col(EVENT_TIME))


# --- aggregates ------------------------------------------------------------------------------


def pair_aggregates(rows: DataFrame) -> DataFrame:
    """Events and first/last event time per (group, productId): the grain both paths start from,
    much smaller than the rows (a product's events in one group collapse to one row)."""
    return rows.groupBy(*PAIR_KEYS).agg(
        F.count(F.lit(1)).alias("events"),
        F.min(EVENT_TIME).alias("first_event_time"),
        F.max(EVENT_TIME).alias("last_event_time"),
    )


def aggregate(pairs: DataFrame) -> DataFrame:
    """Gold from the pair aggregates of *all* silver rows. Pairs are distinct, so counting the
    non-NULL productIds is the exact distinct count (NULL is no product, as in countDistinct)."""
    return pairs.groupBy(*GROUP_KEYS).agg(
        F.sum("events").alias("events"),
        F.count(DISTINCT_KEY).alias("distinct_products"),
        F.min("first_event_time").alias("first_event_time"),
        F.max("last_event_time").alias("last_event_time"),
    )


def _null_safe(left: str, right: str, keys: Sequence[str]) -> Column:
    condition = F.lit(True)
    for key in keys:  # NULL is a group (a key the reader lacks): it must match itself
        condition = condition & F.col(f"{left}.`{key}`").eqNullSafe(F.col(f"{right}.`{key}`"))
    return condition


def combine_pairs(stored: DataFrame, batch_pairs: DataFrame) -> DataFrame:
    """Every distinct pair of the batch's groups, each with ``stored`` = whether the key table has
    it already. ``stored`` is the key table restricted to the batch's dates; only the groups the
    batch touches are kept. A pair stored twice (a re-run that appended it again) counts once."""
    groups = batch_pairs.select(*GROUP_KEYS).distinct()
    touched = stored.alias("k").join(
        F.broadcast(groups.alias("g")), _null_safe("k", "g", GROUP_KEYS), "left_semi"
    )
    fresh = batch_pairs.where(F.col(DISTINCT_KEY).isNotNull()).select(*PAIR_KEYS)
    return (
        touched.select(*PAIR_KEYS, F.lit(1).alias("stored"))
        .unionByName(fresh.select(*PAIR_KEYS, F.lit(0).alias("stored")))
        .groupBy(*PAIR_KEYS)
        .agg(F.max("stored").cast("boolean").alias("stored"))
    )


def new_pairs(combined: DataFrame) -> DataFrame:
    """The pairs to append to the key table."""
    return combined.where(~F.col("stored")).select(*PAIR_KEYS)


def count_pairs(combined: DataFrame) -> DataFrame:
    """Distinct products of every group the batch touched, counted from all its pairs."""
    return combined.groupBy(*GROUP_KEYS).agg(F.count(F.lit(1)).alias("distinct_products"))


def fold(old: DataFrame, batch_pairs: DataFrame, counts: DataFrame) -> DataFrame:
    """Gold's rows for the batch's dates: ``old`` (gold's rows of those dates) with the batch
    added. Events add up, first/last combine; ``counts`` (``count_pairs``) replaces the distinct
    count of every group the batch touched, the others keep theirs. A touched group without a
    count saw no productId at all: it keeps its old count, or 0 when it is new."""
    batch = batch_pairs.groupBy(*GROUP_KEYS).agg(
        F.sum("events").alias("events"),
        F.min("first_event_time").alias("first_event_time"),
        F.max("last_event_time").alias("last_event_time"),
    )
    # One union and one groupBy instead of joins: groupBy matches NULL keys with each other,
    # which a join needs null-safe conditions for.
    parts = (
        old.select(*GOLD_COLUMNS).withColumnRenamed("distinct_products", "old_distinct"),
        batch,
        counts.withColumnRenamed("distinct_products", "new_distinct"),
    )
    union = parts[0].unionByName(parts[1], allowMissingColumns=True)
    union = union.unionByName(parts[2], allowMissingColumns=True)
    return union.groupBy(*GROUP_KEYS).agg(
        F.sum("events").cast("bigint").alias("events"),
        F.coalesce(F.max("new_distinct"), F.max("old_distinct"), F.lit(0))
        .cast("bigint")
        .alias("distinct_products"),
        F.min("first_event_time").alias("first_event_time"),
        F.max("last_event_time").alias("last_event_time"),
    )


# --- what silver's commits since the last run allow ------------------------------------------


class Change(Enum):
    """What one silver commit did to its rows, as far as gold is concerned."""

    NONE = "none"  # no row changed: table properties, OPTIMIZE, VACUUM
    INSERT = "insert"  # rows were only added: the change feed's inserts are the whole change
    REWRITE = "rewrite"  # rows may have changed or gone: only a recomputation is right


@dataclass(frozen=True)
class Commit:
    """One entry of a Delta table's history (``DeltaTable.history()``)."""

    version: int
    operation: str
    parameters: Mapping[str, str]
    metrics: Mapping[str, str]
    timestamp: str = ""  # when it was committed (ISO): with the version, it names one commit

    @property
    def inserted_rows(self) -> int | None:
        """Rows an insert added, from the commit's metrics (None: not recorded)."""
        key = "numTargetRowsInserted" if self.operation == "MERGE" else "numOutputRows"
        value = self.metrics.get(key)
        return None if value is None else int(value)


_NO_ROW_CHANGE = frozenset(
    {"SET TBLPROPERTIES", "UNSET TBLPROPERTIES", "OPTIMIZE", "VACUUM START", "VACUUM END"}
)
_APPENDS = {"WRITE": "mode", "STREAMING UPDATE": "outputMode"}  # operation → its mode parameter
_MERGE_CHANGES = ("Updated", "Deleted")  # numTargetRows{Matched,NotMatchedBySource,}{Updated,...}


def classify(commit: Commit) -> Change:
    """Anything not known to only add rows is a rewrite: an unknown operation costs one full
    recomputation, a wrong guess would cost a wrong gold. An insert of no rows (silver's MERGE of
    a replayed batch) changes nothing."""
    if commit.operation in _NO_ROW_CHANGE:
        return Change.NONE
    inserted = Change.INSERT if commit.inserted_rows != 0 else Change.NONE
    if commit.operation in _APPENDS:
        mode = commit.parameters.get(_APPENDS[commit.operation], "")
        return inserted if mode == "Append" else Change.REWRITE
    if commit.operation == "MERGE":
        # without metrics (history metrics switched off) nobody can tell: a rewrite
        counted = [v for k, v in commit.metrics.items() if k.endswith(_MERGE_CHANGES)]
        if counted and "numTargetRowsInserted" in commit.metrics and not any(map(int, counted)):
            return inserted
    return Change.REWRITE


# --- gold's progress, recorded in gold's own commit -------------------------------------------


@dataclass(frozen=True)
class Progress:
    """The silver snapshot gold equals — silver's version and that commit's timestamp (a silver
    dropped and created again reuses versions, not timestamps) — and which silver column fed each
    key. ``lineage`` is new at every full recomputation (see ``gold_io``'s idempotent writes).
    Written as the ``userMetadata`` of gold's commit, so it is recorded exactly when gold's rows
    are."""

    silver_version: int
    silver_commit: str
    lineage: str
    keys: tuple[KeyColumn, ...]

    MARKER = "avrolake.gold"

    def to_json(self) -> str:
        state = {
            "silver_version": self.silver_version,
            "silver_commit": self.silver_commit,
            "lineage": self.lineage,
            "keys": {k.name: [k.source, k.type] for k in self.keys},  # in order: compared so
        }
        return json.dumps({self.MARKER: state})

    @classmethod
    def from_json(cls, text: str | None) -> Progress | None:
        """The progress in a commit's ``userMetadata``, or None (another writer's commit)."""
        try:
            state = json.loads(text or "")[cls.MARKER]
            keys = tuple(KeyColumn(n, s, t) for n, (s, t) in state["keys"].items())
            return cls(
                int(state["silver_version"]),
                str(state["silver_commit"]),
                str(state["lineage"]),
                keys,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
