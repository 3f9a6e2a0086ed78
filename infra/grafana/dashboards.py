"""Grafana dashboards as code (grafanalib): `python infra/grafana/dashboards.py` writes the JSON
that Grafana provisions from `infra/grafana/dashboards/`; `--check` fails when the committed
JSON and this code differ (the test suite runs it).

- On-call: what waits for a person (unacknowledged P1s, firing rules, open alerts), whether
  events flow (throughput, lag, dead letters, latency) and whether ClickHouse keeps up.
- Province analytics: tips per commune and channel, valuable ratio by source, alert response
  times, community-model coverage and device health, from the ClickHouse views.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import attr
from grafanalib.core import (
    Dashboard, GridPos, Stat, Table, Target, Template, Templating, Time, TimeSeries,
)
from grafanalib._gen import DashboardEncoder

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "binhyen-prometheus"}
CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": "binhyen-clickhouse"}
WIDTH = 24


@attr.s
class ClickHouseTarget:
    """A raw-SQL query of the grafana-clickhouse-datasource plugin (format 1 = table, 0 = time series)."""

    rawSql: str = attr.ib()  # noqa: N815 - Grafana's field name
    refId: str = attr.ib(default="A")  # noqa: N815
    format: int = attr.ib(default=1)

    def to_json_data(self) -> dict[str, Any]:
        return {"datasource": CLICKHOUSE, "editorType": "sql", "format": self.format, "queryType": "sql",
                "rawSql": self.rawSql, "refId": self.refId}


@dataclass(frozen=True)
class Panel:
    """A panel and the columns (ClickHouse) its display needs, for the tests."""

    widget: Any
    columns: tuple[str, ...] = ()


class Layout:
    """Places panels left to right, wrapping at Grafana's 24 columns."""

    def __init__(self) -> None:
        self.x = self.y = self.row_height = 0

    def __call__(self, width: int, height: int) -> GridPos:
        if self.x + width > WIDTH:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        pos = GridPos(h=height, w=width, x=self.x, y=self.y)
        self.x += width
        self.row_height = max(self.row_height, height)
        return pos


