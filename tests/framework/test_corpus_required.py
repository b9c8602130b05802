"""Corpus tests skip without ../shared, except where the corpus is required (CI): there they fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.homes import REPO, REQUIRE_CORPUS_ENV, cli_env, corpus_missing

SAMPLE = """
import pytest
from tests.support.homes import corpus_dir


def test_through_the_helper():
    corpus_dir("no-such-corpus-folder")


def test_through_its_own_skip():
    pytest.skip("corpus file 99-missing.json not available")


def test_other_skip():
    pytest.skip("needs a non-loopback address")
"""


def run_sample(tmp_path: Path, **env: str) -> str:
    test = tmp_path / "test_sample.py"
    test.write_text(SAMPLE)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-rfs", "-p", "no:cacheprovider", str(test)],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=cli_env(**env),
    )  # fmt: skip
    return proc.stdout


def test_without_the_requirement_missing_corpus_samples_skip(tmp_path: Path) -> None:
    out = run_sample(tmp_path)
    assert "3 skipped" in out and "failed" not in out


def test_with_the_requirement_missing_corpus_samples_fail_and_other_skips_stay(tmp_path: Path) -> None:
    out = run_sample(tmp_path, **{REQUIRE_CORPUS_ENV: "1"})
    assert "2 failed, 1 skipped" in out, out
    assert "FAILED" in out and "test_through_the_helper" in out and "test_through_its_own_skip" in out


def test_the_helper_fails_in_process_when_required(monkeypatch) -> None:
    monkeypatch.setenv(REQUIRE_CORPUS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="must be there"):
        corpus_missing("corpus folder x is not available")
    monkeypatch.setenv(REQUIRE_CORPUS_ENV, "0")
    with pytest.raises(pytest.skip.Exception):
        corpus_missing("corpus folder x is not available")
