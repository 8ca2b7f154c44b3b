"""Changing Unleash as operators' commands need to (`chatctl flags set` on a share Unleash
decides, `chatctl rollback flags`), through its Admin API, and reading the result back as the
gateways see it (the client API, with their client token, in their environment).

Endpoints (Unleash 5-8 open source): `GET/PUT .../projects/<p>/features/<t>/environments/<e>/
strategies[/<id>]`, `POST .../environments/<e>/on|off`, `PATCH .../features/<t>` (JSON Patch of
the description, where the reason is recorded: Unleash's event log keeps every change with it),
`GET /client/features`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from flags._unleash import ToggleState, UnleashSettings, toggle_state


class UnleashAdminError(Exception):
    """An Admin or client API call failed; the message says which and how."""


class UnleashRefusal(UnleashAdminError):
    """The change is not one to make from here (the toggle is shaped otherwise than one
    flexibleRollout, or missing); nothing was written."""


class UnleashAdmin:
    def __init__(
        self,
        settings: UnleashSettings,
        admin_token: str,
        *,
        project: str = "default",
        environment: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.settings = settings
        self.project = project
        self.environment = settings.token_environment or environment or "production"
        """The environment changed: the one the gateways' client token reads (a rollback in
        another one reported success while routing went on); when the token names none (`*`),
        UNLEASH_ENVIRONMENT (default `production`)."""
        self.ignored_environment = (
            environment if environment and environment != self.environment else None
        )
        """UNLEASH_ENVIRONMENT when it names another environment than the token's (ignored)."""
        self._admin = {"Authorization": admin_token}
        self._client = {"Authorization": settings.api_token}
        self._timeout = timeout

    def _feature(self, toggle: str) -> str:
        base = self.settings.url.rstrip("/")
        return f"{base}/admin/projects/{self.project}/features/{toggle}"

    async def _call(self, method: str, url: str, headers: Mapping[str, str],
                    body: object = None) -> httpx.Response:  # fmt: skip
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.request(method, url, headers=headers, json=body)
        except httpx.HTTPError as exc:
            raise UnleashAdminError(f"{method} {url}: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise UnleashAdminError(f"{method} {url}: HTTP {response.status_code} "
                                    f"{response.text[:200]}")  # fmt: skip
        return response

    async def set_rollout(self, toggle: str, percent: int, reason: str, actor: str) -> None:
        """The toggle's one flexibleRollout `rollout` in the environment (one is added, sticky
        on sessionId in the toggle's group, when it has no strategy); the reason recorded.
        Raises UnleashRefusal, writing nothing, for a toggle that is missing or has other
        strategies or constraints: one number cannot say what it lets through (changing the
        first of two strategies wrote Unleash and then failed: a fresh helper, issue 20)."""
        strategies = await self.strategies(toggle)
        rollouts = [s for s in strategies if s.get("name") == "flexibleRollout"]
        if (
            len(strategies) > 1
            or (strategies and not rollouts)
            or any(s.get("constraints") for s in strategies)
        ):
            shown = ", ".join(str(s.get("name")) for s in strategies)
            raise UnleashRefusal(
                f"`{toggle}` in {self.environment} has {len(strategies)} strategies ({shown}) "
                "or constraints: one percentage cannot say what it lets through; change it in "
                "Unleash's UI"
            )
        url = f"{self._feature(toggle)}/environments/{self.environment}/strategies"
        if not rollouts:
            body = {
                "name": "flexibleRollout",
                "parameters": {
                    "rollout": str(percent),
                    "stickiness": "sessionId",
                    "groupId": toggle,
                },
            }
            await self._call("POST", url, self._admin, body)
        else:
            rollout = rollouts[0]
            parameters = {**(rollout.get("parameters") or {}), "rollout": str(percent)}
            body = {"name": "flexibleRollout", "parameters": parameters, "constraints": []}
            await self._call("PUT", f"{url}/{rollout['id']}", self._admin, body)
        await self.record(toggle, f"rollout {percent} % by {actor}: {reason or 'no reason given'}")

    async def strategies(self, toggle: str) -> list[dict[str, Any]]:
        """The toggle's strategies in the environment; UnleashRefusal when the toggle is not
        there (archived, misspelt) or the admin token is refused (nothing to change)."""
        url = f"{self._feature(toggle)}/environments/{self.environment}/strategies"
        try:
            found = (await self._call("GET", url, self._admin)).json()
        except UnleashAdminError as exc:
            if " HTTP 404 " in f"{exc} ":
                raise UnleashRefusal(
                    f"`{toggle}` is not in project {self.project}, environment "
                    f"{self.environment} (archived or misspelt)"
                ) from None
            raise
        return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []

    async def switch(self, toggle: str, on: bool, reason: str, actor: str) -> None:
        state = "on" if on else "off"
        url = f"{self._feature(toggle)}/environments/{self.environment}/{state}"
        await self._call("POST", url, self._admin)
        await self.record(toggle, f"switched {state} by {actor}: {reason or 'no reason given'}")

    async def enabled(self, toggle: str) -> bool:
        """Whether the toggle is on in the environment, as the Admin API has it."""
        feature = (await self._call("GET", self._feature(toggle), self._admin)).json()
        return any(
            env.get("name") == self.environment and env.get("enabled")
            for env in feature.get("environments") or []
        )

    async def record(self, toggle: str, what: str) -> None:
        """The reason in Unleash: the toggle's description, which its event log keeps."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        patch = [{"op": "replace", "path": "/description",
                  "value": f"[chatctl {stamp}, {self.environment}] {what}"[:500]}]  # fmt: skip
        await self._call("PATCH", self._feature(toggle), self._admin, patch)

    async def as_gateways_see(self, toggle: str) -> ToggleState:
        """The toggle as the gateways' client token reads it (their environment)."""
        url = f"{self.settings.url.rstrip('/')}/client/features"
        response = await self._call("GET", url, self._client)
        try:
            document = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            raise UnleashAdminError(f"GET {url}: not JSON") from None
        return toggle_state(document, toggle)

    async def wait_until(
        self, toggle: str, check: Callable[[ToggleState], bool], within: float = 5.0
    ) -> ToggleState:
        """Reads the toggle back until `check(state)` holds or `within` seconds pass."""
        deadline = time.monotonic() + within
        while True:
            state = await self.as_gateways_see(toggle)
            if check(state) or time.monotonic() >= deadline:
                return state
            await asyncio.sleep(0.2)


def load_unleash_admin(
    environ: Mapping[str, str], settings: UnleashSettings | None
) -> UnleashAdmin | None:
    """UNLEASH_ADMIN_TOKEN (with the gateways' UNLEASH_* settings); None when either is unset."""
    token = environ.get("UNLEASH_ADMIN_TOKEN", "")
    if settings is None or not token:
        return None
    return UnleashAdmin(
        settings,
        token,
        project=environ.get("UNLEASH_PROJECT", "") or "default",
        environment=environ.get("UNLEASH_ENVIRONMENT", ""),
    )
