"""Confluent's GUID framings through ingest and silver, against a schema registry stand-in.

Apicurio 3.0.9, the embedded registry, has no schema GUIDs, so the registry here is
``schema_registry_standin.SchemaRegistryStandIn``: a stand-in for the Confluent Schema Registry
endpoints confluent-kafka's client calls, ``GET /schemas/guids/{guid}`` among them. Kafka is the
embedded broker and Spark the real pipeline.

One topic, two registered versions (v2 adds fields with defaults and widens an int to a long),
records of both writers in four framings, interleaved:

- ``confluent-guid``: magic byte 1 + the schema's 16-byte GUID + the Avro body (by hand: no
  confluent-kafka serializer writes a GUID prefix);
- ``confluent-header`` with a GUID: the bare Avro body and the ``__value_schema_id`` header
  holding magic 1 + GUID, written by confluent-kafka's own ``AvroSerializer`` with its
  ``header_schema_id_serializer``;
- ``confluent-header`` with an int id: magic 0 + the 4-byte id in the header;
- ``confluent``: the classic magic 0 + 4-byte id prefix, by avrolake's (confluent-kafka's)
  serializer.

One scheduled run of ingest, then one of silver. Silver must hold every record once, each cell
equal to fastavro's resolution of its Avro body (its writer → the latest version), with the
schema ref and version of its writer; bronze's JVM parsing and ``wire.parse`` must agree on every
record's framing and ref; nothing may be quarantined but two records framed (prefix and header)
with a GUID the registry does not know; the stand-in must have answered every request it got,
GUID look-ups included.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, header_schema_id_serializer
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from avro_oracle import UTC_EPOCH, collected, local_naive, record_as_collected, resolve, typed
from avro_oracle import write as avro_write
from avrolake import wire
from avrolake.connection import producer_config
from avrolake.pipeline.runners import run_ingest, run_silver
from avrolake.pipeline.silver import METADATA_COLUMNS
from avrolake.pipeline.tables import TableLocations
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.producer.broker import ensure_topic
from avrolake.registry import RegisteredSchema, SchemaRegistry, open_registry
from avrolake.settings import Flavor, KafkaSettings, RegistrySettings
from avrolake.wire import WireFormat
from example_pipeline import product_pipeline
from schema_registry_standin import SchemaRegistryStandIn

SCHEDULED = TriggerSettings()  # available-now: drain what is there and stop
DAY = 1_764_028_800  # 2025-11-25 00:00 UTC
RECORDS = 16  # 2 writers x 4 framings, twice over
Headers = list[tuple[str, str | bytes | None]]  # as confluent-kafka types them


def versions(topic: str) -> tuple[str, str]:
    """v1 and v2 of a ``Reading``; v2 widens ``qty`` to a long and adds two fields with
    defaults. A namespace per topic keeps the schema texts this test's own."""
    namespace = "com.example.guid." + topic.replace("-", "_")
    v1 = [
        {"name": "eventId", "type": "string"},
        {"name": "timestamp", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "qty", "type": "int"},
    ]
    v2 = [
        *v1[:3],
        {"name": "qty", "type": "long"},
        {"name": "price", "type": "double", "default": 0.5},
        {"name": "note", "type": ["null", "string"], "default": None},
    ]
    v1_text, v2_text = (
        json.dumps({"type": "record", "name": "Reading", "namespace": namespace, "fields": f})
        for f in (v1, v2)
    )
    return v1_text, v2_text


def record(writer: RegisteredSchema, n: int) -> dict[str, Any]:
    value: dict[str, Any] = {
        "eventId": f"g{n:03d}-v{writer.version}",
        "timestamp": DAY + 3_600 * n,
        "name": f"ü-{n}",
        "qty": n * 1_000 - 7,
    }
    if writer.version >= 2:
        value.update(qty=(1 << 40) + n, price=n / 4, note=None if n % 3 else f"note {n}")
    return value


