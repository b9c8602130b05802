"""Tests for doctor.claude_desktop.extensions: a `<userData>` folder laid out as Claude Desktop lays it out
(registry, unpacked bundles, per-extension settings), and the launch Desktop builds from a manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.claude_desktop.extensions import (
    ExtensionsError,
    find_connector,
    launch_config,
    load_extensions,
    missing_required,
)

SECRET_TOKEN = "RT1-secret-extension-token-5e6f7a8b"

# A QuickBooks connector bundle's manifest (manifest_version 0.3), as Desktop stores it in the registry.
QB_MANIFEST = {
    "manifest_version": "0.3",
    "name": "qb-distributor",
    "display_name": "SideQuest QuickBooks",
    "version": "0.16.0",
    "author": {"name": "SideQuest Automation"},
    "server": {
        "type": "python",
        "entry_point": "server/main.py",
        "mcp_config": {
            "command": "python3",
            "args": ["${__dirname}/server/main.py", "--realm", "${user_config.realm_id}", "${user_config.folders}"],
            "env": {
                "QB_REFRESH_TOKEN": "${user_config.refresh_token}",
                "QB_REALM_ID": "${user_config.realm_id}",
                "QB_SANDBOX": "${user_config.sandbox}",
                "QB_HOME": "${HOME}${/}.qb-distributor-mcp",
            },
            "platform_overrides": {
                "win32": {"command": "${__dirname}\\venv\\Scripts\\python.exe", "env": {"QB_REALM_ID": "win"}},
            },
        },
    },
    "user_config": {
        "refresh_token": {"type": "string", "title": "Refresh token", "sensitive": True, "required": True},
        "realm_id": {"type": "string", "title": "Company ID", "required": True},
        "sandbox": {"type": "boolean", "title": "Sandbox", "default": False},
        "folders": {"type": "directory", "title": "Folders", "multiple": True, "default": []},
    },
}

# A directory-installed extension as recorded by Desktop (ids `ant.dir.gh.<org>.<name>`).
FILESYSTEM_MANIFEST = {
    "manifest_version": "0.2",
    "name": "filesystem",
    "display_name": "Filesystem",
    "version": "0.2.0",
    "server": {"type": "node", "mcp_config": {"command": "node", "args": ["${__dirname}/dist/index.js"]}},
}


def user_data(tmp_path: Path, records: dict, settings: dict[str, object] | None = None) -> Path:
    """`<userData>` with the registry, each bundle's folder, and the given settings files."""
    folder = tmp_path / "Claude"
    (folder / "Claude Extensions Settings").mkdir(parents=True)
    registry = {"extensions": {}}
    for ext_id, manifest in records.items():
        bundle = folder / "Claude Extensions" / ext_id
        bundle.mkdir(parents=True)
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        registry["extensions"][ext_id] = {
            "id": ext_id,
            "version": manifest["version"],
            "hash": "9f2c" * 16,
            "installedAt": "2026-11-02T10:11:12.000Z",
            "manifest": manifest,
            "signatureInfo": {"status": "unsigned"},
            "source": "local",
        }
    (folder / "extensions-installations.json").write_text(json.dumps(registry, indent=2))
    for ext_id, content in (settings or {}).items():
        path = folder / "Claude Extensions Settings" / f"{ext_id}.json"
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return folder


QB_ID = "local.mcpb.sidequest-automation.qb-distributor"
FS_ID = "ant.dir.gh.modelcontextprotocol.filesystem"


