"""Contacts typed inside free text, replaced at the edge by keyed tokens.

A reporter writes "gọi lại cho em số 0912.345.678"; a post's note names a CCCD number. The
pseudonym of `reporter_contact` does not cover that, so every free-text field is searched
before anything is produced, and each contact found is replaced by a marker, a keyed identity
and a check: `[SĐT:3f9a0c12e4b71d05]`, `[CCCD:…]`, `[EMAIL:…]`, `[LINK:…]`
(processors.pseudonym). The identity is an HMAC of the normalised value, so the same number in
ten tips, however each wrote it, is one token and the tips still link up, while nobody
downstream can test a guess against it.

People hide numbers from scanners on purpose ("0 9 1 2…", zero-width characters, full-width,
mathematical, Arabic-Indic or keycap digits, o/l for 0/1, "không chín một…", "a còng gmail
chấm com"), so the text is normalised first, with a map back to the original: what is
replaced is the span as written. Evidence that merely looks like a number is kept: amounts,
dates and times, plates, coordinates, and numbers whose context names them (tax code,
waybill, order, transaction, serial, IMEI, bank account).

Every pattern here runs in time linear in the text (no pattern can rescan a run once per
start position; tests/unit/test_input_linear.py measures it) — the contract's length limits
come first all the same.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING

from processors.text import fold

if TYPE_CHECKING:
    from processors.pseudonym import EdgeCheck

TOKEN_KINDS = ("SĐT", "CCCD", "EMAIL", "LINK")
# `[KIND:` + 10 hex of keyed identity + 6 hex of check + `]` (processors.pseudonym).
TOKEN_FORMAT = re.compile(r"\[(SĐT|CCCD|EMAIL|LINK):([0-9a-f]{10})([0-9a-f]{6})\]")
# Stands for a token in the normalised text: nothing joins across it, and no address starts
# right after it — as none started right after what the token replaced ("@a@a…" is one handle).
_BARRIER = "\x00"
_PASSES = 4
_REMEMBERED_LENGTH = 256  # characters: 65,536 remembered texts (and their answers) stay within tens of MB
_LETTER = re.compile(r"[^\W\d_]")

# -- normalisation ---------------------------------------------------------------------------
_INVISIBLE = ("\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
              "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\u20e3\U000e0000-\U000e0fff")
_STAGE_A = re.compile(rf"(?P<token>\[(?:SĐT|CCCD|EMAIL|LINK):[0-9a-f]{{16}}\])|[{_INVISIBLE}]+")
_BREAKS = frozenset("\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
_TABLE_LIMIT = 100_000
_DIGIT = re.compile("[0-9]")
# o, l and i inside a run of digits ("o9o4 l58 327", "O385I72964"); the run touches no letter and no address.
_CONFUSABLE_RUN = re.compile(
    r"(?=[0-9oli])(?<![^\W\d_])(?<![@./])[0-9oli]+(?:[ .\-,/_]{1,3}[0-9oli]+)*(?![^\W\d_])(?!@)")
_CONFUSABLES = str.maketrans("oli", "011")
_CONFUSABLE_LETTER = re.compile("[oli]")
_SPELLED_DIGITS = {
    "không": "0", "khong": "0", "một": "1", "mot": "1", "mốt": "1", "hai": "2", "ba": "3", "bốn": "4", "bon": "4",
    "tư": "4", "năm": "5", "nam": "5", "lăm": "5", "sáu": "6", "sau": "6", "bảy": "7", "bẩy": "7", "bay": "7",
    "tám": "8", "tam": "8", "chín": "9", "chin": "9",
}
_SPELLED_ITEM = r"(?:[0-9]{1,3}|" + "|".join(sorted(_SPELLED_DIGITS, key=len, reverse=True)) + r")(?!\w)"
_MIN_SPELLED = 9  # a phone number has 10 digits, a CMND 9: fewer words in a row are ordinary words
_SPELLED_RUN = re.compile(
    rf"(?=[0-9kmhbtnlsc])(?<!\w){_SPELLED_ITEM}(?:[ ,.\-]{{1,3}}{_SPELLED_ITEM}){{{_MIN_SPELLED - 1},}}")
_SPELLED_ONE = re.compile(_SPELLED_ITEM)
# What a text must hold for any contact to be found in it, read after the one-for-one part of
# the normalisation: four digits (eight make the shortest number, and o/l/i count only beside
# four), spelled-out digits, an @ or a slash, an "at" word or a nick word, a token's bracket.
# Most texts (site names, "có đánh nhau ở chợ") hold none and cost two C passes and three searches.
_FOUR_DIGITS = re.compile(r"(?:[0-9][^0-9]*){4}")
_TRIGGER = re.compile(r"[@/\[]|(?<!\w)(?:at|a ?còng|a ?cong|acong|a ?móc|a ?moc|nick|nickname"
                      r"|username|user|id|acc|tk|tài khoản|tai khoan)(?!\w)")
_INVISIBLE_RUN = re.compile(f"[{_INVISIBLE}]+")


class _Table(dict[int, str]):
    """str.translate table built on demand: other digit scripts, keycaps and circled digits to
    ASCII digits, odd spaces and line breaks to a space, dashes to '-', full-width and
    mathematical letters to ASCII, and everything to lower case. One character in, one out, so
    positions do not move."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        digit = unicodedata.digit(char, None)
        category = unicodedata.category(char)
        if digit is not None:
            out = str(digit)
        elif char in _BREAKS or category == "Zs":
            out = " "
        elif category == "Pd" or char == "\u2212":
            out = "-"
        else:
            compatible = unicodedata.normalize("NFKC", char)
            out = compatible if len(compatible) == 1 and compatible.isascii() else char
            out = out.lower() if len(out.lower()) == 1 else out
        if len(self) < _TABLE_LIMIT:  # a text of a million distinct characters cannot grow it without end
            self[code] = out
        return out


