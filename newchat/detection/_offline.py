"""Offline practice-area classifier: weighted cue terms, spelling-tolerant, English and Spanish.

Deterministic and dependency-free, so detection works with no network and gives the same answer
on every gateway instance. Accuracy on the project's labelled sets is reported in the README
(`python -m newchat.detection.evaluate`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache, partial

from wordfreq import top_n_list

from newchat._categories import GENERAL, Category
from newchat.detection._lexicon import (
    ABSORBED,
    COMBINATIONS,
    CUE_GROUPS,
    LEXICON,
    PROTECTED_WORDS,
)

_NON_WORD = re.compile(r"[^a-z0-9.]+")
_FUZZY_MIN_LENGTH = 6
_STEM_MIN_LENGTH = 5
_MIN_EVIDENCE = 2
"""A single weak cue ("hours", "wife") is not enough to leave `general`."""


def normalize(text: str) -> list[str]:
    """Lower-case, strip accents and punctuation ("can't" -> "can t"), split into words."""
    ascii_text = text.lower()
    if not ascii_text.isascii():
        folded = unicodedata.normalize("NFKD", ascii_text)
        ascii_text = "".join(ch for ch in folded if not unicodedata.combining(ch))
    ascii_text = ascii_text.replace("'", " ").replace("-", " ")
    return [tok.strip(".") for tok in _NON_WORD.split(ascii_text) if tok.strip(".")]


KNOWN_WORDS_PER_LANGUAGE = 30_000
"""How many of wordfreq's most frequent English and Spanish words count as real words."""


@cache
def known_words() -> frozenset[str]:
    """The most frequent English and Spanish words (wordfreq), normalised as messages are:
    a real word is never "corrected" into a lexicon word one edit away ("report" is not
    "deport", "policy" not "police"). Loaded once per process (about 0.3 s)."""
    return frozenset(
        token
        for language in ("en", "es")
        for word in top_n_list(language, KNOWN_WORDS_PER_LANGUAGE)
        for token in normalize(word)
    )


@dataclass(frozen=True, slots=True)
class _Term:
    label: str
    """A category, or a cue group's name."""
    words: tuple[str, ...]
    weight: int

    def matches_at(self, tokens: list[str], start: int) -> bool:
        """Whether the words after the first follow at `start` (the first is checked by
        `first_word_matches` when the term is looked up)."""
        if start + len(self.words) > len(tokens):
            return False
        for offset in range(1, len(self.words)):
            if not _word_matches(self.words[offset], tokens[start + offset]):
                return False
        return True

    def first_word_matches(self, token: str) -> bool:
        return _word_matches(self.words[0], token)


def _word_matches(word: str, token: str) -> bool:
    return token.startswith(word[:-1]) if word.endswith("*") else token == word


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _within_one_edit(a: str, b: str) -> bool:
    """Optimal string alignment distance <= 1 (one insert, delete, substitute or swap)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


class _Speller:
    """Maps a misspelled word to the lexicon word (or stem) it is one edit away from."""

    def __init__(self, vocabulary: Iterable[str], stems: Iterable[str]) -> None:
        self._known = known_words() | PROTECTED_WORDS
        self._words = {w for w in vocabulary if len(w) >= _FUZZY_MIN_LENGTH}
        self._stems = {s for s in stems if len(s) >= _STEM_MIN_LENGTH}
        self._stem_lengths = sorted({len(s) for s in self._stems})
        self._index: dict[str, set[str]] = defaultdict(set)
        for entry in self._words | self._stems:
            for variant in {entry} | _deletes(entry):
                self._index[variant].add(entry)
        self.correct = lru_cache(maxsize=8192)(self._correct)

    def _candidates(self, query: str) -> set[str]:
        found: set[str] = set()
        for variant in {query} | _deletes(query):
            found |= self._index.get(variant, set())
        return found

    def _correct(self, token: str) -> str:
        if len(token) < _FUZZY_MIN_LENGTH or token in self._words or token in self._known:
            return token
        if any(token.startswith(stem) for stem in self._stems):
            return token
        for word in sorted(self._candidates(token) & self._words):
            if _within_one_edit(token, word):
                return word
        for length in self._stem_lengths:
            for cut in (length - 1, length, length + 1):
                prefix = token[:cut]
                for stem in sorted(self._candidates(prefix) & self._stems):
                    if len(stem) == length and _within_one_edit(prefix, stem):
                        return stem + token[cut:]
        return token


def _compile(entries: Iterable[tuple[str, int, str]]) -> dict[str, list[_Term]]:
    """Index terms by their first word (stems under their prefix) for a quick scan."""
    index: dict[str, list[_Term]] = defaultdict(list)
    for label, weight, text in entries:
        words = tuple(text.split())
        index[words[0].rstrip("*")].append(_Term(label, words, weight))
    for terms in index.values():
        terms.sort(key=lambda t: -len(t.words))
    return index


@dataclass(frozen=True, slots=True)
class Detection:
    category: Category
    confidence: float
    scores: dict[str, int]


MAX_SPELLED = 200
"""Words of a message checked for misspellings (about 0.25 ms each when new): 700 made-up words
took 0.17 s, a visitor's whole story rarely has 200."""


