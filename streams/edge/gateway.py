"""`binhyen gateway`: the HTTP door for upstream systems, and for on-call staff's action links.

FastAPI on uvicorn: FastAPI because the OpenAPI description an integrator needs comes from
the same declarations that check requests (and is committed: `infra/gateway/openapi.json`,
with a drift test); uvicorn because it is the ASGI server FastAPI is built and tested with.

The gateway is the only holder of the pseudonym key in a deployment: upstream systems send
contract JSON with raw contacts over HTTPS and never see the key or Kafka. `POST /v1/events`
runs exactly the publisher's path (streams.edge.publisher: validation, legacy codes,
pseudonyms, redaction, Avro) and answers only after the broker acknowledged (acks=all), so a
line answered "published" is in Kafka even if the gateway dies the next moment. A body that
is not JSON lines at all is refused whole (nothing produced); a line the contract rejects
is answered per line, the others go on. A repeated event id (a retried request) is answered
as the first time from memory, without producing again; one that reaches another replica is
produced again and dropped by the workers' dedup, so it never reaches the projections twice.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from processors.alerts import commune_of_alert
from processors.geography import commune as commune_of
from processors.geography import legacy_to_2025
from processors.staff import StaffRegistry
from processors.validation import InvalidEvent, parse_json_line
from schemas.codec import INPUT_TYPES
from sinks.action_links import LinkRefused, verify
from streams.config import ConfigError, Settings
from streams.edge.api_keys import ApiKey, KeyStore
from streams.edge.publisher import Outcome, Publisher
from streams.edge.used_links import UsedLinks
from streams.topics import TIPS

access_log = logging.getLogger("binhyen.gateway.access")
log = logging.getLogger("binhyen.gateway")
NDJSON = "application/x-ndjson"
JSON = "application/json"
REMEMBERED_ANSWERS = 200_000  # event ids answered "published", per gateway process
KNOWN_PATHS = frozenset({"/v1/events", "/healthz", "/readyz", "/openapi.json", "/docs"})
BEARER = HTTPBearer(auto_error=False, description="The API key `binhyen gateway key create` printed once")


class LineAnswer(BaseModel):
    line: int
    status: Literal["published", "rejected", "failed"]
    event_id: str | None = None
    reason: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class Answer(BaseModel):
    """Per line of the request: published (with where), rejected (with why) or failed (send it again)."""

    published: int
    rejected: int
    failed: int
    lines: list[LineAnswer]


class Problem(BaseModel):
    error: str


class RateLimiter:
    """A token bucket per key: `rate` requests a second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self.lock = threading.Lock()

    def wait_for(self, key: str) -> float:
        """0 when the request may go now (and counts it), else the seconds until it may."""
        with self.lock:
            now = self.clock()
            tokens, then = self.buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1:
                self.buckets[key] = (tokens - 1, now)
                return 0.0
            self.buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class Answers:
    """The answers given for published event ids (per key), so a retry is answered the same."""

    def __init__(self, size: int = REMEMBERED_ANSWERS) -> None:
        self.size = size
        self.answers: OrderedDict[tuple[str, str], LineAnswer] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str, event_id: Any) -> LineAnswer | None:
        with self.lock:
            return self.answers.get((key, event_id)) if isinstance(event_id, str) else None

    def remember(self, key: str, answer: LineAnswer) -> None:
        with self.lock:
            self.answers[(key, answer.event_id or "")] = answer
            while len(self.answers) > self.size:
                self.answers.popitem(last=False)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("binhyen_gateway_requests", "HTTP requests by key name, path and status code.",
                                ["key", "path", "code"], registry=self.registry)
        self.events = Counter("binhyen_gateway_events", "Event lines by key name, event type and outcome.",
                              ["key", "type", "status"], registry=self.registry)
        self.produce = Histogram("binhyen_gateway_produce_seconds", "From the first send of a request's events "
                                 "to the broker's last acknowledgement.", registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def province_of(code: Any) -> int | None:
    place = commune_of(code) if isinstance(code, int) and not isinstance(code, bool) else None
    return place.province_code if place else None


def scope_refusal(key: ApiKey, staff: StaffRegistry, event_type: str, record: dict[str, Any]) -> str | None:
    """Why `key` may not publish this (parsed) event, from what the event refers to — or None.

    An action acts on its alert, so its commune is the alert's (named in the alert id) and a
    `commune_code` claiming another is refused; its `by` must be a staff member the key may act
    for and whose jurisdiction covers that commune. A verdict is scoped by the commune it claims;
    the worker dead-letters it when that is not its tip's or incident's commune.
    """
    code = record.get("commune_code")
    if event_type == "alert_action":
        alert_commune = commune_of_alert(record["alert_id"])
        if code is not None and code != alert_commune:
            return (f"forbidden: commune_code {code} is not the commune of alert {record['alert_id']} "
                    f"({alert_commune}); send the alert's own commune, or none")
        code = alert_commune
    refused = key.refuses(event_type, province_of(code))
    if refused is not None or event_type != "alert_action":
        return refused
    member = staff.members.get(record["by"])
    refused = key.refuses_actor(record["by"], member.route if member else None)
    if refused is None and code is not None:
        why = staff.refusal(record["by"], code)
        refused = None if why is None else f"forbidden: {why}"
    return refused


def early_refusal(key: ApiKey, obj: Any) -> str | None:
    """The key's scope on the raw line, before any parsing: a line the key may not send costs
    nothing to refuse, whatever it holds (what cannot be told yet is checked after parsing)."""
    if not isinstance(obj, dict) or obj.get("type") not in INPUT_TYPES:
        return None
    event_type, code = obj["type"], obj.get("commune_code")
    if isinstance(obj.get("legacy_commune_code"), int):
        code = legacy_to_2025().get(obj["legacy_commune_code"], code)
    if event_type == "alert_action" and isinstance(obj.get("alert_id"), str) and code is None:
        code = commune_of_alert(obj["alert_id"])
    refused = key.refuses_type(event_type)
    if refused is None and province_of(code) is not None:  # a commune that cannot be told yet: after parsing
        refused = key.refuses_province(province_of(code))
    return refused


class StaffFile:
    """The staff registry as its file holds it now: re-read when it changes, so a member removed
    from it cannot act from the next request on (without restarting the gateway)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._registry: StaffRegistry | None = None
        self.lock = threading.Lock()

    def current(self) -> StaffRegistry:
        stat = self.path.stat()
        with self.lock:
            if self._registry is None or (stat.st_mtime_ns, stat.st_size) != self._stamp:
                self._registry = StaffRegistry.load(self.path)
                self._stamp = (stat.st_mtime_ns, stat.st_size)
            return self._registry


def parse_body(body: bytes, content_type: str, max_lines: int) -> list[tuple[int, Any]]:
    """(line number, JSON value) per non-blank line; HTTPException when the body is not JSON lines
    at all — nothing of such a request is published."""
    if content_type == JSON:
        lines = [body]
    elif content_type == NDJSON:
        lines = body.split(b"\n")  # a last line cut short (a truncated upload) fails to parse below
    else:
        raise HTTPException(415, f"Content-Type {content_type or 'missing'}: send {JSON} (one event) or "
                                 f"{NDJSON} (one event per line)")
    objects = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(objects) == max_lines:
            raise HTTPException(413, f"more than {max_lines:,} events in one request; send them in batches")
        try:
            objects.append((number, parse_json_line(line)))  # JSON, but maybe not an event: the contract says
        except InvalidEvent as exc:
            raise HTTPException(400, f"line {number}: {exc}; nothing of this request was published") from None
    if not objects:
        raise HTTPException(400, "the body holds no event; send one JSON object, or one per line")
    return objects


@dataclass
class Gateway:
    """What the routes share: settings, keys, the publisher (created on first use) and state."""

    settings: Settings
    keys: KeyStore
    staff: StaffFile
    limiter: RateLimiter
    answers: Answers
    metrics: Metrics
    publisher: Publisher | None = None
    used_links: UsedLinks | None = None  # opened on the first link pressed
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publisher_now(self) -> Publisher:
        """The publisher, connected on first use (requests run in threads: one connection)."""
        with self.lock:
            if self.publisher is None:
                from streams.edge.kafka import producer

                self.publisher = Publisher(producer(self.settings, max_block_ms=10_000),
                                           self.settings.pseudonym_key(), self.settings.time_bounds)
            return self.publisher

    def links_store(self) -> UsedLinks:
        with self.lock:
            if self.used_links is None:
                self.used_links = UsedLinks(self.settings.state_dir / "used-links.sqlite")
            return self.used_links


def create_app(settings: Settings, publisher: Publisher | None = None, metrics: Metrics | None = None) -> FastAPI:
    settings.staff_registry()  # a missing or broken registry stops the start, with its reason
    gateway = Gateway(settings, KeyStore(settings.gateway_keys_file), StaffFile(settings.staff_config_path),
                      RateLimiter(settings.gateway_rate, settings.gateway_burst), Answers(), metrics or Metrics(),
                      publisher)
    app = FastAPI(title="binhyen gateway", version="1",
                  description="Publish community-security events (tips, device signals, model changes, verdicts, "
                              "alert actions) as the public contract describes them, and act on alerts from "
                              "signed links. Authenticate with `Authorization: Bearer <API key>`. Metrics are "
                              "served on a separate, internal port (BINHYEN_GATEWAY_METRICS_PORT).")

    @app.exception_handler(StarletteHTTPException)
    async def problem(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.middleware("http")
    async def access(request: Request, call_next: Any) -> Response:
        started = time.monotonic()
        request.state.key = "-"
        request.state.counts = {}
        try:
            response = await call_next(request)
        except Exception:  # a bug: answered in JSON, logged and counted like every request
            log.exception("%s %s failed", request.method, request.url.path)
            response = JSONResponse({"error": "internal error: the lines answered so far may have been published; "
                                              "send the request again (repeated event ids are not published twice)"},
                                    status_code=500)
        path = "/v1/actions/{link}" if request.url.path.startswith("/v1/actions/") else (
            request.url.path if request.url.path in KNOWN_PATHS else "other")  # bounded metric labels
        gateway.metrics.requests.labels(request.state.key, path, str(response.status_code)).inc()
        access_log.info(json.dumps({  # never the query string, a body, a key or a link token
            "method": request.method, "path": path, "status": response.status_code, "key": request.state.key,
            "ms": round((time.monotonic() - started) * 1000, 1), **request.state.counts}))
        return response

    def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> ApiKey:
        key = gateway.keys.authenticate(credentials.credentials.strip()) if credentials else None
        if key is None:
            raise HTTPException(401, "missing, wrong or revoked API key; send `Authorization: Bearer <key>`",
                                headers={"WWW-Authenticate": "Bearer"})
        request.state.key = key.name
        wait = gateway.limiter.wait_for(key.name)
        if wait:
            raise HTTPException(429, f"key {key.name} is over its rate of {settings.gateway_rate:g} requests/s; "
                                     f"retry after the Retry-After seconds", headers={"Retry-After": str(math.ceil(wait))})
        return key

    async def read_body(request: Request) -> bytes:
        limit = settings.gateway_max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"body of {int(declared):,} bytes is over the limit of {limit:,}; send smaller batches")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HTTPException(413, f"body over the limit of {limit:,} bytes; send smaller batches")
        return bytes(body)

    @app.post("/v1/events", response_model=Answer, responses={
        200: {"description": "At least one line was published or failed (send the failed ones again)"},
        400: {"model": Problem, "description": "The body is not JSON lines: nothing was published"},
        401: {"model": Problem, "description": "No, a wrong or a revoked API key"},
        403: {"model": Answer, "description": "Every line is outside the key's scope (each with its reason)"},
        413: {"model": Problem, "description": "Too many bytes or lines: nothing was published"},
        415: {"model": Problem, "description": "Not application/json or application/x-ndjson"},
        422: {"model": Answer, "description": "Every line was rejected (each with its reason)"},
        429: {"model": Problem, "description": "Over the key's rate; see Retry-After"},
        500: {"model": Problem, "description": "A fault of the gateway (logged and counted)"},
        503: {"model": Problem, "description": "Kafka is unreachable: nothing was published"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            JSON: {"schema": {"type": "object", "description": "One event of the public contract "
                                                             "(tests/data/contracts/README.md)"}},
            NDJSON: {"schema": {"type": "string", "description": "One event per line, at most the configured "
                                                                 "number of lines and bytes"}}}}})
    async def publish_events(request: Request,
                             credentials: HTTPAuthorizationCredentials | None = Security(BEARER)) -> Response:
        """Publish one event or a batch; the answer says, per line, where it went or why not."""
        key = authenticate(request, credentials)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        objects = parse_body(await read_body(request), content_type, settings.gateway_max_lines)
        remembered = {number: gateway.answers.get(key.name, obj.get("event_id") if isinstance(obj, dict) else None)
                      for number, obj in objects}
        answers: dict[int, LineAnswer] = {}
        fresh = []
        for number, obj in objects:
            if remembered[number] is not None:
                continue
            refused = early_refusal(key, obj)
            if refused is None:
                fresh.append((number, obj))
            else:
                answers[number] = LineAnswer(line=number, status="rejected", reason=refused)
                gateway.metrics.events.labels(key.name, obj["type"], "rejected").inc()
        try:
            publisher = gateway.publisher_now()
        except ConfigError as exc:
            raise HTTPException(503, f"Kafka is unreachable ({exc}); nothing was published, send it again") from None
        staff = gateway.staff.current()
        started = time.monotonic()
        outcomes = await run_in_threadpool(publisher.publish_and_confirm, fresh,
                                           lambda event_type, record: scope_refusal(key, staff, event_type, record))
        gateway.metrics.produce.observe(time.monotonic() - started)
        for outcome in outcomes:
            answers[outcome.line] = _answer(outcome)
            event_type = outcome.event_type if outcome.event_type in INPUT_TYPES else "other"  # bounded labels
            gateway.metrics.events.labels(key.name, event_type, outcome.status).inc()
            if outcome.status == "published":
                gateway.answers.remember(key.name, answers[outcome.line])
        lines = [answers.get(number) or remembered[number].model_copy(update={"line": number})  # type: ignore[union-attr]
                 for number, _ in objects]
        counts = {status: sum(1 for a in lines if a.status == status) for status in ("published", "rejected", "failed")}
        request.state.counts = counts
        code = 200 if counts["published"] or counts["failed"] else (
            403 if all((a.reason or "").startswith("forbidden") for a in lines) else 422)
        return JSONResponse(Answer(**counts, lines=lines).model_dump(), status_code=code)

    @app.get("/healthz", responses={200: {"description": "The process answers"}})
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": Problem}})
    async def readyz() -> Response:
        """Ready when Kafka answers (the events topic's partitions are known)."""
        def reachable() -> bool:
            try:
                producer = gateway.publisher_now().producer
                return producer is not None and bool(producer.partitions_for(TIPS))
            except Exception:  # any client failure means: not ready
                return False
        if await run_in_threadpool(reachable):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"error": "Kafka is unreachable"}, status_code=503)

    link_responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "A page for staff (Vietnamese)"},
        403: {"description": "Tampered, expired, foreign, used, or its staff member left the registry: a page "
                             "saying why"}}

    @app.get("/v1/actions/{link}", response_class=HTMLResponse, responses=link_responses)
    async def confirm_action(link: str) -> HTMLResponse:
        """The page a link opens: what it will do, and a button (link previews must not act)."""
        try:
            action, _ = verify(_secret(settings), link, gateway.staff.current(), time.time())
        except (LinkRefused, ValueError) as exc:
            return _page(403, "Không thực hiện được", str(exc))
        verb = "Xác nhận đã nhận" if action.action == "ack" else "Đóng"
        return _page(200, f"{verb} cảnh báo {action.alert_id}?", button=f"{verb} ({action.staff})")

    @app.post("/v1/actions/{link}", response_class=HTMLResponse, responses={
        **link_responses, 503: {"description": "Kafka did not take the action: the link may be pressed again"}})
    async def act(link: str) -> HTMLResponse:
        """Check the link (signature, expiry, staff, jurisdiction, not used before) and publish the action."""
        used = gateway.links_store()
        try:
            action, member = verify(_secret(settings), link, gateway.staff.current(), time.time())
            if not await run_in_threadpool(used.take, action.nonce, action.expires_s, time.time()):
                raise LinkRefused("liên kết đã được dùng (already used)")
        except (LinkRefused, ValueError) as exc:
            log.warning("action link refused: %s", exc)
            return _page(403, "Không thực hiện được", str(exc))
        event = {"type": "alert_action", "event_id": f"link-{action.nonce}", "alert_id": action.alert_id,
                 "action": action.action, "by": member.id,
                 "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}
        outcome, = await run_in_threadpool(gateway.publisher_now().publish_and_confirm, [(1, event)],
                                           lambda *_: None)
        if outcome.status != "published":
            await run_in_threadpool(used.give_back, action.nonce)
            return _page(503, "Chưa gửi được", f"{outcome.reason}; thử lại sau")
        log.info("action link used: %s %s by %s", action.action, action.alert_id, member.id)
        done = "Đã xác nhận" if action.action == "ack" else "Đã đóng"
        return _page(200, f"{done} cảnh báo {action.alert_id}", f"Người thực hiện: {member.name} ({member.id}).")

    return app


def _answer(outcome: Outcome) -> LineAnswer:
    return LineAnswer(line=outcome.line, status=outcome.status, event_id=outcome.event_id,  # type: ignore[arg-type]
                      reason=outcome.reason, topic=outcome.topic, partition=outcome.partition, offset=outcome.offset)


def _secret(settings: Settings) -> bytes:
    secret = settings.link_secret()
    if secret is None:
        raise LinkRefused("this gateway has no link secret (BINHYEN_LINK_SECRET)")
    return secret


def _page(status: int, title: str, text: str = "", button: str | None = None) -> HTMLResponse:
    """A short page for staff; with `button`, a form that POSTs to the same link."""
    from html import escape

    form = f'<form method="post"><button type="submit">{escape(button)}</button></form>' if button else ""
    return HTMLResponse(f"<!doctype html><html lang=vi><meta charset=utf-8><title>{escape(title)}</title>"
                        f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{form}</html>", status_code=status)


def serve(settings: Settings) -> None:
    import uvicorn

    logging.basicConfig(level="INFO", format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    metrics = Metrics()
    app = create_app(settings, metrics=metrics)
    # Metrics on their own listener: the public one (behind the TLS proxy) serves only the API.
    start_http_server(settings.gateway_metrics_port, addr=settings.metrics_host, registry=metrics.registry)
    log.info("gateway at http://%s:%d (public address %s), metrics at http://%s:%d/metrics", settings.gateway_host,
             settings.gateway_port, settings.gateway_url, settings.metrics_host, settings.gateway_metrics_port)
    # uvicorn's own access log prints query strings; ours (binhyen.gateway.access) does not.
    uvicorn.run(app, host=settings.gateway_host, port=settings.gateway_port, access_log=False, log_level="warning",
                timeout_graceful_shutdown=10)
