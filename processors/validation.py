"""The event contract (../shared/contracts): JSON in, wire records out, one rule book.

`parse_contract` turns what upstream systems send into the wire record (the Avro shape:
epoch-ms event time, 2025 commune code, reporter pseudonym instead of contact) and
`check_rules` enforces every value rule on a wire record. The publisher runs both; the
worker runs `check_rules` again on what it decodes, so a producer that bypasses the
publisher is held to the same rules — with the edge's check (processors.pseudonym.EdgeCheck),
to the pseudonyms and tokens only the edge can make.

Lengths are checked before any pattern runs over a value: a 120 KB tip must be refused in
microseconds, not scanned (it once delayed a panic bell's page by 35 s).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from processors import geography
from processors.pseudonym import PSEUDONYM_FORMAT, EdgeCheck, Pseudonymiser
from processors.redaction import Redactor, contains_contact, forged_tokens, identifier_holds_contact
from schemas.codec import INPUT_TYPES

CHANNELS = frozenset({"zalo", "facebook", "hotline", "sms", "vneid", "web", "in_person"})
CATEGORIES = frozenset({
    "drugs", "gambling", "theft", "fight", "fraud", "hui", "fire", "traffic",
    "missing_person", "lost_property", "other",
})
ATTACHMENT_KINDS = frozenset({"image", "video", "audio", "document"})
DEVICE_KINDS = frozenset({"alarm_bell", "smart_gate", "camera", "gong"})
SIGNALS = frozenset({
    "panic_pressed", "gate_forced", "gate_opened", "gate_closed", "motion", "tamper",
    "heartbeat", "battery_low", "offline",
})
SITE_KINDS = frozenset({
    "bank", "gold_shop", "clinic", "shop", "market", "school", "cafe", "residential", "gate", "other",
})
MODEL_KINDS = frozenset({
    "zalo_group", "facebook_page", "smart_gate", "alarm_bell_network", "camera_program",
    "security_gong", "self_managed_team", "landlord_club", "hui_group", "drug_free_commune",
    "worker_squad", "crime_prevention_club", "other",
})
MODEL_CHANGES = frozenset({
    "launched", "replicated", "members_changed", "teams_changed", "suspended", "closed", "recognized",
})
VERDICTS = frozenset({"valuable", "not_valuable", "false_report", "duplicate"})
ALERT_ACTIONS = frozenset({"ack", "resolve", "escalate"})

MAX_TEXT = 4000
MAX_ID = 200
MAX_SHORT_TEXT = 1000
MAX_CONTACT = 200
# Avro `int` (schemas/*.avsc): commune codes, UTC offsets, membership deltas.
INT32_RANGE = (-(2 ** 31), 2 ** 31 - 1)
# One JSONL line at most; a valid event is far smaller (text ≤ 4,000 characters).
MAX_LINE_BYTES = 65_536
# Mainland plus the Paracel and Spratly islands.
LAT_RANGE = (6.0, 23.5)
LON_RANGE = (102.0, 117.9)
# Event times outside this range are typos (1925, 20250) rather than history.
MIN_EVENT_MS = 946_684_800_000  # 2000-01-01
MAX_EVENT_MS = 4_102_444_800_000  # 2100-01-01
COMMUNE_REQUIRED = frozenset({"tip", "device_signal", "model_change"})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Fields whose value is never repeated in an error: it may be somebody's phone number.
_SECRET_FIELDS = frozenset({"reporter_contact", "reporter_pseudonym"})
_INT32_FIELDS = ("commune_code", "legacy_commune_code", "utc_offset_min", "members_delta", "teams_delta")
_FREE_TEXT = frozenset({"text", "location_text", "site_name", "name", "note", "source_ref"})
_LENGTH_LIMITS = {"text": MAX_TEXT, "reporter_contact": MAX_CONTACT} | dict.fromkeys(_FREE_TEXT - {"text"}, MAX_SHORT_TEXT)
# Identifiers a sender chooses: none may carry a contact ('sms-0912000777-…' reached analysts once).
_ID_FIELDS = ("event_id", "device_id", "model_id", "tip_event_id", "incident_id", "alert_id", "by", "replicated_from")


class InvalidEvent(ValueError):
    """One line naming the field, what is wrong and what to send instead."""


@dataclass(frozen=True)
class TimeBounds:
    """How far an event's time may stray from the clock of whoever receives it.

    The contract allows 2000–2100; the edge and the worker are stricter, because one tip dated
    2052 would move its commune's clock decades ahead (closing its open incidents, reporting
    every device silent). `binhyen process` has no receiving clock and does not apply them.
    """

    earliest_ms: int = 1_577_811_600_000  # 2020-01-01 00:00 Vietnam time
    ahead_ms: int = 10 * 60_000

    def check(self, occurred_at_ms: int, now_ms: int) -> None:
        if occurred_at_ms > now_ms + self.ahead_ms:
            raise InvalidEvent(
                f"occurred_at: {(occurred_at_ms - now_ms) / 60_000:,.0f} minutes ahead of the receiving clock "
                f"(at most {self.ahead_ms / 60_000:g} allowed); fix the sender's clock, or send when it happened")
        if occurred_at_ms < self.earliest_ms:
            earliest = datetime.fromtimestamp(self.earliest_ms / 1000, timezone(timedelta(hours=7))).date()
            raise InvalidEvent(f"occurred_at: before {earliest}, the earliest accepted (BINHYEN_EARLIEST_EVENT); "
                               "send when it happened")


# Contract fields per type: name -> JSON type. Common fields are handled separately.
_CONTRACT_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "tip": {
        "channel": str, "source_ref": str, "reporter_contact": str, "anonymous": bool,
        "text": str, "location_text": str, "lat": (int, float), "lon": (int, float),
        "category": str, "attachments": list,
    },
    "device_signal": {
        "device_id": str, "device_kind": str, "signal": str, "site_kind": str, "site_name": str,
        "lat": (int, float), "lon": (int, float),
    },
    "model_change": {
        "model_id": str, "model_kind": str, "change": str, "name": str,
        "members_delta": int, "teams_delta": int, "replicated_from": str,
    },
    "feedback": {"tip_event_id": str, "incident_id": str, "verdict": str, "note": str},
    "alert_action": {"alert_id": str, "action": str, "by": str},
}
_COMMON_FIELDS = frozenset({"type", "event_id", "occurred_at", "commune_code", "legacy_commune_code"})


def parse_json_line(line: str | bytes) -> Any:
    """One JSONL line (text, or bytes as read) -> the JSON value, or InvalidEvent saying what is wrong."""
    if len(line) > MAX_LINE_BYTES:
        raise InvalidEvent(f"line longer than {MAX_LINE_BYTES:,} bytes; send one event of at most that size per line")
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(
                f"not UTF-8 text (byte 0x{line[exc.start]:02x} at byte {exc.start + 1}); send UTF-8 encoded JSON"
            ) from None
    try:
        return json.loads(line.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        raise InvalidEvent(
            f"not valid JSON ({exc.msg}, column {exc.colno}); send one JSON object per line"
        ) from None
    except RecursionError:
        raise InvalidEvent("JSON nested too deeply; an event is one flat object") from None
    except ValueError:  # an integer of more than 4,300 digits
        raise InvalidEvent("a number in the JSON is too long (over 4,300 digits); send real values") from None


def claimed(obj: Any, name: str) -> str | None:
    """A string field of a rejected object, for reporting what was rejected (always printable; never
    one that holds a contact: the answer, the terminal and the logs would repeat it)."""
    value = obj.get(name) if isinstance(obj, dict) else None
    if not isinstance(value, str):
        return None
    value = value[:MAX_ID]
    if contains_contact(value):
        return None
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if _SURROGATE.search(value) else value


def parse_occurred_at(value: Any) -> tuple[int, int]:
    """ISO-8601 with an offset -> (epoch ms, offset minutes)."""
    if not isinstance(value, str):
        raise InvalidEvent(f"occurred_at: expected an ISO-8601 string, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidEvent(
            f"occurred_at: {value[:40]!r} is not an ISO-8601 time with a UTC offset; "
            "send e.g. 2025-06-26T06:40:00+07:00"
        )
    offset = moment.utcoffset()
    assert offset is not None
    return round(moment.timestamp() * 1000), int(offset.total_seconds() // 60)


def _check_type(event_type: str, name: str, value: Any, expected: type | tuple[type, ...]) -> None:
    # bool is an int in Python; the contract keeps them apart.
    if isinstance(value, bool) and expected is not bool:
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        wanted = {str: "a string", bool: "true or false", int: "an integer", list: "a list"}.get(
            expected if isinstance(expected, type) else float, "a number"
        )
        shown = "" if name in _SECRET_FIELDS else " " + _short(value)
        raise InvalidEvent(f"{name}: expected {wanted} for a {event_type}, got {_json_type(value)}{shown}")


def _check_unicode(name: str, value: str) -> None:
    """Lone surrogates (an emoji cut in half upstream) cannot be stored or encoded."""
    if _SURROGATE.search(value):
        raise InvalidEvent(
            f"{name}: contains a lone UTF-16 surrogate (a character cut in half); send valid Unicode text"
        )


def _check_lengths(record: dict[str, Any]) -> None:
    """Every string field has a ceiling, checked before any pattern reads the value (every
    event passes here: a string within the shortest limit costs one comparison)."""
    strings = [(name, value) for name, value in record.items() if isinstance(value, str) and len(value) > MAX_ID]
    attachments = record.get("attachments")
    for index, item in enumerate(attachments if isinstance(attachments, list) else ()):
        if isinstance(item, dict):
            strings += [(f"attachments[{index}].{key}", value) for key, value in item.items()
                        if isinstance(value, str) and len(value) > MAX_ID]
    for name, value in strings:
        limit = _LENGTH_LIMITS.get(name, MAX_ID)
        if len(value) > limit:
            if name == "reporter_contact":  # the length only: a contact is never repeated
                raise InvalidEvent(f"reporter_contact: longer than {MAX_CONTACT} characters; "
                                   "send one phone number or chat id")
            raise InvalidEvent(f"{name}: {len(value)} characters; at most {limit} are allowed")


def _check_ints(record: dict[str, Any]) -> None:
    """Avro `int` is 32 bits: a larger value would stop the encoder, not be refused."""
    for name in _INT32_FIELDS:
        value = record.get(name)
        if isinstance(value, int) and not INT32_RANGE[0] <= value <= INT32_RANGE[1]:
            raise InvalidEvent(f"{name}: outside the contract's 32-bit integer range ({INT32_RANGE[0]:,} to "
                               f"{INT32_RANGE[1]:,}); send the real value")  # not repeated: it may be a phone number


def _coordinate(name: str, value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # a JSON integer of hundreds of digits
        raise InvalidEvent(f"{name}: not a finite number; send decimal degrees") from None


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except (OverflowError, TypeError):
        return False


def _json_type(value: Any) -> str:
    return {str: "string", bool: "boolean", int: "integer", float: "number", list: "list", dict: "object"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _commune_from(obj: dict[str, Any], event_type: str) -> tuple[int | None, int | None]:
    code, legacy = obj.get("commune_code"), obj.get("legacy_commune_code")
    for name, value in (("commune_code", code), ("legacy_commune_code", legacy)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidEvent(f"{name}: expected an integer commune code, got {_json_type(value)} {_short(value)}")
    if legacy is not None:
        mapped = geography.legacy_to_2025().get(legacy)
        if mapped is None:
            raise InvalidEvent(
                f"legacy_commune_code: {_short(legacy)} is not a known pre-2025 ward code; "
                "send the 2025 commune_code instead"
            )
        if code is not None and code != mapped:
            raise InvalidEvent(
                f"commune_code {code} and legacy_commune_code {legacy} (now commune {mapped}) disagree; send one"
            )
        return mapped, legacy
    return code, None


def parse_contract(obj: Any, pseudonyms: Pseudonymiser) -> tuple[str, dict[str, Any], bool]:
    """JSON contract object -> (type, wire record, whether the event_id was assigned here).

    `reporter_contact` is replaced by its keyed pseudonym, or dropped for anonymous tips, so
    the raw contact never leaves this function; contacts typed inside free text are replaced
    by keyed tokens (processors.redaction); an id assigned here is keyed too.
    """
    if not isinstance(obj, dict):
        raise InvalidEvent(f"expected a JSON object per line, got a {_json_type(obj)}")
    check = pseudonyms.check()
    redact = Redactor(pseudonyms.text_token, check).redact
    event_type = obj.get("type")
    if event_type not in INPUT_TYPES:
        raise InvalidEvent(f"type: {_short(event_type)} is not one of {', '.join(INPUT_TYPES)}")
    fields = _CONTRACT_FIELDS[event_type]
    unknown = sorted(set(obj) - _COMMON_FIELDS - set(fields))
    if unknown:
        raise InvalidEvent(
            f"unknown field {_short(unknown[0])} for a {event_type}; allowed: "
            + ", ".join(sorted(_COMMON_FIELDS | set(fields)))
        )
    _check_lengths(obj)  # before any pattern, redaction included, reads a value
    event_id = obj.get("event_id")
    assigned = event_id is None
    if not assigned:
        if not isinstance(event_id, str):
            raise InvalidEvent(f"event_id: expected a string, got {_json_type(event_id)} {_short(event_id)}")
        _check_unicode("event_id", event_id)
    if "occurred_at" not in obj:
        raise InvalidEvent("occurred_at: required; send e.g. 2025-06-26T06:40:00+07:00")
    occurred_at_ms, offset_min = parse_occurred_at(obj["occurred_at"])
    commune_code, legacy_code = _commune_from(obj, event_type)

    record: dict[str, Any] = {
        "event_id": None,  # assigned below when absent: the id is derived from the finished record
        "occurred_at_ms": occurred_at_ms,
        "utc_offset_min": offset_min,
        "commune_code": commune_code,
        "legacy_commune_code": legacy_code,
    }
    for name, expected in fields.items():
        value = obj.get(name)
        if value is None:
            continue
        _check_type(event_type, name, value, expected)
        if isinstance(value, str):
            _check_unicode(name, value)
        if name in _FREE_TEXT:
            value = redact(unicodedata.normalize("NFC", value))
        record[name] = value

    if event_type == "tip":
        contact = record.pop("reporter_contact", None)
        anonymous = record.setdefault("anonymous", False)
        record["reporter_pseudonym"] = pseudonyms.reporter(contact) if contact and not anonymous else None
        record["attachments"] = _parse_attachments(record.get("attachments") or [])
    for coordinate in ("lat", "lon"):
        if coordinate in record:
            record[coordinate] = _coordinate(coordinate, record[coordinate])
    record["event_id"] = pseudonyms.event_id(event_type, record) if assigned else event_id
    check_rules(event_type, record, check)
    return event_type, record, assigned


def _parse_attachments(items: list[Any]) -> list[dict[str, str]]:
    parsed = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"kind", "sha256"}:
            raise InvalidEvent(
                f"attachments[{index}]: expected {{\"kind\": ..., \"sha256\": ...}}, got {_short(item)}"
            )
        parsed.append({"kind": item["kind"], "sha256": item["sha256"]})
    return parsed


def _require_text(record: dict[str, Any], name: str, event_type: str, limit: int = MAX_ID) -> None:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(f"{name}: required for a {event_type} and must not be empty")
    if len(value) > limit:
        raise InvalidEvent(f"{name}: {len(value)} characters; at most {limit} are allowed")


def _require_choice(record: dict[str, Any], name: str, choices: frozenset[str], optional: bool = False) -> None:
    value = record.get(name)
    if value is None and optional:
        return
    if value not in choices:
        shown = "missing" if value is None else repr(value)
        raise InvalidEvent(f"{name}: {shown} is not one of {', '.join(sorted(choices))}")


def _check_position(record: dict[str, Any]) -> None:
    lat, lon = record.get("lat"), record.get("lon")
    if (lat is None) != (lon is None):
        raise InvalidEvent("lat/lon: send both or neither")
    if lat is None:
        return
    if not (_finite(lat) and _finite(lon)):
        raise InvalidEvent("lat/lon: must be finite numbers")
    if not (LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1]):
        raise InvalidEvent(
            f"lat/lon: ({lat}, {lon}) is outside Vietnam "
            f"(lat {LAT_RANGE[0]}..{LAT_RANGE[1]}, lon {LON_RANGE[0]}..{LON_RANGE[1]}); check the order and sign"
        )


def _check_contacts(record: dict[str, Any], check: EdgeCheck | None) -> None:
    """No contact in an identifier or a free text, and (with the edge's check) no forged token."""
    for name in _ID_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and identifier_holds_contact(value):
            raise InvalidEvent(f"{name}: holds a phone number, ID number or e-mail address; "
                               "send an id that carries no contact")
    for name in sorted(_FREE_TEXT & record.keys()):
        value = record[name]
        if not isinstance(value, str):
            continue
        if check is not None and forged_tokens(value, check):
            raise InvalidEvent(f"{name}: holds a token not made by binhyen's edge key; publish through "
                               "`binhyen publish` or the gateway, which replace contacts with keyed tokens")
        if contains_contact(value, check):
            raise InvalidEvent(f"{name}: holds a phone number, ID number, e-mail address or profile link; publish "
                               "through `binhyen publish` or the gateway, which replace them with keyed tokens")


def check_rules(event_type: str, record: dict[str, Any], check: EdgeCheck | None = None) -> None:
    """Every value rule of the contract on a wire record; raises :class:`InvalidEvent`.

    With `check` (what the worker holds), a pseudonym or text token the edge's key did not
    make is refused too.
    """
    _check_lengths(record)
    _check_ints(record)
    _require_text(record, "event_id", event_type)
    occurred = record.get("occurred_at_ms")
    if not isinstance(occurred, int) or not MIN_EVENT_MS <= occurred < MAX_EVENT_MS:
        raise InvalidEvent("occurred_at: must fall between 2000 and 2100")
    code = record.get("commune_code")
    if code is None:
        if event_type in COMMUNE_REQUIRED:
            raise InvalidEvent(f"commune_code: required for a {event_type} (or legacy_commune_code)")
    elif geography.commune(code) is None:
        raise InvalidEvent(
            f"commune_code: {_short(code)} is not a 2025 commune code (34 provinces, 3,321 communes); "
            "send a pre-2025 ward code as legacy_commune_code"
        )
    _check_contacts(record, check)
    if event_type == "tip":
        _require_choice(record, "channel", CHANNELS)
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InvalidEvent("text: required and must not be empty after trimming")
        _require_choice(record, "category", CATEGORIES, optional=True)
        pseudonym = record.get("reporter_pseudonym")
        if pseudonym is not None:
            if record.get("anonymous"):
                raise InvalidEvent("reporter_pseudonym: must be absent on an anonymous tip")
            if not isinstance(pseudonym, str) or not PSEUDONYM_FORMAT.fullmatch(pseudonym):
                raise InvalidEvent(  # the value is not repeated: it may be a raw contact
                    "reporter_pseudonym: not a binhyen pseudonym (rp_ and 32 hex digits); "
                    "publish through binhyen's publisher, which pseudonymises contacts"
                )
            if check is not None and not check.pseudonym_ok(pseudonym):
                raise InvalidEvent(
                    "reporter_pseudonym: not produced by binhyen's edge key; publish through binhyen's "
                    "publisher or the gateway, which pseudonymise contacts"
                )
        for index, attachment in enumerate(record.get("attachments") or []):
            if not isinstance(attachment.get("kind"), str) or attachment["kind"] not in ATTACHMENT_KINDS:
                raise InvalidEvent(
                    f"attachments[{index}].kind: {attachment.get('kind')!r} is not one of "
                    + ", ".join(sorted(ATTACHMENT_KINDS))
                )
            if not _SHA256.match(str(attachment.get("sha256", ""))):
                raise InvalidEvent(f"attachments[{index}].sha256: expected 64 lower-case hex digits")
        _check_position(record)
    elif event_type == "device_signal":
        _require_text(record, "device_id", event_type)
        _require_choice(record, "device_kind", DEVICE_KINDS)
        _require_choice(record, "signal", SIGNALS)
        _require_choice(record, "site_kind", SITE_KINDS, optional=True)
        _check_position(record)
    elif event_type == "model_change":
        _require_text(record, "model_id", event_type)
        _require_choice(record, "model_kind", MODEL_KINDS)
        _require_choice(record, "change", MODEL_CHANGES)
        if record.get("change") == "replicated" and not record.get("replicated_from"):
            raise InvalidEvent("replicated_from: required when change is 'replicated' (the model it copies)")
    elif event_type == "feedback":
        if not (record.get("tip_event_id") or record.get("incident_id")):
            raise InvalidEvent("feedback: send tip_event_id or incident_id (the tip or incident judged)")
        _require_choice(record, "verdict", VERDICTS)
    elif event_type == "alert_action":
        _require_text(record, "alert_id", event_type)
        _require_choice(record, "action", ALERT_ACTIONS)
        _require_text(record, "by", event_type)
    else:
        raise InvalidEvent(f"type: {event_type!r} is not one of {', '.join(INPUT_TYPES)}")


def partition_key(event_type: str, record: dict[str, Any]) -> bytes:
    """The Kafka key the design fixes per topic (commune code, model id or alert id)."""
    if event_type == "model_change":
        key = record["model_id"]
    elif event_type == "alert_action":
        key = record["alert_id"]
    elif record.get("commune_code") is not None:
        key = str(record["commune_code"])
    else:  # feedback without a commune: keep one tip's or incident's verdicts together
        key = record.get("tip_event_id") or record.get("incident_id") or record["event_id"]
    return key.encode("utf-8")
