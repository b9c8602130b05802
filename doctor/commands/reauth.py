"""`sidequest reauth-qb`: the one-command recovery when QuickBooks has to be connected again.

Why it exists: when the refresh-token chain is dead (expired, disconnected, minted with other
keys), the only fix is a fresh consent in the browser. Done by hand that means copying a
code out of an address bar, a curl call, and editing two files; a business owner cannot do
that. This command does all of it in one go:

1. read the app's keys from `.env` (QB_CLIENT_ID, QB_CLIENT_SECRET, QB_ENVIRONMENT or
   `--environment`, QB_REDIRECT_URI with the hosted callback as default);
2. build the consent address with a fresh random `state`, print it (always, on its own
   line of standard output, first) and open it in the browser unless `--no-browser`;
3. catch the reply (see `doctor.commands.consent_listener` for the loopback listener, the
   hosted-callback forwarding contract and the paste fallback), until `--timeout`;
4. a refused consent, or a different company without confirmation, ends here with exit 1
   and nothing written;
5. exchange the code (same redirect URI), save the new chain through the locked token store,
   then push QB_REFRESH_TOKEN, QB_REALM_ID and QB_ENVIRONMENT into Claude Desktop's entry;
6. say what to do next: quit Claude Desktop completely and reopen it.

Everything printed goes through the redactor, which knows the client secret, the old and
new tokens and the authorization code: only `RT…1a2b`-style forms ever reach the screen.
"""

from __future__ import annotations

import codecs
import os
import queue
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from doctor.context import resolve_claude_config
from doctor.store.home import resolve_home

EXIT_OK, EXIT_FAILED = 0, 1
LOCK_WAIT_SECONDS = 10.0
# The new chain exists at Intuit once the code is exchanged; losing it to a busy lock would
# force the user through the browser again, so saving waits longer than a refresh does.
SAVE_LOCK_WAIT_SECONDS = 30.0
# A confirmation question still gets at least this long, even late in the --timeout budget.
MIN_CONFIRM_SECONDS = 60.0
POLL_SECONDS = 0.2
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")

RESTART_ADVICE = (
    "Last step: quit Claude Desktop completely (on a Mac: Claude menu > Quit, or Cmd+Q; on Windows: "
    "right-click the Claude icon in the taskbar tray and choose Quit; closing the window is not enough), "
    "then open it again. The next QuickBooks request will work."
)

EXCHANGE_EXPLANATIONS = {
    "invalid_grant": "Intuit did not accept the sign-in code: it was already used, is older than a few "
    "minutes, or QB_REDIRECT_URI in .env differs from the one registered for the app. "
    "Run `sidequest reauth-qb` again.",
    "invalid_client": "Intuit does not accept the app keys QB_CLIENT_ID / QB_CLIENT_SECRET in .env. "
    "Copy them again from the SideQuest setup email, then run `sidequest reauth-qb`.",
    "network": "Could not reach Intuit. Check the internet connection and run `sidequest reauth-qb` again.",
    "timeout": "Intuit did not answer in time. Run `sidequest reauth-qb` again in a few minutes.",
    "server_error": "Intuit's sign-in service had an error. Run `sidequest reauth-qb` again in a few minutes.",
    "insecure_url": "A SIDEQUEST_OAUTH_* address is plain http:// to a non-local host; refusing to send secrets there.",
}


class _Output:
    """Prints through the redactor, which learns every secret the flow touches as it goes."""

    def __init__(self) -> None:
        self.secrets: list[tuple[str, str]] = []
        self.client_id: str | None = None
        self._lock = threading.Lock()

    def know(self, kind: str, value: str | None) -> None:
        if value:
            with self._lock:
                self.secrets.append((kind, value))

    def clean(self, text: str) -> str:
        from doctor.commands.cli import checked

        with self._lock:
            known = list(self.secrets)
        return checked(text, known, self.client_id)

    def say(self, text: str, *, err: bool = False) -> None:
        from doctor.commands.cli import emit

        cleaned = self.clean(text)
        with self._lock:
            emit(cleaned + "\n", err=err)


