"""`binhyen credibility fit | report`: learn the weights from officers' verdicts, in ClickHouse
or in an exported history.

The workers store each tip's features when scored (`{private}.tip_scores`, under the scorer
version that scored it) and the verdicts are in `feedback`: the fit and the report read
exactly what the live scorer saw and re-score it (processors/credibility_fit.py), so neither
recomputes history, and no score already emitted changes. From a history (`--input`), the
offline run (`binhyen process`) keeps the same two things as it goes. A candidate goes live only
through `binhyen credibility promote` (a processor version built over the history, as `reprocess`).

Reputation never leaves the workers per reporter: what this module reads and prints is per
tip (features, no reporter) or aggregated by channel.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from processors.credibility import JUDGED, VALUABLE, CredibilityConfig, Sample
from processors.credibility_fit import (
    FitError, Quality, fit, moved_most, quality, rescored, severity_changes,
)
from processors.offline import OfflineRun
from processors.pseudonym import Pseudonymiser
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


def judged_in_file(lines: Iterable[bytes], settings: Settings, config: CredibilityConfig,
                   period: Period | None) -> tuple[list[Sample], OfflineRun]:
    """What `judged_tips` reads on the stack, from an exported history (contract JSON lines):
    `binhyen process`'s run under `config`, its tips of `period` (all, without one) that
    officers judged, in tip order; and the run (its incidents, channels)."""
    run = OfflineRun.create(Pseudonymiser(secrets.token_bytes(32)), config, settings.alert_config(),
                            settings.meaning_model(), settings.staff_registry())
    for _ in run.process(lines):
        pass
    if period is None:
        return run.judged(), run
    return run.judged(day_start_s(period.since) * 1000, day_start_s(period.until) * 1000), run


def judged_tips(settings: Settings, scorer: str, period: Period) -> list[Sample]:
    """(features when scored, valuable) of the tips of `period` scored by `scorer` that officers
    judged valuable, not valuable or false (a duplicate says nothing of the report), in the
    order of the tips (the fit holds the latest back)."""
    client = connect(settings, settings.clickhouse_database)
    rows = client.execute(
        "SELECT scored_features, verdict FROM ("
        " SELECT event_id, any(features) AS scored_features, min(occurred_at) AS tip_at"
        f" FROM {private_database(settings.clickhouse_database)}.tip_scores"
        "  WHERE scorer_version = %(scorer)s AND features != ''"
        "   AND occurred_at >= toDateTime(%(since)s) AND occurred_at < toDateTime(%(until)s)"
        "  GROUP BY event_id"
        ") ANY INNER JOIN ("
        " SELECT tip_event_id AS event_id, argMax(verdict, occurred_at_ms) AS verdict FROM feedback FINAL"
        "  WHERE tip_event_id != '' GROUP BY event_id"
        ") USING event_id WHERE verdict IN ('valuable', 'not_valuable', 'false_report') ORDER BY tip_at, event_id",
        {"scorer": scorer, "since": day_start_s(period.since), "until": day_start_s(period.until)})
    return [(json.loads(features), verdict == "valuable") for features, verdict in rows]


def next_version(config: CredibilityConfig) -> str:
    match = _VERSION.match(config.version)
    return f"cred-{int(match[1]) + 1}" if match else f"{config.version}-fit"


def default_output(version: str) -> Path:
    match = _VERSION.match(version)
    return DEFAULT_CREDIBILITY_CONFIG.parent / (f"credibility.v{match[1]}.json" if match else f"credibility.{version}.json")


def fit_from_verdicts(settings: Settings, period: Period | None, version: str | None, output: Path | None,
                      strength: float | None = None, history: Iterable[bytes] | None = None,
                      ) -> tuple[CredibilityConfig, CredibilityConfig, Path]:
    """(live config, fitted candidate, the file written). Writes only a new file. From the stack's
    stored scores and verdicts, or from `history` (contract JSON lines) scored offline under the
    config from files; `period` is needed on the stack, and narrows a history."""
    if history is None and period is None:
        raise ConfigError("--since and --until are needed to fit on the stack's verdicts; or give --input FILE")
    current = live_config(settings) if history is None else settings.credibility_config()
    version = version or next_version(current)
    path = output or default_output(version)
    if path.exists():
        raise ConfigError(f"{path} exists: a config is never overwritten (its scores may be on record); "
                          "give another --out or --version")
    if history is None and period is not None:
        samples = judged_tips(settings, current.version, period)
    elif history is not None:
        samples, run = judged_in_file(history, settings, current, period)
        period = period or run_period(run)
    where = f"scorer {current.version}, tips of {period}"
    try:
        candidate = fit(samples, current, version, strength, {"since": str(period.since), "until": str(period.until)})
    except FitError as exc:
        raise ConfigError(f"{exc} ({where})") from None
    body = {"version": candidate.version,
            "doc": (f"Fitted by `binhyen credibility fit` from {current.version} on {len(samples)} officers' verdicts "
                    f"on tips of {period}; see `fit`. Promote it with `binhyen credibility promote`."),
            **{k: v for k, v in candidate.__dict__.items() if k not in ("version", "doc")}}
    try:
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    return current, candidate, path


def run_period(run: OfflineRun) -> Period:
    """The Vietnamese days of a history's judged tips."""
    days = [datetime.fromtimestamp(tip.at_ms / 1000, VIETNAM).date() for tip_id, tip in run.scored.items()
            if tip_id in run.verdicts]
    if not days:
        raise ConfigError("the history has no tip with a verdict: nothing to fit on")
    return Period(min(days), max(days) + timedelta(days=1))


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

    @property
    def worse(self) -> bool:
        """The candidate predicts the held-out verdicts worse than the live config (log-loss)."""
        return self.quality[self.candidate.version].log_loss > self.quality[self.current.version].log_loss

    def refusal(self) -> str:
        now, new = self.quality[self.current.version], self.quality[self.candidate.version]
        return (f"{self.candidate.version} predicts the held-out verdicts worse than {self.current.version} "
                f"(log-loss {new.log_loss:.4f} > {now.log_loss:.4f}): do not promote it; --force to judge it anyway")


