"""Pages per route (streams.runtime.delivery): a dead endpoint holds back only its own route,
the alerts topic is acknowledged in offset order, and a page no route takes in time is given
up, counted and raised on the fallback route."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from schemas import CODEC
from streams.runtime import metrics
from streams.runtime.batch import Message
from streams.runtime.delivery import RouteDelivery, sinks_for, undeliverable_notice
from streams.topics import ALERTS
from tests.sink_contract import FlakySink

T0 = 1_756_890_000_000
FOREVER = 10**9


def alert(n: int, route: str = "commune-post", delivery: str = "now", rule: str = "panic_bell") -> dict[str, Any]:
    return {"alert_id": f"al-31867-{n}", "state": "raised", "severity": "P1", "rule": rule, "incident_id": None,
            "commune_code": 31867, "at_ms": T0 + n, "by": None, "summary": f"page {n}", "route": route,
            "delivery": delivery, "config_version": "alerts-3"}


def message(offset: int, page: dict[str, Any] | bytes, timestamp_ms: int = T0) -> Message:
    value = page if isinstance(page, bytes) else CODEC.encode("alert", page)
    return Message(ALERTS, 0, offset, value, token=f"m{offset}", timestamp_ms=timestamp_ms)


class Run:
    """A RouteDelivery over fake sinks: `log`, and webhooks for commune-post, province-duty and command."""

    def __init__(self, undeliverable_after_s: float = 60.0, **failures: int) -> None:
        self.acked: list[str] = []
        self.notices: list[dict[str, Any]] = []
        self.sinks = {name: FlakySink(name, failures=failures.get(name.removeprefix("webhook:").replace("-", "_"), 0))
                      for name in ("log", "webhook:commune-post", "webhook:province-duty", "webhook:command")}
        self.delivery = RouteDelivery(self.sinks, self._ack, self._notice, "command", undeliverable_after_s)

    async def _ack(self, token: str) -> None:
        self.acked.append(token)

    async def _notice(self, page: dict[str, Any]) -> None:
        self.notices.append(page)

    def pages(self, name: str) -> list[str]:
        return [page["alert_id"] for page in self.sinks[name].written]


async def until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not hold in time")


def test_a_page_goes_to_the_log_and_its_routes_webhook_a_held_one_to_the_log_only() -> None:
    assert sinks_for(alert(1), {"commune-post", "command"}) == ["log", "webhook:commune-post"]
    assert sinks_for(alert(1, delivery="digest"), {"commune-post"}) == ["log"]  # the digest carries it
    assert sinks_for(alert(1, route="province-duty"), {"commune-post"}) == ["log"]  # no endpoint: the log has it


def test_every_message_is_acknowledged_in_order_once_its_sinks_took_it(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> Run:
        run = Run()
        run.delivery.start()
        with caplog.at_level(logging.ERROR, logger="binhyen.alerts"):
            await run.delivery.dispatch([message(0, alert(0)), message(1, b"not an alert"),
                                         message(2, alert(2, route="province-duty")),
                                         message(3, alert(3, delivery="digest"))])
            await until(lambda: len(run.acked) == 4)
        return run

    run = asyncio.run(scenario())
    assert run.acked == ["m0", "m1", "m2", "m3"]
    assert run.pages("log") == ["al-31867-0", "al-31867-2", "al-31867-3"]
    assert run.pages("webhook:commune-post") == ["al-31867-0"]
    assert run.pages("webhook:province-duty") == ["al-31867-2"]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [f"undeliverable alert at {ALERTS}[0]@1"]


def test_alerts_written_before_a_promoted_version_went_live_are_acknowledged_not_paged() -> None:
    async def scenario() -> Run:
        run = Run()
        run.delivery.start()
        await run.delivery.dispatch([message(0, alert(0), timestamp_ms=999), message(1, alert(1), timestamp_ms=1_000)],
                                    since_ms=1_000)
        await until(lambda: len(run.acked) == 2)
        return run

    run = asyncio.run(scenario())
    assert run.pages("webhook:commune-post") == ["al-31867-1"] and run.acked == ["m0", "m1"]


def test_a_dead_endpoint_delays_no_other_route_and_holds_the_commit_point_until_given_up() -> None:
    before = metrics.PAGES_UNDELIVERABLE.labels("commune-post")._value.get()

    async def scenario() -> tuple[Run, list[str], list[str]]:
        run = Run(undeliverable_after_s=1.0, commune_post=FOREVER)
        run.delivery.start()
        await run.delivery.dispatch([message(0, alert(0)), message(1, alert(1, route="province-duty")),
                                     message(2, alert(2, route="province-duty"))])
        await until(lambda: len(run.pages("webhook:province-duty")) == 2, 0.5)  # at once, not after the dead one
        acked_meanwhile = list(run.acked)
        await until(lambda: len(run.acked) == 3)
        return run, acked_meanwhile, run.pages("webhook:province-duty")

    run, acked_meanwhile, other_route = asyncio.run(scenario())
    assert other_route == ["al-31867-1", "al-31867-2"]
    assert acked_meanwhile == []  # m1 and m2 wait for m0: Faust would commit past it otherwise
    assert run.acked == ["m0", "m1", "m2"]
    assert run.pages("webhook:commune-post") == [] and "webhook:commune-post gave up 1" in run.sinks[
        "webhook:commune-post"].journal
    assert metrics.PAGES_UNDELIVERABLE.labels("commune-post")._value.get() == before + 1
    [notice] = run.notices
    assert (notice["alert_id"], notice["rule"], notice["route"], notice["severity"], notice["delivery"]) == (
        "al-31867-0-undeliverable-commune-post", "undeliverable", "command", "P1", "now")
    assert notice["summary"].startswith("Không gửi được cảnh báo al-31867-0 tới commune-post sau ")
    assert notice["summary"].endswith("(webhook:commune-post is down (999999997 more)): page 0")


def test_a_route_that_recovers_within_the_time_gets_its_page_once_with_no_notice() -> None:
    async def scenario() -> Run:
        run = Run(undeliverable_after_s=30.0, commune_post=2)
        run.delivery.start()
        await run.delivery.dispatch([message(0, alert(0))])
        await until(lambda: run.acked == ["m0"])
        return run

    run = asyncio.run(scenario())
    assert run.sinks["webhook:commune-post"].journal == ["webhook:commune-post failed"] * 2 + [
        "webhook:commune-post took 1"]
    assert run.notices == []


def test_no_notice_about_the_fallback_itself_nor_about_a_notice() -> None:
    async def scenario() -> Run:
        run = Run(undeliverable_after_s=0.1, command=FOREVER)
        run.delivery.start()
        notice = undeliverable_notice(alert(0), "commune-post", "command", 300, "down")
        await run.delivery.dispatch([message(0, alert(1, route="command")), message(1, notice)])
        await until(lambda: len(run.acked) == 2)
        return run

    run = asyncio.run(scenario())
    assert run.notices == [] and run.acked == ["m0", "m1"]


def test_stopping_leaves_what_was_not_taken_unacknowledged() -> None:
    async def scenario() -> Run:
        run = Run(undeliverable_after_s=60.0, commune_post=FOREVER)
        run.delivery.start()
        await run.delivery.dispatch([message(0, alert(0)), message(1, alert(1, route="province-duty"))])
        await until(lambda: run.pages("webhook:province-duty") == ["al-31867-1"])
        run.delivery.stop()
        await asyncio.sleep(0.2)
        assert all(task.cancelled() or task.done() for task in run.delivery.tasks)
        return run

    run = asyncio.run(scenario())
    assert run.acked == [] and run.notices == []  # m0 was never taken: the next owner reads both again
