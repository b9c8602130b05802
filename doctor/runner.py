"""Run probes concurrently, each isolated, within one time budget.

A probe that raises becomes `error` with a one-line reason; one that overruns its own timeout
(or the run's budget) becomes `timeout`; a probe whose dependency ended in a problem or was
skipped becomes `skip` with `blocked_by`. Probes run in daemon threads so a probe stuck in a
system call can never keep the process alive after the budget ends. Results come back in the
registration order, whatever order they finished in.
"""

from __future__ import annotations

import threading
import time
from typing import Iterable

from doctor.context import Context
from doctor.model import STATUSES, Finding, ProbeResult, Remediation
from doctor.plugins import RegisteredProbe
from doctor.values import Value

DEFAULT_BUDGET = 20.0


class _Running(Value):
    __slots__ = ("registered", "started", "deadline")

    def __init__(self, registered: RegisteredProbe, started: float, deadline: float) -> None:
        self.registered = registered
        self.started = started
        self.deadline = deadline


class _Finished:
    """Results handed from probe threads to the runner (queue.Queue's job, without its import cost)."""

    def __init__(self) -> None:
        self._items: list[tuple[str, ProbeResult]] = []
        self._ready = threading.Condition()

    def put(self, item: tuple[str, ProbeResult]) -> None:
        with self._ready:
            self._items.append(item)
            self._ready.notify()

    def get(self, timeout: float) -> tuple[str, ProbeResult]:
        with self._ready:
            if not self._ready.wait_for(lambda: self._items, timeout):
                raise TimeoutError
            return self._items.pop(0)


def _result(registered: RegisteredProbe, **fields) -> ProbeResult:
    probe = registered.probe
    return ProbeResult(
        id=probe.id,
        title=probe.title,
        side_effects=probe.side_effects,
        plugin=registered.plugin,
        **fields,
    )


def _from_finding(registered: RegisteredProbe, finding: object, duration_ms: float) -> ProbeResult:
    if not isinstance(finding, Finding):
        return _result(
            registered,
            status="error",
            summary=f"probe returned {type(finding).__name__}, not a Finding",
            duration_ms=duration_ms,
            cause="unknown",
        )
    if finding.status not in STATUSES:
        return _result(
            registered,
            status="error",
            summary=f"probe returned an unknown status {finding.status!r}",
            duration_ms=duration_ms,
            cause="unknown",
        )
    remediation = finding.remediation if isinstance(finding.remediation, Remediation) else None
    return _result(
        registered,
        status=finding.status,
        summary=str(finding.summary),
        details=[str(d) for d in finding.details],
        remediation=remediation,
        facts=dict(finding.facts),
        duration_ms=duration_ms,
        cause=finding.cause,
    )


