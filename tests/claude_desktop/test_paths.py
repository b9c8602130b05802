"""Tests for doctor.claude_desktop.paths: every platform's config location, and command resolution."""

from __future__ import annotations

import os
from pathlib import Path

from doctor.claude_desktop.paths import (
    default_config_path,
    desktop_config,
    desktop_platform,
    log_folders,
    resolve_claude_config,
    resolve_command,
    user_data_folder,
)

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


# --------------------------------------------------------------------------- which of several files Desktop reads


def _folder(path: Path, *, config: float | None, folder: float, logs: float | None = None) -> Path:
    """A `<userData>` folder with its config and logs last written at the given times."""
    path.mkdir(parents=True, exist_ok=True)
    if logs is not None:
        (path / "logs").mkdir(exist_ok=True)
        (path / "logs" / "mcp.log").write_text("log\n")
        os.utime(path / "logs" / "mcp.log", (logs, logs))
    if config is not None:
        (path / "claude_desktop_config.json").write_text("{}")
        os.utime(path / "claude_desktop_config.json", (config, config))
    os.utime(path, (folder, folder))
    return path / "claude_desktop_config.json"


def _windows(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    environ = {"APPDATA": str(tmp_path / "Roaming"), "LOCALAPPDATA": str(tmp_path / "Local")}
    msix = tmp_path / "Local" / "Packages" / "Claude_pzs8sxrjxfjjc" / "LocalCache" / "Roaming" / "Claude"
    return environ, tmp_path / "Roaming" / "Claude", msix


def test_with_several_windows_files_the_one_beside_the_newest_logs_is_read(tmp_path: Path) -> None:
    environ, classic, msix = _windows(tmp_path)
    _folder(classic, config=2_000, folder=2_000, logs=1_000)
    store = _folder(msix, config=1_000, folder=1_000, logs=3_000)
    choice = desktop_config(environ, "win32", tmp_path)
    assert (choice.path, choice.reason, choice.chosen.kind) == (store, "newest_logs", "windows_msix")
    assert default_config_path(environ, "win32", tmp_path) == store
    assert user_data_folder(environ, "win32", tmp_path) == msix


def test_without_logs_the_newest_file_or_folder_is_read(tmp_path: Path) -> None:
    environ, classic, msix = _windows(tmp_path)
    standard = _folder(classic, config=3_000, folder=3_000)
    _folder(msix, config=1_000, folder=2_000)
    choice = desktop_config(environ, "win32", tmp_path)
    assert (choice.path, choice.reason) == (standard, "newest")
    # An installed Store build busy in its folder beats a standard file left behind, config or not.
    (msix / "claude_desktop_config.json").unlink()
    os.utime(msix, (4_000, 4_000))
    assert desktop_config(environ, "win32", tmp_path).path == msix / "claude_desktop_config.json"
    # A tie goes to the Store build, whose app cannot see the other file.
    os.utime(msix, (3_000, 3_000))
    assert desktop_config(environ, "win32", tmp_path).chosen.kind == "windows_msix"


def test_one_folder_is_only_and_none_is_the_usual_place(tmp_path: Path) -> None:
    environ, classic, msix = _windows(tmp_path)
    choice = desktop_config(environ, "win32", tmp_path)
    assert (choice.path, choice.reason) == (classic / "claude_desktop_config.json", "usual")
    assert [folder.kind for folder in choice.folders] == ["windows_msix", "windows"]
    _folder(classic, config=1_000, folder=1_000)
    assert desktop_config(environ, "win32", tmp_path).reason == "only"


def test_another_store_package_is_a_location_too(tmp_path: Path) -> None:
    environ, _, _ = _windows(tmp_path)
    other = tmp_path / "Local" / "Packages" / "Claude_0th3rpublisher" / "LocalCache" / "Roaming" / "Claude"
    config = _folder(other, config=1_000, folder=1_000)
    (tmp_path / "Local" / "Packages" / "Spotify_zpdnekdrzrea0").mkdir()
    choice = desktop_config(environ, "win32", tmp_path)
    assert [folder.folder for folder in choice.folders][1] == other
    assert len(choice.folders) == 3 and (choice.path, choice.reason) == (config, "only")
    assert other / "logs" in log_folders(environ, "win32", tmp_path)


def test_linux_flatpak_build(tmp_path: Path) -> None:
    flatpak = tmp_path / ".var" / "app" / "com.anthropic.Claude" / "config" / "Claude"
    assert log_folders({}, "linux", tmp_path) == [tmp_path / ".config" / "Claude" / "logs"]
    native = _folder(tmp_path / ".config" / "Claude", config=1_000, folder=1_000)
    own = _folder(flatpak, config=2_000, folder=2_000)
    assert desktop_config({}, "linux", tmp_path).path == own
    assert default_config_path({"SIDEQUEST_CLAUDE_CONFIG": str(native)}, "linux", tmp_path) == native
    assert log_folders({}, "linux", tmp_path) == [tmp_path / ".config" / "Claude" / "logs", flatpak / "logs"]


def test_sidequest_platform_chooses_the_layout(tmp_path: Path) -> None:
    assert desktop_platform({"SIDEQUEST_PLATFORM": "windows"}) == "win32"
    assert desktop_platform({"SIDEQUEST_PLATFORM": "Darwin "}) == "darwin"
    assert desktop_platform({"SIDEQUEST_PLATFORM": "linux"}) == "linux"
    assert desktop_platform({"SIDEQUEST_PLATFORM": "beos"}) == desktop_platform({})
    environ = {"SIDEQUEST_PLATFORM": "darwin"}
    assert default_config_path(environ, home=tmp_path) == (
        tmp_path / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    )
    assert log_folders(environ, home=tmp_path) == [tmp_path / "Library" / "Logs" / "Claude"]
