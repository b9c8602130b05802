"""`sidequest setup` end to end: the real CLI in a subprocess against the fake Intuit on 127.0.0.1,
the fake browser for the consent, fake scheduler tools for the keep-alive, real files in tmp_path."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import sys
from pathlib import Path

import pytest

from doctor.store.env_file import read_env_file
from tests.support import fake_schedulers
from tests.support.homes import CLIENT_ID, CLIENT_SECRET, REALM_ID, cli_env, default_sigint, run_cli

FAKE_BROWSER = Path(__file__).resolve().parents[1] / "support" / "fake_browser.py"
OWNER_LINES = "# my notes\r\nexport SHOP='Corner Store'  # comment\nUNRELATED=kept\n"


FAKE_CONNECTOR = Path(__file__).resolve().parents[1] / "support" / "fake_connector.py"


class World:
    def __init__(self, tmp_path: Path, fake, connector: str = "crash") -> None:
        self.fake = fake
        fake.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
        fake.add_company(REALM_ID, "Larry's Bakery", "sandbox")
        fake.consent_realm = REALM_ID
        self.home = tmp_path / "home"
        self.claude = tmp_path / "Claude" / "claude_desktop_config.json"
        self.user = tmp_path / "user"
        self.user.mkdir()
        self.state = tmp_path / "scheduler-state"
        self.bin = fake_schedulers.install(tmp_path / "bin")
        self.connector = tmp_path / "bin" / "qb-distributor-mcp"
        # The connector setup's last step (the doctor's connector-launch) starts. By default one that
        # exits at once: a connector answering MCP costs the SDK's import in both processes, about
        # 2.3 s of CPU, which only the tests that look at a healthy verdict need (`healthy_world`).
        self.connector.write_text(
            f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE_CONNECTOR))} {connector}\n"
        )
        self.connector.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        values = {
            **self.fake.environ(),
            "HOME": str(self.user),
            "PATH": str(self.bin),
            "FAKE_SCHEDULER_STATE": str(self.state),
            "SIDEQUEST_PLATFORM": "linux",
            "FAKE_SYSTEMCTL_USER": "down",
            "BROWSER": f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE_BROWSER))} %s",
        }
        values.update(extra)
        return cli_env(self.home, self.claude, **values)

    def setup(self, *args: str, secret: str = CLIENT_SECRET, env: dict | None = None, timeout: float = 90):
        return run_cli(
            "setup", "--client-secret-stdin", *args, env=env or self.env(), input=secret + "\n", timeout=timeout
        )

    def assert_no_secret(self, result) -> None:
        text = result.stdout + result.stderr
        assert CLIENT_SECRET not in text
        with self.fake._lock:
            issued = list(self.fake._refresh_tokens) + list(self.fake._access_tokens)
        for token in issued:
            assert token not in text


@pytest.fixture
def world(tmp_path: Path, fake_intuit) -> World:
    return World(tmp_path, fake_intuit)


@pytest.fixture
def healthy_world(tmp_path: Path, fake_intuit) -> World:
    return World(tmp_path, fake_intuit, connector="healthy")


def test_options_only_saves_checked_keys_and_the_claude_entry_without_consent(world) -> None:
    result = world.setup("--client-id", CLIENT_ID, "--environment", "sandbox", "--no-consent")
    assert result.returncode == 0, result.stdout + result.stderr
    world.assert_no_secret(result)
    env = read_env_file(world.home / ".env")
    assert (env.get("QB_CLIENT_ID"), env.get("QB_CLIENT_SECRET"), env.get("QB_ENVIRONMENT")) == (
        CLIENT_ID,
        CLIENT_SECRET,
        "sandbox",
    )
    assert stat.S_IMODE((world.home / ".env").stat().st_mode) == 0o600
    entry = json.loads(world.claude.read_text())["mcpServers"]["qb-distributor"]
    assert entry["command"] == str(world.connector)
    assert entry["env"] == {
        "QB_CLIENT_ID": CLIENT_ID,
        "QB_CLIENT_SECRET": CLIENT_SECRET,
        "QB_ENVIRONMENT": "sandbox",
        "SIDEQUEST_HOME": str(world.home),  # not the default home: the connector must be told where it is
    }
    assert "Intuit accepts these keys." in result.stdout
    # The key check was one token call with a dummy token: no chain was touched.
    token_calls = [r for r in world.fake.requests if r.path.endswith("/tokens/bearer")]
    assert len(token_calls) == 1 and token_calls[0].status == 400
    last = result.stdout.strip().splitlines()
    assert any(line.startswith("Doctor: ") and "not_configured" in line for line in last[-3:])
    assert "sidequest reauth-qb" in result.stdout


def test_the_whole_flow_with_consent_keepalive_and_a_healthy_doctor(healthy_world) -> None:
    world = healthy_world
    result = world.setup("--client-id", CLIENT_ID, "--environment", "sandbox", "--yes", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    world.assert_no_secret(result)
    env = read_env_file(world.home / ".env")
    token = world.fake.current_refresh_token(CLIENT_ID, REALM_ID)
    assert env.get("QB_REFRESH_TOKEN") == token and env.get("QB_REALM_ID") == REALM_ID
    entry = json.loads(world.claude.read_text())["mcpServers"]["qb-distributor"]
    assert entry["env"]["QB_REFRESH_TOKEN"] == token and entry["env"]["QB_REALM_ID"] == REALM_ID
    assert b"# sidequest-keepalive" in (world.state / "crontab.table").read_bytes()
    assert "Keep-alive on" in result.stdout
    assert "QuickBooks is connected.\n" in result.stdout and "connected again" not in result.stdout  # a first one
    doctor_line = next(line for line in result.stdout.splitlines() if line.startswith("Doctor: "))
    assert "cause: healthy" in doctor_line


def test_wrong_keys_save_nothing(world) -> None:
    result = world.setup("--client-id", CLIENT_ID, "--environment", "sandbox", secret="not-the-secret-0000000000")
    assert result.returncode == 1
    assert "invalid_client" in result.stderr and "Nothing was saved" in result.stderr
    assert not world.home.exists() and not world.claude.exists()
    assert "not-the-secret-0000000000" not in result.stdout + result.stderr


def test_whitespace_and_quotes_pasted_around_keys_are_removed_and_said(world) -> None:
    result = world.setup(
        "--client-id", f"  {CLIENT_ID}\t", "--environment", "sandbox", "--no-consent", secret=f' "{CLIENT_SECRET}" '
    )
    assert result.returncode == 0, result.stderr
    assert "Removed spaces or line breaks pasted around the client ID." in result.stdout
    assert "Removed spaces or line breaks and quotes pasted around the client secret." in result.stdout
    env = read_env_file(world.home / ".env")
    assert env.get("QB_CLIENT_ID") == CLIENT_ID and env.get("QB_CLIENT_SECRET") == CLIENT_SECRET
    world.assert_no_secret(result)


def test_a_space_inside_a_key_is_refused(world) -> None:
    result = world.setup("--client-id", CLIENT_ID[:10] + " " + CLIENT_ID[10:], "--environment", "sandbox")
    assert result.returncode == 1 and "space or line break inside" in result.stderr
    assert not world.home.exists()


def test_an_existing_env_keeps_the_owner_lines_and_keys_change_only_with_yes(world) -> None:
    world.home.mkdir()
    original = f"QB_CLIENT_ID=old-client-id\n{OWNER_LINES}QB_ENVIRONMENT=sandbox\n"
    (world.home / ".env").write_bytes(original.encode())
    (world.home / ".env").chmod(0o600)
    refused = world.setup("--client-id", CLIENT_ID, "--no-consent")
    assert refused.returncode == 1
    assert "QB_CLIENT_ID" in refused.stdout + refused.stderr and "--yes" in refused.stdout
    assert (world.home / ".env").read_bytes() == original.encode()

    result = world.setup("--client-id", CLIENT_ID, "--no-consent", "--yes")
    assert result.returncode == 0, result.stderr
    text = (world.home / ".env").read_bytes().decode()
    kept = f"QB_CLIENT_ID={CLIENT_ID}\n{OWNER_LINES}QB_ENVIRONMENT=sandbox\n"
    # The appended line takes the file's line ending, which env_file picks (CRLF here: one owner line has it).
    assert text in (kept + f"QB_CLIENT_SECRET={CLIENT_SECRET}\n", kept + f"QB_CLIENT_SECRET={CLIENT_SECRET}\r\n")


def test_an_unparsable_claude_config_is_left_exactly_as_it_was(world) -> None:
    world.claude.parent.mkdir()
    broken = b'{"mcpServers": {"other": {"command": "x"},}}\n'
    world.claude.write_bytes(broken)
    result = world.setup("--client-id", CLIENT_ID, "--environment", "sandbox", "--no-consent")
    assert result.returncode == 1
    assert "did not change Claude Desktop's config" in result.stderr
    assert world.claude.read_bytes() == broken
    assert list(world.claude.parent.iterdir()) == [world.claude]  # no backup, no temp file
    assert read_env_file(world.home / ".env").get("QB_CLIENT_ID") == CLIENT_ID  # the keys were still saved


def test_no_connector_command_says_what_to_pass_and_writes_no_entry(world) -> None:
    world.connector.unlink()
    result = world.setup("--client-id", CLIENT_ID, "--environment", "sandbox", "--no-consent")
    assert result.returncode == 1
    assert "--connector-command" in result.stderr and "No entry was written" in result.stderr
    assert not world.claude.exists()


def test_a_connector_command_that_is_not_a_program_is_refused(world, tmp_path: Path) -> None:
    result = world.setup(
        "--client-id", CLIENT_ID, "--environment", "sandbox", "--no-consent", "--connector-command", "/nope/qb"
    )
    assert result.returncode == 1 and "no executable program there" in result.stderr
    assert not world.claude.exists()


def test_without_a_terminal_the_missing_options_are_a_usage_error(world) -> None:
    result = run_cli("setup", "--environment", "sandbox", env=world.env(), input="")
    assert result.returncode == 2 and "--client-id" in result.stderr
    result = run_cli("setup", "--client-id", CLIENT_ID, "--environment", "sandbox", env=world.env(), input="")
    assert result.returncode == 2 and "--client-secret-stdin" in result.stderr
    assert not world.home.exists()


def pty_session(world, answers: list[tuple[bytes, bytes]], *args: str, env: dict | None = None) -> tuple[int, str]:
    """Run setup on a pty, typing each answer when its prompt appears; (exit code, everything shown)."""
    pty = pytest.importorskip("pty")
    import fcntl
    import select
    import subprocess
    import termios

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "doctor.commands.cli", "setup", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env or world.env(),
        cwd=Path(__file__).resolve().parents[2],
        close_fds=True,
        # The pty becomes the controlling terminal, as a person's is: /dev/tty, Ctrl+C as SIGINT.
        start_new_session=True,
        preexec_fn=lambda: (default_sigint(), fcntl.ioctl(0, termios.TIOCSCTTY, 0)),
    )
    os.close(follower)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if answers and answers[0][0] in seen.rstrip().split(b"\n")[-1]:
                os.write(leader, answers.pop(0)[1])
    finally:
        os.close(leader)
        proc.wait(timeout=60)
    return proc.returncode, seen.decode("utf-8", "replace")


def test_a_scripted_terminal_session(world) -> None:
    """The questions as a person sees them, answered through a pty: the secret is never echoed."""
    answers = [
        (b"Client ID", CLIENT_ID.encode() + b"\n"),
        (b"Client secret", CLIENT_SECRET.encode() + b"\n"),
        (b"environment", b"sandbox\n"),
    ]
    code, text = pty_session(world, answers, "--no-consent")
    assert code == 0, text
    assert CLIENT_SECRET not in text
    assert "Intuit accepts these keys." in text and "Doctor: " in text
    assert read_env_file(world.home / ".env").get("QB_CLIENT_SECRET") == CLIENT_SECRET


def test_ctrl_c_at_a_question_says_what_is_left_and_saves_nothing(world) -> None:
    answers = [(b"Client ID", CLIENT_ID.encode() + b"\n"), (b"Client secret", b"\x03")]
    code, text = pty_session(world, answers, "--no-consent")
    assert code == 1, text
    assert "Stopped." in text and "Left to do: save the app keys" in text
    assert "Traceback" not in text and not world.home.exists()


def test_ctrl_c_while_waiting_for_the_consent_stops_setup_and_says_what_is_left(world) -> None:
    # The browser opens nothing, so setup waits for the consent; Ctrl+C there must end setup, not go on.
    answers = [(b"Client secret", CLIENT_SECRET.encode() + b"\n"), (b"Ctrl+C to stop", b"\x03")]
    env = world.env(BROWSER=f"{shutil.which('true')} %s")
    code, text = pty_session(world, answers, "--client-id", CLIENT_ID, "--environment", "sandbox", "--yes", env=env)
    assert code == 1, text
    assert "Stopped waiting for the QuickBooks sign-in. Nothing was changed." in text
    assert "Left to do: connect QuickBooks" in text and "[6/7]" not in text, text
    assert "Traceback" not in text and CLIENT_SECRET not in text
    assert read_env_file(world.home / ".env").get("QB_CLIENT_SECRET") == CLIENT_SECRET  # what was saved stays


# ----------------------------------------------------------------------------- an existing entry's command (issue 11)


def _existing_entry(world) -> dict:
    data = {
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "qb-distributor": {
                "command": "/old/place/qb-distributor-mcp",
                "args": ["--old-flag"],
                "env": {"QB_ENVIRONMENT": "sandbox", "LOG_LEVEL": "debug"},
            },
            "météo": {"command": "uvx", "args": ["weather-mcp"], "env": {"CITY": "Zürich — 東京"}},
        },
        "preferences": {"theme": "dark", "zoom": 1.25},
    }
    world.claude.parent.mkdir(parents=True, exist_ok=True)
    world.claude.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return data


def test_the_command_of_an_existing_entry_changes_only_with_yes_and_keeps_the_rest(world) -> None:
    data = _existing_entry(world)
    kept = world.setup("--client-id", CLIENT_ID, "--environment", "sandbox", "--no-consent")
    assert "starts '/old/place/qb-distributor-mcp'; keeping it (add --yes to change it)" in kept.stdout
    entry = json.loads(world.claude.read_text(encoding="utf-8"))["mcpServers"]["qb-distributor"]
    assert entry["command"] == "/old/place/qb-distributor-mcp" and entry["args"] == ["--old-flag"]

    result = world.setup("--client-id", CLIENT_ID, "--environment", "sandbox", "--no-consent", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    world.assert_no_secret(result)
    after = json.loads(world.claude.read_text(encoding="utf-8"))
    entry = after["mcpServers"].pop("qb-distributor")
    assert entry["command"] == str(world.connector) and entry["args"] == []
    assert entry["env"]["LOG_LEVEL"] == "debug"  # the entry's own other values stay
    assert f"It now starts {str(world.connector)!r} (it started '/old/place/qb-distributor-mcp')." in result.stdout
    data["mcpServers"].pop("qb-distributor")
    assert after == data  # every other entry and setting, value for value
    backups = sorted(world.claude.parent.glob("claude_desktop_config.json.sidequest-backup-*"))
    assert backups and '"/old/place/qb-distributor-mcp"' in backups[-1].read_text(encoding="utf-8")
    # The entry setup wrote is the known-good copy (without the client secret).
    copy = world.home / "claude-entry.json"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600 and CLIENT_SECRET not in copy.read_text(encoding="utf-8")
    assert json.loads(copy.read_text(encoding="utf-8"))["entry"]["command"] == str(world.connector)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fake Claude Desktop is a Linux process")
def test_setup_while_claude_desktop_runs_leaves_its_config_and_says_what_is_left(world, tmp_path: Path) -> None:
    from tests.support.fake_desktop import desktop_running

    data = _existing_entry(world)
    before = world.claude.read_bytes()
    with desktop_running(world.claude, tmp_path / "desk"):
        result = world.setup("--client-id", CLIENT_ID, "--environment", "sandbox", "--no-consent", "--yes")
    assert result.returncode == 1
    world.assert_no_secret(result)
    assert "Claude Desktop is running" in result.stderr
    assert "Quit Claude Desktop (" in result.stderr and "then run `sidequest setup`" in result.stderr
    assert "Left to do: add the connector to Claude Desktop" in result.stdout
    assert world.claude.read_bytes() == before and json.loads(before) == data
    assert list(world.claude.parent.iterdir()) == [world.claude]  # no backup, no temp file
    assert not (world.home / "claude-entry.json").exists()
    assert read_env_file(world.home / ".env").get("QB_CLIENT_ID") == CLIENT_ID  # the keys were saved


@pytest.mark.parametrize("answer, starts", [(b"y\n", "connector"), (b"n\n", "/old/place/qb-distributor-mcp")])
def test_on_a_terminal_the_command_changes_only_when_the_person_agrees(world, answer: bytes, starts: str) -> None:
    _existing_entry(world)
    answers = [(b"Client secret", CLIENT_SECRET.encode() + b"\n"), (b"instead?", answer)]
    code, text = pty_session(world, answers, "--client-id", CLIENT_ID, "--environment", "sandbox", "--no-consent")
    assert "starts '/old/place/qb-distributor-mcp'. Start " in text, text
    entry = json.loads(world.claude.read_text(encoding="utf-8"))["mcpServers"]["qb-distributor"]
    expected = str(world.connector) if starts == "connector" else starts
    assert entry["command"] == expected, text
    assert CLIENT_SECRET not in text
