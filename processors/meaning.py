"""What a message is about: its category, whether it is urgent, whether it is a tip at all — and why.

Method: a versioned, weighted phrase model (`infra/config/meaning.v2.json`), not a trained one.
The maintained Vietnamese toolkits on PyPI segment words and tag parts of speech (pyvi,
underthesea) but carry no tip categories, and underthesea's classifiers fetch their weights on
first use, which is forbidden here; training our own needs labelled tips we do not have apart
from the on-call corpus, which must stay a fair test. A phrase model is explainable by
construction (the matched phrases are the reason on the incident), is reviewed and versioned
like the alert rules, and a duty officer can read and correct it.

Matching: the text (then the location text) is normalised by `processors.text.normalise`
(NFC, teencode expanded, lower case), links become the word `url` and a few emoji words, and
the result is folded (`processors.text.fold`: no diacritics) so that one phrase covers what is
typed with and without diacritics. One pass of an Aho-Corasick automaton (the maintained
`pyahocorasick`) finds every phrase at word boundaries: linear in the text. Folding merges words
that differ only by their marks (cháy 'burn' / chạy 'run', đâm 'stab' / đám 'crowd', lửa 'fire' /
lừa 'cheat'), so a match is kept only if the marks the sender did type are among the phrase's:
'chạy' never matches 'cháy', while an unmarked 'chay' matches both and the weights decide.

Scoring, section by section; a phrase counts once however often it occurs, and a longer
phrase of a section overrides the phrases of that section inside it ('ai nhặt được', the owner
asking, over 'nhặt được', a finder; 'đổ trộm', dumping, over 'trộm'); `ignore` phrases override
in every section ('giật mình', startled, is no snatching; 'đám cưới' no stabbing):
- categories: per-category weights summed; the best at or above a threshold (ties to the one
  listed first in the model: the kinds that need a patrol come first) is the text's category,
  else None;
- urgency: signed weights — danger and "now" cues up; past ('tối qua', 'hôm bữa'), settled
  ('đã dập', 'đã hòa giải', 'đã tìm thấy') and habitual ('đêm nào cũng') cues down; urgent at or
  above a threshold unless the category is never urgent (drugs, gambling, fraud, hụi, lost
  property) — though an urgent message whose text also clearly says a kind that can be urgent
  (>= `override_hint`) takes that kind: an addict swinging a knife is a fight;
- not_tip: questions, thanks, found property, relative found, news, greetings, ads, announced
  tests; a message is not a tip when this outweighs its best category (with a sender-given
  category, only when it is also at least `clear_not_tip`). A message of at most
  `chat_words` words in which nothing is recognised is chat ('dạ', '👍'), not a tip.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import ahocorasick

from processors.text import fold, normalise

CATEGORIES = ("drugs", "gambling", "theft", "fight", "fraud", "hui", "fire", "traffic", "missing_person",
              "lost_property", "other")
MAX_EVIDENCE = 5
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")  # huyền sắc ngã hỏi nặng: placed on either vowel
_THRESHOLDS = ("category", "urgent", "clear_not_tip", "override_hint", "chat_words")


@dataclass(frozen=True)
class Meaning:
    category: str | None  # one of CATEGORIES, or None when nothing says
    urgent: bool  # happening now / just happened and needs a patrol now
    is_tip: bool  # False: not a report at all (question, thanks, found papers, news, greeting, ad, test)
    evidence: tuple[str, ...]  # the phrases (as matched, folded) that decided it, most decisive first, ≤ 5


@dataclass(frozen=True)
class _Cue:
    section: str  # category | urgency | not_tip | ignore
    label: str  # the category a category cue is for, else ""
    phrase: str  # padded, normalised, with the marks the model wrote: " cháy nhà "
    weight: float
    folded: str  # the phrase as matched and shown in evidence: "chay nha"


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int  # inclusive, on the padded folded text
    cues: tuple[_Cue, ...]
    sections: frozenset[str]


class MeaningModel:
    def __init__(self, version: str, thresholds: dict[str, float], never_urgent: frozenset[str],
                 priority: tuple[str, ...], symbols: dict[int, str], cues: list[_Cue]) -> None:
        self.version = version
        self.thresholds = thresholds
        self.never_urgent = never_urgent
        self._priority = {category: rank for rank, category in enumerate(priority)}
        self._symbols = symbols
        by_key: dict[str, list[_Cue]] = {}
        for cue in cues:
            by_key.setdefault(fold(cue.phrase), []).append(cue)
        self._automaton = ahocorasick.Automaton()
        for key, group in by_key.items():
            self._automaton.add_word(key, (len(key), tuple(group)))
        self._automaton.make_automaton()

    @classmethod
    def load(cls, path: Path) -> "MeaningModel":
        return cls.parse(path.read_text(encoding="utf-8"))

    @classmethod
    def parse(cls, text: str) -> "MeaningModel":
        raw: dict[str, Any] = json.loads(text, object_pairs_hook=_no_repeats)
        version = raw["version"]
        if not isinstance(version, str) or not version:
            raise ValueError("the meaning model needs a version")
        thresholds = {name: float(raw["thresholds"][name]) for name in _THRESHOLDS}
        never_urgent = frozenset(raw["never_urgent"])
        cues: list[_Cue] = []
        for label, phrases in raw["categories"].items():
            if label not in CATEGORIES:
                raise ValueError(f"unknown category {label!r} in the meaning model")
            cues += [_cue("category", label, phrase, weight) for phrase, weight in phrases.items()]
        for section in ("urgency", "not_tip"):
            cues += [_cue(section, "", phrase, weight) for phrase, weight in raw[section].items()]
        cues += [_cue("ignore", "", phrase, 0.0) for phrase in raw["ignore"]]
        unknown = never_urgent - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown never_urgent categories {sorted(unknown)}")
        symbols = {ord(symbol): f" {word} " for symbol, word in raw.get("symbols", {}).items()}
        return cls(version, thresholds, never_urgent, tuple(raw["categories"]), symbols, cues)

    def read(self, text: str, location_text: str | None = None, hint: str | None = None) -> Meaning:
        """The meaning of a message; `hint` is the category its sender gave, kept unless the text
        clearly says another urgent kind."""
        hits = self._find(*self._views(text, location_text))
        categories: dict[str, float] = {}
        category_cues: dict[str, list[tuple[float, int, str]]] = {}
        for weight, start, phrase, cue in _scored(hits, "category"):
            categories[cue.label] = categories.get(cue.label, 0.0) + weight
            category_cues.setdefault(cue.label, []).append((weight, start, phrase))
        urgency_cues = [(w, s, p) for w, s, p, _ in _scored(hits, "urgency")]
        not_tip_cues = [(w, s, p) for w, s, p, _ in _scored(hits, "not_tip")]
        urgency = sum(w for w, _, _ in urgency_cues)
        not_tip = sum(w for w, _, _ in not_tip_cues)

        found = min(categories, key=lambda c: (-categories[c], self._priority[c]), default=None)
        found_score = categories.get(found or "", 0.0)
        if found_score < self.thresholds["category"]:
            found, found_score = None, 0.0
        urgent_now = urgency >= self.thresholds["urgent"]
        if found in self.never_urgent and urgent_now:
            found, found_score = self._urgent_kind(categories, found, found_score)

        if hint in CATEGORIES:
            is_tip = not (not_tip >= self.thresholds["clear_not_tip"] and not_tip > found_score)
            category: str | None = hint
            if (found is not None and found != hint and found not in self.never_urgent and urgent_now
                    and found_score >= self.thresholds["override_hint"]
                    and found_score >= 2 * categories.get(hint, 0.0)):
                category = found
        else:
            is_tip = not (not_tip > 0 and not_tip > found_score) and (
                bool(categories or urgency_cues or not_tip_cues) or len(text.split()) > self.thresholds["chat_words"])
            category = found
        if not is_tip:
            return Meaning(None, False, False, _evidence([c for c in not_tip_cues if c[0] > 0]))
        urgent = urgent_now and category not in self.never_urgent
        if urgent:
            deciding = [c for c in urgency_cues if c[0] > 0]
        elif category in self.never_urgent:
            deciding = []
        else:
            deciding = [c for c in urgency_cues if c[0] < 0]
        return Meaning(category, urgent, True, _evidence(category_cues.get(category or "", []) + deciding))

    def _urgent_kind(self, categories: dict[str, float], found: str, score: float) -> tuple[str, float]:
        """The best kind that can be urgent if the text clearly says one (>= override_hint), else `found`."""
        urgent_kinds = [c for c in categories if c not in self.never_urgent
                        and categories[c] >= self.thresholds["override_hint"]]
        if not urgent_kinds:
            return found, score
        best = min(urgent_kinds, key=lambda c: (-categories[c], self._priority[c]))
        return best, categories[best]

    def _views(self, text: str, location_text: str | None) -> tuple[str, str]:
        """(what was typed, folded), padded, each text normalised on its own and joined by '|'
        (a character no phrase has, so no phrase spans the two)."""
        parts = [normalise(_URL.sub(" url ", part).translate(self._symbols)) for part in (text, location_text) if part]
        typed = " | ".join(parts)
        folded = fold(typed)
        if len(folded) != len(typed):  # a letter that folds to more or fewer characters: marks unchecked
            typed = folded
        return f" {typed} ", f" {folded} "

    def _find(self, typed: str, folded: str) -> list[list[_Hit]]:
        """Phrase matches whose typed marks fit, grouped by end, last end first."""
        groups: list[list[_Hit]] = []
        last_end = -1
        for end, (length, cues) in self._automaton.iter(folded):
            start = end - length + 1
            if typed[start:end + 1] != folded[start:end + 1]:  # marks typed: they must fit
                cues = tuple(c for c in cues if _marks_fit(typed[start:end + 1], c.phrase))
                if not cues:
                    continue
            if end != last_end:
                groups.append([])
                last_end = end
            groups[-1].append(_Hit(start, end, cues, frozenset(c.section for c in cues)))
        groups.reverse()
        return groups


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a phrase written twice is an error, not a silent overwrite."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"{key!r} appears twice in one section of the meaning model")
        seen[key] = value
    return seen


def _cue(section: str, label: str, phrase: str, weight: Any) -> _Cue:
    words = normalise(phrase)
    if not words:
        raise ValueError(f"empty phrase {phrase!r} in the meaning model's {section}")
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight):
        raise ValueError(f"the weight of {phrase!r} in {section} is not a number")
    return _Cue(section, label, f" {words} ", float(weight), fold(words))


def _scored(groups: list[list[_Hit]], section: str) -> list[tuple[float, int, str, _Cue]]:
    """(weight, start, folded phrase, cue) of the section's cues that no longer phrase of the
    section (or an ignore phrase) contains, each phrase once. Hits come last end first, so a
    hit is inside another iff an earlier group started at or before it, or its own group has
    one that starts before it: one pass, linear in the hits."""
    scored: dict[str, tuple[float, int, str, _Cue]] = {}
    outer = math.inf
    for group in groups:
        relevant = [hit for hit in group if section in hit.sections or "ignore" in hit.sections]
        if not relevant:
            continue
        first = min(hit.start for hit in relevant)
        for hit in relevant:
            if hit.start >= outer or hit.start > first:
                continue
            for cue in hit.cues:  # spellings of one phrase ('ma túy', 'ma tuý') count once, as the strongest
                key = f"{cue.label} {cue.folded}"
                if cue.section == section and (key not in scored or abs(cue.weight) > abs(scored[key][0])):
                    scored[key] = (cue.weight, hit.start, cue.folded, cue)
        outer = min(outer, first)
    return list(scored.values())


def _evidence(cues: list[tuple[float, int, str]]) -> tuple[str, ...]:
    """The phrases by decisiveness (|weight|, then first in the text), each once, at most five."""
    phrases: list[str] = []
    for _, _, phrase in sorted(cues, key=lambda c: (-abs(c[0]), c[1])):
        if phrase not in phrases:
            phrases.append(phrase)
    return tuple(phrases[:MAX_EVIDENCE])


@lru_cache(maxsize=65_536)
def _marks_fit(typed: str, phrase: str) -> bool:
    """Whether the marks typed on each word are among the phrase's: letter shapes (â ă ê ô ơ ư đ)
    per letter, tones per word (hoà and hòa are one word). Both have the same folded form."""
    for typed_word, phrase_word in zip(typed.split(" "), phrase.split(" ")):
        typed_tones: set[str] = set()
        phrase_tones: set[str] = set()
        for typed_letter, phrase_letter in zip(typed_word, phrase_word):
            typed_shape, typed_tone = _marks(typed_letter)
            phrase_shape, phrase_tone = _marks(phrase_letter)
            if not typed_shape <= phrase_shape:
                return False
            typed_tones |= typed_tone
            phrase_tones |= phrase_tone
        if not typed_tones <= phrase_tones:
            return False
    return True


@lru_cache(maxsize=4096)
def _marks(letter: str) -> tuple[frozenset[str], frozenset[str]]:
    """(shape marks, tone marks) of a letter; đ's stroke counts as a shape mark."""
    if letter == "đ":
        return frozenset("đ"), frozenset()
    marks = unicodedata.normalize("NFD", letter)[1:]
    return frozenset(m for m in marks if m not in _TONES), frozenset(m for m in marks if m in _TONES)
