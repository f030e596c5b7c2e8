"""moto's server mode: the AWS Glue (Schema Registry) API in memory, run by this interpreter."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from avrolake.errors import ConfigError
from avrolake_dev.local.net import HOST, http_ok
from avrolake_dev.local.service import Service
from avrolake_dev.settings import LocalPorts


def command(port: int) -> list[str]:
    """This interpreter runs moto, not a ``moto_server`` on PATH: it is the venv that has it."""
    if importlib.util.find_spec("flask") is None or importlib.util.find_spec("moto") is None:
        raise ConfigError("moto[server] is not installed: run `uv sync --all-extras`")
    return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]


def service(ports: LocalPorts, home: Path) -> Service:
    return Service(
        name="moto",
        address=ports.glue_endpoint_url,
        ports={"AVROLAKE_MOTO_PORT": ports.moto},
        home=home,
        command=lambda: command(ports.moto),
        probe=lambda: http_ok(f"{ports.glue_endpoint_url}/moto-api/"),
        needs_java=False,
        state_in_memory=True,
        start_timeout=30.0,
    )
