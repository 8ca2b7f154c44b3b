"""The new chat engine: sessions in Redis, practice-area detection, the intake conversation, the
lead queue and worker, and its endpoints (typed, framework-free, shared by its own HTTP app and
the gateway's in-process hop). Imports only `common`.

Subpackages: `newchat.detection` (practice areas), `newchat.leads` (queue, worker, LeadProsper).
"""

from newchat._app import create_app
from newchat._categories import CATEGORIES, GENERAL, LABELS, Category
from newchat._endpoints import (
    CHAT_PATH,
    CRON_PATH,
    ChatMessage,
    EngineReply,
    ErrorBody,
    TurnRequest,
    chat_health,
    chat_turn,
    cookie_probe,
    cron_process,
    cron_status,
    error_reply,
    not_allowed,
)
from newchat._errors import (
    ChatError,
    DependencyDown,
    Forbidden,
    InvalidField,
    InvalidRequest,
    RateLimited,
)
from newchat._health import HealthReport, check_openai, health_report
from newchat._language import LANGUAGES, Language, LanguageDetector
from newchat._metrics import Metrics
from newchat._ratelimit import RateDecision, RateLimiter
from newchat._replies import LOCALES, Replies
from newchat._services import (
    Services,
    open_services,
    provide_http_client,
    provide_redis,
    provide_services,
    replay_services,
)
from newchat._sessions import STEPS, SessionCookies, SessionState, SessionStore, Step
from newchat._settings import (
    CronSettings,
    LeadProsperSettings,
    OpenAISettings,
    RateLimitSettings,
    ServerSettings,
    SessionSettings,
    Settings,
    WorkerSettings,
    load_settings,
    shadow_key,
    value_key,
)
from newchat.contact import ContactDetails, Field, Findings
from newchat.contact import extract as extract_contact
from newchat.contact import merge as merge_contact

__all__ = [
    "CATEGORIES",
    "CHAT_PATH",
    "CRON_PATH",
    "GENERAL",
    "LABELS",
    "LANGUAGES",
    "LOCALES",
    "STEPS",
    "Category",
    "ChatError",
    "ChatMessage",
    "ContactDetails",
    "CronSettings",
    "DependencyDown",
    "EngineReply",
    "ErrorBody",
    "Field",
    "Findings",
    "Forbidden",
    "HealthReport",
    "InvalidField",
    "InvalidRequest",
    "Language",
    "LanguageDetector",
    "LeadProsperSettings",
    "Metrics",
    "OpenAISettings",
    "RateDecision",
    "RateLimitSettings",
    "RateLimited",
    "RateLimiter",
    "Replies",
    "ServerSettings",
    "Services",
    "SessionCookies",
    "SessionSettings",
    "SessionState",
    "SessionStore",
    "Settings",
    "Step",
    "TurnRequest",
    "WorkerSettings",
    "chat_health",
    "chat_turn",
    "check_openai",
    "cookie_probe",
    "create_app",
    "cron_process",
    "cron_status",
    "error_reply",
    "extract_contact",
    "health_report",
    "load_settings",
    "merge_contact",
    "not_allowed",
    "open_services",
    "provide_http_client",
    "provide_redis",
    "provide_services",
    "replay_services",
    "shadow_key",
    "value_key",
]
