"""The package's structure: subpackages as layers, each importing only those below it, no
import cycle, no module over 400 lines, and `import labkit` that loads none of the heavy
libraries. Every import counts, those inside functions too (no cycle dodged that way)."""
import ast
import pathlib
import subprocess
import sys

from harness import REPO

PACKAGE = pathlib.Path(REPO) / "labkit"
# lowest first; a module may import its own subpackage and any layer below
LAYERS = {"errors": 0, "model": 1, "kernel": 2, "nat": 3, "capture": 3, "lab": 4, "draw": 5,
          "teach": 6, "classroom": 6, "cli": 7, "pytest_plugin": 7}
FACES = {"labkit", "labkit.__main__"}    # the package's own face may name anything
MAX_LINES = 400


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """The labkit modules that module `name` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "labkit")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "labkit":
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_no_import_cycle():
    g = graph()
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(g[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_each_layer_imports_only_its_own_and_those_below():
    wrong = []
    for name, targets in graph().items():
        if name in FACES:
            continue
        for target in targets:
            if target in FACES:
                wrong.append(f"{name} imports the package face {target}")
            elif layer(target) > layer(name):
                wrong.append(f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_every_module_is_in_a_known_layer():
    assert [n for n in modules() if n not in FACES and layer(n) is None] == []


def test_no_module_is_over_the_size_limit():
    big = {name: n for name, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The tests above can fail: two modules that import each other, one importing upward."""
    pkg = tmp_path / "labkit"
    (pkg / "kernel").mkdir(parents=True)
    (pkg / "teach").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "kernel" / "__init__.py").write_text("")
    (pkg / "teach" / "__init__.py").write_text("")
    (pkg / "kernel" / "a.py").write_text("def f():\n    from ..teach import b\n")
    (pkg / "teach" / "b.py").write_text("from ..kernel import a\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    g = graph()
    assert g["labkit.kernel.a"] == {"labkit.teach.b"} and g["labkit.teach.b"] == {"labkit.kernel.a"}
    assert layer("labkit.kernel.a") < layer("labkit.teach.b")


def test_import_labkit_loads_no_heavy_library():
    code = ("import sys, labkit, labkit.lab, labkit.model, labkit.nat, labkit.capture, labkit.cli\n"
            "print(sorted(m for m in ('pyroute2', 'scapy', 'matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
