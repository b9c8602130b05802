"""Probe `connector-launch`: start the connector the way Claude Desktop does and shake hands with it.

The settings can be right and the connector still not start under Desktop: the program is not
in the folders Desktop searches, it stops at once, it prints text that is not MCP, it never
answers, or it exits when newer Desktop builds send `server/discover`. The owner then sees only
"Server disconnected". This probe rebuilds Desktop's launch from the connector's `mcpServers`
entry (doctor/claude_desktop/launch.py: the entry's env over the small inherited set, the PATH
Desktop logged, cwd `/`), starts it, completes `initialize` and `tools/list` with the official
MCP SDK's client, sends `server/discover`, and stops it (doctor/claude_desktop/handshake.py).

It needs no other probe: it reads the entry itself and only skips when there is none
(`claude-config-sync` says why). Its side effects are "network": the connector may refresh the
QuickBooks token at start, through the same locked store, so `--offline` skips it.

Facts never hold env values; the connector's stderr lines go in the details only, and the
report's redactor removes every known secret from them. Secret-looking values of the entry's
env are added to the run's secrets, so a connector that prints them is redacted too.
"""

from __future__ import annotations

from typing import Any

from doctor.advice import DOCTOR, EDIT_CONFIG, QUIT_CLAUDE, SETUP
from doctor.claude_desktop.config import CONNECTOR_NAME
from doctor.claude_desktop.launch import PATH_FROM_ENTRY, PATH_FROM_LOG, Launch, rebuild_launch
from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation

TIMEOUT_ENV = "SIDEQUEST_CONNECTOR_TIMEOUT"
# Set in the started connector's env (its only difference from Desktop's launch): a connector that runs the
# doctor live at its own start would otherwise start itself again, and again.
LAUNCHED_ENV = "SIDEQUEST_LAUNCHED_BY_DOCTOR"
ANSWER_WAIT_S = 8.0  # how long the connector gets to answer initialize and tools/list
PROBE_TIMEOUT_S = 16.0  # the answer wait, the discover wait, and the SDK's bounded shutdown
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
}


def answer_wait(ctx: Context) -> float:
    """The answer wait: $SIDEQUEST_CONNECTOR_TIMEOUT seconds when set (kept inside the probe's own timeout)."""
    raw = ctx.environ.get(TIMEOUT_ENV, "").strip()
    try:
        wait = float(raw) if raw else ANSWER_WAIT_S
    except ValueError:
        wait = ANSWER_WAIT_S
    return min(max(wait, 0.5), PROBE_TIMEOUT_S - _SHUTDOWN_ALLOWANCE_S)


def _logged_path(ctx: Context, name: str) -> str | None:
    """The PATH Desktop logged on its last start of the connector (claude-logs reads the same lines)."""
    from doctor.claude_desktop.logs import desktop_search_path, read_connector_logs
    from doctor.claude_desktop.paths import log_folders

    folders = log_folders(ctx.environ, config_path=ctx.claude_config_path)
    return desktop_search_path(read_connector_logs(folders, list(dict.fromkeys((name, CONNECTOR_NAME)))))


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
    config = ctx.claude_config
    entry = config.connector() if config is not None else None
    if entry is None or not entry.command:
        return Finding(
            "skip",
            "Not started: Claude Desktop's settings have no SideQuest connector with a command to start "
            "(claude-config-sync says why).",
            facts={"claude_config": str(ctx.claude_config_path) if ctx.claude_config_path else None},
        )
    _register_secrets(ctx, entry.env)
    launch = rebuild_launch(entry, ctx.environ, logged_path=_logged_path(ctx, entry.name))
    facts = _launch_facts(launch)
    if launch.program is None:
        return _not_found(launch, facts)

    from doctor.claude_desktop.handshake import shake_hands

    wait = answer_wait(ctx)
    shake = shake_hands(launch._replace(env={**launch.env, LAUNCHED_ENV: "1"}), wait)
    facts.update(_handshake_facts(shake))
    facts["answer_wait_s"] = wait
    situation = _SITUATIONS.get(shake.kind, _protocol_error)
    return situation(launch, shake, facts, wait)


def _launch_facts(launch: Launch) -> dict[str, Any]:
    return {
        "entry": launch.name,
        "command": launch.command,
        "program": launch.program,
        "args_count": len(launch.args),
        "cwd": launch.cwd,
        "env_keys": launch.env_keys,
        "search_path": launch.search_folders,
        "search_path_source": launch.path_source,
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
    }


def _stderr_details(shake: Any) -> list[str]:
    if not shake.stderr_tail:
        return ["It wrote nothing to its error output (stderr)."]
    return ["Its last messages (stderr):", *(f"  {line}" for line in shake.stderr_tail)]


def _fail(summary: str, details: list[str], facts: dict[str, Any], remediation: Remediation) -> Finding:
    return Finding(
        "fail", summary, details=details, facts=facts, remediation=remediation, cause="connector_not_starting"
    )


def _not_found(launch: Launch, facts: dict[str, Any]) -> Finding:
    where = _PATH_WORDS.get(launch.path_source, "the folders Claude Desktop searches")
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
    details = [_DISCOVER_WORDS.get(shake.discover, "")]
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
    return _fail(
        f'Claude Desktop cannot start the SideQuest connector: the program "{launch.program}" does not run '
        f"({shake.error}).",
        ["The file exists but the computer refuses to run it (not a program, or not allowed to run)."],
        facts,
        Remediation(
            f'{EDIT_CONFIG}, check that "command" of "{launch.name}" is the connector program itself '
            f"(from the SideQuest setup email), or reinstall the connector; then: {QUIT_CLAUDE}"
        ),
    )


def _exited(launch: Launch, shake: Any, facts: dict[str, Any], wait: float) -> Finding:
    return _fail(
        "The SideQuest connector stops right after it starts, before it answers Claude Desktop "
        '(Desktop shows "Server disconnected").',
        _stderr_details(shake),
        facts,
        Remediation(
            f"Read its last messages above: if they name a missing or wrong setting, run `{SETUP}` to "
            f"write the connector's settings again, then: {QUIT_CLAUDE} {SEND_REPORT}",
            (SETUP, SUPPORT_REPORT),
        ),
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
        Remediation(
            "Update the SideQuest connector to the latest version (this is a bug in the connector, not in your "
            f"settings), then: {QUIT_CLAUDE} {SEND_REPORT}",
            (SUPPORT_REPORT,),
        ),
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
            f"It started in {shake.started_ms:.0f} ms with {len(shake.tools)} tool(s), then stopped on "
            "server/discover.",
            *_stderr_details(shake),
        ],
        facts,
        Remediation(
            "Update the SideQuest connector to the latest version (older ones stop on this new request), then: "
            f"{QUIT_CLAUDE} {SEND_REPORT}",
            (SUPPORT_REPORT,),
        ),
    )


def _protocol_error(launch: Launch, shake: Any, facts: dict[str, Any], wait: float) -> Finding:
    return _fail(
        f"The SideQuest connector started but its answer to Claude Desktop is not valid MCP ({shake.error}).",
        _stderr_details(shake),
        facts,
        Remediation(
            f"Update the SideQuest connector to the latest version, then: {QUIT_CLAUDE} {SEND_REPORT}",
            (SUPPORT_REPORT,),
        ),
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
