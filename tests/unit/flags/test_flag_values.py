"""Flag names and values as operators type them, and environment defaults."""

from __future__ import annotations

import pytest

from common import SettingsError
from flags import (
    FlagError,
    FlagValues,
    decode_value,
    encode_value,
    flag_name,
    load_flag_settings,
    parse_value,
)

GOOD = [
    ("new_chat_percent", "30", 30),
    ("NEW_CHAT_PERCENT", "30%", 30),
    ("rollout", "0", 0),
    ("shadow", "100", 100),
    ("enable-new-chat", "off", False),
    ("drain", "TRUE", True),
    ("testers", "Bob, ann ,ann", ("ann", "bob")),
    ("testers", "", ()),
]
BAD = [
    ("new_chat_percent", "150"),
    ("new_chat_percent", "-1"),
    ("new_chat_percent", "thirty"),
    ("drain", "maybe"),
    ("testers", "ann;rm -rf"),
    ("no_such_flag", "1"),
]


@pytest.mark.parametrize(("name", "text", "expected"), GOOD)
def test_accepted_values(name: str, text: str, expected: object) -> None:
    flag = flag_name(name)
    value = parse_value(flag, text)
    assert value == expected
    assert decode_value(flag, encode_value(value)) == value


@pytest.mark.parametrize(("name", "text"), BAD)
def test_refused_values_say_what_is_accepted(name: str, text: str) -> None:
    with pytest.raises(FlagError) as caught:
        parse_value(flag_name(name), text)
    assert str(caught.value)


def test_garbage_written_into_redis_by_hand_is_refused() -> None:
    for raw in (b"150", b"not json", b"\xff", b'"30"'):
        with pytest.raises(FlagError):
            decode_value("new_chat_percent", raw)


def test_environment_defaults_and_kill_switch() -> None:
    plain = load_flag_settings({})
    assert (plain.defaults, plain.kill_switch, plain.unleash) == (FlagValues(), False, None)
    settings = load_flag_settings(
        {"ENABLE_NEW_CHAT": "false", "NEW_CHAT_PERCENT": "25", "CHAT_TESTERS": "ann"}
    )
    assert settings.kill_switch is True
    assert settings.defaults.new_chat_percent == 25
    assert settings.defaults.testers == ("ann",)
    with pytest.raises(SettingsError, match="NEW_CHAT_PERCENT"):
        load_flag_settings({"NEW_CHAT_PERCENT": "150"})


def test_unleash_settings_are_read_once_with_the_flags() -> None:
    settings = load_flag_settings(
        {"UNLEASH_URL": "http://unleash.test/api", "UNLEASH_TOGGLE": "chat-rollout"}
    )
    assert settings.unleash is not None
    assert settings.unleash.rollout_toggle == "chat-rollout"
    assert settings.group_id == "chat-rollout"  # Unleash's flexibleRollout groupId
    with pytest.raises(SettingsError, match="UNLEASH_URL"):
        load_flag_settings({"UNLEASH_URL": "unleash.test"})
