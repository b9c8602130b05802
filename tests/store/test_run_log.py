"""The refresh-qb run log: bounded, atomic, word-only outcomes, tolerant of a damaged file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from doctor.store.run_log import MAX_RUNS, RUN_LOG_NAME, failure_outlived, last_run, read_runs, record_run

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def test_keeps_only_the_newest_runs_oldest_first(tmp_path: Path) -> None:
    for day in range(MAX_RUNS + 3):
        assert record_run(tmp_path, "network" if day % 2 else "ok", now=T0 + timedelta(days=day))
    runs = read_runs(tmp_path)
    assert len(runs) == MAX_RUNS
    assert runs[0].at == T0 + timedelta(days=3) and runs[-1].at == T0 + timedelta(days=MAX_RUNS + 2)
    assert last_run(tmp_path).outcome == "ok"
    data = json.loads((tmp_path / RUN_LOG_NAME).read_text())
    assert data["runs"][-1] == {"at": "2026-11-13T12:00:00Z", "outcome": "ok"}
    assert (tmp_path / RUN_LOG_NAME).stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [RUN_LOG_NAME]  # no temp file left behind


def test_only_a_short_word_is_ever_stored(tmp_path: Path) -> None:
    token = "RT1-39-H3-1785429816rcysb9dns1ofreknypnm"
    record_run(tmp_path, token, now=T0)
    record_run(tmp_path, "Invalid Grant: see " + token, now=T0 + timedelta(seconds=1))
    assert token not in (tmp_path / RUN_LOG_NAME).read_text()
    assert [r.outcome for r in read_runs(tmp_path)] == ["error", "error"]


def test_a_damaged_log_reads_empty_and_the_next_run_replaces_it(tmp_path: Path) -> None:
    (tmp_path / RUN_LOG_NAME).write_text('{"runs": [{"at": "yesterday", "outcome": "ok"}, 7')
    assert read_runs(tmp_path) == []
    assert record_run(tmp_path, "ok", now=T0)
    assert [r.outcome for r in read_runs(tmp_path)] == ["ok"]
    (tmp_path / RUN_LOG_NAME).write_text('{"runs": [{"at": "2026-11-01T00:00:00Z", "outcome": "<script>"}]}')
    assert read_runs(tmp_path) == []


def test_a_missing_home_is_not_created_for_a_log(tmp_path: Path) -> None:
    assert not record_run(tmp_path / "absent", "not_configured", now=T0)
    assert not (tmp_path / "absent").exists()


def test_a_failure_is_outlived_only_by_a_later_good_refresh(tmp_path: Path) -> None:
    record_run(tmp_path, "invalid_grant", now=T0)
    run = last_run(tmp_path)
    assert not failure_outlived(run, None)
    assert not failure_outlived(run, T0 - timedelta(hours=1))
    assert failure_outlived(run, T0 + timedelta(hours=1))
    record_run(tmp_path, "ok", now=T0 + timedelta(days=1))
    assert not failure_outlived(last_run(tmp_path), T0 + timedelta(days=2))
