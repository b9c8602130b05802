"""Each named situation of env-file and lock-health, on its own: real files in tmp_path, a real
second process for a held lock, and the few states a test run as root cannot make (a folder
it may not write, a lock file it may not open) set on the probe's reading directly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from doctor.context import Context
from doctor.situations import which
from probes import env_file, lock_health
from tests.probes.test_probe_situations import deciding_names
from tests.support.homes import configured_values, write_env
from tests.support.local_support import dead_pid, lock_held, write_owner_record


def make_ctx(home: Path) -> Context:
    return Context(home, None, environ={}, offline=True, lock_wait=0.3)


# ----------------------------------------------------------------------------- env-file


def _env_case(situation: str, home: Path) -> None:
    values = configured_values()
    if situation == "no_connector_folder":
        return
    if situation == "home_not_a_folder":
        home.write_text("not a folder")
    elif situation == "unreadable":
        home.mkdir()
    elif situation == "keys_missing":
        write_env(home, {k: v for k, v in values.items() if k != "QB_CLIENT_ID"})
    elif situation == "not_an_environment":
        write_env(home, configured_values(QB_ENVIRONMENT="staging"))
    elif situation == "something_to_tidy":
        write_env(home, values, mode=0o644)
    else:
        write_env(home, values)


ENV_FILE = {
    "no_connector_folder": "fail",
    "home_not_a_folder": "fail",
    "unreadable": "fail",
    "keys_missing": "fail",
    "not_an_environment": "fail",
    "something_to_tidy": "warn",
    "complete": "ok",
}


@pytest.mark.parametrize("situation", sorted(ENV_FILE))
def test_env_file_situation(tmp_path, situation) -> None:
    home = tmp_path / "home"
    _env_case(situation, home)
    name, finding = which(env_file.SITUATIONS, env_file._Reading(make_ctx(home)))
    assert name == situation, finding.summary
    assert finding.status == ENV_FILE[situation]
    assert finding.summary == env_file.check(make_ctx(home)).summary


def test_env_file_situations_are_all_tested() -> None:
    assert deciding_names(env_file.SITUATIONS) == set(ENV_FILE)


def test_env_file_upper_case_environment_is_only_a_warning(tmp_path) -> None:
    home = tmp_path / "home"
    write_env(home, configured_values(QB_ENVIRONMENT="Sandbox"))
    name, finding = which(env_file.SITUATIONS, env_file._Reading(make_ctx(home)))
    assert name == "something_to_tidy"
    assert "write it in lower case" in finding.summary


# ----------------------------------------------------------------------------- lock-health


def _lock_case(situation: str, home: Path) -> None:
    if situation == "no_connector_folder":
        return
    home.mkdir()
    if situation == "no_env_file":
        return
    if situation == "env_not_a_regular_file":
        (home / ".env").mkdir()
        return
    write_env(home, configured_values())
    if situation == "lock_file_not_a_file":
        (home / ".env.lock").mkdir()
    elif situation == "free_with_warnings":
        write_owner_record(home, dead_pid())


LOCK = {
    "no_connector_folder": "skip",
    "no_env_file": "skip",
    "env_not_a_regular_file": "skip",
    "lock_file_not_a_file": "fail",
    "free_with_warnings": "warn",
    "healthy": "ok",
}


@pytest.mark.parametrize("situation", sorted(LOCK))
def test_lock_health_situation(tmp_path, situation) -> None:
    home = tmp_path / "home"
    _lock_case(situation, home)
    name, finding = which(lock_health.SITUATIONS, lock_health._Reading(make_ctx(home)))
    assert name == situation, finding.summary
    assert finding.status == LOCK[situation]


def test_lock_health_lock_held(home: Path) -> None:
    with lock_held(home, "sidequest refresh-qb") as holder:
        name, finding = which(lock_health.SITUATIONS, lock_health._Reading(make_ctx(home)))
    assert name == "lock_held"
    assert finding.cause == "lock_problem" and f"pid {holder.pid}" in finding.summary
    assert finding.remediation.text.startswith("Wait a minute and run the doctor again. If it stays stuck")


def test_lock_health_lock_file_unopenable(home: Path) -> None:
    reading = lock_health._Reading(make_ctx(home))
    reading.unopenable = PermissionError(13, "Permission denied")
    finding = lock_health.lock_file_unopenable(reading)
    assert finding.cause == "lock_problem"
    assert finding.summary == f"SideQuest cannot open its lock file {home / '.env.lock'}: Permission denied."
    assert finding.remediation.commands == (f'rm -f "{home / ".env.lock"}"',)
    reading.unopenable = None
    assert lock_health.lock_file_unopenable(reading) is None


def test_lock_health_free_but_unusable(home: Path) -> None:
    reading = lock_health._Reading(make_ctx(home))
    lock_health.take_the_lock(reading)
    lock_health.leftovers(reading)
    assert lock_health.free_but_unusable(reading) is None
    reading.problems.append(f"SideQuest cannot write in {home}, so it cannot save a new token")
    finding = lock_health.free_but_unusable(reading)
    assert finding.status == "fail" and finding.cause == "lock_problem"
    assert "(the lock itself is free, taken in" in finding.summary


def test_lock_health_situations_are_all_tested() -> None:
    tested = set(LOCK) | {"lock_held", "lock_file_unopenable", "free_but_unusable"}
    assert deciding_names(lock_health.SITUATIONS) == tested
