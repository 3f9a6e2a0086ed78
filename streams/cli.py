"""The `binhyen` command line. Errors are one line on stderr and a non-zero exit.

Exit codes: 0 success; 1 the command ran but something needs attention (input lines
rejected, a part of the stack down); 2 it could not run (bad option, missing key,
unreachable server).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date, datetime
from collections import Counter
from enum import Enum
from pathlib import Path
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from streams.config import ConfigError, Settings

if TYPE_CHECKING:
    from streams.edge.publisher import Publisher
    from streams.ops.credibility import Period

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="binhyen — event-sourced stream processing for community security (ANTT) work.",
)
schemas_app = typer.Typer(no_args_is_help=True, help="Avro schema tools.")
app.add_typer(schemas_app, name="schemas")
gateway_app = typer.Typer(help="The HTTP gateway for upstream systems and on-call action links.")
app.add_typer(gateway_app, name="gateway")
key_app = typer.Typer(no_args_is_help=True, help="The gateway's API keys (one per upstream system).")
gateway_app.add_typer(key_app, name="key")
access_app = typer.Typer(no_args_is_help=True, help="Who reads which jurisdiction's analytics.")
app.add_typer(access_app, name="access")
credibility_app = typer.Typer(no_args_is_help=True, help="Credibility weights learned from officers' verdicts.")
app.add_typer(credibility_app, name="credibility")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _settings() -> Settings:
    return Settings.from_env()


def _input_lines(path: str) -> Iterator[bytes]:
    """The input's lines as bytes (opened now, so a missing file fails before anything else)."""
    try:
        source: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return _bounded_lines(source)


def _bounded_lines(source: IO[bytes]) -> Iterator[bytes]:
    """Each line cut to MAX_LINE_BYTES + 1 (the rest of an over-long line is read and dropped),
    so one bad line — not UTF-8, or huge — is rejected alone and memory stays bounded."""
    from processors.validation import MAX_LINE_BYTES

    with source:
        while line := source.readline(MAX_LINE_BYTES + 1):
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := source.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
            yield line


@app.command()
def up(cluster: Annotated[bool, typer.Option(
        "--cluster", help="ClickHouse as a local cluster: ZooKeeper and two shards (kept for this state folder).")] = False,
) -> None:
    """Start the local broker, ClickHouse and Prometheus, create topics, apply migrations."""
    from streams.ops import stack

    settings = _settings()
    if cluster and not settings.clickhouse_cluster:
        settings = stack.choose_cluster(settings)
    stack.bring_up(settings, lambda line: out.print(line, markup=False))


@app.command()
def down() -> None:
    """Stop what `binhyen up` started (by the PIDs in its pid files, nothing else)."""
    from streams.ops import stack

    settings = _settings()
    out.print(f"{'worker':<15} {stack.stop_worker(settings)}")  # first: it leaves its group while the broker runs
    for part in reversed(stack.parts(settings)):
        out.print(f"{part.name:<15} {stack.stop(part)}")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """The local stack's servers (endpoint, whether each answers) and its workers (pid, group,
    partitions held, lag); exit 1 if a server is down."""
    import dataclasses

    from streams.ops import stack

    settings = _settings()
    report = {
        part.name: {"endpoint": part.endpoint, "healthy": part.healthy(), "pid": stack.running_pid(part)}
        for part in stack.parts(settings)
    }
    workers = stack.workers(settings)
    demo_worker = stack.pid_running(stack.worker_pid_file(settings), stack.BINHYEN)
    if as_json:
        out.print_json(json.dumps({**report, "workers": [dataclasses.asdict(w) for w in workers]}))
    else:
        for name, part in report.items():
            state = "[green]up[/]" if part["healthy"] else "[red]down[/]"
            out.print(f"{name:<12} {state:<6} {part['endpoint']}" + (f"  (pid {part['pid']})" if part["pid"] else ""))
        for w in workers:
            if not w.answering:
                out.print(f"{'worker':<12} [red]gone[/] metrics {w.endpoint} registered but not answering "
                          "(killed? Prometheus shows it down)")
                continue
            by_set: dict[tuple[int, ...], list[str]] = {}
            for topic, ps in w.partitions.items():
                by_set.setdefault(tuple(ps), []).append(topic.removeprefix("binhyen."))
            held = "; ".join(f"{','.join(map(str, ps))} of {', '.join(ts)}" for ps, ts in by_set.items()) or "none yet"
            out.print(f"{'worker':<12} [green]up[/] pid {w.pid}, group {w.group}, version {w.version}, lag "
                      f"{'?' if w.lag is None else w.lag}, metrics {w.endpoint}"
                      + ("  (started by `binhyen demo`; `binhyen down` stops it)" if w.pid == demo_worker else ""),
                      highlight=False)
            out.print(f"{'':<12}    partitions held: {held}", highlight=False)
        if not any(w.answering for w in workers):
            out.print(f"{'worker':<12} [yellow]none[/] nothing processes events or alert acks: "
                      "start one with `binhyen worker`")
    if not all(part["healthy"] for part in report.values()):
        raise typer.Exit(1)


