"""Production consent in a real browser: headless Chromium, the hosted pages in web/, the real CLI.

The whole path a business owner's browser takes with production keys, over real sockets on
127.0.0.1 only: `sidequest reauth-qb --no-browser` (a subprocess, Intuit faked by
tests/support/fake_intuit.py through the SIDEQUEST_OAUTH_* variables) prints the consent
address; Chromium opens it, clicks Connect (or Cancel) on the fake Intuit page, lands on
web/qb/callback/ served from a local static server with the headers of web/_headers, is
forwarded to the listener, and the test checks what the tab shows (visible text, not only
the DOM), what the terminal says, `.env` and Claude Desktop's entry.

QB_REDIRECT_URI is `http://<name>:<port>/qb/callback` with a name Chromium maps to 127.0.0.1
(--host-resolver-rules), so reauth-qb treats it as a hosted callback, like production:
- `sidequestautomation.test` is not a loopback name, so the page behaves as on the public
  site (no probe of the listener; a direct location.replace);
- `sidequest.localhost` is one, so the page first probes the listener (no permission
  prompt can appear there) and shows its fallback when the browser blocks the listener.

Each test saves screenshots under its tmp folder; with SIDEQUEST_DOCS_SCREENSHOTS=<folder>
they are also copied there (that is how docs/screenshots/ was made). Without chromium and
chromedriver the tests skip with one line; with CI=true they fail instead.
"""

from __future__ import annotations

import fnmatch
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from doctor.commands.consent_listener import split_state
from tests.support.homes import CLIENT_ID, CLIENT_SECRET, REALM_ID, REPO, cli_env, configured_values, write_env

WEB = REPO / "web"
PUBLIC_NAME = "sidequestautomation.test"
LOOPBACK_NAME = "sidequest.localhost"
# Markup in a company name must show as text on the listener's page (a plain name only when
# making the screenshots for docs/).
COMPANY = "Larry's Bakery" if os.environ.get("SIDEQUEST_DOCS_SCREENSHOTS") else "Larry's <b>Bakery</b> & Co"
OLD_REFRESH_TOKEN = configured_values()["QB_REFRESH_TOKEN"]
WAIT = 30  # seconds a page may take to show the expected text


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for name in ("chromium", "chromedriver"):
        if not shutil.which(name):
            return f"{name} is not installed (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def need_browser():
    reason = _missing()
    if reason and os.environ.get("CI") == "true":
        pytest.fail(f"browser tests must run in CI: {reason}")
    if reason:
        pytest.skip(reason)


# ---------------------------------------------------------------------------------------------
# the static host: web/ with the headers of web/_headers


def parse_headers_file(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """Netlify / Cloudflare Pages `_headers`: a path pattern line, then indented `Name: value` lines."""
    rules: list[tuple[str, list[tuple[str, str]]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            name, _, value = line.strip().partition(":")
            rules[-1][1].append((name.strip(), value.strip()))
        else:
            rules.append((line.strip(), []))
    return rules


def headers_for(rules, path: str) -> list[tuple[str, str]]:
    return [header for pattern, headers in rules if fnmatch.fnmatchcase(path, pattern) for header in headers]


class StaticSite:
    """web/ on 127.0.0.1, like any static host: directory index, trailing-slash redirect, _headers."""

    def __init__(self) -> None:
        rules = parse_headers_file(WEB / "_headers")
        self.requests: list[str] = []
        site = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - stdlib signature
                pass  # request lines hold the sign-in code

            def send_head(self):
                site.requests.append(urlsplit(self.path).path)
                return super().send_head()

            def end_headers(self):
                for name, value in headers_for(rules, urlsplit(self.path).path):
                    self.send_header(name, value)
                super().end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(WEB)))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str, path: str) -> str:
        return f"http://{name}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def site():
    s = StaticSite()
    yield s
    s.close()


# ---------------------------------------------------------------------------------------------
# the browser


