"""Tests for doctor.store.env_file: python-dotenv-exact reading and byte-preserving rewrites.

The corpus (python-dotenv's own test cases and real QuickBooks .env.example files) lives in
/work/shared/corpus beside the repository; those tests skip when it is absent.
"""

from __future__ import annotations

import io
import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values
from dotenv import parser as dotenv_parser

from doctor.store import env_file
from doctor.store.env_file import (
    MAX_ENV_BYTES,
    EnvFileError,
    format_value,
    leftover_temp_files,
    read_env_file,
    update_env_file,
)

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
DOTENV_CORPUS = CORPUS / "dotenv"


def _cases() -> list[dict]:
    cases_file = DOTENV_CORPUS / "cases.json"
    if not cases_file.is_file():
        return []
    return json.loads(cases_file.read_text(encoding="utf-8"))["cases"]


def _real_files() -> list[Path]:
    real = DOTENV_CORPUS / "real"
    return sorted(real.glob("*.env.example")) if real.is_dir() else []


CASES = _cases()
REAL_FILES = _real_files()
needs_corpus = pytest.mark.skipif(not CASES, reason="shared corpus not found beside the repository")


def _interpolation_matters(case: dict) -> bool:
    # read_env_file never interpolates (DESIGN.md §6); the upstream cases that do can only
    # be compared with python-dotenv run the same way.
    if not case["interpolate"]:
        return False
    with_interp = dotenv_values(stream=io.StringIO(case["input"]), interpolate=True)
    without = dotenv_values(stream=io.StringIO(case["input"]), interpolate=False)
    return with_interp != without


# ---------------------------------------------------------------- python-dotenv's parser, loaded on its own


def _bindings(parse_stream, text: str) -> list[tuple]:
    return [(b.key, b.value, b.original, b.error) for b in parse_stream(io.StringIO(text))]