@dataclass(frozen=True)
class Framed:
    """A record as produced, and what bronze and silver must make of it."""

    event_id: str
    writer: RegisteredSchema | None  # None: a GUID the registry does not know
    body: bytes  # the Avro body
    value: bytes
    headers: Headers
    wire_format: WireFormat
    schema_ref: str


@dataclass(frozen=True)
class Delivered:
    framed: Framed
    partition: int
    offset: int
    timestamp_ms: int


class Framings:
    """The four framings of one topic's records, by the libraries where they write them."""

    def __init__(
        self, topic: str, registry: SchemaRegistry, standin: SchemaRegistryStandIn
    ) -> None:
        self.topic = topic
        self.registry = registry
        self.standin = standin
        self.client = SchemaRegistryClient({"url": standin.url})

    def guid(self, writer: RegisteredSchema) -> uuid.UUID:
        return uuid.UUID(self.standin.schema(writer.ref).guid)

    def guid_prefix(self, writer: RegisteredSchema, event: dict[str, Any]) -> Framed:
        body = avro_write(writer.schema_str, event)
        guid = self.guid(writer)
        value = bytes([wire.CONFLUENT_GUID_MAGIC]) + guid.bytes + body
        return Framed(
            event["eventId"], writer, body, value, [], WireFormat.CONFLUENT_GUID, f"guid:{guid}"
        )

    def guid_header(self, writer: RegisteredSchema, event: dict[str, Any]) -> Framed:
        """confluent-kafka's own header serializer: it looks the schema up (by the stand-in's
        ``POST /subjects/{s}``) and writes that answer's GUID into the header."""
        serializer = AvroSerializer(
            self.client,
            writer.schema_str,
            conf={
                "auto.register.schemas": False,
                "use.latest.version": False,
                "subject.name.strategy.type": "TOPIC",
                "schema.id.serializer": header_schema_id_serializer,
            },
        )
        headers: Headers = []
        value = serializer(event, SerializationContext(self.topic, MessageField.VALUE, headers))
        body = avro_write(writer.schema_str, event)
        guid = self.guid(writer)
        assert value == body
        assert headers == [(wire.VALUE_SCHEMA_ID_HEADER, b"\x01" + guid.bytes)]
        return Framed(
            event["eventId"],
            writer,
            body,
            value,
            headers,
            WireFormat.CONFLUENT_HEADER,
            f"guid:{guid}",
        )

    def id_header(self, writer: RegisteredSchema, event: dict[str, Any]) -> Framed:
        body = avro_write(writer.schema_str, event)
        headers: Headers = [
            (wire.VALUE_SCHEMA_ID_HEADER, wire.frame_confluent(int(writer.ref), b""))
        ]
        return Framed(
            event["eventId"], writer, body, body, headers, WireFormat.CONFLUENT_HEADER, writer.ref
        )

    def id_prefix(self, writer: RegisteredSchema, event: dict[str, Any]) -> Framed:
        value = self.registry.serializer(self.topic, writer.ref, writer.schema_str)(event)
        body = avro_write(writer.schema_str, event)
        assert value == wire.frame_confluent(int(writer.ref), body)
        return Framed(event["eventId"], writer, body, value, [], WireFormat.CONFLUENT, writer.ref)

    def all(self) -> list[Callable[[RegisteredSchema, dict[str, Any]], Framed]]:
        return [self.guid_prefix, self.guid_header, self.id_header, self.id_prefix]


def unknown_guid_records(reference: RegisteredSchema) -> list[Framed]:
    """A record framed with a GUID no schema has, once as a prefix and once in the header."""
    guid = uuid.uuid4()
    event = record(reference, 99)
    body = avro_write(reference.schema_str, event)
    prefix = bytes([wire.CONFLUENT_GUID_MAGIC]) + guid.bytes
    return [
        Framed(
            "bad-prefix", None, body, prefix + body, [], WireFormat.CONFLUENT_GUID, f"guid:{guid}"
        ),
        Framed(
            "bad-header",
            None,
            body,
            body,
            [(wire.VALUE_SCHEMA_ID_HEADER, prefix)],
            WireFormat.CONFLUENT_HEADER,
            f"guid:{guid}",
        ),
    ]


