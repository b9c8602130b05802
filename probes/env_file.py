"""Probe `env-file`: is the connector's `.env` there, readable, complete and private?

Everything else depends on this file, so its problems are named precisely: which folder or
key is missing, which line is malformed (by number, never by content), and whether other
QuickBooks connectors' key names (`QUICKBOOKS_*`, `QBO_*`) were pasted in by mistake.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from doctor.advice import REAUTH, SETUP, environment_invalid, environment_meant, environment_problem, invalid_value
from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.intuit.endpoints import ENVIRONMENTS
from doctor.model import Finding, Fixer, Probe, Remediation
from doctor.situations import first_finding
from doctor.store.atomic_file import chmod_owned
from doctor.store.keys import REQUIRED_KEYS

if TYPE_CHECKING:  # pragma: no cover
    from doctor.store.env_file import EnvFile

FOREIGN_PREFIXES = ("QUICKBOOKS_", "QBO_")


class _Reading:
    """What env-file has seen of the connector folder and its `.env` so far in this run."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.home, self.path = ctx.home, ctx.env_path
        self.facts: dict = {"home": str(self.home), "path": str(self.path)}
        self.env: EnvFile | None = None
        self.details: list[str] = []
        self.warnings: list[str] = []
        self.foreign: list[str] = []
        self.environment = ""


def no_connector_folder(r: _Reading) -> Finding | None:
    if r.home.exists():
        return None
    return Finding(
        "fail",
        f"The connector folder {r.home} does not exist, so SideQuest is not set up on this computer.",
        facts=r.facts,
        cause="not_configured",
        remediation=Remediation(
            f"Run `{SETUP}` with the app keys from the SideQuest setup email: it creates {r.home}, "
            "checks the keys with Intuit, connects QuickBooks and adds the connector to Claude Desktop.",
            (SETUP,),
        ),
    )


def home_not_a_folder(r: _Reading) -> Finding | None:
    if r.home.is_dir():
        return None
    return Finding(
        "fail",
        f"{r.home} exists but is not a folder.",
        facts=r.facts,
        cause="not_configured",
        remediation=Remediation(f"Move {r.home} aside and create a folder with that name holding the .env file."),
    )


def unreadable(r: _Reading) -> Finding | None:
    loaded = r.ctx.load_env()
    if loaded.error is None:
        r.env = loaded.value
        return None
    path = r.path
    reason = getattr(loaded.error, "reason", "unreadable")
    r.facts["reason"] = reason
    fixes = {
        "missing": f"Create {path} with QB_CLIENT_ID, QB_CLIENT_SECRET and QB_ENVIRONMENT from the SideQuest "
        f"setup email, then run `{REAUTH}`.",
        "not_a_file": f"{path} must be a plain file; move the folder aside and create the file.",
        "unreadable": f'Give your user read and write access to {path} (for example `chmod 600 "{path}"`).',
        "too_large": f"{path} is far too large for a settings file; restore it from a backup or recreate it.",
        "binary": f"{path} holds binary data, not settings; restore it from a backup or recreate it.",
        "not_utf8": f"Save {path} as UTF-8 text (any text editor can do this).",
    }
    return Finding(
        "fail",
        str(loaded.error),
        facts=r.facts,
        cause="not_configured",
        remediation=Remediation(fixes.get(reason, fixes["unreadable"])),
    )


def malformed_lines(r: _Reading) -> None:
    """Notes the file's shape and the lines python-dotenv ignores; never decides."""
    env = r.env
    r.facts.update(
        {
            "mode": oct(env.mode),
            "keys": sorted(env.values),
            "line_ends": "CRLF" if env.newline == "\r\n" else "LF",
            "bom": env.had_bom,
            "malformed_lines": [p.line for p in env.problems],
        }
    )
    for problem in env.problems:
        r.details.append(f"line {problem.line}: {problem.text} (python-dotenv ignores this line)")
    if env.problems:
        r.warnings.append(f"{len(env.problems)} malformed line(s): {', '.join(str(p.line) for p in env.problems)}")


def _missing(r: _Reading) -> list[str]:
    return [k for k in REQUIRED_KEYS if not r.env.get(k)]


def other_connectors_keys(r: _Reading) -> None:
    """Notes keys other QuickBooks connectors use (QUICKBOOKS_*, QBO_*); never decides."""
    missing = _missing(r)
    r.facts["missing_keys"] = missing
    r.foreign = sorted(k for k in r.env.values if k.startswith(FOREIGN_PREFIXES))
    if not r.foreign:
        return
    r.facts["foreign_keys"] = r.foreign
    mapped = [k for k in r.foreign if _sidequest_name(k) in missing]
    r.details.append(
        f"Found {', '.join(r.foreign)}: those are the names other QuickBooks connectors use. "
        "SideQuest reads QB_* names "
        "(QB_CLIENT_ID, QB_CLIENT_SECRET, QB_REFRESH_TOKEN, QB_REALM_ID, QB_ENVIRONMENT)."
    )
    if mapped:
        r.details.append("Rename " + ", ".join(f"{k} to {_sidequest_name(k)}" for k in mapped) + ".")
    else:
        r.warnings.append("keys of another QuickBooks connector are present")