_TABLE = _Table()


class _Shifts:
    """Positions in a normalised text -> positions in the text it was made from: from output
    position at[k] on, the source is shift[k] characters further on."""

    def __init__(self, at: list[int] | None = None, shift: list[int] | None = None) -> None:
        self.at = array("q", [0] + (at or []))
        self.shift = array("q", [0] + (shift or []))

    def __call__(self, position: int) -> int:
        return position + self.shift[bisect_right(self.at, position) - 1]


@dataclass(frozen=True)
class Found:
    """A contact found in a text: where (in the text as written), what kind, its normalised value."""

    start: int
    end: int
    kind: str
    value: str


class _Normalised:
    """The text as matched: lower case, tokens as barriers, invisible characters gone, every
    digit ASCII, confusable letters in digit runs and spelled-out digits as digits; `origin`
    maps a span back to the text as written."""

    def __init__(self, text: str, check: EdgeCheck | None) -> None:
        self.source = text
        self.forged: list[Found] = []
        first, self._shifts_a = self._stage_a(text, check)
        second = first.translate(_TABLE)
        if _CONFUSABLE_LETTER.search(second) and _DIGIT.search(second):
            second = _CONFUSABLE_RUN.sub(_digits_for_letters, second)
        self.text, self._shifts_b = _spell_out(second)

    def _stage_a(self, text: str, check: EdgeCheck | None) -> tuple[str, _Shifts]:
        """Tokens become one barrier each, invisible characters go."""
        matches = list(_STAGE_A.finditer(text))
        if not matches:
            return text, _Shifts()
        for match in matches:
            if match.lastgroup == "token" and check is not None and not check.token_ok(match.group(0)):
                kind = match.group(0)[1:match.group(0).index(":")]
                self.forged.append(Found(match.start(), match.end(), kind, "forged:" + match.group(0)[-17:-1]))
        kept = [match.lastgroup == "token" for match in matches]  # a token keeps one character, its barrier
        dropped = list(accumulate((m.end() - m.start() - k for m, k in zip(matches, kept)), initial=0))
        at = [m.start() + k - before for m, k, before in zip(matches, kept, dropped)]
        return _STAGE_A.sub(lambda m: _BARRIER if m.lastgroup == "token" else "", text), _Shifts(at, dropped[1:])

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The span of the source text that normalised to text[start:end] (with what was dropped
        around its inside, and after its end up to the next kept character)."""
        source_start = self._shifts_a(self._shifts_b(start))
        if end >= len(self.text):
            return source_start, len(self.source)
        return source_start, self._shifts_a(self._shifts_b(end))


def _digits_for_letters(match: re.Match[str]) -> str:
    run = match.group(0)
    if not _CONFUSABLE_LETTER.search(run) or sum(map(str.isdigit, run)) < 4:
        return run
    return run.translate(_CONFUSABLES)


def _spell_out(text: str) -> tuple[str, _Shifts]:
    """Nine or more digit words in a row ("không chín một hai…") become the digits they say."""
    words: list[re.Match[str]] = []
    for run in _SPELLED_RUN.finditer(text):
        if _LETTER.search(text, run.start(), run.end()):  # digits only: nothing to spell out
            items = _SPELLED_ONE.finditer(text, run.start(), run.end())
            words += [item for item in items if not item.group(0)[0].isdigit()]
    if not words:
        return text, _Shifts()
    starts, ends = [word.start() for word in words], [word.end() for word in words]
    between = [text[end:start] for end, start in zip([0] + ends, starts)]
    digits = [_SPELLED_DIGITS[word.group(0)] for word in words]
    spelled = "".join(piece for pair in zip(between, digits) for piece in pair) + text[ends[-1]:]
    dropped = list(accumulate((end - start - 1 for start, end in zip(starts, ends)), initial=0))
    return spelled, _Shifts([start + 1 - before for start, before in zip(starts, dropped)], dropped[1:])


# -- phone numbers and identity numbers ------------------------------------------------------
_MOBILE = re.compile(r"0(?:3[2-9]|5[2-9]|7[06-9]|8[1-9]|9\d)\d{7}")
_LANDLINE = re.compile(r"02\d{9}")
# The 11-digit mobile prefixes renumbered in 2018 -> their 10-digit successors: one subscriber, one token.
_OLD_MOBILE = {
    "0162": "032", "0163": "033", "0164": "034", "0165": "035", "0166": "036", "0167": "037", "0168": "038",
    "0169": "039", "0120": "070", "0121": "079", "0122": "077", "0126": "076", "0128": "078", "0123": "083",
    "0124": "084", "0125": "085", "0127": "081", "0129": "082", "0186": "056", "0188": "058", "0199": "059",
}
# Where in a chain's digits a phone number or a CCCD may start (zero-width, so overlapping ones are all seen).
_MAY_BE_CONTACT = re.compile(
    r"(?=0[3579]\d{8}|08\d{8}|01\d{9}|02\d{9}|84\d{9}|0084\d{9}|0(?:0[1-9]|[1-8]\d|9[0-6])\d{9})")


def national_phone(digits: str) -> str | None:
    """The number as dialled inside Vietnam today ('0912345678') if `digits` is a phone number."""
    if digits.startswith("0084"):
        digits = digits[2:]
    if digits.startswith("84") and len(digits) in (11, 12, 13):
        digits = digits[2:] if digits[2] == "0" else "0" + digits[2:]
    if len(digits) == 11 and digits[:4] in _OLD_MOBILE:
        digits = _OLD_MOBILE[digits[:4]] + digits[4:]
    return digits if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits) else None


def citizen_id(digits: str) -> bool:
    """A 12-digit CCCD: it starts with the code of a province of birth, 001–096."""
    return len(digits) == 12 and digits[0] == "0" and 1 <= int(digits[:3]) <= 96


# -- what the words before a number say it is ------------------------------------------------
_CONTEXT_WORDS = {
    "phone": "so dien thoai|dien thoai|so dt|sdt|dt|tel|phone|di dong|may ban|so ban",
    "contact": "lien he|lien lac|lh|goi|nhan tin|nt|alo|sim|so em|so anh|so chi|so minh|so toi|so cua",
    "identity": "can cuoc|chung minh|dinh danh|cccd|cmnd|cmt",
    "platform": "zaloid|zalo|zl|facebook|fb|face|telegram|tele|tg|tiktok|instagram|insta|ig|viber|skype|wechat"
                "|nick|uid|id",
    "evidence": "ma so thue|mst|ma so doanh nghiep|msdn|van don|ma don|don hang|buu pham|buu gui|ma kien"
                "|giao dich|ma gd|tham chieu|bien lai|hoa don|serial|seri|so khung|imei|stk|so tai khoan"
                "|tai khoan|so tk|ngan hang|van ban|quyet dinh|ho so|so hieu|ve so|ma vach|ma hang|hop dong",
    "money": "chuyen khoan|ck|so tien|tong tien|tien mat|mat|lua|chiem doat|cho vay|khoan vay|chuyen|nop|thu ho",
}
_CONTEXT = re.compile("|".join(
    rf"(?<![a-z0-9])(?P<{kind}>{words})(?![a-z0-9])" if kind != "platform"
    else rf"(?<![a-z0-9])(?P<{kind}>{words})(?![a-z])" for kind, words in _CONTEXT_WORDS.items()))
_PLATFORMS = {"zaloid": "zalo", "zalo": "zalo", "zl": "zalo", "facebook": "fb", "fb": "fb", "face": "fb",
              "telegram": "tg", "tele": "tg", "tg": "tg", "tiktok": "tiktok", "instagram": "ig", "insta": "ig",
              "ig": "ig", "viber": "viber", "skype": "skype", "wechat": "wechat", "nick": "id", "uid": "id", "id": "id"}
_CLAUSE_END = re.compile(r".*(?:[.!?;,]\s|\s[-–—]\s)", re.DOTALL)
_WINDOW = 48
# Letters a number may be glued to and still be a phone number ("sdt0912345678", "zalo0345812690",
# "gọi e0912…"): these words end the letters, or the short ones are all of them.
_GLUE = ("sdt", "tel", "zalo", "goi", "call", "sim", "phone", "alo", "cccd", "cmnd", "anh", "chi", "minh", "toi")
_GLUE_ALONE = frozenset("dt zl lh ll sms ib nt so id em e a c".split())


def _context(norm: str, start: int) -> tuple[str, str] | None:
    """(kind, word) of the nearest context word before `start` in the same clause."""
    window = norm[max(0, start - _WINDOW):start]
    if not _LETTER.search(window):
        return None
    cut = _CLAUSE_END.match(window)
    nearest = None
    for nearest in _CONTEXT.finditer(fold(window[cut.end():] if cut else window)):
        pass
    return (nearest.lastgroup or "", nearest.group(0)) if nearest else None


def _platform_before(norm: str, start: int) -> str:
    """The chat platform named shortly before a handle ("Telegram @tuanhoang_bl" -> 'tg'), or ''."""
    words = [m.group(0) for m in _CONTEXT.finditer(fold(norm[max(0, start - _WINDOW):start]))
             if m.lastgroup == "platform" and _PLATFORMS[m.group(0)] != "id"]
    return _PLATFORMS[words[-1]] if words else ""


# -- evidence that looks like a number ------------------------------------------------------
_TIME = r"[0-2]?[0-9][.:h][0-5][0-9](?::[0-5][0-9])?"
_UNIT = (r"(?:đồng|đ|dong|vnđ|vnd|k|nghìn|ngàn|nghin|ngan|triệu|trieu|tr|tỷ|tỉ|ty|usd|\$|đô|euro|€)"
         r"(?!\w)")
# The lookbehinds keep a match off the middle of a longer number.
_EVIDENCE = re.compile(
    r"(?=[0-9])(?<![0-9])(?:"  # where a digit group starts: everything else is passed over in one step
    # dates (12/03/2025, 15/3/24, 2025-03-12, 11/2022, 26-6), with a time after them
    r"(?<![0-9][./-])(?:(?:19|20)[0-9]{2}[./-][01]?[0-9][./-][0-3]?[0-9]"
    r"|[0-3]?[0-9][./-][01]?[0-9](?:[./-](?:19|20)?[0-9]{2})?|[01]?[0-9][./-](?:19|20)[0-9]{2})"
    rf"(?:\s+{_TIME})?(?![0-9])(?![./-][0-9])"
    # amounts with a unit, grouped by dots, commas or spaces, or written together
    rf"|(?<![0-9][., ])[0-9]{{1,3}}(?:[., ][0-9]{{3}})+(?:[.,][0-9]{{1,2}})?\s*{_UNIT}"
    rf"|(?<![0-9][.,])[0-9]+(?:[.,][0-9]{{1,2}})?\s*{_UNIT}"
    # licence plates (69B1-234.56, 30A-123.45, 59-X1 234.56, 38K1-2468) and coordinates
    r"|(?<!\w)[1-9][0-9] ?-? ?[a-z]{1,2}[0-9]? ?-? ?[0-9]{3}\.?[0-9]{1,2}(?!\w)"
    r"|(?<![\w.])[1-9][0-9]{0,2}\.[0-9]{3,} ?, ?[1-9][0-9]{0,2}\.[0-9]{3,}(?!\w))")
_EVIDENCE_TAIL = 64  # characters after a chain that its evidence may reach (a unit word, a time)
_TIME_AFTER_WORD = re.compile(rf"(?:lúc|luc|khoảng|khoang)\s+{_TIME}(?![0-9])")
_GROUP = re.compile(r"[0-9]+")
# Digit groups and what may separate the groups of one number.
_CHAIN = re.compile(r"[0-9]+(?:[ .,\-/_()·•*~|]{1,4}[0-9]+)*")
_NINE = re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])")
_SEPARATORS_GONE = str.maketrans("", "", " .,-/_()·•*~|")
_SHORTEST = 8  # characters: no contact is written shorter
_HEAD = 160  # characters of a chain in which a contact may start near enough to the words before it
_PLUS_BEFORE = re.compile(r"(?:\(\s*)?\+\s*$")

# -- addresses ------------------------------------------------------------------------------
_LINK = re.compile(
    r"(?<![\w.@\x00-])(?:https?://)?(?:(?:www|m|mobile|web)\.)?(?P<site>chat\.zalo\.me|zalo\.me|facebook\.com|fb\.com"
    r"|fb\.me|m\.me|messenger\.com|t\.me|telegram\.me|tiktok\.com|instagram\.com|instagr\.am)"
    r"/(?P<path>[^\s,;()\[\]<>\"'\x00]+)")
_SITES = {"chat.zalo.me": "zalo", "zalo.me": "zalo", "facebook.com": "fb", "fb.com": "fb", "fb.me": "fb", "m.me": "fb",
          "messenger.com": "fb", "t.me": "tg", "telegram.me": "tg", "tiktok.com": "tiktok", "instagram.com": "ig",
          "instagr.am": "ig"}
_PROFILE_ID = re.compile(r"[?&]id=(\d+)")
_AT_WORDS = ("@", "at", "còng", "cong", "móc", "moc")
_AT = r"(?:\s*@\s*|\s*[(\[{]\s*at\s*[)\]}]\s*|\s+(?:at|a\s?còng|a\s?cong|acong|a\s?móc|a\s?moc)\s+)"
_DOT = r"(?:\s*\.\s*|\s*[(\[{]\s*dot\s*[)\]}]\s*|\s+(?:dot|chấm|cham)\s+)"
_EMAIL = re.compile(rf"(?<![\w.+\x00-])(?P<local>[\w.+-]*\w)(?P<at>{_AT})(?P<domain>[a-z0-9-]+(?:{_DOT}[a-z0-9-]+)+)")
_DOMAIN_PART = re.compile(rf"(?P<dot>{_DOT})?(?P<label>[a-z0-9-]+)")
_TLDS = frozenset("com vn net org edu gov info biz io me co us uk jp kr cn xyz online site app dev".split())
_HANDLE = re.compile(r"(?<![\w.+@\x00-])@(?P<name>[a-z0-9_](?:[a-z0-9_.]*[a-z0-9_])?)")
_PLATFORM = r"zalo|zl|fb|facebook|face|tiktok|tik tok|telegram|tele|tg|instagram|insta|ig"
_NICK_WORDS = ("nick", "user", "id", "acc", "tài khoản", "tai khoan", "tk")
_NICK = re.compile(
    rf"(?<!\w)(?:(?P<before>{_PLATFORM})\s*(?:nick ?name|nick|username|user|id|acc)|nick ?name|nick|username|user"
    rf"|(?:id|acc|tài khoản|tai khoan|tk)(?=\s*(?:{_PLATFORM})))"
    rf"\s*(?P<after>{_PLATFORM})?\s*[:=]?\s*(?:là\s+|la\s+)?(?P<name>[a-z0-9_.]{{3,40}})(?![\w@])")
_NOT_A_NICK = frozenset("anh chi em co chu bac ong ba cua la toi minh nhe nha nay cung va voi hay the".split()
                       + _PLATFORM.replace("tik tok|", "").split("|") + "nick nickname username user acc".split())

# -- identifiers ----------------------------------------------------------------------------
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PLAIN_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]*\w@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_ID_PARTS = re.compile(r"([^0-9a-z]+)")
_DIGITISH_GONE = str.maketrans("", "", "0123456789oli")


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each span blanked by barriers (same length): later patterns cannot reach into it."""
    if not spans:
        return text
    out, written = [], 0
    for start, end in sorted(spans):
        out += [text[written:start], _BARRIER * (end - start)]
        written = end
    out.append(text[written:])
    return "".join(out)


