"""Learning credibility weights from officers' verdicts, and judging a config on held-out ones.

A sample is what the scorer saw when a tip joined its incident (`features`, stored with the
score) and the officer's verdict on that tip (valuable or not). The fit is a logistic
regression on those features with the current config as a Gaussian prior: it minimises

    log-loss + strength / 2 · Σ (θ − θ₀)²

where θ are the calibrated weights (calibration_scale × weight) and the intercept, and θ₀ the
current ones. A province with few verdicts stays near the defaults; thousands move it. The
base rate keeps its fixed part (it is already learned from verdicts, by counting), officers'
own verdict signals are not refitted (they are the label), and the reasons still add up to
the log-odds under the same signal names. Pure: samples in, a config and figures out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig, score_features

Sample = tuple[dict[str, float], bool]  # (features when scored, judged valuable)
NOT_FITTED = ("base_rate", "officer_valuable", "officer_not_valuable", "officer_false_report")
DEFAULT_PRIOR_STRENGTH = 20.0  # ≈ the weight of 80 verdicts on a signal that is on or off
MIN_SAMPLES = 30


class FitError(ValueError):
    """The verdicts cannot support a fit; the message says why and what to do."""


def fitted_signals(config: CredibilityConfig) -> list[str]:
    return sorted(name for name in config.weights if name not in NOT_FITTED)


def fit(samples: list[Sample], prior: CredibilityConfig, version: str,
        strength: float = DEFAULT_PRIOR_STRENGTH, about: dict[str, Any] | None = None) -> CredibilityConfig:
    """A new config `version`: `prior` with its weights and intercept fitted to `samples`."""
    valuable = sum(1 for _, real in samples if real)
    if len(samples) < MIN_SAMPLES or valuable == 0 or valuable == len(samples):
        raise FitError(f"{len(samples)} verdicts ({valuable} valuable) are too few to fit: at least {MIN_SAMPLES}, "
                       "of both kinds, are needed — take a longer period (--since) or wait for more verdicts")
    names = fitted_signals(prior)
    scale = prior.calibration_scale
    x = np.array([[f.get(name, 0.0) for name in names] + [1.0] for f, _ in samples])
    # The parts not refitted (the base rate, officers' verdicts already on the incident) stay as they are.
    offset = np.array([scale * (f.get("base_rate", 0.0) + sum(prior.weights.get(name, 0.0) * f.get(name, 0.0)
                                                              for name in NOT_FITTED[1:])) for f, _ in samples])
    y = np.array([1.0 if real else 0.0 for _, real in samples])
    theta0 = np.array([scale * prior.weights[name] for name in names] + [prior.calibration_intercept])
    theta = theta0.copy()
    for _ in range(100):  # Newton's method: the penalised log-loss is strictly convex
        p = 1 / (1 + np.exp(-(x @ theta + offset)))
        gradient = x.T @ (p - y) + strength * (theta - theta0)
        hessian = (x.T * (p * (1 - p))) @ x + strength * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    weights = {**prior.weights, **{name: round(float(theta[i]) / scale, 3) for i, name in enumerate(names)}}
    fitted = replace(prior, version=version, weights=weights, calibration_intercept=round(float(theta[-1]), 3),
                     fit=None)
    figures = {"from": prior.version, "verdicts": len(samples), "valuable": valuable, "prior_strength": strength,
               "log_loss_before": round(log_loss(samples, prior), 4),
               "log_loss_after": round(log_loss(samples, fitted), 4), **(about or {})}
    return replace(fitted, fit=figures)


def log_loss(samples: list[Sample], config: CredibilityConfig) -> float:
    total = 0.0
    for features, real in samples:
        p = min(max(score_features(features, config)[0], 1e-6), 1 - 1e-6)
        total -= math.log(p if real else 1 - p)
    return total / len(samples)


@dataclass(frozen=True)
class Quality:
    """How well scores rank and are calibrated against what happened."""

    samples: int
    valuable: int
    auc: float
    brier: float
    reliability: list[tuple[float, float, int]]  # (mean predicted, observed valuable share, count) per bin


def quality(pairs: list[tuple[float, bool]], bins: int = 10) -> Quality:
    """ROC-AUC, Brier score and reliability table of (score, truth) pairs."""
    if not pairs:
        raise FitError("no verdicts to judge on: choose a period that has some")
    return Quality(len(pairs), sum(1 for _, real in pairs if real), roc_auc(pairs), brier(pairs),
                   reliability(pairs, bins))


def rescored(samples: list[Sample], config: CredibilityConfig) -> list[tuple[float, bool]]:
    return [(score_features(features, config)[0], real) for features, real in samples]


def roc_auc(pairs: list[tuple[float, bool]]) -> float:
    """Probability a real (valuable) case outscores another (ties count half); nan with one kind only."""
    ranked = sorted(pairs, key=lambda p: p[0])
    positives = sum(1 for _, real in pairs if real)
    negatives = len(pairs) - positives
    if not positives or not negatives:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += (i + 1 + j) / 2 * sum(1 for _, real in ranked[i:j] if real)
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def brier(pairs: list[tuple[float, bool]]) -> float:
    return sum((p - real) ** 2 for p, real in pairs) / len(pairs)


def reliability(pairs: list[tuple[float, bool]], bins: int = 10) -> list[tuple[float, float, int]]:
    out = []
    for b in range(bins):
        inside = [(p, r) for p, r in pairs if b / bins <= p < (b + 1) / bins or (b == bins - 1 and p == 1.0)]
        if inside:
            out.append((sum(p for p, _ in inside) / len(inside), sum(r for _, r in inside) / len(inside), len(inside)))
    return out


def moved_most(current: CredibilityConfig, candidate: CredibilityConfig, n: int = 5) -> list[tuple[str, float, float]]:
    """The `n` signals whose calibrated weight (log-odds per unit) moved most: (signal, before, after)."""
    names = set(current.weights) | set(candidate.weights)
    rows = [(name, current.calibration_scale * current.weights.get(name, 0.0),
             candidate.calibration_scale * candidate.weights.get(name, 0.0)) for name in names]
    rows.append(("calibration", current.calibration_intercept, candidate.calibration_intercept))
    return sorted(rows, key=lambda r: (-abs(r[2] - r[1]), r[0]))[:n]


def severity_changes(incidents: list[tuple[str, dict[str, float]]], current: CredibilityConfig,
                     candidate: CredibilityConfig, alerting: AlertConfig) -> list[tuple[str | None, str | None]]:
    """(severity now, severity under the candidate) of each (category, features) whose
    credibility-decided severity would change. Forwarded rumours never page, as in the engine."""
    changes = []
    for category, features in incidents:
        if features.get("chain_message"):
            continue
        before = alerting.credible_severity(category, score_features(features, current)[0])
        after = alerting.credible_severity(category, score_features(features, candidate)[0])
        if before != after:
            changes.append((before, after))
    return changes
