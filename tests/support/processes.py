"""Services and edges run as their own processes, for the tests that kill them with SIGKILL (no shutdown
code runs): tests/edge/test_settlement.py and tests/edge/test_ledger_storm.py. Edges run
tests/edge/priced.py's priced route."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "crash-test-admin-token-0123456789abcdef"
ADMIN = (("x-univence-admin-token", ADMIN_TOKEN),)


@dataclass
class Process:
    """A service or edge run as its own process, killed with SIGKILL (no shutdown code runs)."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM: the process shuts down as it would in production (its shutdown code runs)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            self.popen.wait(timeout=30)

    def alive(self) -> None:
        assert self.popen is not None and self.popen.poll() is None, self.log.read_text()


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVENCE_")}
    return {**env, "PYTHONUNBUFFERED": "1", "UNIVENCE_HOME": str(tmp_path / "home")}


def accounts_process(tmp_path: Path, port: int, **settings: str) -> Process:
    env = {**base_env(tmp_path), "UNIVENCE_ACCOUNTS_PORT": str(port), "UNIVENCE_ACCOUNTS_METRICS_PORT": "0",
           "UNIVENCE_ACCOUNTS_DATABASE_URL": f"sqlite:///{tmp_path}/crash-accounts.db",
           "UNIVENCE_ACCOUNTS_ADMIN_TOKEN": ADMIN_TOKEN, "UNIVENCE_ACCOUNTS_HOLD_SWEEP_SECONDS": "0.5",
           **{f"UNIVENCE_ACCOUNTS_{k.upper()}": v for k, v in settings.items()}}
    return Process([sys.executable, "-m", "services.accounts"], env, tmp_path / "accounts.log")


def edge_process(tmp_path: Path, port: int, accounts: str, media: str, name: str = "edge", **settings: str) -> Process:
    """An edge with the priced route; each `name` has its own log and outbox (`outbox.db` for "edge")."""
    outbox = tmp_path / ("outbox.db" if name == "edge" else f"{name}-outbox.db")
    env = {**base_env(tmp_path), "UNIVENCE_EDGE_PORT": str(port), "UNIVENCE_EDGE_METRICS_PORT": "0",
           "UNIVENCE_EDGE_ACCOUNTS_ADDRESS": accounts, "UNIVENCE_EDGE_MEDIA_ADDRESS": media,
           "UNIVENCE_EDGE_AUTH_CACHE_SECONDS": "0", "UNIVENCE_EDGE_OUTBOX_PATH": str(outbox),
           "UNIVENCE_EDGE_MAINTENANCE_FILE": str(tmp_path / "maintenance"),
           **{f"UNIVENCE_EDGE_{k.upper()}": v for k, v in settings.items()}}
    return Process([sys.executable, "-m", "tests.edge.priced"], env, tmp_path / f"{name}.log")


async def serving(address: str, process: Process, seconds: float = 60) -> None:
    """Waits until the gRPC service at `address` reports SERVING."""
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        async def up() -> bool:
            process.alive()
            with contextlib.suppress(grpc.aio.AioRpcError):
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                return answer.status == health_pb2.HealthCheckResponse.SERVING
            return False

        assert await eventually(up, seconds=seconds, every=0.1), process.log.read_text()


async def answering(base_url: str, process: Process, seconds: float = 60) -> None:
    async def up() -> bool:
        process.alive()
        with contextlib.suppress(httpx.TransportError):
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{base_url}/healthz", timeout=1)).status_code == 200
        return False

    assert await eventually(up, seconds=seconds, every=0.1), process.log.read_text()


@contextlib.contextmanager
def killed_at_exit(*processes: Process) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.kill()
