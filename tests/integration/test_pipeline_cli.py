"""The pipeline entry points as a user runs them: bad configuration is one line and a non-zero
exit within seconds; a good run drains Kafka through every stage."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Producer as ConfluentProducer
from pyspark.sql import DataFrame

from avrolake.producer.run import ProduceOptions, run_produce
from avrolake.schemas import load_versions
from avrolake.settings import ConnectionSettings, Flavor, KafkaSettings, RegistrySettings
from avrolake_dev.local import LocalStack

SCHEMAS = Path(__file__).parents[2] / "schemas" / "product"
EXAMPLE = Path(__file__).parents[2] / "pipelines.yml"  # the Product example's definitions
DEFINED = ["--definitions", str(EXAMPLE)]


def avrolake(
    *args: str, timeout: float = 240, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """``python -m avrolake *args``, without the variables named in ``unset``."""
    return subprocess.run(
        [sys.executable, "-m", "avrolake", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={k: v for k, v in os.environ.items() if k not in unset},
    )


A_FILE = Path(__file__)


def _sysfs_mkdir_error() -> str:
    """What the OS says to a mkdir in /sys: EPERM for root, EACCES for anyone else."""
    try:
        os.mkdir("/sys/avrolake")
    except OSError as error:
        return error.strerror
    raise AssertionError("/sys accepted a directory")


SYSFS_MKDIR = _sysfs_mkdir_error()


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
    (
        ["ingest", "--max-offsets-per-trigger", "0"],
        "avrolake ingest: --max-offsets-per-trigger 0 must be at least 1 (or left out: no limit)",
    ),
    (
        ["ingest", "--max-offsets-per-trigger", "-3"],
        "avrolake ingest: --max-offsets-per-trigger -3 must be at least 1 (or left out: no limit)",
    ),
    (
        ["silver", "--registry-outage-timeout", "0"],
        "avrolake silver: argument --registry-outage-timeout: '0' is not a positive number of "
        "seconds (see avrolake silver --help)",
    ),
    (
        ["ingest", "--max-offsets-per-trigger", "ten"],
        "avrolake ingest: argument --max-offsets-per-trigger: invalid int value: 'ten' "
        "(see avrolake ingest --help)",
    ),
    (  # this very file stands in for "a regular file where a directory should be"
        ["ingest", "--warehouse-dir", f"{A_FILE}/warehouse"],
        f"avrolake ingest: warehouse dir {A_FILE}/warehouse cannot be created: {A_FILE} is a "
        "file, not a directory; choose a directory you can write with --warehouse-dir",
    ),
    (
        ["silver", "--checkpoint-root", f"{A_FILE}/checkpoints"],
        f"avrolake silver: checkpoint root {A_FILE}/checkpoints cannot be created: {A_FILE} is "
        "a file, not a directory; choose a directory you can write with --checkpoint-root",
    ),
    (  # sysfs: read-only even to root, and tests may run as root
        ["ingest", "--warehouse-dir", "/sys"],
        "avrolake ingest: warehouse dir /sys is not writable: Permission denied; choose a "
        "directory you can write with --warehouse-dir",
    ),
    (
        ["silver", "--checkpoint-root", "/sys/avrolake"],
        f"avrolake silver: checkpoint root /sys/avrolake cannot be created: {SYSFS_MKDIR}; "
        "choose a directory you can write with --checkpoint-root",
    ),
    (
        ["gold"],
        "avrolake gold: no pipeline definitions (the topics and tables to run): pass "
        "--definitions FILE (e.g. pipelines.yml) or set AVROLAKE_DEFINITIONS",
    ),
    (
        ["silver", "--definitions", "/nonexistent/pipelines.yml"],
        "avrolake silver: cannot read the pipeline definitions /nonexistent/pipelines.yml: No "
        "such file or directory",
    ),
    (
        ["replay", *DEFINED, "--pipeline", "orders"],
        "avrolake replay: --pipeline orders: no such pipeline in the definitions (defined: "
        "products)",
    ),
]


@pytest.mark.parametrize(("args", "expected"), BAD_OPTIONS)
def test_bad_options_fail_in_one_line(args: list[str], expected: str) -> None:
    begin = time.monotonic()
    result = avrolake(*args, timeout=30, unset=("AVROLAKE_DEFINITIONS",))
    assert one_line_error(result).startswith(expected)
    assert time.monotonic() - begin < 15  # no Spark was started to find out


def test_unreachable_broker_fails_fast(tmp_path: Path) -> None:
    result = avrolake(
        "ingest",
        "--bootstrap-servers",
        "127.0.0.1:9",
        "--warehouse-dir",
        str(tmp_path),
        timeout=30,
        unset=("SCHEMA_REGISTRY_URL",),  # ingest copies bytes: it needs no registry
    )
    assert one_line_error(result).startswith("avrolake ingest: cannot reach Kafka at 127.0.0.1:9")


def test_unknown_topic_fails_fast(local_stack, tmp_path: Path) -> None:
    topic = f"missing-{uuid.uuid4().hex[:8]}"
    result = avrolake("ingest", "--topic", topic, "--warehouse-dir", str(tmp_path), timeout=30)
    assert one_line_error(result) == (
        f"avrolake ingest: topic '{topic}' does not exist on {local_stack.bootstrap_servers}: "
        "check --topic, or run `avrolake produce` first"
    )


def test_unknown_topic_of_the_definitions_fails_fast(local_stack, tmp_path: Path) -> None:
    """Ingest checks every topic it is to subscribe to, and names the one that is missing."""
    there = f"there-{uuid.uuid4().hex[:8]}"
    assert produce_events(local_stack, there, 1, seed=1, register=True) == 1
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    definitions = two_pipelines(tmp_path, there, missing)
    result = avrolake("ingest", "--definitions", str(definitions), "--warehouse-dir",
                      str(tmp_path), timeout=30)  # fmt: skip
    assert one_line_error(result).startswith(
        f"avrolake ingest: topic '{missing}' does not exist on {local_stack.bootstrap_servers}"
    )


def test_unreachable_registry_fails_fast(tmp_path: Path) -> None:
    result = avrolake(
        "silver",
        *DEFINED,
        "--registry-url",
        "http://127.0.0.1:9",
        "--warehouse-dir",
        str(tmp_path),
        timeout=60,
        unset=("KAFKA_BOOTSTRAP_SERVERS",),  # silver reads bronze: it needs no broker
    )
    assert one_line_error(result).startswith(
        "avrolake silver: cannot reach the schema registry at http://127.0.0.1:9"
    )


def test_topic_without_schemas_fails_fast(local_stack, tmp_path: Path) -> None:
    topic = f"unregistered-{uuid.uuid4().hex[:8]}"
    result = avrolake(
        "silver", *DEFINED, "--topic", topic, "--warehouse-dir", str(tmp_path), timeout=60
    )
    line = one_line_error(result)
    assert line.startswith(f"avrolake silver: no schema is registered for topic '{topic}' under ")
    assert line.endswith(": run `avrolake schemas register` first")


def test_gold_before_silver_names_the_missing_table(tmp_path: Path) -> None:
    result = avrolake("gold", *DEFINED, "--warehouse-dir", str(tmp_path))
    assert one_line_error(result) == (
        f"avrolake gold: table delta.`{tmp_path}/silver` does not exist yet: "
        "run `avrolake silver` first"
    )


def test_entry_points_drain_a_topic_through_every_stage(local_stack, spark, tmp_path: Path) -> None:
    """The commands the bundle's jobs run, end to end, as separate processes."""
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
    common = [*DEFINED, "--topic", topic, "--warehouse-dir", str(tmp_path)]
    for stage in ("ingest", "silver"):
        result = avrolake(stage, *common)
        assert result.returncode == 0, result.stderr
    result = avrolake("gold", *DEFINED, "--warehouse-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr

    silver = spark.read.format("delta").load(str(tmp_path / "silver"))
    gold = spark.read.format("delta").load(str(tmp_path / "gold"))
    assert silver.count() == silver.select("eventId").distinct().count() == 500
    assert gold.groupBy().sum("events").first()[0] == 500


def produce_events(stack: LocalStack, topic: str, count: int, seed: int, register: bool) -> int:
    """``count`` events through the library serializers; returns how many the broker acked."""
    connection = ConnectionSettings(
        kafka=KafkaSettings(stack.bootstrap_servers, topic),
        registry=RegistrySettings(Flavor.CONFLUENT, url=stack.confluent_registry_url),
    )
    options = ProduceOptions(count=count, seed=seed, progress=False, register=register)
    summary = run_produce(connection, load_versions(SCHEMAS), options)
    assert summary.failed == 0
    return summary.sent


# -- stopping a continuous stage ----------------------------------------------------------------

RUNNING = re.compile(r" INFO avrolake\.cli\.stopping: avrolake-(ingest|silver-products) running; ")
QUERY = {"ingest": "avrolake-ingest", "silver": "avrolake-silver-products"}  # silver: per pipeline


@dataclass(frozen=True)
class Round:
    """When both stages get which signal: while Spark starts (the JVM is up, the query is not),
    ``moment`` seconds after the query started, or as soon as silver finished a batch (with data
    flowing, the next one is under way: a foreachBatch call to let finish); to the process alone,
    or to its whole process group (Ctrl-C in a terminal, `timeout`, some supervisors), which
    reaches Spark's JVM too."""

    moment: str | float
    signum: signal.Signals = signal.SIGTERM
    group: bool = False

    def expected(self, stage: str) -> re.Pattern[str]:
        name, query = self.signum.name, QUERY[stage]
        if self.moment == "start-up":
            return re.compile(f"{name} received before the stream started: not starting it")
        if self.group and self.signum == signal.SIGTERM:  # the JVM may end first
            return re.compile(
                f"({name} received: stopping {query}|Spark stopped under {query} with the {name})"
            )
        return re.compile(f"{name} received: stopping {query}\n.*{query} stopped", re.DOTALL)


# Ingest and silver run side by side under a producer, so a signal finds each of them reading,
# writing, in a foreachBatch call, or idle. Five SIGTERMs per stage, then a Ctrl-C.
ROUNDS = [
    Round("start-up"),
    Round(0.0),
    Round(1.0),
    Round(2.5, group=True),
    Round("after a silver batch"),
    Round(1.5, signal.SIGINT, group=True),
]


class Producer(threading.Thread):
    """Produces batches of events until stopped; ``sent`` counts what the broker acknowledged."""

    def __init__(self, stack: LocalStack, topic: str) -> None:
        super().__init__(daemon=True)
        self.stack, self.topic = stack, topic
        self.sent = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        seed = 1000
        try:
            while not self.done.is_set():
                self.sent += produce_events(self.stack, self.topic, 40, seed, register=False)
                seed += 1
                time.sleep(0.2)
        except BaseException as error:  # reported by the test thread
            self.error = error

    def stop(self) -> int:
        self.done.set()
        self.join(60)
        assert self.error is None, self.error
        return self.sent


class Stage:
    """One continuous ``avrolake <stage>`` process, its stderr in a file."""

    def __init__(self, name: str, topic: str, warehouse: Path, log: Path, *, session: bool) -> None:
        self.name, self.log, self.warehouse = name, log, warehouse
        self.silver_commits_at_start = self.silver_commits()
        command = [sys.executable, "-m", "avrolake", name, *DEFINED, "--topic", topic,
                   "--warehouse-dir", str(warehouse), "--trigger", "continuous",
                   "--interval", "1 second"]  # fmt: skip
        with log.open("w") as err:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=err, start_new_session=session
            )

    def stderr(self) -> str:
        return self.log.read_text()

    def wait_for(self, ready: Callable[[], bool], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr()
            if ready():
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.stderr()}")

    def jvm_started(self) -> bool:
        children = subprocess.run(["ps", "-o", "comm=", "--ppid", str(self.process.pid)],
                                  capture_output=True, text=True, check=False).stdout  # fmt: skip
        return "java" in children.split()

    def running(self) -> bool:
        return bool(RUNNING.search(self.stderr()))

    def silver_commits(self) -> int:
        """Commits of the silver table: each silver batch adds at least one."""
        return len(list((self.warehouse / "silver" / "_delta_log").glob("*.json")))

    def ready_for(self, moment: str | float) -> Callable[[], bool]:
        if moment == "start-up":
            return self.jvm_started
        if moment == "after a silver batch" and self.name == "silver":
            return lambda: self.silver_commits() > self.silver_commits_at_start
        return self.running


