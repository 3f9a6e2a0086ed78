"""The independent redaction corpus (tests/data/redaction_corpus.jsonl, written from the press
reports without reading the code): how many contacts leak through redact() and how many pieces
of evidence it destroys.

A contact leaks when, after redaction, its digits still stand in the output's digit stream
(every digit of the output in order, Unicode digits, keycaps and spelled Vietnamese digit words
turned into ASCII digits, o/O read as 0 and l/I as 1, tokens taken out first), or when its
e-mail local part or handle is still there. Evidence is destroyed when `keep` is no longer in
the output verbatim.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from processors.pseudonym import Pseudonymiser
from processors.redaction import Redactor
from tests.conftest import REPO

CORPUS = [json.loads(line) for line in
          (REPO / "tests/data/redaction_corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
KEY = Pseudonymiser(b"k" * 32)
MAX_SHARE = 0.02
TOKEN = re.compile(r"\[(?:SĐT|CCCD|EMAIL|LINK):[0-9a-f]+\]")
_DIGIT_WORDS = {
    "không": "0", "khong": "0", "một": "1", "mot": "1", "mốt": "1", "hai": "2", "ba": "3", "bốn": "4", "bon": "4",
    "tư": "4", "năm": "5", "nam": "5", "lăm": "5", "sáu": "6", "sau": "6", "bảy": "7", "bẩy": "7", "bay": "7",
    "tám": "8", "tam": "8", "chín": "9", "chin": "9",
}
_WORD = re.compile(r"\w+")


def digit_stream(text: str) -> str:
    """Every digit a reader can see in `text`, in order, however it is written."""
    text = unicodedata.normalize("NFC", TOKEN.sub(" ", text))
    text = _WORD.sub(lambda m: _DIGIT_WORDS.get(m.group(0).lower(), m.group(0)), text)
    out = []
    for ch in text:
        digit = unicodedata.digit(ch, None)
        if digit is not None:
            out.append(str(digit))
        elif ch in "oO":
            out.append("0")
        elif ch in "lI":
            out.append("1")
    return "".join(out)


def contact_leaks(item: dict[str, Any], redacted: str) -> bool:
    stream = digit_stream(redacted)
    person = item["person"]
    name = person.split(":", 1)[-1].split("@")[0]
    digits = {digit_stream(item["secret"])} | ({person, person[1:]} if person.isdigit() else set())
    if name.isdigit():
        digits.add(name)
    if any(d and len(d) >= 6 and d in stream for d in digits):
        return True
    if not person.isdigit():  # an e-mail local part or a handle
        return name.casefold() in unicodedata.normalize("NFKC", redacted).casefold()
    return False


@dataclass(frozen=True)
class Figures:
    leaked: list[str]
    contacts: int
    destroyed: list[str]
    evidence: int
    split_persons: list[str]  # persons written two ways whose items did not get one token


def corpus_figures(redact: Callable[[str], str]) -> Figures:
    leaked, destroyed, tokens = [], [], defaultdict(set)
    for item in CORPUS:
        redacted = redact(item["text"])
        if item["kind"] == "contact":
            if contact_leaks(item, redacted):
                leaked.append(item["id"])
            tokens[item["person"]].add(tuple(TOKEN.findall(redacted)))
        elif item["keep"] not in redacted:
            destroyed.append(item["id"])
    split = [person for person, found in tokens.items()
             if sum(1 for i in CORPUS if i.get("person") == person) > 1 and (len(found) != 1 or len(next(iter(found))) != 1)]
    return Figures(leaked, sum(i["kind"] == "contact" for i in CORPUS), destroyed,
                   sum(i["kind"] == "evidence" for i in CORPUS), sorted(split))


def test_the_corpus_is_what_the_test_reads() -> None:
    assert len(CORPUS) == 220 and len({i["id"] for i in CORPUS}) == 220
    for item in CORPUS:
        assert (item.get("secret") or item.get("keep")) in item["text"], item["id"]


def test_contacts_do_not_leak_and_evidence_survives() -> None:
    figures = corpus_figures(Redactor(KEY.text_token, KEY.check()).redact)
    print(f"\nleaked {len(figures.leaked)}/{figures.contacts} {figures.leaked}; "
          f"destroyed {len(figures.destroyed)}/{figures.evidence} {figures.destroyed}")
    assert len(figures.leaked) <= int(MAX_SHARE * figures.contacts), figures.leaked
    assert len(figures.destroyed) <= int(MAX_SHARE * figures.evidence), figures.destroyed


def test_one_person_written_two_ways_gets_one_token() -> None:
    assert corpus_figures(Redactor(KEY.text_token, KEY.check()).redact).split_persons == []
