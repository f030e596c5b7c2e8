"""Silver rows → gold aggregates as a record type's ``GoldSpec`` defines them: the pure parts.

Gold holds one row per group — ``event_date`` and the spec's ``group_by`` — with the spec's
aggregates: ``count`` (rows), ``count_distinct`` (exact), ``min``, ``max`` and ``sum`` of a silver
column. ``plan`` checks a spec against silver's schema; gold is then folded forward from silver's
inserted rows (``fold``) or recomputed from a silver snapshot (``aggregate``); ``gold_io`` decides
which (``classify`` reads silver's commits) and does the reads and writes.

Both paths start from the same grain (``partials``): one row per group and distinct value, with
each aggregate's partial value (rows, sum, min, max). Counts and sums add up and min/max combine
across batches, so folding a batch into old gold is exact (but for the rounding of a floating-point
sum, which depends on the order of additions in any engine). Distinct counts do not add up. They
stay exact through the key table: every distinct (group, value) pair seen so far. A batch's pairs
are combined with the stored pairs of the groups it touches (``combine_pairs``): the pairs not
stored yet are appended, and the combined set counts each touched group's values again
(``count_pairs``). A spec without ``count_distinct`` has no key table.

Every name the spec reads is looked up in silver by name or by the column's Avro aliases
(``resolve``), so a field renamed through an alias keeps feeding the same gold column; silver's
own columns (``event_time``, ``kafka_timestamp``…) are found by name. A name the reader does not
have reads as NULL (a NULL group, a NULL min/max/sum, no distinct value). Silver holds Avro's
defaults already: nothing here invents a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructField, StructType, VariantType

from avrolake.definitions import EVENT_DATE, Aggregate, Function, GoldSpec
from avrolake.errors import PipelineError

__all__ = [
    "DATE_KEY",
    "Change",
    "Commit",
    "KeyColumn",
    "Plan",
    "Progress",
    "aggregate",
    "classify",
    "combine_pairs",
    "count_pairs",
    "fold",
    "new_pairs",
    "pairs",
    "partials",
    "plan",
    "project",
    "resolve",
]

ALIASES = "avrolake.aliases"  # silver's column metadata: the Avro field's aliases
DATE_KEY = EVENT_DATE
ABSENT_TYPE = "string"  # the type of a column the reader does not have (all NULL)
ABSENT_SUM_TYPE = "bigint"  # … and of one that is summed: a number, as any sum
_SUM_TYPES = {"tinyint": "bigint", "smallint": "bigint", "int": "bigint", "bigint": "bigint",
              "float": "double", "double": "double"}  # fmt: skip
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
_COUNTS = (Function.COUNT, Function.COUNT_DISTINCT)


# --- which silver column feeds which name of the spec ------------------------------------------


@dataclass(frozen=True)
class KeyColumn:
    """The spec's ``name`` is read from silver's column ``source`` (None: the reader has no such
    field, the value is NULL) of type ``type`` (a Spark DDL type string)."""

    name: str
    source: str | None
    type: str

    def column(self) -> Column:
        if self.source is None:
            return F.lit(None).cast(self.type).alias(self.name)
        return F.col(f"`{self.source}`").alias(self.name)


def _find(silver: StructType, name: str) -> StructField | None:
    """Silver's column of that name, else the one whose Avro aliases hold it (a renamed field),
    else None."""
    by_name = {field.name: field for field in silver.fields}
    if name in by_name:
        return by_name[name]
    aliased = [f for f in silver.fields if name in (f.metadata.get(ALIASES) or ())]
    if len(aliased) > 1:
        sources = ", ".join(f.name for f in aliased)
        raise PipelineError(
            f"silver columns {sources} all alias {name!r}: gold cannot tell which one is "
            f"its {name!r}; give the alias to one field of the reader schema only"
        )
    return aliased[0] if aliased else None


def resolve(
    silver: StructType, names: Sequence[str], absent_type: str = ABSENT_TYPE
) -> tuple[KeyColumn, ...]:
    """Each name's silver column (see ``_find``), or none: then it reads as a NULL of
    ``absent_type``."""
    resolved = []
    for name in names:
        field = _find(silver, name)
        if field is None:
            resolved.append(KeyColumn(name, None, absent_type))
        else:
            resolved.append(KeyColumn(name, field.name, field.dataType.simpleString()))
    return tuple(resolved)


def _orderable(data_type: DataType) -> bool:
    """Whether Spark can compare (so min/max, group and count distinct) values of the type."""
    if isinstance(data_type, MapType | VariantType):
        return False
    if isinstance(data_type, ArrayType):
        return _orderable(data_type.elementType)
    if isinstance(data_type, StructType):
        return all(_orderable(f.dataType) for f in data_type.fields)
    return True


def _sum_type(type_name: str) -> str | None:
    """The type of a sum over a column of ``type_name`` (Spark's own), None if not a number."""
    decimal = _DECIMAL.match(type_name)
    if decimal:  # room for 10^10 times the largest value, as Spark's sum gives
        return f"decimal({min(38, int(decimal.group(1)) + 10)},{decimal.group(2)})"
    return _SUM_TYPES.get(type_name)


@dataclass(frozen=True)
class Plan:
    """A gold spec and the silver column each name it reads resolves to (``inputs``: its group
    keys first, then its aggregates' fields, each once). Two plans are equal exactly when gold
    computed with one is what the other would compute."""

    spec: GoldSpec
    inputs: tuple[KeyColumn, ...]

    @property
    def group_keys(self) -> tuple[str, ...]:
        return (DATE_KEY, *self.spec.group_by)

    @property
    def distinct(self) -> Aggregate | None:
        return self.spec.distinct

    @property
    def pair_keys(self) -> tuple[str, ...]:
        """One row of the key table, and the grain of ``partials``: a group and a distinct value."""
        field = self.distinct.field if self.distinct else None
        if field is None or field in self.group_keys:
            return self.group_keys
        return (*self.group_keys, field)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.group_keys, *(a.name for a in self.spec.aggregates))

    def input(self, name: str) -> KeyColumn:
        return next(k for k in self.inputs if k.name == name)

    def finish(self, aggregate: Aggregate, value: Column) -> Column:
        """An aggregate's combined value as its gold column, of one type on every path."""
        if aggregate.function in _COUNTS:
            value = value.cast("bigint")
        elif aggregate.function is Function.SUM:
            value = value.cast(str(_sum_type(self.input(str(aggregate.field)).type)))
        return value.alias(aggregate.name)


