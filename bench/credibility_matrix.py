"""The credibility fit over populations it was and was not built with: fit on the officers'
verdicts of the first part of a history, judge the fitted and the shipped weights against the
truth of the incidents of the rest.

    .venv/bin/python bench/credibility_matrix.py            # full sizes (README, Credibility)
    .venv/bin/python bench/credibility_matrix.py --fast     # the unit suite's sizes
    .venv/bin/python bench/credibility_matrix.py --curve spam-heavy   # fitted on its first 50 … 800 verdicts

Two generators: binhyen's simulator (its populations, and the simulated default province under
stress), and population B (tests/data/population_b: written from the background reports by a
helper session that never read the simulator or the processors), with its own stresses. The
stresses: 15 % wrong verdicts, a fifth of the reliable reporters turning unreliable half way,
5 % valuable tips, a channel new to the province. A refused fit keeps the shipped weights.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "data" / "population_b"))

from generate import generate  # noqa: E402

from processors.alerts import AlertConfig  # noqa: E402
from processors.credibility import CredibilityConfig  # noqa: E402
from processors.meaning import MeaningModel  # noqa: E402
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_MEANING_CONFIG  # noqa: E402
from streams.sim import stress  # noqa: E402
from streams.sim.scored import FitJudged, judge_fit, score_history  # noqa: E402
from streams.sim.simulator import POPULATIONS, VN, SimConfig, simulate  # noqa: E402

START = datetime(2025, 3, 1, tzinfo=VN)
CURVE = (50, 100, 200, 400, 800)


@dataclass(frozen=True)
class Sizes:
    """(days, days fitted on) of each kind of history, and population B's tips per day. With 5 %
    valuable tips a history must be longer to hold enough real incidents to judge on."""

    sim: tuple[int, int]
    sim_few_valuable: tuple[int, int]
    b: tuple[int, int]
    b_few_valuable: tuple[int, int]
    b_tips_per_day: float


FAST = Sizes(sim=(14, 10), sim_few_valuable=(30, 15), b=(40, 28), b_few_valuable=(60, 30), b_tips_per_day=40)
FULL = Sizes(sim=(28, 20), sim_few_valuable=(90, 45), b=(60, 30), b_few_valuable=(120, 60), b_tips_per_day=60)


Stress = Callable[[stress.History], stress.History]
SIM_STRESSES: dict[str, Stress] = {
    "wrong-verdicts": lambda h: stress.wrong_verdicts(h, 0.15, seed=11),
    "turncoats": lambda h: stress.turncoats(h, 0.2, seed=12),
    "new-channel": lambda h: stress.new_channel(h, "web", 0.3, seed=14),
    "5%-valuable": lambda h: stress.few_valuable(h, 0.05, seed=13),  # last: a longer simulation of its own
}
B_STRESSES: dict[str, dict[str, object]] = {
    "B": {}, "B wrong-verdicts": {"wrong_verdicts": 0.15}, "B turncoats": {"turncoat_share": 0.2},
    "B 5%-valuable": {"valuable_share": 0.05}, "B new-channel": {"new_channel": "sms"},
}
# the default province and its stresses first: one simulation serves the four (see `simulated`)
CASES = ["default", *(f"sim {name}" for name in SIM_STRESSES), *(name for name in POPULATIONS if name != "default"),
         *B_STRESSES]


def history(case: str, sizes: Sizes) -> tuple[stress.History, int]:
    """The case's history and the cut between fitting and judging (ms)."""
    few = "5%" in case
    if case in B_STRESSES:
        days, fit_days = sizes.b_few_valuable if few else sizes.b
        events, truth = generate(seed=5, days=days, tips_per_day=sizes.b_tips_per_day, start=f"{START:%Y-%m-%d}",
                                 **B_STRESSES[case])  # type: ignore[arg-type]
        return stress.History(events, truth), _ms(START + timedelta(days=fit_days))
    days, fit_days = sizes.sim_few_valuable if few else sizes.sim
    made = simulated(case if case in POPULATIONS else "default", days)
    if case.startswith("sim "):
        made = SIM_STRESSES[case.removeprefix("sim ")](made)
    return made, _ms(START + timedelta(days=fit_days))


@functools.lru_cache(maxsize=1)
def simulated(population: str, days: int) -> stress.History:
    """Cà Mau as the simulator makes it (kept: the stressed cases share the default province)."""
    simulation = simulate(SimConfig(96, days=days, seed=2, population=POPULATIONS[population], start=START))
    return stress.History(simulation.events, {row["event_id"]: bool(row["real"]) for row in simulation.truth})


def judge(case: str, sizes: Sizes = FAST, firsts: tuple[int | None, ...] = (None,)) -> list[FitJudged]:
    """The case fitted on its verdicts before the cut (on only the first so many of them, for each
    of `firsts`), judged on the truth after it."""
    made, cut_ms = history(case, sizes)
    shipped = CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)
    scored = score_history(made.events, made.truth, shipped, AlertConfig.load(DEFAULT_ALERT_CONFIG),
                           MeaningModel.load(DEFAULT_MEANING_CONFIG))
    return [judge_fit(scored, cut_ms, shipped, first) for first in firsts]


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="the unit suite's sizes")
    parser.add_argument("--case", choices=CASES, action="append", help="only these cases (repeatable)")
    parser.add_argument("--curve", choices=CASES, help="one case fitted on its first 50, 100, 200, 400, 800 verdicts")
    args = parser.parse_args()
    sizes = FAST if args.fast else FULL
    if args.curve:
        print(f"{args.curve}: | verdicts fitted on | prior strength | AUC (shipped) | Brier (shipped) |\n|---|---|---|---|")
        for got in judge(args.curve, sizes, CURVE):
            print(f"| {got.verdicts} | {got.prior_strength if got.prior_strength else 'refused'} | {got.fitted.auc:.3f} "
                  f"({got.shipped.auc:.3f}) | {got.fitted.brier:.3f} ({got.shipped.brier:.3f}) |", flush=True)
        return
    print(f"(days, fitted on the first): simulator (Cà Mau) {sizes.sim}, with 5 % valuable {sizes.sim_few_valuable}; "
          f"population B at {sizes.b_tips_per_day:g} tips/day {sizes.b}, with 5 % valuable {sizes.b_few_valuable}")
    print(f"| case | verdicts fitted on | incidents judged (real) | shipped AUC | fitted AUC | shipped Brier | "
          f"fitted Brier | fit |\n|---|---|---|---|---|---|---|---|")
    for case in args.case or CASES:
        got, = judge(case, sizes)
        outcome = "refused" if got.refused and "refused" in got.refused else "no fit" if got.refused else "kept"
        print(f"| {case} | {got.verdicts} | {got.shipped.samples} ({got.shipped.valuable}) | {got.shipped.auc:.3f} | "
              f"{got.fitted.auc:.3f} | {got.shipped.brier:.3f} | {got.fitted.brier:.3f} | {outcome} |", flush=True)


if __name__ == "__main__":
    main()
