"""The test suite's free ports (tests/support/ports.py): a stack's servers never share one, and none is a
port an outgoing connection may hold."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.ports import free_port


def test_a_port_is_never_handed_out_twice_and_none_is_ephemeral():
    ports = [free_port() for _ in range(400)]
    assert len(set(ports)) == len(ports)
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert max(ports) < ephemeral_low
    with socket.socket() as server:  # each is free
        server.bind(("127.0.0.1", ports[-1]))
