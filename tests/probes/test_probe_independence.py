"""Probes stand alone: none imports another, what they hand on is a typed fact of the run, and
disabling one probe module removes exactly that module's probes.
"""

from __future__ import annotations

import ast
from datetime import datetime, timezone
from pathlib import Path

from doctor.context import Context
from doctor.plugins import build_plugins
from tests.support.homes import REPO

PROBES = sorted((REPO / "probes").glob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_no_probe_imports_another() -> None:
    assert len(PROBES) > 5, "the probes folder scan is broken"
    for path in PROBES:
        bad = sorted(m for m in _imported_modules(path) if m == "probes" or m.startswith(("probes.", ".")))
        assert not bad, f"{path.name} imports {bad}"


def test_no_probe_reads_an_untyped_shared_dict() -> None:
    for path in PROBES:
        assert "ctx.shared" not in path.read_text(encoding="utf-8"), path.name


def test_each_run_has_its_own_facts(tmp_path: Path) -> None:
    first = Context(tmp_path, None, environ={})
    second = Context(tmp_path, None, environ={})
    when = datetime(2026, 11, 26, tzinfo=timezone.utc)
    first.run_facts.record_server_date("refresh", when, when)
    assert [d.where for d in first.run_facts.server_dates] == ["refresh"]
    assert second.run_facts.server_dates == ()
    assert first.run_facts._lock is not second.run_facts._lock


def test_a_company_lookup_is_asked_once_and_a_crash_reaches_every_asker(tmp_path: Path) -> None:
    facts = Context(tmp_path, None, environ={}).run_facts
    calls: list[str] = []

    def ask() -> str:
        calls.append("asked")
        return "answer"

    assert facts.company_lookup("sandbox", "1", ask) == "answer"
    assert facts.company_lookup("sandbox", "1", ask) == "answer"
    assert calls == ["asked"]

    def crash() -> str:
        raise RuntimeError("boom")

    facts.start_company_lookup("production", "1", crash)
    for _ in range(2):
        try:
            facts.company_lookup("production", "1", ask)
        except RuntimeError as exc:
            assert str(exc) == "boom"
        else:
            raise AssertionError("the crash was swallowed")
    assert calls == ["asked"]


def test_disabling_refresh_chain_keeps_clock_skew() -> None:
    plugins = build_plugins({"SIDEQUEST_DISABLE_PLUGINS": "probes.refresh_chain"}, load_entry_points=False)
    ids = [r.probe.id for r in plugins.probes]
    assert "refresh-chain" not in ids
    assert "clock-skew" in ids
    assert plugins.disabled == ["probes.refresh_chain"]


def test_built_in_probes_keep_their_order() -> None:
    plugins = build_plugins({}, load_entry_points=False)
    assert [r.probe.id for r in plugins.probes] == [
        "env-file",
        "token-age",
        "refresh-chain",
        "clock-skew",
        "realm-match",
        "environment-match",
        "lock-health",
        "claude-config-sync",
        "claude-sources",
        "connector-launch",
        "claude-logs",
        "keepalive",
    ]
    assert {r.probe.id: r.plugin for r in plugins.probes}["clock-skew"] == "probes.clock_skew"
