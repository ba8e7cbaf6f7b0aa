"""Builds one container image per service of univence/registry.py that this repository implements, from
deploy/Containerfile: its extra, a CUDA base for the GPU services, and their GPU-only packages.

    python deploy/build_images.py                 # every service, with docker
    python deploy/build_images.py image edge --engine podman --tag 1.2.0
    python deploy/build_images.py --dry-run       # print the commands only

Reading the registry means a new modality gets its image without editing this file.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from univence import registry  # noqa: E402 - after the path set-up, so it runs from a checkout

CUDA_BASE = "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"


def implemented(service: registry.ServiceEntry) -> bool:
    """True when this checkout has the service's code (a modality lands with its own issue)."""
    return ROOT.joinpath(*service.module.split(".")).with_suffix(".py").is_file()


def build_command(service: registry.ServiceEntry, engine: str, tag: str) -> list[str]:
    command = [engine, "build", "-f", "deploy/Containerfile", "--build-arg", f"SERVICE={service.name}",
               "--build-arg", f"EXTRAS={service.extra}"]
    if service.gpu:
        command += ["--build-arg", f"BASE={CUDA_BASE}"]
    if service.no_deps_packages:
        command += ["--build-arg", f"NO_DEPS_PACKAGES={' '.join(service.no_deps_packages)}"]
    if service.gpu_packages:
        command += ["--build-arg", f"GPU_PACKAGES={' '.join(service.gpu_packages)}"]
    return [*command, "-t", f"univence/{service.name}:{tag}", "."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", help="which services (default: every implemented one)")
    parser.add_argument("--engine", default="docker", help="docker or podman")
    parser.add_argument("--tag", default="latest")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, build nothing")
    args = parser.parse_args(argv)
    chosen = [registry.entry(name) for name in args.services] or [s for s in registry.SERVICES if implemented(s)]
    for service in chosen:
        command = build_command(service, args.engine, args.tag)
        print(shlex.join(command), flush=True)
        if not args.dry_run:
            subprocess.run(command, cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