def plan(spec: GoldSpec, silver: StructType) -> Plan:
    """``spec`` against silver's columns; ``PipelineError`` when a column cannot take its role (a
    sum of a non-number; a group, min, max or distinct count of values Spark cannot compare)."""
    summed = {a.field for a in spec.aggregates if a.function is Function.SUM}
    names = [n for n in (*spec.group_by, *(a.field for a in spec.aggregates if a.field))
             if n != DATE_KEY]  # fmt: skip
    inputs = [resolve(silver, [n], ABSENT_SUM_TYPE if n in summed else ABSENT_TYPE)[0]
              for n in dict.fromkeys(names)]  # fmt: skip
    roles = [(f"group_by {name}", name, False) for name in spec.group_by]
    roles += [(f"{a.function} {a.name}", a.field, a.function is Function.SUM)
              for a in spec.aggregates if a.field]  # fmt: skip
    for role, name, is_sum in roles:
        field = _find(silver, name)
        if field is None:
            continue  # read as NULL
        type_name = field.dataType.simpleString()
        if is_sum and _sum_type(type_name) is None:
            problem = "is not a number"
        elif not is_sum and not _orderable(field.dataType):
            problem = "holds values Spark cannot compare"
        else:
            continue
        raise PipelineError(
            f"gold table {spec.table}: {role} reads silver column {field.name!r} of type "
            f"{type_name}, which {problem}; point it at another field in the pipeline definitions"
        )
    return Plan(spec, tuple(inputs))


def project(silver: DataFrame, plan: Plan) -> DataFrame:
    """Silver rows (a snapshot or change-feed rows) as the columns the spec reads, by its names."""
    return silver.select(F.col(DATE_KEY), *(k.column() for k in plan.inputs))


# --- aggregates ------------------------------------------------------------------------------


def _partial(name: str) -> str:
    """Where an aggregate's partial value travels: a name no gold or silver column can have."""
    return f"{name}#"


def _col(name: str) -> Column:
    return F.col(f"`{name}`")


def partials(rows: DataFrame, plan: Plan) -> DataFrame:
    """Each aggregate's partial value per (group, distinct value): the grain both paths start
    from, much smaller than the rows (a value's rows in one group collapse to one row)."""
    parts = []
    for a in plan.spec.aggregates:
        if a.function is Function.COUNT:
            parts.append(F.count(F.lit(1)).alias(_partial(a.name)))
        elif a.function is not Function.COUNT_DISTINCT:
            combine = {Function.SUM: F.sum, Function.MIN: F.min, Function.MAX: F.max}
            parts.append(combine[a.function](_col(str(a.field))).alias(_partial(a.name)))
    grain = rows.groupBy(*plan.pair_keys)
    return grain.agg(*parts) if parts else rows.select(*plan.pair_keys).distinct()


def _combined(plan: Plan) -> list[Column]:
    """Partial values (of any grain) combined per group, for every aggregate but count_distinct."""
    combine = {Function.COUNT: F.sum, Function.SUM: F.sum, Function.MIN: F.min,
               Function.MAX: F.max}  # fmt: skip
    return [
        plan.finish(a, combine[a.function](_col(_partial(a.name))))
        for a in plan.spec.aggregates
        if a.function is not Function.COUNT_DISTINCT
    ]


def aggregate(grain: DataFrame, plan: Plan) -> DataFrame:
    """Gold from the ``partials`` of *all* silver rows. Pairs are distinct, so counting the
    non-NULL values is the exact distinct count (NULL is no value, as in countDistinct)."""
    columns = _combined(plan)
    if plan.distinct is not None:
        columns.append(plan.finish(plan.distinct, F.count(_col(str(plan.distinct.field)))))
    return grain.groupBy(*plan.group_keys).agg(*columns).select(*plan.columns)


