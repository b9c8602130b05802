"""The fake scheduler tools themselves: `tool.py NAME ARGS...` (see __init__.py for why and how).

Standard library only, and no import of the code under test: these stand for other vendors'
programs. Messages and exit codes copy the real tools' for the situations sidequest meets.
"""

from __future__ import annotations

import base64
import json
import os
import plistlib
import sys
from pathlib import Path

STATE = Path(os.environ["FAKE_SCHEDULER_STATE"])


def load(tool: str) -> dict:
    path = STATE / f"{tool}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save(tool: str, data: dict) -> None:
    path = STATE / f"{tool}.json"
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(data, indent=2))
    os.replace(temp, path)


def record(tool: str, args: list[str], stdin: bytes | None) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    entry = {"tool": tool, "args": args}
    if stdin is not None:
        entry["stdin_b64"] = base64.b64encode(stdin).decode()
    with open(STATE / "calls.jsonl", "a") as handle:
        handle.write(json.dumps(entry) + "\n")


def fail(message: str, code: int = 1) -> int:
    sys.stderr.write(message + "\n")
    return code


# ---------------------------------------------------------------------------------- launchctl


def launchctl(args: list[str]) -> int:
    state = load("launchctl")
    loaded: dict = state.setdefault("loaded", {})
    legacy = os.environ.get("FAKE_LAUNCHCTL_LEGACY") == "1"
    my_domain = f"gui/{os.getuid()}"
    if not args:
        return fail("usage: launchctl <subcommand> ...", 64)
    command, rest = args[0], args[1:]
    if legacy and command in ("bootstrap", "bootout", "print"):
        return fail(f"Unrecognized subcommand: {command}\nUsage: launchctl <subcommand> ... | help [subcommand]", 1)
    if command == "bootstrap":
        if len(rest) != 2 or rest[0] != my_domain:
            return fail("Bootstrap failed: 125: Domain does not support specified action", 125)
        return _launchctl_load(state, loaded, rest[1], strict=True)
    if command == "load":
        paths = [a for a in rest if not a.startswith("-")]
        if len(paths) != 1:
            return fail("usage: launchctl load <path>", 64)
        return _launchctl_load(state, loaded, paths[0], strict=False)
    if command == "bootout":
        target = rest[0] if rest else ""
        if not target.startswith(my_domain + "/"):
            return fail("Boot-out failed: 125: Domain does not support specified action", 125)
        label = target[len(my_domain) + 1 :]
        if label not in loaded:
            return fail("Boot-out failed: 3: No such process", 3)
        del loaded[label]
        save("launchctl", state)
        return 0
    if command == "unload":
        paths = [a for a in rest if not a.startswith("-")]
        label = next((lbl for lbl, path in loaded.items() if path == (paths[0] if paths else None)), None)
        if label is None:
            return fail(f"{paths[0] if paths else ''}: Could not find specified service", 0)
        del loaded[label]
        save("launchctl", state)
        return 0
    if command == "print":
        target = rest[0] if rest else ""
        label = target[len(my_domain) + 1 :] if target.startswith(my_domain + "/") else None
        if label not in loaded:
            return fail(f'Could not find service "{label}" in domain for user gui: {os.getuid()}', 113)
        sys.stdout.write(f"{target} = {{\n\tpath = {loaded[label]}\n\tstate = not running\n}}\n")
        return 0
    if command == "list":
        if rest and rest[0] in loaded:
            sys.stdout.write(f'{{\n\t"Label" = "{rest[0]}";\n}};\n')
            return 0
        return fail(f'Could not find service "{rest[0] if rest else ""}" in domain for port', 113)
    return fail(f"Unrecognized subcommand: {command}", 1)


