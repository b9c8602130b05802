"""Tests for doctor.claude_desktop.config (reading and judging): real files in tmp_path and the shared corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from doctor.claude_desktop.config import CONNECTOR_NAME, MAX_CONFIG_BYTES, ClaudeConfigError, load_claude_config
from tests.claude_desktop.samples import (
    CLIENT_SECRET,
    CORPUS,
    INVALID_CORPUS,
    REFRESH_TOKEN,
    VALID_CORPUS,
    corpus_file,
    typical_config,
    write_json,
)

# --------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("path", VALID_CORPUS, ids=lambda p: p.name)
def test_every_valid_corpus_config_loads_and_is_judged_without_raising(path: Path) -> None:
    config = load_claude_config(path)
    assert isinstance(config.data, dict)
    assert config.raw == path.read_bytes()
    assert not config.had_bom
    problems = config.schema_problems()
    assert all(isinstance(problem, str) for problem in problems)
    # None of the public configs is ours.
    assert config.connector() is None


@pytest.mark.parametrize("path", INVALID_CORPUS, ids=lambda p: p.name)
def test_every_invalid_corpus_config_is_not_json_with_a_position(path: Path) -> None:
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(path)
    error = caught.value
    assert error.reason == "not_json"
    assert error.line is not None and error.line >= 1
    assert error.column is not None and error.column >= 1
    assert f"line {error.line}, column {error.column}" in str(error)


def test_corpus_is_complete_when_present() -> None:
    if not CORPUS.is_dir():
        pytest.skip("shared corpus not available")
    assert len(VALID_CORPUS) == 24
    assert len(INVALID_CORPUS) == 3


def test_corpus_trailing_comma_is_located() -> None:
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(corpus_file("26-nordquant-mcp-course.INVALID.json"))
    assert (caught.value.line, caught.value.column) == (10, 3)
    # The masked Zapier key sits in that file; the message must not quote it.
    assert "sk-ak" not in str(caught.value)


def test_corpus_unclosed_root_object_is_located() -> None:
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(corpus_file("25-docker-labs-ai-tools-for-devs.INVALID.json"))
    assert (caught.value.line, caught.value.column) == (16, 1)
    assert "Expecting ',' delimiter" in str(caught.value)


def test_corpus_duplicate_mcpservers_key_is_reported() -> None:
    config = load_claude_config(corpus_file("23-DollhouseMCP-mcp-server.json"))
    # Like JSON.parse, the last one wins: the whois server is gone.
    assert list(config.data["mcpServers"]) == ["dollhousemcp"]
    problems = config.schema_problems()
    assert len(problems) == 1
    assert problems[0].startswith("mcpServers: appears 2 times")


def test_corpus_nested_mcpservers_is_an_entry_without_command() -> None:
    config = load_claude_config(corpus_file("24-DollhouseMCP-mcp-server.json"))
    assert config.schema_problems() == [
        "mcpServers.mcpServers.command: missing (required: the program Claude Desktop "
        "starts; a remote server needs a url instead)"
    ]


def test_corpus_remote_entry_without_command_is_accepted() -> None:
    config = load_claude_config(corpus_file("14-0x1D-1983-book-api-mcp-docker-compose-bundle.json"))
    assert config.schema_problems() == []


def test_corpus_windows_paths_and_unicode_are_read_exactly() -> None:
    windows = load_claude_config(corpus_file("11-oisee-odata_mcp_net.json"))
    commands = [entry.get("command", "") for entry in windows.data["mcpServers"].values()]
    assert any(command.startswith("C:\\Program Files\\") for command in commands)
    cjk = load_claude_config(corpus_file("18-Deijine-zentao-legacy-mcp.json"))
    assert any(ord(ch) > 0x3000 for ch in json.dumps(cjk.data, ensure_ascii=False))


def test_corpus_config_without_mcpservers_has_no_problems() -> None:
    for name in ("03-phatblat-dotfiles.json", "17-SamuraiBuddha-mcp-toolkit-deployment.json"):
        config = load_claude_config(corpus_file(name))
        assert "mcpServers" not in config.data
        assert config.schema_problems() == []
        assert config.connector() is None


# --------------------------------------------------------------------------- loading


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(tmp_path / "nope.json")
    assert caught.value.reason == "missing"
    assert caught.value.line is None


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  ", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n"])
def test_empty_or_whitespace_only(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(content)
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(path)
    assert caught.value.reason == "empty"


def test_bom_is_tolerated_and_remembered(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(typical_config()).encode())
    config = load_claude_config(path)
    assert config.had_bom
    assert config.data == typical_config()
    assert config.raw.startswith(b"\xef\xbb\xbf")
    assert config.mtime == os.stat(path).st_mtime


@pytest.mark.parametrize(
    ("content", "kind"),
    [("[]", "a list"), ('"x"', "a string"), ("3", "a number"), ("null", "null")],
)
def test_json_that_is_not_an_object(tmp_path: Path, content: str, kind: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(path)
    assert caught.value.reason == "not_object"
    assert kind in str(caught.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b'{\n  "mcpServers": {"x": {"command": "caf\xe9"}}}')
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(path)
    assert caught.value.reason == "not_utf8"
    assert "line 2" in str(caught.value)


def test_utf16_gets_its_own_advice(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes('{"mcpServers": {}}'.encode("utf-16"))
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(path)
    assert caught.value.reason == "not_utf8"
    assert "UTF-16" in str(caught.value)


def test_too_large_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    with open(path, "wb") as handle:
        handle.truncate(MAX_CONFIG_BYTES + 1)  # sparse: cheap to make
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(path)
    assert caught.value.reason == "too_large"


def test_exactly_the_limit_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    body = b'{"a": 1}'
    path.write_bytes(body + b" " * (MAX_CONFIG_BYTES - len(body)))
    assert load_claude_config(path).data == {"a": 1}


def test_a_folder_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(tmp_path)
    assert caught.value.reason == "unreadable"


def test_nan_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"scale": NaN}')
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(path)
    assert caught.value.reason == "not_json"


def test_parse_error_message_never_quotes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    # Two strings in a row: the error position points right at the token.
    body = '{"mcpServers": {"q": {"env": {"QB_REFRESH_TOKEN": "%s" "x"}}}}' % REFRESH_TOKEN
    path.write_text(body)
    with pytest.raises(ClaudeConfigError) as caught:
        load_claude_config(path)
    assert caught.value.reason == "not_json"
    for text in (str(caught.value), repr(caught.value)):
        assert REFRESH_TOKEN not in text
        assert REFRESH_TOKEN[:10] not in text


# --------------------------------------------------------------------------- schema and connector


def test_schema_problems_name_the_path_never_the_value(tmp_path: Path) -> None:
    data = {
        "mcpServers": {
            "directus": {"command": "npx", "env": {"DISABLE_TOOLS": ["a"], "TOKEN": CLIENT_SECRET}},
            "numbers": {"command": 7, "args": ["ok", 3], "env": {"PORT": 3001, "NONE": None}},
            "noargs": {"command": "x", "args": "--flag", "env": [CLIENT_SECRET]},
            "bare": {"args": []},
            "remote": {"type": "sse"},
            "remote-ok": {"type": "http", "url": "https://example.test/mcp"},
            "not.an.object": "npx",
        }
    }
    config = load_claude_config(write_json(tmp_path / "c.json", data))
    problems = config.schema_problems()
    assert "mcpServers.directus.env.DISABLE_TOOLS: expected a string, got a list" in problems
    assert "mcpServers.numbers.command: expected a string, got a number" in problems
    assert "mcpServers.numbers.args[1]: expected a string, got a number" in problems
    assert "mcpServers.numbers.env.PORT: expected a string, got a number" in problems
    assert "mcpServers.numbers.env.NONE: expected a string, got null" in problems
    assert "mcpServers.noargs.args: expected a list of strings, got a string" in problems
    assert "mcpServers.noargs.env: expected an object, got a list" in problems
    assert any(p.startswith("mcpServers.bare.command: missing") for p in problems)
    assert "mcpServers.remote: a remote (sse) server needs a url, and it has none" in problems
    assert 'mcpServers["not.an.object"]: expected an object, got a string' in problems
    assert not any("remote-ok" in p for p in problems)
    assert len(problems) == 10
    assert not any(CLIENT_SECRET in p or "--flag" in p for p in problems)


def test_mcpservers_of_the_wrong_type(tmp_path: Path) -> None:
    config = load_claude_config(write_json(tmp_path / "c.json", {"mcpServers": []}))
    assert config.schema_problems() == ["mcpServers: expected an object, got a list"]
    assert config.connector() is None


def test_connector_by_name_wins_over_env(tmp_path: Path) -> None:
    data = {
        "mcpServers": {
            "old-copy": {"command": "a", "env": {"QB_REALM_ID": "1"}},
            CONNECTOR_NAME: {"command": "uvx", "args": ["x", 2], "env": {"QB_REALM_ID": "2"}},
        }
    }
    entry = load_claude_config(write_json(tmp_path / "c.json", data)).connector()
    assert entry is not None
    assert (entry.name, entry.found_by, entry.command) == (CONNECTOR_NAME, "name", "uvx")
    assert entry.args == ("x", "2")
    assert entry.env == {"QB_REALM_ID": "2"}


def test_connector_found_by_env_is_the_first_in_file_order(tmp_path: Path) -> None:
    data = {
        "mcpServers": {
            "github": {"command": "npx", "env": {"GITHUB_TOKEN": "x"}},
            "quickbooks": {"command": "python", "env": {"QB_REFRESH_TOKEN": REFRESH_TOKEN}},
            "quickbooks-2": {"command": "python", "env": {"QB_REALM_ID": "1"}},
            CONNECTOR_NAME: "not an object",
        }
    }
    config = load_claude_config(write_json(tmp_path / "c.json", data))
    entry = config.connector()
    assert entry is not None
    assert (entry.name, entry.found_by) == ("quickbooks", "env")
    assert entry.args == ()
    assert REFRESH_TOKEN not in repr(entry)
    assert "QB_REFRESH_TOKEN" in repr(entry)
    assert REFRESH_TOKEN not in repr(config)
