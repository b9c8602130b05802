"""The layout's import rules, checked on every module's imports (module- and function-level).

The rules (README "Layout", ../shared/STYLE.md "Rooms and who may enter"):

- The domain packages doctor/intuit < doctor/store < doctor/claude_desktop import only the
  standard library, third-party libraries, their own package, doctor.values, doctor.redaction
  and lower domain packages; never pluggy, click, the framework (doctor.context, doctor.model
  ...), probes or commands. The connector imports them alone.
- probes.* never import another probes.* module: what one probe learns that another needs is
  a typed fact on the run.
- Nothing outside doctor/commands imports doctor.commands: the commands sit on top.
- httpx is imported only by doctor/intuit/client.py.
- No import cycle among doctor/ and probes/ (tools/import_cycles lists them): none at module
  level, and none through function-level imports either, except through the package root
  `doctor`, whose lazy exports (`run_doctor`, `hookimpl`) import on first use modules that
  read `doctor.__version__`.
- No function in doctor/ or probes/ runs over 60 lines (a decision ladder is small named functions).

Imports under `if TYPE_CHECKING:` count too, except for the cycle check: a type-only import
of the framework from the domain is still the domain knowing the framework.

KNOWN_VIOLATIONS lists (module, imported) pairs that may break a rule or close a cycle, each
with its reason. It is empty: every rule holds. A pair added there must still occur, or the
test fails, so the list can only shrink.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.homes import REPO

TOOL = REPO / "tools" / "import_cycles"

DOMAIN_ORDER = ("doctor.intuit", "doctor.store", "doctor.claude_desktop")  # lower first
DOMAIN_MAY_IMPORT = ("doctor.values", "doctor.redaction")
NEVER_IN_DOMAIN = ("pluggy", "click")
HTTPX_USER = "doctor.intuit.client"

# (module, imported) pairs allowed to break a rule, each with a comment saying why. None today.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def _load_tool():
    loader = importlib.machinery.SourceFileLoader("import_cycles", str(TOOL))
    spec = importlib.util.spec_from_loader("import_cycles", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


tool = _load_tool()


def package_of(name: str, packages: tuple[str, ...]) -> str | None:
    return next((p for p in packages if name == p or name.startswith(p + ".")), None)


def is_ours(name: str) -> bool:
    return package_of(name, tool.PACKAGES) is not None


def rule_broken(module: str, target: str) -> str | None:
    """Which rule importing `target` from `module` breaks, or None."""
    top = target.split(".")[0]
    if top == "httpx" and module != HTTPX_USER:
        return f"httpx is imported only by {HTTPX_USER}"
    if package_of(target, ("doctor.commands",)) and not package_of(module, ("doctor.commands",)):
        return "nothing outside doctor/commands imports doctor.commands"
    if package_of(module, ("probes",)) and package_of(target, ("probes",)) and target != "probes":
        return "probes never import another probes module"
    domain = package_of(module, DOMAIN_ORDER)
    if domain is None:
        return None
    if top in NEVER_IN_DOMAIN:
        return f"the domain ({domain}) never imports {top}"
    if not is_ours(target) or target == "doctor":
        return None  # the standard library, a third-party library, or the package root
    if package_of(target, DOMAIN_MAY_IMPORT) or package_of(target, (domain,)):
        return None
    target_domain = package_of(target, DOMAIN_ORDER)
    if target_domain is not None and DOMAIN_ORDER.index(target_domain) < DOMAIN_ORDER.index(domain):
        return None
    return f"the domain ({domain}) imports only its own package, {', '.join(DOMAIN_MAY_IMPORT)} and lower domains"


def violations(root: Path) -> dict[tuple[str, str], str]:
    known = tool.modules(root)
    found: dict[tuple[str, str], str] = {}
    for name, path in known.items():
        for imp in tool.module_imports(path, name, known):
            broken = rule_broken(name, imp.target)
            if broken:
                found.setdefault((name, imp.target), f"{path.relative_to(root)}:{imp.line}: {broken}")
    return found


def cycle_edges(root: Path) -> set[tuple[str, str]]:
    """The import edges inside every cycle (module- or function-level) not through `doctor` itself."""
    edges = tool.graph(root, ("module", "function"))
    inside = set()
    for component in tool.components(edges):
        if "doctor" in component:
            continue
        members = set(component)
        inside |= {(a, b) for a in component for b in edges[a] & members}
    return inside


def test_no_new_layout_violations() -> None:
    found = violations(REPO)
    new = {pair: why for pair, why in found.items() if pair not in KNOWN_VIOLATIONS}
    assert not new, "layout rules broken:\n" + "\n".join(sorted(new.values()))


def test_no_new_import_cycles() -> None:
    _, deferred = tool.cycles(REPO)
    unexplained = [
        str(c) for c in deferred if "doctor" not in c.modules and not set(zip(c.loop, c.loop[1:])) & KNOWN_VIOLATIONS
    ]
    assert not unexplained, "import cycles through function-level imports:\n" + "\n".join(unexplained)


def test_the_known_violations_list_only_shrinks() -> None:
    gone = KNOWN_VIOLATIONS - set(violations(REPO)) - cycle_edges(REPO)
    assert not gone, f"fixed, so remove from KNOWN_VIOLATIONS: {sorted(gone)}"


@pytest.mark.parametrize(
    "module, target, broken",
    [
        ("doctor.store.token_store", "doctor.context", True),
        ("doctor.store.token_store", "doctor.model", True),
        ("doctor.store.token_store", "pluggy", True),
        ("doctor.intuit.client", "click", True),
        ("doctor.intuit.client", "doctor.store.home", True),  # intuit is below store
        ("doctor.claude_desktop.config", "probes.env_file", True),
        ("doctor.claude_desktop.config", "doctor.commands.cli", True),
        ("doctor.session", "doctor.commands.cli", True),
        ("probes.env_file", "probes.token_age", True),
        ("probes.env_file", "httpx", True),
        ("doctor.claude_desktop.config", "doctor.store.env_file", False),
        ("doctor.store.token_store", "doctor.intuit.client", False),
        ("doctor.store.token_store", "doctor.redaction", False),
        ("doctor.store.token_store", "filelock", False),
        ("doctor.store.token_store", "os", False),
        ("doctor.intuit.client", "httpx", False),
        ("doctor.commands.cli", "doctor.commands.reauth", False),
        ("probes.env_file", "doctor.store.env_file", False),
        ("probes.env_file", "probes", False),
    ],
)
def test_the_rules_themselves(module: str, target: str, broken: bool) -> None:
    assert (rule_broken(module, target) is not None) is broken


def test_the_walker_sees_function_level_and_type_only_imports(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import doctor.values\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from doctor.model import Probe\n"
        "def f():\n"
        "    import httpx\n"
        "    from doctor.context import Context\n"
    )
    path = tmp_path / "doctor" / "store" / "thing.py"
    path.parent.mkdir(parents=True)
    path.write_text(source)
    found = {(i.target, i.level) for i in tool.module_imports(path, "doctor.store.thing", {"doctor.store.sibling"})}
    assert found >= {
        ("doctor.values", "module"),
        ("doctor.store.sibling", "module"),
        ("doctor.model", "type"),
        ("httpx", "function"),
        ("doctor.context", "function"),
    }


def test_import_cycles_script_finds_no_module_level_cycle() -> None:
    proc = subprocess.run([sys.executable, str(TOOL), str(REPO)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "module-level import cycles: 0" in proc.stdout


def test_import_cycles_script_fails_on_a_module_level_cycle(tmp_path: Path) -> None:
    for package in tool.PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "doctor" / "a.py").write_text("from doctor import b\n")
    (tmp_path / "doctor" / "b.py").write_text("import doctor.a\n")
    (tmp_path / "doctor" / "c.py").write_text("def f():\n    from doctor import d\n")
    (tmp_path / "doctor" / "d.py").write_text("import doctor.c\n")
    proc = subprocess.run([sys.executable, str(TOOL), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "module-level import cycles: 1\n  doctor.a -> doctor.b -> doctor.a\n" in proc.stdout
    assert "cycles through function-level imports: 1\n  doctor.c -> doctor.d -> doctor.c\n" in proc.stdout


MAX_FUNCTION_LINES = 60  # #14: twelve functions ran 60-180 lines, each doing several jobs


def long_functions(root: Path = REPO, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """`path:line name (N lines)` for every function in doctor/ and probes/ longer than `limit` lines."""
    import ast

    found = []
    for folder in ("doctor", "probes"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > limit:
                        found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_runs_over_sixty_lines() -> None:
    assert long_functions() == []


def test_the_length_check_sees_a_long_function(tmp_path: Path) -> None:
    (tmp_path / "doctor").mkdir()
    (tmp_path / "probes").mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "probes" / "long.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}")
    assert long_functions(tmp_path) == [f"probes/long.py:5 long ({MAX_FUNCTION_LINES + 1} lines)"]
