"""A simulated province scored offline: what the stack would store for a credibility fit.

For each tip, the features its incident had when the tip joined it (the stack's
`tip_scores`) and the officers' last verdict on it; for each incident with a tip, its
features after its last report and before any verdict, with the simulator's truth — what a
config is judged on (bench/credibility_quality.py, tests/unit/test_credibility_learning.py).
Features do not depend on the weights, so one run serves every candidate config that keeps
the priors and the reputation memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from processors.alerts import AlertConfig
from processors.credibility import NOT_VALUABLE, VALUABLE, CredibilityConfig
from processors.credibility_fit import Sample
from processors.pipeline import EventProcessor, ProcessorState
from processors.pseudonym import Pseudonymiser
from processors.validation import parse_contract
from streams.sim.simulator import Simulation


@dataclass
class Scored:
    tips: dict[str, tuple[int, dict[str, float]]] = field(default_factory=dict)  # id -> (at ms, features)
    verdicts: dict[str, str] = field(default_factory=dict)  # tip id -> last verdict
    incidents: dict[str, tuple[int, dict[str, float], bool]] = field(default_factory=dict)  # (opened ms, features, real)

    def judged(self, since_ms: int = 0, until_ms: int = 2**62) -> list[Sample]:
        """(features, valuable) of the tips of [since, until) officers judged valuable or not."""
        return [(features, self.verdicts[tip] == VALUABLE) for tip, (at, features) in self.tips.items()
                if since_ms <= at < until_ms and self.verdicts.get(tip) in (VALUABLE, *NOT_VALUABLE)]

    def truth(self, since_ms: int = 0, until_ms: int = 2**62) -> list[Sample]:
        """(features before any verdict, real) of the incidents opened in [since, until)."""
        return [(features, real) for opened, features, real in self.incidents.values() if since_ms <= opened < until_ms]


def score_simulation(simulation: Simulation, credibility: CredibilityConfig, alerting: AlertConfig) -> Scored:
    truth = {row["event_id"]: row for row in simulation.truth}
    processor = EventProcessor(ProcessorState(), credibility, alerting)
    pseudonyms = Pseudonymiser(b"k" * 32)
    out = Scored()
    before_verdict: dict[str, tuple[int, dict[str, float], list[str]]] = {}
    for event in simulation.events:
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
            out.tips[record["event_id"]] = (record["occurred_at_ms"],
                                            {f["signal"]: f["value"] for f in result.joined["features"]})
    for incident_id, (opened, features, members) in before_verdict.items():
        rows = [truth[e] for e in members if e in truth]
        if any(row["type"] == "tip" for row in rows):
            out.incidents[incident_id] = (opened, features, sum(row["real"] for row in rows) * 2 > len(rows))
    return out
