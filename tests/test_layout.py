"""The architecture as the folders show it: layers import only downwards, no import circles,
no module using another module's private names (every import, also those inside functions)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"capsim": ROOT / "sim", "capsim.models": ROOT / "models", "capsim.scenarios": ROOT / "scenarios"}
# scenario -> engine -> results -> experiments -> report -> cli; models and the leaf tools below or beside
LAYERS = ["capsim.models", "capsim.scenarios", "capsim.theory", "capsim.scenario", "capsim.calibrate", "capsim.engine",
          "capsim.results", "capsim.experiments", "capsim.report", "capsim.backtest", "capsim.cli"]


def modules() -> dict[str, Path]:
    """Module name -> file, as installed (sim/ is capsim, models/ capsim.models, scenarios/ capsim.scenarios)."""
    out = {}
    for pkg, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            out[".".join([pkg, *parts])] = path
    return out


def imports(path: Path):
    """(imported module, names taken from it, attributes read off it) of every import in ``path``."""
    tree = ast.parse(path.read_text())
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name] = a.name
                yield a.name, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            yield aliases[node.value.id], [node.attr]


def layer(name: str) -> int | None:
    best = None
    for i, prefix in enumerate(LAYERS):
        if name == prefix or name.startswith(prefix + "."):
            best = i
    return best


def edges() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, names in imports(path):
            if not target.startswith("capsim"):
                continue
            for n in names:   # `from capsim.x import y` may import the submodule capsim.x.y
                if f"{target}.{n}" in mods:
                    graph[name].add(f"{target}.{n}")
            if target in mods:
                graph[name].add(target)
    return graph


def test_no_module_uses_another_modules_private_names():
    bad = []
    for name, path in modules().items():
        for target, names in imports(path):
            if target.startswith("capsim") and target != name:
                bad += [f"{name}: {target}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
    assert not bad


def test_layers_import_only_downwards():
    bad = []
    for src, targets in edges().items():
        ls = layer(src)
        for t in targets:
            lt = layer(t)
            if ls is not None and lt is not None and lt > ls:
                bad.append(f"{src} -> {t}")
    assert not bad


def test_no_import_circles():
    graph = edges()
    # a package's __init__ re-exports its modules: an edge into a package is an edge into its __init__ only
    state: dict[str, int] = {}
    cycles = []

    def visit(n, stack):
        state[n] = 1
        for t in sorted(graph.get(n, ())):
            if t.startswith(n + ".") and Path(modules()[n]).name == "__init__.py":
                continue      # a package importing its own submodules is how __init__ re-exports
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles
