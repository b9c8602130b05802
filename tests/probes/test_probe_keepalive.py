"""Probe `keepalive` in-process with a fixed clock, against real files in a temp home: the record
`keepalive on` leaves, the run log refresh-qb keeps and `.env`'s dates. Plus one CLI run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from doctor.context import Context
from doctor.plugins import build_plugins
from doctor.session import execute
from doctor.store.keepalive_record import KeepaliveRecord, write_record
from doctor.store.run_log import record_run
from tests.support.chain_support import metadata
from tests.support.homes import cli_env, configured_values, run_cli, write_env
from tests.support.schema_check import assert_valid_report

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def keepalive(tmp_path: Path, home: Path):
    ctx = Context(home, tmp_path / "no-claude-config.json", environ={}, offline=True, clock=lambda: NOW)
    try:
        run = execute(ctx, build_plugins({}, load_entry_points=False), only=["keepalive"], timeout=20)
    finally:
        ctx.close()
    return run.report.result("keepalive")


def installed(home: Path, *, days_ago: float = 1, every: int = 7, files: tuple[str, ...] = ()) -> None:
    write_record(
        home,
        KeepaliveRecord("cron", "the user's crontab", files, every, NOW - timedelta(days=days_ago), ("sidequest",)),
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    write_env(home, configured_values(**metadata(refreshed_at=NOW - timedelta(days=30))))  # 71 days left
    return home


def test_none_installed_with_time_to_spare_is_ok_and_says_it_is_optional(tmp_path, home) -> None:
    result = keepalive(tmp_path, home)
    assert result.status == "ok" and "No keep-alive is installed" in result.summary
    assert result.facts["installed"] is False and result.facts["last_run_at"] is None


def test_none_installed_and_the_connection_ends_within_30_days_warns(tmp_path, home) -> None:
    write_env(home, configured_values(**metadata(refreshed_at=NOW - timedelta(days=80))))  # ends in 21 days
    result = keepalive(tmp_path, home)
    assert result.status == "warn"
    assert "ends on 2026-12-17 (in 21 days)" in result.summary
    assert result.remediation.commands == ("sidequest keepalive on",)


def test_a_legacy_env_without_dates_does_not_warn(tmp_path) -> None:
    home = tmp_path / "home"
    write_env(home, configured_values())
    assert keepalive(tmp_path, home).status == "ok"


def test_installed_and_running_is_ok_with_its_last_run(tmp_path, home) -> None:
    installed(home, days_ago=10)
    record_run(home, "ok", now=NOW - timedelta(days=2))
    result = keepalive(tmp_path, home)
    assert result.status == "ok", result.summary
    assert "every 7 days (cron); last run 2026-11-24 12:00 UTC: ok" in result.summary
    assert result.facts["installed"] is True and result.facts["last_outcome"] == "ok"


def test_a_failed_last_run_warns_with_the_reason(tmp_path, home) -> None:
    installed(home, days_ago=10)
    record_run(home, "ok", now=NOW - timedelta(days=8))
    record_run(home, "network", now=NOW - timedelta(days=1))
    result = keepalive(tmp_path, home)
    assert result.status == "warn"
    assert "The last refresh-qb run, on 2026-11-25 12:00 UTC, failed" in result.summary
    assert "could not be reached" in result.summary and "(network)" in result.summary


def test_a_dead_chain_points_at_reauth(tmp_path, home) -> None:
    installed(home)
    record_run(home, "invalid_grant", now=NOW - timedelta(hours=3))
    result = keepalive(tmp_path, home)
    assert result.status == "warn" and "sidequest reauth-qb" in result.remediation.commands


def test_a_failure_followed_by_a_good_refresh_is_not_a_warning(tmp_path, home) -> None:
    installed(home)
    record_run(home, "network", now=NOW - timedelta(days=3))
    write_env(home, configured_values(**metadata(refreshed_at=NOW - timedelta(days=1))))
    assert keepalive(tmp_path, home).status == "ok"


def test_a_last_run_older_than_twice_the_interval_warns(tmp_path, home) -> None:
    installed(home, days_ago=40)
    record_run(home, "ok", now=NOW - timedelta(days=15))
    result = keepalive(tmp_path, home)
    assert result.status == "warn"
    assert "15 days ago" in result.summary and "every 7 days" in result.summary
    assert "sidequest keepalive status" in result.remediation.commands


def test_exactly_twice_the_interval_is_still_fine(tmp_path, home) -> None:
    installed(home, days_ago=40)
    record_run(home, "ok", now=NOW - timedelta(days=14))
    assert keepalive(tmp_path, home).status == "ok"


def test_no_run_since_an_old_install_warns(tmp_path, home) -> None:
    installed(home, days_ago=20)
    result = keepalive(tmp_path, home)
    assert result.status == "warn" and "No refresh-qb run is recorded since" in result.summary


def test_a_job_whose_files_were_deleted_warns(tmp_path, home) -> None:
    plist = tmp_path / "com.sidequestautomation.keepalive.plist"
    installed(home, files=(str(plist),))
    result = keepalive(tmp_path, home)
    assert result.status == "warn" and "is gone" in result.summary
    plist.write_text("<plist/>")
    assert keepalive(tmp_path, home).status == "ok"


def test_the_offline_doctor_lists_and_runs_it(tmp_path, home) -> None:
    listed = run_cli("doctor", "--list-probes", env=cli_env(home))
    assert "keepalive" in listed.stdout
    installed(home, days_ago=1)
    result = run_cli("doctor", "--offline", "--format", "json", env=cli_env(home))
    doc = result.json()
    assert_valid_report(doc)
    probe = next(p for p in doc["probes"] if p["id"] == "keepalive")
    assert probe["status"] == "ok" and probe["side_effects"] == "none"


def test_a_healthy_run_suggests_keepalive_on_only_where_none_is_installed(tmp_path, home) -> None:
    def tip() -> list[str]:
        doc = run_cli("doctor", "--offline", "--format", "json", env=cli_env(home)).json()
        assert doc["diagnosis"]["cause"] == "healthy", doc["diagnosis"]
        return doc["diagnosis"]["fix"]

    assert any("sidequest keepalive on" in step for step in tip())
    installed(home, days_ago=1)
    record_run(home, "ok", now=datetime.now(timezone.utc))
    after = tip()
    assert not any("keepalive on" in step for step in after)
    assert any("keep-alive on this computer refreshes" in step for step in after)
