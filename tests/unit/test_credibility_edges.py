"""Credibility at its edges (processors.credibility, no worker): the base rate pooled from the
channel's and the commune's history, thresholds that are inclusive (vague text, chain spread,
spam bursts, specificity), the officers' majority verdict, how reasons are rounded, ordered
and kept, the mean reputation shift, a fingerprint that never changes between releases, and
a config without its doc line."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest

from processors.credibility import CredibilityConfig, ReputationBook, chain_fingerprint, score, specificity
from processors.text import content_tokens, locators
from streams.config import DEFAULT_CREDIBILITY_CONFIG

CONFIG = CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)  # prior 0.54 x 12, scale 2.2, burst 3 in 15 min
C = 18352
M = 60_000
T = 1_756_868_400_000
TEXT = "thanh niên lạ mặt đi xe máy đỏ chạy rất nhanh qua đường"  # 8 content words, no place, no number


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def tip(n: int, text: str = TEXT, **extra: Any) -> dict[str, Any]:
    return {"k": "tip", "e": f"t-{n}", "t": T + n * M, "txt": text, "ch": "zalo", "rep": None, "src": None,
            "att": [], "loc": None, **extra}


def reasons(incident: dict[str, Any], book: ReputationBook | None = None, chains: dict[str, int] | None = None,
            config: CredibilityConfig = CONFIG) -> dict[str, float]:
    _, found = score(incident, book or ReputationBook({}, config), chains or {}, config)
    return {r["signal"]: r["contribution"] for r in found}


def incident(*members: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"commune": C, "members": list(members), **extra}


def test_the_base_rate_pools_the_channel_then_the_commune() -> None:
    book = ReputationBook({"channel:sms": [0, 20], f"commune:{C}": [10, 10]}, CONFIG)
    channel = (0 + 0.54 * 12) / (20 + 12)
    assert book.base_rate(C, "sms") == pytest.approx((10 + channel * 12) / (10 + 12))
    assert book.base_rate(C, None) == pytest.approx((10 + 0.54 * 12) / (10 + 12))
    assert book.base_rate(25813, "sms") == pytest.approx(channel)
    found = reasons(incident(tip(0, ch="sms"), tip(1, ch="zalo")), book)  # the first tip's channel counts
    assert found["base_rate"] == round(2.2 * logit(book.base_rate(C, "sms")), 3)


def test_four_content_words_are_not_vague_and_three_are() -> None:
    assert len(content_tokens("trộm xe máy Honda")) == 4 and len(content_tokens("trộm xe máy")) == 3
    assert "vague_text" not in reasons(incident(tip(0, "trộm xe máy Honda")))
    assert reasons(incident(tip(0, "trộm xe máy")))["vague_text"] == round(2.2 * -1.4, 3)


def test_a_text_seen_in_three_communes_is_a_chain_message() -> None:
    fingerprint = chain_fingerprint(TEXT)
    assert "chain_message" not in reasons(incident(tip(0)), chains={fingerprint: 2})
    assert "chain_message" not in reasons(incident(tip(0)), chains={"0" * 16: 9})
    assert reasons(incident(tip(0)), chains={fingerprint: 3})["chain_message"] == round(2.2 * -2.2, 3)


def test_three_tips_of_one_reporter_within_fifteen_minutes_are_a_burst() -> None:
    def burst(*offsets_ms: int) -> bool:
        tips = [dict(tip(i), t=T + offset, rep="rp_1") for i, offset in enumerate(offsets_ms)]
        return "spam_burst" in reasons(incident(*tips))

    assert burst(0, 5 * M, 15 * M)  # exactly the window
    assert not burst(0, 5 * M, 15 * M + 10)
    assert not burst(0, M, 20 * M)  # two close ones and a third later: no burst of three


def test_eight_content_words_make_a_report_specific() -> None:
    assert len(content_tokens(TEXT)) == 8 and not locators(TEXT)
    assert specificity(TEXT, None) == 0.25
    shorter = "thanh niên lạ mặt đi xe máy đỏ chạy rất nhanh"
    assert len(content_tokens(shorter)) == 7 and specificity(shorter, None) == 0.0


def test_the_officers_majority_verdict_counts_then_the_name_decides() -> None:
    majority = reasons(incident(tip(0), verdicts={"t-0": "valuable", "t-1": "false_report", "x": "false_report"}))
    assert "officer_false_report" in majority and "officer_valuable" not in majority
    tie = reasons(incident(tip(0), verdicts={"t-0": "not_valuable", "t-1": "valuable"}))
    assert "officer_valuable" in tie and "officer_not_valuable" not in tie


def test_reporter_reputation_is_the_mean_shift_of_the_reporters() -> None:
    book = ReputationBook({"reporter:rp_1": [4, 4], "reporter:rp_2": [4, 4]}, CONFIG)
    base = book.base_rate(C, "zalo")
    rate = (4 + base * 4) / (4 + 4)
    found = reasons(incident(tip(0, rep="rp_1"), tip(1, rep="rp_2")), book)
    assert found["reporter_reputation"] == round(2.2 * 1.0 * (logit(rate) - logit(base)), 3)


def test_reasons_are_rounded_ordered_by_size_then_name_and_kept_from_half_a_thousandth() -> None:
    weights = {**CONFIG.weights, "attachments": 1.0, "vague_text": -1.0}
    config = dataclasses.replace(CONFIG, weights=weights, calibration_intercept=0.0005)
    credibility, found = score(incident(tip(0, "trộm xe máy", att=["ab" * 32])), ReputationBook({}, config), {}, config)
    names = [r["signal"] for r in found]
    assert names.index("attachments") + 1 == names.index("vague_text")  # equal size: by name
    assert {"signal": "calibration", "contribution": 0.001} in found  # 0.0005 is kept (and rounded)
    assert all(r["contribution"] == round(r["contribution"], 3) for r in found)
    assert credibility == round(credibility, 4) and credibility != round(credibility, 3)


def test_a_base_rate_of_certainty_still_scores() -> None:
    config = dataclasses.replace(CONFIG, prior_valuable=1.0)
    credibility, found = score(incident(tip(0)), ReputationBook({}, config), {}, config)
    assert 0.99 < credibility <= 1.0
    assert next(r["contribution"] for r in found if r["signal"] == "base_rate") == round(2.2 * logit(1 - 1e-6), 3)


def test_a_chain_fingerprint_is_stable_and_reads_the_first_twenty_words() -> None:
    forwarded = ("CHUYỂN TIẾP: Cảnh báo!!! Bọn bắt cóc trẻ em đi xe 16 chỗ màu trắng đang ở chợ, các mẹ giữ con "
                 "cẩn thận, chia sẻ ngay cho mọi người cùng biết nhé")
    assert chain_fingerprint(forwarded) == "43d0f6da06f588e1"  # kept in state across releases
    words = " ".join(f"tu{i}" for i in range(20))
    assert chain_fingerprint(words + " cuoi") == chain_fingerprint(words + " khac") == chain_fingerprint(words)
    assert chain_fingerprint(words) != chain_fingerprint(words.replace("tu19", "tu99"))


def test_a_config_without_a_doc_line_parses() -> None:
    raw = json.loads(DEFAULT_CREDIBILITY_CONFIG.read_text(encoding="utf-8"))
    raw.pop("doc")
    assert CredibilityConfig.parse(json.dumps(raw)) == CONFIG
