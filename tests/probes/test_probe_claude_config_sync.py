"""claude-config-sync against real config files in tmp_path, and its fixer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doctor.claude_desktop.update import update_connector_env
from doctor.context import Context
from doctor.situations import which
from probes import claude_config_sync
from probes.claude_config_sync import apply_fix, check, describe_fix
from tests.claude_desktop.log_samples import command_record, write_log
from tests.support.homes import REALM_ID, write_env
from tests.support.local_support import (
    CLAUDE_TOKEN,
    assert_no_secret,
    connector_entry,
    fresh_values,
    rich_config,
    secrets_of,
    synced_env,
    write_claude_config,
)


@pytest.fixture
def values(tmp_path: Path) -> dict[str, str]:
    values = fresh_values()
    write_env(tmp_path / "home", values)
    return values


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "Claude" / "claude_desktop_config.json"


def make_ctx(tmp_path: Path, config_path: Path | None, **environ: str) -> Context:
    return Context(tmp_path / "home", config_path, environ={"PATH": "/usr/bin:/bin", **environ}, offline=True)


def all_text(finding) -> str:
    parts = [finding.summary, *finding.details, json.dumps(finding.facts)]
    if finding.remediation:
        parts += [finding.remediation.text, *finding.remediation.commands]
    return "\n".join(parts)


def test_in_sync_entry_is_ok(tmp_path, values, config_path) -> None:
    write_claude_config(config_path, rich_config(synced_env(values)))
    finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "ok", finding.summary
    assert finding.facts["token_copy"] == "same"
    assert describe_fix(make_ctx(tmp_path, config_path)) is None


def test_missing_file_warns_naming_the_path_and_how_to_point_at_it(tmp_path, values, config_path) -> None:
    finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "warn" and finding.cause is None
    assert str(config_path) in finding.summary
    assert "--claude-config" in finding.remediation.text and "SIDEQUEST_CLAUDE_CONFIG" in finding.remediation.text


@pytest.mark.parametrize(
    "raw, where",
    [
        (b'{"mcpServers": {"a": {"command": "x"}}\n  "b": 1}\n', "line 2, column 3"),
        (b'{"mcpServers": {},}', "line 1, column 19"),
    ],
)
def test_unparsable_file_fails_with_line_and_column_and_is_never_touched(
    tmp_path, values, config_path, raw, where
) -> None:
    write_claude_config(config_path, raw=raw)
    ctx = make_ctx(tmp_path, config_path)
    finding = check(ctx)
    assert finding.status == "fail" and finding.cause == "claude_config_invalid"
    assert where in finding.summary
    assert describe_fix(ctx) is None
    apply_fix(ctx)  # even called directly, it must not write an unparsable file
    assert config_path.read_bytes() == raw
    assert list(config_path.parent.iterdir()) == [config_path]


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"[]", "not_object"),
        (b"\xef\xbb\xbf", "empty"),
        (b"\xff\xfe{\x00}\x00", "not_utf8"),
    ],
)
def test_empty_non_object_bom_only_fail_as_invalid(tmp_path, values, config_path, raw, reason) -> None:
    write_claude_config(config_path, raw=raw)
    finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "fail" and finding.cause == "claude_config_invalid"
    assert finding.facts["reason"] == reason


def test_an_env_value_that_is_a_list_breaks_the_whole_file(tmp_path, values, config_path) -> None:
    data = rich_config(synced_env(values))
    data["mcpServers"]["directus"] = {"command": "npx", "env": {"DISABLE_TOOLS": ["a", "b"]}}
    write_claude_config(config_path, data)
    ctx = make_ctx(tmp_path, config_path)
    finding = check(ctx)
    assert finding.status == "fail" and finding.cause == "claude_config_invalid"
    assert "mcpServers.directus.env.DISABLE_TOOLS" in finding.summary
    assert describe_fix(ctx) is None  # a re-sync cannot repair another server's entry


def test_missing_connector_entry_shows_the_shape_to_add_without_secrets(tmp_path, values, config_path) -> None:
    write_claude_config(config_path, {"mcpServers": {"other": {"command": "npx"}}})
    finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "fail" and finding.cause == "claude_config_out_of_sync"
    shape = json.loads(finding.details[1])
    entry = shape["mcpServers"]["qb-distributor"]
    assert set(entry) == {"command", "args", "env"}
    assert entry["env"]["QB_REALM_ID"] == REALM_ID
    assert_no_secret(all_text(finding), secrets_of(values))


def test_command_that_cannot_be_found_is_named(tmp_path, values, config_path) -> None:
    write_claude_config(
        config_path,
        {
            "mcpServers": {
                "qb-distributor": connector_entry(synced_env(values), command="/opt/nowhere/qb-distributor-mcp")
            }
        },
    )
    finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "fail" and finding.cause == "claude_config_invalid"
    assert "/opt/nowhere/qb-distributor-mcp" in finding.summary


def test_command_found_through_path_is_ok_with_advice(tmp_path, values, config_path) -> None:
    tool_dir = Path(sys.executable).parent
    write_claude_config(
        config_path,
        {"mcpServers": {"qb-distributor": connector_entry(synced_env(values), command=Path(sys.executable).name)}},
    )
    finding = check(make_ctx(tmp_path, config_path, PATH=str(tool_dir)))
    assert finding.status == "ok"
    assert any("full path" in d for d in finding.details)


def test_realm_difference_fails_out_of_sync_and_names_the_key(tmp_path, values, config_path) -> None:
    env = synced_env(values) | {"QB_REALM_ID": "4620816365000000000", "QB_REFRESH_TOKEN": CLAUDE_TOKEN}
    write_claude_config(config_path, rich_config(env))
    ctx = make_ctx(tmp_path, config_path)
    finding = check(ctx)
    assert finding.status == "fail" and finding.cause == "claude_config_out_of_sync"
    assert "QB_REALM_ID" in finding.summary and "another connection" in finding.summary
    assert finding.facts["differing_keys"] == ["QB_REALM_ID"]
    assert_no_secret(all_text(finding), secrets_of(values))
    assert "QB_REALM_ID" in describe_fix(ctx) and "QB_REFRESH_TOKEN" in describe_fix(ctx)


def test_environment_difference_fails_but_case_does_not_count(tmp_path, values, config_path) -> None:
    write_claude_config(config_path, rich_config(synced_env(values) | {"QB_ENVIRONMENT": "production"}))
    finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "fail" and finding.facts["differing_keys"] == ["QB_ENVIRONMENT"]
    write_claude_config(config_path, rich_config(synced_env(values) | {"QB_ENVIRONMENT": " Sandbox"}))
    assert check(make_ctx(tmp_path, config_path)).facts["differing_keys"] == []


def test_older_token_of_the_same_chain_is_ok_explained_and_fix_resyncs(tmp_path, values, config_path) -> None:
    # Not even a warning: it is the normal state after every rotation, and a warning would
    # fail every `--strict` run (DESIGN.md §9a: expected, not a failure).
    original = rich_config(synced_env(values) | {"QB_REFRESH_TOKEN": CLAUDE_TOKEN})
    write_claude_config(config_path, original)
    before_bytes = config_path.read_bytes()
    ctx = make_ctx(tmp_path, config_path)
    finding = check(ctx)
    assert finding.status == "ok" and finding.cause is None
    explained = " ".join(finding.details)
    assert "harmless" in explained and ".env" in explained and "sidequest doctor --fix" in explained
    assert_no_secret(all_text(finding), secrets_of(values))

    plan = describe_fix(ctx)
    assert plan and "QB_REFRESH_TOKEN" in plan and "QB_REALM_ID" not in plan
    assert_no_secret(plan, secrets_of(values))
    did = apply_fix(ctx)
    assert_no_secret(did, secrets_of(values))
    after = json.loads(config_path.read_text(encoding="utf-8"))
    expected = json.loads(json.dumps(original))
    expected["mcpServers"]["qb-distributor"]["env"]["QB_REFRESH_TOKEN"] = values["QB_REFRESH_TOKEN"]
    assert after == expected
    backups = list(config_path.parent.glob("claude_desktop_config.json.sidequest-backup-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == before_bytes
    assert check(make_ctx(tmp_path, config_path)).status == "ok"
    assert describe_fix(make_ctx(tmp_path, config_path)) is None


def test_entry_without_realm_and_environment_warns_and_fix_adds_them(tmp_path, values, config_path) -> None:
    write_claude_config(
        config_path, {"mcpServers": {"qb": connector_entry({"QB_REFRESH_TOKEN": values["QB_REFRESH_TOKEN"]})}}
    )
    ctx = make_ctx(tmp_path, config_path)
    finding = check(ctx)
    assert finding.status == "warn"
    assert finding.facts["missing_keys"] == ["QB_REALM_ID", "QB_ENVIRONMENT"]
    apply_fix(ctx)
    env = json.loads(config_path.read_text())["mcpServers"]["qb"]["env"]
    assert env == synced_env(values)


def test_bom_before_valid_json_is_a_warning(tmp_path, values, config_path) -> None:
    body = json.dumps(rich_config(synced_env(values))).encode()
    write_claude_config(config_path, raw=b"\xef\xbb\xbf" + body)
    finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "warn" and "byte-order mark" in finding.summary


# ----------------------------------------------------------------------------- each situation on its own


def _set_up(kind: str, tmp_path: Path, values: dict[str, str], config_path: Path) -> Context:
    """The files for one situation of claude-config-sync's check."""
    synced = synced_env(values)
    if kind == "no_settings_file_known":
        return make_ctx(tmp_path, None)
    if kind == "settings_file_unreadable":
        write_claude_config(config_path, raw=b"[]")
    elif kind == "schema_problems":
        write_claude_config(config_path, {"mcpServers": {"qb-distributor": connector_entry(synced), "x": {}}})
    elif kind == "entry_removed":
        write_claude_config(config_path, rich_config(synced))
        update_connector_env(config_path, {}, keep_copy_in=tmp_path / "home")
        write_claude_config(config_path, {"preferences": {"theme": "dark"}})
    elif kind == "no_connector_entry":
        write_claude_config(config_path, {"mcpServers": {"other": {"command": "npx"}}})
    elif kind == "no_command":
        write_claude_config(config_path, {"mcpServers": {"qb-distributor": {"url": "https://x.test", "env": synced}}})
    elif kind == "command_not_found":
        write_claude_config(config_path, rich_config(synced) | {"mcpServers": {"qb": connector_entry(synced, "/no/x")}})
    elif kind == "other_connection":
        write_claude_config(config_path, rich_config(synced | {"QB_REALM_ID": "4620816365000000000"}))
    elif kind == "something_to_tidy":
        write_claude_config(config_path, {"mcpServers": {"qb": connector_entry({"QB_REFRESH_TOKEN": CLAUDE_TOKEN})}})
    elif kind == "in_step":
        write_claude_config(config_path, rich_config(synced | {"QB_REFRESH_TOKEN": CLAUDE_TOKEN}))
    return make_ctx(tmp_path, config_path)


