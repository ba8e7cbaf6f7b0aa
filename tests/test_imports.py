"""The project's import graph (univence/, services/, edge/; generated *_pb2* stubs left out), read with ast:
no module imports itself through others (an import cycle makes import order matter and hides
layering mistakes), and only the app imports the edge's routers (helpers that reach into a router pull
the whole endpoint, and its imports, into every user of the helper).

Every import statement counts, inside functions too: a deferred import still ties the two modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("univence", "services", "edge")
ROUTER = re.compile(r"^edge\.endpoints\.\w+\.router$")
MAY_IMPORT_ROUTERS = re.compile(r"^(edge\.app|edge\.endpoints\.\w+\.router)$")


def project_modules() -> dict[str, Path]:
    """Module name → file, for every project module but the generated stubs."""
    modules = {}
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            if "_pb2" in file.name:
                continue
            parts = file.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = file
    return modules


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imported(module: str, file: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules importing `module` runs: each named module and the packages above it (their
    __init__ runs first), except the packages `module` itself sits in (already running)."""
    tree = ast.parse(file.read_text(), filename=str(file))
    named: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node, file.name == "__init__.py")
            named.add(source)
            named |= {f"{source}.{alias.name}" for alias in node.names}
    own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    if file.name == "__init__.py":
        own_packages.add(module)
    found = set()
    for name in named:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in modules and prefix not in own_packages:
                found.add(prefix)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported(name, file, modules) for name, file in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing itself),
    each as one cycle through it (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(_cycle_through(graph, sorted(component)))
    return found


def _cycle_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One import path from the component's first module back to itself, for the failure message."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & members):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return component


def test_the_graph_sees_the_project():
    graph = import_graph()
    assert "edge.app" in graph and "services.common.server" in graph and "univence.registry" in graph
    assert "edge.errors" in graph["edge.app"]
    assert not any("_pb2" in name for name in graph)


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert sorted(map(tuple, cycles(graph))) == [("a", "b", "c", "a"), ("e", "e")]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_only_the_app_imports_routers():
    offenders = [f"{module} imports {target}" for module, targets in import_graph().items()
                 if not MAY_IMPORT_ROUTERS.match(module) for target in sorted(targets) if ROUTER.match(target)]
    assert not offenders, "\n".join(offenders)
