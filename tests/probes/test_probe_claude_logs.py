"""claude-logs against log folders laid out as Claude Desktop lays them out, and through the real CLI."""

from __future__ import annotations

import calendar
import json
import os
import time
from pathlib import Path

import pytest

from doctor.context import Context
from probes.claude_logs import check
from tests.claude_desktop.log_samples import (
    SECRET_BALANCE,
    SECRET_CUSTOMER,
    crash_session,
    enoent_session,
    healthy_session,
    line,
    timeout_session,
    write_log,
)
from tests.support.homes import cli_env, run_cli
from tests.support.local_support import connector_entry, write_claude_config
from tests.support.schema_check import assert_valid_report


def make_ctx(home: Path, logs: Path, config: Path | None = None) -> Context:
    return Context(home, config, environ={"SIDEQUEST_CLAUDE_LOGS": str(logs)}, offline=True)


def test_no_logs_is_a_plain_skip(home: Path, tmp_path: Path) -> None:
    finding = check(make_ctx(home, tmp_path / "no-such-folder"))
    assert finding.status == "skip"
    assert "No Claude Desktop logs were found" in finding.summary and "not" in finding.summary
    assert finding.facts["log_folders_searched"] == [str(tmp_path / "no-such-folder")]
    assert finding.facts["log_folders_found"] == []


def test_logs_that_never_mention_the_connector_warn(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_log(logs, "mcp.log", healthy_session(server="github"))
    finding = check(make_ctx(home, logs))
    assert finding.status == "warn"
    assert "do not mention" in finding.summary


def test_a_healthy_start_is_ok_with_the_path_desktop_used(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_log(logs, "mcp.log", healthy_session())
    finding = check(make_ctx(home, logs))
    assert finding.status == "ok", finding.summary
    assert "2026-11-20T09:55:02Z" in finding.summary and "answered" in finding.summary
    assert finding.facts["outcome"] == "connected"
    assert finding.facts["desktop_path"] == ["/usr/local/bin", "/usr/bin", "/bin"]
    assert finding.facts["logged_command"] == "/usr/local/bin/uvx"


def test_program_not_found_names_it_and_the_folders_searched(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_log(logs, "mcp.log", healthy_session(), enoent_session())
    finding = check(make_ctx(home, logs))
    assert finding.status == "fail" and finding.cause == "connector_not_starting"
    assert "2026-11-21T08:00:00Z" in finding.summary
    assert '"npx" was not found' in finding.details[0]
    assert "C:\\Program Files\\nodejs" in finding.details[0]
    assert "full path" in finding.remediation.text
    assert finding.facts["missing_program"] == "npx"


def test_exit_at_start_points_at_the_connector_log(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    own = write_log(logs, "mcp-server-qb-distributor.log", crash_session())
    finding = check(make_ctx(home, logs))
    assert finding.status == "fail" and finding.cause == "connector_not_starting"
    assert "stopped right after starting" in finding.details[0]
    assert str(own) in " ".join(finding.details)
    assert "KeyError" not in json.dumps(finding.facts) + " ".join(finding.details) + finding.summary


def test_a_settings_change_after_the_failed_start_is_mentioned(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_log(logs, "mcp.log", enoent_session())
    config = write_claude_config(tmp_path / "Claude" / "claude_desktop_config.json", {"mcpServers": {}})
    edited = calendar.timegm((2026, 11, 21, 9, 0, 0))  # an hour after the failed start
    os.utime(config, (edited, edited))
    finding = check(make_ctx(home, logs, config))
    assert finding.status == "fail"
    assert finding.facts["settings_changed_since_start"] is True
    assert any("may be fixed already" in detail for detail in finding.details)
    os.utime(config, (1_700_000_000, 1_700_000_000))  # 2023: before the failed start
    finding = check(make_ctx(home, logs, config))
    assert finding.facts["settings_changed_since_start"] is False
    assert not any("may be fixed already" in detail for detail in finding.details)


def test_a_timeout_after_answering_warns(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_log(logs, "mcp.log", timeout_session())
    finding = check(make_ctx(home, logs))
    assert finding.status == "warn" and finding.cause is None
    assert "timed out" in finding.summary


def test_an_entry_under_another_name_is_followed(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_log(logs, "mcp-server-QuickBooks.log", enoent_session(server="QuickBooks"))
    config = write_claude_config(
        tmp_path / "Claude" / "claude_desktop_config.json",
        {"mcpServers": {"QuickBooks": connector_entry({"QB_REALM_ID": "9130350000000000"})}},
    )
    finding = check(make_ctx(home, logs, config))
    assert finding.status == "fail" and finding.facts["missing_program"] == "npx"


def test_cowork_failure_in_main_log_warns(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_log(logs, "mcp.log", healthy_session())
    write_log(
        logs,
        "main.log",
        "2026-11-20 10:56:02 [warn] qb-distributor: Couldn't start for Cowork and Code sessions: "
        "the connection closed during the server/discover probe\n",
    )
    finding = check(make_ctx(home, logs))
    assert finding.status == "warn" and "Cowork" in finding.summary


@pytest.mark.parametrize("fmt", ["json", "text", "prompt"])
def test_tool_results_in_the_logs_never_reach_any_output(home: Path, tmp_path: Path, fmt: str) -> None:
    logs = tmp_path / "logs"
    # A tool result and the call that asked for it, in both files Desktop writes, then a crash.
    write_log(logs, "mcp.log", healthy_session(), crash_session(day="2026-11-27"))
    write_log(logs, "mcp-server-qb-distributor.log", healthy_session(), crash_session(day="2026-11-27"))
    write_log(logs, "main.log", line("2026-11-27T01:00:00.000Z", "qb-distributor", "info", SECRET_CUSTOMER))
    env = cli_env(home, SIDEQUEST_CLAUDE_LOGS=str(logs))
    started = time.monotonic()
    result = run_cli("doctor", "--offline", "--verbose", "--format", fmt, env=env)
    assert time.monotonic() - started < 60
    assert "Traceback" not in result.stderr
    for text in (result.stdout, result.stderr):
        assert SECRET_BALANCE not in text and SECRET_CUSTOMER not in text and "7730-2291" not in text
    if fmt == "json":
        doc = result.json()
        assert_valid_report(doc)
        probe = next(p for p in doc["probes"] if p["id"] == "claude-logs")
        assert probe["status"] == "fail" and probe["facts"]["outcome"] == "exited_at_start"
    else:
        assert "claude-logs" in result.stdout or "Claude Desktop's logs" in result.stdout


def test_an_extension_is_followed_under_its_display_name(home: Path, tmp_path: Path) -> None:
    # Desktop names an extension's log after its display name.
    user_data = tmp_path / "Claude"
    manifest = {
        "name": "qb-distributor",
        "display_name": "SideQuest QuickBooks",
        "version": "0.16.0",
        "server": {"mcp_config": {"command": "python3", "env": {"QB_REALM_ID": "${user_config.realm}"}}},
    }
    user_data.mkdir()
    (user_data / "extensions-installations.json").write_text(
        json.dumps({"extensions": {"local.mcpb.sidequest.qb": {"id": "local.mcpb.sidequest.qb", "manifest": manifest}}})
    )
    config = write_claude_config(user_data / "claude_desktop_config.json", {"mcpServers": {}})
    logs = tmp_path / "logs"
    write_log(logs, "mcp-server-SideQuest QuickBooks.log", enoent_session(server="SideQuest QuickBooks"))
    finding = check(make_ctx(home, logs, config))
    assert finding.status == "fail" and finding.facts["missing_program"] == "npx"
