"""connector-launch end to end: the real CLI, a Claude config pointing at the fake connector, a real child process.

Each broken variant of tests/support/fake_connector.py must be named by its own outcome with cause
`connector_not_starting`; the diagnosis itself is not asserted (the cause's place in the
vocabulary belongs to doctor/model.py). Every test checks the child is gone when the doctor is done.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.claude_desktop.log_samples import command_record, write_log
from tests.support.homes import cli_env, run_cli
from tests.support.local_support import write_claude_config
from tests.support.schema_check import assert_valid_report

FAKE = Path(__file__).resolve().parents[1] / "support" / "fake_connector.py"
TOKEN = "RT1-39-H3-1785429816launchtestsecret9z8y"


def _config(
    tmp_path: Path,
    variant: str | None,
    *,
    command: str | None = None,
    args: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Path:
    env = {
        **(extra_env or {}),
        "QB_REFRESH_TOKEN": TOKEN,
        "QB_REALM_ID": "9130355377371234",
        "QB_ENVIRONMENT": "sandbox",
        "FAKE_CONNECTOR_PID_FILE": str(tmp_path / "pid"),
        "FAKE_CONNECTOR_CWD_FILE": str(tmp_path / "cwd"),
        "FAKE_CONNECTOR_ENV_FILE": str(tmp_path / "envkeys"),
    }
    if variant is not None:
        env["FAKE_CONNECTOR_VARIANT"] = variant
    entry = {"command": command or sys.executable, "args": [str(FAKE)] if args is None else args, "env": env}
    return write_claude_config(
        tmp_path / "claude" / "claude_desktop_config.json", {"mcpServers": {"qb-distributor": entry}}
    )


def _doctor(home: Path, config: Path, *extra: str, **env: str) -> tuple[dict, dict]:
    environ = cli_env(home, config, SIDEQUEST_CLAUDE_LOGS=str(config.parent / "logs"), **env)
    result = run_cli("doctor", "--probe", "connector-launch", "--format", "json", *extra, env=environ)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    doc = result.json()
    assert_valid_report(doc)
    (probe,) = [p for p in doc["probes"] if p["id"] == "connector-launch"]
    return doc, probe


def _assert_named(doc: dict, probe: dict, outcome: str | None) -> None:
    """A launch failure: this probe fails with its own outcome (the JSON carries no per-probe cause; the Python
    API test below checks `connector_not_starting`)."""
    assert probe["status"] == "fail", probe
    assert doc["exit_code"] == 1
    assert doc["diagnosis"]["cause"] != "healthy"
    if outcome is not None:
        assert probe["facts"]["outcome"] == outcome


def _assert_child_gone(tmp_path: Path) -> None:
    pid = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # a zombie counts as left over: the doctor must reap its child
        if not psutil.pid_exists(pid):
            return
        time.sleep(0.05)
    pytest.fail(f"the connector process {pid} is still there after the doctor finished")


def test_a_healthy_connector_reports_start_time_tools_and_server(home: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, "healthy")
    doc, probe = _doctor(home, config, TERMINAL_ONLY_VARIABLE="not for Desktop")
    assert probe["status"] == "ok", probe
    assert doc["exit_code"] == 0 and doc["diagnosis"]["cause"] == "healthy"
    facts = probe["facts"]
    assert facts["outcome"] == "ok"
    assert facts["tools"] == 2 and facts["tool_names"] == ["check_token", "list_customers"]
    assert (facts["server_name"], facts["server_version"]) == ("fake-qb-distributor", "9.8.7")
    assert facts["started_ms"] > 0
    assert facts["server_discover"] in ("answered", "refused")
    assert facts["child_stopped"] is True
    assert "2 tool(s)" in probe["summary"] and "fake-qb-distributor 9.8.7" in probe["summary"]
    assert probe["side_effects"] == "network"
    # Started as Desktop starts it: cwd /, only the inherited set plus the entry's env.
    assert (tmp_path / "cwd").read_text() == "/"
    keys = set((tmp_path / "envkeys").read_text().split())
    assert "TERMINAL_ONLY_VARIABLE" not in keys and "SIDEQUEST_HOME" not in keys
    assert {"QB_REFRESH_TOKEN", "QB_REALM_ID", "FAKE_CONNECTOR_VARIANT", "PATH"} <= keys
    assert "SIDEQUEST_LAUNCHED_BY_DOCTOR" in keys  # the one addition: no copy starts another copy
    assert keys - {"LC_CTYPE", "SIDEQUEST_LAUNCHED_BY_DOCTOR"} <= set(facts["env_keys"])  # (CPython may add LC_CTYPE)
    assert any("server/discover" in line for line in probe["details"])
    assert TOKEN not in str(facts)
    _assert_child_gone(tmp_path)


def test_a_command_desktop_cannot_find_names_the_path_it_searched(home: Path, tmp_path: Path) -> None:
    # The program is on the terminal's PATH, but not in the folders Desktop logged: Desktop would not find it.
    terminal_bin = tmp_path / "terminal-bin"
    terminal_bin.mkdir()
    program = terminal_bin / "qb-connector"
    program.write_text(f"#!{sys.executable}\nprint('x')\n")
    program.chmod(0o755)
    config = _config(tmp_path, None, command="qb-connector", args=[])
    desktop_folders = [str(tmp_path / "desktop-bin"), "/usr/bin", "/bin"]
    write_log(
        config.parent / "logs",
        "mcp.log",
        command_record("2026-11-30T10:00:00.000Z", "qb-distributor", "qb-connector", desktop_folders),
    )
    path = os.pathsep.join([str(terminal_bin), os.environ.get("PATH", "")])
    doc, probe = _doctor(home, config, PATH=path)
    _assert_named(doc, probe, None)
    assert '"qb-connector" is not found' in probe["summary"]
    assert probe["facts"]["search_path"] == desktop_folders
    assert probe["facts"]["search_path_source"] == "claude_desktop_log"
    assert probe["facts"]["program"] is None
    assert ", ".join(desktop_folders) in probe["details"][0]
    assert "full path" in probe["remediation"]["text"]
    assert not (tmp_path / "pid").exists()  # nothing was started


def test_a_connector_that_exits_at_start_shows_its_last_stderr_lines_redacted(home: Path, tmp_path: Path) -> None:
    doc, probe = _doctor(home, _config(tmp_path, "crash"))
    _assert_named(doc, probe, "exited_at_start")
    assert "stops right after it starts" in probe["summary"]
    assert "  Error: QB_CLIENT_ID is not set" in probe["details"]
    assert any(line.startswith("  Loaded QB_REFRESH_TOKEN RT\u2026") for line in probe["details"])
    assert "sidequest setup" in probe["remediation"]["commands"]
    _assert_child_gone(tmp_path)


def test_a_secret_of_the_entrys_env_the_connector_prints_is_redacted(home: Path, tmp_path: Path) -> None:
    # Not one of sidequest's keys: known as a secret only because the entry's env names it one.
    api_key = "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"
    config = _config(
        tmp_path, "crash", extra_env={"SHOPIFY_API_KEY": api_key, "FAKE_CONNECTOR_ECHO": "SHOPIFY_API_KEY"}
    )
    doc, probe = _doctor(home, config)
    _assert_named(doc, probe, "exited_at_start")
    assert api_key not in str(doc)
    assert any(line.startswith("  Loaded SHOPIFY_API_KEY ") for line in probe["details"])


def test_text_on_stdout_is_named_as_desktops_unexpected_token(home: Path, tmp_path: Path) -> None:
    doc, probe = _doctor(home, _config(tmp_path, "noise"))
    _assert_named(doc, probe, "stdout_not_json")
    assert probe["facts"]["stdout_noise_lines"] == 1
    assert "Unexpected token" in probe["summary"]
    assert "Starting SideQuest connector on stdio" not in str(doc)  # the connector's text is not copied
    _assert_child_gone(tmp_path)


def test_a_connector_that_never_answers_is_stopped_and_named(home: Path, tmp_path: Path) -> None:
    doc, probe = _doctor(home, _config(tmp_path, "hang"), SIDEQUEST_CONNECTOR_TIMEOUT="1")
    _assert_named(doc, probe, "no_answer")
    assert "did not answer within 1 s" in probe["summary"]
    assert probe["facts"]["child_stopped"] is True
    # Killed by the doctor at the timeout, not after the SDK's 2 s grace; that is not an exit of its own.
    assert probe["facts"]["exit_code"] is None and probe["facts"]["exit_signal"] is None
    assert "exit code" not in probe["summary"] and "by signal" not in " ".join(probe["details"])
    assert probe["duration_ms"] < 2900
    _assert_child_gone(tmp_path)


def test_a_connector_that_exits_on_server_discover_is_named(home: Path, tmp_path: Path) -> None:
    doc, probe = _doctor(home, _config(tmp_path, "discover"))
    _assert_named(doc, probe, "exited_on_discover")
    assert probe["facts"]["server_discover"] == "exited"
    assert probe["facts"]["tools"] == 2  # the handshake itself worked
    assert probe["facts"]["exit_code"] == 4
    assert any(line.endswith("when sent server/discover it stopped with exit code 4.") for line in probe["details"])
    assert "Cowork and Code" in probe["summary"]
    _assert_child_gone(tmp_path)


def _tagged(tag: str) -> list[int]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if tag in (process.info["cmdline"] or []):
            found.append(process.pid)
    return found


def test_the_child_is_killed_when_the_doctors_budget_ends_first(home: Path, tmp_path: Path) -> None:
    # The probe would wait 8 s for an answer; the run's budget ends after 2 s and the doctor exits.
    # (Under load the child may not have written its pid file yet: it is found by a tag on its command line.)
    tag = f"--tag={tmp_path}"
    config = _config(tmp_path, "hang", args=[str(FAKE), tag])
    doc, probe = _doctor(home, config, "--timeout", "2", SIDEQUEST_CONNECTOR_TIMEOUT="8")
    assert probe["status"] == "timeout"
    # A connector still starting when the time ran out is not the network's fault.
    assert doc["diagnosis"]["cause"] == "unknown", doc["diagnosis"]
    deadline = time.monotonic() + 10
    while _tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _tagged(tag) == [], "the connector outlived the doctor"


def test_offline_skips_it_without_starting_anything(home: Path, tmp_path: Path) -> None:
    doc, probe = _doctor(home, _config(tmp_path, "healthy"), "--offline")
    assert probe["status"] == "skip"
    assert not (tmp_path / "pid").exists()


def test_no_connector_entry_is_a_skip(home: Path, tmp_path: Path) -> None:
    config = write_claude_config(tmp_path / "claude" / "claude_desktop_config.json", {"mcpServers": {}})
    doc, probe = _doctor(home, config)
    assert probe["status"] == "skip" and "claude-config-sync" in probe["summary"]


def test_the_python_api_carries_the_cause_connector_not_starting(home: Path, tmp_path: Path) -> None:
    from doctor import run_doctor

    config = _config(tmp_path, "crash")
    environ = cli_env(home, config, SIDEQUEST_CLAUDE_LOGS=str(tmp_path / "no-logs"))
    report = run_doctor(home, config, probes=["connector-launch"], environ=environ)
    result = report.result("connector-launch")
    assert result.status == "fail" and result.cause == "connector_not_starting"
    assert report.diagnosis.probe_id == "connector-launch"
    _assert_child_gone(tmp_path)


def test_a_doctor_inside_a_started_connector_starts_no_second_copy(home: Path, tmp_path: Path) -> None:
    doc, probe = _doctor(home, _config(tmp_path, "healthy"), SIDEQUEST_LAUNCHED_BY_DOCTOR="1")
    assert probe["status"] == "skip" and "no second copy" in probe["summary"]
    assert not (tmp_path / "pid").exists()


# -- the connector as a Desktop Extension ------------------------------------------------------------

EXT_ID = "local.mcpb.sidequest-automation.qb-distributor"
PIN = "pin-7Hq2-never-shown-4411"  # a sensitive setting whose env key does not look secret


def _manifest(variant: str, *, command: str | None = None, server_type: str = "python") -> dict:
    return {
        "manifest_version": "0.3",
        "name": "qb-distributor",
        "display_name": "SideQuest QuickBooks",
        "version": "0.16.0",
        "author": {"name": "SideQuest Automation"},
        "server": {
            "type": server_type,
            "entry_point": "server/fake_connector.py",
            "mcp_config": {
                "command": command or sys.executable,
                "args": ["${__dirname}/server/fake_connector.py", "--tag=${user_config.realm_id}"],
                "env": {
                    "QB_REFRESH_TOKEN": "${user_config.refresh_token}",
                    "QB_REALM_ID": "${user_config.realm_id}",
                    "QB_COMPANY_PIN": "${user_config.pin}",
                    "QB_SANDBOX": "${user_config.sandbox}",
                    "FAKE_CONNECTOR_VARIANT": variant,
                    "FAKE_CONNECTOR_ECHO": "QB_COMPANY_PIN",
                    "FAKE_CONNECTOR_PID_FILE": "${HOME}${/}ext-pid",
                    "FAKE_CONNECTOR_CWD_FILE": "${HOME}${/}ext-cwd",
                    "FAKE_CONNECTOR_ENV_FILE": "${HOME}${/}ext-envkeys",
                },
            },
        },
        "user_config": {
            "refresh_token": {"type": "string", "title": "Refresh token", "sensitive": True, "required": True},
            "realm_id": {"type": "string", "title": "Company ID", "required": True},
            "pin": {"type": "string", "title": "Company PIN", "sensitive": True},
            "sandbox": {"type": "boolean", "title": "Sandbox", "default": True},
        },
    }


def _extension(user_data: Path, manifest: dict, *, enabled: bool = True, user_config: dict | None = None) -> Path:
    """The extension laid out as Desktop lays it out: registry, unpacked bundle, settings; returns the bundle."""
    bundle = user_data / "Claude Extensions" / EXT_ID
    (bundle / "server").mkdir(parents=True)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    shutil.copy(FAKE, bundle / "server" / "fake_connector.py")
    record = {
        "id": EXT_ID,
        "version": manifest["version"],
        "hash": "9f2c" * 16,
        "installedAt": "2026-11-02T10:11:12.000Z",
        "manifest": manifest,
        "signatureInfo": {"status": "unsigned"},
        "source": "local",
    }
    (user_data / "extensions-installations.json").write_text(json.dumps({"extensions": {EXT_ID: record}}))
    settings = user_data / "Claude Extensions Settings"
    settings.mkdir(parents=True)
    values = {"refresh_token": TOKEN, "realm_id": "9130355377371234", "pin": PIN}
    config = values if user_config is None else user_config
    (settings / f"{EXT_ID}.json").write_text(json.dumps({"isEnabled": enabled, "userConfig": config}))
    return bundle


def _ext_doctor(home: Path, tmp_path: Path, config: Path, *extra: str, **env: str) -> tuple[dict, dict]:
    user_home = tmp_path / "user-home"  # Desktop's ${HOME}
    user_home.mkdir(exist_ok=True)
    doc, probe = _doctor(home, config, *extra, HOME=str(user_home), **env)
    assert PIN not in str(doc)
    return doc, probe


def _desktop_folder(tmp_path: Path, servers: dict | None = None) -> Path:
    """<userData> with Desktop's config (the folder SIDEQUEST_CLAUDE_CONFIG names is the user data folder)."""
    return write_claude_config(tmp_path / "claude" / "claude_desktop_config.json", {"mcpServers": servers or {}})


