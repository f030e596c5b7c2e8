"""The lifecycle under chaos, bounded to minutes: nothing lost, nothing twice, every value right.

Both flavors run side by side on a private stack of its own (free ports, its own state directory:
the broker restart and the registry pause disturb no other test), each with its own topic and
tables:

1. ``avrolake produce`` writes mixed-version events at a steady rate through everything below,
   with a manifest of what the broker acknowledged (the ground truth); it is stopped with SIGTERM
   at the end, as its contract allows;
2. ``avrolake ingest`` and ``avrolake silver`` run as continuous streams in their own processes,
   as the bundle's jobs run them, and are SIGKILLed together with their Spark JVM in the middle of
   a micro-batch (each twice), then started again;
3. the broker is stopped and started again on its data while everything runs;
4. both registry processes are paused (SIGSTOP) for at least a minute while silver runs, and
   until each silver has committed a batch meanwhile: silver rides it out in the same process
   (with the last known reader);
5. once silver has everything, the streams are killed one last time and the medallion job
   (silver available-now, then gold) runs twice.

Then, per flavor, bronze holds exactly the manifest's Kafka offsets, silver exactly its events with
their values (the reader's defaults for older versions), quarantine nothing, and gold exactly the
manifest's aggregates, unchanged by the second medallion run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from avrolake.pipeline.gold_io import run_gold
from avrolake.pipeline.runners import run_silver
from avrolake.pipeline.tables import TableLocations
from avrolake.pipeline.triggers import TriggerSettings
from avrolake.producer.manifest import read_manifest
from avrolake.registry import open_registry
from avrolake.settings import ConnectionSettings, Flavor, KafkaSettings, RegistrySettings
from avrolake_dev.local import LocalStack
from avrolake_dev.local.proc import spawn
from avrolake_dev.settings import LocalPorts
from example_pipeline import DEFINITIONS_FILE, product_pipeline
from loopback import free_ports

REPO = Path(__file__).resolve().parents[2]
FLAVORS = ("confluent", "glue")
PRODUCE_S = 1800  # an upper bound: the producers are stopped (SIGTERM) once the chaos is over
RATE = 30  # events per second, per flavor
REGISTRY_PAUSE_S = 60
POLL_S = 2.0
WAIT_S = 420.0  # any single wait; four Spark processes on two shared cores
INTERVAL = "3 seconds"  # micro-batch interval of the continuous streams
V3_DEFAULTS = {"size": "none", "color": "none", "price": None, "updatedAt": 0}
FIELDS = ["productId", "eventId", "type", "size", "color", "timestamp", "price", "updatedAt"]
GLUE_REGISTRY = "avrolake-soak"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def fail(message: str, *stages: Stage) -> NoReturn:
    logs = "\n".join(f"--- {s.name} log (tail) ---\n{s.tail()}" for s in stages)
    raise AssertionError(f"{message}\n{logs}")


class Stage:
    """``python -m avrolake <stage> …`` as a process group of its own (Python and its Spark JVM),
    so a SIGKILL takes both, as a lost cluster node would."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        root: Path,
        checkpoint: str | None = None,
    ) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = root / f"{name}.log"
        self.checkpoint = root / "warehouse" / "_checkpoints" / (checkpoint or name)
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.name} at {time.strftime('%X')} ===\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "avrolake", *self.args],
                env=self.env,
                cwd=REPO,  # the schemas/ directory the producer reads
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at_commit = self.batches()[1]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process group and wait until every member is gone."""
        assert self.process is not None
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(60)
        deadline = time.monotonic() + 60
        while _group_alive(self.pid):
            assert time.monotonic() < deadline, f"{self.name}'s process group survived SIGKILL"
            time.sleep(0.2)

    def batches(self) -> tuple[int, int]:
        """The highest batch id planned (offsets) and committed (commits); -1 for none."""

        def highest(kind: str) -> int:
            folder = self.checkpoint / kind
            names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
            return max((int(n) for n in names if n.isdigit()), default=-1)

        return highest("offsets"), highest("commits")

    def wait_committed(self) -> None:
        """Wait until this run has committed a batch of its own."""
        wait_until(
            lambda: self.batches()[1] > self.started_at_commit, f"{self.name}: a batch", self
        )

    def kill_mid_batch(self, rng: random.Random, *, kill: bool = True) -> int:
        """Once this run has committed a batch of its own, SIGKILL it while the next is planned but
        not committed, a random moment into it. Returns the batch id it was killed in (or, with
        ``kill=False``, the batch under way, the process left running)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            if not self.alive():
                fail(f"{self.name} exited ({self.process and self.process.returncode})", self)
            planned, committed = self.batches()
            if committed > self.started_at_commit and planned > committed:
                if not kill:
                    return planned
                time.sleep(rng.uniform(0.0, 0.8))
                planned, committed = self.batches()
                if planned > committed:
                    self.kill()
                    self.kills += 1
                    return planned
            if time.monotonic() > deadline:
                fail(f"{self.name}: no batch under way within {WAIT_S:.0f}s", self)
            time.sleep(0.05)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """Kafka, Apicurio and moto on free ports with their own state: stopped afterwards."""
    stack = LocalStack(LocalPorts(*free_ports(4)), tmp_path / "state")
    try:
        stack.up(claim=True)
        yield stack
    finally:
        for name in ("apicurio", "moto"):  # a paused registry must take its SIGTERM
            record = stack.running(name)
            if record is not None:
                os.killpg(record.pid, signal.SIGCONT)
        stack.down()


