"""`sidequest doctor --fix` end to end: the real CLI repairing real files, or refusing to.

One messy home carries every local problem a fixer can repair: Claude Desktop's entry for a
different company with an older token, a leftover temp file from an interrupted save, the lock
record of a process that died, and a `.env` other users can read.
"""

from __future__ import annotations

import json
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from tests.framework.test_plugins import install_plugin
from tests.support.homes import cli_env, run_cli, write_env
from tests.support.local_support import (
    CLAUDE_TOKEN,
    assert_no_secret,
    dead_pid,
    fresh_values,
    make_old,
    rich_config,
    secrets_of,
    snapshot,
    synced_env,
    write_claude_config,
    write_owner_record,
)
from tests.support.schema_check import assert_valid_report

OTHER_REALM = "4620816365000000000"


@pytest.fixture
def messy(tmp_path: Path):
    home = tmp_path / "home"
    values = fresh_values()
    write_env(home, values, mode=0o644)
    config = tmp_path / "Claude" / "claude_desktop_config.json"
    original = rich_config(synced_env(values) | {"QB_REALM_ID": OTHER_REALM, "QB_REFRESH_TOKEN": CLAUDE_TOKEN})
    write_claude_config(config, original)
    temp = home / ".env.tmp-q8w7e6"
    temp.write_text("QB_REFRESH_TOKEN=half-written\n")
    make_old(temp)
    pid = dead_pid()
    record = write_owner_record(home, pid, command="sidequest refresh-qb")
    return {
        "home": home,
        "values": values,
        "config": config,
        "original": original,
        "temp": temp,
        "record": record,
        "pid": pid,
        "env": cli_env(home, config),
    }


def check_clean(result, values) -> None:
    assert "Traceback" not in result.stderr
    assert_no_secret(result.stdout + result.stderr, secrets_of(values))


def test_dry_run_changes_nothing_and_lists_every_fix(messy) -> None:
    folders = (messy["home"], messy["config"].parent)
    before = snapshot(*folders)
    result = run_cli("doctor", "--offline", "--fix", "--dry-run", "--format", "json", env=messy["env"])
    check_clean(result, messy["values"])
    assert snapshot(*folders) == before  # bytes, mtimes and modes of every file, no new file
    doc = result.json()
    assert_valid_report(doc)
    assert doc["diagnosis"]["cause"] == "claude_config_out_of_sync" and result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("Would fix")]
    assert {line.split(":")[0] for line in lines} == {
        "Would fix env-file",
        "Would fix lock-health",
        "Would fix claude-config-sync",
    }
    assert "0o600" in result.stderr
    assert messy["temp"].name in result.stderr and str(messy["pid"]) in result.stderr
    assert "QB_REALM_ID" in result.stderr and "QB_REFRESH_TOKEN" in result.stderr


