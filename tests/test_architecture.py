"""The package's shape: no import cycles, and imports that follow the data path.

Every import counts, at module level, inside functions (the hot path imports lazily) and
under ``TYPE_CHECKING``: a cycle hidden in a function or a type hint is still two modules
that cannot be understood, tested or moved apart. The layering rules are DESIGN.md's:
capture -> privacy -> hand-off -> delivery, ``pipeline`` the only caller of the stages, and
the admin side (``admin/``) reading everything while no stage reads it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from support import ROOT

PACKAGE = "otel_cli_telemetry"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package modules that ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {target for target in found if target in MODULES and target != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root, targets in graph.items():
        if root in index:
            continue
        work = [(root, iter(sorted(targets)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_the_whole_package() -> None:
    assert f"{PACKAGE}.pipeline" in GRAPH
    assert f"{PACKAGE}.capture.session" in GRAPH[f"{PACKAGE}.pipeline"]
    assert len(GRAPH) > 40


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {name: set(targets) for name, targets in GRAPH.items()}
    graph[f"{PACKAGE}.schema"].add(f"{PACKAGE}.config")  # config imports schema
    assert any({f"{PACKAGE}.config", f"{PACKAGE}.schema"} <= set(cycle) for cycle in _cycles(graph))


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def _inside(name: str, *packages: str) -> bool:
    return any(name == f"{PACKAGE}.{p}" or name.startswith(f"{PACKAGE}.{p}.") for p in packages)


#: (importer packages, packages they must never import, why)
LAYERS = [
    (("capture",), ("privacy", "handoff", "delivery", "pipeline", "admin"),
     "capture ends at a finished record; pipeline takes it further"),
    (("privacy",), ("capture", "gate", "handoff", "delivery", "pipeline", "admin", "config"),
     "privacy imports nothing but the schema and its rules"),
    (("handoff",), ("capture", "pipeline", "admin"),
     "hand-off receives plain data, not captured records"),
    (("delivery",), ("capture", "pipeline", "admin", "gate", "privacy"),
     "delivery reads the spool and the endpoint, nothing upstream"),
    (("gate.state",), ("config",), "the state files depend on paths only"),
]


@pytest.mark.parametrize(("importers", "forbidden", "why"), LAYERS)
def test_imports_follow_the_data_path(
    importers: tuple[str, ...], forbidden: tuple[str, ...], why: str
) -> None:
    wrong = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if _inside(name, *importers)
        for target in targets
        if _inside(target, *forbidden)
    )
    assert wrong == [], why


def test_nothing_but_the_package_root_imports_the_admin_side() -> None:
    allowed = {PACKAGE, f"{PACKAGE}.__main__"}
    wrong = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name not in allowed and not _inside(name, "admin")
        for target in targets
        if _inside(target, "admin")
    )
    assert wrong == []


def test_only_the_pipeline_calls_the_stages_after_capture() -> None:
    """The privacy and hand-off stages are entered from ``pipeline`` (and the admin side,
    which reads the spool and prints schemas), never from capture or the public API."""
    entry_points = {f"{PACKAGE}.privacy.allowlist", f"{PACKAGE}.handoff"}
    callers = sorted(
        name
        for name, targets in GRAPH.items()
        if targets & entry_points and not _inside(name, "admin", "privacy", "handoff")
    )
    assert callers == [f"{PACKAGE}.pipeline"]
