"""Practice-area detection by OpenAI structured output (a JSON schema with the category enum).

Raises `DetectionUnavailable` for every way OpenAI can fail (timeout, 429, 5xx, malformed answer),
so the caller falls back to the offline classifier. Timeouts, connection errors and 5xx are
retried by tenacity within the visitor's time budget; a 429 never is: it pauses OpenAI for the
`Retry-After` it came with (`_retry_after`), and visitors get the offline classifier meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import msgspec
import openai
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from common import decode_json
from newchat._categories import CATEGORIES, Category
from newchat._settings import OpenAISettings
from newchat.detection._errors import DetectionUnavailable
from newchat.detection._retry_after import retry_after_seconds

RETRYABLE = frozenset({"timeout", "connection", "server_error"})

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


def _retryable(error: BaseException) -> bool:
    return isinstance(error, DetectionUnavailable) and error.reason in RETRYABLE


class OpenAIDetector:
    """Asks the model once per attempt; retries only timeouts, connection errors and 5xx.
    `clock` (monotonic seconds) times the pause and `wall_clock` (epoch seconds) reads an
    HTTP-date `Retry-After`; tests inject both."""

    def __init__(
        self,
        settings: OpenAISettings,
        http_client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
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
        return self.pause_left_seconds > 0

    @property
    def pause_left_seconds(self) -> float:
        return max(self._paused_until - self._clock(), 0.0)

    async def detect(self, text: str) -> tuple[Category, float]:
        """Raises DetectionUnavailable when OpenAI cannot answer within the visitor's budget
        (`max_attempts` attempts, `request_budget_seconds` in all), or is paused by a 429."""
        if self.paused:
            raise DetectionUnavailable("rate_limited", "paused after a 429")
        settings = self._settings
        retrying = AsyncRetrying(
            stop=stop_after_attempt(settings.max_attempts)
            | stop_after_delay(settings.request_budget_seconds),
            wait=wait_exponential_jitter(multiplier=0.1, max=1.0, jitter=0.1),
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._ask(text)
        raise DetectionUnavailable("timeout")  # not reached: tenacity reraises the last error

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
            pause = retry_after_seconds(exc.response.headers, self._wall_clock())
            if pause is None:
                pause = self._settings.rate_limit_cooldown_seconds
            self._paused_until = self._clock() + pause
            raise DetectionUnavailable(
                "rate_limited", f"OpenAI answered 429; paused {pause:.0f} s"
            ) from exc
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
            answer = decode_json(content, type=_Answer)
        except (IndexError, AttributeError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DetectionUnavailable("malformed", "answer did not match the schema") from exc
        return answer.category, min(max(answer.confidence, 0.0), 1.0)
