"""Probe `clock-skew`: does this computer's clock agree with Intuit's?

The dates every chain verdict rests on (token-age's deadlines, refresh-chain's "refreshed 2 h
ago") are only as good as this computer's clock, and Intuit's `Date` header is the one outside
clock the doctor sees. The probes that talk to Intuit record each header they get
(`doctor.token_chain.record_server_date`); this one compares the last of them, so it runs after
them and never asks Intuit anything itself.
"""

from __future__ import annotations

from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation
from doctor.store.timestamps import format_timestamp
from doctor.token_chain import clock_skew_line


def check(ctx: Context) -> Finding:
    seen = ctx.run_facts.server_dates
    if not seen:
        return Finding("skip", "No answer from Intuit in this run carried its clock, so the clock was not compared.")
    last = seen[-1]
    skew_seconds = int((last.local - last.server_date).total_seconds())
    facts = {"skew_seconds": skew_seconds, "intuit_date": format_timestamp(last.server_date), "compared_on": last.where}
    line = clock_skew_line(last.server_date, last.local)
    if line:
        return Finding(
            "warn",
            line,
            facts=facts,
            remediation=Remediation("Set the computer's date and time to update automatically."),
        )
    return Finding("ok", "This computer's clock agrees with Intuit's (within 5 minutes).", facts=facts)


PROBE = Probe(
    id="clock-skew",
    title="This computer's clock",
    category="token",
    run=check,
    runs_after=("refresh-chain", "realm-match", "environment-match"),
    timeout=2.0,
)


@hookimpl
def sidequest_probes():
    return [PROBE]
