"""No single record can stop silver: hostile values between good ones, into running streams.

For both flavors, ingest and silver run as continuous streams (1-second micro-batches) on a topic
whose registry holds Product v1 to v3, an incompatible v4 (``timestamp`` as a string) and the reader
v5 (v3 with a nullable ``eventId`` and an array of nullable strings, so null keys and huge arrays
can be tried). Three rounds interleave good records with every kind of hostile value: each framing
(null, empty, one byte, a cut header, an unknown compression byte, the other flavor's frame),
unknown schema refs in every form, another topic's schema, corrupt zlib and a zlib bomb, trailing
bytes, truncation, invalid UTF-8, absurd length prefixes and counts, union indexes and decimals out
of range, out-of-range timestamps, a null key. A record re-sent later must not come back twice.

Every value's fate is decided before it is produced: a good one must be in silver exactly once,
each column equal to fastavro's resolution of the same bytes (its writer schema → the reader; an
Avro implementation that shares no code with Spark's decoder); a bad one must be in quarantine
exactly once, by its Kafka offset, with its bytes and its specific reason. Afterwards both streams
must still be running: a good record produced last arrives.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import random
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from avrolake import wire
from avrolake.connection import client_config, producer_config
from avrolake.pipeline.runners import run_ingest, run_silver
from avrolake.pipeline.silver import MAX_EVENT_SECONDS, MIN_EVENT_SECONDS
from avrolake.pipeline.tables import TableLocations
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.producer.manifest import jsonable
from avrolake.registry import RegisteredSchema, open_registry
from avrolake.registry.glue import glue_client
from avrolake.schemas import load_versions, resolution_problem
from avrolake.settings import ConnectionSettings, Flavor, KafkaSettings, RegistrySettings
from example_pipeline import product_pipeline

SCHEMAS = Path(__file__).parents[2] / "schemas" / "product"
GLUE_REGISTRY = "avrolake-tests"  # the registry the new_topic fixture cleans up
LIVE = TriggerSettings(mode="continuous", interval="1 second")
WAIT_S = 300.0  # per wait; two shared cores, other Spark tests running
SENTINEL_LEN = 16  # silver's end marker: trailing garbage longer than it is tried too

V3 = json.loads((SCHEMAS / "v3.avsc").read_text())
FIELDS = {f["name"]: f for f in V3["fields"]}
# v4: what an old, broken producer registered; no reader can resolve its string timestamp.
INCOMPATIBLE = {**V3, "fields": [*V3["fields"][:5], {"name": "timestamp", "type": "string"}]}
TAGS = {"name": "tags", "type": {"type": "array", "items": ["null", "string"]}, "default": []}
# v5, the reader: v3 with a nullable eventId (so a null key can arrive) and an array.
READER = {
    **V3,
    "fields": [
        FIELDS["productId"],
        {"name": "eventId", "type": ["null", "string"], "default": None},
        *V3["fields"][2:],
        TAGS,
    ],
}
ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "com.company.order",
    "fields": [{"name": "orderId", "type": "string"}],
}
COLUMNS = [f["name"] for f in READER["fields"]]
DAY = 1_763_856_000  # 2025-11-23T00:00:00Z


# --- Avro bytes by hand --------------------------------------------------------------------------


def avro(schema: dict, record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def zigzag(n: int) -> bytes:
    """Avro's long encoding of ``n`` (zig-zag, then base-128 varint), for any 64-bit value."""
    n = ((n << 1) ^ (n >> 63)) & (2**64 - 1)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def text(s: bytes) -> bytes:
    """An Avro string of raw bytes (they need not be UTF-8)."""
    return zigzag(len(s)) + s


def v1_raw(product: bytes, event: bytes, kind: bytes, seconds: int) -> bytes:
    """A v1 body field by field, so any field can hold bytes fastavro would refuse to write."""
    return text(product) + text(event) + text(kind) + zigzag(seconds)


def v3_prefix(n: int) -> bytes:
    """A v3 body up to (not including) ``price``."""
    return b"".join(
        text(s) for s in (f"P{n % 7}".encode(), f"bad-{n}".encode(), b"shirt", b"M", b"red")
    ) + zigzag(DAY + n)