@app.command()
def migrate(cluster: Annotated[str | None, typer.Option(
        help="Apply their cluster form ON CLUSTER this remote_servers name (default: BINHYEN_CLICKHOUSE_CLUSTER).")] = None,
        print_only: Annotated[bool, typer.Option("--print", help="Print the cluster form (with --cluster), apply nothing.")] = False,
) -> None:
    """Apply the ClickHouse migrations not yet applied (idempotent)."""
    from sinks.clickhouse import cluster_ddl
    from sinks.clickhouse import migrate as apply

    settings = _settings()
    if print_only:
        if not (cluster or settings.clickhouse_cluster):
            raise ConfigError("--print shows the cluster form: give --cluster NAME (the remote_servers name)")
        out.print(cluster_ddl(settings.clickhouse_database, cluster or settings.clickhouse_cluster), markup=False, end="")
        return
    applied = apply(settings, cluster=cluster)
    out.print("applied " + ", ".join(applied) if applied else "migrations up to date")


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    processor_version: Annotated[str | None, typer.Option(
        help="Run this registered processor version (default: the live one).")] = None,
    reprocessing: Annotated[bool, typer.Option(
        help="Reprocess history under --processor-version: its own tables and topics, no pages.")] = False,
) -> None:
    """Run a stream worker: decode, validate, dead-letter, write ClickHouse."""
    from streams.runtime.app import run

    run(_settings(), loglevel, processor_version, reprocessing)


@app.command()
def publish(
    file: Annotated[str, typer.Argument(help="JSONL file of contract events, or - for standard input.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only rejected lines and the summary.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Validate, pseudonymise and redact exactly as a publish would, produce nothing, and print "
                          "one JSON line per input line: what would be sent, or why not.")] = False,
) -> None:
    """Validate, pseudonymise and publish contract events; exit 1 if any line was rejected."""
    from streams.edge.kafka import producer
    from streams.edge.publisher import Publisher, Summary

    settings = _settings()
    key = settings.pseudonym_key()
    if dry_run:
        _dry_run(Publisher(None, key, settings.time_bounds), file)
        return
    publisher = Publisher(producer(settings, max_block_ms=15_000), key, settings.time_bounds)
    summary = Summary()
    for outcome in publisher.publish_lines(_input_lines(file)):
        summary.add(outcome)
        if outcome.status == "rejected":
            err.print(f"line {outcome.line}: rejected {outcome.event_id or '-'}: {outcome.reason}", markup=False)
        elif not quiet:
            note = " (event_id assigned)" if outcome.assigned_id else ""
            out.print(f"line {outcome.line}: published {outcome.event_type} {outcome.event_id}{note}", markup=False)
    failures = publisher.flush()
    for line, reason in failures:
        err.print(f"line {line}: not delivered: {reason}", markup=False)
    types = ", ".join(f"{t} {n}" for t, n in sorted(summary.by_type.items()))
    err.print(
        f"published {summary.published - len(failures)}" + (f" ({types})" if types else "")
        + f", rejected {summary.rejected}"
        + (f", not delivered {len(failures)}" if failures else "")
        + (f"; {summary.assigned_ids} event ids assigned" if summary.assigned_ids else "")
    )
    if failures:
        raise typer.Exit(2)
    if summary.rejected:
        raise typer.Exit(1)