def prometheus(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Target:
    return Target(expr=expr, legendFormat=legend, refId=ref, instant=instant, datasource=PROMETHEUS)


def oncall_panels() -> list[Panel]:
    at = Layout()
    stat = {"dataSource": PROMETHEUS, "reduceCalc": "lastNotNull", "graphMode": "none"}
    return [
        Panel(Stat(title="Unacknowledged P1 alerts", gridPos=at(6, 4), **stat,
                   targets=[prometheus("sum(binhyen_unacked_p1)")],
                   thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}])),
        Panel(Stat(title="Oldest unacknowledged P1", gridPos=at(6, 4), format="s", **stat,
                   targets=[prometheus("max(binhyen_oldest_unacked_p1_seconds)")],
                   thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 60},
                               {"color": "red", "value": 300}])),
        Panel(Stat(title="Alerts re-paged: chain ran out, nobody acted", gridPos=at(6, 4), **stat,
                   targets=[prometheus("sum(binhyen_alerts_repaging)")],
                   thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}])),
        Panel(Stat(title="Workers up", gridPos=at(4, 4), **stat,
                   targets=[prometheus('sum(up{job="binhyen-worker"})')],
                   thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}])),
        Panel(Stat(title="Messages behind (all topics)", gridPos=at(5, 4), **stat,
                   targets=[prometheus("sum(binhyen_consumer_lag)")],
                   thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1000},
                               {"color": "red", "value": 10000}])),
        Panel(Stat(title="Open incidents", gridPos=at(5, 4), **stat,
                   targets=[prometheus("sum(binhyen_open_incidents)")])),
        Panel(Table(title="Firing on-call rules", dataSource=PROMETHEUS, gridPos=at(12, 6),
                    targets=[prometheus('ALERTS{alertstate="firing"}', instant=True)])),
        Panel(Table(title="Open alerts waiting for an acknowledgement", dataSource=CLICKHOUSE, gridPos=at(12, 6),
                    targets=[ClickHouseTarget(OPEN_ALERTS_SQL)]),
              columns=("raised_at", "severity", "commune_code", "rule", "alert_id", "waiting_seconds")),
        Panel(TimeSeries(title="Events consumed per second, by topic", dataSource=PROMETHEUS, gridPos=at(8, 8),
                         targets=[prometheus("sum by (topic) (rate(binhyen_events_consumed_total[1m]))", "{{topic}}")],
                         unit="ops")),
        Panel(TimeSeries(title="Lag by topic (messages)", dataSource=PROMETHEUS, gridPos=at(8, 8),
                         targets=[prometheus("sum by (topic) (binhyen_consumer_lag)", "{{topic}}")])),
        Panel(TimeSeries(title="Dead letters per 5 min, by reason", dataSource=PROMETHEUS, gridPos=at(8, 8),
                         targets=[prometheus("sum by (reason) (increase(binhyen_dead_letters_total[5m]))",
                                             "{{reason}}")])),
        Panel(TimeSeries(title="Batch latency, consumed to emitted (p50, p99)", dataSource=PROMETHEUS,
                         gridPos=at(8, 8), unit="s",
                         targets=[prometheus("histogram_quantile(0.5, sum by (le) (rate(binhyen_batch_seconds_bucket[5m])))",
                                             "p50"),
                                  prometheus("histogram_quantile(0.99, sum by (le) (rate(binhyen_batch_seconds_bucket[5m])))",
                                             "p99", ref="B")])),
        Panel(TimeSeries(title="Event time to processed (p50)", dataSource=PROMETHEUS, gridPos=at(8, 8), unit="s",
                         targets=[prometheus("histogram_quantile(0.5, sum by (le) (rate(binhyen_event_age_seconds_bucket[5m])))",
                                             "p50")])),
        Panel(TimeSeries(title="Alerts raised per 15 min, by severity", dataSource=PROMETHEUS, gridPos=at(8, 8),
                         targets=[prometheus('sum by (severity) (increase(binhyen_alerts_total{state="raised"}[15m]))',
                                             "{{severity}}")])),
        Panel(TimeSeries(title="ClickHouse insert latency p99, by table", dataSource=PROMETHEUS, gridPos=at(8, 8),
                         unit="s",
                         targets=[prometheus("histogram_quantile(0.99, sum by (le, table) "
                                             "(rate(binhyen_sink_insert_seconds_bucket[5m])))", "{{table}}")])),
        Panel(TimeSeries(title="ClickHouse rows per second and failed inserts", dataSource=PROMETHEUS,
                         gridPos=at(8, 8),
                         targets=[prometheus('sum by (table) (rate(binhyen_sink_rows_total{table!~"webhook:.*"}[1m]))',
                                             "{{table}} rows/s"),
                                  prometheus('sum by (table) (increase(binhyen_sink_failures_total{table!~"webhook:.*"}[5m]))',
                                             "{{table}} failures", ref="B")])),
        Panel(TimeSeries(title="Pages per route: delivered, retried, given up (per 15 min)", dataSource=PROMETHEUS,
                         gridPos=at(8, 8),
                         targets=[prometheus('sum by (table) (increase(binhyen_sink_rows_total{table=~"webhook:.*"}[15m]))',
                                             "{{table}} delivered"),
                                  prometheus('sum by (table) (increase(binhyen_sink_failures_total{table=~"webhook:.*"}[15m]))',
                                             "{{table}} retried", ref="B"),
                                  prometheus("sum by (route) (increase(binhyen_pages_undeliverable_total[15m]))",
                                             "{{route}} given up", ref="C")])),
        Panel(TimeSeries(title="State keys per table", dataSource=PROMETHEUS, gridPos=at(8, 8),
                         targets=[prometheus("sum by (table) (binhyen_state_keys)", "{{table}}")])),
    ]


OPEN_ALERTS_SQL = """SELECT
    toDateTime(intDiv(raised_ms, 1000)) AS raised_at,
    severity,
    commune_code,
    rule,
    alert_id,
    intDiv(toUInt64(toUnixTimestamp(now())) * 1000 - raised_ms, 1000) AS waiting_seconds
FROM alert_lifecycle
WHERE acked_ms = 0 AND resolved_ms = 0 AND raised_ms >= toUInt64(toUnixTimestamp($__fromTime)) * 1000
ORDER BY severity, raised_at
LIMIT 100"""

PROVINCE_FILTER = "(${province} = 0 OR province_code = ${province})"


