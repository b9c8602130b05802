"""Tests for doctor.claude_desktop.update: real files in tmp_path, backups, concurrent writers."""

from __future__ import annotations

import calendar
import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from doctor.claude_desktop.config import CONNECTOR_NAME, SYNCED_KEYS, ClaudeConfigError, load_claude_config
from doctor.claude_desktop.entry_copy import load_entry_copy
from doctor.claude_desktop.update import DesktopRunning, restore_connector_entry, update_connector_env
from tests.claude_desktop.samples import (
    CLIENT_SECRET,
    NEW_REFRESH_TOKEN,
    REFRESH_TOKEN,
    corpus_file,
    typical_config,
    write_json,
)
from tests.support.homes import cli_env, run_cli, write_env
from tests.support.local_support import fresh_values, rich_config, synced_env, write_claude_config


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
        old = tmp_path / f"{prefix}202001{day:02d}T000000Z"
        old.write_text("old")
        stamp = calendar.timegm((2020, 1, day, 0, 0, 0))
        os.utime(old, (stamp, stamp))
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


BACKUP_PREFIX = "claude_desktop_config.json.sidequest-backup-"


def dated_backups(folder: Path, stamps: list[str], modified: list[float]) -> list[Path]:
    """Backups named by `stamps` whose files were last modified at `modified` (epoch seconds)."""
    made = []
    for stamp, when in zip(stamps, modified):
        backup = folder / f"{BACKUP_PREFIX}{stamp}"
        backup.write_text(f"backup {stamp}")
        os.utime(backup, (when, when))
        made.append(backup)
    return made


def test_a_clock_once_ahead_never_prunes_the_backup_just_written(tmp_path: Path) -> None:
    # Five backups written while the computer's clock said 2099: named and modified "in the future".
    path = write_json(tmp_path / "claude_desktop_config.json", typical_config())
    future = calendar.timegm((2099, 1, 1, 0, 0, 0))
    ahead = dated_backups(tmp_path, [f"209901{d:02d}T000000Z" for d in range(1, 6)], [future + d for d in range(5)])
    result = update_connector_env(path, {"QB_REALM_ID": "5"})
    assert result.backup_path.exists()  # the file the user is told about is there
    assert json.loads(result.backup_path.read_text())["mcpServers"][CONNECTOR_NAME]["env"]["QB_REALM_ID"] == (
        "9130350000000000"
    )
    remaining = sorted(tmp_path.glob(BACKUP_PREFIX + "*"))
    assert len(remaining) == 5
    assert not ahead[0].exists() and all(backup.exists() for backup in ahead[1:])


def test_backups_are_pruned_least_recently_modified_first(tmp_path: Path) -> None:
    # Names and modification times disagree (the clock was set back and forth): the times win.
    path = write_json(tmp_path / "claude_desktop_config.json", typical_config())
    now = time.time()
    stamps = [f"202001{d:02d}T000000Z" for d in range(1, 7)]
    backups = dated_backups(tmp_path, stamps, [now - 3600 * (10 - d) for d in (6, 5, 4, 3, 2, 1)])
    result = update_connector_env(path, {"QB_REALM_ID": "6"})
    assert result.backup_path.exists()
    # Modified longest ago: the two with the latest names.
    assert [backup.exists() for backup in backups] == [True, True, True, True, False, False]


def test_fix_names_a_backup_that_exists_after_the_clock_ran_ahead(tmp_path: Path) -> None:
    home = tmp_path / "home"
    values = fresh_values()
    write_env(home, values)
    config = tmp_path / "Claude" / "claude_desktop_config.json"
    write_claude_config(config, rich_config(synced_env(values) | {"QB_REALM_ID": "4620816365000000000"}))
    future = calendar.timegm((2099, 1, 1, 0, 0, 0))
    dated_backups(config.parent, [f"209901{d:02d}T000000Z" for d in range(1, 6)], [future + d for d in range(5)])
    result = run_cli("doctor", "--offline", "--fix", "--yes", env=cli_env(home, config))
    assert result.returncode == 0, result.stderr
    named = [word.rstrip(".,;") for word in result.stderr.split() if BACKUP_PREFIX in word]
    assert named, result.stderr
    assert Path(named[0]).exists()
    assert len(list(config.parent.glob(BACKUP_PREFIX + "*"))) == 5


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


