"""LeadProsper direct-post client: one POST per lead, outcome classified for the worker.

ACCEPTED -> accepted; DUPLICATED -> duplicated (LeadProsper already has this person: done, never
resent); ERROR or a 4xx -> permanent (fix the data or the campaign settings); timeouts, connection
errors, 429 and 5xx -> retry. Logs `Lead submission` with lead id, outcome and latency only.
"""

from __future__ import annotations

import time
from typing import Literal

import httpx
import msgspec

from common import decode_json, get_logger, scrub
from newchat._settings import LeadProsperSettings
from newchat.leads._models import Lead

Outcome = Literal["accepted", "duplicated", "permanent", "retry"]

_log = get_logger("newchat.leadprosper")


class SubmissionResult(msgspec.Struct, frozen=True):
    outcome: Outcome
    detail: str = ""
    http_status: int | None = None
    leadprosper_id: str | None = None


class _Reply(msgspec.Struct):
    status: str = ""
    message: str = ""
    lead_id: str | int | None = None
    code: int | None = None


class LeadProsperPayload(msgspec.Struct):
    lp_campaign_id: str
    lp_supplier_id: str
    lp_key: str
    first_name: str
    last_name: str
    email: str
    phone: str
    zip_code: str
    practice_area: str
    description: str
    external_lead_id: str
    """Our lead id, so a resend after a crash can be matched on LeadProsper's side."""
    language: str
    """The conversation's language (ISO 639-1), so the attorney calls in it."""


def _refused(exc: httpx.HTTPError) -> bool:
    """httpx-aiohttp maps a refused connection to ConnectTimeout; its cause tells them apart."""
    cause = exc.__cause__
    return isinstance(cause, OSError) and not isinstance(cause, TimeoutError)


class LeadProsperClient:
    def __init__(self, settings: LeadProsperSettings, http_client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http_client

    @property
    def configured(self) -> bool:
        return self._settings.configured

    def payload(self, lead: Lead) -> LeadProsperPayload:
        s = self._settings
        return LeadProsperPayload(
            lp_campaign_id=s.campaign_id,
            lp_supplier_id=s.supplier_id,
            lp_key=s.api_key,
            first_name=lead.first_name,
            last_name=lead.last_name,
            email=lead.email,
            phone=lead.phone,
            zip_code=lead.zip,
            practice_area=lead.category,
            description=lead.description,
            external_lead_id=lead.id,
            language=lead.language,
        )

    async def submit(self, lead: Lead) -> SubmissionResult:
        started = time.perf_counter()
        result = await self._post(lead)
        _log.log(
            _LEVELS[result.outcome],
            "Lead submission",
            lead_id=lead.id,
            outcome=result.outcome,
            detail=result.detail,
            http_status=result.http_status,
            attempt=lead.attempts + 1,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return result

    async def _post(self, lead: Lead) -> SubmissionResult:
        try:
            response = await self._http.post(
                self._settings.api_url,
                content=msgspec.json.encode(self.payload(lead)),
                headers={"content-type": "application/json"},
                timeout=self._settings.timeout_seconds,
            )
        except httpx.TimeoutException as exc:
            if _refused(exc):
                return SubmissionResult("retry", "LeadProsper unreachable (connection refused)")
            return SubmissionResult("retry", "LeadProsper timed out")
        except httpx.HTTPError as exc:
            return SubmissionResult("retry", f"LeadProsper unreachable ({type(exc).__name__})")
        status = response.status_code
        if status == 429 or status >= 500:
            return SubmissionResult("retry", f"LeadProsper answered HTTP {status}", status)
        try:
            reply = decode_json(response.content, type=_Reply)
        except (msgspec.DecodeError, msgspec.ValidationError):
            if status >= 400:
                return SubmissionResult("permanent", f"LeadProsper refused (HTTP {status})", status)
            return SubmissionResult(
                "retry", "LeadProsper answered something other than JSON", status
            )
        lp_id = None if reply.lead_id is None else str(reply.lead_id)
        said = scrub(reply.message, _personal(lead))[:200]
        verdict = reply.status.upper()
        if verdict == "ACCEPTED":
            return SubmissionResult("accepted", "", status, lp_id)
        if verdict == "DUPLICATED":
            return SubmissionResult("duplicated", said, status, lp_id)
        if verdict == "ERROR" or status >= 400:
            return SubmissionResult("permanent", said or f"HTTP {status}", status)
        odd = scrub(reply.status, _personal(lead))[:40]
        return SubmissionResult("retry", f"unexpected status {odd!r}", status)


def _personal(lead: Lead) -> tuple[str, ...]:
    """The lead's own values, for `scrub`: a partner's message may echo any of them."""
    return (lead.first_name, lead.last_name, lead.email, lead.phone, lead.zip, lead.description)


_LEVELS = {"accepted": 20, "duplicated": 20, "retry": 30, "permanent": 40}
