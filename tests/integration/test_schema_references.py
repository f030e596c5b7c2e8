"""A Confluent schema that references types registered under other subjects (Apicurio's ccompat
API, for real) decodes into silver: the registry hands silver a self-contained schema, and every
silver cell equals fastavro's resolution of the bronze bytes with the schema written out by hand.
Glue has no schema references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from pyspark.sql import SparkSession

from avrolake.pipeline.runners import run_ingest, run_silver
from avrolake.pipeline.tables import TableLocations
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.producer.broker import ensure_topic
from avrolake.registry import RegisteredSchema, open_registry
from avrolake.registry.confluent import subject_for
from example_pipeline import product_pipeline
from live_topic import Producers, assert_silver_is_avro_resolution, connection

DAY = 1_764_028_800  # 2025-11-25 00:00 UTC


def schemas(namespace: str) -> tuple[dict, dict, dict, dict]:
    """Country (enum) ← Address (record, references Country) ← Event (references both), and
    Event written out by hand."""
    country = {"type": "enum", "name": "Country", "namespace": namespace,
               "symbols": ["DE", "FR", "IT"]}  # fmt: skip
    address = {
        "type": "record",
        "name": "Address",
        "namespace": namespace,
        "fields": [
            {"name": "city", "type": "string"},
            {"name": "country", "type": f"{namespace}.Country"},
        ],
    }
    event = {"type": "record", "name": "Event", "namespace": f"{namespace}.events", "fields": [
        {"name": "eventId", "type": "string"},
        {"name": "timestamp", "type": "long"},
        {"name": "home", "type": f"{namespace}.Address"},
        {"name": "visited", "type": {"type": "array", "items": f"{namespace}.Address"}},
        {"name": "passport", "type": ["null", f"{namespace}.Country"], "default": None},
    ]}  # fmt: skip
    by_hand = {**event, "fields": [
        *event["fields"][:2],
        {"name": "home", "type": {**address, "fields": [
            address["fields"][0], {"name": "country", "type": country}]}},
        *event["fields"][3:],
    ]}  # fmt: skip
    return country, address, event, by_hand


def canonical(schema: str | dict) -> str:
    parsed = json.loads(schema) if isinstance(schema, str) else schema
    return fastavro.schema.to_parsing_canonical_form(fastavro.parse_schema(parsed))


def test_a_referencing_schema_decodes_into_silver(
    local_stack: Any, spark: SparkSession, new_topic: Any, tmp_path: Path
) -> None:
    settings = connection(local_stack, "confluent", new_topic())
    topic = settings.kafka.topic
    assert settings.registry.url is not None
    client = SchemaRegistryClient({"url": settings.registry.url})
    namespace = "com.example.refs." + topic.replace("-", "_")
    country, address, event, by_hand = schemas(namespace)
    country_subject, address_subject = f"{topic}-country", f"{topic}-address"
    client.register_schema(country_subject, Schema(json.dumps(country), "AVRO"))
    client.register_schema(address_subject, Schema(json.dumps(address), "AVRO", [
        SchemaReference(f"{namespace}.Country", country_subject, 1)]))  # fmt: skip
    event_id = client.register_schema(subject_for(topic), Schema(json.dumps(event), "AVRO", [
        SchemaReference(f"{namespace}.Address", address_subject, 1),
        SchemaReference(f"{namespace}.Country", country_subject, 1),
    ]))  # fmt: skip

    registry = open_registry(settings.registry)
    reader = registry.latest(topic)
    assert (reader.ref, reader.version) == (str(event_id), 1)
    assert canonical(reader.schema_str) == canonical(by_hand)
    assert registry.by_ref(str(event_id), topic) == reader

    ensure_topic(settings.kafka, set(), timeout=60)
    writer = RegisteredSchema(str(event_id), 1, json.dumps(by_hand))
    records = [
        {
            "eventId": f"r{n}",
            "timestamp": DAY + 60 * n,
            "home": {"city": f"Stadt {n} ü", "country": ("DE", "FR", "IT")[n % 3]},
            "visited": [{"city": "Roma", "country": "IT"}] * (n % 3),
            "passport": None if n % 2 else "FR",
        }
        for n in range(6)
    ]
    producing = Producers(settings)
    producing.produce_records(writer, records)
    tables = TableLocations.in_directory(tmp_path / "warehouse")
    for start in (
        lambda: run_ingest(spark, settings.kafka, tables, TriggerSettings()),
        lambda: run_silver(
            spark, product_pipeline(topic), registry, tables.space, TriggerSettings()
        ),
    ):
        query = start()  # one after the other: silver needs bronze
        assert query.awaitTermination(600), f"{query.name} still running"
        assert query.exception() is None, query.exception()
    assert_silver_is_avro_resolution(spark, tables, producing.sent, reader)
