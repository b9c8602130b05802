"""Name one root cause from a run's results, with a headline and the exact fix steps.

Each problem finding points at a cause code; the diagnosis keeps the one that explains the
others, using the contract's tie-break order (DESIGN.md §9a): a wrong environment explains a
failing realm check, a dead chain explains a failing company lookup. Headlines are written for
a business owner, not an engineer.
"""

from __future__ import annotations

from doctor.advice import CLOCK_THEN_REAUTH, DOCTOR, QUIT_CLAUDE, SET_CLOCK, SETUP
from doctor.advice import REAUTH_CLICK_CONNECT as REAUTH
from doctor.model import CAUSE_ORDER, CAUSES, Diagnosis, ProbeResult

KEEP_ALIVE = (
    "Keep the connection alive: use QuickBooks through Claude at least once a month, or run "
    "`sidequest keepalive on` once, so this computer refreshes it on a schedule."
)
KEPT_ALIVE = (
    "The keep-alive on this computer refreshes the connection on a schedule; using QuickBooks through "
    "Claude extends it too, so there is nothing to do."
)
RECHECK = "Then run `sidequest doctor` again to confirm."
NO_DISCONNECT = "In QuickBooks, don't click Disconnect on the SideQuest app unless you mean to end the connection."

HEADLINES: dict[str, str] = {
    "healthy": "QuickBooks is connected and working; nothing needs fixing.",
    "not_configured": "The SideQuest QuickBooks connector is not set up on this computer yet.",
    "refresh_token_expired": "The QuickBooks connection expired, so QuickBooks needs you to connect again.",
    "app_disconnected": (
        "QuickBooks no longer accepts SideQuest's saved connection (it was disconnected in QuickBooks or "
        "replaced by a newer one that was not saved), so you need to connect again."
    ),
    "environment_mismatch": "SideQuest is pointed at the wrong kind of QuickBooks company (sandbox versus production).",
    "realm_mismatch": "SideQuest is set up for a different QuickBooks company than the one your connection belongs to.",
    "invalid_client": "QuickBooks does not accept SideQuest's app keys (client ID and secret).",
    "qbo_access_denied": (
        "QuickBooks says the person who connected SideQuest is no longer an administrator of this company "
        "(or lost their QuickBooks user), so it refuses SideQuest's requests."
    ),
    "subscription_lapsed": (
        "QuickBooks refuses SideQuest because this company's QuickBooks subscription has ended or has a "
        "billing problem; nothing on this computer is wrong."
    ),
    "connector_not_starting": (
        "Claude Desktop cannot start the SideQuest QuickBooks connector, so Claude has no QuickBooks tools."
    ),
    "claude_config_invalid": (
        "Claude Desktop's settings file is broken, so Claude cannot start the QuickBooks connector."
    ),
    "claude_config_out_of_sync": "Claude Desktop's settings disagree with SideQuest's saved QuickBooks connection.",
    "lock_problem": (
        "SideQuest cannot safely save its QuickBooks token: its lock is taken or its folder is not writable."
    ),
    "tls_untrusted": (
        "This computer does not trust the secure connection to QuickBooks: a certificate problem, usually a "
        "company proxy or antivirus that inspects secure traffic, not the internet connection."
    ),
    "network_unreachable": "This computer cannot reach QuickBooks over the internet right now.",
    "rate_limited": (
        "QuickBooks is holding back SideQuest's requests because too many were sent; "
        "waiting, not reconnecting, fixes it."
    ),
    "intuit_unavailable": "QuickBooks' sign-in service (Intuit) is having trouble right now; it is not your setup.",
    "unknown": "The doctor found a problem it cannot name; send the JSON report to support.",
}

