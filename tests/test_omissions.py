"""Each step of the stages after the seed's (beyond hairpin) left out in turn: check must fail
and name what is missing. Apart from test_practice.py so that a worker of its own runs them."""
from __future__ import annotations

import pytest

from labkit.model import stages

from test_practice import SEED_STAGES, leave_out_and_check, omission_ids, omissions

pytestmark = pytest.mark.kernel

LATER = omissions([s for s in stages.STAGES if s not in SEED_STAGES])


@pytest.mark.parametrize("stage,skip", LATER, ids=omission_ids(LATER))
def test_leaving_out_any_one_step_of_a_later_stage_fails_check_and_names_it(lab, stage, skip):
    leave_out_and_check(lab, stage, skip)
