"""`sidequest setup`: the first five minutes for someone with the app keys from SideQuest and nothing else.

Why: before this, a new user put the keys into `.env` by hand, ran `reauth-qb`, edited Claude
Desktop's config and set a reminder. This command does each of those in order and says what it
did at every step:

1. the app keys and the environment: asked for (the secret with hidden input) or given as
   options (`--client-id`, `--client-secret-stdin`, `--environment`);
2. the keys are checked with Intuit before anything is saved: a refresh with a dummy token is
   answered `invalid_client` for keys Intuit does not know and `invalid_grant` for keys it
   accepts (OAuth 2.0 authenticates the client first). Spaces or quotes pasted around a key
   are removed, and said so;
3. `.env` gets the keys (under the lock, every other line kept, mode 0600); keys already there
   are replaced only after a confirmation or `--yes`;
4. Claude Desktop's config gets the connector's entry (`command` from `--connector-command`,
   else `qb-distributor-mcp` on PATH, else it says what to pass and writes no entry). An existing
   entry that starts another program is pointed at this one only after a confirmation or `--yes`
   (as for keys; the backup keeps the old file). Nothing is written while Claude Desktop runs (it
   would undo it): setup says to quit it and run setup again. This comes
   before the consent so that `reauth-qb` pushes the new connection into that entry itself;
5. the consent flow of `reauth-qb` (skipped with `--no-consent`);
6. the keep-alive (`sidequest keepalive on`), offered on a terminal, done with `--yes`;
7. a live `sidequest doctor` run and its one-line verdict.

Ctrl+C at any step leaves what was saved valid (each file is replaced atomically) and says
what is left. Every line printed goes through the redactor, which knows the client secret.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from doctor.advice import DESKTOP_RUNNING, SETUP, quit_claude_then
from doctor.claude_desktop.paths import resolve_claude_config
from doctor.commands.terminal_input import stdin_is_terminal
from doctor.console import Console
from doctor.store.env_lock import DEFAULT_LOCK_WAIT
from doctor.store.home import resolve_home

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CONNECTOR_PROGRAM = "qb-distributor-mcp"
# A refresh token no chain ever had: Intuit answers it with invalid_grant once the keys pass.
KEY_CHECK_TOKEN = "sidequest-setup-key-check"
KEY_NAMES = ("QB_CLIENT_ID", "QB_CLIENT_SECRET", "QB_ENVIRONMENT")
ENTRY_ENV_KEYS = ("QB_CLIENT_ID", "QB_CLIENT_SECRET", "QB_ENVIRONMENT", "QB_REFRESH_TOKEN", "QB_REALM_ID")
STEPS = 7


class SetupUsageError(Exception):
    """The options cannot work (no terminal to ask and no option given); the CLI exits 2."""


class _Output:
    """Setup's words, through the one console (doctor/console.py), which learns every secret met."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.secrets: list[tuple[str, str]] = []
        self.client_id: str | None = None

    def know(self, kind: str, value: str | None) -> None:
        if value:
            self.secrets.append((kind, value))
            self.console.know(kind, value)

    def say(self, text: str, *, err: bool = False) -> None:
        self.console.know_client_id(self.client_id)
        self.console.say(text, err=err)

    def step(self, number: int, title: str) -> None:
        self.say(f"\n[{number}/{STEPS}] {title}")


def clean_key(name: str, raw: str) -> tuple[str, str | None]:
    """(the key without what a paste adds around it, a note saying what was removed, or None)."""
    value = raw.strip()
    removed = []
    if value != raw:
        removed.append("spaces or line breaks")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
        removed.append("quotes")
    note = f"Removed {' and '.join(removed)} pasted around the {name}." if removed else None
    return value, note


def key_problem(name: str, value: str) -> str | None:
    if not value:
        return f"The {name} is empty."
    if any(ch.isspace() for ch in value):
        return f"The {name} has a space or line break inside it; copy it again from the SideQuest setup email."
    if not value.isascii() or not value.isprintable():
        return f"The {name} has characters an Intuit key never has; copy it again from the SideQuest setup email."
    return None


def check_keys_with_intuit(client_id: str, client_secret: str) -> bool:
    """True when Intuit accepts the keys, False when it does not; IntuitError when it cannot tell."""
    from doctor.intuit.client import IntuitClient
    from doctor.intuit.errors import IntuitError

    with IntuitClient(environ=os.environ, timeout=15.0) as client:
        try:
            client.refresh(client_id, client_secret, KEY_CHECK_TOKEN)
        except IntuitError as exc:
            if exc.kind == "invalid_grant":
                return True
            if exc.kind == "invalid_client":
                return False
            raise
    return True  # a token for a dummy refresh token would be odd, but the keys clearly passed