def _dry_run(publisher: "Publisher", file: str) -> None:
    """`publish --dry-run`: one JSON object per line on stdout, the summary on stderr."""
    counts: Counter[str] = Counter()
    for result in publisher.dry_run_lines(_input_lines(file)):
        counts[result["status"]] += 1
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    err.print(f"would publish {counts['would_publish']}, rejected {counts['rejected']} (dry run: nothing was sent)")
    if counts["rejected"]:
        raise typer.Exit(1)


@app.command()
def process(
    input: Annotated[str, typer.Option("--input", "-i", help="JSONL input, or - for standard input.")],
    output: Annotated[str, typer.Option("--output", "-o", help="JSONL output file, or - for standard output.")],
    credibility: Annotated[Path | None, typer.Option(
        help="Score with this credibility config (a candidate from `credibility fit`) instead of the live one.")] = None,
) -> None:
    """Run the processors offline over a JSONL file (no broker, no database)."""
    import secrets

    from processors.offline import OfflineRun
    from processors.pseudonym import Pseudonymiser

    settings = _settings()
    try:
        key = settings.pseudonym_key()
    except ConfigError:
        # Offline output carries no pseudonyms; a per-run key keeps reporters apart within the run.
        key = secrets.token_bytes(32)
    scorer = settings.credibility_config()
    if credibility is not None:
        from streams.ops.credibility import load_candidate

        scorer = load_candidate(credibility)
    run = OfflineRun.create(Pseudonymiser(key), scorer, settings.alert_config(), settings.meaning_model(),
                            settings.staff_registry())
    lines = (json.dumps(line, ensure_ascii=False) + "\n" for line in run.process(_input_lines(input)))
    if output == "-":
        sys.stdout.writelines(lines)
    else:
        partial = Path(output + ".partial")
        try:
            with partial.open("w", encoding="utf-8") as sink:
                sink.writelines(lines)
        except OSError as exc:
            raise ConfigError(f"cannot write {output}: {exc.strerror}") from None
        partial.replace(output)  # readers never see half a file
    counts: Counter[str] = run.counts
    err.print(
        f"{sum(counts.values())} events: {counts['accepted']} accepted, "
        f"{counts['duplicate']} duplicate, {counts['rejected']} rejected; {len(run.incidents)} incidents, "
        f"{run.alert_events} alert events"
    )
    if counts["rejected"]:
        raise typer.Exit(1)


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def query(
    name: Annotated[str | None, typer.Argument(help="Query name (see `binhyen query` for the list).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE, repeatable.")] = None,
    output: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, csv or json.")] = OutputFormat.table,
    describe: Annotated[bool, typer.Option("--describe", help="What the query answers, its parameters and what "
                                                               "each column means; runs nothing.")] = False,
) -> None:
    """Run a query from the analysts' catalog as the read-only analyst user."""
    import csv
    import datetime as dt
    import math

    from rich.table import Table

    from sinks.clickhouse import connect
    from streams.ops.catalog import catalog

    queries = catalog()
    if name is None:
        for query_name, entry in queries.items():
            params = " ".join(f"--param {p.name}={p.default}" for p in entry.params.values())
            out.print(f"[bold]{query_name}[/]  {entry.title}\n    {entry.doc}\n    {params}")
        return
    if name not in queries:
        raise ConfigError(f"no query {name!r} in the catalog; there are: {', '.join(queries)}")
    if describe:
        entry = queries[name]
        out.print(f"[bold]{name}[/]  {entry.title}\n{entry.doc}\n\n[bold]parameters[/] (--param NAME=VALUE)")
        for p in entry.params.values():
            out.print(f"  {p.name} ({p.type}, default {p.default or 'empty'}): {p.doc}", highlight=False)
        out.print("[bold]columns[/]")
        for column, meaning in entry.columns.items():
            out.print(f"  {column}: {meaning}", highlight=False)
        return
    values = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--param {item!r} is not NAME=VALUE")
        values[key] = value
    settings = _settings()
    client = connect(settings, settings.clickhouse_database, user="analyst", password=settings.analyst_password)
    rows, columns = client.execute(queries[name].render(values), with_column_types=True)
    headers = [column for column, _ in columns]

    nulls: set[str] = set()

    def cell(header: str, value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            nulls.add(header)
            return None  # e.g. a quantile of no acked alerts: no value, not a number (JSON has no NaN)
        return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value

    if output is OutputFormat.json:  # one JSON object per line
        for row in rows:
            sys.stdout.write(json.dumps({h: cell(h, v) for h, v in zip(headers, row)}, ensure_ascii=False) + "\n")
    elif output is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(headers)
        writer.writerows([cell(h, v) for h, v in zip(headers, row)] for row in rows)
    else:
        table = Table(title=queries[name].title, title_justify="left")
        for header in headers:
            table.add_column(header)
        for row in rows:
            table.add_row(*("null" if (c := cell(h, v)) is None else str(c) for h, v in zip(headers, row)))
        out.print(table)
    err.print(f"{len(rows)} rows" + (f"; null in {', '.join(sorted(nulls))}: no value (e.g. a percentile of no acked "
                                     f"alerts; see --describe)" if nulls else ""))


@app.command()
def verify(
    file: Annotated[str, typer.Argument(help="JSONL file of the contract events that were published, or -.")],
    wait: Annotated[float, typer.Option(help="Seconds to keep checking until every event is there.")] = 0.0,
) -> None:
    """Check that every event of FILE is in ClickHouse exactly once (exit 1 if not)."""
    from sinks.clickhouse import connect
    from streams.ops.verify import verify_delivery

    events, unchecked = [], 0
    for line in _input_lines(file):
        try:
            event = json.loads(line)
            events.append((str(event["event_id"]), str(event["type"])))
        except (ValueError, KeyError, TypeError, RecursionError):
            unchecked += line.strip() != b""
    settings = _settings()
    client = connect(settings, settings.clickhouse_database)
    deadline = time.monotonic() + wait
    while True:
        report = verify_delivery(client, settings.clickhouse_database, events)
        if report.ok or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    out.print(report.line(), markup=False)
    if unchecked:
        err.print(f"{unchecked} lines without an event_id or type were not checked", markup=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def replay(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; only the summary.")] = False,
) -> None:
    """Rebuild every ClickHouse projection from the Kafka log into fresh tables and swap them in."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from streams.ops.replay import replay as rebuild

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=quiet) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{phase} from the log", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        report = rebuild(_settings(), progress)
    rows = ", ".join(f"{table} {count}" for table, count in sorted(report.rows.items()))
    rate = report.records / report.seconds if report.seconds else 0.0
    out.print(f"replayed {report.records} log records ({report.skipped} skipped as invalid, as the workers "
              f"dead-letter them) and {report.tail_records} written meanwhile, in {report.seconds:.1f} s "
              f"({rate:,.0f} records/s); rows written: {rows or 'none'}; projections swapped in")


@app.command()
def reprocess(
    credibility: Annotated[Path | None, typer.Option(help="Credibility config of the new version (default: live).")] = None,
    alerts: Annotated[Path | None, typer.Option(help="Alert config of the new version (default: live).")] = None,
    meaning: Annotated[Path | None, typer.Option(help="Meaning model of the new version (default: live).")] = None,
    name: Annotated[str | None, typer.Option(help="Version name (default: the configs' versions, e.g. cred-2-alerts-3-meaning-2).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Reprocessing workers sharing the work.")] = 1,
    compare: Annotated[bool, typer.Option("--compare", help="Print what changes against the live version.")] = False,
    promote: Annotated[bool, typer.Option("--promote", help="Swap it in; live workers continue under it.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; only the summary.")] = False,
) -> None:
    """Re-run the processors over the whole log under a new processor version (no pages for history)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from streams.ops import reprocess as ops

    settings = _settings()
    version = ops.version_of(settings, {"credibility": credibility, "alerts": alerts, "meaning": meaning}, name)
    reprocessing = ops.register(settings, version)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=err, transient=True,
                  disable=quiet) as bar:
        tasks: dict[str, tuple[int, float]] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = (bar.add_task(f"{phase} {version.name}", total=total, rate=""), time.monotonic())
            task, since = tasks[phase]
            rate = done / max(time.monotonic() - since, 1e-6)
            bar.update(task, completed=done, total=total, rate=f"{rate:,.0f} events/s")

        started = time.monotonic()
        events = ops.catch_up(reprocessing, workers, progress)
        seconds = time.monotonic() - started
        out.print(f"reprocessed {events} events under {version.name} with {workers} worker(s) in {seconds:.1f} s "
                  f"({events / max(seconds, 1e-6) / workers:,.0f} events/s per worker); "
                  f"its projections are in {reprocessing.clickhouse_database}", markup=False)
        if compare:
            for line in ops.compare(settings, version.name).lines():
                out.print(line, markup=False)
        if promote:
            result = ops.promote(settings, version.name, workers, progress)
            out.print(f"promoted {version.name} (was {result.previous or 'the configs from files'}): "
                      f"{result.tail} events caught up during the switch; live workers continue under it; "
                      f"the previous projections are kept in {reprocessing.clickhouse_database}", markup=False)


HISTORY_HELP = "An exported history (contract JSON lines, as `binhyen process` reads): scored offline, no stack."


@credibility_app.command("fit")
def credibility_fit(
    since: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="First day of tips to learn from (YYYY-MM-DD); with --input, default the first.")] = None,
    until: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="Day after the last (YYYY-MM-DD); keep later days to judge it.")] = None,
    version: Annotated[str | None, typer.Option(help="The new config's version (default: the live one's next, e.g. cred-3).")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Where to write it (default: infra/config/credibility.vN.json).")] = None,
    prior_strength: Annotated[float | None, typer.Option(min=0.0, help="How strongly the live weights hold (more: fewer moves); default: chosen by the held-back verdicts.")] = None,
    input: Annotated[str | None, typer.Option("--input", "-i", help=HISTORY_HELP)] = None,
) -> None:
    """Fit the weights to officers' verdicts, from the live ones; writes a new config, changes no score.
    The latest fifth of the verdicts is held back: a fit worse on it than the live weights is refused."""
    from streams.ops import credibility as ops

    period = _period(since, until, required=input is None)
    current, candidate, path = ops.fit_from_verdicts(_settings(), period, version, out_path, prior_strength,
                                                     None if input is None else _input_lines(input))
    figures = candidate.fit or {}
    fitted_on = ops.Period(date.fromisoformat(figures["since"]), date.fromisoformat(figures["until"]))
    out.print(f"fitted {candidate.version} from {current.version} on {figures['verdicts']} verdicts "
              f"({figures['valuable']} valuable) on tips of {fitted_on} in {figures['steps']} steps: log-loss {figures['log_loss_before']:.4f} -> "
              f"{figures['log_loss_after']:.4f}; on the latest {figures['held_back']} verdicts, held back from the fit: "
              f"{figures['held_back_log_loss_before']:.4f} -> {figures['held_back_log_loss_after']:.4f} "
              f"(prior strength {figures['prior_strength']:g}); wrote {path}",
              markup=False)
    for name, before, after in ops.moved_most(current, candidate):
        out.print(f"  {name:<24}{before:>8.2f} -> {after:.2f}", markup=False)
    again = f" --input {input}" if input is not None else ""
    out.print(f"nothing scores with it yet: judge it on later days with `binhyen credibility report {path} "
              f"--since {figures['until']} --until …{again}`, then `binhyen credibility promote {path}`", markup=False)


