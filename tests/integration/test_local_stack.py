"""Smoke tests of the embedded stack, each part for real: Kafka, Apicurio, moto, Spark and Delta.

Topic, subject and registry names carry a random suffix, so a reused stack never sees leftovers.
The lifecycle tests run a second, private stack on free ports and its own state directory.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import fastavro
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from delta.tables import DeltaTable
from pyspark.sql import Row, SparkSession
from pyspark.sql.avro.functions import from_avro

from avrolake_dev.local import LocalStack
from avrolake_dev.local.lease import shared
from avrolake_dev.local.proc import group_members, start_time
from avrolake_dev.settings import LocalPorts
from loopback import free_ports

PRODUCT_V1 = json.dumps({
    "type": "record", "name": "Product", "namespace": "avrolake.smoke",
    "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}],
})  # fmt: skip
PRODUCT_V2 = json.dumps({
    "type": "record", "name": "Product", "namespace": "avrolake.smoke",
    "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"},
               {"name": "price", "type": "double", "default": 0.0}],
})  # fmt: skip
CLI = ["-c", "import sys; from avrolake.cli import main; sys.exit(main())"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_topic(bootstrap: str, partitions: int = 1) -> str:
    topic = unique("smoke")
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
    )
    futures[topic].result(timeout=30)
    return topic


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    failures: list[str] = []

    def record_failure(error, _message) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=record_failure)
    assert producer.flush(30) == 0
    assert failures == []


def read_topic(spark: SparkSession, bootstrap: str, topic: str):
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )


def avro_bytes(schema: str, record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(json.loads(schema)), record)
    return out.getvalue()


def test_kafka_produce_and_consume(local_stack: LocalStack) -> None:
    topic = new_topic(local_stack.bootstrap_servers)
    sent = [(b"k1", b"one"), (b"k2", b"two"), (b"k3", b"three")]
    produce(local_stack.bootstrap_servers, topic, sent)

    consumer = Consumer({
        "bootstrap.servers": local_stack.bootstrap_servers, "group.id": unique("smoke-group"),
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })  # fmt: skip
    consumer.subscribe([topic])
    received: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 30
    try:
        while len(received) < len(sent) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None:
                assert message.error() is None, message.error()
                received.append((message.key(), message.value()))
    finally:
        consumer.close()
    assert received == sent


def test_apicurio_serves_the_confluent_api(local_stack: LocalStack) -> None:
    subject = f"{unique('smoke')}-value"
    writer = SchemaRegistryClient({"url": local_stack.confluent_registry_url})
    schema_id = writer.register_schema(subject, Schema(PRODUCT_V1, "AVRO"))
    assert writer.register_schema(subject, Schema(PRODUCT_V1, "AVRO")) == schema_id

    reader = SchemaRegistryClient({"url": local_stack.confluent_registry_url})  # no cache
    latest = reader.get_latest_version(subject)
    assert (latest.subject, latest.version, latest.schema_id) == (subject, 1, schema_id)
    assert json.loads(latest.schema.schema_str) == json.loads(PRODUCT_V1)
    assert json.loads(reader.get_schema(schema_id).schema_str) == json.loads(PRODUCT_V1)
    assert subject in reader.get_subjects()


def test_moto_serves_the_glue_schema_registry(local_stack: LocalStack) -> None:
    glue = boto3.client("glue", endpoint_url=local_stack.glue_endpoint_url, region_name="us-east-1")
    registry = unique("smoke")
    glue.create_registry(RegistryName=registry)
    created = glue.create_schema(
        RegistryId={"RegistryName": registry}, SchemaName="products", DataFormat="AVRO",
        Compatibility="BACKWARD", SchemaDefinition=PRODUCT_V1,
    )  # fmt: skip
    v1 = glue.get_schema_version(SchemaVersionId=created["SchemaVersionId"])
    assert (v1["SchemaDefinition"], v1["VersionNumber"], v1["DataFormat"], v1["Status"]) == (
        PRODUCT_V1, 1, "AVRO", "AVAILABLE",
    )  # fmt: skip
    v2 = glue.register_schema_version(
        SchemaId={"RegistryName": registry, "SchemaName": "products"}, SchemaDefinition=PRODUCT_V2
    )
    assert v2["VersionNumber"] == 2
    fetched = glue.get_schema_version(SchemaVersionId=v2["SchemaVersionId"])
    assert fetched["SchemaDefinition"] == PRODUCT_V2


def test_spark_reads_a_topic_with_the_kafka_source(
    local_stack: LocalStack, spark: SparkSession
) -> None:
    topic = new_topic(local_stack.bootstrap_servers)
    produce(local_stack.bootstrap_servers, topic, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    rows = (
        read_topic(spark, local_stack.bootstrap_servers, topic)
        .selectExpr(
            "CAST(key AS STRING) AS key",
            "CAST(value AS STRING) AS value",
            "topic",
            "partition",
            "offset",
        )
        .orderBy("offset")
        .collect()
    )
    assert rows == [
        Row(key="a", value="1", topic=topic, partition=0, offset=0),
        Row(key="b", value="2", topic=topic, partition=0, offset=1),
        Row(key="c", value="3", topic=topic, partition=0, offset=2),
    ]


def test_from_avro_decodes_fastavro_records_read_from_kafka(
    local_stack: LocalStack, spark: SparkSession
) -> None:
    topic = new_topic(local_stack.bootstrap_servers)
    records = [{"id": 1, "name": "kettle"}, {"id": 2, "name": "toaster"}]
    produce(local_stack.bootstrap_servers, topic,
            [(str(r["id"]).encode(), avro_bytes(PRODUCT_V1, r)) for r in records])  # fmt: skip
    decoded = (
        read_topic(spark, local_stack.bootstrap_servers, topic)
        .orderBy("offset")
        .select(from_avro("value", PRODUCT_V1).alias("product"))
        .select("product.*")
        .collect()
    )
    assert decoded == [Row(id=1, name="kettle"), Row(id=2, name="toaster")]


def test_delta_round_trip(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "products")
    rows = [Row(id=1, name="kettle"), Row(id=2, name="toaster")]
    spark.createDataFrame(rows, "id long, name string").write.format("delta").save(path)
    assert DeltaTable.isDeltaTable(spark, path)
    spark.createDataFrame([Row(id=3, name="lamp")], "id long, name string").write.format(
        "delta"
    ).mode("append").save(path)
    back = spark.read.format("delta").load(path).orderBy("id").collect()
    assert back == [Row(id=1, name="kettle"), Row(id=2, name="toaster"), Row(id=3, name="lamp")]
    assert DeltaTable.forPath(spark, path).history().count() == 2


def test_up_again_is_a_no_op(local_stack: LocalStack) -> None:
    before = {s.name: s.pid for s in local_stack.status()}
    assert local_stack.up(claim=False) == []  # claim=False: the session still stops it
    after = local_stack.status()
    assert {s.name: s.pid for s in after} == before
    assert [(s.name, s.health) for s in after] == [
        ("kafka", "healthy"), ("apicurio", "healthy"), ("moto", "healthy"),
    ]  # fmt: skip


def test_a_second_holder_leaves_the_stack_running(local_stack: LocalStack) -> None:
    before = {s.name: s.pid for s in local_stack.status()}
    with shared(LocalStack(local_stack.ports, local_stack.state_dir)) as again:
        assert again.bootstrap_servers == local_stack.bootstrap_servers
    assert {s.name: s.pid for s in local_stack.status()} == before
    assert all(s.health == "healthy" for s in local_stack.status())


def test_cli_status_of_the_running_stack(local_stack: LocalStack) -> None:
    env = _env(local_stack.ports, local_stack.state_dir)
    result = subprocess.run(
        [sys.executable, *CLI, "local", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pids = {s.name: s.pid for s in local_stack.status()}
    assert [line.split() for line in result.stdout.splitlines()[1:4]] == [
        ["kafka", local_stack.bootstrap_servers, str(pids["kafka"]), "healthy"],
        ["apicurio", local_stack.confluent_registry_url, str(pids["apicurio"]), "healthy"],
        ["moto", local_stack.glue_endpoint_url, str(pids["moto"]), "healthy"],
    ]


def test_cli_lifecycle_of_a_private_stack(tmp_path: Path) -> None:
    """up starts all three, up again does nothing, down leaves no process of theirs behind."""
    ports = LocalPorts(*free_ports(4))
    state = tmp_path / "state"
    env = _env(ports, state)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *CLI, "local", *args], env=env,
                              capture_output=True, text=True, timeout=180, check=False)  # fmt: skip

    try:
        up = cli("up")
        assert up.returncode == 0, up.stderr
        assert up.stdout.splitlines()[0] == (
            f"local stack up (started apicurio, kafka, moto); state: {state}"
        )
        stack = LocalStack(ports, state)
        statuses = stack.status()
        assert [(s.name, s.health) for s in statuses] == [
            ("kafka", "healthy"), ("apicurio", "healthy"), ("moto", "healthy"),
        ]  # fmt: skip
        pids = [s.pid for s in statuses]
        assert all(group_members(pid) for pid in pids)

        again = cli("up")
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[0] == "local stack already up: nothing to do"
        assert [s.pid for s in stack.status()] == pids

        down = cli("down")
        assert (down.returncode, down.stdout) == (0, "stopped kafka, apicurio, moto\n")
        assert [group_members(pid) for pid in pids] == [[], [], []]
        assert [start_time(pid) for pid in pids] == [
            None,
            None,
            None,
        ]  # gone (or an unreaped zombie)
        assert [s.health for s in stack.status()] == ["stopped", "stopped", "stopped"]
        assert list((state / "run").iterdir()) == []
    finally:  # a failed assertion must not leave three JVMs behind
        LocalStack(ports, state).down()


def consume_all(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, bytes]]:
    """Every record of ``topic`` from the beginning (waits for ``expected`` of them, up to 60 s)."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": unique("smoke-group"),
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })  # fmt: skip
    consumer.subscribe([topic])
    received: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 60
    try:
        while len(received) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None:
                assert message.error() is None, message.error()
                received.append((message.key(), message.value()))
        extra = consumer.poll(2.0)  # nothing beyond what was produced
        assert extra is None, extra
    finally:
        consumer.close()
    return received


