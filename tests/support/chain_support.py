"""Shared set-up for the token-chain tests: a fake Intuit world, `.env` files with or without
sidequest's metadata, and the no-secret assertion every output must pass.

Why a module: the in-process probe tests and the CLI scenarios build the same worlds (an app,
a company, a chain of a given age) and must check the same secrets; one definition keeps the
two suites from drifting apart.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

from doctor.store.timestamps import format_timestamp
from tests.support.fake_intuit import FakeIntuit
from tests.support.homes import CLIENT_ID, CLIENT_SECRET, REALM_ID, cli_env, configured_values, run_cli, write_env
from tests.support.schema_check import assert_valid_report

OTHER_REALM_ID = "4620816365256327"
COMPANY_NAME = "Larry's Bakery"
# Lines that belong to the owner: a refresh must leave them byte-for-byte as they were.
OWNER_LINES = "# my notes: QuickBooks for the shop\nexport SHOP_NAME='Corner Store'\nUNRELATED_KEY=keep me\n"
ENV_KEYS = ("QB_CLIENT_ID", "QB_CLIENT_SECRET", "QB_REFRESH_TOKEN", "QB_REALM_ID", "QB_ENVIRONMENT")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    return format_timestamp(moment)


def sandbox_world(fake: FakeIntuit, **chain: datetime) -> str:
    """Development keys, a sandbox company and a consented chain; returns the chain's refresh token."""
    fake.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
    fake.add_company(REALM_ID, COMPANY_NAME, "sandbox")
    fake.add_company(OTHER_REALM_ID, "Other Company", "sandbox")
    return fake.mint_chain(CLIENT_ID, REALM_ID, **chain)


def metadata(
    *,
    refreshed_at: datetime,
    expires_at: datetime | None = None,
    hard_expires_at: datetime | None = None,
    environment: str = "sandbox",
    realm_id: str = REALM_ID,
) -> dict[str, str]:
    """The keys sidequest writes (DESIGN.md §6) for a chain last refreshed at `refreshed_at`."""
    values = {
        "QB_TOKEN_REFRESHED_AT": stamp(refreshed_at),
        "QB_REFRESH_TOKEN_EXPIRES_AT": stamp(expires_at or refreshed_at + timedelta(days=101)),
        "QB_TOKEN_ENVIRONMENT": environment,
        "QB_TOKEN_REALM_ID": realm_id,
    }
    if hard_expires_at is not None:
        values["QB_REFRESH_TOKEN_HARD_EXPIRES_AT"] = stamp(hard_expires_at)
    return values


def write_chain_env(home: Path, refresh_token: str, *, modified: datetime | None = None, **values: str) -> Path:
    """A `.env` for the chain plus the owner's own lines; `modified` back-dates the file."""
    path = write_env(home, configured_values(QB_REFRESH_TOKEN=refresh_token, **values), extra=OWNER_LINES)
    if modified is not None:
        os.utime(path, (modified.timestamp(), modified.timestamp()))
    return path


def owner_lines(path: Path) -> list[str]:
    """The lines of `.env` that are not sidequest's, in order."""
    ours = ("QB_",)
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith(ours)]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def issued_secrets(fake: FakeIntuit, *extra: str) -> list[str]:
    """Every secret in play: the app secret, every token the fake ever issued, and `extra`.

    Reads the fake's token tables directly: the fake has no public list of issued tokens, and
    a test that misses one could pass while leaking it.
    """
    with fake._lock:
        tokens = list(fake._refresh_tokens) + list(fake._access_tokens)
    return [s for s in [CLIENT_SECRET, *tokens, *extra] if s]


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:3]}…) appears in the output"


def doctor(home: Path, fake: FakeIntuit, *args: str, fmt: str = "json", timeout: float = 60, **env: str):
    """The real CLI (`sidequest doctor --format fmt`) against the fake Intuit."""
    environ = cli_env(home, **{**fake.environ(), **env})
    return run_cli("doctor", "--format", fmt, *args, env=environ, timeout=timeout)


def doctor_all_formats(home: Path, fake: FakeIntuit, *args: str, secrets: tuple[str, ...] = (), **env: str):
    """Run json, text and prompt; validate the JSON, check every output for secrets.

    Returns (json document, text output, prompt output). Each run is a live run unless `args`
    says otherwise: the scenarios are built so that repeating them reproduces the same cause.
    """
    outputs = {}
    for fmt in ("json", "text", "prompt"):
        result = doctor(home, fake, *args, fmt=fmt, **env)
        assert result.returncode in (0, 1), f"{fmt}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        outputs[fmt] = result
    doc = outputs["json"].json()
    assert_valid_report(doc)
    everything = issued_secrets(fake, *secrets)
    for fmt, result in outputs.items():
        assert_no_secret(result.stdout + result.stderr, everything)
        assert result.returncode == doc["exit_code"], fmt
    return doc, outputs["text"].stdout, outputs["prompt"].stdout


def statuses(doc: dict) -> dict[str, str]:
    return {probe["id"]: probe["status"] for probe in doc["probes"]}


def probe(doc: dict, probe_id: str) -> dict:
    return next(p for p in doc["probes"] if p["id"] == probe_id)
