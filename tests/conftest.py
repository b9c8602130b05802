"""Shared fixtures: a temp connector home, the fake Intuit, and throwaway plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tests.support.homes import configured_values, write_env


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
