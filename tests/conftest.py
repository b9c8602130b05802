"""Shared fixtures: a temp connector home, the fake Intuit, and throwaway plugins."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.support.homes import CORPUS, REQUIRE_CORPUS_ENV, configured_values, corpus_required, write_env


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    # `-n auto`: two workers per core. About 40% of a test's time here is spent waiting (on a child
    # process, a socket, a timeout that must pass), so one worker per core leaves the cores idle a
    # third of the time; on 2 cores 4 workers (with --dist worksteal) took the suite from 80-84 s to
    # 67-69 s. PYTEST_XDIST_AUTO_NUM_WORKERS, when set, still decides.
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 2 * cores


def pytest_sessionstart(session: pytest.Session) -> None:
    # Tests parametrized over the corpus files collect nothing when it is absent, so the
    # folder itself is checked up front when it is required.
    if corpus_required() and not CORPUS.is_dir():
        raise pytest.UsageError(f"{REQUIRE_CORPUS_ENV} is set but the corpus {CORPUS} is missing")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # A test that skips for want of a corpus sample fails when the corpus is required, whichever
    # helper it skipped through.
    outcome = yield
    report = outcome.get_result()
    if report.skipped and corpus_required() and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if "corpus" in reason.lower():
            report.outcome = "failed"
            report.longrepr = f"skipped although {REQUIRE_CORPUS_ENV} is set: {reason}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A configured connector home (legacy: no metadata keys)."""
    home = tmp_path / "home"
    write_env(home, configured_values())
    return home


@pytest.fixture
def fake_intuit():
    from tests.support.fake_intuit import FakeIntuit

    fake = FakeIntuit().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def plugin_set() -> Callable[..., Any]:
    """Build a plugin set in-process with throwaway plugins (llm's tests/conftest.py style).

    A throwaway plugin is any object with `@hookimpl` methods, passed as `(name, obj)`. Each
    call builds a new plugin manager, so nothing a test registers outlives it; entry points
    are not scanned (tests/framework/test_plugins.py has the one real installed one).
    """
    from doctor.plugins import build_plugins

    def build(*plugins: tuple[str, Any], environ: dict[str, str] | None = None, builtins: bool = True):
        return build_plugins(environ or {}, load_entry_points=False, load_builtins=builtins, extra_plugins=plugins)

    return build


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1, for the HTTPS fake Intuit (FakeIntuit(tls=...))."""
    from tests.support.fake_intuit import self_signed_certificate

    made = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("neither the cryptography package nor the openssl command is available to make a certificate")
    return made
