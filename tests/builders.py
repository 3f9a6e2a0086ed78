"""The contract events every test builds, with one set of defaults: valid as they are, so a test
names only what it is about. Plain functions rather than fixtures: a test builds several events
with different arguments, which a factory fixture would only wrap."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any


VN = timezone(timedelta(hours=7))
COMMUNE = 26680  # Xã Đất Đỏ, Thành phố Hồ Chí Minh
TEXT = "Có nhóm thanh niên tụ tập đánh bạc ở bãi đất trống cạnh chợ, khoảng 10 người"


def at(hh: int, mm: int = 0, ss: int = 0, day: int = 3, month: int = 9, year: int = 2025) -> str:
    """An `occurred_at` in Vietnam time (default: 3 September 2025)."""
    return datetime(year, month, day, hh, mm, ss, tzinfo=VN).isoformat()


def recent(minutes_ago: float = 1) -> str:
    """An `occurred_at` just before now, for what the live worker and gateway accept."""
    return (datetime.now(VN).replace(microsecond=0) - timedelta(minutes=minutes_ago)).isoformat()


def tip(event_id: str, occurred_at: str, text: str = TEXT, commune: int = COMMUNE, channel: str = "zalo",
        **extra: Any) -> dict[str, Any]:
    return {"type": "tip", "event_id": event_id, "occurred_at": occurred_at, "commune_code": commune,
            "channel": channel, "text": text, **extra}


def device_signal(event_id: str, occurred_at: str, commune: int = COMMUNE, device: str = "bell-1",
                  signal: str = "panic_pressed", kind: str = "alarm_bell", site_kind: str | None = "bank",
                  **extra: Any) -> dict[str, Any]:
    """A device's signal; `site_kind=None` leaves the optional field out."""
    return {"type": "device_signal", "event_id": event_id, "occurred_at": occurred_at, "commune_code": commune,
            "device_id": device, "device_kind": kind, "signal": signal,
            **({"site_kind": site_kind} if site_kind else {}), **extra}


def verdict(event_id: str, occurred_at: str, verdict: str = "valuable", **about: Any) -> dict[str, Any]:
    """An officer's verdict; `about` names its tip (`tip_event_id`) or incident (`incident_id`)."""
    return {"type": "feedback", "event_id": event_id, "occurred_at": occurred_at, "verdict": verdict, **about}


def alert_action(event_id: str, occurred_at: str, alert_id: str, action: str,
                 by: str = "bo-chi-huy-truc") -> dict[str, Any]:
    """An action by on-call staff; `by` defaults to the shipped registry's command desk, which covers
    every commune (the worker refuses a `by` that is not in the registry)."""
    return {"type": "alert_action", "event_id": event_id, "occurred_at": occurred_at, "alert_id": alert_id,
            "action": action, "by": by}
