"""Tests for doctor.store.token_store: the locked .env token store the connector and sidequest share.

In-process behaviour uses a stand-in Intuit (same `refresh()` signature as IntuitClient) where
exact control over answers is needed; chain behaviour uses the real fake Intuit on 127.0.0.1;
cross-process behaviour uses real subprocesses that import doctor.store.token_store.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from doctor.intuit.errors import IntuitError
from doctor.intuit.responses import TokenResponse
from doctor.store import rotation as rotation_module
from doctor.store import saving as saving_module
from doctor.store import token_store as token_store_module
from doctor.store.env_file import leftover_temp_files, read_env_file, update_env_file
from doctor.store.keys import REFRESH_KEYS
from doctor.store.token_store import (
    LOCK_NAME,
    OWNER_NAME,
    Credentials,
    LockTimeout,
    OwnerRecord,
    StoreError,
    TokenStore,
    connector_hint,
    format_timestamp,
    get_access_token,
)
from tests.support.fake_intuit import FakeIntuit

REPO = Path(__file__).resolve().parents[2]
CLIENT_ID = "cid-sidequest-test"
CLIENT_SECRET = "CSsecretvalue-0123456789"
REALM = "9130350000000000"
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)

ENV_TEMPLATE = (
    "# SideQuest — QuickBooks connector settings\n"
    "export QB_CLIENT_ID={client_id}\n"
    "QB_CLIENT_SECRET='{client_secret}'\n"
    "\n"
    "QB_REFRESH_TOKEN={rt}   # rotates; sidequest keeps it current\n"
    "QB_REALM_ID={realm}\n"
    "QB_ENVIRONMENT=sandbox\n"
    'OTHER_TOOL_KEY="keep me  # not a comment"\n'
    "# owner's trailing note\n"
)
METADATA_KEYS = ("QB_TOKEN_REFRESHED_AT", "QB_REFRESH_TOKEN_EXPIRES_AT", "QB_REFRESH_TOKEN_HARD_EXPIRES_AT")


def env_text(rt: str) -> str:
    return ENV_TEMPLATE.format(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, rt=rt, realm=REALM)


def write_env(home: Path, rt: str) -> Path:
    env = home / ".env"
    env.write_text(env_text(rt))
    env.chmod(0o600)
    return env


class StandInIntuit:
    """Plays IntuitClient.refresh: scripted outcomes, then rotating answers; counts calls."""

    def __init__(
        self,
        outcomes: list[Exception] | None = None,
        *,
        rotate: bool = True,
        hard_expires_in: int | None = None,
        delay: float = 0.0,
    ) -> None:
        self.outcomes = list(outcomes or [])
        self.rotate = rotate
        self.hard_expires_in = hard_expires_in
        self.delay = delay
        self.calls: list[tuple[str, str, str]] = []

    def refresh(
        self, client_id: str, client_secret: str, refresh_token: str, *, deadline: float | None = None
    ) -> TokenResponse:
        self.calls.append((client_id, client_secret, refresh_token))
        if self.delay:
            time.sleep(self.delay)
        if self.outcomes:
            raise self.outcomes.pop(0)
        n = len(self.calls)
        return TokenResponse(
            access_token=f"ATstandin-access-{n:06d}",
            refresh_token=f"RTstandin-rotated-{n:06d}" if self.rotate else refresh_token,
            expires_in=3600,
            refresh_expires_in=8726400,
            hard_expires_in=self.hard_expires_in,
            intuit_tid="1-abc-tid",
            server_date=None,
        )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "qb-home"
    home.mkdir()
    return home


@pytest.fixture
def fake() -> FakeIntuit:
    fake = FakeIntuit().start()
    fake.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
    fake.add_company(REALM, "Larry's Bakery", "sandbox")
    fake.rotation = "every_call"
    yield fake
    fake.stop()


def child_env(fake: FakeIntuit | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QB_", "SIDEQUEST_"))}
    env["PYTHONPATH"] = str(REPO)
    if fake is not None:
        env.update(fake.environ())
    env.update(extra)
    return env


def start_child(script: str, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env=env,
        cwd=str(REPO),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


# ------------------------------------------------------------------ credentials


def test_env_file_wins_over_process_environment_per_key(home: Path) -> None:
    write_env(home, "RTfrom-dotenv-000111")
    environ = {
        "QB_REFRESH_TOKEN": "RTstale-claude-copy-999",
        "QB_REALM_ID": "111",
        "QB_REDIRECT_URI": "https://example.test/cb",
        "QB_TOKEN_REALM_ID": "222",
    }
    creds = TokenStore(home, environ=environ).credentials()
    assert creds.refresh_token == "RTfrom-dotenv-000111" and creds.refresh_token_source == ".env"
    assert creds.realm_id == REALM
    assert creds.client_secret == CLIENT_SECRET and creds.client_id == CLIENT_ID
    # Keys .env lacks come from the environment, key by key.
    assert creds.redirect_uri == "https://example.test/cb" and creds.token_realm_id == "222"
    assert creds.missing() == []


def test_environment_fallback_and_missing_keys(home: Path) -> None:
    creds = TokenStore(home, environ={"QB_REFRESH_TOKEN": " RTonly-in-env-7777 "}).credentials()
    assert creds.refresh_token == "RTonly-in-env-7777" and creds.refresh_token_source == "environment"
    assert creds.missing() == ["QB_CLIENT_ID", "QB_CLIENT_SECRET", "QB_REALM_ID", "QB_ENVIRONMENT"]
    assert creds.missing(REFRESH_KEYS) == ["QB_CLIENT_ID", "QB_CLIENT_SECRET"]
    assert creds.redirect_uri == "https://sidequestautomation.com/qb/callback"


def test_stored_timestamps_are_parsed_and_garbage_ignored(home: Path) -> None:
    env = write_env(home, "RTx-000000000001")
    update_env_file(env, {"QB_TOKEN_REFRESHED_AT": "2026-11-01T10:00:00Z", "QB_REFRESH_TOKEN_EXPIRES_AT": "soon-ish"})
    creds = TokenStore(home).credentials()
    assert creds.refreshed_at == datetime(2026, 11, 1, 10, tzinfo=timezone.utc)
    assert creds.expires_at is None and creds.hard_expires_at is None


def test_unreadable_env_is_a_store_error(home: Path) -> None:
    (home / ".env").write_bytes(b"QB_REFRESH_TOKEN=RTsecret-in-binary\x00\x01")
    with pytest.raises(StoreError) as info:
        TokenStore(home).credentials()
    assert info.value.reason == "env_unreadable"
    assert "RTsecret" not in str(info.value)


def test_credentials_repr_hides_secrets(home: Path) -> None:
    write_env(home, "RTsecret-repr-check-4321")
    text = repr(TokenStore(home).credentials())
    assert "RTsecret-repr-check-4321" not in text and CLIENT_SECRET not in text
    assert "RT…4321" in text


# ------------------------------------------------------------------ refresh with a stand-in


def test_refresh_writes_rotated_token_and_metadata_keeping_other_lines(home: Path) -> None:
    env = write_env(home, "RTold-token-00000001")
    intuit = StandInIntuit(hard_expires_in=157_000_000)
    store = TokenStore(home, intuit=intuit, clock=lambda: NOW)
    result = store.refresh()
    assert intuit.calls == [(CLIENT_ID, CLIENT_SECRET, "RTold-token-00000001")]
    assert result.rotated and result.refresh_token == "RTstandin-rotated-000001" and result.attempts == 1
    assert result.previous_refresh_token == "RTold-token-00000001"
    assert result.expires_at == NOW + timedelta(seconds=8726400)
    expected = env_text("RTstandin-rotated-000001") + (
        "QB_TOKEN_REFRESHED_AT=2026-11-26T12:00:00Z\n"
        f"QB_REFRESH_TOKEN_EXPIRES_AT={format_timestamp(NOW + timedelta(seconds=8726400))}\n"
        f"QB_REFRESH_TOKEN_HARD_EXPIRES_AT={format_timestamp(NOW + timedelta(seconds=157_000_000))}\n"
    )
    assert env.read_text() == expected
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert not (home / OWNER_NAME).exists()
    assert "RTstandin-rotated-000001" not in repr(result) and "ATstandin" not in repr(result)


def test_unrotated_token_line_is_left_alone(home: Path) -> None:
    env = write_env(home, "RTsame-token-0000002")
    result = TokenStore(home, intuit=StandInIntuit(rotate=False), clock=lambda: NOW).refresh()
    assert not result.rotated
    text = env.read_text()
    assert text.startswith(env_text("RTsame-token-0000002"))
    assert "QB_TOKEN_REFRESHED_AT=2026-11-26T12:00:00Z\n" in text
    assert "QB_REFRESH_TOKEN_HARD_EXPIRES_AT" not in text


def test_token_from_environment_only_moves_into_env_file(home: Path) -> None:
    (home / ".env").write_text(f"QB_CLIENT_ID={CLIENT_ID}\nQB_CLIENT_SECRET={CLIENT_SECRET}\n")
    store = TokenStore(home, intuit=StandInIntuit(rotate=False), environ={"QB_REFRESH_TOKEN": "RTenv-only-00000003"})
    store.refresh()
    assert read_env_file(home / ".env").get("QB_REFRESH_TOKEN") == "RTenv-only-00000003"


@pytest.mark.parametrize("kind, status", [("invalid_grant", 400), ("invalid_client", 401)])
def test_dead_token_or_app_is_never_retried(home: Path, kind: str, status: int) -> None:
    env = write_env(home, "RTdead-token-000004")
    before = env.read_bytes()
    intuit = StandInIntuit([IntuitError(kind, status=status, code=kind), IntuitError(kind, status=status, code=kind)])
    with pytest.raises(IntuitError) as info:
        TokenStore(home, intuit=intuit).refresh()
    assert info.value.kind == kind
    assert len(intuit.calls) == 1
    assert env.read_bytes() == before
    assert not (home / OWNER_NAME).exists()


def test_retryable_error_is_retried_exactly_once(home: Path) -> None:
    write_env(home, "RTflaky-token-00005")
    intuit = StandInIntuit([IntuitError("server_error", status=503)])
    started = time.monotonic()
    result = TokenStore(home, intuit=intuit).refresh()
    assert len(intuit.calls) == 2 and result.attempts == 2
    assert time.monotonic() - started >= rotation_module.RETRY_BACKOFF_SECONDS * 0.9


def test_retryable_error_twice_gives_up_after_two_calls(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rotation_module, "RETRY_BACKOFF_SECONDS", 0.01)
    env = write_env(home, "RTflaky-token-00006")
    before = env.read_bytes()
    intuit = StandInIntuit([IntuitError("network"), IntuitError("timeout"), IntuitError("network")])
    with pytest.raises(IntuitError) as info:
        TokenStore(home, intuit=intuit).refresh()
    assert info.value.kind == "timeout" and len(intuit.calls) == 2
    assert env.read_bytes() == before


def test_non_retryable_error_is_not_retried(home: Path) -> None:
    write_env(home, "RTbad-answer-000007")
    intuit = StandInIntuit([IntuitError("bad_response", status=200)])
    with pytest.raises(IntuitError):
        TokenStore(home, intuit=intuit).refresh()
    assert len(intuit.calls) == 1


def test_not_configured_names_missing_keys_and_releases_the_lock(home: Path) -> None:
    (home / ".env").write_text("QB_REALM_ID=1\n")
    store = TokenStore(home, intuit=StandInIntuit())
    with pytest.raises(StoreError) as info:
        store.refresh()
    assert info.value.reason == "not_configured"
    assert "QB_CLIENT_ID" in str(info.value) and "QB_REFRESH_TOKEN" in str(info.value)
    with store.locked(0):
        pass


def test_a_failed_save_after_rotation_keeps_the_token_and_the_next_refresh_finishes_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(home, "RTbefore-write-0008")
    intuit = StandInIntuit()
    store = TokenStore(home, intuit=intuit)
    real_update = saving_module.update_env_file

    def disk_full(path: Path, updates: object, **kwargs: object) -> None:
        # The home passed the write check, then the disk filled before the save (the subprocess
        # tests below produce real failures; this one pins down the in-process contract).
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(saving_module, "update_env_file", disk_full)
    with pytest.raises(StoreError) as info:
        store.refresh()
    message = str(info.value)
    assert info.value.reason == "write_failed" and "No space left" in message
    assert info.value.kept_in == home / ".env.recovery" and "sidequest refresh-qb" in message
    assert "RTstandin" not in message and "\n" not in message
    assert ("refresh_token", "RTstandin-rotated-000001") in store.known_secrets()
    assert stat.S_IMODE((home / ".env.recovery").stat().st_mode) == 0o600
    assert read_env_file(home / ".env").get("QB_REFRESH_TOKEN") == "RTbefore-write-0008"
    assert not (home / OWNER_NAME).exists()
    # The next run (a fresh process would do the same) saves the kept token under the lock and
    # presents it, not the dead one still in .env.
    monkeypatch.setattr(saving_module, "update_env_file", real_update)
    result = TokenStore(home, intuit=intuit).refresh()
    assert intuit.calls[1][2] == "RTstandin-rotated-000001"
    assert result.previous_refresh_token == "RTstandin-rotated-000001"
    assert read_env_file(home / ".env").get("QB_REFRESH_TOKEN") == "RTstandin-rotated-000002"
    assert not (home / ".env.recovery").exists()


def test_access_token_is_cached_until_five_minutes_before_expiry(home: Path) -> None:
    write_env(home, "RTcache-token-00009")
    now = [NOW]
    intuit = StandInIntuit()
    store = TokenStore(home, intuit=intuit, clock=lambda: now[0])
    first = store.access_token()
    now[0] = NOW + timedelta(minutes=54)
    assert store.access_token() == first and len(intuit.calls) == 1
    now[0] = NOW + timedelta(minutes=55, seconds=1)
    assert store.access_token() != first and len(intuit.calls) == 2
    kinds = {kind for kind, _ in store.known_secrets()}
    assert kinds == {"refresh_token", "access_token", "client_secret"}
    values = [value for _, value in store.known_secrets()]
    assert "RTcache-token-00009" in values and first in values


def test_threads_share_one_refresh(home: Path) -> None:
    write_env(home, "RTthreads-token-0010")
    intuit = StandInIntuit(delay=0.2)
    store = TokenStore(home, intuit=intuit)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(store.access_token())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(intuit.calls) == 1 and len(set(tokens)) == 1 and len(tokens) == 4


def test_save_consent_writes_the_new_chain(home: Path) -> None:
    env = write_env(home, "RTold-chain-0000011")
    update_env_file(env, {"QB_REFRESH_TOKEN_HARD_EXPIRES_AT": "2027-01-01T00:00:00Z"})
    token = TokenResponse("ATconsent-access-0012", "RTconsent-new-000012", 3600, 8726400, None, "tid", None)
    store = TokenStore(home, clock=lambda: NOW)
    store.save_consent(token, realm_id="4620816365", environment="production")
    env_file = read_env_file(env)
    assert env_file.get("QB_REFRESH_TOKEN") == "RTconsent-new-000012"
    assert env_file.get("QB_REALM_ID") == env_file.get("QB_TOKEN_REALM_ID") == "4620816365"
    assert env_file.get("QB_ENVIRONMENT") == env_file.get("QB_TOKEN_ENVIRONMENT") == "production"
    assert env_file.get("QB_TOKEN_REFRESHED_AT") == "2026-11-26T12:00:00Z"
    assert env_file.get("QB_REFRESH_TOKEN_HARD_EXPIRES_AT") is None
    assert env.read_text().startswith("# SideQuest — QuickBooks connector settings\nexport QB_CLIENT_ID=")
    assert store.access_token() == "ATconsent-access-0012"


def test_save_consent_into_a_fresh_home(tmp_path: Path) -> None:
    home = tmp_path / "new-home"
    token = TokenResponse("ATfirst-access-00013", "RTfirst-chain-000013", 3600, 8726400, 157680000, None, None)
    TokenStore(home).save_consent(token, realm_id="1", environment="sandbox")
    assert stat.S_IMODE((home / ".env").stat().st_mode) == 0o600
    assert read_env_file(home / ".env").get("QB_REFRESH_TOKEN") == "RTfirst-chain-000013"


# ------------------------------------------------------------------ against the fake Intuit


def test_hundred_refreshes_against_the_fake_keep_every_other_line(home: Path, fake: FakeIntuit) -> None:
    first = fake.mint_chain(CLIENT_ID, REALM)
    env = write_env(home, first)
    store = TokenStore(home, environ=fake.environ(), clock=lambda: NOW)
    try:
        for _ in range(100):
            store.refresh()
    finally:
        store.close()
    assert fake.refresh_count == 100
    final = fake.current_refresh_token(CLIENT_ID, REALM)
    env_file = read_env_file(env)
    assert env_file.get("QB_REFRESH_TOKEN") == final != first
    metadata = "".join(f"{key}={env_file.get(key)}\n" for key in METADATA_KEYS)
    assert env.read_text() == env_text(final) + metadata
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert leftover_temp_files(home) == []


def test_stale_environment_token_never_wins(home: Path, fake: FakeIntuit) -> None:
    stale = fake.mint_chain(CLIENT_ID, REALM)
    environ = {**fake.environ(), "QB_REFRESH_TOKEN": stale}
    store = TokenStore(home, environ=environ)
    write_env(home, stale)
    store.refresh()  # rotates: `stale` is now superseded at Intuit
    current = fake.current_refresh_token(CLIENT_ID, REALM)
    assert read_env_file(home / ".env").get("QB_REFRESH_TOKEN") == current != stale
    fresh = TokenStore(home, environ=environ)
    assert fresh.credentials().refresh_token == current
    fresh.refresh()
    assert fake.refresh_count == 2
    store.close()
    fresh.close()


def test_invalid_grant_from_the_fake_is_not_retried(home: Path, fake: FakeIntuit) -> None:
    fake.mint_chain(CLIENT_ID, REALM)
    env = write_env(home, "RTnever-issued-by-intuit-0014")
    before = env.read_bytes()
    store = TokenStore(home, environ=fake.environ())
    with pytest.raises(IntuitError) as info:
        store.refresh()
    store.close()
    assert info.value.kind == "invalid_grant"
    assert len([r for r in fake.requests if r.path.endswith("/tokens/bearer")]) == 1
    assert env.read_bytes() == before
    assert "RTnever-issued-by-intuit-0014" not in str(info.value)


def test_503_from_the_fake_is_retried_once(home: Path, fake: FakeIntuit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rotation_module, "RETRY_BACKOFF_SECONDS", 0.05)
    fake.mint_chain(CLIENT_ID, REALM)
    write_env(home, fake.current_refresh_token(CLIENT_ID, REALM))
    fake.fail_mode = "503"
    store = TokenStore(home, environ=fake.environ())
    with pytest.raises(IntuitError) as info:
        store.refresh()
    store.close()
    assert info.value.retryable
    assert len([r for r in fake.requests if r.path.endswith("/tokens/bearer")]) == 2


# ------------------------------------------------------------------ across processes

HOLDER = """
    import sys
    from pathlib import Path
    from doctor.store.token_store import TokenStore
    store = TokenStore(Path(sys.argv[1]), command="holder-for-test")
    with store.locked(10):
        print("held", flush=True)
        sys.stdin.read()
