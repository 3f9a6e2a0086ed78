"""A history scored offline: what the stack would store for a credibility fit, and the truth.

For each tip, the features its incident had when the tip joined it (the stack's
`tip_scores`) and the officers' last verdict on it; for each incident with a tip, its
features after its last report and before any verdict, with the truth of its events — what a
config is judged on (bench/credibility_quality.py, tests/unit/test_credibility_learning.py).
Features do not depend on the weights, so one run serves every candidate config that keeps
the priors and the reputation memory. The history may come from this simulator or from any
other generator that knows its truth (tests/data/population_b).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig, Sample, ScoredTip, judged
from processors.credibility_fit import FitError, Quality, fit, quality, rescored
from processors.meaning import MeaningModel
from processors.pipeline import EventProcessor, ProcessorState
from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract
from streams.sim.simulator import Simulation


@dataclass
class Scored:
    tips: dict[str, ScoredTip] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)  # tip id -> last verdict
    incidents: dict[str, tuple[int, dict[str, float], bool]] = field(default_factory=dict)  # (opened ms, features, real)

    def judged(self, since_ms: int = 0, until_ms: int = 2**62) -> list[Sample]:
        """(features, valuable) of the tips of [since, until) officers judged, in tip order."""
        return judged(self.tips, self.verdicts, since_ms, until_ms)

    def truth(self, since_ms: int = 0, until_ms: int = 2**62) -> list[Sample]:
        """(features before any verdict, real) of the incidents opened in [since, until)."""
        return [(features, real) for opened, features, real in self.incidents.values() if since_ms <= opened < until_ms]


def score_history(events: Iterable[dict[str, Any]], truth: dict[str, bool], credibility: CredibilityConfig,
                  alerting: AlertConfig, meaning: MeaningModel) -> Scored:
    """Contract events in time order, scored as the worker scores them; `truth` says which events
    were real (an incident is real when most of its events with a truth are)."""
    processor = EventProcessor(ProcessorState(), credibility, alerting, meaning=meaning)
    pseudonyms = Pseudonymiser(b"k" * 32)
    out = Scored()
    before_verdict: dict[str, tuple[int, dict[str, float], list[str]]] = {}
    for event in events:
        if event.get("signal") == "heartbeat":
            continue  # a device saying it is alive joins no incident: 97 % of the events, none of the scores
        event_type, record, _ = parse_contract(event, pseudonyms)
        result = processor.handle(event_type, record)
        if event_type == "feedback" and record.get("tip_event_id"):
            out.verdicts[record["tip_event_id"]] = record["verdict"]
        if event_type not in ("tip", "device_signal"):
            continue
        for snapshot in result.incidents:
            features = {f["signal"]: f["value"] for f in snapshot["features"]}
            before_verdict[snapshot["incident_id"]] = (snapshot["opened_at_ms"], features, snapshot["event_ids"])
        if result.joined is not None:
            out.tips[record["event_id"]] = ScoredTip.of(record, result.joined)
    for incident_id, (opened, features, members) in before_verdict.items():
        known = [truth[e] for e in members if e in truth]
        if known and any(e in out.tips for e in members):
            out.incidents[incident_id] = (opened, features, sum(known) * 2 > len(known))
    return out


def score_simulation(simulation: Simulation, credibility: CredibilityConfig, alerting: AlertConfig,
                     meaning: MeaningModel) -> Scored:
    return score_history(simulation.events, {row["event_id"]: bool(row["real"]) for row in simulation.truth},
                         credibility, alerting, meaning)


@dataclass(frozen=True)
class FitJudged:
    """A fit on the verdicts before a cut, judged against the truth of the incidents after it."""

    shipped: Quality
    fitted: Quality  # the shipped config's again when the fit was refused
    verdicts: int
    refused: str | None
    prior_strength: float | None = None  # as the held-back verdicts chose it (None: refused)


def judge_fit(scored: Scored, cut_ms: int, shipped: CredibilityConfig, first: int | None = None) -> FitJudged:
    """`first`: fit on only the first so many verdicts before the cut (how a fit grows with them)."""
    train, held_out = scored.judged(until_ms=cut_ms)[:first], scored.truth(since_ms=cut_ms)
    try:
        fitted, refused = fit(train, shipped, f"{shipped.version}-fit"), None
    except FitError as exc:  # refused, or too few verdicts: the province keeps the shipped weights
        fitted, refused = shipped, str(exc)
    return FitJudged(quality(rescored(held_out, shipped)), quality(rescored(held_out, fitted)), len(train), refused,
                     fitted.fit["prior_strength"] if fitted.fit else None)
