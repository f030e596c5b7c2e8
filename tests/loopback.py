"""Loopback ports for tests that start private services or need an address nobody answers on."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free at the moment of asking (bound together, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def closed_port() -> int:
    """A port with no listener: connections to it are refused at once."""
    return free_ports(1)[0]
