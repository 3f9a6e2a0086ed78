"""`binhyen demo`: the whole path on the local stack, then a summary of what happened.

Starts the stack and a worker, simulates a day of a province and publishes it at
accelerated speed (plus the contract's invalid lines and raw garbage), waits until ClickHouse
has every event, and prints what happened. The stack and the worker stay up for queries and
on-call actions (`binhyen down` stops both); Ctrl-C stops everything the demo started.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from processors import geography
from processors.geography import provinces
from processors.staff import StaffRegistry
from schemas import CODEC
from sinks.clickhouse import connect, events_table
from streams.ops import stack
from streams.config import ConfigError, Settings
from streams.edge.kafka import producer, read_topic
from streams.edge.api_keys import KeyStore
from streams.edge.gateway_client import GatewayClient
from streams.sim.runner import generate, publish_events, write_jsonl
from streams.sim.simulator import SimConfig, Simulation, id_prefix
from streams.topics import DEAD_LETTER, TIPS

NUMERIC_COLUMNS = frozenset({
    "events", "communes", "tips", "alarms", "credibility", "alerts", "escalations", "acks", "to morning digest",
    "verdicts", "valuable", "valuable %", "signals", "devices", "line", "offset", "bytes", "not a tip",
})
GARBAGE = b"\x00\x01 this is not an Avro event \xff"


@dataclass
class DemoReport:
    simulation: Simulation
    expected_ids: int = 0
    truth_path: Path | None = None
    rejected: list[tuple[int, str | None, str]] = field(default_factory=list)


def publish_bad_input(settings: Settings, gateway: GatewayClient, lines: Iterable[str], report: DemoReport) -> None:
    """Invalid contract lines through the gateway (one request each: a line that is not JSON
    gets its request refused whole), and raw garbage past it."""
    for number, line in enumerate(lines, start=1):
        status, answer = gateway.post([line])
        if status != 200:
            reason = answer["lines"][0]["reason"] if answer.get("lines") else answer.get("error", f"HTTP {status}")
            report.rejected.append((number, None, reason))
    # What an upstream that bypasses the gateway might send: it must be dead-lettered.
    kafka = producer(settings)
    kafka.send(TIPS, key=b"demo", value=GARBAGE).get(timeout=30)
    kafka.close()


def wait_for_clickhouse(settings: Settings, prefix: str, expected: int, console: Console, timeout: float = 300) -> int:
    client = connect(settings, settings.clickhouse_database)
    deadline = time.monotonic() + timeout
    with console.status("waiting for the worker to write ClickHouse…") as status:
        while True:
            arrived = client.execute(f"SELECT uniqExact(event_id) FROM {events_table(settings.clickhouse_database)} "
                                     "WHERE event_id LIKE %(p)s",
                                     {"p": prefix + "%"})[0][0]
            status.update(f"waiting for the worker to write ClickHouse… {arrived:,}/{expected:,} events")
            if arrived >= expected:
                return arrived
            if time.monotonic() > deadline:
                raise ConfigError(f"only {arrived} of {expected} events reached ClickHouse in {timeout:.0f}s; "
                                  f"see the worker log in {settings.state_dir}")
            time.sleep(0.5)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in NUMERIC_COLUMNS else "left")
    return table


def pages(client: Any, staff: StaffRegistry, incident_filter: str, where: dict[str, str], limit: int = 6) -> list[str]:
    """Pages as the officers on call receive them: when, to whom (the route and the registry's
    members on it who cover the commune), the text, and the id they quote to act. P1s first, then
    the morning digests, then the rest; held alerts are not pages (the digest carries them)."""
    rows = client.execute(
        "SELECT at, state, severity, route, commune_code, summary, alert_id FROM alerts FINAL "
        f"WHERE delivery = 'now' AND state IN ('raised', 'escalated') AND (incident_id = '' OR {incident_filter}) "
        "ORDER BY severity = 'P1' DESC, rule = 'morning_digest' DESC, at, alert_id, state LIMIT %(limit)s",
        {**where, "limit": limit})
    lines = []
    for at, state, severity, route, code, summary, alert_id in rows:
        on_call = ", ".join(m.name for m in staff.on_call_for({"route": route, "commune_code": code})) or "-"
        step = "" if state == "raised" else ", chuyển cấp"
        lines += [f"  {at:%d/%m %H:%M} → {route}: {on_call}", f"      [{severity}{step}] {summary}",
                  f"      mã cảnh báo {alert_id} — binhyen alert ack {alert_id} --by <mã cán bộ>"]
    return lines


def print_summary(settings: Settings, report: DemoReport, prefix: str, console: Console) -> None:
    client = connect(settings, settings.clickhouse_database)
    where = {"p": prefix + "%"}
    events = events_table(settings.clickhouse_database)
    by_type = _table(f"Events in ClickHouse ({events} FINAL)", "type", "events", "communes")
    for event_type, count, communes in client.execute(
        f"SELECT event_type, count(), uniqExact(commune_code) FROM {events} FINAL WHERE event_id LIKE %(p)s "
        "GROUP BY event_type ORDER BY count() DESC", where):
        by_type.add_row(event_type, f"{count:,}", str(communes))
    console.print(by_type)

    incident_filter = "incident_id IN (SELECT incident_id FROM incident_members WHERE event_id LIKE %(p)s)"
    total, multi, with_device, credible = client.execute(
        f"SELECT count(), countIf(tips >= 2), countIf(device_alarms > 0), countIf(credibility >= 0.7) "
        f"FROM incidents FINAL WHERE {incident_filter}", where)[0]
    incidents = _table(f"Incidents: {total} ({multi} reported by several people, {with_device} with a device alarm, "
                       f"{credible} with credibility ≥ 0.7) — the most credible", "commune", "category", "tips",
                       "alarms", "credibility", "reasons")
    for code, category, tips, alarms, credibility, reasons in client.execute(
        f"SELECT commune_code, category, tips, device_alarms, credibility, reasons FROM incidents FINAL "
        f"WHERE {incident_filter} ORDER BY credibility DESC, tips DESC, incident_id LIMIT 8", where):
        place = geography.commune(code)
        shown = [r for r in json.loads(reasons) if r["signal"] != "calibration"][:3]
        top = ", ".join(f"{r['signal']} {r['contribution']:+.1f}" for r in shown)
        incidents.add_row(place.name if place else str(code), category or "-", str(tips), str(alarms),
                          f"{credibility:.2f}", top)
    console.print(incidents)

    by_severity = client.execute(
        "SELECT severity, uniqExact(alert_id), countIf(state = 'escalated'), countIf(state = 'acked'), "
        "uniqExactIf(alert_id, delivery = 'digest') FROM alerts FINAL "
        f"WHERE incident_id = '' OR {incident_filter} GROUP BY severity ORDER BY severity", where)
    alerts = _table("Alerts by severity", "severity", "alerts", "escalations", "acks", "to morning digest")
    for severity, count, escalated, acked, digest in by_severity:
        alerts.add_row(severity, str(count), str(escalated), str(acked), str(digest))
    console.print(alerts)
    console.print("[bold]Pages as the officers on call receive them[/] (the first 6; P1s first)")
    for line in pages(client, settings.staff_registry(), incident_filter, where) or ["  (none)"]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    per_commune = _table("Tips and officers' verdicts per commune (top 10 by tips; not a tip: questions, thanks, news)",
                         "commune", "tips", "not a tip", "verdicts", "valuable", "valuable %")
    rows = client.execute(  # a message read as a tip is an incident member; one read as no tip never is
        "SELECT commune_code, countIf(event_type = 'tip' AND member) AS tips, "
        "countIf(event_type = 'tip' AND NOT member) AS not_tips, countIf(event_type = 'feedback') AS verdicts, "
        "countIf(event_type = 'feedback' AND visitParamExtractString(payload, 'verdict') = 'valuable') AS valuable "
        f"FROM (SELECT commune_code, event_type, payload, event_id IN (SELECT event_id FROM incident_members) AS member "
        f"      FROM {events} FINAL WHERE event_id LIKE %(p)s AND event_type IN ('tip', 'feedback')) "
        "GROUP BY commune_code ORDER BY tips DESC, commune_code LIMIT 10", where)
    for code, tips, not_tips, verdicts, valuable in rows:
        place = geography.commune(code)
        share = f"{100 * valuable / verdicts:.0f}%" if verdicts else "-"
        per_commune.add_row(place.name if place else str(code), str(tips), str(not_tips), str(verdicts), str(valuable),
                            share)
    console.print(per_commune)

    signals = _table("Device signals", "type", "signals", "devices")
    for signal_name, count, devices in client.execute(
        "SELECT visitParamExtractString(payload, 'signal') AS signal, count(), "
        f"uniqExact(visitParamExtractString(payload, 'device_id')) FROM {events} FINAL "
        "WHERE event_id LIKE %(p)s AND event_type = 'device_signal' GROUP BY signal ORDER BY count() DESC", where):
        signals.add_row(signal_name, f"{count:,}", str(devices))
    console.print(signals)

    if report.rejected:
        rejected = _table("Rejected by the gateway (never reached Kafka)", "line", "event_id", "reason")
        for line, event_id, reason in report.rejected:
            rejected.add_row(str(line), event_id or "-", reason)
        console.print(rejected)

    letters = [CODEC.decode(record.value)[1] for record in read_topic(settings, DEAD_LETTER, idle_seconds=1)]
    dead = _table(f"Dead-letter topic {DEAD_LETTER} (last 10 of {len(letters)})", "source", "offset", "reason", "bytes")
    for letter in letters[-10:]:
        dead.add_row(f"{letter['source_topic']}[{letter['source_partition']}]", str(letter["source_offset"]),
                     letter["reason"], str(len(letter["original"])))
    console.print(dead)

    console.print(
        "\n[bold]Where to look next[/]\n"
        "  Analysts:    .venv/bin/binhyen query   (lists the catalog; queries run as the read-only analyst user)\n"
        f"  ClickHouse:  clickhouse-client --port {settings.clickhouse_port} --user analyst "
        f"--password \"$BINHYEN_ANALYST_PASSWORD\" -d {settings.clickhouse_database}   (local default: analyst-local)\n"
        "    SELECT channel, sum(tips), sum(not_tips) FROM tips_per_day GROUP BY channel;\n"
        "    SELECT commune_name, sum(tips) AS tips FROM tips_per_day GROUP BY commune_name ORDER BY tips DESC LIMIT 10;\n"
        "    SELECT day, category, sum(tips) FROM tips_per_day GROUP BY day, category ORDER BY day, category;\n"
        f"  Kafka:       {settings.kafka_bootstrap} (topics binhyen.*)\n"
        f"  Ground truth of the simulation: {report.truth_path}\n"
        f"  Logs:        {settings.state_dir}/*.log\n"
        f"  On-call:     .venv/bin/binhyen alert ack ALERT_ID --by STAFF_ID   (the worker, log {settings.state_dir}/demo-worker.log,\n"
        "               keeps running beside the stack: it processes acks and escalates what nobody acks)\n"
        "  Status:      .venv/bin/binhyen status   (servers and workers: pid, group, partitions, lag)\n"
        "  Stop it all: .venv/bin/binhyen down     (the worker and the servers, by their pid files)\n",
        highlight=False,
    )


def run_demo(settings: Settings, config: SimConfig, pace_seconds: float, bad_lines: list[str],
             console: Console) -> DemoReport:
    """The demo from nothing running to the summary; Ctrl-C undoes what it started."""
    started: list[stack.Part] = []
    worker = stack.WorkerProcess(settings.state_dir / "demo-worker.log", pid_file=stack.worker_pid_file(settings))
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        started += stack.bring_up(settings, lambda line: console.print(line, highlight=False, markup=False))
        running = stack.pid_running(stack.worker_pid_file(settings), stack.BINHYEN)
        if running is not None:  # an earlier demo's worker, still in its group
            console.print(f"worker      already running (pid {running}), log {worker.log_path}")
        else:
            with console.status("starting a worker (joining its consumer group takes a few seconds)…"):
                worker.start()
            console.print(f"worker      ready (pid {worker.process.pid if worker.process else '?'}), "
                          f"log {worker.log_path}")
        simulation = generate(config, console)
        report = DemoReport(simulation, expected_ids=len({e["event_id"] for e in simulation.events}))
        report.truth_path = settings.state_dir / f"simulation-seed{config.seed}.truth.jsonl"
        write_jsonl(report.truth_path, simulation.truth)
        console.print(f"simulated   {provinces()[config.province_code]}, {config.days} day(s) from "
                      f"{config.start:%Y-%m-%d}: {len(simulation.events):,} events; publishing"
                      + (f" over ~{pace_seconds:.0f}s (accelerated event time)" if pace_seconds else ""))
        # The demo's own key (replaced each run: a key is shown only once).
        token = KeyStore(settings.gateway_keys_file).create("demo-run", ["*"], [], replace=True, staff=["*"])
        gateway = GatewayClient(settings.gateway_url, token)
        publish_events(settings, simulation.events, console, pace_seconds, gateway)
        publish_bad_input(settings, gateway, bad_lines, report)
        console.print(f"published   {len(simulation.events):,} simulated events through the gateway "
                      f"({settings.gateway_url}), {len(report.rejected)} invalid lines rejected by it, "
                      "1 raw garbage message straight to Kafka")
        wait_for_clickhouse(settings, id_prefix(config), report.expected_ids, console)
        print_summary(settings, report, id_prefix(config), console)
        return report
    except KeyboardInterrupt:
        console.print("\ninterrupted: stopping what the demo started")
        if worker.alive():
            worker.stop()
        for part in reversed(started):
            console.print(f"{part.name:<11} {stack.stop(part)}")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def contract_invalid_lines(contracts: Path) -> list[str]:
    """The public contract's invalid examples: every one must be rejected."""
    return (contracts / "invalid.jsonl").read_text(encoding="utf-8").splitlines()