def produce(kafka: KafkaSettings, records: list[Framed]) -> list[Delivered]:
    producer = Producer(producer_config(kafka))
    delivered: list[Delivered] = []
    failures: list[str] = []
    for framed in records:

        def report(error: Any, message: Any, framed: Framed = framed) -> None:
            if error is not None:
                failures.append(f"{framed.event_id}: {error}")
            else:
                delivered.append(
                    Delivered(framed, message.partition(), message.offset(), message.timestamp()[1])
                )

        producer.produce(
            kafka.topic,
            key=framed.event_id.encode(),
            value=framed.value,
            headers=framed.headers or None,
            on_delivery=report,
        )
    assert producer.flush(60) == 0
    assert failures == []
    assert len(delivered) == len(records)
    return delivered


def finish(query: StreamingQuery) -> None:
    assert query.awaitTermination(600), f"{query.name} still running"
    assert query.exception() is None, query.exception()


def expected_silver_row(d: Delivered, reader: RegisteredSchema, topic: str) -> dict[str, Any]:
    """The oracle: fastavro's resolution of the record's Avro body, writer → reader, plus the
    metadata silver adds (its ``ingested_at`` aside, which only bronze knows)."""
    writer = d.framed.writer
    assert writer is not None
    resolved = resolve(d.framed.body, writer.schema_str, reader.schema_str)
    event_time = UTC_EPOCH + dt.timedelta(seconds=resolved["timestamp"])
    return {
        **record_as_collected(resolved, reader.schema_str),
        "event_time": local_naive(event_time),
        "event_date": event_time.date(),
        "schema_version": writer.version,
        "schema_ref": d.framed.schema_ref,
        "wire_format": d.framed.wire_format.value,
        "topic": topic,
        "partition": d.partition,
        "offset": d.offset,
        "kafka_timestamp": local_naive(UTC_EPOCH + dt.timedelta(milliseconds=d.timestamp_ms)),
    }