"""


def test_lock_held_elsewhere_times_out_naming_the_holder(home: Path) -> None:
    write_env(home, "RTheld-token-000015")
    child = start_child(HOLDER, child_env(), str(home))
    try:
        assert child.stdout.readline().strip() == "held"
        store = TokenStore(home, intuit=StandInIntuit())
        started = time.monotonic()
        with pytest.raises(LockTimeout) as info:
            store.refresh(wait=0.5)
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 3
        assert info.value.holder is not None and info.value.holder.pid == child.pid
        assert info.value.holder.alive() is True
        assert f"pid {child.pid}" in str(info.value) and "holder-for-test" in str(info.value)
        assert "RTheld" not in str(info.value)
        assert store.owner() == info.value.holder
    finally:
        child.stdin.close()
        child.wait(10)
    # Released: the owner record is gone and the lock is free at once.
    assert not (home / OWNER_NAME).exists()
    with TokenStore(home).locked(0):
        pass


def test_sigkilled_holder_leaves_a_dead_owner_record_and_a_free_lock(home: Path) -> None:
    child = start_child(HOLDER, child_env(), str(home))
    assert child.stdout.readline().strip() == "held"
    child.kill()
    child.wait(10)
    store = TokenStore(home, clock=lambda: NOW)
    record = store.owner()
    assert record is not None and record.pid == child.pid and record.alive() is False
    # The kernel lock died with the process: no waiting for a stale lock.
    started = time.monotonic()
    with store.locked(2):
        assert store.owner().pid == os.getpid()
    assert time.monotonic() - started < 1
    assert store.owner() is None


def test_owner_record_semantics(home: Path) -> None:
    import socket

    record = OwnerRecord(4242, "mac-mini", NOW - timedelta(seconds=12), "sidequest refresh-qb")
    assert record.describe(NOW) == "pid 4242 on mac-mini (sidequest refresh-qb), holding for 12 s"
    assert record.alive() is None  # another host: unknown
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = OwnerRecord(int(done.stdout), socket.gethostname(), NOW, "x")
    assert dead.alive() is False
    assert OwnerRecord(os.getpid(), socket.gethostname(), NOW, "x").alive() is True
    assert OwnerRecord.from_json(record.to_json()) == record
    (home / OWNER_NAME).write_text("{not json")
    assert TokenStore(home).owner() is None
    (home / OWNER_NAME).write_text('{"pid": "12", "host": "h", "started_at": "x", "command": "c"}')
    assert TokenStore(home).owner() is None


REFRESHER = """
    import os, sys
    from pathlib import Path
    from doctor.store.token_store import TokenStore
    store = TokenStore(Path(sys.argv[1]), environ=os.environ, command="refresher-" + sys.argv[2])
    result = store.refresh(wait=20)
    print("rotated" if result.rotated else "same", result.previous_refresh_token[-6:], flush=True)
