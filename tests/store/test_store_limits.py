"""Issue 9 §6 and §5 for the store: a huge `.env` is refused before it is parsed (the parse grows with
its lines and used to outlast the doctor's budget with the lock held), and no StoreError or
LockTimeout message ever holds a secret.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from doctor.store.env_file import MAX_ENV_BYTES, EnvFileError, read_env_file
from doctor.store.errors import LockTimeout, StoreError
from doctor.store.lock_records import OWNER_NAME
from doctor.store.token_store import TokenStore
from tests.support.homes import CLIENT_SECRET, REPO, cli_env, configured_values, run_cli, write_env

TOKEN = "RTsecret-in-the-owner-record-9876"


def bare_words(size: int) -> bytes:
    words = b"".join(b"word%d\n" % n for n in range(size // 5))
    return words[:size]


def test_a_sane_env_file_fits_the_cap_and_a_megabyte_of_bare_words_does_not(tmp_path: Path) -> None:
    assert 16 * 1024 <= MAX_ENV_BYTES <= 256 * 1024
    env = tmp_path / ".env"
    env.write_bytes(bare_words(MAX_ENV_BYTES))
    assert len(read_env_file(env).values) > 1000  # parsed: bare words are keys without values
    env.write_bytes(bare_words(1_000_000))
    with pytest.raises(EnvFileError) as info:
        read_env_file(env)
    assert info.value.reason == "too_large" and "1,000,000 bytes" in str(info.value)


def test_refresh_qb_refuses_a_megabyte_env_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # Under the old 1 MB cap this parsed for seconds, twice, with the lock held.
    write_env(home, configured_values(), extra=bare_words(900_000).decode())
    nowhere = "http://127.0.0.1:9/oauth2/v1/tokens/bearer"  # never Intuit, whatever happens
    result = run_cli("refresh-qb", env=cli_env(home, SIDEQUEST_OAUTH_TOKEN_URL=nowhere))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "is refused" in result.stderr and "bytes" in result.stderr
    assert not (home / OWNER_NAME).exists()


def test_the_doctor_names_a_megabyte_env_instead_of_timing_out(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_env(home, configured_values(), extra=bare_words(900_000).decode())
    result = run_cli("doctor", "--offline", "--format", "json", "--timeout", "5", env=cli_env(home))
    report = json.loads(result.stdout)
    env_probe = next(p for p in report["probes"] if p["id"] == "env-file")
    assert env_probe["status"] == "fail" and "is refused" in env_probe["summary"], env_probe
    assert report["summary"]["counts"]["timeout"] == 0


HOLDER = """
    import json, os, sys, time
    from pathlib import Path
    from doctor.store.token_store import TokenStore
    home = Path(sys.argv[1])
    with TokenStore(home, command="holder").locked(5):
        # A holder whose record carries a secret (a careless wrapper passing argv, or a hostile one).
        record = json.loads((home / ".env.lock.owner").read_text())
        record["command"] = "connector --token " + sys.argv[2] + " --secret " + sys.argv[3]
        (home / ".env.lock.owner").write_text(json.dumps(record))
        print("held", flush=True)
        sys.stdin.read()
"""


def test_a_lock_timeout_never_repeats_a_secret_from_the_owner_record(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_env(home, configured_values(QB_REFRESH_TOKEN=TOKEN))
    env = {**cli_env(home), "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(home), TOKEN, CLIENT_SECRET],
        env=env,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout) as info:
            TokenStore(home).refresh(wait=0.2)
        message = str(info.value)
        result = run_cli("refresh-qb", env={**cli_env(home), "SIDEQUEST_LOCK_WAIT": "0.2"})
    finally:
        child.stdin.close()
        child.wait(10)
    assert "connector --token" in message and f"RT…{TOKEN[-4:]}" in message
    assert TOKEN not in message and CLIENT_SECRET not in message
    assert TOKEN not in result.stderr and CLIENT_SECRET not in result.stderr and result.returncode == 1


def test_a_store_error_never_holds_a_secret_even_in_a_path(tmp_path: Path) -> None:
    home = tmp_path / TOKEN  # the folder's name is the token: silly, but it must not leak
    home.mkdir()
    (home / ".env").write_text(f"QB_REFRESH_TOKEN={TOKEN}\n")
    store = TokenStore(home)
    with pytest.raises(StoreError) as info:
        store.refresh()
    assert info.value.reason == "not_configured" and TOKEN not in str(info.value)
