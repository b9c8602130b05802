"""A connector home as the tests lay it out (the app keys, `.env`), and the real CLI run against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
SCHEMA = REPO.parent / "shared" / "report.schema.json"

CLIENT_ID = "ABk1sandboxClientId0000000000000000000000000000"
CLIENT_SECRET = "sEcReT0123456789abcdefghijABCDEFGHIJ0123"
REALM_ID = "9130355377371234"


# CI sets this (.ci/run): ../shared is there, so a corpus test that would skip fails instead.
REQUIRE_CORPUS_ENV = "SIDEQUEST_REQUIRE_CORPUS"


def corpus_required() -> bool:
    return os.environ.get(REQUIRE_CORPUS_ENV, "") not in ("", "0")


def corpus_missing(reason: str) -> None:
    """Skip a test whose corpus sample is absent, or fail it when the corpus is required."""
    if corpus_required():
        pytest.fail(f"{reason}, and {REQUIRE_CORPUS_ENV} is set: the corpus must be there", pytrace=False)
    pytest.skip(reason)


def corpus_dir(name: str) -> Path:
    path = CORPUS / name
    if not path.is_dir():
        corpus_missing(f"corpus folder {path} is not available")
    return path


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def cli_env(home: Path | None = None, claude_config: Path | None = None, **extra: str) -> dict[str, str]:
    # Hermetic: none of the developer's own SideQuest or QuickBooks settings, and none of their
    # certificate settings (a test that needs SSL_CERT_FILE passes it): a CA bundle named there is
    # parsed by every live run (about 25 ms of CPU each), where the system's store is read lazily.
    # And, as an installed sidequest does (pip compiles a wheel's modules), the CLI writes its bytecode
    # once: with PYTHONDONTWRITEBYTECODE from the shell every run compiled every module it imported.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SIDEQUEST_", "QB_"))
        and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR", "PYTHONDONTWRITEBYTECODE")
    }
    env.update({"NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"})
    env.pop("FORCE_COLOR", None)
    if home is not None:
        env["SIDEQUEST_HOME"] = str(home)
    env["SIDEQUEST_CLAUDE_CONFIG"] = (
        str(claude_config) if claude_config else str(Path(os.devnull).parent / "nonexistent-claude-config.json")
    )
    env.update(extra)
    return env


# The `sidequest` console script as pip's launcher runs it: doctor.commands.script:entry, which leaves
# without the interpreter's teardown (35-110 ms of CPU a run, and the suite runs the CLI over a
# thousand times). `python -m doctor.commands.cli`, which keeps the ordinary exit, is what the tests
# that drive a terminal or send signals start.
SIDEQUEST = (sys.executable, "-c", "from doctor.commands.script import entry; entry()")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60, input: str | None = None) -> CliResult:
    """The real CLI in a subprocess, as a user runs it (the console script's way in)."""
    proc = subprocess.run(
        [*SIDEQUEST, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env if env is not None else cli_env(),
        timeout=timeout,
        input=input,
        cwd=REPO,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def default_sigint() -> None:
    """A child's `preexec_fn`: Ctrl+C interrupts again. A background job (`pytest &`) inherits SIGINT
    ignored, and Python then leaves it ignored, so a Ctrl+C test would wait out its timeout."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_env(home: Path, values: dict[str, str], *, mode: int = 0o600, extra: str = "") -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()) + extra, encoding="utf-8")
    path.chmod(mode)
    return path


def configured_values(**overrides: str) -> dict[str, str]:
    values = {
        "QB_CLIENT_ID": CLIENT_ID,
        "QB_CLIENT_SECRET": CLIENT_SECRET,
        "QB_REFRESH_TOKEN": "RT1-39-H3-1785429816rcysb9dns1ofreknypnm",
        "QB_REALM_ID": REALM_ID,
        "QB_ENVIRONMENT": "sandbox",
    }
    values.update(overrides)
    return values


def modules_loaded(code: str, names: Iterable[str]) -> list[str]:
    """Which of `names` a fresh interpreter has imported once it has run `code` (sorted)."""
    wanted = sorted(names)
    check = f"{code}\nimport sys\nprint(' '.join(n for n in {wanted!r} if n in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()
