"""Where Intuit lives and where SideQuest may send credentials: the URL policy.

Intuit's real URLs are the defaults; each can be overridden from the process environment
for tests and proxies (DESIGN.md §7). Credentials travel in every Intuit request, so a URL
is used only when it is https, or plain http that never leaves this machine.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Mapping
from urllib.parse import urlsplit

from doctor.values import Value

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
MINOR_VERSION = 75
# The one definition of the two QuickBooks environments, in the order people are told them.
ENVIRONMENTS: tuple[str, ...] = ("production", "sandbox")

_DEFAULT_URLS = {
    "authorize": "https://appcenter.intuit.com/connect/oauth2",
    "token": "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    "revoke": "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
    "qbo_production": "https://quickbooks.api.intuit.com",
    "qbo_sandbox": "https://sandbox-quickbooks.api.intuit.com",
}
ENV_VARS = {
    "authorize": "SIDEQUEST_OAUTH_AUTHORIZE_URL",
    "token": "SIDEQUEST_OAUTH_TOKEN_URL",
    "revoke": "SIDEQUEST_OAUTH_REVOKE_URL",
    "qbo_production": "SIDEQUEST_QBO_URL_PRODUCTION",
    "qbo_sandbox": "SIDEQUEST_QBO_URL_SANDBOX",
}


class Endpoints(Value):
    """Where Intuit lives; every URL can be overridden from the environment (DESIGN.md §7)."""

    __slots__ = ("authorize", "token", "revoke", "qbo_production", "qbo_sandbox")

    def __init__(
        self,
        authorize: str = _DEFAULT_URLS["authorize"],
        token: str = _DEFAULT_URLS["token"],
        revoke: str = _DEFAULT_URLS["revoke"],
        qbo_production: str = _DEFAULT_URLS["qbo_production"],
        qbo_sandbox: str = _DEFAULT_URLS["qbo_sandbox"],
    ) -> None:
        self.authorize = authorize
        self.token = token
        self.revoke = revoke
        self.qbo_production = qbo_production
        self.qbo_sandbox = qbo_sandbox

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Endpoints:
        """Intuit's real URLs unless a SIDEQUEST_* variable says otherwise (blank = unset)."""
        source = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for field_name, var in ENV_VARS.items():
            value = (source.get(var) or "").strip()
            values[field_name] = value or _DEFAULT_URLS[field_name]
        # A trailing slash would produce "//v3/company" paths that some proxies reject.
        values["qbo_production"] = values["qbo_production"].rstrip("/")
        values["qbo_sandbox"] = values["qbo_sandbox"].rstrip("/")
        return cls(**values)

    def qbo_base(self, environment: str) -> str:
        """The QBO API base URL for "production" or "sandbox" (ValueError for anything else)."""
        normalised = normalise_environment(environment)
        return self.qbo_production if normalised == "production" else self.qbo_sandbox


def normalise_environment(environment: str) -> str:
    """ "Production " and "SANDBOX" are what people type; anything else is a configuration error."""
    normalised = (environment or "").strip().lower()
    if normalised not in ENVIRONMENTS:
        raise ValueError(f"environment must be 'production' or 'sandbox', not {environment!r}")
    return normalised


def check_url_allowed(url: str) -> None:
    """Refuse to send anything to a URL unless it is https, or plain http to this machine.

    Credentials travel in every Intuit request, so plain http is only acceptable when the
    bytes never leave the loopback interface (the tests' fake Intuit, a local proxy).
    """
    # Imported here: the offline doctor reads ENVIRONMENTS from this module and must not pay
    # for the error classifier's imports and patterns (about 6 M instructions of start-up).
    from doctor.intuit.errors import IntuitError

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        scheme = parts.scheme.lower()
    except ValueError:
        raise IntuitError("insecure_url", "Refusing a malformed Intuit URL") from None
    shown = f"{scheme}://{host}" if scheme else "(no scheme)"
    if scheme == "https" and host:
        return
    if scheme == "http" and host and is_loopback(host):
        return
    if scheme == "http":
        raise IntuitError(
            "insecure_url",
            f"Refusing to send credentials over plain http to {shown}: "
            "only https, or http to 127.0.0.1/::1/localhost, is allowed",
        )
    raise IntuitError("insecure_url", f"Refusing URL {shown}: only https (or loopback http) is allowed")


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: bytes sent there never leave this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
