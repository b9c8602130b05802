"""Probe `claude-sources`: where Claude Desktop finds the SideQuest connector, and whether it will start it.

Desktop loads a connector from `mcpServers` in its settings file or as a Desktop Extension, and a
machine can hold several settings files (the Windows standard installer's and the Store build's,
a Linux community build's and a Flatpak's) of which one Desktop reads. What goes wrong there is
invisible to the owner: the entry sits in a file this Desktop never reads; the extension is
switched off, or a required setting is empty, and Desktop silently skips it; a setting reaches
the connector still encrypted (a known Desktop bug); or the connector is registered both ways and
two copies race for one token chain. This probe names which of these it is, offline, from the
files as Desktop lays them out (doctor/claude_desktop/paths.py and extensions.py).

Extension settings may hold secrets: only their key names and titles are ever shown, and every
sensitive value is handed to the redactor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from doctor.advice import DOCTOR, QUIT_AND_REOPEN, REAUTH
from doctor.claude_desktop.config import CONNECTOR_NAME, ClaudeConfigError, ConnectorEntry, load_claude_config
from doctor.claude_desktop.extensions import Extension, ExtensionsError, find_connector, load_extensions
from doctor.claude_desktop.paths import DesktopConfig, desktop_config, desktop_platform
from doctor.context import Context, Loaded
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation
from doctor.situations import first_finding
from doctor.store.keys import SECRET_ENV_KEYS

EXTENSIONS_SCREEN = "Open Claude Desktop → Settings → Extensions"
# How each kind of location is named for a person (doctor/claude_desktop/paths.py LOCATION_KINDS).
WHERE = {
    "macos": "Claude Desktop for macOS",
    "windows_msix": "the Windows Store (MSIX) build",
    "windows": "the Windows standard installer",
    "linux": "Claude Desktop for Linux",
    "linux_flatpak": "the Linux Flatpak build",
}
WHY_CHOSEN = {
    "newest_logs": "Claude Desktop wrote its logs beside it most recently",
    "newest": "its folder is the one Claude Desktop used most recently",
}


class _Reading:
    """What the situations learn about where Desktop finds the connector in this run."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.home = Path.home()
        self.platform = desktop_platform(ctx.environ)
        self.choice: DesktopConfig = desktop_config(ctx.environ, self.platform, self.home)
        # The doctor was pointed at another file (--claude-config, SIDEQUEST_CLAUDE_CONFIG): judge that one.
        self.told = ctx.claude_config_path is not None and ctx.claude_config_path != self.choice.path
        self.path: Path = ctx.claude_config_path if ctx.claude_config_path is not None else self.choice.path
        self.entry: ConnectorEntry | None = None
        self.entries_elsewhere: list[Path] = []
        self.extension: Extension | None = None
        self.registry_error: ExtensionsError | None = None
        self.facts: dict[str, Any] = {
            "platform": self.platform,
            "config_locations": [],
            "desktop_reads": self.shown(self.choice.path),
            "desktop_reads_reason": self.choice.reason,
            "doctor_checks": self.shown(self.path),
            "mcp_servers_entry": None,
            "extension": None,
            "registered": "none",
        }
        self._read_configs()
        self._read_extensions()

    def shown(self, path: Path) -> str:
        """A path with the home folder as ~ (it names the user), in the platform's own separators."""
        try:
            rest = Path(path).relative_to(self.home)
        except ValueError:
            return str(path)
        separator = "\\" if self.platform == "win32" else "/"
        return separator.join(("~",) + rest.parts)

    def _read_configs(self) -> None:
        claude = self.ctx.claude_config
        self.entry = claude.connector() if claude is not None else None
        self.facts["mcp_servers_entry"] = self.entry.name if self.entry is not None else None
        for folder in self.choice.folders:
            modified = folder.config_modified()
            if modified is None:
                continue
            entry = self.entry if folder.config == self.path else _entry_in(self.ctx, folder.config)
            if entry is not None and folder.config != self.path:
                self.entries_elsewhere.append(folder.config)
            self.facts["config_locations"].append(
                {
                    "kind": folder.kind,
                    "path": self.shown(folder.config),
                    "modified": _stamp(modified),
                    "read_by_desktop": folder.config == self.choice.path,
                    "has_connector": entry is not None,
                }
            )

    def _installed_extensions(self) -> Loaded:
        """The run's reading when this is the file the doctor judges; else (no file was given) this one's."""
        if self.path == self.ctx.claude_config_path:
            return self.ctx.load_extensions()
        try:
            return Loaded(load_extensions(self.path.parent))
        except ExtensionsError as exc:
            return Loaded(error=exc)

    def _read_extensions(self) -> None:
        self.facts["registered"] = "mcp_servers" if self.entry is not None else "none"
        names = [self.entry.name] if self.entry is not None else []
        names.append(CONNECTOR_NAME)
        installed = self._installed_extensions()
        if installed.error is not None:
            self.registry_error = installed.error
            self.facts["extensions_registry"] = installed.error.reason
            return
        extension = find_connector(installed.value, names)
        self.extension = extension
        if extension is None:
            return
        for env_key, value, sensitive in extension.settings_feeding_env():
            if sensitive or env_key in SECRET_ENV_KEYS:
                self.ctx.add_secret(value, SECRET_ENV_KEYS.get(env_key, "secret"))
        self.facts["extension"] = {
            "id": extension.id,
            "name": extension.name,
            "display_name": extension.display_name,
            "version": extension.version,
            "enabled": extension.enabled,
            "settings_file": extension.settings_path is not None,
            "missing_required": extension.missing_required(),
            "encrypted_settings": extension.encrypted_values(),
            "encrypted_in_launch": self.encrypted(),
            "user_config_keys": sorted(extension.user_config),
        }
        self.facts["registered"] = "both" if self.entry is not None else "extension"

    @property
    def label(self) -> str:
        """The extension as Settings → Extensions shows it."""
        extension = self.extension
        return (extension.display_name or extension.name or extension.id) if extension is not None else ""

    def starts(self) -> bool:
        """Desktop would start the extension: switched on, nothing required missing."""
        return self.extension is not None and self.extension.enabled and not self.extension.missing_required()

    def encrypted(self) -> list[str]:
        if self.extension is None:
            return []
        return self.extension.encrypted_in_launch(platform=self.platform, home=self.home)

    def titles(self, keys: list[str]) -> str:
        return ", ".join(f'"{self.extension.option_title(key)}"' for key in keys)


