"""A served process freezes its startup heap out of garbage collection once it is ready (univence.process):
the edge once its startup is done, a service once its models are loaded, and a service whose load failed
not at all. Each runs in a process of its own, as it is served (a test process runs many apps)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def frozen_after(code: str, tmp_path: Path) -> int:
    env = {**os.environ, "UNIVENCE_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    env.pop("UNIVENCE_CONFIG", None)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_a_served_edge_freezes_its_startup_heap_once_started(tmp_path):
    assert frozen_after("""
        import asyncio, gc
        from edge.server import serving_app
        app = serving_app()
        async def main():
            assert gc.get_freeze_count() == 0
            async with app.router.lifespan_context(app):
                print(gc.get_freeze_count())
        asyncio.run(main())
        """, tmp_path) > 10_000


def test_a_service_freezes_once_loaded_and_not_when_its_load_failed(tmp_path):
    code = """
        import asyncio, gc
        from services.common.server import _freeze_once_loaded
        class Runtime:
            async def wait_loaded(self):
                await asyncio.sleep(0.01)
                assert gc.get_freeze_count() == 0  # not before the models are in
                if FAILED:
                    raise RuntimeError("the model failed to load")
        asyncio.run(_freeze_once_loaded(Runtime()))
        print(gc.get_freeze_count())
        """
    assert frozen_after("FAILED = False\n" + textwrap.dedent(code), tmp_path) > 1_000
    assert frozen_after("FAILED = True\n" + textwrap.dedent(code), tmp_path) == 0
