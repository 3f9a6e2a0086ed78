"""The on-call scenario suite (tests/data/oncall/, written from ../shared/background/ by someone
who had not read the code): every scenario through `binhyen process`, judged against the duty
officer's expectation by tests/oncall.py."""

from __future__ import annotations

import pytest

from tests.conftest import offline_run
from tests.oncall import Scenario, judge, scenarios

ALL = scenarios()


@pytest.mark.parametrize("scenario", ALL, ids=[s.name for s in ALL])
def test_the_duty_officer_would_agree(scenario: Scenario) -> None:
    output = list(offline_run().process(scenario.lines()))
    assert judge(scenario, output) == []


def test_the_suite_is_the_one_written_from_the_reports() -> None:
    assert len(ALL) >= 40
    pages = sum(len(s.expect["pages"]) for s in ALL)
    assert pages >= 25  # emergencies, not only things that must stay quiet
