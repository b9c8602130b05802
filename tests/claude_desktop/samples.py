"""Claude Desktop configs for the tests: the shared real-world corpus and a typical user's file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.claude_desktop.config import CONNECTOR_NAME

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "claude"

REFRESH_TOKEN = "RT1-secret-refresh-token-9f8e7d6c5b4a"
NEW_REFRESH_TOKEN = "RT1-brand-new-refresh-token-1a2b3c4d"
CLIENT_SECRET = "client-secret-value-that-must-not-leak"


def corpus_files(pattern: str) -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(CORPUS.glob(pattern))


def corpus_file(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not available")
    return path


VALID_CORPUS = [p for p in corpus_files("*.json") if not p.name.endswith(".INVALID.json")]
INVALID_CORPUS = corpus_files("*.INVALID.json")


def write_json(path: Path, data: object, **dump_options: object) -> Path:
    path.write_text(json.dumps(data, **dump_options), encoding="utf-8")
    return path


def typical_config() -> dict:
    """A config as a user ends up with it: other servers, app keys, Windows paths, unicode."""
    return {
        "darkMode": "light",
        "mcpServers": {
            "filesystem": {
                "command": "C:\\Program Files\\nodejs\\npx.cmd",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "D:\\MCP Mods\\data"],
            },
            CONNECTOR_NAME: {
                "command": "uvx",
                "args": ["qb-distributor-mcp"],
                "env": {
                    "QB_CLIENT_ID": "ABcd1234",
                    "QB_REFRESH_TOKEN": REFRESH_TOKEN,
                    "QB_REALM_ID": "9130350000000000",
                    "QB_ENVIRONMENT": "sandbox",
                    "COMPANY_LABEL": "Zürich ☕ Großhandel",
                },
            },
            "mysql": {"command": "npx", "env": {"MYSQL_USER": "domain\\username"}},
        },
        "preferences": {"quickEntryShortcut": "off", "epitaxyPrefs": {"x": None}},
        "unknownTopLevel": [1, 2.5, True, None, "日本語"],
    }
