"""Port checks against real sockets."""

from __future__ import annotations

import socket

import pytest

from avrolake.errors import LocalStackError
from avrolake_dev.local.net import port_free, require_free_ports, tcp_open


@pytest.fixture
def listening() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server
    server.close()


def test_a_listening_port_is_taken_and_freed_on_close(listening: socket.socket) -> None:
    port = listening.getsockname()[1]
    assert not port_free(port)
    assert tcp_open(port)
    listening.close()
    assert port_free(port)
    assert not tcp_open(port)


def test_a_taken_port_names_the_service_and_the_variable(listening: socket.socket) -> None:
    port = listening.getsockname()[1]
    with pytest.raises(LocalStackError) as caught:
        require_free_ports("apicurio", {"AVROLAKE_APICURIO_PORT": port})
    assert str(caught.value) == (
        f"port {port} for apicurio is already in use on 127.0.0.1 by another process; "
        "stop it or set AVROLAKE_APICURIO_PORT to a free port"
    )


def test_an_out_of_range_port_is_rejected() -> None:
    with pytest.raises(LocalStackError) as caught:
        require_free_ports("moto", {"AVROLAKE_MOTO_PORT": 70000})
    assert (
        str(caught.value) == "AVROLAKE_MOTO_PORT=70000 is not a valid port; pick one in 1024-65535"
    )