def test_a_concurrent_write_by_claude_desktop_is_not_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from doctor.claude_desktop import update as claude_update

    path = write_json(tmp_path / "c.json", typical_config())
    real_write_temp = claude_update.write_temp
    writes = []

    def write_temp_while_claude_saves(target: Path, content: bytes, mode: int, **names: str) -> Path:
        # Claude Desktop saves its preferences between our read and our replace.
        if not writes:
            data = json.loads(path.read_text())
            data["preferences"]["sidebarMode"] = "chat"
            path.write_text(json.dumps(data))
        writes.append(target)
        return real_write_temp(target, content, mode, **names)

    monkeypatch.setattr(claude_update, "write_temp", write_temp_while_claude_saves)
    result = update_connector_env(path, {"QB_REALM_ID": "77"})
    data = json.loads(path.read_text())
    assert data["preferences"]["sidebarMode"] == "chat"
    assert data["mcpServers"][CONNECTOR_NAME]["env"]["QB_REALM_ID"] == "77"
    assert len(writes) == 2
    assert json.loads(result.backup_path.read_text())["preferences"]["sidebarMode"] == "chat"
    assert not list(tmp_path.glob("*.sidequest-tmp"))


def test_a_file_that_keeps_changing_is_left_to_its_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from doctor.claude_desktop import update as claude_update

    path = write_json(tmp_path / "c.json", typical_config())
    real_write_temp = claude_update.write_temp
    saves = iter(range(100))

    def write_temp_while_claude_saves(target: Path, content: bytes, mode: int, **names: str) -> Path:
        data = json.loads(path.read_text())
        data["preferences"]["save"] = next(saves)
        path.write_text(json.dumps(data))
        return real_write_temp(target, content, mode, **names)

    monkeypatch.setattr(claude_update, "write_temp", write_temp_while_claude_saves)
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


# --------------------------------------------------------------------------- the known-good copy (issue 10 §4)


