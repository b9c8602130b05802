"""`doctor --fix` on a cause that needs consent: it offers reauth-qb on a terminal, never starts it alone."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from doctor.store.env_file import read_env_file
from tests.commands.test_reauth import OLD_REFRESH_TOKEN, World, make_world
from tests.support.homes import CLIENT_ID, REALM_ID, REPO, run_cli

QUESTION = "Start `sidequest reauth-qb` now?"


@pytest.fixture
def world(tmp_path: Path, fake_intuit) -> World:
    return make_world(tmp_path, fake_intuit)


def expire(world: World) -> None:
    past = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    world.write_env(QB_REFRESH_TOKEN_EXPIRES_AT=past, QB_TOKEN_REFRESHED_AT=past)


def run_on_terminal(world: World, answer: str, *args: str) -> tuple[int, str]:
    """`sidequest doctor --fix` with a terminal on stdin; answers the reauth question, refuses the rest."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "doctor.commands.cli", "doctor", "--fix", "--offline", *args],
        env=world.env(),
        cwd=REPO,
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(secondary)
    err = b""
    deadline = time.monotonic() + 60
    try:
        answered = 0
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 4096)
                err += chunk
            text = err.decode("utf-8", "replace")
            if text.count("Apply?") > answered:  # fixers are not what this test is about
                os.write(main, b"n\n")
                answered += 1
            if QUESTION in text and b"\x00asked" not in err:
                os.write(main, answer.encode() + b"\n")
                err += b"\x00asked"
        proc.wait(timeout=max(1, deadline - time.monotonic()))
        err += proc.stderr.read()
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err.decode("utf-8", "replace").replace("\x00asked", "")


def test_fix_offers_reauth_and_a_no_changes_nothing(world: World) -> None:
    expire(world)
    before = world.env_path.read_bytes()
    code, err = run_on_terminal(world, "n")
    assert QUESTION in err
    assert code == 1
    assert world.env_path.read_bytes() == before
    assert world.token_calls() == []


def test_fix_offer_accepted_runs_the_consent_flow(world: World) -> None:
    expire(world)
    code, err = run_on_terminal(world, "y")
    assert QUESTION in err
    assert code == 0, err
    new = world.fake.current_refresh_token(CLIENT_ID, REALM_ID)
    assert new and new != OLD_REFRESH_TOKEN
    assert read_env_file(world.env_path).get("QB_REFRESH_TOKEN") == new
    assert new not in err


def test_without_a_terminal_fix_never_starts_consent_even_with_yes(world: World) -> None:
    expire(world)
    before = world.env_path.read_bytes()
    result = run_cli("doctor", "--fix", "--yes", "--offline", env=world.env())
    assert result.returncode == 1
    assert "sidequest reauth-qb" in result.stderr and QUESTION not in result.stderr
    assert world.env_path.read_bytes() == before
    assert world.token_calls() == []