@pytest.fixture
def browser(need_browser, tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1000,760",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--host-resolver-rules=MAP {PUBLIC_NAME} 127.0.0.1, MAP {LOOPBACK_NAME} 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # Commands must not wait for a navigation the listener holds open: every check polls the text.
    options.page_load_strategy = "none"
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def visible_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def wait_for_text(driver, *needles: str) -> str:
    """The page's visible text once it shows every needle (fails with what it showed instead)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    # Between two pages the old body goes stale or there is none yet: poll again.
    between_pages = (NoSuchElementException, StaleElementReferenceException)
    try:
        WebDriverWait(driver, WAIT, poll_frequency=0.1, ignored_exceptions=between_pages).until(
            lambda d: all(n in visible_text(d) for n in needles)
        )
    except TimeoutException:
        raise AssertionError(f"page never showed {needles!r}; it shows:\n{visible_text(driver)}") from None
    return visible_text(driver)


def click(driver, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screenshots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 1000
    docs = os.environ.get("SIDEQUEST_DOCS_SCREENSHOTS")
    if docs:
        shutil.copy(path, Path(docs) / path.name)
    return path


def csp_violations(driver) -> list[str]:
    """Console messages about a blocked script, style or request: the pages must need none."""
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def requested_hosts(driver) -> set[str]:
    """Every host the browser sent a request to so far (from Chromium's performance log)."""
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith("http"):
                hosts.add(urlsplit(url).hostname)
    return hosts


# ---------------------------------------------------------------------------------------------
# the connector home and reauth-qb


@pytest.fixture
def home_world(tmp_path: Path, fake_intuit):
    fake_intuit.add_app(CLIENT_ID, CLIENT_SECRET, "production")
    fake_intuit.add_company(REALM_ID, COMPANY, "production")
    fake_intuit.consent_realm = REALM_ID
    fake_intuit.consent_page = True
    home = tmp_path / "home"
    claude = tmp_path / "Claude" / "claude_desktop_config.json"
    claude.parent.mkdir()
    entry = {"command": "python", "args": ["-m", "qb_distributor_mcp"]}
    entry["env"] = {"QB_REFRESH_TOKEN": OLD_REFRESH_TOKEN, "QB_REALM_ID": REALM_ID, "QB_ENVIRONMENT": "production"}
    claude.write_text(json.dumps({"mcpServers": {"qb-distributor": entry}}, indent=2), encoding="utf-8")
    return {"home": home, "claude": claude, "fake": fake_intuit}


class Reauth:
    """`sidequest reauth-qb --no-browser` in a subprocess, its redirect URI on the static site."""

    def __init__(self, world: dict, redirect_uri: str) -> None:
        self.env_path = world["home"] / ".env"
        write_env(world["home"], configured_values(QB_ENVIRONMENT="production", QB_REDIRECT_URI=redirect_uri))
        self.env_before = self.env_path.read_text(encoding="utf-8")
        env = cli_env(world["home"], world["claude"], **world["fake"].environ())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "doctor.commands.cli", "reauth-qb", "--no-browser", "--timeout", "120"],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.consent_url = self.proc.stdout.readline().strip()
        query = parse_qs(urlsplit(self.consent_url).query)
        assert query["redirect_uri"] == [redirect_uri], self.consent_url
        self.state = query["state"][0]
        self.port = split_state(self.state)[1]
        assert self.port, self.state

    def paste(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def reauth(home_world):
    started: list[Reauth] = []

    def start(redirect_uri: str) -> Reauth:
        started.append(Reauth(home_world, redirect_uri))
        return started[-1]

    yield start
    for r in started:
        r.kill()


def env_values(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def assert_connected(world: dict, result: tuple[int, str, str]) -> None:
    code, out, err = result
    assert code == 0, out + err
    new_token = world["fake"].current_refresh_token(CLIENT_ID, REALM_ID)
    assert new_token and new_token != OLD_REFRESH_TOKEN
    values = env_values(world["home"] / ".env")
    assert values["QB_REFRESH_TOKEN"] == new_token and values["QB_REALM_ID"] == REALM_ID
    entry = json.loads(world["claude"].read_text(encoding="utf-8"))["mcpServers"]["qb-distributor"]
    assert entry["env"]["QB_REFRESH_TOKEN"] == new_token and entry["env"]["QB_ENVIRONMENT"] == "production"
    assert new_token not in out + err  # only the redacted form is printed


# ---------------------------------------------------------------------------------------------
# the flows


def test_connect_through_the_hosted_page_reaches_the_terminal(browser, site, reauth, home_world, tmp_path):
    run = reauth(site.url(PUBLIC_NAME, "/qb/callback"))
    browser.get(run.consent_url)
    wait_for_text(browser, "Connect SideQuest to QuickBooks")
    screenshot(browser, tmp_path, "intuit-consent")
    click(browser, "connect")

    text = wait_for_text(browser, "Connected to ")
    screenshot(browser, tmp_path, "connected")
    assert urlsplit(browser.current_url).netloc == f"127.0.0.1:{run.port}"
    # The company name is shown as text: its markup is neither rendered nor run.
    assert f"Connected to {COMPANY}." in text
    assert "You can close this tab and go back to Claude." in text
    assert not browser.find_elements("css selector", "b")
    assert_connected(home_world, run.finish())
    # The hosted page was loaded, and nothing but the fake Intuit, the site and the listener was asked.
    assert "/qb/callback/callback.js" in site.requests
    assert requested_hosts(browser) <= {"127.0.0.1", PUBLIC_NAME}
    assert csp_violations(browser) == []


def test_cancel_changes_nothing_and_says_how_to_try_again(browser, site, reauth, home_world, tmp_path):
    run = reauth(site.url(PUBLIC_NAME, "/qb/callback"))
    browser.get(run.consent_url)
    wait_for_text(browser, "Connect SideQuest to QuickBooks")
    click(browser, "cancel")

    text = wait_for_text(browser, "not reconnected")
    screenshot(browser, tmp_path, "cancelled")
    assert "Nothing was changed" in text and "sidequest reauth-qb" in text
    code, out, err = run.finish()
    assert code == 1 and "You chose not to connect QuickBooks" in err
    assert run.env_path.read_text(encoding="utf-8") == run.env_before
    assert home_world["fake"].current_refresh_token(CLIENT_ID, REALM_ID) is None


def test_a_forged_state_is_refused_and_the_real_reply_still_connects(browser, site, reauth, home_world, tmp_path):
    run = reauth(site.url(PUBLIC_NAME, "/qb/callback"))
    forged = {"code": "AB11forgedcode000000", "state": f"{'x' * 32}.{run.port}", "realmId": "123"}
    browser.get(site.url(PUBLIC_NAME, "/qb/callback?" + urlencode(forged)))

    text = wait_for_text(browser, "Sign-in reply ignored")
    screenshot(browser, tmp_path, "forged-state")
    assert "nothing was changed" in text
    assert run.proc.poll() is None and run.env_path.read_text(encoding="utf-8") == run.env_before

    browser.get(run.consent_url)
    wait_for_text(browser, "Connect SideQuest to QuickBooks")
    click(browser, "connect")
    wait_for_text(browser, "Connected to ")
    result = run.finish()
    assert "Ignored a sign-in reply that does not belong to this attempt" in result[2]
    assert_connected(home_world, result)


def test_listener_blocked_fallback_copy_and_paste_completes(browser, site, reauth, home_world, tmp_path):
    run = reauth(site.url(LOOPBACK_NAME, "/qb/callback"))
    # The browser refuses to reach the listener (as a policy or an extension can).
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": [f"http://127.0.0.1:{run.port}/*"]})
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": site.url(LOOPBACK_NAME, ""), "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    browser.get(run.consent_url)
    wait_for_text(browser, "Connect SideQuest to QuickBooks")
    click(browser, "connect")

    wait_for_text(browser, "One more step: copy this address into SideQuest", "does not answer")
    assert urlsplit(browser.current_url).hostname == LOOPBACK_NAME  # not forwarded
    click(browser, "copy")
    wait_for_text(browser, "Copied. Now paste it into the terminal window")
    screenshot(browser, tmp_path, "fallback")
    address = browser.find_element("id", "address").get_attribute("value")
    assert address == browser.current_url and "code=" in address and f".{run.port}" in address
    clipboard = browser.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], () => arguments[0](null))"
    )
    assert clipboard == address
    assert run.proc.poll() is None  # still waiting

    assert csp_violations(browser) == []
    run.paste(clipboard)
    assert_connected(home_world, run.finish())


