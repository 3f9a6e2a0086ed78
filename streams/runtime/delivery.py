"""Delivering pages: each route on its own, the alerts topic acknowledged in order.

The delivery agent's checkpoint. A batch's alert events go to one task per sink (the log, and a
webhook per route), each posting its pages in order with capped backoff, so a dead endpoint holds
back only its own route's pages. A message is acknowledged once every sink it went to took it —
in offset order: Faust commits the first run of consecutive acks, so an ack out of order could
commit past a page still waiting. A crash re-delivers from the oldest page not yet taken, and
receivers drop the repeats by their Idempotency-Key.

A page its route has not taken `undeliverable_after_s` after the first try is given up: counted
(`binhyen_pages_undeliverable_total`), logged, and raised as an alert of its own on the fallback
route (the last escalation step) through the alerts topic — so it is never silently lost and
nothing waits on it for ever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from schemas import CODEC, DecodeError
from sinks.base import flush_until_done
from sinks.notifiers import AlertQueue
from streams.runtime import metrics
from streams.runtime.batch import Message
from streams.runtime.checkpoint import sink_failed, sink_flushed

log = logging.getLogger("binhyen.alerts")
UNDELIVERABLE_RULE = "undeliverable"


@dataclass
class _InFlight:
    token: Any
    sinks_left: int


def sinks_for(alert: dict[str, Any], routes: set[str]) -> list[str]:
    """The log always; the webhook of the alert's route when it pages now (held alerts go out in
    the commune's digest, which is an alert of its own)."""
    names = ["log"]
    if alert["delivery"] == "now" and alert["route"] in routes:
        names.append(f"webhook:{alert['route']}")
    return names


def undeliverable_notice(page: dict[str, Any], route: str, fallback: str, waited_s: float,
                         error: str) -> dict[str, Any]:
    """The alert that says a page did not reach its route (no notice about a notice)."""
    return {**page, "alert_id": f"{page['alert_id']}-undeliverable-{route}", "state": "raised", "severity": "P1",
            "rule": UNDELIVERABLE_RULE, "route": fallback, "delivery": "now", "by": None,
            "summary": f"Không gửi được cảnh báo {page['alert_id']} tới {route} sau {waited_s:.0f} giây "
                       f"({error}): {page['summary']}"}


class RouteDelivery:
    def __init__(self, sinks: dict[str, AlertQueue], acknowledge: Callable[[Any], Awaitable[None]],
                 raise_notice: Callable[[dict[str, Any]], Awaitable[None]], fallback_route: str,
                 undeliverable_after_s: float, max_in_flight: int = 10_000) -> None:
        """`raise_notice(alert)` publishes an undeliverable notice to the alerts topic."""
        self.sinks = sinks
        self.routes = {name.removeprefix("webhook:") for name in sinks if name.startswith("webhook:")}
        self.acknowledge = acknowledge
        self.raise_notice = raise_notice
        self.fallback_route = fallback_route
        self.undeliverable_after_s = undeliverable_after_s
        self.max_in_flight = max_in_flight
        self.queues: dict[str, asyncio.Queue[tuple[dict[str, Any], _InFlight]]] = {n: asyncio.Queue() for n in sinks}
        self.in_flight: deque[_InFlight] = deque()
        self.ack_lock = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []
        for route in self.routes:  # a series per route from the start: 0 is an answer, no series is not
            metrics.PAGES_UNDELIVERABLE.labels(route)
            metrics.SINK_ROWS.labels(f"webhook:{route}")
            metrics.SINK_FAILURES.labels(f"webhook:{route}")

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._run(name, sink)) for name, sink in self.sinks.items()]

    def stop(self) -> None:
        """The agent stops (shutdown, rebalance): what was not taken is not acknowledged, and is read again."""
        for task in self.tasks:
            task.cancel()

    async def dispatch(self, messages: list[Message], since_ms: int = 0) -> None:
        """Hand every alert of the batch written from `since_ms` on to its sinks (a promoted
        processor version starts reading the alerts its predecessor wrote and delivered)."""
        for message in messages:
            while len(self.in_flight) >= self.max_in_flight:  # a dead route: stop reading ahead
                await asyncio.sleep(0.1)
            alert = self._decode(message) if message.timestamp_ms >= since_ms else None
            names = sinks_for(alert, self.routes) if alert is not None else []
            entry = _InFlight(message.token, len(names))
            self.in_flight.append(entry)
            for name in names:
                self.queues[name].put_nowait((alert, entry))
        await self._acknowledge_done()

    @staticmethod
    def _decode(message: Message) -> dict[str, Any] | None:
        try:
            return CODEC.decode(message.value or b"")[1]
        except DecodeError as exc:  # the worker wrote it: a bug, not input to dead-letter
            log.error("undeliverable alert at %s[%d]@%d: %s", message.topic, message.partition, message.offset, exc)
            return None

    async def _run(self, name: str, sink: AlertQueue) -> None:
        """One sink's pages, one at a time, in order."""
        queue = self.queues[name]
        while True:
            alert, entry = await queue.get()
            try:
                await self._deliver(name, sink, alert)
            except Exception:  # a bug must not stop the route: the page is logged, the route goes on
                log.exception("delivering %s to %s failed", alert.get("alert_id"), name)
                sink.give_up()
            entry.sinks_left -= 1
            await self._acknowledge_done()

    async def _deliver(self, name: str, sink: AlertQueue, alert: dict[str, Any]) -> None:
        sink.add(alert)
        first = time.monotonic()
        error = await flush_until_done(sink, sink_failed, sink_flushed, self.undeliverable_after_s)
        if error is not None:
            metrics.SINK_FAILURES.labels(name).inc()
            for page in sink.give_up():
                await self._undeliverable(name.removeprefix("webhook:"), page, time.monotonic() - first, str(error))

    async def _undeliverable(self, route: str, page: dict[str, Any], waited_s: float, error: str) -> None:
        metrics.PAGES_UNDELIVERABLE.labels(route).inc()
        log.error("page %s %s to route %s undeliverable after %.0fs (%s)", page["alert_id"], page["state"], route,
                  waited_s, error)
        if page["rule"] == UNDELIVERABLE_RULE or route == self.fallback_route:
            return  # the fallback itself is down: the metric and its Prometheus alert say so
        await self.raise_notice(undeliverable_notice(page, route, self.fallback_route, waited_s, error))

    async def _acknowledge_done(self) -> None:
        async with self.ack_lock:
            while self.in_flight and self.in_flight[0].sinks_left == 0:
                await self.acknowledge(self.in_flight.popleft().token)