def test_installed_extensions_with_their_settings(tmp_path: Path) -> None:
    folder = user_data(
        tmp_path,
        {QB_ID: QB_MANIFEST, FS_ID: FILESYSTEM_MANIFEST},
        {QB_ID: {"isEnabled": True, "userConfig": {"refresh_token": SECRET_TOKEN, "realm_id": "9130350000000000"}}},
    )
    extensions = {e.id: e for e in load_extensions(folder)}
    assert set(extensions) == {QB_ID, FS_ID}
    qb, fs = extensions[QB_ID], extensions[FS_ID]
    assert qb.enabled and qb.name == "qb-distributor" and qb.version == "0.16.0"
    assert qb.folder == folder / "Claude Extensions" / QB_ID
    assert qb.missing_required() == [] and qb.encrypted_values() == []
    assert fs.enabled is False and fs.settings_path is None  # no settings file: Desktop shows it off
    assert SECRET_TOKEN not in repr(qb) and SECRET_TOKEN not in repr(list(extensions.values()))
    assert qb.env_keys() == ["QB_HOME", "QB_REALM_ID", "QB_REFRESH_TOKEN", "QB_SANDBOX"]


def test_the_connector_is_found_by_name_or_by_its_env_keys(tmp_path: Path) -> None:
    folder = user_data(tmp_path, {FS_ID: FILESYSTEM_MANIFEST, QB_ID: QB_MANIFEST})
    extensions = load_extensions(folder)
    assert find_connector(extensions, ["SideQuest QuickBooks"]).id == QB_ID  # display name, any case
    assert find_connector(extensions, ["qb-distributor"]).id == QB_ID
    assert find_connector(extensions, ["something-else"]).id == QB_ID  # its env passes QB_REFRESH_TOKEN
    assert find_connector([e for e in extensions if e.id == FS_ID], ["qb-distributor"]) is None


def test_disabled_missing_required_and_still_encrypted(tmp_path: Path) -> None:
    folder = user_data(
        tmp_path,
        {QB_ID: QB_MANIFEST},
        {QB_ID: {"isEnabled": False, "userConfig": {"refresh_token": "__encrypted__:djEwAbCdEf==", "realm_id": ""}}},
    )
    (qb,) = load_extensions(folder)
    assert qb.enabled is False
    assert qb.missing_required() == ["realm_id"]
    assert qb.encrypted_values() == ["refresh_token"]
    assert qb.launch_config(platform="darwin", home=tmp_path) is None  # Desktop skips it


def test_launch_config_substitutes_as_desktop_does(tmp_path: Path) -> None:
    folder = tmp_path / "Claude Extensions" / QB_ID
    user = {"refresh_token": SECRET_TOKEN, "realm_id": "913", "folders": ["/data/a", "/data/b"]}
    launch = launch_config(QB_MANIFEST, folder, user, platform="darwin", home=Path("/Users/o"))
    assert launch["command"] == "python3"
    assert launch["args"] == [f"{folder}/server/main.py", "--realm", "913", "/data/a", "/data/b"]
    assert launch["env"] == {
        "QB_REFRESH_TOKEN": SECRET_TOKEN,
        "QB_REALM_ID": "913",
        "QB_SANDBOX": "false",  # the default, a boolean, as text
        "QB_HOME": "/Users/o/.qb-distributor-mcp",
    }


def test_platform_overrides_replace_command_and_env_wholesale(tmp_path: Path) -> None:
    folder = Path("C:/Users/o/AppData/Roaming/Claude/Claude Extensions") / QB_ID
    user = {"refresh_token": SECRET_TOKEN, "realm_id": "913"}
    launch = launch_config(QB_MANIFEST, folder, user, platform="win32", home=Path("C:/Users/o"))
    assert launch["command"] == f"{folder}\\venv\\Scripts\\python.exe"
    assert launch["env"] == {"QB_REALM_ID": "win"}  # not merged with the base env
    # The default empty list expands to no argument at all (an empty array is truthy in JavaScript).
    assert launch["args"] == [f"{folder}/server/main.py", "--realm", "913"]
    # An empty string, though, is falsy: the argument keeps its text.
    launch = launch_config(QB_MANIFEST, folder, {**user, "folders": ""}, platform="win32", home=Path("C:/Users/o"))
    assert launch["args"][-1] == "${user_config.folders}"