FIXES: dict[str, tuple[str, ...]] = {
    "healthy": (KEEP_ALIVE,),
    "not_configured": (
        f"Run `{SETUP}` and give it the app keys from the SideQuest setup email (or put QB_CLIENT_ID, "
        "QB_CLIENT_SECRET and QB_ENVIRONMENT in ~/.qb-distributor-mcp/.env by hand, then run `sidequest reauth-qb`).",
        QUIT_CLAUDE,
    ),
    "refresh_token_expired": (REAUTH, QUIT_CLAUDE, KEEP_ALIVE),
    "app_disconnected": (REAUTH, QUIT_CLAUDE, NO_DISCONNECT),
    "environment_mismatch": (
        "Decide which company you meant: set QB_ENVIRONMENT in ~/.qb-distributor-mcp/.env back to the "
        "environment the connection was made in, or connect again in the new one with "
        "`sidequest reauth-qb --environment production` (or `--environment sandbox`).",
        QUIT_CLAUDE,
    ),
    "realm_mismatch": (
        "Run `sidequest reauth-qb` and pick the right company on the QuickBooks page; it saves that "
        "company's ID (QB_REALM_ID) for you.",
        QUIT_CLAUDE,
    ),
    "invalid_client": (
        "Copy QB_CLIENT_ID and QB_CLIENT_SECRET again from the SideQuest setup email (or the Intuit "
        "developer portal, Keys & credentials) into ~/.qb-distributor-mcp/.env; check for stray spaces.",
        "Make sure development keys go with QB_ENVIRONMENT=sandbox and production keys with QB_ENVIRONMENT=production.",
        REAUTH,
    ),
    "qbo_access_denied": (
        "Ask a current administrator of the QuickBooks company (QuickBooks → Settings → Manage users) to run "
        "`sidequest reauth-qb` on this computer and click Connect; a user who is not an admin cannot connect apps.",
        QUIT_CLAUDE,
    ),
    "subscription_lapsed": (
        "The company's owner signs in to QuickBooks Online and settles the subscription (Settings → "
        "Subscriptions and billing): renew it or fix the payment method.",
        "Nothing on this computer needs changing; run `sidequest doctor` again once QuickBooks is paid up.",
    ),
    "connector_not_starting": (
        "Follow the fix the `claude-logs` or `connector-launch` finding gives (a command that is not found, a "
        "crash at start, a disabled extension or a missing setting).",
        QUIT_CLAUDE,
        "Then run `sidequest doctor` again to confirm Claude can start the connector.",
    ),
    "claude_config_invalid": (
        "Open Claude Desktop → Settings → Developer → Edit Config and fix the spot the doctor names "
        "(often a missing or extra comma), or restore the backup next to the file.",
        QUIT_CLAUDE,
    ),
    "claude_config_out_of_sync": (
        "Run `sidequest doctor --fix` to copy the connection from ~/.qb-distributor-mcp/.env into "
        "Claude Desktop's settings.",
        QUIT_CLAUDE,
    ),
    "lock_problem": (
        "Quit Claude Desktop completely and stop any running `sidequest` command: the lock is released the "
        "moment the program holding it ends. Then run `sidequest doctor` again.",
        "If the doctor says the folder is not writable, give your user write access to ~/.qb-distributor-mcp "
        "(or move it out of a synced folder and point SIDEQUEST_HOME at the new place).",
    ),
    "tls_untrusted": (
        "If your company uses a proxy or antivirus that inspects secure traffic, ask IT for its root certificate "
        "and install it in the system's trusted certificates.",
        "Or point SideQuest at it: set SSL_CERT_FILE to a PEM file holding the trusted roots (including the "
        "company root), e.g. `export SSL_CERT_FILE=/path/to/company-roots.pem`, then run `sidequest doctor` again.",
        "Never turn certificate checking off.",
    ),
    "network_unreachable": (
        "Check that this computer is online (open any website), and that no VPN or firewall blocks "
        "quickbooks.api.intuit.com and oauth.platform.intuit.com.",
        "Then run `sidequest doctor` again.",
    ),
    "rate_limited": (
        "Wait: a per-minute limit clears within a minute (the refresh-chain or realm-match finding says when); "
        "then run `sidequest doctor` again. Don't reconnect: it does not help.",
        "If the finding says the app's monthly allowance is used up (QuickBooks shows the SideQuest app as "
        '"Offline"), contact SideQuest support with the JSON report; it clears at the start of next month.',
    ),
    "intuit_unavailable": (
        "Wait a few minutes and run `sidequest doctor` again; Intuit's status page is status.developer.intuit.com.",
        "Nothing on your computer needs changing.",
    ),
    "unknown": (
        "Run `sidequest doctor --format json --output sidequest-report.json` and attach the file to a "
        "support ticket (it contains no secrets).",
    ),
}

assert set(HEADLINES) == set(CAUSES) == set(FIXES)

