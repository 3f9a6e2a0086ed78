"""`binhyen credibility fit | report`: learn the weights from officers' verdicts in ClickHouse.

The workers store each tip's features when scored (`{private}.tip_scores`, under the scorer
version that scored it) and the verdicts are in `feedback`: the fit and the report read
exactly what the live scorer saw and re-score it (processors/credibility_fit.py), so neither
recomputes history, and no score already emitted changes. A candidate goes live only through
`binhyen credibility promote` (a processor version built over the history, as `reprocess`).

Reputation never leaves the workers per reporter: what this module reads and prints is per
tip (features, no reporter) or aggregated by channel.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from processors.credibility import CredibilityConfig
from processors.credibility_fit import (
    DEFAULT_PRIOR_STRENGTH, FitError, Quality, Sample, fit, moved_most, quality, rescored, severity_changes,
)
from sinks.clickhouse import connect, private_database
from streams.config import DEFAULT_CREDIBILITY_CONFIG, ConfigError, Settings
from streams.ops.reprocess import live_config_texts

VIETNAM = timezone(timedelta(hours=7))
_VERSION = re.compile(r"^cred-(\d+)$")


def day_start_s(day: date) -> int:
    """Midnight of `day` in Vietnam, as epoch seconds (periods are whole Vietnamese days)."""
    return int(datetime.combine(day, time(), VIETNAM).timestamp())


@dataclass(frozen=True)
class Period:
    since: date
    until: date  # exclusive

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise ConfigError(f"--until {self.until} is not after --since {self.since}: give a period of a day or more")

    def __str__(self) -> str:
        return f"{self.since} .. {self.until - timedelta(days=1)}"


def live_config(settings: Settings) -> CredibilityConfig:
    return CredibilityConfig.parse(live_config_texts(settings)["credibility"])


def load_candidate(path: Path) -> CredibilityConfig:
    try:
        return CredibilityConfig.load(path)
    except OSError as exc:
        raise ConfigError(f"cannot read the candidate {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not a credibility config ({exc}); `binhyen credibility fit` writes one") from None


def judged_tips(settings: Settings, scorer: str, period: Period) -> list[Sample]:
    """(features when scored, valuable) of the tips of `period` scored by `scorer` that officers
    judged valuable, not valuable or false (a duplicate says nothing of the report)."""
    client = connect(settings, settings.clickhouse_database)
    rows = client.execute(
        f"SELECT scored_features, verdict FROM ("
        f" SELECT event_id, any(features) AS scored_features FROM {private_database(settings.clickhouse_database)}.tip_scores"
        "  WHERE scorer_version = %(scorer)s AND features != ''"
        "   AND occurred_at >= toDateTime(%(since)s) AND occurred_at < toDateTime(%(until)s)"
        "  GROUP BY event_id"
        ") ANY INNER JOIN ("
        " SELECT tip_event_id AS event_id, argMax(verdict, occurred_at_ms) AS verdict FROM feedback FINAL"
        "  WHERE tip_event_id != '' GROUP BY event_id"
        ") USING event_id WHERE verdict IN ('valuable', 'not_valuable', 'false_report') ORDER BY event_id",
        {"scorer": scorer, "since": day_start_s(period.since), "until": day_start_s(period.until)})
    return [(json.loads(features), verdict == "valuable") for features, verdict in rows]


def next_version(config: CredibilityConfig) -> str:
    match = _VERSION.match(config.version)
    return f"cred-{int(match[1]) + 1}" if match else f"{config.version}-fit"


def default_output(version: str) -> Path:
    match = _VERSION.match(version)
    return DEFAULT_CREDIBILITY_CONFIG.parent / (f"credibility.v{match[1]}.json" if match else f"credibility.{version}.json")


def fit_from_verdicts(settings: Settings, period: Period, version: str | None, output: Path | None,
                      strength: float = DEFAULT_PRIOR_STRENGTH) -> tuple[CredibilityConfig, CredibilityConfig, Path]:
    """(live config, fitted candidate, the file written). Writes only a new file."""
    current = live_config(settings)
    version = version or next_version(current)
    path = output or default_output(version)
    if path.exists():
        raise ConfigError(f"{path} exists: a config is never overwritten (its scores may be on record); "
                          "give another --out or --version")
    samples = judged_tips(settings, current.version, period)
    try:
        candidate = fit(samples, current, version, strength,
                        {"since": str(period.since), "until": str(period.until)})
    except FitError as exc:
        raise ConfigError(f"{exc} (scorer {current.version}, tips of {period})") from None
    body = {"version": candidate.version,
            "doc": (f"Fitted by `binhyen credibility fit` from {current.version} on {len(samples)} officers' verdicts "
                    f"on tips of {period}; see `fit`. Promote it with `binhyen credibility promote`."),
            **{k: v for k, v in candidate.__dict__.items() if k not in ("version", "doc")}}
    try:
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    return current, candidate, path


@dataclass(frozen=True)
class Report:
    current: CredibilityConfig
    candidate: CredibilityConfig
    period: Period
    quality: dict[str, Quality]
    moved: list[tuple[str, float, float]]
    open_incidents: int
    open_hours: int
    severity_changes: list[tuple[str | None, str | None]]
    channels: list[tuple[str, int, int]]  # (channel, verdicts, valuable) in the period


def report(settings: Settings, candidate: CredibilityConfig, period: Period, open_hours: int = 24) -> Report:
    current = live_config(settings)
    if _scoring_inputs(candidate) != _scoring_inputs(current):
        raise ConfigError(f"{candidate.version} changes the priors, the reputation memory or the signal thresholds of "
                          f"{current.version}: the stored features cannot judge it; reprocess with it instead "
                          "(`binhyen reprocess --credibility FILE --compare`)")
    fitted_until = (candidate.fit or {}).get("until")
    if fitted_until and date.fromisoformat(fitted_until) > period.since:
        raise ConfigError(f"{candidate.version} was fitted on tips up to {fitted_until} (exclusive): judge it on "
                          f"verdicts it did not see, --since {fitted_until} or later")
    samples = judged_tips(settings, current.version, period)
    scores = {config.version: rescored(samples, config) for config in (current, candidate)}
    try:
        judged = {version: quality(pairs) for version, pairs in scores.items()}
    except FitError as exc:
        raise ConfigError(f"{exc} (scorer {current.version}, tips of {period})") from None
    client = connect(settings, settings.clickhouse_database)
    open_rows = client.execute(
        "SELECT category, features FROM incidents FINAL WHERE features != '' AND device_alarms = 0"
        " AND updated_at >= (SELECT max(updated_at) FROM incidents) - %(seconds)s", {"seconds": open_hours * 3600})
    incidents = [(category, json.loads(features)) for category, features in open_rows]
    changes = severity_changes(incidents, current, candidate, settings.alert_config())
    channels = client.execute(
        "SELECT channel, count(), countIf(verdict = 'valuable') FROM tip_verdicts"
        " WHERE verdict IN ('valuable', 'not_valuable', 'false_report')"
        " AND occurred_at >= toDateTime(%(since)s) AND occurred_at < toDateTime(%(until)s)"
        " GROUP BY channel ORDER BY channel",
        {"since": day_start_s(period.since), "until": day_start_s(period.until)})
    return Report(current, candidate, period, judged, moved_most(current, candidate), len(incidents),
                  open_hours, changes, [tuple(row) for row in channels])


def _scoring_inputs(config: CredibilityConfig) -> dict[str, Any]:
    """What the stored features depend on: all but the weights, the calibration and the version."""
    return {k: v for k, v in replace(config, version="", weights={}, calibration_scale=0.0,
                                     calibration_intercept=0.0, fit=None).__dict__.items()}


def lines(result: Report) -> list[str]:
    """The report as printed: quality side by side, reliability, what moved, open incidents, privacy."""
    now, new = result.current.version, result.candidate.version
    ours, theirs = result.quality[now], result.quality[new]
    out = [f"held-out verdicts: {ours.samples} tips of {result.period} ({ours.valuable} valuable), "
           f"scored by {now} when they came",
           f"{'':<22}{now:>12}{new:>12}",
           f"{'ROC-AUC':<22}{ours.auc:>12.3f}{theirs.auc:>12.3f}",
           f"{'Brier':<22}{ours.brier:>12.3f}{theirs.brier:>12.3f}",
           "reliability (predicted -> share judged valuable, tips):"]
    for version, judged in ((now, ours), (new, theirs)):
        out.append(f"  {version}: " + "; ".join(f"{p:.2f} -> {o:.2f} ({n})" for p, o, n in judged.reliability))
    out.append("signals that moved most (log-odds per unit, calibrated):")
    out += [f"  {name:<24}{before:>8.2f} -> {after:.2f}" for name, before, after in result.moved]
    changed: dict[str, int] = {}
    for before, after in result.severity_changes:
        key = f"{before or 'no page'} -> {after or 'no page'}"
        changed[key] = changed.get(key, 0) + 1
    detail = ", ".join(f"{key}: {n}" for key, n in sorted(changed.items()))
    out.append(f"open incidents (tips only, updated in the last {result.open_hours} h of data): "
               f"{result.open_incidents}; would change severity: {len(result.severity_changes)}"
               + (f" ({detail})" if detail else ""))
    out.append("verdicts by channel in the period (valuable / judged): " + (", ".join(
        f"{channel} {valuable}/{count}" for channel, count, valuable in result.channels) or "none"))
    out.append("reputation is kept per pseudonym inside the workers only and never exported per reporter: "
               "this report, like ClickHouse, shows aggregates by channel, group and commune")
    return out


def plot(result: Report, path: Path) -> None:
    """The reliability diagram of both configs (matplotlib, installed with the test extras)."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install matplotlib (or `make setup`)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for version, judged in result.quality.items():
        ax.plot([p for p, _, _ in judged.reliability], [o for _, o, _ in judged.reliability], marker="o",
                label=f"{version} (AUC {judged.auc:.3f})")
    ax.set_xlabel("credibility when the tip came")
    ax.set_ylabel("share judged valuable")
    ax.set_title(f"Held-out verdicts, {result.period}", fontsize=9)
    ax.legend(loc="upper left")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        plt.close(fig)
