"""Probe `claude-logs`: what Claude Desktop's own logs say about the connector's last start.

A connector that Desktop cannot start looks to the owner like "Server disconnected" or a tool
that never answers; Desktop's MCP logs name the reason (program not found, exited at start,
timeouts) and the PATH it searched. This probe reads only the tail of each log, offline, and
never copies a log line into its output: `Message from server` lines carry QuickBooks data.
No logs at all is normal on some Windows builds and is said plainly, as a skip.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from doctor.advice import DOCTOR, EDIT_CONFIG, HOW_TO_QUIT_CLAUDE
from doctor.claude_desktop.config import CONNECTOR_NAME
from doctor.claude_desktop.extensions import find_connector
from doctor.claude_desktop.logs import (
    FAILED_AT_START,
    TAIL_BYTES,
    TROUBLE_AFTER_START,
    ConnectorLogs,
    read_connector_logs,
)
from doctor.claude_desktop.paths import log_folders
from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation

REOPEN = f"Quit Claude Desktop completely ({HOW_TO_QUIT_CLAUDE}), open it again, then run `{DOCTOR}` once more."
LIVE_CHECK = DOCTOR
_AFTER_START_WORDS = {
    "exited": "then stopped unexpectedly",
    "request_timed_out": "then a request to it timed out (Claude waited and gave up)",
    "disconnected": "then Claude Desktop lost the connection to it",
}


def check(ctx: Context) -> Finding:
    names = connector_names(ctx)
    searched = log_folders(ctx.environ, config_path=ctx.claude_config_path)
    logs = read_connector_logs(searched, names)
    facts = _facts(ctx, searched, logs)
    situations: tuple[Callable[[ConnectorLogs, dict[str, Any]], Finding | None], ...] = (
        _no_logs,
        _never_mentioned,
        _skipped_by_desktop,
        _failed_at_start,
        _trouble_after_start,
        _cowork_failed,
    )
    for situation in situations:
        finding = situation(logs, facts)
        if finding is not None:
            return finding
    return _fine(logs, facts)


def connector_names(ctx: Context) -> list[str]:
    """The names Desktop logs the connector under: its entry's name, the usual one, and, when it is
    installed as an extension, the extension's names (its logs use the display name)."""
    names = []
    config = ctx.claude_config
    entry = config.connector() if config is not None else None
    if entry is not None:
        names.append(entry.name)
    names.append(CONNECTOR_NAME)
    installed = ctx.load_extensions().value
    extension = find_connector(installed, names) if installed else None
    if extension is not None:
        names.extend(name for name in (extension.display_name, extension.name) if name)
    return list(dict.fromkeys(names))


def _facts(ctx: Context, searched: list[Path], logs: ConnectorLogs) -> dict[str, Any]:
    start = logs.last_start()
    config = ctx.claude_config
    changed_since = None
    if start is not None and config is not None:
        changed_since = config.mtime > start.at
    return {
        "log_folders_searched": [str(folder) for folder in searched],
        "log_folders_found": [str(folder) for folder in logs.folders],
        "log_files_read": [str(path) for path in logs.files],
        "tail_bytes": TAIL_BYTES,
        "only_tail_read": bool(logs.truncated),
        "last_start": _stamp(start.at) if start else None,
        "last_start_log": str(start.source) if start else None,
        "outcome": logs.outcome(),
        "missing_program": logs.missing_program(),
        "logged_command": logs.command,
        "desktop_path": list(logs.paths) if logs.paths is not None else None,
        "settings_changed_since_start": changed_since,
        "era_probe_verdict": logs.era_verdict,
        "cowork_start_failed": logs.cowork_failed,
    }


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _no_logs(logs: ConnectorLogs, facts: dict[str, Any]) -> Finding | None:
    if logs.files:
        return None
    return Finding(
        "skip",
        "No Claude Desktop logs were found on this computer, so there is nothing to read; that alone is not "
        "a problem (some Claude Desktop builds write none).",
        details=[f"Looked in: {', '.join(facts['log_folders_searched'])}."],
        facts=facts,
    )


def _never_mentioned(logs: ConnectorLogs, facts: dict[str, Any]) -> Finding | None:
    own_log = any(path.name.startswith("mcp-server-") for path in logs.files)
    if logs.events or own_log or logs.era_verdict or logs.cowork_failed:
        return None
    return Finding(
        "warn",
        "Claude Desktop's logs do not mention the SideQuest connector: Desktop has not tried to start it recently.",
        details=[
            "Claude Desktop starts connectors only when it opens, and only those in its settings file.",
            REOPEN,
        ],
        facts=facts,
        remediation=Remediation(REOPEN),
    )


