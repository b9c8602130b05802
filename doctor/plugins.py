"""Build the plugin manager and collect probe descriptions, tolerating broken plugins.

Built-in probes (the modules named in `BUILTIN_PROBES`) register first, then the entry points
of group `sidequest`. A plugin that fails to import, misspells a hook, raises from a hook or
offers a duplicate probe id is recorded as a `PluginProblem` and left out; the doctor still
runs and reports it. `SIDEQUEST_DISABLE_PLUGINS` (comma-separated plugin names) blocks plugins.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any, Iterable, Mapping

import pluggy

from doctor import hookspecs
from doctor.model import Probe
from doctor.values import Value

DISABLE_ENV = "SIDEQUEST_DISABLE_PLUGINS"

# The built-in probes, in the order they are shown: one explicit list (as conda's health checks
# `plugins = [...]` and llm's DEFAULT_PLUGINS), so a reader sees what ships and a module dropped
# into probes/ runs only once it is named here (tests/framework/test_plugins.py checks the two agree).
BUILTIN_PROBES: tuple[str, ...] = (
    "probes.env_file",
    "probes.token_age",
    "probes.refresh_chain",
    "probes.clock_skew",
    "probes.realm_match",
    "probes.environment_match",
    "probes.lock_health",
    "probes.claude_config_sync",
    "probes.claude_sources",
    "probes.connector_launch",
    "probes.claude_logs",
    "probes.keepalive",
)


class PluginProblem(Value):
    __slots__ = ("plugin", "message")

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        self.message = message


class RegisteredProbe(Value):
    __slots__ = ("probe", "plugin")

    def __init__(self, probe: Probe, plugin: str) -> None:
        self.probe = probe
        self.plugin = plugin


class PluginSet:
    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self.probes: list[RegisteredProbe] = []
        self.problems: list[PluginProblem] = []
        self.disabled: list[str] = []


def disabled_names(environ: Mapping[str, str]) -> set[str]:
    raw = environ.get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def entry_points(group: str, path: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """`(name, "module:attr")` for every entry point of `group` installed on `path`.

    Reads `*.dist-info/entry_points.txt` directly, for a lookup that is a folder listing and a
    small INI file: importing `importlib.metadata` and asking it for one group costs 105 M
    instructions in the test virtualenv (23 distributions), more than a third of the whole
    offline doctor (282 M); this scan costs about 0.6 M. As with importlib.metadata, the first
    distribution of a name on the path wins.
    """
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    marker = group.encode()
    if path is None:
        # The interpreter's own library folders never hold an installed distribution: not
        # listing their few hundred names saves a third of the scan.
        stdlib = os.path.dirname(os.__file__)
        own = {stdlib, os.path.join(stdlib, "lib-dynload")}
        path = [entry for entry in sys.path if entry not in own]
    for entry in path:
        where = entry or "."
        try:
            names = os.listdir(where)
        except OSError:
            continue
        # Most folders on the path hold no distribution (the standard library, lib-dynload, the
        # script's folder): one search of the joined listing, in C, skips their hundreds of names
        # without a Python-level loop (half of this scan's cost before).
        listing = "\n".join(names) + "\n"
        if ".dist-info\n" not in listing and ".egg-info\n" not in listing:
            continue
        folders = sorted([name for name in names if name.endswith((".dist-info", ".egg-info"))])
        for folder in folders:
            dist = folder.rsplit(".", 1)[0].split("-", 1)[0].lower().replace("-", "_").replace(".", "_")
            if dist in seen:
                continue
            seen.add(dist)
            data = _read_small_file(f"{where}{os.sep}{folder}{os.sep}entry_points.txt")
            if data is None:
                continue
            if marker not in data:  # most distributions declare no entry point of ours
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            section = None
            for raw in text.splitlines():
                line = raw.strip()
                if not line or line.startswith(("#", ";")):
                    continue
                if line.startswith("[") and line.endswith("]"):
                    section = line[1:-1].strip()
                elif section == group and "=" in line:
                    name, value = (part.strip() for part in line.split("=", 1))
                    found.append((name, value.split("[", 1)[0].strip()))
    return found


def _read_small_file(path: str) -> bytes | None:
    """The file's bytes, or None when it cannot be read.

    os.open/os.read rather than open(): no io.FileIO and BufferedReader per file, for a scan
    that tries one file per installed distribution.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def load_entry_point(value: str) -> Any:
    module_name, _, attrs = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for attr in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, attr)
    return obj


