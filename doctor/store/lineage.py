"""The chain's lineage: a keyed hash of every refresh token this home saved, never a token itself.

Why: Claude Desktop's entry keeps the copy of the refresh token that reauth-qb or `doctor --fix`
put there, and every rotation leaves that copy behind. An older copy of the same chain is
harmless; a token of a *different consent* is a failure (DESIGN.md §9a). Token text alone cannot
tell the two apart, but "did this home ever save that token, and in which chain?" can.

So every writer of a new refresh token records it here, under the `.env` lock it already holds
(doctor/store/token_store.py): a rotation by the connector, refresh-qb or the doctor, a rotation
finished from the recovery file, a consent by reauth-qb. An entry holds HMAC-SHA256 of the token
(truncated to 128 bits) under a random key kept beside it (`token-lineage.key`, mode 0600, created
on first use), the hash of the token it replaced (a rotation), when, which program (name and
pid), the token's redacted form (`RT…a1b2`) and its kind: `consent` (a new chain starts),
`rotation`, or `found` (a token `.env` held that the lineage had not seen: written by hand, or
before the lineage existed; its origin is unknown). The key keeps the file from confirming a
guessed token to whoever reads it, and is never shown. Only the newest MAX_ENTRIES are kept.

A chain is followed from `.env`'s token back through its rotations: reaching its `consent` means
every token of that chain is known, so a token outside it belongs to another consent. Reaching a
`found` entry, or an entry whose predecessor was dropped, means the chain began before the
lineage did: a token outside it may be an older copy from that time, and nobody can tell.

Readers never create the key or the file (the doctor without `--fix` writes only through a
refresh). A damaged file reads as empty; a lost key makes the old entries unverifiable, so the
next writer starts a new lineage. Recording never raises: the lineage is evidence, and a
rotation must never fail because its evidence could not be written.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from doctor.redaction import redacted_form
from doctor.store.atomic_file import chmod_owned, replace_atomically
from doctor.store.timestamps import format_timestamp, parse_timestamp
from doctor.values import Value

LINEAGE_NAME = "token-lineage.json"
KEY_NAME = "token-lineage.key"
MODE = 0o600
# A rotation a day (INTUIT.md §2.3) keeps most of a year; a busy home with several programs still months.
MAX_ENTRIES = 300
MAX_LINEAGE_BYTES = 256 * 1024
KEY_BYTES = 32
DIGEST_CHARS = 32  # 128 bits of HMAC-SHA256

CONSENT = "consent"
ROTATION = "rotation"
FOUND = "found"
KINDS = (CONSENT, ROTATION, FOUND)

# Where Claude's copy of the token comes from (copy_origin).
THIS_CHAIN = "this_chain"  # an older (or the same) token of .env's chain
EARLIER_CONSENT = "earlier_consent"  # a token of a chain this home saved before .env's chain began
OTHER_CONSENT = "other_consent"  # never saved here, and .env's whole chain is known
UNKNOWN = "unknown"  # never saved here, but .env's chain began before the lineage: cannot tell
NO_HISTORY = "no_history"  # no lineage (yet), or it does not know .env's token

# Where `.env`'s own token stands in the lineage (env_position).
LATEST = "latest"
OLDER = "older"  # a newer token was saved after it: .env was set back, a rotation is lost
UNRECORDED = "unrecorded"

# The shapes a program word, a digest and the key's text must have, checked with sets rather than
# regular expressions: compiling three patterns cost every start of the doctor about 1 M instructions.
_HEX = frozenset("0123456789abcdef")
_PROGRAM_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_PROGRAM_CHARS = _PROGRAM_FIRST | {"_", "-"}
_PROGRAM_MAX = 40


def _is_hex(text: str, length: int) -> bool:
    """`text` is exactly `length` lowercase hex digits."""
    return len(text) == length and _HEX.issuperset(text)


def _is_program(word: str) -> bool:
    """A program word: 1 to 40 of a-z, 0-9, '_' and '-', starting with a letter or digit."""
    return 0 < len(word) <= _PROGRAM_MAX and word[0] in _PROGRAM_FIRST and _PROGRAM_CHARS.issuperset(word)


_TOKEN_PREFIX = redacted_form("refresh_token", None)  # "RT…"


class LineageEntry(Value):
    """One saved refresh token: when, its kind, which program, its redacted form, its keyed hash."""

    __slots__ = ("at", "kind", "program", "pid", "token", "digest", "replaces")

    def __init__(
        self, at: datetime, kind: str, program: str, pid: int, token: str, digest: str, replaces: str | None
    ) -> None:
        self.at = at
        self.kind = kind
        self.program = program
        self.pid = pid
        self.token = token  # the redacted form only, `RT…a1b2`
        self.digest = digest
        self.replaces = replaces  # the hash of the token a rotation replaced

    def public(self) -> dict[str, object]:
        """What support may see: no hash (it is of no use to a person), the token only redacted."""
        return {"at": format_timestamp(self.at), "kind": self.kind, "program": self.program, "pid": self.pid,
                "token": self.token}  # fmt: skip

    def to_json(self) -> dict[str, object]:
        data = self.public() | {"hmac": self.digest}
        if self.replaces is not None:
            data["replaces"] = self.replaces
        return data


class CopyOrigin(Value):
    """Where a copy of the token (Claude Desktop's) comes from, judged against `.env`'s chain.

    `origin` is one of THIS_CHAIN, EARLIER_CONSENT, OTHER_CONSENT, UNKNOWN, NO_HISTORY; `since` is
    when the lineage's knowledge of `.env`'s chain begins (its consent, or the first entry it has),
    `chain_start` that entry's kind (`consent`, `found`, or `rotation` when older ones were dropped);
    `saved_at` when the copy was saved here (EARLIER_CONSENT and THIS_CHAIN).
    """

    __slots__ = ("origin", "since", "chain_start", "saved_at")

    def __init__(
        self, origin: str, since: datetime | None, chain_start: str | None, saved_at: datetime | None = None
    ) -> None:
        self.origin = origin
        self.since = since
        self.chain_start = chain_start
        self.saved_at = saved_at


class Lineage:
    """The entries read from a home, oldest first, and (when it is intact) the key that hashed them."""

    __slots__ = ("entries", "_key")

    def __init__(self, entries: list[LineageEntry], key: bytes | None) -> None:
        self.entries = entries
        self._key = key

    def __repr__(self) -> str:  # never the key
        return f"Lineage(entries={len(self.entries)}, verifiable={self._key is not None})"

    @property
    def verifiable(self) -> bool:
        """True when tokens can be looked up: the key is there and hashed these entries."""
        return self._key is not None and bool(self.entries)

    def _index_of(self, token: str | None, before: int | None = None) -> int | None:
        if not token or self._key is None:
            return None
        return _last_index(self.entries, digest(self._key, token), before)

    def chain_of(self, token: str | None) -> tuple[list[int], LineageEntry] | None:
        """The indexes of `token`'s chain (it first, then what it replaced, back to the start) and its start."""
        index = self._index_of(token)
        if index is None:
            return None
        indexes = [index]
        while True:
            entry = self.entries[index]
            if entry.kind != ROTATION or entry.replaces is None:
                return indexes, entry
            previous = _last_index(self.entries, entry.replaces, index)
            if previous is None:  # dropped: the chain goes back further than the lineage
                return indexes, entry
            indexes.append(previous)
            index = previous

    def copy_origin(self, env_token: str | None, copy_token: str | None) -> CopyOrigin:
        """Is `copy_token` a token of `env_token`'s chain, of an earlier consent, of another one, or unknown?"""
        chain = self.chain_of(env_token) if self.verifiable else None
        if chain is None:
            return CopyOrigin(NO_HISTORY, None, None)
        indexes, start = chain
        known = start.kind == CONSENT
        copy_chain = self.chain_of(copy_token)
        if copy_chain is None:
            return CopyOrigin(OTHER_CONSENT if known else UNKNOWN, start.at, start.kind)
        saved_at = self.entries[copy_chain[0][0]].at
        if set(copy_chain[0]) & set(indexes):  # the two walks meet: one chain (the copy older, or newer)
            return CopyOrigin(THIS_CHAIN, start.at, start.kind, saved_at)
        if not known:
            return CopyOrigin(UNKNOWN, start.at, start.kind, saved_at)
        earlier = copy_chain[0][0] < indexes[-1]
        return CopyOrigin(EARLIER_CONSENT if earlier else OTHER_CONSENT, start.at, start.kind, saved_at)

    def env_position(self, env_token: str | None) -> str | None:
        """`latest`, `older` (a newer token was saved after it) or `unrecorded`; None without a usable lineage."""
        if not self.verifiable or not env_token:
            return None
        index = self._index_of(env_token)
        if index is None:
            return UNRECORDED
        return LATEST if index == len(self.entries) - 1 else OLDER

    def recent(self, count: int = 10) -> list[dict[str, object]]:
        """The newest `count` entries, oldest first, as support may see them."""
        return [entry.public() for entry in self.entries[-count:]] if count > 0 else []


def digest(key: bytes, token: str) -> str:
    """The keyed hash an entry stores for `token` (the token stripped, as `.env` and Claude's entry hold it)."""
    data = token.strip().encode("utf-8", "surrogatepass")
    return hmac_sha256(key, data).hex()[:DIGEST_CHARS]


# HMAC's two pads (RFC 2104), as byte translation tables, as the standard library's hmac keeps them.
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))
_SHA256_BLOCK = 64


