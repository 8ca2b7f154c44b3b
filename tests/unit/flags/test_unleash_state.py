"""Reading an Unleash feature set as the gateway reports it: the share measured as it routes,
and what may never become the last good state."""

from __future__ import annotations

import json

import pytest

from flags import toggle_state
from flags._unleash import ShareGauge, valid_state


def rollout(
    percent: int, group: str, constraints: list[dict[str, object]] | None = None
) -> dict[str, object]:
    return {"name": "flexibleRollout", "constraints": constraints or [],
            "parameters": {"rollout": str(percent), "stickiness": "sessionId", "groupId": group}}  # fmt: skip


def state(*strategies: dict[str, object], enabled: bool = True) -> str:
    feature = {"name": "new-chat", "enabled": enabled, "strategies": list(strategies)}
    return json.dumps({"version": 2, "features": [feature]})


@pytest.mark.parametrize(
    ("raw", "share"),
    [
        (state(rollout(30, "new-chat")), 0.30),
        # two strategies: either lets a session through (45 % or 20 %, other groups)
        (state(rollout(45, "new-chat"), rollout(20, "other")), 0.56),
        # a constraint no session meets: nothing goes through, whatever the rollout says
        (
            state(
                rollout(
                    50,
                    "new-chat",
                    [{"contextName": "userId", "operator": "IN", "values": ["nobody"]}],
                )
            ),
            0.0,
        ),
        (state(rollout(100, "new-chat"), enabled=False), 0.0),
    ],
)
def test_the_share_shown_is_the_share_that_routes(raw: str, share: float) -> None:
    """Reported 45 % where 56.5 % routed, and 50 % where a constraint let none through (a
    fresh helper, issue 20): the share is measured on 2,000 ids by Unleash's own engine."""
    measured = ShareGauge("chat-gateway").share(raw, "new-chat")
    assert measured is not None
    assert abs(measured - share) <= 0.02
    shown = toggle_state(json.loads(raw), "new-chat", measured)
    assert abs(shown.percent - share * 100) <= 2


def test_constraints_are_named_in_the_detail() -> None:
    raw = state(rollout(50, "new-chat", [{"contextName": "userId", "operator": "IN",
                                          "values": ["a", "b"]}]))  # fmt: skip
    assert "[if userId IN a,b]" in toggle_state(json.loads(raw), "new-chat").strategy


@pytest.mark.parametrize(
    "raw",
    [
        '{"version":2,"features":"garbage<html>"}',
        "<html>proxy error</html>",
        '{"version":2}',
        state(rollout(30, "new-chat")).replace('"30"', '"banana"'),
        state(rollout(30, "new-chat")).replace('"30"', '"130"'),
    ],
)
def test_an_unusable_feature_set_is_refused(raw: str) -> None:
    assert valid_state(raw) is not None


def test_a_real_feature_set_is_accepted() -> None:
    assert valid_state(state(rollout(30, "new-chat"), rollout(0, "x"))) is None
