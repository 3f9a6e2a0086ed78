"""Signed, expiring action links for on-call staff, bound to the staff registry (processors.staff).

A page carries, for each staff member on the alert's route whose jurisdiction covers the
alert's commune, an ack and a resolve link. A link names the alert, the action, the staff
member, an expiry and a random nonce, signed with HMAC-SHA256 under the gateway's link secret:
the gateway (streams.edge.gateway) checks the signature, the expiry, that the staff member is
still in the registry and covers the commune, and that the nonce was not used, and only then
publishes the `alert_action` with the verified `by`. The nonce is also the action's event id,
so a replay that reached another gateway replica is a duplicate the workers drop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from processors.alerts import commune_of_alert
from processors.staff import StaffMember, StaffRegistry

ACTIONS = ("ack", "resolve")


@dataclass(frozen=True)
class ActionLink:
    alert_id: str
    action: str
    staff: str
    expires_s: int
    nonce: str


def sign(secret: bytes, link: ActionLink) -> str:
    """The link's path token: base64url(JSON) + "." + base64url(HMAC-SHA256)."""
    payload = _b64(json.dumps({"a": link.alert_id, "x": link.action, "s": link.staff, "e": link.expires_s,
                               "n": link.nonce}, separators=(",", ":")).encode())
    return payload + "." + _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def new_link(secret: bytes, alert_id: str, action: str, staff: str, expires_s: int) -> str:
    return sign(secret, ActionLink(alert_id, action, staff, expires_s, secrets.token_hex(12)))


class LinkRefused(Exception):
    """Why a link was not acted on (the text is safe to show and to log)."""


def verify(secret: bytes, token: str, registry: StaffRegistry, now_s: float) -> tuple[ActionLink, StaffMember]:
    """The link and its staff member, or LinkRefused: tampered, expired, unknown staff or wrong jurisdiction."""
    payload, _, mac = token.partition(".")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not mac or not hmac.compare_digest(mac.encode(), expected.encode()):  # bytes: any text compares
        raise LinkRefused("chữ ký không hợp lệ (tampered or not ours)")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    link = ActionLink(fields["a"], fields["x"], fields["s"], int(fields["e"]), fields["n"])
    if link.action not in ACTIONS:
        raise LinkRefused(f"unknown action {link.action!r}")
    if now_s > link.expires_s:
        raise LinkRefused("liên kết đã hết hạn (expired)")
    member = registry.members.get(link.staff)
    if member is None:
        raise LinkRefused(f"staff {link.staff} is no longer in the registry")
    commune = commune_of_alert(link.alert_id)
    if commune is None or not member.covers(commune):
        raise LinkRefused(f"staff {link.staff} has no jurisdiction over this alert's commune")
    return link, member


def links_for(alert: dict[str, Any], registry: StaffRegistry, secret: bytes, base_url: str,
              expires_s: int) -> list[dict[str, str]]:
    """Per staff member on call for the alert: an ack and a resolve link."""
    return [{"staff": member.id, "name": member.name,
             **{action: f"{base_url}/v1/actions/{new_link(secret, alert['alert_id'], action, member.id, expires_s)}"
                for action in ACTIONS}}
            for member in registry.on_call_for(alert)]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
