"""The rendered site config, read as text: what each chat location logs."""

from __future__ import annotations

import re

import pytest

from rollback._nginx_config import MODES, Mode, SiteConfig, render


def _locations(text: str) -> dict[str, str]:
    """Each `location ... {` block of the chat path, by its name (no nested blocks but `if`)."""
    found = {}
    for match in re.finditer(r"location (\S+(?: \S+)?) \{(.*?)\n    \}", text, re.DOTALL):
        if "chat" in match.group(1):
            found[match.group(1)] = match.group(2)
    return found


@pytest.mark.parametrize("mode", MODES)
def test_with_the_site_access_log_off_every_chat_answer_is_still_logged(mode: Mode) -> None:
    """`access_log off` beside the chat log's directive cancels both (nginx turns the whole
    level off), so `off` renders no directive at all and the chat log stays."""
    text = render(mode, SiteConfig(access_log="off", chat_log="/var/log/chat.log"))
    assert "access_log off" not in text.split("http {")[-1].split("server {", 1)[1]
    locations = _locations(text)
    answering = {name: body for name, body in locations.items() if name != "= /_chat_route"}
    assert answering, text
    for name, body in answering.items():
        assert "access_log /var/log/chat.log" in body, name


@pytest.mark.parametrize("mode", MODES)
def test_the_site_access_log_is_kept_on_every_chat_location(mode: Mode) -> None:
    text = render(mode, SiteConfig(access_log="/var/log/site.log", chat_log="/var/log/chat.log"))
    for name, body in _locations(text).items():
        if name != "= /_chat_route":  # internal: inherits the server's
            assert "access_log /var/log/site.log;" in body, name
