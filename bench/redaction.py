"""Redaction: how many contacts leak and how much evidence is destroyed, what it costs per tip, and
what hostile text costs — against the redactor before issue 33's second round, in the same process.

    .venv/bin/python bench/redaction.py [--days 2]

The old redactor is read from git (`BEFORE`, the last commit of it) and loaded beside the current
one. Figures: the independent corpus tests/data/redaction_corpus.jsonl with the criteria of
tests/unit/test_redaction_corpus.py; the free texts of a simulated Cà Mau (tips, places, sources);
and the review's hostile shapes ("@ a.a.a…"), timed at 32 KiB for both and up to 1 MiB for the new one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import processors.redaction  # noqa: E402
from processors.pseudonym import Pseudonymiser  # noqa: E402
from processors.redaction import Redactor, contains_contact  # noqa: E402
from streams.sim.simulator import VN, SimConfig, simulate  # noqa: E402
from tests.unit.test_redaction_corpus import corpus_figures  # noqa: E402

BEFORE = "59de211465a55301125e0c3a9115127a8b2187f3"  # processors/redaction.py before the second round
KEY = Pseudonymiser(b"bench-key-000000")
HOSTILE = {"a@ a@ …": ("", "a@"), "@ a.a.a…": ("@ ", "a."), "@ aaaa…": ("@ ", "a"), "0 0 0 …": ("", "0 ")}


def old_redaction() -> types.ModuleType:
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{BEFORE}:processors/redaction.py"],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("old_redaction")
    exec(compile(source, "old_redaction.py", "exec"), module.__dict__)  # noqa: S102 - our own file at a fixed commit
    return module


def fastest(work: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2)
    args = parser.parse_args()
    if args.days < 1:
        parser.error(f"--days {args.days}: simulate at least one day")
    old = old_redaction()
    old_redact, new_redact = old.Redactor(KEY.text_token).redact, Redactor(KEY.text_token, KEY.check()).redact

    for name, redact in (("before", old_redact), ("now", new_redact)):
        figures = corpus_figures(redact)
        print(f"corpus {name:6}  leaked {len(figures.leaked)}/{figures.contacts} "
              f"({len(figures.leaked) / figures.contacts:.1%}), destroyed {len(figures.destroyed)}/{figures.evidence} "
              f"({len(figures.destroyed) / figures.evidence:.1%}), persons split over tokens {len(figures.split_persons)}")

    events = simulate(SimConfig(96, days=args.days, seed=2, start=datetime(2025, 3, 1, tzinfo=VN))).events
    texts = [event[field] for event in events for field in ("text", "location_text", "source_ref", "note", "site_name")
             if isinstance(event.get(field), str)]
    check, different = KEY.check(), sorted(set(texts))

    def first_sight(work: Callable[[str], object]) -> Callable[[], None]:
        def run() -> None:
            processors.redaction._remembered.cache_clear()  # what a worker or a gateway meets the first time
            for text in different:
                work(text)
        return run

    print(f"simulated Cà Mau, {args.days} days: {len(texts):,} free texts, {len(different):,} different")
    for name, new, old_work in (("redact (edge) ", new_redact, old_redact),
                                ("check (worker)", lambda t: contains_contact(t, check), old.contains_contact)):
        cold_s, old_cold_s = fastest(first_sight(new)), fastest(lambda: [old_work(t) for t in different])
        stream_s, old_stream_s = fastest(lambda: [new(t) for t in texts]), fastest(lambda: [old_work(t) for t in texts])
        print(f"{name}  {1e6 * cold_s / len(different):5.1f} µs a text seen first ({1e6 * old_cold_s / len(different):.1f}"
              f" before); over the stream, short texts remembered, {1e6 * stream_s / len(texts):.2f} µs "
              f"({1e6 * old_stream_s / len(texts):.2f} before)")

    for name, (head, unit) in HOSTILE.items():
        def text(size: int, head: str = head, unit: str = unit) -> str:
            return head + (unit * (size // len(unit) + 1))[:size - len(head)]
        before = fastest(lambda: old.contains_contact(text(32 * 1024)), 1)
        now = {size: fastest(lambda: contains_contact(text(size)), 2) for size in (32 * 1024, 128 * 1024, 1024 * 1024)}
        print(f"hostile {name:10} 32 KiB: {before:7.3f} s before, {now[32 * 1024]:.3f} s now; "
              f"now 128 KiB {now[128 * 1024]:.3f} s, 1 MiB {now[1024 * 1024]:.3f} s "
              f"({now[1024 * 1024] / now[128 * 1024]:.1f}x for 8x the text)")


if __name__ == "__main__":
    main()