DECIDING = {
    "no_settings_file_known": "warn",
    "settings_file_missing": "warn",
    "settings_file_unreadable": "fail",
    "schema_problems": "fail",
    "entry_removed": "fail",
    "no_connector_entry": "fail",
    "no_command": "fail",
    "command_not_found": "fail",
    "other_connection": "fail",
    "something_to_tidy": "warn",
    "in_step": "ok",
}


@pytest.mark.parametrize("kind", sorted(DECIDING))
def test_each_situation_decides_its_own_case(tmp_path, values, config_path, kind) -> None:
    ctx = _set_up(kind, tmp_path, values, config_path)
    decided_by, finding = which(claude_config_sync.SITUATIONS, claude_config_sync._Reading(ctx))
    assert decided_by == kind, finding.summary
    assert finding.status == DECIDING[kind]
    assert finding.summary == check(_set_up(kind, tmp_path, values, config_path)).summary
    assert_no_secret(all_text(finding), secrets_of(values))


def test_every_situation_is_tried_in_the_order_shown_and_only_notes_never_decide(tmp_path, values, config_path):
    names = [s.__name__ for s in claude_config_sync.SITUATIONS]
    notes = [n for n in names if n not in DECIDING]
    assert notes == ["starts_with_bom", "changed_since_written", "older_token_copy", "restart_needed"]
    assert names[-1] == "in_step"
    # A note records what it saw and lets the next situation decide.
    write_claude_config(config_path, raw=b"\xef\xbb\xbf" + json.dumps(rich_config(synced_env(values))).encode())
    reading = claude_config_sync._Reading(make_ctx(tmp_path, config_path))
    assert claude_config_sync.starts_with_bom(reading) is None
    assert reading.warnings and reading.facts["bom"] is True


