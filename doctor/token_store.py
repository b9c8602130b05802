"""The connector's import path for the locked token store: `from doctor.token_store import get_access_token`.

The store itself lives in `doctor/store/token_store.py`; this module only keeps the name the
connector (and its users' code) already imports, so the house could move without breaking them.
"""

from __future__ import annotations

from doctor.store.token_store import (  # noqa: F401 - re-exported: the connector's API
    DIAGNOSE_COMMAND,
    LockTimeout,
    RefreshResult,
    StoreError,
    TokenStore,
    connector_hint,
    get_access_token,
)

__all__ = [
    "DIAGNOSE_COMMAND",
    "LockTimeout",
    "RefreshResult",
    "StoreError",
    "TokenStore",
    "connector_hint",
    "get_access_token",
]
