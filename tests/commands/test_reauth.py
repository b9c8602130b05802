"""`sidequest reauth-qb` end to end: the real CLI in a subprocess, the fake Intuit, a fake browser.

Each test drives the whole recovery the way a user does, over real sockets on 127.0.0.1:
the consent page (FakeIntuit), the browser (tests/support/fake_browser.py named by BROWSER, or the
test itself fetching the URL), the loopback listener, the code exchange, the locked `.env`
write and the Claude Desktop config update. Nothing reaches the internet: the hosted
callback's https address is only ever read, never fetched (the fake browser plays that page).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from doctor.commands.consent_listener import ConsentReply, Refused, judge_reply, split_state
from doctor.commands.terminal_input import PasteReader
from tests.support.homes import (
    CLIENT_ID,
    CLIENT_SECRET,
    REALM_ID,
    REPO,
    cli_env,
    configured_values,
    default_sigint,
    write_env,
)

FAKE_BROWSER = Path(__file__).resolve().parents[1] / "support" / "fake_browser.py"
OLD_REFRESH_TOKEN = configured_values()["QB_REFRESH_TOKEN"]
OTHER_REALM = "4620816365000001"
HOSTED_REDIRECT = "https://sidequestautomation.com/qb/callback"
# What the fake Intuit's codes and access tokens look like, to catch one leaking unseen.
CODE_PATTERN = re.compile(r"AB11\d{10}[A-Za-z0-9]{6,}")
ACCESS_TOKEN_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]{20,}")
# Lines the business owner wrote; every one must survive a reauth byte for byte.
OWNER_LINES = (
    "# SideQuest connector settings\r\n"
    "export EXTRA_SETTING='keep me'  # owner comment\n"
    'UNKNOWN_KEY="quoted value"\n'
    "\n"
    "# trailing comment ü\n"
)
SIDEQUEST_KEYS = (
    "QB_REFRESH_TOKEN",
    "QB_REALM_ID",
    "QB_ENVIRONMENT",
    "QB_TOKEN_REFRESHED_AT",
    "QB_REFRESH_TOKEN_EXPIRES_AT",
    "QB_REFRESH_TOKEN_HARD_EXPIRES_AT",
    "QB_TOKEN_ENVIRONMENT",
    "QB_TOKEN_REALM_ID",
)


def claude_config_data() -> dict:
    """A realistic config: our entry, other servers with Windows paths and unicode, app preferences."""
    return {
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "filesystem": {
                "command": "C:\\Program Files\\nodejs\\npx.cmd",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "C:\\Users\\Zoë\\Documents\\Bücher"],
            },
            "qb-distributor": {
                "command": "C:\\Users\\Zoë\\AppData\\Local\\Programs\\Python\\Python311\\python.exe",
                "args": ["-m", "qb_distributor_mcp"],
                "env": {
                    "QB_REFRESH_TOKEN": OLD_REFRESH_TOKEN,
                    "QB_REALM_ID": REALM_ID,
                    "QB_ENVIRONMENT": "sandbox",
                    "LOG_LEVEL": "info",
                },
            },
            "notes-✓": {"command": "notes-server", "env": {"GREETING": "こんにちは"}},
        },
        "preferences": {"theme": "dark", "quickEntry": True, "zoom": 1.25},
    }


@dataclass
class World:
    tmp: Path
    home: Path
    env_path: Path
    claude_path: Path
    browser_log: Path
    fake: object

    def env(self, *, browser: bool = True, **extra: str) -> dict[str, str]:
        values = dict(self.fake.environ())
        if browser:
            values["BROWSER"] = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE_BROWSER))} %s"
        values["FAKE_BROWSER_LOG"] = str(self.browser_log)
        values.update(extra)
        return cli_env(self.home, self.claude_path, **values)

    def write_env(self, **overrides: str) -> None:
        write_env(self.home, configured_values(**overrides), extra=OWNER_LINES)

    def browser_records(self) -> list[dict]:
        if not self.browser_log.exists():
            return []
        return [json.loads(line) for line in self.browser_log.read_text(encoding="utf-8").splitlines()]

    def new_token(self, realm: str = REALM_ID) -> str:
        token = self.fake.current_refresh_token(CLIENT_ID, realm)
        assert token and token != OLD_REFRESH_TOKEN
        return token

    def backups(self) -> list[Path]:
        return sorted(self.claude_path.parent.glob(self.claude_path.name + ".sidequest-backup-*"))

    def token_calls(self) -> list:
        return [r for r in self.fake.requests if r.path.endswith("/tokens/bearer")]


@pytest.fixture
def world(tmp_path: Path, fake_intuit) -> World:
    return make_world(tmp_path, fake_intuit)


def make_world(tmp_path: Path, fake_intuit) -> World:
    """Sandbox keys, two companies, a configured home and a rich Claude config."""
    fake_intuit.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
    fake_intuit.add_company(REALM_ID, "Larry's Bakery", "sandbox")
    fake_intuit.add_company(OTHER_REALM, "Larry's Catering", "sandbox")
    fake_intuit.consent_realm = REALM_ID
    home = tmp_path / "home"
    claude_path = tmp_path / "Claude" / "claude_desktop_config.json"
    claude_path.parent.mkdir()
    claude_path.write_text(json.dumps(claude_config_data(), indent=2, ensure_ascii=False), encoding="utf-8")
    w = World(tmp_path, home, home / ".env", claude_path, tmp_path / "browser.jsonl", fake_intuit)
    w.write_env()
    return w


# ---------------------------------------------------------------------------------------------
# helpers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_reauth(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doctor.commands.cli", "reauth-qb", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        cwd=REPO,
    )


class Interactive:
    """reauth-qb in a subprocess we talk to: read the consent URL, act, then collect the rest."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "doctor.commands.cli", "reauth-qb", "--no-browser", *args],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            preexec_fn=default_sigint if sys.platform != "win32" else None,
        )
        self.url = self.proc.stdout.readline().rstrip("\n")
        assert self.url.startswith("http://127.0.0.1:"), f"first stdout line is not the consent URL: {self.url!r}"
        self.state = parse_qs(urlsplit(self.url).query)["state"][0]
        self.port = split_state(self.state)[1]

    def paste(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30) -> subprocess.CompletedProcess:
        stdout, stderr = self.proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, self.url + "\n" + stdout, stderr)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_get(url: str) -> tuple[int, str | None, str]:
    """(status, Location, body) without following redirects and without any proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.headers.get("Location"), response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location"), exc.read().decode("utf-8", "replace")


def consent_redirect(consent_url: str) -> str:
    """Play the user clicking Connect: the Location the consent page sends the browser to."""
    status, location, _ = http_get(consent_url)
    assert status == 302 and location
    return location


def env_lines(path: Path) -> tuple[list[bytes], dict[str, str]]:
    """(the owner's lines, sidequest's key=value pairs) of a .env, by raw bytes."""
    owner: list[bytes] = []
    ours: dict[str, str] = {}
    for line in path.read_bytes().splitlines(keepends=True):
        key = line.split(b"=", 1)[0].decode() if b"=" in line else ""
        if key in SIDEQUEST_KEYS:
            ours[key] = line.decode().split("=", 1)[1].strip()
        else:
            owner.append(line)
    return owner, ours


def assert_clean(result: subprocess.CompletedProcess, *secrets: str) -> None:
    """No secret in the output except redacted forms (RT…1a2b and friends)."""
    text = result.stdout + result.stderr
    for value in (CLIENT_SECRET, OLD_REFRESH_TOKEN, *secrets):
        if value:
            assert value not in text
    assert not CODE_PATTERN.search(text), "an authorization code reached the output"
    assert not ACCESS_TOKEN_PATTERN.search(text), "an access token reached the output"
    assert "Traceback" not in text


def snapshot(world: World) -> tuple[bytes, bytes]:
    return world.env_path.read_bytes(), world.claude_path.read_bytes()


def assert_untouched(world: World, before: tuple[bytes, bytes]) -> None:
    assert snapshot(world) == before
    assert world.backups() == []


# ---------------------------------------------------------------------------------------------
# the whole flow


def test_loopback_redirect_success_writes_env_and_claude_entry(world: World) -> None:
    port = free_port()
    redirect = f"http://localhost:{port}/callback"
    world.write_env(QB_REDIRECT_URI=redirect)
    owner_before, _ = env_lines(world.env_path)

    result = run_reauth(world.env(), "--timeout", "30")

    assert result.returncode == 0, result.stderr
    new_token = world.new_token()
    owner_after, ours = env_lines(world.env_path)
    assert owner_after == owner_before  # the owner's lines, byte for byte (CRLF, export, comments)
    assert ours["QB_REFRESH_TOKEN"] == new_token
    assert ours["QB_REALM_ID"] == REALM_ID and ours["QB_TOKEN_REALM_ID"] == REALM_ID
    assert ours["QB_ENVIRONMENT"] == "sandbox" and ours["QB_TOKEN_ENVIRONMENT"] == "sandbox"
    for key in ("QB_TOKEN_REFRESHED_AT", "QB_REFRESH_TOKEN_EXPIRES_AT", "QB_REFRESH_TOKEN_HARD_EXPIRES_AT"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ours[key]), key
    entry = json.loads(world.claude_path.read_text(encoding="utf-8"))["mcpServers"]["qb-distributor"]
    assert entry["env"]["QB_REFRESH_TOKEN"] == new_token
    # The browser landed straight on the listener and was told the outcome.
    [record] = world.browser_records()
    assert record["landed_on"] == "localhost" and record["forwarded"] is False
    assert record["final_status"] == 200 and "connected again" in record["final_page"]
    assert new_token not in record["final_page"] and CLIENT_SECRET not in record["final_page"]
    # The output names the token only redacted, plus the company and the restart step.
    assert result.stdout.splitlines()[0].startswith(world.fake.url + "/connect/oauth2?")
    assert f"RT\u2026{new_token[-4:]}" in result.stdout
    assert REALM_ID in result.stdout and "Larry's Bakery" in result.stdout
    assert "quit Claude Desktop completely" in result.stdout and "Cmd+Q" in result.stdout
    assert "QuickBooks is connected again." in result.stdout  # .env held a connection before
    assert_clean(result, new_token)


def test_a_first_connection_is_not_called_connected_again(world: World) -> None:
    # The app keys are in .env, but QuickBooks was never connected: no refresh token yet.
    keys_only = {key: value for key, value in configured_values().items() if key != "QB_REFRESH_TOKEN"}
    write_env(world.home, keys_only)
    result = run_reauth(world.env(), "--timeout", "30")

    assert result.returncode == 0, result.stderr
    assert "QuickBooks is connected.\n" in result.stdout and "connected again" not in result.stdout
    [record] = world.browser_records()
    assert record["final_status"] == 200 and "QuickBooks is connected:" in record["final_page"]
    assert "connected again" not in record["final_page"]
    assert_clean(result, world.new_token())


def test_hosted_callback_forwards_to_the_listener(world: World) -> None:
    # No QB_REDIRECT_URI: the default hosted callback; the fake browser plays the hosted page.
    result = run_reauth(world.env(), "--timeout", "30")

    assert result.returncode == 0, result.stderr
    [record] = world.browser_records()
    assert record["landed_on"] == "sidequestautomation.com" and record["forwarded"] is True
    assert record["final_status"] == 200
    consent = parse_qs(urlsplit(result.stdout.splitlines()[0]).query)
    assert consent["redirect_uri"] == [HOSTED_REDIRECT]
    nonce, port = split_state(consent["state"][0])
    assert port is not None and len(nonce) >= 32
    # The exchange used the same redirect URI (the fake refuses a code otherwise) and minted this token.
    assert env_lines(world.env_path)[1]["QB_REFRESH_TOKEN"] == world.new_token()
    assert_clean(result, world.new_token())


def test_claude_config_keeps_everything_else(world: World) -> None:
    original_bytes = world.claude_path.read_bytes()
    result = run_reauth(world.env(), "--timeout", "30")
    assert result.returncode == 0, result.stderr

    written = world.claude_path.read_bytes()
    assert not written.startswith(b"\xef\xbb\xbf")
    expected = claude_config_data()
    expected["mcpServers"]["qb-distributor"]["env"]["QB_REFRESH_TOKEN"] = world.new_token()
    assert json.loads(written.decode("utf-8")) == expected  # other servers, paths, unicode, top-level keys
    [backup] = world.backups()
    assert backup.read_bytes() == original_bytes
    assert str(backup) in result.stdout
    assert_clean(result, world.new_token())


def test_forged_callback_with_wrong_state_is_refused_and_the_real_one_succeeds(world: World) -> None:
    port = free_port()
    world.write_env(QB_REDIRECT_URI=f"http://localhost:{port}/callback")
    session = Interactive(world.env(), "--timeout", "30")
    listener = f"http://127.0.0.1:{port}/callback"

    forged = {"code": "AB11forgedcode", "realmId": OTHER_REALM}
    status, _, page = http_get(listener + "?" + urlencode({**forged, "state": session.state[:-1] + "x"}))
    assert status == 400 and "ignored" in page
    status, _, _ = http_get(listener + "?" + urlencode(forged))  # no state at all
    assert status == 400
    assert session.proc.poll() is None  # still waiting

    location = consent_redirect(session.url)
    status, _, page = http_get(location)
    assert status == 200 and "connected again" in page
    result = session.finish()

    assert result.returncode == 0, result.stderr
    assert "does not belong to this attempt" in result.stderr
    assert env_lines(world.env_path)[1]["QB_REALM_ID"] == REALM_ID
    assert env_lines(world.env_path)[1]["QB_REFRESH_TOKEN"] == world.new_token()
    assert_clean(result, world.new_token())


def test_wrong_path_is_refused_without_ending_the_wait(world: World) -> None:
    port = free_port()
    world.write_env(QB_REDIRECT_URI=f"http://localhost:{port}/qb/callback")
    session = Interactive(world.env(), "--timeout", "30")

    location = consent_redirect(session.url)
    query = urlsplit(location).query
    status, _, _ = http_get(f"http://127.0.0.1:{port}/elsewhere?{query}")  # right state, wrong path
    assert status == 404
    status, _, _ = http_get(f"http://127.0.0.1:{port}/favicon.ico")
    assert status == 404
    assert session.proc.poll() is None

    status, _, _ = http_get(location)
    assert status == 200
    result = session.finish()
    assert result.returncode == 0, result.stderr
    assert_clean(result, world.new_token())


def test_denied_consent_writes_nothing(world: World) -> None:
    world.write_env(QB_REDIRECT_URI=f"http://localhost:{free_port()}/callback")
    world.fake.consent_deny = True
    before = snapshot(world)

    result = run_reauth(world.env(), "--timeout", "30")

    assert result.returncode == 1
    assert "chose not to connect" in result.stderr and "Nothing was changed" in result.stderr
    assert_untouched(world, before)
    assert world.token_calls() == []
    [record] = world.browser_records()
    assert record["final_status"] == 400 and "not reconnected" in record["final_page"]
    assert_clean(result)


def test_other_company_is_refused_without_confirmation(world: World) -> None:
    world.fake.consent_realm = OTHER_REALM
    before = snapshot(world)

    result = run_reauth(world.env(), "--timeout", "30")  # stdin is a pipe: nobody to ask

    assert result.returncode == 1
    assert OTHER_REALM in result.stderr and REALM_ID in result.stderr
    assert "--yes" in result.stderr and "Nothing was changed" in result.stderr
    assert_untouched(world, before)
    assert world.token_calls() == []  # the code was not even exchanged
    assert_clean(result)


def test_other_company_is_accepted_with_yes(world: World) -> None:
    world.fake.consent_realm = OTHER_REALM

    result = run_reauth(world.env(), "--timeout", "30", "--yes")

    assert result.returncode == 0, result.stderr
    new_token = world.new_token(OTHER_REALM)
    _, ours = env_lines(world.env_path)
    assert ours["QB_REALM_ID"] == OTHER_REALM and ours["QB_TOKEN_REALM_ID"] == OTHER_REALM
    assert ours["QB_REFRESH_TOKEN"] == new_token
    env = json.loads(world.claude_path.read_text(encoding="utf-8"))["mcpServers"]["qb-distributor"]["env"]
    assert env["QB_REALM_ID"] == OTHER_REALM and env["QB_REFRESH_TOKEN"] == new_token
    assert f"(was {REALM_ID})" in result.stdout
    assert_clean(result, new_token)


def test_environment_that_cannot_work_is_corrected(world: World) -> None:
    # Sandbox (development) keys, but the user asked for production: the chain only works in sandbox.
    result = run_reauth(world.env(), "--timeout", "30", "--environment", "production")

    assert result.returncode == 0, result.stderr
    assert "work with QuickBooks sandbox, not production" in result.stderr
    _, ours = env_lines(world.env_path)
    assert ours["QB_ENVIRONMENT"] == "sandbox" and ours["QB_TOKEN_ENVIRONMENT"] == "sandbox"
    assert "Larry's Bakery" in result.stdout
    assert_clean(result, world.new_token())


def reauth_on_a_terminal(env: dict[str, str], typed) -> tuple[int, str]:
    """`reauth-qb --no-browser` with a pseudo-terminal as stdin; `typed(consent_url)` is what the person types.

    Returns (exit code, stderr)."""
    import pty

    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "doctor.commands.cli", "reauth-qb", "--no-browser", "--timeout", "30"],
        env=env,
        cwd=REPO,
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    os.close(secondary)
    try:
        url = proc.stdout.readline().strip()
        os.write(main, typed(url).encode())
        _, stderr = proc.communicate(timeout=20)
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_other_company_is_asked_about_on_a_terminal(world: World) -> None:
    world.fake.consent_realm = OTHER_REALM
    before = snapshot(world)
    # The answer typed after the pasted address waits in line for the question.
    returncode, stderr = reauth_on_a_terminal(world.env(), lambda url: consent_redirect(url) + "\nn\n")
    assert returncode == 1, stderr
    assert "Switch to company" in stderr and "Kept the current company" in stderr
    assert_untouched(world, before)
    assert world.token_calls() == []


@pytest.mark.parametrize("how", ["address", "code_and_company"])
def test_paste_fallback(world: World, how: str) -> None:
    session = Interactive(world.env(browser=False), "--timeout", "30")
    assert session.port is not None

    location = consent_redirect(session.url)  # the hosted page never loads: the user copies the address
    assert location.startswith(HOSTED_REDIRECT + "?")
    params = parse_qs(urlsplit(location).query)
    forged = location.replace(session.state, session.state[:-2] + "00")
    session.paste(forged)  # an address from another attempt is refused; the wait goes on
    if how == "address":
        session.paste(location)
    else:
        session.paste(params["code"][0])
        session.paste(params["realmId"][0])
    result = session.finish()

    assert result.returncode == 0, result.stderr
    assert "does not belong to this attempt" in result.stderr
    assert env_lines(world.env_path)[1]["QB_REFRESH_TOKEN"] == world.new_token()
    assert_clean(result, world.new_token(), params["code"][0])


def test_used_code_is_explained_and_nothing_written(world: World) -> None:
    from doctor.intuit.client import IntuitClient

    before = snapshot(world)
    session = Interactive(world.env(browser=False), "--timeout", "30")
    location = consent_redirect(session.url)
    code = parse_qs(urlsplit(location).query)["code"][0]
    with IntuitClient(environ=world.fake.environ()) as client:  # someone else burns the code first
        client.exchange_code(CLIENT_ID, CLIENT_SECRET, code, HOSTED_REDIRECT)
    session.paste(location)
    result = session.finish()

    assert result.returncode == 1
    assert "did not accept the sign-in code" in result.stderr
    assert_untouched(world, before)
    assert_clean(result, code, world.fake.current_refresh_token(CLIENT_ID, REALM_ID))


def test_unparsable_claude_config_is_left_alone_and_the_values_are_shown(world: World) -> None:
    broken = b'{\n  "mcpServers": {\n    "qb-distributor": {"command": "x",}\n  }\n}\n'
    world.claude_path.write_bytes(broken)

    result = run_reauth(world.env(), "--timeout", "30")

    assert result.returncode == 1
    assert world.claude_path.read_bytes() == broken and world.backups() == []
    new_token = world.new_token()
    assert env_lines(world.env_path)[1]["QB_REFRESH_TOKEN"] == new_token  # QuickBooks itself is connected
    assert "left exactly as it was" in result.stderr
    assert f'"QB_REFRESH_TOKEN": "RT\u2026{new_token[-4:]}"' in result.stderr
    assert f'"QB_REALM_ID": "{REALM_ID}"' in result.stderr
    assert str(world.env_path) in result.stderr and "key QB_REFRESH_TOKEN" in result.stderr
    assert_clean(result, new_token)


def test_config_without_connector_entry_says_how_to_add_it(world: World) -> None:
    data = claude_config_data()
    del data["mcpServers"]["qb-distributor"]
    world.claude_path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    before_config = world.claude_path.read_bytes()

    result = run_reauth(world.env(), "--timeout", "30")

    assert result.returncode == 1
    assert world.claude_path.read_bytes() == before_config
    assert '"qb-distributor"' in result.stderr and '"mcpServers"' in result.stderr
    assert "setup instructions" in result.stderr
    assert_clean(result, world.new_token())


def test_missing_keys_are_named(world: World) -> None:
    values = configured_values()
    del values["QB_CLIENT_SECRET"], values["QB_ENVIRONMENT"]
    write_env(world.home, values)
    before = snapshot(world)

    result = run_reauth(world.env(), "--timeout", "30")

    assert result.returncode == 1
    assert "QB_CLIENT_SECRET" in result.stderr and "QB_ENVIRONMENT" in result.stderr
    assert "QB_CLIENT_ID" not in result.stderr.split("missing", 1)[1].splitlines()[0]
    assert result.stdout == ""  # no consent URL: nothing was started
    assert_untouched(world, before)
    assert world.browser_records() == []


def test_nobody_answers_then_it_stops_within_the_timeout(world: World) -> None:
    before = snapshot(world)
    started = time.monotonic()
    result = run_reauth(world.env(browser=False), "--no-browser", "--timeout", "2")
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    assert "within 2 seconds" in result.stderr and "Nothing was changed" in result.stderr
    assert elapsed < 2 + 4  # the budget plus interpreter start-up, not a hang
    assert_untouched(world, before)
    assert_clean(result)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to a child process on Windows")
def test_ctrl_c_stops_cleanly(world: World) -> None:
    before = snapshot(world)
    session = Interactive(world.env(browser=False), "--timeout", "60")
    session.proc.send_signal(signal.SIGINT)
    result = session.finish(timeout=10)

    assert result.returncode == 1
    assert "Stopped waiting" in result.stderr and "Nothing was changed" in result.stderr
    assert_untouched(world, before)
    assert_clean(result)


def test_busy_loopback_port_is_explained(world: World) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        world.write_env(QB_REDIRECT_URI=f"http://localhost:{port}/callback")
        before = snapshot(world)
        result = run_reauth(world.env(), "--timeout", "30")

    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "cannot be used" in result.stderr
    assert_untouched(world, before)


def non_loopback_ipv4() -> str | None:
    # connect() on UDP only picks the outgoing interface; no packet is sent.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
    except OSError:
        address = None
    if address and not address.startswith(("127.", "0.")):
        return address
    try:
        candidates = socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        candidates = []
    return next((a for a in candidates if not a.startswith(("127.", "0."))), None)


def test_listener_is_not_reachable_from_the_network(world: World) -> None:
    address = non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    session = Interactive(world.env(browser=False), "--timeout", "30")
    try:
        # Positive control: the listener is up on loopback at the port the state names.
        with socket.create_connection(("127.0.0.1", session.port), timeout=5):
            pass
        with pytest.raises(OSError):
            with socket.create_connection((address, session.port), timeout=3):
                pass
    finally:
        session.proc.kill()
        session.finish(timeout=10)


# ---------------------------------------------------------------------------------------------
# the reply rules, without a process


def test_state_must_match_exactly_at_the_listener() -> None:
    state = "nonce-abc.5555"
    assert isinstance(
        judge_reply({"code": "c", "realmId": "1", "state": state}, state, "browser", require_state=True), ConsentReply
    )
    for params in (
        {"code": "c", "realmId": "1"},
        {"code": "c", "realmId": "1", "state": state + "x"},
        {"code": "c", "realmId": "1", "state": ""},
    ):
        verdict = judge_reply(params, state, "browser", require_state=True)
        assert isinstance(verdict, Refused) and verdict.reason == "wrong_state"
    verdict = judge_reply({"code": "c", "state": state}, state, "browser", require_state=True)
    assert isinstance(verdict, Refused) and verdict.reason == "incomplete"
    denied = judge_reply({"error": "access_denied", "state": state}, state, "browser", require_state=True)
    assert isinstance(denied, ConsentReply) and denied.error == "access_denied" and denied.code is None


def test_split_state() -> None:
    assert split_state("abc-_x.8765") == ("abc-_x", 8765)
    assert split_state("abc") == ("abc", None)
    assert split_state("abc.99999") == ("abc.99999", None)


def test_paste_reader_understands_what_people_paste() -> None:
    state = "n0nce.4242"
    reader = PasteReader(state)
    reply = reader.feed(f"  '{HOSTED_REDIRECT}?code=AB11xyz&state={state}&realmId=123'  ")
    assert isinstance(reply, ConsentReply) and (reply.code, reply.realm_id) == ("AB11xyz", "123")
    assert isinstance(PasteReader(state).feed("code=AB11xyz&realmId=123"), ConsentReply)
    assert isinstance(PasteReader(state).feed("AB11xyz 123"), ConsentReply)
    reader = PasteReader(state)
    assert reader.feed(f"https://x.example/cb?code=AB11xyz&state={state}") is None and reader.wants_realm
    assert reader.feed("123") == ConsentReply("paste", code="AB11xyz", realm_id="123")
    refused = PasteReader(state).feed("https://x/cb?code=a&state=other.4242&realmId=1")
    assert isinstance(refused, Refused) and refused.reason == "wrong_state"
    assert PasteReader(state).feed("   ") is None
    assert "AB11xyz" not in repr(reply)


def test_listener_answers_once_and_logs_nothing(capfd) -> None:
    import queue
    import threading

    from doctor.commands.consent_listener import ConsentListener, PageOutcome

    events: queue.Queue = queue.Queue()
    listener = ConsentListener(0, "/callback", events)
    state = "nonce-123.%d" % listener.port
    listener.start(state)
    base = f"http://127.0.0.1:{listener.port}/callback"
    code = "AB1112345678901secretcodevalue"
    try:
        assert listener._server.server_address[0] == "127.0.0.1"
        assert http_get(base + "?" + urlencode({"code": code, "realmId": "1", "state": "nope"}))[0] == 400
        assert isinstance(events.get(timeout=5), Refused)
        answers: list = []
        browser = threading.Thread(
            target=lambda: answers.append(
                http_get(base + "?" + urlencode({"code": code, "realmId": "1", "state": state}))
            )
        )
        browser.start()
        reply = events.get(timeout=5)
        assert isinstance(reply, ConsentReply) and reply.code == code
        # A second delivery, even with the right state, is not accepted again.
        assert http_get(base + "?" + urlencode({"code": "other", "realmId": "1", "state": state}))[0] == 409
        listener.finish(PageOutcome(True, "QuickBooks is connected again", "done"))
        browser.join(timeout=10)
        status, _, page = answers[0]
        assert status == 200 and "connected again" in page and code not in page
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(urllib.request.Request(base, data=b"code=x", method="POST"), timeout=5)
        assert refused.value.code == 405
        assert refused.value.headers["Cache-Control"] == "no-store"
        assert refused.value.headers["Referrer-Policy"] == "no-referrer"
    finally:
        listener.close()
    captured = capfd.readouterr()
    assert code not in captured.out + captured.err and "GET /callback" not in captured.err


# ---------------------------------------------------------------------------------------------
# issue 9 §6: a realmId that is not a number, and a pasted address without state


def with_params(location: str, **changes: str | None) -> str:
    """`location` with query parameters replaced (None drops one)."""
    parts = urlsplit(location)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return parts._replace(query=urlencode(params)).geturl()


@pytest.mark.parametrize("bad_realm", ["9130355377371234x", "../../v3/company/1", "١٢٣٤"])
def test_callback_realm_id_that_is_not_ascii_digits_is_refused(world: World, bad_realm: str) -> None:
    port = free_port()
    world.write_env(QB_REDIRECT_URI=f"http://localhost:{port}/callback")
    session = Interactive(world.env(), "--timeout", "30")
    location = consent_redirect(session.url)

    status, _, page = http_get(with_params(location, realmId=bad_realm))  # the right state, a bad company id
    assert status == 400 and "not a number" in page
    assert session.proc.poll() is None  # still waiting
    status, _, _ = http_get(location)
    assert status == 200
    result = session.finish()

    assert result.returncode == 0, result.stderr
    assert "company ID (realmId) is not a number" in result.stderr
    assert env_lines(world.env_path)[1]["QB_REALM_ID"] == REALM_ID
    assert_clean(result, world.new_token())


@pytest.mark.parametrize("how", ["address", "typed"])
def test_pasted_realm_id_that_is_not_ascii_digits_is_refused(world: World, how: str) -> None:
    session = Interactive(world.env(browser=False), "--timeout", "30")
    location = consent_redirect(session.url)
    params = parse_qs(urlsplit(location).query)
    if how == "address":
        session.paste(with_params(location, realmId="12ab34"))
    else:
        session.paste(params["code"][0])
        session.paste("١٢٣٤")  # Arabic-Indic digits: str.isdigit() says yes
    session.paste(location)
    result = session.finish()

    assert result.returncode == 0, result.stderr
    assert "company ID (realmId) is not a number" in result.stderr
    assert env_lines(world.env_path)[1]["QB_REALM_ID"] == REALM_ID
    assert_clean(result, world.new_token(), params["code"][0])


def test_pasted_address_without_state_is_refused_without_a_terminal(world: World) -> None:
    before = snapshot(world)
    session = Interactive(world.env(browser=False), "--timeout", "30")
    session.paste(with_params(consent_redirect(session.url), state=None))
    result = session.finish()

    assert result.returncode == 1
    assert "no state=" in result.stderr and "--yes" in result.stderr and "Nothing was changed" in result.stderr
    assert_untouched(world, before)
    assert world.token_calls() == []
    assert_clean(result)


def test_pasted_address_without_state_is_accepted_with_yes(world: World) -> None:
    session = Interactive(world.env(browser=False), "--timeout", "30", "--yes")
    session.paste(with_params(consent_redirect(session.url), state=None))
    result = session.finish()

    assert result.returncode == 0, result.stderr
    assert "no state=" in result.stderr and "Using it (--yes)" in result.stderr
    assert env_lines(world.env_path)[1]["QB_REFRESH_TOKEN"] == world.new_token()
    assert_clean(result, world.new_token())


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("answer", ["y", "n"])
def test_pasted_address_without_state_is_asked_about_on_a_terminal(world: World, answer: str) -> None:
    before = snapshot(world)
    returncode, stderr = reauth_on_a_terminal(
        world.env(browser=False), lambda url: with_params(consent_redirect(url), state=None) + f"\n{answer}\n"
    )
    assert "Use this address?" in stderr
    if answer == "y":
        assert returncode == 0, stderr
        assert env_lines(world.env_path)[1]["QB_REFRESH_TOKEN"] == world.new_token()
    else:
        assert returncode == 1 and "Did not use the pasted address" in stderr
        assert_untouched(world, before)
        assert world.token_calls() == []


def test_reply_rules_for_the_company_id_and_a_missing_state() -> None:
    state = "n0nce.4242"
    for realm in ("12a", "١٢٣", "1" * 33, " 12 3"):
        verdict = judge_reply({"code": "c", "realmId": realm, "state": state}, state, "browser", require_state=True)
        assert isinstance(verdict, Refused) and verdict.reason == "bad_realm", realm
    with_state = judge_reply({"code": "c", "realmId": "123", "state": state}, state, "paste", require_state=False)
    without = judge_reply({"code": "c", "realmId": "123"}, state, "paste", require_state=False)
    assert with_state.state_missing is False and without.state_missing is True
    reader = PasteReader(state)
    assert reader.feed("AB11xyz") is None and reader.wants_realm
    refused = reader.feed("12x")
    assert isinstance(refused, Refused) and refused.reason == "bad_realm"
    assert reader.feed("123") == ConsentReply("paste", code="AB11xyz", realm_id="123")


# ---------------------------------------------------------------------------------------------
# the known-good copy of the entry, and Claude Desktop running (issue 10 §4)


def test_reauth_keeps_a_copy_of_the_entry_it_wrote_without_the_token(world: World) -> None:
    result = run_reauth(world.env(), "--timeout", "30")
    assert result.returncode == 0, result.stderr
    copy = world.home / "claude-entry.json"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    text = copy.read_text(encoding="utf-8")
    assert world.new_token() not in text and OLD_REFRESH_TOKEN not in text
    document = json.loads(text)
    written = json.loads(world.claude_path.read_text(encoding="utf-8"))["mcpServers"]["qb-distributor"]
    assert document["name"] == "qb-distributor" and document["config"] == str(world.claude_path)
    assert document["entry"]["command"] == written["command"] and document["entry"]["args"] == written["args"]
    assert document["entry"]["env"] == {"LOG_LEVEL": "info"}
    assert document["from_env"] == ["QB_ENVIRONMENT", "QB_REALM_ID", "QB_REFRESH_TOKEN"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fake Claude Desktop is a Linux process")
def test_while_claude_desktop_runs_reauth_saves_env_leaves_its_config_and_exits_1(world: World) -> None:
    from tests.support.fake_desktop import desktop_running

    before = world.claude_path.read_bytes()
    with desktop_running(world.claude_path, world.tmp / "desk"):
        result = run_reauth(world.env(), "--timeout", "30")
    assert result.returncode == 1, result.stdout + result.stderr
    new_token = world.new_token()
    assert env_lines(world.env_path)[1]["QB_REFRESH_TOKEN"] == new_token  # the new connection is saved
    assert world.claude_path.read_bytes() == before and world.backups() == []
    assert not (world.home / "claude-entry.json").exists()
    assert "Claude Desktop is running" in result.stderr
    assert "Quit Claude Desktop (" in result.stderr and "then run `sidequest doctor --fix`" in result.stderr
    assert "Last step" not in result.stdout  # no "restart and it works": it would not
    assert_clean(result, new_token)

    # Once Desktop has quit, the command it named copies the new connection in.
    fixed = subprocess.run(
        [sys.executable, "-m", "doctor.commands.cli", "doctor", "--offline", "--fix", "--yes"],
        env=world.env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=REPO,
    )
    entry = json.loads(world.claude_path.read_text(encoding="utf-8"))["mcpServers"]["qb-distributor"]
    assert entry["env"]["QB_REFRESH_TOKEN"] == new_token, fixed.stderr
    assert (world.home / "claude-entry.json").exists()
