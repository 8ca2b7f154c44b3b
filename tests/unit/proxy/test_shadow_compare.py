"""The comparison rules, similarity, noise and the report's arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import ValueDigest, ValueField, parse_duration
from proxy import (
    Experiment,
    FieldResult,
    Observation,
    ShadowResult,
    build_report,
    load_rules,
    similarity,
    wilson,
)

RULES = load_rules()
DEFAULT_RULES = Path(__file__).resolve().parents[3] / "proxy" / "shadow_rules.toml"


def reply(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"category": "family", "step": "name", "done": False, "reply": "x"}
    return base | fields


def test_default_rules_are_the_documented_fields() -> None:
    assert [f.name for f in RULES.fields] == [
        "status", "category", "step", "done", "collected", "reply",
    ]  # fmt: skip


def test_bad_rules_file_is_named(tmp_path: object) -> None:
    bad = tmp_path / "rules.toml"  # type: ignore[operator]
    bad.write_text('[[fields]]\nname = "x"\nkeys = ["x"]\nrule = "roughly"\n')
    with pytest.raises(ValueError, match=r"rules\.toml"):
        load_rules(bad)


def test_similarity_is_word_level_and_symmetric() -> None:
    assert similarity("May I have your name?", "may i have your NAME") == 1.0
    assert similarity("", "") == 1.0
    low = similarity("What is your phone number?", "Thank you, we will call.")
    assert low < 0.3
    assert similarity("a b c d", "a b x d") == similarity("a b x d", "a b c d")


def test_fields_compare_by_their_rule_and_reply_text_is_never_kept() -> None:
    errors: list[str] = []
    experiment = Experiment(RULES, lambda op, exc: errors.append(op))
    legacy = Observation("legacy", 200, reply(contact={"name": "Ann Lee"}))
    new = Observation("new", 200, reply(collected=["name"], reply="x", category="criminal"))
    fields = experiment.compare(legacy, new)
    assert fields is not None
    assert fields["collected"].outcome == "match"  # an object's keys vs a list of names
    assert fields["category"].outcome == "mismatch"
    assert (fields["category"].primary, fields["category"].candidate) == ("family", "criminal")
    assert fields["reply"].outcome == "match"
    assert (fields["reply"].primary, fields["reply"].candidate) == (None, None)
    assert errors == []


def test_twin_disagreement_turns_a_mismatch_into_noise() -> None:
    experiment = Experiment(RULES, lambda op, exc: None)
    legacy = Observation("legacy", 200, reply(category="family"))
    new = Observation("new", 200, reply(category="criminal", step="phone"))
    twin = Observation("new", 200, reply(category="dui", step="phone"))
    fields = experiment.compare(legacy, new, twin)
    assert fields is not None
    assert fields["category"].outcome == "noise"  # the new engine disagrees with itself
    assert fields["step"].outcome == "mismatch"  # stable on the new side: a real difference


def test_hook_failures_are_counted_not_raised() -> None:
    raised: list[str] = []

    def bad_ignore(_: Observation, __: Observation) -> bool:
        raise RuntimeError("boom")

    experiment = Experiment(RULES, lambda op, exc: raised.append(op), ignore=bad_ignore)
    obs = Observation("legacy", 200, reply())
    assert experiment.compare(obs, obs) is None
    assert raised == ["ignore"]


def test_wilson_interval() -> None:
    assert wilson(0, 0) == (0.0, 100.0)
    low, high = wilson(95, 100)
    assert 88 < low < 95 < high < 98.5
    assert wilson(10, 10)[1] == 100.0


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200),
                                                ("7d", 604800), ("1h30m", 5400)])  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5", "1h 30x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_report_verdict_and_thresholds() -> None:
    experiment = Experiment(RULES, lambda op, exc: None)
    same = Observation("legacy", 200, reply())
    other = Observation("new", 200, reply(category="criminal"))
    results = []
    for turn in range(40):
        candidate = other if turn < 4 else Observation("new", 200, reply())
        fields = experiment.compare(same, candidate)
        assert fields is not None
        results.append(ShadowResult(0.0, f"c{turn % 8}", turn, "legacy", "new", fields, False))
    report = build_report(results)
    category = next(f for f in report.fields if f.field == "category")
    assert (category.matches, category.mismatches, category.agreement_pct) == (36, 4, 90.0)
    assert report.verdict == "not ready"
    assert report.conversations == 8
    relaxed = build_report(results, thresholds={"category": 85})
    assert relaxed.verdict == "ready for more traffic"
    assert build_report(results[:5]).verdict == "not enough data"


@pytest.mark.parametrize("legacy_first", [True, False], ids=["legacy primary", "new primary"])
def test_legacy_done_and_the_new_read_back_agree_by_the_documented_alias(
    legacy_first: bool,
) -> None:
    legacy = Observation("legacy", 200, reply(step="done", done=True))
    new = Observation("new", 200, reply(step="confirm", done=False))
    primary, candidate = (legacy, new) if legacy_first else (new, legacy)
    fields = Experiment(RULES, lambda *_: None).compare(primary, candidate)
    assert fields is not None
    assert (fields["step"].outcome, fields["done"].outcome) == ("match", "match")
    assert (fields["step"].primary, fields["step"].candidate) == (
        ("done", "confirm") if legacy_first else ("confirm", "done")
    )


@pytest.mark.parametrize(
    ("legacy_body", "new_body"),
    [
        (reply(step="done", done=True), reply(step="email", done=False)),  # not a read-back
        (reply(step="zip", done=False), reply(step="confirm", done=False)),  # legacy not done
        (reply(step="done", done=True), reply(step="confirm", done=True)),  # half the alias
    ],
)
def test_the_alias_covers_only_its_own_pair(
    legacy_body: dict[str, object], new_body: dict[str, object]
) -> None:
    fields = Experiment(RULES, lambda *_: None).compare(
        Observation("legacy", 200, legacy_body), Observation("new", 200, new_body)
    )
    assert fields is not None
    assert "mismatch" in (fields["step"].outcome, fields["done"].outcome)


def test_two_new_engine_replies_never_use_the_alias() -> None:
    fields = Experiment(RULES, lambda *_: None).compare(
        Observation("new", 200, reply(step="done", done=True)),
        Observation("new", 200, reply(step="confirm", done=False)),
    )
    assert fields is not None
    assert fields["step"].outcome == "mismatch"


DIGEST = ValueDigest("unit test key")


@pytest.mark.parametrize(
    ("field", "one", "other", "same"),
    [
        ("phone", "(555) 201-7788", "+1 555.201.7788", True),
        ("phone", "555-201-7788", "555-201-7789", False),
        ("zip", "90210-1234", "90210", True),
        ("zip", "90210", "90211", False),
        ("email", " Ann@Example.COM", "ann@example.com", True),
        ("email", "ann@example.com", "anne@example.com", False),
        ("name", "ANN   lee", "Ann Lee", True),
        ("name", "Ann Lee", "Ann Leigh", False),
    ],
)
def test_values_agree_by_their_normal_form(
    field: ValueField, one: str, other: str, same: bool
) -> None:
    assert (DIGEST.digest(field, one) == DIGEST.digest(field, other)) is same
    assert one not in (DIGEST.digest(field, one) or "")


def test_a_value_hash_depends_on_the_key() -> None:
    """Without the key a ZIP's hash cannot be looked up in a table of all 100,000 ZIPs."""
    assert DIGEST.digest("zip", "90210") != ValueDigest("another key").digest("zip", "90210")
    assert DIGEST.digest("zip", "") is None
    assert DIGEST.digest("zip", None) is None


