"""The shape of credibility, not its values: more independent reports never lower it, no one
further report lifts it off a cliff, and every signal is bounded (issue 34, part 6)."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.credibility import MAX_REPORTERS, CredibilityConfig, ReputationBook, chain_fingerprint, score
from streams.config import DEFAULT_CREDIBILITY_CONFIG

CONFIG = CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)
C, M, T = 18352, 60_000, 1_756_868_400_000
CHANNELS = ["zalo", "facebook", "hotline", "sms", "vneid", "in_person"]
TEXTS = ["đánh nhau ở chợ", "cháy", "có trộm", "đánh nhau ở chợ, đông lắm",
         "có nhóm thanh niên cầm dao đánh nhau trước chợ ấp 3, một người chảy máu"]


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def report(n: int, text: str, channel: str, reporter: str | None) -> dict[str, Any]:
    return {"k": "tip", "e": f"t-{n}", "t": T + n * M, "txt": text, "ch": channel, "rep": reporter, "src": None,
            "att": [], "loc": None}


def credibility(members: list[dict[str, Any]], chains: dict[str, int] | None = None) -> tuple[float, dict[str, float]]:
    value, reasons = score({"commune": C, "members": members}, ReputationBook({}, CONFIG), chains or {}, CONFIG)
    return value, {r["signal"]: r["contribution"] for r in reasons}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TEXTS), st.sampled_from(CHANNELS), st.booleans()), min_size=2, max_size=16))
def test_another_independent_report_never_lowers_credibility(reports: list[tuple[str, str, bool]]) -> None:
    members: list[dict[str, Any]] = []
    before = 0.0
    for n, (text, channel, named) in enumerate(reports):
        members.append(report(n, text, channel, f"rp_{n}" if named else None))
        now, _ = credibility(members)
        assert now >= before - 1e-4, (n, text, channel)
        before = now


def test_a_fourth_short_report_is_no_cliff() -> None:
    """The finding: "đánh nhau ở chợ" from three people on two channels scored 0.06, and a fourth
    four-word tip lifted it to 0.89 (4.8 in log-odds). Now each further report adds less than the
    one before it, the fourth one that is no longer vague included."""
    texts = ["đánh nhau ở chợ", "đánh nhau ở chợ", "đánh nhau ở chợ", "đánh nhau ở chợ kìa"]
    channels = ["zalo", "zalo", "hotline", "zalo"]
    scores = [credibility([report(i, texts[i], channels[i], f"rp_{i}") for i in range(k)])[0] for k in range(1, 5)]
    steps = [logit(b) - logit(a) for a, b in zip(scores, scores[1:])]
    assert all(step > 0 for step in steps), scores
    assert steps == sorted(steps, reverse=True) and steps[-1] < 2.0, (scores, steps)
    assert scores[2] > 0.15  # three people on two channels count, short as each text is


def test_a_forwarded_notice_rises_with_each_direct_report_and_a_device_lifts_the_chain_doubt() -> None:
    notice = "Bé trai 5 tuổi mặc áo xanh đi lạc ở chợ, ai thấy báo giúp công an xã"
    chains = {chain_fingerprint(notice): 3}
    forwarded = [report(i, notice, "zalo", f"rp_{i}") for i in range(3)]
    alone, reasons = credibility(forwarded, chains)
    assert reasons["chain_message"] == round(CONFIG.calibration_scale * CONFIG.weights["chain_message"], 3)
    hotline = credibility(forwarded + [report(3, "mẹ cháu gọi báo con lạc ở chợ", "hotline", "rp_9")], chains)
    in_person = credibility(forwarded + [report(3, "mẹ cháu gọi báo con lạc ở chợ", "hotline", "rp_9"),
                                         report(4, "mẹ cháu đến trụ sở báo con lạc", "in_person", "rp_8")], chains)
    assert alone < hotline[0] < in_person[0]
    assert hotline[1]["chain_message"] > reasons["chain_message"]  # three copies in four reports: less doubt
    device = {"k": "device", "dev": "cam-1", "sig": "motion", "t": T}
    assert "chain_message" not in credibility(forwarded + [device], chains)[1]


def test_every_signal_is_bounded() -> None:
    crowd = [report(i, "đánh nhau ở chợ", CHANNELS[i % len(CHANNELS)], f"rp_{i}") for i in range(200)]
    _, reasons = credibility(crowd)
    _, twelve = credibility(crowd[:MAX_REPORTERS])
    assert reasons["independent_reporters"] == twelve["independent_reporters"] == round(
        CONFIG.calibration_scale * CONFIG.weights["independent_reporters"] * math.log(MAX_REPORTERS), 3)
    assert reasons["distinct_channels"] == round(
        CONFIG.calibration_scale * CONFIG.weights["distinct_channels"] * (len(CHANNELS) - 1), 3)
    # one reporter's burst weighs its share: alone it is the whole doubt, among eleven others a twelfth of it
    burst = [report(i, "đánh nhau ở chợ", "zalo", "rp_x") for i in range(5)]
    full = CONFIG.calibration_scale * CONFIG.weights["spam_burst"]
    assert credibility(burst)[1]["spam_burst"] == round(full, 3)
    assert credibility(burst + crowd[:11])[1]["spam_burst"] == round(full / 12, 3)
