"""Claude Desktop Extensions (`.mcpb`, formerly `.dxt`): which are installed, and how Desktop launches them.

Desktop loads a connector either from `mcpServers` in its config or as an extension. An extension
lives beside the config in Desktop's `<userData>` folder (CLAUDE-DESKTOP.md Q1):

    extensions-installations.json         {"extensions": {<id>: {id, version, manifest, ...}}}
    Claude Extensions/<id>/               the unpacked bundle (its manifest.json, its code)
    Claude Extensions Settings/<id>.json  {"isEnabled": true, "userConfig": {...}}

What goes wrong there is invisible to the owner: the extension is disabled, a required setting is
empty (Desktop then silently skips the server: `Extension … has missing required configuration`),
a sensitive value reaches the server still in its `__encrypted__:` form (a known Desktop bug), or
the connector is registered both ways and two processes race for one token chain.

`launch_config` mirrors the launch-config builder Desktop uses (`getMcpConfigForManifest` in
modelcontextprotocol/mcpb `src/shared/config.ts`): platform overrides replace command, args and
env; a required `user_config` value missing means no launch; `${__dirname}`, `${HOME}`,
`${DESKTOP}`, `${DOCUMENTS}`, `${DOWNLOADS}`, `${/}` and `${user_config.KEY}` are substituted
(booleans as "true"/"false", list values expanded in place of an argument that is only that
variable). The on-disk layout is not documented by the vendor; it is what installers agree on.
User settings hold secrets: nothing here puts a value in a repr or a message.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from doctor.claude_desktop.config import IDENTIFYING_ENV_KEYS
from doctor.values import Value

REGISTRY_FILE = "extensions-installations.json"
EXTENSIONS_FOLDER = "Claude Extensions"
SETTINGS_FOLDER = "Claude Extensions Settings"
ENCRYPTED_PREFIX = "__encrypted__:"
MAX_FILE_BYTES = 5 * 1024 * 1024


class ExtensionsError(Exception):
    """The extension registry could not be read; `reason` is "unreadable", "too_large" or "not_json"."""

    def __init__(self, reason: str, message: str, path: Path) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.path = path


class Extension(Value):
    """One installed extension: its registry record, its manifest, and the user's settings for it."""

    __slots__ = ("id", "manifest", "folder", "enabled", "user_config", "settings_path")

    def __init__(
        self,
        id: str,
        manifest: dict[str, Any],
        folder: Path,
        enabled: bool,
        user_config: dict[str, Any],
        settings_path: Path | None,
    ) -> None:
        self.id = id
        self.manifest = manifest
        self.folder = folder  # where Desktop unpacked the bundle: ${__dirname}
        self.enabled = enabled  # a missing settings file reads as disabled
        self.user_config = user_config  # the user's values: may hold secrets, never shown
        self.settings_path = settings_path  # None when the settings file does not exist

    def __repr__(self) -> str:
        return (
            f"Extension(id={self.id!r}, name={self.name!r}, enabled={self.enabled!r}, "
            f"user_config_keys={sorted(self.user_config)!r})"
        )

    @property
    def name(self) -> str | None:
        value = self.manifest.get("name")
        return value if isinstance(value, str) else None

    @property
    def display_name(self) -> str | None:
        value = self.manifest.get("display_name")
        return value if isinstance(value, str) else None

    @property
    def version(self) -> str | None:
        value = self.manifest.get("version")
        return value if isinstance(value, str) else None

    def missing_required(self) -> list[str]:
        """The required `user_config` keys without a value: Desktop then does not start the server."""
        return missing_required(self.manifest, self.user_config)

    def encrypted_values(self) -> list[str]:
        """The `user_config` keys whose stored value is still ciphertext (`__encrypted__:…`)."""
        return sorted(
            key
            for key, value in self.user_config.items()
            if isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX)
        )

    def launch_config(self, platform: str | None = None, home: Path | None = None) -> dict[str, Any] | None:
        """The command, args and env Desktop would start, or None when it would not start one."""
        return launch_config(self.manifest, self.folder, self.user_config, platform=platform, home=home)

    def encrypted_in_launch(self, platform: str | None = None, home: Path | None = None) -> list[str]:
        """Where the launch Desktop builds still carries an `__encrypted__:` value: env keys, and "args".

        That is the Windows bug of claude-code#78296: the connector receives ciphertext instead of
        the setting. Empty when Desktop would start nothing.
        """
        launch = self.launch_config(platform=platform, home=home)
        if launch is None:
            return []
        env = launch.get("env")
        found = sorted(key for key, value in (env.items() if isinstance(env, dict) else ()) if _has_ciphertext(value))
        args = launch.get("args")
        if isinstance(args, list) and any(_has_ciphertext(arg) for arg in args):
            found.append("args")
        return found

    def option_title(self, key: str) -> str:
        """How Claude Desktop's Settings → Extensions labels a `user_config` key (its title, else the key)."""
        options = self.manifest.get("user_config")
        option = options.get(key) if isinstance(options, dict) else None
        title = option.get("title") if isinstance(option, dict) else None
        return title.strip() if isinstance(title, str) and title.strip() else key

    def settings_feeding_env(self) -> list[tuple[str, str, bool]]:
        """(env key it feeds, or "", value, sensitive) for every setting that is sensitive or feeds an env key.

        For the redactor only: these values may be tokens, and the doctor must be able to hide
        them even though it never prints them. Which env keys hold secrets is the caller's call.
        """
        options = self.manifest.get("user_config")
        options = options if isinstance(options, dict) else {}
        feeds = _env_fed_by(self.manifest)
        found = []
        for key, value in self.user_config.items():
            option = options.get(key)
            sensitive = isinstance(option, dict) and option.get("sensitive") is True
            targets = feeds.get(key, [])
            if not sensitive and not targets:
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item:
                    found.extend((target, item, sensitive) for target in targets or [""])
        return found

    def env_keys(self) -> list[str]:
        """The env keys the manifest passes to the server (values not read)."""
        env = _mcp_config(self.manifest).get("env")
        return sorted(env) if isinstance(env, dict) else []