def reader_prefix(n: int) -> bytes:
    """A v5 body up to (not including) ``tags``: eventId present, price null, updatedAt 0."""
    return (
        text(f"P{n % 7}".encode())
        + zigzag(1)  # union branch 1: string
        + text(f"bad-{n}".encode())
        + b"".join(text(s) for s in (b"shirt", b"M", b"red"))
        + zigzag(DAY + n)
        + zigzag(0)  # price: null
        + zigzag(0)  # updatedAt
    )


# --- the topic and its registry ------------------------------------------------------------------


@dataclass
class Topic:
    flavor: Flavor
    connection: ConnectionSettings
    writers: dict[int, RegisteredSchema]  # by version number
    schemas: dict[int, dict]  # the parsed schema of each version
    foreign: RegisteredSchema  # a schema of another topic
    foreign_topic: str
    elsewhere: RegisteredSchema | None = None  # Glue: the same schema name in another registry
    elsewhere_registry: str | None = None

    @property
    def url(self) -> str:
        return str(self.connection.registry.url)

    def frame(self, version: int, body: bytes, *, compress: bool = False) -> bytes:
        ref = self.writers[version].ref
        if self.flavor is Flavor.CONFLUENT:
            return wire.frame_confluent(int(ref), body)
        return wire.frame_glue(ref, body, compress=compress)

    def ref(self, version: int) -> str:
        return self.writers[version].ref


@pytest.fixture
def other_registry(local_stack: Any) -> Iterator[str]:
    """A second Glue registry for the test's life (moto allows only 10 per server)."""
    name = f"avrolake-hostile-{uuid.uuid4().hex[:8]}"
    yield name
    glue = glue_client(
        RegistrySettings(
            Flavor.GLUE, glue_registry_name=name, region="us-east-1",
            endpoint_url=local_stack.glue_endpoint_url,
        )
    )  # fmt: skip
    with contextlib.suppress(glue.exceptions.EntityNotFoundException):
        glue.delete_registry(RegistryId={"RegistryName": name})


def open_topic(
    local_stack: Any, flavor: Flavor, new_topic: Callable[[], str], other_registry: str
) -> Topic:
    name, other = new_topic(), new_topic()
    connection = ConnectionSettings(
        kafka=KafkaSettings(bootstrap_servers=local_stack.bootstrap_servers, topic=name),
        registry=RegistrySettings(
            flavor=flavor,
            url=local_stack.confluent_registry_url,
            glue_registry_name=GLUE_REGISTRY,
            region="us-east-1",
            endpoint_url=local_stack.glue_endpoint_url,
        ),
    )
    registry = open_registry(connection.registry)
    schemas = {v.number: json.loads(v.text) for v in load_versions(SCHEMAS)}
    schemas[4], schemas[5] = INCOMPATIBLE, READER
    writers = {n: registry.register(name, json.dumps(s)) for n, s in sorted(schemas.items())}
    assert [w.version for w in writers.values()] == [1, 2, 3, 4, 5]
    foreign = registry.register(other, json.dumps(ORDER))
    admin = AdminClient(client_config(connection.kafka))
    admin.create_topics([NewTopic(name, num_partitions=1)])[name].result(timeout=30)
    topic = Topic(flavor, connection, writers, schemas, foreign, other)
    if flavor is Flavor.GLUE:
        elsewhere = replace(connection.registry, glue_registry_name=other_registry)
        topic.elsewhere = open_registry(elsewhere).register(name, json.dumps(schemas[1]))
        topic.elsewhere_registry = other_registry
    return topic


# --- what is produced, and what must become of it ------------------------------------------------


@dataclass
class Case:
    name: str
    value: bytes | None
    reason: str | None = None  # None: a good record
    version: int | None = None  # the writer, for good records
    body: bytes | None = None  # the uncompressed Avro body, for good records
    offset: int | None = None  # set when the broker acknowledges it
    headers: list[tuple[str, bytes]] | None = None
    wire_format: str | None = None  # for good records: bronze's wire format, if not the flavor

    def expected(self, topic: Topic) -> dict:
        """The oracle: fastavro resolves the body with the writer schema to the reader schema,
        in the forms collected from silver below (decimals as strings, instants in epoch ms)."""
        assert self.body is not None and self.version is not None
        resolved = fastavro.schemaless_reader(
            io.BytesIO(self.body),
            fastavro.parse_schema(topic.schemas[self.version]),
            fastavro.parse_schema(READER),
        )
        return jsonable(resolved)


