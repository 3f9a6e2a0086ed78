"""The keyed edge: reporter pseudonyms and assigned event ids, both HMAC-SHA256 with one key.

A reporter's contact must never be recoverable from anything stored downstream, so every
value derived from an event before its contact is gone is keyed: without the key nobody can
test a guessed phone number against a stored pseudonym or id (an unkeyed hash of a
Vietnamese mobile number falls to brute force in seconds).

The same person must get the same pseudonym whatever way the contact was written
('+84 912 000 111', '0084912000111', '+84 (0)912 000 111', full-width digits), so contacts
are normalised first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

PSEUDONYM_PREFIX = "rp_"
PSEUDONYM_FORMAT = re.compile(r"^rp_[0-9a-f]{32}$")
MIN_KEY_BYTES = 16
_PHONE = re.compile(r"^[\d\s().+-]{8,24}$")
_EVENT_ID_DOMAIN = b"binhyen/event-id\x00"  # keeps event-id inputs apart from contact inputs
_TEXT_TOKEN_DOMAIN = b"binhyen/text-token\x00"


def normalise_contact(contact: str) -> str:
    """Canonical form of a phone number ('0912000111'), or the chat id case-folded."""
    text = unicodedata.normalize("NFKC", contact).strip()  # full-width digits -> ASCII
    digits = re.sub(r"\D", "", text)
    if _PHONE.match(text) and len(digits) >= 8:
        if digits.startswith("0084"):  # international call prefix
            digits = digits[2:]
        if digits.startswith("84") and len(digits) >= 11:
            national = digits[2:]
            digits = national if national.startswith("0") else "0" + national  # '+84 (0)912…' keeps one 0
        return digits
    return text.casefold()


@dataclass(frozen=True)
class Pseudonymiser:
    """Holds the pseudonym key; the only code that turns raw input into stored identifiers."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")

    def reporter(self, contact: str) -> str:
        """HMAC-SHA256 of the normalised contact, 128 bits in hex; irreversible without the key."""
        digest = hmac.new(self.key, normalise_contact(contact).encode("utf-8"), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:32]

    def text_token(self, kind: str, value: str) -> str:
        """`[SĐT:…]`: a contact found in free text (processors.redaction), 40 bits of a keyed HMAC
        over the normalised value — enough to link reports of one number, useless without the key."""
        digest = hmac.new(self.key, _TEXT_TOKEN_DOMAIN + f"{kind}\x00{value}".encode("utf-8"), hashlib.sha256)
        return f"[{kind}:{digest.hexdigest()[:10]}]"

    def event_id(self, event_type: str, record: dict[str, Any]) -> str:
        """A deterministic id for an event sent without one (a retried line gets the same id).

        `record` is the wire record, whose contact is already replaced or dropped; the id is
        keyed all the same, so it is no function of the event's content without the key.
        """
        canonical = json.dumps([event_type, record], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest = hmac.new(self.key, _EVENT_ID_DOMAIN + canonical.encode("utf-8", "surrogatepass"),
                          hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16]))