# ----------------------------------------------------------------------------- the entry SideQuest last wrote


def _written(tmp_path: Path, config_path: Path, values: dict[str, str], data: dict | None = None) -> dict:
    """Claude's config as reauth-qb / --fix / setup leave it, with the known-good copy in the home."""
    write_claude_config(config_path, data or rich_config(synced_env(values) | {"QB_REFRESH_TOKEN": CLAUDE_TOKEN}))
    update_connector_env(config_path, synced_env(values), keep_copy_in=tmp_path / "home")
    return json.loads(config_path.read_text(encoding="utf-8"))


def test_an_entry_desktop_removed_is_named_and_put_back_with_the_token_from_env(tmp_path, values, config_path):
    written = _written(tmp_path, config_path, values)
    # Claude Desktop rewrote its file and dropped mcpServers, keeping its own preferences.
    wiped = {"globalShortcut": "Ctrl+Space", "preferences": written["preferences"]}
    write_claude_config(config_path, wiped)
    ctx = make_ctx(tmp_path, config_path)
    finding = check(ctx)
    assert finding.status == "fail" and finding.cause == "claude_config_out_of_sync"
    assert finding.summary.startswith('Claude Desktop removed SideQuest\'s entry "qb-distributor" from its settings')
    assert finding.remediation.commands == ("sidequest doctor --fix",)
    assert "quit it first" in finding.remediation.text
    assert finding.facts["entry_removed"] is True
    assert "put back" in describe_fix(ctx) and "it was removed" in describe_fix(ctx)
    assert_no_secret(all_text(finding) + describe_fix(ctx), secrets_of(values))

    done = apply_fix(ctx)
    assert done.startswith('put back the entry "qb-distributor"') and "the previous file is saved as" in done
    after = json.loads(config_path.read_text(encoding="utf-8"))
    assert after["mcpServers"] == {"qb-distributor": written["mcpServers"]["qb-distributor"]}
    assert after["mcpServers"]["qb-distributor"]["env"]["QB_REFRESH_TOKEN"] == values["QB_REFRESH_TOKEN"]
    assert {k: v for k, v in after.items() if k != "mcpServers"} == wiped
    recheck = check(make_ctx(tmp_path, config_path))
    assert recheck.status == "ok", recheck.summary
    assert describe_fix(make_ctx(tmp_path, config_path)) is None


