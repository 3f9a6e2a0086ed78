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
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from processors.alerts import commune_of_alert
from processors.geography import commune as commune_of
from processors.staff import StaffRegistry
from processors.validation import InvalidEvent, parse_json_line
from sinks.action_links import LinkRefused, verify
from streams.config import ConfigError, Settings
from streams.edge.api_keys import ApiKey, KeyStore
from streams.edge.publisher import Outcome, Publisher
from streams.topics import TIPS

access_log = logging.getLogger("binhyen.gateway.access")
log = logging.getLogger("binhyen.gateway")
NDJSON = "application/x-ndjson"
JSON = "application/json"
REMEMBERED_ANSWERS = 200_000  # event ids answered "published", per gateway process
KNOWN_PATHS = frozenset({"/v1/events", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"})


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


def province_of(event_type: str, record: dict[str, Any]) -> int | None:
    """The province an event is for: its commune's, or for an action the commune in its alert id."""
    code = record.get("commune_code")
    if code is None and event_type == "alert_action":
        code = commune_of_alert(record["alert_id"])
    place = commune_of(code) if isinstance(code, int) else None
    return place.province_code if place else None


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
    staff: StaffRegistry
    limiter: RateLimiter
    answers: Answers
    metrics: Metrics
    publisher: Publisher | None = None
    used_links: set[str] = field(default_factory=set)  # nonces acted on (a replay elsewhere is a duplicate id)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publisher_now(self) -> Publisher:
        """The publisher, connected on first use (requests run in threads: one connection)."""
        with self.lock:
            if self.publisher is None:
                from streams.edge.kafka import producer

                self.publisher = Publisher(producer(self.settings, max_block_ms=10_000),
                                           self.settings.pseudonym_key(), self.settings.time_bounds)
            return self.publisher


def create_app(settings: Settings, publisher: Publisher | None = None) -> FastAPI:
    gateway = Gateway(settings, KeyStore(settings.gateway_keys_file), settings.staff_registry(),
                      RateLimiter(settings.gateway_rate, settings.gateway_burst), Answers(), Metrics(), publisher)
    app = FastAPI(title="binhyen gateway", version="1",
                  description="Publish community-security events (tips, device signals, model changes, verdicts, "
                              "alert actions) as the public contract describes them, and act on alerts from "
                              "signed links. Authenticate with `Authorization: Bearer <API key>`.")

    @app.exception_handler(StarletteHTTPException)
    async def problem(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.middleware("http")
    async def access(request: Request, call_next: Any) -> Response:
        started = time.monotonic()
        request.state.key = "-"
        request.state.counts = {}
        response = await call_next(request)
        path = "/v1/actions/{link}" if request.url.path.startswith("/v1/actions/") else (
            request.url.path if request.url.path in KNOWN_PATHS else "other")  # bounded metric labels
        gateway.metrics.requests.labels(request.state.key, path, str(response.status_code)).inc()
        access_log.info(json.dumps({  # never the query string, a body, a key or a link token
            "method": request.method, "path": path, "status": response.status_code, "key": request.state.key,
            "ms": round((time.monotonic() - started) * 1000, 1), **request.state.counts}))
        return response

    def authenticate(request: Request) -> ApiKey:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = gateway.keys.authenticate(token.strip()) if scheme.lower() == "bearer" else None
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
        400: {"model": Problem, "description": "The body is not JSON lines: nothing was published"},
        401: {"model": Problem}, 413: {"model": Problem}, 415: {"model": Problem},
        422: {"model": Answer, "description": "Every line was rejected (each with its reason)"},
        429: {"model": Problem, "description": "Over the key's rate; see Retry-After"},
        503: {"model": Problem, "description": "Kafka is unreachable: nothing was published"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            JSON: {"schema": {"type": "object", "description": "One event of the public contract "
                                                             "(tests/data/contracts/README.md)"}},
            NDJSON: {"schema": {"type": "string", "description": "One event per line, at most the configured "
                                                                 "number of lines and bytes"}}}}})
    async def publish_events(request: Request) -> Response:
        """Publish one event or a batch; the answer says, per line, where it went or why not."""
        key = authenticate(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        objects = parse_body(await read_body(request), content_type, settings.gateway_max_lines)
        remembered = {number: gateway.answers.get(key.name, obj.get("event_id") if isinstance(obj, dict) else None)
                      for number, obj in objects}
        fresh = [(number, obj) for number, obj in objects if remembered[number] is None]
        try:
            publisher = gateway.publisher_now()
        except ConfigError as exc:
            raise HTTPException(503, f"Kafka is unreachable ({exc}); nothing was published, send it again") from None
        started = time.monotonic()
        outcomes = await run_in_threadpool(publisher.publish_and_confirm, fresh,
                                           lambda event_type, record: key.refuses(event_type,
                                                                                  province_of(event_type, record)))
        gateway.metrics.produce.observe(time.monotonic() - started)
        answers = {o.line: _answer(o) for o in outcomes}
        for outcome in outcomes:
            gateway.metrics.events.labels(key.name, outcome.event_type or "unknown", outcome.status).inc()
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

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(gateway.metrics.registry), media_type="text/plain; version=0.0.4")

    @app.get("/v1/actions/{link}", response_class=HTMLResponse)
    async def confirm_action(link: str) -> HTMLResponse:
        """The page a link opens: what it will do, and a button (link previews must not act)."""
        try:
            action, _ = verify(_secret(settings), link, gateway.staff, time.time())
        except (LinkRefused, ValueError) as exc:
            return _page(403, "Không thực hiện được", str(exc))
        verb = "Xác nhận đã nhận" if action.action == "ack" else "Đóng"
        return _page(200, f"{verb} cảnh báo {action.alert_id}?", button=f"{verb} ({action.staff})")

    @app.post("/v1/actions/{link}", response_class=HTMLResponse)
    async def act(link: str) -> HTMLResponse:
        """Check the link (signature, expiry, staff, jurisdiction, not used before) and publish the action."""
        try:
            action, member = verify(_secret(settings), link, gateway.staff, time.time())
            if action.nonce in gateway.used_links:
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
            return _page(503, "Chưa gửi được", f"{outcome.reason}; thử lại sau")
        gateway.used_links.add(action.nonce)
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
    app = create_app(settings)
    log.info("gateway at http://%s:%d (public address %s)", settings.gateway_host, settings.gateway_port,
             settings.gateway_url)
    # uvicorn's own access log prints query strings; ours (binhyen.gateway.access) does not.
    uvicorn.run(app, host=settings.gateway_host, port=settings.gateway_port, access_log=False, log_level="warning",
                timeout_graceful_shutdown=10)