class _Finder:
    """One pass over one normalised text: every contact in it, in the normalised positions.
    Each pattern runs only where its trigger is in the text (a '/' for links, an '@' or an
    'at' word for addresses, a digit for numbers): checked in C, before any pattern."""

    def __init__(self, norm: str, first_only: bool = False) -> None:
        self.norm = norm
        self.first_only = first_only  # contains_contact(): the first contact answers the question
        self.found: list[tuple[int, int, str, str]] = []

    @property
    def done(self) -> bool:
        return self.first_only and bool(self.found)

    def run(self) -> list[tuple[int, int, str, str]]:
        norm, masked = self.norm, self.norm
        for triggers, detect in (("/", self._links), (_AT_WORDS, self._emails), (_AT_WORDS, self._handles),
                                 (_NICK_WORDS, self._nicks)):
            if any(trigger in norm for trigger in triggers):
                before = len(self.found)
                detect(masked)
                if self.done:
                    return self.found
                masked = _masked(masked, [(s, e) for s, e, _, _ in self.found[before:]])
        if _DIGIT.search(masked):
            self._numbers(masked)
        return self.found

    def _links(self, masked: str) -> None:
        for match in _LINK.finditer(masked):
            if self.done:
                return
            path = match.group("path")
            trimmed = path.rstrip(".,!?:/")
            if not trimmed:
                continue
            end = match.end() - (len(path) - len(trimmed))
            platform = _SITES[match.group("site")]
            profile = _PROFILE_ID.search(trimmed)
            name = profile.group(1) if profile else trimmed.split("?")[0].rstrip("/").removeprefix("@")
            phone = national_phone(name) if platform == "zalo" and name.isdigit() else None
            if phone:
                self.found.append((match.start(), end, "SĐT", phone))
            else:
                self.found.append((match.start(), end, "LINK", f"{platform}:{name}"))

    def _emails(self, masked: str) -> None:
        for match in _EMAIL.finditer(masked):
            if self.done:
                return
            plain = match.group("at") == "@"  # "a @ b .com" is written to dodge scanners: its TLD must be a known one
            labels = []
            for part in _DOMAIN_PART.finditer(masked, match.start("domain"), match.end("domain")):
                dot = part.group("dot")
                plain = plain and (dot is None or dot == ".")
                label = part.group("label")
                labels.append((label, part.end(), label in _TLDS or (plain and label.isalpha() and len(label) >= 2)))
            while labels and not labels[-1][2]:
                labels.pop()
            if len(labels) >= 2:
                value = f"{match.group('local')}@{'.'.join(label for label, _, _ in labels)}"
                self.found.append((match.start(), labels[-1][1], "EMAIL", value))

    def _handles(self, masked: str) -> None:
        for match in _HANDLE.finditer(masked):
            if self.done:
                return
            platform = _platform_before(self.norm, match.start())
            name = match.group("name")
            self.found.append((match.start(), match.end(), "LINK", f"{platform}:{name}" if platform else "@" + name))

    def _nicks(self, masked: str) -> None:
        for match in _NICK.finditer(masked):
            if self.done:
                return
            name = match.group("name")
            if name in _NOT_A_NICK:
                continue
            word = fold(match.group("after") or match.group("before") or "zalo").replace(" ", "")
            platform = _PLATFORMS.get(word, "zalo")
            self.found.append((match.start("name"), match.end("name"), "LINK", f"{platform}:{name}"))

    def _numbers(self, masked: str) -> None:
        nines = array("q", [match.start() for match in _NINE.finditer(masked)])
        times = [match.span() for match in _TIME_AFTER_WORD.finditer(masked)]
        for chain in _CHAIN.finditer(_masked(masked, times)):
            if self.done:
                return
            start, end = chain.span()
            if end - start < _SHORTEST:
                continue
            if end - start > _HEAD and not (_MAY_BE_CONTACT.search(chain.group(0).translate(_SEPARATORS_GONE))
                                            or bisect_left(nines, end) > bisect_left(nines, start)):
                end = start + _HEAD  # no phone's or CCCD's shape anywhere: only words near its start could say more
            for groups in _segments(chain.string, start, end):
                _Segment(self, groups, start, nines).scan()

    def _may_start(self, start: int) -> bool:
        """A number glued to letters is a code ("FT2519…", "KS2019"), unless the letters say phone."""
        letters = start
        while letters > 0 and start - letters < 12 and self.norm[letters - 1].isalpha():
            letters -= 1
        word = fold(self.norm[letters:start])
        return letters == start or word in _GLUE_ALONE or word.endswith(_GLUE)


