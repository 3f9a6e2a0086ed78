"""The keyed edge: reporter pseudonyms, text tokens and assigned event ids, all HMAC-SHA256 with one key.

A reporter's contact must never be recoverable from anything stored downstream, so every
value derived from an event before its contact is gone is keyed: without the key nobody can
test a guessed phone number against a stored pseudonym or id (an unkeyed hash of a
Vietnamese mobile number falls to brute force in seconds).

The same person must get the same pseudonym whatever way the contact was written
('+84 912 000 111', '0084912000111', 'tel:0912000111', '912 000 111', full-width or
Arabic-Indic digits), so contacts are normalised first, by the same reading the redaction uses.

Pseudonyms and tokens carry a check the worker can verify without the pseudonym key: a
producer that writes to the input topics directly could otherwise store a phone number in a
format-valid pseudonym (`rp_000…0936214587`) or a token-shaped string (`[SĐT:0936214587]`).
The check key is derived from the pseudonym key one way (check_key_of), so holding it lets
the worker recognise what the edge made, and still tells nothing about any contact.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from processors.redaction import TOKEN_FORMAT, TOKEN_KINDS, national_phone, normalise_text

PSEUDONYM_PREFIX = "rp_"
PSEUDONYM_FORMAT = re.compile(r"^rp_[0-9a-f]{32}$")  # use fullmatch: `$` also matches before a final newline
MIN_KEY_BYTES = 16
_IDENTITY_HEX = 24  # of a pseudonym's 32: the rest is its check
_TOKEN_IDENTITY_HEX = 10
_CHECK_DOMAIN = b"binhyen/edge-check\x00"
_EVENT_ID_DOMAIN = b"binhyen/event-id\x00"  # keeps event-id inputs apart from contact inputs
_TEXT_TOKEN_DOMAIN = b"binhyen/text-token\x00"
_PHONE = re.compile(r"[\d\s().+\-/_,]{8,40}")
# Words people put before the number itself in a contact field: 'tel:0912…', 'Zalo: 0912…'.
_CONTACT_PREFIX = re.compile(
    r"(?:tel|phone|mobile|sđt|sdt|số|so|đt|dt|zalo|viber|điện thoại|dien thoai)\s*[:.]?\s*", re.IGNORECASE)


def normalise_contact(contact: str) -> str:
    """Canonical form of a phone number ('0912000111'), or the chat id case-folded."""
    text = normalise_text(contact).strip()
    number = _CONTACT_PREFIX.sub("", text, count=1) if _CONTACT_PREFIX.match(text) else text
    digits = re.sub(r"\D", "", number)
    if _PHONE.fullmatch(number) and len(digits) >= 8:
        national = national_phone(digits)
        if national is not None:
            return national
        if len(digits) == 9 and national_phone("0" + digits):  # '912 345 678': the trunk 0 left out
            return "0" + digits
        if digits.startswith("0084"):  # another number: still one form for one way of dialling it
            digits = digits[2:]
        if digits.startswith("84") and len(digits) >= 11:
            digits = digits[2:] if digits[2] == "0" else "0" + digits[2:]
        return digits
    return unicodedata.normalize("NFKC", text).casefold()


def check_key_of(pseudonym_key: bytes) -> bytes:
    """The key the worker gets to verify pseudonyms and tokens: one-way from the pseudonym key."""
    return hmac.new(pseudonym_key, _CHECK_DOMAIN, hashlib.sha256).digest()


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class EdgeCheck:
    """Verifies that a pseudonym or a text token was made by the edge, without the pseudonym key."""

    key: bytes = field(repr=False)

    def pseudonym_ok(self, value: str) -> bool:
        if not isinstance(value, str) or not PSEUDONYM_FORMAT.fullmatch(value):
            return False
        identity = value[len(PSEUDONYM_PREFIX):len(PSEUDONYM_PREFIX) + _IDENTITY_HEX]
        return hmac.compare_digest(value[len(PSEUDONYM_PREFIX) + _IDENTITY_HEX:], self._pseudonym_check(identity))

    def token_ok(self, token: str) -> bool:
        match = TOKEN_FORMAT.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            return False
        return hmac.compare_digest(match.group(3), self._token_check(match.group(1), match.group(2)))

    def _pseudonym_check(self, identity: str) -> str:
        return _mac(self.key, "rp\x00" + identity)[:32 - _IDENTITY_HEX]

    def _token_check(self, kind: str, identity: str) -> str:
        return _mac(self.key, kind + identity)[:16 - _TOKEN_IDENTITY_HEX]


@dataclass(frozen=True)
class Pseudonymiser:
    """Holds the pseudonym key; the only code that turns raw input into stored identifiers."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")

    def check(self) -> EdgeCheck:
        """What the worker holds to tell the edge's pseudonyms and tokens from forged ones."""
        return self._check

    @cached_property
    def _check(self) -> EdgeCheck:  # every pseudonym and token needs it: derived once
        return EdgeCheck(check_key_of(self.key))

    def reporter(self, contact: str) -> str:
        """`rp_` + 96 bits of HMAC-SHA256 of the normalised contact + 32 bits of check; irreversible
        without the key."""
        identity = _mac(self.key, normalise_contact(contact))[:_IDENTITY_HEX]
        return PSEUDONYM_PREFIX + identity + self._check._pseudonym_check(identity)

    def text_token(self, kind: str, value: str) -> str:
        """`[SĐT:…]`: a contact found in free text (processors.redaction), 40 bits of a keyed HMAC
        over the normalised value — enough to link reports of one number, useless without the
        key — and 24 bits of check."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"unknown token kind {kind!r}")
        digest = hmac.new(self.key, _TEXT_TOKEN_DOMAIN + f"{kind}\x00{value}".encode("utf-8"), hashlib.sha256)
        identity = digest.hexdigest()[:_TOKEN_IDENTITY_HEX]
        return f"[{kind}:{identity}{self._check._token_check(kind, identity)}]"

    def event_id(self, event_type: str, record: dict[str, Any]) -> str:
        """A deterministic id for an event sent without one (a retried line gets the same id).

        `record` is the wire record, whose contact is already replaced or dropped; the id is
        keyed all the same, so it is no function of the event's content without the key.
        """
        canonical = json.dumps([event_type, record], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest = hmac.new(self.key, _EVENT_ID_DOMAIN + canonical.encode("utf-8", "surrogatepass"),
                          hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16]))