"""


def test_two_processes_contending_the_second_uses_the_first_ones_token(home: Path, fake: FakeIntuit) -> None:
    first_rt = fake.mint_chain(CLIENT_ID, REALM)
    write_env(home, first_rt)
    fake.fail_mode = "slow"
    fake.slow_seconds = 0.6
    env = child_env(fake)
    a = start_child(REFRESHER, env, str(home), "a")
    wait_for(lambda: (home / OWNER_NAME).exists())
    b = start_child(REFRESHER, env, str(home), "b")
    out_a, err_a = a.communicate(timeout=30)
    out_b, err_b = b.communicate(timeout=30)
    assert a.returncode == 0, err_a
    assert b.returncode == 0, err_b
    # With rotation on every call, b succeeds only if it re-read .env under the lock and
    # presented a's new token (the one a was handed), not the one on disk when b started.
    assert fake.refresh_count == 2
    assert out_a.split() == ["rotated", first_rt[-6:]]
    assert out_b.split()[1] != first_rt[-6:]
    final = fake.current_refresh_token(CLIENT_ID, REALM)
    assert read_env_file(home / ".env").get("QB_REFRESH_TOKEN") == final
    for secret in (first_rt, final, CLIENT_SECRET):
        assert secret not in out_a + err_a + out_b + err_b


def test_sigkill_during_a_slow_refresh_keeps_the_old_token(home: Path, fake: FakeIntuit) -> None:
    old = fake.mint_chain(CLIENT_ID, REALM)
    env_path = write_env(home, old)
    before = env_path.read_bytes()
    fake.fail_mode = "slow"
    fake.slow_seconds = 3
    child = start_child(REFRESHER, child_env(fake), str(home), "killed")
    wait_for(lambda: any(r.path.endswith("/tokens/bearer") for r in fake.requests) or (home / OWNER_NAME).exists())
    time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    assert env_path.read_bytes() == before
    assert read_env_file(env_path).get("QB_REFRESH_TOKEN") == old
    assert leftover_temp_files(home) == []
    # The next refresh is not blocked by the dead process.
    fake.fail_mode = None
    store = TokenStore(home, environ=fake.environ())
    store.refresh(wait=2)
    store.close()


ROTATOR = """
    import sys
    from pathlib import Path
    from doctor.store.env_file import update_env_file
    from doctor.store.token_store import TokenStore
    store = TokenStore(Path(sys.argv[1]), command="rotator")
    print("go", flush=True)
    n = 0
    while True:
        n += 1
        with store.locked(5):
            update_env_file(store.env_path, {"QB_REFRESH_TOKEN": f"RTrotator-{n:08d}",
                                             "QB_TOKEN_REFRESHED_AT": f"2026-01-01T00:00:{n % 60:02d}Z"})
