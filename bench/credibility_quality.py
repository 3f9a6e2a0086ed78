"""ROC-AUC, Brier score and a calibration plot of incident credibility against the truth.

    .venv/bin/python bench/credibility_quality.py [--days 7] [--seed 1] [--plot bench/results/calibration.png]
    .venv/bin/python bench/credibility_quality.py --population all   # every simulated population in turn
    .venv/bin/python bench/credibility_quality.py --population all --days 14 --seed 2 --fit-days 10

The simulated province runs through the same processors as the worker. Each incident is
judged by the credibility it had after its last report — before any officer's verdict on
it, which would give the answer away — and compared with whether it was real. With
`--fit-days N` the weights are also fitted (`binhyen credibility fit`'s code) on the
officers' verdicts of the first N days, and both are judged on the days after.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.alerts import AlertConfig  # noqa: E402
from processors.credibility import CredibilityConfig  # noqa: E402
from processors.credibility_fit import fit, quality, rescored  # noqa: E402
from processors.meaning import MeaningModel  # noqa: E402
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_MEANING_CONFIG  # noqa: E402
from streams.sim.scored import Scored, score_simulation  # noqa: E402
from streams.sim.simulator import POPULATIONS, VN, SimConfig, simulate  # noqa: E402

START = datetime(2025, 3, 1, tzinfo=VN)


def scored(days: int, seed: int, population: str, province: int = 96) -> Scored:
    simulation = simulate(SimConfig(province, days=days, seed=seed, population=POPULATIONS[population], start=START))
    return score_simulation(simulation, CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                            AlertConfig.load(DEFAULT_ALERT_CONFIG), MeaningModel.load(DEFAULT_MEANING_CONFIG))


def plot(pairs: list[tuple[float, bool]], path: Path, title: str, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = quality(pairs).reliability
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot([p for p, _, _ in points], [o for _, o, _ in points], marker="o", label=label)
    for p, o, n in points:
        ax.annotate(str(n), (p, o), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("credibility (before any verdict)")
    ax.set_ylabel("share of incidents that were real")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--population", choices=[*POPULATIONS, "all"], default="default",
                        help="who reports and how officers judge (streams.sim.simulator.POPULATIONS)")
    parser.add_argument("--fit-days", type=int, default=0,
                        help="fit on the verdicts of the first N days and judge both on the rest")
    args = parser.parse_args()
    shipped = CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG)
    names = list(POPULATIONS) if args.population == "all" else [args.population]
    cut_ms = int(START.timestamp() * 1000) + args.fit_days * 86_400_000
    print(f"simulated Cà Mau, {args.days} days from {START:%Y-%m-%d}, seed {args.seed}, shipped {shipped.version}"
          + (f"; fitted on days 1-{args.fit_days}, judged on days {args.fit_days + 1}-{args.days}" if args.fit_days else ""))
    for name in names:
        run = scored(args.days, args.seed, name)
        held_out = run.truth(since_ms=cut_ms if args.fit_days else 0)
        hand = quality(rescored(held_out, shipped))
        line = (f"  {name:<17} {hand.samples:>5} incidents ({hand.valuable:>4} real)  "
                f"ROC-AUC {hand.auc:.3f}  Brier {hand.brier:.3f}")
        if args.fit_days:
            train = run.judged(until_ms=cut_ms)
            fitted = quality(rescored(held_out, fit(train, shipped, f"{shipped.version}-fit")))
            line += f"  | fitted on {len(train):>4} verdicts: ROC-AUC {fitted.auc:.3f}  Brier {fitted.brier:.3f}"
        print(line, flush=True)
        if len(names) == 1 and not args.fit_days:
            for p, o, n in hand.reliability:
                print(f"    predicted {p:.2f}  observed {o:.2f}  n={n}")
            if args.plot:
                plot(rescored(held_out, shipped), args.plot, f"Credibility calibration — simulated Cà Mau, "
                     f"{args.days} days (seed {args.seed})", f"binhyen {shipped.version}")
                print(f"calibration plot: {args.plot}")


if __name__ == "__main__":
    main()
