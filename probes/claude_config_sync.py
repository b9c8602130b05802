"""Probe `claude-config-sync`: does Claude Desktop start the connector with SideQuest's settings?

Claude Desktop launches the connector from one entry of `claude_desktop_config.json`. A broken
file stops every connector at once; a missing entry, a command that cannot be found, or a
company/environment that disagrees with `.env` makes the connector fail in ways the owner
cannot see. This probe names the exact spot and offers a re-sync through `doctor --fix`.

Claude's copy of the refresh token (DESIGN.md §9a). After each rotation the entry holds an
older token of the same chain; that is expected and harmless (`.env` wins), so it is said
in the details of an `ok` (a warning would fail every `--strict` run after a rotation), and
`--fix` re-syncs it. It is a failure only when the token belongs to
a *different consent*. Offline, the only sound evidence of that is the company or environment
the entry pairs its token with: reauth-qb and `--fix` write token, QB_REALM_ID and
QB_ENVIRONMENT into the entry together, and a rotation changes none of the three in the entry,
so an entry whose realm or environment differs from `.env`'s carries a token minted for another
company or environment: a different consent. (`.env`'s own consent metadata disagreeing with
its QB_REALM_ID is realm-match's and environment-match's finding, not a sync problem.)
For a token of another consent of the same company, the chain's lineage (doctor/store/lineage.py,
a keyed hash of every token this home saved) is the evidence: a copy in `.env`'s chain is an
older copy (ok); a copy outside it, when the lineage holds the whole chain back to its consent,
is another consent (fail); when the chain began before the lineage did, either is possible and
the doctor says so (warn, `--fix` re-syncs). Timing is deliberately not used: §6 records no
consent time, and Claude Desktop rewrites the file for its own preferences, so the file's mtime
says nothing about when the token was put there. Token text is never compared beyond equality
(and its keyed hash) and never shown.

The entry SideQuest last wrote (issue 10 §4). Claude Desktop sometimes rewrites its file and
drops `mcpServers`. reauth-qb, `--fix` and setup keep a copy of the entry they wrote in the
connector home (doctor/claude_desktop/entry_copy.py, secrets left to `.env`); an entry that is
gone, or whose command, args or env keys differ from that copy, is named as such, and `--fix`
puts the copy back (refused while Claude Desktop runs, since it would drop it again).

A bare `command` is looked up in the folders Claude Desktop logged on its last start of the
connector (its PATH is not the terminal's); without such a log line, in the terminal's PATH.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from doctor.advice import DESKTOP_RUNNING, EDIT_CONFIG, FIX, QUIT_AND_REOPEN, REAUTH, quit_claude_then
from doctor.claude_desktop.config import (
    CONNECTOR_NAME,
    SYNCED_KEYS,
    ClaudeConfig,
    ClaudeConfigError,
    ConnectorEntry,
    load_claude_config,
)
from doctor.claude_desktop.entry_copy import EntryCopy, load_entry_copy
from doctor.claude_desktop.paths import log_folders, resolve_command
from doctor.claude_desktop.processes import (
    count_connector_processes,
    desktop_may_run,
    desktop_processes,
    running_processes,
    started_after_config_change,
)
from doctor.context import CLAUDE_CONFIG_ENV, Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Fixer, Probe, Remediation
from doctor.situations import first_finding
from doctor.store.env_file import EnvFileError, read_env_file
from doctor.store.timestamps import format_timestamp

if TYPE_CHECKING:  # pragma: no cover
    from doctor.store.lineage import CopyOrigin

# Keys compared for a mismatch; the token is handled on its own (see the module docstring).
_IDENTITY_KEYS = ("QB_REALM_ID", "QB_ENVIRONMENT")


def _norm(key: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    return value.lower() if key == "QB_ENVIRONMENT" else value


def entry_example(ctx: Context) -> str:
    """The shape of the connector entry, with the non-secret values filled in."""
    env = {
        "QB_REALM_ID": ctx.env("QB_REALM_ID") or "<your company ID>",
        "QB_ENVIRONMENT": ctx.env("QB_ENVIRONMENT") or "production",
        "QB_REFRESH_TOKEN": f"<copied for you by {REAUTH}>",
    }
    example = {
        "mcpServers": {
            CONNECTOR_NAME: {
                "command": "<full path of the connector program, from the SideQuest setup email>",
                "args": [],
                "env": env,
            }
        }
    }
    return json.dumps(example, indent=2)


class _Reading:
    """What the situations have learned so far about Claude Desktop's settings in this run."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.path = ctx.claude_config_path
        self.facts: dict[str, Any] = {"path": str(self.path) if self.path else None}
        self.details: list[str] = []
        self.warnings: list[str] = []
        self.config: ClaudeConfig | None = None
        self.entry: ConnectorEntry | None = None
        self.missing: list[str] = []
        self.restart = False
        self.copy: EntryCopy | None = None  # the entry as SideQuest last wrote it (entry_copy.py)
        self.copy_differences: list[str] = []
        self.copy_origin: CopyOrigin | None = None  # where Claude's differing token comes from (the lineage)

    @property
    def error(self) -> ClaudeConfigError | None:
        return self.ctx.load_claude_config().error


