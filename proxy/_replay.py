"""Replay: recorded legacy conversations run turn by turn through the new engine in shadow mode,
compared with what legacy answered, by the live shadow's rules (`proxy._compare`).

The new engine is told each turn is a mirrored one (`ForwardRequest.shadow`), so it answers from
`shadow:sess:*` and records its lead instead of queueing it: a replay writes no `sess:*`, no
`lead_queue` entry and calls no LeadProsper. When legacy had taken the lead and the new engine
waits for the yes to its read-back, the replay says `SYNTHETIC_CONFIRMATION`, as live shadow
does, so both leads exist and are compared value by value (kind `lead`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

import msgspec

from proxy._compare import Experiment, Observation
from proxy._headers import Visitor
from proxy._shadow import (
    SYNTHETIC_CONFIRMATION,
    ShadowResult,
    awaits_yes,
    lead_of,
    lead_taken,
    send_mirrored,
)
from proxy._transcript import Transcript, conversation_tag
from proxy._upstream import Upstream

_REPLAYER = Visitor(peer="127.0.0.1", scheme="http", address="127.0.0.1", peer_trusted=True,
                    cookies={})  # fmt: skip


class Replayer:
    """Runs transcripts through `engine` (the new engine, in-process or remote) `concurrency`
    conversations at a time. Failures of the engine are results (`candidate_error`), never
    exceptions; `progress` is called once per conversation done."""

    def __init__(
        self,
        engine: Upstream,
        experiment: Experiment,
        *,
        concurrency: int = 8,
        progress: Callable[[], None] | None = None,
        forget: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._forget = forget
        """Called with each replayed conversation's session id once it is compared (the CLI
        deletes the replay session: its contact details must not outlive the recording)."""
        self._engine = engine
        self._experiment = experiment
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._progress = progress

    async def run(self, transcripts: Iterable[Transcript]) -> list[ShadowResult]:
        tasks = [asyncio.create_task(self._bounded(t)) for t in transcripts]
        results: list[ShadowResult] = []
        for done in tasks:
            results.extend(await done)
        return results

    async def _bounded(self, transcript: Transcript) -> list[ShadowResult]:
        async with self._limit:
            try:
                return await self.conversation(transcript)
            finally:
                if self._progress is not None:
                    self._progress()

    async def conversation(self, transcript: Transcript) -> list[ShadowResult]:
        """One recorded conversation, turn by turn, then its leads."""
        tag = conversation_tag(transcript.conversation)
        session_id: str | None = None
        results: list[ShadowResult] = []
        legacy = new = None
        for number, turn in enumerate(transcript.turns, 1):
            legacy = Observation("legacy", turn.legacy.status, turn.legacy.body(), partial=True)
            new, session_id = await self._send(turn.message, session_id)
            fields = self._experiment.compare(legacy, new)
            if fields is not None:
                results.append(self._result(tag, number, fields, new))
        if legacy is None or new is None:
            return results
        if lead_taken(legacy) and awaits_yes(new):
            new, session_id = await self._send(SYNTHETIC_CONFIRMATION, session_id)
        legacy_lead = transcript.lead.contact() if transcript.lead else lead_of(legacy)
        new_lead = lead_of(new)
        if legacy_lead is not None or new_lead is not None:  # a conversation that ended in one
            fields = self._experiment.compare_leads(legacy_lead, new_lead)
            if fields:
                lead = self._result(tag, len(transcript.turns), fields, new)
                results.append(msgspec.structs.replace(lead, kind="lead"))
        if self._forget is not None and session_id is not None:
            await self._forget(session_id)
        return results

    async def _send(self, message: str, session_id: str | None) -> tuple[Observation, str | None]:
        observation, next_id, _ = await send_mirrored(
            self._engine, "new", message, session_id, _REPLAYER
        )
        return observation, next_id

    @staticmethod
    def _result(tag: str, turn: int, fields: dict, new: Observation) -> ShadowResult:  # type: ignore[type-arg]
        return ShadowResult(
            at=time.time(),
            conversation=tag,
            turn=turn,
            primary="legacy",
            candidate="new",
            fields=fields,
            twin=False,
            candidate_error=new.error,
        )
