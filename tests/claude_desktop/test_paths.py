"""Tests for doctor.claude_desktop.paths: every platform's config location, and command resolution."""

from __future__ import annotations

from pathlib import Path

from doctor.claude_desktop.paths import default_config_path, resolve_claude_config, resolve_command

# --------------------------------------------------------------------------- locating


def test_default_path_override_wins(tmp_path: Path) -> None:
    environ = {"SIDEQUEST_CLAUDE_CONFIG": "/etc/custom.json", "XDG_CONFIG_HOME": "/x"}
    assert default_config_path(environ, "linux", tmp_path) == Path("/etc/custom.json")
    tilde = {"SIDEQUEST_CLAUDE_CONFIG": "~/c.json"}
    assert default_config_path(tilde, "darwin", tmp_path) == tmp_path / "c.json"


def test_default_path_macos(tmp_path: Path) -> None:
    assert default_config_path({}, "darwin", tmp_path) == (
        tmp_path / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    )


def test_default_path_windows_with_and_without_msix(tmp_path: Path) -> None:
    environ = {"APPDATA": str(tmp_path / "Roaming"), "LOCALAPPDATA": str(tmp_path / "Local")}
    classic = tmp_path / "Roaming" / "Claude" / "claude_desktop_config.json"
    assert default_config_path(environ, "win32", tmp_path) == classic
    msix = tmp_path / "Local" / "Packages" / "Claude_pzs8sxrjxfjjc" / "LocalCache"
    msix = msix / "Roaming" / "Claude"
    msix.mkdir(parents=True)
    assert default_config_path(environ, "win32", tmp_path) == msix / "claude_desktop_config.json"


def test_default_path_linux_xdg(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    assert default_config_path({"XDG_CONFIG_HOME": str(xdg)}, "linux", tmp_path) == (
        xdg / "Claude" / "claude_desktop_config.json"
    )
    default = tmp_path / ".config" / "Claude" / "claude_desktop_config.json"
    assert default_config_path({}, "linux", tmp_path) == default
    # A relative XDG_CONFIG_HOME is invalid by the XDG spec and ignored.
    assert default_config_path({"XDG_CONFIG_HOME": "rel"}, "linux", tmp_path) == default


def test_resolve_claude_config_prefers_the_cli_path(tmp_path: Path) -> None:
    environ = {"SIDEQUEST_CLAUDE_CONFIG": str(tmp_path / "env.json")}
    assert resolve_claude_config(str(tmp_path / "cli.json"), environ) == tmp_path / "cli.json"
    assert resolve_claude_config(None, environ) == tmp_path / "env.json"
    assert resolve_claude_config("~/c.json", environ) == Path.home() / "c.json"


def test_resolve_command(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "qb-tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    plain = tmp_path / "bin" / "not-executable"
    plain.write_text("")
    tool.chmod(0o755)
    environ = {"PATH": str(tool.parent)}
    assert resolve_command(str(tool), environ) == str(tool)
    assert resolve_command("qb-tool", environ) == str(tool)
    assert resolve_command(str(plain), environ) is None
    assert resolve_command("not-executable", environ) is None
    assert resolve_command(str(tmp_path / "absent"), environ) is None
    assert resolve_command("qb-tool", {"PATH": str(tmp_path)}) is None
    assert resolve_command("bin/qb-tool", environ) is None  # cwd of Claude Desktop is unknown
    assert resolve_command("", environ) is None
