"""The edge of the simulator: parse options, show progress, write files or publish."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from processors.geography import communes_of_province, find_province, provinces
from processors.validation import InvalidEvent
from streams.config import ConfigError, Settings
from streams.edge.gateway_client import GatewayClient
from streams.sim.simulator import POPULATIONS, VN, SimConfig, Simulation, simulate


def sim_config(province: str, days: int, seed: int, scale: float, start: str,
               population: str = "default") -> SimConfig:
    code = find_province(province)
    if code is None:
        raise ConfigError(f"unknown province {province!r}; use a 2025 province name or code, e.g. 'Cà Mau' or 96")
    try:
        first_day = datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=VN)
    except ValueError:
        raise ConfigError(f"--start {start!r} is not a date like 2025-09-01") from None
    if population not in POPULATIONS:
        raise ConfigError(f"unknown population {population!r}; use one of {', '.join(POPULATIONS)}")
    return SimConfig(code, days, seed, scale, first_day, POPULATIONS[population])


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True)


def generate(config: SimConfig, console: Console) -> Simulation:
    steps = config.days * len(communes_of_province(config.province_code))
    with _progress(console) as progress:
        task = progress.add_task(f"simulating {provinces()[config.province_code]}", total=steps)
        return simulate(config, lambda n: progress.advance(task, n))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as sink:
            sink.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    partial.replace(path)


def publish_events(settings: Settings, events: list[dict[str, Any]], console: Console,
                   pace_seconds: float = 0.0, gateway: GatewayClient | None = None) -> int:
    """Publish in event-time order (through `gateway` if given, else straight to Kafka); with
    `pace_seconds`, spread over that much wall time."""
    import time

    from streams.edge.kafka import producer
    from streams.edge.publisher import Publisher

    publisher = gateway or Publisher(producer(settings), settings.pseudonym_key(), settings.time_bounds)
    began = time.monotonic()
    with _progress(console) as progress:
        task = progress.add_task("publishing", total=len(events))
        for index, event in enumerate(events):
            try:
                publisher.publish(event)
            except InvalidEvent as exc:  # the simulator must only produce valid events
                raise ConfigError(f"simulated event {event.get('event_id')} is invalid: {exc}") from None
            if index % 500 == 499:
                progress.advance(task, 500)
                if pace_seconds:
                    ahead = began + pace_seconds * (index + 1) / len(events) - time.monotonic()
                    if ahead > 0:
                        publisher.flush()
                        time.sleep(ahead)
        failures = publisher.flush()
        progress.update(task, completed=len(events))
    if failures:
        raise ConfigError(f"{len(failures)} events were not delivered to Kafka: {failures[0][1]}")
    return len(events)


def run_simulation(settings: Settings, province: str, days: int, seed: int, scale: float, start: str,
                   output: Path | None, publish: bool, truth: Path | None, console: Console,
                   population: str = "default") -> Simulation:
    config = sim_config(province, days, seed, scale, start, population)
    simulation = generate(config, console)
    if output is not None:
        write_jsonl(output, simulation.events)
        truth = truth or output.with_name(output.stem + ".truth.jsonl")
    else:
        truth = truth or settings.state_dir / f"simulation-seed{seed}.truth.jsonl"
        truth.parent.mkdir(parents=True, exist_ok=True)
        publish_events(settings, simulation.events, console)
    write_jsonl(truth, simulation.truth)
    counts: dict[str, int] = {}
    for event in simulation.events:
        counts[event["type"]] = counts.get(event["type"], 0) + 1
    where = f"published to {settings.kafka_bootstrap}" if publish else f"written to {output}"
    console.print(f"{len(simulation.events)} events ({', '.join(f'{t} {n}' for t, n in sorted(counts.items()))}) "
                  f"{where}; ground truth in {truth}", highlight=False)
    return simulation