def test_fix_yes_repairs_everything_and_reports_before_and_after(messy) -> None:
    config = messy["config"]
    original_bytes = config.read_bytes()
    result = run_cli("doctor", "--offline", "--fix", "--yes", "--format", "json", env=messy["env"])
    check_clean(result, messy["values"])
    doc = result.json()
    assert_valid_report(doc)
    assert doc["diagnosis"]["cause"] == "healthy", result.stderr
    assert result.returncode == 0 and doc["exit_code"] == 0
    statuses = {p["id"]: p["status"] for p in doc["probes"]}
    assert statuses["env-file"] == statuses["lock-health"] == statuses["claude-config-sync"] == "ok"

    assert "claude-config-sync: fail → ok" in result.stderr
    assert "lock-health: warn → ok" in result.stderr
    assert "env-file: warn → ok" in result.stderr

    # Claude's file: only the connector's env changed; everything else parses back identical.
    expected = json.loads(json.dumps(messy["original"]))
    expected["mcpServers"]["qb-distributor"]["env"] = synced_env(messy["values"])
    assert json.loads(config.read_text(encoding="utf-8")) == expected
    backups = list(config.parent.glob("claude_desktop_config.json.sidequest-backup-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == original_bytes

    assert not messy["temp"].exists()
    assert not messy["record"].exists()
    assert stat.S_IMODE((messy["home"] / ".env").stat().st_mode) == 0o600


def test_fix_text_output_is_the_after_report(messy) -> None:
    result = run_cli("doctor", "--offline", "--fix", "--yes", env=messy["env"])
    check_clean(result, messy["values"])
    assert result.returncode == 0
    assert "done: claude-config-sync" in result.stderr and "done: lock-health" in result.stderr
    assert "Cause: healthy" in result.stdout


def test_without_yes_and_without_a_terminal_nothing_is_applied(messy) -> None:
    folders = (messy["home"], messy["config"].parent)
    before = snapshot(*folders)
    result = run_cli("doctor", "--offline", "--fix", env=messy["env"], input="y\ny\ny\n")
    check_clean(result, messy["values"])
    assert snapshot(*folders) == before
    assert result.stderr.count("skipped: no terminal to ask; use --yes") == 3
    assert "done:" not in result.stderr
    assert result.returncode == 1


def _missing_token(home: Path) -> None:
    write_env(home, {k: v for k, v in fresh_values().items() if k != "QB_REFRESH_TOKEN"})


def _expired(home: Path) -> None:
    write_env(
        home,
        fresh_values(QB_TOKEN_REFRESHED_AT="2026-01-01T00:00:00Z", QB_REFRESH_TOKEN_EXPIRES_AT="2026-04-11T00:00:00Z"),
    )


@pytest.mark.parametrize(
    "setup, cause",
    [(_missing_token, "not_configured"), (_expired, "refresh_token_expired")],
    ids=["not_configured", "expired"],
)
def test_consent_causes_point_at_reauth_and_are_never_automated(tmp_path: Path, setup, cause: str) -> None:
    home = tmp_path / "home"
    setup(home)
    config = write_claude_config(
        tmp_path / "Claude" / "claude_desktop_config.json", rich_config(synced_env(fresh_values()))
    )
    folders = (home, config.parent)
    before = snapshot(*folders)
    result = run_cli("doctor", "--offline", "--fix", "--yes", "--format", "json", env=cli_env(home, config))
    check_clean(result, fresh_values())
    doc = result.json()
    assert_valid_report(doc)
    assert doc["diagnosis"]["cause"] == cause and result.returncode == 1
    assert "sidequest reauth-qb" in result.stderr
    assert "No automatic fix applies" in result.stderr
    assert snapshot(*folders) == before  # no consent, no token, no config was written


BROKEN_FIXER_PLUGIN = textwrap.dedent(
    """
    from doctor import hookimpl
    from doctor.model import Finding, Fixer, Probe

    def describe(ctx):
        raise RuntimeError("cannot read the widget file")

    @hookimpl
    def sidequest_probes():
        fixer = Fixer(describe, lambda ctx: "changed nothing")
        return [Probe(id="widget", title="Widget", run=lambda ctx: Finding("fail", "widget broken"), fixer=fixer)]
    """
)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_fixer_whose_describe_fails_is_shown_in_the_report_and_on_stderr(messy, tmp_path: Path, fmt: str) -> None:
    # Before: the error went into the results after the report had been rendered, and was lost.
    site = tmp_path / "site"
    install_plugin(site, "widget", "sidequest_widget", BROKEN_FIXER_PLUGIN)
    env = {**messy["env"], "PYTHONPATH": str(site)}
    result = run_cli("doctor", "--offline", "--fix", "--yes", "--format", fmt, env=env)
    check_clean(result, messy["values"])
    assert "Could not check widget: its fixer could not check what to change: RuntimeError" in result.stderr
    assert "done: claude-config-sync" in result.stderr  # the other fixers still ran
    why = "--fix: its fixer could not check what to change: RuntimeError: cannot read the widget file"
    if fmt == "json":
        doc = result.json()
        assert_valid_report(doc)
        widget = next(p for p in doc["probes"] if p["id"] == "widget")
        assert why in widget["details"]
        statuses = {p["id"]: p["status"] for p in doc["probes"]}
        assert statuses["claude-config-sync"] == "ok"  # the after-run, rendered once
    else:
        assert why in result.stdout


def test_fix_returns_a_new_run_and_leaves_the_diagnosed_one_alone(messy) -> None:
    from doctor.fixing import fix_run, rerun_in_fresh_context
    from doctor.plugins import build_plugins
    from doctor.session import build_context, execute

    def make_context():
        return build_context(messy["home"], messy["config"], environ=messy["env"], offline=True)

    ctx = make_context()
    try:
        before = execute(ctx, build_plugins(ctx.environ))
        document_before = json.dumps(before.document, sort_keys=True)
        statuses_before = {r.id: r.status for r in before.report.results}
        outcome = fix_run(
            before,
            yes=True,
            dry_run=False,
            confirm=lambda q: False,
            rerun=rerun_in_fresh_context(before, make_context, 20),
        )
    finally:
        ctx.close()
    assert outcome.run is not before and outcome.run.report is not before.report
    assert {r.id: r.status for r in before.report.results} == statuses_before
    assert json.dumps(before.document, sort_keys=True) == document_before
    assert outcome.run.report.diagnosis.cause == "healthy" and outcome.run.report.exit_code == 0
    assert outcome.run.document["diagnosis"]["cause"] == "healthy"
    assert ("claude-config-sync", "fail", "ok") in outcome.changes


# ----------------------------------------------------------------------------- when Claude Desktop wipes the entry


def test_fix_puts_back_an_entry_claude_desktop_removed_and_checks_again(messy) -> None:
    config = messy["config"]
    first = run_cli("doctor", "--offline", "--fix", "--yes", env=messy["env"])
    assert first.returncode == 0, first.stderr
    assert (messy["home"] / "claude-entry.json").exists()
    written = json.loads(config.read_text(encoding="utf-8"))
    wiped = json.loads(json.dumps(written))
    del wiped["mcpServers"]["qb-distributor"]  # Desktop rewrote its file without our entry
    write_claude_config(config, wiped)

    seen = run_cli("doctor", "--offline", "--format", "json", env=messy["env"])
    assert seen.returncode == 1
    probe = next(p for p in seen.json()["probes"] if p["id"] == "claude-config-sync")
    assert probe["status"] == "fail" and seen.json()["diagnosis"]["cause"] == "claude_config_out_of_sync"
    assert probe["summary"].startswith("Claude Desktop removed SideQuest's entry")
    assert probe["remediation"]["commands"] == ["sidequest doctor --fix"]

    result = run_cli("doctor", "--offline", "--fix", "--yes", "--format", "json", env=messy["env"])
    check_clean(result, messy["values"])
    assert result.returncode == 0, result.stderr
    assert_valid_report(result.json())
    assert "Fix claude-config-sync: put back SideQuest's entry" in result.stderr
    assert "claude-config-sync: fail → ok" in result.stderr
    assert json.loads(config.read_text(encoding="utf-8")) == written


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fake Claude Desktop is a Linux process")
def test_fix_leaves_claude_desktops_config_alone_while_it_runs(messy, tmp_path: Path) -> None:
    from tests.support.fake_desktop import desktop_running

    config = messy["config"]
    before = config.read_bytes()
    with desktop_running(config, tmp_path / "desk"):
        result = run_cli("doctor", "--offline", "--fix", "--yes", env=messy["env"])
    check_clean(result, messy["values"])
    assert result.returncode == 1
    assert "failed: claude-config-sync: Claude Desktop is running" in result.stderr
    assert "Quit Claude Desktop (" in result.stderr and "then run `sidequest doctor --fix`" in result.stderr
    assert "DesktopRunning" not in result.stderr and "ClaudeConfigError" not in result.stderr
    assert config.read_bytes() == before and list(config.parent.iterdir()) == [config]
    assert "done: lock-health" in result.stderr  # the fixes that do not touch Claude's file still ran
