"""The runner's start/skip decisions (doctor/scheduling.py), without threads or clocks."""

from __future__ import annotations

from doctor import scheduling
from doctor.model import Finding, Probe
from doctor.scheduling import Moment, Settle, Start, plan


def probe(id: str, **fields) -> Probe:
    return Probe(id=id, title=id.upper(), run=lambda ctx: Finding("ok", "fine"), **fields)


def moment(statuses=None, unfinished=(), *, known=("a", "b", "c"), offline=False, now=0.0, deadline=10.0):
    return Moment(set(known), dict(statuses or {}), set(unfinished), offline, now, deadline, 10.0)


def test_missing_dependency_is_a_skip_naming_it() -> None:
    decision = scheduling.missing_dependency(probe("a", depends_on=("nowhere",)), moment())
    assert decision == Settle("a", "skip", "depends on nowhere, which is not available in this run", "nowhere")
    assert scheduling.missing_dependency(probe("a", depends_on=("b",)), moment()) is None


def test_unfinished_dependencies_and_predecessors_make_it_wait() -> None:
    assert scheduling.still_waiting(probe("a", depends_on=("b",)), moment(unfinished={"b"})) == scheduling.WAIT
    assert scheduling.still_waiting(probe("a", runs_after=("b",)), moment(unfinished={"b"})) == scheduling.WAIT
    assert scheduling.still_waiting(probe("a", depends_on=("b",)), moment({"b": "ok"})) is None


def test_a_dependency_that_did_not_pass_blocks_it() -> None:
    for status in ("fail", "error", "timeout", "skip"):
        decision = scheduling.dependency_did_not_pass(probe("a", depends_on=("b",)), moment({"b": status}))
        assert decision == Settle("a", "skip", f"not run: b did not pass ({status})", "b")
    for status in ("ok", "warn"):
        assert scheduling.dependency_did_not_pass(probe("a", depends_on=("b",)), moment({"b": status})) is None


def test_offline_skips_only_network_probes() -> None:
    assert scheduling.offline_network_probe(probe("a", needs_network=True), moment(offline=True)).status == "skip"
    assert scheduling.offline_network_probe(probe("a"), moment(offline=True)) is None
    assert scheduling.offline_network_probe(probe("a", needs_network=True), moment()) is None


def test_after_the_budget_a_waiter_on_a_timed_out_probe_is_skipped_and_others_time_out() -> None:
    waiter = probe("a", runs_after=("b",))
    late = moment({"b": "timeout"}, now=10.0)
    assert scheduling.predecessor_timed_out(waiter, late).blocked_by == "b"
    assert scheduling.predecessor_timed_out(waiter, moment({"b": "timeout"}, now=9.9)) is None
    assert scheduling.budget_used_up(probe("c"), late) == Settle(
        "c", "timeout", "not started: the run's 10 s budget was used up"
    )
    assert scheduling.budget_used_up(probe("c"), moment(now=9.9)) is None


def test_decide_starts_with_the_nearer_of_its_timeout_and_the_run_deadline() -> None:
    assert scheduling.decide(probe("a", timeout=3.0), moment(now=1.0)) == Start("a", 4.0)
    assert scheduling.decide(probe("a", timeout=30.0), moment(now=1.0)) == Start("a", 10.0)


def test_plan_settles_a_chain_in_one_call_whatever_the_listing_order() -> None:
    probes = [probe("c", depends_on=("b",)), probe("b", depends_on=("a",)), probe("a")]
    decisions = plan(probes, {"a": "fail"}, (), offline=False, now=0.0, run_deadline=10.0, budget=10.0)
    assert [(d.probe_id, d.status, d.blocked_by) for d in decisions] == [("b", "skip", "a"), ("c", "skip", "b")]


def test_plan_starts_what_is_ready_and_leaves_running_probes_alone() -> None:
    probes = [probe("a"), probe("b", depends_on=("a",)), probe("c")]
    decisions = plan(probes, {}, {"c"}, offline=False, now=0.0, run_deadline=10.0, budget=10.0)
    assert decisions == [Start("a", 5.0)]


def test_plan_reports_a_dependency_cycle_when_nothing_can_run() -> None:
    probes = [probe("a", depends_on=("b",)), probe("b", depends_on=("a",))]
    decisions = plan(probes, {}, (), offline=False, now=0.0, run_deadline=10.0, budget=10.0)
    assert [(d.probe_id, d.status, d.summary) for d in decisions] == [
        ("a", "error", "dependency cycle: b"),
        ("b", "error", "dependency cycle: a"),
    ]
    # While something runs, waiting is not a cycle.
    assert plan(probes + [probe("c")], {}, {"c"}, offline=False, now=0.0, run_deadline=10.0, budget=10.0) == []


def test_overdue_lists_running_probes_past_their_deadline() -> None:
    assert scheduling.overdue({"a": 1.0, "b": 3.0, "c": 2.0}, 2.0) == ["a", "c"]
