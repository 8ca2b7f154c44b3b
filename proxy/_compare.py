"""Comparing a control (primary) and a candidate (shadow) reply, in the shape of GitHub's Scientist.

Observations are immutable. The hooks (`clean`, `compare`, `ignore`) are plain callables with
defaults driven by the field rules in `shadow_rules.toml` (data, not code); a hook that raises is
reported to `raised(operation, error)` and counted, never propagated. Unlike Scientist, the
caller has already answered the visitor before any of this runs.

Values (`[[values]]` rules): each contact value either reply carries (legacy's `contact`, the
new engine's shadow replies) is compared by its keyed hash (`common.ValueDigest`), so a ZIP taken
wrongly is a `zip_value` mismatch even when both sides "collected" a ZIP; only the outcome is
kept, never a value or its hash. `compare_leads` does the same for a conversation's final lead.

Noise (Diffy's idea): when a twin observation exists (the new engine answering the same turn a
second time), a field on which the twin disagrees with its sibling is noise for that turn, and a
primary/candidate difference on it is reported as `noise`, not as a mismatch.
"""

from __future__ import annotations

import difflib
import hmac
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import msgspec

from common import ValueDigest, ValueField

Rule = Literal["equal", "set_equal", "similar"]
Outcome = Literal["match", "mismatch", "noise", "missing"]
DEFAULT_RULES = Path(__file__).with_name("shadow_rules.toml")
_WORD = re.compile(r"[a-z0-9']+")


class FieldRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    keys: list[str]
    rule: Rule = "equal"
    threshold: float = 0.0


class Alias(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Two replies that differ in form but mean the same: when legacy's reply has every
    key/value of `legacy` and the new engine's has every one of `new`, the `fields` agree."""

    fields: list[str]
    legacy: dict[str, Any]
    new: dict[str, Any]

    def matches(self, legacy: Observation, new: Observation) -> bool:
        return _has(legacy.body, self.legacy) and _has(new.body, self.new)


def _has(body: Any, expected: dict[str, Any]) -> bool:
    return isinstance(body, dict) and all(
        key in body and body[key] == value for key, value in expected.items()
    )


class ValueRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One contact value compared by keyed hash: reported as `name`, found at the first of
    `keys` (a dotted path into the reply, `contact.zip`), normalised as `value` says."""

    name: str
    keys: list[str]
    value: ValueField


class Rename(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Legacy calls a value of `field` by another name (`legacy`) than the new engine (`new`):
    a step legacy calls `zipcode` is the new engine's `zip`."""

    field: str
    legacy: Any
    new: Any


class ShadowRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fields: list[FieldRule]
    aliases: list[Alias] = msgspec.field(default_factory=list)
    values: list[ValueRule] = msgspec.field(default_factory=list)
    renames: list[Rename] = msgspec.field(default_factory=list)


def dotted(body: Any, path: str) -> Any:
    """`body["contact"]["zip"]` for `contact.zip`; None where the path is not there."""
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            return None
        body = body[part]
    return body


def load_rules(path: str | Path | None = None) -> ShadowRules:
    """Raises ValueError naming the file when it is not valid rules."""
    source = Path(path) if path else DEFAULT_RULES
    try:
        return msgspec.toml.decode(source.read_bytes(), type=ShadowRules)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"shadow rules {source}: {exc}") from None


class Observation(msgspec.Struct, frozen=True):
    """One backend's answer to one turn (which side it was on is its place in `compare`)."""

    backend: str
    status: int
    body: Any = None
    """The decoded JSON reply (None when it was not JSON or the request failed)."""
    error: str | None = None
    partial: bool = False
    """A recorded reply (a transcript's): a field it does not carry is not compared."""


class FieldResult(msgspec.Struct, frozen=True):
    outcome: Outcome
    primary: Any = None
    candidate: Any = None
    similarity: float | None = None


def similarity(a: str, b: str) -> float:
    """Word-level similarity (0..1): LLM text never matches byte for byte."""
    left, right = _WORD.findall(a.lower()), _WORD.findall(b.lower())
    if not left and not right:
        return 1.0
    return round(difflib.SequenceMatcher(None, left, right, autojunk=False).ratio(), 3)


def extract(rule: FieldRule, observation: Observation) -> Any:
    for key in rule.keys:
        if key == "$status":
            return observation.status
        if isinstance(observation.body, dict) and key in observation.body:
            value = observation.body[key]
            if rule.rule == "set_equal":
                items = value.keys() if isinstance(value, dict) else value or []
                return sorted(str(item) for item in items)
            return value
    return None


def same(rule: FieldRule, left: Any, right: Any) -> tuple[bool, float | None]:
    if rule.rule == "similar":
        score = similarity(str(left or ""), str(right or ""))
        return score >= rule.threshold, score
    return left == right, None


