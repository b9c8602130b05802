"""Tests for doctor.claude_desktop.logs and the log folders of doctor.claude_desktop.paths: real files laid
out as Claude Desktop lays them out."""

from __future__ import annotations

from pathlib import Path

from doctor.claude_desktop.logs import TAIL_BYTES, read_connector_logs, read_tail, records
from doctor.claude_desktop.paths import log_folders
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

NAMES = ["qb-distributor"]


def test_log_folders_on_each_platform(tmp_path: Path) -> None:
    assert log_folders({}, "darwin", tmp_path) == [tmp_path / "Library" / "Logs" / "Claude"]
    environ = {"APPDATA": str(tmp_path / "Roaming"), "LOCALAPPDATA": str(tmp_path / "Local")}
    msix = tmp_path / "Local" / "Packages" / "Claude_pzs8sxrjxfjjc" / "LocalCache" / "Roaming" / "Claude"
    assert log_folders(environ, "win32", tmp_path) == [
        tmp_path / "Roaming" / "Claude" / "logs",
        msix / "logs",
        tmp_path / "Local" / "Claude" / "Logs",
    ]
    assert log_folders({}, "linux", tmp_path) == [tmp_path / ".config" / "Claude" / "logs"]
    beside = tmp_path / "elsewhere" / "claude_desktop_config.json"
    assert log_folders({}, "linux", tmp_path, beside) == [
        tmp_path / ".config" / "Claude" / "logs",
        tmp_path / "elsewhere" / "logs",
    ]
    # The config in its usual place adds no second entry.
    usual = tmp_path / ".config" / "Claude" / "claude_desktop_config.json"
    assert log_folders({}, "linux", tmp_path, usual) == [tmp_path / ".config" / "Claude" / "logs"]