def test_a_changed_command_is_named_and_the_fix_puts_back_the_one_written(tmp_path, values, config_path) -> None:
    written = _written(tmp_path, config_path, values)
    changed = json.loads(json.dumps(written))
    changed["mcpServers"]["qb-distributor"]["command"] = "/no/such/qb-connector"
    write_claude_config(config_path, changed)
    ctx = make_ctx(tmp_path, config_path)
    finding = check(ctx)
    assert finding.status == "fail" and "cannot find the program" in finding.summary
    assert finding.facts["entry_changed"] == ["command"]
    assert any("SideQuest wrote" in d for d in finding.details)
    assert finding.remediation.commands == ("sidequest doctor --fix",) and "put back" in finding.remediation.text
    assert "its command changed" in describe_fix(ctx)
    apply_fix(ctx)
    assert json.loads(config_path.read_text(encoding="utf-8")) == written
    assert check(make_ctx(tmp_path, config_path)).status == "ok"


def test_env_keys_dropped_from_the_entry_are_a_warning_the_fix_puts_back(tmp_path, values, config_path) -> None:
    written = _written(tmp_path, config_path, values)
    changed = json.loads(json.dumps(written))
    del changed["mcpServers"]["qb-distributor"]["env"]["QB_REALM_ID"]
    changed["mcpServers"]["qb-distributor"]["env"]["DEBUG"] = "1"
    write_claude_config(config_path, changed)
    finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "warn"
    assert "not the one SideQuest last wrote (its env keys changed)" in finding.summary
    assert "Its env lost QB_REALM_ID; gained DEBUG." in finding.details
    assert "put back" in finding.remediation.text
    apply_fix(make_ctx(tmp_path, config_path))
    assert json.loads(config_path.read_text(encoding="utf-8")) == written


