"""Hostile input costs time in proportion to its size, never its square (the review's finding: one
120 KB tip delayed a panic bell's page by 35 s in the e-mail pattern), and the contract's length
limits refuse a long value before any pattern reads it.

Each shape is timed at n and 8n characters in the same process (the minimum of a few runs, against
noise); linear work gives a ratio near 8, quadratic near 64: the tests require less than 24.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

import processors.redaction
import processors.validation
from bench.redaction import fastest
from processors.pseudonym import Pseudonymiser
from processors.redaction import Redactor, contains_contact
from processors.validation import InvalidEvent, check_rules, parse_contract

KEY = Pseudonymiser(b"k" * 32)
redact = Redactor(KEY.text_token, KEY.check()).redact
# 8× the text: linear work takes ~8× as long, quadratic 64×. Measured alone 6–13×; on this 2-core
# machine with a stack running beside the suite, small inputs (a few ms) varied up to 28×.
MAX_RATIO = 32
KIB = 1024
# The review's shapes, up to a megabyte. One "@" anywhere lets e-mail patterns run: the old one took
# 3.6 s on "@ a.a.a…" of 32 KiB and 63 times as long for 8 times the text.
REVIEWED = ["a@", "@ |a.", "0 ", "@a", "@ |a"]
# Every other pattern's worst case, after an "@" that wakes the address patterns: digits with
# separators, words, spelled digits, e-mail evasions, amounts, invisible characters, handles,
# prefixes, dates, phone numbers, tokens.
SHAPES = ["@ |" + shape for shape in ("a.b", "09-", "abcdefgh", "không ", "x at ", "(at)", "1 000 ", "0\u200b", "a@b.",
                                      "nick ", "+84 ", "5/5/", "0912345678 ", "1.", "o9l2 ", "[SĐT:0936214587abcdef]")]


def fill(shape: str, size: int) -> str:
    """`size` characters: what stands before '|' once, then the rest over and over."""
    head, _, unit = shape.rpartition("|")
    return head + (unit * (size // len(unit) + 1))[:size - len(head)]


def ratio(work: Callable[[str], Any], shape: str, size: int) -> float:
    small, large = fill(shape, size), fill(shape, 8 * size)
    return fastest(lambda: work(large), 2) / fastest(lambda: work(small), 3)


@pytest.mark.parametrize("shape", REVIEWED)
def test_the_reviewed_shapes_cost_linear_time_up_to_a_megabyte(shape: str) -> None:
    """The worker's check (the one that delayed the page) up to 1 MiB; the edge's redaction,
    which also writes a token per contact, up to 256 KiB."""
    assert ratio(contains_contact, shape, 128 * KIB) < MAX_RATIO
    assert ratio(redact, shape, 32 * KIB) < MAX_RATIO


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("work", [contains_contact, redact], ids=["contains_contact", "redact"])
def test_every_other_hostile_shape_costs_linear_time(work: Callable[[str], Any], shape: str) -> None:
    assert ratio(work, shape, 8 * KIB) < MAX_RATIO


def tip(text: str) -> dict[str, Any]:
    return {"type": "tip", "event_id": "lin-1", "occurred_at": "2025-09-03T21:00:00+07:00", "commune_code": 18352,
            "channel": "zalo", "text": text}


def parse_or_refuse(text: str) -> None:
    try:
        parse_contract(tip(text), KEY)
    except InvalidEvent:
        pass


@pytest.mark.parametrize("shape", ["a@", "0 ", "09-", "a@b."])
def test_the_contract_parser_costs_linear_time_up_to_its_limit(shape: str) -> None:
    small, large = fill(shape, 500), fill(shape, 4000)
    assert fastest(lambda: parse_or_refuse(large), 5) / fastest(lambda: parse_or_refuse(small), 5) < MAX_RATIO


def no_pattern(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a pattern ran over a value the length limit should have refused")


@pytest.mark.parametrize(("field", "reason"), [
    ("text", "text: 1048576 characters; at most 4000 are allowed"),
    ("location_text", "location_text: 1048576 characters; at most 1000 are allowed"),
    ("event_id", "event_id: 1048576 characters; at most 200 are allowed"),
])
def test_a_megabyte_value_is_refused_by_its_length_before_any_pattern_runs(
        monkeypatch: pytest.MonkeyPatch, field: str, reason: str) -> None:
    hostile = fill("a@", 1024 * KIB)
    _, record, _ = parse_contract(tip("có trộm"), KEY)
    for module, name in ((processors.redaction, "find"), (processors.validation, "contains_contact"),
                         (processors.validation, "identifier_holds_contact"), (processors.validation, "forged_tokens")):
        monkeypatch.setattr(module, name, no_pattern)
    started = time.perf_counter()
    with pytest.raises(InvalidEvent) as worker:
        check_rules("tip", dict(record, **{field: hostile}), KEY.check())
    with pytest.raises(InvalidEvent) as edge:
        parse_contract(dict(tip("có trộm"), **{field: hostile}), KEY)
    assert str(worker.value) == str(edge.value) == reason
    assert time.perf_counter() - started < 0.5
