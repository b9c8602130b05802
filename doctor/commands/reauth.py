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

`run_reauth` reads as that list: each step is a function that returns what the next needs, or
says why the flow ends and raises `_Stop` (exit 1; the browser tab is told too). Everything
printed goes through the `doctor.console.Console` the CLI hands in, which learns the client
secret, the old and new tokens and the authorization code as the steps meet them: only
`RT…1a2b`-style forms ever reach the screen.
"""

from __future__ import annotations

import os
import queue
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from doctor.advice import (
    AFTER_EXCHANGE_REFUSAL,
    DESKTOP_RUNNING,
    DIAGNOSIS_PLEASE,
    FIX,
    RESTART_ADVICE,
    quit_claude_then,
)
from doctor.claude_desktop.paths import resolve_claude_config
from doctor.commands.consent_listener import ConsentReply, PageOutcome, Refused
from doctor.commands.terminal_input import PasteReader, TerminalLines, answered_yes, read_stdin_lines, stdin_is_terminal
from doctor.console import Console
from doctor.store.home import resolve_home
from doctor.store.keys import APP_KEYS

EXIT_OK, EXIT_FAILED = 0, 1
LOCK_WAIT_SECONDS = 10.0
# The new chain exists at Intuit once the code is exchanged; losing it to a busy lock would
# force the user through the browser again, so saving waits longer than a refresh does.
SAVE_LOCK_WAIT_SECONDS = 30.0
# A confirmation question still gets at least this long, even late in the --timeout budget.
MIN_CONFIRM_SECONDS = 60.0
POLL_SECONDS = 0.2
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


NOT_RECONNECTED = "QuickBooks was not reconnected"


@dataclass(frozen=True)
class ReauthOptions:
    """What the person asked for (the command line, or `doctor --fix` offering a reconnect)."""

    home: Path | None = None
    claude_config: Path | None = None
    no_browser: bool = False
    environment: str | None = None
    timeout: float = 300.0
    yes: bool = False
    # Ctrl+C is passed on (after the flow has cleaned up) instead of ending in exit 1: for `setup`,
    # which must stop there and say what is left rather than go on to its next steps.
    pass_interrupt: bool = False


class _Stop(Exception):
    """A step ended the flow for a reason already told to the user; `page` is the browser tab's last word."""

    def __init__(self, detail: str = "See the terminal window for what to do.", *, interrupted: bool = False) -> None:
        super().__init__(detail)
        self.page = PageOutcome(False, NOT_RECONNECTED, detail)
        self.interrupted = interrupted  # the person pressed Ctrl+C


@dataclass(frozen=True)
class _AppKeys:
    client_id: str
    client_secret: str
    redirect_uri: str
    realm_id: str | None
    environment: str


@dataclass
class _Flow:
    """What the steps share: where things live, the open resources, and the attempt's state."""

    console: Console
    options: ReauthOptions
    home: Path
    claude_path: Path
    store: object
    intuit: object = None
    listener: object = None
    loopback: bool = False
    state: str = ""
    lines: TerminalLines | None = None

    @property
    def env_path(self) -> Path:
        return self.home / ".env"


