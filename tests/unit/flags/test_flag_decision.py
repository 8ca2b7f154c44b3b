"""The routing decision as a table, and bucketing checked against the UnleashClient SDK itself."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from UnleashClient.cache import FileCache
from UnleashClient.clients.unleash_client import UnleashClient
from UnleashClient.utils import InstanceAllowType, normalized_hash

from flags import (
    Backend,
    Decision,
    FlagSnapshot,
    FlagValues,
    UnleashSettings,
    bootstrap_features,
    bucket,
    decide,
    percent_rollout,
)
from tests.support.static_flags import static_flags

ON = FlagValues(enable_new_chat=True, new_chat_percent=0)
OFF = FlagValues(enable_new_chat=False)
DRAIN = FlagValues(enable_new_chat=False, drain=True)

# (flags, kill switch, pin, override, in rollout) -> decision
TABLE: list[tuple[FlagValues, bool, Backend | None, Backend | None, bool, Decision]] = [
    (ON, True, "new", "new", True, Decision("legacy", "kill_switch")),
    (DRAIN, True, "new", None, True, Decision("legacy", "kill_switch")),
    (OFF, False, "new", "new", True, Decision("legacy", "master_off")),
    (OFF, False, None, "new", True, Decision("legacy", "master_off")),
    (DRAIN, False, "new", None, False, Decision("new", "drain")),
    (DRAIN, False, "legacy", "new", True, Decision("legacy", "master_off")),
    (DRAIN, False, None, "new", True, Decision("legacy", "master_off")),
    (ON, False, "new", None, False, Decision("new", "pinned")),
    (ON, False, "legacy", "new", True, Decision("legacy", "pinned")),
    (ON, False, None, "new", False, Decision("new", "override")),
    (ON, False, None, "legacy", True, Decision("legacy", "override")),
    (ON, False, None, None, True, Decision("new", "rollout")),
    (ON, False, None, None, False, Decision("legacy", "rollout")),
]


@pytest.mark.parametrize(("values", "kill", "pin", "override", "inside", "expected"), TABLE)
def test_decision_table(
    values: FlagValues,
    kill: bool,
    pin: Backend | None,
    override: Backend | None,
    inside: bool,
    expected: Decision,
) -> None:
    snapshot = FlagSnapshot(values, version=3, kill_switch=kill)
    result = decide(
        snapshot, pin=pin, override=override, bucket_id="s", in_rollout=lambda _id: inside
    )
    assert result == expected


def test_bucket_is_unleash_normalized_hash() -> None:
    for _ in range(2000):
        session_id = secrets.token_urlsafe(12)
        assert bucket("new-chat", session_id) == normalized_hash(session_id, "new-chat")


def test_percent_rollout_edges() -> None:
    ids = [secrets.token_hex(8) for _ in range(500)]
    assert not any(percent_rollout("g", 0)(i) for i in ids)
    assert all(percent_rollout("g", 100)(i) for i in ids)
    assert [percent_rollout("g", 37)(i) for i in ids] == [bucket("g", i) <= 37 for i in ids]


@pytest.mark.parametrize("percent", [1, 30, 50, 99])
def test_rollout_matches_the_unleash_sdk_on_many_ids(tmp_path: Path, percent: int) -> None:
    """The SDK evaluates its own flexibleRollout on the same ids: no one would be reshuffled."""
    settings = UnleashSettings(url="http://127.0.0.1:9/api")
    cache = FileCache("bucket-test", directory=str(tmp_path))
    cache.bootstrap_from_dict(
        bootstrap_features(settings, "new-chat", FlagValues(new_chat_percent=percent))
    )
    client = UnleashClient(
        url=settings.url,
        app_name="bucket-test",
        cache=cache,
        disable_metrics=True,
        disable_registration=True,
        multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
    )
    client.initialize_client(fetch_toggles=False)
    try:
        ids = [secrets.token_urlsafe(16) for _ in range(3000)]
        ours = percent_rollout("new-chat", percent)
        theirs = [client.is_enabled("new-chat", {"sessionId": i}) for i in ids]
        assert [ours(i) for i in ids] == theirs
        assert abs(sum(theirs) / len(ids) * 100 - percent) < 4
    finally:
        client.destroy()


@pytest.mark.parametrize("percent", [0, 30, 100])
def test_flags_roll_out_and_shadow_in_their_own_groups(percent: int) -> None:
    """The rollout buckets in the toggle's group and shadow in `new-chat-shadow`, so the two
    samples are independent; each follows the snapshot's percentage."""
    values = FlagValues(new_chat_percent=percent, shadow_percent=percent)
    flags = static_flags(values, group_id="chat-rollout")
    ids = [f"session-{n:04d}-abcdefgh" for n in range(400)]
    for session_id in ids:
        in_rollout = bucket("chat-rollout", session_id) <= percent
        shadowed = bucket("new-chat-shadow", session_id) <= percent
        decided = flags.decide(pin=None, override=None, bucket_id=session_id)
        assert decided == Decision("new" if in_rollout else "legacy", "rollout"), session_id
        assert flags.shadowed(session_id) is shadowed, session_id


def test_flags_follow_a_new_snapshot() -> None:
    flags = static_flags(FlagValues(new_chat_percent=0, shadow_percent=0))
    assert flags.decide(pin=None, override=None, bucket_id="abcdefgh12345678").backend == "legacy"
    assert not flags.shadowed("abcdefgh12345678")
    flags.watcher.snapshot = FlagSnapshot(FlagValues(new_chat_percent=100, shadow_percent=100), 2)
    assert flags.decide(pin=None, override=None, bucket_id="abcdefgh12345678").backend == "new"
    assert flags.shadowed("abcdefgh12345678")


def test_flags_pass_the_pin_and_the_override_to_the_decision() -> None:
    flags = static_flags(FlagValues(new_chat_percent=0))
    bucket_id = "abcdefgh12345678"
    assert flags.decide(pin="new", override=None, bucket_id=bucket_id) == Decision("new", "pinned")
    assert flags.decide(pin=None, override="new", bucket_id=bucket_id) == Decision(
        "new", "override"
    )


def test_nothing_is_shadowed_under_the_kill_switch() -> None:
    flags = static_flags(FlagValues(shadow_percent=100), kill_switch=True)
    assert not flags.shadowed("abcdefgh12345678")