def _launchctl_load(state: dict, loaded: dict, path: str, *, strict: bool) -> int:
    try:
        with open(path, "rb") as handle:
            data = plistlib.load(handle)
        label = data["Label"]
        assert isinstance(data["ProgramArguments"], list)
    except Exception:
        return fail(f"Bootstrap failed: 5: Input/output error\n{path}: invalid property list", 5)
    if label in loaded:
        if strict:
            return fail("Bootstrap failed: 5: Input/output error", 5)
        sys.stderr.write(f"{path}: service already loaded\n")
        return 0
    loaded[label] = path
    state.setdefault("loaded_plists", {})[label] = plistlib.dumps(data).decode()
    save("launchctl", state)
    return 0


# ---------------------------------------------------------------------------------- schtasks


def schtasks(args: list[str]) -> int:
    state = load("schtasks")
    tasks: dict = state.setdefault("tasks", {})
    if not args:
        return fail("ERROR: Invalid syntax.", 1)
    command = args[0].lower()
    options: dict[str, str | bool] = {}
    # /XML takes a file with /Create; with /Query it is a flag (the task is printed as XML).
    with_value = {"/tn", "/sc", "/mo", "/tr", "/fo"} | ({"/xml"} if command == "/create" else set())
    i = 1
    while i < len(args):
        key = args[i].lower()
        if key in with_value:
            if i + 1 >= len(args):
                return fail(f"ERROR: Invalid syntax. Value expected for '{args[i]}'.", 1)
            options[key] = args[i + 1]
            i += 2
        elif key in ("/f", "/v", "/xml"):
            options[key] = True
            i += 1
        else:
            return fail(f"ERROR: Invalid argument/option - '{args[i]}'.", 1)
    name = options.get("/tn")
    if command == "/create":
        if not isinstance(name, str) or not isinstance(options.get("/xml"), str):
            return fail("ERROR: Invalid syntax.", 1)
        raw = Path(options["/xml"]).read_bytes()
        if not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            return fail("ERROR: The task XML is malformed.\n(1,1)::ERROR: incorrect document syntax", 1)
        if name in tasks and not options.get("/f"):
            return fail("ERROR: Cannot create a file when that file already exists.", 1)
        tasks[name] = raw.decode("utf-16")
        save("schtasks", state)
        sys.stdout.write(f'SUCCESS: The scheduled task "{name}" has successfully been created.\n')
        return 0
    if command == "/query":
        if name not in tasks:
            return fail("ERROR: The system cannot find the file specified.", 1)
        if options.get("/xml") is not None:
            sys.stdout.write(tasks[name])
        else:
            sys.stdout.write(f"\nFolder: \\\nTaskName  Next Run Time  Status\n{name}  N/A  Ready\n")
        return 0
    if command == "/delete":
        if name not in tasks:
            return fail("ERROR: The system cannot find the file specified.", 1)
        if not options.get("/f"):
            return fail(f'WARNING: Are you sure you want to remove the task "{name}" (Y/N)? ', 1)
        del tasks[name]
        save("schtasks", state)
        sys.stdout.write(f'SUCCESS: The scheduled task "{name}" was successfully deleted.\n')
        return 0
    return fail(f"ERROR: Invalid argument/option - '{args[0]}'.", 1)


# ---------------------------------------------------------------------------------- systemctl


def _unit_folder() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path(os.environ["HOME"]) / ".config"
    return base / "systemd" / "user"