def good_records(topic: Topic, seed: int) -> list[Case]:
    """Good records of every writer the reader can read, with edge values: the first and last
    representable second, non-ASCII and empty strings, extreme decimals, nulls inside arrays."""
    rng = random.Random(seed)
    edges: list[dict[str, Any]] = [  # n % 4 picks the writer: v1, v2, v3, v5
        {"timestamp": MAX_EVENT_SECONDS},
        {"timestamp": MIN_EVENT_SECONDS},
        {"type": "é😀ü", "productId": ""},
        {"price": Decimal("99999999.99"), "updatedAt": 253402300799999},
        {"eventId": "same-time", "timestamp": DAY},
        {"timestamp": DAY + 86399},
        {"price": Decimal("-0.01"), "updatedAt": -62135596800000},
        {"tags": [None, "", "😀", None]},
    ]
    cases = []
    for n in range(24):
        version = (1, 2, 3, 5)[n % 4]
        schema = topic.schemas[version]
        record: dict[str, Any] = {
            "productId": f"P{rng.randrange(10):04d}",
            "eventId": str(uuid.UUID(int=rng.getrandbits(128))),
            "type": rng.choice(["shirt", "pants", "shoes"]),
            "size": rng.choice(["XS", "S", "M", "L", "XL"]),
            "color": rng.choice(["black", "blue", "red"]),
            "timestamp": DAY + rng.randrange(86400),
            "price": rng.choice([None, Decimal(rng.randrange(-(10**6), 10**6)) / 100]),
            "updatedAt": rng.randrange(0, 2**41),
            "tags": rng.choice([[], ["a"], ["b", None, "c"]]),
        }
        if n < len(edges):
            record.update(edges[n])
        if record["eventId"] == "same-time":
            record["eventId"] = f"same-time-{seed}"
        if "updatedAt" in FIELDS and isinstance(record["updatedAt"], int):
            record["updatedAt"] = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                milliseconds=record["updatedAt"]
            )
        names = {f["name"] for f in schema["fields"]}
        body = avro(schema, {k: v for k, v in record.items() if k in names})
        compress = topic.flavor is Flavor.GLUE and n % 2 == 1
        value = topic.frame(version, body, compress=compress)
        cases.append(Case(f"good v{version} #{n}", value, version=version, body=body))
        if topic.flavor is Flavor.CONFLUENT and n % 5 == 4:  # the id in a record header instead
            cases[-1].value, cases[-1].wire_format = body, "confluent-header"
            cases[-1].headers = [(wire.VALUE_SCHEMA_ID_HEADER, topic.frame(version, b""))]
    return cases


