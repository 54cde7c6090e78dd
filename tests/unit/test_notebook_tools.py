"""Notebook hygiene (stored notebooks carry no execution noise) and the Binder-style message."""
import glob
import json
import os
import subprocess
import sys

import pytest

from labkit.teach.printed import stored

from harness import REPO, without_capabilities

NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "notebooks", "*.ipynb")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_stored_notebooks_are_clean(path):
    assert stored.is_clean(path), f"run: python -m labkit.teach.notebook clean {path}"


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 7


def test_clean_strips_execution_noise_and_keeps_outputs():
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3"}, "widgets": {"x": 1},
                       "language_info": {"name": "python", "version": "3.11.7"}},
          "cells": [{"cell_type": "code", "id": "a1", "execution_count": 7, "source": "1+1",
                     "metadata": {"ExecuteTime": {}, "scrolled": True, "tags": ["keep"]},
                     "outputs": [{"output_type": "execute_result", "execution_count": 7,
                                  "data": {"text/plain": "2"}, "metadata": {}}]}]}
    out = stored.clean(nb)
    cell = out["cells"][0]
    assert cell["execution_count"] == 1 and cell["metadata"] == {"tags": ["keep"]}
    assert cell["outputs"][0]["execution_count"] == 1       # renumbered: nbval needs a count
    assert cell["outputs"][0]["data"] == {"text/plain": "2"}
    assert out["metadata"] == {"kernelspec": {"name": "python3"}, "language_info": {"name": "python"}}
    assert stored.clean(out) == out


def test_check_command_fails_on_a_dirty_notebook(tmp_path):
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                "cells": [{"cell_type": "code", "execution_count": 3, "source": "",
                                           "metadata": {}, "outputs": [], "id": "x"}]}))
    run = lambda *a: subprocess.run([sys.executable, "-m", "labkit.teach.notebook", *a, str(path)],
                                    capture_output=True, text=True)
    assert run("check").returncode == 1
    assert run("clean").returncode == 0
    assert run("check").returncode == 0


def test_without_privileges_the_notebook_says_so_once(tmp_path):
    """Without CAP_NET_ADMIN, setup() explains once; later labkit cells print one line."""
    code = ("from IPython.testing.globalipapp import start_ipython\n"
            "ip = start_ipython()\n"
            "ip.run_cell('import labkit.teach.notebook; labkit.teach.notebook.setup()')\n"
            "ip.run_cell('from labkit import Lab; Lab(\"np\").up(\"veth\")')\n"
            "ip.run_cell('Lab(\"np\").up(\"bridge\")')\n")
    result = without_capabilities("-c", code, LABKIT_RUN_DIR=str(tmp_path / "run"), HOME=str(tmp_path),
                                  IPYTHONDIR=str(tmp_path / "ipy"), MPLCONFIGDIR=str(tmp_path / "mpl"))
    out = result.stdout + result.stderr
    assert out.count("needs a privileged Linux VM") == 1, out
    assert out.count("needs a privileged VM, and no run of it was recorded") == 2, out
    assert "Traceback" not in out