def test_guid_framings_decode_into_silver(
    local_stack: Any, new_topic: Callable[[], str], spark: SparkSession, tmp_path: Path
) -> None:
    topic = new_topic()
    kafka = KafkaSettings(bootstrap_servers=local_stack.bootstrap_servers, topic=topic)
    ensure_topic(kafka, set(), timeout=60)
    tables = TableLocations.in_directory(tmp_path / "warehouse")

    with SchemaRegistryStandIn() as standin:
        settings = RegistrySettings(Flavor.CONFLUENT, url=standin.url)
        producing = open_registry(settings)
        writers = [producing.register(topic, schema) for schema in versions(topic)]
        assert [w.version for w in writers] == [1, 2]
        assert writers[0].ref != writers[1].ref

        framings = Framings(topic, producing, standin).all()
        records = [
            framings[(n // 2) % len(framings)](writers[n % 2], record(writers[n % 2], n))
            for n in range(RECORDS)
        ]
        assert {(r.wire_format, r.schema_ref.startswith("guid:"), r.writer) for r in records} == {
            (f, g, w)
            for f, g in (
                (WireFormat.CONFLUENT_GUID, True),
                (WireFormat.CONFLUENT_HEADER, True),
                (WireFormat.CONFLUENT_HEADER, False),
                (WireFormat.CONFLUENT, False),
            )
            for w in writers
        }
        bad = unknown_guid_records(writers[0])
        delivered = produce(kafka, records + bad)
        by_coordinates = {(d.partition, d.offset): d for d in delivered}

        # one scheduled run of each stage, one after the other; silver with a registry client of
        # its own, so its GUIDs are looked up over HTTP and not found in the producers' cache
        finish(run_ingest(spark, kafka, tables, SCHEDULED))
        silver_registry = open_registry(settings)
        pipeline = product_pipeline(topic)
        finish(run_silver(spark, pipeline, silver_registry, tables.space, SCHEDULED))

        # bronze: every record, byte for byte; the JVM's parse and wire.parse agree on each
        bronze = tables.bronze.read(spark).collect()
        assert len(bronze) == len(delivered)
        for row in bronze:
            framed = by_coordinates[(row.partition, row.offset)].framed
            headers = [(h.key, bytes(h.value)) for h in row.headers or []]
            assert (bytes(row.value), headers) == (framed.value, framed.headers)
            assert (row.wire_format, row.schema_ref) == (
                framed.wire_format.value,
                framed.schema_ref,
            )
            frame = wire.parse(bytes(row.value), headers)
            assert (frame.wire_format, frame.schema_ref, frame.payload) == (
                framed.wire_format,
                framed.schema_ref,
                framed.body,
            )

        # quarantine: only the two records of the unknown GUID, with its reason
        quarantine = tables.quarantine.read(spark).collect()
        got_bad = sorted((q.partition, q.offset, q.wire_format, q.schema_ref) for q in quarantine)
        want_bad = sorted(
            (d.partition, d.offset, d.framed.wire_format.value, d.framed.schema_ref)
            for d in delivered
            if d.framed.writer is None
        )
        assert got_bad == want_bad
        for q in quarantine:
            assert q.reason.startswith(f"unknown schema ref {q.schema_ref}"), q.reason
            assert q.reason.startswith("unknown schema ref guid:"), q.reason

        # silver: every good record once, every cell as the oracle says
        reader = silver_registry.latest(topic)
        assert reader == writers[1]
        silver = tables.silver.read(spark)
        reader_columns = [f["name"] for f in json.loads(reader.schema_str)["fields"]]
        assert sorted(silver.columns) == sorted([*reader_columns, *METADATA_COLUMNS])
        rows = [{c: collected(row[c]) for c in silver.columns} for row in silver.collect()]
        assert sorted(r["eventId"] for r in rows) == sorted(r.event_id for r in records)
        expected = {
            d.framed.event_id: expected_silver_row(d, reader, topic)
            for d in delivered
            if d.framed.writer is not None
        }
        wrong = [
            (row["eventId"], column, value, expected[row["eventId"]][column])
            for row in rows
            for column, value in row.items()
            if column != "ingested_at" and typed(value) != typed(expected[row["eventId"]][column])
        ]
        assert wrong == [], (
            f"{len(wrong)} cells differ from the oracle (eventId, column, got, want)"
        )

        # the registry: silver's client got every known GUID's schema over HTTP, by
        # GET /schemas/guids/{guid} or with the answer to GET /schemas/ids/{id}, which carries
        # the GUID (and fills the client's GUID cache): v2, the reader, is known to avrolake by
        # id from ``latest`` alone, so its GUID goes to the GUID endpoint; the unknown GUID is
        # asked for and refused. The stand-in was never asked for something it does not model.
        by_guid = {
            r.path.removeprefix("/schemas/guids/")
            for r in standin.requests_to("GET", "/schemas/guids/")
        }
        by_id = {
            r.path.removeprefix("/schemas/ids/")
            for r in standin.requests_to("GET", "/schemas/ids/")
        }
        for w in writers:
            guid = standin.schema(w.ref).guid
            assert guid in by_guid or w.ref in by_id, (w, by_guid, by_id)
        assert standin.schema(writers[1].ref).guid in by_guid
        unknown = {r.schema_ref.removeprefix("guid:") for r in bad}
        known = {standin.schema(w.ref).guid for w in writers}
        assert unknown <= by_guid <= known | unknown
        assert standin.unknown == [], [str(r) for r in standin.unknown]