def test_up_after_a_broker_crash_keeps_its_records(tmp_path: Path) -> None:
    """SIGKILL the broker of a private stack: `local up` restarts it alone, on its data."""
    ports = LocalPorts(*free_ports(4))
    state = tmp_path / "state"
    env = _env(ports, state)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *CLI, "local", *args], env=env,
                              capture_output=True, text=True, timeout=180, check=False)  # fmt: skip

    stack = LocalStack(ports, state)
    try:
        assert cli("up").returncode == 0
        topic = new_topic(stack.bootstrap_servers, partitions=3)
        sent = [(f"k{i}".encode(), f"record {i}".encode()) for i in range(500)]
        produce(stack.bootstrap_servers, topic, sent)
        others = {s.name: s.pid for s in stack.status() if s.name != "kafka"}

        broker = stack.running("kafka")
        assert broker is not None
        os.kill(broker.pid, signal.SIGKILL)  # no shutdown hook, no clean log close
        deadline = time.monotonic() + 30
        while start_time(broker.pid) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [s.health for s in stack.status()] == ["stopped", "healthy", "healthy"]

        again = cli("up")
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[0] == f"local stack up (started kafka); state: {state}"
        assert {s.name: s.pid for s in stack.status() if s.name != "kafka"} == others
        received = consume_all(stack.bootstrap_servers, topic, len(sent))
        assert sorted(received) == sorted(sent)
    finally:
        stack.down()


def test_the_last_holder_stops_what_holders_started(tmp_path: Path) -> None:
    """What the ``local_stack`` fixture relies on, on a private stack: nested holders share it."""
    ports = LocalPorts(*free_ports(4))
    with shared(LocalStack(ports, tmp_path / "state")) as stack:
        pids = [s.pid for s in stack.status()]
        assert all(group_members(pid) for pid in pids)
        with shared(LocalStack(ports, tmp_path / "state")):
            pass  # a second holder: it started nothing, and another holder is still alive
        assert [(s.pid, s.health) for s in stack.status()] == [(pid, "healthy") for pid in pids]
    assert [s.health for s in stack.status()] == ["stopped", "stopped", "stopped"]
    assert [group_members(pid) for pid in pids] == [[], [], []]
    assert list((tmp_path / "state" / "leases").iterdir()) == []


def _env(ports: LocalPorts, state: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AVROLAKE_STATE_DIR": str(state),
        "AVROLAKE_KAFKA_PORT": str(ports.kafka),
        "AVROLAKE_KAFKA_CONTROLLER_PORT": str(ports.kafka_controller),
        "AVROLAKE_APICURIO_PORT": str(ports.apicurio),
        "AVROLAKE_MOTO_PORT": str(ports.moto),
    }
