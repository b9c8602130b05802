"""Run probes concurrently, each isolated, within one time budget.

A probe that raises becomes `error` with a one-line reason; one that overruns its own timeout
(or the run's budget) becomes `timeout`; a probe whose dependency ended in a problem or was
skipped becomes `skip` with `blocked_by`. Probes run in daemon threads so a probe stuck in a
system call can never keep the process alive after the budget ends. Results come back in the
registration order, whatever order they finished in.

What starts when, and what is skipped, is decided in doctor/scheduling.py (pure functions);
this module owns the threads, the deadlines and the isolation.
"""

from __future__ import annotations

import threading
import time
from typing import Iterable

from doctor import scheduling
from doctor.context import Context
from doctor.model import STATUSES, Finding, Probe, ProbeResult, Remediation
from doctor.plugins import RegisteredProbe

DEFAULT_BUDGET = 20.0


def _from_finding(registered: RegisteredProbe, finding: object, duration_ms: float) -> ProbeResult:
    probe, plugin = registered.probe, registered.plugin
    if not isinstance(finding, Finding):
        summary = f"probe returned {type(finding).__name__}, not a Finding"
        return ProbeResult.crashed(probe, summary, plugin=plugin, duration_ms=duration_ms)
    if finding.status not in STATUSES:
        summary = f"probe returned an unknown status {finding.status!r}"
        return ProbeResult.crashed(probe, summary, plugin=plugin, duration_ms=duration_ms)
    remediation = finding.remediation if isinstance(finding.remediation, Remediation) else None
    return ProbeResult(
        id=probe.id,
        title=probe.title,
        status=finding.status,
        summary=str(finding.summary),
        details=[str(d) for d in finding.details],
        remediation=remediation,
        facts=dict(finding.facts),
        duration_ms=duration_ms,
        side_effects=probe.side_effects,
        cause=finding.cause,
        plugin=plugin,
    )


def _crash_summary(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return f"the probe crashed ({reason})"


def _overrun_remediation(probe: Probe) -> Remediation:
    if probe.needs_network:
        return Remediation("Run the doctor again; if it keeps timing out, check the internet connection.")
    return Remediation("Run the doctor again with --verbose and send the JSON report to support.")


def _run_isolated(ctx: Context, registered: RegisteredProbe, started: float) -> ProbeResult:
    """The probe's own result, or `error` for whatever it raised: nothing a probe does takes the run down."""
    try:
        return _from_finding(registered, registered.probe.run(ctx), (time.monotonic() - started) * 1000)
    except BaseException as exc:
        import traceback

        details = traceback.format_exc().rstrip().splitlines() if ctx.verbose else []
        return ProbeResult.crashed(
            registered.probe,
            _crash_summary(exc),
            plugin=registered.plugin,
            details=details,
            duration_ms=(time.monotonic() - started) * 1000,
        )


def run_probes(
    ctx: Context,
    registered: Iterable[RegisteredProbe],
    *,
    budget: float = DEFAULT_BUDGET,
    offline: bool = False,
) -> list[ProbeResult]:
    """Run the probes and return one result per probe, in the given order.

    doctor/scheduling.py decides what starts and what is skipped; this loop carries the
    decisions out, waits for results and times out the probes that overrun.
    """
    run = _Run(ctx, list(registered), budget)
    while len(run.results) < len(run.order):
        now = time.monotonic()
        statuses = {probe_id: result.status for probe_id, result in run.results.items()}
        for decision in scheduling.plan(
            run.probes, statuses, run.running, offline=offline, now=now, run_deadline=run.deadline, budget=budget
        ):
            run.carry_out(decision, now)
        if not run.running:
            break  # everything settled (stalled probes included)
        for probe_id, result in run.wait_for_results():
            if probe_id in run.running:  # a late result of a probe already timed out is dropped
                run.finish(probe_id, result)
        now = time.monotonic()
        for probe_id in scheduling.overdue({pid: deadline for pid, (_, _, deadline) in run.running.items()}, now):
            run.finish(probe_id, run.overran(probe_id, now))
    return [run.results[r.probe.id] for r in run.order]


class _Run:
    """One run's state: what has finished, what runs (with its start and deadline), what has arrived."""

    def __init__(self, ctx: Context, order: list[RegisteredProbe], budget: float) -> None:
        self.ctx = ctx
        self.order = order
        self.by_id = {r.probe.id: r for r in order}
        self.probes = [r.probe for r in order]
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self.results: dict[str, ProbeResult] = {}
        self.running: dict[str, tuple[RegisteredProbe, float, float]] = {}  # id -> (probe, started, deadline)
        # Probe threads hand their results over here: queue.Queue's job, without importing queue.
        self.arrived: list[tuple[str, ProbeResult]] = []
        self.ready = threading.Condition()

    def finish(self, probe_id: str, result: ProbeResult) -> None:
        self.results[probe_id] = result
        self.ctx.results[probe_id] = result
        self.running.pop(probe_id, None)

    def worker(self, reg: RegisteredProbe, started: float) -> None:
        result = _run_isolated(self.ctx, reg, started)
        with self.ready:
            self.arrived.append((reg.probe.id, result))
            self.ready.notify()

    def carry_out(self, decision: scheduling.Decision, now: float) -> None:
        reg = self.by_id[decision.probe_id]
        probe, plugin = reg.probe, reg.plugin
        if isinstance(decision, scheduling.Start):
            self.running[probe.id] = (reg, now, decision.deadline)
            threading.Thread(target=self.worker, args=(reg, now), name=f"probe-{probe.id}", daemon=True).start()
        elif decision.status == "skip":
            skipped = ProbeResult.skipped(probe, decision.summary, plugin=plugin, blocked_by=decision.blocked_by)
            self.finish(probe.id, skipped)
        elif decision.status == "timeout":
            self.finish(probe.id, ProbeResult.timed_out(probe, decision.summary, plugin=plugin))
        else:
            self.finish(probe.id, ProbeResult.crashed(probe, decision.summary, plugin=plugin))

    def wait_for_results(self) -> list[tuple[str, ProbeResult]]:
        """The results that arrived, waiting for one until the nearest deadline of a running probe."""
        next_deadline = min(deadline for _, _, deadline in self.running.values())
        with self.ready:
            self.ready.wait_for(lambda: self.arrived, max(0.0, next_deadline - time.monotonic()))
            batch = self.arrived[:]
            del self.arrived[:]
        return batch

    def overran(self, probe_id: str, now: float) -> ProbeResult:
        reg, started, _ = self.running[probe_id]
        return ProbeResult.timed_out(
            reg.probe,
            f"did not finish within {min(reg.probe.timeout, self.budget):g} s",
            plugin=reg.plugin,
            duration_ms=(now - started) * 1000,
            remediation=_overrun_remediation(reg.probe),
        )
