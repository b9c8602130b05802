"""Shared fixtures: a temp connector home and the fake Intuit."""

from __future__ import annotations

from pathlib import Path

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
