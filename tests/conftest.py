"""Test configuration: the labkit pytest plugin (fixtures `lab`, `lab_factory`, leak checks)
is loaded through its entry point once labkit is installed (./install.sh); the tiers and the
parallel run are tests/tiers.py's."""
import os
import shutil
import tempfile

import pytest


@pytest.fixture
def public_dir():
    """A directory every user may read (pytest's tmp_path is root's alone), removed after."""
    path = tempfile.mkdtemp(prefix="labkit-public-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
