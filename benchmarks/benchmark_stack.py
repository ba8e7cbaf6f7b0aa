"""The real stack for benchmarks: `univence up --only <services>` on free loopback ports, in a temp
folder, with rate limits off and quiet logs; ready once /readyz says every asked-for service serves."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx

PLATFORM = ("accounts", "media")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_stack(modalities: tuple[str, ...] = (), *, profile: str | None = None,
                  timeout: float = 180) -> Iterator[dict[str, int]]:
    """Yields the ports of accounts, media, each modality and the edge."""
    services = (*PLATFORM, *modalities)
    ports = {name: free_port() for name in (*services, "edge")}
    env = {**os.environ, "UNIVENCE_EDGE_PORT": str(ports["edge"]), "UNIVENCE_EDGE_RATE_LIMIT_PER_MINUTE": "0",
           "UNIVENCE_EDGE_LOG_LEVEL": "WARNING",
           "UNIVENCE_EDGE_ACCOUNTS_ADDRESS": f"127.0.0.1:{ports['accounts']}",
           "UNIVENCE_EDGE_MEDIA_ADDRESS": f"127.0.0.1:{ports['media']}",
           "UNIVENCE_EDGE_MODALITY_ADDRESSES": json.dumps({m: f"127.0.0.1:{ports[m]}" for m in modalities})}
    for name in services:
        env[f"UNIVENCE_{name.upper()}_PORT"] = str(ports[name])
        env[f"UNIVENCE_{name.upper()}_METRICS_PORT"] = "0"
        env[f"UNIVENCE_{name.upper()}_LOG_LEVEL"] = "WARNING"
    command = [sys.executable, "-m", "univence.cli", "up", "--only", ",".join((*services, "edge")),
               "--drain-seconds", "2", *(["--profile", profile] if profile else [])]
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            _wait_ready(ports["edge"], services, timeout)
            yield ports
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def _wait_ready(edge_port: int, services: tuple[str, ...], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"http://127.0.0.1:{edge_port}/readyz", timeout=2)
            if ready.status_code == 200 and all(ready.json()["services"].get(s) == "SERVING" for s in services):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the stack ({', '.join(services)}) did not become ready in {timeout:.0f}s")
