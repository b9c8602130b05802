"""The `sidequest` command line (DESIGN.md §5 CONTRACT): click wiring only.

Each command's work lives in its own module (`diagnose`, `reauth`, `refresh`), which takes
typed options and the one `doctor.console.Console` and returns an exit code; nothing imports
this module back. Exit codes for every command: 0 healthy, 1 problems found or the operation
failed for a diagnosed reason, 2 usage error, 3 the tool itself could not run. Expected
conditions never print a traceback; an unexpected one is one line plus a pointer to
`--verbose`. Everything printed, click's own usage errors included, leaves through the console:
redacted, control characters escaped, canary-scanned.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path
from typing import Any

import click

from doctor import __version__
from doctor.console import Console, OutputFileError
from doctor.renderers import FORMATS

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


# --help, --version and path options are built here rather than with click.help_option,
# click.version_option and click.Path: those look their default texts up in gettext even when
# given texts of their own, and the first lookup imports `locale`: 4.4 M instructions (callgrind),
# about 1.5% of the offline doctor's start-up. They behave as click's do.


def _show_help(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"sidequest, version {__version__}", color=ctx.color)
        ctx.exit()


# Each use of these decorators adds a new Option to the command it decorates.
help_option = click.option(
    "-h", "--help", is_flag=True, expose_value=False, is_eager=True, callback=_show_help,
    help="Show this message and exit.",
)  # fmt: skip


version_option = click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
    help="Show the version and exit.",
)  # fmt: skip


class PathParam(click.ParamType):
    """A path option that names a file or a folder, checked the way click.Path checks it.

    Naming a folder where a file is wanted (or the reverse) is a usage error; a path that does
    not exist, or cannot be read, is left to the probes, which explain it better.
    """

    def __init__(self, kind: str) -> None:
        if kind not in ("file", "directory"):
            raise ValueError(f"kind must be 'file' or 'directory', not {kind!r}")
        self.name = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        path = value if isinstance(value, Path) else Path(value)
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except (OSError, ValueError):
            return path
        if self.name == "file" and is_dir:
            self.fail(f"File {str(value)!r} is a directory.", param, ctx)
        if self.name == "directory" and not is_dir:
            self.fail(f"Directory {str(value)!r} is a file.", param, ctx)
        return path

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(incomplete, type="dir" if self.name == "directory" else "file")]


class Settings:
    """The global options, and the console every command writes through."""

    def __init__(self, console: Console, home: Path | None, claude_config: Path | None) -> None:
        self.console = console
        self.home = home
        self.claude_config = claude_config


@click.group(add_help_option=False)
@click.option(
    "--home",
    type=PathParam("directory"),
    default=None,
    help="Connector home (default $SIDEQUEST_HOME, else ~/.qb-distributor-mcp); .env lives there.",
)
@click.option(
    "--claude-config",
    type=PathParam("file"),
    default=None,
    help="Claude Desktop config file (default $SIDEQUEST_CLAUDE_CONFIG, else the platform path).",
)
@version_option
@help_option
@click.pass_context
def cli(click_ctx: click.Context, home: Path | None, claude_config: Path | None) -> None:
    """Diagnose and repair the SideQuest QuickBooks connector."""
    console = click_ctx.obj if isinstance(click_ctx.obj, Console) else Console()
    click_ctx.obj = Settings(console, home, claude_config)


@cli.command("doctor", add_help_option=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for you, prompt to paste into Claude, json for a support ticket.",
)
@click.option(
    "--output",
    type=PathParam("file"),
    default=None,
    help="Write the output to FILE instead of standard output.",
)
@click.option("--offline", is_flag=True, help="No network at all; live checks are skipped.")
@click.option("--probe", "only", multiple=True, metavar="ID", help="Run only this probe (and what it needs).")
@click.option("--skip", multiple=True, metavar="ID", help="Do not run this probe.")
@click.option("--verbose", "-v", is_flag=True, help="Show details, facts and timings.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--list-probes", is_flag=True, help="List the available probes and exit.")
@click.option("--fix", is_flag=True, help="Apply the safe fixes the probes offer.")
@click.option("--yes", "-y", is_flag=True, help="With --fix: do not ask before each fix.")
@click.option("--dry-run", is_flag=True, help="With --fix: only show what would change.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.5, max=600),
    default=20.0,
    show_default=True,
    help="Time budget for the whole run, in seconds.",
)
@help_option
@click.pass_obj
def doctor_command(
    settings: Settings,
    fmt: str,
    output: Path | None,
    offline: bool,
    only: tuple[str, ...],
    skip: tuple[str, ...],
    verbose: bool,
    strict: bool,
    list_probes: bool,
    fix: bool,
    yes: bool,
    dry_run: bool,
    timeout: float,
) -> int:
    """Run every probe, name the root cause and say how to fix it."""
    from doctor.commands.diagnose import DoctorOptions, run_doctor_command
    from doctor.session import SelectionError

    if (yes or dry_run) and not fix:
        raise click.UsageError("--yes and --dry-run go with --fix")
    if fix and fmt == "json" and not dry_run and not yes:
        raise click.UsageError("--fix asks questions; with --format json add --yes or --dry-run")
    options = DoctorOptions(
        home=settings.home,
        claude_config=settings.claude_config,
        fmt=fmt,
        output=output,
        offline=offline,
        only=only,
        skip=skip,
        verbose=verbose,
        strict=strict,
        list_probes=list_probes,
        fix=fix,
        yes=yes,
        dry_run=dry_run,
        timeout=timeout,
    )
    try:
        return run_doctor_command(settings.console, options)
    except SelectionError as exc:
        raise click.UsageError(str(exc)) from None
    except OutputFileError as exc:
        raise click.ClickException(f"{exc}. Nothing was written there.") from None


@cli.command("refresh-qb", add_help_option=False)
@help_option
@click.pass_obj
def refresh_command(settings: Settings) -> int:
    """Refresh the QuickBooks token chain once, under the lock (safe for cron/launchd)."""
    from doctor.commands.refresh import refresh_once

    return refresh_once(settings.console, settings.home)


@cli.command("reauth-qb", add_help_option=False)
@click.option("--no-browser", is_flag=True, help="Do not open a browser; print the consent URL only.")
@click.option(
    "--environment",
    type=click.Choice(["sandbox", "production"]),
    default=None,
    help="Connect in this environment (default: QB_ENVIRONMENT from .env).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1, max=3600),
    default=300.0,
    show_default=True,
    help="How long to wait for the consent, in seconds.",
)
@click.option("--yes", "-y", is_flag=True, help="Accept a change of QuickBooks company without asking.")
@help_option
@click.pass_obj
def reauth_command(settings: Settings, no_browser: bool, environment: str | None, timeout: float, yes: bool) -> int:
    """Connect QuickBooks again: consent in the browser, save the new token, update Claude Desktop."""
    from doctor.commands.reauth import ReauthOptions, run_reauth

    options = ReauthOptions(
        home=settings.home,
        claude_config=settings.claude_config,
        no_browser=no_browser,
        environment=environment,
        timeout=timeout,
        yes=yes,
    )
    return run_reauth(settings.console, options)


@cli.command("setup", add_help_option=False)
@click.option("--client-id", default=None, metavar="ID", help="The app's client ID (asked for when not given).")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from standard input (scripts).")
@click.option(
    "--environment",
    type=click.Choice(["sandbox", "production"]),
    default=None,
    help="sandbox or production (asked for when not given).",
)
@click.option(
    "--connector-command",
    default=None,
    metavar="PATH",
    help="The connector program Claude Desktop starts (default: qb-distributor-mcp on PATH).",
)
@click.option("--no-consent", is_flag=True, help="Do not connect QuickBooks now (run `sidequest reauth-qb` later).")
@click.option("--yes", "-y", is_flag=True, help="Replace keys already in .env, and turn on the keep-alive, unasked.")
@help_option
@click.pass_obj
def setup_command(
    settings: Settings,
    client_id: str | None,
    client_secret_stdin: bool,
    environment: str | None,
    connector_command: str | None,
    no_consent: bool,
    yes: bool,
) -> int:
    """Set up the connector: app keys, .env, Claude Desktop, the QuickBooks connection, the keep-alive."""
    from doctor.commands.setup import SetupUsageError, run_setup

    try:
        return run_setup(
            settings,
            client_id=client_id,
            secret_from_stdin=client_secret_stdin,
            environment=environment,
            connector_command=connector_command,
            no_consent=no_consent,
            yes=yes,
        )
    except SetupUsageError as exc:
        raise click.UsageError(str(exc)) from None


@cli.command("keepalive", add_help_option=False)
@click.argument("action", type=click.Choice(["on", "off", "status"]))
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=None,
    metavar="DAYS",
    help="With on: refresh every DAYS days (default 7, at most 30).",
)
@help_option
@click.pass_obj
def keepalive_command(settings: Settings, action: str, every: int | None) -> int:
    """Let this computer's scheduler run `sidequest refresh-qb` regularly (on), stop it (off), or show it."""
    from doctor.commands.keepalive import MAX_EVERY_DAYS, PlatformError, run_keepalive

    if every is not None and action != "on":
        raise click.UsageError("--every goes with `sidequest keepalive on`")
    if every is not None and every > MAX_EVERY_DAYS:
        raise click.UsageError(
            f"--every {every}: at most {MAX_EVERY_DAYS} days. Intuit ends a connection unused for 100 days, "
            "and refreshes further apart leave too little room for runs missed while the computer was off."
        )
    try:
        return run_keepalive(settings, action, every)
    except PlatformError as exc:
        raise click.UsageError(str(exc)) from None


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    console = Console()  # made here, so even the last-resort error line knows the secrets a command met
    try:
        with cli.make_context("sidequest", list(args), obj=console) as click_ctx:
            code = cli.invoke(click_ctx)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        # click's own message can quote what was typed (a path, a probe id): it goes out like the rest.
        shown = io.StringIO()
        exc.show(file=shown)
        console.write(shown.getvalue(), err=True)
        code = EXIT_USAGE if isinstance(exc, click.UsageError) else EXIT_PROBLEM
    except (click.Abort, KeyboardInterrupt):
        console.write("\nInterrupted; nothing was changed after that point.\n", err=True)
        code = EXIT_PROBLEM
    except Exception as exc:  # the tool itself failed: one line, traceback only with --verbose
        console.write(internal_error_line(console, exc, verbose="--verbose" in args or "-v" in args), err=True)
        code = EXIT_INTERNAL
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def internal_error_line(console: Console, exc: Exception, *, verbose: bool) -> str:
    """One line for an unexpected failure (plus the traceback with --verbose), never holding a secret."""
    from doctor.redaction import SecretLeak

    if isinstance(exc, SecretLeak):
        line = f"sidequest: {exc}"
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        line = f"sidequest: internal error: {type(exc).__name__}: {first}".rstrip(": ")
        line += "\n  (run again with --verbose for details, and send them to support)"
    if verbose:
        import traceback

        line += "\n" + traceback.format_exc()
    try:
        return console.clean(line + "\n")
    except Exception:
        return f"sidequest: internal error: {type(exc).__name__} (details withheld: they held a secret)\n"