def _read_env(home: Path):
    from doctor.store.env_file import EnvFileError, read_env_file

    try:
        return read_env_file(home / ".env")
    except EnvFileError as exc:
        if exc.reason == "missing":
            return None
        raise


def save_keys(home: Path, wanted: dict[str, str], may_replace: set[str]) -> tuple[list[str], list[str]]:
    """Write the keys into `.env` under the lock; (keys written, keys kept because not confirmed)."""
    from doctor.store.env_file import update_env_file
    from doctor.store.token_store import TokenStore

    store = TokenStore(home, environ={}, command="sidequest setup")
    with store.locked(wait=DEFAULT_LOCK_WAIT):
        current = _read_env(home)  # again, under the lock: someone may have written meanwhile
        updates: dict[str, str | None] = {}
        kept: list[str] = []
        for key, value in wanted.items():
            old = current.get(key) if current is not None else None
            if old == value:
                continue
            if old and key not in may_replace:
                kept.append(key)
                continue
            updates[key] = value
        if kept:
            return [], kept  # a new secret beside an old client ID would be a pair that never works
        if updates:
            update_env_file(home / ".env", updates)
    return sorted(updates), kept


def find_connector(option: str | None) -> tuple[str | None, str | None]:
    """(the connector program's full path, or None and why not)."""
    from doctor.claude_desktop.paths import resolve_command

    if option:
        found = resolve_command(option)
        if found is None:
            return None, f"--connector-command {option}: no executable program there."
        return str(Path(found).absolute()), None
    import shutil

    found = shutil.which(CONNECTOR_PROGRAM)
    if found is None:
        return None, (
            f"The connector program `{CONNECTOR_PROGRAM}` is not on PATH, so SideQuest does not know what Claude "
            "Desktop should start. Run `sidequest setup --connector-command /full/path/to/qb-distributor-mcp` "
            "(the path the SideQuest installer printed), or add the entry by hand."
        )
    return str(Path(found).absolute()), None


def current_entry(claude_path: Path):
    """The connector's entry in Claude Desktop's config now, or None (no file, no entry, unreadable)."""
    from doctor.claude_desktop.config import ClaudeConfigError, load_claude_config

    try:
        return load_claude_config(claude_path).connector()
    except ClaudeConfigError:
        return None


def update_claude(claude_path: Path, home: Path, command: str, *, change_command: bool = False) -> str:
    """Create or update the connector's entry; returns what was done. Raises ClaudeConfigError.

    `change_command`: the existing entry starts another program and the user agreed to start
    `command` instead (its args go with the old program). Every other entry stays as it was.
    """
    from doctor.claude_desktop.config import SYNCED_KEYS
    from doctor.claude_desktop.update import update_connector_env

    env_file = _read_env(home)
    values = {key: env_file.get(key) for key in ENTRY_ENV_KEYS} if env_file is not None else {}
    entry_env = {key: value for key, value in values.items() if value}
    updates = {key: entry_env[key] for key in SYNCED_KEYS if key in entry_env}
    if Path(home).absolute() != resolve_home(None, {}).absolute():
        # The connector finds .env through SIDEQUEST_HOME when it is not in the default place.
        entry_env["SIDEQUEST_HOME"] = str(Path(home).absolute())
    result = update_connector_env(
        claude_path,
        updates,
        create_entry={"command": command, "args": [], "env": entry_env},
        launch={"command": command, "args": []} if change_command else None,
        keep_copy_in=home,
    )
    created = bool(result.changed) and all(old is None for old, _ in result.changed.values())
    entry = current_entry(claude_path)
    note = ""
    if "command" in result.launch_changed:
        was = result.launch_changed["command"][0]
        note = f" It now starts {command!r} (it started {was!r})."
    elif entry is not None and entry.command and entry.command != command and not created:
        note = (
            f" It starts {entry.command!r}, not {command!r}; SideQuest left that as it is "
            "(run `sidequest setup --yes` to change it)."
        )
    if not result.anything_changed:
        return f'Claude Desktop\'s entry "{result.entry_name}" already had these values.{note}'
    backup = f" (previous version kept as {result.backup_path})" if result.backup_path else ""
    verb = "Added" if created and not result.launch_changed else "Updated"
    return f'{verb} Claude Desktop\'s entry "{result.entry_name}" in {claude_path}{backup}.{note}'


