"""ROC-AUC, Brier score and a calibration plot of incident credibility against the truth.

    .venv/bin/python bench/credibility_quality.py [--days 7] [--seed 1] [--plot bench/results/calibration.png]
    .venv/bin/python bench/credibility_quality.py --population all   # every simulated population in turn

The simulated province runs through the same processors as the worker. Each incident is
judged by the credibility it had after its last report — before any officer's verdict on
it, which would give the answer away — and compared with whether it was real.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.credibility import CredibilityConfig  # noqa: E402
from processors.pipeline import EventProcessor, ProcessorState  # noqa: E402
from processors.pseudonym import Pseudonymiser  # noqa: E402
from processors.validation import parse_contract  # noqa: E402
from processors.alerts import AlertConfig  # noqa: E402
from streams.config import DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG  # noqa: E402
from streams.sim.simulator import POPULATIONS, Population, SimConfig, simulate  # noqa: E402


def predictions(days: int, seed: int, province: int = 96, config: CredibilityConfig | None = None,
                population: Population = POPULATIONS["default"]) -> list[tuple[float, bool]]:
    """(credibility before verdicts, real) per incident that has at least one tip."""
    simulation = simulate(SimConfig(province, days=days, seed=seed, population=population))
    truth = {row["event_id"]: row for row in simulation.truth}
    processor = EventProcessor(ProcessorState(), config or CredibilityConfig.load(DEFAULT_CREDIBILITY_CONFIG),
                               AlertConfig.load(DEFAULT_ALERT_CONFIG))
    before_verdict: dict[str, float] = {}
    members: dict[str, list[str]] = {}
    for event in simulation.events:
        event_type, record, _ = parse_contract(event, Pseudonymiser(b"k" * 32))
        result = processor.handle(event_type, record)
        if event_type in ("tip", "device_signal"):
            for snapshot in result.incidents:
                before_verdict[snapshot["incident_id"]] = snapshot["credibility"]
                members[snapshot["incident_id"]] = snapshot["event_ids"]
    out = []
    for incident_id, credibility in before_verdict.items():
        rows = [truth[e] for e in members[incident_id] if e in truth]
        if not any(row["type"] == "tip" for row in rows):
            continue
        real = sum(row["real"] for row in rows) * 2 > len(rows)
        out.append((credibility, real))
    return out


def roc_auc(pairs: list[tuple[float, bool]]) -> float:
    """Probability a real incident outscores a false one (ties count half)."""
    ranked = sorted(pairs, key=lambda p: p[0])
    positives = sum(1 for _, real in pairs if real)
    negatives = len(pairs) - positives
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + 1 + j) / 2
        rank_sum += average_rank * sum(1 for _, real in ranked[i:j] if real)
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def brier(pairs: list[tuple[float, bool]]) -> float:
    return sum((p - real) ** 2 for p, real in pairs) / len(pairs)


def calibration(pairs: list[tuple[float, bool]], bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean predicted, observed real share, count) per credibility bin."""
    out = []
    for b in range(bins):
        inside = [(p, r) for p, r in pairs if b / bins <= p < (b + 1) / bins or (b == bins - 1 and p == 1.0)]
        if inside:
            out.append((sum(p for p, _ in inside) / len(inside), sum(r for _, r in inside) / len(inside), len(inside)))
    return out


def plot(pairs: list[tuple[float, bool]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = calibration(pairs)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot([p for p, _, _ in points], [o for _, o, _ in points], marker="o", label="binhyen cred-1")
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
    args = parser.parse_args()
    if args.population == "all":
        print(f"simulated Cà Mau, {args.days} days, seed {args.seed}, the shipped weights:")
        for name, population in POPULATIONS.items():
            pairs = predictions(args.days, args.seed, population=population)
            print(f"  {name:<17} {len(pairs):>5} incidents ({sum(r for _, r in pairs):>4} real)  "
                  f"ROC-AUC {roc_auc(pairs):.3f}  Brier {brier(pairs):.3f}", flush=True)
        return
    pairs = predictions(args.days, args.seed, population=POPULATIONS[args.population])
    real = sum(r for _, r in pairs)
    print(f"simulated Cà Mau ({args.population}), {args.days} days, seed {args.seed}: {len(pairs)} incidents "
          f"({real} real)")
    print(f"ROC-AUC {roc_auc(pairs):.3f}   Brier {brier(pairs):.3f}")
    for p, o, n in calibration(pairs):
        print(f"  predicted {p:.2f}  observed {o:.2f}  n={n}")
    if args.plot:
        plot(pairs, args.plot, f"Credibility calibration — simulated Cà Mau, {args.days} days (seed {args.seed})")
        print(f"calibration plot: {args.plot}")


if __name__ == "__main__":
    main()
