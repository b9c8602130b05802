"""Where the connector keeps its state: `--home`, else `$SIDEQUEST_HOME`, else `~/.qb-distributor-mcp`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

DEFAULT_HOME_NAME = ".qb-distributor-mcp"
HOME_ENV = "SIDEQUEST_HOME"


def resolve_home(home: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    if home:
        return Path(home).expanduser()
    if environ.get(HOME_ENV):
        return Path(environ[HOME_ENV]).expanduser()
    return Path.home() / DEFAULT_HOME_NAME
