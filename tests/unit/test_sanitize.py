"""The nbval sanitize file: what it makes equal, and what it must keep apart."""

import configparser
import os
import re

from harness import REPO


def sanitized(text):
    """Text after every rule of tests/nbval-sanitize.cfg, in the file's order, as nbval applies them."""
    rules = configparser.ConfigParser()
    rules.read(os.path.join(REPO, "tests", "nbval-sanitize.cfg"))
    for section in rules.sections():
        text = re.sub(rules[section]["regex"], rules[section]["replace"], text)
    return text


def test_a_veth_with_its_peer_down_reads_the_same_in_either_state_the_kernel_settles_on():
    down = "veth1@if7        DOWN           02:42:ac:12:00:01 <NO-CARRIER,BROADCAST,MULTICAST,UP> \n"
    lower = "veth1@if9        LOWERLAYERDOWN 02:42:ac:12:00:01 <NO-CARRIER,BROADCAST,MULTICAST,UP> \n"
    assert sanitized(down) == sanitized(lower)


def test_a_link_that_is_up_or_has_a_carrier_keeps_its_state():
    up = "veth1@if7        UP             02:42:ac:12:00:01 <BROADCAST,MULTICAST,UP,LOWER_UP> \n"
    down = "veth1@if7        DOWN           02:42:ac:12:00:01 <BROADCAST,MULTICAST> \n"
    assert sanitized(up) != sanitized(down)
    assert "DOWN " in sanitized(down)