"""


def test_sigkill_at_random_moments_of_writing_never_corrupts_env(home: Path) -> None:
    import random

    env_path = write_env(home, "RTrotator-00000000")
    rng = random.Random(7)
    for _ in range(6):
        child = start_child(ROTATOR, child_env(), str(home))
        assert child.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0.05, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        env_file = read_env_file(env_path)
        token = env_file.get("QB_REFRESH_TOKEN")
        assert token is not None and token.startswith("RTrotator-")
        assert env_path.read_text().startswith(env_text(token))
        assert env_file.problems == ()
        assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
        for leftover in leftover_temp_files(home):
            leftover.unlink()  # a kill between mkstemp and replace leaves one; .env is intact


CONNECTOR = """
    import os
    from doctor.store.token_store import get_access_token
    token = get_access_token()
    again = get_access_token()
    print("ok" if token and token == again else "mismatch", len(token), flush=True)
"""


def test_get_access_token_from_a_fresh_process_pointed_at_the_fake(home: Path, fake: FakeIntuit) -> None:
    first = fake.mint_chain(CLIENT_ID, REALM)
    write_env(home, first)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CONNECTOR)],
        env=child_env(fake, SIDEQUEST_HOME=str(home), QB_REFRESH_TOKEN="RTstale-in-claude-config-99"),
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "ok"
    assert fake.refresh_count == 1  # the second call used the cached access token
    assert read_env_file(home / ".env").get("QB_REFRESH_TOKEN") == fake.current_refresh_token(CLIENT_ID, REALM)


def test_get_access_token_in_process_defaults_to_sidequest_home(
    home: Path, fake: FakeIntuit, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(home, fake.mint_chain(CLIENT_ID, REALM))
    monkeypatch.setenv("SIDEQUEST_HOME", str(home))
    for key, value in fake.environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(token_store_module, "_stores", {})
    assert get_access_token() == get_access_token()
    assert fake.refresh_count == 1
    token_store_module._stores[home].close()


# ------------------------------------------------------------------ hints and secrecy


def test_connector_hint_points_at_the_diagnose_prompt_without_secrets() -> None:
    secret_error = IntuitError("invalid_grant", "refresh token RTsecret-in-message-1234 refused")
    for error in (
        None,
        secret_error,
        IntuitError("network"),
        LockTimeout(None, 2.0),
        StoreError("not_configured", "x"),
        ValueError("RTsecret-in-message-1234"),
    ):
        hint = connector_hint(error)
        assert "`sidequest doctor --format prompt`" in hint and "paste the result into Claude" in hint
        assert "RTsecret" not in hint and "\n" not in hint
    assert connector_hint(secret_error).startswith("QuickBooks sign-in has expired")


def test_lock_timeout_message_without_owner_record() -> None:
    error = LockTimeout(None, 1.25)
    assert "holder unknown" in str(error) and "1.2 s" in str(error)


def test_lock_and_owner_files_live_beside_env(home: Path) -> None:
    store = TokenStore(home)
    assert store.lock_path == home / LOCK_NAME and store.owner_path == home / OWNER_NAME
    with store.locked(1):
        assert store.lock_path.exists() and store.owner().command == "sidequest"
    assert isinstance(store.credentials(), Credentials)


# ------------------------------------------------------------------ lock hold time and fairness


def lock_is_taken(home: Path) -> bool:
    import fcntl

    descriptor = os.open(home / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # closing lets go of a lock this probe took
    return False


def test_the_http_client_is_built_before_the_lock_is_taken(home: Path, fake: FakeIntuit) -> None:
    """Importing httpx and loading CA certificates (~240 ms) must not happen while others wait for the lock."""
    from doctor.intuit.client import IntuitClient

    built_under_lock: list[bool] = []

    class Recording(IntuitClient):
        def _client(self):  # noqa: ANN202 - IntuitClient's own private builder
            if self._http is None:
                built_under_lock.append(lock_is_taken(home))
            return super()._client()

    write_env(home, fake.mint_chain(CLIENT_ID, REALM))
    client = Recording(environ=fake.environ())
    try:
        TokenStore(home, intuit=client).refresh()
    finally:
        client.close()
    assert built_under_lock == [False]
    assert read_env_file(home / ".env").get("QB_REFRESH_TOKEN") == fake.current_refresh_token(CLIENT_ID, REALM)


WAITER = """
    import sys, time
    from pathlib import Path
    from doctor.store.token_store import TokenStore
    store = TokenStore(Path(sys.argv[1]), command="waiter")
    print("ready", flush=True)
    with store.locked(30):
        print("got", flush=True)
"""


def test_a_waiter_gets_the_lock_before_a_holder_that_takes_it_straight_back(home: Path) -> None:
    """flock has no queue: the gate keeps a holder that lets go and re-takes at once from starving a waiter."""
    store = TokenStore(home, command="greedy")
    with store.locked(1):
        waiter = start_child(WAITER, child_env(), str(home))
        assert waiter.stdout.readline().strip() == "ready"
        wait_for(lambda: bool(os.listdir(home)) and gate_is_taken(home))
    # Let go and try to take it straight back, as a busy connector would: the waiter goes first.
    try:
        with store.locked(30):
            got_first = waiter.poll() is not None or select_ready(waiter)
    finally:
        out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert got_first and out.split() == ["got"]


def gate_is_taken(home: Path) -> bool:
    import fcntl

    from doctor.store.env_lock import GATE_NAME

    try:
        descriptor = os.open(home / GATE_NAME, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def select_ready(process: subprocess.Popen) -> bool:
    """Has the child printed its next line (it had the lock before us)?"""
    import select

    return bool(select.select([process.stdout], [], [], 0)[0])
