"""No dead code in the package: every private module-level function is called somewhere, and
(where pyflakes is installed) nothing is imported without being used."""
import ast
import pathlib
import re
import subprocess
import sys

import pytest

from harness import REPO

PACKAGE = pathlib.Path(REPO) / "labkit"


def test_every_private_function_is_used():
    sources = {p: p.read_text() for p in PACKAGE.rglob("*.py")}
    everything = "\n".join(sources.values())
    unused = []
    for path, text in sources.items():
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("_") \
                    and not node.name.startswith("__"):
                if len(re.findall(rf"\b{node.name}\b", everything)) < 2:
                    unused.append(f"{path.name}: {node.name}")
    assert not unused, f"never called: {unused}"


@pytest.mark.parametrize("folder", ["labkit", "tests", "benchmarks"])
def test_no_unused_imports_or_undefined_names(folder):
    pytest.importorskip("pyflakes")
    files = sorted(map(str, (pathlib.Path(REPO) / folder).rglob("*.py")))
    result = subprocess.run([sys.executable, "-m", "pyflakes", *files],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
