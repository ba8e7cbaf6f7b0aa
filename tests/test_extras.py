"""Each install extra declares what its service imports: `pip install '.[media]'` alone must be able to
run `univence serve media`.

The check is static and complete: starting from the module that runs a service (univence/registry.py),
it follows every project import (including imports inside functions) and collects the third-party
packages reached; each must come from the base dependencies or the service's extra, directly or as a
dependency of one of them (read from the installed distributions' metadata).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from univence import registry

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("univence", "services", "edge")
# Imported only where installed, behind a find_spec check or an ImportError fallback, and installed apart
# (vLLM brings its own CUDA torch on GPU machines; the OTLP exporter only where spans are exported;
# TurboDiffusion's `rcm` and `modify_model` from its repo on GPU machines, services/video/backends/turbo.py).
OPTIONAL = {"vllm", "opentelemetry.exporter", "rcm", "modify_model"}
# Installed with `pip install --no-deps` (univence/registry.py: no_deps_packages) by both README commands
# and the images, because their metadata requires something that breaks this environment.
INSTALLED_APART = {Requirement(p).name for s in registry.SERVICES for p in s.no_deps_packages}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def declared(extra: str) -> set[tuple[str, frozenset[str]]]:
    """(distribution, its extras) that the base dependencies and `extra` name, following `univence[...]`."""
    project = _pyproject()
    extras = project["optional-dependencies"]
    found = {(_key(r.name), frozenset(r.extras)) for r in map(Requirement, project["dependencies"])}
    pending, seen = [extra], set()
    while pending:
        current = pending.pop()
        seen.add(current)
        for requirement in map(Requirement, extras[current]):
            if _key(requirement.name) == "univence":
                pending += [e for e in requirement.extras if e not in seen]
            else:
                found.add((_key(requirement.name), frozenset(requirement.extras)))
    return found


@cache
def _requires(distribution: str, extras: frozenset[str]) -> frozenset[tuple[str, frozenset[str]]]:
    """What installing `distribution[extras]` installs along (markers evaluated for this machine)."""
    try:
        requirements = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return frozenset()
    found = set()
    for requirement in map(Requirement, requirements):
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in (extras or {""})):
            found.add((_key(requirement.name), frozenset(requirement.extras)))
    return frozenset(found)


def closure(names: set[tuple[str, frozenset[str]]]) -> set[str]:
    """The distributions installed by installing `names`, by normalized name."""
    found, pending = set(), list(names)
    while pending:
        item = pending.pop()
        if item not in found:
            found.add(item)
            pending += _requires(*item)
    return {name for name, _ in found}


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    for candidate in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _top_level_nodes(tree: ast.Module) -> list[ast.AST]:
    """The statements that run at import time (`if TYPE_CHECKING:` blocks left out), with their children."""
    nodes: list[ast.AST] = []
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
            continue
        nodes += ast.walk(statement)
    return nodes


def reached_imports(start: str) -> set[str]:
    """Every module name imported by `start` and the project modules it reaches. The service's own package
    counts every import, also those inside functions; shared code (univence/, services/common/) counts what
    it imports at import time: it imports what only some services need inside the functions they call
    (e.g. Pillow in univence/imaging.py), which the calling service's own imports then show."""
    own = start.rsplit(".", 1)[0] if start.count(".") > 1 else start.split(".")[0]
    outside, pending, seen = set(), [start], set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        file = _module_file(module)
        if file is None:
            continue
        package = module if file.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(file.read_text())
        nodes = ast.walk(tree) if module == own or module.startswith(own + ".") else _top_level_nodes(tree)
        for node in nodes:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] in PROJECT:
                    pending.append(name)
                elif name:
                    outside.add(name)
    return outside


def distributions_of(imports: set[str]) -> dict[str, set[str]]:
    """Third-party import name -> the distributions that provide it (standard library left out)."""
    provided = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for name in imports:
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        if any(name == o or name.startswith(o + ".") for o in OPTIONAL):
            continue
        found[top] = {_key(d) for d in provided.get(top, [])}
    return found


def _present(module: str) -> bool:
    return _module_file(module) is not None


@pytest.mark.parametrize("service", [s for s in registry.SERVICES if _present(s.module)], ids=lambda s: s.name)
def test_each_extra_declares_what_its_service_imports(service):
    installed = closure(declared(service.extra)) | INSTALLED_APART
    missing = {top: dists for top, dists in distributions_of(reached_imports(service.module)).items()
               if not dists & installed}
    assert not missing, (f"`pip install '.[{service.extra}]'` cannot run {service.name}: it imports "
                         f"{sorted(missing)} (from {sorted(set().union(*missing.values()))}), which the extra "
                         "does not install")


def test_packages_installed_apart_are_in_both_readme_commands():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```(?:bash|sh)?\n(.*?)\n```", readme, flags=re.S)[:2]
    for package in (p for s in registry.SERVICES for p in s.no_deps_packages):
        for command in commands:
            assert re.search(rf"pip install [^&]*--no-deps [^&]*{re.escape(package)}", command), (package, command)


def test_the_check_sees_a_missing_dependency():
    """The check can fail: the media service's database code needs sqlalchemy, which the base lacks."""
    found = distributions_of(reached_imports("services.common.database"))
    assert "sqlalchemy" in found and not found["sqlalchemy"] & closure(declared("edge"))
