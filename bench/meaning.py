"""Quality and cost of the meaning model (processors/meaning.py) on the on-call message corpora.

    .venv/bin/python bench/meaning.py                  # DEV, FRESH and THIRD
    .venv/bin/python bench/meaning.py --split dev      # only DEV, while building the lexicon

The corpora (tests/data/oncall/) were written independently of the code, each by a session
that had read neither the code nor the others. DEV (messages.jsonl) has been read while
building the lexicon; FRESH (messages_fresh.jsonl) and THIRD (messages_third.jsonl) are never
read to tune it, so theirs are the fair figures. Only aggregates are printed. Cost: µs per
message (median of 3 runs over the split), against processors.text.normalise alone on the same
texts in the same process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.meaning import CATEGORIES, MeaningModel  # noqa: E402
from processors.text import normalise  # noqa: E402
from streams.config import DEFAULT_MEANING_CONFIG  # noqa: E402

ONCALL = Path(__file__).resolve().parent.parent / "tests" / "data" / "oncall"
# The first corpus (both halves have been read while building the lexicon) and the second,
# written later by another session and never read to tune it (messages_fresh.README.md).
SPLITS = {"dev": ONCALL / "messages.jsonl", "fresh": ONCALL / "messages_fresh.jsonl",
          "third": ONCALL / "messages_third.jsonl"}


def corpus(split: str) -> list[dict[str, Any]]:
    """The labelled messages of a split: dev, fresh or third."""
    return [json.loads(line) for line in SPLITS[split].read_text(encoding="utf-8").splitlines() if line.strip()]


def _prf(hit: int, predicted: int, actual: int) -> dict[str, float]:
    precision = hit / predicted if predicted else 1.0
    recall = hit / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def quality(rows: list[dict[str, Any]], model: MeaningModel) -> dict[str, Any]:
    """Per-category P/R/F1 and macro-F1 on the tips (a tip read as not a tip has no category),
    urgent P/R on all messages, not-a-tip P/R on all messages."""
    read = [(row, model.read(row["text"])) for row in rows]
    tips = [(row, m) for row, m in read if row["is_tip"]]
    per_category = {}
    for category in CATEGORIES:
        hit = sum(1 for row, m in tips if row["category"] == category and m.is_tip and m.category == category)
        predicted = sum(1 for _, m in tips if m.is_tip and m.category == category)
        actual = sum(1 for row, _ in tips if row["category"] == category)
        per_category[category] = _prf(hit, predicted, actual)
    urgent = _prf(sum(1 for row, m in read if row["urgent"] and m.urgent),
                  sum(1 for _, m in read if m.urgent), sum(1 for row, _ in read if row["urgent"]))
    not_tip = _prf(sum(1 for row, m in read if not row["is_tip"] and not m.is_tip),
                   sum(1 for _, m in read if not m.is_tip), sum(1 for row, _ in read if not row["is_tip"]))
    return {"messages": len(rows), "per_category": per_category,
            "macro_f1": statistics.fmean(v["f1"] for v in per_category.values() if v["support"]),
            "urgent": urgent, "not_tip": not_tip}


def cost_us(texts: list[str], model: MeaningModel, runs: int = 3) -> dict[str, float]:
    """Median over runs of µs per message: the model's read, and normalise alone (the baseline).
    Each run starts with normalise's cache empty: live, every tip's text is new."""
    def per_message(call: Callable[[str], object]) -> float:
        samples = []
        for _ in range(runs):
            normalise.cache_clear()
            began = time.perf_counter()
            for text in texts:
                call(text)
            samples.append((time.perf_counter() - began) / len(texts) * 1e6)
        return statistics.median(samples)

    model.read(texts[0])  # warm the automaton and caches once
    meaning, baseline = per_message(model.read), per_message(normalise.__wrapped__)
    return {"meaning_us": meaning, "normalise_us": baseline, "ratio": meaning / baseline}


def report(split: str, model: MeaningModel) -> None:
    rows = corpus(split)
    figures = quality(rows, model)
    cost = cost_us([row["text"] for row in rows], model)
    print(f"== {split.upper()} ({figures['messages']} messages, model {model.version})")
    print(f"{'category':16} {'P':>6} {'R':>6} {'F1':>6} {'n':>4}")
    for category, v in figures["per_category"].items():
        print(f"{category:16} {v['precision']:6.2f} {v['recall']:6.2f} {v['f1']:6.2f} {v['support']:4d}")
    print(f"macro-F1 over categories (tips): {figures['macro_f1']:.3f}")
    for name in ("urgent", "not_tip"):
        v = figures[name]
        print(f"{name:8} precision {v['precision']:.3f}  recall {v['recall']:.3f}  (n={v['support']})")
    print(f"cost: {cost['meaning_us']:.1f} µs/message (median of 3); normalise alone {cost['normalise_us']:.1f} µs;"
          f" ratio {cost['ratio']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    args = parser.parse_args()
    model = MeaningModel.load(DEFAULT_MEANING_CONFIG)
    for split in (list(SPLITS) if args.split == "all" else [args.split]):
        report(split, model)


if __name__ == "__main__":
    main()
