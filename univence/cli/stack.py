"""`univence up` (every service as its own supervised process) and `univence serve NAME` (one).

`univence up` says at start which data folder the stack uses (univence.home: UNIVENCE_HOME or the
user's data directory, the same from any working directory) and where each service listens
(univence.registry.address: a moved port shows here as the services and the edge see it)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from univence import registry
from univence.cli import services
from univence.home import HOME_ENV, ensure_data_home
from univence.telemetry import configure_logging

log = logging.getLogger("univence.up")
MAX_BACKOFF_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0


def add_commands(commands: argparse._SubParsersAction) -> None:
    up = commands.add_parser("up", help="run the whole stack on this machine, supervised")
    up.add_argument("--profile", choices=["auto", "full", "tiny"], default=None,
                    help="model profile for every modality service (default: full with a CUDA GPU, else tiny)")
    up.add_argument("--config", help="TOML config file (sets UNIVENCE_CONFIG for every service)")
    up.add_argument("--only", help="comma-separated services to run (default: every installed one)")
    up.add_argument("--drain-seconds", type=float, default=30.0, help="how long services get to finish on stop")
    up.set_defaults(run=run_up)

    serve = commands.add_parser("serve", help="run one service in the foreground (what a container runs)")
    serve.add_argument("service", choices=list(registry.BY_NAME))
    serve.add_argument("--config", help="TOML config file")
    serve.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    if args.config:
        os.environ["UNIVENCE_CONFIG"] = str(Path(args.config).resolve())
    services.run_service(args.service)
    return 0


@dataclass
class Child:
    """One supervised service process."""

    name: str
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 1.0
    restart_at: float | None = field(default=None)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "univence.cli", "serve", self.name], env=self.env, start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def gpu_present() -> bool:
    """Whether this machine shows an NVIDIA GPU to its processes: the driver's device files, unless
    CUDA_VISIBLE_DEVICES hides every GPU. Read from the file system, not by importing torch (about
    230 MB and seconds for the supervisor); each service still resolves its own device with torch and
    reports a GPU it cannot use."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def resolve_profile(requested: str | None) -> str:
    """The profile for modality services, and a line saying why."""
    profile = requested or os.environ.get("UNIVENCE_PROFILE") or "auto"
    if profile != "auto":
        return profile
    chosen = "full" if gpu_present() else "tiny"
    log.info("profile: %s (%s)", chosen, "a CUDA GPU is present" if chosen == "full" else
             "no CUDA GPU: tiny random models, outputs are noise; use --profile full on a GPU machine")
    return chosen


def plan(args: argparse.Namespace) -> list[str]:
    modalities = services.available_modalities()
    names = [s.name for s in registry.SERVICES if s.kind != "modality" or s.name in modalities]
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - set(registry.BY_NAME)
        if unknown:
            raise SystemExit(f"unknown services: {', '.join(sorted(unknown))}")
        names = [n for n in names if n in wanted]
    return names


def child_env(name: str, names: list[str], profile: str | None, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    key = f"UNIVENCE_{name.upper()}_"
    env.setdefault(key + "DRAIN_SECONDS", str(args.drain_seconds))
    if name in registry.MODALITIES and profile:
        env.setdefault(key + "PROFILE", profile)
    if name == "edge":
        env.setdefault("UNIVENCE_EDGE_MODALITIES", json.dumps([n for n in names if n in registry.MODALITIES]))
    return env


def run_up(args: argparse.Namespace) -> int:
    configure_logging("info")
    if args.config:  # the supervisor reads it too: where each service listens
        os.environ["UNIVENCE_CONFIG"] = str(Path(args.config).resolve())
    # Resolved once here, so every child uses the same folder even if one changes directory.
    os.environ[HOME_ENV] = str(ensure_data_home())
    log.info("data folder: %s (databases, media, the maintenance flag, the admin token; %s moves it)",
             os.environ[HOME_ENV], HOME_ENV)
    names = plan(args)
    profile = resolve_profile(args.profile) if any(n in registry.MODALITIES for n in names) else None
    missing = [m for m in registry.MODALITIES if m not in services.available_modalities()]
    log.info("starting %s%s", ", ".join(f"{n} ({registry.address(n)})" for n in names),
             f" (not in this install yet: {', '.join(missing)})" if missing else "")
    children = [Child(name, child_env(name, names, profile, args)) for name in names]
    stopping = False

    def request_stop(signum: int, _frame) -> None:
        nonlocal stopping
        if not stopping:
            log.info("%s received: stopping the stack", signal.Signals(signum).name)
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    for child in children:
        child.start()
    if "edge" in names:
        log.info("Univence API on http://%s  (create a key: univence accounts create-user EMAIL; "
                 "univence accounts create-key EMAIL)", registry.address("edge"))
    while not stopping:
        supervise(children)
        time.sleep(0.2)
    shutdown(children, args.drain_seconds)
    return 0


def supervise(children: list[Child]) -> None:
    """Restarts any child that died, with exponential backoff that resets once it stays up."""
    now = time.monotonic()
    for child in children:
        if child.alive():
            if now - child.started_at > STABLE_AFTER_SECONDS:
                child.backoff = 1.0
            continue
        if child.restart_at is None:
            code = child.process.returncode if child.process else None
            child.restart_at = now + child.backoff
            log.warning("%s exited (code %s); restarting in %.0fs", child.name, code, child.backoff)
            child.backoff = min(child.backoff * 2, MAX_BACKOFF_SECONDS)
        elif now >= child.restart_at:
            child.restarts += 1
            child.start()


def shutdown(children: list[Child], drain_seconds: float) -> None:
    """SIGTERM in reverse start order (the edge first, state last), then SIGKILL what outlives the drain."""
    for child in reversed(children):
        if child.alive():
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(timeout=drain_seconds + 5)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()
    log.info("stack stopped")
