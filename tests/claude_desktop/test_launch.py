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


# -- a Desktop Extension's launch ------------------------------------------------------------------


def _bundle(tmp_path: Path, server: dict, *, user_config: dict | None = None, options: dict | None = None):
    """An extension as load_extensions reads it from a <userData> laid out as Desktop lays it out."""
    import json

    from doctor.claude_desktop.extensions import load_extensions

    ext_id = "local.mcpb.sidequest-automation.qb-distributor"
    user_data = tmp_path / "Claude"
    manifest = {"manifest_version": "0.3", "name": "qb-distributor", "display_name": "SideQuest QuickBooks",
                "version": "0.16.0", "server": server, "user_config": options or {}}  # fmt: skip
    (user_data / "Claude Extensions" / ext_id).mkdir(parents=True)
    (user_data / "Claude Extensions" / ext_id / "manifest.json").write_text(json.dumps(manifest))
    (user_data / "Claude Extensions Settings").mkdir()
    (user_data / "Claude Extensions Settings" / f"{ext_id}.json").write_text(
        json.dumps({"isEnabled": True, "userConfig": user_config or {}})
    )
    (user_data / "extensions-installations.json").write_text(
        json.dumps({"extensions": {ext_id: {"id": ext_id, "version": "0.16.0", "manifest": manifest}}})
    )
    (extension,) = load_extensions(user_data)
    return extension


def test_an_extensions_launch_is_its_manifests_env_substituted_over_the_inherited_set(tmp_path: Path) -> None:
    from doctor.claude_desktop.launch import FROM_EXTENSION, rebuild_extension_launch

    python = _program(tmp_path / "bin", "python3")
    extension = _bundle(
        tmp_path,
        {
            "type": "python",
            "mcp_config": {
                "command": "python3",
                "args": ["${__dirname}/server/main.py", "--realm", "${user_config.realm_id}"],
                "env": {
                    "QB_REFRESH_TOKEN": "${user_config.token}",
                    "QB_HOME": "${HOME}${/}.qb",
                    "QB_SANDBOX": "${user_config.sandbox}",
                    "USER": "from-manifest",
                },
            },  # fmt: skip
        },
        user_config={"token": SECRET, "realm_id": "9130"},
        options={
            "token": {"type": "string", "sensitive": True, "required": True},
            "realm_id": {"type": "string"},
            "sandbox": {"type": "boolean", "default": True},
        },  # fmt: skip
    )
    environ = {"HOME": "/home/o", "USER": "o", "PATH": str(python.parent), "VIRTUAL_ENV": "/home/o/venv"}
    launch = rebuild_extension_launch(extension, environ, platform="linux", home=Path("/home/o"))
    assert launch is not None and launch.source == FROM_EXTENSION
    assert launch.extension_id == extension.id and launch.name == "SideQuest QuickBooks"
    assert launch.program == str(python) and launch.cwd == "/"
    assert launch.args == (f"{extension.folder}/server/main.py", "--realm", "9130")
    assert launch.env == {
        "HOME": "/home/o",
        "USER": "from-manifest",
        "PATH": str(python.parent),
        "QB_REFRESH_TOKEN": SECRET,
        "QB_HOME": "/home/o/.qb",
        "QB_SANDBOX": "true",
    }
    assert launch.runtime is None
    assert SECRET not in repr(launch)


def test_a_relative_command_of_an_extension_is_found_in_its_folder(tmp_path: Path) -> None:
    from doctor.claude_desktop.launch import rebuild_extension_launch

    extension = _bundle(tmp_path, {"type": "binary", "mcp_config": {"command": "server/qb-connector", "args": []}})
    program = _program(extension.folder / "server")
    launch = rebuild_extension_launch(extension, {"PATH": "/usr/bin"}, platform="linux")
    assert launch is not None and launch.program == str(program)
    assert launch.search_folders == [str(extension.folder)] and launch.path_source == "extension_folder"
    assert launch.env["PATH"] == "/usr/bin"  # the connector still gets Desktop's PATH


def test_node_is_desktops_built_in_runtime_unless_turned_off(tmp_path: Path) -> None:
    from doctor.claude_desktop.launch import RUNTIME_FOR_BUILT_IN_NODE, rebuild_extension_launch

    node = _program(tmp_path / "bin", "node")
    extension = _bundle(tmp_path, {"type": "node", "mcp_config": {"command": "node", "args": ["${__dirname}/i.js"]}})
    environ = {"PATH": str(node.parent)}
    built_in = rebuild_extension_launch(extension, environ, platform="darwin", logged_path=str(node.parent))
    assert built_in is not None and built_in.runtime == RUNTIME_FOR_BUILT_IN_NODE and built_in.program == str(node)
    system = rebuild_extension_launch(extension, environ, platform="linux", built_in_node=False)
    assert system is not None and system.runtime is None


def test_an_extension_whose_manifest_names_no_command_gives_no_launch(tmp_path: Path) -> None:
    from doctor.claude_desktop.launch import rebuild_extension_launch

    uv = _bundle(tmp_path, {"type": "uv", "entry_point": "src/server.py"})  # manifest 0.4: the host runs uv itself
    assert rebuild_extension_launch(uv, {"PATH": "/usr/bin"}, platform="linux") is None