def no_settings_file_known(r: _Reading) -> Finding | None:
    if r.path is not None:
        return None
    return Finding(
        "warn",
        "No Claude Desktop settings file is known on this computer, so it was not checked.",
        facts=r.facts,
        remediation=_point_at_config(),
    )


def settings_file_missing(r: _Reading) -> Finding | None:
    if r.error is None or r.error.reason != "missing":
        return None
    r.facts["reason"] = r.error.reason
    return Finding(
        "warn",
        f"Claude Desktop's settings file is not at {r.path}, so it could not be checked; Claude Desktop "
        "may not be set up yet, or keeps its settings elsewhere.",
        facts=r.facts,
        remediation=_point_at_config(),
    )


def settings_file_unreadable(r: _Reading) -> Finding | None:
    error = r.error
    if error is None:
        return None
    r.facts["reason"] = error.reason
    if error.line is not None:
        r.facts["line"], r.facts["column"] = error.line, error.column
    return Finding(
        "fail",
        f"{error.message} Claude Desktop cannot load any connector until this is fixed; "
        "SideQuest will not change the file.",
        facts=r.facts,
        cause="claude_config_invalid",
        remediation=Remediation(
            f"{EDIT_CONFIG}, fix "
            + (f"line {error.line}, column {error.column}" if error.line else "the file")
            + f" ({r.path}), or restore a backup of it (claude_desktop_config.json.sidequest-backup-*).",
        ),
    )


def starts_with_bom(r: _Reading) -> None:
    """Notes a byte-order mark; never decides on its own."""
    r.config = r.ctx.claude_config
    r.facts.update({"bytes": len(r.config.raw), "bom": r.config.had_bom})
    if r.config.had_bom:
        r.warnings.append("the file starts with a byte-order mark (BOM), which some JSON readers reject")
        r.details.append(f"{EDIT_CONFIG} and save it as plain UTF-8.")


def schema_problems(r: _Reading) -> Finding | None:
    problems = r.config.schema_problems()
    if not problems:
        return None
    r.facts["schema_problems"] = problems
    return Finding(
        "fail",
        f"Claude Desktop's settings file has {len(problems)} problem(s) that stop it loading every "
        f"connector, first: {problems[0]}.",
        details=problems,
        facts=r.facts,
        cause="claude_config_invalid",
        remediation=Remediation(
            f"{EDIT_CONFIG} and fix the place(s) named (every env value must be text in quotes; every "
            'server needs a "command"). One bad entry breaks them all.'
        ),
    )


def entry_removed(r: _Reading) -> Finding | None:
    """The entry is gone, and SideQuest had written it: Claude Desktop dropped it (issue 10 §4)."""
    r.entry = r.config.connector()
    r.copy = _copy_for(r.ctx, r.path)
    r.facts["entry_copy"] = str(r.copy.path) if r.copy is not None else None
    if r.entry is not None or r.copy is None:
        return None
    r.facts["entry_removed"] = True
    return Finding(
        "fail",
        f'Claude Desktop removed SideQuest\'s entry "{r.copy.name}" from its settings, so Claude no longer '
        "starts the connector.",
        details=[
            "Claude Desktop sometimes rewrites its settings file and drops the connectors in it. SideQuest kept "
            f"a copy of the entry it last wrote ({r.copy.path}; the connection itself comes from .env)."
        ],
        facts=r.facts,
        cause="claude_config_out_of_sync",
        remediation=Remediation(_restore_advice(), (FIX,), safe_to_automate=True),
    )


