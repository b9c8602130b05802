"""The plugin contract of `sidequest doctor` (pluggy project name "sidequest").

Built-in probes and third-party plugins implement these hooks. Hooks only *describe*
things (probes, secrets); the runner executes probe logic, never a hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from doctor.context import Context
    from doctor.model import Probe

PROJECT_NAME = "sidequest"
ENTRY_POINT_GROUP = "sidequest"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def sidequest_probes() -> Iterable["Probe"]:
    """Return the probe descriptions this plugin provides.

    Fires once, while the plugin manager is built, before any probe runs. Return an
    iterable of `doctor.model.Probe`; ids must be kebab-case and unique across plugins.
    """


@hookspec
def sidequest_secrets(ctx: "Context") -> Iterable[str | tuple[str, str]]:
    """Return extra secret values the redactor must hide from every output.

    Fires after the probes ran and before anything is rendered. Items are a value, or a
    `(kind, value)` pair where kind is one of `refresh_token`, `access_token`,
    `client_secret`, `auth_code` (others are shown as `SECRET…`).
    """
