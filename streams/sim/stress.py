"""Stress on any generated history (contract events in time order, with its truth: event id ->
real): officers' verdicts partly wrong, a group of reliable reporters turning unreliable half
way, few valuable tips, a channel new to the province. What a credibility fit must survive
(bench/credibility_matrix.py, tests/unit/test_credibility_learning.py); the history's own
generator need not know of them. Pure and seeded: the same seed, the same stressed history.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]
FLIPPED = {"valuable": "not_valuable", "not_valuable": "valuable", "false_report": "valuable"}


@dataclass(frozen=True)
class History:
    events: list[Event]
    truth: dict[str, bool]

    @property
    def midpoint(self) -> str:
        """The `occurred_at` half way through the tips (ISO text sorts by time within one offset)."""
        tips = [e["occurred_at"] for e in self.events if e["type"] == "tip"]
        return tips[len(tips) // 2]


def wrong_verdicts(history: History, share: float, seed: int) -> History:
    """`share` of the verdicts say the opposite of what the officer should have said."""
    rng = random.Random(seed)
    events = [{**e, "verdict": FLIPPED[e["verdict"]]} if e["type"] == "feedback" and e["verdict"] in FLIPPED
              and rng.random() < share else e for e in history.events]
    return History(events, history.truth)


def turncoats(history: History, share: float, seed: int) -> History:
    """`share` of the reliable reporters (three or more tips, two in three real) send only false
    reports from the midpoint on, in their usual words; officers judge those false."""
    rng = random.Random(seed)
    tips_of: dict[str, list[str]] = defaultdict(list)
    for e in history.events:
        if e["type"] == "tip" and e.get("reporter_contact"):
            tips_of[e["reporter_contact"]].append(e["event_id"])
    reliable = sorted(r for r, tips in tips_of.items()
                      if len(tips) >= 3 and sum(history.truth.get(t, False) for t in tips) * 3 >= 2 * len(tips))
    turned = set(rng.sample(reliable, round(len(reliable) * share)))
    midpoint = history.midpoint
    false = {e["event_id"] for e in history.events if e["type"] == "tip" and e.get("reporter_contact") in turned
             and e["occurred_at"] >= midpoint}
    events = [{**e, "verdict": "false_report"} if e["type"] == "feedback" and e.get("tip_event_id") in false else e
              for e in history.events]
    return History(events, {**history.truth, **{t: False for t in false}})


def few_valuable(history: History, share: float, seed: int) -> History:
    """Real tips (and the verdicts on them) left out at random until about `share` of tips are real."""
    rng = random.Random(seed)
    tips = [e["event_id"] for e in history.events if e["type"] == "tip"]
    real = [t for t in tips if history.truth.get(t)]
    keep_real = round(share * (len(tips) - len(real)) / (1 - share))
    dropped = set(real) - set(rng.sample(real, min(keep_real, len(real))))
    events = [e for e in history.events if e["event_id"] not in dropped and e.get("tip_event_id") not in dropped]
    return History(events, {t: v for t, v in history.truth.items() if t not in dropped})


def new_channel(history: History, channel: str, share: float, seed: int) -> History:
    """`channel` carries no tip before the midpoint (its tips then come by Zalo) and `share` of them after."""
    rng = random.Random(seed)
    midpoint = history.midpoint
    events = []
    for e in history.events:
        if e["type"] == "tip":
            if e["occurred_at"] < midpoint and e["channel"] == channel:
                e = {**e, "channel": "zalo"}
            elif e["occurred_at"] >= midpoint and rng.random() < share:
                e = {**e, "channel": channel}
        events.append(e)
    return History(events, history.truth)