def no_connector_entry(r: _Reading) -> Finding | None:
    if r.entry is not None:
        r.facts.update({"entry": r.entry.name, "found_by": r.entry.found_by, "command": r.entry.command})
        return None
    return Finding(
        "fail",
        f'Claude Desktop\'s settings have no SideQuest connector (mcpServers "{CONNECTOR_NAME}"), '
        "so Claude never starts it.",
        details=['Add this inside the settings file (merge into the existing "mcpServers"):', entry_example(r.ctx)],
        facts=r.facts,
        cause="claude_config_out_of_sync",
        remediation=Remediation(
            f'{EDIT_CONFIG} and add the "{CONNECTOR_NAME}" entry shown above, then run '
            f"`{REAUTH}`, which fills in the connection for you.",
            (REAUTH,),
        ),
    )


def changed_since_written(r: _Reading) -> None:
    """Notes how the entry differs from the one SideQuest last wrote; never decides on its own."""
    if r.copy is None:
        return
    r.copy_differences = r.copy.differences(r.entry)
    r.facts["entry_changed"] = r.copy_differences
    if not r.copy_differences:
        return
    r.warnings.append(
        f"Claude Desktop's SideQuest entry is not the one SideQuest last wrote (its {' and '.join(r.copy_differences)} "
        "changed)"
    )
    if "command" in r.copy_differences:
        r.details.append(f'It starts "{r.entry.command}"; SideQuest wrote "{r.copy.command}".')
    if "env keys" in r.copy_differences:
        gone, added = r.copy.missing_env_keys(r.entry), r.copy.extra_env_keys(r.entry)
        r.details.append(
            "Its env "
            + "; ".join(
                part
                for part in (
                    f"lost {', '.join(gone)}" if gone else "",
                    f"gained {', '.join(added)}" if added else "",
                )
                if part
            )
            + "."
        )


def _restorable(r: _Reading) -> bool:
    """Would putting back the entry SideQuest wrote give Claude a program it can start?"""
    return bool(r.copy_differences) and resolve_command(r.copy.command or "", r.ctx.environ) is not None


def no_command(r: _Reading) -> Finding | None:
    if r.entry.command is not None:
        return None
    return Finding(
        "fail",
        f'The SideQuest entry "{r.entry.name}" in Claude Desktop\'s settings has no command to start.',
        details=r.details,
        facts=r.facts,
        cause="claude_config_invalid",
        remediation=Remediation(_restore_advice(), (FIX,), safe_to_automate=True)
        if _restorable(r)
        else Remediation(f'{EDIT_CONFIG} and set "command" to the connector program\'s full path.'),
    )


def command_not_found(r: _Reading) -> Finding | None:
    entry = r.entry
    logged, folders = _desktop_path(r.ctx, entry) if _is_bare(entry.command) else (None, [])
    r.facts["search_path_source"] = "claude_desktop_log" if logged else "terminal"
    resolved = resolve_command(entry.command, {"PATH": logged} if logged else r.ctx.environ)
    r.facts["command_resolved"] = resolved
    if resolved is None:
        details = [
            "Claude Desktop does not start programs from a particular folder, so use a full path "
            "(for example /Users/you/.local/bin/... or C:\\...\\python.exe)."
        ]
        if logged:
            in_terminal = resolve_command(entry.command, r.ctx.environ)
            details.insert(
                0,
                f"Claude Desktop looks for programs in the folders it logged ({', '.join(folders)})"
                + (f"; your terminal finds it at {in_terminal}, which is not among them." if in_terminal else "."),
            )
            if in_terminal:
                r.facts["command_resolved_in_terminal"] = in_terminal
        return Finding(
            "fail",
            f'Claude Desktop cannot find the program "{entry.command}" that starts the SideQuest connector.',
            details=details + r.details,
            facts=r.facts,
            cause="claude_config_invalid",
            remediation=Remediation(_restore_advice(), (FIX,), safe_to_automate=True)
            if _restorable(r)
            else Remediation(
                f'{EDIT_CONFIG} and set "command" of "{entry.name}" to the full path of the connector program.'
            ),
        )
    if resolved != entry.command:
        where = "the PATH Claude Desktop logged" if logged else "PATH"
        r.details.append(
            f'"{entry.command}" is found through {where} ({resolved}); Claude Desktop may start with a shorter '
            "PATH than your terminal, so a full path is safer."
        )
    return None


def _is_bare(command: str) -> bool:
    return "/" not in command and "\\" not in command


def _desktop_path(ctx: Context, entry: ConnectorEntry) -> tuple[str | None, list[str]]:
    """The PATH Claude Desktop logged on its last start of the connector, and its folders (None, [] if not logged)."""
    from doctor.claude_desktop.logs import desktop_search_path, read_connector_logs

    try:
        folders = log_folders(ctx.environ, config_path=ctx.claude_config_path)
        logs = read_connector_logs(folders, list(dict.fromkeys((entry.name, CONNECTOR_NAME))))
        return desktop_search_path(logs), list(logs.paths or [])
    except Exception:  # a log that cannot be read leaves the terminal's PATH as the best guess
        return None, []


