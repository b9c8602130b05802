"""Probe `connector-launch`: start the connector the way Claude Desktop does and shake hands with it.

The settings can be right and the connector still not start under Desktop: the program is not
in the folders Desktop searches, it stops at once, it prints text that is not MCP, it never
answers, or it exits when newer Desktop builds send `server/discover`. The owner then sees only
"Server disconnected". This probe rebuilds Desktop's launch from the connector's `mcpServers`
entry and from its Desktop Extension (doctor/claude_desktop/launch.py: the entry's or manifest's
env over the small inherited set, the PATH Desktop logged, cwd `/`), starts it, completes
`initialize` and `tools/list` with the official MCP SDK's client, sends `server/discover`, and
stops it (doctor/claude_desktop/handshake.py). Registered both ways, Desktop starts both copies,
and so does this probe, one after the other; the facts say which were started (`launches`).
An extension Desktop does not start (turned off, a required setting empty) is not started here
either: the skip says why, and the extension's own findings belong to the probe that reads it.

It needs no other probe: it reads the entry and the extensions itself and only skips when there
is nothing Desktop would start (`claude-config-sync` says why). Its side effects are "network":
the connector may refresh the QuickBooks token at start, through the same locked store, so
`--offline` skips it.

Facts never hold env values; the connector's stderr lines go in the details only, and the
report's redactor removes every known secret from them. Secret-looking values of the entry's
env, and an extension's sensitive settings, are added to the run's secrets, so a connector that
prints them is redacted too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from doctor.advice import DOCTOR, EDIT_CONFIG, QUIT_CLAUDE, SETUP
from doctor.claude_desktop.config import CONNECTOR_NAME, ConnectorEntry
from doctor.claude_desktop.launch import (
    FROM_EXTENSION,
    PATH_FROM_BUNDLE,
    PATH_FROM_ENTRY,
    PATH_FROM_LOG,
    RUNTIME_FOR_BUILT_IN_NODE,
    Launch,
    rebuild_extension_launch,
    rebuild_launch,
)
from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation

TIMEOUT_ENV = "SIDEQUEST_CONNECTOR_TIMEOUT"
# Set in the started connector's env (its only difference from Desktop's launch): a connector that runs the
# doctor live at its own start would otherwise start itself again, and again.
LAUNCHED_ENV = "SIDEQUEST_LAUNCHED_BY_DOCTOR"
ANSWER_WAIT_S = 8.0  # how long the connector gets to answer initialize and tools/list
LAUNCH_TIMEOUT_S = 16.0  # one start: the answer wait, the discover wait, and the SDK's bounded shutdown
PROBE_TIMEOUT_S = 2 * LAUNCH_TIMEOUT_S  # registered both ways, Desktop starts two copies, and so does this probe
_SHUTDOWN_ALLOWANCE_S = 7.0
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")
SUPPORT_REPORT = f"{DOCTOR} --format json --output sidequest-report.json"
SEND_REPORT = f"If that does not help, run `{SUPPORT_REPORT}` and send the file to SideQuest support."

_DISCOVER_WORDS = {
    "answered": "It also answers server/discover, the request newer Claude Desktop builds start with.",
    "refused": "It declines server/discover (the request newer Claude Desktop builds start with) without stopping, "
    "so Desktop falls back to the classic start.",
    "no_answer": "It did not answer server/discover within a few seconds but kept running, so Desktop falls back "
    "to the classic start.",
}
_PATH_WORDS = {
    PATH_FROM_LOG: "the folders Claude Desktop logged when it last started the connector",
    PATH_FROM_ENTRY: 'the PATH set in the entry\'s own "env"',
    PATH_FROM_BUNDLE: "the extension's own folder",
}


def answer_wait(ctx: Context) -> float:
    """The answer wait: $SIDEQUEST_CONNECTOR_TIMEOUT seconds when set (kept inside the probe's own timeout)."""
    raw = ctx.environ.get(TIMEOUT_ENV, "").strip()
    try:
        wait = float(raw) if raw else ANSWER_WAIT_S
    except ValueError:
        wait = ANSWER_WAIT_S
    return min(max(wait, 0.5), LAUNCH_TIMEOUT_S - _SHUTDOWN_ALLOWANCE_S)


def _logged_path(ctx: Context, *names: str | None) -> str | None:
    """The PATH Desktop logged on its last start of the connector (claude-logs reads the same lines)."""
    from doctor.claude_desktop.logs import desktop_search_path, read_connector_logs
    from doctor.claude_desktop.paths import log_folders

    folders = log_folders(ctx.environ, config_path=ctx.claude_config_path)
    wanted = [name for name in (*names, CONNECTOR_NAME) if name]
    return desktop_search_path(read_connector_logs(folders, list(dict.fromkeys(wanted))))


def _register_secrets(ctx: Context, env: dict[str, Any]) -> None:
    for key, value in env.items():
        if isinstance(value, str) and len(value) >= 8 and any(word in key.upper() for word in _SECRET_WORDS):
            ctx.add_secret(value, "refresh_token" if "REFRESH" in key.upper() else "secret")


def check(ctx: Context) -> Finding:
    if ctx.environ.get(LAUNCHED_ENV):
        return Finding(
            "skip",
            "Not started: this doctor runs inside a connector that connector-launch started (no second copy).",
        )
    began = time.monotonic()
    config = ctx.claude_config
    entry = config.connector() if config is not None else None
    if entry is not None and not entry.command:
        entry = None
    extension, extension_facts = _find_extension(ctx, entry)
    launches: list[Launch] = []
    if entry is not None:
        _register_secrets(ctx, entry.env)
        launches.append(rebuild_launch(entry, ctx.environ, logged_path=_logged_path(ctx, entry.name)))
    not_started = None  # why Desktop does not start the extension: (reason code, words)
    if extension is not None:
        launch, not_started = _extension_launch(ctx, extension, config)
        if launch is not None:
            launches.append(launch)
        extension_facts["extension_not_started"] = not_started[0] if not_started else None
    if not launches:
        return _nothing_to_start(ctx, extension, not_started, extension_facts)
    started: list[tuple[Launch, Finding]] = []
    for launch in launches:
        remaining = PROBE_TIMEOUT_S - (time.monotonic() - began)
        if started and remaining < _SHUTDOWN_ALLOWANCE_S + 1.0:
            break  # no time left for the second copy: the facts say it was not started
        started.append((launch, _start(ctx, launch, remaining)))
    return _combined(started, launches, extension_facts, not_started)


def _find_extension(ctx: Context, entry: ConnectorEntry | None) -> tuple[Any, dict[str, Any]]:
    """The connector's Desktop Extension in `<userData>` (the folder of Desktop's config), if it is installed."""
    from doctor.claude_desktop.extensions import find_connector

    facts: dict[str, Any] = {"extension_id": None}
    if ctx.claude_config_path is None:
        return None, facts
    names = [name for name in ((entry.name if entry else None), CONNECTOR_NAME) if name]
    installed = ctx.load_extensions()
    if installed.error is not None:
        facts["extensions_unreadable"] = installed.error.reason
        return None, facts
    extension = find_connector(installed.value, names)
    if extension is not None:
        server = extension.manifest.get("server")
        facts.update(
            extension_id=extension.id,
            extension_version=extension.version,
            extension_enabled=extension.enabled,
            extension_server_type=server.get("type") if isinstance(server, dict) else None,
        )
    return extension, facts


def _extension_launch(ctx: Context, extension: Any, config: Any) -> tuple[Launch | None, tuple[str, str] | None]:
    """The extension's launch as Desktop builds it, or why Desktop does not start it: (code, words)."""
    label = f'the extension "{extension.display_name or extension.name or extension.id}"'
    if not extension.enabled:
        return None, ("disabled", f"{label} is turned off in Claude Desktop")
    missing = extension.missing_required()
    if missing:
        return None, (
            "missing_required",
            f"{label} has required settings left empty ({', '.join(missing)}), so Claude Desktop skips it",
        )
    _register_extension_secrets(ctx, extension)
    encrypted = extension.encrypted_values()
    if encrypted:
        # Only Desktop can decrypt them (its OS-protected key); started with the ciphertext, the connector would
        # fail where Desktop's copy may work. (Some Desktop builds pass the ciphertext on: another finding.)
        return None, (
            "encrypted_settings",
            f"{label} keeps settings encrypted ({', '.join(encrypted)}) that only Claude Desktop can read, so "
            "the doctor cannot start it the way Desktop does",
        )
    home_key = "USERPROFILE" if sys.platform == "win32" else "HOME"
    home = Path(ctx.environ[home_key]) if ctx.environ.get(home_key) else None
    built_in = not (config is not None and config.data.get("isUsingBuiltInNodeForMcp") is False)
    logged = _logged_path(ctx, extension.display_name, extension.name)
    launch = rebuild_extension_launch(extension, ctx.environ, logged_path=logged, home=home, built_in_node=built_in)
    if launch is None:
        return None, (
            "no_command",
            f"the manifest of {label} names no command (Claude Desktop starts it its own way, e.g. with uv), "
            "which the doctor does not reproduce",
        )
    if launch.runtime == RUNTIME_FOR_BUILT_IN_NODE and launch.program is None:
        return None, (
            "built_in_node",
            f"Claude Desktop runs {label} with its own built-in Node.js, which the doctor cannot use, and "
            "there is no node program in the folders Desktop searches to stand in for it (Cowork and Code "
            "sessions need one too)",
        )
    _register_secrets(ctx, launch.env)
    return launch, None


def _register_extension_secrets(ctx: Context, extension: Any) -> None:
    options = extension.manifest.get("user_config")
    if not isinstance(options, dict):
        return
    for key, option in options.items():
        if not isinstance(option, dict) or not option.get("sensitive"):
            continue
        value = extension.user_config.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item:
                ctx.add_secret(item, "secret")


def _nothing_to_start(
    ctx: Context, extension: Any, not_started: tuple[str, str] | None, extension_facts: dict[str, Any]
) -> Finding:
    if extension is not None and not_started is not None:
        return Finding(
            "skip",
            f"Not started: Claude Desktop does not start the SideQuest connector either: {not_started[1]}.",
            facts={
                "claude_config": str(ctx.claude_config_path) if ctx.claude_config_path else None,
                **extension_facts,
            },
        )
    return Finding(
        "skip",
        "Not started: Claude Desktop's settings have no SideQuest connector with a command to start "
        "(claude-config-sync says why).",
        facts={"claude_config": str(ctx.claude_config_path) if ctx.claude_config_path else None, **extension_facts},
    )


def _start(ctx: Context, launch: Launch, remaining: float) -> Finding:
    """Start one copy as Desktop would and name how it went."""
    facts = _launch_facts(launch)
    if launch.program is None:
        return _not_found(launch, facts)

    from doctor.claude_desktop.handshake import shake_hands

    wait = min(answer_wait(ctx), max(0.5, remaining - _SHUTDOWN_ALLOWANCE_S))
    shake = shake_hands(launch._replace(env={**launch.env, LAUNCHED_ENV: "1"}), wait)
    facts.update(_handshake_facts(shake))
    facts["answer_wait_s"] = wait
    situation = _SITUATIONS.get(shake.kind, _protocol_error)
    return situation(launch, shake, facts, wait)


def _label(launch: Launch) -> str:
    if launch.source == FROM_EXTENSION:
        return f'as the Claude Desktop extension "{launch.name}"'
    return f'from "{launch.name}" in Claude Desktop\'s settings (mcpServers)'


def _copy(launch: Launch) -> str:
    return "the extension's copy" if launch.source == FROM_EXTENSION else "the settings' copy"


def _combined(
    started: list[tuple[Launch, Finding]],
    launches: list[Launch],
    extension_facts: dict[str, Any],
    not_started: tuple[str, str] | None,
) -> Finding:
    """One finding for the copies started: the first that failed, else the first; every copy in the facts."""
    launch, finding = next(((one, done) for one, done in started if done.status != "ok"), started[0])
    facts = {
        **finding.facts,
        **extension_facts,
        "launches": [_brief(one, done.facts) for one, done in started],
    }
    details = list(finding.details)
    if len(launches) > 1:
        said = "; ".join(
            f"{_copy(one)} {_OUTCOME_WORDS.get(done.facts.get('outcome'), 'did not start')}"
            + (" (described here)" if one is launch and finding.status != "ok" else "")
            for one, done in started
        )
        if len(started) < len(launches):
            said += f"; {_copy(launches[-1])} was not started (no time was left)"
        details.insert(
            0,
            f"Claude Desktop starts this connector twice, {_label(launches[0])} and {_label(launches[1])}, and "
            f"both copies use the same QuickBooks connection. Both were started here: {said}.",
        )
    elif not_started is not None:
        details.append(f"Not started as an extension: {not_started[1]}.")
    return finding._replace(details=details, facts=facts)


def _brief(launch: Launch, facts: dict[str, Any]) -> dict[str, Any]:
    keys = ("outcome", "started_ms", "tools", "exit_code", "exit_signal", "program", "runtime")
    return {
        "started_from": launch.source,
        "name": launch.name,
        "extension_id": launch.extension_id,
        **{key: facts.get(key) for key in keys},
    }


_OUTCOME_WORDS = {
    "ok": "answered",
    "command_not_found": "could not start: its program is not found",
    "spawn_failed": "could not start: its program does not run",
    "exited_at_start": "stopped right after it started",
    "stdout_not_json": "writes text that is not MCP",
    "no_answer": "did not answer",
    "exited_on_discover": "stopped on server/discover",
    "handshake_error": "answered with something that is not valid MCP",
}


def exit_words(code: int | None) -> str | None:
    """How the child ended, in words: "it stopped with exit code 1", "it was stopped by signal 9 (SIGKILL)"."""
    if code is None:
        return None
    if code >= 0:
        return f"it stopped with exit code {code}"
    import signal

    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:
        name = ""
    return f"it was stopped by signal {-code}{name}"


def _launch_facts(launch: Launch) -> dict[str, Any]:
    return {
        "started_from": launch.source,
        "entry": launch.name,
        "command": launch.command,
        "program": launch.program,
        "args_count": len(launch.args),
        "cwd": launch.cwd,
        "env_keys": launch.env_keys,
        "search_path": launch.search_folders,
        "search_path_source": launch.path_source,
        "runtime": launch.runtime,
    }


def _handshake_facts(shake: Any) -> dict[str, Any]:
    return {
        "outcome": shake.kind,
        "started_ms": round(shake.started_ms, 1) if shake.started_ms is not None else None,
        "tools": len(shake.tools),
        "tool_names": list(shake.tools),
        "server_name": shake.server_name,
        "server_version": shake.server_version,
        "protocol_version": shake.protocol_version,
        "server_discover": shake.discover,
        "stdout_noise_lines": shake.noise_lines,
        "stderr_lines": len(shake.stderr_tail),
        "child_stopped": shake.reaped,
        "exit_code": shake.exit_code if shake.exit_code is not None and shake.exit_code >= 0 else None,
        "exit_signal": -shake.exit_code if shake.exit_code is not None and shake.exit_code < 0 else None,
    }


def _stderr_details(shake: Any) -> list[str]:
    if not shake.stderr_tail:
        return ["It wrote nothing to its error output (stderr)."]
    return ["Its last messages (stderr):", *(f"  {line}" for line in shake.stderr_tail)]


def _fail(summary: str, details: list[str], facts: dict[str, Any], remediation: Remediation) -> Finding:
    return Finding(
        "fail", summary, details=details, facts=facts, remediation=remediation, cause="connector_not_starting"
    )


REINSTALL_EXTENSION = (
    "In Claude Desktop, open Settings → Extensions, remove the SideQuest extension and install it again from "
    "the latest .mcpb file SideQuest sent you"
)
EXTENSION_SETTINGS = "correct it in Claude Desktop → Settings → Extensions → SideQuest (Configure)"


def _runtime_details(launch: Launch) -> list[str]:
    if launch.runtime != RUNTIME_FOR_BUILT_IN_NODE:
        return []
    return [
        "Claude Desktop's chat runs this Node.js extension inside its own built-in Node.js, which no other "
        f"program can use; this test used {launch.program} from the folders Desktop searches instead "
        "(as Cowork and Code sessions do)."
    ]


def _exit_detail(shake: Any) -> list[str]:
    words = exit_words(shake.exit_code)
    return [words[0].upper() + words[1:] + "."] if words else []


def _not_found(launch: Launch, facts: dict[str, Any]) -> Finding:
    where = _PATH_WORDS.get(launch.path_source, "the folders Claude Desktop searches")
    if launch.source == FROM_EXTENSION:
        if launch.path_source == PATH_FROM_ENTRY:
            where = "the PATH set in the extension's manifest"
        python = launch.command.strip().lower() in ("python", "python3", "python.exe", "python3.exe")
        return _fail(
            f'Claude Desktop cannot start the SideQuest extension "{launch.name}": the program '
            f'"{launch.command}" is not found.',
            [
                f"Looked in {where}: {', '.join(launch.search_folders) or '(none)'}.",
                "Claude Desktop starts this extension with that program; it does not search the folders your "
                "terminal does.",
            ],
            facts,
            Remediation(
                f"Install Python 3 (from python.org), then: {QUIT_CLAUDE}"
                if python
                else f"{REINSTALL_EXTENSION}; then: {QUIT_CLAUDE}"
            ),
        )
    return _fail(
        f'Claude Desktop cannot start the SideQuest connector: the program "{launch.command}" is not found.',
        [
            f"Looked in {where}: {', '.join(launch.search_folders) or '(none)'}.",
            "Claude Desktop does not search the folders your terminal does, so a name that works in the terminal "
            "can fail there.",
        ],
        facts,
        Remediation(
            f'{EDIT_CONFIG}, set "command" of "{launch.name}" to the full path of the connector program '
            f"(from the SideQuest setup email), save, then: {QUIT_CLAUDE}"
        ),
    )


def _ok(launch: Launch, shake: Any, facts: dict[str, Any], wait: float) -> Finding:
    server = " ".join(part for part in (shake.server_name, shake.server_version) if part) or "a server with no name"
    details = [_DISCOVER_WORDS.get(shake.discover, ""), *_runtime_details(launch)]
    if shake.reaped is False:
        details.append("The test copy of the connector did not stop when asked and was killed.")
    return Finding(
        "ok",
        f"The connector starts as Claude Desktop starts it: it answered in {shake.started_ms:.0f} ms with "
        f"{len(shake.tools)} tool(s) ({server}).",
        details=[d for d in details if d],
        facts=facts,
    )


def _spawn_failed(launch: Launch, shake: Any, facts: dict[str, Any], wait: float) -> Finding:
    fix = (
        f"{REINSTALL_EXTENSION}; then: {QUIT_CLAUDE}"
        if launch.source == FROM_EXTENSION
        else f'{EDIT_CONFIG}, check that "command" of "{launch.name}" is the connector program itself '
        f"(from the SideQuest setup email), or reinstall the connector; then: {QUIT_CLAUDE}"
    )
    return _fail(
        f'Claude Desktop cannot start the SideQuest connector: the program "{launch.program}" does not run '
        f"({shake.error}).",
        ["The file exists but the computer refuses to run it (not a program, or not allowed to run)."],
        facts,
        Remediation(fix),
    )


def _exited(launch: Launch, shake: Any, facts: dict[str, Any], wait: float) -> Finding:
    if launch.source == FROM_EXTENSION:
        remediation = Remediation(
            f"Read its last messages above: if they name a missing or wrong setting, {EXTENSION_SETTINGS}; "
            f"then: {QUIT_CLAUDE} {SEND_REPORT}",
            (SUPPORT_REPORT,),
        )
    else:
        remediation = Remediation(
            f"Read its last messages above: if they name a missing or wrong setting, run `{SETUP}` to "
            f"write the connector's settings again, then: {QUIT_CLAUDE} {SEND_REPORT}",
            (SETUP, SUPPORT_REPORT),
        )
    return _fail(
        "The SideQuest connector stops right after it starts, before it answers Claude Desktop "
        '(Desktop shows "Server disconnected").',
        [*_exit_detail(shake), *_stderr_details(shake), *_runtime_details(launch)],
        facts,
        remediation,
    )


def _update_the_connector(why: str = "") -> Remediation:
    """The fix when the connector program itself misbehaves: a newer version, then a fresh start."""
    return Remediation(
        f"Update the SideQuest connector to the latest version{why}, then: {QUIT_CLAUDE} {SEND_REPORT}",
        (SUPPORT_REPORT,),
    )


def _noise(launch: Launch, shake: Any, facts: dict[str, Any], wait: float) -> Finding:
    after = (
        "It answered anyway"
        if shake.kind == "stdout_not_json" and shake.tools
        else "It did not complete the handshake after that"
    )
    return _fail(
        f"The SideQuest connector writes text that is not MCP to its output ({shake.noise_lines} line(s)); "
        'Claude Desktop reports that as "Unexpected token … is not valid JSON" and may drop it.',
        [
            f"{after}. Messages for people belong on the error output (stderr), which Desktop keeps in its log.",
            *(_stderr_details(shake) if shake.stderr_tail else []),
        ],
        facts,
        _update_the_connector(" (this is a bug in the connector, not in your settings)"),
    )


def _no_answer(launch: Launch, shake: Any, facts: dict[str, Any], wait: float) -> Finding:
    return _fail(
        f"The SideQuest connector started but did not answer within {wait:g} s; Claude Desktop gives up the same "
        'way ("Request timed out").',
        [*_stderr_details(shake), "The test copy was stopped."],
        facts,
        Remediation(f"{QUIT_CLAUDE} Then run `{DOCTOR}` again. {SEND_REPORT}", (DOCTOR, SUPPORT_REPORT)),
    )


def _died_on_discover(launch: Launch, shake: Any, facts: dict[str, Any], wait: float) -> Finding:
    return _fail(
        "The SideQuest connector answers Claude Desktop's chat, but exits when sent server/discover, so newer "
        "Claude Desktop builds cannot start it for Cowork and Code sessions.",
        [
            f"It started in {shake.started_ms:.0f} ms with {len(shake.tools)} tool(s); when sent server/discover "
            f"{exit_words(shake.exit_code) or 'it stopped'}.",
            *_stderr_details(shake),
        ],
        facts,
        _update_the_connector(" (older ones stop on this new request)"),
    )


def _protocol_error(launch: Launch, shake: Any, facts: dict[str, Any], wait: float) -> Finding:
    return _fail(
        f"The SideQuest connector started but its answer to Claude Desktop is not valid MCP ({shake.error}).",
        _stderr_details(shake),
        facts,
        _update_the_connector(),
    )


# The handshake's outcome (doctor/claude_desktop/handshake.py) -> the finding that names it.
_SITUATIONS = {
    "ok": _ok,
    "spawn_failed": _spawn_failed,
    "exited_at_start": _exited,
    "stdout_not_json": _noise,
    "no_answer": _no_answer,
    "exited_on_discover": _died_on_discover,
    "handshake_error": _protocol_error,
}

PROBE = Probe(
    id="connector-launch",
    title="Connector starts as Claude Desktop starts it",
    category="configuration",
    run=check,
    needs_network=True,
    side_effects="network",
    timeout=PROBE_TIMEOUT_S,
    # Cut short (its own time, or the run's budget, ran out while the connector was starting): that is
    # not the network, and nothing showed the connector broken either.
    timeout_cause="unknown",
)


@hookimpl
def sidequest_probes():
    return [PROBE]
