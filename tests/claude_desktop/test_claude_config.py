"""Tests for doctor.claude_desktop.config: real files in tmp_path and the shared real-world corpus."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from doctor.claude_desktop.config import (
    CONNECTOR_NAME,
    MAX_CONFIG_BYTES,
    SYNCED_KEYS,
    ClaudeConfigError,
    _claude_start_from_proc,
    _claude_start_from_ps,
    default_config_path,
    load_claude_config,
    resolve_command,
    started_after_config_change,
    update_connector_env,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "claude"

REFRESH_TOKEN = "RT1-secret-refresh-token-9f8e7d6c5b4a"
NEW_REFRESH_TOKEN = "RT1-brand-new-refresh-token-1a2b3c4d"
CLIENT_SECRET = "client-secret-value-that-must-not-leak"


def corpus_files(pattern: str) -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(CORPUS.glob(pattern))


def corpus_file(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not available")
    return path


VALID_CORPUS = [p for p in corpus_files("*.json") if not p.name.endswith(".INVALID.json")]
INVALID_CORPUS = corpus_files("*.INVALID.json")


def write_json(path: Path, data: object, **dump_options: object) -> Path:
    path.write_text(json.dumps(data, **dump_options), encoding="utf-8")
    return path


def typical_config() -> dict:
    """A config as a user ends up with it: other servers, app keys, Windows paths, unicode."""
    return {
        "darkMode": "light",
        "mcpServers": {
            "filesystem": {
                "command": "C:\\Program Files\\nodejs\\npx.cmd",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "D:\\MCP Mods\\data"],
            },
            CONNECTOR_NAME: {
                "command": "uvx",
                "args": ["qb-distributor-mcp"],
                "env": {
                    "QB_CLIENT_ID": "ABcd1234",
                    "QB_REFRESH_TOKEN": REFRESH_TOKEN,
                    "QB_REALM_ID": "9130350000000000",
                    "QB_ENVIRONMENT": "sandbox",
                    "COMPANY_LABEL": "Zürich ☕ Großhandel",
                },
            },
            "mysql": {"command": "npx", "env": {"MYSQL_USER": "domain\\username"}},
        },
        "preferences": {"quickEntryShortcut": "off", "epitaxyPrefs": {"x": None}},
        "unknownTopLevel": [1, 2.5, True, None, "日本語"],
    }


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


def test_update_keeps_a_real_windows_corpus_config_intact(tmp_path: Path) -> None:
    source = corpus_file("21-KyungChan-PARK-math.json")
    target = tmp_path / "claude_desktop_config.json"
    target.write_bytes(source.read_bytes())
    before = json.loads(source.read_text(encoding="utf-8"))
    entry = {"command": "uvx", "args": ["qb-distributor-mcp"]}
    result = update_connector_env(target, {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN}, create_entry=entry)
    after = json.loads(target.read_text(encoding="utf-8"))
    added = after["mcpServers"].pop(CONNECTOR_NAME)
    assert after == before
    assert added == {**entry, "env": {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN}}
    assert result.backup_path is not None
    assert result.backup_path.read_bytes() == source.read_bytes()


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


# --------------------------------------------------------------------------- updating


def test_update_changes_only_the_synced_values(tmp_path: Path) -> None:
    path = write_json(tmp_path / "claude_desktop_config.json", typical_config(), indent=4)
    before_bytes = path.read_bytes()
    result = update_connector_env(
        path,
        {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN, "QB_REALM_ID": "42", "QB_ENVIRONMENT": "sandbox"},
    )
    expected = typical_config()
    env = expected["mcpServers"][CONNECTOR_NAME]["env"]
    env.update(QB_REFRESH_TOKEN=NEW_REFRESH_TOKEN, QB_REALM_ID="42")
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == expected
    # Order survives, and so do unicode and Windows paths in their readable form.
    assert list(json.loads(text)) == list(expected)
    assert list(json.loads(text)["mcpServers"]) == list(expected["mcpServers"])
    assert "Zürich ☕ Großhandel" in text and "日本語" in text
    assert '"C:\\\\Program Files\\\\nodejs\\\\npx.cmd"' in text
    assert text.endswith("}\n") and text.startswith('{\n  "darkMode"')
    assert result.changed == {
        "QB_REFRESH_TOKEN": (REFRESH_TOKEN, NEW_REFRESH_TOKEN),
        "QB_REALM_ID": ("9130350000000000", "42"),
    }
    assert result.entry_name == CONNECTOR_NAME
    assert result.backup_path is not None
    assert result.backup_path.parent == tmp_path
    assert result.backup_path.name.startswith("claude_desktop_config.json.sidequest-backup-")
    assert result.backup_path.read_bytes() == before_bytes
    for secret in (REFRESH_TOKEN, NEW_REFRESH_TOKEN):
        assert secret not in repr(result)
    assert not list(tmp_path.glob("*.sidequest-tmp"))


def test_update_through_an_entry_found_by_env(tmp_path: Path) -> None:
    data = {"mcpServers": {"quickbooks": {"command": "python", "env": {"QB_REALM_ID": "1"}}}}
    path = write_json(tmp_path / "c.json", data)
    result = update_connector_env(path, {"QB_REALM_ID": "1", "QB_ENVIRONMENT": "production"})
    assert result.entry_name == "quickbooks"
    assert result.changed == {"QB_ENVIRONMENT": (None, "production")}
    assert json.loads(path.read_text())["mcpServers"]["quickbooks"]["env"] == {
        "QB_REALM_ID": "1",
        "QB_ENVIRONMENT": "production",
    }


def test_update_adds_env_block_and_fixes_a_number_value(tmp_path: Path) -> None:
    data = {"mcpServers": {CONNECTOR_NAME: {"command": "uvx"}, "q2": {"env": {"QB_REALM_ID": 5}}}}
    path = write_json(tmp_path / "c.json", data)
    result = update_connector_env(path, {"QB_REALM_ID": "5"})
    assert json.loads(path.read_text())["mcpServers"][CONNECTOR_NAME] == {
        "command": "uvx",
        "env": {"QB_REALM_ID": "5"},
    }
    assert result.changed == {"QB_REALM_ID": (None, "5")}


def test_bom_input_is_written_without_bom(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(typical_config()).encode())
    update_connector_env(path, {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN})
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert load_claude_config(path).connector().env["QB_REFRESH_TOKEN"] == NEW_REFRESH_TOKEN


def test_crlf_files_keep_their_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(json.dumps(typical_config(), indent=2).replace("\n", "\r\n").encode())
    update_connector_env(path, {"QB_REALM_ID": "7"})
    written = path.read_bytes()
    assert written.count(b"\n") == written.count(b"\r\n") > 1


def test_unparsable_file_is_never_touched(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    content = b'{"mcpServers": {"qb-distributor": {"env": {"QB_REALM_ID": "1",}}}}'
    path.write_bytes(content)
    mtime = os.stat(path).st_mtime_ns
    with pytest.raises(ClaudeConfigError) as caught:
        update_connector_env(path, {"QB_REALM_ID": "2"}, create_entry={"command": "uvx"})
    assert caught.value.reason == "not_json"
    assert path.read_bytes() == content
    assert os.stat(path).st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claude_desktop_config.json"]


def test_unchanged_values_are_not_rewritten(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", typical_config(), indent=4)
    before = path.read_bytes()
    mtime = os.stat(path).st_mtime_ns
    result = update_connector_env(path, {"QB_REFRESH_TOKEN": REFRESH_TOKEN, "QB_ENVIRONMENT": "sandbox"})
    assert result.changed == {}
    assert result.backup_path is None
    assert path.read_bytes() == before
    assert os.stat(path).st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


def test_file_mode_is_kept(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", typical_config())
    os.chmod(path, 0o640)
    result = update_connector_env(path, {"QB_REALM_ID": "8"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(result.backup_path).st_mode) == 0o640


def test_symlinked_config_stays_a_symlink(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = write_json(dotfiles / "claude_desktop_config.json", typical_config())
    claude = tmp_path / "Claude"
    claude.mkdir()
    link = claude / "claude_desktop_config.json"
    link.symlink_to(real)
    result = update_connector_env(link, {"QB_REALM_ID": "9"})
    assert link.is_symlink()
    assert json.loads(real.read_text())["mcpServers"][CONNECTOR_NAME]["env"]["QB_REALM_ID"] == "9"
    # The backup holds a refresh token: it goes beside the config, not into the dotfiles repo.
    assert result.backup_path.parent == claude
    assert sorted(p.name for p in dotfiles.iterdir()) == ["claude_desktop_config.json"]


def test_backups_get_a_counter_and_only_five_are_kept(tmp_path: Path) -> None:
    path = write_json(tmp_path / "claude_desktop_config.json", typical_config())
    prefix = "claude_desktop_config.json.sidequest-backup-"
    for day in range(1, 7):
        (tmp_path / f"{prefix}202001{day:02d}T000000Z").write_text("old")
    unrelated = tmp_path / f"{prefix}notes.txt"
    unrelated.write_text("mine")
    results = [update_connector_env(path, {"QB_REALM_ID": str(n)}) for n in range(3)]
    names = [r.backup_path.name for r in results]
    assert len(set(names)) == 3  # same second ⇒ counters, never an overwrite
    remaining = sorted(p.name for p in tmp_path.glob(prefix + "2*"))
    assert len(remaining) == 5
    assert set(names) <= set(remaining)
    assert f"{prefix}20200106T000000Z" in remaining
    assert unrelated.exists()
    previous_values = [
        json.loads(r.backup_path.read_text())["mcpServers"][CONNECTOR_NAME]["env"]["QB_REALM_ID"] for r in results
    ]
    assert previous_values == ["9130350000000000", "0", "1"]


def test_no_connector_without_create_entry(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", {"mcpServers": {"github": {"command": "npx"}}})
    before = path.read_bytes()
    with pytest.raises(ClaudeConfigError) as caught:
        update_connector_env(path, {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN})
    assert caught.value.reason == "no_connector"
    assert NEW_REFRESH_TOKEN not in str(caught.value)
    assert path.read_bytes() == before


def test_create_entry_adds_mcpservers_when_absent(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", {"globalShortcut": ""})
    create = {"command": "uvx", "args": ["qb-distributor-mcp"], "env": {"QB_CLIENT_ID": "id"}}
    result = update_connector_env(path, {"QB_REALM_ID": "1"}, create_entry=create)
    assert json.loads(path.read_text()) == {
        "globalShortcut": "",
        "mcpServers": {CONNECTOR_NAME: {**create, "env": {"QB_CLIENT_ID": "id", "QB_REALM_ID": "1"}}},
    }
    assert create["env"] == {"QB_CLIENT_ID": "id"}  # the caller's mapping is not mutated
    assert result.changed == {"QB_REALM_ID": (None, "1")}


def test_create_entry_refuses_to_replace_a_wrong_typed_value(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", {"mcpServers": {CONNECTOR_NAME: "oops"}})
    before = path.read_bytes()
    with pytest.raises(ClaudeConfigError):
        update_connector_env(path, {"QB_REALM_ID": "1"}, create_entry={"command": "uvx"})
    assert path.read_bytes() == before


def test_missing_file_is_created_with_just_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "Claude" / "deeper" / "claude_desktop_config.json"
    result = update_connector_env(path, {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN}, create_entry={"command": "uvx"})
    assert json.loads(path.read_text()) == {
        "mcpServers": {CONNECTOR_NAME: {"command": "uvx", "env": {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN}}}
    }
    assert result.backup_path is None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_missing_file_without_create_entry(tmp_path: Path) -> None:
    with pytest.raises(ClaudeConfigError) as caught:
        update_connector_env(tmp_path / "c.json", {"QB_REALM_ID": "1"})
    assert caught.value.reason == "missing"
    assert not (tmp_path / "c.json").exists()


def test_other_keys_and_non_string_values_are_refused(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", typical_config())
    before = path.read_bytes()
    with pytest.raises(ValueError) as caught:
        update_connector_env(path, {"QB_CLIENT_SECRET": CLIENT_SECRET})
    assert "QB_CLIENT_SECRET" in str(caught.value)
    assert CLIENT_SECRET not in str(caught.value)
    with pytest.raises(ValueError):
        update_connector_env(path, {"QB_REALM_ID": 42})  # type: ignore[dict-item]
    assert path.read_bytes() == before
    assert set(SYNCED_KEYS) == {"QB_REFRESH_TOKEN", "QB_REALM_ID", "QB_ENVIRONMENT"}


# --------------------------------------------------------------------------- locating


def test_default_path_override_wins(tmp_path: Path) -> None:
    environ = {"SIDEQUEST_CLAUDE_CONFIG": "/etc/custom.json", "XDG_CONFIG_HOME": "/x"}
    assert default_config_path(environ, "linux", tmp_path) == Path("/etc/custom.json")
    tilde = {"SIDEQUEST_CLAUDE_CONFIG": "~/c.json"}
    assert default_config_path(tilde, "darwin", tmp_path) == tmp_path / "c.json"


def test_default_path_macos(tmp_path: Path) -> None:
    assert default_config_path({}, "darwin", tmp_path) == (
        tmp_path / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    )


def test_default_path_windows_with_and_without_msix(tmp_path: Path) -> None:
    environ = {"APPDATA": str(tmp_path / "Roaming"), "LOCALAPPDATA": str(tmp_path / "Local")}
    classic = tmp_path / "Roaming" / "Claude" / "claude_desktop_config.json"
    assert default_config_path(environ, "win32", tmp_path) == classic
    msix = tmp_path / "Local" / "Packages" / "Claude_pzs8sxrjxfjjc" / "LocalCache"
    msix = msix / "Roaming" / "Claude"
    msix.mkdir(parents=True)
    assert default_config_path(environ, "win32", tmp_path) == msix / "claude_desktop_config.json"


def test_default_path_linux_xdg(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    assert default_config_path({"XDG_CONFIG_HOME": str(xdg)}, "linux", tmp_path) == (
        xdg / "Claude" / "claude_desktop_config.json"
    )
    default = tmp_path / ".config" / "Claude" / "claude_desktop_config.json"
    assert default_config_path({}, "linux", tmp_path) == default
    # A relative XDG_CONFIG_HOME is invalid by the XDG spec and ignored.
    assert default_config_path({"XDG_CONFIG_HOME": "rel"}, "linux", tmp_path) == default


def test_resolve_command(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "qb-tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    plain = tmp_path / "bin" / "not-executable"
    plain.write_text("")
    tool.chmod(0o755)
    environ = {"PATH": str(tool.parent)}
    assert resolve_command(str(tool), environ) == str(tool)
    assert resolve_command("qb-tool", environ) == str(tool)
    assert resolve_command(str(plain), environ) is None
    assert resolve_command("not-executable", environ) is None
    assert resolve_command(str(tmp_path / "absent"), environ) is None
    assert resolve_command("qb-tool", {"PATH": str(tmp_path)}) is None
    assert resolve_command("bin/qb-tool", environ) is None  # cwd of Claude Desktop is unknown
    assert resolve_command("", environ) is None


# --------------------------------------------------------------------------- restart check


def test_restart_check_runs_on_this_machine() -> None:
    started = time.perf_counter()
    assert started_after_config_change(time.time()) in (None, True, False)
    assert time.perf_counter() - started < 2
    assert started_after_config_change(time.time(), platform="win32") is None


def make_fake_proc(root: Path, processes: dict[int, tuple[str, list[str], int]], btime: int) -> Path:
    root.mkdir()
    (root / "stat").write_text(f"cpu  1 2 3\nbtime {btime}\nprocesses 9\n")
    (root / "self").mkdir()
    for pid, (comm, argv, start_ticks) in processes.items():
        folder = root / str(pid)
        folder.mkdir()
        (folder / "comm").write_text(comm + "\n")
        (folder / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        fields = ["S"] + ["0"] * 18 + [str(start_ticks)] + ["0"] * 30
        (folder / "stat").write_text(f"{pid} ({comm}) " + " ".join(fields) + "\n")
    return root


def test_proc_scan_finds_the_claude_desktop_main_process(tmp_path: Path) -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    btime = 1_700_000_000
    app = "/usr/lib/claude-desktop"
    proc = make_fake_proc(
        tmp_path / "proc",
        {
            # An Electron helper started earlier must not count.
            10: ("claude-desktop", [f"{app}/claude-desktop", "--type=renderer"], 50 * ticks),
            11: ("electron", [f"{app}/electron", f"{app}/app.asar"], 100 * ticks),
            # Claude Code's CLI is not Claude Desktop, nor is sidequest with "claude" in its args.
            12: ("claude", ["claude", "--resume"], 10 * ticks),
            13: ("python", ["python", "-m", "sidequest", "--claude-config", "/h/Claude/x"], 5),
            14: ("weird (name) x", ["/usr/bin/true"], 1 * ticks),
        },
        btime,
    )
    assert _claude_start_from_proc(proc) == btime + 100
    assert started_after_config_change(btime + 200, "linux", proc_root=proc) is True
    assert started_after_config_change(btime + 50, "linux", proc_root=proc) is False
    assert started_after_config_change(btime + 100.5, "linux", proc_root=proc) is None


def test_proc_scan_without_claude_or_without_btime(tmp_path: Path) -> None:
    proc = make_fake_proc(tmp_path / "proc", {20: ("bash", ["bash"], 5)}, 1_700_000_000)
    assert started_after_config_change(time.time(), "linux", proc_root=proc) is None
    broken = tmp_path / "broken"
    broken.mkdir()
    assert started_after_config_change(time.time(), "linux", proc_root=broken) is None
    assert started_after_config_change(time.time(), "linux", proc_root=tmp_path / "absent") is None


def test_ps_output_parsing() -> None:
    output = (
        "Mon Nov  3 09:15:02 2025     /Applications/Claude.app/Contents/Frameworks/"
        "Claude Helper (Renderer).app/Contents/MacOS/Claude Helper (Renderer)\n"
        "Mon Nov  3 09:15:00 2025     /Applications/Claude.app/Contents/MacOS/Claude\n"
        "Sun Nov  2 08:00:00 2025     /usr/sbin/cfprefsd\n"
        "garbage\n"
    )
    expected = time.mktime(time.strptime("Mon Nov 3 09:15:00 2025", "%a %b %d %H:%M:%S %Y"))
    assert _claude_start_from_ps(output) == expected
    assert _claude_start_from_ps("Sun Nov  2 08:00:00 2025 /usr/sbin/cfprefsd\n") is None


def test_a_concurrent_write_by_claude_desktop_is_not_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from doctor.claude_desktop import config as claude_config

    path = write_json(tmp_path / "c.json", typical_config())
    real_write_temp = claude_config.write_temp
    writes = []

    def write_temp_while_claude_saves(target: Path, content: bytes, mode: int, **names: str) -> Path:
        # Claude Desktop saves its preferences between our read and our replace.
        if not writes:
            data = json.loads(path.read_text())
            data["preferences"]["sidebarMode"] = "chat"
            path.write_text(json.dumps(data))
        writes.append(target)
        return real_write_temp(target, content, mode, **names)

    monkeypatch.setattr(claude_config, "write_temp", write_temp_while_claude_saves)
    result = update_connector_env(path, {"QB_REALM_ID": "77"})
    data = json.loads(path.read_text())
    assert data["preferences"]["sidebarMode"] == "chat"
    assert data["mcpServers"][CONNECTOR_NAME]["env"]["QB_REALM_ID"] == "77"
    assert len(writes) == 2
    assert json.loads(result.backup_path.read_text())["preferences"]["sidebarMode"] == "chat"
    assert not list(tmp_path.glob("*.sidequest-tmp"))


def test_a_file_that_keeps_changing_is_left_to_its_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from doctor.claude_desktop import config as claude_config

    path = write_json(tmp_path / "c.json", typical_config())
    real_write_temp = claude_config.write_temp
    saves = iter(range(100))

    def write_temp_while_claude_saves(target: Path, content: bytes, mode: int, **names: str) -> Path:
        data = json.loads(path.read_text())
        data["preferences"]["save"] = next(saves)
        path.write_text(json.dumps(data))
        return real_write_temp(target, content, mode, **names)

    monkeypatch.setattr(claude_config, "write_temp", write_temp_while_claude_saves)
    with pytest.raises(ClaudeConfigError) as caught:
        update_connector_env(path, {"QB_REALM_ID": "77"})
    assert caught.value.reason == "changed_during_update"
    last_save = path.read_text()
    assert json.loads(last_save)["preferences"]["save"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


def test_a_lone_surrogate_escape_survives_an_update(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"odd": "\\ud800", "mcpServers": {"qb-distributor": {"env": {"QB_REALM_ID": "1"}}}}')
    update_connector_env(path, {"QB_REALM_ID": "2"})
    data = json.loads(path.read_bytes().decode("utf-8"))
    assert data["odd"] == "\ud800"
    assert data["mcpServers"][CONNECTOR_NAME]["env"]["QB_REALM_ID"] == "2"


def test_a_write_the_system_refuses_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "Claude"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(ClaudeConfigError) as caught:
        update_connector_env(
            blocker / "claude_desktop_config.json",
            {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN},
            create_entry={"command": "uvx"},
        )
    assert caught.value.reason == "unwritable"
    assert NEW_REFRESH_TOKEN not in str(caught.value)
    assert blocker.read_text() == "a file where the folder should be"
