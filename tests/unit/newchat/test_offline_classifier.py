from __future__ import annotations

from pathlib import Path

import pytest

from newchat import CATEGORIES
from newchat.detection import OfflineClassifier, normalize
from newchat.detection.evaluate import evaluate, load_cases

DATA = Path(__file__).parents[2] / "data"
SETS = sorted(DATA.glob("detection_*.tsv"))


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.stem)
def test_accuracy_is_at_least_95_percent_on_each_labelled_set(path: Path) -> None:
    cases = load_cases(path)
    assert len(cases) >= 60
    accuracy, _ = evaluate(cases)
    assert accuracy >= 0.95  # issue 14; the runbook asks for over 90 %


def test_labelled_sets_cover_every_category() -> None:
    labels = {label for path in SETS for label, _ in load_cases(path)}
    assert labels == set(CATEGORIES)


def test_normalize_strips_accents_and_punctuation() -> None:
    assert normalize("¿Mi esposo está en DEPORTACIÓN?") == [
        "mi",
        "esposo",
        "esta",
        "en",
        "deportacion",
    ]


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("devorce papers", "family"),  # one letter swapped
        ("bankrupcy help", "bankruptcy"),
        ("malpractise by my doctor", "medical_malpractice"),
        ("who am i talking to", "general"),  # "talking" must not become "stalking"
        ("I was arrested for drunk driving", "dui"),  # DUI outranks the generic arrest
        ("real estate closing problem", "real_estate"),  # "estate" inside "real estate"
        ("hurt my back lifting boxes at work", "workers_comp"),  # injury + work context
    ],
)
def test_specific_behaviours(text: str, category: str) -> None:
    assert OfflineClassifier().classify(text).category == category


def test_nothing_recognisable_is_general_with_zero_confidence() -> None:
    result = OfflineClassifier().classify("hello there")
    assert (result.category, result.confidence) == ("general", 0.0)


def test_confidence_is_higher_for_a_clear_message_than_an_ambiguous_one() -> None:
    classifier = OfflineClassifier()
    clear = classifier.classify("I need a divorce and custody of my kids")
    mixed = classifier.classify("fired after I got hurt, and my landlord is evicting me")
    assert 0 < mixed.confidence < clear.confidence <= 1


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # blind helpers' attacks: nursing homes in Spanish as in English, a road accident that
        # is no accident at work, dog bites, a misspelt "run over", overtime in Spanish
        ("a mi mama la golpearon en el asilo de ancianos", "medical_malpractice"),
        ("mi abuelita esta en un asilo y la tienen descuidada", "medical_malpractice"),
        ("me accidente en una moto en la carretera un carro se me atraveso", "personal_injury"),
        ("me accidente en el trabajo y me lastime la espalda", "workers_comp"),
        ("got bit by my neighbors pitbull", "personal_injury"),
        ("me atropeyo un carro cuando cruzaba la calle", "personal_injury"),
        ("mi patron no me quiere pagar las horas extra", "employment"),
        ("pedi asilo politico y me lo negaron", "immigration"),
    ],
)
def test_kinds_blind_helpers_found(text: str, category: str) -> None:
    assert OfflineClassifier().classify(text).category == category
