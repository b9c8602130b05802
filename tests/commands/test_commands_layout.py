"""The commands sit on top: nothing imports them, only the console script imports the click module, no cycles.

Imports inside functions count too: the cycle issue 14 found (reauth and refresh importing
`emit`/`checked` from the CLI) was made of lazy imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.homes import REPO


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def test_nothing_below_the_commands_imports_them() -> None:
    offenders = []
    for folder in ("doctor", "probes"):
        for path in (REPO / folder).rglob("*.py"):
            if "commands" in path.relative_to(REPO).parts:
                continue
            if any(name.startswith("doctor.commands") for name in imports_of(path)):
                offenders.append(module_name(path))
    assert offenders == []


def test_commands_never_import_the_cli_and_have_no_cycles() -> None:
    modules = {module_name(p): p for p in (REPO / "doctor" / "commands").glob("*.py")}
    graph = {
        name: {other for other in imports_of(path) if other in modules and other != name}
        for name, path in modules.items()
    }
    # The console script (doctor/commands/script.py) sits above the click module and starts it;
    # nothing imports the console script.
    assert [name for name, deps in graph.items() if "doctor.commands.script" in deps] == []
    assert [name for name, deps in graph.items() if "doctor.commands.cli" in deps] == ["doctor.commands.script"]

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert [name for name in graph if reaches(name, name, {name})] == []
