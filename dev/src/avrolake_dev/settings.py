"""Where the embedded stack listens and keeps its files, moved by ``AVROLAKE_*`` variables.

The runtime's settings know no local address: the stack's are here, for the stack, the demo and
the tests (a shell points the commands at them through ``KAFKA_BOOTSTRAP_SERVERS``,
``SCHEMA_REGISTRY_URL`` and ``AWS_ENDPOINT_URL_GLUE``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from avrolake.errors import ConfigError
from avrolake.settings import cache_dir

__all__ = ["LocalPorts", "local_state_dir"]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a port number") from None


@dataclass(frozen=True)
class LocalPorts:
    """Loopback ports of the embedded stack, overridable through the environment."""

    kafka: int = field(default_factory=lambda: _env_int("AVROLAKE_KAFKA_PORT", 19092))
    kafka_controller: int = field(
        default_factory=lambda: _env_int("AVROLAKE_KAFKA_CONTROLLER_PORT", 19093)
    )
    apicurio: int = field(default_factory=lambda: _env_int("AVROLAKE_APICURIO_PORT", 18081))
    moto: int = field(default_factory=lambda: _env_int("AVROLAKE_MOTO_PORT", 15000))

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka}"

    @property
    def confluent_registry_url(self) -> str:
        return f"http://127.0.0.1:{self.apicurio}/apis/ccompat/v7"

    @property
    def glue_endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.moto}"


def local_state_dir() -> Path:
    """Pid files and logs of the embedded stack (``AVROLAKE_STATE_DIR``)."""
    raw = os.environ.get("AVROLAKE_STATE_DIR")
    return Path(raw).expanduser() if raw else cache_dir() / "state"