def _pid_gone(pid_file: Path) -> None:
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(pid), f"the connector process {pid} outlived the doctor"


def test_an_extension_is_started_as_desktop_starts_it(home: Path, tmp_path: Path) -> None:
    config = _desktop_folder(tmp_path)  # no mcpServers entry: Desktop loads the connector only as an extension
    _extension(config.parent, _manifest("healthy"))
    doc, probe = _ext_doctor(home, tmp_path, config, TERMINAL_ONLY_VARIABLE="not for Desktop")
    assert probe["status"] == "ok", probe
    facts = probe["facts"]
    assert facts["started_from"] == "extension" and facts["extension_id"] == EXT_ID
    assert facts["entry"] == "SideQuest QuickBooks" and facts["program"] == sys.executable
    assert facts["tools"] == 2 and facts["server_name"] == "fake-qb-distributor"
    assert [(one["started_from"], one["outcome"]) for one in facts["launches"]] == [("extension", "ok")]
    assert facts["runtime"] is None and facts["exit_code"] is None
    # ${HOME} and ${/} were substituted (the pid file is where the manifest's env said), cwd is /.
    user_home = tmp_path / "user-home"
    assert (user_home / "ext-cwd").read_text() == "/"
    keys = set((user_home / "ext-envkeys").read_text().split())
    assert {"QB_REFRESH_TOKEN", "QB_REALM_ID", "QB_COMPANY_PIN", "QB_SANDBOX", "PATH", "HOME"} <= keys
    assert "TERMINAL_ONLY_VARIABLE" not in keys and "SIDEQUEST_HOME" not in keys
    assert keys - {"LC_CTYPE", "SIDEQUEST_LAUNCHED_BY_DOCTOR"} <= set(facts["env_keys"])
    _pid_gone(user_home / "ext-pid")


