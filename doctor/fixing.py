"""`sidequest doctor --fix`: apply the safe fixers probes offer, then show before → after.

Only fixers a probe declares run, each one described and confirmed first (`--yes` skips the
question, `--dry-run` only describes). Nothing that needs a human click is automated: when the
cause needs consent, the user is pointed at `sidequest reauth-qb`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from doctor.plugins import RegisteredProbe
from doctor.session import DoctorRun, execute

CONSENT_CAUSES = frozenset({"refresh_token_expired", "app_disconnected", "realm_mismatch", "not_configured"})


@dataclass
class FixOutcome:
    planned: list[tuple[str, str]] = field(default_factory=list)  # (probe id, what would change)
    applied: list[tuple[str, str]] = field(default_factory=list)  # (probe id, what it did)
    declined: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    after: DoctorRun | None = None
    needs_consent: bool = False


def fixable(run: DoctorRun) -> list[tuple[RegisteredProbe, str]]:
    """Probes that ran and whose fixer says there is something to change.

    An `ok` result can still have something safe to tidy (Claude's older token copy), so the
    fixer's own `describe` decides, not the status.
    """
    by_id = {r.probe.id: r for r in run.plugins.probes}
    found = []
    for result in run.report.results:
        registered = by_id.get(result.id)
        if registered is None or registered.probe.fixer is None or result.status == "skip":
            continue
        try:
            description = registered.probe.fixer.describe(run.ctx)
        except Exception as exc:  # a broken fixer is reported, never fatal
            description = None
            result.details.append(f"fixer could not check: {type(exc).__name__}")
        if description:
            found.append((registered, description))
    return found


def run_fixes(
    run: DoctorRun,
    *,
    yes: bool,
    dry_run: bool,
    confirm: Callable[[str], bool],
    rerun: Callable[[list[str]], DoctorRun],
) -> FixOutcome:
    """Apply each confirmed fixer, then re-run the affected probes (and their dependents)."""
    outcome = FixOutcome(needs_consent=run.report.diagnosis.cause in CONSENT_CAUSES)
    for registered, description in fixable(run):
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
            outcome.failed.append((probe_id, f"{type(exc).__name__}: {exc}"))
    if outcome.applied:
        affected = [probe_id for probe_id, _ in outcome.applied]
        outcome.after = rerun(affected)
    return outcome


def rerun_in_fresh_context(run: DoctorRun, make_context, timeout: float) -> Callable[[list[str]], DoctorRun]:
    """A `rerun` that runs the named probes (plus dependencies) in a new context."""

    def rerun(probe_ids: list[str]) -> DoctorRun:
        ctx = make_context()
        try:
            return execute(ctx, run.plugins, only=probe_ids, timeout=timeout, strict=run.report.strict)
        finally:
            ctx.close()

    return rerun
