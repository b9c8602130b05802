"""`sidequest doctor`: run the probes, render the report once, and with `--fix` repair what is safe.

Why it exists apart from the click wiring (`doctor.commands.cli`): the command's steps (build
the run, fix, render, write, offer a reconnect) are ordinary functions with typed options, so
they can be read and tested without click, and everything they print goes through the one
`doctor.console.Console`.
"""

from __future__ import annotations

import os
from pathlib import Path

from doctor.console import Console
from doctor.values import Value

EXIT_OK = 0


class DoctorOptions(Value):
    """`sidequest doctor`'s options, already checked for usage errors by the CLI.

    A `Value`, not a dataclass: this is on every doctor run's path, and a dataclass compiles
    its methods at import (doctor/values.py says what that costs).
    """

    __slots__ = (
        "home", "claude_config", "fmt", "output", "offline", "only", "skip", "verbose", "strict",
        "list_probes", "fix", "yes", "dry_run", "timeout",
    )  # fmt: skip

    def __init__(
        self,
        home: Path | None = None,
        claude_config: Path | None = None,
        fmt: str = "text",
        output: Path | None = None,
        offline: bool = False,
        only: tuple[str, ...] = (),
        skip: tuple[str, ...] = (),
        verbose: bool = False,
        strict: bool = False,
        list_probes: bool = False,
        fix: bool = False,
        yes: bool = False,
        dry_run: bool = False,
        timeout: float = 20.0,
    ) -> None:
        self.home = home
        self.claude_config = claude_config
        self.fmt = fmt
        self.output = output
        self.offline = offline
        self.only = tuple(only)
        self.skip = tuple(skip)
        self.verbose = verbose
        self.strict = strict
        self.list_probes = list_probes
        self.fix = fix
        self.yes = yes
        self.dry_run = dry_run
        self.timeout = timeout


def run_doctor_command(console: Console, options: DoctorOptions) -> int:
    """Run the doctor; return the exit code. Raises `doctor.session.SelectionError` for unknown ids."""
    from doctor.plugins import build_plugins
    from doctor.session import build_context, execute

    def make_context():
        return build_context(options.home, options.claude_config, offline=options.offline, verbose=options.verbose)

    ctx = make_context()
    try:
        plugins = build_plugins(ctx.environ)
        if options.list_probes:
            console.write(render_probe_list(plugins, options.fmt), output=options.output, json=options.fmt == "json")
            return EXIT_OK
        try:
            run = execute(
                ctx, plugins, only=options.only, skip=options.skip, timeout=options.timeout, strict=options.strict
            )
        except Exception:
            _learn_secrets_of(console, ctx)  # so even the internal error line hides them
            raise
        console.adopt(run.redactor)
        if options.fix:
            run = fix_and_tell(console, run, make_context, options)
        write_report(console, run.document, options)
        if options.fix and not options.dry_run and offer_reauth(console, run.report.diagnosis.cause):
            from doctor.commands.reauth import ReauthOptions, run_reauth

            return run_reauth(console, ReauthOptions(home=options.home, claude_config=options.claude_config))
        return run.report.exit_code
    finally:
        ctx.close()


def _learn_secrets_of(console: Console, ctx) -> None:
    try:
        console.know_all(ctx.secrets(), ctx.client_id())
    except Exception:  # reading them failed too; the run's own error is the one to report
        pass


def write_report(console: Console, document: dict, options: DoctorOptions) -> None:
    """Render the document once, in the chosen format, and write it where it was asked for."""
    from doctor import renderers

    to_file = options.output is not None
    unicode = True if to_file else renderers.stream_supports_unicode(console.stream())
    colour = False if to_file else renderers.use_colour(console.stream(), os.environ)
    text = renderers.render(document, options.fmt, verbose=options.verbose, unicode=unicode)
    console.write(text, output=options.output, json=options.fmt == "json", colour=colour)
    if to_file:
        console.say(f"Wrote the {options.fmt} report to {options.output}", err=True)


def offer_reauth(console: Console, cause: str) -> bool:
    """Ask, on a terminal only, whether to start the consent flow the cause needs.

    Never automatic, not even with --yes: consent is a person's click in the browser, and a
    flow that waits minutes for it must not start where nobody is there to click.
    """
    from doctor.commands.terminal_input import stdin_is_terminal
    from doctor.fixing import CONSENT_CAUSES

    if cause not in CONSENT_CAUSES or not stdin_is_terminal():
        return False
    return ask(
        console,
        "Start `sidequest reauth-qb` now? It opens QuickBooks in your browser, where you click Connect.",
    )


def ask(console: Console, question: str) -> bool:
    """A yes/no question on standard error, answered on the terminal; anything but y/yes is no."""
    import sys

    console.write(question + " [y/N]: ", err=True)
    answer = sys.stdin.readline()
    if not answer:
        raise KeyboardInterrupt  # end of input at a question: stop as Ctrl+D does
    return answer.strip().lower() in ("y", "yes")


def fix_and_tell(console: Console, run, make_context, options: DoctorOptions):
    """Run the fixers, tell the user what happened on standard error, return the new run to render."""
    from doctor.commands.terminal_input import stdin_is_terminal
    from doctor.fixing import fix_run, rerun_in_fresh_context

    def say(line: str) -> None:
        console.say(line, err=True)

    def confirm(question: str) -> bool:
        if not stdin_is_terminal():
            say(f"{question} [skipped: no terminal to ask; use --yes]")
            return False
        return ask(console, question)

    outcome = fix_run(
        run,
        yes=options.yes,
        dry_run=options.dry_run,
        confirm=confirm,
        rerun=rerun_in_fresh_context(run, make_context, options.timeout),
    )
    for probe_id, why in outcome.unchecked:
        say(f"Could not check {probe_id}: {why}")
    if not outcome.planned:
        say("No automatic fix applies to what the doctor found.")
    for probe_id, description in outcome.planned:
        say(f"{'Would fix' if options.dry_run else 'Fix'} {probe_id}: {description}")
    for probe_id, did in outcome.applied:
        say(f"  done: {probe_id}: {did}")
    for probe_id, why in outcome.failed:
        say(f"  failed: {probe_id}: {why}")
    if outcome.needs_consent:
        say(
            "This needs you to connect QuickBooks again, which takes a click in the browser: run `sidequest reauth-qb`."
        )
    for probe_id, before, after in outcome.changes:
        say(f"  {probe_id}: {before} → {after}")
    return outcome.run


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

        problems = [{"plugin": p.plugin, "message": p.message} for p in plugins.problems]
        return json.dumps({"probes": rows, "plugin_problems": problems}, indent=2) + "\n"
    width = max((len(r["id"]) for r in rows), default=2)
    lines = [f"{'ID'.ljust(width)}  {'SIDE EFFECTS'.ljust(12)}  {'PLUGIN'.ljust(22)}  TITLE"]
    for r in rows:
        lines.append(f"{r['id'].ljust(width)}  {r['side_effects'].ljust(12)}  {r['plugin'].ljust(22)}  {r['title']}")
    for problem in plugins.problems:
        lines.append(f"! plugin {problem.plugin}: {problem.message}")
    return "\n".join(lines) + "\n"