def _sha256():
    """A SHA-256 constructor that does not load OpenSSL where CPython has its own.

    What it saves: `import hashlib, hmac` loads OpenSSL, 13.5 M instructions (about 4 ms), a third
    of everything the offline doctor adds to its stack's start-up once the home has a lineage; the
    built-in module costs 0.6 M. `_sha2` (3.12+) and `_sha256` (3.10, 3.11) are CPython's own
    modules; a build without them (some FIPS builds) gets hashlib's.
    """
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found,no-redef]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment]
    return sha256


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of `data` (RFC 2104), equal to `hmac.digest(key, data, "sha256")` (tested), on `_sha256()`."""
    sha256 = _sha256()
    if len(key) > _SHA256_BLOCK:
        key = sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\0")
    inner = sha256(key.translate(_INNER_PAD))
    inner.update(data)
    outer = sha256(key.translate(_OUTER_PAD))
    outer.update(inner.digest())
    return outer.digest()


def _last_index(entries: list[LineageEntry], wanted: str, before: int | None = None) -> int | None:
    end = len(entries) if before is None else before
    for index in range(end - 1, -1, -1):
        if entries[index].digest == wanted:
            return index
    return None


def _key_id(key: bytes) -> str:
    return digest(key, "sidequest token lineage key id")[:16]


def lineage_path(home: Path) -> Path:
    return Path(home) / LINEAGE_NAME


def key_path(home: Path) -> Path:
    return Path(home) / KEY_NAME


def _read_key(home: Path) -> bytes | None:
    try:
        with open(key_path(home), "rb") as handle:
            text = handle.read(4 * KEY_BYTES).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return bytes.fromhex(text) if _is_hex(text, 2 * KEY_BYTES) else None


def _new_key(home: Path) -> bytes:
    key = os.urandom(KEY_BYTES)
    replace_atomically(key_path(home), key.hex().encode("ascii") + b"\n", MODE, prefix=f".{KEY_NAME}.tmp-")
    return key


def _tail_ok(token: object) -> bool:
    if not isinstance(token, str) or not token.startswith(_TOKEN_PREFIX):
        return False
    tail = token[len(_TOKEN_PREFIX) :]
    return len(tail) <= 4 and tail.isascii() and tail.isprintable() and " " not in tail


def _entry(data: object) -> LineageEntry | None:
    if not isinstance(data, dict):
        return None
    at = parse_timestamp(data["at"]) if isinstance(data.get("at"), str) else None
    kind, program, pid = data.get("kind"), data.get("program"), data.get("pid")
    hashed, replaces = data.get("hmac"), data.get("replaces")
    if at is None or kind not in KINDS or not isinstance(program, str) or not _is_program(program):
        return None
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < 2**32 or not _tail_ok(data.get("token")):
        return None
    if not isinstance(hashed, str) or not _is_hex(hashed, DIGEST_CHARS):
        return None
    if replaces is not None and (not isinstance(replaces, str) or not _is_hex(replaces, DIGEST_CHARS)):
        return None
    return LineageEntry(at, kind, program, pid, data["token"], hashed, replaces)


def _read_file(home: Path) -> tuple[str | None, list[LineageEntry]]:
    """(the key id the entries were hashed with, the valid entries in file order); empty when damaged."""
    try:
        with open(lineage_path(home), "rb") as handle:
            raw = handle.read(MAX_LINEAGE_BYTES + 1)
    except OSError:
        return None, []
    if len(raw) > MAX_LINEAGE_BYTES:
        return None, []
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, []
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        return None, []
    key_id = data.get("key_id") if isinstance(data.get("key_id"), str) else None
    entries = [entry for entry in map(_entry, data["entries"]) if entry is not None]
    return key_id, entries[-MAX_ENTRIES:]


def read_lineage(home: Path) -> Lineage:
    """The home's lineage as it is now; never creates anything. Tokens can be looked up only with its key."""
    home = Path(home)
    key_id, entries = _read_file(home)
    if not entries:
        return Lineage([], None)
    key = _read_key(home)
    if key is not None and key_id != _key_id(key):
        key = None  # hashed with another key (the key file was replaced): the entries cannot be checked
    return Lineage(entries, key)