def run_reauth(console: Console, options: ReauthOptions) -> int:
    """Run the whole recovery; return the exit code (0 connected, 1 diagnosed failure)."""
    from doctor.store.token_store import TokenStore

    home = resolve_home(options.home, os.environ)
    store = TokenStore(home, environ=os.environ, command="sidequest reauth-qb")
    flow = _Flow(console, options, home, resolve_claude_config(options.claude_config, os.environ), store)
    page = PageOutcome(False, NOT_RECONNECTED, "See the terminal window for what to do.")
    try:
        keys = _read_app_keys(flow)
        _open_listener(flow, keys.redirect_uri)
        reply = _wait_for_consent(flow, keys)
        current_realm, had_connection = _current_connection(store, keys.realm_id)
        _accept_company(flow, current_realm, reply.realm_id)
        token = _exchange_code(flow, keys, reply.code)
        company_name, environment = _check_company(
            console, flow.intuit, token.access_token, reply.realm_id, keys.environment
        )
        _save(console, store, token, reply.realm_id, environment)
        connected = _connected_words(had_connection)
        page = PageOutcome(
            True,
            f"Connected to {company_name or 'QuickBooks company ' + reply.realm_id}.",
            f"{connected}: SideQuest saved the new connection.",
        )
        _report_success(
            console,
            flow.env_path,
            token.refresh_token,
            reply.realm_id,
            environment,
            previous_realm=current_realm,
            company_name=company_name,
            connected=connected,
        )
        claude = _update_claude(console, flow.claude_path, flow.home, token.refresh_token, reply.realm_id, environment)
        if claude == "updated":
            console.say(RESTART_ADVICE)
            return EXIT_OK
        if claude == "failed":
            console.say(
                "Once Claude Desktop's config holds these values, quit Claude Desktop completely and open it "
                "again (closing the window is not enough).",
                err=True,
            )
        return EXIT_FAILED
    except _Stop as stop:
        page = stop.page
        if stop.interrupted and options.pass_interrupt:
            raise KeyboardInterrupt from None
        return EXIT_FAILED
    finally:
        if flow.listener is not None:
            flow.listener.finish(PageOutcome(page.success, console.clean(page.headline), console.clean(page.detail)))
            flow.listener.close()
        if flow.intuit is not None:
            flow.intuit.close()
        store.close()


# ---------------------------------------------------------------------------------------------
# steps


def _read_app_keys(flow: _Flow) -> _AppKeys:
    """The app's keys and the environment to connect in; says what is missing and stops otherwise."""
    from doctor.intuit.endpoints import normalise_environment
    from doctor.store.env_file import EnvFileError
    from doctor.store.token_store import StoreError

    console, env_path = flow.console, flow.env_path
    try:
        creds = flow.store.credentials()
    except (StoreError, EnvFileError) as exc:
        console.say(f"Cannot connect QuickBooks: {exc}", err=True)
        raise _Stop() from None
    console.know_client_id(creds.client_id)
    console.know("client_secret", creds.client_secret)
    console.know("refresh_token", creds.refresh_token)

    missing = creds.missing(APP_KEYS)
    environment = flow.options.environment or creds.environment
    if not environment:
        missing.append("QB_ENVIRONMENT")
    if missing:
        where = str(env_path) if env_path.exists() else f"{env_path} (the file does not exist)"
        advice = "Copy them from the SideQuest setup email into that file, then run `sidequest reauth-qb` again."
        if missing == ["QB_ENVIRONMENT"]:
            advice = (
                "Add QB_ENVIRONMENT=sandbox or QB_ENVIRONMENT=production to that file, or run "
                "`sidequest reauth-qb --environment production` (or sandbox)."
            )
        console.say(f"Cannot connect QuickBooks: {where} is missing {', '.join(missing)}.\n{advice}", err=True)
        raise _Stop()
    try:
        environment = normalise_environment(environment)
    except ValueError:
        console.say(
            f"Cannot connect QuickBooks: QB_ENVIRONMENT in {env_path} must be sandbox or production "
            f"(it is {environment!r}).",
            err=True,
        )
        raise _Stop() from None
    return _AppKeys(creds.client_id, creds.client_secret, creds.redirect_uri, creds.realm_id, environment)


