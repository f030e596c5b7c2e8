"""``avrolake local`` as a user runs it: a subprocess, failing fast with one line.

Each test gets its own state directory and free ports, so a stack that is up stays untouched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from avrolake_dev.settings import LocalPorts
from loopback import free_ports

CLI = ["-c", "import sys; from avrolake.cli import main; sys.exit(main())"]


def isolated_env(state: Path, ports: LocalPorts, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AVROLAKE_STATE_DIR": str(state),
        "AVROLAKE_KAFKA_PORT": str(ports.kafka),
        "AVROLAKE_KAFKA_CONTROLLER_PORT": str(ports.kafka_controller),
        "AVROLAKE_APICURIO_PORT": str(ports.apicurio),
        "AVROLAKE_MOTO_PORT": str(ports.moto),
        **extra,
    }


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *CLI, "local", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture
def ports() -> LocalPorts:
    return LocalPorts(*free_ports(4))


@pytest.fixture
def taken_port() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


def test_up_without_java_fails_in_one_line(tmp_path: Path, ports: LocalPorts) -> None:
    env = isolated_env(tmp_path / "state", ports, PATH="/nonexistent")
    begin = time.monotonic()
    result = run_cli("up", env=env)
    assert time.monotonic() - begin < 15
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "avrolake local: java not found on PATH: install a JDK 17+ "
        "(apt-get install openjdk-17-jdk-headless, brew install openjdk@17)\n"
    )
    assert not (tmp_path / "state" / "run").exists()


def test_up_with_a_taken_port_fails_in_one_line(
    tmp_path: Path, ports: LocalPorts, taken_port: int
) -> None:
    env = isolated_env(tmp_path / "state", ports, AVROLAKE_APICURIO_PORT=str(taken_port))
    begin = time.monotonic()
    result = run_cli("up", env=env)
    assert time.monotonic() - begin < 15
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"avrolake local: port {taken_port} for apicurio is already in use on 127.0.0.1 by "
        f"another process; stop it or set AVROLAKE_APICURIO_PORT to a free port\n"
    )
    assert not (tmp_path / "state" / "run").exists()  # nothing was started


def test_status_down_and_logs_of_a_stack_that_never_ran(tmp_path: Path, ports: LocalPorts) -> None:
    state = tmp_path / "state"
    env = isolated_env(state, ports)

    status = run_cli("status", env=env)
    assert status.returncode == 1
    assert [line.split() for line in status.stdout.splitlines()] == [
        ["SERVICE", "ADDRESS", "PID", "HEALTH"],
        ["kafka", f"127.0.0.1:{ports.kafka}", "-", "stopped"],
        ["apicurio", f"http://127.0.0.1:{ports.apicurio}/apis/ccompat/v7", "-", "stopped"],
        ["moto", f"http://127.0.0.1:{ports.moto}", "-", "stopped"],
        ["state:", str(state)],
    ]

    down = run_cli("down", env=env)
    assert (down.returncode, down.stdout) == (0, "local stack not running: nothing to do\n")

    logs = run_cli("logs", "moto", env=env)
    assert (logs.returncode, logs.stdout) == (0, f"==> {state / 'logs' / 'moto.log'} <==\n")


def test_jars_is_quick_once_cached() -> None:
    warm = run_cli("jars", env=dict(os.environ), timeout=900)  # resolves on a cold cache
    assert warm.returncode == 0, warm.stderr
    begin = time.monotonic()
    result = run_cli("jars", env={**os.environ, "PATH": "/nonexistent"})  # no Maven to call
    assert time.monotonic() - begin < 15
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["spark", "kafka", "apicurio", "spark.jars:"]
    assert lines[-1] == "spark.jars: 15 jars beyond pyspark's own"
