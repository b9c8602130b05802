"""Probe `env-file`: is the connector's `.env` there, readable, complete and private?

Everything else depends on this file, so its problems are named precisely: which folder or
key is missing, which line is malformed (by number, never by content), and whether other
QuickBooks connectors' key names (`QUICKBOOKS_*`, `QBO_*`) were pasted in by mistake.
"""

from __future__ import annotations

import os
import stat

from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.intuit.endpoints import ENVIRONMENTS
from doctor.model import Finding, Fixer, Probe, Remediation
from doctor.store.atomic_file import chmod_owned
from doctor.store.keys import REQUIRED_KEYS

FOREIGN_PREFIXES = ("QUICKBOOKS_", "QBO_")
REAUTH = "sidequest reauth-qb"


def check(ctx: Context) -> Finding:
    home, path = ctx.home, ctx.env_path
    facts: dict = {"home": str(home), "path": str(path)}
    if not home.exists():
        return Finding(
            "fail",
            f"The connector folder {home} does not exist, so SideQuest is not set up on this computer.",
            facts=facts,
            cause="not_configured",
            remediation=Remediation(
                f"Create {home} with the .env file from the SideQuest setup email, then connect QuickBooks.",
                (f'mkdir -p "{home}"', REAUTH),
            ),
        )
    if not home.is_dir():
        return Finding(
            "fail",
            f"{home} exists but is not a folder.",
            facts=facts,
            cause="not_configured",
            remediation=Remediation(f"Move {home} aside and create a folder with that name holding the .env file."),
        )
    loaded = ctx.load_env()
    if loaded.error is not None:
        reason = getattr(loaded.error, "reason", "unreadable")
        facts["reason"] = reason
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
            facts=facts,
            cause="not_configured",
            remediation=Remediation(fixes.get(reason, fixes["unreadable"])),
        )

    env = loaded.value
    values = env.values
    facts.update(
        {
            "mode": oct(env.mode),
            "keys": sorted(values),
            "line_ends": "CRLF" if env.newline == "\r\n" else "LF",
            "bom": env.had_bom,
            "malformed_lines": [p.line for p in env.problems],
        }
    )
    details: list[str] = []
    warnings: list[str] = []
    for problem in env.problems:
        details.append(f"line {problem.line}: {problem.text} (python-dotenv ignores this line)")
    if env.problems:
        warnings.append(f"{len(env.problems)} malformed line(s): {', '.join(str(p.line) for p in env.problems)}")

    foreign = sorted(k for k in values if k.startswith(FOREIGN_PREFIXES))
    missing = [k for k in REQUIRED_KEYS if not env.get(k)]
    facts["missing_keys"] = missing
    if foreign:
        facts["foreign_keys"] = foreign
        mapped = [k for k in foreign if _sidequest_name(k) in missing]
        note = (
            f"Found {', '.join(foreign)}: those are the names other QuickBooks connectors use. "
            "SideQuest reads QB_* names "
            "(QB_CLIENT_ID, QB_CLIENT_SECRET, QB_REFRESH_TOKEN, QB_REALM_ID, QB_ENVIRONMENT)."
        )
        details.append(note)
        if mapped:
            details.append("Rename " + ", ".join(f"{k} to {_sidequest_name(k)}" for k in mapped) + ".")
        else:
            warnings.append("keys of another QuickBooks connector are present")

    if missing:
        only_token = set(missing) <= {"QB_REFRESH_TOKEN", "QB_REALM_ID"}
        summary = f"{path.name} is missing {', '.join(missing)}" + (
            ": QuickBooks was never connected here." if only_token else "."
        )
        return Finding(
            "fail",
            summary,
            details=details,
            facts=facts,
            cause="not_configured",
            remediation=Remediation(
                f"Run `{REAUTH}` to connect QuickBooks; it writes the token and company ID."
                if only_token
                else f"Add the missing keys to {path} (from the SideQuest setup email), then run `{REAUTH}`.",
                (REAUTH,),
            ),
        )

    environment = env.get("QB_ENVIRONMENT") or ""
    if environment not in ENVIRONMENTS:
        if environment.lower() in ENVIRONMENTS:
            warnings.append(f"QB_ENVIRONMENT is {environment!r}; write it in lower case: {environment.lower()!r}")
        else:
            return Finding(
                "fail",
                f"QB_ENVIRONMENT is {environment!r}; it must be 'sandbox' or 'production'.",
                details=details,
                facts=facts,
                cause="not_configured",
                remediation=Remediation(
                    "Set QB_ENVIRONMENT=production (your real books) or "
                    f"QB_ENVIRONMENT=sandbox (a test company) in {path}."
                ),
            )

    if env.mode & 0o077:
        warnings.append(f"{path.name} is readable by other users (mode {oct(env.mode)})")
        details.append("It holds your QuickBooks keys; only your user should be able to read it.")

    if warnings:
        remediation = None
        if env.mode & 0o077:
            remediation = Remediation(
                f"Make {path.name} private to your user.", (f'chmod 600 "{path}"',), safe_to_automate=True
            )
        elif env.problems:
            remediation = Remediation(f"Fix or delete the malformed line(s) in {path}.")
        elif foreign:
            remediation = Remediation("Remove the other connector's keys if SideQuest is the only one you use.")
        return Finding("warn", "; ".join(warnings) + ".", details=details, facts=facts, remediation=remediation)
    return Finding("ok", f"{path.name} has every key SideQuest needs ({environment}).", details=details, facts=facts)


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