def other_connection(r: _Reading) -> Finding | None:
    """The entry pairs its token with another company or environment: a different consent."""
    ctx, entry = r.ctx, r.entry
    differing: list[str] = []
    for key in _IDENTITY_KEYS:
        mine = _norm(key, ctx.env(key))
        theirs = _norm(key, entry.env.get(key))
        if theirs is None:
            r.missing.append(key)
        elif mine is not None and theirs != mine:
            differing.append(key)
            r.details.append(f"{key}: Claude Desktop has {entry.env.get(key).strip()}, .env has {ctx.env(key)}.")
    token_mine = ctx.env("QB_REFRESH_TOKEN")
    token_theirs = entry.env.get("QB_REFRESH_TOKEN")
    r.facts["token_copy"] = (
        "absent" if not token_theirs else "same" if token_theirs.strip() == (token_mine or "") else "different"
    )
    r.facts["differing_keys"] = differing
    r.facts["missing_keys"] = r.missing
    _trace_token_copy(r, token_mine, token_theirs)
    if not differing:
        return _token_of_another_consent(r)
    other_consent = r.facts["token_copy"] == "different"
    if other_consent:
        r.details.append("Its copy of the QuickBooks token therefore belongs to that other connection.")
    return Finding(
        "fail",
        f"Claude Desktop's SideQuest entry has a different {' and '.join(differing)} than .env"
        + (" (and a token from another connection)" if other_consent else "")
        + ".",
        details=r.details,
        facts=r.facts,
        cause="claude_config_out_of_sync",
        remediation=_resync(),
    )


def _resync() -> Remediation:
    return Remediation(
        f"Run `{FIX}` to copy the connection from .env into Claude Desktop's settings "
        "(a backup is kept), then quit and reopen Claude Desktop.",
        (FIX,),
        safe_to_automate=True,
    )


def _trace_token_copy(r: _Reading, mine: str | None, theirs: str | None) -> None:
    """Look a differing token up in the chain's lineage (keyed hashes only: no token is compared or kept)."""
    r.facts["token_copy_origin"] = r.facts["lineage_since"] = r.facts["lineage_start"] = None
    if r.facts["token_copy"] != "different":
        return
    from doctor.store.lineage import read_lineage

    r.copy_origin = read_lineage(r.ctx.home).copy_origin(mine, theirs)
    r.facts["token_copy_origin"] = r.copy_origin.origin
    r.facts["lineage_since"] = format_timestamp(r.copy_origin.since) if r.copy_origin.since else None
    r.facts["lineage_start"] = r.copy_origin.chain_start


def _token_of_another_consent(r: _Reading) -> Finding | None:
    """The lineage holds `.env`'s whole chain, back to its consent, and Claude's token is not in it."""
    from doctor.store.lineage import EARLIER_CONSENT, OTHER_CONSENT

    origin = r.copy_origin
    if origin is None or origin.origin not in (OTHER_CONSENT, EARLIER_CONSENT):
        return None
    made = _day(origin.since)
    if origin.origin == EARLIER_CONSENT:
        summary = (
            "Claude Desktop's SideQuest entry holds the token of an earlier QuickBooks connection, "
            f"not of the one in .env (made on {made})."
        )
        r.details.append(f"SideQuest saved that token on {_day(origin.saved_at)}, before the current connection.")
    else:
        summary = (
            "Claude Desktop's SideQuest entry holds a QuickBooks token from another connection "
            "(a separate consent for the same company), not one of the connection in .env."
        )
        r.details.append(
            f"SideQuest has recorded every token of the connection in .env since it was made on {made}, "
            "and Claude Desktop's copy is none of them."
        )
    return Finding(
        "fail", summary, details=r.details, facts=r.facts, cause="claude_config_out_of_sync", remediation=_resync()
    )