def keys_missing(r: _Reading) -> Finding | None:
    missing = _missing(r)
    if not missing:
        return None
    only_token = set(missing) <= {"QB_REFRESH_TOKEN", "QB_REALM_ID"}
    summary = f"{r.path.name} is missing {', '.join(missing)}" + (
        ": QuickBooks was never connected here." if only_token else "."
    )
    return Finding(
        "fail",
        summary,
        details=r.details,
        facts=r.facts,
        cause="not_configured",
        remediation=Remediation(
            f"Run `{REAUTH}` to connect QuickBooks; it writes the token and company ID."
            if only_token
            else f"Add the missing keys to {r.path} (from the SideQuest setup email), then run `{REAUTH}`.",
            (REAUTH,),
        ),
    )


def not_an_environment(r: _Reading) -> Finding | None:
    r.environment = environment = r.env.get("QB_ENVIRONMENT") or ""
    if environment in ENVIRONMENTS:
        return None
    if environment.lower() in ENVIRONMENTS:
        r.warnings.append(f"QB_ENVIRONMENT is {environment!r}; write it in lower case: {environment.lower()!r}")
        return None
    meant = environment_meant(environment)
    fix = (
        f"Set QB_ENVIRONMENT={meant} in {r.path}."
        if meant
        else f"Set QB_ENVIRONMENT=production (your real books) or QB_ENVIRONMENT=sandbox (a test company) in {r.path}."
    )
    return Finding(
        "fail",
        environment_invalid(environment),
        details=r.details,
        facts={**r.facts, "invalid_value": invalid_value("QB_ENVIRONMENT", environment_problem(environment))},
        cause="not_configured",
        remediation=Remediation(fix),
    )


def readable_by_others(r: _Reading) -> None:
    if r.env.mode & 0o077:
        r.warnings.append(f"{r.path.name} is readable by other users (mode {oct(r.env.mode)})")
        r.details.append("It holds your QuickBooks keys; only your user should be able to read it.")


def something_to_tidy(r: _Reading) -> Finding | None:
    if not r.warnings:
        return None
    env, path = r.env, r.path
    remediation = None
    if env.mode & 0o077:
        remediation = Remediation(
            f"Make {path.name} private to your user.", (f'chmod 600 "{path}"',), safe_to_automate=True
        )
    elif env.problems:
        remediation = Remediation(f"Fix or delete the malformed line(s) in {path}.")
    elif r.foreign:
        remediation = Remediation("Remove the other connector's keys if SideQuest is the only one you use.")
    return Finding("warn", "; ".join(r.warnings) + ".", details=r.details, facts=r.facts, remediation=remediation)


def complete(r: _Reading) -> Finding:
    return Finding(
        "ok", f"{r.path.name} has every key SideQuest needs ({r.environment}).", details=r.details, facts=r.facts
    )


# Tried in order; the first finding is the verdict (doctor/situations.py).
SITUATIONS = (
    no_connector_folder,
    home_not_a_folder,
    unreadable,
    malformed_lines,
    other_connectors_keys,
    keys_missing,
    not_an_environment,
    readable_by_others,
    something_to_tidy,
    complete,
)


def check(ctx: Context) -> Finding:
    return first_finding(SITUATIONS, _Reading(ctx))


def _sidequest_name(foreign_key: str) -> str:
    for prefix in FOREIGN_PREFIXES:
        if foreign_key.startswith(prefix):
            name = foreign_key[len(prefix) :]
            return {"COMPANY_ID": "QB_REALM_ID", "ENV": "QB_ENVIRONMENT"}.get(name, f"QB_{name}")
    return foreign_key


def _describe_fix(ctx: Context) -> str | None:
    try:
        mode = stat.S_IMODE(os.stat(ctx.env_path).st_mode)
    except OSError:
        return None
    if stat.S_ISREG(os.stat(ctx.env_path).st_mode) and mode & 0o077:
        return f"make {ctx.env_path} private (mode {oct(mode)} → 0o600)"
    return None


def _apply_fix(ctx: Context) -> str:
    chmod_owned(ctx.env_path, 0o600)  # never a symlink's foreign target
    return f"{ctx.env_path} is now mode 0o600"


PROBE = Probe(
    id="env-file",
    title="Connector settings file (.env)",
    category="configuration",
    run=check,
    timeout=5.0,
    fixer=Fixer(describe=_describe_fix, apply=_apply_fix),
)


@hookimpl
def sidequest_probes():
    return [PROBE]
