"""A second redaction corpus (tests/data/redaction_heldout.jsonl), written after the redaction
was built — from the press reports, by a helper who had read neither the code nor the first
corpus — and measured once. Its figures say how redaction does on wording nobody tuned it to;
this test keeps them from getting worse (README, "Security and source confidentiality")."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from processors.pseudonym import Pseudonymiser
from processors.redaction import Redactor
from tests.conftest import REPO
from tests.unit.test_redaction_corpus import TOKEN, digit_stream

HELD_OUT = [json.loads(line) for line in
            (REPO / "tests/data/redaction_heldout.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
KEY = Pseudonymiser(b"k" * 32)
_AT = re.compile(r"\s*(?:@|\(a\)|\(at\)|\[a còng\]|\[at\]|a còng)\s*", re.IGNORECASE)


def leaks(item: dict[str, Any], redacted: str) -> bool:
    """Its digits still in the output's digit stream, or (an address or handle) its name still there."""
    secret = item["secret"]
    digits = digit_stream(secret)
    if len(digits) >= 6 and digits in digit_stream(redacted):
        return True
    name = _AT.split(secret, maxsplit=1)[0].split("/")[-1].lstrip("@").strip()
    named = len(digits) < 6 or _AT.search(secret) is not None
    return named and len(name) >= 4 and name.casefold() in unicodedata.normalize("NFKC", redacted).casefold()


def test_the_held_out_corpus_does_no_worse_than_when_it_was_first_measured() -> None:
    redact = Redactor(KEY.text_token, KEY.check()).redact
    leaked = [i["id"] for i in HELD_OUT if i["kind"] == "contact" and leaks(i, redact(i["text"]))]
    destroyed = [i["id"] for i in HELD_OUT if i["kind"] == "evidence" and i["keep"] not in redact(i["text"])]
    assert (len(HELD_OUT), sum(i["kind"] == "contact" for i in HELD_OUT)) == (135, 75)
    # measured once, 2026-12-07: 6 of 75 contacts leak (numbers partly spelled in words, keycaps
    # beside plain digits, "[a còng]" and "(a)…(.)" addresses), no evidence destroyed
    assert set(leaked) <= {"h017", "h065", "h077", "h101", "h115", "h134"}, leaked
    assert destroyed == []
    assert not TOKEN.search(" ".join(i["text"] for i in HELD_OUT))  # the corpus itself holds no tokens