def entry() -> None:
    """The `sidequest` console script (after doctor/commands/script.py's setting): main(), then
    leave without the interpreter's teardown.

    Once the output is written and flushed, freeing every module and object one by one costs a
    run about 35 ms offline and 75-110 ms live (bench/live), and changes nothing anyone sees.
    `python -m doctor.commands.cli` (the tests' way in) keeps the ordinary exit.
    """
    skip_unused_imports()
    try:
        main()
        code: object = EXIT_OK
    except SystemExit as exc:
        code = exc.code
    leave(code)


def skip_unused_imports() -> None:
    """In a sidequest process of its own, never import two things httpx pulls in that nothing here uses.

    - trio: httpcore (under httpx) imports it when it is installed, only for the locks of async
      clients running under trio. Every client here is synchronous and the MCP SDK's client runs on
      asyncio. Importing it costs about 55 ms of a 200 ms live run; users' installs rarely have it
      (the test extra does: selenium needs it).
    - httpx._main, httpx's own command-line client: `import httpx` loads it, and with it pygments and
      rich where those are installed (common on developers' machines), about 6 ms and more.
    A None in sys.modules makes `import X` raise ImportError, which both callers expect. Only the
    console script and `python -m` call this, never a program that imports doctor as a library.
    """
    for name in ("trio", "httpx._main"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def leave(code: object) -> None:
    """End the process with `code` as sys.exit would, minus the teardown: the atexit hooks run
    first (connector-launch kills a connector it started from one), the output is flushed, then
    os._exit."""
    import atexit

    if code is None:
        code = EXIT_OK
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = EXIT_PROBLEM
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach the reader anyway
            code = code or EXIT_PROBLEM
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    skip_unused_imports()
    main()
