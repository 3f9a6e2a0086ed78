"""Clustering cost per tip must not grow with history.

    .venv/bin/python bench/dedup_cost.py

Feeds 1k, 10k and 100k tips of history (a province's communes, ~100 tips a day) through
the processors, then times the next 2,000 tips. The baseline, run in the same process on
the same tips, is contract parsing alone (what every tip costs anyway). Each history runs
twice: without and with the meaning model (processors/meaning.py) reading every tip's text.
On-call acks every page a minute after it first pages (an unanswered page is paged again until
somebody acts: years of them, never acked, would measure the alert state instead).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.credibility import CredibilityConfig  # noqa: E402
from processors.geography import communes_of_province  # noqa: E402
from processors.pipeline import EventProcessor, ProcessorState  # noqa: E402
from processors.pseudonym import Pseudonymiser  # noqa: E402
from processors.validation import parse_contract  # noqa: E402
from streams.sim import texts as T  # noqa: E402
from processors.alerts import AlertConfig  # noqa: E402
from processors.meaning import MeaningModel  # noqa: E402
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_MEANING_CONFIG  # noqa: E402

DAY_S = 86_400
START = 1_756_659_600  # 2025-09-01 00:00 +07:00


def tips(n: int, offset: int, rng: random.Random) -> list[dict]:
    communes = [c.code for c in communes_of_province(96)]
    out = []
    for i in range(offset, offset + n):
        category = rng.choice(list(T.TEMPLATES))
        place, _ = rng.choice(T.PLACES[category])
        facts = {"hamlet": rng.choice(T.HAMLETS), "street": rng.choice(T.STREETS), "person": rng.choice(T.PEOPLE),
                 "shop": rng.choice(T.SHOP_NAMES), "room": rng.randint(1, 12), "vehicle": rng.choice(T.VEHICLES),
                 "when": rng.choice(T.WHEN), "n": rng.randint(2, 9)}
        facts["place"] = place.format(**facts)
        at = START + i * DAY_S // 100  # ~100 tips a day
        out.append({"type": "tip", "event_id": f"b{i}", "commune_code": rng.choice(communes), "channel": "zalo",
                    "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+07:00", time.gmtime(at + 7 * 3600)),
                    "reporter_contact": f"+849{rng.randrange(10**8):08d}",
                    "text": rng.choice(T.TEMPLATES[category]).format(**facts), "category": category})
    return out


def handle(processor: EventProcessor, acked: set[str], event_type: str, record: dict) -> None:
    """The event, and on-call's ack of each page it made (raised, or a morning-digest line that
    became a P1/P2), a minute later."""
    for alert in processor.handle(event_type, record).alerts:
        if alert["state"] in ("raised", "escalated") and alert["severity"] in ("P1", "P2") \
                and alert["alert_id"] not in acked:
            acked.add(alert["alert_id"])
            processor.handle("alert_action", {
                "event_id": f"ack-{alert['alert_id']}", "occurred_at_ms": alert["at_ms"] + 60_000, "utc_offset_min": 420,
                "commune_code": None, "legacy_commune_code": None, "alert_id": alert["alert_id"], "action": "ack",
                "by": "bench"})


def main() -> None:
    config = CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)
    key = b"k" * 32
    model = MeaningModel.load(DEFAULT_MEANING_CONFIG)
    print(f"{'history':>8}  {'meaning':>7}  {'tips/s':>8}  {'baseline/s':>10}  {'ratio':>6}  {'open incidents':>14}")
    for history, meaning in ((h, m) for h in (1_000, 10_000, 100_000) for m in (None, model)):
        rng = random.Random(history)
        processor = EventProcessor(ProcessorState(), config, AlertConfig.load(DEFAULT_ALERT_CONFIG), meaning=meaning)
        acked: set[str] = set()
        for event in tips(history, 0, rng):
            handle(processor, acked, *parse_contract(event, Pseudonymiser(key))[:2])
        probe = tips(2_000, history, rng)
        began = time.perf_counter()
        parsed = [parse_contract(e, Pseudonymiser(key))[:2] for e in probe]
        baseline = len(probe) / (time.perf_counter() - began)
        began = time.perf_counter()
        for event in probe:
            handle(processor, acked, *parse_contract(event, Pseudonymiser(key))[:2])
        rate = len(probe) / (time.perf_counter() - began)
        open_now = sum(len(s["open"]) for s in processor.state.communes.values())
        print(f"{history:>8,}  {'yes' if meaning else 'no':>7}  {rate:>8,.0f}  {baseline:>10,.0f}  "
              f"{rate / baseline:>6.2f}  {open_now:>14,}")
        assert parsed


if __name__ == "__main__":
    main()