def _crash_summary(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return f"the probe crashed ({reason})"


def run_probes(
    ctx: Context,
    registered: Iterable[RegisteredProbe],
    *,
    budget: float = DEFAULT_BUDGET,
    offline: bool = False,
) -> list[ProbeResult]:
    """Run the probes and return one result per probe, in the given order."""
    order = list(registered)
    by_id = {r.probe.id: r for r in order}
    results: dict[str, ProbeResult] = {}
    pending = {r.probe.id for r in order}
    running: dict[str, _Running] = {}
    done_queue = _Finished()
    run_deadline = time.monotonic() + budget

    def finish(probe_id: str, result: ProbeResult) -> None:
        results[probe_id] = result
        ctx.results[probe_id] = result
        pending.discard(probe_id)
        running.pop(probe_id, None)

    def worker(reg: RegisteredProbe, started: float) -> None:
        try:
            finding = reg.probe.run(ctx)
            result = _from_finding(reg, finding, (time.monotonic() - started) * 1000)
        except BaseException as exc:  # isolation: nothing a probe does takes the run down
            import traceback

            details = traceback.format_exc().rstrip().splitlines() if ctx.verbose else []
            result = _result(
                reg,
                status="error",
                summary=_crash_summary(exc),
                details=details,
                duration_ms=(time.monotonic() - started) * 1000,
                cause="unknown",
            )
        done_queue.put((reg.probe.id, result))

    def start_ready() -> None:
        # Repeat passes until nothing changes: a skip may unblock (skip) a probe listed earlier.
        before = -1
        while before != len(pending) + len(running):
            before = len(pending) + len(running)
            _start_pass()

    def _start_pass() -> None:
        for reg in order:
            probe = reg.probe
            if probe.id not in pending or probe.id in running:
                continue
            missing = [d for d in probe.depends_on if d not in by_id]
            if missing:
                finish(
                    probe.id,
                    _result(
                        reg,
                        status="skip",
                        summary=f"depends on {', '.join(missing)}, which is not available in this run",
                        blocked_by=missing[0],
                    ),
                )
                continue
            if any(d in pending for d in probe.depends_on):
                continue
            # Ordering-only predecessors: wait while they are still to run, whatever they end as.
            if any(a in pending and a in by_id for a in probe.runs_after):
                continue
            blocker = next((d for d in probe.depends_on if results[d].status not in ("ok", "warn")), None)
            if blocker is not None:
                finish(
                    probe.id,
                    _result(
                        reg,
                        status="skip",
                        summary=f"not run: {blocker} did not pass ({results[blocker].status})",
                        blocked_by=blocker,
                    ),
                )
                continue
            if offline and probe.needs_network:
                finish(probe.id, _result(reg, status="skip", summary="offline run: no network checks"))
                continue
            now = time.monotonic()
            waited_on = next((a for a in probe.runs_after if a in results and results[a].status == "timeout"), None)
            if now >= run_deadline and waited_on is not None:
                finish(
                    probe.id,
                    _result(
                        reg,
                        status="skip",
                        summary=(
                            f"not run: it waits for {waited_on}, which did not finish within the run's {budget:g} s"
                        ),
                        blocked_by=waited_on,
                    ),
                )
                continue
            if now >= run_deadline:
                finish(
                    probe.id,
                    _result(
                        reg,
                        status="timeout",
                        summary=f"not started: the run's {budget:g} s budget was used up",
                        cause="network_unreachable" if probe.needs_network else "unknown",
                    ),
                )
                continue
            deadline = min(now + probe.timeout, run_deadline)
            running[probe.id] = _Running(reg, now, deadline)
            threading.Thread(target=worker, args=(reg, now), name=f"probe-{probe.id}", daemon=True).start()

    while pending:
        start_ready()
        if not running:
            # Nothing runs yet something waits: only a dependency cycle does that.
            for reg in order:
                if reg.probe.id in pending:
                    finish(
                        reg.probe.id,
                        _result(
                            reg,
                            status="error",
                            summary="dependency cycle: " + " -> ".join(reg.probe.depends_on),
                            cause="unknown",
                        ),
                    )
            break
        next_deadline = min(r.deadline for r in running.values())
        try:
            probe_id, result = done_queue.get(timeout=max(0.0, next_deadline - time.monotonic()))
            if probe_id in running:
                finish(probe_id, result)
        except TimeoutError:
            now = time.monotonic()
            for probe_id, run in list(running.items()):
                if now >= run.deadline:
                    probe = run.registered.probe
                    limit = min(probe.timeout, budget)
                    finish(
                        probe_id,
                        _result(
                            run.registered,
                            status="timeout",
                            summary=f"did not finish within {limit:g} s",
                            duration_ms=(now - run.started) * 1000,
                            cause="network_unreachable" if probe.needs_network else "unknown",
                            remediation=Remediation(
                                "Run the doctor again; if it keeps timing out, check the internet connection."
                                if probe.needs_network
                                else "Run the doctor again with --verbose and send the JSON report to support."
                            ),
                        ),
                    )
    return [results[r.probe.id] for r in order]
