"""The staff registry: who is on call, on which route, for which jurisdiction — the only valid `by`.

Pure data from the versioned `infra/config/staff.v2.json`: the alert engine refuses an action
whose `by` is not a member or whose jurisdiction does not cover the alert's commune, the
notifiers bind action links to the members on call for a page, and the simulator acks as the
member a commune post would have.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processors.geography import commune as commune_of


@dataclass(frozen=True)
class StaffMember:
    id: str
    name: str
    route: str  # the alert route whose pages this member receives
    province: int | None = None  # jurisdiction: a province, a commune, or neither (the whole country)
    commune: int | None = None

    def covers(self, commune: int) -> bool:
        if self.commune is not None:
            return self.commune == commune
        if self.province is not None:
            place = commune_of(commune)
            return place is not None and place.province_code == self.province
        return True


@dataclass(frozen=True)
class StaffRegistry:
    version: str
    members: dict[str, StaffMember]

    @classmethod
    def load(cls, path: Path) -> "StaffRegistry":
        return cls.parse(path.read_text(encoding="utf-8"))

    @classmethod
    def parse(cls, text: str) -> "StaffRegistry":
        raw = json.loads(text)
        members = {}
        for entry in raw["staff"]:
            where = entry.get("jurisdiction") or {}
            members[entry["id"]] = StaffMember(entry["id"], entry["name"], entry["route"], where.get("province"),
                                               where.get("commune"))
        return cls(raw["version"], members)

    def on_call_for(self, alert: dict[str, Any]) -> list[StaffMember]:
        """Who the alert's page goes to: its route's members whose jurisdiction covers its commune."""
        return [m for m in self.members.values()
                if m.route == alert["route"] and m.covers(int(alert["commune_code"]))]

    def refusal(self, by: str | None, commune: int) -> str | None:
        """Why `by` may not act on an alert of `commune` — or None when it may."""
        member = self.members.get(by or "")
        if member is None:
            return (f"{by!r} is not in the staff registry ({self.version}); an action's `by` must be a staff id "
                    "from it")
        if not member.covers(commune):
            return f"staff {member.id} has no jurisdiction over commune {commune}"
        return None

    def first_covering(self, route: str, commune: int) -> StaffMember | None:
        """The member on `route` for the commune, else anyone who covers it (the simulator's on-call)."""
        covering = [m for m in self.members.values() if m.covers(commune)]
        return next((m for m in covering if m.route == route), covering[0] if covering else None)
