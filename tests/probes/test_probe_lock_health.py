"""lock-health against real files and a real second process holding the real lock."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from doctor.context import Context
from probes import lock_health
from probes.lock_health import apply_fix, check, cloud_folder, describe_fix
from tests.support.homes import configured_values, write_env
from tests.support.local_support import dead_pid, lock_held, make_old, snapshot, write_owner_record


def make_ctx(home: Path, lock_wait: float = 0.4) -> Context:
    return Context(home, None, environ={}, offline=True, lock_wait=lock_wait)


def test_free_lock_is_ok_reports_the_time_and_creates_nothing(home: Path) -> None:
    before = snapshot(home)
    finding = check(make_ctx(home))
    assert finding.status == "ok", finding.summary
    assert finding.facts["lock_free"] is True
    assert 0 <= finding.facts["lock_acquired_ms"] < 400
    assert "ms" in finding.summary
    assert snapshot(home) == before  # the probe observes only


@pytest.mark.parametrize("layout", ["no_home", "no_env", "env_is_folder"])
def test_missing_home_or_env_is_a_brief_skip(tmp_path: Path, layout: str) -> None:
    home = tmp_path / "home"
    if layout != "no_home":
        home.mkdir()
    if layout == "env_is_folder":
        (home / ".env").mkdir()
    finding = check(make_ctx(home))
    assert finding.status == "skip"
    assert "env-file" in finding.summary


def test_symlinked_env_is_fine_and_reported(tmp_path: Path) -> None:
    real = write_env(tmp_path / "dotfiles", configured_values())
    home = tmp_path / "home"
    home.mkdir()
    (home / ".env").symlink_to(real)
    finding = check(make_ctx(home))
    assert finding.status == "ok"
    assert finding.facts["env_symlink_target"] == str(real.resolve())


def test_lock_held_by_a_live_process_names_it_and_gives_up_in_time(home: Path) -> None:
    with lock_held(home, "sidequest refresh-qb") as holder:
        started = time.monotonic()
        finding = check(make_ctx(home, lock_wait=0.5))
        elapsed = time.monotonic() - started
    assert finding.status == "fail" and finding.cause == "lock_problem"
    assert f"pid {holder.pid}" in finding.summary and "sidequest refresh-qb" in finding.summary
    assert finding.facts["holder"]["alive"] is True
    assert finding.facts["lock_free"] is False
    assert f"kill {holder.pid}" in finding.remediation.commands
    assert 0.5 <= elapsed < 2.5


def test_lock_held_without_an_owner_record_still_fails_clearly(home: Path) -> None:
    with lock_held(home, record=False):
        finding = check(make_ctx(home, lock_wait=0.3))
    assert finding.status == "fail" and finding.cause == "lock_problem"
    assert "no record" in finding.summary
    assert finding.remediation.commands == ()


def test_stale_record_of_a_dead_process_warns_and_the_fixer_removes_it(home: Path) -> None:
    pid = dead_pid()
    record = write_owner_record(home, pid, command="sidequest refresh-qb")
    ctx = make_ctx(home)
    finding = check(ctx)
    assert finding.status == "warn", finding.summary
    assert finding.cause is None
    assert f"process {pid}" in finding.summary and "no longer running" in finding.summary
    assert finding.facts["stale_owner"]["alive"] is False
    assert finding.remediation.safe_to_automate
    assert record.exists(), "the probe itself must not clear the evidence"

    plan = describe_fix(ctx)
    assert plan and str(pid) in plan
    did = apply_fix(ctx)
    assert str(pid) in did
    assert not record.exists()
    assert check(make_ctx(home)).status == "ok"
    assert describe_fix(make_ctx(home)) is None


def test_record_of_a_running_process_while_the_lock_is_free_is_stale_too(home: Path) -> None:
    write_owner_record(home, os.getpid())  # alive, but it does not hold the lock
    finding = check(make_ctx(home))
    assert finding.status == "warn"
    assert "does not hold the lock" in finding.summary
    assert describe_fix(make_ctx(home))


def test_record_from_another_computer_warns_without_a_fixer(home: Path) -> None:
    write_owner_record(home, 4242, host="other-mac.local")
    finding = check(make_ctx(home))
    assert finding.status == "warn"
    assert "another computer" in finding.summary
    assert describe_fix(make_ctx(home)) is None


def test_stale_record_is_not_offered_for_removal_while_the_lock_is_held(home: Path) -> None:
    with lock_held(home) as holder:
        # The live holder's own record is there; the fixer must leave it alone.
        assert describe_fix(make_ctx(home)) is None
        assert (home / ".env.lock.owner").exists()
        assert holder.poll() is None


def test_old_temp_files_warn_and_are_removed_young_ones_are_kept(home: Path) -> None:
    old = home / ".env.tmp-k2j3h4"
    old.write_text("QB_REFRESH_TOKEN=half-written")
    make_old(old)
    young = home / ".env.tmp-fresh1"
    young.write_text("")
    unrelated = home / "notes.txt"
    unrelated.write_text("mine")
    make_old(unrelated)

    ctx = make_ctx(home)
    finding = check(ctx)
    assert finding.status == "warn"
    assert "1 leftover temporary file" in finding.summary
    assert {f["name"] for f in finding.facts["temp_files"]} == {old.name, young.name}
    assert old.name in describe_fix(ctx) and young.name not in describe_fix(ctx)
    apply_fix(ctx)
    assert not old.exists() and young.exists() and unrelated.exists()


def test_only_young_temp_files_are_not_a_warning(home: Path) -> None:
    (home / ".env.tmp-justnow").write_text("")
    finding = check(make_ctx(home))
    assert finding.status == "ok"
    assert describe_fix(make_ctx(home)) is None


def test_unwritable_folder_fails_as_lock_problem(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if getattr(os, "geteuid", lambda: -1)() == 0:
        # root writes everywhere, so permissions cannot make a real unwritable folder here.
        monkeypatch.setattr(lock_health, "folder_writable", lambda folder: False)
    else:
        home.chmod(0o500)
    try:
        finding = check(make_ctx(home))
    finally:
        home.chmod(0o700)
    assert finding.status == "fail" and finding.cause == "lock_problem"
    assert "cannot write" in finding.summary and "cannot save a new token" in finding.summary


def test_lock_file_that_is_a_folder_fails(home: Path) -> None:
    (home / ".env.lock").mkdir()
    finding = check(make_ctx(home))
    assert finding.status == "fail" and finding.cause == "lock_problem"


@pytest.mark.parametrize(
    "path, service",
    [
        ("/Users/ann/Library/Mobile Documents/com~apple~CloudDocs/qb", "iCloud Drive"),
        ("/Users/ann/Library/CloudStorage/Dropbox/qb", "a cloud drive (Dropbox, OneDrive, Google Drive, Box)"),
        ("/home/ann/Dropbox/.qb-distributor-mcp", "Dropbox"),
        ("/Users/ann/Dropbox (Personal)/qb", "Dropbox"),
        ("C:\\Users\\ann\\OneDrive - Contoso Ltd\\qb", "OneDrive"),
        ("/Volumes/GoogleDrive/My Drive/qb", "Google Drive"),
        ("C:\\Users\\ann\\iCloudDrive\\qb", "iCloud Drive"),
        ("/home/ann/.qb-distributor-mcp", None),
        ("/home/ann/dropbox-export/qb", None),
        ("/srv/OneDriveBackup/qb", None),
    ],
)
def test_cloud_folder_detection(path: str, service: str | None) -> None:
    assert cloud_folder(Path(path)) == service


def test_home_inside_a_synced_folder_warns_and_says_to_move_it(tmp_path: Path) -> None:
    home = tmp_path / "Library" / "CloudStorage" / "OneDrive-Personal" / "qb"
    write_env(home, configured_values())
    finding = check(make_ctx(home))
    assert finding.status == "warn"
    assert "cloud drive" in finding.summary
    assert "SIDEQUEST_HOME" in finding.remediation.text
    assert describe_fix(make_ctx(home)) is None  # moving folders is the owner's call
