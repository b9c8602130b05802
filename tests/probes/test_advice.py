"""Advice said in several places is written once, in doctor/advice.py, and imported everywhere."""

from __future__ import annotations

import ast

from doctor import advice, diagnosis
from doctor.commands import reauth
from tests.support.homes import REPO

COMMANDS = (advice.REAUTH, advice.REFRESH, advice.FIX)
SENTENCES = tuple(
    value for name, value in vars(advice).items() if name.isupper() and isinstance(value, str) and " " in value
)


def _literals(path) -> list[str]:
    """Every string literal of a module except docstrings (f-string pieces included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_probe_spells_out_a_command_or_sentence_advice_owns() -> None:
    for path in sorted((REPO / "probes").glob("*.py")) + [REPO / "doctor" / "token_chain.py"]:
        for literal in _literals(path):
            for command in COMMANDS:
                assert command not in literal, f"{path.name} spells {command!r}: use doctor.advice"
            for sentence in SENTENCES:
                assert sentence not in literal, f"{path.name} repeats {sentence!r}: use doctor.advice"


def test_the_commands_and_the_diagnosis_use_the_same_objects() -> None:
    assert reauth.RESTART_ADVICE is advice.RESTART_ADVICE
    assert diagnosis.QUIT_CLAUDE is advice.QUIT_CLAUDE
    assert diagnosis.REAUTH is advice.REAUTH_CLICK_CONNECT


def test_the_restart_advice_reads_as_it_did() -> None:
    # Tests, docs/examples and the users' own notes quote these sentences: moving them must not reword them.
    assert advice.QUIT_CLAUDE == (
        "Quit Claude Desktop completely (macOS: Cmd+Q; Windows: right-click the Claude icon in the "
        "tray and choose Quit), then open it again."
    )
    assert advice.QUIT_AND_REOPEN == (
        "Quit Claude Desktop completely and open it again (macOS: Cmd+Q; Windows: right-click the "
        "Claude icon in the tray and choose Quit), so it loads the new settings."
    )
    assert advice.RESTART_ADVICE.startswith("Last step: quit Claude Desktop completely (on a Mac: ")
    assert advice.environment_remediation("sandbox", "production").text == (
        "Set QB_ENVIRONMENT=sandbox in .env, or run `sidequest reauth-qb --environment production`."
    )