def systemctl(args: list[str]) -> int:
    if "--user" not in args:
        return fail("fake systemctl: only --user is supported (sidequest must never touch the system manager)", 64)
    if os.environ.get("FAKE_SYSTEMCTL_USER") == "down":
        return fail("Failed to connect to bus: No medium found", 1)
    words = [a for a in args if a != "--user"]
    now = "--now" in words
    words = [w for w in words if w != "--now"]
    state = load("systemctl")
    state.setdefault("loaded", [])
    state.setdefault("enabled", [])
    state.setdefault("active", [])
    command, units = (words[0], words[1:]) if words else ("", [])

    def exists(unit: str) -> bool:
        return (_unit_folder() / unit).is_file()

    if command == "show-environment":
        sys.stdout.write(f"HOME={os.environ.get('HOME', '')}\n")
        return 0
    if command == "daemon-reload":
        folder = _unit_folder()
        state["loaded"] = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        state["loaded_text"] = {p.name: p.read_text() for p in folder.iterdir()} if folder.is_dir() else {}
        state["active"] = [u for u in state["active"] if u in state["loaded"]]
        save("systemctl", state)
        return 0
    if command == "enable":
        for unit in units:
            if unit not in state["loaded"] or not exists(unit):
                return fail(f"Failed to enable unit: Unit file {unit} does not exist.", 1)
            if unit not in state["enabled"]:
                state["enabled"].append(unit)
                sys.stderr.write(f"Created symlink .../timers.target.wants/{unit} → {_unit_folder() / unit}.\n")
            if now and unit not in state["active"]:
                state["active"].append(unit)
        save("systemctl", state)
        return 0
    if command in ("start", "restart"):
        for unit in units:
            if unit not in state["loaded"]:
                return fail(f"Failed to {command} {unit}: Unit {unit} not found.", 5)
            if unit not in state["active"]:
                state["active"].append(unit)
        state.setdefault("restarts", []).extend(units)
        save("systemctl", state)
        return 0
    if command == "disable":
        for unit in units:
            if unit in state["enabled"]:
                state["enabled"].remove(unit)
                sys.stderr.write(f"Removed .../timers.target.wants/{unit}.\n")
            if now and unit in state["active"]:
                state["active"].remove(unit)
        save("systemctl", state)
        return 0
    if command == "is-enabled":
        unit = units[0] if units else ""
        if unit in state["enabled"]:
            sys.stdout.write("enabled\n")
            return 0
        sys.stdout.write("disabled\n" if exists(unit) else "")
        return 1 if exists(unit) else fail(f"Failed to get unit file state for {unit}: No such file or directory", 1)
    if command == "is-active":
        unit = units[0] if units else ""
        sys.stdout.write("active\n" if unit in state["active"] else "inactive\n")
        return 0 if unit in state["active"] else 3
    return fail(f"Unknown command verb {command}.", 1)


# ---------------------------------------------------------------------------------- crontab


def crontab(args: list[str], stdin: bytes | None) -> int:
    path = STATE / "crontab.table"
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "user"
    if args == ["-l"]:
        if not path.exists():
            return fail(f"no crontab for {user}", 1)
        sys.stdout.buffer.write(path.read_bytes())
        return 0
    if args == ["-r"]:
        if not path.exists():
            return fail(f"no crontab for {user}", 1)
        path.unlink()
        return 0
    if args == ["-"]:
        data = stdin or b""
        if data and not data.endswith(b"\n"):
            return fail("new crontab file is missing newline before EOF, can't install.", 1)
        for number, line in enumerate(data.splitlines(), 1):
            text = line.decode("utf-8", "replace").strip()
            fields_needed = 2 if text.startswith("@") else 6
            if (
                text
                and not text.startswith("#")
                and "=" not in text.split(None, 1)[0]
                and len(text.split()) < fields_needed
            ):
                return fail(f'"-":{number}: bad minute\nerrors in crontab file, can\'t install.', 1)
        path.write_bytes(data)
        return 0
    return fail("usage: crontab [-u user] [-l | -r | file]", 1)


def main() -> int:
    tool, args = sys.argv[1], sys.argv[2:]
    stdin = sys.stdin.buffer.read() if tool == "crontab" and args == ["-"] else None
    record(tool, args, stdin)
    if tool == "launchctl":
        return launchctl(args)
    if tool == "schtasks":
        return schtasks(args)
    if tool == "systemctl":
        return systemctl(args)
    if tool == "crontab":
        return crontab(args, stdin)
    return fail(f"fake scheduler: unknown tool {tool}", 127)


if __name__ == "__main__":
    sys.exit(main())