def _open_listener(flow: _Flow, redirect_uri: str) -> None:
    """Bind the loopback listener where the reply will arrive, and make this attempt's state."""
    from doctor.commands.consent_listener import ConsentListener

    listen_port, listen_path, flow.loopback = _listening_plan(redirect_uri)
    events: queue.Queue = queue.Queue()
    try:
        listener = ConsentListener(listen_port, listen_path, events)
    except OSError as exc:
        if not flow.loopback:
            raise
        flow.console.say(
            f"Cannot wait for the QuickBooks sign-in: port {listen_port} on this computer (from "
            f"QB_REDIRECT_URI {redirect_uri}) cannot be used: {exc.strerror or exc}. If another program "
            "has it in use (perhaps another `sidequest reauth-qb` window), close it and try again.",
            err=True,
        )
        raise _Stop() from None
    flow.listener = listener
    # The hosted page finds this window by the port after the last "." (doctor.commands.consent_listener).
    flow.state = f"{secrets.token_urlsafe(24)}.{listener.port}"
    listener.start(flow.state)


def _wait_for_consent(flow: _Flow, keys: _AppKeys) -> ConsentReply:
    """Send the person to Intuit's consent page and wait for an accepted reply with a code."""
    from doctor.intuit.client import IntuitClient

    console, options = flow.console, flow.options
    flow.intuit = IntuitClient(environ=os.environ)
    consent_url = flow.intuit.authorize_url(keys.client_id, keys.redirect_uri, flow.state)
    try:
        _announce(console, consent_url, no_browser=options.no_browser, loopback=flow.loopback, timeout=options.timeout)
        flow.lines = read_stdin_lines()
        if not options.no_browser:
            _open_browser(console, consent_url)
        reply = _wait_for_reply(console, flow.listener.events, flow.lines, flow.state, options.timeout)
    except KeyboardInterrupt:
        console.say("\nStopped waiting for the QuickBooks sign-in. Nothing was changed.", err=True)
        raise _Stop(interrupted=True) from None
    if reply is None:
        console.say(
            f"No sign-in reply arrived within {options.timeout:g} seconds. Nothing was changed. "
            "Run `sidequest reauth-qb` again when you are ready to click Connect.",
            err=True,
        )
        raise _Stop()
    console.know("auth_code", reply.code)
    if reply.state_missing and not reply.error:
        _accept_address_without_state(flow)
    if reply.error:
        what = (
            "You chose not to connect QuickBooks (or Intuit cancelled the sign-in)"
            if reply.error == "access_denied"
            else f"Intuit refused the sign-in ({reply.error})"
        )
        console.say(
            f"{what}. Nothing was changed.\nTo try again, run `sidequest reauth-qb` and click Connect "
            "on the Intuit page.",
            err=True,
        )
        raise _Stop(f"{what}. Nothing was changed. Run sidequest reauth-qb again to retry.")
    return reply


def _accept_address_without_state(flow: _Flow) -> None:
    """Use a pasted address without `state` only when the person confirms it is from their own click.

    Without the state nothing ties the address to this attempt: it could be one someone sent,
    which would connect the connector to their QuickBooks company.
    """
    console = flow.console
    console.say(
        "The pasted address has no state= part, so SideQuest cannot tell that it comes from the sign-in "
        "this window started (it could be an address someone sent you). Use it only if you clicked "
        "Connect yourself just now.",
        err=True,
    )
    if flow.options.yes:
        console.say("Using it (--yes).", err=True)
        return
    if not stdin_is_terminal():
        console.say(
            "Nothing was changed. Paste the whole address, including state=, or run `sidequest reauth-qb --yes` "
            "to accept an address without it.",
            err=True,
        )
        raise _Stop("The pasted address could not be tied to this sign-in; nothing was changed.")
    console.say("Use this address? Type y and press Enter (anything else stops):", err=True)
    try:
        confirmed = answered_yes(flow.lines, time.monotonic() + max(flow.options.timeout, MIN_CONFIRM_SECONDS))
    except KeyboardInterrupt:
        confirmed = False
    if not confirmed:
        console.say("Did not use the pasted address. Nothing was changed.", err=True)
        raise _Stop("The pasted address was not used; nothing was changed.")


