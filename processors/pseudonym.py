"""Reporter pseudonyms: a keyed HMAC so reputation can follow a reporter unseen.

The same person must get the same pseudonym whatever way the contact was written
('+84 912 000 111', '0912000111'), so phone numbers are normalised first.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PSEUDONYM_PREFIX = "rp_"
_PHONE = re.compile(r"^\+?[\d\s().-]{8,20}$")


def normalise_contact(contact: str) -> str:
    """Canonical form of a phone number ('0912000111'), or the chat id lower-cased."""
    text = contact.strip()
    if _PHONE.match(text):
        digits = re.sub(r"\D", "", text)
        if digits.startswith("84") and len(digits) >= 11:
            digits = "0" + digits[2:]
        return digits
    return text.lower()


def pseudonymise(key: bytes, contact: str) -> str:
    """HMAC-SHA256 of the normalised contact, 128 bits in hex; irreversible without the key."""
    if len(key) < 16:
        raise ValueError("the pseudonym key must be at least 16 bytes")
    digest = hmac.new(key, normalise_contact(contact).encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:32]