def load_extensions(user_data: Path) -> list[Extension]:
    """Every extension in `<user_data>/extensions-installations.json`; [] when there is no registry."""
    registry = Path(user_data) / REGISTRY_FILE
    data = _read_json(registry)
    if data is None:
        return []
    records = data.get("extensions") if isinstance(data, dict) else None
    if isinstance(records, dict):
        items: Iterable[tuple[Any, Any]] = records.items()
    elif isinstance(records, list):
        items = ((record.get("id") if isinstance(record, dict) else None, record) for record in records)
    else:
        return []
    found = []
    for key, record in items:
        if not isinstance(record, dict):
            continue
        ext_id = record.get("id") if isinstance(record.get("id"), str) else key
        if not isinstance(ext_id, str) or not ext_id or "/" in ext_id or "\\" in ext_id or ext_id in (".", ".."):
            continue  # an id that is not a plain folder name cannot be one of Desktop's
        found.append(_extension(Path(user_data), ext_id, record))
    return found


def _extension(user_data: Path, ext_id: str, record: dict[str, Any]) -> Extension:
    folder = user_data / EXTENSIONS_FOLDER / ext_id
    manifest = record.get("manifest")
    if not isinstance(manifest, dict):
        # Older records may hold only the id: the unpacked bundle has the manifest.
        try:
            manifest = _read_json(folder / "manifest.json")
        except ExtensionsError:
            manifest = None
    settings_path = user_data / SETTINGS_FOLDER / f"{ext_id}.json"
    try:
        settings = _read_json(settings_path)
    except ExtensionsError:
        settings = None
    settings = settings if isinstance(settings, dict) else None
    user_config = settings.get("userConfig") if settings else None
    return Extension(
        id=ext_id,
        manifest=manifest if isinstance(manifest, dict) else {},
        folder=folder,
        enabled=bool(settings and settings.get("isEnabled") is True),
        user_config=dict(user_config) if isinstance(user_config, dict) else {},
        settings_path=settings_path if settings is not None else None,
    )


def _read_json(path: Path) -> Any:
    """The parsed file, None when it does not exist; ExtensionsError when it cannot be read or parsed."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ExtensionsError("unreadable", f"{path.name} could not be read: {exc.strerror}.", path) from None
    if not stat.S_ISREG(info.st_mode):
        raise ExtensionsError("unreadable", f"{path.name} is not a regular file.", path)
    if info.st_size > MAX_FILE_BYTES:
        raise ExtensionsError("too_large", f"{path.name} is {info.st_size // 1024} KB; it is not read.", path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
        return json.loads(text)
    except OSError as exc:
        raise ExtensionsError("unreadable", f"{path.name} could not be read: {exc.strerror}.", path) from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ExtensionsError("not_json", f"{path.name} is not valid JSON.", path) from None


def find_connector(extensions: Iterable[Extension], names: Sequence[str]) -> Extension | None:
    """The connector among the extensions: by manifest name or display name, else by the env keys it passes."""
    extensions = list(extensions)
    wanted = {name.lower() for name in names}
    for extension in extensions:
        if {(extension.name or "").lower(), (extension.display_name or "").lower()} & wanted:
            return extension
    for extension in extensions:
        if any(key in IDENTIFYING_ENV_KEYS for key in extension.env_keys()):
            return extension
    return None


# --------------------------------------------------------------------------- the launch Desktop builds


def missing_required(manifest: Mapping[str, Any], user_config: Mapping[str, Any]) -> list[str]:
    """As mcpb's hasRequiredConfigMissing: a required key the user left empty (a default does not count)."""
    options = manifest.get("user_config")
    if not isinstance(options, dict):
        return []
    missing = []
    for key, option in options.items():
        if not isinstance(option, dict) or not option.get("required"):
            continue
        value = user_config.get(key)
        if _empty(value) or (isinstance(value, list) and (not value or any(_empty(v) for v in value))):
            missing.append(key)
    return missing