def _accept_company(flow: _Flow, current_realm: str | None, new_realm: str) -> None:
    """Go on only with the company the connector already uses, or one the person confirmed."""
    if not current_realm or new_realm == current_realm:
        return
    try:
        confirmed = _confirm_company_change(
            flow.console, flow.lines, current_realm, new_realm, yes=flow.options.yes, timeout=flow.options.timeout
        )
    except KeyboardInterrupt:
        flow.console.say("\nStopped. Nothing was changed.", err=True)
        raise _Stop("Stopped; nothing was changed. See the terminal window.", interrupted=True) from None
    if not confirmed:
        raise _Stop("You picked a different QuickBooks company; nothing was changed. See the terminal window.")


def _exchange_code(flow: _Flow, keys: _AppKeys, code: str):
    """Trade the code for the new chain (same redirect URI); the new tokens become known secrets."""
    from doctor.intuit.errors import IntuitError

    console = flow.console
    try:
        token = flow.intuit.exchange_code(keys.client_id, keys.client_secret, code, keys.redirect_uri)
    except IntuitError as exc:
        explanation = AFTER_EXCHANGE_REFUSAL.get(exc.kind, DIAGNOSIS_PLEASE)
        console.say(f"Could not finish connecting QuickBooks: {exc}. Nothing was changed.\n{explanation}", err=True)
        raise _Stop(f"{exc}. See the terminal window.") from None
    console.know("refresh_token", token.refresh_token)
    console.know("access_token", token.access_token)
    return token


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


def _announce(console: Console, consent_url: str, *, no_browser: bool, loopback: bool, timeout: float) -> None:
    # The address is the first line of standard output, alone, so a script (or a person
    # on another machine) can take it; the explanation goes to standard error around it.
    if no_browser:
        console.say("Open this address in a browser, sign in to QuickBooks and click Connect:", err=True)
    else:
        console.say(
            "Opening the QuickBooks sign-in page in your browser. If it does not open, "
            "copy this address into a browser:",
            err=True,
        )
    console.say(consent_url)
    where = (
        "This window receives the reply by itself"
        if loopback
        else "The SideQuest page you land on sends the reply to this window by itself"
    )
    console.say(
        f"{where}. If instead the browser stops on a page that says something went wrong, copy the "
        "whole address from its address bar, paste it here and press Enter. "
        f"Waiting up to {timeout:g} seconds (Ctrl+C to stop)...",
        err=True,
    )


