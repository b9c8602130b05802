"""A stand-in for the user's browser, started by Python's `webbrowser` through `BROWSER`.

Why it exists: `sidequest reauth-qb` opens the consent page with the platform browser and
then waits for the redirect. The end-to-end tests need something that does what a browser
does with that page, over real sockets: load the (fake) Intuit consent URL, follow its 302,
and land on the redirect URI. When the redirect URI is a loopback address the landing *is*
the delivery. When it is the hosted callback (https, not reachable in tests), this script
plays the hosted page's contract (see doctor/commands/consent_listener.py): take the port after the
last "." of `state` and forward code, state, realmId (or error) to
http://127.0.0.1:<port>/callback.

Usage (what webbrowser runs): BROWSER="<python> <this file> %s"

It prints nothing on success and never prints a URL (they hold the authorization code).
If FAKE_BROWSER_LOG names a file, it appends one JSON line per run: the statuses it saw,
the host it landed on, whether it forwarded, and the final page's text, so tests can check
what the user would have seen.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

LOOPBACK = ("127.0.0.1", "localhost")
FORWARDED_KEYS = ("code", "state", "realmId", "error", "error_description")


def fetch(url: str) -> tuple[int, str | None, str]:
    """GET one URL over plain http without following redirects: (status, Location, body text)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise ValueError("the fake browser only talks to loopback http")
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        connection.request("GET", target)
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
        return response.status, response.getheader("Location"), body
    finally:
        connection.close()


def browse(consent_url: str) -> dict:
    record: dict = {"forwarded": False}
    status, location, _ = fetch(consent_url)
    record["consent_status"] = status
    if status not in (301, 302, 303, 307) or not location:
        return record
    landing = urlsplit(location)
    record["landed_on"] = landing.hostname
    if landing.scheme == "http" and landing.hostname in LOOPBACK:
        final_url = location
    else:
        # The hosted page: read the reply, find the port in state, send the browser on.
        params = {k: v[0] for k, v in parse_qs(landing.query, keep_blank_values=True).items()}
        port = params.get("state", "").rpartition(".")[2]
        forwarded = {k: params[k] for k in FORWARDED_KEYS if k in params}
        final_url = f"http://127.0.0.1:{int(port)}/callback?{urlencode(forwarded)}"
        record["forwarded"] = True
    status, _, body = fetch(final_url)
    record["final_status"] = status
    record["final_page"] = body
    return record


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: fake_browser.py URL", file=sys.stderr)
        return 2
    try:
        record = browse(argv[1])
    except Exception as exc:  # report the kind only: messages could quote a URL
        record = {"error": type(exc).__name__}
        print(f"fake_browser: {type(exc).__name__}", file=sys.stderr)
    log = os.environ.get("FAKE_BROWSER_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    # Like a real browser, "opened" even when the page said no: webbrowser must not try another.
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
