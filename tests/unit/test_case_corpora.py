"""The labelled cases corpora (tests/data/cases/, written by helpers from the background reports
alone) are valid contract events once their labels are dropped, and label every event, so that
whoever builds cases measures on data that can reach the worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract

CASES = Path(__file__).parents[1] / "data" / "cases"
KINDS = {"border", "multi_day", "plain", "hard_negative"}


@pytest.mark.parametrize("name", ["corpus.jsonl", "corpus_heldout.jsonl"])
def test_every_labelled_event_is_a_contract_event(name: str) -> None:
    rows = [json.loads(line) for line in (CASES / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 100 and len({row["event_id"] for row in rows}) == len(rows)
    assert {row["kind"] for row in rows} == KINDS and all(row["case"] for row in rows)
    for row in rows:
        event = {key: value for key, value in row.items() if key not in ("case", "kind")}
        event_type, record, _ = parse_contract(event, Pseudonymiser(b"k" * 32))
        assert event_type == row["type"] and record["event_id"] == row["event_id"]