def test_values_are_compared_by_hash_and_never_kept() -> None:
    experiment = Experiment(RULES, lambda op, exc: None, digest=DIGEST)
    legacy = Observation("legacy", 200, reply(contact={"zip": "12345", "phone": "5552017788"}))
    new = Observation("new", 200, reply(contact={"zip": "90210", "phone": "555-201-7788"}))
    fields = experiment.compare(legacy, new)
    assert fields is not None
    assert (fields["zip_value"].outcome, fields["phone_value"].outcome) == ("mismatch", "match")
    assert fields["email_value"].outcome == "missing"  # neither holds one yet
    assert all(
        (fields[name].primary, fields[name].candidate) == (None, None)
        for name in ("zip_value", "phone_value")
    )
    lead = experiment.compare_leads({"zip": "90210", "name": "Ann Lee"}, {"zip": "90210"})
    assert lead is not None
    # on a lead, a value only one side has is a difference (on a turn it may come later)
    assert (lead["zip_value"].outcome, lead["name_value"].outcome) == ("match", "mismatch")
    assert (lead["email_value"].outcome, lead["lead_taken"].outcome) == ("missing", "match")
    lost = experiment.compare_leads({"zip": "90210"}, None)  # the new engine took none
    assert lost == {"lead_taken": FieldResult("mismatch")}
    carried_none = experiment.compare_leads({"zip": "90210"}, {})  # took one, no values shown
    assert carried_none == {"lead_taken": FieldResult("match")}


def test_a_rename_puts_legacys_step_name_in_the_new_engines_terms(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        DEFAULT_RULES.read_text()
        + '\n[[renames]]\nfield = "step"\nlegacy = "zipcode"\nnew = "zip"\n'
    )
    experiment = Experiment(load_rules(rules), lambda op, exc: None)
    fields = experiment.compare(
        Observation("legacy", 200, reply(step="zipcode")),
        Observation("new", 200, reply(step="zip")),
    )
    assert fields is not None
    assert fields["step"].outcome == "match"
    other = experiment.compare(
        Observation("legacy", 200, reply(step="email")), Observation("new", 200, reply(step="zip"))
    )
    assert other is not None
    assert other["step"].outcome == "mismatch"
