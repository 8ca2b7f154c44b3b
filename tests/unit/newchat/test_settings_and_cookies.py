from __future__ import annotations

import pytest

from common import SettingsError, new_session_id
from newchat import SessionCookies, SessionSettings, WorkerSettings, load_settings
from newchat.leads import backoff_delay


def test_defaults_follow_the_runbook() -> None:
    settings = load_settings({})
    assert settings.server.port == 3000
    assert settings.session.ttl_seconds == 604_800
    assert settings.log.file == "logs/application.log"
    assert settings.session.secret_is_ephemeral
    assert not settings.openai.enabled
    assert not settings.leadprosper.configured
    assert settings.log.stdout
    assert settings.log.flush_interval_seconds == 0.1


def test_log_settings_from_the_environment() -> None:
    log = load_settings({"LOG_STDOUT": "false", "LOG_FLUSH_MS": "0"}).log
    assert not log.stdout
    assert log.flush_interval_seconds == 0


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "0"}, "PORT"),
        ({"COOKIE_SECURE": "maybe"}, "COOKIE_SECURE"),
        ({"LOG_STDOUT": "sometimes"}, "LOG_STDOUT"),
        ({"LOG_FLUSH_MS": "-1"}, "LOG_FLUSH_MS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env)


def test_cookie_signature_round_trip_and_tampering() -> None:
    signer = SessionCookies(SessionSettings(secret="secret"))
    session_id = new_session_id()
    cookie = signer.sign(session_id)
    assert signer.unsign(cookie) == session_id
    other = new_session_id()
    forged = f"{other}.{cookie.split('.')[1]}"
    for bad in [forged, cookie + "x", session_id, "", None, "a.b.c", "../../etc.passwd"]:
        assert signer.unsign(bad) is None
    assert SessionCookies(SessionSettings(secret="another secret")).unsign(cookie) is None


def test_backoff_grows_exponentially_within_jitter_and_is_capped() -> None:
    settings = WorkerSettings(backoff_base_seconds=2, backoff_max_seconds=60)
    for attempt, ceiling in [(0, 2), (1, 4), (3, 16), (10, 60)]:
        delays = [backoff_delay(attempt, settings) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)


def test_engine_minted_ids_are_recognised_without_redis_and_cannot_be_guessed() -> None:
    """The gateway keeps a conversation the engine started on the engine when its pin cannot
    be read, by the id alone (issue 16); nobody else can make such an id."""
    cookies = SessionCookies(SessionSettings(secret="secret"))
    minted = [cookies.mint_id() for _ in range(200)]
    assert len(set(minted)) == 200
    assert all(len(i) == 24 and cookies.minted(i) for i in minted)
    other_site = SessionCookies(SessionSettings(secret="another secret"))
    assert not any(other_site.minted(i) for i in minted)
    sample = minted[0]
    flipped = sample[:-1] + ("A" if sample[-1] != "A" else "B")
    legacy_like = "a1b2c3d4e5f6a1b2c3d4e5f6"  # 24 characters, no MAC
    for forged in (flipped, legacy_like, new_session_id(), sample[:23], sample + "x", "", "../x"):
        assert not cookies.minted(forged)