def hostile_records(topic: Topic) -> list[Case]:
    """Bad values, each with the one reason silver must give it."""
    confluent = topic.flavor is Flavor.CONFLUENT
    unknown = "unknown wire format: first byte 0x"
    v1 = avro(topic.schemas[1], {"productId": "P1", "eventId": "e", "type": "t", "timestamp": DAY})
    some_uuid = uuid.uuid4()
    cases = [
        Case("null value", None, "null value"),
        Case("empty value", b"", unknown + "(empty)"),
        Case("one byte 0x00", b"\x00", unknown + "00"),
        Case("one byte 0x03", b"\x03", unknown + "03"),
        Case("one byte 0xff", b"\xff", unknown + "FF"),
        Case("magic 0 and three id bytes", b"\x00\x00\x00\x01", unknown + "00"),
        Case("magic 0 and one id byte", b"\x00\x07", unknown + "00"),
        Case("Glue header, compression 0x07", b"\x03\x07" + some_uuid.bytes + v1, unknown + "03"),
        Case("Glue header cut inside the UUID", b"\x03\x00" + some_uuid.bytes[:9], unknown + "03"),
        Case("JSON", b'{"eventId": "x"}', unknown + "7B"),
        Case("magic 1 and ten GUID bytes", b"\x01" + some_uuid.bytes[:10], unknown + "01"),
        Case(
            "a schema-id header of two bytes",
            topic.frame(1, v1),
            f"malformed {wire.VALUE_SCHEMA_ID_HEADER} header",
            headers=[(wire.VALUE_SCHEMA_ID_HEADER, b"\x00\x01")],
        ),
        Case(
            "a schema-id header with magic 2",
            v1,
            f"malformed {wire.VALUE_SCHEMA_ID_HEADER} header",
            headers=[(wire.VALUE_SCHEMA_ID_HEADER, b"\x02" + bytes(4))],
        ),
    ]
    # A frame of the other flavor never reaches the registry, whatever it carries.
    if confluent:
        for label, frame in (
            ("a random UUID", wire.frame_glue(str(some_uuid), v1)),
            ("a corrupt zlib body", b"\x03\x05" + some_uuid.bytes + b"not zlib"),
            ("a zlib bomb", wire.frame_glue(str(some_uuid), bytes(80 << 20), compress=True)),
        ):
            reason = f"glue framing on a confluent topic: schema ref {some_uuid}"
            cases.append(Case(f"Glue frame with {label}", frame, reason))
    else:
        for schema_id in (1, 0, 2**32 - 1):
            reason = f"confluent framing on a glue topic: schema ref {schema_id}"
            cases.append(
                Case(
                    f"Confluent frame, id {schema_id}", wire.frame_confluent(schema_id, v1), reason
                )
            )
        guid = f"guid:{some_uuid}"
        cases += [
            Case(
                "Confluent GUID frame",
                b"\x01" + some_uuid.bytes + v1,
                f"confluent-guid framing on a glue topic: schema ref {guid}",
            ),
            Case(
                "Confluent schema-id header on a Glue frame",
                topic.frame(1, v1),
                "confluent-header framing on a glue topic: schema ref 7",
                headers=[(wire.VALUE_SCHEMA_ID_HEADER, wire.frame_confluent(7, b""))],
            ),
        ]

    # Schema refs this topic's registry cannot resolve, in every form.
    if confluent:
        for schema_id in (0, 2**31 - 1):
            reason = (
                f"unknown schema ref {schema_id}: schema registry at {topic.url} has nothing to "
                f"get schema id {schema_id}: No content with ID '{schema_id}' was found."
            )
            cases.append(
                Case(f"unknown id {schema_id}", wire.frame_confluent(schema_id, v1), reason)
            )
        guid = uuid.uuid4()
        reason = (
            f"unknown schema ref guid:{guid}: schema registry at {topic.url} has nothing to get "
            f"schema GUID {guid}: Unknown Schema Registry Error: b''"
        )
        cases.append(Case("unknown GUID", b"\x01" + guid.bytes + v1, reason))
        unknown_id = 999_999_937
        reason = (
            f"unknown schema ref {unknown_id}: schema registry at {topic.url} has nothing to "
            f"get schema id {unknown_id}: No content with ID '{unknown_id}' was found."
        )
        header = [(wire.VALUE_SCHEMA_ID_HEADER, wire.frame_confluent(unknown_id, b""))]
        cases.append(Case("unknown id in a schema-id header", v1, reason, headers=header))
        top = 2**32 - 1
        reason = f"unknown schema ref {top}: '{top}' is not a Confluent schema id"
        cases.append(Case("id 2^32-1", wire.frame_confluent(top, v1), reason))
        subject = f"{topic.connection.kafka.topic}-value"
        reason = (
            f"unknown schema ref {topic.foreign.ref}: schema id {topic.foreign.ref} is not "
            f"registered under {subject}"
        )
        frame = wire.frame_confluent(int(topic.foreign.ref), avro(ORDER, {"orderId": "o"}))
        cases.append(Case("another topic's schema id", frame, reason))
    else:
        for version_id in (uuid.UUID(int=0), uuid.uuid4(), uuid.uuid4(), uuid.UUID(int=2**128 - 1)):
            reason = (
                f"unknown schema ref {version_id}: Glue registry {GLUE_REGISTRY} has nothing to "
                f"get schema version {version_id}: Schema version is not found. "
                f"SchemaVersionId: {version_id}"
            )
            frame = wire.frame_glue(str(version_id), v1)
            cases.append(Case(f"unknown version {version_id}", frame, reason))
        ours = f"{GLUE_REGISTRY}/{topic.connection.kafka.topic}"
        reason = (
            f"unknown schema ref {topic.foreign.ref}: schema version {topic.foreign.ref} belongs "
            f"to Glue schema {GLUE_REGISTRY}/{topic.foreign_topic}, not {ours}"
        )
        frame = wire.frame_glue(topic.foreign.ref, avro(ORDER, {"orderId": "o"}))
        cases.append(Case("another topic's schema version", frame, reason))
        assert topic.elsewhere is not None
        reason = (
            f"unknown schema ref {topic.elsewhere.ref}: schema version {topic.elsewhere.ref} "
            f"belongs to Glue schema {topic.elsewhere_registry}/{topic.connection.kafka.topic}, "
            f"not {ours}"
        )
        frame = wire.frame_glue(topic.elsewhere.ref, v1)
        cases.append(Case("this topic's schema name in another registry", frame, reason))

    # A writer this topic registered that the reader cannot resolve.
    problem = resolution_problem(json.dumps(READER), json.dumps(INCOMPATIBLE))
    assert problem is not None
    reason = f"writer v4 (schema ref {topic.ref(4)}) cannot be read with reader v5: {problem}"
    body = avro(INCOMPATIBLE, {"productId": "P", "eventId": "e", "type": "t", "size": "M",
                               "color": "red", "timestamp": "yesterday"})  # fmt: skip
    cases.append(Case("incompatible writer v4", topic.frame(4, body), reason))

    # Bodies: known writers, bytes that are not one whole valid record of them.
    def body_case(name: str, version: int, payload: bytes, why: str) -> Case:
        return Case(
            name, topic.frame(version, payload), f"{why} for schema ref {topic.ref(version)}"
        )

    corrupt = "corrupt or truncated Avro"
    not_at_end = "the Avro record does not end where the value ends (trailing or missing bytes)"
    utf8 = "invalid UTF-8 in a string"
    v5 = reader_prefix(1) + zigzag(2) + zigzag(1) + text(b"a") + zigzag(0) + zigzag(0)
    assert avro(READER, fastavro.schemaless_reader(io.BytesIO(v5), fastavro.parse_schema(READER)))
    cases += [
        body_case("one trailing zero byte", 1, v1 + b"\x00", not_at_end),
        body_case(
            "trailing bytes longer than the end marker", 5, v5 + bytes(range(40)), not_at_end
        ),
        body_case("trailing bytes equal to a whole second record", 1, v1 + v1, not_at_end),
        body_case("no body at all", 1, b"", corrupt),
        body_case("cut inside the last field", 3, v3_prefix(2)[:-1], corrupt),
        body_case("cut after three bytes", 1, v1[:3], corrupt),
        body_case("cut before the array's end", 5, v5[:-1], corrupt),
        body_case("string bytes ff fe", 1, v1_raw(b"P", b"\xff\xfe", b"t", DAY), utf8),
        body_case("overlong NUL c0 80", 1, v1_raw(b"P", b"e2", b"\xc0\x80", DAY), utf8),
        body_case("UTF-16 surrogate ed a0 80", 1, v1_raw(b"\xed\xa0\x80", b"e3", b"t", DAY), utf8),
        body_case(
            "invalid UTF-8 inside the array",
            5,
            reader_prefix(3)
            + zigzag(2)
            + zigzag(1)
            + text(b"ok")
            + zigzag(1)
            + text(b"\xfe")
            + zigzag(0),
            utf8,
        ),
        body_case("string length 2^31-9", 1, text(b"P") + zigzag(2**31 - 9) + b"e", corrupt),
        body_case("string length 2^62", 1, text(b"P") + zigzag(2**62) + b"e", corrupt),
        body_case("string length -1", 1, text(b"P") + zigzag(-1) + b"e", corrupt),
        body_case("string length -2^63", 1, zigzag(-(2**63)) + b"e", corrupt),
        body_case(
            "decimal bytes length 2^31-9", 3, v3_prefix(4) + zigzag(1) + zigzag(2**31 - 9), corrupt
        ),
        body_case(
            "a billion nulls in the array",
            5,
            reader_prefix(5) + zigzag(10**9) + zigzag(0) * 64 + zigzag(0),
            corrupt,
        ),
        body_case(
            "array block count -10^9 with a block size",
            5,
            reader_prefix(6) + zigzag(-(10**9)) + zigzag(10**9) + zigzag(0) * 8,
            corrupt,
        ),
        body_case("array block count 2^62", 5, reader_prefix(7) + zigzag(2**62), corrupt),
        body_case("union index 5", 3, v3_prefix(8) + zigzag(5) + zigzag(0), corrupt),
        body_case("union index -1", 3, v3_prefix(9) + zigzag(-1) + zigzag(0), corrupt),
        body_case(
            "decimal of 13 digits in a decimal(10, 2)",
            3,
            v3_prefix(10) + zigzag(1) + text((10**12).to_bytes(6, "big")) + zigzag(0),
            corrupt,
        ),
        body_case("updatedAt 2^62 ms", 3, v3_prefix(11) + zigzag(0) + zigzag(2**62), corrupt),
    ]
    for seconds in (2**62, -(2**63), MAX_EVENT_SECONDS + 1, MIN_EVENT_SECONDS - 1):
        raw = v1_raw(b"P", f"t{seconds}".encode(), b"t", seconds)
        cases.append(
            Case(f"timestamp {seconds}", topic.frame(1, raw), f"timestamp out of range: {seconds}")
        )
    null_key = avro(READER, {"productId": "P", "eventId": None, "type": "t", "size": "M",
                             "color": "red", "timestamp": DAY, "price": None, "updatedAt": 0,
                             "tags": []})  # fmt: skip
    cases.append(Case("null eventId", topic.frame(5, null_key), "null eventId"))

    if not confluent:  # Glue's zlib bodies
        ref = topic.ref(1)
        compressed = zlib.compress(v1)
        zlib_frame = wire.frame_glue(ref, v1, compress=True)
        bad_body = f"corrupt or oversized compressed body for schema ref {ref}"
        header = zlib_frame[: wire.GLUE_HEADER_LEN]
        cases += [
            Case("corrupt zlib", header + b"this is not zlib", bad_body),
            Case("zlib cut short", header + compressed[:-3], bad_body),
            Case(
                "zlib bomb: 80 MiB of zeros",
                wire.frame_glue(ref, bytes(80 << 20), compress=True),
                bad_body,
            ),
            Case("bytes after the zlib stream", zlib_frame + b"\x00garbage", bad_body),
            Case(
                "zlib body with trailing Avro bytes",
                wire.frame_glue(ref, v1 + b"\x00\x01", compress=True),
                f"{not_at_end} for schema ref {ref}",
            ),
            Case(
                "zlib body cut inside the record",
                wire.frame_glue(ref, v1[:-1], compress=True),
                f"{corrupt} for schema ref {ref}",
            ),
        ]
    return cases


