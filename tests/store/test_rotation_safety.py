"""A rotated refresh token is never dropped (issue 9 §2): real processes, real files, a fake Intuit that
rotates on every call and kills the old token at once, so a token lost here is a chain lost for good.

Read-only folders are produced for real: the suite runs as root (which ignores file modes), so the
CLI runs as user `nobody` in those tests, through the system interpreter with this tree and the
venv's packages on PYTHONPATH (the venv's own interpreter sits under /root, which nobody cannot enter).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from doctor.store.env_file import read_env_file
from tests.support.fake_intuit import FakeIntuit
from tests.support.homes import CLIENT_ID, CLIENT_SECRET, REALM_ID, REPO, CliResult, cli_env, configured_values, run_cli

NOBODY = 65534
SYSTEM_PYTHON = Path("/usr/bin/python3")
can_be_nobody = pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEM_PYTHON.exists(), reason="needs root to run a child as nobody"
)


class TamperingIntuit(FakeIntuit):
    """The fake Intuit, whose successful token answers a test may rewrite after the rotation happened."""

    tamper: Callable[[dict], None] | None = None

    def _token_endpoint(self, authorization, form, want_hard):  # noqa: ANN001, ANN202 - FakeIntuit's own
        status, body = super()._token_endpoint(authorization, form, want_hard)
        if status == 200 and self.tamper is not None:
            answer = json.loads(body)
            self.tamper(answer)
            body = json.dumps(answer).encode().replace(b'"__5000_DIGITS__"', b"9" * 5000)
        return status, body


@pytest.fixture
def intuit() -> Iterator[TamperingIntuit]:
    fake = TamperingIntuit().start()
    fake.rotation = "every_call"
    fake.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
    fake.add_company(REALM_ID, "Larry's Bakery", "sandbox")
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temp folder user nobody can reach (pytest's tmp_path sits in a root-only folder)."""
    folder = Path(tempfile.mkdtemp(prefix="sidequest-rotation-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def make_home(parent: Path, intuit: FakeIntuit) -> tuple[Path, str]:
    home = parent / "home"
    home.mkdir()
    token = intuit.mint_chain(CLIENT_ID, REALM_ID)
    values = configured_values(QB_REFRESH_TOKEN=token)
    (home / ".env").write_text("# mine\n" + "".join(f"{k}={v}\n" for k, v in values.items()))
    (home / ".env").chmod(0o600)
    return home, token


def live_token(intuit: FakeIntuit) -> str:
    return intuit.current_refresh_token(CLIENT_ID, REALM_ID) or ""


def env_token(home: Path) -> str | None:
    return read_env_file(home / ".env").get("QB_REFRESH_TOKEN")


def assert_told_clearly(result: CliResult) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr.lower()


def run_as_nobody(env: dict[str, str], *args: str) -> CliResult:
    paths = [str(REPO), sysconfig.get_paths()["purelib"]]
    env = {**env, "PYTHONPATH": os.pathsep.join(paths), "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp"}

    def become_nobody() -> None:
        os.setgid(NOBODY)
        os.setgroups([])
        os.setuid(NOBODY)

    proc = subprocess.run(
        [str(SYSTEM_PYTHON), "-m", "doctor.commands.cli", *args],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=become_nobody,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


# ------------------------------------------------------------------ what Intuit sends


@pytest.mark.parametrize("field", ["expires_in", "x_refresh_token_expires_in", "x_refresh_token_hard_expires_in"])
def test_an_absurd_duration_is_ignored_and_the_new_token_saved(intuit: TamperingIntuit, tmp_path: Path, field) -> None:
    home, _ = make_home(tmp_path, intuit)
    intuit.tamper = lambda answer: answer.__setitem__(field, 10**12)
    result = run_cli("refresh-qb", env=cli_env(home, **intuit.environ()))
    assert result.returncode == 0, result.stderr
    assert env_token(home) == live_token(intuit)
    stored = read_env_file(home / ".env")
    if field == "x_refresh_token_expires_in":
        assert stored.get("QB_REFRESH_TOKEN_EXPIRES_AT") is None
    if field == "x_refresh_token_hard_expires_in":
        assert stored.get("QB_REFRESH_TOKEN_HARD_EXPIRES_AT") is None
    intuit.tamper = None
    again = run_cli("refresh-qb", env=cli_env(home, **intuit.environ()))
    assert again.returncode == 0, again.stderr
    assert env_token(home) == live_token(intuit)


@pytest.mark.parametrize("field", ["expires_in", "x_refresh_token_expires_in", "x_refresh_token_hard_expires_in"])
@pytest.mark.parametrize("form", ["json_number", "string"])
def test_a_duration_of_5000_digits_is_ignored_and_the_new_token_saved(
    intuit: TamperingIntuit, tmp_path: Path, field: str, form: str
) -> None:
    # Python refuses int() of more than 4300 digits (a ValueError, in json.loads too): it must not
    # cost the rotated token.
    home, _ = make_home(tmp_path, intuit)
    value = "__5000_DIGITS__" if form == "json_number" else "9" * 5000
    intuit.tamper = lambda answer: answer.__setitem__(field, value)
    result = run_cli("refresh-qb", env=cli_env(home, **intuit.environ()))
    assert result.returncode == 0, result.stderr
    assert env_token(home) == live_token(intuit)
    intuit.tamper = None
    again = run_cli("refresh-qb", env=cli_env(home, **intuit.environ()))
    assert again.returncode == 0, again.stderr


def test_a_token_env_cannot_hold_is_named_and_the_user_told_to_reconnect(
    intuit: TamperingIntuit, tmp_path: Path
) -> None:
    home, old = make_home(tmp_path, intuit)
    intuit.tamper = lambda answer: answer.__setitem__("refresh_token", answer["refresh_token"] + "\x00tail")
    result = run_cli("refresh-qb", env=cli_env(home, **intuit.environ()))
    assert_told_clearly(result)
    assert "cannot hold" in result.stderr and "NUL" in result.stderr and "sidequest reauth-qb" in result.stderr
    assert env_token(home) == old and live_token(intuit) not in result.stderr
    assert not (home / ".env.recovery").exists()


# ------------------------------------------------------------------ the home cannot be written


def test_a_file_size_limit_is_found_before_intuit_is_called(intuit: TamperingIntuit, tmp_path: Path) -> None:
    home, old = make_home(tmp_path, intuit)
    size = (home / ".env").stat().st_size

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 1024, size + 1024))

    env = cli_env(home, **intuit.environ(), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "doctor.commands.cli", "refresh-qb"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_file_size,
    )
    result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    assert_told_clearly(result)
    assert "File too large" in result.stderr and "nothing was sent to Intuit" in result.stderr
    assert intuit.refresh_count == 0 and env_token(home) == old == live_token(intuit)


@can_be_nobody
def test_a_read_only_home_is_found_before_intuit_is_called(intuit: TamperingIntuit, shared_tmp: Path) -> None:
    home, old = make_home(shared_tmp, intuit)
    for name in (".env.lock", ".env.lock.gate"):  # the lock itself still works, as in a home made read-only
        (home / name).touch()
        os.chown(home / name, NOBODY, NOBODY)
    os.chown(home / ".env", NOBODY, NOBODY)
    home.chmod(0o755)  # owned by root: nobody cannot create files in it
    result = run_as_nobody(cli_env(home, **intuit.environ()), "refresh-qb")
    assert_told_clearly(result)
    assert "Permission denied" in result.stderr and "nothing was sent to Intuit" in result.stderr
    assert intuit.refresh_count == 0 and env_token(home) == old == live_token(intuit)


@can_be_nobody
def test_a_save_that_fails_after_rotation_keeps_the_token_and_the_next_run_finishes(
    intuit: TamperingIntuit, shared_tmp: Path
) -> None:
    """A sticky world-writable home: nobody may create files there but not replace root's `.env`.

    So the write check passes (a new file) and the save itself fails (the rename over `.env`), after
    Intuit has rotated: the only live token must survive in the recovery file.
    """
    home, old = make_home(shared_tmp, intuit)
    (home / ".env").chmod(0o644)
    home.chmod(0o1777)
    result = run_as_nobody(cli_env(home, **intuit.environ()), "refresh-qb")
    assert_told_clearly(result)
    kept = home / ".env.recovery"
    assert f"it is kept in {kept}" in result.stderr and "sidequest refresh-qb" in result.stderr
    assert "Operation not permitted" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert intuit.refresh_count == 1 and env_token(home) == old != live_token(intuit)
    assert live_token(intuit) not in result.stderr + result.stdout
    assert kept.stat().st_uid == NOBODY and stat.S_IMODE(kept.stat().st_mode) == 0o600
    # The next run (here the owner, root) finishes the save under the lock, then refreshes from it.
    done = run_cli("refresh-qb", env=cli_env(home, **intuit.environ()))
    assert done.returncode == 0, done.stderr
    assert intuit.refresh_count == 2 and env_token(home) == live_token(intuit)
    assert not kept.exists()


CONNECTOR = """
from doctor.token_store import get_access_token
print("ok" if get_access_token() else "empty")
"""


def test_the_connector_picks_up_a_kept_token(intuit: TamperingIntuit, tmp_path: Path) -> None:
    from doctor.store import recovery

    home, old = make_home(tmp_path, intuit)
    # What a failed save leaves: Intuit rotated (the old token is dead), the new one is kept aside.
    store_env = cli_env(home, **intuit.environ())
    from doctor.intuit.client import IntuitClient

    with IntuitClient(environ=intuit.environ()) as client:
        new = client.refresh(CLIENT_ID, CLIENT_SECRET, old).refresh_token
    recovery.keep(home, {"QB_REFRESH_TOKEN": new, "QB_TOKEN_REFRESHED_AT": "2026-11-26T12:00:00Z"}, old)
    done = subprocess.run(
        [sys.executable, "-c", CONNECTOR], env=store_env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert env_token(home) == live_token(intuit) and not (home / ".env.recovery").exists()


def test_a_kept_token_of_an_older_chain_is_never_written_over_a_newer_one(
    intuit: TamperingIntuit, tmp_path: Path
) -> None:
    from doctor.store import recovery

    home, current = make_home(tmp_path, intuit)
    recovery.keep(home, {"QB_REFRESH_TOKEN": "RTfrom-an-older-chain-0001"}, "RTthe-one-it-replaced-0000")
    result = run_cli("refresh-qb", env=cli_env(home, **intuit.environ()))
    assert result.returncode == 0, result.stderr
    assert env_token(home) == live_token(intuit) != "RTfrom-an-older-chain-0001"


def test_leftover_owner_temp_files_are_removed(intuit: TamperingIntuit, tmp_path: Path) -> None:
    home, _ = make_home(tmp_path, intuit)
    leftover = home / ".env.lock.owner.tmp-k1lled"
    leftover.write_text('{"pid": 1')
    result = run_cli("refresh-qb", env=cli_env(home, **intuit.environ()))
    assert result.returncode == 0, result.stderr
    assert not leftover.exists()
    assert [name for name in os.listdir(home) if ".tmp-" in name] == []
