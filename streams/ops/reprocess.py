"""`binhyen reprocess`: derive history again under another processor version, compare, promote.

A processor version is a named pair of configs (credibility weights, alert rules). Reprocessing
runs ordinary workers of it (`binhyen worker --processor-version NAME --reprocessing`), so
several share the work exactly as live ones do, in a consumer group and state of their own:

1. register — the configs are checked and recorded (state 'reprocessing'); the version gets
   a database `<db>_<name>` (its incidents, members and alerts; not the events, which are the
   same) and topics of its own (control; incidents, alerts and dead letters of history);
2. catch up — N workers read the input topics from the beginning up to their ends as they
   were when it started, then the version's control topic (acks, ticks) likewise; progress
   is the group's committed offsets, so an interrupted run continues where it stopped. No
   notification is delivered: reprocessing workers have no delivery agent;
3. compare — the version's projections against the live ones: incidents merged or split,
   credibility shifts, alerts that would have been raised or not;
4. promote — mark it 'promoting' (live workers of the old version stop and wait), catch up
   the last events, add its tip scores to the live `tip_scores` (what a credibility fit reads),
   swap its incidents/members/alerts tables in, mark it 'live': the waiting
   workers continue under it from its group's offsets and state, and deliver only alerts
   written after that moment (the old version paged the history already).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from processors.alerts import AlertConfig
from processors.credibility import CredibilityConfig
from processors.meaning import MeaningModel
from sinks.clickhouse import connect, migrate, private_database, rename_all
from sinks.cluster import LOCAL_SUFFIX
from streams.config import (
    DEFAULT_ALERT_CONFIG, DEFAULT_CREDIBILITY_CONFIG, DEFAULT_MEANING_CONFIG, ConfigError, Settings, check_version_name,
)
from streams.edge.kafka import GroupProgress, ensure_topics
from streams.ops.stack import WorkerProcess
from streams.runtime.timer import TICK_EVERY_S
from streams.runtime.versions import FROM_FILES, ProcessorVersion, VersionRegistry
from streams.topics import COMMUNE_CONTROL, INPUT_TOPICS, physical

SWAPPED_TABLES = ("incidents", "incident_members", "alerts")
POLL_S = 1.0
OLD_WORKERS_WAIT_S = 90.0  # live workers notice a promotion within seconds, then finish their batch
SETTLE_S = 3 * TICK_EVERY_S
QUIET_S = 12.0  # > 2 heartbeats (streams.runtime.app.HEARTBEAT_EVERY_S)
BIG_SHIFT = 0.1
SHOWN = 5
Progress = Callable[[str, int, int], None]  # (phase, done, total)


def version_of(settings: Settings, files: dict[str, Path | None], name: str | None) -> ProcessorVersion:
    """The version to reprocess: the given config files, the live configs for the others (or a
    registered version's, when only its name is given); named after the configs' versions."""
    if name and not any(files.values()):
        known = registry(settings).get(check_version_name(name))
        if known is not None:
            return known
    texts = live_config_texts(settings)
    versions = []
    for kind, loader in (("credibility", CredibilityConfig), ("alerts", AlertConfig), ("meaning", MeaningModel)):
        path = files.get(kind)
        try:
            if path is not None:
                texts[kind] = path.read_text(encoding="utf-8")
            versions.append(loader.parse(texts[kind]).version)
        except OSError as exc:
            raise ConfigError(f"{kind} config {path}: {exc.strerror}") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{kind} config {path or '(live)'} is invalid: {exc}") from None
    return ProcessorVersion(check_version_name(name or "-".join(versions).lower()), "reprocessing", texts)


def registry(settings: Settings) -> VersionRegistry:
    return VersionRegistry(connect(settings, settings.clickhouse_database), settings.clickhouse_database)


def register(settings: Settings, version: ProcessorVersion) -> Settings:
    """Record the version (once; the same name with other configs is refused) and make its
    database and topics; returns its reprocessing workers' settings."""
    versions = registry(settings)
    known = versions.get(version.name)
    if known is not None and known.config_texts != version.config_texts:
        raise ConfigError(f"processor version {version.name} is registered with other configs; "
                          "give the new ones another version (or --name)")
    if known is not None and known.state == "live":
        raise ConfigError(f"processor version {version.name} is live already")
    if known is None:
        versions.record(version)
    reprocessing = settings.for_version(version.name, version.config_texts, reprocessing=True)
    migrate(settings, database=reprocessing.clickhouse_database)
    ensure_topics(reprocessing)
    return reprocessing


class WorkerPool:
    """Reprocessing workers, each with a state folder and log of its own (stopped by us, by PID)."""

    def __init__(self, settings: Settings, name: str, count: int) -> None:
        root = settings.state_dir / "reprocess" / name
        env = {**os.environ, "BINHYEN_CLICKHOUSE_PASSWORD": settings.clickhouse_password}
        env.pop("BINHYEN_METRICS_PORT", None)  # each finds a free one
        self.workers = [WorkerProcess(root / f"worker-{n}.log", {**env, "BINHYEN_STATE_DIR": str(root / f"worker-{n}")},
                                      ("--processor-version", name, "--reprocessing")) for n in range(count)]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def check(self) -> None:
        for worker in self.workers:
            if not worker.alive():
                raise ConfigError(f"a reprocessing worker stopped; see {worker.log_path}")

    def stop(self) -> None:
        for worker in self.workers:
            if worker.alive():
                worker.stop()


def _left(ends: dict[tuple[str, int], int], committed: dict[tuple[str, int], int]) -> int:
    return sum(max(0, end - committed.get(tp, 0)) for tp, end in ends.items())


def catch_up(reprocessing: Settings, workers: int, progress: Progress, phase: str = "reprocessing") -> int:
    """Run `workers` reprocessing workers until their group has committed the input topics up to
    their ends as of now, then its control topic likewise; returns the input records covered."""
    inputs = GroupProgress(reprocessing, reprocessing.worker_group, INPUT_TOPICS)
    control = GroupProgress(reprocessing, reprocessing.worker_group, (physical(reprocessing, COMMUNE_CONTROL),))
    pool = WorkerPool(reprocessing, reprocessing.processor_version, workers)
    try:
        ends = inputs.highwaters()
        if ends is None:
            raise ConfigError("the broker did not say where the input topics end; is it up (`binhyen status`)?")
        start = inputs.committed()
        total = _left(ends, start)
        progress(phase, 0, total)
        if total == 0:
            return 0
        pool.start()
        while (left := _left(ends, inputs.committed())) > 0:
            progress(phase, total - left, total)
            pool.check()
            time.sleep(POLL_S)
        progress(phase, total, total)
        settle(control, pool.check)
        return total
    finally:
        pool.stop()
        inputs.close()
        control.close()


def settle(control: GroupProgress, check: Callable[[], None] = lambda: None,
           sleep: Callable[[float], None] = time.sleep) -> None:
    """Until a group's timer has nothing left to fire at its watermark (escalations, silent
    devices): its control topic read to the end, and still at the end after three timer rounds.
    A promoted version's state then holds every escalation its predecessor already paged."""
    while True:
        ends = control.highwaters() or {}
        while _left(ends, control.committed()) > 0:  # acks and ticks the inputs caused
            check()
            sleep(POLL_S)
        sleep(SETTLE_S)
        if (control.highwaters() or {}) == ends:
            return


@dataclass
class Comparison:
    """What changes between the live projections and a reprocessed version's."""

    since: datetime | None = None  # the period of the reprocessed incidents (None: there are none)
    until: datetime | None = None
    live_incidents: int = 0
    new_incidents: int = 0
    split: int = 0  # live incidents whose members now fall into more than one incident
    merged: int = 0  # new incidents that take members of more than one live incident
    matched: int = 0  # incidents with the same id on both sides
    big_shifts: int = 0  # of which credibility moved by BIG_SHIFT or more
    mean_shift: float = 0.0
    largest: list[tuple[str, int, str, float, float]] = field(default_factory=list)  # id, commune, category, old, new
    would_raise: dict[str, int] = field(default_factory=dict)  # severity -> alerts only the new version raises
    would_not_raise: dict[str, int] = field(default_factory=dict)  # severity -> alerts only the live one raised
    severity_changed: int = 0
    scorers: tuple[list[str], list[str]] = ([], [])

    def lines(self) -> list[str]:
        def by_severity(counts: dict[str, int]) -> str:
            return ", ".join(f"{severity} {n}" for severity, n in sorted(counts.items())) or "none"

        shown = [f"  {incident} (commune {commune}, {category or 'devices only'}): {old:.2f} -> {new:.2f}"
                 for incident, commune, category, old, new in self.largest]
        return [
            f"compared over {self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M} (the reprocessed incidents; "
            "alerts to a day later)" if self.since else "the reprocessing found no incident",
            f"scorer: live {', '.join(self.scorers[0]) or 'none'}; new {', '.join(self.scorers[1]) or 'none'}",
            f"incidents: live {self.live_incidents}, new {self.new_incidents} "
            f"({self.split} live incidents split, {self.merged} new incidents merge several)",
            f"credibility: {self.matched} incidents on both sides, {self.big_shifts} moved by {BIG_SHIFT} or more, "
            f"mean shift {self.mean_shift:+.3f}",
            *(["largest shifts:", *shown] if shown else []),
            f"alerts the new version would raise: {by_severity(self.would_raise)}",
            f"alerts it would not raise: {by_severity(self.would_not_raise)}",
            f"alerts raised at another severity: {self.severity_changed}",
        ]


def _regrouped(client: Any, one: str, other: str) -> int:
    """Incidents of `one` whose members are spread over more than one incident of `other`."""
    return client.execute(
        f"SELECT count() FROM (SELECT incident_id, uniqExact(other_incident) AS parts FROM {one}.incident_members "
        f"ALL INNER JOIN (SELECT event_id, incident_id AS other_incident FROM {other}.incident_members) "
        "USING event_id GROUP BY incident_id HAVING parts > 1)")[0][0]


def _raised(client: Any, database: str, period: dict[str, Any]) -> dict[str, str]:
    return dict(client.execute(f"SELECT alert_id, any(severity) FROM {database}.alerts WHERE state = 'raised' "
                               "AND at BETWEEN %(since)s AND %(until)s GROUP BY alert_id", period))


def compare(settings: Settings, name: str) -> Comparison:
    """The live projections against those of reprocessed version `name` (before it is promoted)."""
    live = settings.clickhouse_database
    new = settings.for_version(check_version_name(name), {}, reprocessing=True).clickhouse_database
    client = connect(settings, live)
    if not client.execute("SELECT count() FROM system.databases WHERE name = %(db)s", {"db": new})[0][0]:
        raise ConfigError(f"processor version {name} has not been reprocessed; run `binhyen reprocess` first")
    result = Comparison()
    # The log may not reach back as far as the live tables (retention): compare what both cover.
    first, last, count = client.execute(f"SELECT min(opened_at), max(updated_at), count() FROM {new}.incidents")[0]
    if count:
        result.since, result.until = first, last
    period = {"since": result.since or datetime(1971, 1, 1), "until": (result.until or datetime(2105, 1, 1))
              + timedelta(days=1)}
    result.live_incidents, result.new_incidents = (client.execute(
        f"SELECT uniqExact(incident_id) FROM {db}.incidents WHERE opened_at BETWEEN %(since)s AND %(until)s", period)[0][0]
        for db in (live, new))
    result.split, result.merged = _regrouped(client, live, new), _regrouped(client, new, live)
    result.scorers = tuple(  # type: ignore[assignment]
        [row[0] for row in client.execute(f"SELECT DISTINCT scorer_version FROM {db}.incidents "
                                          "WHERE opened_at BETWEEN %(since)s AND %(until)s ORDER BY 1", period)]
        for db in (live, new))
    shifts = client.execute(
        f"SELECT incident_id, commune_code, category, old, new FROM (SELECT incident_id, any(commune_code) AS "
        f"commune_code, any(category) AS category, argMax(credibility, version) AS old FROM {live}.incidents "
        f"GROUP BY incident_id) ALL INNER JOIN (SELECT incident_id, argMax(credibility, version) AS new "
        f"FROM {new}.incidents GROUP BY incident_id) USING incident_id")
    result.matched = len(shifts)
    if shifts:
        result.mean_shift = sum(row[4] - row[3] for row in shifts) / len(shifts)
        result.big_shifts = sum(1 for row in shifts if abs(row[4] - row[3]) >= BIG_SHIFT - 1e-9)
        result.largest = sorted(((i, c, cat, float(o), float(n)) for i, c, cat, o, n in shifts),
                                key=lambda row: (-abs(row[4] - row[3]), row[0]))[:SHOWN]
    before, after = _raised(client, live, period), _raised(client, new, period)
    result.would_raise = _count_by_severity(after, before)
    result.would_not_raise = _count_by_severity(before, after)
    result.severity_changed = sum(1 for alert, severity in after.items() if alert in before and before[alert] != severity)
    return result


def _count_by_severity(alerts: dict[str, str], other: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert, severity in alerts.items():
        if alert not in other:
            counts[severity] = counts.get(severity, 0) + 1
    return counts


def swap_in(settings: Settings, reprocessing: Settings) -> None:
    """Exchange the version's incidents, members and alerts with the live ones (the old ones stay
    in the version's database), all or nothing. Analytics views read these tables by name and follow.
    On a cluster the replicated local tables are exchanged on every node, under the Distributed
    tables, which keep reading `<database>.<table>_local` by name."""
    live, new = settings.clickhouse_database, reprocessing.clickhouse_database
    suffix = LOCAL_SUFFIX if settings.clickhouse_cluster else ""
    renames = [pair for t in (f"{t}{suffix}" for t in SWAPPED_TABLES) for pair in (
        (f"{live}.{t}", f"{new}.{t}__old"), (f"{new}.{t}", f"{live}.{t}"), (f"{new}.{t}__old", f"{new}.{t}"))]
    rename_all(connect(settings, live), renames, settings.clickhouse_cluster or None)


def keep_tip_scores(settings: Settings, reprocessing: Settings) -> None:
    """Add the version's scores of the history to the live `tip_scores` (rows carry their scorer
    version; a repeat collapses), so a fit under the new version learns from all of it."""
    live, new = private_database(settings.clickhouse_database), private_database(reprocessing.clickhouse_database)
    connect(settings, settings.clickhouse_database).execute(
        f"INSERT INTO {live}.tip_scores SELECT * FROM {new}.tip_scores")


@dataclass
class Promotion:
    history: int = 0
    tail: int = 0
    previous: str = ""


def promote(settings: Settings, name: str, workers: int, progress: Progress,
            sleep: Callable[[float], None] = time.sleep) -> Promotion:
    """Make version `name` live without paging history again (see the module's steps)."""
    versions = registry(settings)
    version = versions.get(check_version_name(name))
    if version is None:
        raise ConfigError(f"no processor version {name!r} is registered; run `binhyen reprocess` first")
    if version.state == "live":
        raise ConfigError(f"processor version {name} is live already")
    reprocessing = register(settings, version)
    previous = versions.current() or FROM_FILES
    result = Promotion(previous=previous.name)
    result.history = catch_up(reprocessing, workers, progress)  # most of it, while the old version runs
    versions.record(ProcessorVersion(name, "promoting", version.config_texts))
    try:
        old_group = settings.for_version(previous.name, {}, False).worker_group if previous.name else \
            settings.worker_group
        _wait_until_left(versions, old_group, sleep)
        result.tail = catch_up(reprocessing, workers, progress, "catching up")
        keep_tip_scores(settings, reprocessing)
        swap_in(settings, reprocessing)  # the last step that can fail
    except BaseException:
        versions.record(previous)  # the old version's workers resume
        raise
    versions.record(ProcessorVersion(name, "live", version.config_texts))
    return result


def _wait_until_left(versions: VersionRegistry, group: str, sleep: Callable[[float], None]) -> None:
    """Until the old version's live workers have stopped: they check for promotions before each
    heartbeat, so once none has beaten for `QUIET_S`, all have seen it (or are gone)."""
    deadline = time.monotonic() + OLD_WORKERS_WAIT_S
    while time.time() * 1000 - versions.last_heartbeat_ms(group) < QUIET_S * 1000:
        if time.monotonic() > deadline:
            raise ConfigError(f"live workers of group {group} did not stop within {OLD_WORKERS_WAIT_S:.0f} s; "
                              "the promotion is undone: check their logs and run it again")
        sleep(POLL_S)


def live_config_texts(settings: Settings) -> dict[str, str]:
    """The configs live workers run: the live version's, else the files (BINHYEN_*_CONFIG or shipped;
    also for a version recorded before versions held the meaning model)."""
    current = registry(settings).current()
    files = {"credibility": os.environ.get("BINHYEN_CREDIBILITY_CONFIG") or DEFAULT_CREDIBILITY_CONFIG,
             "alerts": os.environ.get("BINHYEN_ALERT_CONFIG") or DEFAULT_ALERT_CONFIG,
             "meaning": os.environ.get("BINHYEN_MEANING_CONFIG") or DEFAULT_MEANING_CONFIG}
    recorded = {kind: text for kind, text in (current.config_texts if current else {}).items() if text}
    try:
        return {kind: recorded.get(kind) or Path(path).read_text(encoding="utf-8") for kind, path in files.items()}
    except OSError as exc:
        raise ConfigError(f"cannot read the live config {exc.filename}: {exc.strerror}") from None