class Experiment:
    """Compares observations field by field; `raised` receives every hook failure."""

    def __init__(
        self,
        rules: ShadowRules,
        raised: Callable[[str, Exception], None],
        ignore: Callable[[Observation, Observation], bool] | None = None,
        digest: ValueDigest | None = None,
    ) -> None:
        self._rules = rules
        self._raised = raised
        self._ignore = ignore
        self._digest = digest
        self._renames = {
            (rename.field, _frozen(rename.legacy)): rename.new for rename in rules.renames
        }

    def compare(
        self, primary: Observation, candidate: Observation, twin: Observation | None = None
    ) -> dict[str, FieldResult] | None:
        """None when the comparison is ignored or failed (the failure went to `raised`)."""
        try:
            if self._ignore is not None and self._ignore(primary, candidate):
                return None
        except Exception as exc:  # a hook never raises into the gateway
            self._raised("ignore", exc)
            return None
        try:
            sibling = candidate if primary.backend != "new" else primary
            agreed = self._aliased_fields(primary, candidate)
            results = {
                rule.name: FieldResult("match", extract(rule, primary), extract(rule, candidate))
                if rule.name in agreed
                else self._field(
                    rule,
                    self._renamed(rule, primary),
                    self._renamed(rule, candidate),
                    sibling,
                    twin,
                )
                for rule in self._rules.fields
            }
            results.update(self._values(primary.body, candidate.body))
            return results
        except Exception as exc:
            self._raised("compare", exc)
            return None

    def compare_leads(
        self, legacy: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> dict[str, FieldResult] | None:
        """A conversation's leads (`{"name", "phone", "email", "zip"}` objects; None: that side
        took no lead; `{}`: it took one whose values its reply does not carry): `lead_taken`
        (both or neither), then, when both carry values, each value by keyed hash under the
        `[[values]]` rules' names, where a value only one lead has is a mismatch (the leads
        differ). None if the comparison failed."""
        try:
            fields = {"lead_taken": FieldResult("match" if (legacy is None) == (new is None)
                                                else "mismatch")}  # fmt: skip
            if not legacy or not new or self._digest is None:  # `{}`: taken, values not carried
                return fields
            for rule in self._rules.values:
                fields[rule.name] = _value_outcome(
                    self._digest,
                    rule.value,
                    legacy.get(rule.value),
                    new.get(rule.value),
                    one_sided="mismatch",
                )
            return fields
        except Exception as exc:
            self._raised("compare", exc)
            return None

    def _values(self, primary: Any, candidate: Any) -> dict[str, FieldResult]:
        if self._digest is None:
            return {}
        results = {}
        for rule in self._rules.values:
            left = next((v for k in rule.keys if (v := dotted(primary, k)) is not None), None)
            right = next((v for k in rule.keys if (v := dotted(candidate, k)) is not None), None)
            results[rule.name] = _value_outcome(self._digest, rule.value, left, right)
        return results

    def _renamed(self, rule: FieldRule, observation: Observation) -> Observation:
        """Legacy's reply with its names for `rule`'s field put in the new engine's terms."""
        if observation.backend != "legacy" or not self._renames:
            return observation
        value = extract(rule, observation)
        new = self._renames.get((rule.name, _frozen(value)))
        if new is None or not isinstance(observation.body, dict):
            return observation
        body = {**observation.body, **{key: new for key in rule.keys if key in observation.body}}
        return msgspec.structs.replace(observation, body=body)

    def _aliased_fields(self, primary: Observation, candidate: Observation) -> set[str]:
        """The fields the rules' aliases say agree for this legacy/new pair (none otherwise)."""
        legacy, new = (primary, candidate) if primary.backend == "legacy" else (candidate, primary)
        if legacy.backend != "legacy" or new.backend != "new":
            return set()
        return {
            field
            for alias in self._rules.aliases
            if alias.matches(legacy, new)
            for field in alias.fields
        }

    @staticmethod
    def _field(
        rule: FieldRule,
        primary: Observation,
        candidate: Observation,
        sibling: Observation,
        twin: Observation | None,
    ) -> FieldResult:
        left, right = extract(rule, primary), extract(rule, candidate)
        if (left is None and right is None) or _absent(rule, primary) or _absent(rule, candidate):
            return FieldResult("missing")
        agree, score = same(rule, left, right)
        outcome: Outcome = "match" if agree else "mismatch"
        if not agree and twin is not None and twin.error is None:
            twin_agrees, _ = same(rule, extract(rule, sibling), extract(rule, twin))
            outcome = "mismatch" if twin_agrees else "noise"
        if rule.rule == "similar":  # reply text is personal data: only its score is kept
            return FieldResult(outcome, similarity=score)
        return FieldResult(outcome, left, right)


def _absent(rule: FieldRule, observation: Observation) -> bool:
    """A recorded reply that does not carry the field at all (not the same as null)."""
    if not observation.partial:
        return False
    body = observation.body
    return not any(
        key == "$status" or (isinstance(body, dict) and key in body) for key in rule.keys
    )


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _value_outcome(
    digest: ValueDigest, field: ValueField, left: Any, right: Any, one_sided: Outcome = "missing"
) -> FieldResult:
    """match / mismatch of two values by keyed hash; `missing` when neither has one,
    `one_sided` when only one does (on a turn the other side may ask for it later; on a lead it
    is a difference). No value or hash is kept."""
    mine, theirs = digest.digest(field, left), digest.digest(field, right)
    if mine is None and theirs is None:
        return FieldResult("missing")
    if mine is None or theirs is None:
        return FieldResult(one_sided)
    return FieldResult("match" if hmac.compare_digest(mine, theirs) else "mismatch")
