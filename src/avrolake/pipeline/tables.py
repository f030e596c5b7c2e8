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

from avrolake.errors import ConfigError

if TYPE_CHECKING:
    from delta.tables import DeltaTable
    from pyspark.sql import DataFrame, DataFrameReader, SparkSession
    from pyspark.sql.streaming import DataStreamReader

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STAGES = ("bronze", "silver", "quarantine", "gold")
# Every table of a deployment: the stages' tables and gold's key table (gold's own state, the
# distinct (group, productId) pairs that keep its distinct counts exact; see pipeline.gold).
TABLES = (*STAGES, "gold_keys")


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
class TableLocations:
    """The tables and the checkpoint root of one deployment."""

    bronze: TableRef
    silver: TableRef
    quarantine: TableRef
    gold: TableRef
    gold_keys: TableRef
    checkpoint_root: str

    def checkpoint(self, stage: str) -> str:
        return f"{self.checkpoint_root.rstrip('/')}/{stage}"

    @classmethod
    def in_catalog(cls, catalog: str, schema: str, checkpoint_root: str) -> TableLocations:
        for option, value in (("--catalog", catalog), ("--schema", schema)):
            if not _IDENTIFIER.match(value):
                raise ConfigError(f"{option} {value!r} is not a valid identifier")
        refs = {table: TableRef(name=f"{catalog}.{schema}.{table}") for table in TABLES}
        return cls(**refs, checkpoint_root=checkpoint_root)

    @classmethod
    def in_directory(
        cls, warehouse: str | Path, checkpoint_root: str | None = None
    ) -> TableLocations:
        root = Path(warehouse).absolute()
        refs = {table: TableRef(path=str(root / table)) for table in TABLES}
        return cls(**refs, checkpoint_root=checkpoint_root or str(root / "_checkpoints"))
