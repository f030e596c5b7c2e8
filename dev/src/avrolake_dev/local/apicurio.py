"""Apicurio Registry 3 (a Quarkus app) serving the Confluent-compatible API, in-memory storage."""

from __future__ import annotations

from pathlib import Path

from avrolake_dev.local import jars
from avrolake_dev.local.jvm import java_command
from avrolake_dev.local.net import HOST, http_ok
from avrolake_dev.local.service import Service
from avrolake_dev.settings import LocalPorts


def system_properties(port: int, home: Path) -> list[str]:
    """Loopback, in-memory H2 (3.x's default storage), a small pool, files kept under ``home``."""
    settings = {
        "quarkus.http.host": HOST,
        "quarkus.http.port": str(port),
        "quarkus.http.access-log.enabled": "false",
        "quarkus.log.console.color": "false",
        "apicurio.storage.kind": "sql",
        "apicurio.storage.sql.kind": "h2",
        # the default opens 20 connections up front: most of the start-up time on two cores
        "apicurio.datasource.jdbc.initial-size": "1",
        "apicurio.datasource.jdbc.min-size": "1",
        "apicurio.import.work-dir": str(home),
        "apicurio.storage.snapshot.location": str(home),
    }
    return [f"-D{key}={value}" for key, value in settings.items()]


def service(ports: LocalPorts, home: Path) -> Service:
    return Service(
        name="apicurio",
        address=ports.confluent_registry_url,
        ports={"AVROLAKE_APICURIO_PORT": ports.apicurio},
        home=home,
        command=lambda: java_command(
            "384m", *system_properties(ports.apicurio, home), "-jar", str(jars.apicurio_runner())
        ),
        probe=lambda: http_ok(f"{ports.confluent_registry_url}/subjects"),
        state_in_memory=True,
        start_timeout=90.0,
    )
