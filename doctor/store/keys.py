"""Every list of `.env` key names, defined once (DESIGN.md §6 and §9a).

The store, the probes, the commands and Claude Desktop's config code all ask "which keys?":
which ones a working connector needs, which ones sidequest may write, which ones it copies into
Claude's entry, which ones hold secrets. Each answer lives here and nowhere else, so two places
can no longer disagree about it.
"""

from __future__ import annotations

# The Intuit app's keys, from the SideQuest setup email: every call to Intuit's token endpoint needs them.
APP_KEYS = ("QB_CLIENT_ID", "QB_CLIENT_SECRET")
# The chain and the company it is bound to: written at consent (reauth-qb).
CHAIN_KEYS = ("QB_REFRESH_TOKEN", "QB_REALM_ID")
# What a refresh sends to Intuit: the app's keys and the current refresh token.
REFRESH_KEYS = APP_KEYS + ("QB_REFRESH_TOKEN",)
# Everything a working connector needs in `.env` (the env-file probe checks these).
REQUIRED_KEYS = APP_KEYS + CHAIN_KEYS + ("QB_ENVIRONMENT",)

# The values `reauth-qb` and `doctor --fix` copy into Claude Desktop's connector entry, in this order.
SYNCED_KEYS = ("QB_REFRESH_TOKEN", "QB_REALM_ID", "QB_ENVIRONMENT")
# Metadata sidequest writes beside the token: when it was refreshed, when it expires, where it was minted.
METADATA_KEYS = (
    "QB_TOKEN_REFRESHED_AT",
    "QB_REFRESH_TOKEN_EXPIRES_AT",
    "QB_REFRESH_TOKEN_HARD_EXPIRES_AT",
    "QB_TOKEN_ENVIRONMENT",
    "QB_TOKEN_REALM_ID",
)
# The only keys sidequest ever writes into `.env`; every other line belongs to its owner.
SIDEQUEST_KEYS = SYNCED_KEYS + METADATA_KEYS

# `.env` keys whose values are secrets, and the kind the redactor shows them as.
SECRET_ENV_KEYS = {
    "QB_REFRESH_TOKEN": "refresh_token",
    "QB_CLIENT_SECRET": "client_secret",
    "QB_ACCESS_TOKEN": "access_token",
    # Keys other connectors use, which people paste into our .env by mistake.
    "QUICKBOOKS_REFRESH_TOKEN": "refresh_token",
    "QUICKBOOKS_CLIENT_SECRET": "client_secret",
    "QBO_REFRESH_TOKEN": "refresh_token",
    "QBO_CLIENT_SECRET": "client_secret",
}
