"""Repository hygiene that CI enforces: generated stubs match the protos, ruff is clean, the CI script
runs exactly the README's test command, and no service imports another service or the edge."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_stubs_are_up_to_date():
    done = subprocess.run([sys.executable, "protos/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_is_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```(?:bash|sh)?\n(.*?)\n```", readme, flags=re.S)
    assert len(commands) >= 2, "README.md must start with the two set-up commands"
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_services_import_only_common_and_themselves_and_the_edge_no_service():
    for package in (ROOT / "services").iterdir():
        if not package.is_dir() or package.name.startswith("__"):
            continue
        for file in package.rglob("*.py"):
            for name in _imports(file):
                if name.startswith("edge"):
                    raise AssertionError(f"{file} imports the edge ({name})")
                if name.startswith("services.") and package.name != "common":
                    owner = name.split(".")[1]
                    assert owner in ("common", package.name), f"{file} imports another service ({name})"
    for file in (ROOT / "edge").rglob("*.py"):
        assert not any(name.startswith("services") for name in _imports(file)), f"{file} imports a service"


def test_no_extra_pulls_torchvision():
    """torchvision has no CPU build that works with torch 2.13 here, and transformers imports it when
    present, which breaks every model service: no dependency may bring it in."""
    import importlib.util

    assert importlib.util.find_spec("torchvision") is None, "an installed package pulled in torchvision"