def _segments(text: str, start: int, end: int) -> list[list[re.Match[str]]]:
    """The digit groups of the chain text[start:end], split where evidence (a date, an amount, a
    plate…) covers them. Evidence starts inside the chain and ends at most a unit word or a time after it."""
    groups = list(_GROUP.finditer(text, start, end))
    starts = [group.start() for group in groups]
    segments, first = [], 0
    for evidence in _EVIDENCE.finditer(text, start, min(len(text), end + _EVIDENCE_TAIL)):
        if evidence.start() >= end:
            break
        inside, after = bisect_left(starts, evidence.start()), bisect_left(starts, evidence.end())
        segments.append(groups[first:inside])
        first = max(first, after)
    segments.append(groups[first:])
    return [segment for segment in segments if segment]


class _Segment:
    """Digit groups joined by separators ("0912 345 678", "0 9 1 2…", "001.203.012.345"): the
    contacts in them, from the left, each the longest that fits. Only groups where a contact can
    start are looked at — where the digits have a phone's or a CCCD's shape, a group of nine, or
    near the chain's start, where words can say what a number is — so a chain of a million
    digits costs no more than reading it."""

    def __init__(self, finder: _Finder, groups: list[re.Match[str]], chain_start: int, nines: array[int]) -> None:
        self.finder = finder
        self.chain_start = chain_start
        self.starts = [group.start() for group in groups]
        self.ends = [group.end() for group in groups]
        parts = [group.group(0) for group in groups]
        self.digits = "".join(parts)
        self.offsets = array("q", accumulate(map(len, parts), initial=0))  # where each group's digits begin
        candidates = set(range(bisect_left(self.starts, chain_start + _WINDOW + 1)))
        for position in nines[bisect_left(nines, self.starts[0]):bisect_left(nines, self.ends[-1])]:
            candidates.add(bisect_left(self.starts, position))  # a group of nine digits: a CMND
        for match in _MAY_BE_CONTACT.finditer(self.digits):
            index = bisect_left(self.offsets, match.start())
            if index < len(self.starts) and self.offsets[index] == match.start():
                candidates.add(index)
        self.candidates = sorted(candidates)

    def scan(self) -> None:
        free = 0  # groups before it belong to something already taken
        for i in self.candidates:
            if self.finder.done:
                return
            glued = i == 0 and self.starts[0] == self.chain_start and not self.finder._may_start(self.starts[0])
            if i < free or glued:
                continue
            taken = self._number_at(i)
            free = taken + 1 if taken is not None else i + 1

    def _ending(self, offset: int, length: int) -> int | None:
        """The group whose end is `length` digits after `offset`, if a group ends there."""
        after = bisect_left(self.offsets, offset + length)
        return after - 1 if after < len(self.offsets) and self.offsets[after] == offset + length else None

    def _phone(self, offset: int) -> tuple[int, str] | None:
        digits = self.digits
        if digits.startswith("0084", offset):
            lengths: tuple[int, ...] = (15, 14, 13)
        elif digits.startswith("84", offset):
            lengths = (13, 12, 11)
        elif digits.startswith(("01", "02"), offset):
            lengths = (11,)
        elif digits.startswith(("03", "05", "07", "08", "09"), offset):
            lengths = (10,)
        else:
            return None
        for length in lengths:
            last = self._ending(offset, length)
            number = national_phone(digits[offset:offset + length]) if last is not None else None
            if number is not None:
                return last, number  # type: ignore[return-value]
        return None

    def _number_at(self, i: int) -> int | None:
        """Records the contact that starts at group i, if any; the index of the last group it
        takes (a contact, or evidence its context names), or None."""
        offset, start, norm = self.offsets[i], self.starts[i], self.finder.norm
        phone = self._phone(offset)
        cccd = self._ending(offset, 12) if self.digits.startswith("0", offset) else None
        cccd = cccd if cccd is not None and citizen_id(self.digits[offset:offset + 12]) else None
        cmnd = self._ending(offset, 9)
        plus = _PLUS_BEFORE.search(norm, max(0, start - 4), start) if phone else None
        if phone and plus:
            return self._take(i, phone[0], "SĐT", phone[1], plus.start())
        # Inside a long chain no word is near enough to say what a number is: skip the lookup.
        context = _context(norm, start) if start - self.chain_start <= _WINDOW else None
        kind = context[0] if context else None
        if kind == "identity" and (cccd is not None or cmnd is not None):
            last, length = (cccd, 12) if cccd is not None else (cmnd, 9)
            return self._take(i, last, "CCCD", self.digits[offset:offset + length])  # type: ignore[arg-type]
        if phone:
            return phone[0] if kind == "evidence" else self._take(i, phone[0], "SĐT", phone[1])
        if cccd is not None:
            return cccd if kind == "evidence" else self._take(i, cccd, "CCCD", self.digits[offset:offset + 12])
        if cmnd == i and kind not in ("evidence", "money") and not self.digits.endswith("000", 0, offset + 9):
            return self._take(i, i, "CCCD", self.digits[offset:offset + 9])
        if kind in ("platform", "phone"):
            for length in (range(20, 8, -1) if kind == "platform" else range(11, 7, -1)):
                last = self._ending(offset, length)
                number = self.digits[offset:offset + length]
                if last is None or (kind == "phone" and number.startswith(("1800", "1900"))):
                    continue
                if kind == "platform":
                    return self._take(i, last, "LINK", f"{_platform_before(norm, start) or 'id'}:{number}")
                return self._take(i, last, "SĐT", number)
        return None

    def _take(self, i: int, j: int, kind: str, value: str, start: int | None = None) -> int:
        norm = self.finder.norm
        start = self.starts[i] if start is None else start
        if start > 0 and norm[start - 1] == "(" and ")" in norm[start:self.ends[j]]:
            start -= 1  # "(0765) 213 980": the parenthesis goes with the number
        self.finder.found.append((start, self.ends[j], kind, value))
        return j


