"""benchmarks/timeline_probe wraps edge functions by name from outside; a rename in the edge would leave the
benchmark without its marks. Loaded as a process's sitecustomize, it must find every step it wraps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_probe_finds_every_step_it_wraps(tmp_path):
    out = tmp_path / "marks"
    environment = {**os.environ, "TIMELINE_OUT": str(out),
                   "PYTHONPATH": os.pathsep.join((str(ROOT / "benchmarks" / "timeline_probe"), str(ROOT)))}
    loaded = subprocess.run([sys.executable, "-c", "import sys; print('sitecustomize' in sys.modules)"],
                            env=environment, capture_output=True, text=True, timeout=120, check=True)
    assert loaded.stdout.strip() == "True"
    error = out.with_name("marks.error")
    assert not error.exists(), error.read_text()
