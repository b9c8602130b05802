"""The docs stay true: examples regenerate, the README names every option, variable and hook."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.support.homes import REPO
from tests.support.schema_check import assert_valid_report

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_examples_script_renders_five_causes_in_three_formats(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "docs" / "make_examples"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    for cause in (
        "healthy",
        "refresh_token_expired",
        "environment_mismatch",
        "qbo_access_denied",
        "connector_not_starting",
    ):
        doc = json.loads((tmp_path / f"{cause}.json").read_text())
        assert_valid_report(doc)
        assert doc["diagnosis"]["cause"] == cause
        assert (tmp_path / f"{cause}.txt").read_text().startswith(doc["diagnosis"]["headline"])
        assert f"`{cause}`" in (tmp_path / f"{cause}.md").read_text()


def test_committed_examples_show_what_their_names_say() -> None:
    for path in (REPO / "docs" / "examples").glob("*.json"):
        doc = json.loads(path.read_text())
        assert_valid_report(doc)
        assert doc["diagnosis"]["cause"] == path.stem


def test_readme_documents_every_environment_variable() -> None:
    used = set()
    for source in list((REPO / "doctor").rglob("*.py")) + list((REPO / "probes").glob("*.py")):
        used |= set(re.findall(r"\"(SIDEQUEST_[A-Z_]+)\"", source.read_text(encoding="utf-8")))
    assert used, "no SIDEQUEST_* variable found: the scan is broken"
    missing = sorted(v for v in used if v not in README)
    assert not missing, f"README does not document {missing}"


def test_readme_documents_every_doctor_option_and_hook() -> None:
    from doctor import hookspecs
    from doctor.commands.cli import doctor_command

    for param in doctor_command.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert opt in README, f"README does not document {opt}"
    for hook in ("sidequest_probes", "sidequest_secrets"):
        assert hasattr(hookspecs, hook) and hook in README


def readme_headings() -> set[str]:
    """Every Markdown heading's text, with its code quotes taken off."""
    return {m.group(1).strip().strip("`") for m in re.finditer(r"^#{2,6} (.+)$", README, re.MULTILINE)}


def test_plugin_hooks_are_documented_with_their_exact_signature(plugin_set) -> None:
    # datasette's tests/test_docs.py: every hook the plugin manager knows has a README heading
    # `name(arg, ...)` with the hookspec's argument names, so a new or changed hook fails here.
    pm = plugin_set(builtins=False).manager
    hooks = [name for name in vars(pm.hook) if not name.startswith("_")]
    assert set(hooks) >= {"sidequest_probes", "sidequest_secrets"}
    headings = readme_headings()
    for name in hooks:
        caller = getattr(pm.hook, name)
        assert caller.spec is not None, f"{name} has no hookspec"
        expected = f"{name}({', '.join(caller.spec.argnames)})"
        assert expected in headings, f"README has no heading {expected!r}"
