"""The runner: concurrency, isolation of crashes and overruns, dependencies, fixed order."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe
from doctor.plugins import build_plugins
from doctor.session import build_context, execute


def plugin(*probes: Probe) -> SimpleNamespace:
    @hookimpl
    def sidequest_probes():
        return list(probes)

    return SimpleNamespace(sidequest_probes=sidequest_probes)


def run(home: Path, *probes: Probe, timeout: float = 10.0, verbose: bool = False, only=()):
    ctx = build_context(home, home / "no-claude.json", environ={}, offline=True, verbose=verbose)
    plugins = build_plugins({}, load_entry_points=False, load_builtins=False, extra_plugins=[("test", plugin(*probes))])
    return execute(ctx, plugins, timeout=timeout, only=only)


def sleeper(seconds: float, status: str = "ok"):
    def probe_run(ctx):
        time.sleep(seconds)
        return Finding(status, f"slept {seconds}")

    return probe_run


def test_probes_run_concurrently_and_results_keep_registration_order(tmp_path: Path) -> None:
    probes = [Probe(id=f"p{i}", title=f"P{i}", run=sleeper(0.6 - i * 0.2)) for i in range(3)]
    started = time.monotonic()
    result = run(tmp_path, *probes)
    elapsed = time.monotonic() - started
    assert [r.id for r in result.report.results] == ["p0", "p1", "p2"]
    assert elapsed < 1.1, f"probes ran one after another ({elapsed:.2f} s)"
    assert all(r.duration_ms > 0 for r in result.report.results)


def test_a_crashing_probe_is_an_error_with_one_line_and_others_still_run(tmp_path: Path) -> None:
    def boom(ctx):
        raise ValueError("bad data\nsecond line")

    result = run(tmp_path, Probe(id="boom", title="Boom", run=boom), Probe(id="fine", title="Fine", run=sleeper(0)))
    boom_result, fine = result.report.results
    assert boom_result.status == "error"
    assert boom_result.summary == "the probe crashed (ValueError: bad data)"
    assert boom_result.details == []  # traceback only with --verbose
    assert fine.status == "ok"
    assert result.report.diagnosis.cause == "unknown"
    assert result.report.exit_code == 1


def test_verbose_adds_the_traceback(tmp_path: Path) -> None:
    def boom(ctx):
        raise ValueError("bad data")

    result = run(tmp_path, Probe(id="boom", title="Boom", run=boom), verbose=True)
    assert any("Traceback" in line for line in result.report.results[0].details)


def test_an_overrunning_probe_times_out_and_the_run_does_not_wait_for_it(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(
        tmp_path,
        Probe(id="stuck", title="Stuck", run=sleeper(30), timeout=0.3),
        Probe(id="quick", title="Quick", run=sleeper(0)),
    )
    assert time.monotonic() - started < 3
    stuck, quick = result.report.results
    assert stuck.status == "timeout" and "0.3" in stuck.summary
    assert quick.status == "ok"


def test_the_run_budget_bounds_everything(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(
        tmp_path,
        Probe(id="slow", title="Slow", run=sleeper(30), timeout=60, needs_network=False),
        Probe(id="after", title="After", run=sleeper(0), depends_on=("slow",)),
        timeout=0.5,
    )
    assert time.monotonic() - started < 3
    slow, after = result.report.results
    assert slow.status == "timeout"
    assert after.status == "skip" and after.blocked_by == "slow"


def test_dependents_of_a_failed_probe_are_skipped_with_blocked_by(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        Probe(id="child", title="Child", run=sleeper(0), depends_on=("parent",)),
        Probe(id="parent", title="Parent", run=lambda ctx: Finding("fail", "no", cause="lock_problem")),
        Probe(id="grandchild", title="Grandchild", run=sleeper(0), depends_on=("child",)),
        Probe(
            id="ordered",
            title="Ordered",
            run=lambda ctx: Finding("ok", str(ctx.results["parent"].status)),
            runs_after=("parent",),
        ),
    )
    by_id = {r.id: r for r in result.report.results}
    assert by_id["child"].status == "skip" and by_id["child"].blocked_by == "parent"
    assert by_id["grandchild"].status == "skip" and by_id["grandchild"].blocked_by == "child"
    assert by_id["ordered"].status == "ok" and by_id["ordered"].summary == "fail"
    assert result.report.diagnosis.cause == "lock_problem"


def test_dependency_cycles_and_missing_dependencies_do_not_hang(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        Probe(id="a", title="A", run=sleeper(0), depends_on=("b",)),
        Probe(id="b", title="B", run=sleeper(0), depends_on=("a",)),
        Probe(id="c", title="C", run=sleeper(0), depends_on=("nowhere",)),
    )
    by_id = {r.id: r for r in result.report.results}
    assert by_id["a"].status == "error" and "cycle" in by_id["a"].summary
    assert by_id["c"].status == "skip" and by_id["c"].blocked_by == "nowhere"


def test_offline_skips_network_probes(tmp_path: Path) -> None:
    called = []
    result = run(tmp_path, Probe(id="net", title="Net", run=lambda ctx: called.append(1), needs_network=True))
    assert result.report.results[0].status == "skip" and not called


def test_a_probe_returning_garbage_is_an_error(tmp_path: Path) -> None:
    result = run(tmp_path, Probe(id="bad", title="Bad", run=lambda ctx: "fine"))
    assert result.report.results[0].status == "error"
    assert "not a Finding" in result.report.results[0].summary


def test_only_pulls_in_dependencies(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        Probe(id="base", title="Base", run=sleeper(0)),
        Probe(id="top", title="Top", run=sleeper(0), depends_on=("base",)),
        Probe(id="other", title="Other", run=sleeper(0)),
        only=("top",),
    )
    assert [r.id for r in result.report.results] == ["base", "top"]


def test_warnings_keep_healthy_but_strict_exits_one(tmp_path: Path) -> None:
    warn = Probe(id="w", title="W", run=lambda ctx: Finding("warn", "meh"))
    result = run(tmp_path, warn)
    assert result.report.diagnosis.cause == "healthy" and result.report.exit_code == 0
    ctx = build_context(tmp_path, None, environ={}, offline=True)
    plugins = build_plugins({}, load_entry_points=False, load_builtins=False, extra_plugins=[("t", plugin(warn))])
    assert execute(ctx, plugins, strict=True).report.exit_code == 1


def test_root_cause_follows_the_contract_order(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        Probe(id="r", title="R", run=lambda ctx: Finding("fail", "realm", cause="realm_mismatch")),
        Probe(id="e", title="E", run=lambda ctx: Finding("fail", "env", cause="environment_mismatch")),
        Probe(id="n", title="N", run=lambda ctx: Finding("fail", "net", cause="network_unreachable")),
    )
    assert result.report.diagnosis.cause == "environment_mismatch"
    assert result.report.diagnosis.probe_id == "e"


def test_probes_waiting_on_a_timed_out_probe_are_skipped_not_timed_out(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        Probe(id="slow", title="Slow", run=sleeper(30), timeout=60),
        Probe(id="later", title="Later", run=sleeper(0), runs_after=("slow",)),
        timeout=0.5,
    )
    slow, later = result.report.results
    assert slow.status == "timeout"
    assert later.status == "skip" and later.blocked_by == "slow"
