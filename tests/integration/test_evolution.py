"""Every kind of Avro evolution, walked live through continuous ingest + silver, for both flavors.

One ingest and one silver stream run from the first version to the last; nothing restarts. Each
step changes the registry (registers the next version of ``evolution_versions``, or makes the
latest go away) and produces records with the new version and with older ones (old producers keep
writing), framed as the registries' serializers frame them. Once silver has caught up, every cell
of every silver row is compared with fastavro's resolution of the row's bronze bytes (its writer
schema → the latest reader schema), an oracle that shares no code with Spark's decoder; silver
holds each record exactly once and quarantines none.

The last step makes the latest version go away. Confluent deletes v4 (Apicurio's ccompat API
soft-deletes it), so v4's writers are newer than the reader v3. moto implements no
``DeleteSchemaVersions`` (neither does Glue delete a schema's latest version in place of a
rollback), so for Glue v5 rolls the schema back to v3's fields: the writer is then older than the
reader by number, but the reader still lacks v4's ``RETIRED``. Either way v4 records, old and new,
are read without ``RETIRED``: the enum default applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from avrolake.pipeline.runners import run_ingest, run_silver
from avrolake.pipeline.silver import fingerprint
from avrolake.pipeline.silver_io import recorded_reader
from avrolake.pipeline.tables import TableLocations
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.producer.broker import ensure_topic
from avrolake.registry import RegisteredSchema, SchemaRegistry, open_registry
from avrolake.registry.confluent import subject_for
from avrolake.settings import ConnectionSettings, Flavor
from evolution_versions import V1, V2, V3, V3_AGAIN, V4
from example_pipeline import product_pipeline
from live_topic import (
    Producers,
    alive,
    assert_silver_is_avro_resolution,
    connection,
    wait_for,
)

LIVE = TriggerSettings(mode="continuous", interval="1 second")
CATCH_UP_S = 420.0  # per step; two shared cores, other Spark tests running


@dataclass(frozen=True)
class Step:
    """``registers`` the next version's text, or None: the latest version goes away. Then
    ``writers`` (version number → records) produce."""

    registers: str | None
    writers: dict[int, int]


STEPS = [
    Step(V1, {1: 6}),
    Step(V2, {1: 3, 2: 8}),
    Step(V3, {1: 2, 2: 3, 3: 8}),
    Step(V4, {3: 3, 4: 8}),
    Step(None, {4: 6, 1: 2}),
]


# --- the stack ---------------------------------------------------------------------------------


def latest_goes_away(
    settings: ConnectionSettings, registry: SchemaRegistry, versions: dict[int, RegisteredSchema]
) -> RegisteredSchema:
    """The reader stops being the newest version: Confluent deletes it (soft), Glue (moto has no
    DeleteSchemaVersions) registers the version before it again."""
    newest, topic = max(versions), settings.kafka.topic
    if settings.flavor is Flavor.CONFLUENT:
        client = SchemaRegistryClient({"url": settings.registry.url})
        assert client.delete_version(subject_for(topic), newest) == newest
        return versions[newest - 1]
    rolled_back = registry.register(topic, V3_AGAIN)
    versions[rolled_back.version] = rolled_back
    return rolled_back


# --- waiting and comparing ---------------------------------------------------------------------


def catch_up(
    spark: SparkSession,
    tables: TableLocations,
    queries: list[StreamingQuery],
    reader: RegisteredSchema,
    sent: int,
) -> None:
    """Wait until silver is written with ``reader`` and every record sent is in silver or in
    quarantine (compared afterwards); a stream that died fails at once."""

    def done() -> bool:
        alive(queries)
        if not tables.silver.exists(spark):
            return False
        recorded = recorded_reader(spark, tables.silver)
        if recorded is None or recorded.fingerprint != fingerprint(reader):
            return False
        quarantine = tables.quarantine
        quarantined = quarantine.read(spark).count() if quarantine.exists(spark) else 0
        return tables.silver.read(spark).count() + quarantined >= sent

    wait_for(done, CATCH_UP_S, f"silver with reader v{reader.version} and all {sent} records")


# --- the test ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["confluent", "glue"])
def test_silver_is_avro_resolution_of_bronze_through_every_evolution_live(
    flavor: str,
    local_stack: Any,
    spark: SparkSession,
    new_topic: Callable[[], str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="avrolake")
    settings = connection(local_stack, flavor, new_topic())
    topic = settings.kafka.topic
    registry = open_registry(settings.registry)
    tables = TableLocations.in_directory(tmp_path / "warehouse")
    ensure_topic(settings.kafka, set(), timeout=60)
    producing = Producers(settings)
    versions: dict[int, RegisteredSchema] = {}
    queries: list[StreamingQuery] = []
    try:
        for step in STEPS:
            if step.registers is None:
                reader = latest_goes_away(settings, registry, versions)
            else:
                reader = registry.register(topic, step.registers)
                versions[reader.version] = reader
            assert registry.latest(topic) == reader
            for version, count in step.writers.items():
                producing.produce(versions[version], count)
            if not queries:  # silver starts on bronze's first rows
                queries.append(run_ingest(spark, settings.kafka, tables, LIVE))
                wait_for(lambda: tables.bronze.exists(spark), CATCH_UP_S, "bronze created")
                pipeline = product_pipeline(topic)
                queries.append(run_silver(spark, pipeline, registry, tables.space, LIVE))
                started = [(q.id, q.runId) for q in queries]
            catch_up(spark, tables, queries, reader, len(producing.sent))
            assert_silver_is_avro_resolution(spark, tables, producing.sent, reader)
            assert [(q.id, q.runId) for q in queries] == started  # nothing restarted
            alive(queries)
    finally:
        for query in reversed(queries):
            query.stop()
    # a writer newer than the reader (Confluent's deleted v4) is logged once, not per batch
    newer = [r for r in caplog.records if "newer than the reader" in r.getMessage()]
    assert [versions[4].ref in r.getMessage() for r in newer] == (
        [True] if flavor == "confluent" else []
    )