def test_a_copy_taken_from_another_settings_file_is_not_used(tmp_path, values, config_path) -> None:
    elsewhere = tmp_path / "Other" / "claude_desktop_config.json"
    _written(tmp_path, elsewhere, values)
    write_claude_config(config_path, {"mcpServers": {"other": {"command": "npx"}}})
    ctx = make_ctx(tmp_path, config_path)
    finding = check(ctx)
    assert which(claude_config_sync.SITUATIONS, claude_config_sync._Reading(ctx))[0] == "no_connector_entry"
    assert "removed" not in finding.summary
    assert describe_fix(ctx) is None


# ----------------------------------------------------------------------------- the PATH Claude Desktop logged


def _program(folder: Path, name: str = "qb-connector") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / name
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    return program


def _bare_command_config(config_path: Path, values: dict[str, str], logs: Path, folders: list[str]) -> None:
    data = rich_config(synced_env(values))
    data["mcpServers"]["qb-distributor"] = connector_entry(synced_env(values), "qb-connector")
    write_claude_config(config_path, data)
    write_log(logs, "mcp.log", command_record("2026-11-30T10:00:00.000Z", "qb-distributor", "qb-connector", folders))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX programs")
def test_a_bare_command_is_found_in_the_folders_desktop_logged(tmp_path, values, config_path) -> None:
    desktop_bin = tmp_path / "desktop-bin"
    program = _program(desktop_bin)
    logs = tmp_path / "logs"
    _bare_command_config(config_path, values, logs, [str(desktop_bin), "/usr/bin", "/bin"])
    finding = check(make_ctx(tmp_path, config_path, SIDEQUEST_CLAUDE_LOGS=str(logs)))
    assert finding.status == "ok", finding.summary
    assert finding.facts["search_path_source"] == "claude_desktop_log"
    assert finding.facts["command_resolved"] == str(program)
    assert any("the PATH Claude Desktop logged" in d for d in finding.details)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX programs")
def test_a_bare_command_only_the_terminal_finds_is_one_desktop_cannot_start(tmp_path, values, config_path) -> None:
    terminal_bin = tmp_path / "terminal-bin"
    program = _program(terminal_bin)
    logs = tmp_path / "logs"
    folders = [str(tmp_path / "desktop-bin"), "/usr/bin", "/bin"]
    _bare_command_config(config_path, values, logs, folders)
    ctx = make_ctx(tmp_path, config_path, SIDEQUEST_CLAUDE_LOGS=str(logs), PATH=f"{terminal_bin}:/usr/bin:/bin")
    finding = check(ctx)
    assert finding.status == "fail" and finding.cause == "claude_config_invalid"
    assert 'cannot find the program "qb-connector"' in finding.summary
    assert ", ".join(folders) in finding.details[0] and str(program) in finding.details[0]
    assert finding.facts["search_path_source"] == "claude_desktop_log"
    # Without Desktop's log, the terminal's PATH is the best guess, as before.
    unlogged = check(
        make_ctx(tmp_path, config_path, SIDEQUEST_CLAUDE_LOGS=str(tmp_path / "none"), PATH=ctx.environ["PATH"])
    )
    assert unlogged.status == "ok" and unlogged.facts["search_path_source"] == "terminal"