def test_the_override_replaces_every_location(tmp_path: Path) -> None:
    import os

    environ = {"SIDEQUEST_CLAUDE_LOGS": f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"}
    assert log_folders(environ, "darwin", tmp_path, tmp_path / "c.json") == [tmp_path / "a", tmp_path / "b"]


def test_both_header_orders_and_continuation_lines() -> None:
    text = crash_session(old_order=True) + healthy_session()
    parsed = list(records(text))
    assert {name for _, name, _, _ in parsed} == {"qb-distributor"}
    assert {level for _, _, level, _ in parsed} == {"info", "error"}
    client = [message for _, _, _, message in parsed if message.startswith('Message from client: {"id":0')]
    # The server's stderr (no timestamp) belongs to the record before it.
    assert "KeyError" in client[0]
    import calendar

    first = parsed[0][0]  # 2026-11-22T18:45:41.100Z, to the millisecond
    assert abs(first - (calendar.timegm((2026, 11, 22, 18, 45, 41)) + 0.1)) < 1e-6


def test_a_healthy_start_its_command_and_the_path_desktop_used(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    write_log(logs_dir, "mcp.log", line("2026-11-20T09:00:00.000Z", "github", "info", "Initializing server..."))
    write_log(logs_dir, "mcp.log", healthy_session())
    write_log(logs_dir, "mcp-server-qb-distributor.log", healthy_session())
    logs = read_connector_logs([logs_dir, tmp_path / "absent"], NAMES)
    assert logs.folders == (logs_dir,)
    assert [p.name for p in logs.files] == ["mcp.log", "mcp-server-qb-distributor.log"]
    assert logs.outcome() == "connected"
    assert logs.command == "/usr/local/bin/uvx"
    assert logs.paths == ("/usr/local/bin", "/usr/bin", "/bin")
    # The same Desktop lines in both files count once.
    assert [e.kind for e in logs.events].count("start") == 1
    assert logs.truncated == ()


def test_spawn_enoent_with_windows_paths_as_logged(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    write_log(logs_dir, "mcp.log", healthy_session(day="2026-11-19"), enoent_session(day="2026-11-21"))
    logs = read_connector_logs([logs_dir], NAMES)
    assert logs.outcome() == "command_not_found"
    assert logs.missing_program() == "npx"
    assert logs.command == "npx"
    assert logs.paths == ("C:\\Program Files\\nodejs", "C:\\Users\\o\\AppData\\Roaming\\npm", "C:\\WINDOWS")


def test_exit_at_start_timeouts_and_other_servers(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    write_log(logs_dir, "mcp.log", crash_session())
    assert read_connector_logs([logs_dir], NAMES).outcome() == "exited_at_start"
    write_log(logs_dir, "mcp.log", timeout_session())
    assert read_connector_logs([logs_dir], NAMES).outcome() == "request_timed_out"
    # Another server's failure is not the connector's.
    write_log(logs_dir, "mcp.log", enoent_session(server="filesystem", day="2026-11-24"))
    assert read_connector_logs([logs_dir], NAMES).outcome() == "request_timed_out"
    assert read_connector_logs([logs_dir], ["filesystem"]).outcome() == "command_not_found"


def test_extension_skipped_for_missing_configuration(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    write_log(
        logs_dir,
        "mcp.log",
        healthy_session(),
        line(
            "2026-11-25T07:00:00.000Z",
            "info",
            "main",
            "Extension qb-distributor has missing required configuration, skipping MCP config",
        ),
    )
    assert read_connector_logs([logs_dir], NAMES).outcome() == "skipped_by_desktop"


def test_main_log_cowork_and_era_probe(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    write_log(
        logs_dir,
        "main.log",
        "2026-11-25 08:00:01 [info] [qb-distributor] Era probe verdict: legacy (sibling did not complete it)\n"
        "2026-11-25 08:00:02 [warn] qb-distributor: Couldn't start for Cowork and Code sessions: the connection "
        "closed during the server/discover probe\n"
        "2026-11-25 08:00:03 [info] [github] Era probe verdict: modern (sibling answered server/discover)\n",
    )
    logs = read_connector_logs([logs_dir], NAMES)
    assert logs.era_verdict == "legacy" and logs.cowork_failed is True
    assert logs.events == ()


def test_only_the_tail_of_a_large_log_is_read(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    filler = line("2026-11-01T00:00:00.000Z", "github", "info", "x" * 1000) * (3 * TAIL_BYTES // 1000)
    path = write_log(logs_dir, "mcp.log", enoent_session(day="2026-10-01"), filler, healthy_session())
    text, cut = read_tail(path, TAIL_BYTES)
    assert cut and len(text.encode()) <= TAIL_BYTES
    assert text.startswith("2026-11-01T")  # from a whole line on
    logs = read_connector_logs([logs_dir], NAMES)
    assert logs.truncated == (path,)
    assert logs.outcome() == "connected"  # the old ENOENT lies before the tail
    assert logs.missing_program() is None


def test_nothing_returned_holds_log_text(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    write_log(logs_dir, "mcp-server-qb-distributor.log", healthy_session(), crash_session(day="2026-11-26"))
    logs = read_connector_logs([logs_dir], NAMES)
    assert logs.outcome() == "exited_at_start"
    everything = repr(logs) + repr(logs.events) + repr([e.detail for e in logs.events])
    assert SECRET_BALANCE not in everything and SECRET_CUSTOMER not in everything
    assert "KeyError" not in everything


def test_unreadable_and_special_files_are_skipped(tmp_path: Path) -> None:
    import os

    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    os.mkfifo(logs_dir / "mcp.log")  # would block a plain read forever
    (logs_dir / "main.log").mkdir()
    logs = read_connector_logs([logs_dir], NAMES)
    assert logs.folders == (logs_dir,) and logs.files == ()


def test_a_line_with_an_impossible_date_is_not_a_record() -> None:
    text = line("2026-13-40T99:00:00.000Z", "qb-distributor", "error", "spawn npx ENOENT") + healthy_session()
    parsed = list(records(text))
    assert all(at > 1_700_000_000 for at, _, _, _ in parsed)
    assert "ENOENT" not in "".join(message for _, _, _, message in parsed)


def test_the_logged_path_resolves_a_bare_command_as_desktop_would(tmp_path: Path) -> None:
    from doctor.claude_desktop.logs import desktop_search_path
    from doctor.claude_desktop.paths import resolve_command

    tool_dir = tmp_path / "opt" / "bin"
    tool_dir.mkdir(parents=True)
    (tool_dir / "uvx").write_text("#!/bin/sh\n")
    (tool_dir / "uvx").chmod(0o755)
    logs_dir = tmp_path / "logs"
    write_log(logs_dir, "mcp.log", healthy_session().replace("'/usr/local/bin'", f"'{tool_dir}'"))
    logs = read_connector_logs([logs_dir], NAMES)
    path = desktop_search_path(logs)
    assert path is not None and path.split(":")[0] == str(tool_dir)
    assert resolve_command("uvx", {"PATH": path}) == str(tool_dir / "uvx")
    windows = read_connector_logs([write_log(tmp_path / "w", "mcp.log", enoent_session()).parent], NAMES)
    assert desktop_search_path(windows) == "C:\\Program Files\\nodejs;C:\\Users\\o\\AppData\\Roaming\\npm;C:\\WINDOWS"
