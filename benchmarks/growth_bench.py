"""Silver and gold as one day of streaming grows: does a batch cost more when the table is big?

Silver is fed fixed-size batches of one day's events (event times increase with the batch, as a
live stream's do) through ``SilverBatch`` itself — decode, dedupe MERGE, quarantine — until the
table holds ``--total`` rows. Every batch is timed beside the floor, measured in the same run on
the same batch: the same decode and flattening appended to a Delta table, with no dedupe. Gold
runs after every silver batch (folding in that one batch) and is timed too.

The registry is an in-memory stand-in holding the Product versions (a benchmark of the pipeline's
own cost; registry calls are cached after the first batch either way).

    python benchmarks/growth_bench.py [--batch 100000] [--total 4000000] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).parent))
from avrolake import wire
from avrolake.definitions import PipelineDefinition, load_definitions
from avrolake.pipeline import silver
from avrolake.pipeline.gold_io import run_gold
from avrolake.pipeline.silver_io import SilverBatch
from avrolake.pipeline.tables import TableLocations, TableSpace
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.registry import RegisteredSchema, Subject
from avrolake.schemas import load_versions
from avrolake.spark import build_session
from machine import describe_machine
from silver_bench import SCHEMAS, make_bronze

DAY_START = 1_764_028_800  # 2025-11-25 00:00:00 UTC
DAY_SECONDS = 86_400
OUT_DIR = Path(__file__).parent / "results"
DEFINITIONS = Path(__file__).parents[1] / "pipelines.yml"  # the Product example


def product_pipeline() -> PipelineDefinition:
    (pipeline,) = load_definitions(DEFINITIONS).select(["products"])
    return pipeline.with_topic("bench")


class InMemoryRegistry:
    """Stand-in registry for the benchmark: the Product versions, the last one the reader."""

    wire_format = wire.WireFormat.CONFLUENT

    def __init__(self, versions: list[RegisteredSchema]) -> None:
        self._by_ref = {v.ref: v for v in versions}
        self._latest = versions[-1]

    def latest(self, topic: str | Subject) -> RegisteredSchema:
        return self._latest

    def by_ref(self, ref: str, topic: str | Subject | None = None) -> RegisteredSchema:
        return self._by_ref[ref]


@dataclass(frozen=True)
class Sample:
    batch: int
    rows_before: int
    silver_s: float
    floor_s: float
    gold_s: float


def floor(batch: DataFrame, schemas: silver.BatchSchemas, path: str) -> None:
    """The decode-and-append limit: silver's decoding and flattening, one Delta append."""
    decoded = silver.decode(batch, schemas, sentinel=silver.new_sentinel())
    rows = decoded.where(F.col("quarantine_reason").isNull()).select(
        "record.*", "schema_ref", "topic", "partition", "offset"
    )
    rows.write.format("delta").mode("append").save(path)


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def one_day(total: int) -> Callable[[Column], Column]:
    """Event times spread evenly over one day, increasing with the row id."""

    def timestamp(row_id: Column) -> Column:
        return (F.lit(DAY_START) + F.floor(row_id * DAY_SECONDS / total)).cast("long")

    return timestamp


