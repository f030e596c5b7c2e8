"""Issue 12's acceptance test: two topics from one definitions file, through the commands a job
runs (``avrolake ingest | silver | gold --definitions F``), for both flavors.

- ``orders``: one record type (TopicNameStrategy) keyed by ``orderId``, its event time a
  timestamp-millis field; gold per customer: count, sum of amounts, latest order. One order is
  sent twice (a producer retry): silver holds it once.
- ``clicks``: TopicRecordNameStrategy with two record types: ``PageView`` keyed by ``viewId``, its
  event time a long in milliseconds (no logical type), gold per page: count and distinct views;
  ``Click`` keyed by its Kafka coordinates, its event time the Kafka timestamp. One record of a
  third type, registered under its own subject but in no definition, goes to the quarantine.

Records go through the registries' own serializers; the manifest is every delivery (value, bytes,
coordinates, timestamp). Silver is compared with fastavro's decoding of the bytes sent, gold with a
Python aggregation of the manifest's values, bronze with the bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from pyspark.sql import SparkSession

from avro_oracle import UTC_EPOCH, collected, local_naive, record_as_collected, resolve, typed
from avrolake import wire
from avrolake.connection import producer_config
from avrolake.definitions import Definitions, load_definitions
from avrolake.pipeline.tables import TableSpace
from avrolake.registry import (
    RegisteredSchema,
    SchemaRegistry,
    Subject,
    open_registry,
)
from avrolake.registry.glue import glue_client
from avrolake.settings import Flavor, KafkaSettings, RegistrySettings

GLUE_REGISTRY = "avrolake-tests"  # the integration tests' one registry: moto keeps 10


def _record(name: str, *fields: tuple[str, Any]) -> str:
    return json.dumps(
        {"type": "record", "name": name, "namespace": "com.acme",
         "fields": [{"name": n, "type": t} for n, t in fields]}
    )  # fmt: skip


ORDER = _record(
    "Order",
    ("orderId", "string"),
    ("customer", "string"),
    ("amount", "double"),
    ("placedAt", {"type": "long", "logicalType": "timestamp-millis"}),
)
PAGE_VIEW = _record("PageView", ("viewId", "long"), ("page", "string"), ("at", "long"))
CLICK = _record("Click", ("button", "string"), ("ts", "double"))
SCROLL = _record("Scroll", ("depth", "int"))  # on the clicks topic, in no definition

DEFINITIONS = """
pipelines:
  - name: orders
    topic: {orders}
    flavor: {flavor}
    records:
      - silver_table: orders
        key: [orderId]
        event_time: {{field: placedAt}}  # a timestamp logical type: no unit
        gold:
          table: orders_by_customer
          group_by: [customer]
          aggregates:
            - {{name: orders, function: count}}
            - {{name: revenue, function: sum, field: amount}}
            - {{name: last_order_at, function: max, field: event_time}}
  - name: clicks
    topic: {clicks}
    flavor: {flavor}
    subject_strategy: topic_record
    records:  # tables by default: clicks_pageview_silver, clicks_click_silver, clicks_quarantine
      - record: com.acme.PageView
        key: [viewId]
        event_time: {{field: at, unit: milliseconds}}
        gold:
          table: views_by_page
          group_by: [page]
          aggregates:
            - {{name: views, function: count}}
            - {{name: distinct_views, function: count_distinct, field: viewId}}
      - record: com.acme.Click  # keyed by Kafka coordinates, at the Kafka timestamp