def _entry_in(ctx: Context, path: Path) -> ConnectorEntry | None:
    """The connector's entry in a settings file other than the one the doctor judges (its token hidden)."""
    try:
        entry = load_claude_config(path).connector()
    except ClaudeConfigError:
        return None
    if entry is not None:
        for key, kind in SECRET_ENV_KEYS.items():
            value = entry.env.get(key)
            ctx.add_secret(value if isinstance(value, str) else None, kind)
    return entry


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# --------------------------------------------------------------------------- the situations, in order


def registry_unreadable(r: _Reading) -> Finding | None:
    error = r.registry_error
    if error is None:
        return None
    return Finding(
        "warn",
        f"Claude Desktop's list of installed extensions cannot be read ({error.message}), so whether SideQuest "
        "is also installed as an extension is unknown.",
        details=[f"The list is {r.shown(error.path)}; Claude Desktop rewrites it when it quits."],
        facts=r.facts,
        remediation=Remediation(f"{QUIT_AND_REOPEN} Then run `{DOCTOR}` again."),
    )


def registered_twice(r: _Reading) -> Finding | None:
    if r.entry is None or not r.starts():
        return None
    return Finding(
        "fail",
        f'The SideQuest connector is set up twice in Claude Desktop: as the extension "{r.label}" and as '
        f'"{r.entry.name}" in its settings file, so two copies run and compete for one QuickBooks connection.',
        details=[
            "Each copy renews the QuickBooks connection on its own; the one that renews second can leave the "
            "other holding a connection QuickBooks no longer accepts.",
            f"The settings file is {r.shown(r.path)}; the extension is {r.extension.id}.",
        ],
        facts=r.facts,
        cause="claude_config_out_of_sync",
        remediation=Remediation(
            f'{EXTENSIONS_SCREEN}, find "{r.label}" and switch it off (or uninstall it): SideQuest\'s entry '
            f'"{r.entry.name}" in the settings file already starts the connector. {QUIT_AND_REOPEN}'
        ),
    )