def restart_broker(stack: LocalStack) -> None:
    """Stop the broker (SIGTERM, then SIGKILL after a grace period) and start the same command on
    the data it has, as a supervisor restarting a crashed process would. Not ``stack.up()``: until
    it keeps a stopped broker's data (issue 9), it formats the storage as a fresh cluster."""
    kafka = stack.service("kafka")
    assert stack.down(["kafka"], grace=20.0) == ["kafka"]
    record = spawn(
        kafka.command(), log_path=stack.log_path("kafka"), cwd=kafka.home, address=kafka.address
    )
    record.write(stack.pid_path("kafka"))
    deadline = time.monotonic() + WAIT_S
    while not kafka.probe():
        assert stack.running("kafka") is not None, "the broker exited while restarting"
        assert time.monotonic() < deadline, f"broker not ready within {WAIT_S:.0f}s"
        time.sleep(0.5)


def wait_until(condition: Callable[[], bool], what: str, *stages: Stage) -> None:
    """Poll ``condition``; fail at once if a stage that should run has exited."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        for stage in stages:
            if not stage.alive():
                fail(f"{stage.name} exited while waiting for {what}", stage)
        if time.monotonic() > deadline:
            fail(f"not within {WAIT_S:.0f}s: {what}", *stages)
        time.sleep(POLL_S)


def started(table: Any) -> bool:
    """Whether a table another process writes has its first commit (a file check: cheap)."""
    return any((Path(table.path) / "_delta_log").glob("*.json"))


def ingested_all(ingest: Stage, manifest: list[dict]) -> bool:
    """Whether ingest has committed a batch ending at or past every acknowledged offset, read from
    its checkpoint (a file read, not a Spark job on the busy machine)."""
    committed = ingest.batches()[1]
    if committed < 0:
        return False
    lines = (ingest.checkpoint / "offsets" / str(committed)).read_text().splitlines()
    ends = {
        int(part): end for topic in json.loads(lines[-1]).values() for part, end in topic.items()
    }
    return all(ends.get(line["partition"], -1) > line["offset"] for line in manifest)


def count(spark: SparkSession, table: Any) -> int:
    """Rows of a table another query or process writes (0 before its first commit). Not
    ``table.exists``: Delta caches a log it found empty, and keeps answering False for it."""
    if not any((Path(table.path) / "_delta_log").glob("*.json")):
        return 0
    return table.read(spark).count()


def expected_gold(manifest: list[dict]) -> dict[tuple, tuple]:
    """Gold's rows computed from the manifest alone: per (event_date, type, color, size), events,
    distinct products, first and last event time (unix seconds)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for line in manifest:
        value = {**V3_DEFAULTS, **line["value"]}
        day = dt.datetime.fromtimestamp(value["timestamp"], dt.UTC).date()
        groups[(day, value["type"], value["color"], value["size"])].append(value)
    return {
        key: (
            len(values),
            len({v["productId"] for v in values}),
            min(v["timestamp"] for v in values),
            max(v["timestamp"] for v in values),
        )
        for key, values in groups.items()
    }


def gold_rows(spark: SparkSession, tables: TableLocations) -> dict[tuple, tuple]:
    rows = tables.gold.read(spark).select(
        "event_date",
        "type",
        "color",
        "size",
        "events",
        "distinct_products",
        F.unix_seconds("first_event_time").alias("first"),
        F.unix_seconds("last_event_time").alias("last"),
    )
    out = {}
    for r in rows.collect():
        key = (r.event_date, r.type, r.color, r.size)
        assert key not in out, f"gold group {key} twice"
        out[key] = (r.events, r.distinct_products, r.first, r.last)
    return out


@dataclass
class Pipeline:
    """One flavor's producer, streams and tables."""

    flavor: str
    settings: ConnectionSettings
    tables: TableLocations
    manifest: Path
    producer: Stage
    ingest: Stage
    silver: Stage

    @property
    def streams(self) -> tuple[Stage, Stage]:
        return self.ingest, self.silver

    @property
    def stages(self) -> tuple[Stage, Stage, Stage]:
        return self.producer, self.ingest, self.silver


