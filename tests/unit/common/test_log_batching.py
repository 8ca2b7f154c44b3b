"""INFO lines are batched off the request path; warnings and errors are written at once."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from common import LogSettings, configure_logging, flush_logs, get_logger


def _events(path: Path) -> list[str]:
    return [json.loads(line)["event"] for line in path.read_text().splitlines()]


def test_info_lines_wait_for_the_batch_and_errors_go_at_once(tmp_path: Path) -> None:
    log_file = tmp_path / "application.log"
    configure_logging(LogSettings(file=str(log_file), stdout=False, flush_interval_seconds=60))
    log = get_logger("test")
    log.info("Performance: request served", latency_ms=1.0)
    assert _events(log_file) == []  # batched, not yet written
    log.error("Lead submission failed", action="check LeadProsper")
    assert _events(log_file) == ["Performance: request served", "Lead submission failed"]
    log.info("at shutdown")
    flush_logs()
    assert _events(log_file)[-1] == "at shutdown"


def test_the_flusher_writes_batched_lines_within_the_interval(tmp_path: Path) -> None:
    configure_logging(LogSettings(file=str(tmp_path / "a.log"), stdout=False,
                                  flush_interval_seconds=60))  # fmt: skip
    log_file = tmp_path / "application.log"
    configure_logging(LogSettings(file=str(log_file), stdout=False, flush_interval_seconds=0.05))
    started = time.monotonic()
    get_logger("test").info("Category detection", method="offline")
    while not _events(log_file) and time.monotonic() - started < 5:
        time.sleep(0.01)
    assert _events(log_file) == ["Category detection"]
    assert time.monotonic() - started < 2  # not the 60 s of the set-up before


def test_zero_interval_writes_every_line_at_once(tmp_path: Path) -> None:
    log_file = tmp_path / "application.log"
    configure_logging(LogSettings(file=str(log_file), stdout=False, flush_interval_seconds=0))
    get_logger("test").info("Category detection", method="offline")
    assert _events(log_file) == ["Category detection"]


def test_a_new_set_up_first_writes_what_the_old_one_held(tmp_path: Path) -> None:
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    configure_logging(LogSettings(file=str(old), stdout=False, flush_interval_seconds=60))
    get_logger("test").info("for the old file")
    configure_logging(LogSettings(file=str(new), stdout=False, flush_interval_seconds=60))
    assert _events(old) == ["for the old file"]
    assert not new.exists() or _events(new) == []


def test_personal_fields_are_redacted_whatever_the_caller_passes(tmp_path: Path) -> None:
    """The redaction step itself: a caller that logs contact details by their usual names
    (a bug elsewhere) still writes none of them."""
    log_file = tmp_path / "application.log"
    configure_logging(LogSettings(file=str(log_file), stdout=False, flush_interval_seconds=0))
    personal = {
        "name": "Zelda Quixote",
        "first_name": "Zelda",
        "last_name": "Quixote",
        "full_name": "Zelda Quixote",
        "phone": "5552017788",
        "email": "zelda.q@example.com",
        "zip": "90210",
        "zip_code": "90210",
        "message": "my neck hurts",
        "text": "my neck hurts",
        "reply": "Thanks, Zelda",
        "description": "rear ended on the 405",
        "cookie": "chat_sid=abc.def",
        "authorization": "Bearer sk-live",
        "token": "ann.n.1.mac",
        "api_key": "lp-key",
        "secret": "s3cr3t",
        "password": "hunter2",
    }
    get_logger("test").warning("Lead submission", lead_id="L1", **personal)
    line = json.loads(log_file.read_text().splitlines()[-1])
    assert line["lead_id"] == "L1"
    for key, value in personal.items():
        assert line[key] == "[redacted]", key
        assert value not in log_file.read_text(), key


def test_the_log_file_and_its_folder_are_owner_only_from_creation(tmp_path: Path) -> None:
    previous = os.umask(0)  # even a permissive umask cannot widen them
    try:
        configure_logging(LogSettings(file=str(tmp_path / "logs" / "app.log"), stdout=False))
    finally:
        os.umask(previous)
    assert ((tmp_path / "logs").stat().st_mode & 0o777) == 0o700
    assert ((tmp_path / "logs" / "app.log").stat().st_mode & 0o777) == 0o600


def test_emails_and_phones_are_redacted_by_value_in_every_field(tmp_path: Path) -> None:
    """Under any key, nested, in the event text or a traceback: a partner's message or an
    exception can echo contact details anywhere (issue 18)."""
    log_file = tmp_path / "application.log"
    configure_logging(LogSettings(file=str(log_file), stdout=False, flush_interval_seconds=0))
    log = get_logger("test")
    phones = ["(555) 201-7788", "555-201-7788", "555.201.7788", "5552017788", "+1 555 201 7788",
              "1-555-201-7788", "+44 20 7946 0958", "+525512345678"]  # fmt: skip
    emails = ["zelda.q@example.com", "a+b@mail.example.co.uk"]
    log.warning(
        "Partner said zelda.q@example.com is bad",
        detail=f"rejected {phones[0]} and {emails[1]}",
        nested={"said": [f"call {phones[1]}", {"deep": phones[2]}], "email": "x"},
        listed=[phones[3], phones[4], phones[5]],
        foreign=f"{phones[6]} / {phones[7]}",
    )
    try:
        int(f"bad contact {emails[0]} {phones[3]}")
    except ValueError:
        log.exception("Lead submission crashed", lead_id="L1")
    kept = {
        "address": "127.0.0.1:58803",
        "url": "http://10.0.12.7:8080/api/chat",
        "at": "2026-12-02T05:28:21.123806Z",
        "version": "v1.22.3",
        "instance": "vm-9855-46ea",
        "lead": "550e8400-e29b-41d4-a716-446655440000",
        "zip_count": "12345 leads",
    }
    log.info("Performance: request served", **kept)
    written = log_file.read_text()
    for value in phones + emails:
        assert value not in written, value
    assert "5552017788" not in written.replace("-", "").replace(".", "").replace(" ", "")
    lines = [json.loads(line) for line in written.splitlines()]
    assert lines[0]["event"] == "Partner said [redacted] is bad"
    assert lines[0]["nested"] == {"said": ["call [redacted]", {"deep": "[redacted]"}],
                                  "email": "[redacted]"}  # fmt: skip
    assert lines[0]["foreign"] == "[redacted] / [redacted]"
    assert (
        "invalid literal for int() with base 10: 'bad contact [redacted] [redacted]'"
        in (lines[1]["exception"])
    )
    assert all(lines[2][key] == value for key, value in kept.items())  # operators keep these