def extension_switched_off(r: _Reading) -> Finding | None:
    if r.extension is None or r.extension.enabled or r.entry is not None:
        return None
    return Finding(
        "fail",
        f'The SideQuest connector is installed in Claude Desktop as the extension "{r.label}", but it is '
        "switched off, so Claude Desktop does not start it.",
        details=[f"The extension is {r.extension.id}, version {r.extension.version or 'unknown'}."],
        facts=r.facts,
        cause="connector_not_starting",
        remediation=Remediation(f'{EXTENSIONS_SCREEN}, find "{r.label}" and switch it on. {QUIT_AND_REOPEN}'),
    )


def required_setting_empty(r: _Reading) -> Finding | None:
    if r.extension is None or r.entry is not None:
        return None
    missing = r.extension.missing_required()
    if not missing:
        return None
    return Finding(
        "fail",
        f'Claude Desktop skips the SideQuest extension "{r.label}" without saying so, because its required '
        f"setting {r.titles(missing)} is empty.",
        details=[
            "Claude Desktop's log says only: the extension has missing required configuration, skipping it.",
        ],
        facts=r.facts,
        cause="connector_not_starting",
        remediation=Remediation(
            f'{EXTENSIONS_SCREEN}, open "{r.label}", fill in {r.titles(missing)} and save. {QUIT_AND_REOPEN}'
        ),
    )


def setting_still_encrypted(r: _Reading) -> Finding | None:
    if not r.starts():
        return None
    where = r.encrypted()
    if not where:
        return None
    settings = r.extension.encrypted_values() or [key for key in where if key != "args"]
    # .env wins over the environment for every QB_* key the connector reads (doctor/store/credentials.py).
    covered = [key for key in where if key.startswith("QB_") and r.ctx.env(key)]
    harmless = len(covered) == len(where)
    passes = ", ".join("its arguments" if key == "args" else key for key in where)
    it = "them" if len(where) > 1 or where == ["args"] else "it"
    summary = (
        f'Claude Desktop passes {passes} to the SideQuest extension "{r.label}" still encrypted (a known Claude '
        f"Desktop bug), so the connector cannot use {it}"
        + ("; it uses the values in .env instead, so it works for now." if harmless else ".")
    )
    retype = f'{EXTENSIONS_SCREEN}, open "{r.label}", type {r.titles(settings)} in again and save.'
    if harmless:
        return Finding(
            "warn",
            summary,
            details=["If the connection in .env is ever lost, the connector will fail."],
            facts=r.facts,
            remediation=Remediation(f"{retype} {QUIT_AND_REOPEN}"),
        )
    qb_keys = [key for key in where if key.startswith("QB_")]
    reauth = f" Or run `{REAUTH}`: SideQuest then keeps the connection in .env, which wins." if qb_keys else ""
    return Finding(
        "fail",
        summary,
        facts=r.facts,
        cause="claude_config_out_of_sync",
        remediation=Remediation(f"{retype} {QUIT_AND_REOPEN}{reauth}"),
    )


def told_to_check_a_file_desktop_does_not_read(r: _Reading) -> Finding | None:
    known = {folder.config for folder in r.choice.folders}
    if not r.told or r.path not in known or r.choice.chosen.config_modified() is None:
        return None
    return Finding(
        "warn",
        f"The doctor checked {r.shown(r.path)} as it was told to, but this Claude Desktop reads "
        f"{r.shown(r.choice.path)}, so what it found there may not be what Claude Desktop uses.",
        details=_choice_details(r),
        facts=r.facts,
        remediation=Remediation(
            f"Run `{DOCTOR}` without --claude-config (and without SIDEQUEST_CLAUDE_CONFIG): it then checks the file "
            "Claude Desktop reads.",
            (DOCTOR,),
        ),
    )


