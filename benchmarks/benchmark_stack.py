"""The real stack for benchmarks: `univence up --only <services>` on free loopback ports (each set as the
service's own port: the edge finds them), with a temp data folder, rate limits off and quiet logs; ready
once /readyz says every asked-for service serves. Admin RPCs need `ADMIN` as call metadata.

`env` adds settings (UNIVENCE_EDGE_CREDIT_LEASES=true…), and `source` runs every process from another
source tree (a folder holding edge/, services/ and univence/, e.g. `git archive <commit> | tar -x -C DIR`),
so one benchmark run can compare an earlier design with the working tree on the same machine."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import psutil
from PIL import Image

from univence import admin
from univence.accounts.v1 import accounts_pb2 as apb

PLATFORM = ("accounts", "media")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # the working tree: edge/, services/, univence/
sys.path.insert(1, ROOT)
# The tests' port picker (never the same port twice, none from the ephemeral range that clients take),
# where the stack's ports used to come from bind(0), which may hand a port out again once it is closed.
from tests.support.ports import free_port  # noqa: E402

# The image model the benchmarks' edits ask for (the tiny profile serves it under the same name).
EDIT_MODEL = "black-forest-labs/FLUX.2-klein-4B"
# The stack's admin token (admin RPCs are closed by default), and the call metadata that carries it.
ADMIN_TOKEN = secrets.token_urlsafe(32)
ADMIN = admin.metadata(ADMIN_TOKEN)


@contextlib.contextmanager
def running_stack(modalities: tuple[str, ...] = (), *, profile: str | None = None, timeout: float = 180,
                  env: dict[str, str] | None = None, source: str | None = None) -> Iterator[dict[str, int]]:
    """Yields the ports of accounts, media, each modality and the edge, `edge_pid`: the edge's process
    (for its CPU time), and `supervisor_pid`: the `univence up` process above them all."""
    services = (*PLATFORM, *modalities)
    ports = {name: free_port() for name in (*services, "edge")}
    env = {**os.environ, **(env or {}), "UNIVENCE_EDGE_PORT": str(ports["edge"]),
           "UNIVENCE_EDGE_RATE_LIMIT_PER_MINUTE": "0", "UNIVENCE_EDGE_LOG_LEVEL": "WARNING",
           "UNIVENCE_ACCOUNTS_ADMIN_TOKEN": ADMIN_TOKEN}
    # The edge is told every address too: an edge from before the one-port setting (a --baseline-src tree)
    # does not find the services from their own ports.
    env["UNIVENCE_EDGE_ACCOUNTS_ADDRESS"] = f"127.0.0.1:{ports['accounts']}"
    env["UNIVENCE_EDGE_MEDIA_ADDRESS"] = f"127.0.0.1:{ports['media']}"
    env["UNIVENCE_EDGE_MODALITY_ADDRESSES"] = json.dumps({name: f"127.0.0.1:{ports[name]}" for name in modalities})
    env["UNIVENCE_EDGE_MODALITIES"] = json.dumps(list(modalities))  # what `up` gives its edge; side_edge's too
    for name in services:
        env[f"UNIVENCE_{name.upper()}_PORT"] = str(ports[name])
        env[f"UNIVENCE_{name.upper()}_METRICS_PORT"] = "0"
        env[f"UNIVENCE_{name.upper()}_LOG_LEVEL"] = "WARNING"
    command = [sys.executable, "-m", "univence.cli", "up", "--only", ",".join((*services, "edge")),
               "--drain-seconds", "2", *(["--profile", profile] if profile else [])]
    if source is not None:
        env["PYTHONPATH"] = _python_path(os.path.abspath(source))
    with tempfile.TemporaryDirectory() as workdir:
        env["UNIVENCE_HOME"] = os.path.join(workdir, "home")
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            _wait_ready(ports["edge"], services, timeout)
            _ENVIRONMENTS[ports["edge"]] = env
            yield {**ports, "edge_pid": _child_pid(process.pid, "edge"), "supervisor_pid": process.pid}
        finally:
            _ENVIRONMENTS.pop(ports["edge"], None)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


# The settings each running stack was started with, by its edge's port (side_edge starts more edges so).
_ENVIRONMENTS: dict[int, dict[str, str]] = {}


@contextlib.contextmanager
def side_edge(ports: dict[str, int], source: str | None = None, timeout: float = 120,
              env: dict[str, str] | None = None) -> Iterator[dict[str, int]]:
    """One more edge process on a running stack's services (`python -m edge`, the stack's settings and `env`
    over them, its own port and data folder), from `source` (another source tree) or the working tree; yields
    its `port` and `pid`. Two of them, one per tree (or per setting), measure two designs side by side on the
    same services."""
    env = {**_ENVIRONMENTS[ports["edge"]], "UNIVENCE_EDGE_METRICS_PORT": "0", **(env or {})}
    port = free_port()
    env["UNIVENCE_EDGE_PORT"] = str(port)
    env["PYTHONPATH"] = _python_path(os.path.abspath(source) if source else ROOT)
    with tempfile.TemporaryDirectory() as workdir:
        env["UNIVENCE_HOME"] = os.path.join(workdir, "home")
        process = subprocess.Popen([sys.executable, "-m", "edge"], cwd=workdir, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_ready(port, (), timeout)
            yield {"port": port, "pid": process.pid}
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


@contextlib.contextmanager
def floor_proxy(ports: dict[str, int], timeout: float = 60) -> Iterator[dict[str, int]]:
    """benchmarks/floor_proxy.py on a running stack's media, image and llm services (the least an HTTP →
    gRPC hop can cost here); yields its `port` and `pid`."""
    port = free_port()
    command = [sys.executable, os.path.join(HERE, "floor_proxy.py"), "--port", str(port),
               *(arg for name in ("media", "image", "llm") for arg in (f"--{name}", f"127.0.0.1:{ports[name]}"))]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": _python_path(ROOT)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the floor proxy did not start") from None
                time.sleep(0.2)
        yield {"port": port, "pid": process.pid}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _python_path(tree: str) -> str:
    """`tree` first on the module path, then whatever PYTHONPATH this process was given (where a machine's
    own packages are not enough, e.g. wheels installed apart on a device machine: benchmarks/device/)."""
    return os.pathsep.join(filter(None, (tree, os.environ.get("PYTHONPATH"))))


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


def pin_edge(ports: dict[str, int], edge_cpus: set[int], other_cpus: set[int],
             alone: dict[int, set[int]] | None = None) -> None:
    """Every thread of the edge process onto `edge_cpus`, those of each process in `alone` (pid → CPUs: the
    floor proxy) onto its own, and every other thread of the stack and of this process onto `other_cpus`:
    the edge measured as on a machine where it has cores of its own (threads started later inherit their
    creator's CPUs)."""
    cpus = {ports["edge_pid"]: edge_cpus, **(alone or {})}
    supervisor = psutil.Process(ports["supervisor_pid"])
    for process in (supervisor, *supervisor.children(recursive=True), psutil.Process(),
                    *map(psutil.Process, alone or {})):
        for thread in process.threads():
            os.sched_setaffinity(thread.id, cpus.get(process.pid, other_cpus))


def _child_pid(supervisor: int, name: str) -> int:
    """The process `univence up` runs service `name` in (`univence.cli serve <name>`)."""
    for child in psutil.Process(supervisor).children(recursive=True):
        if child.cmdline()[-2:] == ["serve", name]:
            return child.pid
    raise SystemExit(f"no {name} process under the stack's supervisor")


async def user_with_key(accounts, email: str, *, premium: bool = False, credits_mc: int = 0) -> tuple[str, str]:
    """A new user of the stack (`accounts`: an AccountsService stub), premium or not and granted `credits_mc`,
    and the secret of an API key of theirs: (user id, secret)."""
    user = (await accounts.CreateUser(apb.CreateUserRequest(email=email, premium=premium), metadata=ADMIN)).user
    if credits_mc:
        await accounts.GrantCredits(apb.GrantCreditsRequest(user=user.user_id, amount_mc=credits_mc), metadata=ADMIN)
    secret = (await accounts.CreateApiKey(apb.CreateApiKeyRequest(user=user.user_id), metadata=ADMIN)).secret
    return user.user_id, secret


def edit_request(side: int = 64) -> tuple[bytes, dict]:
    """The picture the benchmarks edit, and the priced edit of it they send the edge (JSON, b64_json
    answer): (PNG bytes, body). Its direct twin is EditImagesRequest(model=EDIT_MODEL, prompt=body["prompt"],
    input_images=[picture], width=side, height=side, num_inference_steps=1, seed=1, n=1)."""
    picture = png(side)
    return picture, {"model": EDIT_MODEL, "prompt": "make it red", "input_images": [base64.b64encode(picture).decode()],
                     "width": side, "height": side, "num_steps": 1, "seed": 1, "response_format": "b64_json"}


def png(side: int) -> bytes:
    """A plain `side` by `side` PNG, the picture the benchmarks edit and store."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()