def may_change_command(out: "_Output", claude_path: Path, command: str, yes: bool) -> bool:
    """Does the user agree that the existing entry starts `command` instead of its program? (as for keys)"""
    entry = current_entry(claude_path)
    if entry is None or entry.command is None or entry.command == command:
        return False
    if yes:
        return True
    question = f'Claude Desktop\'s entry "{entry.name}" starts {entry.command!r}. Start {command!r} instead?'
    if stdin_is_terminal():
        import click

        return click.confirm(question, err=True)
    out.say(f'Claude Desktop\'s entry "{entry.name}" starts {entry.command!r}; keeping it (add --yes to change it).')
    return False


def run_setup(
    settings: Any,
    *,
    client_id: str | None,
    secret_from_stdin: bool,
    environment: str | None,
    connector_command: str | None,
    no_consent: bool,
    yes: bool,
) -> int:
    out = _Output(settings.console)
    home = resolve_home(settings.home, os.environ)
    claude_path = resolve_claude_config(settings.claude_config, os.environ)
    done: list[str] = []
    left = [
        "save the app keys (`sidequest setup`)",
        "add the connector to Claude Desktop",
        "connect QuickBooks (`sidequest reauth-qb`)",
        "turn on the keep-alive (`sidequest keepalive on`)",
    ]
    import click

    try:
        return _run(
            out, settings, home, claude_path, client_id_option=client_id, secret_from_stdin=secret_from_stdin,
            environment=environment, connector_command=connector_command, no_consent=no_consent, yes=yes,
            done=done, left=left,
        )  # fmt: skip
    except (KeyboardInterrupt, click.Abort):  # click's prompts turn Ctrl+C into Abort
        out.say("\nStopped. Everything saved so far is complete and valid.", err=True)
        if done:
            out.say("Done: " + "; ".join(done) + ".", err=True)
        if left:
            out.say("Left to do: " + "; ".join(left) + ". Run `sidequest setup` again to finish.", err=True)
        return EXIT_FAILED


def _ask_keys(out: _Output, client_id: str | None, secret_from_stdin: bool) -> tuple[str, str]:
    import click

    terminal = stdin_is_terminal()
    if client_id is None:
        if not terminal:
            raise SetupUsageError("no terminal to ask for the client ID: pass --client-id")
        client_id = click.prompt("Client ID (from the SideQuest setup email)", err=True)
    if secret_from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n") if sys.stdin else ""
    elif terminal:
        secret = click.prompt("Client secret (not shown while you type or paste)", hide_input=True, err=True)
    else:
        raise SetupUsageError(
            "no terminal to ask for the client secret: pass it on standard input with --client-secret-stdin"
        )
    return client_id, secret


class _Setup:
    """One run of setup: the options, what the steps have learnt so far, and what is done and left.

    The steps below run in order; each says what it did. The first three stop setup (they return an
    exit code) when nothing can be saved; the others note a failure and let the rest go on.
    """

    def __init__(
        self,
        out: _Output,
        settings: Any,
        home: Path,
        claude_path: Path,
        *,
        client_id_option: str | None,
        secret_from_stdin: bool,
        environment: str | None,
        connector_command: str | None,
        no_consent: bool,
        yes: bool,
        done: list[str],
        left: list[str],
    ) -> None:
        self.out, self.settings, self.home, self.claude_path = out, settings, home, claude_path
        self.client_id_option, self.secret_from_stdin = client_id_option, secret_from_stdin
        self.environment, self.connector_command = environment, connector_command
        self.no_consent, self.yes = no_consent, yes
        self.done, self.left = done, left
        self.client_id = self.client_secret = ""
        self.existing: Any = None  # .env as it was before setup, or None
        self.keys_changed = False
        self.failed = False


def _run(out: _Output, settings: Any, home: Path, claude_path: Path, **options: Any) -> int:
    run = _Setup(out, settings, home, claude_path, **options)
    for stopping_step in (_the_keys, _check_with_intuit, _save_the_keys):
        code = stopping_step(run)
        if code is not None:
            return code
    _claude_entry(run)
    _connect(run)
    _keepalive(run)
    return _check_everything(run)