def pipeline(flavor: str, stack: LocalStack, root: Path) -> Pipeline:
    settings = ConnectionSettings(
        kafka=KafkaSettings(bootstrap_servers=stack.bootstrap_servers, topic=f"soak-{flavor}"),
        registry=RegistrySettings(
            flavor=Flavor(flavor),
            url=stack.confluent_registry_url,
            glue_registry_name=GLUE_REGISTRY,
            region="us-east-1",
            endpoint_url=stack.glue_endpoint_url,
        ),
    )
    connection = [
        "--flavor", flavor,
        "--topic", settings.kafka.topic,
        "--bootstrap-servers", stack.bootstrap_servers,
        "--registry-url", stack.confluent_registry_url,
        "--glue-endpoint-url", stack.glue_endpoint_url,
        "--glue-registry", GLUE_REGISTRY,
        "--region", "us-east-1",
    ]  # fmt: skip
    env = {**os.environ, **AWS_ENV, "PYTHONUNBUFFERED": "1"}
    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / "warehouse"
    tables = ["--warehouse-dir", str(warehouse)]
    live = ["--trigger", "continuous", "--interval", INTERVAL]
    manifest = root / "manifest.jsonl"
    produce = [
        "produce", *connection, "--duration", str(PRODUCE_S), "--rate", str(RATE),
        "--mix", "v1=0.2,v2=0.5,v3=0.3", "--seed", "5", "--manifest", str(manifest),
        *(["--glue-compression"] if flavor == "glue" else []),
    ]  # fmt: skip
    return Pipeline(
        flavor,
        settings,
        TableLocations.in_directory(warehouse),
        manifest,
        Stage(f"{flavor}-producer", produce, env, root),
        Stage(f"{flavor}-ingest", ["ingest", *connection, *tables, *live], env, root, "bronze"),
        Stage(
            f"{flavor}-silver",
            ["silver", "--definitions", str(DEFINITIONS_FILE), *connection, *tables, *live],
            env,
            root,
            f"silver/{product_pipeline().name}",  # silver's checkpoint is per pipeline
        ),
    )


