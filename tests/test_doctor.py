"""`labkit doctor`: its kernel probes touch only what they create."""
import os

import pytest

from labkit.lab import doctor
from labkit.kernel import netns

pytestmark = pytest.mark.kernel


def test_doctor_never_deletes_a_namespace_it_did_not_create():
    """A namespace that happens to have the probe's name (someone else's, or a probe left by a
    doctor killed earlier under the same pid) is not taken over, emptied or deleted."""
    name = f"lkdoc{os.getpid() % 100000}"
    assert not netns.exists(name)
    netns.create(name)
    try:
        results = {c.name: c for c in doctor.checks()}
        assert results["kernel veth"].ok and results["kernel bridge"].ok
        assert results["kernel nftables"].ok, results["kernel nftables"].detail
        assert netns.exists(name), "doctor deleted a namespace it did not create"
    finally:
        netns.delete(name)
    assert not any(n.startswith("lkdoc") for n in netns.names())


def test_doctor_says_what_to_do_when_nft_is_missing(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    results = {c.name: c for c in doctor.checks()}
    assert not results["kernel nftables"].ok
    assert "apt-get install nftables" in results["kernel nftables"].detail
    assert not results["tool nft"].ok and results["tool nft"].fix == "apt-get install nftables"
    assert not any(n.startswith("lkdoc") for n in netns.names())