def analytics_panels() -> list[Panel]:
    at = Layout()
    sql = [
        ("Tips per day, by channel", 10, 12, 0, f"""SELECT toDateTime(day) AS time, channel, sum(tips) AS tips
FROM tips_per_day
WHERE day BETWEEN toDate($__fromTime) AND toDate($__toTime) AND {PROVINCE_FILTER}
GROUP BY time, channel
ORDER BY time, channel""", ("time", "channel", "tips")),
        ("Tips per commune", 10, 12, 1, f"""SELECT c.name AS commune, commune_code, sum(tips) AS tips, sum(anonymous_tips) AS anonymous
FROM tips_per_day
ANY LEFT JOIN (SELECT commune_code, name FROM communes FINAL) AS c USING commune_code
WHERE day BETWEEN toDate($__fromTime) AND toDate($__toTime) AND {PROVINCE_FILTER}
GROUP BY commune, commune_code
ORDER BY tips DESC
LIMIT 50""", ("commune", "commune_code", "tips", "anonymous")),
        ("Valuable ratio by channel and source group", 10, 12, 1, f"""SELECT channel, source_group, sum(verdicts) AS verdicts, sum(valuable) AS valuable,
    round(valuable / verdicts, 3) AS valuable_ratio
FROM valuable_ratio_by_source
WHERE {PROVINCE_FILTER}
GROUP BY channel, source_group
ORDER BY verdicts DESC
LIMIT 50""", ("channel", "source_group", "verdicts", "valuable", "valuable_ratio")),
        ("Alert response times (seconds to acknowledge)", 10, 12, 1, f"""SELECT commune_code, severity, alerts, acked, escalated, p50_ack_seconds, p90_ack_seconds
FROM alert_response
WHERE {PROVINCE_FILTER}
ORDER BY severity, p90_ack_seconds DESC
LIMIT 50""", ("commune_code", "severity", "alerts", "acked", "p50_ack_seconds", "p90_ack_seconds")),
        ("Community-model coverage", 10, 12, 1, f"""SELECT model_kind, communes_with_model, communes_total, coverage, models, members, teams
FROM model_coverage
WHERE {PROVINCE_FILTER}
ORDER BY coverage DESC""", ("model_kind", "communes_with_model", "communes_total", "coverage")),
        ("Device health (worst first)", 10, 12, 1, f"""SELECT device_id, device_kind, commune_code, offline_now, false_alarm_rate, alarm_incidents,
    offline_seconds, last_seen_at
FROM device_health
WHERE {PROVINCE_FILTER}
ORDER BY offline_now DESC, false_alarm_rate DESC, offline_seconds DESC
LIMIT 50""", ("device_id", "device_kind", "offline_now", "false_alarm_rate", "offline_seconds")),
    ]
    panels = []
    for title, height, width, fmt, query, columns in sql:
        kind = TimeSeries if fmt == 0 else Table
        panels.append(Panel(kind(title=title, dataSource=CLICKHOUSE, gridPos=at(width, height),
                                 targets=[ClickHouseTarget(query, format=fmt)]), columns))
    return panels


def province_variable() -> Template:
    return Template(name="province", label="Province", dataSource=CLICKHOUSE, type="query", default="0",
                    query="SELECT 0 UNION ALL SELECT DISTINCT province_code FROM communes", includeAll=False)


def dashboards() -> dict[str, tuple[Dashboard, list[Panel]]]:
    oncall, analytics = oncall_panels(), analytics_panels()
    return {
        "oncall": (Dashboard(title="binhyen — On-call", uid="binhyen-oncall", tags=["binhyen"], refresh="10s",
                             time=Time("now-3h", "now"), timezone="Asia/Ho_Chi_Minh",
                             panels=[p.widget for p in oncall]).auto_panel_ids(), oncall),
        "province-analytics": (Dashboard(title="binhyen — Province analytics", uid="binhyen-analytics",
                                         tags=["binhyen"], time=Time("now-30d", "now"), timezone="Asia/Ho_Chi_Minh",
                                         templating=Templating(list=[province_variable()]),
                                         panels=[p.widget for p in analytics]).auto_panel_ids(), analytics),
    }


def rendered() -> dict[str, str]:
    return {name: json.dumps(board.to_json_data(), cls=DashboardEncoder, sort_keys=True, indent=2) + "\n"
            for name, (board, _) in dashboards().items()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    drift = []
    for name, text in rendered().items():
        path = OUT_DIR / f"{name}.json"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                drift.append(str(path))
        else:
            OUT_DIR.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if drift:
        print(f"dashboards differ from infra/grafana/dashboards.py: {', '.join(drift)}; "
              "run `python infra/grafana/dashboards.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
