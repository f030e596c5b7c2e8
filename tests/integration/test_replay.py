"""Quarantine replay against the real registries: records quarantined for a cause fixed later land
in silver exactly once, every cell equal to fastavro's resolution of their bronze bytes.

- A writer the reader of the time cannot read (a field the reader requires without a default),
  both flavors: a later reader that reads it fixes the cause.
- A schema registered late, Confluent only: records carry a schema id the registry does not know
  yet. Apicurio hands out ids in sequence, so the test learns the next id, frames records with it
  and registers the schema afterwards. Glue version ids are random UUIDs chosen at registration,
  so a Glue record cannot carry one before it exists.
- A replay that dies between its silver write and its quarantine update is finished by the next
  one, with no second copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from avrolake.pipeline.replay import ReplaySelection, ReplaySummary, replay_quarantine
from avrolake.pipeline.runners import run_ingest, run_silver
from avrolake.pipeline.silver_io import SilverBatch
from avrolake.pipeline.tables import TableLocations
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.producer.broker import ensure_topic
from avrolake.registry import RegisteredSchema, open_registry
from avrolake.settings import ConnectionSettings
from example_pipeline import product_pipeline
from live_topic import Producers, Sent, assert_silver_is_avro_resolution, connection

SCHEDULED = TriggerSettings()
DAY = 1_764_028_800  # 2025-11-25 00:00 UTC


def schema(namespace: str, *fields: dict) -> str:
    """A ``Reading`` record; a namespace per test keeps each test's schema texts its own."""
    base = [{"name": "eventId", "type": "string"}, {"name": "timestamp", "type": "long"}]
    return json.dumps({"type": "record", "name": "Reading", "namespace": namespace,
                       "fields": [*base, *fields]})  # fmt: skip


def versions(topic: str) -> tuple[str, str, str]:
    """A writer; a reader that cannot read it (``y`` required); a reader of both."""
    namespace = "com.example.replay." + topic.replace("-", "_")
    return (
        schema(namespace, {"name": "x", "type": "int"}),
        schema(namespace, {"name": "y", "type": "string"}),
        schema(
            namespace,
            {"name": "x", "type": "int", "default": -1},
            {"name": "y", "type": "string", "default": "none"},
        ),
    )


def records(writer: str, first: int, count: int) -> list[dict]:
    names = {f["name"] for f in json.loads(writer)["fields"]}
    values = [
        {"eventId": f"r{n:03d}", "timestamp": DAY + 60 * n, "x": n * 1_000, "y": f"ü{n}"}
        for n in range(first, first + count)
    ]
    return [{k: v for k, v in value.items() if k in names} for value in values]


def run_stages(spark: SparkSession, settings: ConnectionSettings, tables: TableLocations) -> None:
    """One scheduled run of ingest, then of silver."""
    registry = open_registry(settings.registry)
    for start in (
        lambda: run_ingest(spark, settings.kafka, tables, SCHEDULED),
        lambda: run_silver(
            spark, product_pipeline(settings.kafka.topic), registry, tables.space, SCHEDULED
        ),
    ):
        query = start()  # one after the other: silver needs bronze
        assert query.awaitTermination(600), f"{query.name} still running"
        assert query.exception() is None, query.exception()


def quarantined(spark: SparkSession, tables: TableLocations) -> list[tuple[int, int, str]]:
    rows = tables.quarantine.read(spark).select("partition", "offset", "reason").collect()
    return sorted((r.partition, r.offset, r.reason) for r in rows)


def table_versions(spark: SparkSession, tables: TableLocations) -> list[int]:
    """Silver's and the quarantine's latest Delta versions."""
    found = []
    for table in (tables.silver, tables.quarantine):
        assert table.path is not None
        [latest] = DeltaTable.forPath(spark, table.path).history(1).collect()
        found.append(int(latest.version))
    return found


def coordinates(sent: list[Sent]) -> list[tuple[int, int]]:
    return sorted((s.partition, s.offset) for s in sent)


def quarantined_coordinates(spark: SparkSession, tables: TableLocations) -> list[tuple[int, int]]:
    return [(partition, offset) for partition, offset, _ in quarantined(spark, tables)]