def test_an_extension_that_crashes_names_its_exit_code_and_hides_its_sensitive_settings(
    home: Path, tmp_path: Path
) -> None:
    config = tmp_path / "claude" / "claude_desktop_config.json"  # no config file at all: extensions only
    _extension(config.parent, _manifest("crash"))
    doc, probe = _ext_doctor(home, tmp_path, config)
    _assert_named(doc, probe, "exited_at_start")
    assert probe["facts"]["exit_code"] == 3 and probe["facts"]["exit_signal"] is None
    assert probe["details"][0] == "It stopped with exit code 3."
    assert not any("twice" in line for line in probe["details"])  # registered one way only
    # The connector printed the PIN: known as a secret only because the manifest marks it sensitive.
    assert any(line.startswith("  Loaded QB_COMPANY_PIN ") for line in probe["details"])
    assert "Settings → Extensions" in probe["remediation"]["text"]
    _pid_gone(tmp_path / "user-home" / "ext-pid")


def test_a_connector_stopped_by_a_signal_is_named(home: Path, tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("signals stop processes on POSIX only")
    doc, probe = _doctor(home, _config(tmp_path, "killed"))
    _assert_named(doc, probe, "exited_at_start")
    assert probe["facts"]["exit_signal"] == 9 and probe["facts"]["exit_code"] is None
    assert probe["details"][0] == "It was stopped by signal 9 (SIGKILL)."
    _assert_child_gone(tmp_path)


def test_a_turned_off_extension_is_not_started(home: Path, tmp_path: Path) -> None:
    config = _desktop_folder(tmp_path)
    _extension(config.parent, _manifest("healthy"), enabled=False)
    doc, probe = _ext_doctor(home, tmp_path, config)
    assert probe["status"] == "skip", probe
    assert "does not start the SideQuest connector either" in probe["summary"]
    assert 'the extension "SideQuest QuickBooks" is turned off' in probe["summary"]
    assert probe["facts"]["extension_not_started"] == "disabled"
    assert not (tmp_path / "user-home" / "ext-pid").exists()


def test_an_extension_missing_a_required_setting_is_not_started(home: Path, tmp_path: Path) -> None:
    config = _desktop_folder(tmp_path)
    _extension(config.parent, _manifest("healthy"), user_config={"realm_id": "9130355377371234", "refresh_token": ""})
    doc, probe = _ext_doctor(home, tmp_path, config)
    assert probe["status"] == "skip", probe
    assert "required settings left empty (refresh_token)" in probe["summary"]
    assert probe["facts"]["extension_not_started"] == "missing_required"
    assert not (tmp_path / "user-home" / "ext-pid").exists()


def test_registered_both_ways_both_copies_are_started_and_the_failing_one_named(home: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, "healthy")  # the mcpServers entry works ...
    _extension(config.parent, _manifest("crash"))  # ... the extension's copy does not
    doc, probe = _ext_doctor(home, tmp_path, config)
    _assert_named(doc, probe, "exited_at_start")
    facts = probe["facts"]
    assert facts["started_from"] == "extension" and facts["exit_code"] == 3
    assert [(one["started_from"], one["outcome"]) for one in facts["launches"]] == [
        ("mcp_servers", "ok"),
        ("extension", "exited_at_start"),
    ]
    assert "stops right after it starts" in probe["summary"]
    assert probe["details"][0].startswith("Claude Desktop starts this connector twice")
    assert probe["details"][0].endswith(
        "Both were started here: the settings' copy answered; the extension's copy stopped right after it "
        "started (described here)."
    )
    assert probe["details"][1] == "It stopped with exit code 3."
    _assert_child_gone(tmp_path)
    _pid_gone(tmp_path / "user-home" / "ext-pid")


def test_registered_both_ways_with_the_extension_turned_off_only_the_entry_is_started(
    home: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path, "healthy")
    _extension(config.parent, _manifest("healthy"), enabled=False)
    doc, probe = _ext_doctor(home, tmp_path, config)
    assert probe["status"] == "ok", probe
    assert [one["started_from"] for one in probe["facts"]["launches"]] == ["mcp_servers"]
    assert probe["facts"]["extension_not_started"] == "disabled"
    assert 'Not started as an extension: the extension "SideQuest QuickBooks" is turned off' in probe["details"][-1]
    assert not (tmp_path / "user-home" / "ext-pid").exists()
    _assert_child_gone(tmp_path)


def test_registered_both_ways_and_both_healthy_both_are_started(home: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, "healthy")
    _extension(config.parent, _manifest("healthy"))
    doc, probe = _ext_doctor(home, tmp_path, config)
    assert probe["status"] == "ok", probe
    assert probe["facts"]["started_from"] == "mcp_servers"
    assert [(one["started_from"], one["outcome"]) for one in probe["facts"]["launches"]] == [
        ("mcp_servers", "ok"),
        ("extension", "ok"),
    ]
    assert any(
        "starts this connector twice" in line and "the extension's copy answered" in line for line in probe["details"]
    )
    _assert_child_gone(tmp_path)
    _pid_gone(tmp_path / "user-home" / "ext-pid")


def _node_stand_in(folder: Path) -> Path:
    """A `node` program in a folder Desktop searches: it runs the fake connector it is given."""
    folder.mkdir(parents=True, exist_ok=True)
    node = folder / "node"
    node.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    node.chmod(0o755)
    return node


def test_a_node_extension_runs_with_the_system_node_in_place_of_desktops_built_in_one(
    home: Path, tmp_path: Path
) -> None:
    if sys.platform == "win32":
        pytest.skip("the stand-in node is a shell script")
    config = _desktop_folder(tmp_path)
    _extension(config.parent, _manifest("healthy", command="node", server_type="node"))
    node = _node_stand_in(tmp_path / "desktop-bin")
    doc, probe = _ext_doctor(home, tmp_path, config, PATH=os.pathsep.join([str(node.parent), "/usr/bin", "/bin"]))
    assert probe["status"] == "ok", probe
    assert probe["facts"]["runtime"] == "system_node_for_built_in_node"
    assert probe["facts"]["program"] == str(node)
    assert any("built-in Node.js" in line and str(node) in line for line in probe["details"])
    _pid_gone(tmp_path / "user-home" / "ext-pid")


def test_a_node_extension_with_no_node_to_stand_in_is_not_started(home: Path, tmp_path: Path) -> None:
    config = _desktop_folder(tmp_path)
    _extension(config.parent, _manifest("healthy", command="node", server_type="node"))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    doc, probe = _ext_doctor(home, tmp_path, config, PATH=str(empty))
    assert probe["status"] == "skip", probe
    assert "built-in Node.js" in probe["summary"]
    assert probe["facts"]["extension_not_started"] == "built_in_node"
    assert not (tmp_path / "user-home" / "ext-pid").exists()


def test_an_extension_with_settings_only_desktop_can_decrypt_is_not_started(home: Path, tmp_path: Path) -> None:
    config = _desktop_folder(tmp_path)
    ciphertext = "__encrypted__:djEwAAAAc2VjcmV0LWNpcGhlcnRleHQtOTk5OQ=="
    _extension(
        config.parent,
        _manifest("healthy"),
        user_config={"refresh_token": ciphertext, "realm_id": "9130355377371234", "pin": PIN},
    )
    doc, probe = _ext_doctor(home, tmp_path, config)
    assert probe["status"] == "skip", probe
    assert "encrypted (refresh_token)" in probe["summary"] and "only Claude Desktop can read" in probe["summary"]
    assert probe["facts"]["extension_not_started"] == "encrypted_settings"
    assert ciphertext not in str(doc)
    assert not (tmp_path / "user-home" / "ext-pid").exists()


def test_an_extension_whose_python_desktop_cannot_find_is_named(home: Path, tmp_path: Path) -> None:
    config = _desktop_folder(tmp_path)
    _extension(config.parent, _manifest("healthy", command="python3"))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    doc, probe = _ext_doctor(home, tmp_path, config, PATH=str(empty))
    _assert_named(doc, probe, None)
    assert probe["summary"] == (
        'Claude Desktop cannot start the SideQuest extension "SideQuest QuickBooks": the program "python3" '
        "is not found."
    )
    assert probe["details"][0].endswith(f": {empty}.")
    assert probe["remediation"]["text"].startswith("Install Python 3")
    assert probe["facts"]["started_from"] == "extension" and probe["facts"]["program"] is None
    assert not (tmp_path / "user-home" / "ext-pid").exists()
