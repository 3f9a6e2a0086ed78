"""Announced bell tests: "siêu thị Minh Anh xin phép bấm thử chuông lúc 9h00 đến 9h15".

A shop, bank or clinic on a commune's bell network tests its panic bell after a battery change
or as routine, and says so in the commune's group first. One press of that site's bell inside
the announced window is the test: recorded like any press, paged to nobody. Anything else is
a real alarm — a press outside the window, a second press, another site's bell.

Such a message is unauthenticated (anyone in the group could write it), so what it can hold
back is kept small: the window is at most 30 minutes and starts within a day of the message,
it names the site (most of the words of the bell's registered site name), and it covers one
press. Everything stays in the commune's alert state; nothing here reads or writes elsewhere.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from processors.text import fold, normalise

MINUTE_MS = 60_000
MAX_WINDOW_MS = 30 * MINUTE_MS
ONE_TIME_BEFORE_MS, ONE_TIME_AFTER_MS = 5 * MINUTE_MS, 15 * MINUTE_MS  # "14h10 bấm thử": 14:05 to 14:25
SITE_SHARE = 0.6  # of the site name's words the message must name
_CUES = ("bam thu", "thu chuong", "test chuong", "kiem tra chuong", "bam chuong thu")
_TIME = re.compile(r"\b(\d{1,2})\s*(?:h|g|gio|:)\s*(\d{2})?\b")
_AFTERNOON = ("chieu", "toi")


def announced_window(text: str, at_ms: int, utc_offset_minutes: int) -> dict[str, Any] | None:
    """{from_ms, to_ms, words} when `text` announces a bell test with a time, else None."""
    folded = " ".join(_words(text))
    if not any(cue in folded for cue in _CUES):
        return None
    times = [(int(h), int(m or 0)) for h, m in _TIME.findall(folded) if int(h) < 24 and int(m or 0) < 60]
    if not times:
        return None
    zone = timezone(timedelta(minutes=utc_offset_minutes))
    said = datetime.fromtimestamp(at_ms / 1000, zone)
    afternoon = any(word in folded.split() for word in _AFTERNOON)

    def moment(hour: int, minute: int) -> int:
        hour = hour + 12 if afternoon and hour < 12 else hour
        when = said.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return int((when if when >= said - timedelta(hours=1) else when + timedelta(days=1)).timestamp() * 1000)

    start = moment(*times[0])
    end = moment(*times[1]) if len(times) > 1 else start + ONE_TIME_AFTER_MS
    start = start if len(times) > 1 else start - ONE_TIME_BEFORE_MS
    if not 0 < end - start <= MAX_WINDOW_MS or start - at_ms > 24 * 60 * MINUTE_MS:
        return None
    return {"from_ms": start, "to_ms": end, "words": sorted(set(_words(text)))}


def _words(text: str) -> list[str]:
    return fold(normalise(text)).split()


def covers(window: dict[str, Any], press: dict[str, Any]) -> bool:
    """Whether `press` (a panic_pressed record) is the test `window` announced: in time, and the
    message named most of the words of the bell's site."""
    site = set(_words(press.get("site_name") or ""))
    return (window["from_ms"] <= press["occurred_at_ms"] <= window["to_ms"] and bool(site)
            and len(site & set(window["words"])) >= SITE_SHARE * len(site))