@needs_corpus
def test_own_copy_of_the_parser_parses_the_corpus_as_python_dotenv_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same source file loaded under another name: every binding (key, value, source text
    # with its line, error flag) is the same as python-dotenv's own import gives.
    monkeypatch.delitem(sys.modules, "dotenv.parser")  # this process imported dotenv already
    own = env_file._dotenv_parser()
    assert own is not dotenv_parser and own.__name__ == "doctor.store._dotenv_parser"
    assert Path(own.__file__).samefile(dotenv_parser.__file__)
    texts = [case["input"] for case in CASES] + [path.read_text(encoding="utf-8") for path in REAL_FILES]
    for text in texts:
        assert _bindings(own.parse_stream, text) == _bindings(dotenv_parser.parse_stream, text)


def test_parser_falls_back_to_the_ordinary_import(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.machinery import PathFinder

    monkeypatch.delitem(sys.modules, "dotenv.parser")
    monkeypatch.setattr(PathFinder, "find_spec", classmethod(lambda cls, name, path=None, target=None: None))
    assert env_file._dotenv_parser() is dotenv_parser  # not found on the path: dotenv's own import


def test_parser_already_imported_is_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dotenv.parser", dotenv_parser)
    assert env_file._dotenv_parser() is dotenv_parser


def test_reading_env_loads_no_part_of_dotenv_but_its_parser_and_leaves_dotenv_importable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("QB_REALM_ID=123\n")
    script = (
        "import sys\n"
        "from doctor.store.env_file import read_env_file\n"
        f"assert read_env_file({str(tmp_path / '.env')!r}).values == {{'QB_REALM_ID': '123'}}\n"
        "unused = ('dotenv', 'dotenv.main', 'dotenv.parser', 'logging', 'tempfile')\n"
        "print(sorted(m for m in unused if m in sys.modules))\n"
        "import dotenv\n"  # a later ordinary import (the connector's) still works, with its own parser
        f"print(dict(dotenv.dotenv_values({str(tmp_path / '.env')!r})), dotenv.parser.parse_stream.__module__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "{'QB_REALM_ID': '123'} dotenv.parser"]


# ---------------------------------------------------------------- reading the corpus


@needs_corpus
@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_corpus_case_matches_python_dotenv(case: dict) -> None:
    env_file = read_env_file(DOTENV_CORPUS / case["file"], encoding=case["input_encoding"])
    if _interpolation_matters(case):
        expected = dotenv_values(stream=io.StringIO(case["input"]), interpolate=False)
        # Interpolation changes values, never which keys exist.
        assert sorted(env_file.values) == sorted(case["expected_dotenv_values"])
    else:
        expected = case["expected_dotenv_values"]
    assert env_file.values == expected


@needs_corpus
def test_interpolating_cases_are_a_small_known_set() -> None:
    # Guards the comparison above: if most cases fell into the "interpolation matters" branch,
    # the corpus test would be checking python-dotenv against itself.
    interpolating = [c["id"] for c in CASES if _interpolation_matters(c)]
    assert len(interpolating) <= 20
    assert all("$" in c["input"] for c in CASES if c["id"] in interpolating)


@needs_corpus
def test_latin1_case_is_refused_as_utf8_with_a_line_number() -> None:
    with pytest.raises(EnvFileError) as info:
        read_env_file(DOTENV_CORPUS / "case-69.env")
    assert info.value.reason == "not_utf8"
    assert "line 1" in str(info.value)


@needs_corpus
def test_malformed_lines_are_reported_with_line_numbers_not_content() -> None:
    env_file = read_env_file(DOTENV_CORPUS / "case-39.env")
    case = next(c for c in CASES if c["id"] == "case-39")
    assert [p.line for p in env_file.problems] == [1]
    for problem in env_file.problems:
        for fragment in case["input"].split():
            if len(fragment) > 2:
                assert fragment not in problem.text


@needs_corpus
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name[:20])
def test_real_env_examples_read_like_python_dotenv(path: Path) -> None:
    env_file = read_env_file(path)
    assert env_file.values == dotenv_values(path, interpolate=False)


@needs_corpus
def test_crlf_real_file_is_detected() -> None:
    crlf = next(p for p in REAL_FILES if p.name.startswith("13-"))
    assert read_env_file(crlf).newline == "\r\n"


# ---------------------------------------------------------------- reading: bad input


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError) as info:
        read_env_file(tmp_path / ".env")
    assert info.value.reason == "missing"


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    with pytest.raises(EnvFileError) as info:
        read_env_file(tmp_path / ".env")
    assert info.value.reason == "not_a_file"
    assert "folder" in str(info.value)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / ".env"
    os.mkfifo(fifo)
    with pytest.raises(EnvFileError) as info:
        read_env_file(fifo)
    assert info.value.reason == "not_a_file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads mode-000 files")