# --- the run -------------------------------------------------------------------------------------


class Sender:
    """One idempotent producer; each case learns the offset the broker gave it."""

    def __init__(self, topic: Topic) -> None:
        self.topic = topic.connection.kafka.topic
        self.producer = Producer(producer_config(topic.connection.kafka))
        self.sent = 0

    def send(self, cases: list[Case]) -> None:
        failures: list[str] = []
        for case in cases:

            def delivered(error: Any, message: Any, case: Case = case) -> None:
                if error is not None:
                    failures.append(f"{case.name}: {error}")
                else:
                    case.offset = message.offset()

            self.producer.produce(
                self.topic,
                value=case.value,
                key=case.name.encode(),
                headers=case.headers,
                on_delivery=delivered,
            )
        assert self.producer.flush(60) == 0
        assert failures == []
        self.sent += len(cases)


def wait_for(condition: Callable[[], bool], what: str, queries: list[StreamingQuery]) -> None:
    """Poll ``condition`` until it holds; fail at once if a stream died, or after ``WAIT_S``."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        for query in queries:
            assert query.isActive, f"{query.name} stopped: {query.exception()}"
        assert time.monotonic() < deadline, f"not within {WAIT_S:.0f}s: {what}"
        time.sleep(1.0)


def count(spark: SparkSession, table: Any) -> int:
    """Rows of a table another query or process writes (0 before its first commit). Not
    ``table.exists``: Delta caches a log it found empty, and keeps answering False for it."""
    if not any((Path(table.path) / "_delta_log").glob("*.json")):
        return 0
    return table.read(spark).count()


def interleave(good: list[Case], bad: list[Case], rounds: int) -> list[list[Case]]:
    """``rounds`` lists, each alternating good and bad values (the bad ones shuffled)."""
    bad = list(bad)
    random.Random(7).shuffle(bad)
    out = []
    for r in range(rounds):
        goods, bads = good[r::rounds], bad[r::rounds]
        mixed = [c for pair in zip(goods, bads, strict=False) for c in pair]
        n = min(len(goods), len(bads))
        out.append(mixed + goods[n:] + bads[n:])
    return out


@pytest.mark.parametrize("flavor", [Flavor.CONFLUENT, Flavor.GLUE], ids=["confluent", "glue"])
def test_hostile_values_between_good_ones_in_running_streams(
    flavor: Flavor,
    local_stack: Any,
    spark: SparkSession,
    tmp_path: Path,
    new_topic: Any,
    other_registry: str,
) -> None:
    topic = open_topic(local_stack, flavor, new_topic, other_registry)
    tables = TableLocations.in_directory(tmp_path / "warehouse")
    good = good_records(topic, seed=11)
    bad = hostile_records(topic)
    assert len({c.name for c in good + bad}) == len(good + bad)
    first, rest = good[:2], good[2:]
    sender = Sender(topic)
    sender.send(first)  # ingest and silver start on a topic that has records

    queries: list[StreamingQuery] = []
    try:
        queries.append(run_ingest(spark, topic.connection.kafka, tables, LIVE))
        wait_for(lambda: count(spark, tables.bronze) == 2, "the first bronze rows", queries)
        queries.append(
            run_silver(
                spark,
                product_pipeline(topic.connection.kafka.topic),
                open_registry(topic.connection.registry),
                tables.space,
                LIVE,
            )
        )
        wait_for(lambda: count(spark, tables.silver) == 2, "the first silver rows", queries)

        for chunk in interleave(rest, bad, rounds=3):
            sender.send(chunk)
            wait_for(lambda: count(spark, tables.bronze) == sender.sent, "bronze", queries)
        # A producer retry of an early good record, then one good record after everything.
        resent = Case("re-sent", good[3].value, version=good[3].version, body=good[3].body)
        last = good_records(topic, seed=12)[0]
        last.name = "the last good record"
        sender.send([resent, last])
        last_id = last.expected(topic)["eventId"]

        def arrived() -> bool:
            silver = tables.silver.read(spark)
            return silver.where(F.col("eventId") == last_id).count() == 1

        wait_for(arrived, "the good record produced after the hostile ones", queries)
        wait_for(lambda: count(spark, tables.quarantine) >= len(bad), "quarantine", queries)
        for query in queries:
            assert query.isActive and query.exception() is None, query.name
    finally:
        for query in queries:
            query.stop()

    assert count(spark, tables.bronze) == sender.sent == 2 + len(rest) + len(bad) + 2

    # Good records: in silver exactly once, at their first offset, valued as fastavro resolves them.
    goods = [*good, last]
    silver = tables.silver.read(spark)
    assert silver.columns[: len(COLUMNS)] == COLUMNS
    assert silver.where(F.unix_seconds("event_time") != F.col("timestamp")).isEmpty()
    assert silver.where(F.to_date("event_time") != F.col("event_date")).isEmpty()
    rows = silver.select(
        *[F.unix_millis(c).alias(c) if c == "updatedAt" else F.col(c) for c in COLUMNS],
        "schema_version",
        "schema_ref",
        "wire_format",
        "offset",
    ).collect()
    got = {}
    for row in rows:
        value = row.asDict()
        assert value["eventId"] not in got, f"{value['eventId']} twice in silver"
        value["price"] = None if value["price"] is None else str(value["price"])
        got[value["eventId"]] = value
    expected = {}
    for case in goods:
        fields = case.expected(topic)
        ref = topic.ref(case.version)  # type: ignore[arg-type]
        wire_format = case.wire_format or flavor.value
        meta = {"schema_version": case.version, "schema_ref": ref, "wire_format": wire_format}
        expected[fields["eventId"]] = {**fields, **meta, "offset": case.offset}
    assert resent.offset is not None and resent.offset > good[3].offset  # type: ignore[operator]
    assert got == expected

    # Bad records: in quarantine exactly once, by offset, with their bytes and their reason.
    quarantine = tables.quarantine.read(spark).select("offset", "key", "value", "reason").collect()
    assert len(quarantine) == len({q.offset for q in quarantine})
    by_offset = {q.offset: q for q in quarantine}
    assert {c.offset: (c.name, c.reason) for c in bad} == {
        q.offset: (q.key.decode(), q.reason) for q in quarantine
    }
    for case in bad:
        stored = by_offset[case.offset].value
        assert (None if stored is None else bytes(stored)) == case.value, case.name