def _skipped_by_desktop(logs: ConnectorLogs, facts: dict[str, Any]) -> Finding | None:
    if logs.outcome() != "skipped_by_desktop":
        return None
    return Finding(
        "fail",
        f"At its last start ({facts['last_start']}) Claude Desktop skipped the SideQuest extension because a "
        "required setting is empty.",
        facts=facts,
        cause="connector_not_starting",
        remediation=Remediation(
            "Open Claude Desktop → Settings → Extensions, open the SideQuest extension, fill in every required "
            "field, then quit and reopen Claude Desktop."
        ),
    )


def _failed_at_start(logs: ConnectorLogs, facts: dict[str, Any]) -> Finding | None:
    outcome = logs.outcome()
    if outcome not in FAILED_AT_START:
        return None
    details = [_failure_words(logs, facts)]
    if facts["settings_changed_since_start"]:
        details.append(
            "Claude Desktop's settings file changed after that start, so this may be fixed already: " + REOPEN
        )
    if outcome == "command_not_found":
        remediation = Remediation(
            f'{EDIT_CONFIG} and set "command" of the SideQuest entry to the full path of the connector program '
            "(Claude Desktop does not search the folders your terminal does), then quit and reopen Claude Desktop."
        )
    else:
        details.append(f"The connector's own error messages are in {facts['last_start_log']}.")
        remediation = Remediation(
            f"Run `{LIVE_CHECK}` (without --offline): it starts the connector the way Claude Desktop does and "
            "shows why it stops.",
            (LIVE_CHECK,),
        )
    return Finding(
        "fail",
        f"Claude Desktop could not start the SideQuest connector at {facts['last_start']}.",
        details=details,
        facts=facts,
        cause="connector_not_starting",
        remediation=remediation,
    )


def _failure_words(logs: ConnectorLogs, facts: dict[str, Any]) -> str:
    outcome = logs.outcome()
    if outcome == "command_not_found":
        searched = facts["desktop_path"]
        where = f" It searched: {', '.join(searched)}." if searched else ""
        return f'Its log says the program "{facts["missing_program"]}" was not found (spawn ENOENT).{where}'
    if outcome == "exited_at_start":
        return "Its log says the connector stopped right after starting, before it answered."
    return "Its log says the connection closed before the connector answered."


def _trouble_after_start(logs: ConnectorLogs, facts: dict[str, Any]) -> Finding | None:
    outcome = logs.outcome()
    if outcome not in TROUBLE_AFTER_START:
        return None
    return Finding(
        "warn",
        f"Claude Desktop started the connector at {facts['last_start']} and it answered, "
        f"{_AFTER_START_WORDS[outcome]}.",
        details=[f"The connector's own messages are in {facts['last_start_log']}."],
        facts=facts,
        remediation=Remediation(
            f"If Claude still shows the SideQuest tools as unavailable, run `{LIVE_CHECK}` (without --offline).",
            (LIVE_CHECK,),
        ),
    )


def _cowork_failed(logs: ConnectorLogs, facts: dict[str, Any]) -> Finding | None:
    if not logs.cowork_failed:
        return None
    return Finding(
        "warn",
        "Claude Desktop could not start the connector for Cowork and Code sessions (it closed the connection "
        "during Desktop's server/discover probe); chat may still work.",
        details=["An update of the connector that answers server/discover fixes this."],
        facts=facts,
        remediation=Remediation("Update the SideQuest connector, then quit and reopen Claude Desktop."),
    )


def _fine(logs: ConnectorLogs, facts: dict[str, Any]) -> Finding:
    outcome = logs.outcome()
    when = facts["last_start"]
    details = []
    if len(logs.folders) > 1 and facts["last_start_log"]:
        details.append(f"Logs exist in {len(logs.folders)} places; the newest start is in {facts['last_start_log']}.")
    if outcome is None:
        summary = (
            f"Claude Desktop's logs mention the connector, but its last start is older than the part read "
            f"(the last {TAIL_BYTES // 1024} KB of each log)."
        )
    elif outcome == "connected":
        summary = f"Claude Desktop last started the connector at {when} and it answered."
    elif outcome == "stopped":
        summary = f"Claude Desktop last started the connector at {when}, and later stopped it normally."
    else:
        summary = f"Claude Desktop last started the connector at {when}; nothing is logged after that yet."
    return Finding("ok", summary, details=details, facts=facts)


PROBE = Probe(
    id="claude-logs",
    title="Claude Desktop's logs",
    category="configuration",
    run=check,
    timeout=5.0,
)


@hookimpl
def sidequest_probes():
    return [PROBE]
