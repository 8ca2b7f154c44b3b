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
    assert "; 1 never queued; " in summary("set", outcomes)[0]


def test_replies_in_another_language_than_the_visitors_are_counted() -> None:
    spanish = FidelityCase(
        id="t",
        lang="es",
        turns=["I was rear-ended on the freeway and hurt my neck", "Me llamo Ana Lee, gracias"],
        expect=ANN,
    )
    [outcome] = evaluate([spanish])
    assert (outcome.replies_in_language, outcome.replies) == (1, 2)
    assert summary("set", [outcome])[0].endswith("50.0% of 2 replies in the visitor's language")


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


@pytest.mark.parametrize("path", sorted(DATA.glob("lead_fidelity_*.json")), ids=lambda p: p.stem)
def test_each_labelled_set_keeps_its_leads_right_and_its_replies_in_the_visitors_language(
    path: Path,
) -> None:
    """Guards what the README reports: every set at 100 % contact details now (98 % is the
    floor the issue set), and replies in the visitor's language."""
    outcomes = evaluate(load_cases(path))
    assert sum(o.contact_right for o in outcomes) / len(outcomes) >= 0.98
    replies = sum(o.replies for o in outcomes)
    assert sum(o.replies_in_language for o in outcomes) / replies >= 0.99
