"""The package's layout: wings in the order ``fetalhead.LAYERS`` states, no upward import, no cycle.

The imports are read from the source (every ``import`` and ``from ... import``, also those inside
functions), so a lazy import cannot hide an upward dependency or a circle.
"""

import ast
from pathlib import Path

import pytest

import fetalhead

SRC = Path(fetalhead.__file__).resolve().parent
MAX_TOP_LEVEL_MODULES = 8  # issue 27: a newcomer sees the wings, not a heap of modules


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The fetalhead modules ``path`` imports (a ``from pkg import name`` counts ``pkg.name`` when that
    is a module, else ``pkg``)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fetalhead"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "fetalhead":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    found.discard(mod)
    return found


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}
GRAPH = {m: imports_of(p) for m, p in MODULES.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself: the public facade above everything
        return len(fetalhead.LAYERS)
    return fetalhead.LAYERS.index(parts[1])


def test_every_module_belongs_to_a_layer():
    unknown = sorted(m for m in MODULES if m != "fetalhead" and m.split(".")[1] not in fetalhead.LAYERS)
    assert not unknown, f"modules outside fetalhead.LAYERS: {unknown}"


def test_no_upward_import():
    upward = sorted(f"{m} imports {d}" for m, deps in GRAPH.items() for d in deps
                    if d in MODULES and layer_of(d) > layer_of(m))
    assert not upward, "imports that reach up a layer:\n" + "\n".join(upward)


def test_imports_name_real_modules():
    # a typo in a relative import would otherwise hide from the layer check
    missing = sorted(f"{m} imports {d}" for m, deps in GRAPH.items() for d in deps if d not in MODULES)
    assert not missing, missing


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_between_modules():
    graph = {m: {d for d in deps if d in MODULES and d != "fetalhead"} for m, deps in GRAPH.items()}
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_no_import_cycle_between_wings():
    wing = {m: m.split(".")[1] if m.count(".") else m for m in MODULES}
    graph: dict[str, set[str]] = {}
    for m, deps in GRAPH.items():
        for d in deps:
            if d in MODULES and d != "fetalhead" and m != "fetalhead" and wing[d] != wing[m]:
                graph.setdefault(wing[m], set()).add(wing[d])
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_few_modules_at_the_top():
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_each_wing_says_what_it_holds():
    for init in SRC.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init.parent.name}: no docstring saying what the wing holds"


def test_the_checks_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("fetalhead.clinical.geometry") < layer_of("fetalhead.measurement") < layer_of("fetalhead.cli")


@pytest.mark.parametrize("name", ["measure", "Ellipse", "__version__"])
def test_public_api_stays(name):
    assert hasattr(fetalhead, name)
