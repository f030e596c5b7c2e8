"""Silver decode throughput on a mixed-version bronze table, beside two baselines, in one process.

- avrolake: one projection, a CASE over ``schema_ref`` whose branches are
  ``from_avro(payload, writer, {"avroSchema": reader})`` (every version resolved to the latest).
- single schema (the no-evolution limit): one ``from_avro(payload, reader)`` over a bronze table of
  the same size whose records were all written with the reader schema.
- per-schema passes (the original notebooks): filter the batch once per schema id, decode each
  subset with its own writer schema (no resolution), and write each subset separately.

Each variant decodes and flattens the same number of rows into Spark's ``noop`` sink, so the
numbers are decode cost, not Delta write cost. Bronze rows are made on the JVM with ``to_avro``.

    python benchmarks/silver_bench.py [--rows 1000000] [--repeats 5] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro, to_avro

sys.path.insert(0, str(Path(__file__).parent))
from avrolake import wire
from avrolake.definitions import load_definitions
from avrolake.pipeline import bronze, silver
from avrolake.registry import RegisteredSchema
from avrolake.schemas import load_versions
from avrolake.spark import build_session
from machine import describe_machine

SCHEMAS = Path(__file__).parents[1] / "schemas" / "product"
DEFINITIONS = Path(__file__).parents[1] / "pipelines.yml"  # the Product example


def field_values(row_id: Column, timestamp: Column | None = None) -> dict[str, Column]:
    """Column expressions for every Product field, deterministic in the row id (but eventId);
    ``timestamp`` (unix seconds) defaults to one second per row."""

    def pick(options: list[str]) -> Column:
        return F.element_at(F.array(*map(F.lit, options)), (row_id % len(options) + 1).cast("int"))

    return {
        "productId": F.format_string("P%04d", row_id % 100),
        "eventId": F.expr("uuid()"),
        "type": pick(["shirt", "pants", "shoes"]),
        "size": pick(["XS", "S", "M", "L", "XL"]),
        "color": pick(["black", "blue", "red"]),
        "timestamp": (F.lit(1_764_000_000) + row_id).cast("long")
        if timestamp is None
        else timestamp,
        "price": (row_id % 10_000 / 100).cast("decimal(10,2)"),
        "updatedAt": F.timestamp_millis((F.lit(1_764_000_000_000) + row_id).cast("long")),
    }


def make_bronze(
    spark: SparkSession,
    rows: int,
    writers: list[RegisteredSchema],
    *,
    first_row: int = 0,
    timestamp: Callable[[Column], Column] | None = None,
) -> DataFrame:
    """Confluent-framed records, row i written with writer ``i % len(writers)``; row ids (and
    Kafka offsets) from ``first_row``; ``timestamp(row_id)`` gives event times in unix seconds."""
    ids = spark.range(first_row, first_row + rows).withColumnRenamed("id", "row_id")
    row_id = F.col("row_id")
    values = field_values(row_id, None if timestamp is None else timestamp(row_id))
    value: Column | None = None
    for index, writer in enumerate(writers):
        names = [f["name"] for f in json.loads(writer.schema_str)["fields"]]
        record = to_avro(F.struct(*[values[n].alias(n) for n in names]), writer.schema_str)
        framed = F.concat(F.lit(wire.frame_confluent(int(writer.ref), b"")), record)
        matches = F.col("row_id") % len(writers) == index
        value = F.when(matches, framed) if value is None else value.when(matches, framed)
    kafka = ids.select(
        F.lit(None).cast("binary").alias("key"),
        value.alias("value"),
        F.lit("bench").alias("topic"),
        (F.col("row_id") % 3).cast("int").alias("partition"),
        F.col("row_id").alias("offset"),
        F.current_timestamp().alias("timestamp"),
        F.lit(0).alias("timestampType"),
        F.lit(None).cast("array<struct<key:string,value:binary>>").alias("headers"),
    )
    return bronze.to_bronze(kafka)


COORDINATES = ("topic", "partition", "offset")
OURS = "avrolake: one pass, every version resolved to v3"
SINGLE = "baseline: single schema, no evolution (an all-v3 bronze table)"
PER_SCHEMA = "baseline: one filtered pass per schema id (the original notebooks)"
FULL_ROWS = "avrolake, full silver rows (+ event time, dedupe by eventId)"
FILES = 4  # both bronze tables get the same file layout, so scans cost the same


Sink = Callable[[DataFrame], None]


def noop(frame: DataFrame) -> None:
    frame.write.format("noop").mode("overwrite").save()


def delta_appender(root: str) -> Sink:
    """Appends each run to a fresh Delta table, as the original notebooks wrote a batch."""

    def append(frame: DataFrame) -> None:
        frame.write.format("delta").mode("append").option("mergeSchema", "true").save(
            f"{root}/{uuid.uuid4().hex}"
        )

    return append


def product_schemas(
    spark: SparkSession, reader: RegisteredSchema, writers: dict
) -> silver.BatchSchemas:
    """The batch's schemas with the Product example definition's roles (pipelines.yml): key
    eventId, event time ``timestamp`` in seconds."""
    (pipeline,) = load_definitions(DEFINITIONS).select(["products"])
    roles = silver.Roles.of(pipeline.records[0], reader, silver.reader_type(spark, reader))
    return silver.BatchSchemas(reader=reader, writers=writers, roles=roles)


def avrolake_decode(frame: DataFrame, writers: dict, reader: RegisteredSchema, sink: Sink) -> None:
    """One pass: every row decoded with its writer schema, resolved to the reader's."""
    schemas = product_schemas(frame.sparkSession, reader, writers)
    decoded = silver.decode(frame, schemas, sentinel=silver.new_sentinel())
    sink(decoded.select("record.*", "schema_version", "quarantine_reason", *COORDINATES))


