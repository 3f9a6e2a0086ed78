"""Metrics, rules and dashboards against the real stack: Prometheus (started by `binhyen up`)
scrapes the real worker; every PromQL expression of the rules and dashboards evaluates there,
and every ClickHouse panel's SQL runs (macros expanded) as the grafana user."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from typing import Any

import pytest
import yaml

from sinks.clickhouse import connect
from streams.config import INFRA_DIR
from streams.edge.kafka import producer
from streams.ops.stack import WorkerProcess
from streams.topics import TIPS
from tests.conftest import EVENTS, jsonl, run_cli, wait_for
from tests.unit.test_dashboards import load_dashboards

pytestmark = pytest.mark.integration
CONTACT = "+84912777888"
# Panels whose series exist only after something went wrong (a failed insert, a firing rule).
MAY_BE_EMPTY = {'ALERTS{alertstate="firing"}',
                'sum by (table) (increase(binhyen_sink_failures_total{table!~"webhook:.*"}[5m]))'}


def promql(settings: Any, expr: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{settings.prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def metrics_page(settings: Any) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=10) as response:  # noqa: S310
        return response.read().decode()


@pytest.fixture(scope="module")
def observed(worker: WorkerProcess, settings: Any, clickhouse: Any) -> Any:
    """Events of every kind the panels show, a panic press that pages, and bad input."""
    events = [
        {"type": "tip", "event_id": f"obs-tip-{n}", "occurred_at": "2020-01-10T08:00:00+07:00", "commune_code": 31951,
         "channel": "zalo", "source_ref": "zalo:grp-obs", "reporter_contact": CONTACT,
         "text": f"Có nhóm thanh niên tụ tập đánh bạc ở quán cà phê số {n}", "category": "gambling"}
        for n in range(3)
    ] + [
        {"type": "device_signal", "event_id": "obs-press-1", "occurred_at": "2020-01-10T08:01:00+07:00",
         "commune_code": 31951, "device_id": "obs-bell", "device_kind": "alarm_bell", "signal": "panic_pressed",
         "site_kind": "bank"},
        {"type": "feedback", "event_id": "obs-verdict-1", "occurred_at": "2020-01-10T09:00:00+07:00",
         "commune_code": 31951, "tip_event_id": "obs-tip-0", "verdict": "valuable"},
    ]
    # A sample of the decode counter before the garbage: a worker started just now (this module
    # first) is otherwise scraped for the first time after it, and increase() has nothing to compare.
    wait_for(lambda: promql(settings, 'binhyen_dead_letters_total{reason="decode"}')["data"]["result"], 90,
             "Prometheus to scrape the worker's dead-letter counters", every=1)
    assert run_cli("publish", "-q", "-", input=jsonl(events)).returncode == 0
    garbage = producer(settings)
    garbage.send(TIPS, key=b"31951", value=b"not an event at all")
    garbage.flush()
    garbage.close()
    wait_for(lambda: clickhouse.execute(f"SELECT count() FROM {EVENTS} WHERE startsWith(event_id, 'obs-')")[0][0] == 5,
             60, "the events in ClickHouse")
    # Two scrapes after the counters moved, so rates and increases have their two samples.
    # Counted by the worker running now (an earlier module may have restarted it, and an increase
    # over 5 minutes would also see the worker before).
    for expr in ('sum(binhyen_events_consumed_total{type="tip"}) >= 3', 'sum(binhyen_dead_letters_total{reason="decode"}) >= 1',
                 "rate(binhyen_events_consumed_total[1m])",
                 'sum(increase(binhyen_dead_letters_total{reason="decode"}[5m])) > 0',
                 'sum by (severity) (increase(binhyen_alerts_total{state="raised"}[15m]))'):
        wait_for(lambda expr=expr: promql(settings, expr)["data"]["result"], 90, f"Prometheus to see {expr}", every=1)
    return events


def dashboard_panels() -> list[Any]:
    module = load_dashboards()
    return [panel for _, panels in module.dashboards().values() for panel in panels]


def test_prometheus_scrapes_the_worker(observed: Any, settings: Any) -> None:
    up = promql(settings, 'up{job="binhyen-worker"}')["data"]["result"]
    assert [sample["value"][1] for sample in up] == ["1"]
    consumed = promql(settings, 'sum(binhyen_events_consumed_total{type="tip"})')["data"]["result"]
    assert consumed and float(consumed[0]["value"][1]) >= 3
    dead = promql(settings, 'sum(binhyen_dead_letters_total{reason="decode"})')["data"]["result"]
    assert dead and float(dead[0]["value"][1]) >= 1


def test_every_dashboard_and_rule_expression_evaluates(observed: Any, settings: Any) -> None:
    expressions = [target.expr for panel in dashboard_panels() for target in panel.widget.targets
                   if getattr(target, "expr", None)]
    rules = yaml.safe_load((INFRA_DIR / "prometheus" / "rules" / "binhyen.rules.yml").read_text())
    rule_expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(expressions) >= 15 and len(rule_expressions) == 9
    for expr in expressions + rule_expressions:
        answer = promql(settings, expr)
        assert answer["status"] == "success", (expr, answer)
        if expr in expressions and expr not in MAY_BE_EMPTY:
            assert answer["data"]["result"], f"no series for dashboard expression {expr}"


def test_every_clickhouse_panel_query_returns_its_columns(observed: Any, settings: Any) -> None:
    grafana = connect(settings, settings.clickhouse_database, user="grafana", password=settings.grafana_password)
    macros = {r"\$__fromTime": "toDateTime(1577836800)", r"\$__toTime": "toDateTime(2208988800)",
              r"\$\{province\}": "0"}
    panels = [panel for panel in dashboard_panels() if panel.columns]
    assert len(panels) == 7
    for panel in panels:
        sql = panel.widget.targets[0].rawSql
        for macro, value in macros.items():
            sql = re.sub(macro, value, sql)
        assert "$" not in sql, sql
        rows, columns = grafana.execute(sql, with_column_types=True)
        names = [name for name, _ in columns]
        assert set(panel.columns) <= set(names), (panel.widget.title, names)
        if panel.widget.title in ("Tips per day, by channel", "Tips per commune", "Open alerts waiting for an acknowledgement"):
            assert rows, panel.widget.title
    variable = load_dashboards().province_variable()
    assert (96,) in grafana.execute(variable.query)


def test_no_contact_in_metric_labels(observed: Any, settings: Any) -> None:
    from processors.pseudonym import Pseudonymiser

    page = metrics_page(settings)
    pseudonym = Pseudonymiser(settings.pseudonym_key()).reporter(CONTACT)
    for secret in (CONTACT, CONTACT.lstrip("+"), pseudonym):
        assert secret not in page
    labels = set(re.findall(r'(\w+)="', page))
    assert labels <= {"topic", "type", "reason", "partition", "table", "severity", "rule", "state", "notifier",
                      "outcome", "commune", "le", "worker", "pid", "group", "version",  # pid…: binhyen_worker_info
                      "route"}  # alert route names, from the config


def test_status_exits_1_and_names_the_part_when_only_prometheus_is_down(stack: dict[str, str], settings: Any) -> None:
    from streams.ops import stack as local_stack

    prometheus = next(part for part in local_stack.parts(settings) if part.name == "prometheus")
    assert run_cli("status").returncode == 0
    assert local_stack.stop(prometheus).startswith("stopped")
    try:
        down = run_cli("status", "--json")
        assert down.returncode == 1
        report = json.loads(down.stdout)
        assert {name for name, part in report.items() if name != "workers" and not part["healthy"]} == {"prometheus"}
        assert re.search(r"^prometheus\s+down\s", run_cli("status").stdout, re.MULTILINE)
    finally:
        assert local_stack.start(prometheus).startswith("started")
    wait_for(lambda: run_cli("status").returncode == 0, 60, "status to report every part up again")
