"""The doctor as a Python API: build the context, load plugins, run, diagnose.

The CLI and the connector (at start-up) both come through `run_doctor`, so there is one
definition of a run. The returned `Report` holds raw results; `Report.document` (filled here)
is the redacted, contract-shaped data every renderer uses.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from doctor import __version__
from doctor.claude_desktop.paths import resolve_claude_config
from doctor.context import Context, resolve_home
from doctor.diagnosis import diagnose, exit_code_for
from doctor.model import ProbeResult, Remediation, Report
from doctor.plugins import PluginProblem, PluginSet, RegisteredProbe, build_plugins, secrets_from_plugins
from doctor.redaction import Redactor
from doctor.runner import DEFAULT_BUDGET, run_probes
from doctor.store.timestamps import format_timestamp

PLUGINS_RESULT_ID = "plugins"


class SelectionError(ValueError):
    """`--probe`/`--skip` named a probe that does not exist (a usage error)."""


class DoctorRun:
    """A finished run: the report, its redacted document, and what produced them."""

    def __init__(self, report: Report, ctx: Context, plugins: PluginSet, redactor: Redactor) -> None:
        self.report = report
        self.ctx = ctx
        self.plugins = plugins
        self.redactor = redactor
        self.document: dict[str, Any] = {}


def new_run_id(now: datetime) -> str:
    return f"DOC-{now.astimezone(timezone.utc).strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"


def select_probes(plugins: PluginSet, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[RegisteredProbe]:
    """The probes to run: `only` (plus what they depend on), minus `skip`."""
    by_id = {r.probe.id: r for r in plugins.probes}
    only, skip = list(only), list(skip)
    unknown = [pid for pid in only + skip if pid not in by_id]
    if unknown:
        raise SelectionError(f"unknown probe id: {', '.join(unknown)} (see `sidequest doctor --list-probes`)")
    chosen = set(by_id)
    if only:
        chosen = set()
        stack = list(only)
        while stack:
            pid = stack.pop()
            if pid in chosen or pid not in by_id:
                continue
            chosen.add(pid)
            stack.extend(by_id[pid].probe.depends_on)
    chosen -= set(skip)
    return [r for r in plugins.probes if r.probe.id in chosen]


def plugin_problems_result(problems: list[PluginProblem]) -> ProbeResult:
    return ProbeResult(
        id=PLUGINS_RESULT_ID,
        title="Plugins",
        status="warn",
        summary=f"{len(problems)} plugin problem(s); the affected probes did not run",
        details=[f"{p.plugin}: {p.message}" for p in problems],
        remediation=Remediation(
            "Update or uninstall the named plugin, or block it with SIDEQUEST_DISABLE_PLUGINS=<name>."
        ),
        plugin="sidequest",
    )


def platform_facts() -> dict[str, str]:
    return {
        "os": f"{platform.system()} {platform.release()}".strip(),
        "python": platform.python_version(),
    }


def build_context(
    home: str | os.PathLike[str] | None = None,
    claude_config: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    offline: bool = False,
    verbose: bool = False,
) -> Context:
    env = dict(os.environ if environ is None else environ)
    return Context(
        resolve_home(home, env),
        resolve_claude_config(claude_config, env),
        environ=env,
        offline=offline,
        verbose=verbose,
    )


def execute(
    ctx: Context,
    plugins: PluginSet,
    *,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    timeout: float = DEFAULT_BUDGET,
    strict: bool = False,
) -> DoctorRun:
    """Run the selected probes in `ctx` and return the finished, redacted run."""
    selected = select_probes(plugins, only, skip)
    started = ctx.now()
    results = run_probes(ctx, selected, budget=timeout, offline=ctx.offline)
    secret_items, hook_problems = secrets_from_plugins(plugins, ctx)
    problems = plugins.problems + hook_problems
    if problems:
        results.append(plugin_problems_result(problems))
    diagnosis = diagnose(results)
    report = Report(
        run_id=new_run_id(started),
        generated_at=format_timestamp(started),
        mode="offline" if ctx.offline else "live",
        platform=platform_facts(),
        tool_version=__version__,
        results=results,
        diagnosis=diagnosis,
        exit_code=exit_code_for(diagnosis, results, strict),
        strict=strict,
        notes=list(ctx.notes),
    )
    redactor = Redactor(ctx.secrets() + secret_items, client_id=ctx.client_id())
    run = DoctorRun(report, ctx, plugins, redactor)
    run.document = redacted_document(report, redactor)
    return run


def redacted_document(report: Report, redactor: Redactor) -> dict[str, Any]:
    document = redactor.redact(report.to_dict(redacted=redactor.redacted_forms()))
    # Extra keys are allowed by the schema; renderers use them, support tooling ignores them.
    document["notes"] = redactor.redact(list(report.notes))
    document["diagnosis"]["probe"] = report.diagnosis.probe_id
    document["strict"] = report.strict
    return document


def run_doctor(
    home: str | os.PathLike[str] | None = None,
    claude_config: str | os.PathLike[str] | None = None,
    *,
    offline: bool = False,
    probes: Iterable[str] = (),
    skip: Iterable[str] = (),
    timeout: float = DEFAULT_BUDGET,
    strict: bool = False,
    verbose: bool = False,
    environ: Mapping[str, str] | None = None,
    extra_plugins: Iterable[tuple[str, Any]] = (),
) -> Report:
    """Run the doctor and return its report (the connector calls this at start-up).

    `report.diagnosis.cause` names the root cause; `report.exit_code` is what the CLI
    would exit with. Raises `SelectionError` for unknown probe ids.
    """
    ctx = build_context(home, claude_config, environ=environ, offline=offline, verbose=verbose)
    try:
        plugins = build_plugins(ctx.environ, extra_plugins=extra_plugins)
        return execute(ctx, plugins, only=probes, skip=skip, timeout=timeout, strict=strict).report
    finally:
        ctx.close()
