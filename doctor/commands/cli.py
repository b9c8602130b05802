"""The `sidequest` command line (DESIGN.md §5 CONTRACT).

Exit codes for every command: 0 healthy, 1 problems found or the operation failed for a
diagnosed reason, 2 usage error, 3 the tool itself could not run. Expected conditions never
print a traceback; an unexpected one is one line plus a pointer to `--verbose`. Everything
printed passes the redactor's canary first.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import click

from doctor import __version__
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
    """The global options, and what the running command learnt that error messages must hide."""

    def __init__(self, home: Path | None, claude_config: Path | None) -> None:
        self.home = home
        self.claude_config = claude_config
        # Secrets seen by the current command, so that even an internal error message is redacted.
        self.secrets: list[tuple[str, str]] = []
        self.client_id: str | None = None


def emit(text: str, *, output: Path | None = None, err: bool = False) -> None:
    """Write text to a file or a standard stream, degrading characters the stream cannot show."""
    if output is not None:
        tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, output)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            reason = exc.strerror or type(exc).__name__
            raise click.ClickException(f"cannot write {output}: {reason}. Nothing was written there.") from None
        return
    stream = sys.stderr if err else sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    data = text.encode(encoding, "replace").decode(encoding, "replace")
    stream.write(data)
    stream.flush()


def checked(text: str, secrets: list[tuple[str, str]], client_id: str | None) -> str:
    """Redact, then canary-scan: raises SecretLeak rather than return text holding a secret."""
    from doctor.redaction import Redactor

    redactor = Redactor(secrets, client_id=client_id)
    return redactor.check(redactor.redact_text(text))


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
    click_ctx.obj = Settings(home, claude_config)


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
    from doctor.plugins import build_plugins
    from doctor.session import SelectionError, build_context, execute

    if (yes or dry_run) and not fix:
        raise click.UsageError("--yes and --dry-run go with --fix")
    if fix and fmt == "json" and not dry_run and not yes:
        raise click.UsageError("--fix asks questions; with --format json add --yes or --dry-run")

    def make_context():
        return build_context(settings.home, settings.claude_config, offline=offline, verbose=verbose)

    ctx = make_context()
    try:
        plugins = build_plugins(ctx.environ)
        if list_probes:
            emit(render_probe_list(plugins, fmt), output=output)
            return EXIT_OK
        try:
            run = execute(ctx, plugins, only=only, skip=skip, timeout=timeout, strict=strict)
        except SelectionError as exc:
            raise click.UsageError(str(exc)) from None
        settings.secrets = [(s.kind, s.value) for s in run.redactor.secrets]
        settings.client_id = ctx.client_id()
        if fix:
            run = fix_and_report(run, make_context, timeout=timeout, yes=yes, dry_run=dry_run, fmt=fmt)
        text = render(run.document, fmt, verbose=verbose, to_file=output is not None)
        emit(run.redactor.check(text), output=output)
        if output is not None:
            emit(f"Wrote the {fmt} report to {output}\n", err=True)
        if fix and not dry_run and offer_reauth(run.report.diagnosis.cause):
            from doctor.commands.reauth import run_reauth

            return run_reauth(settings, no_browser=False, environment=None, timeout=300.0, yes=False)
        return run.report.exit_code
    finally:
        ctx.close()


def offer_reauth(cause: str) -> bool:
    """Ask, on a terminal only, whether to start the consent flow the cause needs.

    Never automatic, not even with --yes: consent is a person's click in the browser, and a
    flow that waits minutes for it must not start where nobody is there to click.
    """
    from doctor.fixing import CONSENT_CAUSES

    if cause not in CONSENT_CAUSES or not (sys.stdin and sys.stdin.isatty()):
        return False
    return click.confirm(
        "Start `sidequest reauth-qb` now? It opens QuickBooks in your browser, where you click Connect.",
        default=False,
        err=True,
    )


def render(document: dict[str, Any], fmt: str, *, verbose: bool, to_file: bool) -> str:
    from doctor import renderers

    if fmt == "json":
        return renderers.render_json(document)
    if fmt == "prompt":
        return renderers.render_prompt(document)
    stream = sys.stdout
    unicode = True if to_file else renderers.stream_supports_unicode(stream)
    colour = False if to_file else renderers.use_colour(stream, os.environ)
    return renderers.render_text(document, verbose=verbose, unicode=unicode, colour=colour)


def render_probe_list(plugins, fmt: str) -> str:
    rows = [
        {
            "id": r.probe.id,
            "title": r.probe.title,
            "side_effects": r.probe.side_effects,
            "needs_network": r.probe.needs_network,
            "depends_on": list(r.probe.depends_on),
            "plugin": r.plugin,
            "fixer": r.probe.fixer is not None,
        }
        for r in plugins.probes
    ]
    if fmt == "json":
        import json

        return (
            json.dumps(
                {
                    "probes": rows,
                    "plugin_problems": [{"plugin": p.plugin, "message": p.message} for p in plugins.problems],
                },
                indent=2,
            )
            + "\n"
        )
    width = max((len(r["id"]) for r in rows), default=2)
    lines = [f"{'ID'.ljust(width)}  {'SIDE EFFECTS'.ljust(12)}  {'PLUGIN'.ljust(22)}  TITLE"]
    for r in rows:
        lines.append(f"{r['id'].ljust(width)}  {r['side_effects'].ljust(12)}  {r['plugin'].ljust(22)}  {r['title']}")
    for problem in plugins.problems:
        lines.append(f"! plugin {problem.plugin}: {problem.message}")
    return "\n".join(lines) + "\n"


def fix_and_report(run, make_context, *, timeout: float, yes: bool, dry_run: bool, fmt: str):
    """Run the fixers, tell the user what happened on stderr, return the run to render."""
    from doctor.diagnosis import diagnose, exit_code_for
    from doctor.fixing import rerun_in_fresh_context, run_fixes
    from doctor.session import redacted_document

    def say(line: str) -> None:
        emit(run.redactor.check(run.redactor.redact_text(line)) + "\n", err=True)

    def confirm(question: str) -> bool:
        if not sys.stdin or not sys.stdin.isatty():
            say(f"{question} [skipped: no terminal to ask; use --yes]")
            return False
        return click.confirm(run.redactor.redact_text(question), default=False, err=True)

    outcome = run_fixes(
        run,
        yes=yes,
        dry_run=dry_run,
        confirm=confirm,
        rerun=rerun_in_fresh_context(run, make_context, timeout),
    )
    if not outcome.planned:
        say("No automatic fix applies to what the doctor found.")
    for probe_id, description in outcome.planned:
        prefix = "Would fix" if dry_run else "Fix"
        say(f"{prefix} {probe_id}: {description}")
    for probe_id, did in outcome.applied:
        say(f"  done: {probe_id}: {did}")
    for probe_id, why in outcome.failed:
        say(f"  failed: {probe_id}: {why}")
    if outcome.needs_consent:
        say(
            "This needs you to connect QuickBooks again, which takes a click in the browser: run `sidequest reauth-qb`."
        )
    if outcome.after is None:
        return run
    after = {r.id: r for r in outcome.after.report.results}
    for before in run.report.results:
        if before.id in after and after[before.id].status != before.status:
            say(f"  {before.id}: {before.status} → {after[before.id].status}")
    merged = [after.get(r.id, r) for r in run.report.results]
    report = run.report
    report.results = merged
    report.diagnosis = diagnose(merged)
    report.exit_code = exit_code_for(report.diagnosis, merged, report.strict)
    run.document = redacted_document(report, run.redactor)
    return run


@cli.command("refresh-qb", add_help_option=False)
@help_option
@click.pass_obj
def refresh_command(settings: Settings) -> int:
    """Refresh the QuickBooks token chain once, under the lock (safe for cron/launchd)."""
    from doctor.commands.refresh import refresh_once

    return refresh_once(settings)


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
    from doctor.commands.reauth import run_reauth

    return run_reauth(settings, no_browser=no_browser, environment=environment, timeout=timeout, yes=yes)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    settings_holder: dict[str, Settings] = {}
    try:
        with cli.make_context("sidequest", list(args)) as click_ctx:
            settings_holder["s"] = click_ctx.obj
            code = cli.invoke(click_ctx)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.UsageError as exc:
        exc.show()
        code = EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        code = EXIT_PROBLEM
    except (click.Abort, KeyboardInterrupt):
        emit("\nInterrupted; nothing was changed after that point.\n", err=True)
        code = EXIT_PROBLEM
    except Exception as exc:  # the tool itself failed: one line, traceback only with --verbose
        from doctor.redaction import SecretLeak

        settings = settings_holder.get("s")
        if isinstance(exc, SecretLeak):
            line = f"sidequest: {exc}"
        else:
            first = (str(exc).strip().splitlines() or [""])[0]
            line = f"sidequest: internal error: {type(exc).__name__}: {first}".rstrip(": ")
            line += "\n  (run again with --verbose for details, and send them to support)"
        if "--verbose" in args or "-v" in args:
            import traceback

            line += "\n" + traceback.format_exc()
        try:
            line = checked(line, settings.secrets if settings else [], settings.client_id if settings else None)
        except Exception:
            line = f"sidequest: internal error: {type(exc).__name__} (details withheld: they held a secret)"
        emit(line + "\n", err=True)
        code = EXIT_INTERNAL
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
