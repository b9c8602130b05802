"""The one writer to the terminal (and to `--output` files) for every sidequest command.

Why it exists: text reaches a person or Claude from many places (the doctor's report, reauth-qb's
progress lines, refresh-qb's outcome, --fix's questions, the last-resort error line), and each
place once did its own redaction and writing. Now every command hands its text to one `Console`,
which, in this order:

1. redacts every secret it knows (the run's, and those a command learns as it goes: the new
   token, the authorization code) with `doctor.redaction.Redactor`;
2. escapes every C0 and C1 control character, so a company name, an Intuit error description,
   a Claude config server name or a lock owner record cannot move the cursor, recolour or hide
   lines, or write the clipboard (OSC 52). Newline and tab stay, because they only lay text out;
   in JSON output a control character becomes a `\\u00XX` escape, which keeps the JSON's value;
3. canary-scans the final text for every form of every secret (fail closed: `SecretLeak`);
4. writes it, degrading characters the stream's encoding cannot show.

Colour is the one thing that must reach a terminal as control codes: renderers ask for it with
`Styled` text (pieces that carry a style name), and only this module turns a style name into an
SGR sequence, after the pieces' own text was escaped.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path
from typing import Iterable, TextIO

from doctor.redaction import Redactor

# The renderers' style names and the SGR codes they stand for; nothing else is ever emitted raw.
STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}

# C0, DEL and C1. Newline stays (it lays text out), and tab in text; carriage return is escaped:
# it returns to the start of the line, which is enough to overwrite (forge) what a line says.
_CONTROLS = tuple(chr(c) for c in (*range(0x00, 0x0A), *range(0x0B, 0x20), *range(0x7F, 0xA0)))
_pattern: re.Pattern[str] | None = None


def _controls_in(text: str) -> re.Pattern[str] | None:
    """The pattern of control characters when `text` holds one, else None.

    Most output holds none; 64 substring searches cost a tenth of compiling the regex, which
    is then compiled only for text that needs it.
    """
    global _pattern
    if not any(char in text for char in _CONTROLS):
        return None
    if _pattern is None:
        _pattern = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
    return _pattern


def _as_text_escape(match: re.Match[str]) -> str:
    char = match.group()
    return char if char == "\t" else f"\\x{ord(char):02x}"


def _as_json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_controls(text: str) -> str:
    """`text` with every control character but newline and tab shown as `\\xNN`."""
    pattern = _controls_in(text)
    return pattern.sub(_as_text_escape, text) if pattern else text


def escape_controls_json(text: str) -> str:
    """JSON text with every control character but the layout's newlines as a `\\u00NN` escape.

    Inside json.dumps output a raw control character can only sit in a string (it escapes C0
    but not C1), where the escape keeps the value.
    """
    pattern = _controls_in(text)
    return pattern.sub(_as_json_escape, text) if pattern else text


class Styled:
    """Text made of pieces, each with an optional style name from STYLES.

    `str()` gives the plain text; `Console.write` escapes each piece and adds the style's
    terminal codes itself, so no renderer ever puts a control character into its output.
    """

    __slots__ = ("pieces",)

    def __init__(self, pieces: Iterable[tuple[str, str | None]] = ()) -> None:
        self.pieces: list[tuple[str, str | None]] = list(pieces)

    def add(self, text: str, style: str | None = None) -> Styled:
        if style is not None and style not in STYLES:
            raise ValueError(f"unknown style {style!r}")
        self.pieces.append((text, style))
        return self

    def map_text(self, change) -> Styled:
        return Styled((change(text), style) for text, style in self.pieces)

    def __str__(self) -> str:
        return "".join(text for text, _ in self.pieces)


class OutputFileError(Exception):
    """`--output FILE` could not be written; nothing was written there."""


class Console:
    """Redacts, escapes, canary-scans and writes; learns secrets as a command meets them.

    Thread-safe: reauth-qb's browser thread and its main thread both say things.
    """

    def __init__(
        self,
        secrets: Iterable[tuple[str, str]] = (),
        client_id: str | None = None,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self._secrets: list[tuple[str, str]] = [(k, v) for k, v in secrets if v]
        self._client_id = client_id
        self._stdout = stdout
        self._stderr = stderr
        self._lock = threading.RLock()
        self._redactor: Redactor | None = None

    # -- what it knows -------------------------------------------------------------------------

    def know(self, kind: str, value: str | None) -> None:
        """Learn one more secret (redacted from everything written from now on)."""
        if value:
            with self._lock:
                if (kind, value) not in self._secrets:
                    self._secrets.append((kind, value))
                    self._redactor = None

    def know_all(self, secrets: Iterable[tuple[str, str]], client_id: str | None = None) -> None:
        for kind, value in secrets:
            self.know(kind, value)
        if client_id:
            self.know_client_id(client_id)

    def know_client_id(self, client_id: str | None) -> None:
        """The client id is not secret, but with the secret it forms the Basic header the canary knows."""
        if client_id:
            with self._lock:
                self._client_id = client_id
                self._redactor = None

    def adopt(self, redactor: Redactor) -> None:
        """Use a redactor already built for these secrets (the doctor run's), adding what it knows."""
        with self._lock:
            known = [(s.kind, s.value) for s in redactor.secrets]
            if self._secrets and any(pair not in known for pair in self._secrets):
                self.know_all(known, redactor.client_id)
                return
            self._secrets = known
            self._client_id = redactor.client_id or self._client_id
            self._redactor = redactor

    def redactor(self) -> Redactor:
        with self._lock:
            if self._redactor is None:
                self._redactor = Redactor(self._secrets, client_id=self._client_id)
            return self._redactor

    # -- making text safe ------------------------------------------------------------------------

    def clean(self, text: str, *, json: bool = False) -> str:
        """Redacted, escaped and canary-checked text (raises SecretLeak rather than return a secret)."""
        redactor = self.redactor()
        return redactor.check(self._safe(redactor, text, json=json))

    @staticmethod
    def _safe(redactor: Redactor, text: str, *, json: bool = False) -> str:
        text = redactor.redact_text(text)
        return escape_controls_json(text) if json else escape_controls(text)

    def _finish(self, text: str | Styled, *, json: bool, colour: bool) -> str:
        if not isinstance(text, Styled):
            return self.clean(text, json=json)
        redactor = self.redactor()
        plain = str(text)
        if self._safe(redactor, plain) == plain:  # the usual case: nothing to hide or escape
            cleaned = text.pieces
        else:
            cleaned = [(self._safe(redactor, piece), style) for piece, style in text.pieces]
            plain = "".join(piece for piece, _ in cleaned)
        # One canary scan of the whole text, so a secret straddling two pieces is caught too.
        redactor.check(plain)
        if not colour:
            return plain
        return "".join(f"\033[{STYLES[style]}m{piece}\033[0m" if style and piece else piece for piece, style in cleaned)

    # -- writing ---------------------------------------------------------------------------------

    def say(self, text: str, *, err: bool = False) -> None:
        """One message (one or more lines) for a person."""
        self.write(text + "\n", err=err)

    def write(
        self,
        text: str | Styled,
        *,
        err: bool = False,
        output: Path | None = None,
        json: bool = False,
        colour: bool = False,
    ) -> None:
        """Write text to `output`, or to standard output (standard error with `err`).

        Nothing is written unless the whole text passed the canary; `colour` turns Styled
        pieces into terminal colours (only ever for a stream, never for a file).
        """
        final = self._finish(text, json=json, colour=colour and output is None)
        if output is not None:
            write_file_atomically(output, final)
            return
        stream = self.stream(err)
        encoding = getattr(stream, "encoding", None) or "utf-8"
        data = final.encode(encoding, "replace").decode(encoding, "replace")
        with self._lock:
            stream.write(data)
            stream.flush()

    def stream(self, err: bool = False) -> TextIO:
        if err:
            return self._stderr or sys.stderr
        return self._stdout or sys.stdout

    def is_terminal(self, err: bool = False) -> bool:
        isatty = getattr(self.stream(err), "isatty", None)
        try:
            return bool(isatty and isatty())
        except (ValueError, OSError):
            return False


def write_file_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temp file only this process could have created.

    The temp file comes from mkstemp (O_CREAT|O_EXCL, a random name, mode 0600) in the target's
    folder, so a name planted in advance (a symlink to someone else's file) is never followed;
    `os.replace` then swaps it in, replacing a symlink at `path` itself rather than writing through it.
    A new file is 0600 (a report names paths and the company); a replaced one keeps its mode.
    """
    import stat
    import tempfile

    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputFileError(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        try:
            previous = os.lstat(path)
        except OSError:
            previous = None
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            if previous is not None and stat.S_ISREG(previous.st_mode) and hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), stat.S_IMODE(previous.st_mode))
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise OutputFileError(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None
