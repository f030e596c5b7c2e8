"""A single-node Apache Kafka broker in KRaft mode (broker and controller in one JVM).

Storage is formatted only when it is not formatted yet (no ``meta.properties`` in the log dir) or
was formatted for other ports: a broker that crashed or was stopped restarts on its topics and
records. The stack discards them (``discard_data``) when Apicurio and moto start afresh with it,
because those keep their state in memory: the old records would name schema ids no registry knows.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from avrolake.errors import LocalStackError
from avrolake_dev.local import jars
from avrolake_dev.local.jvm import java_command
from avrolake_dev.local.net import HOST, tcp_open
from avrolake_dev.local.service import Service
from avrolake_dev.settings import LocalPorts

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
# the full configuration dump at every client and server start
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""

log = logging.getLogger(__name__)

# librdkafka reports every refused connection while the broker boots; the probe only needs yes/no.
_probe_log = logging.getLogger("avrolake_dev.local.kafka.probe")
_probe_log.setLevel(logging.CRITICAL)


def server_properties(ports: LocalPorts, data_dir: Path) -> str:
    """The broker's ``server.properties``: one node, loopback only, replication factors of 1."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"PLAINTEXT://{HOST}:{ports.kafka},CONTROLLER://{HOST}:{ports.kafka_controller}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{ports.kafka}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.quorum.bootstrap.servers": f"{HOST}:{ports.kafka_controller}",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _jvm(home: Path, max_heap: str, *args: str) -> list[str]:
    log4j = f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}"
    return java_command(max_heap, log4j, "-cp", jars.kafka_classpath(), *args)


def data_dir(home: Path) -> Path:
    return home / "data"


def formatted(home: Path) -> bool:
    """Whether the storage under ``home`` was formatted (KRaft writes ``meta.properties``)."""
    return (data_dir(home) / "meta.properties").is_file()


def discard_data(home: Path) -> None:
    """Remove every topic and the cluster's metadata: the next start formats fresh storage."""
    shutil.rmtree(data_dir(home), ignore_errors=True)


def _prepare(ports: LocalPorts, home: Path) -> None:
    data = data_dir(home)
    config = home / "server.properties"
    properties = server_properties(ports, data)
    home.mkdir(parents=True, exist_ok=True)
    (home / "log4j2.properties").write_text(_LOG4J2)
    # The controller's own address is part of the formatted metadata (--standalone): storage made
    # for other ports is not reused.
    if formatted(home) and config.is_file() and config.read_text() == properties:
        log.info("kafka: restarting on its existing storage in %s", data)
        return
    if data.exists():
        log.info("kafka: storage in %s is for other ports or half-formatted: formatting", data)
    discard_data(home)
    config.write_text(properties)
    # "--cluster-id=…" as one argument: a random id may start with "-", which the tool's parser
    # would take for an option
    command = _jvm(
        home,
        "256m",
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        f"--cluster-id={_cluster_id()}",
        "-c",
        str(home / "server.properties"),
    )
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise LocalStackError("formatting Kafka storage took over 60s; retry") from None
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise LocalStackError(f"formatting Kafka storage failed: {last[-1]}")


def ready(port: int) -> bool:
    """TCP first (cheap, quiet), then a real metadata request that must list the broker."""
    if not tcp_open(port):
        return False
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    probe_config: dict[str, Any] = {"bootstrap.servers": f"{HOST}:{port}", "logger": _probe_log}
    admin = AdminClient(probe_config)
    try:
        return bool(admin.list_topics(timeout=2).brokers)
    except KafkaException:
        return False


def service(ports: LocalPorts, home: Path) -> Service:
    return Service(
        name="kafka",
        address=ports.bootstrap_servers,
        ports={
            "AVROLAKE_KAFKA_PORT": ports.kafka,
            "AVROLAKE_KAFKA_CONTROLLER_PORT": ports.kafka_controller,
        },
        home=home,
        prepare=lambda: _prepare(ports, home),
        discard_data=lambda: discard_data(home),
        command=lambda: _jvm(home, "512m", "kafka.Kafka", str(home / "server.properties")),
        probe=lambda: ready(ports.kafka),
        start_timeout=60.0,
    )
