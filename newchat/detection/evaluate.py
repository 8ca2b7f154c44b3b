"""Accuracy report of the offline classifier on a labelled TSV set (`category<TAB>text` lines).

Usage: python -m newchat.detection.evaluate tests/data/detection_holdout.tsv [--errors]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from newchat.detection._offline import OfflineClassifier


def load_cases(path: Path) -> list[tuple[str, str]]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, text = line.split("\t", 1)
            cases.append((label, text))
    return cases


def evaluate(cases: list[tuple[str, str]]) -> tuple[float, Counter[tuple[str, str]]]:
    classifier = OfflineClassifier()
    confusion: Counter[tuple[str, str]] = Counter()
    for label, text in cases:
        confusion[(label, classifier.classify(text).category)] += 1
    correct = sum(n for (label, got), n in confusion.items() if label == got)
    return correct / len(cases), confusion


def main(argv: list[str]) -> int:
    show_errors = "--errors" in argv
    for name in [a for a in argv if not a.startswith("--")]:
        cases = load_cases(Path(name))
        accuracy, confusion = evaluate(cases)
        print(f"{name}: {accuracy:.1%} of {len(cases)} cases")
        for (label, got), n in sorted(confusion.items(), key=lambda kv: -kv[1]):
            if label != got:
                print(f"  {label} -> {got}: {n}")
        if show_errors:
            classifier = OfflineClassifier()
            for label, text in cases:
                d = classifier.classify(text)
                if d.category != label:
                    print(f"  [{label} -> {d.category}] {text!r} {d.scores}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
