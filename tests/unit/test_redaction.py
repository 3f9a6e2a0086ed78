"""Contacts typed inside free text never leave the edge: the corpus (tests/data/contacts_in_text.jsonl)
says what must be replaced and what must stay as written."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from processors.pseudonym import Pseudonymiser
from processors.redaction import Redactor, contains_contact
from processors.validation import InvalidEvent, check_rules, parse_contract
from tests.conftest import REPO

KEY = Pseudonymiser(b"k" * 32)
CORPUS = [json.loads(line) for line in (REPO / "tests/data/contacts_in_text.jsonl").read_text(encoding="utf-8").splitlines()]
TOKEN = re.compile(r"\[(?:SĐT|CCCD|EMAIL|LINK):[0-9a-f]{10}\]")
redact = Redactor(KEY.text_token).redact


@pytest.mark.parametrize("case", CORPUS, ids=[c["text"][:30] for c in CORPUS])
def test_the_corpus_replaces_contacts_and_keeps_evidence(case: dict[str, Any]) -> None:
    redacted = redact(case["text"])
    for contact in case["replaced"]:
        assert contact not in redacted
    for evidence in case["kept"]:
        assert evidence in redacted
    if case["replaced"]:
        assert TOKEN.search(redacted)
    else:
        assert redacted == case["text"]
    assert not contains_contact(redacted)
    assert contains_contact(case["text"]) == bool(case["replaced"])


def test_one_number_however_written_gets_one_token_and_another_number_another() -> None:
    tokens: dict[str, set[str]] = {}
    for case in CORPUS:
        if "number" in case:
            tokens.setdefault(case["number"], set()).update(TOKEN.findall(redact(case["text"])))
    assert all(len(found) == 1 for found in tokens.values()), tokens
    assert len({next(iter(found)) for found in tokens.values()}) == len(tokens)  # different numbers differ
    other_key = Redactor(Pseudonymiser(b"x" * 32).text_token).redact
    assert other_key("0912345678") != redact("0912345678")  # keyed: nobody can test a guess without the key
    assert redact("0912345678") == redact("+84 912 345 678")


def test_the_publisher_stores_tokens_and_the_worker_refuses_raw_contacts() -> None:
    tip = {"type": "tip", "event_id": "t-1", "occurred_at": "2025-09-03T21:00:00+07:00", "commune_code": 18352,
           "channel": "zalo", "text": "gọi lại số 0912.345.678", "location_text": "gần nhà 024 3825 1234",
           "source_ref": "zalo:0987654321"}
    event_type, record, _ = parse_contract(tip, KEY)
    stored = json.dumps(record, ensure_ascii=False)
    for digits in ("0912", "345.678", "3825", "0987654321"):
        assert digits not in stored
    assert record["text"] == "gọi lại số " + redact("0912345678")
    raw = dict(record, text="gọi lại số 0912.345.678")  # published to Kafka past the edge
    with pytest.raises(InvalidEvent) as caught:
        check_rules(event_type, raw)
    assert str(caught.value) == ("text: holds a phone number, ID number, e-mail address or profile link; publish "
                                 "through `binhyen publish` or the gateway, which replace them with keyed tokens")
