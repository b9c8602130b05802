"""SideQuest doctor: diagnose and repair the QuickBooks Online token chain of the SideQuest connector.

The package holds the framework (plugin manager, runner, redaction, renderers, CLI) and the
domain modules the probes share (Intuit OAuth client, locked .env token store, Claude Desktop
config). Imports here stay lazy: the connector imports the token store through this package,
and the offline doctor must not pull in httpx or Jinja2.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "hookspec", "run_doctor"]


def __getattr__(name: str) -> Any:
    # Lazy exports keep `import doctor.store.token_store` (the connector's path) free of pluggy.
    if name in ("hookimpl", "hookspec"):
        from doctor import hookspecs

        return getattr(hookspecs, name)
    if name == "run_doctor":
        from doctor.session import run_doctor

        return run_doctor
    raise AttributeError(f"module 'doctor' has no attribute {name!r}")
