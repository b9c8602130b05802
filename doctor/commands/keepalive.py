"""`sidequest keepalive on|off|status [--every DAYS]`: let the platform's scheduler run refresh-qb.

Why: the commonest way a QuickBooks connection dies is Intuit's 100-day idle limit, and any
refresh resets that clock. `on` installs one job with the platform's own scheduler (macOS
launchd, Windows Task Scheduler, Linux a systemd user timer or else the crontab; see
doctor/commands/schedulers.py) that runs this very sidequest program's `refresh-qb` for this
connector home every DAYS days; a second `on` updates it. `off` removes exactly that job.
`status` asks the scheduler what it holds and shows the last runs refresh-qb recorded
(doctor/store/run_log.py). What was installed is also recorded in the home
(doctor/store/keepalive_record.py) for the doctor's offline `keepalive` probe.

The platform is the one Python runs on, unless `SIDEQUEST_PLATFORM` (darwin, windows or
linux) says otherwise: that is how the tests drive all three schedulers on one machine, with
fake scheduler tools on PATH.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from doctor.commands.schedulers import (
    Cron,
    Found,
    Job,
    Launchd,
    Scheduler,
    SchedulerError,
    Schtasks,
    Systemd,
    describe_schedule,
)
from doctor.console import Console
from doctor.store.home import resolve_home

PLATFORM_ENV = "SIDEQUEST_PLATFORM"
PLATFORMS = ("darwin", "windows", "linux")
DEFAULT_EVERY_DAYS = 7
MAX_EVERY_DAYS = 30
EXIT_OK, EXIT_FAILED = 0, 1
REAUTH = "sidequest reauth-qb"


class KeepaliveRefused(Exception):
    """`on` will not install: the connector is not set up, or the chain is known to be dead."""


class PlatformError(ValueError):
    """SIDEQUEST_PLATFORM names no platform we know."""


def current_platform(environ: Mapping[str, str]) -> str:
    chosen = (environ.get(PLATFORM_ENV) or "").strip().lower()
    if chosen:
        if chosen not in PLATFORMS:
            raise PlatformError(f"{PLATFORM_ENV} must be one of {', '.join(PLATFORMS)}, not {chosen!r}")
        return chosen
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform.startswith(("win", "cygwin")):
        return "windows"
    return "linux"


def sidequest_program(argv0: str | None = None) -> tuple[str, ...]:
    """The absolute command that starts this sidequest: its console script, else this Python.

    Run as `sidequest ...` the console script's path is argv[0]; run as `python -m
    doctor.commands.cli` (tests, a checkout) this interpreter with `-m` starts the same code.
    """
    name = sys.argv[0] if argv0 is None else argv0
    path = Path(name)
    if path.stem.lower() == "sidequest" and path.suffix.lower() in ("", ".exe"):
        if not path.exists() and path.with_suffix(".exe").exists():
            path = path.with_suffix(".exe")  # Windows launchers may report the name without .exe
        if path.is_file():
            return (str(path.absolute()),)
    return (str(Path(sys.executable).absolute()), "-m", "doctor.commands.cli")


def job_for(home: Path, every_days: int, program: tuple[str, ...] | None = None) -> Job:
    argv = (*(program or sidequest_program()), "--home", str(home.absolute()), "refresh-qb")
    return Job(argv, every_days)


def _home_folder(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("HOME") or Path.home())


def schedulers_for(platform: str, environ: Mapping[str, str]) -> list[Scheduler]:
    """The schedulers a job of ours may live in on this platform, the one `on` prefers first."""
    if platform == "darwin":
        return [Launchd(_home_folder(environ), os.getuid() if hasattr(os, "getuid") else 0)]
    if platform == "windows":
        import tempfile

        today = datetime.now().strftime("%Y-%m-%d")  # the task's start is local time
        return [Schtasks(Path(tempfile.gettempdir()), today)]
    xdg = environ.get("XDG_CONFIG_HOME")
    config = Path(xdg) if xdg and os.path.isabs(xdg) else _home_folder(environ) / ".config"
    systemd, cron = Systemd(config), Cron()
    return [systemd, cron] if Systemd.available() else [cron, systemd]


# ---------------------------------------------------------------------------------------------


class _Printer:
    """Prints through the one console (doctor/console.py): nothing here holds a secret, but there is one path out."""

    def __init__(self, console: Console, home: Path) -> None:
        self.console = console
        try:
            from doctor.store.env_file import read_env_file

            env = read_env_file(home / ".env")
        except Exception:
            return
        for key, kind in (("QB_REFRESH_TOKEN", "refresh_token"), ("QB_CLIENT_SECRET", "client_secret")):
            console.know(kind, env.get(key))
        console.know_client_id(env.get("QB_CLIENT_ID"))

    def say(self, text: str, *, err: bool = False) -> None:
        self.console.say(text, err=err)


def check_can_install(home: Path) -> None:
    """Refuse `on` for a connector that is not set up, or whose chain is known to be dead."""
    from doctor.store.env_file import EnvFileError
    from doctor.store.run_log import CHAIN_DEAD, failure_outlived, last_run
    from doctor.store.token_store import StoreError, TokenStore

    env_path = home / ".env"
    try:
        creds = TokenStore(home, environ={}).credentials()
    except (StoreError, EnvFileError) as exc:
        raise KeepaliveRefused(f"{exc}. Run `sidequest setup` first.") from None
    missing = creds.missing()
    if missing:
        raise KeepaliveRefused(
            f"the connector is not set up: {env_path} is missing {', '.join(missing)}. "
            "Run `sidequest setup` (or `sidequest reauth-qb` when only the connection is missing) first."
        )
    now = datetime.now(timezone.utc)
    for when, what in ((creds.hard_expires_at, "five-year"), (creds.expires_at, "100-day")):
        if when is not None and when <= now:
            raise KeepaliveRefused(
                f"the QuickBooks connection already ended on {when:%Y-%m-%d} (Intuit's {what} limit), so "
                f"there is nothing left to keep alive. Run `{REAUTH}` to connect again, then "
                "`sidequest keepalive on`."
            )
    run = last_run(home)
    if run is not None and run.outcome in CHAIN_DEAD and not failure_outlived(run, creds.refreshed_at):
        raise KeepaliveRefused(
            f"the last refresh ({run.at:%Y-%m-%d %H:%M} UTC) was refused by Intuit ({run.outcome}): the "
            f"connection is gone. Run `{REAUTH}` to connect again, then `sidequest keepalive on`."
        )


def turn_on(home: Path, every_days: int, environ: Mapping[str, str], out: _Printer) -> int:
    from doctor.store.keepalive_record import KeepaliveRecord, write_record

    try:
        check_can_install(home)
    except KeepaliveRefused as exc:
        out.say(f"Did not turn on the keep-alive: {exc}", err=True)
        return EXIT_FAILED
    platform = current_platform(environ)
    preferred, *others = schedulers_for(platform, environ)
    job = job_for(home, every_days)
    try:
        # A job left in the other Linux scheduler (systemd came or went) would run twice as often.
        for other in others:
            try:
                if other.remove() is not None:
                    out.say(f"Removed the earlier keep-alive from the {other.title}.")
            except SchedulerError:
                pass  # that scheduler is not usable here, so nothing of ours runs in it
        before = preferred.find()
        found = preferred.install(job)
    except SchedulerError as exc:
        out.say(f"Could not turn on the keep-alive: {exc}. Nothing else was changed.", err=True)
        return EXIT_FAILED
    except OSError as exc:
        out.say(f"Could not turn on the keep-alive: {exc.strerror or exc}. Nothing else was changed.", err=True)
        return EXIT_FAILED
    record = KeepaliveRecord(
        found.scheduler, found.where, found.files, every_days, datetime.now(timezone.utc), job.argv
    )
    try:
        write_record(home, record)
    except OSError as exc:
        out.say(f"Note: could not record the keep-alive in {home}: {exc.strerror or exc}.", err=True)
    if before is None:
        verb = "on"
    elif before.runs(job) and before.active:
        verb = "already on"
    else:
        verb = "updated"
    if verb == "already on":
        out.say(f"The keep-alive was already on ({preferred.title}); it stays as it was.")
    else:
        out.say(f"Keep-alive {verb}: the {preferred.title} runs `sidequest refresh-qb` for {home}.")
    out.say(_describe(found, every_days, job))
    out.say("Turn it off with `sidequest keepalive off`; see it with `sidequest keepalive status`.")
    return EXIT_OK


def turn_off(home: Path, environ: Mapping[str, str], out: _Printer) -> int:
    from doctor.store.keepalive_record import remove_record

    removed: list[Found] = []
    problems: list[str] = []
    for scheduler in schedulers_for(current_platform(environ), environ):
        try:
            found = scheduler.remove()
        except SchedulerError as exc:
            problems.append(f"{scheduler.title}: {exc}")
            continue
        if found is not None:
            removed.append(found)
            out.say(f"Removed the keep-alive from the {scheduler.title} ({found.where}).")
    had_record = remove_record(home)
    if problems and not removed:
        for problem in problems:
            out.say(f"Could not check the {problem}", err=True)
        return EXIT_FAILED if had_record else EXIT_OK
    if not removed and had_record:
        out.say("The keep-alive SideQuest had recorded is no longer installed; its record was removed.")
    elif not removed:
        out.say("No keep-alive was installed; nothing was changed.")
    return EXIT_OK


def show_status(home: Path, environ: Mapping[str, str], out: _Printer) -> int:
    from doctor.store.keepalive_record import read_record
    from doctor.store.run_log import read_runs

    record = read_record(home)
    found: Found | None = None
    problems: list[str] = []
    for scheduler in schedulers_for(current_platform(environ), environ):
        try:
            found = scheduler.find()
        except SchedulerError as exc:
            problems.append(f"{scheduler.title}: {exc}")
            continue
        if found is not None:
            break
    lines: list[str] = []
    if found is None:
        lines.append("Keep-alive: off (no job of SideQuest's is installed).")
        if record is not None:
            lines.append(
                f"  note: {home / 'keepalive.json'} says one was installed in the {record.scheduler} "
                f"scheduler on {record.installed_at:%Y-%m-%d}; it is gone. Run `sidequest keepalive on` again."
            )
        for problem in problems:
            lines.append(f"  could not check the {problem}")
    else:
        every = found.every_days or (record.every_days if record else DEFAULT_EVERY_DAYS)
        state = "on" if found.active else "installed but NOT active (the scheduler will not run it)"
        lines.append(f"Keep-alive: {state}.")
        lines.append(_describe(found, every, None))
        wanted = job_for(home, every)
        if not found.runs(wanted):
            lines.append(
                "  note: the installed job differs from what `sidequest keepalive on` installs now (another "
                "sidequest program, home or interval); run `sidequest keepalive on` to update it."
            )
    runs = read_runs(home)
    if not runs:
        lines.append("  last run:  none recorded yet")
    else:
        last = runs[-1]
        lines.append(f"  last run:  {last.at:%Y-%m-%d %H:%M} UTC: {_outcome_words(last.outcome)}")
        earlier = ", ".join(f"{r.at:%Y-%m-%d} {r.outcome}" for r in reversed(runs[:-1]))
        if earlier:
            lines.append(f"  before:    {earlier}")
    out.say("\n".join(lines))
    # Not being able to look is a failure only when a job is believed to be installed.
    return EXIT_FAILED if problems and found is None and record is not None else EXIT_OK


def _describe(found: Found, every_days: int, job: Job | None) -> str:
    import shlex

    argv = found.argv or (job.argv if job else None)
    rows = [f"  scheduler: {found.scheduler}", f"  where:     {found.where}"]
    if argv:
        rows.append(f"  runs:      {shlex.join(argv)}")
    rows.append(f"  schedule:  {describe_schedule(found.scheduler, every_days)}")
    return "\n".join(rows)


def _outcome_words(outcome: str) -> str:
    from doctor.advice import AFTER_REFRESH_REFUSAL

    if outcome == "ok":
        return "ok"
    explanation = AFTER_REFRESH_REFUSAL.get(outcome)
    return f"failed ({outcome}). {explanation}" if explanation else f"failed ({outcome})"


def run_keepalive(settings, action: str, every_days: int | None) -> int:
    """The `keepalive` command; usage problems are raised as click.UsageError by the caller's wiring."""
    environ = os.environ
    home = resolve_home(settings.home, environ)
    out = _Printer(settings.console, home)
    if action == "on":
        return turn_on(home, every_days or DEFAULT_EVERY_DAYS, environ, out)
    if action == "off":
        return turn_off(home, environ, out)
    return show_status(home, environ, out)
