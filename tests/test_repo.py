"""Repository hygiene that CI enforces: generated stubs match the protos, ruff is clean, the CI script
runs exactly the README's test command, no service imports another service or the edge, and every
modality folder has the same shape (services/README.md, "Adding a modality")."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.modality import ModalitySettings
from univence.registry import MODALITIES, entry

ROOT = Path(__file__).resolve().parents[1]
# What each file of services/<modality>/ holds: config.py the settings, server.py the definition and
# main(), servicer.py the RPCs, catalog.py the public model names, requests.py proto -> checked domain
# request, tiny.py the tiny-profile builder, fixtures.py the service started for tests; plus the engine.
CANONICAL = ("__init__.py", "__main__.py", "config.py", "server.py", "servicer.py", "catalog.py", "requests.py",
             "tiny.py", "fixtures.py")
BUILT = [name for name in MODALITIES if (ROOT / "services" / name).is_dir()]


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


def test_the_built_modalities_are_checked():
    assert {"image", "llm"} <= set(BUILT)


@pytest.mark.parametrize("name", BUILT)
def test_a_modality_folder_has_the_canonical_files(name):
    folder = ROOT / "services" / name
    missing = [f for f in CANONICAL if not (folder / f).is_file()]
    assert not missing, f"services/{name}/ lacks {missing} (see services/README.md)"
    assert (folder / "pipelines.py").is_file() or (folder / "backends" / "__init__.py").is_file(), \
        f"services/{name}/ has no engine: pipelines.py or backends/"


@pytest.mark.parametrize("name", BUILT)
def test_a_modality_runs_on_the_modality_layer_with_the_registry_s_ports(name):
    config = importlib.import_module(f"services.{name}.config")
    settings = [c for c in vars(config).values()
                if isinstance(c, type) and issubclass(c, ModalitySettings) and c.__module__ == config.__name__]
    assert len(settings) == 1, f"services/{name}/config.py defines one ModalitySettings subclass"
    fields = settings[0].model_fields
    assert settings[0].section == name
    assert (fields["port"].default, fields["metrics_port"].default) == (entry(name).port, entry(name).metrics_port)
    server = importlib.import_module(entry(name).module)
    assert callable(server.definition) and callable(server.main)