def find(text: str, check: EdgeCheck | None = None, first_only: bool = False) -> list[Found]:
    """Every contact in `text` (or the first one found), as written, left to right. Tokens already
    in the text are not contacts; with `check`, a token-shaped string the edge's key did not make
    is. Short texts are remembered: a device's site name comes with every signal."""
    if len(text) <= _REMEMBERED_LENGTH:
        return list(_remembered(text, check))
    return _find(text, check, first_only)


@lru_cache(maxsize=65_536)
def _remembered(text: str, check: EdgeCheck | None) -> tuple[Found, ...]:
    return tuple(_find(text, check, False))


def _find(text: str, check: EdgeCheck | None, first_only: bool) -> list[Found]:
    quick = _INVISIBLE_RUN.sub("", text).translate(_TABLE)
    if not (_TRIGGER.search(quick) or _FOUR_DIGITS.search(quick) or _SPELLED_RUN.search(quick)):
        return []
    normalised = _Normalised(text, check)
    found = list(normalised.forged)
    if found and first_only:
        return found
    for start, end, kind, value in _Finder(normalised.text, first_only).run():
        source_start, source_end = normalised.origin(start, end)
        found.append(Found(source_start, source_end, kind, value))
    return sorted(found, key=lambda f: f.start)


class Redactor:
    """Replaces contacts in free text with keyed tokens (see the module docstring)."""

    def __init__(self, token: Callable[[str, str], str], check: EdgeCheck | None = None) -> None:
        self.token = token  # Pseudonymiser.text_token: the key stays with the pseudonymiser
        self.check = check  # with it, a forged token in the text is replaced like a contact

    def redact(self, text: str) -> str:
        # Again over the result until nothing is found (a second pass finds nothing in practice):
        # what is left beside the tokens is then what contains_contact() reads, so the worker
        # never refuses what the edge produced. Bounded, so no input can make it quadratic; a
        # text still holding a contact after that is refused by check_rules.
        check = self.check
        for _ in range(_PASSES):
            found = find(text, check)
            if not found:
                break
            check = None  # every forged token is replaced by now: what is token-shaped is the edge's
            out, written = [], 0
            for item in found:
                out += [text[written:item.start], self.token(item.kind, item.value)]
                written = item.end
            out.append(text[written:])
            text = "".join(out)
        return text


