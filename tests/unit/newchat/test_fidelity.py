"""The lead fidelity evaluator plays a case through the real conversation and names each field
it got wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from newchat import Metrics
from newchat.detection import CategoryDetector, OfflineClassifier
from newchat.fidelity import ExpectedLead, FidelityCase, evaluate, load_cases, main, summary

DATA = Path(__file__).parents[2] / "data"

ANN = ExpectedLead("Ann", "Lee", "5552017788", "ann@example.com", "90210", "personal_injury")


def case(*turns: str, expect: ExpectedLead = ANN) -> FidelityCase:
    return FidelityCase(id="t", lang="en", turns=list(turns), expect=expect)


def test_a_clean_conversation_queues_the_expected_lead() -> None:
    [outcome] = evaluate(
        [
            case(
                "I was rear-ended on the freeway and hurt my neck",
                "Ann Lee",
                "555-201-7788",
                "ann@example.com",
                "90210",
                "yes",
            )
        ]
    )
    assert outcome.lead is not None
    assert outcome.wrong == {}
    assert outcome.contact_right


def test_each_wrong_field_is_named_with_what_was_expected_and_got() -> None:
    other = ExpectedLead("Ann", "Lee", "5552017789", "ann@example.com", "90211", "family")
    [outcome] = evaluate(
        [
            case(
                "I was rear-ended on the freeway and hurt my neck",
                "Ann Lee, 555-201-7788, ann@example.com, 90210",
                "yes",
                expect=other,
            )
        ]
    )
    assert outcome.wrong == {
        "phone": ("5552017789", "5552017788"),
        "zip": ("90211", "90210"),
        "category": ("family", "personal_injury"),
    }
    assert not outcome.contact_right


def test_an_unfinished_conversation_counts_as_no_lead() -> None:
    outcomes = evaluate([case("I was rear-ended on the freeway and hurt my neck", "Ann Lee")])
    assert outcomes[0].lead is None
    assert set(outcomes[0].wrong) == {
        "first_name",
        "last_name",
        "phone",
        "email",
        "zip",
        "category",
    }
    assert summary("set", outcomes)[0].startswith("set: 0.0% of 1 leads")
    assert summary("set", outcomes)[0].endswith("1 never queued")


def test_the_committed_sets_load_and_run(capsys: object) -> None:
    sets = sorted(Path("tests/data").glob("lead_fidelity_*.json"))
    assert sets
    for path in sets:
        assert len(load_cases(path)) >= 60
    assert main([str(sets[0])]) == 0


def test_trace_prints_one_case_turn_by_turn(capsys: pytest.CaptureFixture[str]) -> None:
    path = "tests/data/lead_fidelity_own.json"
    first = load_cases(Path(path))[0]
    assert main([path, "--trace", first.id]) == 0
    printed = capsys.readouterr().out
    assert printed.count("  > ") == len(first.turns)
    assert f"  > {first.turns[0]}" in printed
    assert "[confirm]" in printed


def test_no_name_in_the_fidelity_sets_reads_as_a_matter_when_typed_alone() -> None:
    """The conversation refuses a name-step answer the classifier reads as a matter ("Dog
    Bite"): none of the 300-odd names visitors gave in the labelled sets may be refused."""
    names = {
        f"{case.expect.first_name} {case.expect.last_name}"
        for path in sorted(DATA.glob("lead_fidelity_*.json"))
        for case in load_cases(path)
    }
    detector = CategoryDetector(OfflineClassifier(), Metrics())
    assert len(names) > 300
    assert [name for name in sorted(names) if detector.names_a_matter(name)] == []
    assert detector.names_a_matter("Dog Bite")
    assert detector.names_a_matter("Drunk Driving")
