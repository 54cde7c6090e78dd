"""Test configuration: the labkit pytest plugin (fixtures `lab`, `lab_factory`, leak checks)
is loaded through its entry point once labkit is installed (./install.sh)."""
