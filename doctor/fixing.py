"""`sidequest doctor --fix`: apply the safe fixers probes offer, and make the run to show afterwards.

Only fixers a probe declares run, each one described and confirmed first (`--yes` skips the
question, `--dry-run` only describes). Nothing that needs a human click is automated: when the
cause needs consent, the user is pointed at `sidequest reauth-qb`.

The run that was diagnosed is never changed: `fix_run` returns a new `DoctorRun` with a new
`Report` (the re-run probes' results in place of the old ones, a fixer's own failures in the
details of its probe, a fresh diagnosis and exit code), which the CLI renders once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from doctor.diagnosis import diagnose, exit_code_for
from doctor.model import ProbeResult, Report
from doctor.plugins import RegisteredProbe
from doctor.redaction import Redactor
from doctor.session import DoctorRun, execute, redacted_document

CONSENT_CAUSES = frozenset({"refresh_token_expired", "app_disconnected", "realm_mismatch", "not_configured"})


@dataclass
class FixOutcome:
    """What --fix planned and did, and the run to render (`run`, never the diagnosed one)."""

    before: DoctorRun
    run: DoctorRun | None = None
    planned: list[tuple[str, str]] = field(default_factory=list)  # (probe id, what would change)
    applied: list[tuple[str, str]] = field(default_factory=list)  # (probe id, what it did)
    declined: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (probe id, why applying failed)
    unchecked: list[tuple[str, str]] = field(default_factory=list)  # (probe id, why describe failed)
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (probe id, status before, after)
    needs_consent: bool = False


def fixable(run: DoctorRun) -> tuple[list[tuple[RegisteredProbe, str]], list[tuple[str, str]]]:
    """(probes whose fixer says there is something to change, probes whose fixer could not tell).

    An `ok` result can still have something safe to tidy (Claude's older token copy), so the
    fixer's own `describe` decides, not the status. A broken fixer is reported, never fatal.
    """
    by_id = {r.probe.id: r for r in run.plugins.probes}
    found, unchecked = [], []
    for result in run.report.results:
        registered = by_id.get(result.id)
        if registered is None or registered.probe.fixer is None or result.status == "skip":
            continue
        try:
            description = registered.probe.fixer.describe(run.ctx)
        except Exception as exc:
            unchecked.append((result.id, f"its fixer could not check what to change: {type(exc).__name__}: {exc}"))
            continue
        if description:
            found.append((registered, description))
    return found, unchecked


def fix_run(
    run: DoctorRun,
    *,
    yes: bool,
    dry_run: bool,
    confirm: Callable[[str], bool],
    rerun: Callable[[list[str]], DoctorRun],
) -> FixOutcome:
    """Apply each confirmed fixer, re-run the affected probes (and what they need), build the new run."""
    outcome = FixOutcome(before=run, needs_consent=run.report.diagnosis.cause in CONSENT_CAUSES)
    found, outcome.unchecked = fixable(run)
    for registered, description in found:
        probe_id = registered.probe.id
        outcome.planned.append((probe_id, description))
        if dry_run:
            continue
        if not yes and not confirm(f"{probe_id}: {description}. Apply?"):
            outcome.declined.append(probe_id)
            continue
        try:
            outcome.applied.append((probe_id, registered.probe.fixer.apply(run.ctx)))
        except Exception as exc:
            outcome.failed.append((probe_id, _why_not_applied(exc)))
    after = rerun([probe_id for probe_id, _ in outcome.applied]) if outcome.applied else None
    outcome.run = _run_after(outcome, after)
    return outcome


def _why_not_applied(exc: Exception) -> str:
    """A refusal written for the owner (why Claude Desktop's config was not changed) as it is; else the error."""
    from doctor.claude_desktop.config import ClaudeConfigError

    if isinstance(exc, ClaudeConfigError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _run_after(outcome: FixOutcome, after: DoctorRun | None) -> DoctorRun:
    before = outcome.before
    fresh = {r.id: r for r in after.report.results} if after is not None else {}
    notes = {probe_id: [] for probe_id, _ in outcome.unchecked + outcome.failed}
    for probe_id, why in outcome.unchecked:
        notes[probe_id].append(f"--fix: {why}")
    for probe_id, why in outcome.failed:
        notes[probe_id].append(f"--fix could not apply the fix: {why}")
    results = []
    for old in before.report.results:
        new = fresh.get(old.id, old)
        if new.status != old.status:
            outcome.changes.append((old.id, old.status, new.status))
        results.append(_with_details(new, notes.get(old.id, [])))
    diagnosis = diagnose(results)
    old_report = before.report
    run_notes = list(old_report.notes)
    if after is not None:
        run_notes += [note for note in after.report.notes if note not in run_notes]
    report = Report(
        run_id=old_report.run_id,
        generated_at=old_report.generated_at,
        mode=old_report.mode,
        platform=dict(old_report.platform),
        tool_version=old_report.tool_version,
        results=results,
        diagnosis=diagnosis,
        exit_code=exit_code_for(diagnosis, results, old_report.strict),
        strict=old_report.strict,
        notes=run_notes,
    )
    secrets = [(s.kind, s.value) for s in before.redactor.secrets]
    if after is not None:
        secrets += [(s.kind, s.value) for s in after.redactor.secrets]
    redactor = Redactor(secrets, client_id=before.redactor.client_id)
    run = DoctorRun(report, before.ctx, before.plugins, redactor)
    run.document = redacted_document(report, redactor)
    return run


def _with_details(result: ProbeResult, extra: list[str]) -> ProbeResult:
    """`result` itself when nothing is added, else a copy with `extra` after its details."""
    if not extra:
        return result
    fields = {name: getattr(result, name) for name in ProbeResult.__slots__}
    fields["details"] = list(result.details) + extra
    fields["facts"] = dict(result.facts)
    return ProbeResult(**fields)


def rerun_in_fresh_context(run: DoctorRun, make_context, timeout: float) -> Callable[[list[str]], DoctorRun]:
    """A `rerun` that runs the named probes (plus dependencies) in a new context."""

    def rerun(probe_ids: list[str]) -> DoctorRun:
        ctx = make_context()
        try:
            return execute(ctx, run.plugins, only=probe_ids, timeout=timeout, strict=run.report.strict)
        finally:
            ctx.close()

    return rerun
