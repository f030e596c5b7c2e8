"""Where the medallion tables and stream checkpoints live.

On Databricks tables are Unity Catalog names (``catalog.schema.bronze``); locally, where the Spark
catalog does not outlive a process, they are Delta paths under a warehouse directory. Either way a
stage sees a ``TableRef`` and never builds a location itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from avrolake.definitions import BRONZE_TABLE
from avrolake.errors import ConfigError

if TYPE_CHECKING:
    from delta.tables import DeltaTable
    from pyspark.sql import DataFrame, DataFrameReader, SparkSession
    from pyspark.sql.streaming import DataStreamReader

    from avrolake.definitions import PipelineDefinition, RecordDefinition

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BRONZE = BRONZE_TABLE
# The Product example's tables (pipelines.yml): silver, quarantine, gold and gold's key table
# (gold's own state, the distinct (group, productId) pairs that keep its distinct counts exact).
_EXAMPLE = ("silver", "quarantine", "gold", "gold_keys")


@dataclass(frozen=True)
class TableRef:
    """A Delta table by catalog name or by path; exactly one of the two is set."""

    name: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if (self.name is None) == (self.path is None):
            raise ValueError("TableRef needs exactly one of name and path")

    def __str__(self) -> str:
        return self.name or f"delta.`{self.path}`"

    def exists(self, spark: SparkSession) -> bool:
        from delta.tables import DeltaTable

        if self.name:
            return bool(spark.catalog.tableExists(self.name))
        assert self.path is not None  # exactly one of name and path is set
        return DeltaTable.isDeltaTable(spark, self.path)

    def delta(self, spark: SparkSession) -> DeltaTable:
        from delta.tables import DeltaTable

        if self.name:
            return DeltaTable.forName(spark, self.name)
        assert self.path is not None
        return DeltaTable.forPath(spark, self.path)

    def read(self, spark: SparkSession) -> DataFrame:
        reader: DataFrameReader = spark.read.format("delta")
        return reader.table(self.name) if self.name else reader.load(self.path)

    def read_stream(self, spark: SparkSession) -> DataFrame:
        reader: DataStreamReader = spark.readStream.format("delta")
        return reader.table(self.name) if self.name else reader.load(self.path)

    def require(self, spark: SparkSession, produced_by: str) -> None:
        """Fail with a one-line fix when an upstream table has not been created yet."""
        if not self.exists(spark):
            from avrolake.errors import PipelineError

            raise PipelineError(
                f"table {self} does not exist yet: run `avrolake {produced_by}` first"
            )


@dataclass(frozen=True)
class TableSpace:
    """Where one deployment's tables and checkpoints live: a Unity Catalog schema
    (``catalog.schema``) or, locally, a warehouse directory. Tables are named by the pipeline
    definitions; bronze is every topic's."""

    checkpoint_root: str
    schema: str | None = None  # "catalog.schema"
    directory: str | None = None

    def __post_init__(self) -> None:
        if (self.schema is None) == (self.directory is None):
            raise ValueError("TableSpace needs exactly one of schema and directory")

    def table(self, name: str) -> TableRef:
        if self.schema is not None:
            return TableRef(name=f"{self.schema}.{name}")
        return TableRef(path=str(Path(str(self.directory)) / name))

    def checkpoint(self, *parts: str) -> str:
        return "/".join([self.checkpoint_root.rstrip("/"), *parts])

    @classmethod
    def in_catalog(cls, catalog: str, schema: str, checkpoint_root: str) -> TableSpace:
        for option, value in (("--catalog", catalog), ("--schema", schema)):
            if not _IDENTIFIER.match(value):
                raise ConfigError(f"{option} {value!r} is not a valid identifier")
        return cls(checkpoint_root, schema=f"{catalog}.{schema}")

    @classmethod
    def in_directory(cls, warehouse: str | Path, checkpoint_root: str | None = None) -> TableSpace:
        root = Path(warehouse).absolute()
        return cls(checkpoint_root or str(root / "_checkpoints"), directory=str(root))


@dataclass(frozen=True)
class TableLocations:
    """The tables one record type flows through, and the deployment's ``space``.

    ``gold`` and ``gold_keys`` are None for a record type without a gold spec.
    ``in_catalog``/``in_directory`` give the Product example's names (bronze, silver, quarantine,
    gold, gold_keys); ``for_record`` a pipeline definition's.
    """

    bronze: TableRef
    silver: TableRef
    quarantine: TableRef
    gold: TableRef | None
    gold_keys: TableRef | None
    space: TableSpace

    @property
    def checkpoint_root(self) -> str:
        return self.space.checkpoint_root

    def checkpoint(self, stage: str) -> str:
        return self.space.checkpoint(stage)

    @classmethod
    def named(
        cls,
        space: TableSpace,
        silver: str,
        quarantine: str,
        gold: str | None = None,
        gold_keys: str | None = None,
    ) -> TableLocations:
        return cls(
            bronze=space.table(BRONZE),
            silver=space.table(silver),
            quarantine=space.table(quarantine),
            gold=space.table(gold) if gold else None,
            gold_keys=space.table(gold_keys) if gold_keys else None,
            space=space,
        )

    @classmethod
    def for_record(
        cls, space: TableSpace, pipeline: PipelineDefinition, record: RecordDefinition
    ) -> TableLocations:
        gold = record.gold
        return cls.named(
            space,
            record.silver_table,
            pipeline.quarantine_table,
            gold.table if gold else None,
            gold.keys_table if gold else None,
        )

    @classmethod
    def in_catalog(cls, catalog: str, schema: str, checkpoint_root: str) -> TableLocations:
        return cls.named(TableSpace.in_catalog(catalog, schema, checkpoint_root), *_EXAMPLE)

    @classmethod
    def in_directory(
        cls, warehouse: str | Path, checkpoint_root: str | None = None
    ) -> TableLocations:
        return cls.named(TableSpace.in_directory(warehouse, checkpoint_root), *_EXAMPLE)
