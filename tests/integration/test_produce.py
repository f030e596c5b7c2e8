"""``avrolake produce`` end to end on the local stack, for both flavors.

Each run's manifest (what the broker acknowledged) must equal what a plain confluent-kafka Consumer
reads back and the libraries' own deserializers decode: confluent-kafka's ``AvroDeserializer``
over Apicurio, aws-glue-schema-registry's ``KafkaDeserializer`` over moto.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_schema_registry import KafkaDeserializer
from aws_schema_registry import SchemaRegistryClient as GlueClient
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from avrolake import wire
from avrolake.connection import consumer_config
from avrolake.producer.manifest import jsonable, read_manifest
from avrolake.registry import open_registry
from avrolake.registry.glue import glue_client
from avrolake.settings import Flavor, KafkaSettings, RegistrySettings
from loopback import closed_port

REPO = Path(__file__).resolve().parents[2]
AVROLAKE = Path(sys.executable).parent / "avrolake"
MIX = "v1=0.2,v2=0.5,v3=0.3"
GLUE_REGISTRY = "avrolake-tests"  # the registry the new_topic fixture cleans up


SUMMARY = re.compile(r"^sent (\d+), failed 0, in \d+\.\d\d s = [\d,]+ events/s \(seed (\d+)\)$")


def _run(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [str(AVROLAKE), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    return result, time.monotonic() - started


def _connection(stack: Any, flavor: Flavor, topic: str, registry: str) -> list[str]:
    return [
        "--flavor",
        flavor.value,
        "--topic",
        topic,
        "--bootstrap-servers",
        stack.bootstrap_servers,
        "--registry-url",
        stack.confluent_registry_url,
        "--glue-endpoint-url",
        stack.glue_endpoint_url,
        "--glue-registry",
        registry,
    ]


def _consume(stack: Any, topic: str, expected: int, timeout: float = 60) -> list[Any]:
    kafka = KafkaSettings(stack.bootstrap_servers, topic)
    consumer = Consumer(consumer_config(kafka, f"test-{uuid.uuid4().hex}"))
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=1.0):
                assert msg.error() is None, msg.error()
                messages.append(msg)
        for msg in consumer.consume(num_messages=1000, timeout=2.0):  # nothing more may come
            messages.append(msg)
    finally:
        consumer.close()
    return messages


def _decoder(stack: Any, flavor: Flavor, topic: str, registry: str) -> Any:
    if flavor is Flavor.CONFLUENT:
        deserializer = AvroDeserializer(SchemaRegistryClient({"url": stack.confluent_registry_url}))
        ctx = SerializationContext(topic, MessageField.VALUE)
        return lambda value: deserializer(value, ctx)
    glue = glue_client(
        RegistrySettings(
            Flavor.GLUE,
            glue_registry_name=registry,
            region="us-east-1",
            endpoint_url=stack.glue_endpoint_url,
        )
    )
    deserializer = KafkaDeserializer(GlueClient(glue, registry_name=registry))
    return lambda value: deserializer.deserialize(topic, value).data


def _assert_matches_manifest(
    stack: Any,
    flavor: Flavor,
    topic: str,
    registry: str,
    manifest: list[dict[str, Any]],
    expected: int,
) -> None:
    messages = _consume(stack, topic, expected)
    assert len(messages) == len(manifest) == expected
    by_position = {(line["partition"], line["offset"]): line for line in manifest}
    assert len(by_position) == expected
    decode = _decoder(stack, flavor, topic, registry)
    settings = (
        RegistrySettings(Flavor.CONFLUENT, url=stack.confluent_registry_url)
        if flavor is Flavor.CONFLUENT
        else RegistrySettings(
            Flavor.GLUE,
            glue_registry_name=registry,
            region="us-east-1",
            endpoint_url=stack.glue_endpoint_url,
        )
    )
    refs = open_registry(settings)
    for msg in messages:
        line = by_position[(msg.partition(), msg.offset())]
        frame = wire.parse(msg.value())
        assert frame.wire_format.value == flavor.value
        assert frame.schema_ref == line["schemaRef"]
        assert refs.by_ref(frame.schema_ref).version == line["version"]
        assert msg.key().decode() == line["key"] == line["value"]["productId"]
        assert jsonable(decode(msg.value())) == line["value"]
    assert len({line["eventId"] for line in manifest}) == expected


@pytest.mark.parametrize("flavor", [Flavor.CONFLUENT, Flavor.GLUE], ids=["confluent", "glue"])
def test_mixed_versions_round_trip(
    flavor: Flavor, local_stack: Any, tmp_path: Path, new_topic: Callable[[], str]
) -> None:
    topic, registry = new_topic(), GLUE_REGISTRY
    manifest_path = tmp_path / "manifest.jsonl"
    result, _ = _run(
        "produce",
        *_connection(local_stack, flavor, topic, registry),
        "--count",
        "3000",
        "--mix",
        MIX,
        "--seed",
        "7",
        "--manifest",
        str(manifest_path),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert SUMMARY.match(lines[0]).groups() == ("3000", "7")  # type: ignore[union-attr]
    assert re.fullmatch(
        r"per version: v1=603 \(ref \S+\), v2=1480 \(ref \S+\), "
        r"v3=917 \(ref \S+\)",
        lines[1],
    ), lines[1]
    manifest = read_manifest(manifest_path)
    assert Counter(line["version"] for line in manifest) == {1: 603, 2: 1480, 3: 917}
    assert {tuple(line["value"]) for line in manifest} == {
        ("productId", "eventId", "type", "timestamp"),
        ("productId", "eventId", "type", "size", "color", "timestamp"),
        ("productId", "eventId", "type", "size", "color", "timestamp", "price", "updatedAt"),
    }
    # Keyed by productId: each key sticks to one partition (librdkafka's crc32 partitioner puts
    # the ten ids on partitions 0 and 1 of the three).
    partitions = {(line["key"], line["partition"]) for line in manifest}
    assert len(partitions) == len({key for key, _ in partitions}) == 10
    assert {partition for _, partition in partitions} == {0, 1}
    _assert_matches_manifest(local_stack, flavor, topic, registry, manifest, 3000)


def test_same_seed_same_events_across_flavors(
    local_stack: Any, tmp_path: Path, new_topic: Callable[[], str]
) -> None:
    ids = []
    for flavor in (Flavor.CONFLUENT, Flavor.GLUE):
        topic, registry = new_topic(), GLUE_REGISTRY
        path = tmp_path / f"{flavor.value}.jsonl"
        result, _ = _run(
            "produce",
            *_connection(local_stack, flavor, topic, registry),
            "--count",
            "500",
            "--mix",
            MIX,
            "--seed",
            "99",
            "--manifest",
            str(path),
        )
        assert result.returncode == 0, result.stderr
        ids.append({(line["eventId"], line["version"]) for line in read_manifest(path)})
    assert ids[0] == ids[1] and len(ids[0]) == 500


def test_glue_zlib_records_round_trip(
    local_stack: Any, tmp_path: Path, new_topic: Callable[[], str]
) -> None:
    topic, registry = new_topic(), GLUE_REGISTRY
    path = tmp_path / "manifest.jsonl"
    result, _ = _run(
        "produce",
        *_connection(local_stack, Flavor.GLUE, topic, registry),
        "--count",
        "600",
        "--seed",
        "3",
        "--glue-compression",
        "--manifest",
        str(path),
    )
    assert result.returncode == 0, result.stderr
    manifest = read_manifest(path)
    messages = _consume(local_stack, topic, 600)
    assert {msg.value()[:2] for msg in messages} == {b"\x03\x05"}
    _assert_matches_manifest(local_stack, Flavor.GLUE, topic, registry, manifest, 600)


def test_sigint_stops_flushes_and_loses_nothing(
    local_stack: Any, tmp_path: Path, new_topic: Callable[[], str]
) -> None:
    topic, registry = new_topic(), GLUE_REGISTRY
    path = tmp_path / "manifest.jsonl"
    process = subprocess.Popen(
        [
            str(AVROLAKE),
            "produce",
            *_connection(local_stack, Flavor.CONFLUENT, topic, registry),
            "--duration",
            "120",
            "--rate",
            "5000",
            "--seed",
            "5",
            "--manifest",
            str(path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not path.exists() or path.stat().st_size < 100_000):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    sent = int(SUMMARY.match(stdout.splitlines()[0]).group(1))  # type: ignore[union-attr]
    assert "stopped by a signal; everything acknowledged is listed above" in stdout
    manifest = read_manifest(path)
    assert len(manifest) == sent > 0
    _assert_matches_manifest(local_stack, Flavor.CONFLUENT, topic, registry, manifest, sent)


def test_schemas_register_cli(local_stack: Any, new_topic: Callable[[], str]) -> None:
    topic, registry = new_topic(), GLUE_REGISTRY
    confluent, _ = _run(
        "schemas", "register", *_connection(local_stack, Flavor.CONFLUENT, topic, registry)
    )
    assert confluent.returncode == 0, confluent.stderr
    lines = confluent.stdout.splitlines()
    assert lines[:2] == [
        f"subject {topic}-value: compatibility FULL_TRANSITIVE",
        "version    registry version  reference",
    ]
    assert [line.split()[:2] for line in lines[2:]] == [["v1", "1"], ["v2", "2"], ["v3", "3"]]
    glue, _ = _run(
        "schemas",
        "register",
        "--mode",
        "BACKWARD_ALL",
        *_connection(local_stack, Flavor.GLUE, topic, registry),
    )
    assert glue.returncode == 0, glue.stderr
    lines = glue.stdout.splitlines()
    assert lines[0] == f"Glue schema {topic}: compatibility BACKWARD_ALL"
    assert [line.split()[:2] for line in lines[2:]] == [["v1", "1"], ["v2", "2"], ["v3", "3"]]
    assert all(uuid.UUID(line.split()[2]) for line in lines[2:])
    again, _ = _run(
        "schemas",
        "register",
        "--mode",
        "BACKWARD_ALL",
        *_connection(local_stack, Flavor.GLUE, topic, registry),
    )
    assert again.stdout == glue.stdout  # idempotent


def test_register_refuses_an_incompatible_version_locally(
    local_stack: Any, tmp_path: Path, new_topic: Callable[[], str]
) -> None:
    for path in (REPO / "schemas" / "product").glob("v*.avsc"):
        shutil.copy(path, tmp_path)
    v4 = json.loads((tmp_path / "v3.avsc").read_text())
    v4["fields"][2]["type"] = "int"  # type: string -> int
    (tmp_path / "v4.avsc").write_text(json.dumps(v4))
    topic, registry = new_topic(), GLUE_REGISTRY
    result, _ = _run(
        "schemas",
        "register",
        "--dir",
        str(tmp_path),
        *_connection(local_stack, Flavor.GLUE, topic, registry),
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "avrolake schemas: v4 is not FULL_TRANSITIVE compatible with v1: v4 cannot read data "
        "written with v1: field 'type' (/fields/2/type): types differ "
        "(type_mismatch: reader type: int not compatible with writer type: string)\n"
    )


def _bad(stack: Any, *extra: str, flavor: Flavor = Flavor.CONFLUENT) -> tuple[int, str, float]:
    topic = f"products-{uuid.uuid4().hex[:8]}"  # never registered: every case fails first
    args = [*_connection(stack, flavor, topic, GLUE_REGISTRY), *extra]
    result, elapsed = _run("produce", *args, "--count", "10", timeout=60)
    assert result.stdout == ""
    return result.returncode, result.stderr, elapsed


def test_bad_inputs_fail_in_one_line_within_seconds(local_stack: Any, tmp_path: Path) -> None:
    port = closed_port()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "v1.avsc").write_text('{"type": "record", "name": "P", "fields": 3}')
    cases = [
        (
            ("--flavor", "kafka"),
            2,
            "avrolake produce: --flavor 'kafka' is not one of: confluent, glue\n",
        ),
        (
            ("--mix", "v1:0.5"),
            2,
            "avrolake produce: --mix item 'v1:0.5' is not v<N>=<weight> (e.g. v1=0.2,v2=0.8)\n",
        ),
        (
            ("--mix", "v1=1,v9=1"),
            2,
            "avrolake produce: --mix names unknown version v9; the schemas are v1, v2, v3\n",
        ),
        (
            ("--mix", "v1=0"),
            2,
            "avrolake produce: --mix weight of v1 must be a positive number, got 0.0\n",
        ),
        (
            ("--schemas-dir", str(tmp_path / "none")),
            1,
            f"avrolake produce: schema directory {tmp_path / 'none'} does not exist\n",
        ),
        (
            ("--schemas-dir", str(tmp_path / "bad")),
            1,
            f"avrolake produce: {tmp_path / 'bad' / 'v1.avsc'} is not a valid Avro schema: "
            "Fields property must be a list of Avro schemas.\n",
        ),
        (
            ("--bootstrap-servers", f"127.0.0.1:{port}"),
            1,
            f"avrolake produce: cannot reach Kafka at 127.0.0.1:{port} within 5 s: "
            "Failed to get metadata: Local: Broker transport failure\n",
        ),
    ]
    for extra, code, stderr in cases:
        got = _bad(local_stack, *extra)
        assert got[:2] == (code, stderr), extra
        assert got[2] < 15, extra

    registry_url = f"http://127.0.0.1:{port}/apis/ccompat/v7"
    code, stderr, elapsed = _bad(local_stack, "--registry-url", registry_url)
    assert (code, elapsed < 15) == (1, True)
    assert re.fullmatch(
        rf"avrolake produce: cannot reach the schema registry at {re.escape(registry_url)} "
        r"to register a schema under products-\w+-value: ConnectError: \[Errno 111\] "
        r"Connection refused\n",
        stderr,
    ), stderr
    glue_url = f"http://127.0.0.1:{port}"
    code, stderr, elapsed = _bad(local_stack, "--glue-endpoint-url", glue_url, flavor=Flavor.GLUE)
    assert (code, elapsed < 15) == (1, True)
    assert stderr == (
        f"avrolake produce: cannot reach the Glue schema registry at {glue_url} to "
        f"create registry {GLUE_REGISTRY}: "
        f'Could not connect to the endpoint URL: "{glue_url}/"\n'
    )