def entry_in_a_file_desktop_does_not_read(r: _Reading) -> Finding | None:
    if r.told or r.entry is not None or r.starts() or not r.entries_elsewhere:
        return None
    elsewhere = r.entries_elsewhere[0]
    return Finding(
        "fail",
        f"The SideQuest connector is in {r.shown(elsewhere)}, a Claude Desktop settings file this Claude Desktop "
        f"does not read; it reads {r.shown(r.choice.path)}.",
        details=_choice_details(r),
        facts=r.facts,
        cause="claude_config_out_of_sync",
        remediation=Remediation(
            (
                f'Move the "{CONNECTOR_NAME}" entry (inside "mcpServers") from {r.shown(elsewhere)} into '
                f"{r.shown(r.choice.path)}, the file this Claude Desktop reads."
                if r.choice.chosen.config_modified() is not None
                else f"Copy {r.shown(elsewhere)} to {r.shown(r.choice.path)}, the file this Claude Desktop reads."
            )
            + f" {QUIT_AND_REOPEN}"
        ),
    )


def nothing_to_find(r: _Reading) -> Finding | None:
    if r.entry is not None or r.extension is not None:
        return None
    if not r.facts["config_locations"] and r.path == r.choice.path:
        summary = "No Claude Desktop settings file and no SideQuest extension were found on this computer."
    elif r.ctx.load_claude_config().error is not None:
        summary = (
            f"The doctor could not read {r.shown(r.path)}, and SideQuest is not installed as an extension; the "
            "Claude Desktop settings check says why."
        )
    else:
        summary = (
            f"Claude Desktop reads {r.shown(r.path)}, which has no SideQuest entry, and SideQuest is not installed "
            "as an extension; the Claude Desktop settings check says what to add."
        )
    return Finding("skip", summary, details=_choice_details(r), facts=r.facts)


def found(r: _Reading) -> Finding:
    details = _choice_details(r)
    if r.extension is not None and r.entry is not None:
        why = "is switched off" if not r.extension.enabled else "lacks a required setting"
        details.append(
            f'A copy installed as the extension "{r.label}" {why}, so Claude Desktop does not start it; '
            "if you switch it on, two copies would compete for the connection."
        )
    if r.entry is not None and r.told:
        summary = (
            f"The settings file the doctor was given, {r.shown(r.path)}, starts the SideQuest connector from its "
            f'"{r.entry.name}" entry.'
        )
    elif r.entry is not None:
        summary = (
            f"Claude Desktop reads {r.shown(r.path)} and starts the SideQuest connector from its "
            f'"{r.entry.name}" entry.'
        )
    else:
        version = f" (version {r.extension.version})" if r.extension.version else ""
        summary = f'Claude Desktop starts the SideQuest connector as the extension "{r.label}"{version}, switched on.'
    return Finding("ok", summary, details=details, facts=r.facts)


def _choice_details(r: _Reading) -> list[str]:
    """Which settings file Desktop reads and why, when another one exists; nothing when there is only one."""
    present = r.facts["config_locations"]
    read_exists = any(item["read_by_desktop"] for item in present)
    others = [item["path"] for item in present if not item["read_by_desktop"]]
    lines = []
    if others and (len(present) > 1 or not read_exists):
        count = (
            f"{len(present)} Claude Desktop settings files exist" if len(present) > 1 else "One settings file exists"
        )
        lines.append(
            f"{count}; this Claude Desktop reads {r.shown(r.choice.path)} "
            f"(used by {WHERE.get(r.choice.chosen.kind, r.choice.chosen.kind)})"
            + ("" if read_exists else ", which does not exist yet,")
            + f" because {WHY_CHOSEN.get(r.choice.reason, 'it is the usual place')}. Not read: {', '.join(others)}."
        )
    if r.told and read_exists:
        lines.append(f"The doctor checked {r.shown(r.path)}, as it was told to.")
    return lines


SITUATIONS = (
    registry_unreadable,
    registered_twice,
    extension_switched_off,
    required_setting_empty,
    setting_still_encrypted,
    told_to_check_a_file_desktop_does_not_read,
    entry_in_a_file_desktop_does_not_read,
    nothing_to_find,
    found,
)


def check(ctx: Context) -> Finding:
    return first_finding(SITUATIONS, _Reading(ctx))


PROBE = Probe(
    id="claude-sources",
    title="Where Claude Desktop finds the connector",
    category="configuration",
    run=check,
    timeout=5.0,
)


@hookimpl
def sidequest_probes():
    return [PROBE]