@pytest.fixture
def world(local_stack: Any, new_topic: Any, tmp_path: Path, request: pytest.FixtureRequest):
    settings = connection(local_stack, request.param, new_topic())
    ensure_topic(settings.kafka, set(), timeout=60)
    return settings, TableLocations.in_directory(tmp_path / "warehouse")


@pytest.mark.parametrize("world", ["confluent", "glue"], indirect=True)
def test_records_the_reader_could_not_read_move_to_silver_once(
    world: tuple[ConnectionSettings, TableLocations],
    spark: SparkSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, tables = world
    topic = settings.kafka.topic
    registry = open_registry(settings.registry)
    producing = Producers(settings)
    writer_text, needs_y_text, reads_both_text = versions(topic)
    writer = registry.register(topic, writer_text)
    needs_y = registry.register(topic, needs_y_text)
    producing.produce_records(writer, records(writer_text, 0, 4))
    producing.produce_records(needs_y, records(needs_y_text, 4, 3))
    run_stages(spark, settings, tables)

    def replay_all() -> ReplaySummary:
        return replay_quarantine(
            spark, product_pipeline(topic), registry, tables.space, ReplaySelection()
        )

    unreadable = producing.sent[:4]
    reason = (
        f"writer v{writer.version} (schema ref {writer.ref}) cannot be read with reader "
        f"v{needs_y.version}"
    )
    assert quarantined_coordinates(spark, tables) == coordinates(unreadable)
    assert all(r.startswith(reason) for *_, r in quarantined(spark, tables))

    # Replaying before the cause is fixed changes nothing but the reasons (the same ones).
    assert replay_all() == ReplaySummary(4, 0, 4, 0)
    assert quarantined_coordinates(spark, tables) == coordinates(unreadable)

    reader = registry.register(topic, reads_both_text)

    # The first replay dies after its silver write: the next one finishes, inserting nothing twice.
    def die(*_args: Any) -> None:
        raise RuntimeError("killed between the two commits")

    with monkeypatch.context() as patched:
        patched.setattr(SilverBatch, "settle_quarantine", die)
        with pytest.raises(RuntimeError, match="between the two commits"):
            replay_all()
    assert len(quarantined(spark, tables)) == 4  # still there, and in silver too
    assert replay_all() == ReplaySummary(4, 4, 0, 0)
    assert quarantined(spark, tables) == []
    assert_silver_is_avro_resolution(spark, tables, producing.sent, reader)

    # Nothing selected: no commit anywhere.
    before = table_versions(spark, tables)
    assert replay_all() == ReplaySummary(0, 0, 0, 0)
    assert table_versions(spark, tables) == before


@pytest.mark.parametrize("world", ["confluent"], indirect=True)
def test_records_whose_schema_was_registered_late_move_to_silver_once(
    world: tuple[ConnectionSettings, TableLocations], spark: SparkSession
) -> None:
    settings, tables = world
    topic = settings.kafka.topic
    registry = open_registry(settings.registry)
    producing = Producers(settings)
    _, needs_y_text, reads_both_text = versions(topic)
    v1 = registry.register(topic, needs_y_text)
    producing.produce_records(v1, records(needs_y_text, 0, 3))
    # The id the next registration gets: one past a throwaway schema's, registered just now.
    probe = registry.register(f"{topic}-probe", schema(f"probe.{topic.replace('-', '_')}"))
    late = RegisteredSchema(str(int(probe.ref) + 1), v1.version + 1, reads_both_text)
    producing.produce_records(late, records(reads_both_text, 3, 5))
    run_stages(spark, settings, tables)
    assert quarantined_coordinates(spark, tables) == coordinates(producing.sent[3:])
    assert all(f"unknown schema ref {late.ref}" in r for *_, r in quarantined(spark, tables))

    registered = registry.register(topic, reads_both_text)
    assert registered == late, "another registration took the id between probe and schema"
    run_stages(spark, settings, tables)  # the scheduled silver run rewrites for the new reader
    assert len(quarantined(spark, tables)) == 5  # silver does not look back by itself
    summary = replay_quarantine(
        spark,
        product_pipeline(topic),
        registry,
        tables.space,
        ReplaySelection(reason="unknown schema"),
    )
    assert summary == ReplaySummary(5, 5, 0, 0)
    assert quarantined(spark, tables) == []
    assert_silver_is_avro_resolution(spark, tables, producing.sent, registered)