def test_a_required_value_with_only_a_default_still_counts_as_missing() -> None:
    manifest = {"user_config": {"key": {"type": "string", "required": True, "default": "d"}}}
    assert missing_required(manifest, {}) == ["key"]
    assert missing_required(manifest, {"key": ["a", ""]}) == ["key"]
    assert missing_required(manifest, {"key": "v"}) == []


def test_records_without_a_manifest_use_the_unpacked_bundle(tmp_path: Path) -> None:
    folder = user_data(tmp_path, {QB_ID: QB_MANIFEST}, {QB_ID: {"isEnabled": True}})
    registry = folder / "extensions-installations.json"
    registry.write_text(json.dumps({"extensions": {QB_ID: {"id": QB_ID, "version": "0.16.0"}}}))
    (qb,) = load_extensions(folder)
    assert qb.name == "qb-distributor" and qb.enabled


@pytest.mark.parametrize("content", ["{not json", '{"isEnabled": "yes"}', "[]"])
def test_unusable_settings_read_as_disabled(tmp_path: Path, content: str) -> None:
    folder = user_data(tmp_path, {QB_ID: QB_MANIFEST}, {QB_ID: content})
    (qb,) = load_extensions(folder)
    assert qb.enabled is False and qb.user_config == {}


def test_no_registry_and_a_broken_registry(tmp_path: Path) -> None:
    assert load_extensions(tmp_path / "nowhere") == []
    folder = tmp_path / "Claude"
    folder.mkdir()
    (folder / "extensions-installations.json").write_text('{"extensions": {')
    with pytest.raises(ExtensionsError) as caught:
        load_extensions(folder)
    assert caught.value.reason == "not_json"


def test_ids_that_are_not_folder_names_are_ignored(tmp_path: Path) -> None:
    folder = user_data(tmp_path, {QB_ID: QB_MANIFEST})
    registry = json.loads((folder / "extensions-installations.json").read_text())
    registry["extensions"]["../../escape"] = {"id": "../../escape", "manifest": QB_MANIFEST}
    (folder / "extensions-installations.json").write_text(json.dumps(registry))
    assert [e.id for e in load_extensions(folder)] == [QB_ID]


def test_where_a_still_encrypted_setting_reaches_the_launch(tmp_path: Path) -> None:
    ciphertext = "__encrypted__:djEwQmFzZTY0=="
    folder = user_data(
        tmp_path,
        {QB_ID: QB_MANIFEST},
        {QB_ID: {"isEnabled": True, "userConfig": {"refresh_token": ciphertext, "realm_id": ciphertext}}},
    )
    (qb,) = load_extensions(folder)
    assert qb.encrypted_values() == ["realm_id", "refresh_token"]
    # The realm goes into an argument too; on Windows the override's env passes neither setting.
    assert qb.encrypted_in_launch(platform="darwin", home=tmp_path) == ["QB_REALM_ID", "QB_REFRESH_TOKEN", "args"]
    assert qb.encrypted_in_launch(platform="win32", home=tmp_path) == ["args"]
    (folder / "Claude Extensions Settings" / f"{QB_ID}.json").write_text(json.dumps({"isEnabled": True}))
    (qb,) = load_extensions(folder)
    assert qb.encrypted_in_launch(platform="darwin", home=tmp_path) == []  # missing required: no launch at all


def test_settings_feeding_env_and_their_titles(tmp_path: Path) -> None:
    user = {"refresh_token": SECRET_TOKEN, "realm_id": "9130350000000000", "folders": ["/a"], "sandbox": True}
    folder = user_data(tmp_path, {QB_ID: QB_MANIFEST}, {QB_ID: {"isEnabled": True, "userConfig": user}})
    (qb,) = load_extensions(folder)
    assert sorted(qb.settings_feeding_env()) == [
        ("QB_REALM_ID", "9130350000000000", False),
        ("QB_REFRESH_TOKEN", SECRET_TOKEN, True),
    ]  # "folders" feeds only an argument, "sandbox" is no text; neither is listed
    assert qb.option_title("realm_id") == "Company ID"
    assert qb.option_title("not-declared") == "not-declared"