def _open_browser(console: Console, url: str) -> None:
    """Open the platform browser without ever blocking or taking over the terminal."""
    import webbrowser

    if (
        sys.platform.startswith("linux")
        and not os.environ.get("BROWSER")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        # Without a display, webbrowser falls back to text browsers that would seize this terminal.
        console.say("No graphical browser here: open the address above on any device.", err=True)
        return

    def run() -> None:
        try:
            opened = webbrowser.get().open(url)
        except Exception:  # webbrowser.Error, OSError from a broken BROWSER command
            opened = False
        if not opened:
            console.say("Could not open a browser: copy the address above into one.", err=True)

    # Some "browsers" (BROWSER commands, xdg-open) only return when they exit.
    threading.Thread(target=run, name="open-browser", daemon=True).start()


def _wait_for_reply(console: Console, events: queue.Queue, lines: TerminalLines, state: str, timeout: float):
    """The first acceptable reply from the listener or the terminal; None when time runs out."""
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
            _explain_refusal(console, event)
        line = lines.get(0)
        if isinstance(line, str):
            verdict = paste.feed(line)
            if isinstance(verdict, ConsentReply):
                return verdict
            if isinstance(verdict, Refused):
                _explain_refusal(console, verdict)
            elif paste.wants_realm:
                console.say("Got the code. Now paste the company ID (the realmId number) and press Enter.", err=True)
            elif line.strip():
                console.say(
                    "That does not look like the sign-in address. Paste the whole address from the "
                    "browser's address bar (it contains code= and realmId=).",
                    err=True,
                )


def _explain_refusal(console: Console, refused) -> None:
    if refused.reason == "bad_realm":
        console.say(
            "Refused a sign-in reply whose company ID (realmId) is not a number; a real one is all digits. "
            "Nothing was changed. Still waiting: paste the whole address from the browser's address bar.",
            err=True,
        )
    elif refused.reason == "wrong_state":
        console.say(
            "Ignored a sign-in reply that does not belong to this attempt (it may come from an older "
            "window or another web page). Still waiting.",
            err=True,
        )
    else:
        console.say("Ignored an incomplete sign-in reply (no code or no company ID). Still waiting.", err=True)


def _current_connection(store, fallback: str | None) -> tuple[str | None, bool]:
    """(the company the connector works with now, whether it had a connection before this one)."""
    # Read again: the connector may have been reconfigured while the browser was open.
    try:
        credentials = store.credentials()
    except Exception:
        return fallback, True
    return credentials.realm_id, bool(credentials.refresh_token)


def _connected_words(had_connection: bool) -> str:
    # "again" only where there was a connection: on a first connection (setup, or keys typed into .env by
    # hand) it would claim a history the user does not have.
    return "QuickBooks is connected again" if had_connection else "QuickBooks is connected"


def _confirm_company_change(
    console: Console, lines: TerminalLines, current: str, new: str, *, yes: bool, timeout: float
) -> bool:
    console.say(
        f"You connected a different QuickBooks company: company ID {new}. The connector works with "
        f"company ID {current} now. Continuing switches Claude to the books of company {new}.",
        err=True,
    )
    if yes:
        console.say("Switching companies (--yes).", err=True)
        return True
    if not stdin_is_terminal():
        console.say(
            "Nothing was changed. Run `sidequest reauth-qb --yes` to switch companies, or run it again "
            f"and pick company {current} on the Intuit page.",
            err=True,
        )
        return False
    console.say(f"Switch to company {new}? Type y and press Enter (anything else keeps company {current}):", err=True)
    if answered_yes(lines, time.monotonic() + max(timeout, MIN_CONFIRM_SECONDS), POLL_SECONDS):
        return True
    console.say("Kept the current company. Nothing was changed.", err=True)
    return False


def _check_company(
    console: Console, intuit, access_token: str, realm_id: str, environment: str
) -> tuple[str | None, str]:
    """(company name, the environment the new chain really works in), by one companyinfo read.

    A chain only works in the environment of the app's keys (development keys: sandbox). If
    the chosen environment is refused but the other one answers, recording the chosen one
    would leave the connector broken from its first call, so the one that works is saved.
    """
    from doctor.intuit.endpoints import ENVIRONMENTS
    from doctor.intuit.errors import IntuitError

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
            console.say(
                f"Note: these app keys work with QuickBooks {other}, not {environment}, so SideQuest "
                f"saved QB_ENVIRONMENT={other}.",
                err=True,
            )
            return name, other
    console.say(
        f"Note: could not read the company's name to double-check the connection ({first_error}). "
        "The new connection is saved anyway; `sidequest doctor` checks it in detail.",
        err=True,
    )
    return None, environment


def _save(console: Console, store, token, realm_id: str, environment: str) -> None:
    from doctor.store.env_file import EnvFileError
    from doctor.store.token_store import LockTimeout, StoreError

    try:
        store.save_consent(token, realm_id=realm_id, environment=environment, wait=SAVE_LOCK_WAIT_SECONDS)
        return
    except LockTimeout as exc:
        console.say(
            f"Could not save the new QuickBooks connection: {exc}.\nWait for that program to finish "
            "(or restart the computer), then run `sidequest reauth-qb` again.",
            err=True,
        )
    except (StoreError, EnvFileError) as exc:
        console.say(
            f"Could not save the new QuickBooks connection: {exc}.\nFix that, then run `sidequest reauth-qb` again.",
            err=True,
        )
    raise _Stop("Saving failed; see the terminal window.")


def _paste_instructions(env_path: Path, refresh_token: str, realm_id: str, environment: str) -> str:
    from doctor.redaction import redacted_form

    token = redacted_form("refresh_token", refresh_token)
    return (
        f'    "QB_REFRESH_TOKEN": "{token}"   (the full value is in {env_path}, key QB_REFRESH_TOKEN)\n'
        f'    "QB_REALM_ID": "{realm_id}"\n'
        f'    "QB_ENVIRONMENT": "{environment}"'
    )


def _update_claude(
    console: Console, claude_path: Path, home: Path, refresh_token: str, realm_id: str, environment: str
) -> str:
    """Push the three synced values into Claude Desktop's entry; explain what to do when it cannot.

    Returns "updated" (the entry holds them), "desktop_running" (refused: Claude Desktop runs and
    would undo it; the user is told to quit it and run `doctor --fix`) or "failed".
    """
    from doctor.claude_desktop.config import CONNECTOR_NAME, ClaudeConfigError
    from doctor.claude_desktop.update import DesktopRunning, update_connector_env

    env_path = home / ".env"
    updates = {"QB_REFRESH_TOKEN": refresh_token, "QB_REALM_ID": realm_id, "QB_ENVIRONMENT": environment}
    values = _paste_instructions(env_path, refresh_token, realm_id, environment)
    try:
        result = update_connector_env(claude_path, updates, keep_copy_in=home)
    except DesktopRunning:
        console.say(
            f"{DESKTOP_RUNNING} The new connection is saved in {env_path}; Claude Desktop's entry still has "
            f"the old one.\n{quit_claude_then(FIX)}",
            err=True,
        )
        return "desktop_running"
    except ClaudeConfigError as exc:
        if exc.reason in ("no_connector", "missing"):
            found = "has no SideQuest connector entry" if exc.reason == "no_connector" else "does not exist yet"
            console.say(
                f"Claude Desktop's config ({claude_path}) {found}, so Claude cannot start the connector.\n"
                "Add the connector as described in the SideQuest setup instructions: an entry named "
                f'"{CONNECTOR_NAME}" under "mcpServers" (in Claude Desktop: Settings > Developer > Edit Config), '
                'with these values in its "env":\n' + values,
                err=True,
            )
        else:
            console.say(
                f"SideQuest did not change Claude Desktop's config: {exc}\n"
                f'The file was left exactly as it was. Fix it, or paste these values by hand into the "env" '
                f'of the "{CONNECTOR_NAME}" entry in {claude_path}:\n' + values + "\n"
                "After fixing the file, `sidequest doctor --fix` can also copy them in for you.",
                err=True,
            )
        return "failed"
    if result.changed:
        backup = f" (previous version kept as {result.backup_path})" if result.backup_path else ""
        console.say(
            f'Updated Claude Desktop\'s config, entry "{result.entry_name}": '
            f"{', '.join(sorted(result.changed))}{backup}."
        )
    else:
        console.say(f'Claude Desktop\'s config already had these values (entry "{result.entry_name}").')
    return "updated"


def _report_success(
    console: Console,
    env_path: Path,
    refresh_token: str,
    realm_id: str,
    environment: str,
    *,
    previous_realm: str | None,
    company_name: str | None,
    connected: str,
) -> None:
    from doctor.redaction import redacted_form

    switched = f" (was {previous_realm})" if previous_realm and previous_realm != realm_id else ""
    console.say(
        f"{connected}.\n"
        + (f"  company:             {company_name}\n" if company_name else "")
        + f"  company ID (realm):  {realm_id}{switched}\n"
        f"  environment:         {environment}\n"
        f"  refresh token:       {redacted_form('refresh_token', refresh_token)} (saved in {env_path})"
    )