class BuiltinHooks:
    """A built-in probe module as pluggy sees it: its `sidequest_*` functions and nothing else.

    pluggy looks up every name `dir()` gives for a registered object, statically and one at a
    time; for a module (or a bare module's dunders) that made most of the doctor's
    plugin-loading time. Third-party plugins are registered as they come, so a misspelt hook
    there is still caught.
    """

    def __init__(self, module: ModuleType) -> None:
        self.__name__ = module.__name__
        for name, value in vars(module).items():
            if name.startswith("sidequest_"):
                setattr(self, name, value)

    def __dir__(self) -> list[str]:
        return [name for name in vars(self) if name.startswith("sidequest_")]

    def __repr__(self) -> str:
        return f"<built-in probes {self.__name__}>"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _register(plugins: PluginSet, obj: Any, name: str) -> bool:
    pm = plugins.manager
    try:
        pm.register(obj, name=name)
        pm.check_pending()
    except Exception as exc:  # a misspelt hook or a bad hookimpl: left out, reported
        if pm.is_registered(obj):
            pm.unregister(obj)
        plugins.problems.append(PluginProblem(name, f"rejected: {_one_line(exc)}"))
        return False
    return True


def build_plugins(
    environ: Mapping[str, str],
    *,
    load_entry_points: bool = True,
    load_builtins: bool = True,
    extra_plugins: Iterable[tuple[str, Any]] = (),
) -> PluginSet:
    """Register built-ins, then entry points, then `extra_plugins`; collect their probes."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    plugins = PluginSet(manager=pm)
    blocked = disabled_names(environ)

    candidates: list[tuple[str, Any]] = []
    for module_name in BUILTIN_PROBES if load_builtins else ():
        if module_name in blocked:
            plugins.disabled.append(module_name)
            continue
        try:
            candidates.append((module_name, BuiltinHooks(importlib.import_module(module_name))))
        except Exception as exc:
            plugins.problems.append(PluginProblem(module_name, f"failed to load: {_one_line(exc)}"))

    if load_entry_points:
        for name, value in sorted(entry_points(hookspecs.ENTRY_POINT_GROUP)):
            if name in blocked:
                plugins.disabled.append(name)
                continue
            try:
                candidates.append((name, load_entry_point(value)))
            except Exception as exc:
                plugins.problems.append(PluginProblem(name, f"failed to load: {_one_line(exc)}"))

    for name, obj in extra_plugins:
        if name in blocked:
            plugins.disabled.append(name)
            continue
        candidates.append((name, obj))

    for name, obj in candidates:
        _register(plugins, obj, name)

    _collect_probes(plugins)
    return plugins


def _collect_probes(plugins: PluginSet) -> None:
    pm = plugins.manager
    seen: dict[str, str] = {}
    # get_hookimpls() lists in registration order (calls run in reverse); built-ins win.
    impls = pm.hook.sidequest_probes.get_hookimpls()
    for impl in impls:
        name = impl.plugin_name
        try:
            offered = list(impl.function() or ())
        except Exception as exc:
            plugins.problems.append(PluginProblem(name, f"sidequest_probes failed: {_one_line(exc)}"))
            continue
        for probe in offered:
            if not isinstance(probe, Probe):
                plugins.problems.append(
                    PluginProblem(name, f"returned {type(probe).__name__}, not a doctor.model.Probe")
                )
                continue
            if probe.id in seen:
                plugins.problems.append(
                    PluginProblem(
                        name,
                        f"duplicate probe id {probe.id!r} (already provided by {seen[probe.id]}); ignored",
                    )
                )
                continue
            seen[probe.id] = name
            plugins.probes.append(RegisteredProbe(probe, name))


def secrets_from_plugins(plugins: PluginSet, ctx: Any) -> tuple[list[tuple[str, str]], list[PluginProblem]]:
    """Ask every plugin for extra secrets; a failing hook is a problem, never a crash."""
    found: list[tuple[str, str]] = []
    problems: list[PluginProblem] = []
    for impl in plugins.manager.hook.sidequest_secrets.get_hookimpls():
        try:
            kwargs = {"ctx": ctx}
            items = list(impl.function(*(kwargs[a] for a in impl.argnames)) or ())
        except Exception as exc:
            problems.append(PluginProblem(impl.plugin_name, f"sidequest_secrets failed: {_one_line(exc)}"))
            continue
        for item in items:
            if isinstance(item, tuple) and len(item) == 2:
                found.append((str(item[0]), str(item[1])))
            elif isinstance(item, str):
                found.append(("secret", item))
    return found, problems