def _the_keys(run: _Setup) -> int | None:
    """Step 1: the client ID, the secret (hidden) and the environment, cleaned and checked for shape."""
    import click

    from doctor.store.env_file import EnvFileError

    out = run.out
    out.step(1, "The app keys")
    raw_id, raw_secret = _ask_keys(out, run.client_id_option, run.secret_from_stdin)
    out.know("client_secret", raw_secret)
    run.client_id, id_note = clean_key("client ID", raw_id)
    run.client_secret, secret_note = clean_key("client secret", raw_secret)
    out.know("client_secret", run.client_secret)
    out.client_id = run.client_id
    for note in (id_note, secret_note):
        if note:
            out.say(note)
    for problem in (key_problem("client ID", run.client_id), key_problem("client secret", run.client_secret)):
        if problem:
            out.say(f"{problem} Nothing was saved.", err=True)
            return EXIT_FAILED
    try:
        run.existing = _read_env(run.home)
    except EnvFileError as exc:
        out.say(f"Cannot use {run.home / '.env'}: {exc}. Nothing was saved.", err=True)
        return EXIT_FAILED
    if run.environment is None:
        current = run.existing.get("QB_ENVIRONMENT") if run.existing is not None else None
        if stdin_is_terminal():
            run.environment = click.prompt(
                "QuickBooks environment: production for your real books, sandbox for a test company",
                type=click.Choice(["production", "sandbox"]),
                default=current if current in ("production", "sandbox") else "production",
                err=True,
            )
        elif current in ("production", "sandbox"):
            run.environment = current
        else:
            raise SetupUsageError("no terminal to ask for the environment: pass --environment production (or sandbox)")
    out.say(f"Client ID {run.client_id}, client secret (hidden), environment {run.environment}.")
    return None


def _check_with_intuit(run: _Setup) -> int | None:
    """Step 2: Intuit accepts the keys (a refresh with a dummy token), before anything is saved."""
    from doctor.intuit.errors import IntuitError

    out = run.out
    out.step(2, "Checking the keys with Intuit")
    try:
        accepted = check_keys_with_intuit(run.client_id, run.client_secret)
    except IntuitError as exc:
        out.say(
            f"Could not check the keys with Intuit: {exc}. Nothing was saved; try again in a few minutes.", err=True
        )
        return EXIT_FAILED
    if not accepted:
        out.say(
            "Intuit does not accept these keys (invalid_client): the client ID or the client secret is not the "
            "one in the SideQuest setup email. Nothing was saved. Copy both again and run `sidequest setup`.",
            err=True,
        )
        return EXIT_FAILED
    out.say("Intuit accepts these keys.")
    return None


def _save_the_keys(run: _Setup) -> int | None:
    """Step 3: the keys into .env under the lock; other values already there are replaced only if agreed."""
    import click

    from doctor.store.env_file import EnvFileError
    from doctor.store.token_store import LockTimeout, StoreError

    out, home, existing = run.out, run.home, run.existing
    out.step(3, f"Saving the keys in {home / '.env'}")
    assert run.environment is not None
    wanted = {"QB_CLIENT_ID": run.client_id, "QB_CLIENT_SECRET": run.client_secret, "QB_ENVIRONMENT": run.environment}
    differing = [
        key
        for key, value in wanted.items()
        if existing is not None and existing.get(key) and existing.get(key) != value
    ]
    may_replace: set[str] = set()
    if differing:
        if run.yes:
            may_replace = set(differing)
        elif stdin_is_terminal():
            if click.confirm(f".env already has other values for {', '.join(differing)}. Replace them?", err=True):
                may_replace = set(differing)
        else:
            out.say(f".env already has other values for {', '.join(differing)}; keeping them (add --yes to replace).")
    try:
        written, kept = save_keys(home, wanted, may_replace)
    except (LockTimeout, StoreError, EnvFileError, OSError) as exc:
        out.say(f"Could not save the keys: {exc}. Nothing was saved.", err=True)
        return EXIT_FAILED
    if kept:
        out.say(f"Kept the values already in .env for {', '.join(kept)}; nothing was saved.", err=True)
        return EXIT_FAILED
    out.say(f"Saved {', '.join(written)} (mode 0600; every other line kept)." if written else ".env already had them.")
    run.left.pop(0)
    run.done.append(f"the app keys are in {home / '.env'}")
    run.keys_changed = bool({"QB_CLIENT_ID", "QB_CLIENT_SECRET"} & set(written)) and existing is not None
    return None


def _claude_entry(run: _Setup) -> None:
    """Step 4: create or update the connector's entry in Claude Desktop's config (never while it runs)."""
    out = run.out
    out.step(4, "Claude Desktop's connector entry")
    command, why_not = find_connector(run.connector_command)
    if command is None:
        out.say(f"{why_not} No entry was written.", err=True)
        run.failed = True
        return
    from doctor.claude_desktop.config import ClaudeConfigError
    from doctor.claude_desktop.update import DesktopRunning

    try:
        change = may_change_command(out, run.claude_path, command, run.yes)
        out.say(update_claude(run.claude_path, run.home, command, change_command=change))
        run.left.remove("add the connector to Claude Desktop")
        run.done.append("Claude Desktop has the connector's entry")
    except DesktopRunning:
        out.say(f"{DESKTOP_RUNNING} {quit_claude_then(SETUP)}", err=True)
        run.failed = True
    except ClaudeConfigError as exc:
        out.say(f"SideQuest did not change Claude Desktop's config: {exc} It was left exactly as it was.", err=True)
        run.failed = True


