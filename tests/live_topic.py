"""A topic on the embedded stack, written as real producers write it, and silver's oracle.

``Producers`` sends records of any registered version, framed as the registries' serializers
frame them, and keeps every delivery (its Kafka coordinates and bytes).
``assert_silver_is_avro_resolution`` compares every cell of silver with fastavro's resolution of
the row's bronze bytes (its writer schema → the reader schema): an oracle that shares no code
with Spark's decoder. A re-sent event (same ``eventId``, same event time) must stay the row of
its first delivery.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from avro_oracle import (
    UTC_EPOCH,
    collected,
    local_naive,
    record_as_collected,
    resolve,
    typed,
    write,
)
from avrolake import wire
from avrolake.connection import producer_config
from avrolake.pipeline.silver import METADATA_COLUMNS
from avrolake.pipeline.tables import TableLocations
from avrolake.registry import RegisteredSchema
from avrolake.settings import ConnectionSettings, Flavor, KafkaSettings, RegistrySettings
from evolution_versions import event


def connection(local_stack: Any, flavor: str, topic: str) -> ConnectionSettings:
    return ConnectionSettings(
        kafka=KafkaSettings(bootstrap_servers=local_stack.bootstrap_servers, topic=topic),
        registry=RegistrySettings(
            flavor=Flavor(flavor),
            url=local_stack.confluent_registry_url,
            glue_registry_name="avrolake-tests",  # conftest's: moto allows only 10 registries
            region="us-east-1",
            endpoint_url=local_stack.glue_endpoint_url,
        ),
    )


@dataclass(frozen=True)
class Sent:
    event_id: str
    writer: RegisteredSchema
    value: bytes
    partition: int
    offset: int
    timestamp_ms: int


class Producers:
    """Producers of any registered version through one plain producer; Glue's records are
    zlib-compressed every other record, as its serializer can be configured to. ``sent`` is every
    record delivered, in order (re-sends included)."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.producer = Producer(producer_config(settings.kafka))
        self.sent: list[Sent] = []
        self.n = 0

    def frame(self, writer: RegisteredSchema, body: bytes) -> bytes:
        if self.settings.flavor is Flavor.CONFLUENT:
            return wire.frame_confluent(int(writer.ref), body)
        return wire.frame_glue(writer.ref, body, compress=self.n % 2 == 1)

    def produce(self, writer: RegisteredSchema, count: int) -> None:
        """``count`` records of ``writer`` from ``evolution_versions.event``."""
        records = []
        for _ in range(count):
            self.n += 1
            event_id = f"e{self.n:03d}-v{writer.version}"
            records.append(event(writer.schema_str, self.n, event_id))
        self.produce_records(writer, records)

    def produce_records(self, writer: RegisteredSchema, records: Iterable[dict]) -> None:
        self._send(
            (record["eventId"], writer, self.frame(writer, write(writer.schema_str, record)))
            for record in records
        )

    def resend(self, sent: Iterable[Sent]) -> None:
        """The same bytes again, as a producer retry or an upstream replay sends them."""
        self._send((s.event_id, s.writer, s.value) for s in sent)

    def _send(self, messages: Iterable[tuple[str, RegisteredSchema, bytes]]) -> None:
        delivered: list[Sent | str] = []
        count = 0
        for event_id, writer, value in messages:
            count += 1

            def report(
                error: Any,
                message: Any,
                event_id: str = event_id,
                writer: RegisteredSchema = writer,
                value: bytes = value,
            ) -> None:
                if error is not None:
                    delivered.append(f"{event_id}: {error}")
                    return
                sent = Sent(event_id, writer, value, message.partition(), message.offset(),
                            message.timestamp()[1])  # fmt: skip
                delivered.append(sent)

            self.producer.produce(self.settings.kafka.topic, value=value, on_delivery=report)
        assert self.producer.flush(60) == 0
        assert [d for d in delivered if isinstance(d, str)] == []
        self.sent.extend(d for d in delivered if isinstance(d, Sent))
        assert len(delivered) == count


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(2)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def alive(queries: list[StreamingQuery]) -> None:
    for query in queries:
        assert query.isActive, f"{query.name} stopped: {query.exception()}"


def expected_rows(
    spark: SparkSession, tables: TableLocations, sent: list[Sent], reader: RegisteredSchema
) -> dict[str, dict]:
    """Silver's rows as the oracle says they must be: the reader's columns from fastavro's
    resolution of each event's first delivery's bronze bytes, the rest from its delivery report
    and bronze. Bronze must hold every delivery, re-sends included, byte for byte."""
    by_coordinates = {(s.partition, s.offset): s for s in sent}
    first = {(s.partition, s.offset) for s in first_deliveries(sent)}
    rows: dict[str, dict] = {}
    bronze_rows = tables.bronze.read(spark).collect()
    assert len(bronze_rows) == len(sent)
    for bronze in bronze_rows:
        s = by_coordinates[(bronze.partition, bronze.offset)]
        assert bytes(bronze.value) == s.value  # bronze holds exactly what was produced
        if (s.partition, s.offset) not in first:
            continue
        frame = wire.parse(bytes(bronze.value))
        assert frame.schema_ref == s.writer.ref
        record = resolve(frame.payload, s.writer.schema_str, reader.schema_str)
        event_time = UTC_EPOCH + dt.timedelta(seconds=record["timestamp"])
        rows[s.event_id] = {
            **record_as_collected(record, reader.schema_str),
            "event_time": local_naive(event_time),
            "event_date": event_time.date(),
            "schema_version": s.writer.version,
            "schema_ref": s.writer.ref,
            "wire_format": frame.wire_format.value,
            "topic": bronze.topic,
            "partition": s.partition,
            "offset": s.offset,
            "kafka_timestamp": local_naive(UTC_EPOCH + dt.timedelta(milliseconds=s.timestamp_ms)),
            "ingested_at": bronze.ingested_at,
        }
    assert len(rows) == len(first)
    return rows


def first_deliveries(sent: list[Sent]) -> list[Sent]:
    """Each event's first delivery: the one silver keeps."""
    first: dict[str, Sent] = {}
    for s in sent:
        first.setdefault(s.event_id, s)
    return list(first.values())


def assert_silver_is_avro_resolution(
    spark: SparkSession, tables: TableLocations, sent: list[Sent], reader: RegisteredSchema
) -> None:
    """Silver holds each event once, as its first delivery resolved to ``reader``; nothing is
    quarantined."""
    if tables.quarantine.exists(spark):  # silver creates it with its first bad record
        quarantine = tables.quarantine.read(spark).select("offset", "schema_ref", "reason")
        assert quarantine.collect() == []
    silver = tables.silver.read(spark)
    reader_fields = [f["name"] for f in json.loads(reader.schema_str)["fields"]]
    assert sorted(silver.columns) == sorted([*reader_fields, *METADATA_COLUMNS])
    got = [{c: collected(row[c]) for c in silver.columns} for row in silver.collect()]
    assert sorted(r["eventId"] for r in got) == sorted({s.event_id for s in sent})  # once each
    expected = expected_rows(spark, tables, sent, reader)
    wrong = [
        (row["eventId"], column, value, expected[row["eventId"]][column])
        for row in got
        for column, value in row.items()
        if typed(value) != typed(expected[row["eventId"]][column])
    ]
    assert wrong == [], f"{len(wrong)} cells differ from the oracle (eventId, column, got, want)"
