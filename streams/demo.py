"""`binhyen demo`: the whole path on the local stack, then a summary of what happened.

Starts the stack and a worker, publishes events (with some deliberately bad input),
waits until ClickHouse has every accepted event, and prints what reached ClickHouse and the
dead-letter topic. Ctrl-C stops everything the demo started.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from schemas import CODEC
from sinks.clickhouse import connect, migrate
from streams import stack
from streams.config import ConfigError, Settings
from streams.kafka import ensure_topics, producer, read_topic
from streams.publisher import Publisher
from streams.topics import DEAD_LETTER, TIPS

GARBAGE = b"\x00\x01 this is not an Avro event \xff"


@dataclass
class DemoReport:
    published_ids: set[str] = field(default_factory=set)
    rejected: list[tuple[int, str | None, str]] = field(default_factory=list)


def publish_events(settings: Settings, lines: Iterable[str], console: Console) -> DemoReport:
    """Publish JSONL lines through the real publisher, plus one raw garbage message."""
    report = DemoReport()
    kafka = producer(settings)
    publisher = Publisher(kafka, settings.pseudonym_key())
    with console.status("publishing…"):
        for outcome in publisher.publish_lines(lines):
            if outcome.status == "published":
                assert outcome.event_id is not None
                report.published_ids.add(outcome.event_id)
            else:
                report.rejected.append((outcome.line, outcome.event_id, outcome.reason or ""))
        failures = publisher.flush()
        # What an upstream that bypasses the publisher might send: it must be dead-lettered.
        kafka.send(TIPS, key=b"demo", value=GARBAGE).get(timeout=30)
    kafka.close()
    if failures:
        raise ConfigError(f"{len(failures)} events were not delivered to Kafka, e.g. line {failures[0][0]}: {failures[0][1]}")
    return report


def wait_for_clickhouse(settings: Settings, event_ids: set[str], console: Console, timeout: float = 180) -> int:
    client = connect(settings, settings.clickhouse_database)
    ids = tuple(sorted(event_ids))
    deadline = time.monotonic() + timeout
    with console.status("waiting for the worker to write ClickHouse…") as status:
        while True:
            arrived = client.execute("SELECT uniqExact(event_id) FROM events WHERE event_id IN %(ids)s", {"ids": ids})[0][0]
            status.update(f"waiting for the worker to write ClickHouse… {arrived}/{len(ids)} events")
            if arrived == len(ids):
                return arrived
            if time.monotonic() > deadline:
                raise ConfigError(f"only {arrived} of {len(ids)} events reached ClickHouse in {timeout:.0f}s; "
                                  f"see the worker log in {settings.state_dir}")
            time.sleep(0.5)


def print_summary(settings: Settings, report: DemoReport, console: Console) -> None:
    client = connect(settings, settings.clickhouse_database)
    ids = tuple(sorted(report.published_ids))
    by_type = Table(title="Events in ClickHouse (binhyen.events FINAL)")
    for column in ("type", "events", "communes", "first", "last"):
        by_type.add_column(column, justify="right" if column in ("events", "communes") else "left")
    rows = client.execute(
        "SELECT event_type, count(), uniqExact(commune_code), min(occurred_at), max(occurred_at) "
        "FROM events FINAL WHERE event_id IN %(ids)s GROUP BY event_type ORDER BY count() DESC", {"ids": ids})
    for event_type, count, communes, first, last in rows:
        by_type.add_row(event_type, str(count), str(communes), str(first), str(last))
    console.print(by_type)

    if report.rejected:
        rejected = Table(title="Rejected by the publisher (never reached Kafka)")
        rejected.add_column("line", justify="right")
        rejected.add_column("event_id")
        rejected.add_column("reason")
        for line, event_id, reason in report.rejected:
            rejected.add_row(str(line), event_id or "-", reason)
        console.print(rejected)

    letters = [CODEC.decode(record.value)[1] for record in read_topic(settings, DEAD_LETTER, idle_seconds=1)]
    dead = Table(title=f"Dead-letter topic {DEAD_LETTER}")
    for column in ("source", "offset", "reason", "bytes"):
        dead.add_column(column)
    for letter in letters[-10:]:
        dead.add_row(f"{letter['source_topic']}[{letter['source_partition']}]", str(letter["source_offset"]),
                     letter["reason"], str(len(letter["original"])))
    console.print(dead)

    console.print(
        "\n[bold]Where to look next[/]\n"
        f"  ClickHouse:  clickhouse-client --port {settings.clickhouse_port} -d {settings.clickhouse_database}\n"
        "    SELECT event_type, count() FROM events FINAL GROUP BY event_type;\n"
        "    SELECT commune_code, count() AS tips FROM events FINAL WHERE event_type = 'tip' "
        "GROUP BY commune_code ORDER BY tips DESC LIMIT 10;\n"
        "    SELECT toDate(occurred_at) AS day, event_type, count() FROM events FINAL GROUP BY day, event_type ORDER BY day;\n"
        f"  Kafka:       {settings.kafka_bootstrap} (topics binhyen.*)\n"
        f"  Logs:        {settings.state_dir}/*.log\n"
        "  Stop it all: .venv/bin/binhyen down\n",
        highlight=False,
    )


def run_demo(settings: Settings, lines: list[str], console: Console) -> None:
    """The demo from an empty machine state to the summary; Ctrl-C undoes what it started."""
    started: list[stack.Part] = []
    worker = stack.WorkerProcess(settings.state_dir / "demo-worker.log")
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        settings.ensure_key_file()
        for part in stack.parts(settings):
            state = stack.start(part)
            if state.startswith("started"):
                started.append(part)
            console.print(f"{part.name:<11} {state} at {part.endpoint}", highlight=False)
        ensure_topics(settings)
        migrate(settings)
        with console.status("starting a worker (joining its consumer group takes a few seconds)…"):
            worker.start()
        console.print(f"worker      ready (pid {worker.process.pid if worker.process else '?'}), log {worker.log_path}")
        report = publish_events(settings, lines, console)
        console.print(f"published   {len(report.published_ids)} distinct events, "
                      f"{len(report.rejected)} lines rejected, 1 raw garbage message")
        wait_for_clickhouse(settings, report.published_ids, console)
        print_summary(settings, report, console)
    except KeyboardInterrupt:
        console.print("\ninterrupted: stopping what the demo started")
        for part in reversed(started):
            console.print(f"{part.name:<11} {stack.stop(part)}")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        if worker.alive():
            worker.stop()


def contract_example_lines(contracts: Path) -> list[str]:
    """The public contract's valid and invalid examples, in that order."""
    lines = []
    for name in ("examples.jsonl", "invalid.jsonl"):
        lines += (contracts / name).read_text(encoding="utf-8").splitlines()
    return lines