def _connect(run: _Setup) -> None:
    """Step 5: the consent, through reauth-qb's own flow (skipped with --no-consent)."""
    out, home = run.out, run.home
    out.step(5, "Connecting QuickBooks")
    before = _read_env(home)
    stamp = before.get("QB_TOKEN_REFRESHED_AT") if before is not None else None
    if run.no_consent:
        if run.keys_changed and before is not None and before.get("QB_REFRESH_TOKEN"):
            out.say("The saved connection was made with the previous keys; run `sidequest reauth-qb` to connect again.")
        else:
            out.say("Skipped (--no-consent). Run `sidequest reauth-qb` to connect QuickBooks.")
        return
    from doctor.commands.reauth import ReauthOptions, run_reauth

    # reauth-qb writes through the same console, which learns the new tokens and the code it meets.
    options = ReauthOptions(
        home=run.settings.home,
        claude_config=run.settings.claude_config,
        environment=run.environment,
        timeout=300.0,
        yes=run.yes,
        pass_interrupt=True,  # Ctrl+C while waiting for the consent stops setup here
    )
    run_reauth(run.settings.console, options)
    after = _read_env(home)
    # reauth-qb's exit code also counts the Claude Desktop step; the saved chain is what counts here.
    connected = after is not None and after.get("QB_REFRESH_TOKEN") and after.get("QB_TOKEN_REFRESHED_AT") != stamp
    if connected:
        out.know("refresh_token", after.get("QB_REFRESH_TOKEN"))
        run.left.remove("connect QuickBooks (`sidequest reauth-qb`)")
        run.done.append("QuickBooks is connected")
    else:
        out.say("QuickBooks is not connected yet; run `sidequest reauth-qb` when you are ready.", err=True)
        run.failed = True


def _keepalive(run: _Setup) -> None:
    """Step 6: offer `keepalive on` (yes by default on a terminal; --yes turns it on)."""
    import click

    from doctor.commands.keepalive import DEFAULT_EVERY_DAYS, KeepaliveRefused, check_can_install

    out = run.out
    out.step(6, "Keep-alive")
    try:
        check_can_install(run.home)
    except KeepaliveRefused:
        out.say("Not yet: it needs a QuickBooks connection. After `sidequest reauth-qb`, run `sidequest keepalive on`.")
        return
    wanted_on = run.yes or (
        stdin_is_terminal()
        and click.confirm(
            f"Let this computer refresh the QuickBooks connection every {DEFAULT_EVERY_DAYS} days by itself "
            "(sidequest keepalive on)?",
            default=True,
            err=True,
        )
    )
    if not wanted_on:
        out.say("Not turned on. Run `sidequest keepalive on` whenever you like.")
        return
    from doctor.commands.keepalive import _Printer, turn_on

    if turn_on(run.home, DEFAULT_EVERY_DAYS, os.environ, _Printer(run.settings.console, run.home)) == EXIT_OK:
        run.left.remove("turn on the keep-alive (`sidequest keepalive on`)")
        run.done.append("the keep-alive is on")
    else:
        run.failed = True


def _check_everything(run: _Setup) -> int:
    """Step 7: a live `sidequest doctor` and its one-line verdict; the exit code of the whole setup."""
    out = run.out
    out.step(7, "Checking everything (sidequest doctor)")
    verdict, cause = _doctor_verdict(run.settings)
    out.say(verdict)
    if run.left:
        out.say("Left to do: " + "; ".join(run.left) + ".")
    if cause == "healthy":
        return EXIT_FAILED if run.failed else EXIT_OK
    if run.no_consent and cause == "not_configured" and not run.failed:
        return EXIT_OK  # asked not to connect yet: the doctor can only say so
    return EXIT_FAILED


def _doctor_verdict(settings: Any) -> tuple[str, str]:
    from doctor.plugins import build_plugins
    from doctor.session import build_context, execute

    ctx = build_context(settings.home, settings.claude_config)
    try:
        run = execute(ctx, build_plugins(ctx.environ), timeout=20.0)
    finally:
        ctx.close()
    diagnosis = run.report.diagnosis
    text = f"Doctor: {diagnosis.headline} (cause: {diagnosis.cause}; `sidequest doctor` shows the details)"
    return run.redactor.check(run.redactor.redact_text(text)), diagnosis.cause
