"""The pages the loopback consent listener shows in the browser tab.

Why a module of its own: these are the last thing a business owner sees of a reconnect, so
they must read plainly ("Connected to Larry's Bakery. You can close this tab and go back to
Claude."), and they are built from text that is not ours (a company name from Intuit, an
error code from the address). Every piece of text goes through `html.escape` here, in one
place: a company called `<script>…` is shown as those characters, never run. The pages load
nothing (no scripts, no images, no external styles) and say nothing secret; the listener
serves them with `no-store`, `no-referrer` and a Content-Security-Policy that forbids
everything but the inline style below (see `SECURITY_HEADERS`).
"""

from __future__ import annotations

import base64
import hashlib
import html

_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:36em;margin:4em auto;"
    "padding:0 1em;line-height:1.5;color:#1b1b1b}h1{font-size:1.6em;margin-bottom:.4em}"
    ".ok h1{color:#146c2e}.no h1{color:#8a1c1c}.small{color:#555;font-size:.92em}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")

SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)

CLOSE_TAB = "You can close this tab and go back to Claude."
RESTART_HINT = (
    "Claude picks up the new connection once you quit Claude Desktop completely and open it again; "
    "the terminal window says how."
)


def page(title: str, paragraphs: list[str], *, kind: str = "info", small: list[str] | None = None) -> bytes:
    """A whole page; `title` and every paragraph are plain text (escaped here)."""
    body = "".join(f"<p>{html.escape(text)}</p>\n" for text in paragraphs if text)
    body += "".join(f'<p class="small">{html.escape(text)}</p>\n' for text in small or () if text)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>SideQuest: {html.escape(title)}</title><style>{_STYLE}</style></head>\n"
        f'<body class="{kind}"><h1>{html.escape(title)}</h1>\n{body}</body></html>\n'
    ).encode("utf-8")


def outcome_page(success: bool, headline: str, detail: str) -> bytes:
    """The final page for an accepted reply, from the flow's PageOutcome.

    Success: the headline is "Connected to <company>." and the page adds the two things the
    user does next. Anything else: what happened, and the detail says how to try again.
    """
    if success:
        return page(headline, [CLOSE_TAB], kind="ok", small=[detail, RESTART_HINT])
    return page(headline, [detail], kind="no")


def received_page() -> bytes:
    """The flow did not finish within the page's wait: the terminal has the rest."""
    return page("Sign-in received", ["SideQuest received the reply from QuickBooks. Finish in the terminal window."])


def wrong_state_page() -> bytes:
    return page(
        "Sign-in reply ignored",
        [
            "This reply does not belong to the SideQuest window that is waiting, so it was ignored and "
            "nothing was changed.",
            "If you started sidequest reauth-qb more than once, use the link from the most recent window.",
        ],
        kind="no",
    )


def incomplete_page() -> bytes:
    return page(
        "Sign-in reply incomplete",
        [
            "The reply from Intuit did not say which QuickBooks company you connected. Nothing was changed.",
            "Go back to the terminal window.",
        ],
        kind="no",
    )


def bad_realm_page() -> bytes:
    return page(
        "Sign-in reply refused",
        [
            "The company ID in this reply is not a number, so it was refused and nothing was changed.",
            "Go back to the terminal window.",
        ],
        kind="no",
    )


def already_received_page() -> bytes:
    return page(
        "Already received",
        ["SideQuest already received the sign-in reply. Go back to the terminal window."],
    )


def not_found_page() -> bytes:
    return page("Not found", ["This address only receives the QuickBooks sign-in reply for SideQuest."], kind="no")