"""

# Event times straddle midnight (UTC, the session's zone): gold has rows of two dates.
PLACED = dt.datetime(2026, 3, 1, 21, 0, 0, 125_000, tzinfo=dt.UTC)
CUSTOMERS = ("ada", "bob", "cy")
PAGES = ("/", "/cart", "/pay")
ORDERS = [
    {
        "orderId": f"o-{i:02d}",
        "customer": CUSTOMERS[i % 3] if i < 9 else "ada",
        "amount": 0.25 * (7 + 3 * i),  # quarters: every sum is exact in binary floating point
        "placedAt": PLACED + dt.timedelta(minutes=47 * i, milliseconds=3 * i),
    }
    for i in range(12)
]
RESENT_ORDER = 3
VIEWS = [
    {
        "viewId": 5000 + i,
        "page": PAGES[i % 3] if i < 7 else "/",
        "at": int((PLACED + dt.timedelta(minutes=53 * i)).timestamp() * 1000) + i,
    }
    for i in range(10)
]
CLICKS = [{"button": ("buy", "back", "help")[i % 3], "ts": 1.5 * i} for i in range(5)]


@dataclass(frozen=True)
class Sent:
    """One delivery: what was meant (``value``), what went out (``data``) and where it landed."""

    topic: str
    record: str  # the record type's full name
    value: dict[str, Any]
    writer: RegisteredSchema
    data: bytes
    partition: int
    offset: int
    timestamp_ms: int


@dataclass(frozen=True)
class Run:
    flavor: Flavor
    orders_topic: str
    clicks_topic: str
    space: TableSpace
    warehouse: Path
    sent: list[Sent]

    def of(self, record: str) -> list[Sent]:
        return [s for s in self.sent if s.record == record]


# -- producing -----------------------------------------------------------------------------------


class Sender:
    """Records framed by the registries' own serializers, sent through one producer, every one
    to partition 0 (so offsets follow the order sent, and a re-sent order's first delivery has the
    lower offset). Kafka timestamps are the producer's (now): a broker deletes records whose
    timestamp is older than its retention, so the event times of the past live in the values."""

    def __init__(self, registry: SchemaRegistry, bootstrap_servers: str) -> None:
        self.registry = registry
        self.producer = Producer(producer_config(KafkaSettings(bootstrap_servers, "unused")))
        self.sent: list[Sent] = []
        self.glue_schemas: list[str] = []  # to delete afterwards

    def frame(
        self, subject: Subject, schema: str, values: list[dict[str, Any]], *, compress: bool = False
    ) -> list[tuple[str, dict[str, Any], RegisteredSchema, bytes]]:
        self.glue_schemas.append(subject.glue)
        writer = self.registry.register(subject, schema)
        serialize = self.registry.serializer(subject, writer.ref, schema, compress=compress)
        record = f"com.acme.{json.loads(schema)['name']}"
        return [(record, value, writer, serialize(value)) for value in values]

    def send(self, topic: str, records: list[tuple[str, dict, RegisteredSchema, bytes]]) -> None:
        reports: list[Any] = [None] * len(records)
        for index, (_, _, _, data) in enumerate(records):

            def report(error: Any, message: Any, index: int = index) -> None:
                reports[index] = error if error is not None else message

            self.producer.produce(topic, value=data, partition=0, on_delivery=report)
        assert self.producer.flush(60) == 0
        for (record, value, writer, data), message in zip(records, reports, strict=True):
            assert message is not None and not isinstance(message, KafkaError), message
            self.sent.append(Sent(topic, record, value, writer, data, message.partition(),
                                  message.offset(), message.timestamp()[1]))  # fmt: skip


def produce(sender: Sender, flavor: Flavor, definitions: Definitions) -> list[Sent]:
    """The manifest: every delivery, re-sends included, in the order sent. Each listed type goes
    under the subject its pipeline names (``pipeline.subject``); the unlisted one under the
    subject the same strategy would give it."""
    orders, clicks = definitions.select(["orders", "clicks"])
    (order,) = orders.records
    view, click = clicks.records
    placed = sender.frame(orders.subject(order), ORDER, ORDERS)
    sender.send(orders.topic, [*placed, placed[RESENT_ORDER]])  # a retry: the same bytes again

    # Glue's zlib-compressed form for one type: its serializer can be configured to write it
    views = sender.frame(clicks.subject(view), PAGE_VIEW, VIEWS, compress=flavor is Flavor.GLUE)
    taps = sender.frame(clicks.subject(click), CLICK, CLICKS)
    scroll_subject = Subject(clicks.topic, clicks.subject_strategy, "com.acme.Scroll")
    (scroll,) = sender.frame(scroll_subject, SCROLL, [{"depth": 80}])
    mixed = []  # the types interleaved, so that batches hold several of them
    for i, page_view in enumerate(views):
        mixed += [page_view, *taps[i : i + 1], *([scroll] if i == 4 else [])]
    sender.send(clicks.topic, mixed)
    return sender.sent


# -- the run -------------------------------------------------------------------------------------


def avrolake(*args: str) -> None:
    """``python -m avrolake *args``, as a job's task runs it; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "avrolake", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, (
        f"avrolake {' '.join(args)}: exit {result.returncode}\n" + (result.stderr[-8000:])
    )