def run_reauth(settings: Any, *, no_browser: bool, environment: str | None, timeout: float, yes: bool) -> int:
    """Run the whole recovery; return the exit code (0 connected, 1 diagnosed failure)."""
    from doctor.intuit.client import IntuitClient, IntuitError, normalise_environment
    from doctor.store.env_file import EnvFileError
    from doctor.store.token_store import StoreError, TokenStore

    out = _Output()
    home = resolve_home(settings.home, os.environ)
    claude_path = resolve_claude_config(settings.claude_config, os.environ)
    store = TokenStore(home, environ=os.environ, command="sidequest reauth-qb")
    env_path = home / ".env"

    try:
        creds = store.credentials()
    except (StoreError, EnvFileError) as exc:
        out.say(f"Cannot connect QuickBooks: {exc}", err=True)
        return EXIT_FAILED
    out.client_id = creds.client_id
    out.know("client_secret", creds.client_secret)
    out.know("refresh_token", creds.refresh_token)
    settings.client_id = creds.client_id
    settings.secrets = out.secrets  # the CLI's last-resort error line redacts with the same list

    missing = [
        key
        for key, value in (("QB_CLIENT_ID", creds.client_id), ("QB_CLIENT_SECRET", creds.client_secret))
        if not value
    ]
    chosen_environment = environment or creds.environment
    if not chosen_environment:
        missing.append("QB_ENVIRONMENT")
    if missing:
        where = str(env_path) if env_path.exists() else f"{env_path} (the file does not exist)"
        advice = "Copy them from the SideQuest setup email into that file, then run `sidequest reauth-qb` again."
        if missing == ["QB_ENVIRONMENT"]:
            advice = (
                "Add QB_ENVIRONMENT=sandbox or QB_ENVIRONMENT=production to that file, or run "
                "`sidequest reauth-qb --environment production` (or sandbox)."
            )
        out.say(f"Cannot connect QuickBooks: {where} is missing {', '.join(missing)}.\n{advice}", err=True)
        return EXIT_FAILED
    try:
        chosen_environment = normalise_environment(chosen_environment)
    except ValueError:
        out.say(
            f"Cannot connect QuickBooks: QB_ENVIRONMENT in {env_path} must be sandbox or production "
            f"(it is {chosen_environment!r}).",
            err=True,
        )
        return EXIT_FAILED

    redirect_uri = creds.redirect_uri
    listen_port, listen_path, loopback = _listening_plan(redirect_uri)
    events: queue.Queue = queue.Queue()
    nonce = secrets.token_urlsafe(24)
    from doctor.commands.consent_listener import ConsentListener, PageOutcome

    try:
        listener = ConsentListener(listen_port, listen_path, events)
    except OSError as exc:
        if loopback:
            out.say(
                f"Cannot wait for the QuickBooks sign-in: port {listen_port} on this computer (from "
                f"QB_REDIRECT_URI {redirect_uri}) cannot be used: {exc.strerror or exc}. If another program "
                "has it in use (perhaps another `sidequest reauth-qb` window), close it and try again.",
                err=True,
            )
            return EXIT_FAILED
        raise
    # The hosted page finds this window by the port after the last "." (doctor.commands.consent_listener).
    state = f"{nonce}.{listener.port}"
    listener.start(state)
    outcome = PageOutcome(False, "QuickBooks was not reconnected", "See the terminal window for what to do.")
    intuit = IntuitClient(environ=os.environ)
    try:
        consent_url = intuit.authorize_url(creds.client_id, redirect_uri, state)
        try:
            _announce(out, consent_url, no_browser=no_browser, loopback=loopback, timeout=timeout)
            lines = _stdin_lines()
            if not no_browser:
                _open_browser(out, consent_url)
            reply = _wait_for_reply(out, events, lines, state, timeout)
        except KeyboardInterrupt:
            out.say("\nStopped waiting for the QuickBooks sign-in. Nothing was changed.", err=True)
            return EXIT_FAILED
        if reply is None:
            out.say(
                f"No sign-in reply arrived within {timeout:g} seconds. Nothing was changed. "
                "Run `sidequest reauth-qb` again when you are ready to click Connect.",
                err=True,
            )
            return EXIT_FAILED
        out.know("auth_code", reply.code)

        if reply.error:
            what = (
                "You chose not to connect QuickBooks (or Intuit cancelled the sign-in)"
                if reply.error == "access_denied"
                else f"Intuit refused the sign-in ({reply.error})"
            )
            outcome = PageOutcome(
                False,
                "QuickBooks was not reconnected",
                f"{what}. Nothing was changed. Run sidequest reauth-qb again to retry.",
            )
            out.say(
                f"{what}. Nothing was changed.\nTo try again, run `sidequest reauth-qb` and click Connect "
                "on the Intuit page.",
                err=True,
            )
            return EXIT_FAILED

        current_realm = _current_realm(store, creds.realm_id)
        if current_realm and reply.realm_id != current_realm:
            try:
                confirmed = _confirm_company_change(out, lines, current_realm, reply.realm_id, yes=yes, timeout=timeout)
            except KeyboardInterrupt:
                confirmed = False
                out.say("\nStopped. Nothing was changed.", err=True)
            if not confirmed:
                outcome = PageOutcome(
                    False,
                    "QuickBooks was not reconnected",
                    "You picked a different QuickBooks company; nothing was changed. See the terminal window.",
                )
                return EXIT_FAILED

        try:
            token = intuit.exchange_code(creds.client_id, creds.client_secret, reply.code, redirect_uri)
        except IntuitError as exc:
            explanation = EXCHANGE_EXPLANATIONS.get(exc.kind, "Run `sidequest doctor` for a diagnosis.")
            outcome = PageOutcome(False, "QuickBooks was not reconnected", f"{exc}. See the terminal window.")
            out.say(f"Could not finish connecting QuickBooks: {exc}. Nothing was changed.\n{explanation}", err=True)
            return EXIT_FAILED
        out.know("refresh_token", token.refresh_token)
        out.know("access_token", token.access_token)

        company_name, chosen_environment = _check_company(
            out, intuit, token.access_token, reply.realm_id, chosen_environment
        )
        saved = _save(out, store, token, reply.realm_id, chosen_environment)
        if not saved:
            outcome = PageOutcome(False, "QuickBooks was not reconnected", "Saving failed; see the terminal window.")
            return EXIT_FAILED
        outcome = PageOutcome(
            True,
            f"Connected to {company_name or 'QuickBooks company ' + reply.realm_id}.",
            "QuickBooks is connected again: SideQuest saved the new connection.",
        )
        _report_success(
            out,
            env_path,
            token.refresh_token,
            reply.realm_id,
            chosen_environment,
            previous_realm=current_realm,
            company_name=company_name,
        )
        claude_ok = _update_claude(out, claude_path, env_path, token.refresh_token, reply.realm_id, chosen_environment)
        if claude_ok:
            out.say(RESTART_ADVICE)
            return EXIT_OK
        out.say(
            "Once Claude Desktop's config holds these values, quit Claude Desktop completely and open it "
            "again (closing the window is not enough).",
            err=True,
        )
        return EXIT_FAILED
    finally:
        listener.finish(PageOutcome(outcome.success, out.clean(outcome.headline), out.clean(outcome.detail)))
        listener.close()
        intuit.close()
        store.close()