def test_pages_without_a_listener_explain_what_to_do(browser, site, tmp_path):
    """No port in state, a cancel that cannot reach any window, an unknown error shown as text."""
    # A state without reauth-qb's shape: nothing to forward to, so the copy box.
    browser.get(site.url(PUBLIC_NAME, "/qb/callback?code=AB11x&state=abc&realmId=1"))
    text = wait_for_text(browser, "One more step", "does not say which SideQuest window")
    assert "sidequest reauth-qb" in text and "Copy" in text

    browser.get(site.url(PUBLIC_NAME, "/qb/callback?error=access_denied&state=abc"))
    text = wait_for_text(browser, "QuickBooks was not connected")
    screenshot(browser, tmp_path, "hosted-denied")
    assert "Nothing was changed." in text and "run sidequest reauth-qb" in text

    browser.get(site.url(PUBLIC_NAME, "/qb/callback?" + urlencode({"error": "<img src=x>invalid_scope"})))
    text = wait_for_text(browser, "QuickBooks did not finish the sign-in")
    assert "Intuit answered: <img src=x>invalid_scope." in text
    assert not browser.find_elements("css selector", "img")


def test_forwarding_page_shows_while_the_listener_is_slow(browser, site, tmp_path):
    """The page a user sees for the moment the listener takes to answer.

    A listener that never answers keeps the forward pending, and ChromeDriver (and DevTools'
    Runtime.evaluate) then wait on it: that hung this test under load. Here the stand-in listener
    answers 204 No Content, on which a browser stays on the page it is on, so the forwarding page
    stays on screen exactly as the user sees it while the real listener finishes.
    """

    class NoContent(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):  # silent
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NoContent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        query = urlencode({"code": "AB11x", "state": f"{'n' * 32}.{port}", "realmId": "1"})
        browser.get(site.url(PUBLIC_NAME, "/qb/callback?" + query))
        text = wait_for_text(browser, "Connecting QuickBooks to SideQuest")
        assert "Passing the sign-in to the SideQuest window on this computer" in text, text
        screenshot(browser, tmp_path, "forwarding")
    finally:
        server.shutdown()
        server.server_close()


def test_reconnect_page_speaks_to_a_business_owner(browser, site, tmp_path):
    browser.get(site.url(PUBLIC_NAME, "/qb/reconnect"))
    text = wait_for_text(browser, "Reconnect QuickBooks to Claude")
    screenshot(browser, tmp_path, "reconnect")
    assert urlsplit(browser.current_url).path == "/qb/reconnect/"
    for needle in ("ask Claude", "sidequest reauth-qb", "click Connect", "quit Claude Desktop completely"):
        assert needle in text
    assert not browser.find_elements("css selector", "script")


def test_the_static_host_serves_the_documented_headers(site):
    """web/_headers is what the browser tests get, and web/README.md lists the same policies (no browser needed)."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(site.url("127.0.0.1", "/qb/callback/?code=x")) as response:
        headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    readme = (WEB / "README.md").read_text(encoding="utf-8")
    for _pattern, rule in parse_headers_file(WEB / "_headers"):
        for name, value in rule:
            assert f"{name}: {value}" in readme, f"web/README.md does not list {name}: {value}"