def _period(since: datetime | None, until: datetime | None, required: bool) -> "Period | None":
    from streams.ops.credibility import Period

    if since is None and until is None and not required:
        return None
    if since is None or until is None:
        raise ConfigError("give both --since and --until (YYYY-MM-DD)" + ("" if required else ", or neither"))
    return Period(since.date(), until.date())


@credibility_app.command("report")
def credibility_report(
    candidate: Annotated[Path, typer.Argument(help="The candidate config (from `credibility fit`).")],
    since: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First held-out day (YYYY-MM-DD).")],
    until: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Day after the last held-out day.")],
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Write the reliability diagram here (PNG).")] = None,
    open_hours: Annotated[int, typer.Option(min=1, help="Incidents updated this many hours before the newest count as open.")] = 24,
    input: Annotated[str | None, typer.Option("--input", "-i", help=HISTORY_HELP)] = None,
    force: Annotated[bool, typer.Option("--force", help="Exit 0 even if the candidate is worse on these days.")] = False,
) -> None:
    """Compare the live config and a candidate on verdicts the candidate was not fitted on; exits 2
    if the candidate predicts them worse (log-loss), unless --force."""
    from streams.ops import credibility as ops

    result = ops.report(_settings(), ops.load_candidate(candidate), ops.Period(since.date(), until.date()), open_hours,
                        None if input is None else _input_lines(input))
    for line in ops.lines(result):
        out.print(line, markup=False)
    if plot_path is not None:
        ops.plot(result, plot_path)
        out.print(f"reliability diagram: {plot_path}", markup=False)
    if result.worse and not force:
        raise ConfigError(result.refusal())


