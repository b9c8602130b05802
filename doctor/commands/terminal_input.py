"""What a person types or pastes into the terminal while `sidequest reauth-qb` waits.

Why it exists: reauth-qb waits for the browser and for the keyboard at once (the paste
fallback, then perhaps a yes/no question), so standard input is read line by line in the
background and handed over through a queue; and what people paste (the whole address the
browser ended on, a bare query string, or the code and the company ID typed separately) must
be understood the same way every time. The rules for what makes a reply acceptable live in
`doctor.commands.consent_listener.judge_reply`, shared with the loopback listener.
"""

from __future__ import annotations

import codecs
import os
import queue
import sys
import threading
import time

from doctor.commands.consent_listener import ConsentReply, Refused, is_realm_id, judge_reply, query_params


class TerminalLines:
    """Lines typed or pasted on standard input, read in the background (None at end of input)."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.closed = False

    def get(self, timeout: float) -> str | None | bool:
        """A line, None at end of input, False when nothing arrived within `timeout`."""
        if self.closed:
            time.sleep(timeout)
            return False
        try:
            line = self.queue.get(timeout=timeout)
        except queue.Empty:
            return False
        if line is None:
            self.closed = True
        return line


def read_stdin_lines() -> TerminalLines:
    """Start reading standard input in a daemon thread; closed at once when there is none."""
    lines = TerminalLines()
    stream = sys.stdin
    try:
        fd = stream.fileno() if stream is not None else None
    except (OSError, ValueError):
        fd = None
    if fd is None:
        lines.closed = True
        return lines

    def read() -> None:
        # os.read, not sys.stdin: a daemon thread parked inside the buffered reader's lock
        # makes interpreter shutdown abort ("could not acquire lock for <stdin>").
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            pending += decoder.decode(chunk, final=not chunk)
            *complete, pending = pending.split("\n")
            for line in complete:
                lines.queue.put(line.rstrip("\r"))
            if not chunk:
                if pending.strip():
                    lines.queue.put(pending)
                lines.queue.put(None)
                return

    threading.Thread(target=read, name="stdin-reader", daemon=True).start()
    return lines


def stdin_is_terminal() -> bool:
    """Whether a person can answer a question here (a pipe or a closed stdin cannot)."""
    try:
        return bool(sys.stdin) and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def answered_yes(lines: TerminalLines, deadline: float, poll: float = 0.2) -> bool:
    """True when the next line typed before `deadline` is y or yes; anything else, or nothing, is no."""
    while time.monotonic() < deadline:
        line = lines.get(poll)
        if line is False:
            continue
        return isinstance(line, str) and line.strip().lower() in ("y", "yes")
    return False


class PasteReader:
    """Understands what a person pastes: the final address, a query string, or code and company ID.

    `feed` returns a ConsentReply or Refused once a line completes one, None while more is
    needed (then `wants_realm` says the company ID is missing).
    """

    def __init__(self, expected_state: str) -> None:
        self.expected_state = expected_state
        self.code: str | None = None
        self.realm_id: str | None = None

    @property
    def wants_realm(self) -> bool:
        return self.code is not None and self.realm_id is None

    def feed(self, line: str) -> ConsentReply | Refused | None:
        text = line.strip().strip("'\"<>")
        if not text:
            return None
        if "code=" in text or "error=" in text or "realmId=" in text:
            query = text.split("?", 1)[1] if "?" in text else text
            params = query_params(query.split("#", 1)[0])
            if "code" not in params and "error" not in params and self.code:
                params["code"] = self.code
            verdict = judge_reply(params, self.expected_state, "paste", require_state=False)
            if isinstance(verdict, Refused) and verdict.reason == "incomplete" and params.get("code"):
                self.code = params["code"].strip()
                return None
            return verdict
        words = text.replace(",", " ").split()
        if self.wants_realm and len(words) == 1 and not is_realm_id(words[0]):
            return Refused("paste", "bad_realm")  # typed as the company ID, but not a number
        for word in words:
            if is_realm_id(word):
                self.realm_id = word
            else:
                self.code = word
        if self.code and self.realm_id:
            return ConsentReply("paste", code=self.code, realm_id=self.realm_id)
        return None
