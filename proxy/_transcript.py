"""Recorded conversations (transcripts): the stable file format `chatctl replay` reads, and an
importer for the PHP stand-in's session files.

The format (JSON lines, one conversation each; fields beyond these are allowed and ignored):

    {"conversation": str,
     "turns": [{"message": str,
                "legacy": {"status": int, "category": str | null, "step": str, "done": bool,
                           "contact"?: {"name"?: str, "phone"?: str, "email"?: str, "zip"?: str},
                           "reply"?: str}}],
     "lead"?: {"first_name", "last_name", "phone", "email", "zip", "category"}}

`contact` and `lead` are optional; a legacy reply without `reply` text is not compared on it.
Transcripts hold personal data: files are written 0600 and never logged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from common import session_hash, write_private

MAX_TURNS = 200
"""Turns kept of one conversation (a longer one is cut here: replay stays bounded)."""
MAX_MESSAGE_CHARS = 4_000
"""Legacy's own limit on a message (the stand-in refuses longer)."""


_HASH = re.compile(r"[0-9a-f]{12}")


def conversation_tag(conversation: str) -> str:
    """How a conversation is named in results and recordings: by its 12-hex hash
    (`common.session_hash`), a recorded one already is; never by its id (a transcript's id may
    be a session id, a bearer secret)."""
    return conversation if _HASH.fullmatch(conversation) else session_hash(conversation)


class TranscriptError(ValueError):
    """A transcript file that cannot be read; the message names the file and line."""


class LegacyReply(msgspec.Struct, kw_only=True):
    status: int
    step: str
    done: bool
    category: str | None = None
    contact: dict[str, str] | None = None
    reply: str | None = None

    def body(self) -> dict[str, Any]:
        """The reply as the comparison reads a legacy JSON body (only the fields it carries)."""
        found: dict[str, Any] = {"category": self.category, "step": self.step, "done": self.done}
        if self.contact is not None:
            found["contact"] = self.contact
        if self.reply is not None:
            found["reply"] = self.reply
        return found


class Turn(msgspec.Struct):
    message: str
    legacy: LegacyReply


class Lead(msgspec.Struct, kw_only=True):
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    email: str = ""
    zip: str = ""
    category: str | None = None

    def contact(self) -> dict[str, str]:
        """As a reply's `contact` object (`name` is "first last")."""
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        values = {"name": name, "phone": self.phone, "email": self.email, "zip": self.zip}
        return {field: value for field, value in values.items() if value}


class Transcript(msgspec.Struct):
    conversation: str
    turns: list[Turn]
    lead: Lead | None = None


_decoder = msgspec.json.Decoder(Transcript)
_encoder = msgspec.json.Encoder()


def read_transcripts(path: Path) -> Iterator[Transcript]:
    """Each conversation of a JSON-lines file, in order; blank lines are skipped. Raises
    TranscriptError naming the line of the first bad one (nothing is guessed)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise TranscriptError(f"{path}: {exc.strerror or exc}") from None
    seen: dict[str, int] = {}
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                transcript = _decoder.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
                raise TranscriptError(f"{path}:{number}: not a transcript: {exc}") from None
            except RecursionError:  # msgspec's guard against nesting the stack cannot hold
                raise TranscriptError(
                    f"{path}:{number}: not a transcript: nested too deep"
                ) from None
            first = seen.setdefault(transcript.conversation, number)
            if first != number:  # two lines, one id: their turns would merge in the report
                raise TranscriptError(
                    f"{path}:{number}: conversation {transcript.conversation!r} again (first on "
                    f"line {first}); give each conversation one line and its own id"
                )
            if not transcript.turns:
                raise TranscriptError(f"{path}:{number}: a conversation without turns")
            if any(len(turn.message) > MAX_MESSAGE_CHARS for turn in transcript.turns):
                raise TranscriptError(
                    f"{path}:{number}: a message over {MAX_MESSAGE_CHARS} characters"
                )
            transcript.turns = transcript.turns[:MAX_TURNS]
            yield transcript


def write_transcripts(path: Path, transcripts: Iterable[Transcript]) -> int:
    """Writes JSON lines to `path` (it holds personal data: `common.write_private`); the
    count."""
    count = 0

    def lines() -> Iterator[bytes]:
        nonlocal count
        for transcript in transcripts:
            count += 1
            yield _encoder.encode(transcript) + b"\n"

    write_private(path, lines())
    return count


class ImportTally:
    """What `from_php_sessions` skipped: files without a turn log (sessions from before the
    stand-in logged turns) and files it could not read as a session."""

    def __init__(self) -> None:
        self.without_log = 0
        self.unreadable: list[str] = []


def from_php_sessions(folder: Path, tally: ImportTally | None = None) -> Iterator[Transcript]:
    """The PHP stand-in's conversations (`LEGACY_DATA_DIR/sessions/*.json`, each with the turns
    it logged) as transcripts, oldest file first; what it skips goes to `tally`."""
    tally = tally or ImportTally()
    files = sorted(folder.glob("*.json"), key=lambda file: (file.stat().st_mtime, file.name))
    for file in files:
        try:
            session = json.loads(file.read_bytes())
        except (OSError, ValueError, RecursionError):
            tally.unreadable.append(file.name)
            continue
        log = session.get("log") if isinstance(session, dict) else None
        if not isinstance(log, list) or not log:
            tally.without_log += 1
            continue
        for turn in log:  # PHP writes an empty object back as `[]` once decoded as an array
            reply = turn.get("legacy") if isinstance(turn, dict) else None
            if isinstance(reply, dict) and reply.get("contact") == []:
                reply["contact"] = {}
        try:
            transcript = msgspec.convert(
                {"conversation": session.get("id", file.stem), "turns": log}, Transcript
            )
        except msgspec.ValidationError:
            tally.unreadable.append(file.name)
            continue
        yield transcript
