"""Leads: the reliable Redis queue on the runbook's keys, the LeadProsper client, the worker that
submits, and the recorder shadow conversations use instead of the queue."""

from newchat.leads._leadprosper import LeadProsperClient, Outcome, SubmissionResult
from newchat.leads._models import FailedEnvelope, Lead
from newchat.leads._queue import LeadQueue, QueueStatus
from newchat.leads._shadow import ShadowLeadRecorder
from newchat.leads._worker import LeadWorker, RunSummary, backoff_delay, submission_timeout

__all__ = [
    "FailedEnvelope",
    "Lead",
    "LeadProsperClient",
    "LeadQueue",
    "LeadWorker",
    "Outcome",
    "QueueStatus",
    "RunSummary",
    "ShadowLeadRecorder",
    "SubmissionResult",
    "backoff_delay",
    "submission_timeout",
]
