"""An example third-party probe plugin, installed by the tests through an entry point.

It shows the whole plugin surface: a probe description with a dependency, a finding with
facts and a remediation, and the secrets hook that keeps a plugin's own secret out of every
output.
"""

from __future__ import annotations

from doctor import hookimpl
from doctor.model import Finding, Probe, Remediation


def check(ctx):
    label = ctx.env("EXAMPLE_LABEL")
    if not label:
        return Finding(
            "warn",
            "EXAMPLE_LABEL is not set.",
            remediation=Remediation("Add EXAMPLE_LABEL=Invoices to the .env file."),
        )
    token = ctx.env("EXAMPLE_API_TOKEN") or ""
    # Deliberately mentions the plugin's secret: the redactor must hide it.
    return Finding("ok", f"Label {label!r} is set (token {token}).", facts={"label": label})


@hookimpl
def sidequest_probes():
    return [
        Probe(
            id="example-label",
            title="Example plugin: label",
            run=check,
            category="integrations",
            depends_on=("env-file",),
        )
    ]


@hookimpl
def sidequest_secrets(ctx):
    return [("secret", ctx.env("EXAMPLE_API_TOKEN") or "")]