# ---------------------------------------------------------------------------------------------
# steps


def _listening_plan(redirect_uri: str) -> tuple[int, str, bool]:
    """(port, path, is_loopback): where the browser will land, or an ephemeral port for forwarding."""
    from doctor.commands.consent_listener import HOSTED_CALLBACK_PATH

    parts = urlsplit(redirect_uri)
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and (host in LOOPBACK_HOSTS or host.startswith("127.")):
        try:
            port = parts.port or 80
        except ValueError:
            port = 80
        return port, parts.path or "/", True
    return 0, HOSTED_CALLBACK_PATH, False


def _announce(out: _Output, consent_url: str, *, no_browser: bool, loopback: bool, timeout: float) -> None:
    # The address is the first line of standard output, alone, so a script (or a person
    # on another machine) can take it; the explanation goes to standard error around it.
    if no_browser:
        out.say("Open this address in a browser, sign in to QuickBooks and click Connect:", err=True)
    else:
        out.say(
            "Opening the QuickBooks sign-in page in your browser. If it does not open, "
            "copy this address into a browser:",
            err=True,
        )
    out.say(consent_url)
    where = (
        "This window receives the reply by itself"
        if loopback
        else "The SideQuest page you land on sends the reply to this window by itself"
    )
    out.say(
        f"{where}. If instead the browser stops on a page that says something went wrong, copy the "
        "whole address from its address bar, paste it here and press Enter. "
        f"Waiting up to {timeout:g} seconds (Ctrl+C to stop)...",
        err=True,
    )


