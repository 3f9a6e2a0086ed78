"""Explainable credibility of an incident: a score in [0, 1] with each signal's part.

The score is a logistic model in log-odds: the base rate of the commune and channel
(Beta-Bernoulli, pooled towards the province prior of ~350 valuable tips in 648), plus one
contribution per signal, scaled and shifted by a calibration fitted on simulated truth.
The (calibrated) contributions are the reasons: they add up to the score's log-odds, so a
reader sees exactly why.
Anonymous tips are scored on content and corroboration, never on anonymity itself.

Reputation (`ReputationBook`) is learned from officers' verdicts per reporter pseudonym,
source group, channel and commune, each shrunk towards the level above it; with a
`reputation_memory` a reporter's or group's older verdicts fade, so one that turns unreliable
loses a long good record within a bounded number of verdicts. Reputation lives only in the workers' state,
keyed by pseudonym: analysts see aggregates by channel, group and commune, never a reporter's.

`features` are the signals' raw values (before weights), kept with every score so that a fit
(`processors/credibility_fit.py`) learns from exactly what the scorer saw. Each is bounded, and
the score never falls as independent reports come in: the doubts (vague text, a spam burst,
a forwarded chain) weigh by the share of the reports they describe, so short texts from many
people, or a forwarded notice that a direct report or a device backs, are not held down by
one flag that a single further report would lift all at once.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from processors.text import content_tokens, locators

VALUABLE, NOT_VALUABLE = "valuable", ("not_valuable", "false_report")
MAX_REPORTERS = 12  # independent reporters beyond this add nothing: the signal is bounded
DISCREDITED_BELOW = 0.85  # a reporter's valuable rate below this share of the base rate: not paged alone
TURNING = ("reporter:", "source:")  # reputations a `reputation_memory` lets fade
# What each signal means, for the officer a page goes to (the reasons keep the signal ids).
SIGNAL_LABELS = {
    "independent_reporters": "nhiều người báo độc lập", "distinct_channels": "nhiều kênh báo",
    "attachments": "có ảnh/tệp đính kèm", "specificity": "mô tả cụ thể", "device_corroboration": "thiết bị xác nhận",
    "reporter_reputation": "uy tín người báo", "source_reputation": "uy tín nhóm/kênh nguồn",
    "spam_burst": "tin báo dồn dập (spam)", "chain_message": "tin nhắn chuyển tiếp dây chuyền",
    "vague_text": "nội dung mơ hồ", "officer_valuable": "cán bộ xác nhận có giá trị",
    "officer_not_valuable": "cán bộ đánh giá không giá trị", "officer_false_report": "cán bộ kết luận báo sai",
}


@dataclass(frozen=True)
class CredibilityConfig:
    version: str
    prior_valuable: float
    prior_strength: float
    reputation_strength: float
    weights: dict[str, float]
    chain_communes: int
    chain_window_hours: float
    burst_tips: int
    burst_minutes: float
    vague_words: int
    calibration_scale: float
    calibration_intercept: float
    reputation_memory: float | None = None  # verdicts a key remembers (older ones fade); None: all alike
    fit: dict[str, Any] | None = None  # the figures of the fit that made this config, if one did

    @classmethod
    def load(cls, path: Path) -> "CredibilityConfig":
        return cls.parse(path.read_text(encoding="utf-8"))

    @classmethod
    def parse(cls, text: str) -> "CredibilityConfig":
        raw = json.loads(text)
        raw.pop("doc", None)
        return cls(**raw)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


class ReputationBook:
    """Valuable / not-valuable counts per key ('reporter:…', 'source:…', 'channel:…', 'commune:…')."""

    def __init__(self, counts: MutableMapping[str, Any], config: CredibilityConfig) -> None:
        self.counts = counts
        self.config = config

    def record(self, keys: list[str], verdict: str) -> None:
        if verdict != VALUABLE and verdict not in NOT_VALUABLE:
            return  # "duplicate" says nothing about the reporter
        memory = self.config.reputation_memory
        for key in keys:
            # A reporter or a group can turn: its older verdicts fade, each weighing `keep` times the
            # next. A channel's or a commune's rate is a base rate: every verdict counts alike.
            keep = 1.0 - 1.0 / memory if memory and key.startswith(TURNING) else 1.0
            valuable, total = self.counts.get(key) or (0, 0)
            self.counts[key] = [_fade(valuable, keep) + (verdict == VALUABLE), _fade(total, keep) + 1]

    def rate(self, key: str, prior: float, strength: float) -> float:
        """Posterior mean valuable rate of `key`, shrunk towards `prior`."""
        valuable, total = self.counts.get(key) or (0, 0)
        return (valuable + prior * strength) / (total + strength)

    def discredited(self, reporter: str | None, commune: int, channel: str | None) -> bool:
        """Officers' verdicts on this reporter are clearly below the base rate (one false report
        and nothing valuable, say): what they say is urgent waits for someone else to say it too."""
        if not reporter or f"reporter:{reporter}" not in self.counts:
            return False
        base = self.base_rate(commune, channel)
        return self.rate(f"reporter:{reporter}", base, self.config.reputation_strength) < DISCREDITED_BELOW * base

    def base_rate(self, commune: int, channel: str | None) -> float:
        province = self.config.prior_valuable
        strength = self.config.prior_strength
        channel_rate = self.rate(f"channel:{channel}", province, strength) if channel else province
        return self.rate(f"commune:{commune}", channel_rate, strength)


def _fade(count: float, keep: float) -> float:
    """Counts stay integers without a memory (as state written before it holds them)."""
    return count if keep == 1.0 else round(count * keep, 6)


def chain_fingerprint(text: str) -> str:
    """The same forwarded message, whatever its emoji, case or diacritics."""
    return hashlib.sha256(" ".join(content_tokens(text)[:20]).encode()).hexdigest()[:16]


def specificity(text: str, location_text: str | None) -> float:
    """0..1: a named place, a hamlet or room, numbers, and enough words to be checkable."""
    words = content_tokens(text)
    return (0.25 * bool(locators(text)) + 0.25 * bool(location_text)
            + 0.25 * any(w.isdigit() for w in words) + 0.25 * (len(words) >= 8))


def score(incident: dict[str, Any], reputation: ReputationBook, chain_communes: dict[str, int],
          config: CredibilityConfig) -> tuple[float, list[dict[str, Any]]]:
    """(credibility, reasons): reasons are {signal, contribution} in log-odds, largest first.

    `chain_communes` maps a tip's chain fingerprint to how many communes carried that text
    within the chain window.
    """
    return score_features(features(incident, reputation, chain_communes, config), config)


def features(incident: dict[str, Any], reputation: ReputationBook, chain_communes: dict[str, int],
             config: CredibilityConfig) -> dict[str, float]:
    """Each signal's raw value for `incident` now; `base_rate` is the base rate's log-odds.

    Signals absent from the incident are left out (value 0). Only the reputation signals and the
    base rate depend on the config (its priors and memory), never on its weights.
    """
    tips = [m for m in incident["members"] if m["k"] == "tip"]
    devices = [m for m in incident["members"] if m["k"] == "device"]
    first_channel = tips[0]["ch"] if tips else None
    base = reputation.base_rate(incident["commune"], first_channel)
    values: dict[str, float] = {"base_rate": _logit(base)}
    if tips:
        named = {m["rep"] for m in tips if m.get("rep")}
        anonymous = sum(1 for m in tips if not m.get("rep"))
        reporters = min(max(1.0, len(named) + 0.5 * anonymous), MAX_REPORTERS)
        values["independent_reporters"] = math.log(reporters)
        values["distinct_channels"] = float(len({m["ch"] for m in tips}) - 1)
        values["attachments"] = float(any(m.get("att") for m in tips))
        values["specificity"] = max(specificity(m["txt"], m.get("loc")) for m in tips)
        # The doubts weigh by the share of reports they describe (see the module's doc).
        vague = max(len(content_tokens(m["txt"])) for m in tips) < config.vague_words
        values["vague_text"] = float(vague) / reporters
        values["reporter_reputation"] = _reputation_shift(reputation, [f"reporter:{r}" for r in named], base)
        values["source_reputation"] = _reputation_shift(
            reputation, [f"source:{s}" for s in {m.get("src") for m in tips} if s], base)
        values["spam_burst"] = min(1.0, len(_bursting(tips, config)) / reporters)
        chained = sum(1 for m in tips if chain_communes.get(chain_fingerprint(m["txt"]), 0) >= config.chain_communes)
        values["chain_message"] = 0.0 if devices else chained / len(tips)
    if devices:
        values["device_corroboration"] = 1.0
    verdicts = list((incident.get("verdicts") or {}).values())
    if verdicts:
        final = max(set(verdicts), key=lambda v: (verdicts.count(v), v))
        if final != "duplicate":
            values[f"officer_{final}"] = 1.0
    return {name: value for name, value in values.items() if value}


Sample = tuple[dict[str, float], bool]  # (features when scored, judged valuable)
JUDGED = (VALUABLE, *NOT_VALUABLE)  # a duplicate says nothing of the report


class ScoredTip(NamedTuple):
    """What the scorer saw when a tip joined its incident (the stack's `tip_scores` row)."""

    at_ms: int
    features: dict[str, float]
    channel: str

    @classmethod
    def of(cls, tip: dict[str, Any], joined: dict[str, Any]) -> "ScoredTip":
        """`tip` as scored when it joined the incident `joined` (a snapshot)."""
        return cls(tip["occurred_at_ms"], {f["signal"]: f["value"] for f in joined["features"]}, tip["channel"])


def judged(scored: dict[str, ScoredTip], verdicts: dict[str, str], since_ms: int = 0,
           until_ms: int = 2**62) -> list[Sample]:
    """(features, valuable) of the tips of [since, until) with a verdict that judges the report,
    in the order of the tips (the fit holds the latest back)."""
    tips = sorted((tip.at_ms, tip_id) for tip_id, tip in scored.items()
                  if since_ms <= tip.at_ms < until_ms and verdicts.get(tip_id) in JUDGED)
    return [(scored[tip_id].features, verdicts[tip_id] == VALUABLE) for _, tip_id in tips]


def score_features(values: dict[str, float], config: CredibilityConfig) -> tuple[float, list[dict[str, Any]]]:
    """(credibility, reasons) of stored `features` under `config`: how a candidate config is
    judged on what the scorer saw, and how the live scorer scores."""
    parts = {name: value * (1.0 if name == "base_rate" else config.weights.get(name, 0.0))
             for name, value in values.items()}
    # Calibrated log-odds; each reason is its share of them, so the reasons add up to the score.
    scaled = {name: config.calibration_scale * value for name, value in parts.items()}
    scaled["calibration"] = config.calibration_intercept
    total = sum(scaled.values())
    reasons = [{"signal": name, "contribution": round(value, 3)}
               for name, value in sorted(scaled.items(), key=lambda kv: (-abs(kv[1]), kv[0])) if abs(value) >= 0.0005]
    return round(_sigmoid(total), 4), reasons


def _reputation_shift(reputation: ReputationBook, keys: list[str], base: float) -> float:
    """Mean log-odds shift of the keys' shrunk rates from the base rate (0 without history)."""
    if not keys:
        return 0.0
    strength = reputation.config.reputation_strength
    return sum(_logit(reputation.rate(key, base, strength)) - _logit(base) for key in keys) / len(keys)


def _bursting(tips: list[dict[str, Any]], config: CredibilityConfig) -> set[str]:
    """The reporters who sent `burst_tips` or more tips within `burst_minutes`."""
    window = config.burst_minutes * 60_000
    by_reporter: dict[str, list[int]] = {}
    for tip in tips:
        if tip.get("rep"):
            by_reporter.setdefault(tip["rep"], []).append(tip["t"])
    bursting = set()
    for reporter, times in by_reporter.items():
        times.sort()
        if any(times[i + config.burst_tips - 1] - times[i] <= window for i in range(len(times) - config.burst_tips + 1)):
            bursting.add(reporter)
    return bursting