# ----------------------------------------------------------------------------- a running Claude Desktop

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the fake Claude Desktop is a Linux process"
)


@linux_only
def test_a_desktop_started_before_the_settings_changed_is_told_to_quit_and_reopen(tmp_path, values, config_path):
    from doctor.advice import QUIT_AND_REOPEN
    from tests.support.fake_desktop import desktop_running

    write_claude_config(config_path, rich_config(synced_env(values)))
    with desktop_running(config_path, tmp_path / "desk"):
        later = time.time() + 30  # the settings changed after Desktop started
        os.utime(config_path, (later, later))
        finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "warn", finding.summary
    assert "Claude Desktop was started before its settings last changed" in finding.summary
    assert finding.remediation.text == QUIT_AND_REOPEN
    assert "Cmd+Q" in finding.remediation.text and "tray" in finding.remediation.text
    assert finding.facts["claude_desktop_running"] is True and finding.facts["claude_restart_needed"] is True
    assert finding.facts["connector_processes"] == 0


@linux_only
def test_a_desktop_started_after_the_settings_changed_has_them(tmp_path, values, config_path):
    from tests.support.fake_desktop import desktop_running

    write_claude_config(config_path, rich_config(synced_env(values)))
    earlier = time.time() - 3600
    os.utime(config_path, (earlier, earlier))
    with desktop_running(config_path, tmp_path / "desk"):
        finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "ok", finding.summary
    assert finding.facts["claude_desktop_running"] is True and finding.facts["claude_restart_needed"] is False


@pytest.mark.parametrize(
    "lock, table, running",
    [
        ("none", AssertionError("the process table was read"), False),
        ("stale", AssertionError("the process table was read"), False),
        ("live", PermissionError("no process table here"), None),  # Desktop may run, the table is unreadable
    ],
)
def test_the_process_table_is_read_only_when_desktop_may_run_and_unreadable_is_unknown(
    tmp_path, values, config_path, monkeypatch, lock, table, running
) -> None:
    write_claude_config(config_path, rich_config(synced_env(values)))
    later = time.time() + 30
    os.utime(config_path, (later, later))
    if lock != "none":
        holder = os.getpid()
        if lock == "stale":
            gone = subprocess.Popen(["true"])
            gone.wait()
            holder = gone.pid
        os.symlink(f"{os.uname().nodename}-{holder}", config_path.parent / "SingletonLock")

    def read_table():
        raise table

    monkeypatch.setattr(claude_config_sync, "running_processes", read_table)
    finding = check(make_ctx(tmp_path, config_path))
    assert finding.status == "ok", finding.summary
    assert finding.facts["claude_desktop_running"] is running
    assert finding.facts["claude_restart_needed"] is None and finding.facts["connector_processes"] is None


def test_the_offline_check_loads_psutil_only_when_desktops_lock_is_there(tmp_path, values, config_path) -> None:
    from tests.support.homes import modules_loaded

    write_claude_config(config_path, rich_config(synced_env(values)))
    checked = (
        "from pathlib import Path\n"
        "from doctor.context import Context\n"
        "from probes.claude_config_sync import check\n"
        f"ctx = Context(Path({str(tmp_path / 'home')!r}), Path({str(config_path)!r}), environ={{}}, offline=True)\n"
        "assert check(ctx).status == 'ok'\n"
    )
    assert modules_loaded(checked, ["psutil"]) == []
    os.symlink(f"{os.uname().nodename}-{os.getpid()}", config_path.parent / "SingletonLock")  # a live holder
    assert modules_loaded(checked, ["psutil"]) == ["psutil"]
