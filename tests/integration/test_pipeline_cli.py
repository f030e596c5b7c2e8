"""The pipeline entry points as a user runs them: bad configuration is one line and a non-zero
exit within seconds; a good run drains Kafka through every stage."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from avrolake.producer.run import ProduceOptions, run_produce
from avrolake.schemas import load_versions
from avrolake.settings import ConnectionSettings, Flavor, KafkaSettings, RegistrySettings
from avrolake_dev.local import LocalStack

SCHEMAS = Path(__file__).parents[2] / "schemas" / "product"


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
]


@pytest.mark.parametrize(("args", "expected"), BAD_OPTIONS)
def test_bad_options_fail_in_one_line(args: list[str], expected: str) -> None:
    begin = time.monotonic()
    assert one_line_error(avrolake(*args, timeout=30)).startswith(expected)
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


def test_unreachable_registry_fails_fast(tmp_path: Path) -> None:
    result = avrolake(
        "silver",
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
    result = avrolake("silver", "--topic", topic, "--warehouse-dir", str(tmp_path), timeout=60)
    assert one_line_error(result) == (
        f"avrolake silver: no schema is registered for topic '{topic}': "
        "run `avrolake schemas register` first"
    )


def test_gold_before_silver_names_the_missing_table(tmp_path: Path) -> None:
    result = avrolake("gold", "--warehouse-dir", str(tmp_path))
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
    common = ["--topic", topic, "--warehouse-dir", str(tmp_path)]
    for stage in ("ingest", "silver"):
        result = avrolake(stage, *common)
        assert result.returncode == 0, result.stderr
    result = avrolake("gold", "--warehouse-dir", str(tmp_path))
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

RUNNING = re.compile(r" INFO avrolake\.cli\.stopping: avrolake-(ingest|silver) running; ")


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
        name = self.signum.name
        if self.moment == "start-up":
            return re.compile(f"{name} received before the stream started: not starting it")
        if self.group and self.signum == signal.SIGTERM:  # the JVM may end first
            return re.compile(
                f"({name} received: stopping avrolake-{stage}|"
                f"Spark stopped under avrolake-{stage} with the {name})"
            )
        return re.compile(
            f"{name} received: stopping avrolake-{stage}\n.*avrolake-{stage} stopped", re.DOTALL
        )


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
        command = [sys.executable, "-m", "avrolake", name, "--topic", topic,
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
    assert avrolake("ingest", "--topic", topic, "--warehouse-dir", str(tmp_path)).returncode == 0
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
        result = avrolake(stage, "--topic", topic, "--warehouse-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
    bronze = spark.read.format("delta").load(str(tmp_path / "bronze"))
    silver = spark.read.format("delta").load(str(tmp_path / "silver"))
    assert bronze.count() == bronze.select("partition", "offset").distinct().count() == produced
    assert silver.count() == silver.select("eventId").distinct().count() == produced
    assert not (tmp_path / "quarantine").exists() or (
        spark.read.format("delta").load(str(tmp_path / "quarantine")).count() == 0
    )
