"""Every exchange with Intuit ends by a wall-clock deadline, even against a server that drips bytes.

Issue 9 §1: a token endpoint that sends its status line and then one header byte at a time
resets httpx's per-read timeout with every byte, so without an absolute deadline `refresh-qb`
and the connector's `get_access_token()` ran for minutes holding the `.env` lock. These tests
use the fake Intuit's drip modes on 127.0.0.1. Each call runs in a thread joined with a
generous safety limit, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from doctor.intuit.client import IntuitClient
from doctor.intuit.errors import IntuitError
from doctor.store.lock_records import LOCK_NAME, OWNER_NAME
from doctor.store.token_store import REFRESH_BUDGET_ENV, TokenStore, refresh_budget
from tests.support.fake_intuit import FakeIntuit
from tests.support.homes import CLIENT_ID, CLIENT_SECRET, REALM_ID, cli_env, configured_values, run_cli, write_env

# Far beyond every budget below, far below "minutes": only a call that ignores its deadline reaches it.
SAFETY_SECONDS = 20.0


def outcome_within(call, limit: float = SAFETY_SECONDS) -> BaseException | object:
    """Run `call` in a thread; its result or exception, or fail when it is still running after `limit`."""
    box: list[object] = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit)
    assert not worker.is_alive(), f"the call was still running after {limit:g} s: no wall-clock deadline"
    return box[0]


@pytest.fixture
def dripping(fake_intuit: FakeIntuit):
    fake_intuit.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
    fake_intuit.add_company(REALM_ID, "Larry's Bakery", "sandbox")
    token = fake_intuit.mint_chain(CLIENT_ID, REALM_ID)
    fake_intuit.drip_seconds = 0.1
    return fake_intuit, token


@pytest.mark.parametrize("mode", ["drip_headers", "drip_body"])
def test_a_dripping_answer_ends_at_the_callers_deadline(dripping, mode: str) -> None:
    fake, token = dripping
    fake.fail_mode = mode
    # The per-read timeout (5 s) never fires: a byte arrives every 0.1 s. Only the deadline can end it.
    with IntuitClient(environ=fake.environ(), timeout=5.0, connect_timeout=5.0) as client:
        started = time.monotonic()
        err = outcome_within(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, token, deadline=started + 1.0))
        elapsed = time.monotonic() - started
    assert isinstance(err, IntuitError), err
    assert err.kind == "timeout" and err.retryable
    assert "did not finish answering in time; gave up after" in str(err)
    assert elapsed < SAFETY_SECONDS / 2
    assert token not in str(err) and CLIENT_SECRET not in str(err)


def test_without_a_callers_deadline_the_clients_own_bound_holds(dripping) -> None:
    fake, token = dripping
    fake.fail_mode = "drip_headers"
    with IntuitClient(environ=fake.environ(), timeout=0.5, connect_timeout=0.5) as client:
        err = outcome_within(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, token))
    assert isinstance(err, IntuitError) and err.kind == "timeout"
    assert "gave up after 1.5 s" in str(err)  # connect_timeout + 2 x timeout


def test_a_spent_budget_sends_nothing(dripping) -> None:
    fake, token = dripping
    with IntuitClient(environ=fake.environ()) as client:
        with pytest.raises(IntuitError) as info:
            client.refresh(CLIENT_ID, CLIENT_SECRET, token, deadline=time.monotonic() - 1)
    assert info.value.kind == "timeout" and "budget" in str(info.value)
    assert fake.requests == []


def test_the_client_still_answers_after_a_deadline_fired(dripping) -> None:
    """The watchdog only ever touches its own exchange's connection."""
    fake, token = dripping
    with IntuitClient(environ=fake.environ(), timeout=5.0, connect_timeout=5.0) as client:
        fake.fail_mode = "drip_headers"
        assert isinstance(
            outcome_within(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, token, deadline=time.monotonic() + 0.5)),
            IntuitError,
        )
        fake.fail_mode = None
        answer = client.refresh(CLIENT_ID, CLIENT_SECRET, token, deadline=time.monotonic() + 10)
    assert answer.refresh_token


def assert_lock_is_free(home: Path) -> None:
    lock = FileLock(str(home / LOCK_NAME))
    lock.acquire(timeout=0)  # raises filelock.Timeout if anything still holds it
    lock.release()
    assert not (home / OWNER_NAME).exists()


def test_the_token_store_gives_up_within_its_budget_and_frees_the_lock(dripping, tmp_path: Path) -> None:
    fake, token = dripping
    fake.fail_mode = "drip_headers"
    home = tmp_path / "home"
    write_env(home, configured_values(QB_REFRESH_TOKEN=token))
    before = (home / ".env").read_bytes()
    store = TokenStore(home, environ={**fake.environ(), REFRESH_BUDGET_ENV: "1"})
    try:
        started = time.monotonic()
        err = outcome_within(lambda: store.refresh(wait=10.0))
        elapsed = time.monotonic() - started
    finally:
        store.close()
    assert isinstance(err, IntuitError) and err.kind == "timeout", err
    assert elapsed < SAFETY_SECONDS / 2
    assert (home / ".env").read_bytes() == before
    assert_lock_is_free(home)


def test_refresh_qb_against_a_dripping_intuit_ends_within_its_budget(dripping, tmp_path: Path) -> None:
    fake, token = dripping
    fake.fail_mode = "drip_headers"
    home = tmp_path / "home"
    write_env(home, configured_values(QB_REFRESH_TOKEN=token))
    before = (home / ".env").read_bytes()
    env = cli_env(home, **fake.environ(), **{REFRESH_BUDGET_ENV: "1"})
    started = time.monotonic()
    result = run_cli("refresh-qb", env=env, timeout=SAFETY_SECONDS * 3)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Refresh failed" in result.stderr and "did not finish answering in time" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < SAFETY_SECONDS
    assert (home / ".env").read_bytes() == before
    assert_lock_is_free(home)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 30.0), ("", 30.0), ("2.5", 2.5), ("0", 30.0), ("-1", 30.0), ("soon", 30.0), ("inf", 30.0)],
)
def test_the_budget_setting(value: str | None, expected: float) -> None:
    assert refresh_budget({} if value is None else {REFRESH_BUDGET_ENV: value}) == expected
