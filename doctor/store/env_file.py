"""Read and rewrite the connector's `HOME/.env` without losing a byte the owner wrote.

The `.env` file is the single source of truth for the rotating refresh token (DESIGN.md §6),
and it is also a file a person edits by hand: comments, `export` prefixes, unknown keys,
CRLF from a Windows editor, a BOM from Notepad. Reading must follow python-dotenv exactly
(the connector reads it with python-dotenv), and a rotation must change only sidequest's
keys. So this module parses with python-dotenv's own parser and rewrites by splicing the
parser's per-binding source text, never by re-serialising the whole file.

Nothing here takes the cross-process lock: `update_env_file` expects its caller (the token
store) to hold it. Nothing here ever puts a value into an exception message: values may be
secrets.
"""

from __future__ import annotations

import io
import os
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from doctor.store.atomic_file import ForeignTarget, replace_atomically, resolve_for_write
from doctor.values import Value

_PARSER_NAME = "doctor.store._dotenv_parser"  # the name python-dotenv's parser module is loaded under here


def _dotenv_parser() -> ModuleType:
    """python-dotenv's own parser module (dotenv/parser.py), without running the package's `__init__`.

    Start-up trick: `import dotenv.parser` first runs `dotenv/__init__.py`, which imports
    dotenv.main and with it logging, tempfile, shutil (bz2, lzma) and random, none of which reading
    a `.env` uses: 56.5 M instructions (callgrind) on top of click and pluggy, of which the offline
    doctor saves 34 M (311.7 M -> 277.6 M; it needs pathlib and urllib.parse from that list anyway).
    parser.py itself imports only codecs, re and typing, so it is loaded here from the
    file the ordinary import would find, under a name of our own: a later `import dotenv` (the
    connector's, say) loads its own copy as usual. The parse is the same code either way (a test
    holds the two equal on the corpus); if the file cannot be found or loaded this way, the
    ordinary import is used.
    """
    if "dotenv.parser" in sys.modules:  # already paid for
        return sys.modules["dotenv.parser"]
    try:
        from importlib.machinery import PathFinder, SourceFileLoader

        package = PathFinder.find_spec("dotenv")
        path = os.path.join(package.submodule_search_locations[0], "parser.py")  # type: ignore[union-attr]
        loader = SourceFileLoader(_PARSER_NAME, path)
        module = ModuleType(_PARSER_NAME)
        module.__file__, module.__loader__ = path, loader
        loader.exec_module(module)
        return module
    except Exception:
        from dotenv import parser

        return parser


_parser = _dotenv_parser()
Binding, parse_stream = _parser.Binding, _parser.parse_stream

# A .env holds a handful of lines (this connector writes about 500 bytes). Parsing grows with the
# number of lines (1 MB of bare words took 23 s, longer than the doctor's whole budget, with the lock
# held), so anything past 64 KiB is refused before it is parsed.
MAX_ENV_BYTES = 64 * 1024
TEMP_PREFIX = ".env.tmp-"
ENV_FILE_MODE = 0o600

_BOM = b"\xef\xbb\xbf"
# Values made only of these characters need no quoting in any dotenv dialect; tokens,
# realm ids and ISO timestamps all fit, so the common case stays readable.
_BARE_VALUE = r"[A-Za-z0-9._:/+=@-]*"
_KEY = r"[A-Za-z_][A-Za-z0-9_.]*"
# The same patterns python-dotenv's parser uses (dotenv/parser.py); re-applied to one
# binding's source text to find where its value sits, so the rest of the line survives.
# Kept as strings and compiled on first use through re's cache: only a rewrite needs them,
# and compiling them all at import was a noticeable share of the doctor's start-up.
_EXPORT = r"(?:export[^\S\r\n]+)?"
_SINGLE_QUOTED_KEY = r"'([^']+)'"
_UNQUOTED_KEY = r"([^=\#\s]+)"
_INLINE_SPACE = r"[^\S\r\n]*"
_EQUAL_SIGN = r"(=[^\S\r\n]*)"
_SINGLE_QUOTED_VALUE = r"(?s)'((?:\\.|[^'\\])*)'"
_DOUBLE_QUOTED_VALUE = r'(?s)"((?:\\.|[^"\\])*)"'
_UNQUOTED_VALUE = r"([^\r\n]*)"
_INLINE_COMMENT = r"\s+#.*"
_NEWLINE_AT_END = r"(\r\n|\n|\r)\Z"