def run(spark: SparkSession, batch_rows: int, total: int, root: str) -> list[Sample]:
    versions = load_versions(SCHEMAS)
    registered = [RegisteredSchema(str(100 + v.number), v.number, v.text) for v in versions]
    registry = InMemoryRegistry(registered)
    pipeline = product_pipeline()
    [record] = pipeline.records
    space = TableSpace.in_directory(f"{root}/warehouse")
    locations = TableLocations.for_record(space, pipeline, record)
    silver_batch = SilverBatch.for_pipeline(pipeline, registry, space)
    reader = registered[-1]
    roles = silver.Roles.of(record, reader, silver.reader_type(spark, reader))
    schemas = silver.BatchSchemas(reader, {r.ref: r for r in registered}, roles=roles)
    samples: list[Sample] = []
    for index in range(total // batch_rows):
        path = f"{root}/batches/{index}"
        make_bronze(
            spark, batch_rows, registered, first_row=index * batch_rows, timestamp=one_day(total)
        ).write.format("delta").save(path)
        batch = spark.read.format("delta").load(path)
        if index == 0:  # bronze must exist for a reader change; the batches stand in for it
            batch.limit(0).write.format("delta").save(locations.bronze.path)
        silver_s = timed(lambda: silver_batch(batch, index))  # noqa: B023
        floor_s = timed(lambda: floor(batch, schemas, f"{root}/floor"))  # noqa: B023
        gold_s = timed(lambda: run_gold(spark, space, [pipeline], TriggerSettings()))
        samples.append(Sample(index, index * batch_rows, silver_s, floor_s, gold_s))
        print(
            f"batch {index + 1}/{total // batch_rows}: silver {silver_s:.2f}s, "
            f"floor {floor_s:.2f}s, gold {gold_s:.2f}s",
            file=sys.stderr,
            flush=True,
        )
    assert locations.silver.read(spark).count() == total
    return samples


def near(samples: list[Sample], rows: int, window: int = 3) -> list[Sample]:
    """The ``window`` batches written when the table held about ``rows`` rows (noise on 2 cores
    is large; a few batches' median says more than one)."""
    ordered = sorted(samples, key=lambda s: abs(s.rows_before - rows))
    return ordered[:window]


def median(values: list[float]) -> float:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def report(samples: list[Sample], batch_rows: int, total: int) -> str:
    marks = [batch_rows, *range(1_000_000, total + 1, 1_000_000)]
    lines = [
        "| table rows before the batch | silver s/batch | floor s/batch | silver ÷ floor rate "
        "| gold s/run (one batch) |",
        "|---:|---:|---:|---:|---:|",
    ]
    stats = {}
    for mark in marks:
        picked = near(samples, mark - batch_rows if mark > batch_rows else 0)
        silver_s = median([s.silver_s for s in picked])
        floor_s = median([s.floor_s for s in picked])
        gold_s = median([s.gold_s for s in picked])
        stats[mark] = (silver_s, floor_s, gold_s)
        lines.append(
            f"| {mark:,} | {silver_s:.2f} | {floor_s:.2f} | {floor_s / silver_s:.2f} "
            f"| {gold_s:.2f} |"
        )
    first, last = stats[marks[0]], stats[marks[-1]]
    one_m = stats.get(1_000_000, first)
    lines += [
        "",
        f"- silver batch time at {marks[-1]:,} ÷ at {marks[0]:,} rows: "
        f"**{last[0] / first[0]:.2f}** (aim ≤ 1.2)",
        f"- silver steady state ÷ floor (rows/s, median over all batches after the first): "
        f"**{median([s.floor_s / s.silver_s for s in samples[1:]]):.2f}** (aim ≥ 0.7)",
        f"- gold run over one batch at {marks[-1]:,} ÷ at 1,000,000 rows: "
        f"**{last[2] / one_m[2]:.2f}** (aim ≤ 1.2)",
    ]
    return "\n".join(lines)


def plot(samples: list[Sample], batch_rows: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    millions = [s.rows_before / 1e6 for s in samples]
    figure, axis = plt.subplots(figsize=(8, 4.5))
    axis.plot(millions, [s.silver_s for s in samples], "o-", label="silver batch (SilverBatch)")
    axis.plot(millions, [s.floor_s for s in samples], "s-", label="floor: decode + Delta append")
    axis.plot(millions, [s.gold_s for s in samples], "^-", label="gold run over the batch")
    axis.set_xlabel("rows of the day already in silver (millions)")
    axis.set_ylabel("seconds per batch")
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(f"Cost of one {batch_rows:,}-event batch as one day grows")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--total", type=int, default=4_000_000)
    parser.add_argument("--out", type=Path, help="append a results section to this Markdown file")
    args = parser.parse_args()
    spark = build_session("avrolake-growth-bench")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as root:
        samples = run(spark, args.batch, args.total, root)
    load_after = os.getloadavg()
    OUT_DIR.mkdir(exist_ok=True)
    with (OUT_DIR / "growth.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["batch", "rows_before", "silver_s", "floor_s", "gold_s"])
        for s in samples:
            writer.writerow([s.batch, s.rows_before, f"{s.silver_s:.3f}", f"{s.floor_s:.3f}",
                             f"{s.gold_s:.3f}"])  # fmt: skip
    plot(samples, args.batch, OUT_DIR / "growth.png")
    text = (
        f"{args.total:,} events of one day in batches of {args.batch:,} (versions 1-3 in equal "
        f"shares); load average {load_before[0]:.2f} before, {load_after[0]:.2f} after\n\n"
        + report(samples, args.batch, args.total)
        + "\n\n![batch seconds against table size](benchmarks/results/growth.png)\n"
    )
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as out:
            out.write(
                f"\n## Growth: silver and gold as a day fills ({time.strftime('%Y-%m-%d')})\n\n"
            )
            out.write(describe_machine() + "\n\n" + text)
    spark.stop()


if __name__ == "__main__":
    main()