def together(*calls: Callable[[], object]) -> None:
    """Run ``calls`` at the same time (one thread each); re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


def kill_and_restart(stage: Stage, seed: int) -> Callable[[], None]:
    def run() -> None:
        stage.kill_mid_batch(random.Random(seed))
        stage.start()

    return run


def test_both_flavors_through_kills_a_broker_restart_and_a_registry_pause(
    private_stack: LocalStack,
    spark: SparkSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in AWS_ENV.items():  # the medallion runs in this process
        monkeypatch.setenv(key, value)
    began = time.monotonic()
    stack = private_stack
    pipes = [pipeline(flavor, stack, tmp_path / flavor) for flavor in FLAVORS]
    stages = [stage for p in pipes for stage in p.stages]
    try:
        for p in pipes:
            p.producer.start()
        for p in pipes:
            wait_until(lambda p=p: p.manifest.exists() and p.manifest.stat().st_size > 0,
                       f"{p.flavor}: the first acknowledged events", p.producer)  # fmt: skip
            p.ingest.start()
        for p in pipes:
            wait_until(lambda p=p: started(p.tables.bronze),
                       f"{p.flavor}: bronze", p.producer, p.ingest)  # fmt: skip
            p.silver.start()

        # Every stream killed in the middle of a micro-batch, and started again.
        together(
            *[kill_and_restart(s, n) for n, s in enumerate(x for p in pipes for x in p.streams)]
        )

        # The broker goes away and comes back on its data, under the producers and both streams
        # (silver may still be starting: it needs no broker).
        together(*[p.ingest.wait_committed for p in pipes])  # past its broker preflight
        restart_broker(stack)
        restarted = [p.ingest.batches()[1] for p in pipes]
        for p, before in zip(pipes, restarted, strict=True):
            wait_until(lambda p=p, n=before: p.ingest.batches()[1] > n + 1,
                       f"{p.flavor}: ingest after the broker restart", *p.stages)  # fmt: skip

        # The registries stop answering for at least a minute, and until each silver has
        # committed a batch meanwhile: silver keeps running in the same process (the last known
        # reader). Ingest, which needs no registry, is killed in the outage.
        registries = [stack.running(name) for name in ("apicurio", "moto")]
        together(*[lambda p=p: p.silver.kill_mid_batch(random.Random(), kill=False) for p in pipes])
        before = {p.flavor: (p.silver.pid, p.silver.batches()[1]) for p in pipes}
        outage = time.monotonic()
        for record in registries:
            assert record is not None
            os.killpg(record.pid, signal.SIGSTOP)
        try:
            together(*[kill_and_restart(p.ingest, 20 + n) for n, p in enumerate(pipes)])
            for p in pipes:
                wait_until(lambda p=p: p.silver.batches()[1] > before[p.flavor][1],
                           f"{p.flavor}: silver batch in the outage", *p.stages)  # fmt: skip
            time.sleep(max(0.0, REGISTRY_PAUSE_S - (time.monotonic() - outage)))  # its length
        finally:
            for record in registries:
                assert record is not None
                os.killpg(record.pid, signal.SIGCONT)
        outage_s = time.monotonic() - outage
        for p in pipes:
            assert p.silver.pid == before[p.flavor][0] and p.silver.alive()
            assert "last known reader" in p.silver.log.read_text(errors="replace")

        # Silver killed once more, then the producers are asked to stop.
        together(*[kill_and_restart(p.silver, 30 + n) for n, p in enumerate(pipes)])
        for p in pipes:
            assert p.producer.process is not None
            p.producer.process.send_signal(signal.SIGTERM)  # stop, flush, close the manifest
        for p in pipes:
            assert p.producer.process is not None
            if (code := p.producer.process.wait(120)) != 0:
                fail(f"{p.flavor}: producer exited {code}", p.producer)
        manifests = {p.flavor: read_manifest(p.manifest) for p in pipes}
        for p in pipes:
            produced = len(manifests[p.flavor])
            wait_until(lambda p=p: ingested_all(p.ingest, manifests[p.flavor]),
                       f"{p.flavor}: bronze complete", *p.streams)  # fmt: skip
            wait_until(
                lambda p=p, n=produced: (
                    count(spark, p.tables.silver) + count(spark, p.tables.quarantine) >= n
                ),
                f"{p.flavor}: silver complete",
                *p.streams,
            )
        streams_s = time.monotonic() - began
    finally:
        for stage in stages:
            if stage.alive():
                stage.kill()

    # The medallion job, twice: silver available-now, then gold.
    drain = TriggerSettings()
    golds: dict[str, list[dict]] = {p.flavor: [] for p in pipes}
    for _ in range(2):
        for p in pipes:
            product = product_pipeline(p.settings.kafka.topic)
            query = run_silver(
                spark, product, open_registry(p.settings.registry), p.tables.space, drain
            )
            assert query.awaitTermination(WAIT_S) and query.exception() is None
            run_gold(spark, p.tables.space, [product], drain)
            golds[p.flavor].append(gold_rows(spark, p.tables))

    for p in pipes:
        check(spark, p, manifests[p.flavor], golds[p.flavor])
    print(f"soak: {', '.join(f'{f} {len(m)} events' for f, m in manifests.items())}; "
          f"registry outage {outage_s:.0f}s, streams {streams_s:.0f}s, "
          f"total {time.monotonic() - began:.0f}s")  # fmt: skip


def check(spark: SparkSession, p: Pipeline, manifest: list[dict], golds: list[dict]) -> None:
    """Exact counts and values of every table against the producer's manifest."""
    produced = len(manifest)
    assert (p.ingest.kills, p.silver.kills) == (2, 2)
    produce_log = p.producer.log.read_text(errors="replace")
    assert f"sent {produced}, failed 0," in produce_log, p.producer.tail()
    assert produced >= 100 * RATE, p.flavor  # the producer kept going through it all

    # Bronze: exactly the acknowledged Kafka records, once each.
    bronze = p.tables.bronze.read(spark).select("partition", "offset").collect()
    assert len(bronze) == produced, p.flavor
    assert {(r.partition, r.offset) for r in bronze} == {
        (line["partition"], line["offset"]) for line in manifest
    }

    # Silver: every event once, with its values; nothing quarantined.
    assert count(spark, p.tables.quarantine) == 0, p.flavor
    rows = p.tables.silver.read(spark).select(
        *[F.unix_millis(c).alias(c) if c == "updatedAt" else F.col(c) for c in FIELDS],
        "schema_version",
        "partition",
        "offset",
    )
    got = {}
    for row in rows.collect():
        value = row.asDict()
        assert value["eventId"] not in got, f"{p.flavor}: {value['eventId']} twice in silver"
        value["price"] = None if value["price"] is None else str(value["price"])
        got[value["eventId"]] = value
    expected = {
        line["eventId"]: {
            **V3_DEFAULTS,
            **line["value"],
            "schema_version": line["version"],
            "partition": line["partition"],
            "offset": line["offset"],
        }
        for line in manifest
    }
    assert len(expected) == produced, p.flavor
    assert got == expected, p.flavor

    # Gold: the manifest's aggregates, and a second medallion run changes nothing.
    assert golds[0] == golds[1] == expected_gold(manifest), p.flavor