class EnvFileError(Exception):
    """The `.env` file cannot be used; the message is for a person and holds no value.

    `reason` is one of: missing, not_a_file, unreadable, too_large, binary, not_utf8, foreign_target.
    """

    def __init__(self, reason: str, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.path = path


class LineProblem(Value):
    """A line python-dotenv ignores. `text` describes it; it never quotes the line."""

    __slots__ = ("line", "text")

    def __init__(self, line: int, text: str) -> None:
        self.line = line
        self.text = text


class EnvFile(Value):
    __slots__ = ("path", "values", "problems", "had_bom", "newline", "mode", "mtime", "encoding")

    def __init__(
        self,
        path: Path,
        values: dict[str, str | None],
        problems: tuple[LineProblem, ...],
        had_bom: bool,
        newline: str,
        mode: int,
        mtime: float,
        encoding: str = "utf-8",
    ) -> None:
        self.path = path
        self.values = values  # holds secrets: never in the repr
        self.problems = problems
        self.had_bom = had_bom
        self.newline = newline
        self.mode = mode
        self.mtime = mtime
        self.encoding = encoding

    def __repr__(self) -> str:
        return (
            f"EnvFile(path={str(self.path)!r}, keys={sorted(self.values)!r}, problems={self.problems!r}, "
            f"had_bom={self.had_bom!r}, newline={self.newline!r}, mode={oct(self.mode)}, encoding={self.encoding!r})"
        )

    def get(self, key: str) -> str | None:
        """The value with surrounding whitespace removed, or None when missing or empty."""
        value = self.values.get(key)
        if value is None:
            return None
        value = value.strip()
        return value or None


class _Loaded(Value):
    __slots__ = ("text", "had_bom", "mode", "mtime")

    def __init__(self, text: str, had_bom: bool, mode: int, mtime: float) -> None:
        self.text = text
        self.had_bom = had_bom
        self.mode = mode
        self.mtime = mtime


def _load(path: Path, encoding: str) -> _Loaded:
    """Read the raw file with every refusal `read_env_file` promises, then decode it."""
    shown = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise EnvFileError("missing", f"{shown} does not exist", path) from None
    except NotADirectoryError:
        raise EnvFileError("missing", f"{shown} does not exist (a parent is not a folder)", path) from None
    except PermissionError:
        raise EnvFileError("unreadable", f"{shown} cannot be reached: permission denied", path) from None
    except OSError as exc:
        raise EnvFileError("unreadable", f"{shown} cannot be read: {exc.strerror}", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise EnvFileError("not_a_file", f"{shown} is a folder, not a file", path)
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or device would block or stream forever; refuse before opening it.
        raise EnvFileError("not_a_file", f"{shown} is not a regular file", path)
    if st.st_size > MAX_ENV_BYTES:
        raise EnvFileError(
            "too_large",
            f"{shown} is {st.st_size:,} bytes; a .env file over {MAX_ENV_BYTES:,} bytes is refused "
            "(it is almost certainly not a .env file)",
            path,
        )
    try:
        with open(path, "rb") as handle:
            # Read one byte past the limit: the file may have grown since stat().
            data = handle.read(MAX_ENV_BYTES + 1)
            st = os.fstat(handle.fileno())
    except PermissionError:
        raise EnvFileError(
            "unreadable", f"{shown} cannot be read: permission denied (mode {st.st_mode & 0o777:03o})", path
        ) from None
    except OSError as exc:
        raise EnvFileError("unreadable", f"{shown} cannot be read: {exc.strerror}", path) from None
    if len(data) > MAX_ENV_BYTES:
        raise EnvFileError(
            "too_large", f"{shown} is over {MAX_ENV_BYTES:,} bytes; a .env file that large is refused", path
        )
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise EnvFileError(
            "binary", f"{shown} holds binary data (a NUL byte on line {line}); it is not a text .env file", path
        )
    had_bom = data.startswith(_BOM) and encoding.replace("-", "").replace("_", "").lower() in ("utf8", "utf8sig")
    if had_bom:
        data = data[len(_BOM) :]
    try:
        text = data.decode("utf-8" if encoding.lower() == "utf-8-sig" else encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EnvFileError(
            "not_utf8",
            f"{shown} is not valid {encoding} text (first bad byte on line {line}); save it as UTF-8 in your editor",
            path,
        ) from None
    return _Loaded(text=text, had_bom=had_bom, mode=st.st_mode & 0o777, mtime=st.st_mtime)


def _detect_newline(text: str) -> str:
    if "\r\n" in text:
        return "\r\n"
    if "\n" in text:
        return "\n"
    # A file with bare CR breaks only (old Mac editors): python-dotenv splits on them too.
    if "\r" in text:
        return "\r"
    return os.linesep if os.linesep == "\r\n" else "\n"


def _leading_space_length(original: str) -> int:
    return len(original) - len(original.lstrip())  # what a `\s*` match would cover


def _first_line_of(binding: Binding) -> int:
    """The line the statement starts on (python-dotenv counts from the blank lines before it)."""
    lead = binding.original.string[: _leading_space_length(binding.original.string)]
    return binding.original.line + len(re.findall(r"\r\n|\n|\r", lead))


def _describe_problem(statement: str) -> str:
    first_line = statement.strip().splitlines()[0] if statement.strip() else ""
    if first_line.count('"') % 2 == 1 or first_line.count("'") % 2 == 1:
        return "unterminated quote; python-dotenv ignores this line"
    if "=" not in first_line:
        return "not a KEY=value line (no '='); python-dotenv ignores it"
    return "could not be parsed as KEY=value; python-dotenv ignores it"


def _problems(bindings: list[Binding]) -> tuple[LineProblem, ...]:
    problems = []
    for binding in bindings:
        if binding.error:
            start = _leading_space_length(binding.original.string)
            problems.append(LineProblem(_first_line_of(binding), _describe_problem(binding.original.string[start:])))
    return tuple(problems)


def read_env_file(path: Path, *, encoding: str = "utf-8") -> EnvFile:
    """Read `.env` with python-dotenv semantics (no interpolation, last key wins).

    Raises EnvFileError for a missing, unreadable, oversized, binary or undecodable file.
    `encoding` exists for the rare hand-made Latin-1 file; the connector's files are UTF-8.
    """
    path = Path(path)
    loaded = _load(path, encoding)
    bindings = list(parse_stream(io.StringIO(loaded.text)))
    # Exactly what dotenv_values(interpolate=False) builds from the same bindings (later keys
    # win), without parsing twice or letting python-dotenv log about malformed lines.
    values = {b.key: b.value for b in bindings if b.key is not None}
    return EnvFile(
        path=path,
        values=values,
        problems=_problems(bindings),
        had_bom=loaded.had_bom,
        newline=_detect_newline(loaded.text),
        mode=loaded.mode,
        mtime=loaded.mtime,
        encoding=encoding,
    )


def format_value(value: str) -> str:
    """The value as it goes after `KEY=`: bare when safe, else double-quoted.

    Inside double quotes python-dotenv decodes exactly \\\\ \\" \\n \\r \\t (and a few more),
    so escaping those five makes every string read back unchanged, on one physical line.
    """
    if re.fullmatch(_BARE_VALUE, value):
        return value
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _validate_updates(updates: Mapping[str, str | None]) -> None:
    for key, value in updates.items():
        if not isinstance(key, str) or not re.fullmatch(_KEY, key):
            raise ValueError(f"not a .env key name: {key!r}")
        if value is not None:
            if not isinstance(value, str):
                raise TypeError(f"the value for {key} must be a str or None, not {type(value).__name__}")
            if "\x00" in value:
                raise ValueError(f"the value for {key} contains a NUL character and cannot be stored in .env")


def _value_span(statement: str) -> tuple[int, int, bool] | None:
    """Where the value of one binding sits in its source text: (start, end, has_equal_sign).

    Mirrors python-dotenv's parse_binding step by step, so that the prefix (blank lines before,
    indentation, `export `, key, `=` and its spaces) and the suffix (inline comment, line end)
    are kept exactly as written. None when the text does not look like a binding after all.
    """
    pos = _leading_space_length(statement)
    pos = re.compile(_EXPORT).match(statement, pos).end()
    key_match = re.compile(_SINGLE_QUOTED_KEY if statement[pos : pos + 1] == "'" else _UNQUOTED_KEY).match(
        statement, pos
    )
    if key_match is None:
        return None
    pos = key_match.end()
    pos = re.compile(_INLINE_SPACE).match(statement, pos).end()
    if statement[pos : pos + 1] != "=":
        return pos, pos, False
    equal = re.compile(_EQUAL_SIGN).match(statement, pos)
    pos = equal.end()
    first = statement[pos : pos + 1]
    if len(equal.group(1)) > 1 and first == "#":
        return pos, pos, True
    if first in ("'", '"'):
        quoted = re.compile(_SINGLE_QUOTED_VALUE if first == "'" else _DOUBLE_QUOTED_VALUE).match(statement, pos)
        if quoted is None:
            return None
        return pos, quoted.end(), True
    if first in ("", "\n", "\r"):
        return pos, pos, True
    part = re.compile(_UNQUOTED_VALUE).match(statement, pos).group(1)
    comment = re.search(_INLINE_COMMENT, part)
    kept = part[: comment.start()] if comment else part
    return pos, pos + len(kept.rstrip()), True


def _replace_value(statement: str, value: str) -> str | None:
    span = _value_span(statement)
    if span is None:
        return None
    start, end, has_equal = span
    rest = statement[end:]
    encoded = format_value(value)
    # A bare value glued to a following `#...` would swallow it; quoting keeps the comment a comment.
    if rest[:1] not in ("", " ", "\t", "\r", "\n") and not encoded.startswith('"'):
        encoded = f'"{encoded}"'
    prefix = statement[:start] if has_equal else statement[:start] + "="
    return prefix + encoded + rest


def _removed(statement: str) -> str:
    """Drop one binding's statement but keep the blank lines python-dotenv glued in front of it."""
    return statement[: _leading_space_length(statement)]


def _splice(text: str, updates: Mapping[str, str | None], newline: str) -> str:
    bindings = list(parse_stream(io.StringIO(text)))
    if "".join(b.original.string for b in bindings) != text:
        # The parser's segments always tile the text; if a future python-dotenv breaks that,
        # refuse rather than write a file that lost something.
        raise EnvFileError("unreadable", "the .env file could not be split into lines safely; nothing was changed")
    segments = [b.original.string for b in bindings]
    last_index: dict[str, int] = {}
    for index, binding in enumerate(bindings):
        if not binding.error and binding.key is not None:
            last_index[binding.key] = index
    appended: list[str] = []
    for key, value in updates.items():
        index = last_index.get(key)
        if index is None:
            if value is not None:
                appended.append(f"{key}={format_value(value)}{newline}")
            continue
        if value is None:
            segments[index] = _removed(segments[index])
            continue
        replaced = _replace_value(segments[index], value)
        if replaced is None:
            # Should not happen for a binding python-dotenv accepted; append rather than guess.
            appended.append(f"{key}={format_value(value)}{newline}")
        else:
            segments[index] = replaced
    result = "".join(segments)
    if appended:
        if result and not re.search(_NEWLINE_AT_END, result):
            result += newline
        result += "".join(appended)
    return result


def write_atomically(path: Path, data: bytes, mode: int = ENV_FILE_MODE) -> None:
    """Replace `path` with `data` via a temp file in the same folder, fsync and os.replace."""
    replace_atomically(path, data, mode, prefix=TEMP_PREFIX)


def update_env_file(path: Path, updates: Mapping[str, str | None], *, encoding: str = "utf-8") -> None:
    """Set (or with None, remove) the given keys in `.env`, keeping every other byte.

    The caller holds the lock. The file is re-read here, so a change another process made
    under the lock is never overwritten. A missing file is created with mode 0600; a file
    that cannot be read (binary, too large, undecodable) is refused and left untouched.
    """
    path = Path(path)
    _validate_updates(updates)
    # Rewrite the target of a symlinked .env (dotfile managers do this), not the link; but never
    # a target that belongs to someone else.
    try:
        target = resolve_for_write(path)
    except ForeignTarget as exc:
        raise EnvFileError("foreign_target", f"{exc}; nothing was changed", path) from None
    try:
        loaded = _load(target, encoding)
    except EnvFileError as exc:
        if exc.reason != "missing":
            raise EnvFileError(exc.reason, f"{exc} — not rewriting it, nothing was changed", path) from None
        if not target.parent.is_dir():
            raise EnvFileError(
                "missing", f"the folder {target.parent} does not exist; nothing was written", path
            ) from None
        loaded = _Loaded(text="", had_bom=False, mode=ENV_FILE_MODE, mtime=0.0)
    newline = _detect_newline(loaded.text) if loaded.text else "\n"
    text = _splice(loaded.text, updates, newline)
    data = text.encode(encoding)
    if loaded.had_bom:
        data = _BOM + data
    write_atomically(target, data)


def leftover_temp_files(home: Path) -> list[Path]:
    """`.env.tmp-*` files an interrupted write left behind (safe to delete; `.env` is intact)."""
    home = Path(home)
    try:
        names = os.listdir(home)  # not Path.glob: it compiles a regex for a prefix test
    except OSError:
        return []
    return sorted(home / name for name in names if name.startswith(TEMP_PREFIX) and (home / name).is_file())
