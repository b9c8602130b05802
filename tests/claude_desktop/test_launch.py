"""rebuild_launch: the start Claude Desktop would do for the connector's entry (env, PATH, cwd), on real folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from doctor.claude_desktop.config import ConnectorEntry
from doctor.claude_desktop.launch import (
    INHERITED_POSIX,
    MACOS_DESKTOP_PATH,
    PATH_FROM_ENTRY,
    PATH_FROM_ENVIRONMENT,
    PATH_FROM_LOG,
    PATH_PLATFORM_DEFAULT,
    rebuild_launch,
)

SECRET = "RT1-39-H3-1785429816launchunitsecret77"


def _entry(
    command: str = "qb-connector", env: dict | None = None, args: tuple[str, ...] = ("--stdio",)
) -> ConnectorEntry:
    return ConnectorEntry("qb-distributor", command, args, dict(env or {}), "name")


def _program(folder: Path, name: str = "qb-connector") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_env_is_the_entrys_env_over_the_small_inherited_set() -> None:
    environ = {
        "HOME": "/home/o",
        "USER": "o",
        "PATH": "/usr/bin:/bin",
        "SHELL": "/bin/zsh",
        "QB_CLIENT_SECRET": "terminal-only-secret",
        "VIRTUAL_ENV": "/home/o/venv",
        "TERM": "() { :; }; echo shellshock",
    }
    launch = rebuild_launch(
        _entry(env={"QB_REFRESH_TOKEN": SECRET, "USER": "desktop-user", "DEBUG": True, "RETRIES": 3}),
        environ,
        platform="linux",
    )
    assert launch.env == {
        "HOME": "/home/o",
        "USER": "desktop-user",  # the entry's env wins
        "PATH": "/usr/bin:/bin",
        "SHELL": "/bin/zsh",
        "QB_REFRESH_TOKEN": SECRET,
        "DEBUG": "true",  # Desktop passes text: booleans as true/false
        "RETRIES": "3",
    }
    assert set(launch.env) - {"QB_REFRESH_TOKEN", "DEBUG", "RETRIES"} <= set(INHERITED_POSIX)


def test_cwd_is_the_root_not_the_terminals_folder() -> None:
    assert rebuild_launch(_entry(), {"PATH": "/bin"}, platform="darwin").cwd == "/"
    assert rebuild_launch(_entry(), {"PATH": "/bin"}, platform="linux").cwd == "/"


def test_windows_inherits_its_own_set() -> None:
    environ = {"APPDATA": r"C:\Users\o\AppData\Roaming", "PATH": r"C:\Windows", "HOME": "/not/passed", "USER": "o"}
    launch = rebuild_launch(_entry(env={"QB_REALM_ID": "1"}), environ, platform="win32")
    assert launch.env == {"APPDATA": r"C:\Users\o\AppData\Roaming", "PATH": r"C:\Windows", "QB_REALM_ID": "1"}


def test_a_bare_command_resolves_in_desktops_logged_path_not_the_terminals(tmp_path: Path) -> None:
    terminal, desktop = tmp_path / "terminal-bin", tmp_path / "desktop-bin"
    _program(terminal)
    environ = {"PATH": str(terminal)}
    logged = os.pathsep.join([str(desktop), "/usr/bin"])
    launch = rebuild_launch(_entry(), environ, platform="linux", logged_path=logged)
    assert launch.program is None
    assert launch.path_source == PATH_FROM_LOG
    assert launch.search_folders == [str(desktop), "/usr/bin"]
    assert launch.env["PATH"] == logged  # the child gets the PATH Desktop gives it
    found = _program(desktop)
    assert rebuild_launch(_entry(), environ, platform="linux", logged_path=logged).program == str(found)


def test_without_a_log_macos_uses_desktops_known_path_and_others_this_session(tmp_path: Path) -> None:
    launch = rebuild_launch(_entry(), {"PATH": str(tmp_path)}, platform="darwin")
    assert (launch.search_folders, launch.path_source) == (list(MACOS_DESKTOP_PATH), PATH_PLATFORM_DEFAULT)
    program = _program(tmp_path / "bin")
    launch = rebuild_launch(_entry(), {"PATH": str(tmp_path / "bin")}, platform="linux")
    assert (launch.program, launch.path_source) == (str(program), PATH_FROM_ENVIRONMENT)


def test_a_path_in_the_entrys_env_is_the_one_searched(tmp_path: Path) -> None:
    program = _program(tmp_path / "own-bin")
    entry = _entry(env={"PATH": str(tmp_path / "own-bin")})
    launch = rebuild_launch(entry, {"PATH": "/usr/bin"}, platform="linux", logged_path="/bin")
    assert (launch.program, launch.path_source) == (str(program), PATH_FROM_ENTRY)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_a_full_path_is_used_as_it_is_and_a_relative_one_is_not_found(tmp_path: Path) -> None:
    program = _program(tmp_path / "bin")
    assert rebuild_launch(_entry(str(program)), {"PATH": "/nowhere"}, platform="linux").program == str(program)
    assert rebuild_launch(_entry("bin/qb-connector"), {"PATH": str(tmp_path)}, platform="linux").program is None
    (tmp_path / "bin" / "not-executable").write_text("x")
    assert rebuild_launch(_entry(str(tmp_path / "bin" / "not-executable")), {}, platform="linux").program is None


def test_repr_never_shows_env_values() -> None:
    launch = rebuild_launch(_entry(env={"QB_REFRESH_TOKEN": SECRET}), {"PATH": "/bin"}, platform="linux")
    assert SECRET not in repr(launch)
    assert "QB_REFRESH_TOKEN" in repr(launch)
    assert launch.env_keys == ["PATH", "QB_REFRESH_TOKEN"]
