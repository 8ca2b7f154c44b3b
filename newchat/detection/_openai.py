"""Practice-area detection by OpenAI structured output (a JSON schema with the category enum).

Raises `DetectionUnavailable` for every way OpenAI can fail (timeout, 429, 5xx, malformed answer),
so the caller falls back to the offline classifier; it never retries a 429.
"""

from __future__ import annotations

import time

import httpx
import msgspec
import openai
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from newchat._categories import CATEGORIES, Category
from newchat._settings import OpenAISettings
from newchat.detection._errors import DetectionUnavailable

_SYSTEM_PROMPT = (
    "You triage the first messages of visitors to a US law firm's intake chat. "
    "Pick the single practice area that fits the visitor's problem; use 'general' when the "
    "message does not say enough to tell. Messages may be short, misspelled or in Spanish. "
    "confidence is your probability (0 to 1) that the category is right."
)

_RESPONSE_FORMAT: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {
        "name": "practice_area",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "category": {"type": "string", "enum": list(CATEGORIES)},
                "confidence": {"type": "number"},
            },
            "required": ["category", "confidence"],
            "additionalProperties": False,
        },
    },
}


class _Answer(msgspec.Struct):
    category: Category
    confidence: float


class OpenAIDetector:
    """Asks the model once per attempt; retries only timeouts, connection errors and 5xx."""

    def __init__(self, settings: OpenAISettings, http_client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key,
            base_url=settings.base_url,
            # The SDK accepts a plain httpx client at run time (its stubs name httpx2 only);
            # sharing ours keeps one connection pool, one timeout policy and respx mocking.
            http_client=http_client,  # type: ignore[arg-type]
            timeout=settings.timeout_seconds,
            max_retries=0,
        )
        self._paused_until = 0.0

    @property
    def paused(self) -> bool:
        """True while a recent 429 keeps us off OpenAI (the visitor gets the fallback at once)."""
        return time.monotonic() < self._paused_until

    async def detect(self, text: str) -> tuple[Category, float]:
        if self.paused:
            raise DetectionUnavailable("rate_limited", "cooling down after a 429")
        attempt = 1
        while True:
            try:
                return await self._ask(text)
            except DetectionUnavailable as exc:
                retryable = exc.reason in {"timeout", "connection", "server_error"}
                if not retryable or attempt >= self._settings.max_attempts:
                    raise
                attempt += 1

    @staticmethod
    def _messages(text: str) -> list[ChatCompletionMessageParam]:
        return [
            {"role": "system", "content": _SYSTEM_PROMPT},
            {"role": "user", "content": text},
        ]

    async def _ask(self, text: str) -> tuple[Category, float]:
        try:
            completion = await self._client.chat.completions.create(
                model=self._settings.model,
                messages=self._messages(text),
                response_format=_RESPONSE_FORMAT,
                temperature=0,
            )
        except openai.RateLimitError as exc:
            self._paused_until = time.monotonic() + self._settings.rate_limit_cooldown_seconds
            raise DetectionUnavailable("rate_limited", "OpenAI answered 429") from exc
        except openai.APITimeoutError as exc:
            raise DetectionUnavailable("timeout") from exc
        except openai.APIConnectionError as exc:
            raise DetectionUnavailable("connection", type(exc).__name__) from exc
        except openai.InternalServerError as exc:
            raise DetectionUnavailable("server_error", f"HTTP {exc.status_code}") from exc
        except openai.APIStatusError as exc:
            raise DetectionUnavailable("api_error", f"HTTP {exc.status_code}") from exc
        except openai.OpenAIError as exc:
            raise DetectionUnavailable("malformed", type(exc).__name__) from exc
        try:
            content = completion.choices[0].message.content or ""
            answer = msgspec.json.decode(content, type=_Answer)
        except (IndexError, AttributeError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DetectionUnavailable("malformed", "answer did not match the schema") from exc
        return answer.category, min(max(answer.confidence, 0.0), 1.0)
