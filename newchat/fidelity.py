"""Lead fidelity on labelled conversations: the share of leads whose every field is right.

Each case (a JSON array; see `tests/data/lead_fidelity_own.json`) is a visitor's messages in
order and the lead the business should receive. The messages are played through the real
conversation, with the offline practice-area classifier and sessions kept in memory; the lead
it queues (if any) is compared field by field. Like `newchat.detection.evaluate`, it is offline
and deterministic, so a parser change is measured before it ships.

Usage: python -m newchat.fidelity FILE [FILE ...] [--errors] [--trace CASE_ID]

`--errors` names each wrong field (expected != got); `--trace CASE_ID` prints that case's turns
with the bot's step and reply, to see where a conversation went wrong.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path

import msgspec
from prometheus_client import CollectorRegistry

from common import LogSettings, configure_logging
from newchat._conversation import Conversation
from newchat._metrics import Metrics
from newchat._services import provide_language_detector, provide_replies
from newchat._sessions import SessionState, new_session_state
from newchat.detection import CategoryDetector, OfflineClassifier
from newchat.leads import Lead

CONTACT_FIELDS = ("first_name", "last_name", "phone", "email", "zip")
FIELDS = (*CONTACT_FIELDS, "category")


class ExpectedLead(msgspec.Struct, forbid_unknown_fields=True):
    first_name: str
    last_name: str
    phone: str
    email: str
    zip: str
    category: str


class FidelityCase(msgspec.Struct):
    id: str
    lang: str
    turns: list[str]
    expect: ExpectedLead
    note: str = ""


class Outcome(msgspec.Struct):
    case: FidelityCase
    lead: Lead | None
    """None when the conversation never queued a lead."""
    wrong: dict[str, tuple[str, str]]
    """Field -> (expected, got), for the fields that differ (all of them without a lead)."""
    replies_in_language: int = 0
    """How many of the bot's replies were in the case's language (`lang`)."""
    replies: int = 0

    @property
    def contact_right(self) -> bool:
        return self.lead is not None and not set(self.wrong) & set(CONTACT_FIELDS)


class MemorySessions:
    """Sessions in a dict: one evaluation run, no Redis."""

    def __init__(self) -> None:
        self._states: dict[str, SessionState] = {}

    def new(self) -> SessionState:
        return new_session_state()

    def key(self, session_id: str) -> str:
        return session_id

    async def load(self, session_id: str) -> SessionState | None:
        return self._states.get(session_id)

    def decode(self, session_id: str, raw: bytes | str | None) -> SessionState | None:
        return self._states.get(session_id)

    async def save(self, state: SessionState) -> None:
        self._states[state.id] = state


class CollectedLeads:
    def __init__(self) -> None:
        self.leads: list[Lead] = []

    async def enqueue(self, lead: Lead) -> str:
        self.leads.append(lead)
        return f"lead-{len(self.leads)}"

    async def amend(self, lead_id: str, contact: dict[str, str]) -> bool:
        """A correction after the end, as `LeadQueue.amend` makes it before a worker claims the
        lead (the evaluation has no worker, so always in time)."""
        n = int(lead_id.removeprefix("lead-")) - 1
        self.leads[n] = msgspec.structs.replace(self.leads[n], **contact)
        return True


def load_cases(path: Path) -> list[FidelityCase]:
    """Raises msgspec.ValidationError on a malformed file (naming the bad field)."""
    return msgspec.json.decode(path.read_bytes(), type=list[FidelityCase])


async def play(case: FidelityCase, trace: bool = False) -> Outcome:
    """One case through the conversation; stops at the first turn that finishes it. With
    `trace`, prints each turn (the visitor's message, the bot's step and reply)."""
    metrics = Metrics(CollectorRegistry())
    sessions, leads = MemorySessions(), CollectedLeads()
    conversation = Conversation(
        sessions,
        CategoryDetector(OfflineClassifier(), metrics),
        leads,
        metrics,
        replies=provide_replies(),
        languages=provide_language_detector(),
    )
    state = sessions.new()
    in_language = replies = 0
    for message in case.turns:
        reply = await conversation.turn(state, message)
        replies += 1
        in_language += state.language == case.lang
        if trace:
            print(f"  > {message}\n    [{reply.step}] {reply.reply}")
        if state.done:
            break
    lead = leads.leads[0] if leads.leads else None
    expected = msgspec.structs.asdict(case.expect)
    got = {f: str(getattr(lead, f)) for f in FIELDS} if lead else dict.fromkeys(FIELDS, "")
    wrong = {f: (expected[f], got[f]) for f in FIELDS if expected[f] != got[f]}
    return Outcome(case, lead, wrong, in_language, replies)


def evaluate(cases: list[FidelityCase], trace: str | None = None) -> list[Outcome]:
    async def run() -> list[Outcome]:
        return [await play(case, trace=case.id == trace) for case in cases]

    return asyncio.run(run())


def summary(name: str, outcomes: list[Outcome]) -> list[str]:
    total = len(outcomes)
    contact = sum(o.contact_right for o in outcomes)
    every = sum(o.lead is not None and not o.wrong for o in outcomes)
    unfinished = sum(o.lead is None for o in outcomes)
    per_field: Counter[str] = Counter(f for o in outcomes if o.lead for f in o.wrong)
    in_language = sum(o.replies_in_language for o in outcomes)
    replies = sum(o.replies for o in outcomes) or 1
    lines = [
        f"{name}: {contact / total:.1%} of {total} leads with every contact detail right "
        f"({every / total:.1%} with the practice area too); {unfinished} never queued; "
        f"{in_language / replies:.1%} of {replies} replies in the visitor's language",
    ]
    lines += [f"  {field} wrong in {n}" for field, n in per_field.most_common()]
    return lines


def main(argv: list[str]) -> int:
    configure_logging(LogSettings(file="", level="WARNING", stdout=True))  # no per-turn lines
    show_errors = "--errors" in argv
    trace = argv[argv.index("--trace") + 1] if "--trace" in argv[:-1] else None
    names = [a for i, a in enumerate(argv) if not a.startswith("--") and argv[i - 1] != "--trace"]
    for name in names:
        outcomes = evaluate(load_cases(Path(name)), trace)
        print("\n".join(summary(name, outcomes)))
        if show_errors:
            for o in outcomes:
                if o.lead is None:
                    print(f"  - {o.case.id}: no lead queued")
                for field, (expected, got) in o.wrong.items() if o.lead else ():
                    print(f"  - {o.case.id}: {field} {expected!r} != {got!r}")
                if o.replies_in_language < o.replies:
                    wrong = o.replies - o.replies_in_language
                    print(f"  - {o.case.id}: {wrong} of {o.replies} replies not in {o.case.lang}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