def test_each_write_keeps_a_copy_of_the_entry_without_its_secrets(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    data = typical_config()
    data["mcpServers"][CONNECTOR_NAME]["env"]["QB_CLIENT_SECRET"] = CLIENT_SECRET
    path = write_claude_config(tmp_path / "Claude" / "claude_desktop_config.json", data)
    result = update_connector_env(path, {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN}, keep_copy_in=home)
    assert result.copy_path == home / "claude-entry.json"
    assert stat.S_IMODE(result.copy_path.stat().st_mode) == 0o600
    text = result.copy_path.read_text(encoding="utf-8")
    for secret in (REFRESH_TOKEN, NEW_REFRESH_TOKEN, CLIENT_SECRET):
        assert secret not in text
    copy = load_entry_copy(home)
    assert copy.name == CONNECTOR_NAME and copy.is_for(path)
    assert copy.command == "uvx" and copy.args == ("qb-distributor-mcp",)
    assert copy.entry["env"] == {"QB_CLIENT_ID": "ABcd1234", "COMPANY_LABEL": "Zürich ☕ Großhandel"}
    assert copy.from_env == ("QB_CLIENT_SECRET", "QB_ENVIRONMENT", "QB_REALM_ID", "QB_REFRESH_TOKEN")
    entry = load_claude_config(path).connector()
    assert copy.differences(entry) == []
    # Restored from .env's values, the entry is the one written, value for value.
    rebuilt, lacking = copy.rebuilt(
        {
            "QB_CLIENT_SECRET": CLIENT_SECRET,
            "QB_ENVIRONMENT": "sandbox",
            "QB_REALM_ID": "9130350000000000",
            "QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN,
        }
    )
    assert lacking == [] and rebuilt == json.loads(path.read_text(encoding="utf-8"))["mcpServers"][CONNECTOR_NAME]
    assert not list(home.glob("*.sidequest-tmp"))


def test_an_unchanged_entry_still_records_its_copy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    path = write_json(tmp_path / "c.json", typical_config())
    before = path.read_bytes()
    result = update_connector_env(path, {"QB_REFRESH_TOKEN": REFRESH_TOKEN}, keep_copy_in=home)
    assert not result.anything_changed and path.read_bytes() == before
    assert load_entry_copy(home).is_for(path)


def test_restore_puts_the_entry_back_and_keeps_everything_else(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    path = write_claude_config(tmp_path / "Claude" / "claude_desktop_config.json", typical_config())
    update_connector_env(path, {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN}, keep_copy_in=home)
    written = json.loads(path.read_text(encoding="utf-8"))
    wiped = {k: v for k, v in written.items() if k != "mcpServers"} | {"mcpServers": {"mysql": {"command": "npx"}}}
    write_json(path, wiped)
    copy = load_entry_copy(home)
    entry, lacking = copy.rebuilt(
        {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN, "QB_REALM_ID": "9130350000000000", "QB_ENVIRONMENT": "sandbox"}
    )
    result = restore_connector_entry(path, copy.name, entry, keep_copy_in=home)
    assert result.restored and json.loads(result.backup_path.read_text(encoding="utf-8")) == wiped
    after = json.loads(path.read_text(encoding="utf-8"))
    assert after["mcpServers"]["mysql"] == {"command": "npx"}
    assert after["mcpServers"][CONNECTOR_NAME] == written["mcpServers"][CONNECTOR_NAME]
    assert {k: v for k, v in after.items() if k != "mcpServers"} == {
        k: v for k, v in written.items() if k != "mcpServers"
    }
    again = restore_connector_entry(path, copy.name, entry, keep_copy_in=home)
    assert not again.restored and again.backup_path is None


# --------------------------------------------------------------------------- the command (issue 11)


def test_launch_sets_the_command_and_drops_the_old_programs_args(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", typical_config())
    before = json.loads(path.read_text(encoding="utf-8"))
    result = update_connector_env(path, {}, launch={"command": "/opt/qb/bin/qb-distributor-mcp", "args": []})
    assert result.launch_changed == {
        "command": ("uvx", "/opt/qb/bin/qb-distributor-mcp"),
        "args": (["qb-distributor-mcp"], []),
    }
    after = json.loads(path.read_text(encoding="utf-8"))
    entry = after["mcpServers"][CONNECTOR_NAME]
    assert entry["command"] == "/opt/qb/bin/qb-distributor-mcp" and entry["args"] == []
    before["mcpServers"][CONNECTOR_NAME].update(command=entry["command"], args=[])
    assert after == before  # every other entry and value as it was
    assert result.backup_path is not None
    same = update_connector_env(path, {}, launch={"command": "/opt/qb/bin/qb-distributor-mcp", "args": []})
    assert not same.anything_changed and same.backup_path is None


# --------------------------------------------------------------------------- Claude Desktop running (issue 10 §4)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fake Claude Desktop is a Linux process")
def test_no_write_while_a_desktop_reading_the_file_runs(tmp_path: Path) -> None:
    from tests.support.fake_desktop import desktop_running

    home = tmp_path / "home"
    home.mkdir()
    path = write_claude_config(tmp_path / "Claude" / "claude_desktop_config.json", typical_config())
    other = write_claude_config(tmp_path / "Other" / "Claude" / "claude_desktop_config.json", typical_config())
    before = path.read_bytes()
    with desktop_running(path, tmp_path / "desk"):
        with pytest.raises(DesktopRunning) as refused:
            update_connector_env(path, {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN}, keep_copy_in=home)
        assert refused.value.reason == "desktop_running" and "running" in refused.value.message
        with pytest.raises(DesktopRunning):
            restore_connector_entry(path, CONNECTOR_NAME, {"command": "x"})
        assert path.read_bytes() == before  # and no backup beside it, only Desktop's own lock:
        assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, "SingletonLock"])
        assert not (home / "claude-entry.json").exists()
        # Nothing to change is no write: allowed; another Desktop's file: allowed.
        assert not update_connector_env(path, {"QB_REFRESH_TOKEN": REFRESH_TOKEN}).anything_changed
        assert update_connector_env(other, {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN}).changed
    assert update_connector_env(path, {"QB_REFRESH_TOKEN": NEW_REFRESH_TOKEN}).changed
