"""Alert delivery: a log sink and a webhook sink per route, honouring the sink contract (sinks.base).

A webhook sink serves one route (one endpoint), so a dead endpoint holds back only its own
route's pages (streams.runtime.delivery runs each route on its own). It posts each alert event
as JSON, signed with HMAC-SHA256 over the send time and the body (`X-Binhyen-Timestamp`,
`X-Binhyen-Signature`), with an idempotency key (alert id, state, time): a receiver rejects forged and old pages and drops the repeats that
at-least-once delivery brings (README, "Receiving pages"). Redirects are never followed: a
3xx is a failed delivery. `flush()` sends in order and stops at the first failure, keeping
the rest; the caller retries with backoff, so a failing endpoint delays alerts but never
loses one — until the delivery runner gives the page up as undeliverable (`give_up`). Errors
and logs name the route, never its URL (which may carry a token).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from sinks.base import SinkError

log = logging.getLogger("binhyen.alerts")
TIMEOUT_S = 5.0
MIN_SECRET_BYTES = 32


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a bodyless GET that still looks delivered."""

    def redirect_request(self, *args: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-Binhyen-Signature` value: HMAC-SHA256 over "<timestamp>." + body."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


class DeliveryError(SinkError):
    """An endpoint did not take an alert; the alert stays queued."""


def idempotency_key(alert: dict[str, Any]) -> str:
    return f"{alert['alert_id']}:{alert['state']}:{alert['at_ms']}"


class AlertQueue:
    """The queue half of the sink contract, shared by the notifiers."""

    name = "alerts"

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    @property
    def pending(self) -> int:
        return len(self.alerts)

    def add(self, alert: dict[str, Any]) -> None:
        self.alerts.append(alert)

    def give_up(self) -> list[dict[str, Any]]:
        """Drop what is pending (it stayed undeliverable too long) and return it, to be reported."""
        dropped, self.alerts = self.alerts, []
        return dropped


class LogNotifier(AlertQueue):
    """One structured log line per alert event (no reporter data is ever in an alert)."""

    name = "log"

    def flush(self) -> int:
        for alert in self.alerts:
            log.warning("ALERT %s %s %s commune=%s rule=%s route=%s delivery=%s: %s", alert["severity"],
                        alert["state"], alert["alert_id"], alert["commune_code"], alert["rule"], alert["route"],
                        alert["delivery"], alert["summary"])
        sent, self.alerts = len(self.alerts), []
        return sent


class WebhookNotifier(AlertQueue):
    """POST each alert of one route to that route's URL."""

    def __init__(self, route: str, url: str, secret: bytes, clock: Callable[[], float] = time.time,
                 actions: Callable[[dict[str, Any]], list[dict[str, str]]] | None = None) -> None:
        """`actions(alert)`: the signed ack/resolve links per staff member on call (sinks.action_links)."""
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the webhook secret must be at least {MIN_SECRET_BYTES} bytes (an empty or short "
                             "one lets anybody forge pages)")
        super().__init__()
        self.name = f"webhook:{route}"
        self.route = route
        self.url = url
        self.secret = secret
        self.clock = clock
        self.actions = actions

    def flush(self) -> int:
        """Post in order; the first failure stops the flush and keeps it and the rest queued."""
        sent = 0
        while self.alerts:
            self._post(self.alerts[0])
            self.alerts.pop(0)
            sent += 1
        return sent

    def _post(self, alert: dict[str, Any]) -> None:
        page = {**alert, "actions": self.actions(alert)} if self.actions and alert["state"] != "resolved" else alert
        body = json.dumps(page, ensure_ascii=False, sort_keys=True).encode("utf-8")
        timestamp = str(int(self.clock()))
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8",
            "X-Binhyen-Timestamp": timestamp,
            "X-Binhyen-Signature": signature(self.secret, timestamp, body),
            "Idempotency-Key": idempotency_key(alert),
        })
        try:
            with _OPENER.open(request, timeout=TIMEOUT_S):
                pass  # urllib raises HTTPError for any answer outside 2xx
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"{self.name} answered {exc.code}"
                                + (" (a redirect; binhyen does not follow them)" if 300 <= exc.code < 400 else "")
                                ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"{self.name} unreachable: {type(reason).__name__}") from None


def parse_routes(spec: str) -> dict[str, str]:
    """'commune-post=http://…,province-duty=http://…' -> {route: url}."""
    routes = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise ValueError(f"{item!r} is not ROUTE=http(s)://URL")
        routes[name.strip()] = url.strip()
    return routes
