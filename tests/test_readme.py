"""The README's Python examples run as written (with lab names of their own)."""
from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_python_examples():
    assert len(blocks()) >= 2


@pytest.mark.kernel
@pytest.mark.parametrize("index", range(len(blocks())))
def test_a_readme_example_runs(index, lab_factory):
    code = blocks()[index]
    for name in set(re.findall(r'Lab\("(\w+)"\)', code)):
        code = code.replace(f'Lab("{name}")', f'Lab("{lab_factory().name}")')
    exec(compile(code, f"README.md example {index}", "exec"), {})
