"""bench/known_mutants.py applies each mutant by replacing its original text; a refactor that
changes that text would silently turn the mutant into "NOT APPLIED". Each must still apply."""

import pytest

from bench.known_mutants import MUTANTS, REPO


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_known_mutant_still_applies_to_exactly_one_place(mutant) -> None:
    text = (REPO / mutant.path).read_text(encoding="utf-8")
    assert text.count(mutant.original) == 1, f"{mutant.name}: its original text is gone from {mutant.path}"
    assert mutant.original != mutant.mutated
