"""`binhyen simulate`: a province that looks real, deterministic for a seed.

Real communes of the province (2025 list); reporters with stable contacts and habits;
real incidents reported by one or several people over several channels, plus vague
messages, pranks, false reports, spam bursts and chain rumours forwarded across
communes; panic bells, smart gates, cameras and gongs with heartbeats, false alarms,
battery and outages, and real alarms that coincide with real incidents; community models
launched, replicated and growing; officers' verdicts and on-call actions.

Every event is a contract dict (../shared/contracts); the ground truth says, for every
tip and device signal, which true incident it belongs to and whether that was real.
Each commune draws from its own random stream, so the output for a seed is the same
whatever else changes.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from processors.alerts import alert_id_for
from processors.geography import Commune, communes_of_province
from processors.incidents import incident_id_for
from processors.staff import StaffRegistry
from processors.validation import TimeBounds
from streams.config import DEFAULT_STAFF_CONFIG
from streams.sim import texts as T

VN = timezone(timedelta(hours=7))
VN_OFFSET_S = int(VN.utcoffset(None).total_seconds())
EARLIEST_S = TimeBounds().earliest_ms // 1000
DAY_S = 86_400


@functools.lru_cache(maxsize=256)
def _vietnam_date(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_S, timezone.utc).strftime("%Y-%m-%dT")


def vietnam_time(at_s: int) -> str:
    """`datetime.fromtimestamp(at_s, VN).isoformat()` for whole seconds, 1.6 times faster
    (bench/simulator.py): the simulator stamps every event, ~580,000 in a province fortnight."""
    day, second = divmod(at_s + VN_OFFSET_S, DAY_S)
    return f"{_vietnam_date(day)}{second // 3600:02d}:{second % 3600 // 60:02d}:{second % 60:02d}+07:00"


DEFAULT_START = datetime(2025, 9, 1, tzinfo=VN)

CATEGORY_WEIGHTS = {
    "theft": 24, "drugs": 14, "gambling": 12, "fight": 12, "fraud": 10, "hui": 5,
    "traffic": 9, "fire": 3, "missing_person": 3, "lost_property": 8,
}
BEHAVIOURS = (("reliable", 0.45), ("occasional", 0.35), ("unreliable", 0.15), ("spammer", 0.05))
REPORT_WEIGHT = {"reliable": 3.0, "occasional": 2.0, "unreliable": 1.0, "spammer": 0.2}
CHANNEL_WEIGHTS = {"zalo": 55, "hotline": 18, "facebook": 10, "sms": 6, "vneid": 6, "web": 3, "in_person": 2}
STYLES = (("normal", 0.45), ("teen", 0.25), ("no_diacritics", 0.2), ("sloppy", 0.1))
BELL_SITES = ("bank", "gold_shop", "clinic", "shop", "cafe", "market", "school")
MODEL_PROGRAMMES = [  # (model kind, name, share of communes, members range, teams range)
    ("zalo_group", "Zalo kết nối bình yên", 0.95, (250, 1500), (5, 40)),
    ("landlord_club", "CLB chủ nhà trọ", 0.35, (15, 80), (1, 4)),
    ("hui_group", "Tổ tự quản lý hụi bằng Zalo", 0.25, (20, 120), (1, 6)),
    ("self_managed_team", "Tổ tự quản an ninh trật tự", 0.6, (30, 200), (3, 15)),
    ("camera_program", "Camera an ninh", 0.5, (10, 60), (1, 5)),
    ("security_gong", "Kẻng an ninh", 0.3, (20, 150), (1, 8)),
    ("drug_free_commune", "Xã không ma túy", 0.2, (50, 300), (2, 10)),
    ("smart_gate", "Cổng ANTT thông minh", 0.0, (20, 120), (1, 4)),  # where gates exist
    ("alarm_bell_network", "Tiếng chuông cảnh báo", 0.0, (4, 30), (1, 2)),  # where bells exist
]


@dataclass(frozen=True)
class Population:
    """Who reports, how, and how officers judge it: provinces differ (more spammers, fewer
    reliable reporters, other channels, bursts of chain rumours, fewer or later verdicts). The
    default is the province the project was built on; the others test the credibility model on
    data it was not tuned on (README, "Credibility")."""

    name: str = "default"
    behaviours: tuple[tuple[str, float], ...] = BEHAVIOURS  # share of reporters by behaviour
    channels: tuple[tuple[str, float], ...] = tuple(CHANNEL_WEIGHTS.items())  # reporters' usual channels
    rumour_rate: float = 1.0  # chain rumours per day, relative to the default
    verdict_coverage: float = 0.85  # share of tips officers judge
    verdict_delay_hours: tuple[int, int] = (1, 12)  # how long after the tip the verdict comes


POPULATIONS = {population.name: population for population in (
    Population(),
    Population("spam-heavy", behaviours=(("reliable", 0.25), ("occasional", 0.3), ("unreliable", 0.3),
                                         ("spammer", 0.15))),
    Population("few-reliable", behaviours=(("reliable", 0.15), ("occasional", 0.55), ("unreliable", 0.25),
                                           ("spammer", 0.05))),
    Population("hotline-province", channels=(("hotline", 45), ("sms", 20), ("zalo", 15), ("in_person", 10),
                                             ("vneid", 6), ("facebook", 3), ("web", 1))),
    Population("rumour-storm", rumour_rate=4.0),
    Population("sparse-verdicts", verdict_coverage=0.3, verdict_delay_hours=(12, 96)),
)}


@dataclass(frozen=True)
class SimConfig:
    province_code: int
    days: int = 1
    seed: int = 1
    scale: float = 1.0
    start: datetime = DEFAULT_START
    population: Population = Population()


@dataclass(frozen=True)
class Reporter:
    contact: str
    behaviour: str
    style: str
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Device:
    device_id: str
    kind: str
    site_kind: str
    site_name: str


@dataclass
class Simulation:
    events: list[dict[str, Any]] = field(default_factory=list)
    truth: list[dict[str, Any]] = field(default_factory=list)


def _pick(rng: random.Random, weighted: dict[str, float] | tuple[tuple[str, float], ...]) -> str:
    items = list(weighted.items()) if isinstance(weighted, dict) else list(weighted)
    return rng.choices([k for k, _ in items], weights=[w for _, w in items])[0]


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _slug(commune: Commune) -> str:
    return "-".join(T.strip_diacritics(commune.name).lower().split()[1:]) or str(commune.code)


class ProvinceSimulator:
    def __init__(self, config: SimConfig, staff: StaffRegistry | None = None) -> None:
        """`staff`: who acks the commune posts' alerts (default: the shipped registry)."""
        self.config = config
        self.staff = staff or StaffRegistry.load(DEFAULT_STAFF_CONFIG)
        self.communes = communes_of_province(config.province_code)
        if not self.communes:
            raise ValueError(f"province {config.province_code} has no communes in the 2025 list")
        self.start_s = int(config.start.timestamp())
        self.end_s = self.start_s + config.days * DAY_S
        self.sim = Simulation()
        self._counters: dict[str, int] = {}
        self.id_prefix = id_prefix(config)

    # -- output helpers -------------------------------------------------------------------
    def _id(self, kind: str) -> str:
        n = self._counters.get(kind, 0) + 1
        self._counters[kind] = n
        return f"{self.id_prefix}{kind}-{n:07d}"

    def _emit(self, event: dict[str, Any], at_s: int, truth: dict[str, Any] | None = None) -> str:
        event_id = self._id(event["type"].replace("_", "-"))
        event = {"type": event["type"], "event_id": event_id, "occurred_at": vietnam_time(at_s), **event}
        self.sim.events.append(event)
        if truth is not None:
            self.sim.truth.append({"event_id": event_id, "type": event["type"], **truth})
        return event_id

    def _rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(str(p) for p in (self.config.seed, *parts)))

    # -- the run ------------------------------------------------------------------------------
    def run(self, progress: Callable[[int], None] | None = None) -> Simulation:
        setups = {c.code: self._setup_commune(c) for c in self.communes}
        self._models(setups)
        for day in range(self.config.days):
            for commune in self.communes:
                reporters, groups, devices = setups[commune.code]
                rng = self._rng(commune.code, day)
                day_s = self.start_s + day * DAY_S
                self._devices_day(commune, devices, rng, day_s, day)
                self._incidents_day(commune, reporters, groups, devices, rng, day_s, day)
                self._noise_day(commune, reporters, groups, rng, day_s, day)
                if progress:
                    progress(1)
            self._chain_rumours(setups, self._rng("chain", day), self.start_s + day * DAY_S, day)
        self._drop_outside_window()
        self.sim.events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
        return self.sim

    def _drop_outside_window(self) -> None:
        """Keep events of the simulated days (and model history before them): verdicts and acks
        that would fall after the last day are left out, as devices fall silent there too."""
        end = datetime.fromtimestamp(self.end_s, VN).isoformat()
        kept = {e["event_id"] for e in self.sim.events if e["occurred_at"] < end}
        self.sim.events = [e for e in self.sim.events if e["event_id"] in kept]
        self.sim.truth = [t for t in self.sim.truth if t["event_id"] in kept]

    def _setup_commune(self, commune: Commune) -> tuple[list[Reporter], dict[str, list[str]], list[Device]]:
        rng = self._rng(commune.code, "setup")
        scale = self.config.scale
        slug = _slug(commune)
        reporters = []
        for _ in range(max(6, round(25 * scale))):
            if rng.random() < 0.7:
                contact = "+849" + "".join(str(rng.randrange(10)) for _ in range(8))
            else:
                contact = f"zalo:{rng.randrange(10**6, 10**7)}"
            population = self.config.population
            main = _pick(rng, population.channels)
            other = _pick(rng, population.channels)
            reporters.append(Reporter(contact, _pick(rng, population.behaviours), _pick(rng, STYLES),
                                      (main, main, other)))
        groups = {
            "zalo": [f"zalo:grp-{slug}-{n}" for n in range(1, rng.randint(2, 4))],
            "facebook": [f"facebook:page-ca-{slug}"],
            "hotline": [f"hotline:ca-{slug}"],
        }
        devices = []

        def add(kind: str, site_kind: str, count: int) -> None:
            for _ in range(count):
                n = len(devices) + 1
                name = f"{rng.choice(T.SHOP_NAMES)} ({site_kind})"
                devices.append(Device(f"{kind}-{commune.code}-{n:03d}", kind, site_kind, name))

        for site in BELL_SITES[:4]:
            add("alarm_bell", site, _poisson(rng, 1.2 * scale))
        add("alarm_bell", rng.choice(BELL_SITES[4:]), _poisson(rng, 0.5 * scale))
        add("smart_gate", "gate", _poisson(rng, 1.2 * scale))
        for site in ("market", "school", "residential", "other"):
            add("camera", site, _poisson(rng, 1.3 * scale))
        add("gong", "residential", _poisson(rng, 0.8 * scale))
        return reporters, groups, devices

    # -- devices ------------------------------------------------------------------------------
    def _device_signal(self, commune: Commune, device: Device, signal: str, at_s: int,
                       truth: dict[str, Any]) -> str:
        return self._emit({"type": "device_signal", "commune_code": commune.code, "device_id": device.device_id,
                           "device_kind": device.kind, "signal": signal, "site_kind": device.site_kind,
                           "site_name": device.site_name}, at_s, truth)

    def _press_burst(self, commune: Commune, device: Device, at_s: int, rng: random.Random,
                     truth: dict[str, Any]) -> list[str]:
        """A panic bell is seldom pressed once: 1-5 presses within ~20 seconds."""
        ids = []
        for press in range(rng.choice((1, 1, 2, 3, 5))):
            ids.append(self._device_signal(commune, device, "panic_pressed", at_s + press * rng.randint(1, 5), truth))
        return ids

    def _devices_day(self, commune: Commune, devices: list[Device], rng: random.Random, day_s: int, day: int) -> None:
        routine = {"incident": None, "real": False, "kind": "routine"}
        for device in devices:
            offline_at = day_s + rng.randrange(DAY_S) if rng.random() < 0.005 else None
            t = day_s + rng.randrange(1800)
            while t < day_s + DAY_S and (offline_at is None or t < offline_at):
                self._device_signal(commune, device, "heartbeat", t, routine)
                t += 1800 + rng.randint(-60, 60)
            if offline_at is not None:
                self._device_signal(commune, device, "offline", offline_at,
                                    {"incident": None, "real": False, "kind": "outage"})
            if rng.random() < 0.01:
                self._device_signal(commune, device, "battery_low", day_s + rng.randrange(DAY_S), routine)
            if device.kind == "smart_gate":
                self._device_signal(commune, device, "gate_opened", day_s + 5 * 3600 + rng.randrange(1800), routine)
                self._device_signal(commune, device, "gate_closed", day_s + 22 * 3600 + rng.randrange(1800), routine)
                if rng.random() < 0.01:
                    self._device_signal(commune, device, "gate_forced", day_s + rng.randrange(DAY_S),
                                        {"incident": f"false-alarm-{device.device_id}-{day}", "real": False,
                                         "kind": "false_alarm"})
            elif device.kind == "camera":
                for _ in range(_poisson(rng, 2.0)):
                    self._device_signal(commune, device, "motion", day_s + rng.randrange(6 * 3600), routine)
                if rng.random() < 0.002:
                    self._device_signal(commune, device, "tamper", day_s + rng.randrange(DAY_S),
                                        {"incident": f"false-alarm-{device.device_id}-{day}", "real": False,
                                         "kind": "false_alarm"})
            elif device.kind in ("alarm_bell", "gong") and rng.random() < 0.03:
                truth = {"incident": f"false-alarm-{device.device_id}-{day}", "real": False, "kind": "false_alarm"}
                at = day_s + rng.randrange(DAY_S)
                presses = self._press_burst(commune, device, at, rng, truth)
                self._on_call(commune, presses[0], at, rng)

    def _on_call(self, commune: Commune, first_press_id: str, at_s: int, rng: random.Random) -> None:
        """The commune post acknowledges, then resolves, the alert a press raised.

        Staff quote the id of the page they got; binhyen derives it from the incident, whose id
        derives from the event that opened it — the first press.
        """
        alert_id = alert_id_for(commune.code, incident_id_for(first_press_id))
        on_call = self.staff.first_covering("commune-post", commune.code)
        by = on_call.id if on_call else f"ca-{_slug(commune)}-truc-ban"  # not in the registry: refused, visibly
        acked = at_s + rng.randint(40, 6 * 60)
        self._emit({"type": "alert_action", "commune_code": commune.code, "alert_id": alert_id,
                    "action": "ack", "by": by}, acked)
        self._emit({"type": "alert_action", "commune_code": commune.code, "alert_id": alert_id,
                    "action": "resolve", "by": by}, acked + rng.randint(10 * 60, 90 * 60))

    # -- tips ---------------------------------------------------------------------------------
    def _facts(self, rng: random.Random, category: str) -> tuple[dict[str, Any], str | None]:
        place_template, site_kind = rng.choice(T.PLACES[category])
        facts = {
            "hamlet": rng.choice(T.HAMLETS), "street": rng.choice(T.STREETS), "person": rng.choice(T.PEOPLE),
            "shop": rng.choice(T.SHOP_NAMES), "room": rng.randint(1, 12), "vehicle": rng.choice(T.VEHICLES),
            "when": rng.choice(T.WHEN),
            "n": rng.randint(2, 9) if category not in ("hui", "fraud", "missing_person") else rng.randint(5, 70),
        }
        facts["place"] = place_template.format(**facts)
        return facts, site_kind

    def _tip(self, commune: Commune, reporter: Reporter, groups: dict[str, list[str]], at_s: int,
             text: str, rng: random.Random, truth: dict[str, Any], *, category: str | None = None,
             location: str | None = None, photo: str | None = None) -> str:
        channel = rng.choice(reporter.channels)
        anonymous = rng.random() < 0.12
        event: dict[str, Any] = {"type": "tip", "commune_code": commune.code, "channel": channel,
                                 "text": T.add_noise(text, rng, reporter.style)}
        if channel in groups:
            event["source_ref"] = rng.choice(groups[channel])
        if anonymous:
            event["anonymous"] = True
        if not anonymous or rng.random() < 0.5:  # some anonymous tips still carry a contact: it must be dropped
            event["reporter_contact"] = reporter.contact
        if category and rng.random() < 0.7:
            event["category"] = category
        if location and rng.random() < 0.5:
            event["location_text"] = location
        if photo:
            event["attachments"] = [{"kind": rng.choice(("image", "image", "video")), "sha256": photo}]
        truth = dict(truth, behaviour=reporter.behaviour, reporter=hashlib.sha256(reporter.contact.encode()).hexdigest()[:12])
        event_id = self._emit(event, at_s, truth)
        self._feedback(commune, event_id, at_s, truth, rng)
        return event_id

    def _feedback(self, commune: Commune, tip_id: str, at_s: int, truth: dict[str, Any], rng: random.Random) -> None:
        population = self.config.population
        if rng.random() > population.verdict_coverage:
            return  # not every tip gets a recorded verdict
        if truth["real"]:
            verdict = "valuable" if rng.random() < (0.95 if truth.get("first") else 0.72) else "duplicate"
        else:
            verdict = "false_report" if truth["kind"] in ("prank", "false_report", "spam") and rng.random() < 0.6 \
                else "not_valuable"
        self._emit({"type": "feedback", "commune_code": commune.code, "tip_event_id": tip_id, "verdict": verdict},
                   at_s + rng.randint(*(hours * 3600 for hours in population.verdict_delay_hours)))

    def _reporters_for(self, rng: random.Random, reporters: list[Reporter], k: int) -> list[Reporter]:
        chosen: list[Reporter] = []
        pool = list(reporters)
        while pool and len(chosen) < k:
            reporter = rng.choices(pool, weights=[REPORT_WEIGHT[r.behaviour] for r in pool])[0]
            pool.remove(reporter)
            chosen.append(reporter)
        return chosen

    def _incidents_day(self, commune: Commune, reporters: list[Reporter], groups: dict[str, list[str]],
                       devices: list[Device], rng: random.Random, day_s: int, day: int) -> None:
        for index in range(_poisson(rng, 0.5 * self.config.scale)):
            category = _pick(rng, CATEGORY_WEIGHTS)
            facts, site_kind = self._facts(rng, category)
            incident = f"inc-{commune.code}-{day}-{index}"
            t0 = day_s + rng.randrange(DAY_S)
            bells = [d for d in devices if d.kind == "alarm_bell" and d.site_kind == site_kind]
            truth_base = {"incident": incident, "real": True, "kind": "incident", "category": category}
            if bells and category in ("theft", "fight", "fire") and rng.random() < 0.75:
                bell = rng.choice(bells)
                presses = self._press_burst(commune, bell, t0 + rng.randint(0, 60), rng, truth_base)
                self._on_call(commune, presses[0], t0 + 60, rng)
            k = rng.choices((1, 2, 3, 4, 5, 6, 8), weights=(40, 25, 15, 9, 5, 4, 2))[0]
            slow = category in ("hui", "fraud", "missing_person")
            at = t0 + rng.randint(120, 1800)
            photo = hashlib.sha256(f"{incident}-photo".encode()).hexdigest() if rng.random() < 0.5 else None
            location = f"{facts['place']}, {facts['hamlet']}"
            for order, reporter in enumerate(self._reporters_for(rng, reporters, k)):
                template = rng.choice(T.TEMPLATES[category])
                attach = photo if photo and (reporter.behaviour == "reliable" or rng.random() < 0.3) else None
                self._tip(commune, reporter, groups, at, template.format(**facts), rng,
                          dict(truth_base, first=order == 0), category=category, location=location, photo=attach)
                at += rng.randint(3600, 8 * 3600) if slow else rng.randint(60, 40 * 60)

    def _noise_day(self, commune: Commune, reporters: list[Reporter], groups: dict[str, list[str]],
                   rng: random.Random, day_s: int, day: int) -> None:
        scale = self.config.scale
        weak = [r for r in reporters if r.behaviour in ("unreliable", "spammer")] or reporters
        for index in range(_poisson(rng, 0.15 * scale)):
            self._tip(commune, rng.choice(reporters), groups, day_s + rng.randrange(DAY_S), rng.choice(T.VAGUE), rng,
                      {"incident": f"vague-{commune.code}-{day}-{index}", "real": False, "kind": "vague"})
        for index in range(_poisson(rng, 0.05 * scale)):
            text = rng.choice(T.PRANKS).format(hamlet=rng.choice(T.HAMLETS))
            self._tip(commune, rng.choice(weak), groups, day_s + rng.randrange(DAY_S), text, rng,
                      {"incident": f"prank-{commune.code}-{day}-{index}", "real": False, "kind": "prank"})
        for index in range(_poisson(rng, 0.12 * scale)):
            category = _pick(rng, CATEGORY_WEIGHTS)
            facts, _ = self._facts(rng, category)
            self._tip(commune, rng.choice(weak), groups, day_s + rng.randrange(DAY_S),
                      rng.choice(T.TEMPLATES[category]).format(**facts), rng,
                      {"incident": f"false-{commune.code}-{day}-{index}", "real": False, "kind": "false_report"},
                      category=category)
        spammers = [r for r in reporters if r.behaviour == "spammer"]
        for index in range(_poisson(rng, 0.03 * scale) if spammers else 0):
            spammer, text, at = rng.choice(spammers), rng.choice(T.SPAM), day_s + rng.randrange(DAY_S)
            for _ in range(rng.randint(3, 6)):
                self._tip(commune, spammer, groups, at, text, rng,
                          {"incident": f"spam-{commune.code}-{day}-{index}", "real": False, "kind": "spam"})
                at += rng.randint(20, 300)

    def _chain_rumours(self, setups: dict[int, Any], rng: random.Random, day_s: int, day: int) -> None:
        """One forwarded message travelling across communes within hours."""
        rate = 0.6 * self.config.population.rumour_rate * self.config.scale
        for index in range(_poisson(rng, rate * max(1, len(self.communes) / 60))):
            text = rng.choice(T.CHAIN_RUMOURS)
            at0 = day_s + rng.randrange(DAY_S)
            for commune in rng.sample(self.communes, k=min(len(self.communes), rng.randint(3, 8))):
                reporters, groups, _ = setups[commune.code]
                at = at0 + rng.randint(0, 6 * 3600)
                for reporter in self._reporters_for(rng, reporters, rng.randint(1, 3)):
                    self._tip(commune, reporter, groups, at, text, rng,
                              {"incident": f"chain-{day}-{index}-{commune.code}", "real": False, "kind": "chain"})
                    at += rng.randint(60, 3600)

    # -- community models ---------------------------------------------------------------------
    def _models(self, setups: dict[int, Any]) -> None:
        rng = self._rng("models")
        launched: dict[str, list[tuple[str, int, int]]] = {}  # kind -> [(model id, commune, launched at)]
        for commune in self.communes:
            _, _, devices = setups[commune.code]
            kinds_here = {d.kind for d in devices}
            for kind, name, share, members, teams in MODEL_PROGRAMMES:
                present = rng.random() < share or (kind == "smart_gate" and "smart_gate" in kinds_here) or (
                    kind == "alarm_bell_network" and "alarm_bell" in kinds_here)
                if not present:
                    continue
                model_id = f"{kind.replace('_', '-')}-{commune.code}"
                # launched up to two years before; never before the edge's earliest accepted time
                at = max(self.start_s - rng.randint(30, 720) * DAY_S, EARLIEST_S)
                earlier = [m for m in launched.get(kind, []) if m[2] < at - 7 * DAY_S]
                event: dict[str, Any] = {"type": "model_change", "commune_code": commune.code, "model_id": model_id,
                                         "model_kind": kind, "name": name, "members_delta": rng.randint(*members),
                                         "teams_delta": rng.randint(*teams)}
                if earlier and rng.random() < 0.6:
                    event.update(change="replicated", replicated_from=rng.choice(earlier)[0])
                else:
                    event.update(change="launched")
                self._emit(event, at)
                launched.setdefault(kind, []).append((model_id, commune.code, at))
        all_models = [(m, c) for models in launched.values() for m, c, _ in models]
        kinds = {m: k for k, models in launched.items() for m, _, _ in models}
        for day in range(self.config.days):
            day_s = self.start_s + day * DAY_S
            for _ in range(_poisson(rng, 0.15 * len(all_models) / 10)):
                model_id, commune_code = rng.choice(all_models)
                change = rng.choices(("members_changed", "teams_changed", "recognized", "suspended"),
                                     weights=(80, 12, 5, 3))[0]
                event = {"type": "model_change", "commune_code": commune_code, "model_id": model_id,
                         "model_kind": kinds[model_id], "change": change}
                if change == "members_changed":
                    event["members_delta"] = rng.randint(-15, 60)
                elif change == "teams_changed":
                    event["teams_delta"] = rng.choice((-1, 1, 1, 2))
                self._emit(event, day_s + rng.randrange(DAY_S))


def id_prefix(config: SimConfig) -> str:
    """Event ids of one simulation: distinct per seed, province, scale and first day."""
    population = "" if config.population.name == "default" else f"{config.population.name}-"
    return f"sim{config.seed}-p{config.province_code}-x{config.scale:g}-{config.start:%Y%m%d}-{population}"


def simulate(config: SimConfig, progress: Callable[[int], None] | None = None,
             staff: StaffRegistry | None = None) -> Simulation:
    return ProvinceSimulator(config, staff).run(progress)