def _empty(value: Any) -> bool:
    return value is None or value == ""


def launch_config(
    manifest: Mapping[str, Any],
    extension_path: Path,
    user_config: Mapping[str, Any],
    *,
    platform: str | None = None,
    home: Path | None = None,
) -> dict[str, Any] | None:
    """The `mcp_config` Desktop starts for this manifest (command, args, env), or None when it starts none."""
    platform = sys.platform if platform is None else platform
    base = _mcp_config(manifest)
    if not base:
        return None
    result = dict(base)
    overrides = base.get("platform_overrides")
    override = overrides.get(platform) if isinstance(overrides, dict) else None
    if isinstance(override, dict):
        for key in ("command", "args", "env"):
            if override.get(key):  # JavaScript's `a || b`: an empty override keeps the base value
                result[key] = override[key]
    if missing_required(manifest, user_config):
        return None
    separator = "\\" if platform == "win32" else "/"
    variables: dict[str, str | list[str]] = {"__dirname": str(extension_path), "pathSeparator": separator}
    variables["/"] = separator
    variables.update(system_dirs(home))
    variables.update(_user_config_variables(manifest, user_config))
    return _substituted(result, variables)


def _has_ciphertext(value: Any) -> bool:
    return isinstance(value, str) and ENCRYPTED_PREFIX in value


def _env_fed_by(manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """user_config key → the env keys whose template names it, in the base env and every platform override."""
    config = _mcp_config(manifest)
    envs = [config.get("env")]
    overrides = config.get("platform_overrides")
    if isinstance(overrides, dict):
        envs.extend(override.get("env") for override in overrides.values() if isinstance(override, dict))
    feeds: dict[str, list[str]] = {}
    for env in envs:
        if not isinstance(env, dict):
            continue
        for env_key, template in env.items():
            if not isinstance(template, str):
                continue
            for part in template.split("${user_config.")[1:]:
                key = part.split("}", 1)[0]
                if env_key not in feeds.setdefault(key, []):
                    feeds[key].append(env_key)
    return feeds


def _mcp_config(manifest: Mapping[str, Any]) -> dict[str, Any]:
    server = manifest.get("server")
    config = server.get("mcp_config") if isinstance(server, dict) else None
    return config if isinstance(config, dict) else {}


def system_dirs(home: Path | None = None) -> dict[str, str]:
    """The folders Desktop offers as ${HOME}, ${DESKTOP}, ${DOCUMENTS} and ${DOWNLOADS} (Electron's
    app.getPath; a Windows user may have moved them, e.g. into OneDrive, which this does not see)."""
    home = Path.home() if home is None else home
    return {
        "HOME": str(home),
        "DESKTOP": str(home / "Desktop"),
        "DOCUMENTS": str(home / "Documents"),
        "DOWNLOADS": str(home / "Downloads"),
    }


def _user_config_variables(manifest: Mapping[str, Any], user_config: Mapping[str, Any]) -> dict[str, str | list[str]]:
    merged: dict[str, Any] = {}
    options = manifest.get("user_config")
    if isinstance(options, dict):
        for key, option in options.items():
            if isinstance(option, dict) and "default" in option:
                merged[key] = option["default"]
    merged.update(user_config)
    variables: dict[str, str | list[str]] = {}
    for key, value in merged.items():
        if isinstance(value, list):
            variables[f"user_config.{key}"] = [_js_string(item) for item in value]
        else:
            variables[f"user_config.{key}"] = _js_string(value)
    return variables


def _js_string(value: Any) -> str:
    """JavaScript's String(value) for JSON values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return "[object Object]" if isinstance(value, dict) else ",".join(_js_string(v) for v in value)
    return str(value)


def _substituted(value: Any, variables: Mapping[str, str | list[str]]) -> Any:
    if isinstance(value, str):
        for key, replacement in variables.items():
            if isinstance(replacement, str):
                value = value.replace("${" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [item for entry in value for item in _substituted_item(entry, variables)]
    if isinstance(value, dict):
        return {key: _substituted(item, variables) for key, item in value.items()}
    return value


def _substituted_item(item: Any, variables: Mapping[str, str | list[str]]) -> list[Any]:
    # An argument that is exactly one ${user_config.KEY} may expand to several (a list value).
    if isinstance(item, str) and item.startswith("${user_config.") and item.endswith("}") and item.count("}") == 1:
        replacement = variables.get(item[2:-1])
        if replacement is None or replacement == "":  # JavaScript's falsy: the text stays (an empty list is truthy)
            return [item]
        return list(replacement) if isinstance(replacement, list) else [replacement]
    return [_substituted(item, variables)]