class OfflineClassifier:
    """Scores each category by the cue terms found; `general` when nothing points anywhere."""

    def __init__(self) -> None:
        entries = [
            (category, weight, term)
            for category, weighted in LEXICON.items()
            for weight, terms in weighted.items()
            for term in terms
        ]
        cues = [(group, 1, term) for group, terms in CUE_GROUPS.items() for term in terms]
        terms, cue_terms = _compile(entries), _compile(cues)
        # Words recur from message to message: each one's lookups are done once.
        self._term_candidates = lru_cache(maxsize=16384)(partial(self._candidates, terms))
        self._cue_candidates = lru_cache(maxsize=16384)(partial(self._candidates, cue_terms))
        every_word = [w for _, _, t in entries + cues for w in t.split()]
        self._prefix_lengths = sorted(
            {len(w) - 1 for w in every_word if w.endswith("*")}, reverse=True
        )
        self._speller = _Speller(
            (w for w in every_word if not w.endswith("*")),
            (w[:-1] for w in every_word if w.endswith("*")),
        )

    def _candidates(self, index: dict[str, list[_Term]], token: str) -> tuple[_Term, ...]:
        found = list(index.get(token, ()))
        for length in self._prefix_lengths:
            if len(token) > length:
                found.extend(index.get(token[:length], ()))
        return tuple(term for term in found if term.first_word_matches(token))

    def _matches(
        self, candidates: Callable[[str], tuple[_Term, ...]], tokens: list[str]
    ) -> list[_Term]:
        """Longest terms first; a word belongs to at most one term."""
        hits = [
            (len(term.words), start, term)
            for start, token in enumerate(tokens)
            for term in candidates(token)
            if len(term.words) == 1 or term.matches_at(tokens, start)
        ]
        hits.sort(key=lambda hit: (-hit[0], hit[1]))
        used: set[int] = set()
        matched: list[_Term] = []
        for length, start, term in hits:
            span = set(range(start, start + length))
            if used.isdisjoint(span):
                used |= span
                matched.append(term)
        return matched

    def classify(self, text: str, *, correct_spelling: bool = True) -> Detection:
        """The best category with its confidence (0-1) and every category's score. Without
        `correct_spelling`, words count only as typed: a name ("Castro", "Victor") is not
        read as the lexicon word one edit away ("casero", "evictor")."""
        tokens = normalize(text)
        if correct_spelling:  # the first words: a story's misspellings are early enough
            tokens = [self._speller.correct(t) for t in tokens[:MAX_SPELLED]] + tokens[MAX_SPELLED:]
        scores: dict[str, int] = defaultdict(int)
        for term in self._matches(self._term_candidates, tokens):
            scores[term.label] += term.weight
        groups = {term.label for term in self._matches(self._cue_candidates, tokens)}
        for category, (first, second), weight in COMBINATIONS:
            if first in groups and second in groups:
                scores[category] += weight
                if (first, second) in ABSORBED:
                    giver, taker = ABSORBED[first, second]
                    scores[taker] += scores.pop(giver, 0)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        if not ranked or ranked[0][1] < _MIN_EVIDENCE:
            return Detection(GENERAL, 0.0, dict(scores))
        best, best_score = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0
        margin = (best_score - runner_up) / best_score
        strength = min(best_score, 10) / 10
        confidence = round(0.35 + 0.6 * margin * strength + 0.05 * strength, 2)
        return Detection(best, confidence, dict(scores))  # type: ignore[arg-type]
