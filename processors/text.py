"""Vietnamese tip text -> comparable tokens and shingles.

Two people describing one incident share its specifics (the place, the hamlet, the
vehicle), not its wording. So the text is normalised (Unicode NFC, teencode and common
abbreviations expanded, initials joined, case and diacritics folded as a second view),
the words every tip uses are dropped, and what is left is shingled.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Abbreviations and teencode seen in Zalo groups, on the lower-cased NFC token.
ABBREVIATIONS = {
    "ko": "không", "k": "không", "kg": "không", "khg": "không", "hok": "không", "hông": "không",
    "đc": "được", "dc": "được", "đk": "được",
    "kp": "khu phố", "tn": "thanh niên", "ng": "người", "mn": "mọi người", "đt": "đối tượng",
    "xm": "xe máy", "vs": "với", "nt": "nhà trọ", "bít": "biết", "sn": "số nhà", "ql": "quốc lộ",
    "tl": "tỉnh lộ", "kcn": "khu công nghiệp", "hs": "học sinh", "cty": "công ty",
    "sđt": "số điện thoại", "tp": "thành phố", "share": "chia sẻ", "cf": "cà phê", "cafe": "cà phê",
    "ck": "chuyển khoản", "trc": "trước", "ns": "nói", "ntn": "như thế nào", "cx": "cũng",
}
# Upper-case abbreviations whose lower-case form is an ordinary word ("ca" is also "cá", "cà").
UPPER_ABBREVIATIONS = {"CA": "công an", "CSGT": "cảnh sát giao thông", "UBND": "ủy ban nhân dân"}
# Letters glued to a number: kp4, p3, ql55, tl8.
_GLUED = re.compile(r"^(kp|p|ql|tl|sn|tổ|to)(\d+)$")
_GLUED_WORD = {"kp": "khu phố", "p": "phòng", "ql": "quốc lộ", "tl": "tỉnh lộ", "sn": "số nhà", "tổ": "tổ", "to": "tổ"}
_INITIALS = re.compile(r"\b(?:[^\W\d_]\.){2,}(?:[^\W\d_]\b\.?)?", re.UNICODE)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

# Folded words that appear in tips whatever the incident: grammar, politeness, reporting
# boilerplate, vague time words. They say nothing about *which* incident it is.
STOPWORDS = frozenset("""
a ah ai anh bi ba bao bac cac can chi co cua cung da dang day de den di do duoc gi giup so
ha hay hon khi khong la lai len luc minh mot moi nay nao nguoi nhe nhieu nho nhu nhung
o oi qua ra rat roi se ta thi thay toi va vao ve voi vua xin xuong
tin cong an xa phuong nghi kiem tra xu ly gap ngay khan canh bao chu y trinh
doi tuong khoang sang chieu dem hom phut truoc gio lan nua tiep hien
""".split())
# Not stop words although their folded form is common: cho (chợ), ma (ma túy), may (xe máy),
# tai (tai nạn), tu (bà Tư), sau (ông Sáu), tam (Thanh Tâm) — places and names.


class _FoldTable(dict[int, str]):
    """str.translate's table for `fold`: each character decomposed and stripped of its marks,
    worked out on first sight; kept for the Latin, Greek and Cyrillic blocks and the combining
    marks (where Vietnamese lives), never for the rest, so odd input cannot grow it."""

    def __missing__(self, code: int) -> str:
        folded = "".join(c for c in unicodedata.normalize("NFD", chr(code)) if unicodedata.category(c) != "Mn")
        if code < 0x2000:
            self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """Lower case without diacritics: 'Đánh nhau' -> 'danh nhau'."""
    return text.lower().replace("đ", "d").translate(_FOLD)


@lru_cache(maxsize=16_384)
def normalise(text: str) -> str:
    """NFC, initials joined (N.T.T. -> NTT), abbreviations expanded, lower case (cached: a tip's text
    is read by the meaning model, the clusterer and the scorer)."""
    text = unicodedata.normalize("NFC", text)
    text = _INITIALS.sub(lambda m: m.group(0).replace(".", ""), text)
    words = []
    for token in _TOKEN.findall(text):
        if token in UPPER_ABBREVIATIONS:
            words.append(UPPER_ABBREVIATIONS[token])
            continue
        lower = token.lower()
        glued = _GLUED.match(lower)
        if glued:
            words.append(f"{_GLUED_WORD[glued.group(1)]} {glued.group(2)}")
        else:
            words.append(ABBREVIATIONS.get(lower, lower))
    return " ".join(words)


@lru_cache(maxsize=65_536)
def content_tokens(text: str) -> tuple[str, ...]:
    """Folded tokens that carry the incident's specifics, in order (cached: every score reads them)."""
    return tuple(token for token in fold(normalise(text)).split() if token not in STOPWORDS)


def shingles(text: str) -> set[str]:
    """Word unigrams and bigrams of the content tokens, plus character 4-grams for typos."""
    tokens = content_tokens(text)
    grams = set(tokens)
    grams.update(f"{a} {b}" for a, b in zip(tokens, tokens[1:]))
    joined = " ".join(tokens)
    grams.update("#" + joined[i:i + 4] for i in range(max(0, len(joined) - 3)))
    return grams


# Place words followed by a number or a name: "khu phố 4", "ấp Cây Cám", "dãy 7", "phòng 3".
_LOCATOR_KINDS = ("khu pho", "ap", "to", "xom", "day", "phong", "quoc lo", "tinh lo", "so nha")
_NAMED_LOCATORS = frozenset({"ap", "xom"})
_NOT_A_NAME = STOPWORDS | {"so", "tro", "nha", "vip", "kia", "canh", "nay", "do"}


def locators(text: str) -> dict[str, str]:
    """The hamlet, row, room or road a tip names, by kind: {'khu pho': '4', 'ap': 'cay cam'}.

    Two tips that name different ones of the same kind are about different places.
    """
    return dict(_locators(text))


@lru_cache(maxsize=65_536)
def _locators(text: str) -> tuple[tuple[str, str], ...]:
    words = fold(normalise(text)).split()
    found: dict[str, str] = {}
    i = 0
    while i < len(words):
        for kind in _LOCATOR_KINDS:
            parts = kind.split()
            if words[i:i + len(parts)] == parts:
                rest = words[i + len(parts):]
                if rest and rest[0] == "so":  # "dãy số 7", "phòng số 3"
                    rest = rest[1:]
                if rest and rest[0].isdigit():
                    found.setdefault(kind, rest[0])
                elif kind in _NAMED_LOCATORS and len(rest) >= 2 and not (set(rest[:2]) & _NOT_A_NAME) \
                        and not any(w.isdigit() for w in rest[:2]):
                    found.setdefault(kind, " ".join(rest[:2]))
                i += len(parts) - 1
                break
        i += 1
    return tuple(found.items())


def contradicting_places(a: dict[str, str], b: dict[str, str]) -> bool:
    return any(kind in b and b[kind] != value for kind, value in a.items())