def report(settings: Settings, candidate: CredibilityConfig, period: Period, open_hours: int = 24,
           history: Iterable[bytes] | None = None) -> Report:
    """The live config and `candidate` side by side on the verdicts of `period`: from the stack, or
    from `history` (contract JSON lines) scored offline under the config from files."""
    current = live_config(settings) if history is None else settings.credibility_config()
    if _scoring_inputs(candidate) != _scoring_inputs(current):
        raise ConfigError(f"{candidate.version} changes the priors, the reputation memory or the signal thresholds of "
                          f"{current.version}: the stored features cannot judge it; reprocess with it instead "
                          "(`binhyen reprocess --credibility FILE --compare`)")
    fitted_until = (candidate.fit or {}).get("until")
    if fitted_until and date.fromisoformat(fitted_until) > period.since:
        raise ConfigError(f"{candidate.version} was fitted on tips up to {fitted_until} (exclusive): judge it on "
                          f"verdicts it did not see, --since {fitted_until} or later")
    if history is None:
        samples = judged_tips(settings, current.version, period)
        incidents, channels = _open_and_channels_on_stack(settings, period, open_hours)
    else:
        samples, run = judged_in_file(history, settings, current, period)
        incidents, channels = _open_and_channels_offline(run, period, open_hours)
    scores = {config.version: rescored(samples, config) for config in (current, candidate)}
    try:
        judged = {version: quality(pairs) for version, pairs in scores.items()}
    except FitError as exc:
        raise ConfigError(f"{exc} (scorer {current.version}, tips of {period})") from None
    changes = severity_changes(incidents, current, candidate, settings.alert_config())
    return Report(current, candidate, period, judged, moved_most(current, candidate), len(incidents),
                  open_hours, changes, channels)


OpenAndChannels = tuple[list[tuple[str | None, dict[str, float]]], list[tuple[str, int, int]]]


def _open_and_channels_on_stack(settings: Settings, period: Period, open_hours: int) -> OpenAndChannels:
    """(category, features) of the tip incidents updated in the last `open_hours` of data, and
    (channel, verdicts, valuable) of the period."""
    client = connect(settings, settings.clickhouse_database)
    open_rows = client.execute(
        "SELECT category, features FROM incidents FINAL WHERE features != '' AND device_alarms = 0"
        " AND updated_at >= (SELECT max(updated_at) FROM incidents) - %(seconds)s", {"seconds": open_hours * 3600})
    channels = client.execute(
        "SELECT channel, count(), countIf(verdict = 'valuable') FROM tip_verdicts"
        " WHERE verdict IN ('valuable', 'not_valuable', 'false_report')"
        " AND occurred_at >= toDateTime(%(since)s) AND occurred_at < toDateTime(%(until)s)"
        " GROUP BY channel ORDER BY channel",
        {"since": day_start_s(period.since), "until": day_start_s(period.until)})
    return [(category, json.loads(features)) for category, features in open_rows], [tuple(row) for row in channels]


def _open_and_channels_offline(run: OfflineRun, period: Period, open_hours: int) -> OpenAndChannels:
    """The same figures from an offline run."""
    newest = max((i["updated_at_ms"] for i in run.incidents.values()), default=0)
    incidents = [(i["category"], {f["signal"]: f["value"] for f in i["features"]}) for i in run.incidents.values()
                 if i["features"] and not i["device_alarms"] and i["updated_at_ms"] >= newest - open_hours * 3_600_000]
    since, until = day_start_s(period.since) * 1000, day_start_s(period.until) * 1000
    counts: dict[str, list[int]] = {}
    for tip_id, tip in run.scored.items():
        verdict = run.verdicts.get(tip_id, (0, ""))[1]
        if since <= tip.at_ms < until and verdict in JUDGED:
            count = counts.setdefault(tip.channel, [0, 0])
            count[0] += 1
            count[1] += verdict == VALUABLE
    return incidents, [(channel, n, valuable) for channel, (n, valuable) in sorted(counts.items())]


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
           f"{'log-loss':<22}{ours.log_loss:>12.4f}{theirs.log_loss:>12.4f}",
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