def _open_browser(out: _Output, url: str) -> None:
    """Open the platform browser without ever blocking or taking over the terminal."""
    import webbrowser

    if (
        sys.platform.startswith("linux")
        and not os.environ.get("BROWSER")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        # Without a display, webbrowser falls back to text browsers that would seize this terminal.
        out.say("No graphical browser here: open the address above on any device.", err=True)
        return

    def run() -> None:
        try:
            opened = webbrowser.get().open(url)
        except Exception:  # webbrowser.Error, OSError from a broken BROWSER command
            opened = False
        if not opened:
            out.say("Could not open a browser: copy the address above into one.", err=True)

    # Some "browsers" (BROWSER commands, xdg-open) only return when they exit.
    threading.Thread(target=run, name="open-browser", daemon=True).start()


class _Lines:
    """Lines typed or pasted on standard input, read in the background (None at end of input)."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.closed = False

    def get(self, timeout: float) -> str | None | bool:
        """A line, None at end of input, False when nothing arrived within `timeout`."""
        if self.closed:
            time.sleep(timeout)
            return False
        try:
            line = self.queue.get(timeout=timeout)
        except queue.Empty:
            return False
        if line is None:
            self.closed = True
        return line


def _stdin_lines() -> _Lines:
    lines = _Lines()
    stream = sys.stdin
    try:
        fd = stream.fileno() if stream is not None else None
    except (OSError, ValueError):
        fd = None
    if fd is None:
        lines.closed = True
        return lines

    def read() -> None:
        # os.read, not sys.stdin: a daemon thread parked inside the buffered reader's lock
        # makes interpreter shutdown abort ("could not acquire lock for <stdin>").
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            pending += decoder.decode(chunk, final=not chunk)
            *complete, pending = pending.split("\n")
            for line in complete:
                lines.queue.put(line.rstrip("\r"))
            if not chunk:
                if pending.strip():
                    lines.queue.put(pending)
                lines.queue.put(None)
                return

    threading.Thread(target=read, name="stdin-reader", daemon=True).start()
    return lines


def _wait_for_reply(out: _Output, events: queue.Queue, lines: _Lines, state: str, timeout: float):
    """The first acceptable reply from the listener or the terminal; None when time runs out."""
    from doctor.commands.consent_listener import ConsentReply, PasteReader, Refused

    paste = PasteReader(state)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            event = events.get(timeout=min(remaining, POLL_SECONDS))
        except queue.Empty:
            event = None
        if isinstance(event, ConsentReply):
            return event
        if isinstance(event, Refused):
            _explain_refusal(out, event)
        line = lines.get(0)
        if isinstance(line, str):
            verdict = paste.feed(line)
            if isinstance(verdict, ConsentReply):
                return verdict
            if isinstance(verdict, Refused):
                _explain_refusal(out, verdict)
            elif paste.wants_realm:
                out.say("Got the code. Now paste the company ID (the realmId number) and press Enter.", err=True)
            elif line.strip():
                out.say(
                    "That does not look like the sign-in address. Paste the whole address from the "
                    "browser's address bar (it contains code= and realmId=).",
                    err=True,
                )


def _explain_refusal(out: _Output, refused) -> None:
    if refused.reason == "wrong_state":
        out.say(
            "Ignored a sign-in reply that does not belong to this attempt (it may come from an older "
            "window or another web page). Still waiting.",
            err=True,
        )
    else:
        out.say("Ignored an incomplete sign-in reply (no code or no company ID). Still waiting.", err=True)


def _current_realm(store, fallback: str | None) -> str | None:
    # Read again: the connector may have been reconfigured while the browser was open.
    try:
        return store.credentials().realm_id
    except Exception:
        return fallback


def _confirm_company_change(out: _Output, lines: _Lines, current: str, new: str, *, yes: bool, timeout: float) -> bool:
    out.say(
        f"You connected a different QuickBooks company: company ID {new}. The connector works with "
        f"company ID {current} now. Continuing switches Claude to the books of company {new}.",
        err=True,
    )
    if yes:
        out.say("Switching companies (--yes).", err=True)
        return True
    if not _is_terminal():
        out.say(
            "Nothing was changed. Run `sidequest reauth-qb --yes` to switch companies, or run it again "
            f"and pick company {current} on the Intuit page.",
            err=True,
        )
        return False
    out.say(f"Switch to company {new}? Type y and press Enter (anything else keeps company {current}):", err=True)
    deadline = time.monotonic() + max(timeout, MIN_CONFIRM_SECONDS)
    while time.monotonic() < deadline:
        line = lines.get(POLL_SECONDS)
        if line is False:
            continue
        if isinstance(line, str) and line.strip().lower() in ("y", "yes"):
            return True
        break
    out.say("Kept the current company. Nothing was changed.", err=True)
    return False


def _is_terminal() -> bool:
    try:
        return bool(sys.stdin) and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def _check_company(out: _Output, intuit, access_token: str, realm_id: str, environment: str) -> tuple[str | None, str]:
    """(company name, the environment the new chain really works in), by one companyinfo read.

    A chain only works in the environment of the app's keys (development keys: sandbox). If
    the chosen environment is refused but the other one answers, recording the chosen one
    would leave the connector broken from its first call, so the one that works is saved.
    """
    from doctor.intuit.client import ENVIRONMENTS, IntuitError

    try:
        return intuit.company_info(access_token, realm_id, environment).company_name, environment
    except IntuitError as exc:
        first_error = exc
    if first_error.kind in ("wrong_environment", "wrong_cluster"):
        other = next(e for e in ENVIRONMENTS if e != environment)
        try:
            name = intuit.company_info(access_token, realm_id, other).company_name
        except IntuitError:
            name = None
        else:
            out.say(
                f"Note: these app keys work with QuickBooks {other}, not {environment}, so SideQuest "
                f"saved QB_ENVIRONMENT={other}.",
                err=True,
            )
            return name, other
    out.say(
        f"Note: could not read the company's name to double-check the connection ({first_error}). "
        "The new connection is saved anyway; `sidequest doctor` checks it in detail.",
        err=True,
    )
    return None, environment


def _save(out: _Output, store, token, realm_id: str, environment: str) -> bool:
    from doctor.store.env_file import EnvFileError
    from doctor.store.token_store import LockTimeout, StoreError

    try:
        store.save_consent(token, realm_id=realm_id, environment=environment, wait=SAVE_LOCK_WAIT_SECONDS)
        return True
    except LockTimeout as exc:
        out.say(
            f"Could not save the new QuickBooks connection: {exc}.\nWait for that program to finish "
            "(or restart the computer), then run `sidequest reauth-qb` again.",
            err=True,
        )
    except (StoreError, EnvFileError) as exc:
        out.say(
            f"Could not save the new QuickBooks connection: {exc}.\nFix that, then run `sidequest reauth-qb` again.",
            err=True,
        )
    return False


def _paste_instructions(env_path: Path, refresh_token: str, realm_id: str, environment: str) -> str:
    from doctor.redaction import redacted_form

    token = redacted_form("refresh_token", refresh_token)
    return (
        f'    "QB_REFRESH_TOKEN": "{token}"   (the full value is in {env_path}, key QB_REFRESH_TOKEN)\n'
        f'    "QB_REALM_ID": "{realm_id}"\n'
        f'    "QB_ENVIRONMENT": "{environment}"'
    )


def _update_claude(
    out: _Output, claude_path: Path, env_path: Path, refresh_token: str, realm_id: str, environment: str
) -> bool:
    """Push the three synced values into Claude Desktop's entry; explain what to do when it cannot."""
    from doctor.claude_desktop.config import CONNECTOR_NAME, ClaudeConfigError, update_connector_env

    updates = {"QB_REFRESH_TOKEN": refresh_token, "QB_REALM_ID": realm_id, "QB_ENVIRONMENT": environment}
    values = _paste_instructions(env_path, refresh_token, realm_id, environment)
    try:
        result = update_connector_env(claude_path, updates)
    except ClaudeConfigError as exc:
        if exc.reason in ("no_connector", "missing"):
            found = "has no SideQuest connector entry" if exc.reason == "no_connector" else "does not exist yet"
            out.say(
                f"Claude Desktop's config ({claude_path}) {found}, so Claude cannot start the connector.\n"
                "Add the connector as described in the SideQuest setup instructions: an entry named "
                f'"{CONNECTOR_NAME}" under "mcpServers" (in Claude Desktop: Settings > Developer > Edit Config), '
                'with these values in its "env":\n' + values,
                err=True,
            )
        else:
            out.say(
                f"SideQuest did not change Claude Desktop's config: {exc}\n"
                f'The file was left exactly as it was. Fix it, or paste these values by hand into the "env" '
                f'of the "{CONNECTOR_NAME}" entry in {claude_path}:\n' + values + "\n"
                "After fixing the file, `sidequest doctor --fix` can also copy them in for you.",
                err=True,
            )
        return False
    if result.changed:
        backup = f" (previous version kept as {result.backup_path})" if result.backup_path else ""
        out.say(
            f'Updated Claude Desktop\'s config, entry "{result.entry_name}": '
            f"{', '.join(sorted(result.changed))}{backup}."
        )
    else:
        out.say(f'Claude Desktop\'s config already had these values (entry "{result.entry_name}").')
    return True


def _report_success(
    out: _Output,
    env_path: Path,
    refresh_token: str,
    realm_id: str,
    environment: str,
    *,
    previous_realm: str | None,
    company_name: str | None,
) -> None:
    from doctor.redaction import redacted_form

    switched = f" (was {previous_realm})" if previous_realm and previous_realm != realm_id else ""
    out.say(
        "QuickBooks is connected again.\n"
        + (f"  company:             {company_name}\n" if company_name else "")
        + f"  company ID (realm):  {realm_id}{switched}\n"
        f"  environment:         {environment}\n"
        f"  refresh token:       {redacted_form('refresh_token', refresh_token)} (saved in {env_path})"
    )
