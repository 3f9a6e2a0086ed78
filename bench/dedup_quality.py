"""Pairwise precision, recall and F1 of incident clustering against labelled truth.

    .venv/bin/python bench/dedup_quality.py            # the corpus and a simulated province

Pairs are pairs of tips: a true pair is two tips of one true incident; a predicted pair two
tips the clusterer put in one incident.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.incidents import DedupConfig, IncidentClusterer  # noqa: E402
from processors.pseudonym import Pseudonymiser  # noqa: E402
from processors.validation import parse_contract  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "dedup_corpus.jsonl"


def cluster(events: list[dict[str, Any]], config: DedupConfig | None = None) -> dict[str, str]:
    """event id -> incident id, running the clusterer over contract events in order."""
    clusterer = IncidentClusterer({}, config)
    assigned = {}
    for event in events:
        event_type, record, _ = parse_contract(event, Pseudonymiser(b"k" * 32))
        outcome = clusterer.handle(event_type, record)
        if outcome.incident_id:
            assigned[record["event_id"]] = outcome.incident_id
    return assigned


def pairwise(truth: dict[str, str], predicted: dict[str, str]) -> dict[str, float]:
    def pairs(labels: dict[str, str]) -> set[tuple[str, str]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for event_id, label in labels.items():
            groups[label].append(event_id)
        return {tuple(sorted(p)) for members in groups.values() for p in combinations(members, 2)}

    ids = truth.keys() & predicted.keys()
    true_pairs = pairs({i: truth[i] for i in ids})
    found = pairs({i: predicted[i] for i in ids})
    hit = len(true_pairs & found)
    precision = hit / len(found) if found else 1.0
    recall = hit / len(true_pairs) if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": len(true_pairs),
            "predicted_pairs": len(found), "items": len(ids)}


def corpus_quality(config: DedupConfig | None = None) -> dict[str, float]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    events = sorted((row["event"] for row in rows), key=lambda e: e["occurred_at"])
    truth = {row["event"]["event_id"]: row["incident"] for row in rows}
    return pairwise(truth, cluster(events, config))


def simulation_quality(province: int = 96, days: int = 2, seed: int = 1,
                       config: DedupConfig | None = None) -> dict[str, float]:
    from streams.sim.simulator import SimConfig, simulate

    simulation = simulate(SimConfig(province, days=days, seed=seed))
    kinds = {row["event_id"]: row for row in simulation.truth}
    truth = {e: row["incident"] for e, row in kinds.items() if row["type"] == "tip"}
    predicted = cluster(simulation.events, config)
    return pairwise(truth, {e: i for e, i in predicted.items() if e in truth})


def main() -> None:
    for name, result in (("corpus", corpus_quality()), ("simulated Cà Mau, 2 days", simulation_quality())):
        print(f"{name:<26} precision {result['precision']:.3f}  recall {result['recall']:.3f}  "
              f"F1 {result['f1']:.3f}  ({result['items']} tips, {result['true_pairs']} true pairs, "
              f"{result['predicted_pairs']} predicted)")


if __name__ == "__main__":
    main()
