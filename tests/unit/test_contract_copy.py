"""The repo keeps a copy of the public contract examples; it must not drift from ../shared."""

from __future__ import annotations

import os

import pytest

from tests.conftest import CONTRACTS, REPO

SHARED = REPO.parent / "shared" / "contracts"


@pytest.mark.parametrize("name", ["examples.jsonl", "invalid.jsonl", "README.md"])
def test_copy_matches_shared_contract(name: str) -> None:
    if not SHARED.exists():
        if os.environ.get("CI"):  # CI runs beside ../shared: a missing copy there is a failure
            pytest.fail("../shared/contracts is not beside this checkout; CI must compare the copy with it")
        pytest.skip("../shared/contracts is not beside this checkout")
    assert (CONTRACTS / name).read_bytes() == (SHARED / name).read_bytes()
