"""The gateway: nginx sends chat traffic here; each request goes to the new engine or legacy PHP,
a share is mirrored to the other side and compared (shadow). Imports `common`, `flags` and
`newchat`.
"""

from proxy._app import GatewayApp, create_gateway_app
from proxy._compare import Experiment, FieldResult, Observation, ShadowRules, load_rules, similarity
from proxy._errors import ClientGone, Http1Error, RequestRejected, UpstreamError
from proxy._headers import Visitor, forwarding_headers, returned_headers
from proxy._http1 import Http1Pool, Http1Reply, Origin, parse_origin
from proxy._in_process import EngineUpstream
from proxy._metrics import GatewayMetrics
from proxy._pins import (
    OVERRIDE_COOKIE,
    ROUTE_COOKIE,
    PinStore,
    RouteCookie,
    TokenSigner,
    session_id_in,
)
from proxy._pressure import LoopLag
from proxy._recording import RecordingTap, TranscriptRecorder, recorded_turn
from proxy._replay import Replayer
from proxy._route_hint import GATEWAY_UPSTREAM, LEGACY_UPSTREAM, ROUTE_HINT_PATH, RouteHint
from proxy._server_protocol import GatewayHttpProtocol, PreAppAnswers
from proxy._services import GatewayServices, provide_gateway_services
from proxy._settings import (
    GatewaySettings,
    RecordingSettings,
    ShadowSettings,
    UpstreamSettings,
    load_gateway_settings,
    load_recording_settings,
    load_routing_secret,
    record_key,
)
from proxy._shadow import SYNTHETIC_CONFIRMATION, ShadowConfig, ShadowMirror, ShadowResult
from proxy._shadow_html import render_html
from proxy._shadow_report import (
    DEFAULT_THRESHOLDS,
    Example,
    FieldAgreement,
    ShadowReport,
    WorstConversation,
    build_report,
    load_results,
    wilson,
)
from proxy._transcript import (
    ImportTally,
    Transcript,
    TranscriptError,
    conversation_tag,
    from_php_sessions,
    read_transcripts,
    write_transcripts,
)
from proxy._upstream import ForwardRequest, HttpUpstream, Upstream, UpstreamReply

__all__ = [
    "DEFAULT_THRESHOLDS",
    "GATEWAY_UPSTREAM",
    "LEGACY_UPSTREAM",
    "OVERRIDE_COOKIE",
    "ROUTE_COOKIE",
    "ROUTE_HINT_PATH",
    "SYNTHETIC_CONFIRMATION",
    "ClientGone",
    "EngineUpstream",
    "Example",
    "Experiment",
    "FieldAgreement",
    "FieldResult",
    "ForwardRequest",
    "GatewayApp",
    "GatewayHttpProtocol",
    "GatewayMetrics",
    "GatewayServices",
    "GatewaySettings",
    "Http1Error",
    "Http1Pool",
    "Http1Reply",
    "HttpUpstream",
    "ImportTally",
    "LoopLag",
    "Observation",
    "Origin",
    "PinStore",
    "PreAppAnswers",
    "RecordingSettings",
    "RecordingTap",
    "Replayer",
    "RequestRejected",
    "RouteCookie",
    "RouteHint",
    "ShadowConfig",
    "ShadowMirror",
    "ShadowReport",
    "ShadowResult",
    "ShadowRules",
    "ShadowSettings",
    "TokenSigner",
    "Transcript",
    "TranscriptError",
    "TranscriptRecorder",
    "Upstream",
    "UpstreamError",
    "UpstreamReply",
    "UpstreamSettings",
    "Visitor",
    "WorstConversation",
    "build_report",
    "conversation_tag",
    "create_gateway_app",
    "forwarding_headers",
    "from_php_sessions",
    "load_gateway_settings",
    "load_recording_settings",
    "load_results",
    "load_routing_secret",
    "load_rules",
    "parse_origin",
    "provide_gateway_services",
    "read_transcripts",
    "record_key",
    "recorded_turn",
    "render_html",
    "returned_headers",
    "session_id_in",
    "similarity",
    "wilson",
    "write_transcripts",
]
