"""gRPC's transport: univence.transport sets GRPC_EXPERIMENTS in every process of ours before grpc is imported,
gRPC takes it, an operator's own value wins, and a program that only uses the generated stubs keeps its own.

gRPC reads the variable once, when grpc is imported: set later, it changes nothing. So the tests check the
order in fresh processes (a finder on sys.meta_path notes the variable when grpc is first looked up), for each
of our packages' entry points and, by their source, for the benchmarks that call gRPC; and, by gRPC's own trace
of a round trip, which sockets a call then goes through."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

import univence.transport

ROOT = Path(__file__).resolve().parents[1]

_SEEN_AT_IMPORT = """
import json, os, sys
seen = []

class Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "grpc" and not seen:
            seen.append(os.environ.get("GRPC_EXPERIMENTS"))

sys.meta_path.insert(0, Finder())
import {module}
print(json.dumps(seen))
"""

_ROUND_TRIP = """
import univence.transport, asyncio, grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

async def main():
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    await server.stop(0)

asyncio.run(main())
"""


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`code` run by a fresh Python whose environment is this one's without GRPC_EXPERIMENTS (which the tests'
    own univence.transport set), and `env` over it."""
    base = {key: value for key, value in os.environ.items() if key != "GRPC_EXPERIMENTS"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["univence.cli", "edge.server", "edge.clients", "services.common.server",
                                    "tests.support.platform"])
def test_each_entry_point_sets_the_transport_before_grpc_is_imported(module: str) -> None:
    assert _seen_at_import(module) == [univence.transport.GRPC_EXPERIMENTS]


def test_the_generated_stubs_leave_the_transport_to_their_program() -> None:
    assert _seen_at_import("univence.llm.v1.llm_pb2_grpc") == [None]


def _seen_at_import(module: str) -> list[str | None]:
    """GRPC_EXPERIMENTS as it was when a fresh process importing `module` (without the variable) imported grpc."""
    done = _python(_SEEN_AT_IMPORT.format(module=module))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_benchmarks_that_call_grpc_load_univence_first() -> None:
    late = []
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        imports = [node for node in ast.parse(script.read_text()).body if isinstance(node, ast.Import | ast.ImportFrom)]
        names = [alias.name if isinstance(node, ast.Import) else node.module or ""
                 for node in imports for alias in node.names]
        first_grpc = next((i for i, name in enumerate(names) if name.split(".")[0] == "grpc"), None)
        if first_grpc is not None and "univence.transport" not in names[:first_grpc]:
            late.append(script.name)
    assert late == []


@pytest.mark.skipif(tuple(int(part) for part in grpc.__version__.split(".")[:2]) < (1, 80),
                    reason="before grpcio 1.80 gRPC's default for Python was these sockets already")
@pytest.mark.parametrize("experiments, expected, other", [
    (None, "tcp_posix.cc", "posix_endpoint.cc"),  # univence's setting: the sockets of grpcio < 1.80
    ("", "posix_endpoint.cc", "tcp_posix.cc"),  # an operator's value (here: gRPC's default) wins
])
def test_a_call_goes_through_the_transport_set(experiments: str | None, expected: str, other: str) -> None:
    env = {"GRPC_TRACE": "tcp,event_engine_endpoint", "GRPC_VERBOSITY": "debug"}
    if experiments is not None:
        env["GRPC_EXPERIMENTS"] = experiments
    done = _python(_ROUND_TRIP, env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stderr
    assert other not in done.stderr
