"""Merging a backup's leads into the live ones, so a restore never loses or rolls back a lead.

A lead lives in exactly one place (`newchat.leads` keeps it so): queued (`lead_queue`), waiting
out a retry (`lead_retry`), claimed (`lead_processing`), failed (`lead_failed`) or submitted (a
`lead_done:<id>` marker). Those places are ordered by how far a lead got:

    queued < retry < processing < failed < done

and a lead present on either side ends in the furthest of its states, in one place only: a lead
only in the backup comes back, a lead only live stays, a lead the backup shows further along
moves on (a submitted lead never goes back to the queue to be sent twice), holding the live
copy's details (a visitor's correction since the backup stays). Where both sides hold the lead
in the same state the live copy wins. A lead a worker holds now (`lead_processing`) is left to
the worker, whatever the backup says: moving it would leave it in two places once the worker
settles it. Pure functions;
`rollback._restore` reads the keys and applies the result in one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import msgspec


class LeadState(IntEnum):
    """How far a lead got; a restore keeps the furthest (issue 15's order)."""

    QUEUED = 1
    RETRY = 2
    PROCESSING = 3
    FAILED = 4
    DONE = 5


@dataclass(frozen=True)
class LeadKeys:
    """The lead keys' contents, live or from a backup."""

    queue: tuple[bytes, ...] = ()
    """`lead_queue`, head first (`LRANGE 0 -1`); workers take from the tail."""
    retry: Mapping[bytes, float] = field(default_factory=dict)
    """`lead_retry`: lead JSON -> when it may run again (epoch seconds)."""
    processing: Mapping[str, bytes] = field(default_factory=dict)
    """`lead_processing`: lead id -> claim envelope."""
    failed: Mapping[str, bytes] = field(default_factory=dict)
    """`lead_failed`: lead id -> failure envelope."""
    done: frozenset[str] = frozenset()
    """Ids with a `lead_done:<id>` marker."""


@dataclass(frozen=True)
class Place:
    state: LeadState
    value: bytes = b""
    """The queue or retry member, or the hash field's value; empty for DONE."""
    score: float = 0.0
    """The retry due time, for RETRY."""


@dataclass
class LeadChanges:
    """What to do to the live keys; applied together, in one transaction."""

    queue_remove: list[bytes] = field(default_factory=list)
    queue_append: list[bytes] = field(default_factory=list)
    """Pushed at the tail in this order: backed-up leads are claimed before newer live ones."""
    retry_remove: list[bytes] = field(default_factory=list)
    retry_add: dict[bytes, float] = field(default_factory=dict)
    processing_remove: list[str] = field(default_factory=list)
    processing_set: dict[str, bytes] = field(default_factory=dict)
    failed_remove: list[str] = field(default_factory=list)
    failed_set: dict[str, bytes] = field(default_factory=dict)
    done_restore: list[str] = field(default_factory=list)
    """Lead ids whose `lead_done` marker comes back from the backup."""

    def __bool__(self) -> bool:
        return any(bool(value) for value in vars(self).values())


class LeadCounts(msgspec.Struct):
    """Per lead id. `lost` is live leads that would end nowhere: zero by construction, checked."""

    added: int = 0
    """Only in the backup: brought back."""
    kept: int = 0
    """Live and at least as far along as in the backup: unchanged."""
    advanced: int = 0
    """Live, but further along in the backup: moved on to the backup's state."""
    lost: int = 0
    final: dict[str, int] = msgspec.field(default_factory=dict)
    """Leads per state after the restore (those the backup or the live keys name)."""


class _Id(msgspec.Struct):
    id: str


_id_decoder = msgspec.json.Decoder(_Id)


def lead_id(raw: bytes) -> str:
    """The `id` of a queued or retrying lead's JSON; an unreadable entry is its own lead,
    named by its SHA-1 as the queue names it when it fails it (`corrupt-<sha1>`)."""
    try:
        return _id_decoder.decode(raw).id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return f"corrupt-{hashlib.sha1(raw, usedforsecurity=False).hexdigest()}"


def places(data: LeadKeys) -> dict[str, list[Place]]:
    """Every lead id with where it is (normally one place)."""
    found: dict[str, list[Place]] = {}

    def put(lead: str, place: Place) -> None:
        found.setdefault(lead, []).append(place)

    for raw in data.queue:
        put(lead_id(raw), Place(LeadState.QUEUED, raw))
    for raw, due in data.retry.items():
        put(lead_id(raw), Place(LeadState.RETRY, raw, due))
    for lead, envelope in data.processing.items():
        put(lead, Place(LeadState.PROCESSING, envelope))
    for lead, envelope in data.failed.items():
        put(lead, Place(LeadState.FAILED, envelope))
    for lead in data.done:
        put(lead, Place(LeadState.DONE))
    return found


def merge(backup: LeadKeys, live: LeadKeys) -> tuple[LeadChanges, LeadCounts]:
    """The changes that bring every lead to its furthest state, and the counts to report."""
    backed_up, current = places(backup), places(live)
    changes, counts = LeadChanges(), LeadCounts()
    for lead in _ordered(backed_up, current):
        old, now = backed_up.get(lead, []), current.get(lead, [])
        best_old = max(old, key=lambda p: p.state, default=None)
        best_now = max(now, key=lambda p: p.state, default=None)
        held = best_now is not None and best_now.state is LeadState.PROCESSING
        if best_old is None or held or (best_now is not None and best_now.state >= best_old.state):
            final, from_backup = best_now, False  # a lead a worker holds now is the worker's
        else:
            final, from_backup = best_old, True
            if best_now is not None:
                final = _with_live_content(final, best_now)
        if final is None:  # named by neither side: cannot happen, the ids come from them
            continue
        for place in now:
            if place is not final:
                _remove(changes, lead, place)
        if from_backup:
            _add(changes, lead, final)
        if best_now is None:
            counts.added += 1
        elif from_backup:
            counts.advanced += 1
        else:
            counts.kept += 1
        state = final.state.name.lower()
        counts.final[state] = counts.final.get(state, 0) + 1
    remaining = places(after(live, changes))
    counts.lost = sum(1 for lead in current if lead not in remaining)
    return changes, counts


_CARRIED = ("attempts", "last_error")
"""What a lead's further state in the backup brings with it: how often it was tried and why it
failed. Everything else (a visitor's correction: `LeadQueue.amend`) is the live copy's."""


def _with_live_content(final: Place, live: Place) -> Place:
    """The backup's further state (`final`) holding the live copy's lead, with the backup's
    attempt count and last error: a correction made since the backup is never undone. Unchanged
    when either side cannot be read, or the live copy holds no lead (done)."""
    if live.state not in (LeadState.QUEUED, LeadState.RETRY) or final.state is LeadState.DONE:
        return final
    try:
        current = msgspec.json.decode(live.value)
        outer = msgspec.json.decode(final.value)
    except msgspec.DecodeError:
        return final
    wrapped = final.state in (LeadState.PROCESSING, LeadState.FAILED)
    backed_up = outer.get("lead") if wrapped and isinstance(outer, dict) else outer
    if not isinstance(current, dict) or not isinstance(backed_up, dict):
        return final
    lead = current | {k: backed_up[k] for k in _CARRIED if k in backed_up}
    if wrapped:
        return Place(final.state, msgspec.json.encode(outer | {"lead": lead}), final.score)
    return Place(final.state, msgspec.json.encode(lead), final.score)


def after(live: LeadKeys, changes: LeadChanges) -> LeadKeys:
    """The lead keys once `changes` are applied to `live`, as Redis would apply them."""
    queue = list(live.queue)
    for raw in changes.queue_remove:
        queue.remove(raw)
    retry = {k: v for k, v in live.retry.items() if k not in set(changes.retry_remove)}
    processing = {k: v for k, v in live.processing.items() if k not in changes.processing_remove}
    failed = {k: v for k, v in live.failed.items() if k not in changes.failed_remove}
    return LeadKeys(
        queue=(*queue, *changes.queue_append),
        retry=retry | changes.retry_add,
        processing=processing | changes.processing_set,
        failed=failed | changes.failed_set,
        done=live.done | frozenset(changes.done_restore),
    )


def _ordered(*sides: dict[str, list[Place]]) -> Iterable[str]:
    """Lead ids in the backup's order first (so the queue keeps its claim order), then live's."""
    seen: dict[str, None] = {}
    for side in sides:
        seen.update(dict.fromkeys(side))
    return seen


def _remove(changes: LeadChanges, lead: str, place: Place) -> None:
    if place.state is LeadState.QUEUED:
        changes.queue_remove.append(place.value)
    elif place.state is LeadState.RETRY:
        changes.retry_remove.append(place.value)
    elif place.state is LeadState.PROCESSING:
        changes.processing_remove.append(lead)
    elif place.state is LeadState.FAILED:
        changes.failed_remove.append(lead)
    # a live DONE marker is never removed: it is the furthest state


def _add(changes: LeadChanges, lead: str, place: Place) -> None:
    if place.state is LeadState.QUEUED:
        changes.queue_append.append(place.value)
    elif place.state is LeadState.RETRY:
        changes.retry_add[place.value] = place.score
    elif place.state is LeadState.PROCESSING:
        changes.processing_set[lead] = place.value
    elif place.state is LeadState.FAILED:
        changes.failed_set[lead] = place.value
    else:
        changes.done_restore.append(lead)
