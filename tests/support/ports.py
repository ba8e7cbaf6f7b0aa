"""Free ports for the servers a test starts (services, edges, whole stacks), picked before they bind.

A port picked free can be taken before its server binds it. Two ways that happened are closed here:
- the same port handed out twice: the kernel's bind(0) may give a port again once its probe socket is
  closed, so two servers of one stack were told to use one port (CI lost a stack's vision service so:
  its metrics port was in use, it restarted until the test gave up);
- an outgoing connection's local port: every client socket on the machine takes one from the kernel's
  ephemeral range, so a port from that range can be in use by a connection a moment later.
So ports come from just below the ephemeral range (no connection takes those), are checked with a bind,
and are never handed out twice in one test run.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_BAND = 12000  # ports below the ephemeral range to pick from
_HANDED_OUT: set[int] = set()
_PICK = random.Random()  # its own generator: tests that seed the module's do not make ports repeat


def _band() -> range:
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):  # not Linux: the IANA ephemeral range starts at 49152
        low = 49152
    return range(max(1024, low - _BAND), low)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing holds now and that no other caller in this run was given."""
    band = _band()
    for _ in range(200):
        port = _PICK.choice(band)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port in {band.start}-{band.stop - 1} after 200 tries")
