"""The pipeline entry points as a user runs them: bad configuration is one line and a non-zero
exit within seconds; a good run drains Kafka through every stage."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from avrolake.producer.run import ProduceOptions, run_produce
from avrolake.schemas import load_versions

SCHEMAS = Path(__file__).parents[2] / "schemas" / "product"


def avrolake(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "avrolake", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("avrolake ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


BAD_OPTIONS = [
    (
        ["ingest", "--flavor", "avro"],
        "avrolake ingest: --flavor 'avro' is not one of: confluent, glue",
    ),
    (
        ["ingest", "--trigger", "sometimes"],
        "avrolake ingest: --trigger 'sometimes' is not one of: available-now, continuous",
    ),
    (
        ["ingest", "--starting-offsets", "{oops"],
        "avrolake ingest: --starting-offsets '{oops' is not earliest, latest or JSON like",
    ),
    (["silver", "--catalog", "main"], "avrolake silver: --catalog and --schema go together"),
    (
        ["silver", "--catalog", "main", "--schema", "x-y", "--checkpoint-root", "/v"],
        "avrolake silver: --schema 'x-y' is not a valid identifier",
    ),
]


@pytest.mark.parametrize(("args", "expected"), BAD_OPTIONS)
def test_bad_options_fail_in_one_line(args: list[str], expected: str) -> None:
    assert one_line_error(avrolake(*args, timeout=30)).startswith(expected)


def test_unreachable_broker_fails_fast(tmp_path: Path) -> None:
    result = avrolake(
        "ingest", "--bootstrap-servers", "127.0.0.1:9", "--warehouse-dir", str(tmp_path), timeout=30
    )
    assert one_line_error(result).startswith("avrolake ingest: cannot reach Kafka at 127.0.0.1:9")


def test_unknown_topic_fails_fast(local_stack, tmp_path: Path) -> None:
    topic = f"missing-{uuid.uuid4().hex[:8]}"
    result = avrolake("ingest", "--topic", topic, "--warehouse-dir", str(tmp_path), timeout=30)
    assert one_line_error(result) == (
        f"avrolake ingest: topic '{topic}' does not exist on {local_stack.bootstrap_servers}: "
        "check --topic, or run `avrolake produce` first"
    )


def test_unreachable_registry_fails_fast(tmp_path: Path) -> None:
    result = avrolake(
        "silver",
        "--registry-url",
        "http://127.0.0.1:9",
        "--warehouse-dir",
        str(tmp_path),
        timeout=60,
    )
    assert one_line_error(result).startswith(
        "avrolake silver: cannot reach the schema registry at http://127.0.0.1:9"
    )


def test_topic_without_schemas_fails_fast(local_stack, tmp_path: Path) -> None:
    topic = f"unregistered-{uuid.uuid4().hex[:8]}"
    result = avrolake("silver", "--topic", topic, "--warehouse-dir", str(tmp_path), timeout=60)
    assert one_line_error(result) == (
        f"avrolake silver: no schema is registered for topic '{topic}': "
        "run `avrolake schemas register` first"
    )


def test_gold_before_silver_names_the_missing_table(tmp_path: Path) -> None:
    result = avrolake("gold", "--warehouse-dir", str(tmp_path))
    assert one_line_error(result) == (
        f"avrolake gold: table delta.`{tmp_path}/silver` does not exist yet: "
        "run `avrolake silver` first"
    )


def test_entry_points_drain_a_topic_through_every_stage(local_stack, spark, tmp_path: Path) -> None:
    """The commands the bundle's jobs run, end to end, as separate processes."""
    from avrolake.settings import ConnectionSettings, Flavor, KafkaSettings, RegistrySettings

    topic = f"cli-{uuid.uuid4().hex[:8]}"
    connection = ConnectionSettings(
        kafka=KafkaSettings(local_stack.bootstrap_servers, topic),
        registry=RegistrySettings(Flavor.CONFLUENT, url=local_stack.confluent_registry_url),
    )
    assert (
        run_produce(
            connection, load_versions(SCHEMAS), ProduceOptions(count=500, seed=3, progress=False)
        ).sent
        == 500
    )
    common = ["--topic", topic, "--warehouse-dir", str(tmp_path)]
    for stage in ("ingest", "silver"):
        result = avrolake(stage, *common)
        assert result.returncode == 0, result.stderr
    result = avrolake("gold", "--warehouse-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr

    silver = spark.read.format("delta").load(str(tmp_path / "silver"))
    gold = spark.read.format("delta").load(str(tmp_path / "gold"))
    assert silver.count() == silver.select("eventId").distinct().count() == 500
    assert gold.groupBy().sum("events").first()[0] == 500
