"""labkit installed as a package (not editable, not the source tree) finds the course's
notebooks: they are shipped inside it (labkit/teach/replay/notebooks/, package data), and
labkit.teach.replay.course's rule reaches them from any working directory."""
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

SOURCE = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv (seeing this Python's packages) with labkit installed from a wheel built from a
    copy of the source tree (so the tree gets no build/): (its python, the wheel). The build
    is isolated, as pip builds for a user: setuptools comes from pip's index."""
    tmp = tmp_path_factory.mktemp("installed")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(SOURCE / name, src / name)
    for name in ("labkit", "notebooks"):
        shutil.copytree(SOURCE / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
                   check=True, capture_output=True, cwd=tmp)
    wheel = next(wheels.glob("labkit-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(tmp / "venv")], check=True)
    python = tmp / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, cwd=tmp)
    return python, wheel


def test_the_wheel_carries_every_course_notebook(installed):
    _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    course = sorted(p.name for p in (SOURCE / "notebooks").glob("[0-9]*.ipynb"))
    assert course and all(f"labkit/teach/replay/notebooks/{n}" in names for n in course)
    assert "labkit/teach/replay/traffic_log.json.gz" in names


def test_the_installed_copy_finds_its_notebooks_from_elsewhere(installed, tmp_path):
    python, _ = installed
    code = ("import labkit, os\nfrom labkit.teach.replay import course\n"
            "print(labkit.__file__)\nprint(course.directory())\n"
            "print(' '.join(os.path.basename(p) for p in course.notebooks()))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("LABKIT_NOTEBOOKS", "PYTHONPATH")}
    out = subprocess.run([str(python), "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    package, directory, found = out
    assert not package.startswith(str(SOURCE)), package        # the installed copy, not the tree
    assert directory.startswith(os.path.dirname(package)) and directory.endswith("replay/notebooks")
    assert found.split() == sorted(p.name for p in (SOURCE / "notebooks").glob("[0-9]*.ipynb"))
    # $LABKIT_NOTEBOOKS, then ./notebooks holding the course, come first
    (tmp_path / "notebooks").mkdir()
    shutil.copy(SOURCE / "notebooks" / "00-introduction.ipynb", tmp_path / "notebooks")
    here = subprocess.run([str(python), "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=True).stdout.splitlines()
    assert here[1:] == [str(tmp_path / "notebooks"), "00-introduction.ipynb"]
    mine = tmp_path / "mine"
    shutil.copytree(tmp_path / "notebooks", mine)
    named = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                           env={**env, "LABKIT_NOTEBOOKS": str(mine)}, check=True).stdout.splitlines()
    assert named[1] == str(mine)