def registry_settings(local_stack: Any, flavor: Flavor) -> RegistrySettings:
    if flavor is Flavor.CONFLUENT:
        return RegistrySettings(flavor, url=local_stack.confluent_registry_url)
    return RegistrySettings(
        flavor,
        glue_registry_name=GLUE_REGISTRY,
        region="us-east-1",
        endpoint_url=local_stack.glue_endpoint_url,
    )


def connection_options(flavor: Flavor) -> list[str]:
    """The flavor's options; the addresses come from the variables ``local_stack`` exports."""
    if flavor is Flavor.CONFLUENT:
        return ["--flavor", "confluent"]
    return ["--flavor", "glue", "--glue-registry", GLUE_REGISTRY, "--region", "us-east-1"]


@pytest.fixture(scope="module", params=[Flavor.CONFLUENT, Flavor.GLUE], ids=["confluent", "glue"])
def run(
    request: pytest.FixtureRequest, local_stack: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """Both topics produced, then ingest, silver and gold run once each over the one file."""
    flavor: Flavor = request.param
    suffix = uuid.uuid4().hex[:8]
    orders, clicks = f"orders-{suffix}", f"clicks-{suffix}"
    root = tmp_path_factory.mktemp(f"many-topics-{flavor}")
    definitions = root / "pipelines.yml"
    definitions.write_text(DEFINITIONS.format(orders=orders, clicks=clicks, flavor=flavor))
    settings = registry_settings(local_stack, flavor)
    sender = Sender(open_registry(settings), local_stack.bootstrap_servers)
    try:
        sent = produce(sender, flavor, load_definitions(definitions))
        warehouse = root / "warehouse"
        tables = ["--definitions", str(definitions), "--warehouse-dir", str(warehouse)]
        avrolake("ingest", *tables, *connection_options(flavor))
        avrolake("silver", *tables, *connection_options(flavor))
        avrolake("gold", *tables)
        yield Run(flavor, orders, clicks, TableSpace.in_directory(warehouse), warehouse, sent)
    finally:
        if flavor is Flavor.GLUE:  # moto keeps 1000 schemas per server: free this test's
            glue = glue_client(settings)
            for name in sender.glue_schemas:
                with contextlib.suppress(glue.exceptions.EntityNotFoundException):
                    glue.delete_schema(SchemaId={"SchemaName": name, "RegistryName": GLUE_REGISTRY})


# -- the oracle ----------------------------------------------------------------------------------

EventTime = Callable[[Sent, dict[str, Any]], dt.datetime]  # a delivery, its decoded record


def _millis(ms: int) -> dt.datetime:
    return UTC_EPOCH + dt.timedelta(milliseconds=ms)


SILVER: list[tuple[str, str, str, tuple[str, ...], EventTime, int]] = [
    # table, record type, schema, dedupe key, event time, rows
    ("orders", "com.acme.Order", ORDER, ("orderId",), lambda s, r: r["placedAt"], len(ORDERS)),
    ("clicks_pageview_silver", "com.acme.PageView", PAGE_VIEW, ("viewId",),
     lambda s, r: _millis(r["at"]), len(VIEWS)),
    ("clicks_click_silver", "com.acme.Click", CLICK, (), lambda s, r: _millis(s.timestamp_ms),
     len(CLICKS)),
]  # fmt: skip


def expected_silver(
    sent: list[Sent], schema: str, key: tuple[str, ...], event_time: EventTime
) -> dict[tuple, dict[str, Any]]:
    """Each record's first delivery, as fastavro decodes the bytes sent (its writer is the
    latest version, silver's reader), with silver's metadata from the delivery (all but
    ``ingested_at``, which only bronze knows); by dedupe key, or by Kafka coordinates for a type
    keyed by them."""
    rows: dict[tuple, dict[str, Any]] = {}
    for s in sent:  # in the order sent: offset order on partition 0
        frame = wire.parse(s.data)
        assert frame.schema_ref == s.writer.ref
        record = resolve(frame.payload, s.writer.schema_str, s.writer.schema_str)
        # the bytes hold what the producer meant
        assert record_as_collected(record, schema) == record_as_collected(s.value, schema)
        identity = tuple(record[k] for k in key) or (s.topic, s.partition, s.offset)
        if identity in rows:
            continue
        when = event_time(s, record)
        rows[identity] = {
            **record_as_collected(record, s.writer.schema_str),
            "event_time": local_naive(when),
            "event_date": when.date(),  # the session's time zone is UTC
            "schema_version": s.writer.version,
            "schema_ref": s.writer.ref,
            "wire_format": frame.wire_format.value,
            "topic": s.topic,
            "partition": s.partition,
            "offset": s.offset,
            "kafka_timestamp": local_naive(_millis(s.timestamp_ms)),
        }
    return rows


def first_values(sent: list[Sent], key: str) -> list[dict[str, Any]]:
    """The manifest's values, each key's first delivery only."""
    first: dict[Any, dict[str, Any]] = {}
    for s in sent:
        first.setdefault(s.value[key], s.value)
    return list(first.values())


def expected_orders_gold(sent: list[Sent]) -> dict[tuple, dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for value in first_values(sent, "orderId"):
        groups[(value["placedAt"].date(), value["customer"])].append(value)
    return {
        (date, customer): {
            "event_date": date,
            "customer": customer,
            "orders": len(values),
            "revenue": sum(v["amount"] for v in values),
            "last_order_at": local_naive(max(v["placedAt"] for v in values)),
        }
        for (date, customer), values in groups.items()
    }


def expected_views_gold(sent: list[Sent]) -> dict[tuple, dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for value in first_values(sent, "viewId"):
        groups[(_millis(value["at"]).date(), value["page"])].append(value)
    return {
        (date, page): {
            "event_date": date,
            "page": page,
            "views": len(values),
            "distinct_views": len({v["viewId"] for v in values}),
        }
        for (date, page), values in groups.items()
    }


def differences(got: dict[tuple, dict], want: dict[tuple, dict]) -> list[tuple]:
    """(row, column, got, want) for every cell that differs, type included; missing rows too."""
    wrong: list[tuple] = [(k, "(row)", k in got, k in want) for k in got.keys() ^ want.keys()]
    for k in got.keys() & want.keys():
        for column in got[k].keys() | want[k].keys():
            a, b = got[k].get(column, "(absent)"), want[k].get(column, "(absent)")
            if typed(a) != typed(b):
                wrong.append((k, column, a, b))
    return wrong


# -- the tests -----------------------------------------------------------------------------------


def test_bronze_holds_every_delivery_of_both_topics(run: Run, spark: SparkSession) -> None:
    bronze = run.space.table("bronze").read(spark).select("topic", "partition", "offset", "value")
    got = sorted((r.topic, r.partition, r.offset, bytes(r.value)) for r in bronze.collect())
    assert got == sorted((s.topic, s.partition, s.offset, s.data) for s in run.sent)
    assert {s.topic for s in run.sent} == {run.orders_topic, run.clicks_topic}
    # the definitions name every table: none of the Product example's is made
    assert not any((run.warehouse / name).exists() for name in ("silver", "quarantine", "gold"))


@pytest.mark.parametrize(("table", "record", "schema", "key", "event_time", "count"), SILVER,
                         ids=[row[1] for row in SILVER])  # fmt: skip
def test_each_record_type_has_its_silver_table_as_fastavro_decodes_it(
    run: Run,
    spark: SparkSession,
    table: str,
    record: str,
    schema: str,
    key: tuple[str, ...],
    event_time: EventTime,
    count: int,
) -> None:
    want = expected_silver(run.of(record), schema, key, event_time)
    assert len(want) == count
    bronze = run.space.table("bronze").read(spark).collect()
    ingested = {(r.topic, r.partition, r.offset): r.ingested_at for r in bronze}
    for row in want.values():
        row["ingested_at"] = ingested[(row["topic"], row["partition"], row["offset"])]
    rows = run.space.table(table).read(spark).collect()
    got = {
        tuple(row[k] for k in key) or (row.topic, row.partition, row.offset): {
            c: collected(row[c]) for c in row.asDict()
        }
        for row in rows
    }
    assert len(rows) == len(got) == len(want)  # each record once
    assert differences(got, want) == []


def test_the_resent_order_is_in_silver_once_as_first_delivered(
    run: Run, spark: SparkSession
) -> None:
    orders = run.of("com.acme.Order")
    order_id = ORDERS[RESENT_ORDER]["orderId"]
    resent = [s for s in orders if s.value["orderId"] == order_id]
    assert len(orders) == len(ORDERS) + 1 and len(resent) == 2  # the manifest has it twice
    assert resent[0].data == resent[1].data
    rows = [r for r in run.space.table("orders").read(spark).collect() if r.orderId == order_id]
    assert [(r.partition, r.offset) for r in rows] == [(resent[0].partition, resent[0].offset)]


def unlisted_reason(run: Run, ref: str) -> str:
    """Why a record of no listed type is quarantined: its ref is a version of none of the
    pipeline's record types, each named where it lives in the registry."""
    types = [f"{run.clicks_topic}-com.acme.{name}" for name in ("PageView", "Click")]
    if run.flavor is Flavor.CONFLUENT:
        where = ", ".join(f"subject {name}" for name in types)
    else:
        where = ", ".join(f"Glue schema {name}" for name in types)
    return (
        f"unknown schema ref {ref}: not a version of any record type of pipeline clicks ({where})"
    )


def test_the_quarantine_holds_only_the_type_no_definition_lists(
    run: Run, spark: SparkSession
) -> None:
    (scroll,) = run.of("com.acme.Scroll")
    quarantine = run.space.table("clicks_quarantine").read(spark)
    got = [
        (r.topic, r.partition, r.offset, r.kafka_timestamp, bytes(r.value), r.wire_format,
         r.schema_ref, r.reason)
        for r in quarantine.collect()
    ]  # fmt: skip
    wire_format = wire.parse(scroll.data).wire_format.value
    assert got == [
        (scroll.topic, scroll.partition, scroll.offset, local_naive(_millis(scroll.timestamp_ms)),
         scroll.data, wire_format, scroll.writer.ref, unlisted_reason(run, scroll.writer.ref))
    ]  # fmt: skip
    orders_quarantine = run.space.table("orders_quarantine")
    assert not orders_quarantine.exists(spark) or orders_quarantine.read(spark).count() == 0


@pytest.mark.parametrize(
    ("table", "record", "group", "expected"),
    [
        ("orders_by_customer", "com.acme.Order", "customer", expected_orders_gold),
        ("views_by_page", "com.acme.PageView", "page", expected_views_gold),
    ],
    ids=["orders", "page views"],
)
def test_gold_is_the_manifest_aggregated(
    run: Run,
    spark: SparkSession,
    table: str,
    record: str,
    group: str,
    expected: Callable[[list[Sent]], dict[tuple, dict[str, Any]]],
) -> None:
    want = expected(run.of(record))
    gold = run.space.table(table).read(spark)
    # event_date first, then the group-by fields, then the aggregates, as the definition lists them
    assert gold.columns == list(next(iter(want.values())))
    rows = gold.collect()
    got = {(row.event_date, row[group]): row.asDict() for row in rows}
    assert len(rows) == len(got)
    assert len({date for date, _ in want}) == 2  # the data straddles midnight, as meant
    assert differences(got, want) == []