# rate_limited's fix once the finding says which limit was hit (its "limit" fact), after the finding's own step.
RATE_LIMIT_FIXES: dict[str, tuple[str, ...]] = {
    "per_minute": ("Don't reconnect QuickBooks: the connection is fine and reconnecting does not help.",),
    "monthly": (
        'The SideQuest app\'s monthly QuickBooks allowance is used up; QuickBooks shows the app as "Offline" '
        "until the start of next month. SideQuest support can help: attach the JSON report "
        "(`sidequest doctor --format json --output sidequest-report.json`; it contains no secrets).",
    ),
}


def cause_of(result: ProbeResult) -> str | None:
    """The cause a result points to, or None when it is not a problem."""
    if not result.is_problem:
        return None
    return result.cause if result.cause in CAUSE_ORDER else "unknown"


def _healthy_tip(results: list[ProbeResult]) -> tuple[str, ...]:
    """Suggest `keepalive on` only where none is installed and working (the keepalive probe says)."""
    kept = any(r.id == "keepalive" and r.status == "ok" and r.facts.get("installed") is True for r in results)
    return (KEPT_ALIVE,) if kept else FIXES["healthy"]


def diagnose(results: list[ProbeResult]) -> Diagnosis:
    """One cause for the run: `healthy` when no probe failed, else the root cause."""
    candidates = [(cause_of(r), r) for r in results]
    candidates = [(c, r) for c, r in candidates if c is not None]
    if not candidates:
        return Diagnosis("healthy", HEADLINES["healthy"], _healthy_tip(results))
    cause, result = min(candidates, key=lambda pair: CAUSE_ORDER.index(pair[0]))
    for own_words in _FINDING_SAYS_MORE:
        diagnosis = own_words(cause, result)
        if diagnosis is not None:
            return diagnosis
    return Diagnosis(cause, HEADLINES[cause], FIXES[cause], probe_id=result.id)


# Where the root finding knows more than its cause's general words, it speaks instead: each step
# returns the diagnosis in the finding's own words, or None; the first that answers wins.


def _one_wrong_value(cause: str, result: ProbeResult) -> Diagnosis | None:
    """Set up, but one value cannot work: say which and what is wrong with it, not "not set up yet"."""
    bad = result.facts.get("invalid_value") if cause == "not_configured" else None
    if not (isinstance(bad, dict) and bad.get("problem") and result.remediation is not None):
        return None
    headline = f"SideQuest is set up on this computer, but one setting is wrong: {bad['problem']}."
    return Diagnosis(cause, headline, (result.remediation.text, QUIT_CLAUDE), probe_id=result.id)


def _which_rate_limit(cause: str, result: ProbeResult) -> Diagnosis | None:
    """Which limit it is decides the advice: wait until the time the finding gives, or contact support."""
    limit = result.facts.get("limit") if cause == "rate_limited" else None
    if limit not in RATE_LIMIT_FIXES or result.remediation is None:
        return None
    return Diagnosis(cause, HEADLINES[cause], (result.remediation.text,) + RATE_LIMIT_FIXES[limit], result.id)


def _clock_first(cause: str, result: ProbeResult) -> Diagnosis | None:
    """A refused connection and a clock far off: the finding's sentence (written for the owner) says by
    how much, and setting the clock comes before reconnecting."""
    if cause != "app_disconnected" or result.facts.get("refused_because") != "clock_skew":
        return None
    fixes = (f"{SET_CLOCK}, then run `{DOCTOR}` again.", CLOCK_THEN_REAUTH, QUIT_CLAUDE)
    return Diagnosis(cause, result.summary, fixes, probe_id=result.id)


def _where_desktop_looks(cause: str, result: ProbeResult) -> Diagnosis | None:
    """claude-sources names the switch in Settings → Extensions or the file to change, which the
    cause's general steps do not."""
    if result.id != "claude-sources" or result.remediation is None:
        return None
    return Diagnosis(cause, HEADLINES[cause], (result.remediation.text, RECHECK), probe_id=result.id)


_FINDING_SAYS_MORE = (_one_wrong_value, _which_rate_limit, _clock_first, _where_desktop_looks)


def exit_code_for(diagnosis: Diagnosis, results: list[ProbeResult], strict: bool) -> int:
    if diagnosis.cause != "healthy":
        return 1
    if strict and any(r.status == "warn" for r in results):
        return 1
    return 0
