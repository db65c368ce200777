"""The layers stay one-way: every import (top-level, inside a function or under
TYPE_CHECKING alike) goes to the same layer or one below, and no circle of imports exists
between modules. `make lint` runs this file as a script; the suite runs it as a test.

    python tests/test_layers.py     # prints every upward import and circle, exit 1 if any
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# import name -> folder (the wheel maps realm_widgets and realm_skills onto widgets/ and skills/)
PACKAGES = {"realm_kernel": "realm_kernel", "realm_widgets": "widgets", "realm_skills": "skills"}
# Top first. Modules in one entry may import each other (within a package, a circle
# still fails); an import of a module in a higher entry is an upward import.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("realm_widgets",),
    ("realm_kernel.server",),
    ("realm_kernel.cli",),
    ("realm_kernel.api",),
    ("realm_kernel.services",),
    ("realm_kernel.evals",),
    ("realm_kernel.oracle",),
    ("realm_kernel.train",),
    ("realm_kernel.quests",),
    ("realm_kernel.store",),
    ("realm_kernel.hero_model",),
    ("realm_kernel",),  # the package's face (__version__)
    ("realm_skills",),
)


def module_files() -> dict[str, Path]:
    out = {}
    for pkg, folder in PACKAGES.items():
        for f in sorted((ROOT / folder).rglob("*.py")):
            parts = (pkg, *f.relative_to(ROOT / folder).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = f
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports (a `from pkg import mod` counts as mod)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        for t in targets:
            while t and t not in modules:  # `import a.b.c` of a package-level name
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def layer_of(module: str) -> int:
    best, where = -1, len(LAYERS)
    for i, entry in enumerate(LAYERS):
        for prefix in entry:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, where = len(prefix), i
    return where


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{m} (layer {LAYERS[layer_of(m)][0]}) imports {t} (layer {LAYERS[layer_of(t)][0]})"
            for m, targets in sorted(graph.items()) for t in sorted(targets)
            if layer_of(t) < layer_of(m)]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def problems() -> list[str]:
    graph = import_graph()
    return upward_imports(graph) + ["circle: " + " <-> ".join(c) for c in circles(graph)]


def test_imports_only_go_down_and_never_in_a_circle() -> None:
    assert problems() == []


def test_the_check_sees_an_upward_import_and_a_circle() -> None:
    """The checker itself can fail: a store module importing the API is upward, and two
    modules importing each other are a circle."""
    graph = {"realm_kernel.store.paths": {"realm_kernel.api"}, "realm_kernel.api": set()}
    assert upward_imports(graph) == ["realm_kernel.store.paths (layer realm_kernel.store) imports "
                                     "realm_kernel.api (layer realm_kernel.api)"]
    assert circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    modules = module_files()
    assert "realm_kernel.evals.grading" in imports_of(
        "realm_kernel.evals.evalqueue", modules["realm_kernel.evals.evalqueue"], modules)


if __name__ == "__main__":
    found = problems()
    for p in found:
        print(p)
    print(f"layers: {len(found)} problem(s) in {len(module_files())} modules")
    sys.exit(1 if found else 0)