def _day(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d") if moment is not None else "an unknown date"


def _cannot_tell(r: _Reading) -> bool:
    """Claude's token is not in the lineage, but `.env`'s chain began before the lineage did."""
    from doctor.store.lineage import UNKNOWN

    return r.copy_origin is not None and r.copy_origin.origin == UNKNOWN


def older_token_copy(r: _Reading) -> None:
    """Claude's copy of the token is an older one of the same chain: harmless, said in the details.

    When the chain began before its lineage and the copy is not in it, nobody can tell an older
    copy from another consent: a warning that says both, and `--fix` makes it certain again.
    """
    if _cannot_tell(r):
        r.warnings.append(
            "Claude Desktop holds a QuickBooks token SideQuest has no record of: either an older copy from before "
            f"{_day(r.copy_origin.since)} (when SideQuest began keeping this connection's history) or a token "
            "from another connection"
        )
        r.details.append(
            f"`{FIX}` copies the current token into Claude Desktop's settings; after that SideQuest can tell."
        )
    elif r.facts["token_copy"] == "different":
        r.details.append(
            "Claude Desktop holds an older copy of the QuickBooks token; that is harmless because SideQuest "
            f"always uses the current one from .env (`{FIX}` copies it over)."
        )
    if r.missing:
        r.warnings.append(f"the entry does not set {', '.join(r.missing)} (SideQuest reads it from .env)")


def restart_needed(r: _Reading) -> None:
    """Does a running Claude Desktop still hold older settings? One look at the process table, and
    none when Desktop's lock says it is not running (the copies of the connector it starts end with
    it, so there are none to count either)."""
    running: bool | None = False
    processes = None
    if desktop_may_run(r.config.path.parent):
        try:
            processes = running_processes()
            running = bool(desktop_processes(processes))
        except Exception:  # an unreadable process table: unknown, never a crash
            running = None
    r.restart = started_after_config_change(r.config.mtime, processes=processes) if processes is not None else None
    r.facts["claude_desktop_running"] = running
    r.facts["claude_restart_needed"] = r.restart
    r.facts["connector_processes"] = (
        count_connector_processes(r.entry.command, r.entry.args, processes=processes) if processes is not None else None
    )
    if r.restart:
        r.warnings.append("Claude Desktop was started before its settings last changed")
        r.details.append(QUIT_AND_REOPEN)


def something_to_tidy(r: _Reading) -> Finding | None:
    if not r.warnings:
        return None
    if r.copy_differences:
        remediation = Remediation(_restore_advice(), (FIX,), safe_to_automate=True)
    elif r.missing or _cannot_tell(r):
        remediation = Remediation(
            f"Run `{FIX}` to copy the current connection into Claude Desktop's settings.",
            (FIX,),
            safe_to_automate=True,
        )
    elif r.restart:
        remediation = Remediation(QUIT_AND_REOPEN)
    else:
        remediation = Remediation(f"{EDIT_CONFIG} and save it as plain UTF-8.")
    text = "; ".join(r.warnings)
    return Finding("warn", text[0].upper() + text[1:] + ".", details=r.details, facts=r.facts, remediation=remediation)


def in_step(r: _Reading) -> Finding:
    return Finding(
        "ok",
        f'Claude Desktop starts the connector as "{r.entry.name}" with the same company and environment as .env.',
        details=r.details,
        facts=r.facts,
    )


# Tried in order; the first finding is the verdict (doctor/situations.py).
SITUATIONS = (
    no_settings_file_known,
    settings_file_missing,
    settings_file_unreadable,
    starts_with_bom,
    schema_problems,
    entry_removed,
    no_connector_entry,
    changed_since_written,
    no_command,
    command_not_found,
    other_connection,
    older_token_copy,
    restart_needed,
    something_to_tidy,
    in_step,
)


def check(ctx: Context) -> Finding:
    return first_finding(SITUATIONS, _Reading(ctx))


def _restore_advice() -> str:
    return (
        f"Run `{FIX}` to put back the entry SideQuest last wrote (a backup of the file is kept); "
        "if Claude Desktop is open, quit it first, and open it again afterwards."
    )


def _copy_for(ctx: Context, config_path) -> EntryCopy | None:
    """The known-good copy in the connector home, if it was taken from this config file."""
    if config_path is None:
        return None
    copy = load_entry_copy(ctx.home)
    return copy if copy is not None and copy.is_for(config_path) else None


def _point_at_config() -> Remediation:
    return Remediation(
        f"If Claude Desktop is installed, open Settings → Developer → Edit Config once to create the file; "
        f"if it lives elsewhere, tell the doctor with --claude-config FILE or {CLAUDE_CONFIG_ENV}.",
        ("sidequest --claude-config /path/to/claude_desktop_config.json doctor",),
    )


def planned_updates(ctx: Context) -> tuple[dict[str, str], str | None]:
    """The synced values that differ between `.env` and the entry now, and the entry's name.

    Read fresh from disk (not the run's cached copies): the fixer acts on what is there now.
    Empty when either file cannot be parsed or there is no entry: nothing safe to do.
    """
    path = ctx.claude_config_path
    if path is None:
        return {}, None
    try:
        config = load_claude_config(path)
        env_file = read_env_file(ctx.env_path)
    except (ClaudeConfigError, EnvFileError):
        return {}, None
    entry = config.connector()
    if entry is None or config.schema_problems():
        return {}, None
    updates = {}
    for key in SYNCED_KEYS:
        value = env_file.get(key)
        if value and entry.env.get(key) != value:
            updates[key] = value
    return updates, entry.name


def planned_restore(ctx: Context) -> tuple[EntryCopy, dict[str, Any], list[str], str] | None:
    """(the copy, the entry to put back, keys .env could not supply, why) when the entry should be put back.

    Only when the entry is gone or its command, args or env keys are not what SideQuest last
    wrote, the copy was taken from this very file, and both files can be read as they are now.
    """
    path = ctx.claude_config_path
    if path is None:
        return None
    copy = _copy_for(ctx, path)
    if copy is None:
        return None
    try:
        config = load_claude_config(path)
        env_file = read_env_file(ctx.env_path)
    except (ClaudeConfigError, EnvFileError):
        return None  # a missing settings file is not put back: Claude Desktop may not be installed now
    if config.schema_problems():
        return None
    current = config.connector()
    if current is None:
        why = "it was removed"
    else:
        differences = copy.differences(current)
        if not differences:
            return None
        why = f"its {' and '.join(differences)} changed"
    entry, lacking = copy.rebuilt({key: env_file.get(key) for key in copy.from_env})
    return copy, entry, lacking, why


def describe_fix(ctx: Context) -> str | None:
    restore = planned_restore(ctx)
    if restore is not None:
        copy, _, lacking, why = restore
        missing = f"; .env has no {', '.join(lacking)}, so those stay unset" if lacking else ""
        return (
            f"put back SideQuest's entry \"{copy.name}\" in Claude Desktop's settings as SideQuest last wrote it "
            f"({why}), with the connection from .env ({ctx.claude_config_path}; a backup is kept){missing}"
        )
    updates, name = planned_updates(ctx)
    if not updates:
        return None
    return (
        f'copy {", ".join(sorted(updates))} from .env into Claude Desktop\'s "{name}" entry '
        f"({ctx.claude_config_path}; a backup is kept)"
    )


def apply_fix(ctx: Context) -> str:
    # The writer is imported by the fix alone: a check never writes (1.2 M instructions of start-up).
    from doctor.claude_desktop.update import DesktopRunning

    try:
        return _apply(ctx)
    except DesktopRunning:
        raise ClaudeConfigError(
            "desktop_running", f"{DESKTOP_RUNNING} {quit_claude_then(FIX)}", path=ctx.claude_config_path
        ) from None


def _apply(ctx: Context) -> str:
    from doctor.claude_desktop.update import restore_connector_entry, update_connector_env

    restore = planned_restore(ctx)
    if restore is not None:
        copy, entry, lacking, _ = restore
        result = restore_connector_entry(ctx.claude_config_path, copy.name, entry, keep_copy_in=ctx.home)
        if not result.restored:
            return "Claude Desktop's settings already hold SideQuest's entry"
        backup = f"; the previous file is saved as {result.backup_path}" if result.backup_path else ""
        missing = f" ({', '.join(lacking)} left unset: .env has none)" if lacking else ""
        return f'put back the entry "{result.entry_name}"{missing}{backup}. Quit and reopen Claude Desktop to load it'
    updates, _ = planned_updates(ctx)
    if not updates:
        return "Claude Desktop's settings already match .env"
    result = update_connector_env(ctx.claude_config_path, updates, keep_copy_in=ctx.home)
    if not result.changed:
        return "Claude Desktop's settings already match .env"
    backup = f"; the previous file is saved as {result.backup_path}" if result.backup_path else ""
    return (
        f'updated {", ".join(sorted(result.changed))} in "{result.entry_name}"{backup}. '
        "Quit and reopen Claude Desktop to load it"
    )


PROBE = Probe(
    id="claude-config-sync",
    title="Claude Desktop settings",
    category="configuration",
    run=check,
    depends_on=("env-file",),
    timeout=5.0,
    fixer=Fixer(describe=describe_fix, apply=apply_fix),
)


@hookimpl
def sidequest_probes():
    return [PROBE]