def test_mode_000_is_unreadable(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("QB_REFRESH_TOKEN=RTsecret1234\n")
    env.chmod(0)
    with pytest.raises(EnvFileError) as info:
        read_env_file(env)
    assert info.value.reason == "unreadable"


def test_unreadable_when_a_parent_folder_denies_access(tmp_path: Path) -> None:
    # Tests run as root, which ignores mode bits: read from a child that dropped to nobody.
    if os.geteuid() != 0:
        pytest.skip("covered by test_mode_000_is_unreadable")
    import subprocess
    import sys

    env = tmp_path / ".env"
    env.write_text("QB_REFRESH_TOKEN=RTsecret1234\n")
    env.chmod(0)
    tmp_path.chmod(0o755)
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from doctor.store.env_file import read_env_file, EnvFileError\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    read_env_file(Path(sys.argv[1]))\n"
        "except EnvFileError as exc:\n"
        "    print(exc.reason); print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(env)], capture_output=True, text=True, timeout=30)
    if "PermissionError" in done.stderr and "setuid" in done.stderr:
        pytest.skip("cannot drop privileges here")
    lines = done.stdout.splitlines()
    assert lines and lines[0] == "unreadable", done.stderr
    assert "RTsecret1234" not in done.stdout + done.stderr


def test_ten_megabyte_file_is_refused_before_parsing(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    with open(env, "wb") as handle:
        handle.write(b"QB_REFRESH_TOKEN=RTsecret1234\n")
        handle.write(b"# padding\n" * 1_000_000)
    with pytest.raises(EnvFileError) as info:
        read_env_file(env)
    assert info.value.reason == "too_large"
    assert "RTsecret1234" not in str(info.value)


def test_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    head = b"A=1\n"
    env.write_bytes(head + b"#" * (MAX_ENV_BYTES - len(head)))
    assert read_env_file(env).values == {"A": "1"}


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_bytes(b"QB_REALM_ID=1\n" + bytes(range(256)) * 4)
    with pytest.raises(EnvFileError) as info:
        read_env_file(env)
    assert info.value.reason == "binary"
    assert "line 2" in str(info.value)


def test_invalid_utf8_is_refused(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_bytes(b"A=1\nB=\xff\xfe\n")
    with pytest.raises(EnvFileError) as info:
        read_env_file(env)
    assert info.value.reason == "not_utf8"
    assert "line 2" in str(info.value)


def test_html_is_read_with_problems_not_a_crash(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("<!DOCTYPE html>\n<html><body>Sign in</body></html>\nQB_REALM_ID=123\n")
    env_file = read_env_file(env)
    assert env_file.get("QB_REALM_ID") == "123"
    assert env_file.problems and all(p.line in (1, 2) for p in env_file.problems)


def test_bom_and_crlf(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_bytes(b"\xef\xbb\xbfQB_REALM_ID=123\r\nQB_ENVIRONMENT=sandbox\r\n")
    env_file = read_env_file(env)
    assert env_file.had_bom and env_file.newline == "\r\n"
    assert env_file.values == {"QB_REALM_ID": "123", "QB_ENVIRONMENT": "sandbox"}


def test_get_strips_and_treats_empty_as_missing(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A='  x  '\nB=\nC\nD=''\n")
    env_file = read_env_file(env)
    assert env_file.get("A") == "x"
    assert env_file.get("B") is None and env_file.get("C") is None and env_file.get("D") is None
    assert env_file.get("Z") is None


def test_problem_line_numbers_skip_the_blank_lines_before(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n\n\nthis is not valid: x\nB=2\n")
    env_file = read_env_file(env)
    assert [p.line for p in env_file.problems] == [4]
    assert "this is not" not in env_file.problems[0].text


def test_repr_holds_no_values(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("QB_REFRESH_TOKEN=RTsecretvalue9876\n")
    assert "RTsecretvalue9876" not in repr(read_env_file(env))


# ---------------------------------------------------------------- rewriting


@needs_corpus
@pytest.mark.parametrize(
    "path",
    REAL_FILES + [DOTENV_CORPUS / c["file"] for c in CASES if c["input_encoding"] == "utf-8"],
    ids=lambda p: p.name[:20],
)
def test_rotation_round_trip_on_every_corpus_file(tmp_path: Path, path: Path) -> None:
    original = path.read_bytes()
    env = tmp_path / ".env"
    env.write_bytes(original)
    before = read_env_file(env).values
    update_env_file(env, {"QB_REFRESH_TOKEN": "RTnew-0001.abcd"})
    after_bytes = env.read_bytes()
    after = read_env_file(env).values
    assert after["QB_REFRESH_TOKEN"] == "RTnew-0001.abcd"
    assert {k: v for k, v in after.items() if k != "QB_REFRESH_TOKEN"} == {
        k: v for k, v in before.items() if k != "QB_REFRESH_TOKEN"
    }
    if "QB_REFRESH_TOKEN" not in before:
        # Appended: everything before the new line is the original, byte for byte.
        assert after_bytes.startswith(original)
        tail = after_bytes[len(original) :]
        assert tail.rstrip(b"\r\n").lstrip(b"\r\n") == b"QB_REFRESH_TOKEN=RTnew-0001.abcd"
    # A second rotation changes nothing but the token.
    update_env_file(env, {"QB_REFRESH_TOKEN": "RTnew-0002.wxyz"})
    assert env.read_bytes() == after_bytes.replace(b"RTnew-0001.abcd", b"RTnew-0002.wxyz")
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


LEGACY = (
    "# SideQuest connector settings\n"
    "\n"
    "export QB_CLIENT_ID=ABclientid123\n"
    "QB_CLIENT_SECRET='secret with spaces'   # keep me\n"
    "  QB_REFRESH_TOKEN=RTold000000001   # the chain\n"
    'UNKNOWN_KEY="double quoted ${NOT_EXPANDED}"\n'
    "\n"
    "# trailing comment\n"
    "QB_REALM_ID=9130350000000000\n"
)


def test_replace_in_place_keeps_prefix_indentation_and_inline_comment(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(LEGACY)
    update_env_file(env, {"QB_REFRESH_TOKEN": "RTnew000000002"})
    assert env.read_text() == LEGACY.replace("RTold000000001", "RTnew000000002")


def test_export_prefix_is_kept(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(LEGACY)
    update_env_file(env, {"QB_CLIENT_ID": "other"})
    assert "export QB_CLIENT_ID=other\n" in env.read_text()


def test_hundred_rotations_preserve_everything_else(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_bytes(b"\xef\xbb\xbf" + LEGACY.replace("\n", "\r\n").encode())
    env.chmod(0o644)
    update_env_file(env, {"QB_TOKEN_REFRESHED_AT": "2026-01-01T00:00:00Z"})
    baseline = env.read_bytes()
    for i in range(100):
        token = f"RTrot{i:09d}"
        update_env_file(
            env, {"QB_REFRESH_TOKEN": token, "QB_TOKEN_REFRESHED_AT": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z"}
        )
        assert stat.S_IMODE(env.stat().st_mode) == 0o600
    final = env.read_bytes()
    expected = baseline.replace(b"RTold000000001", b"RTrot000000099").replace(
        b"2026-01-01T00:00:00Z", b"2026-01-01T00:01:39Z"
    )
    assert final == expected
    assert final.startswith(b"\xef\xbb\xbf") and b"\r\n" in final and final.count(b"\n") == final.count(b"\r\n")
    assert leftover_temp_files(tmp_path) == []


def test_new_key_appended_with_file_newline_and_missing_final_newline(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_bytes(b"A=1\r\nB=2")
    update_env_file(env, {"QB_REALM_ID": "42"})
    assert env.read_bytes() == b"A=1\r\nB=2\r\nQB_REALM_ID=42\r\n"


def test_last_duplicate_is_replaced_earlier_left_alone(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("QB_REFRESH_TOKEN=first\n# x\nQB_REFRESH_TOKEN=second\nZ=1\n")
    update_env_file(env, {"QB_REFRESH_TOKEN": "third"})
    assert env.read_text() == "QB_REFRESH_TOKEN=first\n# x\nQB_REFRESH_TOKEN=third\nZ=1\n"
    assert read_env_file(env).values["QB_REFRESH_TOKEN"] == "third"


def test_none_removes_only_that_line(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n\n# c\nQB_REFRESH_TOKEN_HARD_EXPIRES_AT=2030-01-01T00:00:00Z\nB=2\n")
    update_env_file(env, {"QB_REFRESH_TOKEN_HARD_EXPIRES_AT": None, "NOT_THERE": None})
    assert env.read_text() == "A=1\n\n# c\nB=2\n"


def test_new_file_is_created_0600(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    old_umask = os.umask(0)
    try:
        update_env_file(env, {"QB_REALM_ID": "1", "QB_ENVIRONMENT": "sandbox"})
    finally:
        os.umask(old_umask)
    assert env.read_text() == "QB_REALM_ID=1\nQB_ENVIRONMENT=sandbox\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


def test_symlinked_env_rewrites_the_target(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "qb.env"
    real.parent.mkdir()
    real.write_text("A=1\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    update_env_file(link, {"A": "2"})
    assert link.is_symlink() and real.read_text() == "A=2\n"


@pytest.mark.parametrize(
    "content, reason",
    [(b"A=1\n\x00\x01\x02", "binary"), (b"A=\xff\n", "not_utf8")],
)
def test_unreadable_files_are_never_rewritten(tmp_path: Path, content: bytes, reason: str) -> None:
    env = tmp_path / ".env"
    env.write_bytes(content)
    with pytest.raises(EnvFileError) as info:
        update_env_file(env, {"QB_REFRESH_TOKEN": "RTsecret5555"})
    assert info.value.reason == reason
    assert "RTsecret5555" not in str(info.value)
    assert env.read_bytes() == content
    assert leftover_temp_files(tmp_path) == []


def test_oversized_file_is_never_rewritten(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    with open(env, "wb") as handle:
        handle.truncate(MAX_ENV_BYTES + 10)
    with pytest.raises(EnvFileError) as info:
        update_env_file(env, {"A": "1"})
    assert info.value.reason == "too_large"
    assert env.stat().st_size == MAX_ENV_BYTES + 10


def test_directory_env_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    with pytest.raises(EnvFileError):
        update_env_file(tmp_path / ".env", {"A": "1"})
    assert (tmp_path / ".env").is_dir()


TRICKY_VALUES = [
    "",
    "with spaces",
    'double "quotes"',
    "single 'quotes'",
    "hash # inside",
    "#leading-hash",
    "dollar $HOME ${HOME}",
    "back\\slash \\n not a newline",
    "trailing backslash\\",
    "real\nnewline\r\nand\ttab",
    "  padded  ",
    "unicode é — 🏢",
    "=equals=",
    "'",
    '"',
    "\\'",
    '\\"',
]


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_tricky_values_round_trip(tmp_path: Path, value: str) -> None:
    env = tmp_path / ".env"
    env.write_text("# head\nX=old # comment\nY=keep\n")
    update_env_file(env, {"X": value, "NEW": value})
    values = read_env_file(env).values
    assert values["X"] == value and values["NEW"] == value and values["Y"] == "keep"
    assert dotenv_values(env, interpolate=False)["X"] == value
    assert env.read_text().startswith("# head\n")


def test_random_values_round_trip(tmp_path: Path) -> None:
    rng = random.Random(1234)
    alphabet = "aZ09 _-=#$'\"\\\n\r\t{}é😀:/"
    env = tmp_path / ".env"
    env.write_text("KEEP=1\n")
    for _ in range(200):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        update_env_file(env, {"V": value})
        assert read_env_file(env).values == {"KEEP": "1", "V": value}


def test_bare_formatting_for_token_like_values() -> None:
    assert format_value("AB11-x.y_z:/+=@") == "AB11-x.y_z:/+=@"
    assert format_value("a b") == '"a b"'


def test_bad_keys_and_values_are_rejected_without_writing(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    with pytest.raises(ValueError):
        update_env_file(env, {"BAD KEY": "1"})
    with pytest.raises(ValueError) as info:
        update_env_file(env, {"A": "RTsecret\x00x"})
    assert "RTsecret" not in str(info.value)
    assert env.read_text() == "A=1\n"


def test_leftover_temp_files_lists_only_env_temps(tmp_path: Path) -> None:
    (tmp_path / ".env.tmp-abc123").write_text("x")
    (tmp_path / ".env").write_text("A=1\n")
    (tmp_path / "other.tmp-1").write_text("x")
    assert leftover_temp_files(tmp_path) == [tmp_path / ".env.tmp-abc123"]
    assert leftover_temp_files(tmp_path / "nope") == []
