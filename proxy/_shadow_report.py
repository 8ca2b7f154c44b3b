"""`chatctl shadow report`: what the stored shadow comparisons say, and a plain verdict.

Agreement per field counts matches against real mismatches; differences the noise twin showed
too are counted apart as noise, never as disagreement. Intervals are Wilson score intervals
(95 %), honest at small samples and near 0 or 100 %.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping

import msgspec
from redis.asyncio import Redis

from common import keys, percentile, redis_errors
from proxy._shadow import ShadowResult

VALUE_THRESHOLD = 98.0
DEFAULT_THRESHOLDS = {
    "status": 99.0,
    "category": 95.0,
    "step": 95.0,
    "done": 99.0,
    **{f"{field}_value": VALUE_THRESHOLD for field in ("name", "phone", "email", "zip")},
    "lead_taken": VALUE_THRESHOLD,
}
"""Agreement a field needs (percent, where compared). Contact values by keyed hash: 98 % each,
on turns and on leads alike (issue 19: a wrong ZIP is a lost lead)."""
_decoder = msgspec.json.Decoder(ShadowResult)


class FieldAgreement(msgspec.Struct):
    field: str
    compared: int
    """Comparisons judged: matches, mismatches and noise."""
    missing: int
    """Comparisons where neither side (or, for a value on a turn, one side) held it."""
    matches: int
    mismatches: int
    noise: int
    agreement_pct: float | None
    ci95_pct: tuple[float, float] | None
    threshold_pct: float | None
    passes: bool | None


class Example(msgspec.Struct):
    conversation: str
    turn: int
    field: str
    primary: object
    candidate: object


class WorstConversation(msgspec.Struct):
    """A conversation by its hash, with how many comparisons disagreed and on which fields
    (names only: no values, no text)."""

    conversation: str
    mismatches: int
    fields: list[str]


class ShadowReport(msgspec.Struct):
    since_seconds: float | None
    conversations: int
    turns: int
    directions: dict[str, int]
    candidate_errors: int
    fields: list[FieldAgreement]
    leads: int
    """Conversations whose two leads were compared (results of kind `lead`)."""
    lead_fields: list[FieldAgreement]
    """Lead-level agreement: `lead_taken` (both sides took one, or neither), then each contact
    value, legacy's lead against the new engine's."""
    skipped: dict[str, int]
    """Turns not mirrored, by reason (busy, cpu); their conversations were compared no
    further."""
    similarity: dict[str, float | None]
    similarity_histogram: list[int]
    """Compared replies per tenth of similarity: [0, 0.1), [0.1, 0.2), ... [0.9, 1.0]."""
    worst: list[WorstConversation]
    """Up to 10 conversations with the most disagreements (turns and leads), worst first."""
    noise_baseline_pct: dict[str, float]
    noise_turns: int
    examples: list[Example]
    verdict: str
    reasons: list[str]


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    if total == 0:
        return (0.0, 100.0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (round(max(0.0, centre - margin) * 100, 1), round(min(1.0, centre + margin) * 100, 1))


async def load_results(redis: Redis, since_seconds: float | None) -> list[ShadowResult]:
    with redis_errors():
        start = "-" if since_seconds is None else str(int((time.time() - since_seconds) * 1000))
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(  # type: ignore[assignment]
            keys.SHADOW_RESULTS, min=start, max="+"
        )
        results = []
        for _, fields in entries:
            raw = fields.get(b"result")
            if raw is None:
                continue
            try:
                results.append(_decoder.decode(raw))
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
        return results


def build_report(
    results: Iterable[ShadowResult],
    *,
    since_seconds: float | None = None,
    thresholds: Mapping[str, float] | None = None,
    min_similarity: float = 0.5,
    min_turns: int = 30,
) -> ShadowReport:
    everything = list(results)
    items = [result for result in everything if result.kind == "turn"]
    leads = [result for result in everything if result.kind == "lead"]
    skipped = Counter(r.candidate_error or "?" for r in everything if r.kind == "skipped")
    limits = dict(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    lead_outcomes: dict[str, Counter[str]] = {}
    for result in leads:
        for name, field in result.fields.items():
            lead_outcomes.setdefault(name, Counter())[field.outcome] += 1
    lead_fields = [
        _agreement(name, counts, limits.get(name)) for name, counts in lead_outcomes.items()
    ]
    outcomes: dict[str, Counter[str]] = {}
    twin_noise: Counter[str] = Counter()
    similarities: list[float] = []
    examples: list[Example] = []
    for result in items:
        for name, field in result.fields.items():
            outcomes.setdefault(name, Counter())[field.outcome] += 1
            if field.outcome == "noise":
                twin_noise[name] += 1
            if field.similarity is not None:
                similarities.append(field.similarity)
            shown = field.primary is not None or field.candidate is not None  # values: none
            if field.outcome == "mismatch" and field.similarity is None and shown:
                examples.append(
                    Example(result.conversation, result.turn, name, field.primary, field.candidate)
                )
    noise_turns = sum(1 for r in items if r.twin)
    histogram = [0] * 10
    for score in similarities:
        histogram[min(int(score * 10), 9)] += 1
    fields = [_agreement(name, counts, limits.get(name)) for name, counts in outcomes.items()]
    median = percentile(similarities, 0.5)
    verdict, reasons = _verdict(fields, median, min_similarity, len(items), min_turns)
    reasons += [
        f"lead {f.field} agreement {f.agreement_pct}% < {f.threshold_pct}%"
        for f in lead_fields
        if f.passes is False
    ]
    if verdict == "ready for more traffic" and reasons:
        verdict = "not ready"
    return ShadowReport(
        since_seconds=since_seconds,
        conversations=len({r.conversation for r in items}),
        turns=len(items),
        directions=dict(Counter(f"{r.primary}->{r.candidate}" for r in items)),
        candidate_errors=sum(1 for r in items if r.candidate_error),
        fields=fields,
        leads=len(leads),
        lead_fields=lead_fields,
        skipped=dict(skipped),
        similarity={
            "p10": percentile(similarities, 0.1),
            "p50": median,
            "p90": percentile(similarities, 0.9),
            "mean": round(sum(similarities) / len(similarities), 3) if similarities else None,
        },
        noise_baseline_pct={
            name: round(100 * count / noise_turns, 1) for name, count in twin_noise.items()
        }
        if noise_turns
        else {},
        noise_turns=noise_turns,
        similarity_histogram=histogram,
        worst=_worst(everything),
        examples=examples[-10:][::-1],
        verdict=verdict,
        reasons=reasons,
    )


def _worst(results: list[ShadowResult], kept: int = 10) -> list[WorstConversation]:
    mismatches: Counter[str] = Counter()
    fields: dict[str, set[str]] = {}
    for result in results:
        for name, field in result.fields.items():
            if field.outcome == "mismatch":
                mismatches[result.conversation] += 1
                fields.setdefault(result.conversation, set()).add(name)
    return [
        WorstConversation(conversation, count, sorted(fields[conversation]))
        for conversation, count in mismatches.most_common(kept)
    ]


def _agreement(name: str, counts: Counter[str], threshold: float | None) -> FieldAgreement:
    matches, mismatches = counts["match"], counts["mismatch"]
    judged = matches + mismatches
    agreement = round(100 * matches / judged, 1) if judged else None
    interval = wilson(matches, judged) if judged else None
    passes = None if threshold is None or agreement is None else agreement >= threshold
    return FieldAgreement(
        field=name,
        compared=judged + counts["noise"],
        missing=counts["missing"],
        matches=matches,
        mismatches=mismatches,
        noise=counts["noise"],
        agreement_pct=agreement,
        ci95_pct=interval,
        threshold_pct=threshold,
        passes=passes,
    )


def _verdict(
    fields: list[FieldAgreement],
    median_similarity: float | None,
    min_similarity: float,
    turns: int,
    min_turns: int,
) -> tuple[str, list[str]]:
    if turns < min_turns:
        return "not enough data", [f"{turns} turns compared; at least {min_turns} needed"]
    reasons = [
        f"{f.field} agreement {f.agreement_pct}% < {f.threshold_pct}%"
        for f in fields
        if f.passes is False
    ]
    if median_similarity is not None and median_similarity < min_similarity:
        reasons.append(f"median reply similarity {median_similarity} < {min_similarity}")
    return ("ready for more traffic" if not reasons else "not ready"), reasons
