"""The rules every package shares: the MAC, cookies, the visitor's address, session ids, Redis
errors by kind, settings values, and the background-task lifecycle."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from redis import exceptions

from common import (
    BackgroundTask,
    LogSettings,
    SettingsError,
    Signer,
    Stopping,
    client_address,
    configure_logging,
    env_bool,
    env_http_url,
    env_number,
    flush_logs,
    is_session_id,
    new_session_id,
    percentile,
    read_cookies,
    request_cookies,
    scrub,
    session_hash,
    set_cookie,
    translate_redis_error,
)


def test_a_mac_verifies_only_whole_and_under_its_purpose() -> None:
    signer = Signer("secret")
    mac = signer.mac("payload", purpose="route")
    assert signer.verify("payload", mac, purpose="route")
    for forged in ("", mac[:-1], mac[:8], mac + "A", mac.upper()):
        assert not signer.verify("payload", forged, purpose="route"), forged
    assert not signer.verify("payload", mac, purpose="override")  # another kind of token
    assert not signer.verify("payload", mac)  # the bare-payload format is another kind too
    assert not Signer("other").verify("payload", mac, purpose="route")
    assert not signer.verify("payload", "é\udcff", purpose="route")  # odd input never raises


def test_session_ids_admit_both_backends_and_nothing_injectable() -> None:
    assert is_session_id(new_session_id())
    assert is_session_id("a1b2c3d4")  # legacy's shortest
    assert is_session_id("f" * 128)
    for bad in ("short", "x" * 129, "abc def12", "abcdefgh\r\nX: 1", "abcdefgh:1", None, 12345678):
        assert not is_session_id(bad), bad


def test_set_cookie_is_httponly_lax_and_secure_when_asked() -> None:
    plain = set_cookie("chat_sid", "v.mac", max_age=60, secure=False)
    assert plain == "chat_sid=v.mac; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
    assert set_cookie("c", "v", max_age=1, secure=True).endswith("; Secure")


def test_cookies_first_of_a_name_wins_and_quotes_come_off() -> None:
    found = read_cookies(
        ['a=1; chat_sid="x.y"; chat_sid=other', "chat_route=r"], ("chat_sid", "chat_route")
    )
    assert found == {"chat_sid": "x.y", "chat_route": "r"}


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("198.51.100.7", [(b"x-forwarded-for", b"6.6.6.6")], "198.51.100.7"),
        ("127.0.0.1", [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.5")], "203.0.113.5"),
        ("127.0.0.1", [(b"x-forwarded-for", b"203.0.113.5, 127.0.0.1")], "203.0.113.5"),
        (
            "127.0.0.1",
            [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"203.0.113.5")],
            "203.0.113.5",
        ),  # two headers are one list, in order
        ("127.0.0.1", [(b"x-real-ip", b"203.0.113.8")], "203.0.113.8"),
        ("127.0.0.1", [], "127.0.0.1"),
        (None, [(b"x-forwarded-for", b"6.6.6.6")], "unknown"),
    ],
)
def test_the_visitor_address_believes_only_trusted_proxies(
    peer: str | None, headers: list[tuple[bytes, bytes]], expected: str
) -> None:
    assert client_address(peer, headers, ("127.0.0.1",)) == expected


def test_a_missing_peer_is_never_a_trusted_proxy_whatever_the_list_says() -> None:
    forged = [(b"x-forwarded-for", b"6.6.6.6")]
    assert client_address(None, forged, ("127.0.0.1", "unknown")) == "unknown"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (exceptions.ConnectionError("refused"), "unreachable"),
        (ConnectionRefusedError(), "unreachable"),
        (exceptions.TimeoutError("slow"), "timeout"),
        (
            exceptions.ResponseError("OOM command not allowed when used memory > 'maxmemory'"),
            "out_of_memory",
        ),
        (exceptions.ReadOnlyError("You can't write against a read only replica."), "read_only"),
        (exceptions.BusyLoadingError("Redis is loading"), "busy"),
        (exceptions.ResponseError("BUSY Redis is busy running a script"), "busy"),
        (exceptions.ResponseError("WRONGTYPE"), "error"),
    ],
)
def test_redis_errors_are_named_for_what_they_are(error: Exception, kind: str) -> None:
    failure = translate_redis_error(error, "redis://:hunter2@db.example:6379/0")
    assert failure.kind == kind
    assert failure.action
    assert "hunter2" not in failure.detail  # the password never reaches a message


def test_the_out_of_memory_action_points_at_the_kill_switch() -> None:
    failure = translate_redis_error(exceptions.ResponseError("OOM command not allowed"))
    assert "ENABLE_NEW_CHAT=false" in failure.action


def test_settings_values_are_refused_naming_the_variable() -> None:
    assert env_bool({"X": "yes"}, "X", False) is True
    assert env_number({"N": " 5 "}, "N", 1, int, 1) == 5
    assert env_http_url({}, "U") == ""
    for call in (
        lambda: env_bool({"X": "maybe"}, "X", False),
        lambda: env_number({"X": "0"}, "X", 1, int, 1),
        lambda: env_number({"X": "ten"}, "X", 1, int, 1),
        lambda: env_http_url({"X": "ftp://host/"}, "X"),
        lambda: env_http_url({"X": "http://"}, "X"),
    ):
        with pytest.raises(SettingsError, match="X"):
            call()


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0


async def test_a_background_task_stops_at_once_even_while_asleep() -> None:
    ticks = 0

    async def body(stopping: Stopping) -> None:
        nonlocal ticks
        while not await stopping.sleep(60):
            ticks += 1

    task = BackgroundTask("sleeper", body)
    task.start()
    await asyncio.sleep(0)
    assert task.running
    async with asyncio.timeout(2):
        await task.stop()
    assert not task.running
    assert ticks == 0


async def test_a_body_that_ignores_the_cancel_still_ends_on_the_flag() -> None:
    """redis-py can turn a cancel into a connection error; the flag ends the loop anyway."""

    async def body(stopping: Stopping) -> None:
        while not stopping.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue  # swallowed, as a library might

    task = BackgroundTask("stubborn", body)
    task.start()
    await asyncio.sleep(0.02)
    async with asyncio.timeout(2):
        await task.stop()
    assert not task.running


async def test_a_crashing_task_is_logged_with_its_name(tmp_path: Path) -> None:
    log = tmp_path / "application.log"
    configure_logging(LogSettings(file=str(log), stdout=False, flush_interval_seconds=0))

    async def body(stopping: Stopping) -> None:
        raise RuntimeError("boom")

    task = BackgroundTask("crasher", body)
    task.start()
    await asyncio.sleep(0.01)
    flush_logs()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    crash = next(line for line in lines if line["event"] == "Background task crashed")
    assert crash["level"] == "ERROR"
    assert crash["task"] == "crasher"
    assert crash["action"]
    await task.stop()


def test_session_ids_are_144_bits_and_their_log_tag_is_12_hex() -> None:
    ids = {new_session_id() for _ in range(50)}
    assert len(ids) == 50
    assert {len(session_id) for session_id in ids} == {24}  # 18 random bytes, base64
    assert session_hash("abcdefgh12345678") == hashlib.sha256(b"abcdefgh12345678").hexdigest()[:12]


def test_both_mac_formats_are_hmac_sha256_as_issued() -> None:
    """An independent computation of the two formats in browsers today: cookies issued before a
    release must verify after it. Payloads are tried until a MAC ends in `X`, the one letter a
    careless strip of `=` padding would also eat."""
    key = b"secret"
    signer = Signer("secret")
    ends_in_x = False
    for n in range(2000):
        payload = f"payload{n:04d}"
        bare = base64.urlsafe_b64encode(hmac.digest(key, payload.encode(), "sha256")[:24])
        tagged = hmac.digest(key, f"route|{payload}".encode(), "sha256")[:16]
        assert signer.mac(payload, size=24) == bare.decode().rstrip("=")
        assert signer.mac(payload, purpose="route") == (
            base64.urlsafe_b64encode(tagged).decode().rstrip("=")
        )
        ends_in_x |= signer.mac(payload, size=24).endswith("X")
        if ends_in_x and n > 100:
            break
    assert ends_in_x


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["chat_sid=abc=def=="], {"chat_sid": "abc=def=="}),  # only the first `=` splits
        (['chat_sid=""'], {"chat_sid": ""}),  # an empty quoted value
        (['chat_sid="'], {"chat_sid": '"'}),  # a lone quote is not a quoted value
        (["chat_sid"], {}),
    ],
)
def test_cookie_values_are_read_exactly(headers: list[str], expected: dict[str, str]) -> None:
    assert read_cookies(headers, ("chat_sid",)) == expected


def test_only_cookie_headers_carry_cookies() -> None:
    """A header that merely mentions a cookie's name is not a cookie (`X-Note: chat_sid=x`)."""
    headers = [(b"x-note", b"chat_sid=forged.mac"), (b"referer", b"https://e.test/?chat_sid=y")]
    assert request_cookies(headers, ("chat_sid",)) == {}
    assert request_cookies([*headers, (b"cookie", b"chat_sid=real.mac")], ("chat_sid",)) == {
        "chat_sid": "real.mac"
    }