def test_signals_stop_continuous_stages_cleanly_and_restarts_resume(
    local_stack, spark, tmp_path: Path
) -> None:
    """SIGTERM at varied moments (once to the whole process group), then a Ctrl-C: exit 0, no py4j
    error, no trace; each restart resumes from the checkpoint, so bronze and silver end up
    holding exactly what was produced, once."""
    topic = f"sig-{uuid.uuid4().hex[:8]}"
    produced = produce_events(local_stack, topic, 100, seed=1, register=True)
    ingest = avrolake("ingest", *DEFINED, "--topic", topic, "--warehouse-dir", str(tmp_path))
    assert ingest.returncode == 0, ingest.stderr
    producer = Producer(local_stack, topic)
    producer.start()
    try:
        for index, round_ in enumerate(ROUNDS):
            stages = [
                Stage(name, topic, tmp_path, tmp_path / f"{name}-{index}.err", session=round_.group)
                for name in ("ingest", "silver")
            ]
            for stage in stages:
                stage.wait_for(stage.ready_for(round_.moment))
            if isinstance(round_.moment, float):
                time.sleep(round_.moment)
            for stage in stages:
                if round_.group:
                    os.killpg(stage.process.pid, round_.signum)
                else:
                    stage.process.send_signal(round_.signum)
            for stage in stages:
                assert stage.process.wait(120) == 0, stage.stderr()
                err = stage.stderr()
                for marker in ("Traceback", "py4j", "Py4J", "Exception", "\tat "):
                    assert marker not in err, f"{round_} {stage.name}:\n{err}"
                assert round_.expected(stage.name).search(err), f"{round_} {stage.name}:\n{err}"
    finally:
        produced += producer.stop()

    for stage in ("ingest", "silver"):  # drain what the last round left
        result = avrolake(stage, *DEFINED, "--topic", topic, "--warehouse-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
    bronze = spark.read.format("delta").load(str(tmp_path / "bronze"))
    silver = spark.read.format("delta").load(str(tmp_path / "silver"))
    assert bronze.count() == bronze.select("partition", "offset").distinct().count() == produced
    assert silver.count() == silver.select("eventId").distinct().count() == produced
    assert not (tmp_path / "quarantine").exists() or (
        spark.read.format("delta").load(str(tmp_path / "quarantine")).count() == 0
    )


# -- several pipelines -----------------------------------------------------------------------------


def pipeline_a(topic: str) -> dict:
    """The Product schema keyed by eventId, with a gold table of events per type."""
    return {
        "name": "shop_a",
        "topic": topic,
        "records": [{
            "silver_table": "a_silver",
            "key": ["eventId"],
            "event_time": {"field": "timestamp", "unit": "seconds"},
            "gold": {"table": "a_gold", "group_by": ["type"],
                     "aggregates": [{"name": "events", "function": "count"}]},
        }],
    }  # fmt: skip


def pipeline_b(topic: str) -> dict:
    """The Product schema keyed by the Kafka coordinates, default tables, no gold."""
    return {"name": "shop_b", "topic": topic, "records": [{}]}


def write_definitions(path: Path, *pipelines: dict) -> Path:
    path.write_text(yaml.safe_dump({"pipelines": list(pipelines)}, sort_keys=False))
    return path


def two_pipelines(directory: Path, topic_a: str, topic_b: str) -> Path:
    return write_definitions(directory / "two.yml", pipeline_a(topic_a), pipeline_b(topic_b))


def manifest(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def produce_with_manifest(stack: LocalStack, topic: str, count: int, path: Path) -> list[dict]:
    connection = ConnectionSettings(
        kafka=KafkaSettings(stack.bootstrap_servers, topic),
        registry=RegistrySettings(Flavor.CONFLUENT, url=stack.confluent_registry_url),
    )
    options = ProduceOptions(count=count, seed=7, progress=False, manifest=path)
    summary = run_produce(connection, load_versions(SCHEMAS), options)
    assert (summary.sent, summary.failed) == (count, 0)
    return manifest(path)


def wait_for_lines(
    process: subprocess.Popen, log: Path, *patterns: str, timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        assert process.poll() is None, text
        if all(re.search(pattern, text) for pattern in patterns):
            return
        time.sleep(0.1)
    raise AssertionError(f"not seen in {timeout}s: {patterns}\n{log.read_text()}")


def test_silver_runs_every_pipeline_in_one_process(local_stack, spark, tmp_path: Path) -> None:
    """Two pipelines of one definitions file, with different keys, tables and gold, end to end
    through the commands: ingest picks a topic added to the file up from its first offset on the
    same checkpoint; one silver process runs both streams (available-now: it ends when both
    drained); SIGTERM stops both; one failing stops the other and fails the command naming it."""
    suffix = uuid.uuid4().hex[:8]
    topic_a, topic_b = f"shop-a-{suffix}", f"shop-b-{suffix}"
    sent_a = produce_with_manifest(local_stack, topic_a, 300, tmp_path / "a.jsonl")
    sent_b = produce_with_manifest(local_stack, topic_b, 200, tmp_path / "b.jsonl")
    only_a = write_definitions(tmp_path / "one.yml", pipeline_a(topic_a))
    both = two_pipelines(tmp_path, topic_a, topic_b)
    tables = ["--warehouse-dir", str(tmp_path)]

    def run(stage: str, definitions: Path) -> str:
        result = avrolake(stage, "--definitions", str(definitions), *tables)
        assert result.returncode == 0, result.stderr
        return result.stderr

    run("ingest", only_a)
    run("ingest", both)  # the new topic, on the same checkpoint
    bronze = spark.read.format("delta").load(str(tmp_path / "bronze"))
    assert {r.topic: r["count"] for r in bronze.groupBy("topic").count().collect()} == {
        topic_a: 300, topic_b: 200,
    }  # fmt: skip
    err = run("silver", both)
    for name in ("avrolake-silver-shop_a", "avrolake-silver-shop_b"):
        assert f"{name} running; " in err, err
    run("gold", both)

    def load(table: str) -> DataFrame:
        return spark.read.format("delta").load(str(tmp_path / table))

    a_silver, b_silver = load("a_silver"), load("shop_b_silver")
    assert sorted(r.eventId for r in a_silver.select("eventId").collect()) == sorted(
        e["eventId"] for e in sent_a
    )
    assert sorted(
        (r.partition, r.offset) for r in b_silver.select("partition", "offset").collect()
    ) == sorted((e["partition"], e["offset"]) for e in sent_b)
    expected_gold = Counter(
        (dt.datetime.fromtimestamp(e["value"]["timestamp"], dt.UTC).date(), e["value"]["type"])
        for e in sent_a
    )
    gold = {(r.event_date, r.type): r.events for r in load("a_gold").collect()}
    assert gold == dict(expected_gold)
    assert not (tmp_path / "shop_b_gold").exists()

    # Continuous: SIGTERM stops both streams, each at a checkpoint.
    log = tmp_path / "silver-continuous.err"
    command = [sys.executable, "-m", "avrolake", "silver", "--definitions", str(both), *tables,
               "--trigger", "continuous", "--interval", "1 second"]  # fmt: skip
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)
    wait_for_lines(
        process, log, "avrolake-silver-shop_a running; ", "avrolake-silver-shop_b running; "
    )
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(120) == 0, log.read_text()
    err = log.read_text()
    for name in ("avrolake-silver-shop_a", "avrolake-silver-shop_b"):
        assert f"SIGTERM received: stopping {name}\n" in err, err
        assert f"{name} stopped\n" in err, err
    for marker in ("Traceback", "py4j", "Exception", "\tat "):
        assert marker not in err, err

    # One failing stream (B's quarantine cannot be written: its _delta_log is a file) stops A.
    quarantine = tmp_path / "shop_b_quarantine"
    shutil.rmtree(quarantine, ignore_errors=True)
    quarantine.mkdir()
    (quarantine / "_delta_log").write_text("not a directory")
    tombstone = ConfluentProducer({"bootstrap.servers": local_stack.bootstrap_servers})
    tombstone.produce(topic_b, key=b"P0001", value=None)  # bound for quarantine: a null value
    assert tombstone.flush(30) == 0
    run("ingest", both)
    failed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert one_line_error(failed) == (
        "avrolake silver: query avrolake-silver-shop_b failed: ParentNotDirectoryException: "
        f"Parent path is not a directory: file:{quarantine}/_delta_log"
    )
    assert "avrolake-silver-shop_b failed: stopping avrolake-silver-shop_a\n" in failed.stderr, (
        failed.stderr
    )
    assert "avrolake-silver-shop_a stopped\n" in failed.stderr, failed.stderr
    assert load("a_silver").count() == 300