def pairs(grain: DataFrame, plan: Plan) -> DataFrame:
    """The key table's rows of ``partials``: its (group, value) pairs with a value."""
    assert plan.distinct is not None  # only a spec with count_distinct has a key table
    return grain.where(_col(str(plan.distinct.field)).isNotNull()).select(*plan.pair_keys)


def _null_safe(left: str, right: str, keys: Sequence[str]) -> Column:
    condition = F.lit(True)
    for key in keys:  # NULL is a group (a key the reader lacks): it must match itself
        condition = condition & F.col(f"{left}.`{key}`").eqNullSafe(F.col(f"{right}.`{key}`"))
    return condition


def combine_pairs(stored: DataFrame, batch: DataFrame, plan: Plan) -> DataFrame:
    """Every distinct pair of the batch's groups, each with ``stored`` = whether the key table has
    it already. ``stored`` is the key table restricted to the batch's dates; only the groups the
    batch (its ``partials``) touches are kept. A pair stored twice (a re-run that appended it
    again) counts once."""
    keys = plan.pair_keys
    groups = batch.select(*plan.group_keys).distinct()
    touched = stored.alias("k").join(
        F.broadcast(groups.alias("g")), _null_safe("k", "g", plan.group_keys), "left_semi"
    )
    return (
        touched.select(*keys, F.lit(1).alias("stored"))
        .unionByName(pairs(batch, plan).select(*keys, F.lit(0).alias("stored")))
        .groupBy(*keys)
        .agg(F.max("stored").cast("boolean").alias("stored"))
    )


def new_pairs(combined: DataFrame, plan: Plan) -> DataFrame:
    """The pairs to append to the key table."""
    return combined.where(~F.col("stored")).select(*plan.pair_keys)


def count_pairs(combined: DataFrame, plan: Plan) -> DataFrame:
    """Distinct values of every group the batch touched, counted from all its pairs."""
    assert plan.distinct is not None
    return combined.groupBy(*plan.group_keys).agg(F.count(F.lit(1)).alias(plan.distinct.name))


def fold(old: DataFrame, batch: DataFrame, counts: DataFrame | None, plan: Plan) -> DataFrame:
    """Gold's rows for the batch's dates: ``old`` (gold's rows of those dates) with the batch (its
    ``partials``) added. Counts and sums add up, min/max combine; ``counts`` (``count_pairs``;
    None without count_distinct) replaces the distinct count of every group the batch touched,
    the others keep theirs. A touched group without a count saw no value at all: it keeps its old
    count, or 0 when it is new."""
    distinct = plan.distinct
    old = old.select(*plan.group_keys, *(_col(a.name).alias(_partial(a.name))
                                         for a in plan.spec.aggregates))  # fmt: skip
    # One union and one groupBy instead of joins: groupBy matches NULL keys with each other,
    # which a join needs null-safe conditions for.
    union = old.unionByName(batch.drop(*set(plan.pair_keys) - set(plan.group_keys)),
                            allowMissingColumns=True)  # fmt: skip
    columns = _combined(plan)
    if distinct is not None:
        assert counts is not None  # a spec with count_distinct folds with its pairs
        fresh = counts.select(*plan.group_keys, _col(distinct.name).alias(f"{distinct.name}#new"))
        union = union.unionByName(fresh, allowMissingColumns=True)
        newest = F.coalesce(F.max(_col(f"{distinct.name}#new")),
                            F.max(_col(_partial(distinct.name))), F.lit(0))  # fmt: skip
        columns.append(plan.finish(distinct, newest))
    return union.groupBy(*plan.group_keys).agg(*columns).select(*plan.columns)


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
    dropped and created again reuses versions, not timestamps) — and the plan gold was computed
    with: the spec and which silver column fed each of its names. ``lineage`` is new at every
    full recomputation (see ``gold_io``'s idempotent writes). Written as the ``userMetadata`` of
    gold's commit, so it is recorded exactly when gold's rows are."""

    silver_version: int
    silver_commit: str
    lineage: str
    plan: Plan

    MARKER = "avrolake.gold"

    def to_json(self) -> str:
        state = {
            "silver_version": self.silver_version,
            "silver_commit": self.silver_commit,
            "lineage": self.lineage,
            "spec": self.plan.spec.model_dump(mode="json"),
            "inputs": {k.name: [k.source, k.type] for k in self.plan.inputs},  # in order
        }
        return json.dumps({self.MARKER: state})

    @classmethod
    def from_json(cls, text: str | None) -> Progress | None:
        """The progress in a commit's ``userMetadata``, or None (another writer's commit, or one
        of an older avrolake: gold is then recomputed once)."""
        try:
            state = json.loads(text or "")[cls.MARKER]
            inputs = tuple(KeyColumn(n, s, t) for n, (s, t) in state["inputs"].items())
            return cls(
                int(state["silver_version"]),
                str(state["silver_commit"]),
                str(state["lineage"]),
                Plan(GoldSpec.model_validate(state["spec"]), inputs),
            )
        except (ValueError, TypeError, KeyError, AttributeError):  # pydantic's: a ValueError
            return None
