"""The `univence` command as an operator meets it: `--version`, output into a closed pipe (`| head`)
without a traceback, and `univence up` choosing its profile without importing torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def univence(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "univence.cli", *args], cwd=ROOT, text=True, timeout=60,
                          **kwargs)


def test_version():
    done = univence("--version", capture_output=True)
    assert done.returncode == 0 and done.stdout.startswith("univence ")


def test_a_closed_pipe_is_not_a_traceback():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before a byte is written, as with `| head -0`
    try:
        done = univence("maintenance", "status", stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 141


def test_up_picks_its_profile_without_importing_torch():
    code = ("import sys; from univence.cli import stack; profile = stack.resolve_profile(None); "
            "print(profile, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "UNIVENCE_PROFILE": ""})
    profile, imported = done.stdout.split()
    assert profile in ("full", "tiny") and imported == "False", done.stderr
