"""End to end through the real CLI: the local causes a business owner actually meets.

Each scenario builds real files in tmp_path, runs `sidequest doctor --offline` in a subprocess
in all three formats, and checks the cause, the exit code, the key probe statuses, the JSON
against the schema, that no secret appears anywhere and that no traceback reaches stderr.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.support.homes import CliResult, cli_env, run_cli, write_env
from tests.support.local_support import (
    CLAUDE_TOKEN,
    assert_no_secret,
    fresh_values,
    lock_held,
    rich_config,
    secrets_of,
    synced_env,
    write_claude_config,
)
from tests.support.schema_check import assert_valid_report


@dataclass
class Outputs:
    json: CliResult
    text: CliResult
    prompt: CliResult

    @property
    def doc(self) -> dict:
        return self.json.json()

    def status(self, probe_id: str) -> str:
        return next(p["status"] for p in self.doc["probes"] if p["id"] == probe_id)

    def probe(self, probe_id: str) -> dict:
        return next(p for p in self.doc["probes"] if p["id"] == probe_id)


def doctor(home: Path, config: Path, secrets: list[str], *extra: str) -> Outputs:
    """The offline doctor in all three formats, run side by side: nothing here refreshes or writes
    (and a held lock is waited out once instead of three times in a row)."""
    from concurrent.futures import ThreadPoolExecutor

    env = cli_env(home, config)
    formats = ("json", "text", "prompt")
    with ThreadPoolExecutor(max_workers=len(formats)) as pool:
        runs = {
            fmt: pool.submit(run_cli, "doctor", "--offline", "--format", fmt, *extra, env=env, timeout=30)
            for fmt in formats
        }
        results = {fmt: run.result() for fmt, run in runs.items()}
    for fmt, result in results.items():
        assert "Traceback" not in result.stderr, f"{fmt}: {result.stderr}"
        assert_no_secret(result.stdout + result.stderr, secrets)
    assert len({r.returncode for r in results.values()}) == 1, {f: r.returncode for f, r in results.items()}
    out = Outputs(**results)
    assert_valid_report(out.doc)
    assert out.doc["exit_code"] == out.json.returncode
    return out


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "Claude" / "claude_desktop_config.json"


def healthy_home(tmp_path: Path, config: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    values = fresh_values()
    write_env(home, values)
    write_claude_config(config, rich_config(synced_env(values)))
    return home, values


def test_a_healthy_setup_is_healthy(tmp_path: Path, config: Path) -> None:
    home, values = healthy_home(tmp_path, config)
    out = doctor(home, config, secrets_of(values))
    assert out.doc["diagnosis"]["cause"] == "healthy", out.text.stdout
    assert out.json.returncode == 0
    assert out.status("lock-health") == "ok" and out.status("claude-config-sync") == "ok"


# -- not_configured ---------------------------------------------------------------------------


def _no_home(home: Path) -> None:
    pass


def _no_env(home: Path) -> None:
    home.mkdir()


def _env_is_folder(home: Path) -> None:
    (home / ".env").mkdir(parents=True)


def _env_empty(home: Path) -> None:
    home.mkdir()
    (home / ".env").write_bytes(b"")


def _env_binary(home: Path) -> None:
    home.mkdir()
    (home / ".env").write_bytes(bytes(range(256)) * 64)


def _env_huge(home: Path) -> None:
    home.mkdir()
    line = b"QB_NOTE=" + b"x" * 1000 + b"\n"
    (home / ".env").write_bytes(line * (10 * 1024 * 1024 // len(line)))


@pytest.mark.parametrize(
    "setup",
    [_no_home, _no_env, _env_is_folder, _env_empty, _env_binary, _env_huge],
    ids=lambda f: f.__name__.strip("_"),
)
def test_not_configured(tmp_path: Path, config: Path, setup: Callable[[Path], None]) -> None:
    home = tmp_path / "home"
    setup(home)
    write_claude_config(config, rich_config(synced_env(fresh_values())))
    started = time.monotonic()
    out = doctor(home, config, secrets_of(fresh_values()))
    assert time.monotonic() - started < 20
    assert out.doc["diagnosis"]["cause"] == "not_configured"
    assert out.json.returncode == 1
    assert out.status("env-file") == "fail"
    assert out.status("claude-config-sync") == "skip"
    assert out.probe("claude-config-sync")["blocked_by"] == "env-file"
    assert out.status("lock-health") in ("skip", "ok")
    assert "sidequest reauth-qb" in out.text.stdout  # what to run
    assert "sidequest reauth-qb" in out.prompt.stdout


def test_crlf_and_bom_env_is_not_a_crash(tmp_path: Path, config: Path) -> None:
    home, values = healthy_home(tmp_path, config)
    text = "".join(f"{k}={v}\r\n" for k, v in values.items())
    (home / ".env").write_bytes(b"\xef\xbb\xbf" + text.encode())
    out = doctor(home, config, secrets_of(values))
    assert out.doc["diagnosis"]["cause"] == "healthy", out.text.stdout
    assert out.json.returncode == 0
    assert out.status("env-file") in ("ok", "warn")
    assert out.status("claude-config-sync") == "ok"


# -- claude_config_invalid --------------------------------------------------------------------


INVALID_CONFIGS = {
    "not_json": b'{\n  "mcpServers": {\n    "qb-distributor": {"command": "x"}\n  }\n  "globalShortcut": ""\n}\n',
    "empty": b"",
    "not_an_object": b'["mcpServers"]',
    "bom_only": b"\xef\xbb\xbf",
}


@pytest.mark.parametrize("name", sorted(INVALID_CONFIGS))
def test_claude_config_invalid(tmp_path: Path, config: Path, name: str) -> None:
    home, values = healthy_home(tmp_path, config)
    raw = INVALID_CONFIGS[name]
    write_claude_config(config, raw=raw)
    out = doctor(home, config, secrets_of(values))
    assert out.doc["diagnosis"]["cause"] == "claude_config_invalid"
    assert out.json.returncode == 1
    assert out.status("claude-config-sync") == "fail"
    assert out.status("env-file") == "ok" and out.status("lock-health") == "ok"
    if name == "not_json":
        assert "line 5, column 3" in out.probe("claude-config-sync")["summary"]
        assert "line 5, column 3" in out.text.stdout
        fixed = run_cli("doctor", "--offline", "--fix", "--yes", env=cli_env(home, config), timeout=30)
        assert "Traceback" not in fixed.stderr and fixed.returncode == 1
        assert_no_secret(fixed.stdout + fixed.stderr, secrets_of(values))
    assert config.read_bytes() == raw
    assert sorted(config.parent.iterdir()) == [config]  # no backup, no temp file: never touched


def test_an_entry_with_a_list_env_value_is_invalid(tmp_path: Path, config: Path) -> None:
    home, values = healthy_home(tmp_path, config)
    data = rich_config(synced_env(values))
    data["mcpServers"]["directus"] = {"command": "npx", "env": {"DISABLE_TOOLS": ["delete", "update"]}}
    write_claude_config(config, data)
    out = doctor(home, config, secrets_of(values))
    assert out.doc["diagnosis"]["cause"] == "claude_config_invalid"
    assert out.json.returncode == 1
    assert "mcpServers.directus.env.DISABLE_TOOLS" in out.probe("claude-config-sync")["summary"]


# -- claude_config_out_of_sync ----------------------------------------------------------------


def test_realm_differs_between_claude_and_env(tmp_path: Path, config: Path) -> None:
    home, values = healthy_home(tmp_path, config)
    write_claude_config(
        config,
        rich_config(synced_env(values) | {"QB_REALM_ID": "4620816365000000000", "QB_REFRESH_TOKEN": CLAUDE_TOKEN}),
    )
    out = doctor(home, config, secrets_of(values))
    assert out.doc["diagnosis"]["cause"] == "claude_config_out_of_sync"
    assert out.json.returncode == 1
    assert out.status("claude-config-sync") == "fail"
    assert "QB_REALM_ID" in out.probe("claude-config-sync")["summary"]
    assert "sidequest doctor --fix" in out.text.stdout


# -- lock_problem -----------------------------------------------------------------------------


def test_lock_held_by_another_process(tmp_path: Path, config: Path) -> None:
    home, values = healthy_home(tmp_path, config)
    with lock_held(home, "sidequest refresh-qb") as holder:
        started = time.monotonic()
        out = doctor(home, config, secrets_of(values))
        elapsed = time.monotonic() - started
    assert out.doc["diagnosis"]["cause"] == "lock_problem"
    assert out.json.returncode == 1
    probe = out.probe("lock-health")
    assert probe["status"] == "fail"
    assert probe["facts"]["holder"]["pid"] == holder.pid
    assert probe["facts"]["holder"]["command"] == "sidequest refresh-qb"
    assert f"pid {holder.pid}" in out.text.stdout and "sidequest refresh-qb" in out.text.stdout
    assert f"pid {holder.pid}" in out.prompt.stdout
    assert elapsed < 3 * 6  # three runs side by side, each bounded by the 2 s lock wait plus start-up
