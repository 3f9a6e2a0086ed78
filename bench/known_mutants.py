"""The mutants issue #23 listed (each passed the unit suite once), applied one at a time to a copy
of the repository; the unit suite must fail on every one. `mutmut` (`make mutation`) covers
the rest of the code; these are kept by hand because they are the at-least-once, credibility
and escalation mistakes that matter most.

    .venv/bin/python bench/known_mutants.py [NAME ...]

Prints one line per mutant: KILLED (with the first failing test) or SURVIVED; exits 1 if any
survived. About 3 minutes; a mutant that would hang the suite is killed after 300 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    path: str
    original: str
    mutated: str


MUTANTS: list[Mutant] = [
    Mutant('ack-before-flush', 'offsets acknowledged before the sinks took the batch', 'streams/runtime/checkpoint.py',
           '        # 3. sinks\n        for name, rows in out.rows.items():',
           '        for token in tokens:\n            await self.acknowledge(token)\n        # 3. sinks\n        for name, rows in out.rows.items():'),
    Mutant('ch-drop-on-failure', 'a failed ClickHouse insert drops the batch', 'sinks/clickhouse.py',
           '        except (ClickHouseError, OSError, EOFError) as exc:\n            first_line',
           '        except (ClickHouseError, OSError, EOFError) as exc:\n            self.rows = []\n            first_line'),
    Mutant('ch-clear-before-insert', 'the batch is cleared before the insert', 'sinks/clickhouse.py',
           '        try:\n            self.client.execute(\n                f"INSERT INTO {self.name} ({\', \'.join(self.columns)}) VALUES", self.rows, types_check=False',
           '        rows, self.rows = self.rows, []\n        try:\n            self.client.execute(\n                f"INSERT INTO {self.name} ({\', \'.join(self.columns)}) VALUES", rows, types_check=False'),
    Mutant('pop-before-post', 'an alert is popped before it is posted', 'sinks/notifiers.py',
           '            self._post(self.alerts[0])\n            self.alerts.pop(0)',
           '            alert = self.alerts.pop(0)\n            self._post(alert)'),
    Mutant('give-up-delivery', 'the retry loop gives up after one failure', 'sinks/base.py',
           '            backoff = min(backoff * 2, MAX_BACKOFF_S)\n            continue',
           '            backoff = min(backoff * 2, MAX_BACKOFF_S)\n            return'),
    Mutant('officer_valuable-sign', '`officer_valuable` pushes the wrong way', 'infra/config/credibility.v2.json',
           '"officer_valuable": 3.0',
           '"officer_valuable": -3.0'),
    Mutant('officer_not_valuable-sign', '`officer_not_valuable` pushes the wrong way', 'infra/config/credibility.v2.json',
           '"officer_not_valuable": -2.0',
           '"officer_not_valuable": 2.0'),
    Mutant('source_reputation-sign', '`source_reputation` pushes the wrong way', 'infra/config/credibility.v2.json',
           '"source_reputation": 0.6',
           '"source_reputation": -0.6'),
    Mutant('score-after-own-verdict', "a tip's stored score includes its own verdict, read first", 'processors/pipeline.py',
           '                joined = next((self._snapshot(i) for i in changed if i["id"] == incident_id), None)\n',
           ''),
    Mutant('fit-without-prior', 'the fit shrinks towards zero, not the live weights', 'processors/credibility_fit.py',
           'gradient = self.x.T @ (expit(z) - self.y) + self.strength * (theta - self.theta0)',
           'gradient = self.x.T @ (expit(z) - self.y) + self.strength * theta'),
    Mutant('reputation-never-fades', "a reporter's old verdicts weigh as much as new ones", 'processors/credibility.py',
           'keep = 1.0 - 1.0 / memory if memory and key.startswith(TURNING) else 1.0',
           'keep = 1.0'),
    Mutant('due-reversed', "a commune's due time keeps the latest deadline", 'processors/alerts.py',
           'if moment is not None and (state["due"] is None or moment < state["due"]):',
           'if moment is not None and (state["due"] is None or moment > state["due"]):'),
    Mutant('recompute-due-max', 'after an action the due time is the latest deadline', 'processors/alerts.py',
           'state["due"] = min(moments) if moments else None',
           'state["due"] = max(moments) if moments else None'),
    Mutant('tick-reversed', 'a tick at the deadline does nothing, one before it proceeds', 'processors/alerts.py',
           'if state["due"] is None or now_ms < state["due"]:',
           'if state["due"] is None or now_ms > state["due"]:'),
    Mutant('timer-disabled', 'the escalation timer never sends a tick', 'streams/runtime/timer.py',
           '        return due_communes(alert_states, barrier.watermark_ms, barrier.now_ms)',
           '        return []'),
    Mutant('due-communes-reversed', 'the timer picks the communes not yet due', 'streams/runtime/timer.py',
           '        if due <= at:',
           '        if due > at:'),
]


def run(mutant: Mutant) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "repo"
        shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(
            ".venv*", ".state", ".git", "mutants", "__pycache__", ".pytest_cache", ".hypothesis"))
        target = copy / mutant.path
        text = target.read_text(encoding="utf-8")
        if text.count(mutant.original) != 1:
            return f"NOT APPLIED: the original text is found {text.count(mutant.original)} times in {mutant.path}"
        target.write_text(text.replace(mutant.original, mutant.mutated), encoding="utf-8")
        try:
            result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/unit"],
                                    cwd=copy, env={**os.environ, "PYTHONPATH": str(copy)},
                                    capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return "KILLED (the suite hung: timeout)"
    failed = next((line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))), "")
    if result.returncode and not failed.startswith("FAILED"):  # a suite that does not even run kills nothing
        return f"BROKEN: the suite did not run ({failed or result.stdout.strip()[-200:]})"
    return f"KILLED by {failed.removeprefix('FAILED ').split(' - ')[0]}" if result.returncode else "SURVIVED"


def main(names: list[str]) -> int:
    unknown = set(names) - {m.name for m in MUTANTS}
    if unknown:
        print(f"known_mutants: no mutant named {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    survived = 0
    for mutant in MUTANTS:
        if names and mutant.name not in names:
            continue
        outcome = run(mutant)
        survived += not outcome.startswith("KILLED")  # SURVIVED or BROKEN
        print(f"{mutant.name:<26} {mutant.what:<60} {outcome}", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
