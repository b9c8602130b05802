"""Which probes start now, which never will, and why: the runner's decisions as pure functions.

The runner (doctor/runner.py) owns the threads, the clock and the isolation of crashes; each
time a probe finishes it asks `plan` what to do next. `plan` sees only probe descriptions, the
statuses of finished probes, the ids of running ones and the time, so every rule can be tested
without a thread or a sleep.

A probe that is neither finished nor running meets the rules in order; the first that applies
decides (`WAIT` means "not yet"):

1. `missing_dependency`       a `depends_on` probe is not in this run               -> skip
2. `still_waiting`            a `depends_on` or `runs_after` probe has not finished -> wait
3. `dependency_did_not_pass`  a `depends_on` probe ended other than ok or warn      -> skip
4. `offline_network_probe`    an offline run, and the probe needs the network       -> skip
5. `predecessor_timed_out`    the budget is spent and a `runs_after` probe timed out -> skip
6. `budget_used_up`           the budget is spent                                   -> timeout (not started)
otherwise                                                                           -> start

When nothing runs and probes still wait, they wait on each other (a dependency cycle): `error`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Collection, Mapping, Sequence, Union

from doctor.values import Value

if TYPE_CHECKING:  # pragma: no cover (annotations only: building Union types costs start-up time)
    from doctor.model import Probe

    Decision = Union["Start", "Settle"]
    Rule = Callable[[Probe, "Moment"], Union[Decision, str, None]]

PASSED = ("ok", "warn")


class Start(Value):
    """Start the probe now; it must finish by `deadline` (a `time.monotonic()` value)."""

    __slots__ = ("probe_id", "deadline")

    def __init__(self, probe_id: str, deadline: float) -> None:
        self.probe_id = probe_id
        self.deadline = deadline


class Settle(Value):
    """The probe will not run; its result is `status` with `summary`.

    `skip` (not run, `blocked_by` names the probe that stopped it, if one did), `timeout` (the
    run's budget ended before it could start) or `error` (it waits on a dependency cycle).
    """

    __slots__ = ("probe_id", "status", "summary", "blocked_by")

    def __init__(self, probe_id: str, status: str, summary: str, blocked_by: str | None = None) -> None:
        self.probe_id = probe_id
        self.status = status
        self.summary = summary
        self.blocked_by = blocked_by


WAIT = "wait"  # a rule's answer for "not yet"


class Moment(Value):
    """What the rules may know besides the probe: the run as it stands, at one instant."""

    __slots__ = ("known", "statuses", "unfinished", "offline", "now", "run_deadline", "budget")

    def __init__(
        self,
        known: Collection[str],
        statuses: Mapping[str, str],
        unfinished: Collection[str],
        offline: bool,
        now: float,
        run_deadline: float,
        budget: float,
    ) -> None:
        self.known = known  # ids of every probe in this run
        self.statuses = statuses  # id -> status of every finished probe
        self.unfinished = unfinished  # ids still waiting or running
        self.offline = offline
        self.now = now
        self.run_deadline = run_deadline
        self.budget = budget


def missing_dependency(probe: Probe, moment: Moment) -> Settle | None:
    missing = [d for d in probe.depends_on if d not in moment.known]
    if not missing:
        return None
    return Settle(probe.id, "skip", f"depends on {', '.join(missing)}, which is not available in this run", missing[0])


def still_waiting(probe: Probe, moment: Moment) -> str | None:
    # runs_after only orders: wait while a predecessor of this run is unfinished, whatever it ends as.
    if any(d in moment.unfinished for d in probe.depends_on) or any(a in moment.unfinished for a in probe.runs_after):
        return WAIT
    return None


def dependency_did_not_pass(probe: Probe, moment: Moment) -> Settle | None:
    for dependency in probe.depends_on:
        status = moment.statuses[dependency]
        if status not in PASSED:
            return Settle(probe.id, "skip", f"not run: {dependency} did not pass ({status})", dependency)
    return None


def offline_network_probe(probe: Probe, moment: Moment) -> Settle | None:
    if moment.offline and probe.needs_network:
        return Settle(probe.id, "skip", "offline run: no network checks")
    return None


def predecessor_timed_out(probe: Probe, moment: Moment) -> Settle | None:
    if moment.now < moment.run_deadline:
        return None
    waited_on = next((a for a in probe.runs_after if moment.statuses.get(a) == "timeout"), None)
    if waited_on is None:
        return None
    summary = f"not run: it waits for {waited_on}, which did not finish within the run's {moment.budget:g} s"
    return Settle(probe.id, "skip", summary, waited_on)


def budget_used_up(probe: Probe, moment: Moment) -> Settle | None:
    if moment.now < moment.run_deadline:
        return None
    return Settle(probe.id, "timeout", f"not started: the run's {moment.budget:g} s budget was used up")


RULES: tuple[Rule, ...] = (
    missing_dependency,
    still_waiting,
    dependency_did_not_pass,
    offline_network_probe,
    predecessor_timed_out,
    budget_used_up,
)


def decide(probe: Probe, moment: Moment) -> Decision | str:
    """The first rule's answer for a probe that has not started, or `Start` when none applies."""
    for rule in RULES:
        answer = rule(probe, moment)
        if answer is not None:
            return answer
    return Start(probe.id, start_deadline(probe, moment.now, moment.run_deadline))


def start_deadline(probe: Probe, now: float, run_deadline: float) -> float:
    """A probe started at `now` must finish within its own timeout and within the run's budget."""
    return min(now + probe.timeout, run_deadline)


def plan(
    probes: Sequence[Probe],
    statuses: Mapping[str, str],
    running: Collection[str],
    *,
    offline: bool,
    now: float,
    run_deadline: float,
    budget: float,
) -> list[Decision]:
    """Everything to do now, in order: the probes to start and the ones settled without running.

    `statuses` holds the finished probes; `running` the started, unfinished ones. A skip can
    settle a probe listed earlier (its dependant), so passes repeat until nothing changes.
    When in the end nothing runs yet probes wait, they wait on each other: each is an `error`.
    """
    known = {p.id for p in probes}
    settled = dict(statuses)
    started = set(running)
    unfinished = known - set(settled)
    decisions: list[Decision] = []
    moment = Moment(known, settled, unfinished, offline, now, run_deadline, budget)  # sees the updates below
    changed = True
    while changed:
        changed = False
        for probe in probes:
            if probe.id in settled or probe.id in started:
                continue
            decision = decide(probe, moment)
            if decision is WAIT:
                continue
            decisions.append(decision)  # type: ignore[arg-type]
            changed = True
            if isinstance(decision, Start):
                started.add(probe.id)
            else:
                settled[probe.id] = decision.status  # type: ignore[union-attr]
                unfinished.discard(probe.id)
    if not started:
        for probe in probes:
            if probe.id in unfinished:
                decisions.append(Settle(probe.id, "error", "dependency cycle: " + " -> ".join(probe.depends_on)))
    return decisions


def overdue(deadlines: Mapping[str, float], now: float) -> list[str]:
    """The running probes whose deadline has passed, in the order given."""
    return [probe_id for probe_id, deadline in deadlines.items() if now >= deadline]
