"""Scored mapping suggestions: which target row a source code most likely means, and why.

In order of trust: the same code (or the code the mapping kind matches by, e.g. a department
segment); a decision a person already made for the same code in another integration of the
tenant; the same name once case, accents, punctuation and legal suffixes are ignored; names that
are alike (``rapidfuzz``'s token-set ratio on the normalised names). Each candidate has a score
(0-100) and its reason in words; the best three are kept for the review screen, and the best is
suggested only at or above the threshold (a person still approves every suggestion).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process

SUGGEST_AT = 85  # the default threshold: below it the best candidates are shown, nothing suggested
TOP = 3

LEGAL_SUFFIXES = frozenset({
    "ltd", "limited", "inc", "incorporated", "llc", "llp", "lp", "plc", "corp", "corporation", "co", "company",
    "gmbh", "ag", "kg", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "oy", "ab", "as", "pty", "pte", "the",
})


LONG_SUFFIXES = tuple(sorted(word for word in LEGAL_SUFFIXES if len(word) >= 5))


@dataclass(frozen=True)
class Candidate:
    code: str
    label: str
    external_id: str
    score: int
    reason: str
    how: str  # exact_code | learned | name_match | fuzzy

    def as_json(self) -> dict[str, object]:
        return {"code": self.code, "label": self.label, "score": self.score, "reason": self.reason, "how": self.how}


def normalise(name: str) -> str:
    """``O'Brien Hydraulics Ltd.`` → ``obrien hydraulics``; ``Freight-In`` → ``freight in``."""
    text = unicodedata.normalize("NFKD", name or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower().replace("&", " and ")
    text = re.sub(r"['’`]", "", text)  # O'Brien → obrien, not "o brien"
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    kept = [w for w in words if w not in LEGAL_SUFFIXES]
    return " ".join(kept or words)


@dataclass(frozen=True)
class Target:
    code: str
    label: str
    external_id: str = ""


class Scorer:
    """The target side of one mapping kind, indexed once, scoring many source rows."""

    def __init__(self, targets: Iterable[Target], *, fuzzy: bool = True) -> None:
        """``fuzzy=False``: the same code or name only, no search for names alike (document
        numbers, where the targets given are only those a chunk of codes may match)."""
        self.fuzzy = fuzzy
        self.targets = list(targets)
        self.by_code = {t.code: t for t in self.targets}
        self.by_code_folded = {t.code.casefold(): t for t in self.targets}
        self.names = [normalise(t.label) for t in self.targets]
        self.by_name: dict[str, Target] = {}
        for target, name in zip(self.targets, self.names, strict=True):
            if name:
                self.by_name.setdefault(name, target)
        # Words many names share ("hydraulics", "expense") say little about which row is meant:
        # names are alike when their distinctive words are. (Only a fuzzy search needs them.)
        self._noise_cache: dict[str, bool] = {}
        frequency = Counter(word for name in self.names for word in set(name.split())) if fuzzy else Counter()
        floor = max(3, len(self.names) // 20)
        self.common = frozenset(word for word, count in frequency.items() if count >= floor)
        self.distinctive = [self._distinctive(name) for name in self.names] if fuzzy else []
        self.compact = [name.replace(" ", "") for name in self.names] if fuzzy else []

    def _distinctive(self, name: str) -> str:
        return " ".join(word for word in name.split() if not self._noise(word)) or name

    def _noise(self, word: str) -> bool:
        """A common word or a legal suffix, also when misspelt ("Limtied", "Frieght")."""
        found = self._noise_cache.get(word)
        if found is None:
            found = word in self.common or word in LEGAL_SUFFIXES or (len(word) >= 4 and any(
                fuzz.ratio(word, other) >= 80 for other in (*self.common, *LONG_SUFFIXES)))
            self._noise_cache[word] = found
        return found

    def similarity(self, name: str, index: int) -> int:
        """0-100: the names alike as a whole, and their distinctive words alike too (at most 94:
        never as sure as the same name)."""
        other = self.names[index]
        # a slipped space ("Offic eProducts") breaks words, not letters: compare without spaces too
        whole = max(fuzz.token_set_ratio(name, other), fuzz.ratio(name.replace(" ", ""), other.replace(" ", "")))
        distinct = fuzz.ratio(self._distinctive(name), self.distinctive[index])
        return int(round(min(whole, distinct + 6, 94)))

    def candidates(self, code: str, label: str, *, learned: Target | None = None,
                   learned_from: str = "", excluded: frozenset[str] = frozenset()) -> list[Candidate]:
        """The best candidates for a source row, best first (at most :data:`TOP`)."""
        found: dict[str, Candidate] = {}

        def offer(target: Target | None, score: int, reason: str, how: str) -> None:
            if target is None or target.code in excluded:
                return
            if target.code not in found or found[target.code].score < score:
                found[target.code] = Candidate(target.code, target.label, target.external_id, score, reason, how)

        exact = self.by_code.get(code) or self.by_code_folded.get(code.casefold())
        offer(exact, 100, "same code on both sides", "exact_code")
        offer(learned, 99, f"approved for the same code in {learned_from}" if learned_from else "approved before",
              "learned")
        name = normalise(label)
        if name:
            offer(self.by_name.get(name), 97, "same name once case, punctuation and legal suffixes are ignored",
                  "name_match")
            if not self.fuzzy or (exact is not None and exact.code not in excluded):
                # the same code on both sides is the answer: no fuzzy search (a chart of ten thousand
                # accounts would otherwise compare every pair)
                return sorted(found.values(), key=lambda c: (-c.score, c.code))[:TOP]
            nearby = {index for _, _, index in process.extract(name, self.names, scorer=fuzz.token_set_ratio,
                                                               limit=10, score_cutoff=50)}
            nearby |= {index for _, _, index in process.extract(name.replace(" ", ""), self.compact,
                                                                scorer=fuzz.ratio, limit=10, score_cutoff=50)}
            for index in nearby:
                score = self.similarity(name, index)
                offer(self.targets[index], score, f"names {score}% alike", "fuzzy")
        return sorted(found.values(), key=lambda c: (-c.score, c.code))[:TOP]
