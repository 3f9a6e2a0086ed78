"""API keys of the upstream systems that publish through the gateway.

A key is shown once, when created; the store keeps only its SHA-256 (a key is 256 random bits,
so a plain hash is enough: there is nothing to guess) with its scope — the event types, the
provinces it may publish for and, for alert actions, the staff it may act for (a desk's key
must not ack as the command) — and when it was revoked. `binhyen gateway key …` manages
the store, a JSON file of mode 0600 in the state folder; the gateway re-reads it when it
changes, so a revoked key stops working without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from processors.geography import provinces
from schemas.codec import INPUT_TYPES
from streams.config import ConfigError

EVERY = "*"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    types: tuple[str, ...]  # event types, or ("*",)
    provinces: tuple[int, ...]  # 2025 province codes; () for every province
    created_at: str
    revoked_at: str | None = None
    staff: tuple[str, ...] = ()  # whom its alert actions may name as `by`: staff ids, "route:NAME" or "*"

    def refuses(self, event_type: str, province: int | None) -> str | None:
        """Why this key may not publish the event, or None."""
        return self.refuses_type(event_type) or self.refuses_province(province)

    def refuses_type(self, event_type: str) -> str | None:
        if EVERY not in self.types and event_type not in self.types:
            return f"forbidden: key {self.name} may publish {', '.join(self.types)}, not {event_type}"
        return None

    def refuses_province(self, province: int | None) -> str | None:
        if self.provinces and province not in self.provinces:
            where = f"province {province}" if province is not None else "an event with no commune"
            return (f"forbidden: key {self.name} may publish for province(s) "
                    f"{', '.join(map(str, self.provinces))}, not {where}")
        return None

    def refuses_actor(self, by: str, route: str | None) -> str | None:
        """Why this key may not send an action by staff `by` (on `route`, from the registry), or None."""
        if EVERY in self.staff or by in self.staff or (route is not None and f"route:{route}" in self.staff):
            return None
        if not self.staff:
            return (f"forbidden: key {self.name} may act for no staff member; create it with "
                    "--staff ID,… (or route:NAME) to send alert actions")
        return f"forbidden: key {self.name} may act for {', '.join(self.staff)}, not {by}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class KeyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None

    def keys(self) -> dict[str, ApiKey]:
        """The keys as the file holds them now (re-read when it changed)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._keys, self._stamp = {}, None
            return self._keys
        if (stat.st_mtime_ns, stat.st_size) != self._stamp:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self._keys = {name: ApiKey(name=name, sha256=k["sha256"], types=tuple(k["types"]),
                                       provinces=tuple(k["provinces"]), created_at=k["created_at"],
                                       revoked_at=k.get("revoked_at"), staff=tuple(k.get("staff", ())))
                          for name, k in raw.items()}
            self._stamp = (stat.st_mtime_ns, stat.st_size)
        return self._keys

    def authenticate(self, token: str) -> ApiKey | None:
        """The live key this token is, or None (wrong or revoked: the caller cannot tell which)."""
        presented = digest(token)
        found = None
        for key in self.keys().values():  # compare with every key: no early exit to time
            if hmac.compare_digest(key.sha256, presented) and key.revoked_at is None:
                found = key
        return found

    def create(self, name: str, types: list[str], province_codes: list[int], replace: bool = False,
               staff: list[str] | None = None) -> str:
        """A new key's token (shown once); the store keeps its hash and scope. `staff`: whom its
        alert actions may name (staff ids of the registry, "route:NAME" for a desk, or "*")."""
        if not _NAME.match(name):
            raise ConfigError(f"key name {name!r}: use 2-63 lower-case letters, digits and dashes, e.g. hotline-da-nang")
        unknown = [t for t in types if t != EVERY and t not in INPUT_TYPES]
        if unknown or not types:
            raise ConfigError(f"--types: {', '.join(unknown) or 'none given'}: use {EVERY} or some of "
                              f"{', '.join(INPUT_TYPES)}")
        known = provinces()
        wrong = [code for code in province_codes if code not in known]
        if wrong:
            raise ConfigError(f"--provinces: {wrong[0]} is not a 2025 province code (34 provinces, e.g. 96 Cà Mau)")
        keys = dict(self.keys())
        if name in keys and keys[name].revoked_at is None and not replace:
            raise ConfigError(f"key {name} exists; revoke it first (`binhyen gateway key revoke {name}`)")
        token = f"bh_{secrets.token_urlsafe(32)}"
        keys[name] = ApiKey(name, digest(token), tuple(sorted(set(types))), tuple(sorted(set(province_codes))),
                            _now(), staff=tuple(sorted(set(staff or ()))))
        self._write(keys)
        return token

    def revoke(self, name: str) -> ApiKey:
        keys = dict(self.keys())
        if name not in keys:
            raise ConfigError(f"no key {name}; `binhyen gateway key list` shows them")
        keys[name] = ApiKey(**{**asdict(keys[name]), "revoked_at": keys[name].revoked_at or _now()})
        self._write(keys)
        return keys[name]

    def _write(self, keys: dict[str, ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({name: {k: v for k, v in asdict(key).items() if k != "name"} for name, key in keys.items()},
                      handle, indent=1)
        partial.replace(self.path)


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
