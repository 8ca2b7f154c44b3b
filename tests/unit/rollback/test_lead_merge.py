"""The lead merge of a restore: every lead either side names ends in exactly one place, the
furthest of its states; nothing live is lost; the queue keeps its claim order."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from rollback._lead_merge import LeadKeys, LeadState, after, lead_id, merge, places


def raw(lead: str, version: str = "") -> bytes:
    return json.dumps({"id": lead, "v": version}).encode()


def keys_with(states: dict[str, LeadState], version: str = "") -> LeadKeys:
    """Lead keys holding each lead in one state, as the queue would store it."""
    by = {s: [lead for lead, state in states.items() if state is s] for s in LeadState}
    return LeadKeys(
        queue=tuple(raw(lead, version) for lead in by[LeadState.QUEUED]),
        retry={raw(lead, version): 100.0 for lead in by[LeadState.RETRY]},
        processing={lead: raw(lead, version) for lead in by[LeadState.PROCESSING]},
        failed={lead: raw(lead, version) for lead in by[LeadState.FAILED]},
        done=frozenset(by[LeadState.DONE]),
    )


def where(data: LeadKeys) -> dict[str, list[LeadState]]:
    return {lead: [p.state for p in found] for lead, found in places(data).items()}


def furthest(backed_up: LeadState | None, live: LeadState | None) -> LeadState:
    """The documented rule: the furthest state, except that a lead a worker holds now stays."""
    if live is LeadState.PROCESSING:
        return live
    return max(s for s in (backed_up, live) if s is not None)


LEADS = [f"lead{n}" for n in range(8)]
assignment = st.dictionaries(st.sampled_from(LEADS), st.sampled_from(list(LeadState)))


@given(backup=assignment, live=assignment)
def test_every_lead_ends_once_in_its_furthest_state(
    backup: dict[str, LeadState], live: dict[str, LeadState]
) -> None:
    changes, counts = merge(keys_with(backup, "backup"), keys_with(live, "live"))
    result = after(keys_with(live, "live"), changes)
    expected = {
        lead: furthest(backup.get(lead), live.get(lead)) for lead in backup.keys() | live.keys()
    }
    assert where(result) == {lead: [state] for lead, state in expected.items()}
    assert counts.lost == 0
    assert counts.added == len(backup.keys() - live.keys())
    assert counts.advanced == sum(1 for lead in live if expected[lead] is not live[lead])
    assert counts.kept == len(live) - counts.advanced
    assert sum(counts.final.values()) == len(expected)
    for lead, state in live.items():  # a live lead that stays where it is keeps its live copy
        if expected[lead] is state and state is LeadState.QUEUED:
            assert raw(lead, "live") in result.queue


def test_a_new_lead_stays_and_a_lost_one_comes_back_claimed_first() -> None:
    backup = LeadKeys(queue=(raw("b2"), raw("b1")))  # b1 at the tail: claimed next
    live = LeadKeys(queue=(raw("new"),))
    changes, counts = merge(backup, live)
    assert after(live, changes).queue == (raw("new"), raw("b2"), raw("b1"))
    assert (counts.added, counts.kept, counts.lost) == (2, 1, 0)


def test_a_submitted_lead_never_goes_back_to_the_queue() -> None:
    backup = LeadKeys(done=frozenset({"a"}))
    live = LeadKeys(queue=(raw("a"),))  # a copy re-queued after the crash lost its marker
    changes, counts = merge(backup, live)
    assert changes.queue_remove == [raw("a")]
    assert changes.done_restore == ["a"]
    assert after(live, changes) == LeadKeys(done=frozenset({"a"}))
    assert counts.advanced == 1


def test_a_lead_found_in_two_live_places_is_left_in_its_furthest() -> None:
    live = LeadKeys(queue=(raw("a"),), failed={"a": raw("a")})
    changes, counts = merge(LeadKeys(), live)
    assert where(after(live, changes)) == {"a": [LeadState.FAILED]}
    assert counts.kept == 1


def test_an_unreadable_queue_entry_is_its_own_lead_and_kept() -> None:
    assert lead_id(b"not json").startswith("corrupt-")
    assert lead_id(raw("x")) == "x"
    live = LeadKeys(queue=(b"not json",))
    changes, counts = merge(LeadKeys(queue=(b"{broken",)), live)
    assert after(live, changes).queue == (b"not json", b"{broken")
    assert counts.lost == 0


def test_a_further_state_from_the_backup_keeps_the_live_details() -> None:
    """A visitor corrected their phone after the backup (`LeadQueue.amend`); the backup shows
    the lead waiting out a retry: it goes back to waiting, with the corrected phone."""
    backed_up = b'{"id":"l1","phone":"5552017788","attempts":2,"last_error":"HTTP 503"}'
    live = b'{"id":"l1","phone":"5559990000","attempts":0,"last_error":null}'
    changes, counts = merge(LeadKeys(retry={backed_up: 50.0}), LeadKeys(queue=(live,)))
    assert counts.advanced == 1
    assert changes.queue_remove == [live]
    assert changes.retry_add == {
        b'{"id":"l1","phone":"5559990000","attempts":2,"last_error":"HTTP 503"}': 50.0
    }


def test_a_lead_a_worker_holds_is_left_to_the_worker() -> None:
    """Moving it to the backup's `lead_failed` while the worker submits it left it failed and
    done at once (a fresh helper's attack)."""
    failed = {"l1": b'{"failed_at":1,"error":"x","lead":{"id":"l1"}}'}
    claimed = {"l1": b'{"claimed_at":2,"worker":"w","lead":{"id":"l1"}}'}
    changes, counts = merge(LeadKeys(failed=failed), LeadKeys(processing=claimed))
    assert not changes
    assert (counts.kept, counts.advanced, counts.final) == (1, 0, {"processing": 1})