def program_name(command: str) -> str:
    """`sidequest refresh-qb` → `refresh-qb`: the program word an entry stores (never free text)."""
    words = str(command or "").strip().lower().split()
    word = words[-1] if words else ""
    return word if _is_program(word) else "sidequest"


def record(
    home: Path,
    token: str,
    kind: str,
    *,
    program: str,
    replaces: str | None = None,
    now: datetime | None = None,
    pid: int | None = None,
) -> bool:
    """Add `token` (saved to `.env` just now, under the lock the caller holds) to the lineage; True when saved.

    `replaces`: the token a rotation replaced; when the lineage has not seen it, it is added first
    as `found`. Never raises (see the module docstring); a home that does not exist is not created.
    """
    try:
        return _record(Path(home), token, kind, program, replaces, now, pid)
    except Exception:  # noqa: BLE001 - the token is already in .env; losing its evidence must not undo that
        return False


def _record(
    home: Path, token: str, kind: str, program: str, replaces: str | None, now: datetime | None, pid: int | None
) -> bool:
    if kind not in KINDS or not token or not token.strip() or not home.is_dir():
        return False
    program = program if _is_program(program or "") else "sidequest"
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    pid = os.getpid() if pid is None else pid
    key = _read_key(home)
    entries: list[LineageEntry] = []
    if key is None:
        key = _new_key(home)  # a new key: whatever entries exist cannot be checked any more
    else:
        _tighten(key_path(home))
        key_id, entries = _read_file(home)
        if key_id != _key_id(key):
            entries = []

    def make(value: str, what: str, replaced: str | None) -> LineageEntry:
        return LineageEntry(moment, what, program, pid, redacted_form("refresh_token", value.strip()),
                            digest(key, value), replaced)  # fmt: skip

    new = digest(key, token)
    replaced = digest(key, replaces) if kind == ROTATION and replaces and replaces.strip() else None
    if replaced == new:
        replaced = None
    if kind != CONSENT and entries and entries[-1].digest == new:
        return True  # already the newest entry: nothing new happened
    if replaced is not None and _last_index(entries, replaced) is None:
        entries.append(make(replaces, FOUND, None))
    entries.append(make(token, kind, replaced))
    body = {"version": 1, "key_id": _key_id(key), "entries": [entry.to_json() for entry in entries[-MAX_ENTRIES:]]}
    data = (json.dumps(body, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    replace_atomically(lineage_path(home), data, MODE, prefix=f".{LINEAGE_NAME}.tmp-")
    return True


def _tighten(path: Path) -> None:
    """Keep the key 0600 even if someone loosened it (best effort: the key still works either way)."""
    try:
        if os.stat(path).st_mode & 0o077:
            chmod_owned(path, MODE)
    except OSError:
        pass
