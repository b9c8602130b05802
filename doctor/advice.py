"""Every sentence of advice the user reads in more than one place, said once.

The probes, the diagnosis and the commands point at the same few commands and give the same
few instructions (connect QuickBooks again, restart Claude Desktop, wait for the lock). When
each spelled them out, the copies drifted; here each is written once and imported. Only
sentences that more than one place says live here: a sentence one probe says stays in that
probe, beside the situation it describes.

The restart advice exists in three wordings on purpose, each for its moment: a fix step of
the diagnosis (`QUIT_CLAUDE`), the detail of a settings change Claude has not loaded yet
(`QUIT_AND_REOPEN`) and the last line of `reauth-qb` (`RESTART_ADVICE`). They share how to
quit, which is the part that must not drift.
"""

from __future__ import annotations

from doctor.model import Remediation

# -- the commands advice points at ------------------------------------------------------------

REAUTH = "sidequest reauth-qb"
REFRESH = "sidequest refresh-qb"
DOCTOR = "sidequest doctor"
FIX = "sidequest doctor --fix"
SETUP = "sidequest setup"
KEEPALIVE_ON = "sidequest keepalive on"
KEEPALIVE_STATUS = "sidequest keepalive status"
# The report support asks for (it contains no secrets).
REPORT_FOR_SUPPORT = f"{DOCTOR} --format json --output sidequest-report.json"

# -- connect QuickBooks again -------------------------------------------------------------------

REAUTH_CLICK_CONNECT = f"Run `{REAUTH}` and click Connect on the QuickBooks page that opens."
REAUTH_AGAIN = f"Run `{REAUTH}` to connect QuickBooks again."


def reauth_remediation(text: str = REAUTH_CLICK_CONNECT) -> Remediation:
    """Advice whose one command is `sidequest reauth-qb`."""
    return Remediation(text, (REAUTH,))


def reauth_in(environment: str) -> str:
    """The command that connects a company of `environment` (sandbox or production)."""
    return f"{REAUTH} --environment {environment}"


def environment_remediation(works: str, configured: str) -> Remediation:
    """The two ways out of a wrong QB_ENVIRONMENT: point it back, or connect the other company."""
    return Remediation(
        f"Set QB_ENVIRONMENT={works} in .env, or run `{reauth_in(configured)}`.",
        (reauth_in(configured),),
    )


# What people type for an environment, and the one they mean.
ENVIRONMENT_ALIASES = {
    "prod": "production",
    "prd": "production",
    "live": "production",
    "real": "production",
    "dev": "sandbox",
    "development": "sandbox",
    "test": "sandbox",
    "testing": "sandbox",
    "staging": "sandbox",
}


def environment_meant(raw: str) -> str | None:
    """The environment a wrong QB_ENVIRONMENT most likely means ('prod' → 'production'), or None."""
    cleaned = raw.strip().strip("'\"").strip().lower()
    if cleaned in ("sandbox", "production"):
        return cleaned
    return ENVIRONMENT_ALIASES.get(cleaned)


def environment_problem(raw: str) -> str:
    """What is wrong with a QB_ENVIRONMENT that is neither sandbox nor production, in words."""
    if not raw:
        return "QB_ENVIRONMENT is empty; it must be 'production' (your real books) or 'sandbox' (a test company)"
    meant = environment_meant(raw)
    said = f"QB_ENVIRONMENT is {raw!r}, which QuickBooks does not know; it must be exactly 'production' or 'sandbox'"
    return said + (f" (did you mean {meant!r}?)" if meant else "")


def environment_invalid(raw: str) -> str:
    """The summary for a QB_ENVIRONMENT that is neither sandbox nor production."""
    return environment_problem(raw) + "."


def invalid_value(key: str, problem: str) -> dict[str, str]:
    """The fact a finding carries when a setting has a value that cannot work; the diagnosis headline says it."""
    return {"key": key, "problem": problem}


# -- restart Claude Desktop ---------------------------------------------------------------------

HOW_TO_QUIT_CLAUDE = "macOS: Cmd+Q; Windows: right-click the Claude icon in the tray and choose Quit"
QUIT_CLAUDE = f"Quit Claude Desktop completely ({HOW_TO_QUIT_CLAUDE}), then open it again."
QUIT_AND_REOPEN = (
    f"Quit Claude Desktop completely and open it again ({HOW_TO_QUIT_CLAUDE}), so it loads the new settings."
)
RESTART_ADVICE = (
    "Last step: quit Claude Desktop completely (on a Mac: Claude menu > Quit, or Cmd+Q; on Windows: "
    "right-click the Claude icon in the taskbar tray and choose Quit; closing the window is not enough), "
    "then open it again. The next QuickBooks request will work."
)
# Claude Desktop rewrites its config while it runs, so no SideQuest write is made then (issue 10 §4).
DESKTOP_RUNNING = (
    "Claude Desktop is running, and it rewrites its settings file, so SideQuest did not change it "
    "(the change would be undone)."
)


def quit_claude_then(command: str) -> str:
    """What to do when a write of Claude Desktop's config was refused because Desktop runs."""
    return f"Quit Claude Desktop ({HOW_TO_QUIT_CLAUDE}), then run `{command}` and open Claude Desktop again."


# Claude Desktop's own settings screen, where a person can see and edit the file.
EDIT_CONFIG = "Open Claude Desktop → Settings → Developer → Edit Config"

# -- the token lock ---------------------------------------------------------------------------

LOCK_WAIT = "Wait a minute and run the doctor again"


# What to do after Intuit refused, per error kind (doctor/intuit/errors.py names the kinds and
# says what happened): one table for a refresh (refresh-qb, the keep-alive's status), one for
# the sign-in code exchange (reauth-qb, setup), sharing the sentences both say.
COPY_APP_KEYS = "Intuit does not accept the app keys QB_CLIENT_ID / QB_CLIENT_SECRET in .env. "
INSECURE_URL = "A SIDEQUEST_OAUTH_* address is plain http:// to a non-local host; refusing to send secrets there."
DIAGNOSIS_PLEASE = f"Run `{DOCTOR}` for a diagnosis."
AFTER_REFRESH_REFUSAL: dict[str, str] = {
    "invalid_grant": "Intuit no longer accepts this connection (expired, disconnected in QuickBooks, or made "
    f"with other app keys). Run `{DOCTOR}` to see which, then `{REAUTH}`.",
    "invalid_client": COPY_APP_KEYS + f"Copy them again from the SideQuest setup email; `{DOCTOR}` explains more.",
    "network": "Could not reach Intuit. Check the internet connection and try again.",
    "timeout": "Intuit did not answer in time. Try again in a few minutes.",
    "server_error": "Intuit's sign-in service had an error. Try again in a few minutes; nothing was changed.",
    "bad_response": "Intuit answered with something that is not a token response. Try again in a few minutes.",
    "insecure_url": INSECURE_URL,
}
AFTER_EXCHANGE_REFUSAL: dict[str, str] = {
    "invalid_grant": "Intuit did not accept the sign-in code: it was already used, is older than a few "
    "minutes, or QB_REDIRECT_URI in .env differs from the one registered for the app. "
    f"Run `{REAUTH}` again.",
    "invalid_client": COPY_APP_KEYS + f"Copy them again from the SideQuest setup email, then run `{REAUTH}`.",
    "network": f"Could not reach Intuit. Check the internet connection and run `{REAUTH}` again.",
    "timeout": f"Intuit did not answer in time. Run `{REAUTH}` again in a few minutes.",
    "server_error": f"Intuit's sign-in service had an error. Run `{REAUTH}` again in a few minutes.",
    "insecure_url": INSECURE_URL,
}