def avrolake_silver_rows(frame: DataFrame, writers: dict, reader: RegisteredSchema) -> None:
    schemas = product_schemas(frame.sparkSession, reader, writers)
    decoded = silver.decode(frame, schemas, sentinel=silver.new_sentinel())
    noop(silver.silver_rows(decoded, reader, schemas.roles))


def single_schema_decode(frame: DataFrame, reader: RegisteredSchema, sink: Sink) -> None:
    payload = wire.spark_payload(F.col("value"), F.col("wire_format"))
    record = from_avro(payload, reader.schema_str, {"mode": "PERMISSIVE"})
    sink(frame.select(record.alias("record"), *COORDINATES).select("record.*", *COORDINATES))


def per_schema_decode(frame: DataFrame, writers: dict, sink: Sink) -> None:
    """The original notebooks: filter the batch once per schema id, decode each subset with its
    own writer schema (no resolution), write each subset separately."""
    payload = wire.spark_payload(F.col("value"), F.col("wire_format"))
    for ref, writer in writers.items():
        subset = frame.where(F.col("schema_ref") == ref)
        record = from_avro(payload, writer.schema_str, {"mode": "PERMISSIVE"})
        sink(subset.select(record.alias("record"), *COORDINATES).select("record.*", *COORDINATES))


def results_table(results: dict[str, float], rows: int) -> str:
    """Markdown rows; the last column is each variant's time over avrolake's (the first row)."""
    ours = next(iter(results.values()))
    lines = ["| variant | seconds | rows/s | time ÷ avrolake's |", "|---|---:|---:|---:|"]
    for name, seconds in results.items():
        lines.append(f"| {name} | {seconds:.2f} | {rows / seconds:,.0f} | {seconds / ours:.2f} |")
    return "\n".join(lines)


def timed(variants: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds per variant. Every variant runs once to warm the JIT up, then the variants
    take turns round by round, so a slow moment of the machine spreads over all of them."""
    for run in variants.values():
        run()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_number in range(repeats):
        for name, run in variants.items():
            started = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - started)
        print(f"round {round_number + 1}/{repeats} done", file=sys.stderr, flush=True)
    return {name: statistics.median(times) for name, times in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="append a results section to this Markdown file")
    args = parser.parse_args()

    spark = build_session("avrolake-silver-bench")
    versions = load_versions(SCHEMAS)
    registered = [RegisteredSchema(str(100 + v.number), v.number, v.text) for v in versions]
    reader = registered[-1]
    writers = {r.ref: r for r in registered}
    with tempfile.TemporaryDirectory() as tmp:
        mixed_path, single_path = f"{tmp}/mixed", f"{tmp}/single"
        for path, versions_used in ((mixed_path, registered), (single_path, [reader])):
            frame = make_bronze(spark, args.rows, versions_used).repartition(FILES)
            frame.write.format("delta").save(path)
        mixed = spark.read.format("delta").load(mixed_path)
        single = spark.read.format("delta").load(single_path)
        assert mixed.count() == single.count() == args.rows

        append = delta_appender(f"{tmp}/out")
        decode_only = timed(
            {
                OURS: lambda: avrolake_decode(mixed, writers, reader, noop),
                SINGLE: lambda: single_schema_decode(single, reader, noop),
                PER_SCHEMA: lambda: per_schema_decode(mixed, writers, noop),
                FULL_ROWS: lambda: avrolake_silver_rows(mixed, writers, reader),
            },
            args.repeats,
        )
        with_appends = timed(
            {
                OURS + ", one Delta append": lambda: avrolake_decode(
                    mixed, writers, reader, append
                ),
                PER_SCHEMA + ", a Delta append each": lambda: per_schema_decode(
                    mixed, writers, append
                ),
            },
            args.repeats,
        )
    header = (
        f"{args.rows:,} bronze rows, versions 1-3 in equal shares; median of {args.repeats} runs "
        "after a warm-up run of each"
    )
    tables = [
        "Decode only (into Spark's `noop` sink):\n\n" + results_table(decode_only, args.rows),
        "Decode and write, as the original notebooks did (Delta appends):\n\n"
        + results_table(with_appends, args.rows),
    ]
    text = header + "\n\n" + "\n\n".join(tables)
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as out:
            out.write(f"\n## Silver decode ({time.strftime('%Y-%m-%d')})\n\n")
            out.write(describe_machine() + "\n\n" + text + "\n")
    spark.stop()


if __name__ == "__main__":
    main()
