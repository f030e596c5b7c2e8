"""Loopback port checks and one-shot health probes, each bounded by a timeout."""

from __future__ import annotations

import errno
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping

from avrolake.errors import LocalStackError

HOST = "127.0.0.1"


def port_free(port: int) -> bool:
    """Whether a server could bind ``127.0.0.1:port`` now (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def require_free_ports(service: str, ports: Mapping[str, int]) -> None:
    """Raise ``LocalStackError`` for the first port in ``ports`` (env var → port) already bound."""
    for env, port in ports.items():
        if not 0 < port < 65536:
            raise LocalStackError(f"{env}={port} is not a valid port; pick one in 1024-65535")
        if not port_free(port):
            raise LocalStackError(
                f"port {port} for {service} is already in use on {HOST} by another process; "
                f"stop it or set {env} to a free port"
            )


def tcp_open(port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


# Loopback never goes through an HTTP proxy, whatever http_proxy says.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET url`` answers 200 within ``timeout`` seconds."""
    try:
        with _direct.open(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