def contains_contact(text: str, check: EdgeCheck | None = None) -> bool:
    """Whether `text` still holds a contact: the worker's check on records that bypassed the
    edge, which holds the key and redacts. Tokens do not count — with `check`, only those the
    edge's key made."""
    return bool(find(text, check, first_only=True))


def forged_tokens(text: str, check: EdgeCheck) -> bool:
    """Whether `text` holds a token-shaped string that the edge's key did not make."""
    return any(not check.token_ok(match.group(0)) for match in TOKEN_FORMAT.finditer(text))


@lru_cache(maxsize=65_536)
def identifier_holds_contact(value: str) -> bool:
    """Whether an id ('sms-0912000777-…') carries a phone number, a CCCD or an e-mail address.

    Only whole digit segments between non-alphanumerics count, and uuids are left out first: the
    hex of a uuid or a nonce can hold ten decimal digits in a row by chance. Ids come with every
    event (a device's, an alert's again and again), so answers are remembered and the common
    (ASCII) case skips the full normalisation; the contract limits ids to 200 characters first.
    """
    ascii_only = value.isascii()
    norm = value.lower() if ascii_only else _Normalised(value, None).text
    if "@" in norm and _PLAIN_EMAIL.search(norm):
        return True
    parts = _ID_PARTS.split(_UUID.sub("#", norm) if "-" in norm else norm)  # segment, separator, segment, …
    if ascii_only:  # o, l and i standing for digits ("sms-o912ooo777"), as the normalisation reads them
        parts[::2] = [part.translate(_CONFUSABLES) if part and not part.translate(_DIGITISH_GONE) else part
                      for part in parts[::2]]
    for i in range(0, len(parts), 2):
        digits = ""
        for j in range(i, len(parts), 2):
            if not parts[j].isdigit() or (j > i and len(parts[j - 1]) != 1) or len(digits) + len(parts[j]) > 14:
                break
            digits += parts[j]
            if len(digits) >= 10 and (national_phone(digits) or citizen_id(digits)):
                return True
    return False


def normalise_text(text: str) -> str:
    """`text` as the patterns read it: every digit ASCII, invisible characters gone, odd spaces a
    space, o/l in digit runs and spelled-out digits read as digits (processors.pseudonym)."""
    return _Normalised(text, None).text
