"""Deduplication and incident clustering, as a pure processor with explicit state.

- Exact duplicates: an `event_id` seen again within the retention window.
- Tips: the same incident told by several people, over several channels, in other words.
  A tip joins the open incident of its commune whose reports it resembles most (Jaccard of
  content shingles, see `processors.text`), provided the time gap fits the window
  (longer for hụi and fraud, which are reported over a day) and the categories do not
  contradict; a shared attachment hash is decisive.
- Device alarms: presses of one device within the debounce window are one trigger; an alarm
  joins a tip incident (and a tip an alarm incident) when commune, time and site kind fit.

State is one mapping the caller owns (a dict offline, a Faust table keyed by commune code in
the worker, co-partitioned with the commune-keyed input topics): commune code -> its open
incidents and the ids of the events that changed them, as JSON-able dicts. Incidents close
once event time in their commune has moved past their window, and ids are forgotten after
the retention window, so state is bounded by those windows, not by history.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from processors.meaning import Meaning
from processors.text import content_tokens, contradicting_places, fold, locators, normalise, shingles

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
SLOW_CATEGORIES = frozenset({"hui", "fraud", "missing_person", "lost_property"})
ALARM_SIGNALS = frozenset({"panic_pressed", "gate_forced", "tamper"})
# Words that put a tip at a device's site (folded).
SITE_WORDS: dict[str, tuple[str, ...]] = {
    "bank": ("ngan hang", "phong giao dich", "atm"),
    "gold_shop": ("tiem vang", "vang bac"),
    "clinic": ("phong kham", "tram y te", "benh vien", "nha thuoc"),
    "shop": ("tiem", "cua hang", "tap hoa", "shop"),
    "market": ("cho",),
    "school": ("truong",),
    "cafe": ("ca phe", "cafe", "quan nuoc"),
    "gate": ("cong",),
    "residential": ("nha",),
}
TEXT_CACHE_LIMIT = 50_000
# A short report ("ông T. ấp 3 trình báo mất trộm bò") is judged by how much of it a longer
# one contains, discounted, once it has at least this many content words.
OVERLAP_MIN_WORDS = 4
OVERLAP_WEIGHT = 0.5
# Tip categories a panic bell or forced gate can be part of (None: the tip did not say).
DEVICE_CATEGORIES = frozenset({"theft", "fight", "fire", "drugs", None})


@dataclass(frozen=True)
class DedupConfig:
    retention_ms: int = 7 * 24 * HOUR_MS  # exact duplicates
    window_ms: int = 3 * HOUR_MS  # tip to tip, most categories
    slow_window_ms: int = 24 * HOUR_MS  # hụi, fraud, missing people, lost property
    similarity: float = 0.20  # to join an incident (tuned on tests/data/dedup_corpus.jsonl, see README)
    debounce_ms: int = 2 * MINUTE_MS  # one device, one signal
    device_before_ms: int = 10 * MINUTE_MS  # a tip may precede the alarm by this much
    device_after_ms: int = 90 * MINUTE_MS  # and follow it by this much
    site_fit: float = 0.5  # similarity credited when a tip names an alarm's site kind
    retain_ms: int = 24 * HOUR_MS  # an incident stays open for verdicts this long after its window
    urgent_join_ms: int = 30 * MINUTE_MS  # reports of one kind of emergency this close are one emergency


@dataclass
class Outcome:
    """What the processor made of one event."""

    status: str  # accepted | duplicate
    incident_id: str | None = None
    reason: str | None = None
    updated: list[dict[str, Any]] = field(default_factory=list)  # incident snapshots to emit


def incident_id_for(first_event_id: str) -> str:
    """Stable and deterministic: derived from the event that opened the incident."""
    return "inc-" + hashlib.sha256(first_event_id.encode("utf-8")).hexdigest()[:16]


def tip_member(record: dict[str, Any], meaning: Meaning | None = None) -> dict[str, Any]:
    """`meaning`: what the text says (processors.meaning) — its category when the sender gave none,
    whether it is happening now, and the phrases that say so."""
    urgent = {"urg": True, "why": list(meaning.evidence[:2])} if meaning is not None and meaning.urgent else {}
    return {
        "e": record["event_id"], "t": record["occurred_at_ms"], "k": "tip",
        # the free-text place, when given, is evidence like the text itself
        "txt": normalise(f"{record['text']} {record.get('location_text') or ''}".strip()),
        "cat": meaning.category if meaning is not None else record.get("category"), **urgent,
        "att": sorted({a["sha256"] for a in record.get("attachments") or []}),
        "rep": record.get("reporter_pseudonym"), "ch": record.get("channel"),
        "src": record.get("source_ref"), "anon": bool(record.get("anonymous")),
        "loc": record.get("location_text"),
    }


def device_member(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "e": record["event_id"], "t": record["occurred_at_ms"], "k": "device",
        "dev": record["device_id"], "sig": record["signal"], "site": record.get("site_kind"),
        "kind": record.get("device_kind"), "name": record.get("site_name"),
        **({"test": True} if record.get("announced_test") else {}),  # an announced bell test: pages nobody
    }


class IncidentClusterer:
    def __init__(self, communes: MutableMapping[str, Any], config: DedupConfig | None = None) -> None:
        self.communes = communes
        self.config = config or DedupConfig()
        self._texts: dict[str, TipText] = {}  # cache by event id; derived, not state

    # -- entry point ------------------------------------------------------------------------
    def handle(self, event_type: str, record: dict[str, Any], meaning: Meaning | None = None) -> Outcome:
        """Place a tip (with what its text means) or a device alarm; remember a verdict's id. Other
        events change nothing."""
        commune = record.get("commune_code")
        stateful = event_type == "tip" or event_type == "feedback" or (
            event_type == "device_signal" and record["signal"] in ALARM_SIGNALS)
        if commune is None or not stateful:
            return Outcome("accepted")
        event_id, at = record["event_id"], record["occurred_at_ms"]
        key = str(commune)
        state = self.communes.get(key) or {"open": [], "seen": {}, "watermark": 0}
        known = state["seen"].get(event_id)
        if known is not None:
            incident = next((i for i in state["open"] if i["id"] == known[1]), None) if known[1] else None
            return Outcome("duplicate", known[1], f"event_id {event_id} already seen", [incident] if incident else [])
        if event_type == "tip":
            # Only tips move the commune's clock: topics are not aligned in event time (a worker
            # may read a commune's verdicts or alarms of tomorrow before today's tips), and a clock
            # moved by them would close incidents that today's tips still belong to.
            self._advance(state, at)
        incident = None
        if event_type == "tip":
            incident = self._place(state, commune, tip_member(record, meaning))
            # what a later verdict needs to credit the reporter and the group
            state["seen"][event_id] = [at, incident["id"], record.get("reporter_pseudonym"),
                                       record.get("source_ref"), record.get("channel")]
        elif event_type == "device_signal":
            incident = self._place(state, commune, device_member(record))
            state["seen"][event_id] = [at, incident["id"]]
        else:
            state["seen"][event_id] = [at, None]
        self.communes[key] = state  # write back: a Faust table records the change
        return Outcome("accepted", incident["id"] if incident else None, None, [incident] if incident else [])

    def incident_of(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The open incident an already-seen event belongs to, if any."""
        state = self.communes.get(str(record.get("commune_code"))) or {}
        entry = (state.get("seen") or {}).get(record["event_id"])
        if not entry or not entry[1]:
            return None
        return next((i for i in state.get("open", []) if i["id"] == entry[1]), None)

    def tip_origin(self, commune_code: int, tip_event_id: str) -> list[Any] | None:
        """[time, incident id, reporter, source, channel] of a tip this commune has seen."""
        entry = ((self.communes.get(str(commune_code)) or {}).get("seen") or {}).get(tip_event_id)
        return entry if entry is not None and len(entry) == 5 else None

    def park_verdict(self, commune_code: int, tip_event_id: str, at: int, verdict: str) -> None:
        """Keep a verdict on a tip not seen yet, for as long as seen ids are kept."""
        key = str(commune_code)
        state = self.communes.get(key) or {"open": [], "seen": {}, "watermark": 0}
        state.setdefault("parked", {})[tip_event_id] = [at, verdict]
        self.communes[key] = state

    def take_parked_verdict(self, commune_code: int, tip_event_id: str) -> str | None:
        """The verdict read before its tip, if any (and forget it)."""
        key = str(commune_code)
        state = self.communes.get(key)
        parked = (state or {}).get("parked") or {}
        if tip_event_id not in parked:
            return None
        verdict = parked.pop(tip_event_id)[1]
        self.communes[key] = state
        return verdict

    def record_verdict(self, commune_code: int, incident_id: str, about: str, verdict: str) -> dict[str, Any] | None:
        """Attach an officer's verdict to an open incident; returns it (new version) or None if closed."""
        key = str(commune_code)
        state = self.communes.get(key)
        incident = next((i for i in (state or {}).get("open", []) if i["id"] == incident_id), None)
        if state is None or incident is None:
            return None
        incident["verdicts"][about] = verdict
        incident["version"] += 1
        self.communes[key] = state
        return incident

    def _advance(self, state: dict[str, Any], at: int) -> None:
        """Move the commune's event-time watermark; close old incidents and forget old ids."""
        state["watermark"] = max(state["watermark"], at)
        state["open"] = [inc for inc in state["open"] if not self._closed(inc, state["watermark"])]
        horizon = state["watermark"] - self.config.retention_ms
        if any(entry[0] < horizon for entry in state["seen"].values()):
            state["seen"] = {e: entry for e, entry in state["seen"].items() if entry[0] >= horizon}
        if any(entry[0] < horizon for entry in state.get("parked", {}).values()):
            kept = {e: entry for e, entry in state["parked"].items() if entry[0] >= horizon}
            # verdicts on tips that never came: counted (a gauge in the worker), not silently gone
            state["expired_verdicts"] = state.get("expired_verdicts", 0) + len(state["parked"]) - len(kept)
            state["parked"] = kept
        if len(self._texts) > TEXT_CACHE_LIMIT:  # derived data: recomputed when needed again
            self._texts.clear()

    # -- placement --------------------------------------------------------------------------
    def _place(self, state: dict[str, Any], commune_code: int, member: dict[str, Any]) -> dict[str, Any]:
        best, best_score = None, 0.0
        for incident in state["open"]:
            score = self._fit(incident, member)
            if score > best_score:
                best, best_score = incident, score
        if best is not None and best_score >= self.config.similarity:
            best["members"].append(member)
            best["last"] = max(best["last"], member["t"])
            best["first"] = min(best["first"], member["t"])
            best["version"] += 1
            incident = best
        else:
            incident = {"id": incident_id_for(member["e"]), "commune": commune_code, "first": member["t"],
                        "last": member["t"], "version": 1, "members": [member], "verdicts": {}}
            state["open"].append(incident)
        return incident

    def _closed(self, incident: dict[str, Any], watermark: int) -> bool:
        return incident["last"] + self._window(incident) + self.config.retain_ms < watermark

    def _window(self, incident: dict[str, Any], member: dict[str, Any] | None = None) -> int:
        categories = {m.get("cat") for m in incident["members"]} | ({member.get("cat")} if member else set())
        return self.config.slow_window_ms if categories & SLOW_CATEGORIES else self.config.window_ms

    def _fit(self, incident: dict[str, Any], member: dict[str, Any]) -> float:
        """How well `member` fits the incident: 0 (not at all) .. 1 (certainly the same)."""
        window = self._window(incident, member)
        members = incident["members"]
        if member["k"] == "device":
            return self._device_fit(incident, member)
        nearest = min(abs(m["t"] - member["t"]) for m in members)
        if nearest > window:
            return 0.0
        tip_categories = {m["cat"] for m in members if m["k"] == "tip" and m.get("cat")}
        if member.get("cat") and tip_categories and member["cat"] not in tip_categories:
            return 0.0
        if member["att"] and any(set(member["att"]) & set(m.get("att") or ()) for m in members):
            return 1.0
        mine = self._text_of(member)
        tips = [self._text_of(m) for m in members if m["k"] == "tip"]
        if any(contradicting_places(mine.places, other.places) for other in tips):
            return 0.0
        if member.get("urg") and member.get("cat") and any(
                m["k"] == "tip" and m.get("urg") and m.get("cat") == member["cat"]
                and abs(m["t"] - member["t"]) <= self.config.urgent_join_ms for m in members):
            return 1.0  # "cháy rồi", "khom 1 chay": six people, few shared words, one fire in the commune
        best = 0.0
        for other in members:
            if other["k"] == "tip" and abs(other["t"] - member["t"]) <= window:
                best = max(best, mine.similarity(self._text_of(other)))
            elif other["k"] == "device" and self._tip_fits_device(member, other):
                best = max(best, self.config.site_fit)
        return best

    def _device_fit(self, incident: dict[str, Any], member: dict[str, Any]) -> float:
        for other in incident["members"]:
            if other["k"] == "device":
                if other["dev"] == member["dev"] and other["sig"] == member["sig"] \
                        and abs(other["t"] - member["t"]) <= self.config.debounce_ms:
                    return 1.0  # the same bell pressed again
            elif self._tip_fits_device(other, member):
                return self.config.site_fit
        return 0.0

    def _tip_fits_device(self, tip: dict[str, Any], device: dict[str, Any]) -> bool:
        """A tip about what happens at the device's site, around the time it fired."""
        if tip.get("cat") not in DEVICE_CATEGORIES:
            return False
        lag = tip["t"] - device["t"]
        if not -self.config.device_before_ms <= lag <= self.config.device_after_ms:
            return False
        words = SITE_WORDS.get(device.get("site") or "", ())
        text = f" {fold(tip['txt'])} "
        return any(f" {word} " in text for word in words)

    def _text_of(self, member: dict[str, Any]) -> TipText:
        cached = self._texts.get(member["e"])
        if cached is None:
            cached = self._texts[member["e"]] = TipText.of(member["txt"])
        return cached


@dataclass(frozen=True)
class TipText:
    """What the clusterer compares of a tip's text."""

    shingles: frozenset[str]
    words: frozenset[str]
    places: dict[str, str]

    @classmethod
    def of(cls, text: str) -> "TipText":
        return cls(frozenset(shingles(text)), frozenset(content_tokens(text)), locators(text))

    def similarity(self, other: "TipText") -> float:
        """Jaccard of shingles, or, for a short report contained in a longer one, word overlap."""
        if not self.shingles or not other.shingles:
            return 0.0
        jaccard = len(self.shingles & other.shingles) / len(self.shingles | other.shingles)
        smaller = min(len(self.words), len(other.words))
        overlap = len(self.words & other.words) / smaller if smaller >= OVERLAP_MIN_WORDS else 0.0
        return max(jaccard, OVERLAP_WEIGHT * overlap)


def majority_category(incident: dict[str, Any]) -> str | None:
    counts = Counter(m["cat"] for m in incident["members"] if m.get("cat"))
    return min(counts, key=lambda c: (-counts[c], c)) if counts else None
