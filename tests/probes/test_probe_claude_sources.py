"""claude-sources against Claude Desktop's folders laid out as Desktop lays them out, under a temp HOME,
APPDATA and LOCALAPPDATA (SIDEQUEST_PLATFORM picks the platform), through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from doctor.context import Context
from doctor.plugins import BUILTIN_PROBES
from probes.claude_sources import check
from tests.claude_desktop.samples import INVALID_CORPUS, VALID_CORPUS
from tests.claude_desktop.test_extensions import QB_ID, QB_MANIFEST
from tests.support.homes import REPO, cli_env, run_cli, write_env
from tests.support.local_support import connector_entry, fresh_values, write_claude_config
from tests.support.schema_check import assert_valid_report

SECRET_SETTING = "RT1-extension-only-token-9z8y7x6w5v"
CIPHERTEXT = "__encrypted__:djEwQmFzZTY0Q2lwaGVydGV4dEFiY2RlZg=="
OLD, NEWER, NEWEST = 1_780_000_000, 1_785_000_000, 1_790_000_000


class Machine:
    """One computer's home: HOME (and APPDATA/LOCALAPPDATA under it), the connector home, the platform."""

    def __init__(self, tmp_path: Path, platform: str) -> None:
        self.root = tmp_path / "user"
        self.platform = platform
        self.connector_home = tmp_path / "connector"
        write_env(self.connector_home, fresh_values())
        self.roaming = self.root / "AppData" / "Roaming"
        self.local = self.root / "AppData" / "Local"
        self.root.mkdir(parents=True, exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        env = cli_env(self.connector_home, SIDEQUEST_PLATFORM=self.platform, HOME=str(self.root))
        env.pop("SIDEQUEST_CLAUDE_CONFIG")  # the doctor finds Desktop's file itself
        env.update(extra)
        env.update({"APPDATA": str(self.roaming), "LOCALAPPDATA": str(self.local)})
        env.pop("XDG_CONFIG_HOME", None)
        env["SIDEQUEST_CLAUDE_LOGS"] = str(self.root / "no-logs")  # claude-logs stays out of these tests
        return env

    def doctor(self, *probes: str, fmt: str = "json", **extra: str) -> Any:
        args = ["doctor", "--offline", "--format", fmt]
        for probe in probes or ("claude-sources",):
            args += ["--probe", probe]
        result = run_cli(*args, env=self.env(**extra))
        assert result.returncode in (0, 1), result.stderr
        if fmt != "json":
            return result
        doc = result.json()
        assert_valid_report(doc)
        assert doc["exit_code"] == result.returncode
        return doc

    # -- where each build keeps its folder --------------------------------------------------------

    @property
    def mac(self) -> Path:
        return self.root / "Library" / "Application Support" / "Claude"

    @property
    def windows(self) -> Path:
        return self.roaming / "Claude"

    @property
    def msix(self) -> Path:
        return self.local / "Packages" / "Claude_pzs8sxrjxfjjc" / "LocalCache" / "Roaming" / "Claude"

    @property
    def linux(self) -> Path:
        return self.root / ".config" / "Claude"

    @property
    def flatpak(self) -> Path:
        return self.root / ".var" / "app" / "com.anthropic.Claude" / "config" / "Claude"


def settings_file(folder: Path, entry: bool = True, at: float | None = None) -> Path:
    servers: dict[str, Any] = {"filesystem": {"command": "npx", "args": ["-y", "server-filesystem"]}}
    if entry:
        servers["qb-distributor"] = connector_entry({"QB_REALM_ID": fresh_values()["QB_REALM_ID"]})
    path = write_claude_config(folder / "claude_desktop_config.json", {"mcpServers": servers})
    if at is not None:
        os.utime(path, (at, at))
    return path


def install_extension(folder: Path, settings: dict[str, Any] | None, manifest: dict[str, Any] = QB_MANIFEST) -> None:
    """The extension as Desktop records it: the registry, the unpacked bundle, its settings file."""
    bundle = folder / "Claude Extensions" / QB_ID
    bundle.mkdir(parents=True)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    record = {"id": QB_ID, "version": manifest["version"], "manifest": manifest, "source": "local"}
    (folder / "extensions-installations.json").write_text(json.dumps({"extensions": {QB_ID: record}}))
    if settings is not None:
        (folder / "Claude Extensions Settings").mkdir()
        (folder / "Claude Extensions Settings" / f"{QB_ID}.json").write_text(json.dumps(settings))


def age(*paths: Path, at: float) -> None:
    """Set the modification time of each file and folder (creating files inside touched the folders)."""
    for path in paths:
        os.utime(path, (at, at))


def probe(doc: dict[str, Any], probe_id: str = "claude-sources") -> dict[str, Any]:
    return next(p for p in doc["probes"] if p["id"] == probe_id)


def good_settings() -> dict[str, Any]:
    return {"isEnabled": True, "userConfig": {"refresh_token": SECRET_SETTING, "realm_id": "9130350000000000"}}


# --------------------------------------------------------------------------- settings files


def test_one_settings_file_and_no_extension_is_quietly_ok(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "linux")
    settings_file(machine.linux)
    doc = machine.doctor()
    result = probe(doc)
    assert result["status"] == "ok" and doc["exit_code"] == 0
    assert result["details"] == []
    assert result["summary"] == (
        "Claude Desktop reads ~/.config/Claude/claude_desktop_config.json and starts the SideQuest connector from "
        'its "qb-distributor" entry.'
    )
    facts = result["facts"]
    assert facts["registered"] == "mcp_servers" and facts["extension"] is None
    assert [(item["kind"], item["path"]) for item in facts["config_locations"]] == [
        ("linux", "~/.config/Claude/claude_desktop_config.json")
    ]
    assert facts["desktop_reads_reason"] == "only"


def test_nothing_installed_is_a_plain_skip(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "darwin")
    doc = machine.doctor()
    result = probe(doc)
    assert result["status"] == "skip" and doc["exit_code"] == 0
    assert result["summary"].startswith("No Claude Desktop settings file and no SideQuest extension were found")
    assert result["facts"]["desktop_reads"] == "~/Library/Application Support/Claude/claude_desktop_config.json"
    # A broken file is claude-config-sync's to explain; this check only says it could not look inside.
    write_claude_config(machine.mac / "claude_desktop_config.json", raw=b'{"mcpServers": {')
    result = probe(machine.doctor())
    assert result["status"] == "skip" and "could not read" in result["summary"]
    settings_file(machine.mac, entry=False)
    result = probe(machine.doctor())
    assert result["status"] == "skip" and "which has no SideQuest entry" in result["summary"]


def test_windows_store_build_beside_the_newest_logs_is_read_and_the_entry_elsewhere_is_named(tmp_path: Path) -> None:
    # The standard installer's file still has the entry; the Store build, which cannot see it, runs.
    machine = Machine(tmp_path, "windows")
    settings_file(machine.windows, entry=True)
    settings_file(machine.msix, entry=False)
    (machine.msix / "logs").mkdir()
    (machine.msix / "logs" / "mcp.log").write_text("2026-11-30T08:00:00.000Z [info] Launching MCP Server\n")
    age(machine.windows / "claude_desktop_config.json", machine.windows, at=NEWER)
    age(machine.msix / "claude_desktop_config.json", machine.msix, at=OLD)
    age(machine.msix / "logs" / "mcp.log", at=NEWEST)

    doc = machine.doctor()
    result = probe(doc)
    assert result["status"] == "fail", result
    assert doc["diagnosis"]["cause"] == "claude_config_out_of_sync"
    assert result["summary"] == (
        "The SideQuest connector is in ~\\AppData\\Roaming\\Claude\\claude_desktop_config.json, a Claude Desktop "
        "settings file this Claude Desktop does not read; it reads "
        "~\\AppData\\Local\\Packages\\Claude_pzs8sxrjxfjjc\\LocalCache\\Roaming\\Claude\\claude_desktop_config.json."
    )
    assert "(used by the Windows Store (MSIX) build) because Claude Desktop wrote its logs" in result["details"][0]
    assert result["remediation"]["text"].startswith('Move the "qb-distributor" entry')
    assert doc["diagnosis"]["fix"][0] == result["remediation"]["text"]  # the finding's own step, not --fix
    facts = result["facts"]
    assert facts["desktop_reads_reason"] == "newest_logs"
    assert {item["kind"]: item["read_by_desktop"] for item in facts["config_locations"]} == {
        "windows_msix": True,
        "windows": False,
    }
    assert {item["kind"]: item["has_connector"] for item in facts["config_locations"]} == {
        "windows_msix": False,
        "windows": True,
    }

    # The doctor's other checks judge the same file (no SIDEQUEST_CLAUDE_CONFIG given).
    sync = probe(machine.doctor("claude-config-sync"), "claude-config-sync")
    assert sync["facts"]["path"] == str(machine.msix / "claude_desktop_config.json")
    assert sync["status"] == "fail" and "no SideQuest connector" in sync["summary"]


def test_the_store_build_without_a_settings_file_yet_does_not_see_the_standard_one(tmp_path: Path) -> None:
    # The Store build is installed and busy in its folder; the entry sits in the old installer's file.
    machine = Machine(tmp_path, "windows")
    settings_file(machine.windows, entry=True)
    (machine.msix / "Local Storage").mkdir(parents=True)
    age(machine.windows / "claude_desktop_config.json", machine.windows, at=OLD)
    age(machine.msix, at=NEWER)
    doc = machine.doctor()
    result = probe(doc)
    assert result["status"] == "fail" and doc["diagnosis"]["cause"] == "claude_config_out_of_sync"
    assert result["facts"]["desktop_reads_reason"] == "newest"
    assert "which does not exist yet" in result["details"][0]
    assert result["remediation"]["text"].startswith(
        "Copy ~\\AppData\\Roaming\\Claude\\claude_desktop_config.json to ~\\AppData\\Local\\Packages\\"
    )


def test_without_logs_the_newest_settings_file_is_read(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "linux")
    settings_file(machine.linux, entry=False)
    settings_file(machine.flatpak, entry=True)
    age(machine.linux / "claude_desktop_config.json", machine.linux, at=OLD)
    age(machine.flatpak / "claude_desktop_config.json", machine.flatpak, at=NEWER)
    doc = machine.doctor("claude-sources", "claude-config-sync")
    result = probe(doc)
    assert result["status"] == "ok", result
    flatpak = "~/.var/app/com.anthropic.Claude/config/Claude/claude_desktop_config.json"
    assert result["facts"]["desktop_reads"] == flatpak
    assert result["facts"]["desktop_reads_reason"] == "newest"
    assert "Flatpak" in result["details"][0] and "used most recently" in result["details"][0]
    assert "Not read: ~/.config/Claude/claude_desktop_config.json" in result["details"][0]
    assert probe(doc, "claude-config-sync")["facts"]["path"] == str(machine.flatpak / "claude_desktop_config.json")


def test_a_file_named_by_the_user_is_judged_and_the_others_only_listed(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "linux")
    settings_file(machine.linux, entry=False)
    told = settings_file(tmp_path / "elsewhere", entry=True)
    settings_file(machine.flatpak, entry=True)
    result = probe(machine.doctor(SIDEQUEST_CLAUDE_CONFIG=str(told)))
    assert result["status"] == "ok", result
    assert result["summary"].startswith(f"The settings file the doctor was given, {told}, starts")
    assert result["facts"]["doctor_checks"] == str(told)
    assert result["details"][-1] == f"The doctor checked {told}, as it was told to."
    assert len(result["facts"]["config_locations"]) == 2


def test_told_to_check_a_file_desktop_does_not_read_warns(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "windows")
    standard = settings_file(machine.windows, entry=True)
    settings_file(machine.msix, entry=True)
    age(standard, machine.windows, at=OLD)
    age(machine.msix / "claude_desktop_config.json", machine.msix, at=NEWER)
    result = probe(machine.doctor(SIDEQUEST_CLAUDE_CONFIG=str(standard)))
    assert result["status"] == "warn", result
    assert "but this Claude Desktop reads ~\\AppData\\Local\\Packages" in result["summary"]
    assert "without --claude-config" in result["remediation"]["text"]


@pytest.mark.parametrize("path", VALID_CORPUS + INVALID_CORPUS, ids=lambda p: p.name)
def test_every_corpus_config_as_the_store_builds_file_is_judged_without_raising(tmp_path: Path, path: Path) -> None:
    machine = Machine(tmp_path, "windows")
    config = write_claude_config(machine.msix / "claude_desktop_config.json", raw=path.read_bytes())
    settings_file(machine.windows, entry=False, at=OLD)  # a standard installer's file left behind
    age(machine.windows, at=OLD)
    environ = {"SIDEQUEST_PLATFORM": "windows", "APPDATA": str(machine.roaming), "LOCALAPPDATA": str(machine.local)}
    finding = check(Context(machine.connector_home, config, environ=environ, offline=True))
    assert finding.status == "skip", finding.summary  # none of the public configs is ours
    assert finding.facts["desktop_reads"].endswith(
        "Claude_pzs8sxrjxfjjc/LocalCache/Roaming/Claude/claude_desktop_config.json"
    )
    assert len(finding.facts["config_locations"]) == 2


# --------------------------------------------------------------------------- the connector as an extension


def test_an_extension_switched_off_is_a_connector_that_does_not_start(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "darwin")
    settings_file(machine.mac, entry=False)
    install_extension(machine.mac, {**good_settings(), "isEnabled": False})
    doc = machine.doctor()
    result = probe(doc)
    assert result["status"] == "fail" and doc["diagnosis"]["cause"] == "connector_not_starting"
    assert "switched off" in result["summary"] and '"SideQuest QuickBooks"' in result["summary"]
    assert result["remediation"]["text"].startswith(
        'Open Claude Desktop → Settings → Extensions, find "SideQuest QuickBooks" and switch it on.'
    )
    assert doc["diagnosis"]["fix"][0] == result["remediation"]["text"]
    extension = result["facts"]["extension"]
    assert (extension["id"], extension["version"], extension["enabled"]) == (QB_ID, "0.16.0", False)
    assert result["facts"]["registered"] == "extension"
    assert SECRET_SETTING not in json.dumps(doc)

    text = machine.doctor(fmt="text")
    assert text.returncode == 1
    assert "switch it on" in text.stdout and SECRET_SETTING not in text.stdout


def test_an_empty_required_setting_names_its_title_never_a_value(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "windows")
    settings_file(machine.msix, entry=False)
    install_extension(machine.msix, {"isEnabled": True, "userConfig": {"refresh_token": SECRET_SETTING}})
    doc = machine.doctor()
    result = probe(doc)
    assert result["status"] == "fail" and doc["diagnosis"]["cause"] == "connector_not_starting"
    assert 'required setting "Company ID" is empty' in result["summary"]
    assert 'fill in "Company ID"' in result["remediation"]["text"]
    assert result["facts"]["extension"]["missing_required"] == ["realm_id"]
    assert result["facts"]["extension"]["user_config_keys"] == ["refresh_token"]
    assert SECRET_SETTING not in json.dumps(doc)


def test_a_setting_still_encrypted_fails_unless_env_supplies_it(tmp_path: Path) -> None:
    # (Reported on Windows; this manifest's Windows override passes no token, so the Linux layout is used.)
    machine = Machine(tmp_path, "linux")
    settings_file(machine.linux, entry=False)
    install_extension(
        machine.linux, {"isEnabled": True, "userConfig": {"refresh_token": CIPHERTEXT, "realm_id": "913"}}
    )
    # .env holds the connection: the connector reads it there, so the ciphertext is harmless for now.
    result = probe(machine.doctor())
    assert result["status"] == "warn", result
    assert result["summary"] == (
        'Claude Desktop passes QB_REFRESH_TOKEN to the SideQuest extension "SideQuest QuickBooks" still encrypted '
        "(a known Claude Desktop bug), so the connector cannot use it; it uses the values in .env instead, so it "
        "works for now."
    )
    assert 'type "Refresh token" in again' in result["remediation"]["text"]
    assert result["facts"]["extension"]["encrypted_in_launch"] == ["QB_REFRESH_TOKEN"]
    assert CIPHERTEXT not in json.dumps(result)

    values = fresh_values()
    del values["QB_REFRESH_TOKEN"]
    write_env(machine.connector_home, values)
    doc = machine.doctor()
    result = probe(doc)
    assert result["status"] == "fail" and doc["diagnosis"]["cause"] == "claude_config_out_of_sync"
    assert "sidequest reauth-qb" in result["remediation"]["text"]


def test_registered_both_ways_is_two_copies_competing(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "darwin")
    settings_file(machine.mac, entry=True)
    install_extension(machine.mac, good_settings())
    doc = machine.doctor()
    result = probe(doc)
    assert result["status"] == "fail" and doc["diagnosis"]["cause"] == "claude_config_out_of_sync"
    assert "set up twice" in result["summary"] and "compete" in result["summary"]
    assert 'find "SideQuest QuickBooks" and switch it off' in result["remediation"]["text"]
    assert result["facts"]["registered"] == "both"
    assert SECRET_SETTING not in json.dumps(doc)

    # Switched off, the extension is only mentioned: the entry starts the connector.
    install = machine.mac / "Claude Extensions Settings" / f"{QB_ID}.json"
    install.write_text(json.dumps({**good_settings(), "isEnabled": False}))
    result = probe(machine.doctor())
    assert result["status"] == "ok" and "is switched off" in result["details"][-1]


def test_an_extension_that_starts_is_ok_with_its_id_and_version(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "darwin")
    install_extension(machine.mac, good_settings())
    doc = machine.doctor(fmt="json")
    result = probe(doc)
    assert result["status"] == "ok" and doc["exit_code"] == 0
    assert result["summary"] == (
        'Claude Desktop starts the SideQuest connector as the extension "SideQuest QuickBooks" (version 0.16.0), '
        "switched on."
    )
    assert result["facts"]["extension"]["enabled"] is True
    assert result["facts"]["extension"]["encrypted_in_launch"] == []
    text = machine.doctor(fmt="text", **{"NO_COLOR": "1"})
    assert "claude-sources" in text.stdout and SECRET_SETTING not in text.stdout


def test_an_unreadable_extension_list_warns(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "linux")
    settings_file(machine.linux)
    (machine.linux / "extensions-installations.json").write_text('{"extensions": {')
    result = probe(machine.doctor())
    assert result["status"] == "warn" and "cannot be read" in result["summary"]
    assert result["facts"]["extensions_registry"] == "not_json"


def test_sensitive_settings_are_handed_to_the_redactor(tmp_path: Path) -> None:
    machine = Machine(tmp_path, "darwin")
    install_extension(machine.mac, good_settings())
    ctx = Context(machine.connector_home, machine.mac / "claude_desktop_config.json", environ={}, offline=True)
    assert check(ctx).status == "ok"
    secrets = ctx.secrets()
    assert ("refresh_token", SECRET_SETTING) in secrets  # feeds QB_REFRESH_TOKEN, and is marked sensitive
    assert not any(value == "9130350000000000" for _, value in secrets)  # a company ID is not a secret


def test_readme_lists_every_built_in_probe() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    import importlib

    for module in BUILTIN_PROBES:
        probe_id = importlib.import_module(module).PROBE.id
        assert f"| `{probe_id}` |" in readme, f"README's list of checks lacks {probe_id}"
