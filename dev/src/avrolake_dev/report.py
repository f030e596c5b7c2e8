"""Pictures of a pipeline run: gold's breakdowns and the schema-version mix over time.

matplotlib (a dependency of avrolake-dev) draws a PNG with the Agg backend, so no display is needed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def gold_breakdowns(
    gold: DataFrame, keys: Sequence[str], measure: str
) -> dict[str, dict[str, int]]:
    """``measure`` (a count) per value of each of gold's group ``keys`` (the example: events per
    type, per color and per size), summed over gold's groups."""
    out: dict[str, dict[str, int]] = {}
    for key in keys:
        rows = gold.groupBy(key).sum(measure).collect()
        out[key] = {str(row[0]): int(row[1]) for row in sorted(rows, key=lambda r: str(r[0]))}
    return out


def versions_over_time(
    silver: DataFrame, buckets: int = 30
) -> tuple[dict[int, dict[int, int]], int]:
    """Silver rows per schema version per time bucket of Kafka time, from the first event; about
    ``buckets`` buckets over the run. Returns the series and the bucket width in seconds."""
    from pyspark.sql import functions as F

    seconds = F.unix_timestamp("kafka_timestamp")
    bounds = silver.agg(F.min(seconds), F.max(seconds)).first()
    start, end = (bounds[0] or 0, bounds[1] or 0) if bounds else (0, 0)
    bucket_seconds = max(1, (end - start + buckets - 1) // buckets)
    rows = (
        silver.select(
            ((seconds - F.lit(start)) / bucket_seconds).cast("int").alias("bucket"),
            "schema_version",
        )
        .groupBy("bucket", "schema_version")
        .count()
        .collect()
    )
    series: dict[int, dict[int, int]] = defaultdict(dict)
    for row in rows:
        series[int(row.schema_version)][int(row.bucket) * bucket_seconds] = int(row["count"])
    return dict(series), bucket_seconds


def draw(
    breakdowns: dict[str, dict[str, int]],
    versions: tuple[dict[int, dict[int, int]], int],
    path: Path,
    title: str,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(breakdowns) + 1  # a breakdown per gold group key, then the timeline
    figure, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 4.5), squeeze=False)
    for axis, (key, counts) in zip(axes[0], breakdowns.items(), strict=False):
        axis.bar(list(counts), list(counts.values()), color="#4477aa")
        axis.set_title(f"events per {key}")
        axis.tick_params(axis="x", rotation=30)
    timeline = axes[0][-1]
    series_by_version, width = versions
    buckets = sorted({t for series in series_by_version.values() for t in series})
    bottom = [0] * len(buckets)
    for version in sorted(series_by_version):
        heights = [series_by_version[version].get(t, 0) for t in buckets]
        timeline.bar(buckets, heights, bottom=bottom, width=width * 0.9, align="edge",
                     label=f"v{version}")  # fmt: skip
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    timeline.set_title(f"events per schema version, per {width} s")
    timeline.set_xlabel("seconds since the first event")
    timeline.legend()
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
