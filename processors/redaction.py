"""Contacts typed inside free text, replaced at the edge by keyed tokens.

A reporter writes "gọi lại cho em số 0912.345.678"; a post's note names a CCCD number. The
pseudonym of `reporter_contact` does not cover that, so every free-text field is searched
before anything is produced, and each contact found is replaced by a marker and a keyed
token: `[SĐT:3f9a0c12e4]`, `[CCCD:…]`, `[EMAIL:…]`, `[LINK:…]`. The token is an HMAC of the
normalised value with the pseudonym key (domain-separated), so the same scam number reported
in ten tips, however each wrote it, gets the same token — the tips still link up — and
nobody downstream can test a guessed number against it without the key.

Replaced: Vietnamese phone numbers in the ways people write them (spaces, dots, dashes,
`+84`, `84`, `(+84)`, `0084`, `(0)`, mobile 0[35789]x and landline 02x), CCCD/CMND numbers
(12 or 9 digits written together), e-mail addresses, links to chat profiles (Zalo,
Facebook, Messenger, Telegram, TikTok, Instagram). Kept as written: licence plates (letters
inside), house numbers, amounts (a currency word after, or grouped 1–3 digits), kilometre
marks, dates, short service numbers (113, 1900 xxxx).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_DIGITS = re.compile(r"\d+")
_GAP = re.compile(r"[\s.\-()]{0,3}|\s*\(0\)\s*")  # what may separate the digit groups of one number
_PLUS_BEFORE = re.compile(r"(?:\(\s*)?\+\s*$")
_MOBILE = re.compile(r"0[35789]\d{8}")
_LANDLINE = re.compile(r"02\d{9}")
_ID_LENGTHS = (9, 12)
_AMOUNT_AFTER = re.compile(r"\s*(?:đ\b|đồng|vnd|vnđ|k\b|nghìn|ngàn|triệu|tr\b|tỷ|usd|\$)", re.IGNORECASE)
_MAYBE_CONTACT = re.compile(r"@|/|(?:\d[\s.\-()+]{0,3}){8}")  # cheap: anything below needs one of these
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LINK = re.compile(r"(?:https?://)?(?:www\.|m\.)?(?:zalo\.me|chat\.zalo\.me|facebook\.com|fb\.com|fb\.me|m\.me"
                   r"|t\.me|tiktok\.com|instagram\.com)/[^\s,;)\]]+", re.IGNORECASE)


def national_phone(digits: str) -> str | None:
    """The number as dialled inside Vietnam ('0912345678') if `digits` is a phone number."""
    if digits.startswith("0084"):
        digits = digits[2:]
    if digits.startswith("84") and len(digits) in (11, 12):
        digits = digits[2:] if digits[2] == "0" else "0" + digits[2:]
    return digits if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits) else None


class Redactor:
    """Replaces contacts in free text with keyed tokens (see the module docstring)."""

    def __init__(self, token: Callable[[str, str], str]) -> None:
        self.token = token  # Pseudonymiser.text_token: the key stays with the pseudonymiser

    def redact(self, text: str) -> str:
        if not _MAYBE_CONTACT.search(text):
            return text  # most texts (site names, "có đánh nhau ở chợ") hold no run of digits, no @ and no /
        text = _LINK.sub(lambda m: self.token("LINK", m.group(0).casefold().split("://")[-1]), text)
        text = _EMAIL.sub(lambda m: self.token("EMAIL", m.group(0).casefold()), text)
        return self._numbers(text)

    def _numbers(self, text: str) -> str:
        groups = list(_DIGITS.finditer(text))
        out, written, i = [], 0, 0
        while i < len(groups):
            found = self._phone_from(text, groups, i)
            if found is not None:
                end, number = found
                start = groups[i].start()
                plus = _PLUS_BEFORE.search(text, 0, start)
                start = plus.start() if plus else start
                out += [text[written:start], self.token("SĐT", number)]
                written, i = groups[end].end(), end + 1
                continue
            group = groups[i]
            if self._identity_number(text, group):
                out += [text[written:group.start()], self.token("CCCD", group.group(0))]
                written = group.end()
            i += 1
        out.append(text[written:])
        return "".join(out)

    @staticmethod
    def _phone_from(text: str, groups: list[re.Match[str]], i: int) -> tuple[int, str] | None:
        """(index of the last group, national number) of the longest phone number starting at group i
        ('sdt0912345678' counts: people glue the number to the word)."""
        best, digits = None, ""
        for j in range(i, min(len(groups), i + 6)):
            if j > i and not _GAP.fullmatch(text, groups[j - 1].end(), groups[j].start()):
                break
            digits += groups[j].group(0)
            if len(digits) > 14:
                break
            number = national_phone(digits)
            if number is not None:
                best = (j, number)
        return best

    @staticmethod
    def _identity_number(text: str, group: re.Match[str]) -> bool:
        """A CCCD (12 digits) or CMND (9) written together, not an amount or part of a word."""
        before, after = text[group.start() - 1:group.start()], text[group.end():group.end() + 1]
        return (len(group.group(0)) in _ID_LENGTHS and not before.isalnum() and not after.isalnum()
                and not _AMOUNT_AFTER.match(text, group.end()))


_TOKEN = re.compile(r"\[(?:SĐT|CCCD|EMAIL|LINK):[0-9a-f]{10}\]")
_FINDER = Redactor(lambda kind, value: "\x00")


def contains_contact(text: str) -> bool:
    """Whether `text` still holds a contact (tokens already in it do not count): the worker's
    check on records that bypassed the edge, which holds the key and redacts."""
    bare = _TOKEN.sub(" ", text)
    return _FINDER.redact(bare) != bare