@credibility_app.command("promote")
def credibility_promote(
    candidate: Annotated[Path, typer.Argument(help="The candidate config to make live.")],
    name: Annotated[str | None, typer.Option(help="Processor version name (default: e.g. cred-3-alerts-3-meaning-2).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Workers building its state over the history.")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; only the summary.")] = False,
) -> None:
    """Make a candidate live: a processor version built over the history, then swapped in (no pages)."""
    from streams.ops import credibility as ops

    ops.load_candidate(candidate)  # one clear line for a file that is no config
    reprocess(credibility=candidate, alerts=None, meaning=None, name=name, workers=workers, compare=False, promote=True,
              quiet=quiet)


class AlertAction(str, Enum):
    ack = "ack"
    resolve = "resolve"
    escalate = "escalate"


@app.command()
def alert(
    action: Annotated[AlertAction, typer.Argument(help="ack, resolve or escalate.")],
    alert_id: Annotated[str, typer.Argument(help="The alert id from the page, e.g. al-18352-98fd6459b56cfba6.")],
    by: Annotated[str, typer.Option(help="Your staff id (infra/config/staff.v2.json).")],
) -> None:
    """Act on an alert as on-call staff (publishes an alert_action event)."""
    from datetime import datetime, timedelta, timezone

    from streams.edge.kafka import producer
    from streams.edge.publisher import Publisher

    from processors.alerts import commune_of_alert

    settings = _settings()
    commune = commune_of_alert(alert_id)
    refused = settings.staff_registry().refusal(by, commune) if commune is not None else None
    if refused:  # the worker would refuse it too (dead-lettered): say so now
        raise ConfigError(f"{action.value} {alert_id} refused: {refused}")
    publisher = Publisher(producer(settings, max_block_ms=15_000), settings.pseudonym_key(), settings.time_bounds)
    now = datetime.now(timezone(timedelta(hours=7))).isoformat(timespec="seconds")
    _, event_id = publisher.publish({"type": "alert_action", "occurred_at": now, "alert_id": alert_id,
                                     "action": action.value, "by": by})
    failures = publisher.flush()
    if failures:
        raise ConfigError(f"the action was not delivered to Kafka: {failures[0][1]}")
    out.print(f"{action.value} {alert_id} by {by} at {now} (event {event_id})", markup=False)


@app.command()
def simulate(
    province: Annotated[str, typer.Option(help="2025 province name or code, e.g. 'Cà Mau' or 96.")],
    days: Annotated[int, typer.Option(min=1, max=366, help="Days of event time to simulate.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same events.")] = 1,
    scale: Annotated[float, typer.Option(min=0.05, max=20.0, help="Multiplies reporters, devices and incidents.")] = 1.0,
    start: Annotated[str, typer.Option(help="First simulated day (YYYY-MM-DD, Vietnam time).")] = "2025-09-01",
    output: Annotated[Path | None, typer.Option(help="Write the events here as JSONL.")] = None,
    publish: Annotated[bool, typer.Option("--publish", help="Publish the events to Kafka instead.")] = False,
    truth: Annotated[Path | None, typer.Option(help="Ground-truth JSONL (default: beside the output).")] = None,
    population: Annotated[str, typer.Option(help="Who reports and how officers judge: default, spam-heavy, "
                                                 "few-reliable, hotline-province, rumour-storm, sparse-verdicts.")
                          ] = "default",
) -> None:
    """Simulate a province: tips, device signals, models, verdicts, with ground truth."""
    from streams.sim.runner import run_simulation

    if (output is None) == (not publish):
        raise ConfigError("give exactly one of --output FILE or --publish")
    run_simulation(_settings(), province, days, seed, scale, start, output, publish, truth, err, population)


@app.command()
def demo(
    province: Annotated[str, typer.Option(help="Province to simulate.")] = "Cà Mau",
    days: Annotated[int, typer.Option(min=1, max=31, help="Days of event time.")] = 1,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 1,
    scale: Annotated[float, typer.Option(min=0.05, max=20.0, help="Simulation scale.")] = 1.0,
    pace: Annotated[float, typer.Option(min=0, help="Spread publishing over this many seconds (0: at once).")] = 90,
) -> None:
    """Start the stack and a worker, feed a simulated province (and bad input), print what happened."""
    from streams.config import REPO_ROOT
    from streams.sim.demo import contract_invalid_lines, run_demo
    from streams.sim.runner import sim_config

    config = sim_config(province, days, seed, scale, "2025-09-01")
    run_demo(_settings(), config, pace, contract_invalid_lines(REPO_ROOT / "tests" / "data" / "contracts"), out)


@gateway_app.callback(invoke_without_command=True)
def gateway(ctx: typer.Context) -> None:
    """Run the gateway on 127.0.0.1:BINHYEN_GATEWAY_PORT (`binhyen up` starts one); Ctrl-C stops it."""
    if ctx.invoked_subcommand is None:
        from streams.edge.gateway import serve

        serve(_settings())


@gateway_app.command("check-key")
def gateway_check_key() -> None:
    """Print the workers' BINHYEN_EDGE_CHECK_KEY: it verifies pseudonyms and text tokens, and is
    derived one-way from the pseudonym key (it cannot make pseudonyms, nor test a guessed number)."""
    from processors.pseudonym import check_key_of

    out.print(check_key_of(_settings().pseudonym_key()).hex(), markup=False)


@gateway_app.command("openapi")
def gateway_openapi(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the committed document differs.")] = False,
) -> None:
    """Write the gateway's OpenAPI description to infra/gateway/openapi.json (or check it)."""
    from streams.config import INFRA_DIR
    from streams.edge.gateway import create_app

    document = json.dumps(create_app(_settings()).openapi(), indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    path = INFRA_DIR / "gateway" / "openapi.json"
    if check:
        if not path.exists() or path.read_text(encoding="utf-8") != document:
            err.print(f"{path} differs from the gateway's; run `binhyen gateway openapi` and commit it")
            raise typer.Exit(1)
        out.print(f"{path}: up to date")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    out.print(f"wrote {path}")


@key_app.command("create")
def key_create(
    name: Annotated[str, typer.Argument(help="The upstream system, e.g. hotline-ca-mau.")],
    types: Annotated[str, typer.Option(help="Event types it may publish, comma-separated, or * for all.")],
    provinces: Annotated[str, typer.Option(help="2025 province codes it may publish for, comma-separated, or * for all.")],
    staff: Annotated[str, typer.Option(help="For alert actions: the staff ids its `by` may name, comma-separated "
                                            "(route:NAME for a whole desk, * for anyone in the registry).")] = "",
    replace: Annotated[bool, typer.Option(help="Replace a live key of that name.")] = False,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from streams.edge.api_keys import EVERY, KeyStore

    try:
        codes = [] if provinces.strip() == EVERY else [int(code) for code in provinces.split(",") if code.strip()]
    except ValueError:
        raise ConfigError(f"--provinces {provinces!r}: give 2025 province codes like 96,79 or *") from None
    settings = _settings()
    members = [s.strip() for s in staff.split(",") if s.strip()]
    registry = settings.staff_registry()
    unknown = [m for m in members if m != EVERY and not m.startswith("route:") and m not in registry.members]
    if unknown:
        raise ConfigError(f"--staff: {unknown[0]} is not in the staff registry ({registry.version}); give staff ids "
                          "from it, route:NAME or *")
    token = KeyStore(settings.gateway_keys_file).create(name, [t.strip() for t in types.split(",") if t.strip()],
                                                        codes, replace=replace, staff=members)
    out.print(f"key {name}: {token}", markup=False)
    err.print("shown once: it is stored only as a hash. Send it as `Authorization: Bearer <key>`.")


@key_app.command("revoke")
def key_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: the gateway refuses it from its next request on."""
    from streams.edge.api_keys import KeyStore

    key = KeyStore(_settings().gateway_keys_file).revoke(name)
    out.print(f"key {name} revoked at {key.revoked_at}")


@key_app.command("list")
def key_list() -> None:
    """The keys: name, scope, created, revoked (never the key itself)."""
    from streams.edge.api_keys import KeyStore

    for key in KeyStore(_settings().gateway_keys_file).keys().values():
        out.print(f"{key.name:<24} types {','.join(key.types)}  provinces {','.join(map(str, key.provinces)) or '*'}  "
                  f"staff {','.join(key.staff) or '-'}  created {key.created_at}" + (f"  REVOKED {key.revoked_at}" if key.revoked_at else ""),
                  markup=False)


@access_app.command("apply")
def access_apply(
    config: Annotated[Path | None, typer.Option(help="Access config (default infra/config/access.v1.json).")] = None,
) -> None:
    """Create the config's users on the local ClickHouse, each seeing only its jurisdiction."""
    from streams.ops.access import DEFAULT_ACCESS_CONFIG, AccessConfig, apply

    apply(_settings(), AccessConfig.load(config or DEFAULT_ACCESS_CONFIG), lambda line: out.print(line, markup=False))


@access_app.command("sql")
def access_sql(
    config: Annotated[Path | None, typer.Option(help="Access config (default infra/config/access.v1.json).")] = None,
    cluster: Annotated[str | None, typer.Option(
        help="ON CLUSTER this remote_servers name, policies on the shards' local tables (migrate's cluster form).")] = None,
) -> None:
    """Print the same jurisdictions as users and row policies for a current ClickHouse (production)."""
    from streams.ops.access import DEFAULT_ACCESS_CONFIG, AccessConfig, production_sql

    sys.stdout.write(production_sql(AccessConfig.load(config or DEFAULT_ACCESS_CONFIG), _settings().clickhouse_database,
                                    cluster))


@access_app.command("grafana")
def access_grafana(
    config: Annotated[Path | None, typer.Option(help="Access config (default infra/config/access.v1.json).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the committed file differs.")] = False,
) -> None:
    """Write a Grafana datasource per jurisdiction's user into the provisioning (or check it)."""
    from streams.ops.access import DEFAULT_ACCESS_CONFIG, GRAFANA_DATASOURCES, AccessConfig, grafana_datasources

    text = grafana_datasources(AccessConfig.load(config or DEFAULT_ACCESS_CONFIG))
    if check:
        if not GRAFANA_DATASOURCES.exists() or GRAFANA_DATASOURCES.read_text(encoding="utf-8") != text:
            err.print(f"{GRAFANA_DATASOURCES} differs from the access config; run `binhyen access grafana`")
            raise typer.Exit(1)
        return
    GRAFANA_DATASOURCES.write_text(text, encoding="utf-8")
    out.print(f"wrote {GRAFANA_DATASOURCES}")


@schemas_app.command("check")
def schemas_check(
    directory: Annotated[Path, typer.Option(help="Schema folder.")] = Path(__file__).resolve().parent.parent / "schemas",
) -> None:
    """Fail when a newer schema version cannot read data written with an older one."""
    from schemas.compat import incompatibilities
    from schemas.codec import load_versions

    versions = load_versions(directory)
    problems = incompatibilities(directory)
    for problem in problems:
        err.print(problem, markup=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"{len(versions)} schema versions of {len({v.event_type for v in versions})} event types: compatible")


def main() -> None:
    """Entry point: one clear line instead of a traceback for the errors users can fix."""
    from clickhouse_driver.errors import Error as ClickHouseError
    from clickhouse_driver.errors import ServerException
    from kafka.errors import KafkaError

    from sinks.clickhouse import SwapError

    # What binhyen writes (keys, passwords, state, our servers' data and logs, outputs with tip
    # text) is readable by its owner only.
    os.umask(0o077)
    try:
        app()
    except ConfigError as exc:
        err.print(f"binhyen: {exc}", markup=False)
        sys.exit(2)
    except SwapError as exc:
        err.print(f"binhyen: {exc}", markup=False)
        sys.exit(1)
    except KafkaError as exc:
        err.print(f"binhyen: Kafka error: {type(exc).__name__}: {exc}; is the broker up (`binhyen status`)?", markup=False)
        sys.exit(2)
    except ClickHouseError as exc:
        lines = str(exc).splitlines() or [type(exc).__name__]
        reason = next((line.split("DB::Exception:")[-1].strip() for line in lines if "DB::Exception" in line), lines[0])
        hint = ("check the query or the migrations (`binhyen migrate`)" if isinstance(exc, ServerException)
                else "is it up? `binhyen status`")
        err.print(f"binhyen: ClickHouse error: {reason.split(' Stack trace:')[0]} ({hint})", markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("binhyen: interrupted")
        sys.exit(130)