def test_a_forwarded_address_is_cut_to_64_characters() -> None:
    long_hop = "2001:db8::" + "a" * 100
    found = client_address("127.0.0.1", [(b"x-forwarded-for", long_hop.encode())], ("127.0.0.1",))
    assert found == long_hop[:64]
    real_ip = client_address("127.0.0.1", [(b"x-real-ip", long_hop.encode())], ("127.0.0.1",))
    assert real_ip == long_hop[:64]


def test_a_partners_message_is_scrubbed_of_personal_values_by_value() -> None:
    said = "Rejected: Ann Lee, (555) 201-7788 / 5552017788, ann@example.com, 90210; annual cap"
    scrubbed = scrub(said, ("Ann", "Lee", "ann@example.com"))
    for value in ("Ann", "Lee", "201-7788", "5552017788", "ann@example.com", "90210"):
        assert value not in scrubbed
    assert scrubbed.startswith("Rejected: ")
    assert scrubbed.endswith("annual cap")  # a name inside another word is left alone


@pytest.mark.parametrize(
    ("said", "personal", "kept", "gone"),
    [
        ("Refused: Ann-Marie Lee", ("Marie", "Ann-Marie"), "Refused: ", "Ann"),  # longest first
        ("A buyer refused Bo Diaz", ("A", "Bo", "Diaz"), "A buyer refused ", "Bo"),  # 1 letter kept
        ("REFUSED ANN LEE", ("Ann", "Lee"), "REFUSED ", "ANN"),  # any case
    ],
)
def test_scrubbing_takes_whole_values_longest_first_in_any_case(
    said: str, personal: tuple[str, ...], kept: str, gone: str
) -> None:
    scrubbed = scrub(said, personal)
    assert scrubbed.startswith(kept)
    assert gone not in scrubbed
